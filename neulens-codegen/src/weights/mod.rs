//! Weight sources: a safetensors file (f32/f16/bf16, PyTorch `state_dict` names) or a seeded
//! synthetic He-normal initialiser. The graph builder asks a source for each named parameter with
//! its expected shape; the source answers with f32 data or says why it cannot.

pub mod random;
pub mod safetensors;

use crate::graph::Tensor;

/// What a parameter is (random initialisation depends on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Conv `[out, in/groups, kh, kw]` or dense `[out, in]` weights: He-normal, std = sqrt(2 / fan_in)
    /// with fan_in = the product of all dimensions but the first.
    Weight,
    /// Conv or dense bias `[out]`.
    Bias,
    /// BatchNorm `weight` (γ).
    BnGamma,
    /// BatchNorm `bias` (β).
    BnBeta,
    /// BatchNorm `running_mean`.
    BnMean,
    /// BatchNorm `running_var` (must be ≥ 0).
    BnVar,
}

/// One request for a parameter.
#[derive(Clone, Debug)]
pub struct WeightRequest<'a> {
    /// Full `state_dict` name, e.g. `layer1.0.conv1.weight`.
    pub name: &'a str,
    /// The exact shape the layer needs (PyTorch layout).
    pub shape: &'a [usize],
    pub kind: ParamKind,
}

/// Why a parameter could not be supplied.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightError {
    /// No tensor of that name. `similar` lists up to three names that look alike (typo help).
    Missing { similar: Vec<String> },
    /// The tensor exists with another shape.
    WrongShape { found: Vec<usize> },
    /// The tensor's dtype cannot be converted to f32 (e.g. I64, BOOL, F64 is accepted).
    WrongDtype { found: String },
    /// The tensor has NaN or infinite values.
    NonFinite { index: usize },
}

/// Something that supplies parameters by name.
pub trait WeightSource {
    /// Returns the tensor named `req.name` converted to f32, checked against `req.shape`.
    fn fetch(&mut self, req: &WeightRequest<'_>) -> Result<Tensor, WeightError>;
    /// Whether a tensor of this name exists (used for optional parameters such as biases).
    fn contains(&self, name: &str) -> bool;
    /// Names never fetched, for the "unused tensors" note in the build report.
    fn unused(&self) -> Vec<String>;
}
