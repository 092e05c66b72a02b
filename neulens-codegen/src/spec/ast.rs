//! The spec AST: what a YAML spec says, already type- and range-checked, with the source location
//! of every part so that later stages (name resolution, shapes, weights) can point at it.

use crate::diag::Loc;
use crate::graph::{Act, AlgoRequest, Pad, Shape};

/// A value with the location of the YAML node it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Located<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Located { value, loc }
    }
}

/// A whole spec. Parts that failed to parse are `None` (their errors are already reported).
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The model name, lowercased, a valid Rust identifier (from `name:` or the file stem).
    pub name: String,
    /// The model input, `None` when missing or invalid.
    pub input: Option<Located<Shape>>,
    /// Where the weights come from, `None` when missing or invalid.
    pub weights: Option<Located<WeightsSpec>>,
    /// `budget.arena_bytes` with the location of its value.
    pub arena_budget: Option<(u64, Loc)>,
    /// The model-wide `prune:` default.
    pub prune: Option<Located<crate::prune::PruneSetting>>,
    /// The layers in spec order (the last one is the model output).
    pub layers: Vec<LayerSpec>,
    /// Location of the `layers:` list (or of the document when it is missing).
    pub layers_loc: Loc,
    /// The `microflows:` section, when given and valid.
    pub microflows: Option<MicroflowSpec>,
}

/// `weights:` — a safetensors file relative to the spec's directory, or a random seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightsSpec {
    File(String),
    Random(u64),
}

/// A reference to a value: a layer name or `input` (the model input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputRef {
    pub name: String,
    pub loc: Loc,
}

/// One layer of the spec.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// The layer name; a placeholder such as `<layer 3>` when missing (nothing can refer to it).
    pub name: String,
    /// Location of the name value (the layer's mapping when the name is missing).
    pub name_loc: Loc,
    /// Location of the layer's mapping.
    pub loc: Loc,
    /// The inputs named in the spec; `None` = the previous layer (or the model input for the
    /// first layer).
    pub inputs: Option<Vec<InputRef>>,
    /// Location of the `inputs:`/`input:` value (the layer's mapping when not given).
    pub inputs_loc: Loc,
    pub act: Act,
    /// Prefix of the parameter names (default: the layer name).
    pub param: String,
    /// Location of `param:` when given, else of the layer.
    pub param_loc: Loc,
    /// The op with its fields; `None` when the op or one of its fields is invalid (already
    /// reported), so shape inference skips this layer and everything that reads it.
    pub op: Option<OpSpec>,
    /// Location of every field's value, by key (for messages about a specific field).
    pub field_locs: Vec<(String, Loc)>,
}

impl LayerSpec {
    /// Location of the value of `key`, or of the layer when the key is not given.
    pub fn loc_of(&self, key: &str) -> Loc {
        self.field_locs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, l)| *l)
            .unwrap_or(self.loc)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum OpSpec {
    Conv(ConvSpec),
    BatchNorm { eps: f64 },
    MaxPool(PoolSpec),
    AvgPool(PoolSpec),
    GlobalAvgPool,
    Dense(DenseSpec),
    Add,
    Concat,
    Flatten,
    Softmax,
}

impl OpSpec {
    /// The op name as written in the spec.
    pub fn name(&self) -> &'static str {
        match self {
            OpSpec::Conv(_) => "conv",
            OpSpec::BatchNorm { .. } => "batchnorm",
            OpSpec::MaxPool(_) => "maxpool",
            OpSpec::AvgPool(_) => "avgpool",
            OpSpec::GlobalAvgPool => "global_avg_pool",
            OpSpec::Dense(_) => "dense",
            OpSpec::Add => "add",
            OpSpec::Concat => "concat",
            OpSpec::Flatten => "flatten",
            OpSpec::Softmax => "softmax",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConvSpec {
    pub out: usize,
    /// [kh, kw]
    pub kernel: [usize; 2],
    /// [sh, sw]
    pub stride: [usize; 2],
    pub pad: Pad,
    pub groups: usize,
    /// `Some(b)` when `bias:` is given; `None` = use the bias if the weights have one.
    pub bias: Option<bool>,
    pub algo: AlgoRequest,
    /// The layer's own `prune:` value.
    pub prune: Option<Located<crate::prune::PruneSetting>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PoolSpec {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: Pad,
    /// Average pooling only (always `true` for max pooling, where it is ignored).
    pub count_include_pad: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DenseSpec {
    pub out: usize,
    pub bias: Option<bool>,
}

/// `microflows:` — NeuLens spatially adaptive inference (see `crate::microflow`).
#[derive(Clone, Debug, PartialEq)]
pub struct MicroflowSpec {
    /// Location of the `microflows:` mapping.
    pub loc: Loc,
    /// The last layer of the supernet (the tail starts after it).
    pub split_after: Option<Located<String>>,
    /// `grid: k` — k×k tiles.
    pub grid: Option<Located<usize>>,
    /// Channel fractions kept, widest first (default `[1.0, 0.75, 0.5, 0.375, 0.25]`).
    pub levels: Located<Vec<f64>>,
    pub gate: Option<Located<GateSpec>>,
    /// θ_f of the budget controller (default 0.9).
    pub theta: f64,
    /// Δw of the budget controller (default: the grid side k).
    pub window: Option<usize>,
    /// `per_level_bn: true`: supernet batchnorms have statistics per level,
    /// `PARAM.levels.L.{weight,bias,running_mean,running_var}` for levels L ≥ 1.
    pub per_level_bn: bool,
}

/// The default width levels (the paper's R = 5).
pub const DEFAULT_LEVELS: [f64; 5] = [1.0, 0.75, 0.5, 0.375, 0.25];

/// `microflows.gate`.
#[derive(Clone, Debug, PartialEq)]
pub enum GateSpec {
    /// `{ weights: PREFIX, channels: 16, kernel: 3, stride: 2 }`: conv + ReLU, global max-pool,
    /// dense → one logit per level; weights `PREFIX.conv.{weight,bias}`, `PREFIX.fc.{weight,bias}`.
    Learned {
        param: String,
        channels: usize,
        kernel: usize,
        stride: usize,
    },
    /// `{ energy: [t0, t1, ...] }`: one threshold per level but the narrowest, descending, on the
    /// standard deviation of the tile's input.
    Energy(Vec<f64>),
    /// `{ fixed: LEVEL }`: every tile at this level.
    Fixed(usize),
}
