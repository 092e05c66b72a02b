//! Export of a lowered neulens graph (batchnorm already folded) for the ONNX Runtime comparison
//! (`benches/compare/`): a JSON description of every node and the f32 tensors it needs, which
//! `benches/compare/compare.py` turns into an ONNX model with the `onnx.helper` API.
//!
//! JSON layout (one object):
//!
//! ```text
//! { "format": "neulens-onnx-twin", "version": 1, "name": "resnet8",
//!   "input": { "name": "input", "shape": [C, H, W] },
//!   "output": "<node name>",
//!   "nodes": [ { "name", "op", "inputs": [names], "shape": [C, H, W], "act": "none|relu|relu6",
//!                ...op fields } ],
//!   "tensors": { "<name>": [dims] } }
//! ```
//!
//! Op fields: `conv`: `kernel` [kh, kw], `stride` [sh, sw], `pads` [top, left, bottom, right],
//! `groups`, `weight` (OIHW), `bias` (or null); `maxpool` / `avgpool`: `kernel`, `stride`,
//! `pads`, `count_include_pad`; `dense`: `weight` ([out, in], input flattened in CHW order),
//! `bias` (or null); `affine`: `scale`, `shift` (`[C]` each; `y = x·scale + shift`);
//! `global_avg_pool`, `add` (two or more inputs), `concat` (channels), `flatten` (CHW → N×1×1),
//! `softmax` (over all values) have none. Every value has the CHW shape `shape` (batch 1).

use neulens_codegen::graph::{Act, Graph, Op, Pad};
use serde_json::{json, Map, Value};
use std::path::Path;

/// An exported graph: the JSON description and the tensors it names (name, shape, data).
#[derive(Clone, Debug)]
pub struct OnnxTwin {
    pub json: Value,
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

fn act_name(a: Act) -> &'static str {
    match a {
        Act::None => "none",
        Act::Relu => "relu",
        Act::Relu6 => "relu6",
    }
}

fn pads(p: Pad) -> Value {
    json!([p.top, p.left, p.bottom, p.right])
}

/// Describes a *lowered* graph (`neulens_codegen::transform::lower`). Fails on a batchnorm
/// (lower the graph first) or a malformed graph (inputs out of order, tensor sizes that do not
/// match their shapes).
pub fn export(g: &Graph) -> Result<OnnxTwin, String> {
    let first = g.nodes.first().ok_or("the graph has no nodes")?;
    if !matches!(first.op, Op::Input) {
        return Err("node 0 is not the input".into());
    }
    if g.output >= g.nodes.len() || g.output == 0 {
        return Err(format!("output index {} is not a layer", g.output));
    }
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut add_tensor = |name: String, shape: Vec<usize>, data: &[f32]| -> Result<Value, String> {
        let count: usize = shape.iter().product();
        if count != data.len() {
            return Err(format!(
                "tensor `{name}` has {} values for shape {shape:?}",
                data.len()
            ));
        }
        if tensors.iter().any(|(n, _, _)| *n == name) {
            return Err(format!("two tensors are named `{name}`"));
        }
        tensors.push((name.clone(), shape, data.to_vec()));
        Ok(Value::String(name))
    };
    let mut nodes = Vec::with_capacity(g.nodes.len() - 1);
    for (i, n) in g.nodes.iter().enumerate().skip(1) {
        let mut inputs = Vec::with_capacity(n.inputs.len());
        for &j in &n.inputs {
            if j >= i {
                return Err(format!("layer `{}` reads node {j}, not before it", n.name));
            }
            inputs.push(g.nodes[j].name.clone());
        }
        if inputs.is_empty() {
            return Err(format!("layer `{}` has no input", n.name));
        }
        let mut o = Map::new();
        o.insert("name".into(), json!(n.name));
        o.insert("op".into(), json!(n.op.name()));
        o.insert("inputs".into(), json!(inputs));
        o.insert("shape".into(), json!([n.shape.c, n.shape.h, n.shape.w]));
        o.insert("act".into(), json!(act_name(n.act)));
        match &n.op {
            Op::Input => return Err(format!("layer `{}` is a second input", n.name)),
            Op::BatchNorm(_) => {
                return Err(format!(
                    "layer `{}` is a batchnorm: export the lowered graph (transform::lower)",
                    n.name
                ))
            }
            Op::Conv(c) => {
                o.insert("kernel".into(), json!(c.kernel));
                o.insert("stride".into(), json!(c.stride));
                o.insert("pads".into(), pads(c.pad));
                o.insert("groups".into(), json!(c.groups));
                let w = add_tensor(
                    format!("{}.weight", n.name),
                    c.weight.shape.clone(),
                    &c.weight.data,
                )?;
                o.insert("weight".into(), w);
                let b = match &c.bias {
                    Some(b) => add_tensor(format!("{}.bias", n.name), b.shape.clone(), &b.data)?,
                    None => Value::Null,
                };
                o.insert("bias".into(), b);
            }
            Op::MaxPool(p) | Op::AvgPool(p) => {
                o.insert("kernel".into(), json!(p.kernel));
                o.insert("stride".into(), json!(p.stride));
                o.insert("pads".into(), pads(p.pad));
                o.insert("count_include_pad".into(), json!(p.count_include_pad));
            }
            Op::Dense(d) => {
                let w = add_tensor(
                    format!("{}.weight", n.name),
                    d.weight.shape.clone(),
                    &d.weight.data,
                )?;
                o.insert("weight".into(), w);
                let b = match &d.bias {
                    Some(b) => add_tensor(format!("{}.bias", n.name), b.shape.clone(), &b.data)?,
                    None => Value::Null,
                };
                o.insert("bias".into(), b);
            }
            Op::Affine(a) => {
                let c = n.shape.c;
                let s = add_tensor(format!("{}.scale", n.name), vec![c], &a.scale)?;
                let t = add_tensor(format!("{}.shift", n.name), vec![c], &a.shift)?;
                o.insert("scale".into(), s);
                o.insert("shift".into(), t);
            }
            Op::GlobalAvgPool | Op::Add | Op::Concat | Op::Flatten | Op::Softmax => {}
            Op::Crop { .. } => {
                return Err(format!(
                "layer `{}`: crops exist only inside micro-flow tile graphs, not in an ONNX twin",
                n.name
            ))
            }
        }
        nodes.push(Value::Object(o));
    }
    let shapes: Map<String, Value> = tensors
        .iter()
        .map(|(n, s, _)| (n.clone(), json!(s)))
        .collect();
    let is = g.input_shape();
    let json = json!({
        "format": "neulens-onnx-twin",
        "version": 1,
        "name": g.name,
        "input": { "name": first.name, "shape": [is.c, is.h, is.w] },
        "output": g.nodes[g.output].name,
        "nodes": nodes,
        "tensors": shapes,
    });
    Ok(OnnxTwin { json, tensors })
}

impl OnnxTwin {
    /// Writes `<dir>/<stem>.json` and `<dir>/<stem>.safetensors` (f32).
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&self.json).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("{stem}.json")), text)?;
        let refs: Vec<(&str, &[usize], &[f32])> = self
            .tensors
            .iter()
            .map(|(n, s, d)| (n.as_str(), s.as_slice(), d.as_slice()))
            .collect();
        neulens_codegen::weights::safetensors::write(
            &dir.join(format!("{stem}.safetensors")),
            &refs,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every op the export knows, batchnorm folded and unfolded, asymmetric pads, groups, relu6.
    const SPEC: &str = "\
name: tiny
input: { channels: 4, height: 9, width: 9 }
weights: { random: 3 }
layers:
  - { name: c1, op: conv, out: 8, kernel: 3, pad: [0, 1, 1, 0], stride: 2, bias: false }
  - { name: bn1, op: batchnorm, act: relu6 }
  - { name: dw, op: conv, out: 8, kernel: 3, pad: 1, groups: 8 }
  - { name: bn2, op: batchnorm, inputs: [bn1] }
  - { name: sum, op: add, inputs: [dw, bn2, bn1], act: relu }
  - { name: mp, op: maxpool, kernel: 2, stride: 1, pad: [0, 0, 1, 1] }
  - { name: ap, op: avgpool, kernel: 3, stride: 1, pad: 1, count_include_pad: false, inputs: [sum] }
  - { name: cat, op: concat, inputs: [mp, ap] }
  - { name: gap, op: global_avg_pool }
  - { name: flat, op: flatten }
  - { name: fc, op: dense, out: 5 }
  - { name: prob, op: softmax }
";

    #[test]
    fn tiny_spec_exports_well_formed_json() {
        let loaded = neulens_codegen::load_model(SPEC, "tiny.yaml", Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"));
        // The raw graph has batchnorms: refused with a clear message.
        let e = export(&loaded.graph).unwrap_err();
        assert!(e.contains("batchnorm"), "{e}");

        let lowered = neulens_codegen::transform::lower(&loaded.graph);
        let twin = export(&lowered).unwrap();
        let j = &twin.json;
        assert_eq!(j["format"], "neulens-onnx-twin");
        assert_eq!(j["input"]["shape"], json!([4, 9, 9]));
        assert_eq!(j["output"], "prob");
        let nodes = j["nodes"].as_array().unwrap();
        let ops: Vec<&str> = nodes.iter().map(|n| n["op"].as_str().unwrap()).collect();
        assert_eq!(
            ops,
            [
                "conv",
                "conv",
                "affine",
                "add",
                "maxpool",
                "avgpool",
                "concat",
                "global_avg_pool",
                "flatten",
                "dense",
                "softmax"
            ]
        );
        // bn1 folded into c1 (with its relu6 and a new bias); bn2 kept as an affine.
        let c1 = &nodes[0];
        assert_eq!(c1["name"], "c1");
        assert_eq!(c1["act"], "relu6");
        assert_eq!(c1["pads"], json!([0, 1, 1, 0]));
        assert_eq!(c1["stride"], json!([2, 2]));
        assert_eq!(c1["shape"], json!([8, 4, 4]));
        assert_eq!(c1["bias"], "c1.bias");
        assert_eq!(nodes[1]["groups"], 8);
        assert_eq!(nodes[1]["inputs"], json!(["c1"]));
        assert_eq!(nodes[3]["inputs"], json!(["dw", "bn2", "c1"]));
        assert_eq!(nodes[5]["count_include_pad"], false);

        // Every input names an earlier value; every named tensor exists with a matching size.
        let mut seen = BTreeSet::from(["input".to_string()]);
        let shapes = j["tensors"].as_object().unwrap();
        for n in nodes {
            for i in n["inputs"].as_array().unwrap() {
                assert!(seen.contains(i.as_str().unwrap()), "{n}");
            }
            for key in ["weight", "bias", "scale", "shift"] {
                if let Some(t) = n.get(key).and_then(Value::as_str) {
                    assert!(shapes.contains_key(t), "{t}");
                }
            }
            assert_eq!(n["shape"].as_array().unwrap().len(), 3);
            seen.insert(n["name"].as_str().unwrap().to_string());
        }
        assert_eq!(shapes.len(), twin.tensors.len());
        for (name, shape, data) in &twin.tensors {
            assert_eq!(shapes[name], json!(shape));
            assert_eq!(shape.iter().product::<usize>(), data.len(), "{name}");
        }
        assert_eq!(shapes["c1.weight"], json!([8, 4, 3, 3]));
        assert_eq!(shapes["dw.weight"], json!([8, 1, 3, 3]));
        assert_eq!(shapes["fc.weight"], json!([5, 16]));
        assert_eq!(shapes["bn2.scale"], json!([8]));

        // Written files: the JSON parses back, and the safetensors file has every tensor.
        let dir = std::env::temp_dir().join(format!("neulens-onnx-twin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        twin.write(&dir, "tiny").unwrap();
        let back: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("tiny.json")).unwrap()).unwrap();
        assert_eq!(&back, j);
        let st = neulens_codegen::weights::safetensors::SafeTensorsFile::open(
            &dir.join("tiny.safetensors"),
        )
        .unwrap();
        assert_eq!(st.len(), twin.tensors.len());
        assert_eq!(st.shape("fc.weight"), Some(&[5usize, 16][..]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
