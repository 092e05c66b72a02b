//! Lowering before planning: folds every foldable batchnorm into the conv that feeds it and turns
//! every other batchnorm into a per-channel `Affine`, so later stages never see `Op::BatchNorm`.

use crate::graph::{AffineOp, BatchNormOp, ConvOp, Graph, Node, Op, Tensor};

/// What `lower` did, for the build report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LowerReport {
    /// (batchnorm name, conv name) for each batchnorm folded into its conv.
    pub folded: Vec<(String, String)>,
    /// Names of batchnorms turned into `Op::Affine`.
    pub affine: Vec<String>,
}

/// `lower_with_report` without the report.
pub fn lower(g: &Graph) -> Graph {
    lower_with_report(g).0
}

/// Per-channel (scale, shift) of a batchnorm in f64: `scale = γ/sqrt(var+eps)`,
/// `shift = β − mean·scale`. None when the parameter lengths differ from `channels`.
fn bn_scale_shift(b: &BatchNormOp, channels: usize) -> Option<Vec<(f64, f64)>> {
    let params = [&b.gamma.data, &b.beta.data, &b.mean.data, &b.var.data];
    if params.iter().any(|p| p.len() != channels) {
        return None;
    }
    let per = (0..channels)
        .map(|c| {
            let (g, be, m, v) = (
                b.gamma.data[c],
                b.beta.data[c],
                b.mean.data[c],
                b.var.data[c],
            );
            let scale = f64::from(g) / (f64::from(v) + b.eps).sqrt();
            (scale, f64::from(be) - f64::from(m) * scale)
        })
        .collect();
    Some(per)
}

/// The conv with the batchnorm folded in, or None when the tensor sizes are inconsistent.
fn fold(conv: &ConvOp, bn: &BatchNormOp) -> Option<ConvOp> {
    let out = conv.out_channels;
    let ss = bn_scale_shift(bn, out)?;
    if out == 0 || !conv.weight.data.len().is_multiple_of(out) {
        return None;
    }
    let per_out = conv.weight.data.len() / out;
    if let Some(b) = &conv.bias {
        if b.data.len() != out {
            return None;
        }
    }
    let mut weight = conv.weight.clone();
    for (chunk, &(scale, _)) in weight.data.chunks_mut(per_out).zip(&ss) {
        for w in chunk {
            *w = (f64::from(*w) * scale) as f32;
        }
    }
    // b' = (b − mean)·scale + β = b·scale + shift.
    let bias = (0..out)
        .map(|o| {
            let b = conv
                .bias
                .as_ref()
                .and_then(|t| t.data.get(o))
                .map_or(0.0, |&v| f64::from(v));
            let (scale, shift) = ss[o];
            (b * scale + shift) as f32
        })
        .collect();
    Some(ConvOp {
        weight,
        bias: Some(Tensor {
            shape: vec![out],
            data: bias,
        }),
        ..conv.clone()
    })
}

/// Returns an equivalent graph without batchnorms, and what was done.
///
/// A batchnorm is folded into its input conv when the conv has no activation, no other consumer
/// and is not the graph output; the fused node keeps the conv's name and position, takes the
/// batchnorm's activation, and the batchnorm's consumers (and `output`) are rewired to it. Every
/// other batchnorm becomes `Op::Affine` in place. A batchnorm whose parameter sizes do not match
/// its channels (impossible after validation) is left untouched.
pub fn lower_with_report(g: &Graph) -> (Graph, LowerReport) {
    let consumers = g.consumers();
    let mut report = LowerReport::default();
    let mut nodes: Vec<Node> = g.nodes.clone();
    // removed[i]: node i (a batchnorm) was folded into node `removed[i]`.
    let mut folded_into: Vec<Option<usize>> = vec![None; g.nodes.len()];

    for (i, n) in g.nodes.iter().enumerate() {
        let Op::BatchNorm(bn) = &n.op else { continue };
        let foldable_into = match n.inputs.as_slice() {
            [p] if *p < i => {
                let pn = &g.nodes[*p];
                let only_consumer = consumers.get(*p).is_some_and(|c| c.as_slice() == [i]);
                match &pn.op {
                    Op::Conv(conv)
                        if pn.act == crate::graph::Act::None
                            && only_consumer
                            && *p != g.output
                            && pn.shape == n.shape =>
                    {
                        fold(conv, bn).map(|f| (*p, f))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((p, fused)) = foldable_into {
            let conv_node = &mut nodes[p];
            conv_node.op = Op::Conv(fused);
            conv_node.act = n.act;
            folded_into[i] = Some(p);
            report.folded.push((n.name.clone(), conv_node.name.clone()));
        } else if let Some(ss) = bn_scale_shift(bn, n.shape.c) {
            nodes[i].op = Op::Affine(AffineOp {
                scale: ss.iter().map(|&(s, _)| s as f32).collect(),
                shift: ss.iter().map(|&(_, t)| t as f32).collect(),
            });
            report.affine.push(n.name.clone());
        }
    }

    // Renumber: kept nodes keep their relative (topological) order; a folded batchnorm maps to
    // its conv, which precedes it, so every rewired input still points backwards.
    let mut new_index = vec![0usize; nodes.len()];
    let mut kept = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.into_iter().enumerate() {
        match folded_into[i] {
            Some(p) => new_index[i] = new_index[p],
            None => {
                new_index[i] = kept.len();
                kept.push(node);
            }
        }
    }
    for node in &mut kept {
        for inp in &mut node.inputs {
            *inp = new_index.get(*inp).copied().unwrap_or(*inp);
        }
    }
    let output = new_index.get(g.output).copied().unwrap_or(g.output);
    let lowered = Graph {
        name: g.name.clone(),
        nodes: kept,
        output,
        arena_budget: g.arena_budget,
        file: g.file.clone(),
        microflows: None,
    };
    (lowered, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Act, Pad, Shape};
    use crate::reference::tests::{conv_op, graph, input, node};
    use crate::reference::{run, run_all};
    use crate::weights::random::RandomWeights;
    use crate::weights::{ParamKind, WeightRequest};

    fn gen(name: &str, shape: &[usize], kind: ParamKind) -> Vec<f32> {
        RandomWeights::new(42)
            .generate(&WeightRequest { name, shape, kind })
            .unwrap()
            .data
    }

    fn conv(
        name: &str,
        [cin, cout, groups]: [usize; 3],
        bias: bool,
        shape: Shape,
        from: usize,
        act: Act,
    ) -> Node {
        let w = gen(
            &format!("{name}.w"),
            &[cout, cin / groups, 3, 3],
            ParamKind::Weight,
        );
        let b = bias.then(|| gen(&format!("{name}.b"), &[cout], ParamKind::Bias));
        let pad = Pad {
            top: 1,
            left: 1,
            bottom: 1,
            right: 1,
        };
        node(
            name,
            conv_op(cout, [3, 3], [1, 1], pad, groups, w, b, cin),
            vec![from],
            shape,
            act,
        )
    }

    fn bn(name: &str, shape: Shape, from: usize, act: Act) -> Node {
        let c = shape.c;
        let p = |s: &str, k| Tensor {
            shape: vec![c],
            data: gen(&format!("{name}.{s}"), &[c], k),
        };
        let op = Op::BatchNorm(BatchNormOp {
            eps: 1e-5,
            gamma: p("g", ParamKind::BnGamma),
            beta: p("b", ParamKind::BnBeta),
            mean: p("m", ParamKind::BnMean),
            var: p("v", ParamKind::BnVar),
        });
        node(name, op, vec![from], shape, act)
    }

    fn random_input(len: usize, seed: u64) -> Vec<f32> {
        RandomWeights::new(seed)
            .generate(&WeightRequest {
                name: "x",
                shape: &[len],
                kind: ParamKind::BnGamma,
            })
            .unwrap()
            .data
            .iter()
            .map(|v| (v - 1.0) * 4.0)
            .collect()
    }

    /// Every value within 1e-6 of the largest magnitude of its output (relative error that is
    /// meaningful even where cancellation makes single values tiny).
    fn assert_equivalent(a: &Graph, b: &Graph) {
        for seed in 0..3 {
            let x = random_input(a.input_shape().len(), seed);
            let ya = run(a, &x).unwrap();
            let yb = run(b, &x).unwrap();
            assert_eq!(ya.len(), yb.len());
            let scale = ya.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
            for (p, q) in ya.iter().zip(&yb) {
                assert!((p - q).abs() <= 1e-6 * scale, "{p} vs {q} (scale {scale})");
            }
        }
    }

    fn no_batchnorm(g: &Graph) -> bool {
        !g.nodes.iter().any(|n| matches!(n.op, Op::BatchNorm(_)))
    }

    #[test]
    fn conv_bn_is_folded_and_bias_created() {
        let s = Shape::new(4, 5, 5);
        let g = graph(vec![
            input(Shape::new(3, 5, 5)),
            conv("c1", [3, 4, 1], false, s, 0, Act::None),
            bn("bn1", s, 1, Act::None),
        ]);
        let (l, r) = lower_with_report(&g);
        assert_eq!(r.folded, vec![("bn1".to_string(), "c1".to_string())]);
        assert!(r.affine.is_empty());
        assert_eq!(l.nodes.len(), 2);
        assert_eq!(l.output, 1);
        assert_eq!(l.nodes[1].name, "c1");
        let Op::Conv(c) = &l.nodes[1].op else {
            panic!("not a conv")
        };
        assert_eq!(c.bias.as_ref().map(|b| b.shape.clone()), Some(vec![4]));
        assert!(no_batchnorm(&l));
        assert_equivalent(&g, &l);
    }

    #[test]
    fn conv_bn_relu_with_consumers_rewired() {
        let s = Shape::new(4, 4, 4);
        let g = graph(vec![
            input(Shape::new(2, 4, 4)),
            conv("c1", [2, 4, 2], true, s, 0, Act::None),
            bn("bn1", s, 1, Act::Relu),
            conv("c2", [4, 4, 4], true, s, 2, Act::None), // depthwise
            bn("bn2", s, 3, Act::Relu6),
            node("add", Op::Add, vec![2, 4], s, Act::None),
            node(
                "gap",
                Op::GlobalAvgPool,
                vec![5],
                Shape::new(4, 1, 1),
                Act::None,
            ),
        ]);
        let (l, r) = lower_with_report(&g);
        assert_eq!(r.folded.len(), 2);
        assert_eq!(l.nodes.len(), 5);
        let names: Vec<&str> = l.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["input", "c1", "c2", "add", "gap"]);
        assert_eq!(l.nodes[1].act, Act::Relu);
        assert_eq!(l.nodes[2].act, Act::Relu6);
        assert_eq!(l.nodes[2].inputs, vec![1]);
        assert_eq!(l.nodes[3].inputs, vec![1, 2]);
        assert_eq!(l.output, 4);
        crate::reference::check(&l).unwrap();
        assert_equivalent(&g, &l);
    }

    #[test]
    fn bn_after_add_becomes_affine() {
        let s = Shape::new(3, 3, 3);
        let g = graph(vec![
            input(s),
            node("add", Op::Add, vec![0, 0], s, Act::None),
            bn("bn", s, 1, Act::Relu),
        ]);
        let (l, r) = lower_with_report(&g);
        assert!(r.folded.is_empty());
        assert_eq!(r.affine, vec!["bn".to_string()]);
        assert!(matches!(l.nodes[2].op, Op::Affine(_)));
        assert_eq!(l.nodes[2].act, Act::Relu);
        assert_equivalent(&g, &l);
    }

    #[test]
    fn conv_with_two_consumers_is_not_folded() {
        let s = Shape::new(2, 4, 4);
        let g = graph(vec![
            input(s),
            conv("c", [2, 2, 1], true, s, 0, Act::None),
            bn("bn", s, 1, Act::None),
            node("add", Op::Add, vec![1, 2], s, Act::None),
        ]);
        let (l, r) = lower_with_report(&g);
        assert!(r.folded.is_empty());
        assert_eq!(r.affine, vec!["bn".to_string()]);
        assert_eq!(l.nodes.len(), 4);
        assert_eq!(l.nodes[1].op, g.nodes[1].op);
        assert_equivalent(&g, &l);
    }

    #[test]
    fn conv_with_act_or_as_output_is_not_folded() {
        let s = Shape::new(2, 3, 3);
        let g = graph(vec![
            input(s),
            conv("c", [2, 2, 1], true, s, 0, Act::Relu),
            bn("bn", s, 1, Act::None),
        ]);
        let (l, r) = lower_with_report(&g);
        assert!(r.folded.is_empty() && r.affine == ["bn"]);
        assert_equivalent(&g, &l);

        let mut g = graph(vec![
            input(s),
            conv("c", [2, 2, 1], true, s, 0, Act::None),
            bn("bn", s, 1, Act::None),
        ]);
        g.output = 1;
        let (l, r) = lower_with_report(&g);
        assert!(r.folded.is_empty() && r.affine == ["bn"]);
        assert_eq!(
            run_all(&g, &[1.0; 18]).unwrap()[1],
            run_all(&l, &[1.0; 18]).unwrap()[1]
        );
    }

    #[test]
    fn graph_without_batchnorm_is_unchanged() {
        let s = Shape::new(2, 3, 3);
        let g = graph(vec![input(s), conv("c", [2, 2, 1], true, s, 0, Act::Relu)]);
        let (l, r) = lower_with_report(&g);
        assert_eq!(l, g);
        assert_eq!(r, LowerReport::default());
    }
}
