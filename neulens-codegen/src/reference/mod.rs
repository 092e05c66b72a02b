//! The f64 reference interpreter: the test oracle for generated code. It owns the exact PyTorch
//! semantics of every `Op` (CHW, batch 1) and favours obvious correctness over speed.

use crate::graph::{Act, AffineOp, BatchNormOp, ConvOp, DenseOp, Graph, Node, Op, PoolOp, Shape};

/// Runs the graph on `input` (CHW, f32) and returns the output node's value in f64.
pub fn run(g: &Graph, input: &[f32]) -> Result<Vec<f64>, String> {
    let mut all = run_all(g, input)?;
    if g.output >= all.len() {
        return Err(format!(
            "malformed graph: output index {} out of range",
            g.output
        ));
    }
    Ok(all.swap_remove(g.output))
}

/// Runs the graph and returns every node's value (index = node index).
///
/// Errors: the input length differs from the input shape, or the graph is malformed (checked up
/// front by `check`, so the op implementations below can index freely).
pub fn run_all(g: &Graph, input: &[f32]) -> Result<Vec<Vec<f64>>, String> {
    let input: Vec<f64> = input.iter().map(|&v| f64::from(v)).collect();
    run_all_f64(g, &input)
}

/// `run` on an f64 input (e.g. a stitched micro-flow feature map computed by the reference).
pub fn run_f64(g: &Graph, input: &[f64]) -> Result<Vec<f64>, String> {
    let mut all = run_all_f64(g, input)?;
    if g.output >= all.len() {
        return Err(format!(
            "malformed graph: output index {} out of range",
            g.output
        ));
    }
    Ok(all.swap_remove(g.output))
}

/// `run_all` on an f64 input.
pub fn run_all_f64(g: &Graph, input: &[f64]) -> Result<Vec<Vec<f64>>, String> {
    check(g)?;
    let in_shape = g.input_shape();
    if input.len() != in_shape.len() {
        return Err(format!(
            "input has {} values but the model input is {in_shape} = {} values",
            input.len(),
            in_shape.len()
        ));
    }
    let mut values: Vec<Vec<f64>> = Vec::with_capacity(g.nodes.len());
    for n in &g.nodes {
        let x = |k: usize| -> (&[f64], Shape) {
            let i = n.inputs[k];
            (&values[i], g.nodes[i].shape)
        };
        let out = match &n.op {
            Op::Input => input.to_vec(),
            Op::Conv(c) => conv(c, x(0), n.shape),
            Op::BatchNorm(b) => batchnorm(b, x(0)),
            Op::MaxPool(p) => pool(p, x(0), n, true)?,
            Op::AvgPool(p) => pool(p, x(0), n, false)?,
            Op::GlobalAvgPool => global_avg_pool(x(0)),
            Op::Dense(d) => dense(d, x(0).0),
            Op::Add => {
                let mut acc = vec![0.0; n.shape.len()];
                for &i in &n.inputs {
                    for (a, v) in acc.iter_mut().zip(&values[i]) {
                        *a += v;
                    }
                }
                acc
            }
            Op::Concat => n
                .inputs
                .iter()
                .flat_map(|&i| values[i].iter().copied())
                .collect(),
            Op::Flatten => x(0).0.to_vec(),
            Op::Softmax => softmax(x(0).0),
            Op::Affine(a) => affine(a, x(0)),
            Op::Crop { top, left } => {
                let (v, s) = x(0);
                let o = n.shape;
                let mut out = Vec::with_capacity(o.len());
                for ch in 0..o.c {
                    for y in 0..o.h {
                        let row = (ch * s.h + top + y) * s.w + left;
                        out.extend_from_slice(&v[row..row + o.w]);
                    }
                }
                out
            }
        };
        values.push(out.into_iter().map(|v| act(n.act, v)).collect());
    }
    Ok(values)
}

/// The activation fused after every op (for `Input` it is always `None` in practice).
pub fn act(a: Act, v: f64) -> f64 {
    match a {
        Act::None => v,
        Act::Relu => v.max(0.0),
        Act::Relu6 => v.clamp(0.0, 6.0),
    }
}

fn w(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Input coordinate of output `o`, tap `k`: `o·stride + k − pad`, or None outside `[0, size)`.
fn tap(o: usize, stride: usize, k: usize, pad: usize, size: usize) -> Option<usize> {
    (o * stride + k).checked_sub(pad).filter(|&i| i < size)
}

fn conv(c: &ConvOp, (x, s): (&[f64], Shape), out: Shape) -> Vec<f64> {
    let weight = w(&c.weight.data);
    let bias = c.bias.as_ref().map(|b| w(&b.data));
    let [kh, kw] = c.kernel;
    let cin_g = s.c / c.groups;
    let cout_g = out.c / c.groups;
    let mut y = vec![0.0; out.len()];
    for o in 0..out.c {
        let g = o / cout_g;
        for oy in 0..out.h {
            for ox in 0..out.w {
                let mut acc = bias.as_ref().map_or(0.0, |b| b[o]);
                for ci in 0..cin_g {
                    let ic = g * cin_g + ci;
                    for ky in 0..kh {
                        let Some(iy) = tap(oy, c.stride[0], ky, c.pad.top, s.h) else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) = tap(ox, c.stride[1], kx, c.pad.left, s.w) else {
                                continue;
                            };
                            acc += weight[((o * cin_g + ci) * kh + ky) * kw + kx]
                                * x[(ic * s.h + iy) * s.w + ix];
                        }
                    }
                }
                y[(o * out.h + oy) * out.w + ox] = acc;
            }
        }
    }
    y
}

fn batchnorm(b: &BatchNormOp, (x, s): (&[f64], Shape)) -> Vec<f64> {
    let (gamma, beta, mean, var) = (
        w(&b.gamma.data),
        w(&b.beta.data),
        w(&b.mean.data),
        w(&b.var.data),
    );
    let hw = s.h * s.w;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i / hw;
            (v - mean[c]) / (var[c] + b.eps).sqrt() * gamma[c] + beta[c]
        })
        .collect()
}

fn pool(p: &PoolOp, (x, s): (&[f64], Shape), n: &Node, is_max: bool) -> Result<Vec<f64>, String> {
    let out = n.shape;
    let [kh, kw] = p.kernel;
    let mut y = vec![0.0; out.len()];
    for c in 0..out.c {
        for oy in 0..out.h {
            for ox in 0..out.w {
                let mut max = f64::NEG_INFINITY;
                let mut sum = 0.0;
                let mut count = 0usize;
                for ky in 0..kh {
                    let Some(iy) = tap(oy, p.stride[0], ky, p.pad.top, s.h) else {
                        continue;
                    };
                    for kx in 0..kw {
                        let Some(ix) = tap(ox, p.stride[1], kx, p.pad.left, s.w) else {
                            continue;
                        };
                        let v = x[(c * s.h + iy) * s.w + ix];
                        max = max.max(v);
                        sum += v;
                        count += 1;
                    }
                }
                if count == 0 {
                    return Err(format!(
                        "malformed graph: node `{}`: pooling window at ({oy}, {ox}) lies entirely \
                         in the padding",
                        n.name
                    ));
                }
                let divisor = if p.count_include_pad { kh * kw } else { count };
                y[(c * out.h + oy) * out.w + ox] = if is_max { max } else { sum / divisor as f64 };
            }
        }
    }
    Ok(y)
}

fn global_avg_pool((x, s): (&[f64], Shape)) -> Vec<f64> {
    let hw = s.h * s.w;
    (0..s.c)
        .map(|c| x[c * hw..(c + 1) * hw].iter().sum::<f64>() / hw as f64)
        .collect()
}

fn dense(d: &DenseOp, x: &[f64]) -> Vec<f64> {
    let weight = w(&d.weight.data);
    let n_in = x.len();
    (0..d.out_features)
        .map(|o| {
            let b = d.bias.as_ref().map_or(0.0, |b| f64::from(b.data[o]));
            b + (0..n_in).map(|i| weight[o * n_in + i] * x[i]).sum::<f64>()
        })
        .collect()
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|&v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

fn affine(a: &AffineOp, (x, s): (&[f64], Shape)) -> Vec<f64> {
    let hw = s.h * s.w;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i / hw;
            v * f64::from(a.scale[c]) + f64::from(a.shift[c])
        })
        .collect()
}

/// Structural checks that make every index in this module valid. A graph from the front end
/// always passes; hand-built or corrupted graphs get a message instead of a panic.
pub fn check(g: &Graph) -> Result<(), String> {
    if g.nodes.is_empty() {
        return Err("malformed graph: no nodes".into());
    }
    if g.output >= g.nodes.len() {
        return Err(format!(
            "malformed graph: output index {} out of range",
            g.output
        ));
    }
    for (idx, n) in g.nodes.iter().enumerate() {
        let bad = |m: String| Err(format!("malformed graph: node {idx} `{}`: {m}", n.name));
        let is_input = matches!(n.op, Op::Input);
        if is_input != (idx == 0) {
            return bad("node 0, and only node 0, must be the input".into());
        }
        if let Some(&i) = n.inputs.iter().find(|&&i| i >= idx) {
            return bad(format!("input {i} is not an earlier node"));
        }
        let want_inputs = match n.op {
            Op::Input => Some(0),
            Op::Add | Op::Concat => None,
            _ => Some(1),
        };
        match want_inputs {
            Some(k) if n.inputs.len() != k => {
                return bad(format!(
                    "{} takes {k} input(s), has {}",
                    n.op.name(),
                    n.inputs.len()
                ))
            }
            None if n.inputs.is_empty() => return bad("needs at least one input".into()),
            _ => {}
        }
        let ins: Vec<Shape> = n.inputs.iter().map(|&i| g.nodes[i].shape).collect();
        let out = n.shape;
        let first = ins.first().copied().unwrap_or(out);
        let len_is = |what: &str, got: usize, want: usize| -> Result<(), String> {
            if got == want {
                Ok(())
            } else {
                Err(format!(
                    "malformed graph: node {idx} `{}`: {what} has {got} values, expected {want}",
                    n.name
                ))
            }
        };
        match &n.op {
            Op::Input => {}
            Op::Conv(c) => {
                if c.groups == 0 || first.c % c.groups != 0 || out.c % c.groups != 0 {
                    return bad(format!("groups {} do not divide channels", c.groups));
                }
                if c.out_channels != out.c {
                    return bad("out_channels differs from the output shape".into());
                }
                let per = (first.c / c.groups)
                    .checked_mul(c.kernel[0])
                    .and_then(|v| v.checked_mul(c.kernel[1]))
                    .and_then(|v| v.checked_mul(out.c));
                len_is("weight", c.weight.data.len(), per.unwrap_or(usize::MAX))?;
                if let Some(b) = &c.bias {
                    len_is("bias", b.data.len(), out.c)?;
                }
            }
            Op::BatchNorm(b) => {
                if out != first {
                    return bad("output shape differs from input shape".into());
                }
                for (name, t) in [
                    ("gamma", &b.gamma),
                    ("beta", &b.beta),
                    ("mean", &b.mean),
                    ("var", &b.var),
                ] {
                    len_is(name, t.data.len(), out.c)?;
                }
            }
            Op::MaxPool(p) | Op::AvgPool(p) => {
                if p.stride.contains(&0) || p.kernel.contains(&0) || out.c != first.c {
                    return bad("zero kernel or stride, or channel count changed".into());
                }
            }
            Op::GlobalAvgPool => {
                if out != Shape::new(first.c, 1, 1) || first.h * first.w == 0 {
                    return bad(format!("output must be {}×1×1 of a non-empty map", first.c));
                }
            }
            Op::Dense(d) => {
                if out != Shape::new(d.out_features, 1, 1) {
                    return bad("output shape must be out_features×1×1".into());
                }
                let per = d.out_features.checked_mul(first.len());
                len_is("weight", d.weight.data.len(), per.unwrap_or(usize::MAX))?;
                if let Some(b) = &d.bias {
                    len_is("bias", b.data.len(), d.out_features)?;
                }
            }
            Op::Add => {
                if ins.iter().any(|&s| s != out) {
                    return bad("inputs must all have the output shape".into());
                }
            }
            Op::Concat => {
                let c: usize = ins.iter().map(|s| s.c).sum();
                if ins.iter().any(|s| s.h != out.h || s.w != out.w) || c != out.c {
                    return bad("inputs must share H and W and their channels sum to C".into());
                }
            }
            Op::Flatten | Op::Softmax => {
                if out.len() != first.len() {
                    return bad("output length differs from input length".into());
                }
            }
            Op::Affine(a) => {
                if out != first {
                    return bad("output shape differs from input shape".into());
                }
                len_is("scale", a.scale.len(), out.c)?;
                len_is("shift", a.shift.len(), out.c)?;
            }
            Op::Crop { top, left } => {
                if out.c != first.c || top + out.h > first.h || left + out.w > first.w {
                    return bad("the crop window must lie inside the input".into());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::diag::Loc;
    use crate::graph::{AlgoRequest, Pad, Tensor};

    pub(crate) fn node(name: &str, op: Op, inputs: Vec<usize>, shape: Shape, act: Act) -> Node {
        Node {
            name: name.into(),
            loc: Loc::UNKNOWN,
            op,
            inputs,
            shape,
            act,
        }
    }

    pub(crate) fn graph(nodes: Vec<Node>) -> Graph {
        let output = nodes.len() - 1;
        Graph {
            name: "t".into(),
            nodes,
            output,
            arena_budget: None,
            file: "test.yaml".into(),
            microflows: None,
        }
    }

    pub(crate) fn input(s: Shape) -> Node {
        node("input", Op::Input, vec![], s, Act::None)
    }

    fn t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: data.to_vec(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn conv_op(
        out: usize,
        k: [usize; 2],
        stride: [usize; 2],
        pad: Pad,
        groups: usize,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        cin: usize,
    ) -> Op {
        Op::Conv(ConvOp {
            out_channels: out,
            kernel: k,
            stride,
            pad,
            groups,
            weight: t(&[out, cin / groups, k[0], k[1]], &weight),
            bias: bias.map(|b| t(&[out], &b)),
            algo: AlgoRequest::Auto,
            prune: None,
        })
    }

    fn pad1() -> Pad {
        Pad {
            top: 1,
            left: 1,
            bottom: 1,
            right: 1,
        }
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    fn one_op(in_shape: Shape, op: Op, out: Shape, act: Act, x: &[f32]) -> Vec<f64> {
        let g = graph(vec![input(in_shape), node("op", op, vec![0], out, act)]);
        run(&g, x).unwrap()
    }

    const X9: [f32; 9] = [1., 2., 3., 4., 5., 6., 7., 8., 9.];

    #[test]
    fn conv_3x3_padding_bias() {
        // All-ones 3×3 kernel, padding 1: each output = sum of the in-bounds 3×3 neighbourhood.
        let op = conv_op(
            1,
            [3, 3],
            [1, 1],
            pad1(),
            1,
            vec![1.0; 9],
            Some(vec![0.5]),
            1,
        );
        let y = one_op(Shape::new(1, 3, 3), op, Shape::new(1, 3, 3), Act::None, &X9);
        close(&y, &[12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5]);
    }

    #[test]
    fn conv_cross_correlation_not_convolution() {
        // Kernel [[0,0,0],[0,0,1],[0,0,0]] picks the right neighbour (x[i][j+1]).
        let mut k = vec![0.0; 9];
        k[5] = 1.0;
        let op = conv_op(1, [3, 3], [1, 1], pad1(), 1, k, None, 1);
        let y = one_op(Shape::new(1, 3, 3), op, Shape::new(1, 3, 3), Act::None, &X9);
        close(&y, &[2., 3., 0., 5., 6., 0., 8., 9., 0.]);
    }

    #[test]
    fn conv_stride_2_and_relu() {
        // 4×4 input, 2×2 kernel [[1, -1], [0, 0]], stride 2, no padding → 2×2.
        let x: Vec<f32> = (0..16).map(|v| (v * v) as f32).collect();
        let op = conv_op(
            1,
            [2, 2],
            [2, 2],
            Pad::default(),
            1,
            vec![1., -1., 0., 0.],
            None,
            1,
        );
        let y = one_op(
            Shape::new(1, 4, 4),
            op.clone(),
            Shape::new(1, 2, 2),
            Act::None,
            &x,
        );
        // x[r][c] - x[r][c+1] at (0,0),(0,2),(2,0),(2,2): 0-1, 4-9, 64-81, 100-121
        close(&y, &[-1., -5., -17., -21.]);
        let y = one_op(Shape::new(1, 4, 4), op, Shape::new(1, 2, 2), Act::Relu, &x);
        close(&y, &[0., 0., 0., 0.]);
    }

    #[test]
    fn conv_asymmetric_padding_uses_output_shape() {
        // 1×1×2 input, 1×2 kernel [1, 10], pad left 0 / right 1 → outputs x0+10x1, x1.
        let op = conv_op(
            1,
            [1, 2],
            [1, 1],
            Pad {
                top: 0,
                left: 0,
                bottom: 0,
                right: 1,
            },
            1,
            vec![1., 10.],
            None,
            1,
        );
        let y = one_op(
            Shape::new(1, 1, 2),
            op,
            Shape::new(1, 1, 2),
            Act::None,
            &[3., 4.],
        );
        close(&y, &[43., 4.]);
    }

    #[test]
    fn conv_groups_2() {
        // 4 input channels (1×1 each), 2 groups, 2 outputs, 1×1 kernel.
        // out0 = 1·x0 + 2·x1, out1 = 3·x2 + 4·x3.
        let op = conv_op(
            2,
            [1, 1],
            [1, 1],
            Pad::default(),
            2,
            vec![1., 2., 3., 4.],
            Some(vec![0., 1.]),
            4,
        );
        let y = one_op(
            Shape::new(4, 1, 1),
            op,
            Shape::new(2, 1, 1),
            Act::None,
            &[1., 10., 100., 1000.],
        );
        close(&y, &[21., 4301.]);
        // 2 inputs, 2 groups, 4 outputs: outputs 0,1 see x0; outputs 2,3 see x1.
        let op = conv_op(
            4,
            [1, 1],
            [1, 1],
            Pad::default(),
            2,
            vec![1., 2., 3., 4.],
            None,
            2,
        );
        let y = one_op(
            Shape::new(2, 1, 1),
            op,
            Shape::new(4, 1, 1),
            Act::None,
            &[1., 10.],
        );
        close(&y, &[1., 2., 30., 40.]);
    }

    #[test]
    fn conv_depthwise() {
        // 2 channels 2×2, depthwise 2×2 kernels: channel 0 sums, channel 1 takes top-left.
        let op = conv_op(
            2,
            [2, 2],
            [1, 1],
            Pad::default(),
            2,
            vec![1., 1., 1., 1., 1., 0., 0., 0.],
            None,
            2,
        );
        let x = [1., 2., 3., 4., 5., 6., 7., 8.];
        let y = one_op(Shape::new(2, 2, 2), op, Shape::new(2, 1, 1), Act::None, &x);
        close(&y, &[10., 5.]);
    }

    #[test]
    fn batchnorm_and_relu6() {
        let op = Op::BatchNorm(BatchNormOp {
            eps: 0.25,
            gamma: t(&[2], &[2.0, 1.0]),
            beta: t(&[2], &[1.0, 0.0]),
            mean: t(&[2], &[1.0, -1.0]),
            var: t(&[2], &[3.75, 0.0]),
        });
        // c0: (x-1)/2·2+1 = x; c1: (x+1)/0.5 = 2x+2
        let y = one_op(
            Shape::new(2, 1, 2),
            op.clone(),
            Shape::new(2, 1, 2),
            Act::None,
            &[3., -5., 1., 4.],
        );
        close(&y, &[3., -5., 4., 10.]);
        let y = one_op(
            Shape::new(2, 1, 2),
            op,
            Shape::new(2, 1, 2),
            Act::Relu6,
            &[3., -5., 1., 4.],
        );
        close(&y, &[3., 0., 4., 6.]);
    }

    #[test]
    fn maxpool_with_padding_ignores_pad() {
        // All-negative input: zero padding would win; -inf padding must not.
        let x: Vec<f32> = X9.iter().map(|v| -v).collect();
        let p = PoolOp {
            kernel: [3, 3],
            stride: [2, 2],
            pad: pad1(),
            count_include_pad: true,
        };
        let y = one_op(
            Shape::new(1, 3, 3),
            Op::MaxPool(p),
            Shape::new(1, 2, 2),
            Act::None,
            &x,
        );
        close(&y, &[-1., -2., -4., -5.]);
    }

    #[test]
    fn avgpool_count_include_pad() {
        let p = PoolOp {
            kernel: [3, 3],
            stride: [2, 2],
            pad: pad1(),
            count_include_pad: true,
        };
        let y = one_op(
            Shape::new(1, 3, 3),
            Op::AvgPool(p.clone()),
            Shape::new(1, 2, 2),
            Act::None,
            &X9,
        );
        close(&y, &[12. / 9., 16. / 9., 24. / 9., 28. / 9.]);
        let p = PoolOp {
            count_include_pad: false,
            ..p
        };
        let y = one_op(
            Shape::new(1, 3, 3),
            Op::AvgPool(p),
            Shape::new(1, 2, 2),
            Act::None,
            &X9,
        );
        close(&y, &[3., 4., 6., 7.]);
    }

    #[test]
    fn pool_window_in_padding_is_an_error_not_a_panic() {
        let p = PoolOp {
            kernel: [1, 1],
            stride: [1, 1],
            pad: pad1(),
            count_include_pad: true,
        };
        let g = graph(vec![
            input(Shape::new(1, 1, 1)),
            node("p", Op::MaxPool(p), vec![0], Shape::new(1, 3, 3), Act::None),
        ]);
        assert!(run(&g, &[1.0]).unwrap_err().contains("padding"));
    }

    #[test]
    fn global_avg_pool_dense_flatten() {
        let y = one_op(
            Shape::new(2, 1, 2),
            Op::GlobalAvgPool,
            Shape::new(2, 1, 1),
            Act::None,
            &[1., 2., 3., 5.],
        );
        close(&y, &[1.5, 4.]);
        // Dense over a 2×1×2 map flattened in CHW order: W = [[1,2,3,4],[0,0,0,-1]], b = [1, 0].
        let g = graph(vec![
            input(Shape::new(2, 1, 2)),
            node("flat", Op::Flatten, vec![0], Shape::new(4, 1, 1), Act::None),
            node(
                "fc",
                Op::Dense(DenseOp {
                    out_features: 2,
                    weight: t(&[2, 4], &[1., 2., 3., 4., 0., 0., 0., -1.]),
                    bias: Some(t(&[2], &[1., 0.])),
                }),
                vec![1],
                Shape::new(2, 1, 1),
                Act::Relu,
            ),
        ]);
        let all = run_all(&g, &[1., 2., 3., 5.]).unwrap();
        close(&all[1], &[1., 2., 3., 5.]);
        close(&all[2], &[1. + 1. + 4. + 9. + 20., 0.]);
    }

    #[test]
    fn add_concat_affine_softmax() {
        let s = Shape::new(1, 1, 2);
        let aff = Op::Affine(AffineOp {
            scale: vec![2.0],
            shift: vec![-1.0],
        });
        let g = graph(vec![
            input(s),
            node("a", aff, vec![0], s, Act::None), // 2x-1
            node("add", Op::Add, vec![0, 1, 1], s, Act::Relu), // relu(x + 2(2x-1))
            node(
                "cat",
                Op::Concat,
                vec![1, 0],
                Shape::new(2, 1, 2),
                Act::None,
            ),
            node("sm", Op::Softmax, vec![3], Shape::new(2, 1, 2), Act::None),
        ]);
        let all = run_all(&g, &[1.0, -1.0]).unwrap();
        close(&all[1], &[1., -3.]);
        close(&all[2], &[3., 0.]);
        close(&all[3], &[1., -3., 1., -1.]);
        let sm = &all[4];
        let z: f64 = 2.0 * 1f64.exp() + (-3f64).exp() + (-1f64).exp();
        close(
            sm,
            &[
                1f64.exp() / z,
                (-3f64).exp() / z,
                1f64.exp() / z,
                (-1f64).exp() / z,
            ],
        );
        assert!((sm.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Large values do not overflow (max is subtracted).
        let g = graph(vec![
            input(s),
            node("sm", Op::Softmax, vec![0], s, Act::None),
        ]);
        close(&run(&g, &[1000.0, 1000.0]).unwrap(), &[0.5, 0.5]);
    }

    #[test]
    fn input_length_and_malformed_graphs_are_errors() {
        let s = Shape::new(1, 2, 2);
        let g = graph(vec![
            input(s),
            node("sm", Op::Softmax, vec![0], s, Act::None),
        ]);
        assert!(run(&g, &[1.0; 3]).unwrap_err().contains("3 values"));
        let bad = graph(vec![
            input(s),
            node("sm", Op::Softmax, vec![1], s, Act::None),
        ]);
        assert!(run(&bad, &[1.0; 4]).unwrap_err().contains("malformed"));
        let op = conv_op(1, [3, 3], [1, 1], pad1(), 1, vec![1.0; 8], None, 1);
        let bad = graph(vec![input(s), node("c", op, vec![0], s, Act::None)]);
        assert!(run(&bad, &[1.0; 4])
            .unwrap_err()
            .contains("weight has 8 values"));
    }
}
