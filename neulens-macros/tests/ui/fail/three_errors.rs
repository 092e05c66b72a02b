#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: c1, op: convolution, out: 4, kernel: 3 }
  - { name: c2, op: conv, out: abc, kernel: 3, input: input }
  - { name: c3, op: add, inputs: [c2, c4] }
  - { name: fc, op: dense, out: 10, input: c2 }
"#)]
pub mod net {}

fn main() {}
