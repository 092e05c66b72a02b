#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: c1, op: conv, out: 4, kernel: 1 }
  - { name: c2, op: conv, out: 8, kernel: 1 }
  - { name: r, op: add, inputs: [c1, c2] }
"#)]
pub mod net {}

fn main() {}
