#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8
weights: { random: 1 }
layers: [ { name: c1, op: conv, out: 4, kernel: 3 }
"#)]
pub mod unclosed {}

#[neulens::neulens_model(inline = r#"
input: { channels: 3, height: 8, width: 8 }
weights: { random: 1 }
layers:
  - name: c1
    op: conv
    op: dense
"#)]
pub mod duplicate_key {}

fn main() {}
