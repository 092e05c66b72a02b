//! The validated model graph: the one IR between the front end (spec + weights) and the later
//! stages (transforms, planner, emitter, reference interpreter). Nodes are in topological order,
//! every shape is known and every weight tensor is bound and shape-checked.

use crate::diag::Loc;

pub mod build;

/// Channels × height × width of one feature map (batch 1, CHW layout like PyTorch's NCHW).
/// A flattened vector of n values is `{ c: n, h: 1, w: 1 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub const fn new(c: usize, h: usize, w: usize) -> Self {
        Shape { c, h, w }
    }
    pub const fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.c, self.h, self.w)
    }
}

/// Activation fused into the op that produces a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Act {
    #[default]
    None,
    Relu,
    Relu6,
}

/// A dense f32 tensor (row-major, PyTorch layout for its kind).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// Zeros of `shape`; an overflowing shape gives no data (validation reports it elsewhere).
    pub fn zeros(shape: &[usize]) -> Self {
        let len = shape
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .unwrap_or(0);
        Tensor {
            shape: shape.to_vec(),
            data: vec![0.0; len],
        }
    }
}

/// Top, left, bottom, right padding (zero padding for conv; -inf for max pooling; see `PoolOp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Pad {
    pub top: usize,
    pub left: usize,
    pub bottom: usize,
    pub right: usize,
}

/// Which algorithm the user asked for a conv (the planner decides for `Auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AlgoRequest {
    #[default]
    Auto,
    Direct,
    /// Winograd F(2,3) (`algo: winograd2`; 3×3 stride-1 ungrouped convs only).
    Winograd2,
    /// Winograd F(4,3) (`algo: winograd4`).
    Winograd4,
    /// Winograd F(6,3) (`algo: winograd6`).
    Winograd6,
    /// Pattern-pruned sparse direct (`algo: pattern`; 3×3 stride-1 or stride-2 ungrouped convs).
    Pattern,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConvOp {
    pub out_channels: usize,
    /// [kh, kw]
    pub kernel: [usize; 2],
    /// [sh, sw]
    pub stride: [usize; 2],
    pub pad: Pad,
    pub groups: usize,
    /// PyTorch layout [out, in / groups, kh, kw].
    pub weight: Tensor,
    /// `[out]`, or None for no bias.
    pub bias: Option<Tensor>,
    pub algo: AlgoRequest,
    /// Pattern pruning (`prune:` of the layer or the model), resolved; see `prune/`.
    pub prune: Option<crate::prune::LayerPrune>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormOp {
    pub eps: f64,
    /// Each `[channels]`: PyTorch `weight`, `bias`, `running_mean`, `running_var`.
    pub gamma: Tensor,
    pub beta: Tensor,
    pub mean: Tensor,
    pub var: Tensor,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PoolOp {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: Pad,
    /// Average pooling only: divide by the full window (PyTorch's default `count_include_pad=True`)
    /// or only by the in-bounds part. Max pooling ignores padded positions.
    pub count_include_pad: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DenseOp {
    pub out_features: usize,
    /// PyTorch layout [out, in], where `in` is the C·H·W of the input flattened in CHW order.
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

/// Per-channel `y = x * scale + shift` (a batchnorm that could not be folded into a conv).
#[derive(Clone, Debug, PartialEq)]
pub struct AffineOp {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The model input; always node 0.
    Input,
    Conv(ConvOp),
    BatchNorm(BatchNormOp),
    MaxPool(PoolOp),
    AvgPool(PoolOp),
    GlobalAvgPool,
    Dense(DenseOp),
    /// Elementwise sum of two or more inputs of equal shape.
    Add,
    /// Channel concatenation of inputs with equal height and width.
    Concat,
    /// CHW → (C·H·W)×1×1; a view, no data movement.
    Flatten,
    /// Softmax over all values (the input is treated as flat).
    Softmax,
    /// Produced by the transform stage (unfoldable batchnorm); never by the front end.
    Affine(AffineOp),
    /// The `shape.h × shape.w` window at (`top`, `left`) of every channel; produced by the
    /// micro-flow stage where a tile value computed for several consumers is read by one that
    /// needs only part of it.
    Crop {
        top: usize,
        left: usize,
    },
}

impl Op {
    /// Short lowercase name as in the spec (`conv`, `maxpool`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv(_) => "conv",
            Op::BatchNorm(_) => "batchnorm",
            Op::MaxPool(_) => "maxpool",
            Op::AvgPool(_) => "avgpool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Dense(_) => "dense",
            Op::Add => "add",
            Op::Concat => "concat",
            Op::Flatten => "flatten",
            Op::Softmax => "softmax",
            Op::Affine(_) => "affine",
            Op::Crop { .. } => "crop",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The layer name from the spec (`input` for node 0).
    pub name: String,
    /// Where the layer is defined in the spec.
    pub loc: Loc,
    pub op: Op,
    /// Indices of the producing nodes (always smaller than this node's index).
    pub inputs: Vec<usize>,
    /// The output shape.
    pub shape: Shape,
    pub act: Act,
}

/// A validated model.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// The model name (a valid Rust identifier, snake_case).
    pub name: String,
    /// Node 0 is `Op::Input`; nodes are in topological order.
    pub nodes: Vec<Node>,
    /// The node whose value is the model output (the last layer of the spec).
    pub output: usize,
    /// `budget.arena_bytes` from the spec, with its location.
    pub arena_budget: Option<(u64, Loc)>,
    /// The spec file name as given by the user (for diagnostics of later stages).
    pub file: String,
    /// The `microflows:` section with its split layer resolved and gate weights bound.
    pub microflows: Option<MicroflowCfg>,
}

/// A resolved `microflows:` section (see `crate::microflow` for what is built from it).
#[derive(Clone, Debug, PartialEq)]
pub struct MicroflowCfg {
    /// The node after which the tail starts.
    pub split: usize,
    /// k: the image is cut into k×k tiles.
    pub grid: usize,
    /// Channel fractions kept, widest first.
    pub levels: Vec<f64>,
    pub gate: Gate,
    /// θ_f and Δw of the budget controller.
    pub theta: f64,
    pub window: usize,
    /// Per-level batchnorm statistics (`per_level_bn: true`): for each supernet batchnorm node,
    /// its parameters at levels 1.. (level 0 is the node's own), already of the level's width.
    pub level_bn: Vec<(usize, Vec<BatchNormOp>)>,
    /// Where the section and its fields are, for the errors of later stages.
    pub loc: Loc,
    pub split_loc: Loc,
    pub grid_loc: Loc,
    pub levels_loc: Loc,
}

/// The per-tile gate of a micro-flow model.
#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    /// conv(`kernel`, `stride`, pad kernel/2) + ReLU → global max-pool → dense(levels).
    Learned { conv: Box<ConvOp>, fc: Box<DenseOp> },
    /// Thresholds on the standard deviation of the tile input, descending.
    Energy(Vec<f64>),
    /// Every tile at this level.
    Fixed(usize),
}

impl Graph {
    pub fn input_shape(&self) -> Shape {
        self.nodes[0].shape
    }
    pub fn output_shape(&self) -> Shape {
        self.nodes[self.output].shape
    }
    /// For each node, the nodes that read its value.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &j in &n.inputs {
                out[j].push(i);
            }
        }
        out
    }
}

/// Multiply-accumulates of one node, counted as the direct algorithm would do them.
pub fn node_macs(g: &Graph, idx: usize) -> u64 {
    let n = &g.nodes[idx];
    let s = n.shape;
    match &n.op {
        Op::Conv(c) => {
            let cin = g.nodes[n.inputs[0]].shape.c;
            (s.len() as u64) * (cin / c.groups) as u64 * (c.kernel[0] * c.kernel[1]) as u64
        }
        Op::Dense(d) => {
            let inp = g.nodes[n.inputs[0]].shape.len();
            (inp * d.out_features) as u64
        }
        _ => 0,
    }
}
