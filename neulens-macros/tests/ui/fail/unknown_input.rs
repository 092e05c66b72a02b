#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: conv1, op: conv, out: 4, kernel: 1 }
  - { name: conv2, op: conv, out: 4, kernel: 1 }
  - { name: r, op: add, inputs: [conv1, cnv2] }
"#)]
pub mod net {}

fn main() {}
