#[neulens::neulens_model(spec = "../../../../neulens-macros/tests/ui/specs/corrupt_weights.yaml")]
pub mod net {}

fn main() {}
