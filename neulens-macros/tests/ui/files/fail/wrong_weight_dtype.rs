#[neulens::neulens_model(spec = "../../../../neulens-macros/tests/ui/specs/wrong_weight_dtype.yaml")]
pub mod net {}

fn main() {}
