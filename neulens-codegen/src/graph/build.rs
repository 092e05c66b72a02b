//! Builds the validated `Graph` from a parsed spec: name resolution, topological order, shape
//! inference and weight binding. (Stub: being written.)
