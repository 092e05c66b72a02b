//! The spec front end: YAML text → a located tree (`yaml`) → the spec AST (`ast`), reporting every
//! malformed, unknown or out-of-range field with its file, line and column.

pub mod ast;
pub mod parse;
pub mod suggest;
pub mod yaml;

pub use ast::{
    ConvSpec, DenseSpec, GateSpec, InputRef, LayerSpec, Located, MicroflowSpec, OpSpec, PoolSpec,
    Spec, WeightsSpec,
};
pub use parse::{parse_spec, parse_spec_partial};
