#[neulens::neulens_model(spec = "../../../../neulens-macros/tests/ui/specs/missing_weight.yaml")]
pub mod net {}

fn main() {}
