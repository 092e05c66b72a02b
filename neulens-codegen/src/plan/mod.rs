//! The planner: turns a lowered `Graph` into a straight list of kernel calls with every buffer
//! placed (input, output, or an arena offset chosen by liveness), weights packed into one blob,
//! and the algorithm of each layer chosen. Everything here becomes a constant in generated code.

pub mod adaptive;
pub mod arena;

use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::{node_macs, Act, AlgoRequest, Graph, Op, Shape};
use neulens_kernels::conv::ConvParams;
use neulens_kernels::dense::DenseParams;
use neulens_kernels::pattern::{self as kpat, PatternParams};
use neulens_kernels::pool::PoolParams;
use neulens_kernels::winograd::{self, WinogradTile};

/// Every tensor in the weight blob starts on a multiple of this many f32 (64 bytes).
pub const WEIGHT_ALIGN: usize = 16;

/// Where a run-time buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Storage {
    /// The caller's input array (read only).
    Input,
    /// The caller's output array.
    Output,
    /// The arena, at this f32 offset.
    Arena(usize),
}

/// A range of f32 values in some storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufRef {
    pub storage: Storage,
    /// Offset in f32 within the storage, on top of the storage's own base (`Arena(o)` adds `o`).
    pub offset: usize,
    pub len: usize,
}

impl BufRef {
    /// Absolute f32 offset inside its storage.
    pub fn start(&self) -> usize {
        match self.storage {
            Storage::Arena(o) => o + self.offset,
            _ => self.offset,
        }
    }
    pub fn end(&self) -> usize {
        self.start() + self.len
    }
    fn sub(&self, offset: usize, len: usize) -> BufRef {
        BufRef {
            storage: self.storage,
            offset: self.offset + offset,
            len,
        }
    }
}

/// Convolution algorithm chosen for a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvAlgo {
    /// Direct convolution (general kernel, register-blocked over output channels × pixels).
    Direct,
    /// 1×1 stride-1 unpadded convolution as a GEMM.
    Pointwise,
    /// One filter per input channel (groups == input channels).
    Depthwise,
    /// Winograd F(m×m, 3×3) (3×3, stride 1, groups 1).
    Winograd(WinogradTile),
    /// Pattern-sparse direct (pruned 3×3, stride 1 or 2, groups 1; see `prune/`).
    Pattern,
}

impl ConvAlgo {
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgo::Direct => "direct",
            ConvAlgo::Pointwise => "gemm-1x1",
            ConvAlgo::Depthwise => "depthwise",
            ConvAlgo::Winograd(t) => t.name(),
            ConvAlgo::Pattern => "pattern",
        }
    }
}

/// One kernel call. Weight offsets are f32 offsets into the weight blob.
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    Conv {
        p: ConvParams,
        algo: ConvAlgo,
        input: BufRef,
        weight: usize,
        bias: usize,
        output: BufRef,
        /// `p.scratch_len()` (or `p.min_scratch_len()` in a compact plan) f32 of arena, live
        /// only during this call (None when 0).
        scratch: Option<BufRef>,
    },
    /// Winograd convolution; `weight` holds `U = G g Gᵀ` packed by `winograd::pack_weights`.
    Winograd {
        p: ConvParams,
        tile: WinogradTile,
        input: BufRef,
        weight: usize,
        bias: usize,
        output: BufRef,
        /// `winograd::scratch_len(p, tile)` f32 of arena, live only during this call.
        scratch: Option<BufRef>,
    },
    /// Pattern-sparse convolution; `weight` holds `pattern::pack_pattern_weights` output and
    /// `library` indexes `Plan::pattern_libs`.
    Pattern {
        p: PatternParams,
        library: usize,
        input: BufRef,
        weight: usize,
        bias: usize,
        output: BufRef,
        /// `pattern::scratch_len(p)` f32 of arena, live only during this call.
        scratch: Option<BufRef>,
    },
    /// A direct conv reduced by the global max pool that reads it (see [`global_max_fusions`]):
    /// `output` is the pool's `c_out` maxima and the map is never stored. It sits in the pool's
    /// step; the conv's step has no call. `weight` holds `pack_global_max_weights` output.
    ConvGlobalMax {
        p: ConvParams,
        input: BufRef,
        weight: usize,
        bias: usize,
        output: BufRef,
        /// `p.global_max_scratch_len()` (or the least, in a compact plan) f32 of arena, live
        /// only during this call.
        scratch: Option<BufRef>,
    },
    MaxPool {
        p: PoolParams,
        input: BufRef,
        output: BufRef,
    },
    AvgPool {
        p: PoolParams,
        input: BufRef,
        output: BufRef,
    },
    GlobalAvgPool {
        c: usize,
        hw: usize,
        act: Act,
        input: BufRef,
        output: BufRef,
    },
    Dense {
        p: DenseParams,
        input: BufRef,
        weight: usize,
        bias: usize,
        output: BufRef,
    },
    /// `output = a + b` then `act`; `output` may be exactly `a` or `b` (in place).
    Add {
        a: BufRef,
        b: BufRef,
        output: BufRef,
        act: Act,
    },
    Affine {
        c: usize,
        hw: usize,
        input: BufRef,
        scale: usize,
        shift: usize,
        output: BufRef,
        act: Act,
    },
    Softmax {
        input: BufRef,
        output: BufRef,
    },
    Copy {
        src: BufRef,
        dst: BufRef,
    },
    /// A window of `src` (a crop) copied into `dst`.
    Window {
        p: neulens_kernels::eltwise::Window,
        src: BufRef,
        dst: BufRef,
    },
}

impl Kernel {
    /// Every buffer this call touches (for the generated bounds assertions).
    pub fn buffers(&self) -> Vec<BufRef> {
        match self {
            Kernel::Conv {
                input,
                output,
                scratch,
                ..
            }
            | Kernel::Winograd {
                input,
                output,
                scratch,
                ..
            }
            | Kernel::Pattern {
                input,
                output,
                scratch,
                ..
            }
            | Kernel::ConvGlobalMax {
                input,
                output,
                scratch,
                ..
            } => {
                let mut v = vec![*input, *output];
                v.extend(*scratch);
                v
            }
            Kernel::MaxPool { input, output, .. }
            | Kernel::AvgPool { input, output, .. }
            | Kernel::GlobalAvgPool { input, output, .. }
            | Kernel::Dense { input, output, .. }
            | Kernel::Affine { input, output, .. }
            | Kernel::Softmax { input, output } => vec![*input, *output],
            Kernel::Add { a, b, output, .. } => vec![*a, *b, *output],
            Kernel::Copy { src, dst } | Kernel::Window { src, dst, .. } => vec![*src, *dst],
        }
    }
    /// Every weight-blob range this call reads: (offset, len).
    pub fn weight_ranges(&self) -> Vec<(usize, usize)> {
        match self {
            Kernel::Conv {
                p, weight, bias, ..
            } => {
                vec![(*weight, p.packed_weight_len()), (*bias, p.c_out)]
            }
            Kernel::Winograd {
                p,
                tile,
                weight,
                bias,
                ..
            } => vec![
                (*weight, winograd::packed_weight_len(p, *tile)),
                (*bias, p.c_out),
            ],
            Kernel::Dense {
                p, weight, bias, ..
            } => {
                vec![(*weight, p.packed_weight_len()), (*bias, p.out_features)]
            }
            Kernel::Pattern {
                p, weight, bias, ..
            } => vec![(*weight, p.packed_len()), (*bias, p.conv.c_out)],
            Kernel::ConvGlobalMax {
                p, weight, bias, ..
            } => vec![(*weight, p.global_max_packed_len()), (*bias, p.c_out)],
            Kernel::Affine {
                c, scale, shift, ..
            } => vec![(*scale, *c), (*shift, *c)],
            _ => Vec::new(),
        }
    }
}

/// A layer of the plan: one graph node and the kernel calls that compute it.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The layer name (from the spec).
    pub name: String,
    /// The spec op (`conv`, `add`, ...).
    pub op: &'static str,
    /// The algorithm, as shown in the report.
    pub algo: &'static str,
    /// Why `algo` was chosen (convs: the cost model's estimate), empty when there was no choice.
    pub why: String,
    pub shape: Shape,
    pub macs: u64,
    /// Bytes of weights this layer reads from the blob.
    pub weight_bytes: usize,
    /// Where the layer's output lives.
    pub output: BufRef,
    /// True when the output reuses an input's buffer (in place).
    pub in_place: bool,
    pub kernels: Vec<Kernel>,
}

/// The whole compiled model.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub name: String,
    pub input: Shape,
    pub output: Shape,
    pub steps: Vec<Step>,
    /// Arena length in f32.
    pub arena_len: usize,
    /// The weight blob, in f32 (little-endian on disk).
    pub weights: Vec<f32>,
    pub macs: u64,
    /// The arena budget in bytes from the spec, if any.
    pub arena_budget: Option<u64>,
    /// The pattern libraries the `Kernel::Pattern` calls use (masks, by library index).
    pub pattern_libs: Vec<Vec<u16>>,
}

impl Plan {
    pub fn arena_bytes(&self) -> usize {
        self.arena_len * 4
    }
    pub fn weight_bytes(&self) -> usize {
        self.weights.len() * 4
    }
}

/// Plans a lowered graph (batchnorm already folded). Fails only on the arena budget.
///
/// When the plan exceeds the arena budget, the model is planned again with the direct kernels'
/// least scratch ([`ConvParams::min_scratch_len`]: input-channel blocks instead of all
/// channels at once), then with its automatic Winograd layers (whose scratch is large) stepped
/// down one at a time, largest Winograd scratch first, to the cheapest algorithm with less
/// scratch (a smaller tile size, or direct), until the plan fits: the layers that fit keep
/// their pick. If the last attempt fails too, its error (the smallest arena) is the one reported.
pub fn plan(g: &Graph) -> Result<Plan, Diagnostics> {
    let mut blob = Blob::default();
    let mut p = plan_shared(g, &mut blob)?;
    p.weights = blob.data;
    Ok(p)
}

/// How much scratch memory a plan may spend on speed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scratch {
    /// The direct kernels' fast banding (`scratch_len`).
    Fast,
    /// The direct kernels' least scratch.
    Least,
}

/// `plan` with the weights added to a blob shared with other plans (`Plan::weights` is left
/// empty; the offsets in its kernels point into `blob`).
pub fn plan_shared(g: &Graph, blob: &mut Blob) -> Result<Plan, Diagnostics> {
    let mark = blob.data.len();
    // (conv, scratch floats): that automatic conv must use less scratch than this.
    let mut caps: Vec<(usize, usize)> = Vec::new();
    let mut r = plan_with(g, Scratch::Fast, &caps, blob);
    if g.arena_budget.is_none() {
        return r;
    }
    let mut mode = Scratch::Fast;
    while r.is_err() {
        if mode == Scratch::Fast {
            mode = Scratch::Least;
        } else {
            // The automatic Winograd conv with the largest scratch (the first on a tie) steps
            // down to a smaller-scratch tile size, or direct.
            let largest = conv_algos(g, &caps)
                .iter()
                .enumerate()
                .filter_map(|(i, a)| match (&g.nodes[i].op, a) {
                    (Op::Conv(c), Some((ConvAlgo::Winograd(t), _)))
                        if c.algo == AlgoRequest::Auto =>
                    {
                        Some((winograd::scratch_len(&conv_params(g, i, c), *t), i))
                    }
                    _ => None,
                })
                .max_by_key(|&(len, i)| (len, std::cmp::Reverse(i)));
            let Some((len, i)) = largest else { break };
            caps.retain(|&(j, _)| j != i);
            caps.push((i, len));
        }
        // Tensors of the failed attempt stay in the blob only if also used by the retry.
        blob.data.truncate(mark);
        blob.index.retain(|_, offs| {
            offs.retain(|&o| o < mark);
            !offs.is_empty()
        });
        blob.lens.retain(|&o, _| o < mark);
        r = plan_with(g, mode, &caps, blob);
    }
    r
}

/// The algorithm of every conv, with the cost model's reason (`None` for other nodes). An
/// automatic conv with a scratch cap in `caps` (conv, f32) runs the cheapest algorithm that needs
/// less scratch than the cap: a smaller Winograd tile, or direct.
fn conv_algos(g: &Graph, caps: &[(usize, usize)]) -> Vec<Option<(ConvAlgo, String)>> {
    let weights = Weights::of_model(g);
    g.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| match &n.op {
            Op::Conv(c) if c.prune.as_ref().is_some_and(|lp| lp.assigned.is_some()) => {
                let why = c
                    .prune
                    .as_ref()
                    .map(|lp| lp.why.clone())
                    .unwrap_or_default();
                Some((ConvAlgo::Pattern, why))
            }
            Op::Conv(c) => {
                let p = conv_params(g, i, c);
                let (a, why) = choose_conv_algo_in(&p, c.algo, weights);
                let why = match &c.prune {
                    Some(lp) if !why.is_empty() => format!("{}; {why}", lp.why),
                    Some(lp) => lp.why.clone(),
                    None => why,
                };
                let cap = caps.iter().find(|&&(j, _)| j == i).map(|&(_, cap)| cap);
                Some(match (a, cap) {
                    (ConvAlgo::Winograd(t), Some(cap)) if c.algo == AlgoRequest::Auto => {
                        // The cheapest algorithm under the cap; direct when no Winograd tile is.
                        let mut best = (
                            ConvAlgo::Direct,
                            conv_cost_in(&p, ConvAlgo::Direct, weights),
                        );
                        for u in WinogradTile::ALL {
                            let cost = conv_cost_in(&p, ConvAlgo::Winograd(u), weights);
                            if winograd::scratch_len(&p, u) < cap && cost < best.1 {
                                best = (ConvAlgo::Winograd(u), cost);
                            }
                        }
                        let why = format!(
                            "{} ({why}) would need {} bytes of scratch, over the arena budget; {} \
                             instead",
                            ConvAlgo::Winograd(t).name(),
                            winograd::scratch_len(&p, t) * 4,
                            best.0.name()
                        );
                        (best.0, why)
                    }
                    _ => (a, why),
                })
            }
            _ => None,
        })
        .collect()
}

fn plan_with(
    g: &Graph,
    mode: Scratch,
    caps: &[(usize, usize)],
    blob: &mut Blob,
) -> Result<Plan, Diagnostics> {
    let mut diags = Diagnostics::new();
    let algos = conv_algos(g, caps);
    let fused = global_max_fusions(g, &algos);
    // Scratch memory per node (live only while the node runs), from the kernels' contracts.
    let mut scratch: Vec<usize> = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| match (&n.op, &algos[i]) {
            (Op::Conv(c), Some((ConvAlgo::Winograd(t), _))) => {
                winograd::scratch_len(&conv_params(g, i, c), *t)
            }
            (Op::Conv(c), Some((ConvAlgo::Pattern, _))) => kpat::scratch_len(&conv_params(g, i, c)),
            (Op::Conv(c), _) if mode == Scratch::Least => conv_params(g, i, c).min_scratch_len(),
            (Op::Conv(c), _) => conv_params(g, i, c).scratch_len(),
            _ => 0,
        })
        .collect();
    // A fused conv runs in its pool's step, with its scratch.
    for (i, &f) in fused.iter().enumerate() {
        if f {
            let p = match &g.nodes[i].op {
                Op::Conv(c) => conv_params(g, i, c),
                _ => unreachable!("only convs fuse"),
            };
            scratch[i] = 0;
            scratch[i + 1] = if mode == Scratch::Fast {
                p.global_max_scratch_len()
            } else {
                p.global_max_min_scratch_len()
            };
        }
    }
    let storage = arena::assign(g, &scratch, &fused);
    // The fused conv of the step being planned: (params, input, weight, bias), for the pool.
    let mut pending: Option<(ConvParams, BufRef, usize, usize)> = None;
    let mut steps = Vec::new();
    let mut pattern_libs: Vec<Vec<u16>> = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if i == 0 {
            continue;
        }
        let out = storage.value[i];
        let mut ins: Vec<BufRef> = n.inputs.iter().map(|&j| storage.value[j]).collect();
        if matches!(n.op, Op::Add) {
            // In place: the operand that shares the output buffer must be consumed first.
            if let Some(pos) = ins.iter().position(|b| *b == out) {
                ins.swap(0, pos);
            }
        }
        let in_shape = |k: usize| g.nodes[n.inputs[k]].shape;
        let s = n.shape;
        let mut kernels = Vec::new();
        let mut algo = "-";
        let mut why = String::new();
        match &n.op {
            Op::Input => {}
            Op::Conv(c) => {
                let p = conv_params(g, i, c);
                let (a, reason) = algos[i]
                    .clone()
                    .unwrap_or((ConvAlgo::Direct, String::new()));
                algo = a.name();
                why = reason;
                let assigned = c.prune.as_ref().and_then(|lp| lp.assigned.as_ref());
                let mut pattern = None;
                let (packed, packed_ok) = match (a, assigned) {
                    (ConvAlgo::Pattern, Some(asg)) => {
                        let r = kpat::pattern_params(&p, &asg.masks, &asg.assign).and_then(|pp| {
                            let mut packed = vec![0.0f32; pp.packed_len()];
                            kpat::pack_pattern_weights(
                                &p,
                                &asg.masks,
                                &c.weight.data,
                                &asg.assign,
                                &mut packed,
                            )
                            .map(|pp| (pp, packed))
                        });
                        match r {
                            Ok((pp, packed)) => {
                                let lib = match pattern_libs.iter().position(|l| *l == asg.masks) {
                                    Some(l) => l,
                                    None => {
                                        pattern_libs.push(asg.masks.clone());
                                        pattern_libs.len() - 1
                                    }
                                };
                                pattern = Some((pp, lib));
                                (packed, Ok(()))
                            }
                            Err(e) => (Vec::new(), Err(e)),
                        }
                    }
                    (ConvAlgo::Winograd(t), _) => {
                        let mut packed = vec![0.0f32; winograd::packed_weight_len(&p, t)];
                        let r = winograd::pack_weights(&p, t, &c.weight.data, &mut packed);
                        (packed, r)
                    }
                    (_, _) if fused[i] => {
                        let mut packed = vec![0.0f32; p.global_max_packed_len()];
                        let r = neulens_kernels::conv::pack_global_max_weights(
                            &p,
                            &c.weight.data,
                            &mut packed,
                        );
                        (packed, r)
                    }
                    (_, _) => {
                        let mut packed = vec![0.0f32; p.packed_weight_len()];
                        let r = neulens_kernels::conv::pack_conv_weights(
                            &p,
                            &c.weight.data,
                            &mut packed,
                        );
                        (packed, r)
                    }
                };
                if let Err(e) = packed_ok {
                    diags.push(
                        Diagnostic::new(
                            &g.file,
                            n.loc,
                            format!("internal error packing weights: {e:?}"),
                        )
                        .layer(&n.name),
                    );
                }
                let weight = blob.push(&packed);
                let bias = match &c.bias {
                    Some(b) => blob.push(&b.data),
                    None => blob.push(&vec![0.0; s.c]),
                };
                if fused[i] {
                    why = format!(
                        "fused with the global max pool `{}`: the map is reduced in registers, never stored",
                        g.nodes[i + 1].name
                    );
                    pending = Some((p, ins[0], weight, bias));
                } else {
                    kernels.push(match (a, pattern) {
                        (ConvAlgo::Pattern, Some((pp, library))) => Kernel::Pattern {
                            p: pp,
                            library,
                            input: ins[0],
                            weight,
                            bias,
                            output: out,
                            scratch: storage.scratch[i],
                        },
                        (ConvAlgo::Winograd(tile), _) => Kernel::Winograd {
                            p,
                            tile,
                            input: ins[0],
                            weight,
                            bias,
                            output: out,
                            scratch: storage.scratch[i],
                        },
                        (_, _) => Kernel::Conv {
                            p,
                            algo: a,
                            input: ins[0],
                            weight,
                            bias,
                            output: out,
                            scratch: storage.scratch[i],
                        },
                    });
                }
            }
            Op::MaxPool(_) if pending.is_some() => {
                let Some((p, input, weight, bias)) = pending.take() else {
                    unreachable!()
                };
                algo = "fused";
                why = format!("computed by `{}`", g.nodes[i - 1].name);
                kernels.push(Kernel::ConvGlobalMax {
                    p,
                    input,
                    weight,
                    bias,
                    output: out,
                    scratch: storage.scratch[i],
                });
            }
            Op::MaxPool(pl) | Op::AvgPool(pl) => {
                let is = in_shape(0);
                let p = PoolParams {
                    c: is.c,
                    h_in: is.h,
                    w_in: is.w,
                    h_out: s.h,
                    w_out: s.w,
                    kh: pl.kernel[0],
                    kw: pl.kernel[1],
                    sh: pl.stride[0],
                    sw: pl.stride[1],
                    pad_top: pl.pad.top,
                    pad_left: pl.pad.left,
                    count_include_pad: pl.count_include_pad,
                    act: kact(n.act),
                };
                algo = "direct";
                kernels.push(if matches!(n.op, Op::MaxPool(_)) {
                    Kernel::MaxPool {
                        p,
                        input: ins[0],
                        output: out,
                    }
                } else {
                    Kernel::AvgPool {
                        p,
                        input: ins[0],
                        output: out,
                    }
                });
            }
            Op::GlobalAvgPool => {
                let is = in_shape(0);
                algo = "direct";
                kernels.push(Kernel::GlobalAvgPool {
                    c: is.c,
                    hw: is.h * is.w,
                    act: n.act,
                    input: ins[0],
                    output: out,
                });
            }
            Op::Dense(d) => {
                let p = DenseParams {
                    in_features: in_shape(0).len(),
                    out_features: d.out_features,
                    act: kact(n.act),
                };
                algo = "gemv";
                let mut packed = vec![0.0f32; p.packed_weight_len()];
                if let Err(e) =
                    neulens_kernels::dense::pack_dense_weights(&p, &d.weight.data, &mut packed)
                {
                    diags.push(
                        Diagnostic::new(
                            &g.file,
                            n.loc,
                            format!("internal error packing weights: {e:?}"),
                        )
                        .layer(&n.name),
                    );
                }
                let weight = blob.push(&packed);
                let bias = match &d.bias {
                    Some(b) => blob.push(&b.data),
                    None => blob.push(&vec![0.0; d.out_features]),
                };
                kernels.push(Kernel::Dense {
                    p,
                    input: ins[0],
                    weight,
                    bias,
                    output: out,
                });
            }
            Op::Add => {
                algo = "eltwise";
                // out = in0 + in1, then out += in_k; the activation goes on the last sum only.
                let last = ins.len() - 1;
                let mut acc = ins[0];
                for (k, b) in ins.iter().enumerate().skip(1) {
                    let act = if k == last { n.act } else { Act::None };
                    kernels.push(Kernel::Add {
                        a: acc,
                        b: *b,
                        output: out,
                        act,
                    });
                    acc = out;
                }
            }
            Op::Affine(a) => {
                algo = "eltwise";
                let scale = blob.push(&a.scale);
                let shift = blob.push(&a.shift);
                kernels.push(Kernel::Affine {
                    c: s.c,
                    hw: s.h * s.w,
                    input: ins[0],
                    scale,
                    shift,
                    output: out,
                    act: n.act,
                });
            }
            Op::Concat => {
                algo = "copy";
                let mut off = 0;
                for b in &ins {
                    if b.storage != out.storage || b.start() != out.start() + off {
                        kernels.push(Kernel::Copy {
                            src: *b,
                            dst: out.sub(off, b.len),
                        });
                    }
                    off += b.len;
                }
            }
            Op::Flatten => {
                algo = "view";
                if out != ins[0] {
                    kernels.push(Kernel::Copy {
                        src: ins[0],
                        dst: out,
                    });
                }
            }
            Op::Crop { top, left } => {
                algo = "copy";
                let is = in_shape(0);
                kernels.push(Kernel::Window {
                    p: neulens_kernels::eltwise::Window {
                        c: s.c,
                        h: s.h,
                        w: s.w,
                        src_h: is.h,
                        src_w: is.w,
                        src_y: *top,
                        src_x: *left,
                        dst_h: s.h,
                        dst_w: s.w,
                        dst_y: 0,
                        dst_x: 0,
                    },
                    src: ins[0],
                    dst: out,
                });
            }
            Op::Softmax => {
                algo = "eltwise";
                kernels.push(Kernel::Softmax {
                    input: ins[0],
                    output: out,
                });
            }
            Op::BatchNorm(_) => {
                diags.push(
                    Diagnostic::new(
                        &g.file,
                        n.loc,
                        "internal error: batchnorm reached the planner",
                    )
                    .layer(&n.name),
                );
            }
        }
        let in_place = ins.contains(&out) && !matches!(n.op, Op::Flatten);
        // A fused conv's weights count in its own step, not in the pool's.
        let weight_bytes = match (&pending, kernels.first()) {
            (Some((p, ..)), _) => (p.global_max_packed_len() + p.c_out) * 4,
            (None, Some(Kernel::ConvGlobalMax { .. })) => 0,
            _ => kernels
                .iter()
                .flat_map(Kernel::weight_ranges)
                .map(|(_, l)| l * 4)
                .sum(),
        };
        steps.push(Step {
            name: n.name.clone(),
            op: n.op.name(),
            algo,
            why,
            shape: s,
            macs: node_macs(g, i),
            weight_bytes,
            output: out,
            in_place,
            kernels,
        });
    }
    // The output value may live in the input (e.g. a model that only flattens): copy it.
    let final_buf = storage.value[g.output];
    if final_buf.storage != Storage::Output {
        let dst = BufRef {
            storage: Storage::Output,
            offset: 0,
            len: final_buf.len,
        };
        if let Some(last) = steps.last_mut() {
            last.kernels.push(Kernel::Copy {
                src: final_buf,
                dst,
            });
        }
    }
    let macs = steps.iter().map(|s| s.macs).sum();
    let arena_budget = g.arena_budget.map(|(b, _)| b);
    if let Some((budget, loc)) = g.arena_budget {
        let need = storage.arena_len as u64 * 4;
        if need > budget {
            diags.push(
                Diagnostic::new(
                    &g.file,
                    loc,
                    "the plan needs a larger arena than the budget allows",
                )
                .expected(format!("at most {budget} bytes"))
                .found(format!(
                    "{need} bytes (largest live set: {})",
                    storage.peak_layer(g)
                )),
            );
        }
    }
    diags.finish(Plan {
        name: g.name.clone(),
        input: g.input_shape(),
        output: g.output_shape(),
        steps,
        arena_len: storage.arena_len,
        weights: Vec::new(),
        macs,
        arena_budget,
        pattern_libs,
    })
}

/// Per node: whether conv node `i` is fused with the global max pool at `i + 1`
/// ([`Kernel::ConvGlobalMax`]): the conv runs direct (not Winograd, pattern-sparse or
/// depthwise) with groups 1, the pool is its only reader and it is not the model output, and
/// the pool takes the maximum over the whole map (unpadded window of the map's size, no
/// activation of its own). The learned micro-flow gate (conv → global max → dense) is the case
/// this is for: its 16-channel map is never stored.
pub fn global_max_fusions(g: &Graph, algos: &[Option<(ConvAlgo, String)>]) -> Vec<bool> {
    let consumers = g.consumers();
    let mut fused = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        let Op::Conv(c) = &n.op else { continue };
        let direct = matches!(
            algos.get(i),
            Some(Some((ConvAlgo::Direct | ConvAlgo::Pointwise, _)))
        );
        let Some(next) = g.nodes.get(i + 1) else {
            continue;
        };
        let whole_map = match &next.op {
            Op::MaxPool(pl) => {
                pl.kernel == [n.shape.h, n.shape.w]
                    && pl.pad == crate::graph::Pad::default()
                    && next.shape.h == 1
                    && next.shape.w == 1
            }
            _ => false,
        };
        fused[i] = direct
            && whole_map
            && next.act == Act::None
            && consumers[i] == [i + 1]
            && i != g.output
            && conv_params(g, i, c).global_max_supported();
    }
    fused
}

/// The kernel parameters of conv node `i`.
pub(crate) fn conv_params(g: &Graph, i: usize, c: &crate::graph::ConvOp) -> ConvParams {
    let n = &g.nodes[i];
    let is = g.nodes[n.inputs[0]].shape;
    ConvParams {
        c_in: is.c,
        h_in: is.h,
        w_in: is.w,
        c_out: n.shape.c,
        h_out: n.shape.h,
        w_out: n.shape.w,
        kh: c.kernel[0],
        kw: c.kernel[1],
        sh: c.stride[0],
        sw: c.stride[1],
        pad_top: c.pad.top,
        pad_left: c.pad.left,
        groups: c.groups,
        act: kact(n.act),
    }
}

/// The algorithm rule: 1×1/stride 1/unpadded → GEMM; depthwise → depthwise; 3×3 stride-1
/// ungrouped → the cheapest of direct and Winograd F2/F4/F6 by [`conv_cost`]; otherwise direct.
/// `algo: direct` forces the general direct kernel, `algo: winogradN` forces F(N,3) (the graph
/// stage has already rejected ineligible convs; if one gets here anyway it runs direct).
pub fn choose_conv_algo(p: &ConvParams, req: AlgoRequest) -> ConvAlgo {
    choose_conv_algo_why(p, req).0
}

/// [`choose_conv_algo`] plus a one-line reason for the build report.
pub fn choose_conv_algo_why(p: &ConvParams, req: AlgoRequest) -> (ConvAlgo, String) {
    choose_conv_algo_in(p, req, Weights::Cached)
}

/// Where a model's weights come from at each inference, for the cost model: they stay in
/// cache (small models run back to back), or they stream from memory (a model whose weights
/// are bigger than the cache, [`Weights::of_model`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    Cached,
    Streamed,
}

impl Weights {
    /// `Streamed` when the model's plain (direct) conv and dense weights exceed
    /// [`STREAMED_MODEL_BYTES`].
    pub fn of_model(g: &Graph) -> Weights {
        let floats: usize = g
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| match &n.op {
                Op::Conv(c) => conv_params(g, i, c).weight_len(),
                Op::Dense(_) => {
                    let is = g.nodes[n.inputs[0]].shape;
                    is.c * is.h * is.w * n.shape.c
                }
                _ => 0,
            })
            .sum();
        if floats * 4 > STREAMED_MODEL_BYTES {
            Weights::Streamed
        } else {
            Weights::Cached
        }
    }
}

/// [`choose_conv_algo_why`] in a model whose weights are `weights` ([`conv_cost_in`]).
pub fn choose_conv_algo_in(
    p: &ConvParams,
    req: AlgoRequest,
    weights: Weights,
) -> (ConvAlgo, String) {
    let forced = match req {
        AlgoRequest::Direct => return (ConvAlgo::Direct, "forced (algo: direct)".to_string()),
        AlgoRequest::Winograd2 => Some(WinogradTile::F2),
        AlgoRequest::Winograd4 => Some(WinogradTile::F4),
        AlgoRequest::Winograd6 => Some(WinogradTile::F6),
        // A pattern request whose layer was not pruned (see `prune::apply`) competes as dense.
        AlgoRequest::Auto | AlgoRequest::Pattern => None,
    };
    if let Some(t) = forced {
        if winograd::supported(p) {
            let why = format!(
                "forced (algo: winograd{}); {:.1}× fewer MACs",
                t.m(),
                p.macs() as f64 / winograd::transformed_macs(p, t) as f64
            );
            return (ConvAlgo::Winograd(t), why);
        }
        return (ConvAlgo::Direct, "winograd not applicable".to_string());
    }
    if winograd::supported(p) {
        let direct = conv_cost_in(p, ConvAlgo::Direct, weights);
        let mut best = (ConvAlgo::Direct, direct);
        for t in WinogradTile::ALL {
            let c = conv_cost_in(p, ConvAlgo::Winograd(t), weights);
            if c < best.1 {
                best = (ConvAlgo::Winograd(t), c);
            }
        }
        let why = match best.0 {
            ConvAlgo::Winograd(t) => format!(
                "{:.1}× fewer MACs, est. {:.1}× faster than direct",
                p.macs() as f64 / winograd::transformed_macs(p, t) as f64,
                direct / best.1
            ),
            _ if p.channel_vectorized() => {
                "cost model: direct (output channels in the lanes, for this small map) is \
                 cheapest for this shape"
                    .to_string()
            }
            _ => "cost model: direct is cheapest for this shape".to_string(),
        };
        return (best.0, why);
    }
    (choose_basic(p), String::new())
}

// The cost model of `algo: auto` for 3×3 stride-1 convs, in estimated nanoseconds. Calibrated
// with `cargo run --release -p neulens-benches --bin conv_calib` (plus `-- tiles` and
// `-- features`): direct and F2/F4/F6 timed on C1–C4, on c ∈ {8, 16, 32, 64} × maps {8, 12, 16,
// 20, 24, 32, 48} (pad 1) and on the 32→32 16–19-pixel micro-flow tile convs of
// specs/microflow_demo.yaml (padding on none or one side): 44 shapes, the best ISA (AVX-512),
// one thread, hot caches. Each algorithm is a least-squares fit of relative error.
//
// Fourteenth session (benches/calib-data/2026-11-29-zen5-vector-gather/): F(2,3) and F(4,3)
// now gather whole vectors where a tile row holds at least 6 tiles, so those shapes have their
// own transform constants ([`COST_WINO_TRANSFORM_VEC`]), set (the rest kept) to the pair whose
// picks come closest to the fastest measured on five new grid runs: mean 2.2 % slower than the
// fastest, against 2.8 % with the lane-by-lane constants on the same data. Picks that moved,
// each the fastest measured: 16→32 and 32→32 on 48×48 (digits c1 direct → F4, 84 against 90
// µs; demo b1a/b1b F6 → F4, 148 against 180), 64→64 on 12×12 (demo c4 direct → F2, 40.5
// against 44.5). And the GEMM now prefetches U, so streamed weights no longer count against
// Winograd ([`COST_STREAMED_DIRECT_WEIGHT`]): ResNet-18's layer3 runs F4 and its layer4 F2.
//
// Twelfth session: 2026-11-29 on the AMD EPYC Zen 5 guest the benchmarks of
// docs/BENCHMARKS.md have run on since the ninth session. The same shape moves by up to 15 %
// from one process to the next (C2 F(4,3) 482–591 µs, C3 F(4,3) 465–676 µs), so each time is
// the median of three `conv_calib` processes, and C1–C3 the median of three single-shape
// processes (`-- shape ...`), which agree with criterion and with the one-conv models.
// Winograd now has one transform constant per tile size: an 8×8 F(6,3) transform costs more
// per value than a 6×6 F(4,3) one; the shared constant of the previous fit made C1 pick F6
// where F4 is 14 % faster. µs measured (direct / F2 / F4 / F6) → pick:
//   C1 64→64 56×56:      971 / 836 / 653 / 756   → F4 (the previous fit: F6, +16 %)
//   C2 128→128 28×28:    978 / 665 / 591 / 544   → F6
//   C3 256→256 14×14:    912 / 760 / 523 / 1678  → F4
//   C4 512→512 7×7:      866 / 818 / 3092 / 4332 → direct (+6 %)
//   64→64 8×8:           19.8 / 19.7 / 49.3 / 90.7 → direct (+0.5 %)
//   64→64 12×12:         43.1 / 50.7 / 50.2 / 103 → direct
//   2→2 4×4:             0.2 / 0.3 / 0.6 / 1.4   → direct (with the fitted per-call term of
//                                                  the channel-vectorized kernel: F2, +100 %)
//   32→32 17×17 tile:    24.6 / 38.8 / 36.4 / 35.0 → direct
// With the nine tiny convs of [`COST_CVEC_CALL`], over all 53 shapes the pick is 0.18 % slower
// than the fastest on average, worst 6 % (the previous constants on the 44 grid shapes: 1.2 %,
// worst 25 %). Residuals: direct −22 to +12 %, Winograd ±43 % (8–12 px maps; ±25 % from 16 px
// up), channel-vectorized −37 to +69 %.
//
// The previous fit (2026-11-28, Sapphire Rapids-class Xeon guest, one transform constant 0.36)
// measured there: C1 1250 / 1163 / 741 / 800, C2 1232 / 772 / 714 / 609, where this fit also
// picks the fastest (F4, F6). Full tables in docs/BENCHMARKS.md, "The `algo: auto` cost
// model". Weights that stream from memory inside a whole model are [`conv_cost_in`]'s term
// (measured on the Xeon, not refit).

/// ns per MAC of the direct kernel (≈ 240 GFLOP/s on interior pixels of big maps).
pub const COST_DIRECT_MAC: f64 = 0.00847;
/// Extra ns per MAC of an output pixel whose window overlaps the padding (the direct kernel's
/// border path, and the grid fill and partial vectors of small maps).
pub const COST_DIRECT_BORDER_MAC: f64 = 0.0044;
/// ns per MAC (output channels rounded up to 16) of the direct kernel when it runs with the
/// channels in the lanes (`ConvParams::channel_vectorized`, small maps), and ns per call:
/// `conv_calib`, 2026-11-29: the slope is the grid's fit; the per-call term is set to 150 ns,
/// not the grid's fitted 569 ns (an artifact of its 8-channel shapes, which made every tiny conv
/// Winograd, 2× slower and with Winograd scratch in the arena): nine tiny convs (1, 2, 4
/// channels on 4–8 px) measure 0.1–0.6 µs direct and pick direct with it. C4 (7×7, 512→512)
/// 866 µs (est. 953), 64→64 12×12 43.1 µs (est. 43.8), 8→8 8×8 1.0 µs (est. 0.8), 2→2 4×4
/// 0.2 µs (est. 0.2); residuals −37 to +69 % (the tiny convs, timed to 0.1 µs).
pub const COST_CVEC_MAC: f64 = 0.00824;
pub const COST_CVEC_CALL: f64 = 150.0;
/// ns per MAC of the Winograd per-position GEMMs, counting the tiles of each block rounded up to
/// 16 (the AVX-512 lanes: padded tiles cost as much as real ones).
pub const COST_WINO_GEMM_MAC: f64 = 0.0107;
/// ns per transformed value (input `tiles × positions × c_in` plus output
/// `tiles × positions × c_out`): gather, transform, scatter; for F2, F4, F6 (see
/// [`wino_transform_cost`]): the bigger the tile, the more operations per transformed value.
pub const COST_WINO_TRANSFORM: [f64; 3] = [0.192, 0.266, 0.353];
/// ns per f32 of transformed weights U streamed from memory (U is read once per tile block),
/// counting at most [`COST_WINO_WEIGHT_CAP`] floats per block.
pub const COST_WINO_WEIGHT: f64 = 0.0856;
/// Floats of U per tile block that [`COST_WINO_WEIGHT`] counts: 256 Ki (1 MiB, the L2 of the
/// Zen 5 the constants are fitted on). The GEMM prefetches U 8 KiB ahead (fourteenth session),
/// so a U bigger than the L2 streams from the L3 behind the GEMM's FMAs instead of adding to
/// them. Fifteenth session, on `benches/calib-data/2026-11-29-zen5-vector-gather`: C4 (512→512
/// 7×7) F(2,3), 4.2 M floats of U, measures 760–804 µs, estimated 791 with the cap and 1128
/// without (so it stayed direct, 884–900 µs); C3 F(4,3) 489–523 µs, estimated 505 (684 without).
/// Over the 44 calibration shapes the picks go from 2.2 % to 2.0 % slower than the fastest on
/// average; only C4's pick moves. (Pricing Winograd at max(GEMM, U) instead, with no cap, made
/// them 5.3 % slower: on small shapes the U term also stands for per-block costs.)
pub const COST_WINO_WEIGHT_CAP: usize = 256 * 1024;
/// ns per Winograd call (block setup, staging).
pub const COST_WINO_CALL: f64 = 303.0;

/// ns per transformed value of F2 and F4 when the tiles are gathered and scattered as whole
/// vectors (`winograd::gathers_vectors` with the 16 lanes of AVX-512, the ISA the constants are
/// fitted on: a tile row of at least 6 tiles); [`COST_WINO_TRANSFORM`] otherwise.
pub const COST_WINO_TRANSFORM_VEC: [f64; 2] = [0.075, 0.22];
/// The lanes the cost model's constants were measured with (AVX-512).
const COST_LANES: usize = 16;

/// ns per transformed value of `p` with tile size `t`: [`COST_WINO_TRANSFORM_VEC`] where the
/// kernel gathers whole vectors, else [`COST_WINO_TRANSFORM`].
pub const fn wino_transform_cost(p: &ConvParams, t: WinogradTile) -> f64 {
    let vec = winograd::gathers_vectors(p, t, COST_LANES);
    match t {
        WinogradTile::F2 if vec => COST_WINO_TRANSFORM_VEC[0],
        WinogradTile::F4 if vec => COST_WINO_TRANSFORM_VEC[1],
        WinogradTile::F2 => COST_WINO_TRANSFORM[0],
        WinogradTile::F4 => COST_WINO_TRANSFORM[1],
        WinogradTile::F6 => COST_WINO_TRANSFORM[2],
    }
}

/// Model weights (bytes, plain conv and dense weights) above which every inference streams them
/// from memory: 16 MiB, between the two points measured here. ResNet-18's 47 MB (104 MB with
/// its Winograd weights) do not stay cached from one inference to the next (its layers run
/// 1.5–2.6× slower inside the model than alone); one conv of 9.4 MB (C4, 16.8 MB as Winograd
/// F2) run back to back keeps its hot-cache speed, and so does ResNet-8 (0.3 MB).
pub const STREAMED_MODEL_BYTES: usize = 16 << 20;
/// Extra ns per f32 of the direct kernel's weights when the model's weights stream from memory:
/// 0.07–0.11 on the Zen 5 guest (ResNet-18's layer3/layer4 direct inside the model against
/// alone, `ort_twin profile`; it prefetches them 2 KiB ahead, and 8 KiB did not help), 0.16 on
/// the Xeon. Winograd has no such term: its GEMM prefetches U 8 KiB ahead
/// (`winograd::U_PF`), and ResNet-18's F(2,3)/F(4,3) layers take no longer inside the model
/// than alone (layer3 F4 0.44–0.47 against 0.50–0.53 ms, layer4 F2 0.68–0.74 against
/// 0.74–0.80; without the prefetch it cost 0.46–0.48 ns per U float on the Xeon and kept layer3
/// and layer4 direct). docs/BENCHMARKS.md, fourteenth session.
pub const COST_STREAMED_DIRECT_WEIGHT: f64 = 0.09;

/// [`conv_cost`] plus, when the model's weights stream from memory, the time the direct kernel
/// waits for this layer's weights (see [`COST_STREAMED_DIRECT_WEIGHT`]).
pub fn conv_cost_in(p: &ConvParams, algo: ConvAlgo, weights: Weights) -> f64 {
    let hot = conv_cost(p, algo);
    match algo {
        ConvAlgo::Direct if weights == Weights::Streamed => {
            hot + p.weight_len() as f64 * COST_STREAMED_DIRECT_WEIGHT
        }
        _ => hot,
    }
}

/// Fraction of output pixels whose window overlaps the padding.
fn border_fraction(p: &ConvParams) -> f64 {
    let inner = |o: usize, i: usize, k: usize, s: usize, pad: usize| -> usize {
        // Outputs `x` with `x * s >= pad` and `x * s + k <= pad + i`.
        let lo = pad.div_ceil(s);
        let hi = if pad + i >= k {
            ((pad + i - k) / s + 1).min(o)
        } else {
            0
        };
        hi.saturating_sub(lo)
    };
    let (h, w) = (p.h_out.max(1), p.w_out.max(1));
    let ih = inner(h, p.h_in, p.kh, p.sh.max(1), p.pad_top);
    let iw = inner(w, p.w_in, p.kw, p.sw.max(1), p.pad_left);
    1.0 - (ih * iw) as f64 / (h * w) as f64
}

/// Estimated ns of a conv with `algo` (see the constants above): direct
/// `MACs × (COST_DIRECT_MAC + border fraction × COST_DIRECT_BORDER_MAC)`;
/// Winograd `padded GEMM MACs × COST_WINO_GEMM_MAC + transformed values × wino_transform_cost +
/// min(U floats, COST_WINO_WEIGHT_CAP) × tile blocks × COST_WINO_WEIGHT + COST_WINO_CALL`, or
/// infinite when a tile block of the transformed input does not fit the cache budget
/// (`winograd::block_fits_cache`).
pub fn conv_cost(p: &ConvParams, algo: ConvAlgo) -> f64 {
    match algo {
        ConvAlgo::Winograd(t) => {
            if !winograd::block_fits_cache(p, t) {
                return f64::INFINITY;
            }
            let tiles = p.h_out.div_ceil(t.m()) * p.w_out.div_ceil(t.m());
            let nb = winograd::tiles_per_block(p, t);
            let blocks = tiles.div_ceil(nb);
            let padded = tiles / nb * nb + (tiles % nb).div_ceil(16) * 16;
            let pos = t.positions() as f64;
            let gemm = padded as f64 * pos * (p.c_in * p.c_out) as f64;
            let values = tiles as f64 * pos * (p.c_in + p.c_out) as f64;
            let u = winograd::packed_weight_len(p, t).min(COST_WINO_WEIGHT_CAP);
            let weights = u as f64 * blocks as f64;
            gemm * COST_WINO_GEMM_MAC
                + values * wino_transform_cost(p, t)
                + weights * COST_WINO_WEIGHT
                + COST_WINO_CALL
        }
        ConvAlgo::Direct if p.channel_vectorized() => {
            // Output channels padded to whole 16-channel blocks.
            let padded = p.macs() as f64 * (p.c_out.div_ceil(16) * 16) as f64 / p.c_out as f64;
            padded * COST_CVEC_MAC + COST_CVEC_CALL
        }
        _ => {
            let macs = p.macs() as f64;
            macs * (COST_DIRECT_MAC + border_fraction(p) * COST_DIRECT_BORDER_MAC)
        }
    }
}

/// ns per MAC of the stride-1 pattern-sparse kernel (4 MACs per kept kernel and output pixel).
/// Fifteenth session, on the Zen 5 the other constants are fitted on: C1–C4 with 8 patterns
/// and connectivity 0.5, two criterion runs (`cargo bench --bench kernels --
/// 'pattern/.*/(pattern|direct)/avx512f'`), 0.0102–0.0137 ns per pattern MAC (C2 the lowest,
/// C1 the highest), 1.2–1.6 × [`COST_DIRECT_MAC`]. The eighth session's 0.020 (measured on the
/// Xeon, before the flat tiles, shared padding column and 256-filter blocks) priced C3's pattern
/// layer (279–286 µs) at 518 µs, above its F(4,3) estimate (505 µs, measured 489–523), so `algo:
/// auto` would have kept a pruned C3 dense, at 1.8× the time.
pub const COST_PATTERN_MAC: f64 = 0.0117;

/// [`COST_PATTERN_MAC`] at stride 2: the same runs on ResNet-18's layer2.0.conv1 (64→128,
/// 56×56 → 28×28) and layer4.0.conv1 (256→512, 14×14 → 7×7): 0.0140–0.0146 ns per pattern MAC
/// (the stride-2 grid has four phase planes, and half the output pixels per input row).
pub const COST_PATTERN_MAC_S2: f64 = 0.0143;

/// Estimated ns of a pattern-sparse conv: `kept kernels × 4 × output pixels ×`
/// [`COST_PATTERN_MAC`] (or [`COST_PATTERN_MAC_S2`] at stride 2). `algo: auto` prunes a layer
/// when this is below [`conv_cost`] of the cheapest dense algorithm.
pub fn pattern_cost(p: &PatternParams) -> f64 {
    let per_mac = if p.conv.sh == 2 {
        COST_PATTERN_MAC_S2
    } else {
        COST_PATTERN_MAC
    };
    p.macs() as f64 * per_mac
}

/// The non-Winograd rule: 1×1 GEMM, depthwise, or direct.
fn choose_basic(p: &ConvParams) -> ConvAlgo {
    if p.groups == 1
        && p.kh == 1
        && p.kw == 1
        && p.sh == 1
        && p.sw == 1
        && p.pad_top == 0
        && p.pad_left == 0
    {
        ConvAlgo::Pointwise
    } else if p.groups == p.c_in && p.groups > 1 {
        ConvAlgo::Depthwise
    } else {
        ConvAlgo::Direct
    }
}

fn kact(a: Act) -> neulens_kernels::Act {
    match a {
        Act::None => neulens_kernels::Act::None,
        Act::Relu => neulens_kernels::Act::Relu,
        Act::Relu6 => neulens_kernels::Act::Relu6,
    }
}

/// The weight blob of a model, shared by all its plans (the dense model, micro-flows, gate,
/// tail): identical tensors are stored once (micro-flow levels share classes' weights, the tail
/// shares the dense model's).
#[derive(Default, Debug)]
pub struct Blob {
    pub data: Vec<f32>,
    /// Content hash → offsets of tensors with that hash.
    index: std::collections::HashMap<u64, Vec<usize>>,
    /// Length of the tensor at each offset.
    lens: std::collections::HashMap<usize, usize>,
}

impl Blob {
    /// Stores `v` at the next aligned offset (or finds an identical tensor already stored) and
    /// returns its offset.
    pub fn push(&mut self, v: &[f32]) -> usize {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        v.len().hash(&mut h);
        for x in v {
            x.to_bits().hash(&mut h);
        }
        let key = h.finish();
        if let Some(offs) = self.index.get(&key) {
            for &o in offs {
                let same = self.lens.get(&o) == Some(&v.len())
                    && self.data[o..o + v.len()]
                        .iter()
                        .zip(v)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                if same {
                    return o;
                }
            }
        }
        let off = self.data.len().div_ceil(WEIGHT_ALIGN) * WEIGHT_ALIGN;
        self.data.resize(off, 0.0);
        self.data.extend_from_slice(v);
        self.index.entry(key).or_default().push(off);
        self.lens.insert(off, v.len());
        off
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Loc;
    use crate::graph::{Pad, Shape};
    use crate::reference::tests::{conv_op, graph, input, node};

    fn conv3(out: usize, cin: usize) -> Op {
        conv_op(
            out,
            [3, 3],
            [1, 1],
            Pad {
                top: 1,
                left: 1,
                bottom: 1,
                right: 1,
            },
            1,
            vec![0.1; out * cin * 9],
            None,
            cin,
        )
    }

    /// input → c1 → c2 → add(c2, c1) → c3 → gap → fc: a residual block.
    fn residual() -> Graph {
        let s = Shape::new(4, 6, 6);
        graph(vec![
            input(Shape::new(2, 6, 6)),
            node("c1", conv3(4, 2), vec![0], s, Act::Relu),
            node("c2", conv3(4, 4), vec![1], s, Act::None),
            node("r", Op::Add, vec![2, 1], s, Act::Relu),
            node("c3", conv3(4, 4), vec![3], s, Act::None),
            node(
                "gap",
                Op::GlobalAvgPool,
                vec![4],
                Shape::new(4, 1, 1),
                Act::None,
            ),
            node("sm", Op::Softmax, vec![5], Shape::new(4, 1, 1), Act::None),
        ])
    }

    /// input 2×11×11 → c0 (3×3 pad 1) → g (3×3 stride 2, unpadded, 16 ch) → a max pool with
    /// kernel `k`, padding `pad` and activation `pool_act` → fc; `extra` adds a second reader of
    /// `g`'s map (a dense layer on it, summed with fc).
    fn gated(k: usize, pad: usize, pool_act: Act, extra: bool) -> Graph {
        let (m, mo) = (Shape::new(4, 11, 11), Shape::new(16, 5, 5));
        let po = (5 + 2 * pad - k) / k + 1;
        let mut nodes = vec![
            input(Shape::new(2, 11, 11)),
            node("c0", conv3(4, 2), vec![0], m, Act::Relu),
            node(
                "g",
                conv_op(
                    16,
                    [3, 3],
                    [2, 2],
                    Pad::default(),
                    1,
                    vec![0.01; 16 * 4 * 9],
                    None,
                    4,
                ),
                vec![1],
                mo,
                Act::Relu,
            ),
            node(
                "gmp",
                Op::MaxPool(crate::graph::PoolOp {
                    kernel: [k, k],
                    stride: [k, k],
                    pad: Pad {
                        top: pad,
                        left: pad,
                        bottom: pad,
                        right: pad,
                    },
                    count_include_pad: false,
                }),
                vec![2],
                Shape::new(16, po, po),
                pool_act,
            ),
        ];
        let fc = |name: &str, from: usize, n: usize| {
            node(
                name,
                Op::Dense(crate::graph::DenseOp {
                    out_features: 3,
                    weight: crate::graph::Tensor {
                        shape: vec![3, n],
                        data: vec![0.5; 3 * n],
                    },
                    bias: None,
                }),
                vec![from],
                Shape::new(3, 1, 1),
                Act::None,
            )
        };
        nodes.push(fc("fc", 3, 16 * po * po));
        if extra {
            nodes.push(fc("fc2", 2, mo.len()));
            nodes.push(node(
                "sum",
                Op::Add,
                vec![4, 5],
                Shape::new(3, 1, 1),
                Act::None,
            ));
        }
        graph(nodes)
    }

    #[test]
    fn a_conv_read_only_by_a_global_max_pool_is_fused_with_it() {
        let g = gated(5, 0, Act::None, false);
        let p = plan(&g).unwrap();
        let (conv, pool) = (&p.steps[1], &p.steps[2]);
        assert_eq!((conv.name.as_str(), pool.name.as_str()), ("g", "gmp"));
        assert!(conv.kernels.is_empty(), "{:?}", conv.kernels);
        assert_eq!(conv.output.len, 0, "the fused map is not stored");
        assert!(conv.weight_bytes > 0 && pool.weight_bytes == 0);
        assert!(
            conv.why.contains("fused with the global max pool `gmp`"),
            "{}",
            conv.why
        );
        let [Kernel::ConvGlobalMax {
            p: cp,
            input,
            output,
            scratch,
            ..
        }] = pool.kernels.as_slice()
        else {
            panic!("{:?}", pool.kernels)
        };
        assert_eq!((cp.c_in, cp.c_out, cp.h_out, cp.w_out), (4, 16, 5, 5));
        assert_eq!(*input, p.steps[0].output, "reads c0's map");
        assert_eq!(output.len, 16);
        // The conv is unpadded: it reads c0's map in place, no scratch.
        assert_eq!(*scratch, None);
        // c0's map stays live through the pool's step, so the maxima never overwrite it.
        assert!(
            output.end() <= input.start() || input.end() <= output.start(),
            "{output:?} overlaps {input:?}"
        );
        // Not fused: a pool with an activation of its own, a padded or partial pool, or a
        // conv map read by another layer too.
        for (what, g) in [
            ("pool activation", gated(5, 0, Act::Relu, false)),
            ("padded pool", gated(5, 1, Act::None, false)),
            ("partial pool", gated(2, 0, Act::None, false)),
            ("second reader", gated(5, 0, Act::None, true)),
        ] {
            let p = plan(&g).unwrap();
            assert!(
                p.steps
                    .iter()
                    .flat_map(|s| &s.kernels)
                    .all(|k| !matches!(k, Kernel::ConvGlobalMax { .. })),
                "{what}: fused"
            );
            assert!(!p.steps[1].kernels.is_empty(), "{what}: conv has no call");
        }
    }

    #[test]
    fn fused_global_max_scratch_sits_in_the_pool_step() {
        // A padded conv (3×3 pad 1 on 11×11) needs the zero-padded copy as scratch.
        let mut g = gated(5, 0, Act::None, false);
        if let Op::Conv(c) = &mut g.nodes[2].op {
            c.pad = Pad {
                top: 1,
                left: 1,
                bottom: 1,
                right: 1,
            };
            c.stride = [2, 2];
        }
        g.nodes[2].shape = Shape::new(16, 6, 6);
        if let Op::MaxPool(pl) = &mut g.nodes[3].op {
            pl.kernel = [6, 6];
            pl.stride = [6, 6];
        }
        let p = plan(&g).unwrap();
        let Kernel::ConvGlobalMax {
            p: cp,
            input,
            output,
            scratch: Some(s),
            ..
        } = &p.steps[2].kernels[0]
        else {
            panic!("{:?}", p.steps[2].kernels)
        };
        assert_eq!(s.len, cp.global_max_scratch_len());
        assert!(s.len > 0);
        for b in [input, output] {
            assert!(
                b.end() <= s.start() || s.end() <= b.start(),
                "{b:?} overlaps scratch {s:?}"
            );
        }
    }

    #[test]
    fn live_buffers_never_share_arena_bytes() {
        let g = residual();
        let a = arena::assign(&g, &[], &[]);
        for x in 0..a.lens.len() {
            for y in (x + 1)..a.lens.len() {
                let (lx, ly) = (a.lifetimes[x], a.lifetimes[y]);
                if lx.0 > ly.1 || ly.0 > lx.1 {
                    continue;
                }
                let rx: Vec<_> = (0..g.nodes.len())
                    .filter(|&v| a.buffer_of[v] == x)
                    .map(|v| a.value[v])
                    .collect();
                let ry: Vec<_> = (0..g.nodes.len())
                    .filter(|&v| a.buffer_of[v] == y)
                    .map(|v| a.value[v])
                    .collect();
                for bx in &rx {
                    for by in &ry {
                        if bx.storage == Storage::Input || by.storage == Storage::Input {
                            continue;
                        }
                        let same_space = matches!(
                            (bx.storage, by.storage),
                            (Storage::Arena(_), Storage::Arena(_))
                        ) || bx.storage == by.storage;
                        if same_space {
                            assert!(
                                bx.end() <= by.start() || by.end() <= bx.start(),
                                "buffers {x} and {y} overlap: {bx:?} {by:?}"
                            );
                        }
                    }
                }
            }
        }
        // c1 is live until the add; c3 can reuse c1's (dead) bytes, so the arena holds 2 maps.
        assert_eq!(a.arena_len, 2 * 144usize.div_ceil(16) * 16);
    }

    #[test]
    fn scratch_does_not_overlap_values_live_at_its_node() {
        let g = residual();
        // c2 (node 2) asks for scratch while c1 (read later by the add) and c2's output are live.
        let a = arena::assign(&g, &[0, 0, 1000, 0, 0, 0, 0], &[]);
        let s = a.scratch[2].expect("scratch assigned");
        assert_eq!(s.len, 1000);
        for v in [1usize, 2] {
            let b = a.value[v];
            assert!(
                b.end() <= s.start() || s.end() <= b.start(),
                "{b:?} overlaps scratch {s:?}"
            );
        }
        assert!(a
            .scratch
            .iter()
            .enumerate()
            .all(|(i, x)| x.is_some() == (i == 2)));
        assert!(a.arena_len >= 1000 + 2 * 144);
    }

    #[test]
    fn add_and_softmax_run_in_place() {
        let p = plan(&residual()).unwrap();
        let add = p.steps.iter().find(|s| s.name == "r").unwrap();
        assert!(add.in_place, "{add:?}");
        // gap writes the model output and softmax works on it in place.
        let sm = p.steps.last().unwrap();
        assert_eq!(sm.output.storage, Storage::Output);
        assert!(sm.in_place);
        let gap = &p.steps[p.steps.len() - 2];
        assert_eq!(gap.output.storage, Storage::Output);
        assert_eq!(p.macs, 144 * 9 * (2 + 4 + 4));
    }

    #[test]
    fn in_place_add_consumes_the_reused_operand_first() {
        // add(a, b, c) where only c dies at the add: the output reuses c, so c must be read first.
        let s = Shape::new(1, 4, 4);
        let id = || conv_op(1, [1, 1], [1, 1], Pad::default(), 1, vec![1.0], None, 1);
        let mut g = graph(vec![
            input(s),
            node("a", id(), vec![0], s, Act::None),
            node("b", id(), vec![0], s, Act::None),
            node("c", id(), vec![0], s, Act::None),
            node("sum", Op::Add, vec![1, 2, 3], s, Act::None),
            node("again", Op::Add, vec![4, 1, 2], s, Act::None),
        ]);
        g.output = 5;
        let p = plan(&g).unwrap();
        let sum = p.steps.iter().find(|s| s.name == "sum").unwrap();
        if let Kernel::Add { a, output, .. } = &sum.kernels[0] {
            assert_eq!(a, output, "the reused operand comes first");
        }
        for k in &sum.kernels[1..] {
            if let Kernel::Add { b, output, .. } = k {
                assert_ne!(b, output, "a later operand is not the output buffer");
            }
        }
    }

    #[test]
    fn arena_budget_is_enforced_with_a_clear_message() {
        let mut g = residual();
        // What the plan needs without a budget (two live 4×6×6 maps plus any kernel scratch).
        let need = plan(&g).unwrap().arena_bytes();
        assert!(need >= 2 * 144 * 4, "{need}");
        g.arena_budget = Some((
            100,
            Loc {
                line: 9,
                column: 22,
                offset: 0,
                len: 3,
            },
        ));
        let e = plan(&g).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("test.yaml:9:22"), "{msg}");
        assert!(msg.contains("expected at most 100 bytes"), "{msg}");
        // What the error reports is the least arena (kernels with their least scratch): the
        // budget holds from exactly that size on.
        let least: usize = msg
            .split("found ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no size in {msg}"));
        assert!((2 * 144 * 4..=need).contains(&least), "{least} vs {need}");
        g.arena_budget = Some((least as u64 - 1, Loc::UNKNOWN));
        assert!(plan(&g).is_err());
        g.arena_budget = Some((least as u64, Loc::UNKNOWN));
        assert!(plan(&g).is_ok());
    }

    #[test]
    fn a_tight_budget_falls_back_to_the_compact_direct_banding() {
        // A 32-channel 3×3 stride-2 conv on a 24×24 map (the digits tail's c3): the fast
        // banding keeps all 32 channels' grid rows; the compact one blocks them by 8.
        let (cin, co) = (32, 48);
        let mut g = graph(vec![
            input(Shape::new(cin, 24, 24)),
            node(
                "c",
                conv_op(
                    co,
                    [3, 3],
                    [2, 2],
                    Pad {
                        top: 1,
                        left: 1,
                        bottom: 0,
                        right: 0,
                    },
                    1,
                    vec![0.1; co * cin * 9],
                    None,
                    cin,
                ),
                vec![0],
                Shape::new(co, 12, 12),
                Act::Relu,
            ),
        ]);
        let p = match &g.nodes[1].op {
            Op::Conv(c) => conv_params(&g, 1, c),
            _ => unreachable!(),
        };
        assert!(p.min_scratch_len() < p.scratch_len(), "{p:?}");
        let scratch_of = |pl: &Plan| {
            pl.steps
                .iter()
                .flat_map(|s| &s.kernels)
                .find_map(|k| match k {
                    Kernel::Conv { scratch, .. } => Some(scratch.map_or(0, |b| b.len)),
                    _ => None,
                })
                .expect("one conv")
        };
        let fast = plan(&g).unwrap();
        assert_eq!(scratch_of(&fast), p.scratch_len());
        g.arena_budget = Some((fast.arena_bytes() as u64 - 1, Loc::UNKNOWN));
        let compact = plan(&g).unwrap();
        assert_eq!(scratch_of(&compact), p.min_scratch_len());
        let compact_bytes = compact.arena_bytes();
        assert!(compact_bytes < fast.arena_bytes());
        g.arena_budget = Some((compact_bytes as u64 - 1, Loc::UNKNOWN));
        let e = plan(&g).unwrap_err().to_string();
        assert!(e.contains(&format!("found {compact_bytes} bytes")), "{e}");
    }

    #[test]
    fn a_tight_budget_steps_winograd_down_one_layer_at_a_time() {
        // Two convs the cost model puts on Winograd, with different scratch (the second has
        // twice the input channels): a budget between "both as chosen" and "both direct" steps
        // only the larger scratch down (to a smaller-scratch tile, or direct).
        let mut g = graph(vec![
            input(Shape::new(64, 40, 40)),
            node(
                "small",
                conv3(128, 64),
                vec![0],
                Shape::new(128, 40, 40),
                Act::Relu,
            ),
            node(
                "big",
                conv3(128, 128),
                vec![1],
                Shape::new(128, 40, 40),
                Act::Relu,
            ),
        ]);
        let algos = conv_algos(&g, &[]);
        let scratch =
            |algos: &[Option<(ConvAlgo, String)>], i: usize| match (&algos[i], &g.nodes[i].op) {
                (Some((ConvAlgo::Winograd(t), _)), Op::Conv(c)) => {
                    winograd::scratch_len(&conv_params(&g, i, c), *t)
                }
                (Some((ConvAlgo::Direct, _)), _) => 0,
                (a, _) => panic!("node {i}: {a:?}"),
            };
        let (small_scratch, big_scratch) = (scratch(&algos, 1), scratch(&algos, 2));
        assert!(small_scratch > 0, "small is not Winograd: {:?}", algos[1]);
        assert!(
            big_scratch > small_scratch,
            "{big_scratch} vs {small_scratch}"
        );
        let least = |caps: &[(usize, usize)]| {
            plan_with(&g, Scratch::Least, caps, &mut Blob::default())
                .unwrap()
                .arena_bytes()
        };
        // Capping "big" below its scratch: a cheaper-in-scratch algorithm, a smaller arena.
        let capped = conv_algos(&g, &[(2, big_scratch)]);
        assert!(scratch(&capped, 2) < big_scratch, "{:?}", capped[2]);
        assert_eq!(capped[1], algos[1]);
        let (both, one, none) = (
            least(&[]),
            least(&[(2, big_scratch)]),
            least(&[(1, 1), (2, 1)]),
        );
        assert!(both > one && one > none, "{both} > {one} > {none}");
        let step = |pl: &Plan, name: &str| {
            let s = pl.steps.iter().find(|s| s.name == name).unwrap();
            (s.algo, s.why.clone())
        };

        g.arena_budget = Some((one as u64, Loc::UNKNOWN));
        let pl = plan(&g).unwrap();
        assert_eq!(pl.arena_bytes(), one);
        assert_eq!(step(&pl, "small").0, algos[1].as_ref().unwrap().0.name());
        let (a, why) = step(&pl, "big");
        assert_eq!(a, capped[2].as_ref().unwrap().0.name());
        let over = format!(
            "would need {} bytes of scratch, over the arena budget",
            big_scratch * 4
        );
        assert!(why.contains(&over), "{why}");

        // The arena with every conv direct is the least there is: that budget still plans
        // (stepping down as far as it must: here "small" keeps a smaller tile whose scratch
        // fits beside the maps), one byte less does not.
        g.arena_budget = Some((none as u64, Loc::UNKNOWN));
        let pl = plan(&g).unwrap();
        assert!(pl.arena_bytes() <= none, "{} > {none}", pl.arena_bytes());
        assert_eq!(step(&pl, "big").0, "direct");
        g.arena_budget = Some((none as u64 - 1, Loc::UNKNOWN));
        assert!(plan(&g).is_err());
    }

    #[test]
    fn winograd_is_forced_or_chosen_by_cost() {
        let p = |c: usize, hw: usize, k: usize, s: usize| ConvParams {
            c_in: c,
            h_in: hw,
            w_in: hw,
            c_out: c,
            h_out: (hw + 2 - k) / s + 1,
            w_out: (hw + 2 - k) / s + 1,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            pad_top: 1,
            pad_left: 1,
            groups: 1,
            act: neulens_kernels::Act::Relu,
        };
        // Forced tile sizes; an ineligible conv runs direct.
        let big = p(64, 56, 3, 1);
        for (req, t) in [
            (AlgoRequest::Winograd2, WinogradTile::F2),
            (AlgoRequest::Winograd4, WinogradTile::F4),
            (AlgoRequest::Winograd6, WinogradTile::F6),
        ] {
            assert_eq!(choose_conv_algo(&big, req), ConvAlgo::Winograd(t));
            assert_eq!(choose_conv_algo(&p(64, 56, 3, 2), req), ConvAlgo::Direct);
        }
        assert_eq!(
            choose_conv_algo(&big, AlgoRequest::Direct),
            ConvAlgo::Direct
        );
        // Auto (conv_calib, fourteenth session): the ResNet body convs of issue 4 go Winograd,
        // C1 and C3 F(4,3) (C1: 559 µs against F6 769), C2 F(6,3) (542; F2 517, F4 544: within
        // the noise of one another), C4 (7×7) F(2,3) (804 µs against direct 884: with U
        // counted up to COST_WINO_WEIGHT_CAP per block, fifteenth session; before, the model
        // priced its 16.8 MB of U at 1128 µs and kept it direct); a 3-channel conv and a
        // stride-2 conv stay direct.
        for (c, hw, t) in [
            (64, 56, WinogradTile::F4),
            (128, 28, WinogradTile::F6),
            (256, 14, WinogradTile::F4),
            (512, 7, WinogradTile::F2),
        ] {
            let (a, why) = choose_conv_algo_why(&p(c, hw, 3, 1), AlgoRequest::Auto);
            assert_eq!(a, ConvAlgo::Winograd(t), "{c}x{hw}");
            assert!(why.contains("fewer MACs"), "{why}");
        }
        assert_eq!(
            choose_conv_algo(&p(3, 32, 3, 1), AlgoRequest::Auto),
            ConvAlgo::Direct
        );
        assert_eq!(
            choose_conv_algo(&p(64, 56, 3, 2), AlgoRequest::Auto),
            ConvAlgo::Direct
        );
        // Small maps: 64→64 on 8×8 and 12×12 direct with the channels in the lanes (19.8 µs
        // against F2 19.7; 43.1 against F4 50.2); 32→32 on 8×8 direct fastest (5.6 against F2
        // 6.2); tiny convs (2→2 on 4×4: 0.2 µs against F2 0.3) stay direct and need no
        // Winograd scratch.
        for hw in [8, 12] {
            let (a, why) = choose_conv_algo_why(&p(64, hw, 3, 1), AlgoRequest::Auto);
            assert_eq!(a, ConvAlgo::Direct);
            assert!(why.contains("channels in the lanes"), "{why}");
        }
        for (c, hw) in [(1, 4), (2, 4), (2, 8), (4, 6)] {
            assert_eq!(
                choose_conv_algo(&p(c, hw, 3, 1), AlgoRequest::Auto),
                ConvAlgo::Direct,
                "{c}x{hw}"
            );
        }
        assert_eq!(
            choose_conv_algo(&p(32, 8, 3, 1), AlgoRequest::Auto),
            ConvAlgo::Direct
        );
        // Weights streamed from memory (a ResNet-18): Winograd's U costs no more there (the GEMM
        // prefetches it) while the direct kernel's weights do, so ResNet-18's layer3 shape
        // keeps F(4,3) and its layer4 shape, direct when cached, goes F(2,3) (in the model:
        // 0.68–0.74 ms against 1.07–1.17 direct).
        for (c, hw, t) in [(256, 14, WinogradTile::F4), (64, 56, WinogradTile::F4)] {
            let (a, why) =
                choose_conv_algo_in(&p(c, hw, 3, 1), AlgoRequest::Auto, Weights::Streamed);
            assert_eq!(a, ConvAlgo::Winograd(t), "{c}x{hw}: {why}");
        }
        assert_eq!(
            choose_conv_algo_in(&p(512, 7, 3, 1), AlgoRequest::Auto, Weights::Streamed).0,
            ConvAlgo::Winograd(WinogradTile::F2)
        );
        let q = p(256, 14, 3, 1);
        for algo in [ConvAlgo::Direct, ConvAlgo::Winograd(WinogradTile::F4)] {
            assert_eq!(conv_cost_in(&q, algo, Weights::Cached), conv_cost(&q, algo));
        }
        let (d, w) = (ConvAlgo::Direct, ConvAlgo::Winograd(WinogradTile::F4));
        assert!(conv_cost_in(&q, d, Weights::Streamed) > conv_cost(&q, d));
        assert_eq!(conv_cost_in(&q, w, Weights::Streamed), conv_cost(&q, w));
    }

    #[test]
    fn model_weights_stream_above_the_cache() {
        // ResNet-8 (0.3 MB of weights) and the one-conv C4 of the ORT comparison (9.4 MB) stay
        // cached between inferences; ResNet-18 (47 MB) does not.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (spec, want) in [
            ("specs/resnet8.yaml", Weights::Cached),
            ("specs/resnet18.yaml", Weights::Streamed),
            ("benches/compare/specs/conv_c4.yaml", Weights::Cached),
        ] {
            let path = root.join(spec);
            let text = std::fs::read_to_string(&path).unwrap();
            let loaded = crate::load::load_model(&text, spec, path.parent().unwrap())
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(Weights::of_model(&loaded.graph), want, "{spec}");
        }
    }

    #[test]
    fn direct_cost_counts_border_pixels() {
        let p = |hw: usize, pad: usize| ConvParams {
            c_in: 32,
            h_in: hw + 2 - 2 * pad,
            w_in: hw + 2 - 2 * pad,
            c_out: 32,
            h_out: hw,
            w_out: hw,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            pad_top: pad,
            pad_left: pad,
            groups: 1,
            act: neulens_kernels::Act::None,
        };
        // Padded 8×8: the 6×6 interior is border-free; unpadded: no border pixel.
        assert!((border_fraction(&p(8, 1)) - (1.0 - 36.0 / 64.0)).abs() < 1e-12);
        assert_eq!(border_fraction(&p(8, 0)), 0.0);
        // Stride 2, pad 1 on 9 → 5: outputs 1..=3 are interior on each axis.
        let s2 = ConvParams {
            h_in: 9,
            w_in: 9,
            h_out: 5,
            w_out: 5,
            sh: 2,
            sw: 2,
            ..p(8, 1)
        };
        assert!((border_fraction(&s2) - (1.0 - 9.0 / 25.0)).abs() < 1e-12);
        let (pad, nopad) = (p(18, 1), p(18, 0));
        assert!(
            conv_cost(&pad, ConvAlgo::Direct) > conv_cost(&nopad, ConvAlgo::Direct),
            "padding costs extra"
        );
    }

    #[test]
    fn winograd_kernel_gets_packed_u_and_scratch() {
        let mut g = residual();
        if let Op::Conv(c) = &mut g.nodes[2].op {
            c.algo = AlgoRequest::Winograd4;
        }
        let plan = plan(&g).unwrap();
        let st = plan.steps.iter().find(|s| s.name == "c2").unwrap();
        assert_eq!(st.algo, "winograd-f4");
        let Kernel::Winograd {
            p, tile, scratch, ..
        } = &st.kernels[0]
        else {
            panic!("{:?}", st.kernels)
        };
        assert_eq!(*tile, WinogradTile::F4);
        assert_eq!(
            scratch.map(|s| s.len),
            Some(winograd::scratch_len(p, *tile))
        );
        let (_, len) = st.kernels[0].weight_ranges()[0];
        assert_eq!(len, winograd::packed_weight_len(p, *tile));
        let report = crate::emit::report::text(&plan, "test.yaml", &[]);
        assert!(
            report.contains("winograd-f4: forced (algo: winograd4)"),
            "{report}"
        );
    }

    #[test]
    fn weights_are_aligned_in_the_blob() {
        let p = plan(&residual()).unwrap();
        for st in &p.steps {
            for k in &st.kernels {
                for (off, len) in k.weight_ranges() {
                    assert_eq!(off % WEIGHT_ALIGN, 0);
                    assert!(off + len <= p.weights.len());
                }
            }
        }
    }
}
