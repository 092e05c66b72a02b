#[neulens::neulens_model(inline = r#"
input: { channels: 65536, height: 16384, width: 16384 }
weights: { random: 1 }
layers:
  - { name: s, op: softmax }
"#)]
pub mod huge_input {}

#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: fc, op: dense, out: 268435456 }
"#)]
pub mod huge_weight {}

#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: fc, op: dense, out: 99999999999999999999999 }
"#)]
pub mod overflowing_literal {}

fn main() {}
