//! The spec front end: YAML text → a located tree (`yaml`) → the spec AST (`ast`), reporting every
//! malformed, unknown or out-of-range field with its file, line and column.

pub mod yaml;
