//! The micro-flow stage (NeuLens ARAC): splits a validated graph with a `microflows:` section into
//! ordinary graphs that the rest of the pipeline plans and emits like any model:
//!
//! - one **micro-flow** graph per (width level, tile class): the supernet (every layer the split
//!   layer depends on) run on one tile, with the leading channel slices of the shared weights;
//! - one **gate** graph per tile class (learned gate only);
//! - the **tail** graph: the layers after the split, run once on the stitched feature map.
//!
//! Tile geometry is exact, not approximate: each tile owns a `H/k × W/k` block of the split
//! layer's output, and the region every supernet layer must compute is run backwards from it
//! (kernel, stride, padding), clipped to the feature map. Zero padding therefore appears only on
//! tile sides on the image border, interior sides read real neighbour pixels, and with every tile
//! at the widest level the stitched result equals the untiled model up to float rounding. Tiles
//! whose geometry is identical (all interior tiles of a regular grid) share a *class* and
//! therefore one code path. All of this is build-time data; the emitter turns it into constants.

use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::graph::{
    node_macs, ConvOp, Gate, Graph, MicroflowCfg, Node, Op, Pad, PoolOp, Shape, Tensor,
};

/// A half-open interval of rows or columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn len(self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }
    fn hull(self, o: Span) -> Span {
        Span {
            start: self.start.min(o.start),
            end: self.end.max(o.end),
        }
    }
}

/// One tile of the grid (row-major).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Index into `Microflows::classes` (tiles of one class share code).
    pub class: usize,
    /// The image rows and columns the tile reads.
    pub in_rows: Span,
    pub in_cols: Span,
    /// The block of the split layer's output it produces.
    pub out_rows: Span,
    pub out_cols: Span,
}

/// The shape of a tile class's input (the image window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileClass {
    pub input: Shape,
}

/// The learned gate's structure (its graphs are in `Microflows::gates`).
#[derive(Clone, Debug, PartialEq)]
pub enum GateKind {
    Learned,
    /// Descending thresholds on the tile input's standard deviation.
    Energy(Vec<f64>),
    Fixed(usize),
}

/// Everything the planner and the emitter need to compile adaptive inference.
#[derive(Clone, Debug)]
pub struct Microflows {
    pub grid: usize,
    pub levels: Vec<f64>,
    pub theta: f64,
    pub window: usize,
    pub gate: GateKind,
    pub tiles: Vec<Tile>,
    pub classes: Vec<TileClass>,
    /// `[level][class]`: the supernet on one tile at one width (unlowered: batchnorm kept).
    pub flows: Vec<Vec<Graph>>,
    /// `[class]`: the learned gate on one tile (empty for other gates).
    pub gates: Vec<Graph>,
    /// The layers after the split; its input is the stitched feature map.
    pub tail: Graph,
    /// Shape of the split layer's output (= the tail's input).
    pub split_shape: Shape,
    /// The split layer's name.
    pub split_name: String,
    /// `[tile][level]`: MACs of the tile's micro-flow.
    pub tile_macs: Vec<Vec<u64>>,
    /// `[tile]`: MACs of the gate on the tile (0 without a learned gate).
    pub gate_macs: Vec<u64>,
    pub tail_macs: u64,
    /// MACs of the untiled model.
    pub dense_macs: u64,
    /// The model input's shape.
    pub image: Shape,
    /// `[level]`: (layer, channels kept) of every supernet conv, for the report.
    pub level_channels: Vec<Vec<(String, usize)>>,
}

impl Microflows {
    /// Number of width levels.
    pub fn num_levels(&self) -> usize {
        self.levels.len()
    }
}

/// Builds the micro-flow graphs of `g` (which must carry a `microflows` section). Reports every
/// infeasible request at once: a split whose feature map the grid does not divide, layers the
/// supernet cannot hold, tail layers that read inside the supernet, levels that keep no channel.
pub fn build(g: &Graph) -> Result<Option<Microflows>, Diagnostics> {
    let Some(cfg) = &g.microflows else {
        return Ok(None);
    };
    let mut diags = Diagnostics::new();
    let file = g.file.as_str();
    let n = g.nodes.len();
    let split = cfg.split;
    let split_node = &g.nodes[split];
    // The supernet: the split node and everything it depends on.
    let inside = supernet(g, split);
    if split == g.output {
        diags.push(
            Diagnostic::new(
                file,
                cfg.split_loc,
                format!(
                    "`{}` is the model output: nothing is left for the tail",
                    split_node.name
                ),
            )
            .expected("a split layer followed by the rest of the network"),
        );
    }
    for (i, node) in g.nodes.iter().enumerate() {
        if inside[i] {
            let bad = match &node.op {
                Op::Input | Op::BatchNorm(_) | Op::MaxPool(_) | Op::AvgPool(_) | Op::Add => None,
                Op::Affine(_) | Op::Crop { .. } => None,
                Op::Conv(c) => {
                    let cin = g.nodes[node.inputs[0]].shape.c;
                    (c.groups != 1 && c.groups != cin)
                        .then(|| format!("grouped conv (groups {} of {cin} channels)", c.groups))
                }
                other => Some(format!("`{}`", other.name())),
            };
            if let Some(what) = bad {
                diags.push(
                    Diagnostic::new(
                        file,
                        node.loc,
                        format!("{what} cannot be inside the micro-flow supernet (layers up to `{}`)", split_node.name),
                    )
                    .layer(&node.name)
                    .expected("conv (dense or depthwise), batchnorm, maxpool, avgpool or add before the split"),
                );
            }
        } else {
            for &j in &node.inputs {
                if inside[j] && j != split {
                    diags.push(
                        Diagnostic::new(
                            file,
                            node.loc,
                            format!(
                                "`{}` is after the micro-flow split but reads `{}` from inside the supernet",
                                node.name, g.nodes[j].name
                            ),
                        )
                        .layer(&node.name)
                        .expected(format!("tail layers read only `{}` or later layers", split_node.name)),
                    );
                }
            }
        }
    }
    let s = split_node.shape;
    let k = cfg.grid;
    if !s.h.is_multiple_of(k) || !s.w.is_multiple_of(k) {
        diags.push(
            Diagnostic::new(
                file,
                cfg.grid_loc,
                format!(
                    "the feature map after `{}` is {}×{} (H×W), which a {k}×{k} grid does not divide",
                    split_node.name, s.h, s.w
                ),
            )
            .expected(format!("a grid that divides both {} and {}", s.h, s.w))
            .found(format!("grid: {k}")),
        );
    }
    let (full, channels) = widths(g, cfg, &inside);
    for (li, &f) in cfg.levels.iter().enumerate() {
        for i in 0..n {
            let node = &g.nodes[i];
            if inside[i]
                && !full[i]
                && matches!(node.op, Op::Conv(ref c) if c.groups == 1)
                && channels[li][i] == 0
            {
                diags.push(
                    Diagnostic::new(
                        file,
                        cfg.levels_loc,
                        format!(
                            "width level {f} keeps 0 of the {} channels of `{}`",
                            node.shape.c, node.name
                        ),
                    )
                    .layer(&node.name)
                    .expected(format!(
                        "a fraction of at least {:.4}",
                        0.5 / node.shape.c as f64
                    )),
                );
            }
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }

    // Geometry of every tile, then the classes of identical geometry.
    let (th, tw) = (s.h / k, s.w / k);
    let mut tiles = Vec::with_capacity(k * k);
    // Class representatives: regions and the level-0 graph (equal graphs = identical code).
    let mut class_regions: Vec<Vec<Option<(Span, Span)>>> = Vec::new();
    let mut class_graphs: Vec<Graph> = Vec::new();
    for ty in 0..k {
        for tx in 0..k {
            let out_rows = Span {
                start: ty * th,
                end: (ty + 1) * th,
            };
            let out_cols = Span {
                start: tx * tw,
                end: (tx + 1) * tw,
            };
            let regions = regions(g, &inside, split, out_rows, out_cols);
            let graph0 = tile_graph(
                g,
                cfg,
                &inside,
                &regions,
                &channels[0],
                0,
                class_graphs.len(),
            );
            let class = match class_graphs.iter().position(|c| same_code(c, &graph0)) {
                Some(c) => c,
                None => {
                    class_regions.push(regions.clone());
                    class_graphs.push(graph0);
                    class_graphs.len() - 1
                }
            };
            let (in_rows, in_cols) = regions[0].unwrap_or((out_rows, out_cols));
            tiles.push(Tile {
                class,
                in_rows,
                in_cols,
                out_rows,
                out_cols,
            });
        }
    }
    let classes: Vec<TileClass> = class_graphs
        .iter()
        .map(|c| TileClass {
            input: c.input_shape(),
        })
        .collect();
    let mut flows: Vec<Vec<Graph>> = vec![class_graphs];
    for (li, ch) in channels.iter().enumerate().skip(1) {
        flows.push(
            class_regions
                .iter()
                .enumerate()
                .map(|(ci, r)| tile_graph(g, cfg, &inside, r, ch, li, ci))
                .collect(),
        );
    }
    let gates: Vec<Graph> = match &cfg.gate {
        Gate::Learned { conv, fc } => classes
            .iter()
            .enumerate()
            .map(|(ci, c)| gate_graph(g, cfg, conv, fc, c.input, ci))
            .collect(),
        _ => Vec::new(),
    };
    let tail = tail_graph(g, &inside, split);
    let macs = |gr: &Graph| (0..gr.nodes.len()).map(|i| node_macs(gr, i)).sum::<u64>();
    let tile_macs = tiles
        .iter()
        .map(|t| flows.iter().map(|lv| macs(&lv[t.class])).collect())
        .collect();
    let gate_macs = tiles
        .iter()
        .map(|t| gates.get(t.class).map_or(0, macs))
        .collect();
    let level_channels = channels
        .iter()
        .map(|ch| {
            (0..n)
                .filter(|&i| inside[i] && matches!(g.nodes[i].op, Op::Conv(_)))
                .map(|i| (g.nodes[i].name.clone(), ch[i]))
                .collect()
        })
        .collect();
    Ok(Some(Microflows {
        grid: k,
        levels: cfg.levels.clone(),
        theta: cfg.theta,
        window: cfg.window,
        gate: match &cfg.gate {
            Gate::Learned { .. } => GateKind::Learned,
            Gate::Energy(t) => GateKind::Energy(t.clone()),
            Gate::Fixed(l) => GateKind::Fixed(*l),
        },
        tiles,
        classes,
        flows,
        gates,
        tail_macs: macs(&tail),
        tail,
        split_shape: s,
        split_name: split_node.name.clone(),
        tile_macs,
        gate_macs,
        dense_macs: macs(g),
        image: g.input_shape(),
        level_channels,
    }))
}

/// The supernet (every node the split depends on, and the split).
fn supernet(g: &Graph, split: usize) -> Vec<bool> {
    let mut inside = vec![false; g.nodes.len()];
    inside[split] = true;
    for i in (0..=split).rev() {
        if inside[i] {
            for &j in &g.nodes[i].inputs {
                inside[j] = true;
            }
        }
    }
    inside
}

/// Which supernet values stay full width, and the width of every value at every level. An add
/// whose operands would get different widths (e.g. a depthwise multiplier against a plain conv)
/// is made full width, until consistent.
fn widths(g: &Graph, cfg: &MicroflowCfg, inside: &[bool]) -> (Vec<bool>, Vec<Vec<usize>>) {
    let mut seeds = vec![cfg.split];
    loop {
        let full = full_width(g, inside, &seeds);
        let channels: Vec<Vec<usize>> = cfg
            .levels
            .iter()
            .map(|&f| level_channels(g, inside, &full, f))
            .collect();
        let mismatched: Vec<usize> = (0..g.nodes.len())
            .filter(|&i| inside[i] && !full[i] && matches!(g.nodes[i].op, Op::Add))
            .filter(|&i| {
                channels.iter().any(|ch| {
                    let ins = &g.nodes[i].inputs;
                    ins.iter().any(|&j| ch[j] != ch[ins[0]])
                })
            })
            .collect();
        if mismatched.is_empty() {
            return (full, channels);
        }
        seeds.extend(mismatched);
    }
}

/// For `per_level_bn`: every batchnorm of the supernet with its width at each level (the graph
/// builder fetches their per-level statistics). Empty when the graph has no micro-flows.
pub fn supernet_bn_widths(g: &Graph) -> Vec<(usize, Vec<usize>)> {
    let Some(cfg) = &g.microflows else {
        return Vec::new();
    };
    if cfg.split >= g.nodes.len() {
        return Vec::new();
    }
    let inside = supernet(g, cfg.split);
    let (_, channels) = widths(g, cfg, &inside);
    (0..g.nodes.len())
        .filter(|&i| inside[i] && matches!(g.nodes[i].op, Op::BatchNorm(_)))
        .map(|i| (i, channels.iter().map(|ch| ch[i]).collect()))
        .collect()
}

/// Which supernet values keep all their channels at every level: the split layer (the tail
/// expects its full width), and through channel-preserving ops (batchnorm, pooling, add,
/// depthwise) the values they read; an add with one full-width operand makes them all full.
fn full_width(g: &Graph, inside: &[bool], seeds: &[usize]) -> Vec<bool> {
    let mut full = vec![false; g.nodes.len()];
    for &s in seeds {
        full[s] = true;
    }
    full[0] = true;
    loop {
        let mut changed = false;
        for i in (0..g.nodes.len()).rev() {
            if !inside[i] {
                continue;
            }
            let node = &g.nodes[i];
            let preserving = match &node.op {
                Op::Conv(c) => c.groups > 1,
                Op::Input => false,
                _ => true,
            };
            if !preserving {
                continue;
            }
            let any_in = matches!(node.op, Op::Add) && node.inputs.iter().any(|&j| full[j]);
            if any_in && !full[i] {
                full[i] = true;
                changed = true;
            }
            if full[i] {
                for &j in &node.inputs {
                    if !full[j] {
                        full[j] = true;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            return full;
        }
    }
}

/// Channels of every supernet value at channel fraction `f` (0 where a conv keeps nothing).
fn level_channels(g: &Graph, inside: &[bool], full: &[bool], f: f64) -> Vec<usize> {
    let mut ch = vec![0usize; g.nodes.len()];
    for (i, node) in g.nodes.iter().enumerate() {
        if !inside[i] {
            continue;
        }
        ch[i] = match &node.op {
            Op::Input => node.shape.c,
            Op::Conv(c) if c.groups > 1 => ch[node.inputs[0]] * (node.shape.c / c.groups),
            Op::Conv(_) if full[i] => node.shape.c,
            Op::Conv(_) => ((f * node.shape.c as f64).round() as usize).min(node.shape.c),
            _ => node.inputs.first().map_or(node.shape.c, |&j| ch[j]),
        };
    }
    ch
}

/// Rows and columns of node `op`'s input that the output window `out` of a sliding-window op
/// (kernel `kk`, stride `st`, top/left padding `pad`) reads, clipped to the input size `size`.
fn window_need(out: Span, kk: usize, st: usize, pad: usize, size: usize) -> Span {
    let start = (out.start * st).saturating_sub(pad);
    let end = ((out.end - 1) * st + kk).saturating_sub(pad).min(size);
    Span {
        start: start.min(end),
        end,
    }
}

/// The sliding window (kernel, stride, top pad, left pad) of a conv or pool node.
fn sliding(op: &Op) -> Option<([usize; 2], [usize; 2], Pad)> {
    match op {
        Op::Conv(c) => Some((c.kernel, c.stride, c.pad)),
        Op::MaxPool(p) | Op::AvgPool(p) => Some((p.kernel, p.stride, p.pad)),
        _ => None,
    }
}

/// The (rows, cols) every supernet value must be computed on for the split output block
/// (`rows`, `cols`), as the hull over its consumers' needs.
fn regions(
    g: &Graph,
    inside: &[bool],
    split: usize,
    rows: Span,
    cols: Span,
) -> Vec<Option<(Span, Span)>> {
    let mut r: Vec<Option<(Span, Span)>> = vec![None; g.nodes.len()];
    r[split] = Some((rows, cols));
    for i in (1..=split).rev() {
        let Some((rr, cc)) = r[i] else { continue };
        if !inside[i] {
            continue;
        }
        let node = &g.nodes[i];
        for &j in &node.inputs {
            let is = g.nodes[j].shape;
            let need = match sliding(&node.op) {
                Some((kk, st, pad)) => (
                    window_need(rr, kk[0], st[0], pad.top, is.h),
                    window_need(cc, kk[1], st[1], pad.left, is.w),
                ),
                None => (rr, cc),
            };
            r[j] = Some(match r[j] {
                Some((a, b)) => (a.hull(need.0), b.hull(need.1)),
                None => need,
            });
        }
    }
    r
}

/// Whether two tile graphs compile to the same code (everything but their names).
fn same_code(a: &Graph, b: &Graph) -> bool {
    a.nodes == b.nodes && a.output == b.output
}

/// The micro-flow graph of one tile class at one level.
fn tile_graph(
    g: &Graph,
    cfg: &MicroflowCfg,
    inside: &[bool],
    regions: &[Option<(Span, Span)>],
    ch: &[usize],
    level: usize,
    class: usize,
) -> Graph {
    let mut nodes: Vec<Node> = Vec::new();
    // Tile node index of every original node (None outside the supernet).
    let mut map: Vec<Option<usize>> = vec![None; g.nodes.len()];
    let (r0, c0) = regions[0].expect("the input is an ancestor of the split");
    nodes.push(Node {
        name: "input".into(),
        loc: g.nodes[0].loc,
        op: Op::Input,
        inputs: Vec::new(),
        shape: Shape::new(ch[0], r0.len(), c0.len()),
        act: Default::default(),
    });
    map[0] = Some(0);
    for i in 1..g.nodes.len() {
        if !inside[i] {
            continue;
        }
        let Some((rows, cols)) = regions[i] else {
            continue;
        };
        let node = &g.nodes[i];
        let out = Shape::new(ch[i], rows.len(), cols.len());
        let sl = sliding(&node.op);
        // Inputs, cropped where the producer's region starts before what this node reads.
        let mut inputs = Vec::with_capacity(node.inputs.len());
        let mut pads = Vec::new();
        for &j in &node.inputs {
            let (jr, jc) = regions[j].expect("inputs of a computed node are computed");
            let mut src = map[j].expect("topological order");
            let is = g.nodes[j].shape;
            // The first input row/col this node's window reads (may be before 0: padding).
            let (want_r, want_c, need) = match sl {
                Some((kk, st, pad)) => {
                    let need = (
                        window_need(rows, kk[0], st[0], pad.top, is.h),
                        window_need(cols, kk[1], st[1], pad.left, is.w),
                    );
                    (
                        (rows.start * st[0]) as isize - pad.top as isize,
                        (cols.start * st[1]) as isize - pad.left as isize,
                        need,
                    )
                }
                None => (rows.start as isize, cols.start as isize, (rows, cols)),
            };
            let crop_top = (want_r.max(0) as usize).saturating_sub(jr.start);
            let crop_left = (want_c.max(0) as usize).saturating_sub(jc.start);
            let exact = need.0 == jr && need.1 == jc;
            let must_crop = crop_top > 0 || crop_left > 0 || (sl.is_none() && !exact);
            if must_crop {
                let shape = Shape::new(nodes[src].shape.c, need.0.len(), need.1.len());
                nodes.push(Node {
                    name: format!("{}.crop{}", node.name, inputs.len()),
                    loc: node.loc,
                    op: Op::Crop {
                        top: need.0.start - jr.start,
                        left: need.1.start - jc.start,
                    },
                    inputs: vec![src],
                    shape,
                    act: Default::default(),
                });
                src = nodes.len() - 1;
            }
            // Padding left in the tile: only where the window starts before the image border.
            pads.push(((-want_r).max(0) as usize, (-want_c).max(0) as usize));
            inputs.push(src);
        }
        let (pt, pl) = pads.first().copied().unwrap_or((0, 0));
        let cin = inputs.first().map_or(0, |&s| nodes[s].shape.c);
        let op = match &node.op {
            Op::Conv(c) => {
                let depthwise = c.groups > 1;
                let groups = if depthwise { cin } else { 1 };
                let per = cin / groups;
                let full_in = g.nodes[node.inputs[0]].shape.c / c.groups;
                let [kh, kw] = c.kernel;
                let mut w = Vec::with_capacity(out.c * per * kh * kw);
                for o in 0..out.c {
                    for ic in 0..per {
                        let base = (o * full_in + ic) * kh * kw;
                        w.extend_from_slice(&c.weight.data[base..base + kh * kw]);
                    }
                }
                Op::Conv(ConvOp {
                    out_channels: out.c,
                    kernel: c.kernel,
                    stride: c.stride,
                    pad: tile_pad(pt, pl, c.pad, rows, cols, node.shape),
                    groups,
                    weight: Tensor {
                        shape: vec![out.c, per, kh, kw],
                        data: w,
                    },
                    bias: c.bias.as_ref().map(|b| slice(b, out.c)),
                    // A pattern-pruned layer keeps its pruned (zeroed) weights in the tiles but
                    // runs a dense kernel there: the packed pattern layout is per full layer.
                    algo: match c.algo {
                        crate::graph::AlgoRequest::Pattern => crate::graph::AlgoRequest::Auto,
                        a => a,
                    },
                    prune: None,
                })
            }
            Op::BatchNorm(b) => {
                let own = cfg
                    .level_bn
                    .iter()
                    .find(|(j, _)| *j == i)
                    .and_then(|(_, per)| level.checked_sub(1).and_then(|l| per.get(l)));
                match own {
                    Some(bn) if bn.gamma.data.len() == out.c => Op::BatchNorm(bn.clone()),
                    _ => Op::BatchNorm(crate::graph::BatchNormOp {
                        eps: b.eps,
                        gamma: slice(&b.gamma, out.c),
                        beta: slice(&b.beta, out.c),
                        mean: slice(&b.mean, out.c),
                        var: slice(&b.var, out.c),
                    }),
                }
            }
            Op::Affine(a) => Op::Affine(crate::graph::AffineOp {
                scale: a.scale[..out.c].to_vec(),
                shift: a.shift[..out.c].to_vec(),
            }),
            Op::MaxPool(p) | Op::AvgPool(p) => {
                let q = PoolOp {
                    pad: tile_pad(pt, pl, p.pad, rows, cols, node.shape),
                    ..p.clone()
                };
                if matches!(node.op, Op::MaxPool(_)) {
                    Op::MaxPool(q)
                } else {
                    Op::AvgPool(q)
                }
            }
            other => other.clone(),
        };
        nodes.push(Node {
            name: node.name.clone(),
            loc: node.loc,
            op,
            inputs,
            shape: out,
            act: node.act,
        });
        map[i] = Some(nodes.len() - 1);
    }
    let output = map[cfg.split].expect("the split is computed");
    Graph {
        name: format!("{}_l{level}_c{class}", g.name),
        nodes,
        output,
        arena_budget: None,
        file: g.file.clone(),
        microflows: None,
    }
}

/// Padding of a tile's sliding-window op: top/left as computed, bottom/right only where the
/// tile's output reaches the bottom/right border of the full map (elsewhere the input region
/// covers every window).
fn tile_pad(top: usize, left: usize, full: Pad, rows: Span, cols: Span, shape: Shape) -> Pad {
    Pad {
        top,
        left,
        bottom: if rows.end == shape.h { full.bottom } else { 0 },
        right: if cols.end == shape.w { full.right } else { 0 },
    }
}

fn slice(t: &Tensor, n: usize) -> Tensor {
    Tensor {
        shape: vec![n],
        data: t.data[..n].to_vec(),
    }
}

/// The learned gate on one tile class: conv + ReLU → global max-pool → dense (one logit per level).
fn gate_graph(
    g: &Graph,
    cfg: &MicroflowCfg,
    conv: &ConvOp,
    fc: &crate::graph::DenseOp,
    input: Shape,
    class: usize,
) -> Graph {
    let [kh, kw] = conv.kernel;
    let [sh, sw] = conv.stride;
    let oh = (input.h + conv.pad.top + conv.pad.bottom - kh) / sh + 1;
    let ow = (input.w + conv.pad.left + conv.pad.right - kw) / sw + 1;
    let c = conv.out_channels;
    let loc: Loc = cfg.loc;
    let node = |name: &str, op: Op, inputs: Vec<usize>, shape: Shape, act| Node {
        name: name.into(),
        loc,
        op,
        inputs,
        shape,
        act,
    };
    let nodes = vec![
        node("input", Op::Input, vec![], input, Default::default()),
        node(
            "gate.conv",
            Op::Conv(conv.clone()),
            vec![0],
            Shape::new(c, oh, ow),
            crate::graph::Act::Relu,
        ),
        node(
            "gate.pool",
            Op::MaxPool(PoolOp {
                kernel: [oh, ow],
                stride: [oh, ow],
                pad: Pad::default(),
                count_include_pad: true,
            }),
            vec![1],
            Shape::new(c, 1, 1),
            Default::default(),
        ),
        node(
            "gate.fc",
            Op::Dense(fc.clone()),
            vec![2],
            Shape::new(fc.out_features, 1, 1),
            Default::default(),
        ),
    ];
    Graph {
        name: format!("{}_gate_c{class}", g.name),
        nodes,
        output: 3,
        arena_budget: None,
        file: g.file.clone(),
        microflows: None,
    }
}

/// The layers after the split, reading the stitched feature map as their input.
fn tail_graph(g: &Graph, inside: &[bool], split: usize) -> Graph {
    let mut map: Vec<Option<usize>> = vec![None; g.nodes.len()];
    let mut nodes = vec![Node {
        name: "input".into(),
        loc: g.nodes[split].loc,
        op: Op::Input,
        inputs: Vec::new(),
        shape: g.nodes[split].shape,
        act: Default::default(),
    }];
    map[split] = Some(0);
    for (i, node) in g.nodes.iter().enumerate() {
        if inside[i] {
            continue;
        }
        let mut n2 = node.clone();
        n2.inputs = node.inputs.iter().map(|&j| map[j].unwrap_or(0)).collect();
        nodes.push(n2);
        map[i] = Some(nodes.len() - 1);
    }
    Graph {
        name: format!("{}_tail", g.name),
        nodes,
        output: map[g.output].unwrap_or(0),
        arena_budget: None,
        file: g.file.clone(),
        microflows: None,
    }
}

/// The f64 reference of adaptive inference: every tile through its micro-flow at `levels[t]`
/// (the reference interpreter on the sliced graphs), stitched, then the tail. The oracle for
/// generated `infer_adaptive`.
pub fn reference_run(mf: &Microflows, input: &[f32], levels: &[usize]) -> Result<Vec<f64>, String> {
    let img_shape = mf.image_shape();
    if input.len() != img_shape.len() || levels.len() != mf.tiles.len() {
        return Err(format!(
            "input of {} values / {} levels for a {img_shape} image of {} tiles",
            input.len(),
            levels.len(),
            mf.tiles.len()
        ));
    }
    let s = mf.split_shape;
    let mut stitched = vec![0.0f64; s.len()];
    for (t, tile) in mf.tiles.iter().enumerate() {
        let lv = *levels.get(t).ok_or("level missing")?;
        let g = mf
            .flows
            .get(lv)
            .ok_or("no such level")?
            .get(tile.class)
            .ok_or("no such class")?;
        let x = crop(input, img_shape, tile.in_rows, tile.in_cols);
        let y = crate::reference::run(g, &x)?;
        let (h, w) = (tile.out_rows.len(), tile.out_cols.len());
        for ch in 0..s.c {
            for yy in 0..h {
                for xx in 0..w {
                    stitched
                        [(ch * s.h + tile.out_rows.start + yy) * s.w + tile.out_cols.start + xx] =
                        y[(ch * h + yy) * w + xx];
                }
            }
        }
    }
    crate::reference::run_f64(&mf.tail, &stitched)
}

/// The f64 reference of the gate: per tile, the level and the confidence it picks.
pub fn reference_gate(mf: &Microflows, input: &[f32]) -> Result<Vec<(usize, f64)>, String> {
    let img_shape = mf.image_shape();
    let mut out = Vec::with_capacity(mf.tiles.len());
    for tile in &mf.tiles {
        let x = crop(input, img_shape, tile.in_rows, tile.in_cols);
        out.push(match &mf.gate {
            GateKind::Fixed(l) => (*l, 1.0),
            GateKind::Energy(t) => {
                let n = x.len() as f64;
                let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
                let e = var.sqrt();
                let level = t.iter().take_while(|&&th| e < th).count();
                let conf = t
                    .iter()
                    .map(|&th| {
                        if th != 0.0 {
                            (e - th).abs() / th.abs()
                        } else {
                            1.0
                        }
                    })
                    .fold(1.0f64, f64::min);
                (level, conf)
            }
            GateKind::Learned => {
                let logits = crate::reference::run(&mf.gates[tile.class], &x)?;
                let mut best = 0;
                for (i, &v) in logits.iter().enumerate() {
                    if v > logits[best] {
                        best = i;
                    }
                }
                let sum: f64 = logits.iter().map(|&v| (v - logits[best]).exp()).sum();
                (best, 1.0 / sum)
            }
        });
    }
    Ok(out)
}

impl Microflows {
    /// The model input's shape.
    pub fn image_shape(&self) -> Shape {
        self.image
    }
}

/// The `rows × cols` window of a CHW tensor.
pub fn crop(x: &[f32], s: Shape, rows: Span, cols: Span) -> Vec<f32> {
    let mut out = Vec::with_capacity(s.c * rows.len() * cols.len());
    for ch in 0..s.c {
        for y in rows.start..rows.end {
            let r = (ch * s.h + y) * s.w;
            out.extend_from_slice(&x[r + cols.start..r + cols.end]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_model;
    use std::path::Path;

    fn load(text: &str) -> Result<Graph, Vec<String>> {
        load_model(text, "specs/mf.yaml", Path::new("."))
            .map(|l| l.graph)
            .map_err(|d| d.iter().map(ToString::to_string).collect())
    }

    fn image(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn err_over_rms(got: &[f64], want: &[f64]) -> f64 {
        let rms = (want.iter().map(|v| v * v).sum::<f64>() / want.len() as f64)
            .sqrt()
            .max(1e-30);
        got.iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
            / rms
    }

    const RESNETISH: &str = "name: mf
input: { channels: 3, height: H, width: W }
weights: { random: 5 }
layers:
  - { name: stem, op: conv, out: 8, kernel: 3, stride: 2, pad: 1, bias: false }
  - { name: bn, op: batchnorm, act: relu }
  - { name: pool, op: maxpool, kernel: 3, stride: 2, pad: 1 }
  - { name: c1, op: conv, out: 8, kernel: 3, pad: 1, act: relu }
  - { name: dw, op: conv, out: 8, kernel: 3, pad: 1, groups: 8 }
  - { name: r1, op: add, inputs: [dw, pool], act: relu }
  - { name: c2, op: conv, out: 16, kernel: 3, stride: 2, pad: [0, 0, 1, 1], act: relu }
  - { name: gap, op: global_avg_pool }
  - { name: fc, op: dense, out: 5 }
microflows: { split_after: SPLIT, grid: K, levels: [1.0, 0.5, 0.25], gate: GATE }
";

    fn spec(h: usize, w: usize, split: &str, k: usize, gate: &str) -> String {
        RESNETISH
            .replace("H,", &format!("{h},"))
            .replace("W }", &format!("{w} }}"))
            .replace("SPLIT", split)
            .replace("K,", &format!("{k},"))
            .replace("GATE", gate)
    }

    #[test]
    fn widest_tiles_reproduce_the_untiled_model() {
        for (h, w, split, k) in [
            (32, 32, "r1", 2),
            (32, 32, "r1", 4),
            (48, 48, "r1", 3),
            (32, 48, "c2", 2),
            (24, 24, "bn", 3),
            (16, 16, "r1", 1),
            (32, 32, "pool", 8),
        ] {
            let text = spec(h, w, split, k, "{ fixed: 0 }");
            let g = load(&text).unwrap();
            let mf = build(&g).unwrap().unwrap();
            let x = image(g.input_shape().len(), 3);
            let want = crate::reference::run(&g, &x).unwrap();
            let got = reference_run(&mf, &x, &vec![0; k * k]).unwrap();
            let e = err_over_rms(&got, &want);
            assert!(e < 1e-12, "{h}x{w} split {split} grid {k}: {e}");
            // Classes share code; a receptive field wider than a tile can make more than 9.
            assert!(mf.classes.len() <= k * k, "{} classes", mf.classes.len());
            // MACs: every tile at full width computes at least the untiled supernet.
            let tiled: u64 = mf.tile_macs.iter().map(|t| t[0]).sum::<u64>() + mf.tail_macs;
            assert!(tiled >= mf.dense_macs, "{tiled} < {}", mf.dense_macs);
            // Narrower levels never cost more (after a residual add every supernet layer
            // stays full width; split after a conv to slice them), and still run.
            for t in &mf.tile_macs {
                assert!(t.windows(2).all(|p| p[1] <= p[0]), "{t:?}");
                if split == "c2" {
                    assert!(t.windows(2).all(|p| p[1] < p[0]), "{t:?}");
                }
            }
            reference_run(&mf, &x, &vec![2; k * k]).unwrap();
        }
    }

    #[test]
    fn geometry_has_overlap_and_shared_classes() {
        let g = load(&spec(128, 128, "c2", 4, "{ fixed: 0 }")).unwrap();
        let mf = build(&g).unwrap().unwrap();
        // 4×4 grid: corner, edge and interior tiles → 9 classes, interior tiles share one.
        assert_eq!(mf.classes.len(), 9);
        assert_eq!(mf.tiles[5].class, mf.tiles[6].class);
        assert_eq!(mf.tiles[5].class, mf.tiles[10].class);
        // Tiles overlap: tile 1 starts before tile 0 ends.
        assert!(mf.tiles[1].in_cols.start < mf.tiles[0].in_cols.end);
        assert_eq!(mf.tiles[0].in_cols.start, 0);
        assert_eq!(mf.tiles[3].in_cols.end, 128);
        // Level channels: the split's producers stay full, the rest are sliced.
        let lv1: Vec<(String, usize)> = mf.level_channels[1].clone();
        for (layer, c) in [("stem", 4), ("c1", 4), ("dw", 4), ("c2", 16)] {
            assert!(lv1.contains(&(layer.into(), c)), "{layer}: {lv1:?}");
        }
        // Split after the residual add: the add and everything feeding it stay full width.
        let g = load(&spec(32, 32, "r1", 2, "{ fixed: 0 }")).unwrap();
        let mf = build(&g).unwrap().unwrap();
        assert!(
            mf.level_channels[2].iter().all(|(_, c)| *c == 8),
            "{:?}",
            mf.level_channels
        );
    }

    #[test]
    fn infeasible_requests_are_reported_together() {
        let text = spec(30, 30, "c2", 3, "{ fixed: 0 }").replace("[1.0, 0.5, 0.25]", "[1.0, 0.05]");
        let e = match load(&text).map(|g| build(&g).map(|_| ())) {
            Ok(Err(d)) => d.iter().map(ToString::to_string).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(e, [
            "specs/mf.yaml:14:38: error: the feature map after `c2` is 4×4 (H×W), which a 3×3 grid does not divide (expected a grid that divides both 4 and 4, found grid: 3)",
            "specs/mf.yaml:14:49: error: layer `stem`: width level 0.05 keeps 0 of the 8 channels of `stem` (expected a fraction of at least 0.0625)",
            "specs/mf.yaml:14:49: error: layer `c1`: width level 0.05 keeps 0 of the 8 channels of `c1` (expected a fraction of at least 0.0625)",
        ]);
        let bad = spec(32, 32, "gap", 2, "{ fixed: 0 }");
        let e = match load(&bad).map(|g| build(&g).map(|_| ())) {
            Ok(Err(d)) => d.iter().map(ToString::to_string).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert!(
            e.iter()
                .any(|m| m.contains("`global_avg_pool` cannot be inside the micro-flow supernet")),
            "{e:?}"
        );
        let e = load(&spec(32, 32, "r2", 2, "{ weights: nothere }")).unwrap_err();
        assert!(
            e[0].contains("unknown layer `r2` in `microflows.split_after`, did you mean `r1`?"),
            "{e:?}"
        );
    }

    #[test]
    fn per_level_batchnorm_replaces_the_sliced_statistics() {
        let text = spec(64, 64, "c2", 2, "{ fixed: 0 }");
        let with = text.replace(
            "gate: { fixed: 0 } }",
            "gate: { fixed: 0 }, per_level_bn: true }",
        );
        let (a, b) = (load(&text).unwrap(), load(&with).unwrap());
        let (ma, mb) = (build(&a).unwrap().unwrap(), build(&b).unwrap().unwrap());
        let x = image(a.input_shape().len(), 4);
        // Level 0 is the same model; level 1 uses other statistics.
        let (a0, b0) = (
            reference_run(&ma, &x, &[0; 4]).unwrap(),
            reference_run(&mb, &x, &[0; 4]).unwrap(),
        );
        assert_eq!(a0, b0);
        let (a1, b1) = (
            reference_run(&ma, &x, &[1; 4]).unwrap(),
            reference_run(&mb, &x, &[1; 4]).unwrap(),
        );
        assert!(err_over_rms(&a1, &b1) > 1e-3);
        let bn = |m: &Microflows| match &m.flows[1][0]
            .nodes
            .iter()
            .find(|n| n.name == "bn")
            .unwrap()
            .op
        {
            Op::BatchNorm(b) => b.mean.data.clone(),
            _ => unreachable!(),
        };
        assert_eq!(bn(&mb).len(), 4);
        assert_ne!(bn(&ma), bn(&mb));
    }

    #[test]
    fn gate_reference_picks_levels() {
        let g = load(&spec(32, 32, "r1", 2, "{ weights: gate, channels: 4 }")).unwrap();
        let mf = build(&g).unwrap().unwrap();
        assert_eq!(mf.gates.len(), mf.classes.len());
        let x = image(g.input_shape().len(), 9);
        let d = reference_gate(&mf, &x).unwrap();
        assert_eq!(d.len(), 4);
        assert!(
            d.iter()
                .all(|&(l, c)| l < 3 && (1.0 / 3.0..=1.0).contains(&c)),
            "{d:?}"
        );
        let g = load(&spec(32, 32, "r1", 2, "{ energy: [0.5, 0.3] }")).unwrap();
        let mf = build(&g).unwrap().unwrap();
        let mut x = image(g.input_shape().len(), 9);
        // Flatten the top-left quarter: low energy → the narrowest level.
        for ch in 0..3 {
            for y in 0..16 {
                for xx in 0..16 {
                    x[(ch * 32 + y) * 32 + xx] = 0.1;
                }
            }
        }
        let d = reference_gate(&mf, &x).unwrap();
        assert!(d[0].0 >= 1 && d[3].0 == 0, "{d:?}");
    }
}
