#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: c1, op: conv, out: 4, kernel: 3, strides: 2 }
"#)]
pub mod layer_field {}

#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
wieghts: { random: 1 }
layers:
  - { name: s, op: softmax }
"#)]
pub mod top_level_field {}

fn main() {}
