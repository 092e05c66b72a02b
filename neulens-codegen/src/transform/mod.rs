//! Graph rewrites before planning (batchnorm folding). (Stub: being written.)
