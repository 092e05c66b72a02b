//! neulens-codegen: the build-time compiler behind `neulens::build` and `#[neulens_model]`.
//!
//! Pipeline, one folder per stage:
//! `spec/` (YAML → located AST) → `graph/` (validation, shape inference, weight binding → `Graph`)
//! → `transform/` (batchnorm folding) → `plan/` (order, algorithm per layer, arena offsets)
//! → `emit/` (Rust tokens + weight blob + report). `reference/` is the f64 interpreter used as the
//! test oracle; `weights/` reads safetensors and makes synthetic weights; `diag` holds the errors.
//! `compile` chains the back half; `builder` is the build.rs API.

pub mod builder;
pub mod compile;
pub mod diag;
pub mod emit;
pub mod graph;
pub mod load;
pub mod microflow;
pub mod plan;
pub mod prune;
pub mod reference;
pub mod spec;
pub mod transform;
pub mod weights;

pub use builder::{Built, Model};
pub use compile::{compile, Compiled};
pub use diag::{Diagnostic, Diagnostics, Loc};
pub use graph::Graph;
pub use load::{load_model, load_model_file, Loaded};
