//! The f64 reference interpreter (the test oracle). (Stub: being written.)
