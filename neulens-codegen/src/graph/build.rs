//! Builds the validated `Graph` from a parsed spec: name resolution, topological order, shape
//! inference and weight binding, pushing every problem found into one `Diagnostics`.

use super::{
    Act, AlgoRequest, BatchNormOp, ConvOp, DenseOp, Gate, Graph, MicroflowCfg, Node, Op, Pad,
    PoolOp, Shape, Tensor,
};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::spec::suggest::did_you_mean;
use crate::spec::{GateSpec, LayerSpec, MicroflowSpec, OpSpec, Spec};
use crate::weights::{ParamKind, WeightError, WeightRequest, WeightSource};
use std::collections::{BTreeSet, HashMap};

/// Largest number of values of one tensor (feature map or parameter): 2^28.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// What a layer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    /// The model input.
    Input,
    /// The layer at this spec index.
    Layer(usize),
}

/// Validates `spec`, infers every shape and binds the weights from `weights` (`None`: the source
/// is unavailable, an error already reported or a shape-only check; parameters are then zeros).
/// Errors go to `diags`; a `Graph` is returned only when no error at all was reported, before or
/// during this call.
pub fn build_graph(
    spec: &Spec,
    file: &str,
    weights: Option<&mut dyn WeightSource>,
    diags: &mut Diagnostics,
) -> Option<Graph> {
    let mut b = Builder {
        file,
        diags,
        weights,
        prune_default: spec.prune.as_ref(),
    };
    let layers = &spec.layers;

    // 1. Names: the first definition wins, duplicates are errors.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, l) in layers.iter().enumerate() {
        if l.name.starts_with('<') || l.name == "input" {
            continue; // placeholder for a missing name, or the reserved name (both reported)
        }
        if let Some(&first) = by_name.get(l.name.as_str()) {
            let first_loc = layers.get(first).map_or(Loc::UNKNOWN, |f| f.name_loc);
            let d = b
                .diag(l.name_loc, format!("duplicate layer name `{}`", l.name))
                .layer(&l.name)
                .found(format!(
                    "first defined at {}:{}",
                    first_loc.line, first_loc.column
                ));
            b.diags.push(d);
        } else {
            by_name.insert(&l.name, i);
        }
    }

    // 2. Inputs of each layer; `None` when one of them is unknown.
    let mut srcs: Vec<Option<Vec<Src>>> = Vec::with_capacity(layers.len());
    // The layers each layer reads, including those of a layer with an unknown input (for cycles).
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let resolved = match &l.inputs {
            None => Some(vec![match i.checked_sub(1) {
                Some(prev) => Src::Layer(prev),
                None => Src::Input,
            }]),
            Some(refs) => {
                let mut out = Vec::with_capacity(refs.len());
                let mut ok = true;
                for r in refs {
                    if r.name == "input" {
                        out.push(Src::Input);
                    } else if let Some(&j) = by_name.get(r.name.as_str()) {
                        out.push(Src::Layer(j));
                    } else {
                        // Spec order, so that the suggestion is deterministic.
                        let names = layers
                            .iter()
                            .map(|x| x.name.as_str())
                            .filter(|n| by_name.contains_key(n))
                            .chain(["input"]);
                        let hint = did_you_mean(&r.name, names);
                        let d = b
                            .diag(r.loc, format!("unknown input `{}`{hint}", r.name))
                            .layer(&l.name);
                        b.diags.push(d);
                        ok = false;
                    }
                }
                if !ok {
                    deps.push(layer_deps(&out));
                    srcs.push(None);
                    continue;
                }
                Some(out)
            }
        };
        deps.push(layer_deps(resolved.as_deref().unwrap_or(&[])));
        srcs.push(resolved);
    }

    // 3. Topological order (stable: the smallest spec index among the ready layers goes first).
    let order = topo_order(&deps);
    let mut placed = vec![false; layers.len()];
    for &i in &order {
        if let Some(p) = placed.get_mut(i) {
            *p = true;
        }
    }
    for cycle in find_cycles(&deps, &placed) {
        let names: Vec<&str> = cycle
            .iter()
            .filter_map(|&i| layers.get(i).map(|l| l.name.as_str()))
            .collect();
        if let Some(first) = cycle.first().and_then(|&i| layers.get(i)) {
            let d = b
                .diag(first.loc, format!("cycle: {}", names.join(" → ")))
                .layer(&first.name);
            b.diags.push(d);
        }
    }

    // 4. Shapes and weights, in topological order.
    let input_shape = spec.input.as_ref().and_then(|inp| {
        let ok = b.check_size(
            shape_len(inp.value),
            "the model input",
            &inp.value,
            inp.loc,
            None,
        );
        ok.then_some(inp.value)
    });
    let mut shapes: Vec<Option<Shape>> = vec![None; layers.len()];
    let mut ops: Vec<Option<Op>> = vec![None; layers.len()];
    for &i in &order {
        let (Some(l), Some(Some(src))) = (layers.get(i), srcs.get(i)) else {
            continue;
        };
        let Some(op) = &l.op else { continue };
        let Some(inp) = input_shape else { continue };
        let ins: Option<Vec<(Shape, &str)>> = src
            .iter()
            .map(|s| match *s {
                Src::Input => Some((inp, "input")),
                Src::Layer(j) => {
                    let name = layers.get(j).map_or("?", |x| x.name.as_str());
                    shapes.get(j).copied().flatten().map(|sh| (sh, name))
                }
            })
            .collect();
        // An input failed: its error is reported already.
        let Some(ins) = ins else { continue };
        if let Some((o, s)) = b.layer(l, op, &ins) {
            if let Some(slot) = shapes.get_mut(i) {
                *slot = Some(s);
            }
            if let Some(slot) = ops.get_mut(i) {
                *slot = Some(o);
            }
        }
    }

    // 5. The micro-flow section: the split layer by name, the gate's weights.
    let mf = spec.microflows.as_ref().and_then(|mf| {
        let split = mf
            .split_after
            .as_ref()
            .and_then(|s| match by_name.get(s.value.as_str()) {
                Some(&i) => Some(i),
                None => {
                    let names = layers.iter().map(|x| x.name.as_str());
                    let hint = did_you_mean(&s.value, names);
                    let d = b.diag(
                        s.loc,
                        format!(
                            "unknown layer `{}` in `microflows.split_after`{hint}",
                            s.value
                        ),
                    );
                    b.diags.push(d);
                    None
                }
            });
        let gate = b.gate(mf, input_shape.map(|s| s.c));
        Some((mf, split?, gate?))
    });

    // 6. Assemble (only when everything is valid).
    if !b.diags.is_empty() {
        return None;
    }
    let inp = spec.input.as_ref()?;
    let mut nodes = Vec::with_capacity(layers.len() + 1);
    nodes.push(Node {
        name: "input".to_string(),
        loc: inp.loc,
        op: Op::Input,
        inputs: Vec::new(),
        shape: inp.value,
        act: Act::None,
    });
    let mut node_of = vec![0usize; layers.len()];
    for &i in &order {
        let l = layers.get(i)?;
        let inputs = srcs
            .get(i)?
            .as_ref()?
            .iter()
            .map(|s| match *s {
                Src::Input => Some(0),
                Src::Layer(j) => node_of.get(j).copied(),
            })
            .collect::<Option<Vec<usize>>>()?;
        let op = ops.get_mut(i)?.take()?;
        let shape = (*shapes.get(i)?)?;
        *node_of.get_mut(i)? = nodes.len();
        nodes.push(Node {
            name: l.name.clone(),
            loc: l.loc,
            op,
            inputs,
            shape,
            act: l.act,
        });
    }
    let output = *node_of.get(layers.len().checked_sub(1)?)?;
    let microflows = match mf {
        Some((m, split, gate)) => Some(MicroflowCfg {
            split: *node_of.get(split)?,
            grid: m.grid.as_ref()?.value,
            levels: m.levels.value.clone(),
            gate,
            theta: m.theta,
            window: m.window.unwrap_or(m.grid.as_ref()?.value),
            level_bn: Vec::new(),
            loc: m.loc,
            split_loc: m.split_after.as_ref()?.loc,
            grid_loc: m.grid.as_ref()?.loc,
            levels_loc: m.levels.loc,
        }),
        None => None,
    };
    let mut graph = Graph {
        name: spec.name.clone(),
        nodes,
        output,
        arena_budget: spec.arena_budget,
        file: file.to_string(),
        microflows,
    };
    // 7. Per-level batchnorm statistics of the supernet (their widths need the graph).
    if spec.microflows.as_ref().is_some_and(|m| m.per_level_bn) {
        let mut level_bn = Vec::new();
        for (i, widths) in crate::microflow::supernet_bn_widths(&graph) {
            let l = node_of
                .iter()
                .position(|&n| n == i)
                .and_then(|j| layers.get(j))?;
            let mut per_level = Vec::new();
            for (lv, &c) in widths.iter().enumerate().skip(1) {
                let p = format!("{}.levels.{lv}", l.param);
                let mut f = |name: &str, kind| b.fetch(l, &format!("{p}.{name}"), &[c], kind);
                let gamma = f("weight", ParamKind::BnGamma);
                let beta = f("bias", ParamKind::BnBeta);
                let mean = f("running_mean", ParamKind::BnMean);
                let var = f("running_var", ParamKind::BnVar);
                let eps = match &graph.nodes[i].op {
                    Op::BatchNorm(bn) => bn.eps,
                    _ => continue,
                };
                if let (Some(gamma), Some(beta), Some(mean), Some(var)) = (gamma, beta, mean, var) {
                    per_level.push(BatchNormOp {
                        eps,
                        gamma,
                        beta,
                        mean,
                        var,
                    });
                }
            }
            level_bn.push((i, per_level));
        }
        if !b.diags.is_empty() {
            return None;
        }
        if let Some(cfg) = graph.microflows.as_mut() {
            cfg.level_bn = level_bn;
        }
    }
    Some(graph)
}

/// The spec indices of the layers in `srcs`, sorted and without duplicates.
fn layer_deps(srcs: &[Src]) -> Vec<usize> {
    let mut d: Vec<usize> = srcs
        .iter()
        .filter_map(|x| match x {
            Src::Layer(j) => Some(*j),
            Src::Input => None,
        })
        .collect();
    d.sort_unstable();
    d.dedup();
    d
}

/// Layers (node indices) whose value nobody reads and that are not the output.
pub fn unused_layers(g: &Graph) -> Vec<usize> {
    g.consumers()
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, c)| c.is_empty() && *i != g.output)
        .map(|(i, _)| i)
        .collect()
}

/// Kahn's algorithm, always taking the smallest ready spec index. Layers on or after a cycle are
/// left out.
fn topo_order(deps: &[Vec<usize>]) -> Vec<usize> {
    let n = deps.len();
    let mut pending: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            if let Some(c) = consumers.get_mut(j) {
                c.push(i);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| pending.get(i) == Some(&0)).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &c in consumers.get(i).map_or(&[][..], Vec::as_slice) {
            if let Some(p) = pending.get_mut(c) {
                *p = p.saturating_sub(1);
                if *p == 0 {
                    ready.insert(c);
                }
            }
        }
    }
    order
}

/// The cycles among the layers Kahn's algorithm could not place, each as a list of spec indices in
/// data-flow order starting and ending with the same layer (the smallest index of the cycle).
/// Every layer that could not be placed reads another such layer, so walking from one along its
/// unplaced inputs must revisit a layer: that closes a cycle. Each layer is in at most one
/// reported cycle.
fn find_cycles(deps: &[Vec<usize>], placed: &[bool]) -> Vec<Vec<usize>> {
    let unplaced = |j: usize| placed.get(j) == Some(&false);
    // 0 = not visited, 1 = on the current walk, 2 = done.
    let mut state = vec![0u8; deps.len()];
    let mut cycles = Vec::new();
    for start in 0..deps.len() {
        if !unplaced(start) || state.get(start) != Some(&0) {
            continue;
        }
        let mut walk = vec![start];
        let mut cur = start;
        if let Some(s) = state.get_mut(cur) {
            *s = 1;
        }
        loop {
            let next = deps
                .get(cur)
                .and_then(|d| d.iter().copied().find(|&j| unplaced(j)));
            let Some(next) = next else { break };
            match state.get(next) {
                Some(0) => {
                    if let Some(s) = state.get_mut(next) {
                        *s = 1;
                    }
                    walk.push(next);
                    cur = next;
                }
                Some(1) => {
                    // `walk` follows inputs; reverse it for data-flow order.
                    let pos = walk.iter().position(|&w| w == next).unwrap_or(0);
                    let mut cyc: Vec<usize> = walk.get(pos..).unwrap_or(&[]).to_vec();
                    cyc.reverse();
                    // Start at the smallest index for a stable message.
                    let min_pos = cyc
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, &v)| v)
                        .map_or(0, |(p, _)| p);
                    cyc.rotate_left(min_pos);
                    if let Some(&f) = cyc.first() {
                        cyc.push(f);
                    }
                    cycles.push(cyc);
                    break;
                }
                _ => break, // joins a walk already done
            }
        }
        for w in walk {
            if let Some(s) = state.get_mut(w) {
                *s = 2;
            }
        }
    }
    cycles
}

fn shape_len(s: Shape) -> Option<usize> {
    s.c.checked_mul(s.h)?.checked_mul(s.w)
}

fn dims_len(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

fn dims_str(dims: &[usize]) -> String {
    let v: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// Output side of a window op (floor mode); `None` when the kernel does not fit.
fn out_side(input: usize, before: usize, after: usize, k: usize, s: usize) -> Option<usize> {
    let padded = input.checked_add(before)?.checked_add(after)?;
    let span = padded.checked_sub(k)?;
    span.checked_div(s)?.checked_add(1)
}

struct Builder<'a, 'w> {
    file: &'a str,
    diags: &'a mut Diagnostics,
    weights: Option<&'w mut dyn WeightSource>,
    /// The model-wide `prune:` default.
    prune_default: Option<&'a crate::spec::Located<crate::prune::PruneSetting>>,
}

impl Builder<'_, '_> {
    fn diag(&self, loc: Loc, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.file, loc, msg)
    }

    /// Checks that a tensor of `len` values (None = overflow) is not absurdly large.
    fn check_size(
        &mut self,
        len: Option<usize>,
        what: &str,
        shown: &dyn std::fmt::Display,
        loc: Loc,
        layer: Option<&str>,
    ) -> bool {
        if len.is_some_and(|n| n <= MAX_ELEMENTS) {
            return true;
        }
        let found = match len {
            Some(n) => format!("{shown} = {n} values"),
            None => format!("{shown}, which overflows"),
        };
        let mut d = self
            .diag(loc, format!("absurd size: {what} is too large"))
            .expected(format!("at most 2^28 = {MAX_ELEMENTS} values"))
            .found(found);
        if let Some(l) = layer {
            d = d.layer(l);
        }
        self.diags.push(d);
        false
    }

    /// Infers the output shape of one layer and binds its parameters.
    fn layer(&mut self, l: &LayerSpec, op: &OpSpec, ins: &[(Shape, &str)]) -> Option<(Op, Shape)> {
        let first = ins.first()?.0;
        let (op, shape) = match op {
            OpSpec::Conv(c) => {
                let cin = first.c;
                let divides = |n: usize| n.checked_rem(c.groups) == Some(0);
                if !divides(cin) || !divides(c.out) {
                    let d = self
                        .diag(
                            l.loc_of("groups"),
                            "`groups` must divide the input channels and `out`",
                        )
                        .layer(&l.name)
                        .expected(format!(
                            "a divisor of {cin} (input channels) and {} (out)",
                            c.out
                        ))
                        .found(c.groups.to_string());
                    self.diags.push(d);
                    return None;
                }
                if matches!(
                    c.algo,
                    AlgoRequest::Winograd2 | AlgoRequest::Winograd4 | AlgoRequest::Winograd6
                ) {
                    let found = if c.kernel != [3, 3] {
                        format!("kernel {}×{}", c.kernel[0], c.kernel[1])
                    } else if c.stride != [1, 1] {
                        format!("stride {}×{}", c.stride[0], c.stride[1])
                    } else if c.groups != 1 {
                        format!("groups {}", c.groups)
                    } else {
                        String::new()
                    };
                    if !found.is_empty() {
                        let d = self
                            .diag(
                                l.loc_of("algo"),
                                format!(
                                    "winograd needs a 3×3 stride-1 conv with groups 1 (found {found})"
                                ),
                            )
                            .layer(&l.name)
                            .expected("kernel [3, 3], stride 1, groups 1, or `algo: auto`/`direct`")
                            .found(found);
                        self.diags.push(d);
                        return None;
                    }
                }
                let (h, w) = self.window(l, first, c.kernel, c.stride, c.pad)?;
                let shape = Shape::new(c.out, h, w);
                let per_group = cin.checked_div(c.groups)?;
                let wshape = [c.out, per_group, c.kernel[0], c.kernel[1]];
                let wname = format!("{}.weight", l.param);
                if !self.check_size(
                    dims_len(&wshape),
                    &format!("weight `{wname}`"),
                    &dims_str(&wshape),
                    l.loc,
                    Some(&l.name),
                ) {
                    return None;
                }
                let weight = self.fetch(l, &wname, &wshape, ParamKind::Weight);
                let bias = self.bias(l, c.bias, c.out);
                (
                    Op::Conv(ConvOp {
                        out_channels: c.out,
                        kernel: c.kernel,
                        stride: c.stride,
                        pad: c.pad,
                        groups: c.groups,
                        weight: weight?,
                        bias: bias?,
                        algo: c.algo,
                        prune: crate::prune::check::resolve(
                            self.file,
                            self.diags,
                            self.prune_default,
                            l,
                            c,
                        )?,
                    }),
                    shape,
                )
            }
            OpSpec::BatchNorm { eps } => {
                let ch = [first.c];
                let gamma = self.fetch(l, &format!("{}.weight", l.param), &ch, ParamKind::BnGamma);
                let beta = self.fetch(l, &format!("{}.bias", l.param), &ch, ParamKind::BnBeta);
                let mean = self.fetch(
                    l,
                    &format!("{}.running_mean", l.param),
                    &ch,
                    ParamKind::BnMean,
                );
                let vname = format!("{}.running_var", l.param);
                let var = self.fetch(l, &vname, &ch, ParamKind::BnVar);
                if let Some((i, v)) = var
                    .as_ref()
                    .and_then(|t| t.data.iter().enumerate().find(|(_, v)| **v < 0.0))
                {
                    let d = self
                        .diag(
                            l.param_loc,
                            format!("weight `{vname}` has a negative variance at index {i}"),
                        )
                        .layer(&l.name)
                        .expected("values ≥ 0")
                        .found(v.to_string());
                    self.diags.push(d);
                    return None;
                }
                let op = BatchNormOp {
                    eps: *eps,
                    gamma: gamma?,
                    beta: beta?,
                    mean: mean?,
                    var: var?,
                };
                (Op::BatchNorm(op), first)
            }
            OpSpec::MaxPool(p) | OpSpec::AvgPool(p) => {
                let (h, w) = self.window(l, first, p.kernel, p.stride, p.pad)?;
                let pool = PoolOp {
                    kernel: p.kernel,
                    stride: p.stride,
                    pad: p.pad,
                    count_include_pad: p.count_include_pad,
                };
                let op = if matches!(op, OpSpec::MaxPool(_)) {
                    Op::MaxPool(pool)
                } else {
                    Op::AvgPool(pool)
                };
                (op, Shape::new(first.c, h, w))
            }
            OpSpec::GlobalAvgPool => (Op::GlobalAvgPool, Shape::new(first.c, 1, 1)),
            OpSpec::Dense(dn) => {
                // `first` passed the size check, so its length does not overflow.
                let fan_in = shape_len(first)?;
                let wshape = [dn.out, fan_in];
                let wname = format!("{}.weight", l.param);
                if !self.check_size(
                    dims_len(&wshape),
                    &format!("weight `{wname}`"),
                    &dims_str(&wshape),
                    l.loc_of("out"),
                    Some(&l.name),
                ) {
                    return None;
                }
                let weight = self.fetch(l, &wname, &wshape, ParamKind::Weight);
                let bias = self.bias(l, dn.bias, dn.out);
                let op = DenseOp {
                    out_features: dn.out,
                    weight: weight?,
                    bias: bias?,
                };
                (Op::Dense(op), Shape::new(dn.out, 1, 1))
            }
            OpSpec::Add => {
                if ins.iter().any(|(s, _)| *s != first) {
                    let d = self
                        .diag(l.inputs_loc, "inputs of `add` have different shapes")
                        .layer(&l.name)
                        .expected("the same shape for all inputs")
                        .found(list_inputs(ins, |s| s.to_string()));
                    self.diags.push(d);
                    return None;
                }
                (Op::Add, first)
            }
            OpSpec::Concat => {
                if ins.iter().any(|(s, _)| (s.h, s.w) != (first.h, first.w)) {
                    let d = self
                        .diag(
                            l.inputs_loc,
                            "inputs of `concat` have different heights or widths",
                        )
                        .layer(&l.name)
                        .expected("the same height and width for all inputs")
                        .found(list_inputs(ins, |s| s.to_string()));
                    self.diags.push(d);
                    return None;
                }
                let c = ins.iter().try_fold(0usize, |a, (s, _)| a.checked_add(s.c));
                let shape = Shape::new(c.unwrap_or(usize::MAX), first.h, first.w);
                let len = c.and_then(|_| shape_len(shape));
                if !self.check_size(len, "the output", &shape, l.loc, Some(&l.name)) {
                    return None;
                }
                (Op::Concat, shape)
            }
            OpSpec::Flatten => (Op::Flatten, Shape::new(shape_len(first)?, 1, 1)),
            OpSpec::Softmax => (Op::Softmax, first),
        };
        if !self.check_size(shape_len(shape), "the output", &shape, l.loc, Some(&l.name)) {
            return None;
        }
        Some((op, shape))
    }

    /// Output height and width of a conv or pooling window; errors when the kernel does not fit.
    fn window(
        &mut self,
        l: &LayerSpec,
        s: Shape,
        k: [usize; 2],
        st: [usize; 2],
        p: Pad,
    ) -> Option<(usize, usize)> {
        let h = out_side(s.h, p.top, p.bottom, k[0], st[0]);
        let w = out_side(s.w, p.left, p.right, k[1], st[1]);
        match (h, w) {
            (Some(h), Some(w)) if h > 0 && w > 0 => Some((h, w)),
            _ => {
                let ph = s.h.saturating_add(p.top).saturating_add(p.bottom);
                let pw = s.w.saturating_add(p.left).saturating_add(p.right);
                let d = self
                    .diag(l.loc_of("kernel"), "kernel larger than padded input")
                    .layer(&l.name)
                    .expected(format!("a padded input of at least {}×{}", k[0], k[1]))
                    .found(format!("{ph}×{pw}"));
                self.diags.push(d);
                None
            }
        }
    }

    /// The gate of a micro-flow section, with its weights bound for a learned gate (input
    /// channels `c_in`, one logit per level). `None` after reporting an error.
    fn gate(&mut self, mf: &MicroflowSpec, c_in: Option<usize>) -> Option<Gate> {
        let g = mf.gate.as_ref()?;
        match &g.value {
            GateSpec::Energy(t) => Some(Gate::Energy(t.clone())),
            GateSpec::Fixed(l) => Some(Gate::Fixed(*l)),
            GateSpec::Learned {
                param,
                channels,
                kernel,
                stride,
            } => {
                let c_in = c_in?;
                let r = mf.levels.value.len();
                let (ch, k) = (*channels, *kernel);
                let at = (g.loc, "microflows.gate");
                let w = self.fetch_at(
                    at,
                    &format!("{param}.conv.weight"),
                    &[ch, c_in, k, k],
                    ParamKind::Weight,
                );
                let bname = format!("{param}.conv.bias");
                let bias = match self.weights.as_deref().is_some_and(|w| w.contains(&bname)) {
                    true => self.fetch_at(at, &bname, &[ch], ParamKind::Bias).map(Some),
                    false => Some(None),
                };
                let fw = self.fetch_at(
                    at,
                    &format!("{param}.fc.weight"),
                    &[r, ch],
                    ParamKind::Weight,
                );
                let fname = format!("{param}.fc.bias");
                let fb = match self.weights.as_deref().is_some_and(|w| w.contains(&fname)) {
                    true => self.fetch_at(at, &fname, &[r], ParamKind::Bias).map(Some),
                    false => Some(None),
                };
                let p = k / 2;
                Some(Gate::Learned {
                    conv: Box::new(ConvOp {
                        out_channels: ch,
                        kernel: [k, k],
                        stride: [*stride, *stride],
                        pad: Pad {
                            top: p,
                            left: p,
                            bottom: p,
                            right: p,
                        },
                        groups: 1,
                        weight: w?,
                        bias: bias?,
                        algo: AlgoRequest::Auto,
                        prune: None,
                    }),
                    fc: Box::new(DenseOp {
                        out_features: r,
                        weight: fw?,
                        bias: fb?,
                    }),
                })
            }
        }
    }

    /// The optional bias of conv/dense: `Some(None)` for no bias, `None` on error.
    fn bias(&mut self, l: &LayerSpec, given: Option<bool>, out: usize) -> Option<Option<Tensor>> {
        let name = format!("{}.bias", l.param);
        let wanted = match given {
            Some(b) => b,
            None => self.weights.as_deref().is_some_and(|w| w.contains(&name)),
        };
        if !wanted {
            return Some(None);
        }
        self.fetch(l, &name, &[out], ParamKind::Bias).map(Some)
    }

    /// Fetches one parameter of layer `l` (see `fetch_at`).
    fn fetch(
        &mut self,
        l: &LayerSpec,
        name: &str,
        shape: &[usize],
        kind: ParamKind,
    ) -> Option<Tensor> {
        self.fetch_at((l.param_loc, &l.name), name, shape, kind)
    }

    /// Fetches one parameter (zeros when there is no source); `None` after reporting an error at
    /// `at` = (location, layer name).
    fn fetch_at(
        &mut self,
        at: (Loc, &str),
        name: &str,
        shape: &[usize],
        kind: ParamKind,
    ) -> Option<Tensor> {
        let (loc, layer) = at;
        let Some(src) = self.weights.as_deref_mut() else {
            return Some(Tensor::zeros(shape));
        };
        let req = WeightRequest { name, shape, kind };
        let result = src.fetch(&req);
        let d = match result {
            Ok(t) if t.shape == shape && dims_len(shape) == Some(t.data.len()) => return Some(t),
            Ok(t) => self
                .diag(loc, format!("weight `{name}` has the wrong shape"))
                .expected(dims_str(shape))
                .found(format!(
                    "{} with {} values",
                    dims_str(&t.shape),
                    t.data.len()
                )),
            Err(WeightError::Missing { similar }) => {
                let hint = did_you_mean(name, similar.iter().map(String::as_str));
                let hint = if hint.is_empty() {
                    similar
                        .first()
                        .map(|s| format!(", did you mean `{s}`?"))
                        .unwrap_or_default()
                } else {
                    hint
                };
                self.diag(loc, format!("missing weight `{name}`{hint}"))
            }
            Err(WeightError::WrongShape { found }) => self
                .diag(loc, format!("weight `{name}` has the wrong shape"))
                .expected(dims_str(shape))
                .found(dims_str(&found)),
            Err(WeightError::WrongDtype { found }) => self
                .diag(loc, format!("weight `{name}` has an unsupported dtype"))
                .expected("F32, F16, BF16 or F64")
                .found(found),
            Err(WeightError::NonFinite { index }) => self.diag(
                loc,
                format!(
                    "weight `{name}` has a non-finite value (NaN or infinity) at index {index}"
                ),
            ),
        };
        self.diags.push(d.layer(layer));
        None
    }
}

/// "`a`: 16×8×8, `b`: 32×8×8"
fn list_inputs(ins: &[(Shape, &str)], f: impl Fn(&Shape) -> String) -> String {
    let v: Vec<String> = ins
        .iter()
        .map(|(s, n)| format!("`{n}`: {}", f(s)))
        .collect();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_spec_partial;
    use std::collections::HashSet;

    /// A weight source over a map of tensors. With `auto`, any name not in `absent` is answered
    /// with a tensor of the requested shape filled with 0.5 (and recorded in `requests`).
    #[derive(Default)]
    struct Mock {
        tensors: HashMap<String, Tensor>,
        dtypes: HashMap<String, String>,
        absent: HashSet<String>,
        auto: bool,
        requests: Vec<(String, Vec<usize>, ParamKind)>,
    }

    impl Mock {
        fn auto() -> Self {
            Mock {
                auto: true,
                ..Mock::default()
            }
        }
        fn with(mut self, name: &str, shape: &[usize], value: f32) -> Self {
            let n = dims_len(shape).unwrap_or(0);
            self.tensors.insert(
                name.to_string(),
                Tensor {
                    shape: shape.to_vec(),
                    data: vec![value; n],
                },
            );
            self
        }
        fn without(mut self, name: &str) -> Self {
            self.absent.insert(name.to_string());
            self
        }
    }

    impl WeightSource for Mock {
        fn fetch(&mut self, req: &WeightRequest<'_>) -> Result<Tensor, WeightError> {
            self.requests
                .push((req.name.to_string(), req.shape.to_vec(), req.kind));
            if let Some(d) = self.dtypes.get(req.name) {
                return Err(WeightError::WrongDtype { found: d.clone() });
            }
            match self.tensors.get(req.name) {
                Some(t) if t.shape != req.shape => Err(WeightError::WrongShape {
                    found: t.shape.clone(),
                }),
                Some(t) => Ok(t.clone()),
                None if self.auto && !self.absent.contains(req.name) => Ok(Tensor {
                    shape: req.shape.to_vec(),
                    data: vec![0.5; dims_len(req.shape).unwrap_or(0)],
                }),
                None => {
                    let similar = self
                        .tensors
                        .keys()
                        .filter(|k| crate::spec::suggest::edit_distance(k, req.name) <= 2)
                        .cloned()
                        .collect();
                    Err(WeightError::Missing { similar })
                }
            }
        }
        fn contains(&self, name: &str) -> bool {
            self.tensors.contains_key(name) || (self.auto && !self.absent.contains(name))
        }
        fn unused(&self) -> Vec<String> {
            Vec::new()
        }
    }

    const FILE: &str = "specs/t.yaml";

    fn run(text: &str, mock: &mut Mock) -> (Option<Graph>, Vec<Diagnostic>) {
        let mut diags = Diagnostics::new();
        let g = parse_spec_partial(text, FILE, &mut diags)
            .and_then(|s| build_graph(&s, FILE, Some(mock), &mut diags));
        (g, diags.items)
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        let (g, d) = run(text, &mut Mock::auto());
        assert!(g.is_none());
        d
    }

    /// The only error of `text`.
    fn one_error_with(text: &str, mock: &mut Mock) -> Diagnostic {
        let (g, d) = run(text, mock);
        assert!(g.is_none());
        assert_eq!(d.len(), 1, "{d:#?}");
        d.into_iter().next().unwrap()
    }

    fn one_error(text: &str) -> Diagnostic {
        one_error_with(text, &mut Mock::auto())
    }

    /// 1-based (line, column) of the `nth` occurrence (0-based) of `needle` in `text`.
    fn pos(text: &str, needle: &str, nth: usize) -> (u64, u64) {
        let off = text.match_indices(needle).nth(nth).expect("needle").0;
        let before = &text[..off];
        let line = before.matches('\n').count() + 1;
        let col = off - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line as u64, col as u64)
    }

    fn at(d: &Diagnostic) -> (u64, u64) {
        (d.loc.line, d.loc.column)
    }

    const HEAD: &str =
        "input: { channels: 3, height: 8, width: 8 }\nweights: { random: 1 }\nlayers:\n";

    fn spec(layers: &str) -> String {
        format!("{HEAD}{layers}")
    }

    const ALL_OPS: &str = "\
name: AllOps
input: { channels: 3, height: 32, width: 32 }
weights: { random: 1 }
budget: { arena_bytes: 262144 }
layers:
  - { name: c1, op: conv, out: 8, kernel: 3, stride: 1, pad: 1, act: relu }
  - { name: bn1, op: batchnorm, act: relu6, eps: 0.001 }
  - { name: dw, op: conv, out: 8, kernel: [3, 5], stride: [2, 1], pad: [0, 1, 1, 2], groups: 8, algo: direct }
  - { name: g2, op: conv, out: 4, kernel: 1, groups: 2, bias: false, input: c1 }
  - { name: mp, op: maxpool, kernel: 2, input: g2 }
  - { name: ap, op: avgpool, kernel: 3, stride: 2, pad: 1, count_include_pad: false, input: g2 }
  - { name: sum, op: add, inputs: [mp, ap], act: relu }
  - { name: cat, op: concat, inputs: [sum, later] }
  - { name: later, op: conv, out: 2, kernel: 1, input: mp, pad: { top: 0 } }
  - { name: gap, op: global_avg_pool, input: cat }
  - { name: fl, op: flatten, input: dw }
  - { name: fc, op: dense, out: 10, input: fl, param: head.fc }
  - { name: fc2, op: dense, out: 10, input: gap, bias: true }
  - name: both
    op: add
    inputs: [fc, fc2]
  - { name: sm, op: softmax }
";

    #[test]
    fn every_op_in_topological_order_with_shapes() {
        let mut mock = Mock::auto().without("c1.bias");
        let (g, d) = run(ALL_OPS, &mut mock);
        assert!(d.is_empty(), "{d:#?}");
        let g = g.unwrap();
        assert_eq!(g.name, "allops");
        assert_eq!(g.file, FILE);
        assert_eq!(g.arena_budget.map(|(b, l)| (b, l.line)), Some((262144, 4)));
        let expect: &[(&str, &[usize], [usize; 3])] = &[
            ("input", &[], [3, 32, 32]),
            ("c1", &[0], [8, 32, 32]),
            ("bn1", &[1], [8, 32, 32]),
            ("dw", &[2], [8, 16, 31]),
            ("g2", &[1], [4, 32, 32]),
            ("mp", &[4], [4, 16, 16]),
            ("ap", &[4], [4, 16, 16]),
            ("sum", &[5, 6], [4, 16, 16]),
            ("later", &[5], [2, 16, 16]),
            ("cat", &[7, 8], [6, 16, 16]),
            ("gap", &[9], [6, 1, 1]),
            ("fl", &[3], [3968, 1, 1]),
            ("fc", &[11], [10, 1, 1]),
            ("fc2", &[10], [10, 1, 1]),
            ("both", &[12, 13], [10, 1, 1]),
            ("sm", &[14], [10, 1, 1]),
        ];
        assert_eq!(g.nodes.len(), expect.len());
        for (n, (name, inputs, [c, h, w])) in g.nodes.iter().zip(expect) {
            assert_eq!(n.name, *name);
            assert_eq!(n.inputs, *inputs, "{name}");
            assert_eq!(n.shape, Shape::new(*c, *h, *w), "{name}");
        }
        assert_eq!(g.output, 15);
        assert_eq!(g.nodes[0].op, Op::Input);
        assert_eq!(unused_layers(&g), Vec::<usize>::new());

        // Node locations are the layer mappings.
        assert_eq!(at_node(&g, "c1"), pos(ALL_OPS, "{ name: c1", 0));
        assert_eq!(at_node(&g, "both"), pos(ALL_OPS, "name: both", 0));

        // Op details.
        let Op::Conv(c1) = &g.nodes[1].op else {
            panic!()
        };
        assert_eq!((c1.kernel, c1.stride, c1.groups), ([3, 3], [1, 1], 1));
        assert_eq!(
            c1.pad,
            Pad {
                top: 1,
                left: 1,
                bottom: 1,
                right: 1
            }
        );
        assert_eq!(c1.weight.shape, vec![8, 3, 3, 3]);
        assert_eq!(c1.bias, None, "no bias given and none in the source");
        assert_eq!(g.nodes[1].act, Act::Relu);
        let Op::BatchNorm(bn) = &g.nodes[2].op else {
            panic!()
        };
        assert_eq!((bn.eps, bn.var.shape.clone()), (0.001, vec![8]));
        assert_eq!(g.nodes[2].act, Act::Relu6);
        let Op::Conv(dw) = &g.nodes[3].op else {
            panic!()
        };
        assert_eq!((dw.kernel, dw.stride, dw.groups), ([3, 5], [2, 1], 8));
        assert_eq!(
            dw.pad,
            Pad {
                top: 0,
                left: 1,
                bottom: 1,
                right: 2
            }
        );
        assert_eq!(dw.weight.shape, vec![8, 1, 3, 5]);
        assert_eq!(dw.bias.as_ref().map(|b| b.shape.clone()), Some(vec![8]));
        assert_eq!(dw.algo, crate::graph::AlgoRequest::Direct);
        let Op::Conv(g2) = &g.nodes[4].op else {
            panic!()
        };
        assert_eq!(
            (g2.weight.shape.clone(), g2.bias.is_none()),
            (vec![4, 4, 1, 1], true)
        );
        let Op::MaxPool(mp) = &g.nodes[5].op else {
            panic!()
        };
        assert_eq!(
            (mp.kernel, mp.stride, mp.pad),
            ([2, 2], [2, 2], Pad::default())
        );
        let Op::AvgPool(ap) = &g.nodes[6].op else {
            panic!()
        };
        assert_eq!(
            (ap.kernel, ap.stride, ap.count_include_pad),
            ([3, 3], [2, 2], false)
        );
        let Op::Dense(fc) = &g.nodes[12].op else {
            panic!()
        };
        assert_eq!(fc.weight.shape, vec![10, 3968]);
        assert_eq!(fc.weight.data[0], 0.5);
        assert!(matches!(g.nodes[9].op, Op::Concat));
        assert!(matches!(g.nodes[11].op, Op::Flatten));
        assert!(matches!(g.nodes[15].op, Op::Softmax));

        // The parameters asked for, with `param` as the prefix.
        let asked: Vec<&str> = mock.requests.iter().map(|r| r.0.as_str()).collect();
        assert!(asked.contains(&"head.fc.weight") && asked.contains(&"head.fc.bias"));
        assert!(!asked.contains(&"fc.weight") && !asked.contains(&"g2.bias"));
        assert!(mock
            .requests
            .contains(&("bn1.running_var".into(), vec![8], ParamKind::BnVar)));
        assert!(mock
            .requests
            .contains(&("bn1.weight".into(), vec![8], ParamKind::BnGamma)));
        assert!(mock
            .requests
            .contains(&("c1.weight".into(), vec![8, 3, 3, 3], ParamKind::Weight)));
    }

    #[test]
    fn never_panics_on_truncated_or_mutated_specs() {
        let lines: Vec<&str> = ALL_OPS.lines().collect();
        let mut variants: Vec<String> = Vec::new();
        for (i, _) in ALL_OPS.char_indices() {
            variants.push(ALL_OPS[..i].to_string());
        }
        for skip in 0..lines.len() {
            let v: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            variants.push(v.join("\n"));
        }
        for (from, to) in [
            ("1", "0"),
            ("3", "0"),
            ("2", "99999999999999999999"),
            ("8", "-8"),
        ] {
            variants.push(ALL_OPS.replace(from, to));
        }
        for v in &variants {
            let _ = run(v, &mut Mock::auto());
            let mut diags = Diagnostics::new();
            if let Some(s) = parse_spec_partial(v, FILE, &mut diags) {
                let _ = build_graph(&s, FILE, None, &mut diags);
            }
        }
    }

    fn at_node(g: &Graph, name: &str) -> (u64, u64) {
        let n = g.nodes.iter().find(|n| n.name == name).unwrap();
        (n.loc.line, n.loc.column)
    }

    #[test]
    fn without_a_source_parameters_are_zeros() {
        let text = spec("  - { name: c1, op: conv, out: 4, kernel: 3, bias: true }\n");
        let mut diags = Diagnostics::new();
        let s = parse_spec_partial(&text, FILE, &mut diags).unwrap();
        let g = build_graph(&s, FILE, None, &mut diags).unwrap();
        let Op::Conv(c) = &g.nodes[1].op else {
            panic!()
        };
        assert!(c.weight.data.iter().all(|v| *v == 0.0) && c.bias.is_some());
        assert_eq!(g.name, "t", "default name: the file stem");
    }

    #[test]
    fn unused_layers_are_found() {
        let text = spec(
            "  - { name: a, op: conv, out: 4, kernel: 1 }\n  - { name: side, op: softmax }\n  - { name: out, op: global_avg_pool, input: a }\n",
        );
        let (g, d) = run(&text, &mut Mock::auto());
        assert!(d.is_empty(), "{d:#?}");
        let g = g.unwrap();
        let unused: Vec<&str> = unused_layers(&g)
            .iter()
            .map(|&i| g.nodes[i].name.as_str())
            .collect();
        assert_eq!(unused, ["side"]);
    }

    #[test]
    fn error_unknown_input_with_suggestion() {
        let text = spec(
            "  - { name: conv1, op: conv, out: 4, kernel: 1 }\n  - { name: conv2, op: conv, out: 4, kernel: 1 }\n  - { name: r, op: add, inputs: [conv1, cnv2] }\n",
        );
        let d = one_error(&text);
        assert_eq!(d.message, "unknown input `cnv2`, did you mean `conv2`?");
        assert_eq!(at(&d), pos(&text, "cnv2", 0));
        assert_eq!(d.layer.as_deref(), Some("r"));
        let far = one_error(&spec("  - { name: a, op: softmax, input: zzzz }\n"));
        assert_eq!(far.message, "unknown input `zzzz`");
    }

    #[test]
    fn error_cycle() {
        let text = spec(
            "  - { name: a, op: conv, out: 3, kernel: 1, input: c }\n  - { name: b, op: conv, out: 3, kernel: 1 }\n  - { name: c, op: conv, out: 3, kernel: 1 }\n  - { name: self, op: softmax, input: self }\n  - { name: out, op: global_avg_pool, input: input }\n",
        );
        let d = errors(&text);
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(d[0].message, "cycle: a → b → c → a");
        assert_eq!(at(&d[0]), pos(&text, "{ name: a", 0));
        assert_eq!(d[0].layer.as_deref(), Some("a"));
        assert_eq!(d[1].message, "cycle: self → self");
        assert_eq!(d[1].layer.as_deref(), Some("self"));
    }

    #[test]
    fn a_layer_after_a_cycle_is_not_a_new_cycle() {
        let text = spec(
            "  - { name: a, op: softmax, input: b }\n  - { name: b, op: softmax }\n  - { name: d, op: softmax, input: b }\n",
        );
        let d = errors(&text);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(
            d[0].to_string(),
            "specs/t.yaml:4:5: error: layer `a`: cycle: a → b → a"
        );
    }

    #[test]
    fn a_cycle_through_a_layer_with_an_unknown_input_is_still_found() {
        let text =
            spec("  - { name: a, op: add, inputs: [b, nope] }\n  - { name: b, op: softmax }\n");
        let msgs: Vec<String> = errors(&text).into_iter().map(|d| d.message).collect();
        assert_eq!(msgs, ["unknown input `nope`", "cycle: a → b → a"]);
    }

    #[test]
    fn error_add_shape_mismatch() {
        let text = spec(
            "  - { name: c1, op: conv, out: 4, kernel: 1 }\n  - { name: c2, op: conv, out: 8, kernel: 1 }\n  - { name: r, op: add, inputs: [c1, c2, input] }\n",
        );
        let d = one_error(&text);
        assert_eq!(
            d.to_string(),
            format!(
                "specs/t.yaml:{}:{}: error: layer `r`: inputs of `add` have different shapes (expected the same shape for all inputs, found `c1`: 4×8×8, `c2`: 8×8×8, `input`: 3×8×8)",
                pos(&text, "[c1, c2", 0).0,
                pos(&text, "[c1, c2", 0).1
            )
        );
    }

    #[test]
    fn error_concat_shape_mismatch() {
        let text = spec(
            "  - { name: c1, op: conv, out: 4, kernel: 1 }\n  - { name: c2, op: conv, out: 4, kernel: 1, stride: 2 }\n  - { name: k, op: concat, inputs: [c1, c2] }\n",
        );
        let d = one_error(&text);
        assert_eq!(
            d.message,
            "inputs of `concat` have different heights or widths"
        );
        assert_eq!(d.found.as_deref(), Some("`c1`: 4×8×8, `c2`: 4×4×4"));
        assert_eq!(at(&d), pos(&text, "[c1, c2]", 0));
        assert_eq!(d.layer.as_deref(), Some("k"));
    }

    #[test]
    fn error_missing_weight_with_suggestion() {
        let text = spec("  - { name: c1, op: conv, out: 4, kernel: 3 }\n");
        let mut mock = Mock::default().with("c1.weights", &[4, 3, 3, 3], 1.0);
        let d = one_error_with(&text, &mut mock);
        assert_eq!(
            d.message,
            "missing weight `c1.weight`, did you mean `c1.weights`?"
        );
        assert_eq!(at(&d), pos(&text, "{ name: c1", 0));
        assert_eq!(d.layer.as_deref(), Some("c1"));
    }

    #[test]
    fn error_explicit_bias_missing_but_implicit_bias_optional() {
        let text = spec("  - { name: c1, op: conv, out: 4, kernel: 3, bias: true, param: p }\n");
        let mut mock = Mock::default().with("p.weight", &[4, 3, 3, 3], 1.0);
        let d = one_error_with(&text, &mut mock);
        assert_eq!(d.message, "missing weight `p.bias`");
        assert_eq!(at(&d), pos(&text, "p }", 0), "at the `param` value");
        let text = spec("  - { name: c1, op: conv, out: 4, kernel: 3, param: p }\n");
        let (g, d) = run(&text, &mut mock);
        assert!(d.is_empty() && g.is_some());
    }

    #[test]
    fn error_wrong_weight_shape() {
        let text = spec("  - { name: c1, op: conv, out: 4, kernel: 3 }\n");
        let mut mock = Mock::auto().with("c1.weight", &[4, 3, 5, 5], 1.0);
        let d = one_error_with(&text, &mut mock);
        assert_eq!(
            d.to_string(),
            "specs/t.yaml:4:5: error: layer `c1`: weight `c1.weight` has the wrong shape (expected [4, 3, 3, 3], found [4, 3, 5, 5])"
        );
    }

    #[test]
    fn error_wrong_dtype() {
        let text = spec("  - { name: d, op: dense, out: 2 }\n");
        let mut mock = Mock::auto();
        mock.dtypes.insert("d.weight".into(), "I64".into());
        let d = one_error_with(&text, &mut mock);
        assert_eq!(d.message, "weight `d.weight` has an unsupported dtype");
        assert_eq!(
            (d.expected.as_deref(), d.found.as_deref()),
            (Some("F32, F16, BF16 or F64"), Some("I64"))
        );
        assert_eq!((at(&d), d.layer.as_deref()), ((4, 5), Some("d")));
    }

    #[test]
    fn error_negative_running_var() {
        let text = spec("  - { name: bn, op: batchnorm }\n");
        let mut mock = Mock::auto().with("bn.running_var", &[3], -0.25);
        let d = one_error_with(&text, &mut mock);
        assert_eq!(
            d.message,
            "weight `bn.running_var` has a negative variance at index 0"
        );
        assert_eq!(d.found.as_deref(), Some("-0.25"));
        assert_eq!((at(&d), d.layer.as_deref()), ((4, 5), Some("bn")));
    }

    #[test]
    fn error_kernel_larger_than_padded_input() {
        let text = "input: { channels: 1, height: 2, width: 9 }\nweights: { random: 1 }\nlayers:\n  - { name: c, op: conv, out: 1, kernel: 5, pad: 1 }\n";
        let d = one_error(text);
        assert_eq!(
            d.to_string(),
            format!(
                "specs/t.yaml:4:{}: error: layer `c`: kernel larger than padded input (expected a padded input of at least 5×5, found 4×11)",
                pos(text, "5, pad", 0).1
            )
        );
        // Pools too, and an exact fit is fine.
        let text = spec("  - { name: p, op: maxpool, kernel: 9 }\n");
        assert_eq!(one_error(&text).message, "kernel larger than padded input");
        let text = spec("  - { name: p, op: avgpool, kernel: 8 }\n");
        let (g, _) = run(&text, &mut Mock::auto());
        assert_eq!(g.unwrap().output_shape(), Shape::new(3, 1, 1));
    }

    #[test]
    fn error_groups_must_divide() {
        let text = spec("  - { name: c, op: conv, out: 4, kernel: 1, groups: 2 }\n");
        let d = one_error(&text);
        assert_eq!(
            d.message,
            "`groups` must divide the input channels and `out`"
        );
        assert_eq!(at(&d), pos(&text, "2 }", 0));
    }

    #[test]
    fn error_winograd_needs_3x3_stride_1_ungrouped() {
        let text = spec("  - { name: c5, op: conv, out: 4, kernel: 5, pad: 2, algo: winograd4 }\n");
        let d = one_error(&text);
        assert_eq!(
            d.message,
            "winograd needs a 3×3 stride-1 conv with groups 1 (found kernel 5×5)"
        );
        assert_eq!(d.layer.as_deref(), Some("c5"));
        assert_eq!(at(&d), pos(&text, "winograd4", 0));
        let text =
            spec("  - { name: s, op: conv, out: 4, kernel: 3, stride: 2, algo: winograd2 }\n");
        assert!(one_error(&text).message.ends_with("(found stride 2×2)"));
        let text =
            spec("  - { name: g, op: conv, out: 3, kernel: 3, groups: 3, algo: winograd6 }\n");
        assert!(one_error(&text).message.ends_with("(found groups 3)"));
        let text = spec("  - { name: ok, op: conv, out: 3, kernel: 3, pad: 1, algo: winograd6 }\n");
        let (g, d) = run(&text, &mut Mock::auto());
        assert!(d.is_empty(), "{d:#?}");
        let g = g.unwrap();
        let Op::Conv(c) = &g.nodes[1].op else {
            panic!("conv expected")
        };
        assert_eq!(c.algo, AlgoRequest::Winograd6);
    }

    #[test]
    fn error_absurd_sizes() {
        let text = "input: { channels: 65536, height: 16384, width: 16384 }\nweights: { random: 1 }\nlayers:\n  - { name: s, op: softmax }\n";
        let d = one_error(text);
        assert_eq!(d.message, "absurd size: the model input is too large");
        assert_eq!(
            d.found.as_deref(),
            Some("65536×16384×16384 = 17592186044416 values")
        );
        assert_eq!(at(&d), (1, 8));
        assert_eq!(d.layer, None);

        let text = spec("  - { name: fc, op: dense, out: 268435456 }\n");
        let d = one_error(&text);
        assert_eq!(d.message, "absurd size: weight `fc.weight` is too large");
        assert_eq!(
            d.found.as_deref(),
            Some("[268435456, 192] = 51539607552 values")
        );
        assert_eq!(
            (at(&d), d.layer.as_deref()),
            (pos(&text, "268435456", 0), Some("fc"))
        );

        let text = "input: { channels: 1, height: 16384, width: 16384 }\nweights: { random: 1 }\nlayers:\n  - { name: c, op: conv, out: 2, kernel: 1 }\n";
        let d = one_error(text);
        assert_eq!(d.message, "absurd size: the output is too large");
        assert_eq!(d.layer.as_deref(), Some("c"));
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(dims_len(&[usize::MAX, 2]), None);
        assert_eq!(out_side(usize::MAX, 1, 0, 3, 1), None);
        assert_eq!(out_side(4, 0, 0, 5, 1), None);
        assert_eq!(out_side(5, 1, 1, 3, 2), Some(3));
        let mut diags = Diagnostics::new();
        let mut b = Builder {
            file: FILE,
            diags: &mut diags,
            weights: None,
            prune_default: None,
        };
        assert!(!b.check_size(None, "weight `w`", &"[huge]", Loc::UNKNOWN, Some("l")));
        assert_eq!(
            diags.items[0].found.as_deref(),
            Some("[huge], which overflows")
        );
    }

    #[test]
    fn error_duplicate_layer_name() {
        let text = spec(
            "  - { name: a, op: softmax }\n  - { name: a, op: softmax }\n  - { name: b, op: softmax, input: a }\n",
        );
        let d = one_error(&text);
        assert_eq!(d.message, "duplicate layer name `a`");
        assert_eq!(d.found.as_deref(), Some("first defined at 4:13"));
        assert_eq!((at(&d), d.layer.as_deref()), ((5, 13), Some("a")));
    }

    #[test]
    fn per_level_batchnorm_statistics_are_fetched_with_their_widths() {
        let text = "input: { channels: 3, height: 8, width: 8 }\nweights: x.safetensors\nlayers:\n  - { name: c1, op: conv, out: 8, kernel: 3, pad: 1 }\n  - { name: bn, op: batchnorm, act: relu }\n  - { name: c2, op: conv, out: 4, kernel: 3, stride: 2, pad: 1 }\n  - { name: gap, op: global_avg_pool }\nmicroflows: { split_after: c2, grid: 2, levels: [1.0, 0.5, 0.25], gate: { fixed: 0 }, per_level_bn: true }\n";
        let mut mock = Mock::auto();
        let (g, d) = run(text, &mut mock);
        assert!(d.is_empty(), "{d:?}");
        let g = g.unwrap();
        let level_bn = &g.microflows.as_ref().unwrap().level_bn;
        assert_eq!(level_bn.len(), 1);
        let widths: Vec<usize> = level_bn[0].1.iter().map(|b| b.gamma.data.len()).collect();
        assert_eq!(widths, [4, 2]);
        let asked: Vec<(String, Vec<usize>)> = mock
            .requests
            .iter()
            .filter(|(n, _, _)| n.starts_with("bn.levels."))
            .map(|(n, s, _)| (n.clone(), s.clone()))
            .collect();
        assert!(
            asked.contains(&("bn.levels.2.running_var".into(), vec![2])),
            "{asked:?}"
        );
        assert_eq!(asked.len(), 8);
        // A missing one is an error at the batchnorm layer.
        let mut mock = Mock::auto().without("bn.levels.1.running_mean");
        let (g, d) = run(text, &mut mock);
        assert!(g.is_none());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            d[0].to_string(),
            "specs/t.yaml:5:5: error: layer `bn`: missing weight `bn.levels.1.running_mean`"
        );
    }

    #[test]
    fn three_errors_are_all_reported() {
        let text = spec(
            "  - { name: c1, op: convolution, out: 4, kernel: 3 }\n  - { name: c2, op: conv, out: abc, kernel: 3, input: input }\n  - { name: c3, op: add, inputs: [c2, c4] }\n  - { name: fc, op: dense, out: 10, input: c2 }\n",
        );
        let d = errors(&text);
        let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "specs/t.yaml:4:21: error: layer `c1`: unknown op `convolution` (expected one of `conv`, `batchnorm`, `maxpool`, `avgpool`, `global_avg_pool`, `dense`, `add`, `concat`, `flatten`, `softmax`)",
                "specs/t.yaml:5:32: error: layer `c2`: wrong type for `out` (expected an integer, found string `abc`)",
                "specs/t.yaml:6:39: error: layer `c3`: unknown input `c4`, did you mean `c1`?",
            ]
        );
    }

    #[test]
    fn a_bad_layer_does_not_hide_errors_of_independent_layers() {
        // `a` is invalid; `b` reads it (no cascade); `c` reads the input and has its own error.
        let text = spec(
            "  - { name: a, op: conv, out: 0, kernel: 3 }\n  - { name: b, op: add, inputs: [a, input] }\n  - { name: c, op: conv, out: 2, kernel: 7, stride: 1, input: input, pad: 0 }\n  - { name: d, op: maxpool, kernel: 9, input: input }\n",
        );
        let d = errors(&text);
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "zero size: `out` must be at least 1",
                "kernel larger than padded input"
            ]
        );
        assert_eq!(d[1].layer.as_deref(), Some("d"));
    }
}
