// A valid inline spec compiles, and the generated `infer` runs on arrays of the right sizes.
#[neulens::neulens_model(inline = r#"
name: tiny
input: { channels: 2, height: 6, width: 6 }
weights: { random: 7 }
layers:
  - { name: c1, op: conv, out: 4, kernel: 3, pad: 1, act: relu }
  - { name: c2, op: conv, out: 4, kernel: 3, pad: 1 }
  - { name: res, op: add, inputs: [c1, c2], act: relu }
  - { name: gap, op: global_avg_pool }
  - { name: fc, op: dense, out: 3 }
  - { name: prob, op: softmax }
"#)]
pub mod tiny {}

fn main() {
    assert_eq!(tiny::INPUT_LEN, 2 * 6 * 6);
    assert_eq!(tiny::OUTPUT_LEN, 3);
    let input = [0.5f32; tiny::INPUT_LEN];
    let mut arena = [0f32; tiny::ARENA_LEN];
    let mut out = [0f32; tiny::OUTPUT_LEN];
    tiny::infer(&input, &mut arena, &mut out);
    let sum: f32 = out.iter().sum();
    assert!(out.iter().all(|p| p.is_finite() && *p >= 0.0), "{out:?}");
    assert!((sum - 1.0).abs() < 1e-5, "softmax sums to {sum}");
    // The slice entry point agrees and rejects wrong lengths at run time.
    let mut again = [0f32; tiny::OUTPUT_LEN];
    let mut big_arena = vec![0f32; tiny::ARENA_LEN + 5];
    tiny::infer_slices(&input, &mut big_arena, &mut again).unwrap();
    assert_eq!(out, again);
    let e = tiny::infer_slices(&input[1..], &mut big_arena, &mut again).unwrap_err();
    assert_eq!(
        e,
        neulens::Error::InputLength {
            expected: tiny::INPUT_LEN,
            found: tiny::INPUT_LEN - 1
        }
    );
}
