// The macro path of micro-flows: `infer_adaptive` exists, every tile at the widest level equals
// `infer`, and a budget is respected.
#[neulens::neulens_model(inline = r#"
name: tiles
input: { channels: 1, height: 16, width: 16 }
weights: { random: 3 }
layers:
  - { name: c1, op: conv, out: 8, kernel: 3, pad: 1, act: relu }
  - { name: c2, op: conv, out: 8, kernel: 3, stride: 2, pad: 1, act: relu }
  - { name: gap, op: global_avg_pool }
  - { name: fc, op: dense, out: 4 }
microflows: { split_after: c2, grid: 2, levels: [1.0, 0.5], gate: { weights: gate, channels: 4 } }
"#)]
pub mod tiles {}

fn main() {
    let input: Vec<f32> = (0..tiles::INPUT_LEN).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
    let input: &[f32; tiles::INPUT_LEN] = input.as_slice().try_into().unwrap();
    let mut arena = [0f32; tiles::ARENA_LEN];
    let mut dense = [0f32; tiles::OUTPUT_LEN];
    tiles::infer(input, &mut arena, &mut dense);
    let mut adaptive_arena = [0f32; tiles::ADAPTIVE_ARENA_LEN];
    let mut out = [0f32; tiles::OUTPUT_LEN];
    let r = tiles::infer_adaptive(input, &mut adaptive_arena, &mut out, neulens::Policy::Fixed(0));
    assert_eq!(r.levels, [0; tiles::TILES]);
    for (a, b) in out.iter().zip(&dense) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{out:?} vs {dense:?}");
    }
    let narrow: u64 = tiles::TILE_MACS.iter().map(|t| t[1]).sum();
    let budget = neulens::Budget::Macs(tiles::GATE_MACS + tiles::TAIL_MACS + narrow);
    let r = tiles::infer_adaptive(input, &mut adaptive_arena, &mut out, neulens::Policy::Budget(budget));
    assert!(r.within_budget && r.total_macs <= budget.macs(tiles::MACS), "{r:?}");
}
