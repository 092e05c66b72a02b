//! Compiles the shipped specs (resnet8, resnet18, demo) into OUT_DIR, exactly as a user's build
//! script would; src/lib.rs includes the generated modules for the model benches.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for spec in [
        "../specs/resnet8.yaml",
        "../specs/resnet18.yaml",
        "../specs/demo.yaml",
        "../specs/microflow_demo.yaml",
    ] {
        neulens::build::Model::new(spec).emit()?;
    }
    Ok(())
}
