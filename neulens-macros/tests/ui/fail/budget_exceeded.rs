#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - { name: c1, op: conv, out: 16, kernel: 3, pad: 1 }
  - { name: c2, op: conv, out: 16, kernel: 3, pad: 1 }
  - { name: gap, op: global_avg_pool }
budget: { arena_bytes: 64 }
"#)]
pub mod net {}

fn main() {}
