#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: c1, op: convv, out: 4, kernel: 3 }
"#)]
pub mod net {}

fn main() {}
