#[neulens::neulens_model(inline = r#"
name: tiny
input: { channels: 1, height: 4, width: 4 }
weights: { random: 1 }
layers:
  - { name: c1, op: conv, out: 2, kernel: 3, pad: 1, act: relu }
  - { name: c2, op: conv, out: 2, kernel: 3, pad: 1 }
  - { name: gap, op: global_avg_pool }
"#)]
pub mod tiny {}

fn main() {
    let mut arena = [0f32; tiny::ARENA_LEN];
    let mut out = [0f32; tiny::OUTPUT_LEN];
    tiny::infer(&[0.0; 15], &mut arena, &mut out);
    tiny::infer(&[0.0; 16], &mut [0.0; 1], &mut out);
    tiny::infer(&[0.0; 16], &mut arena, &mut [0.0; 3]);
}
