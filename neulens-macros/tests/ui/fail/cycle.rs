#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: a, op: conv, out: 3, kernel: 1, input: c }
  - { name: b, op: conv, out: 3, kernel: 1 }
  - { name: c, op: conv, out: 3, kernel: 1 }
  - { name: out, op: global_avg_pool, input: input }
"#)]
pub mod net {}

fn main() {}
