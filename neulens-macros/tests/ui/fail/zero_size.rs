#[neulens::neulens_model(inline = r#"
input: { channels: 0, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: s, op: softmax }
"#)]
pub mod zero_input {}

#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: fc, op: dense, out: 0 }
"#)]
pub mod zero_out {}

fn main() {}
