#[neulens::neulens_model(path = "specs/net.yaml")]
pub mod unknown_key {}

#[neulens::neulens_model]
pub mod no_spec {}

#[neulens::neulens_model(spec = "a.yaml", inline = "b")]
pub mod both {}

#[neulens::neulens_model(spec = 3)]
pub mod not_a_string {}

#[neulens::neulens_model(inline = "layers: []")]
pub struct NotAModule;

fn main() {}
