#[neulens::neulens_model(inline = r#"
input: { channels: 1, height: 2, width: 9 }
weights: { random: 1 }
layers:
  - { name: c, op: conv, out: 1, kernel: 5, pad: 1 }
"#)]
pub mod conv {}

#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: p, op: maxpool, kernel: 9 }
"#)]
pub mod pool {}

fn main() {}
