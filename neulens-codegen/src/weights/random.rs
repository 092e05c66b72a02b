//! Seeded synthetic weights. (Stub: being written.)
