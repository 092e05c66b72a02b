// f32, f16 and bf16 weights from a safetensors file next to the spec; with a zero input the
// output is computable by hand: conv → relu(bias) → dense `fc` → dense `h` (values: tests/ui.rs).
#[neulens::neulens_model(spec = "../../../../neulens-macros/tests/ui/specs/pass_weights.yaml")]
pub mod weighted {}

fn main() {
    let g = [0.1f32, 0.0, 0.3, 0.4]; // relu(c1.bias), the global average of a constant map
    let fc_w: Vec<f32> = (0..12).map(|i| i as f32 * 0.1 - 0.5).collect();
    let fc_b = [0.01f32, 0.02, 0.03];
    let h_w = [0.5f32, -0.25, 1.0, 2.0, 0.125, -1.5, 0.75, 0.0, -0.5];
    let h_b = [1.0f32, -1.0, 0.5];
    let fc: Vec<f32> = (0..3)
        .map(|i| (0..4).map(|j| fc_w[i * 4 + j] * g[j]).sum::<f32>() + fc_b[i])
        .collect();
    let want: Vec<f32> = (0..3)
        .map(|k| (0..3).map(|i| h_w[k * 3 + i] * fc[i]).sum::<f32>() + h_b[k])
        .collect();
    let input = [0f32; weighted::INPUT_LEN];
    let mut arena = vec![0f32; weighted::ARENA_LEN];
    let mut out = [0f32; weighted::OUTPUT_LEN];
    weighted::infer_slices(&input, &mut arena, &mut out).unwrap();
    for (o, w) in out.iter().zip(&want) {
        assert!((o - w).abs() < 1e-5, "got {out:?}, want {want:?}");
    }
}
