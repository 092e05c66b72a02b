#[neulens::neulens_model(spec = "specs/does_not_exist.yaml")]
pub mod net {}

fn main() {}
