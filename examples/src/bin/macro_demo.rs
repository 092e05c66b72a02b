//! The same demo model through the attribute macro instead of build.rs, plus an inline spec.
//! `cargo run --release -p neulens-examples --bin macro_demo`

#[neulens::neulens_model(spec = "../specs/demo.yaml")]
pub mod demo {}

#[neulens::neulens_model(inline = r#"
name: tiny
input: { channels: 2, height: 9, width: 9 }
weights: { random: 3 }
layers:
  - { name: c1, op: conv, out: 4, kernel: 3, pad: 1, act: relu }
  - { name: gap, op: global_avg_pool }
  - { name: fc, op: dense, out: 3 }
"#)]
pub mod tiny {}

fn main() {
    let input = [0.25f32; demo::INPUT_LEN];
    let mut arena = [0f32; demo::ARENA_LEN];
    let mut out = [0f32; demo::OUTPUT_LEN];
    demo::infer(&input, &mut arena, &mut out);
    println!(
        "demo: arena {} bytes, {} MACs, output {:?}",
        demo::ARENA_BYTES,
        demo::MACS,
        out
    );

    let input = [1.0f32; tiny::INPUT_LEN];
    let mut arena = [0f32; tiny::ARENA_LEN];
    let mut out = [0f32; tiny::OUTPUT_LEN];
    tiny::infer(&input, &mut arena, &mut out);
    println!(
        "tiny: arena {} bytes, {} MACs, output {:?}",
        tiny::ARENA_BYTES,
        tiny::MACS,
        out
    );
}
