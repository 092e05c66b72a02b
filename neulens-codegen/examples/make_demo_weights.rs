//! Writes `specs/demo.safetensors`: seeded weights for `specs/demo.yaml` in PyTorch `state_dict`
//! naming and dtypes (one tensor in bf16, one in f64, `num_batches_tracked` as i64), so the demo
//! exercises the safetensors path end to end. `cargo run -p neulens-codegen --example make_demo_weights`

use neulens_codegen::weights::random::RandomWeights;
use neulens_codegen::weights::safetensors::{serialize, Dtype};
use neulens_codegen::weights::{ParamKind, WeightRequest};
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let rng = RandomWeights::new(2026);
    let params: &[(&str, &[usize], ParamKind)] = &[
        ("stem.weight", &[16, 1, 3, 3], ParamKind::Weight),
        ("stem.bias", &[16], ParamKind::Bias),
        ("dw.weight", &[16, 1, 3, 3], ParamKind::Weight),
        ("dw.bias", &[16], ParamKind::Bias),
        ("pw.weight", &[16, 16, 1, 1], ParamKind::Weight),
        ("pw.bias", &[16], ParamKind::Bias),
        ("bn.weight", &[16], ParamKind::BnGamma),
        ("bn.bias", &[16], ParamKind::BnBeta),
        ("bn.running_mean", &[16], ParamKind::BnMean),
        ("bn.running_var", &[16], ParamKind::BnVar),
        ("branch_a.weight", &[8, 16, 1, 1], ParamKind::Weight),
        ("branch_a.bias", &[8], ParamKind::Bias),
        ("branch_b.weight", &[8, 16, 1, 5], ParamKind::Weight),
        ("branch_b.bias", &[8], ParamKind::Bias),
        ("down.weight", &[32, 32, 3, 3], ParamKind::Weight),
        ("down.bias", &[32], ParamKind::Bias),
        ("fc.weight", &[10, 32], ParamKind::Weight),
        ("fc.bias", &[10], ParamKind::Bias),
    ];
    let mut tensors = Vec::new();
    for &(name, shape, kind) in params {
        let t = rng
            .generate(&WeightRequest { name, shape, kind })
            .expect("random weights exist for every request");
        let (dtype, bytes): (Dtype, Vec<u8>) = match name {
            // bf16 like a model saved in half precision: round to nearest even.
            "fc.weight" => (
                Dtype::BF16,
                t.data
                    .iter()
                    .flat_map(|v| to_bf16(*v).to_le_bytes())
                    .collect(),
            ),
            "bn.running_var" => (
                Dtype::F64,
                t.data
                    .iter()
                    .flat_map(|v| (*v as f64).to_le_bytes())
                    .collect(),
            ),
            _ => (
                Dtype::F32,
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        };
        tensors.push((name.to_string(), dtype, shape.to_vec(), bytes));
    }
    tensors.push((
        "bn.num_batches_tracked".to_string(),
        Dtype::I64,
        vec![],
        1000i64.to_le_bytes().to_vec(),
    ));
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("specs")
        .join("demo.safetensors");
    std::fs::write(&out, serialize(&tensors))?;
    println!("wrote {}", out.display());
    Ok(())
}

fn to_bf16(v: f32) -> u16 {
    let b = v.to_bits();
    let round = 0x7fff + ((b >> 16) & 1);
    (b.wrapping_add(round) >> 16) as u16
}
