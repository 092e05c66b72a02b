//! Compiles the shipped specs into OUT_DIR, exactly as a user's build script would.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for spec in [
        "../specs/resnet8.yaml",
        "../specs/resnet18.yaml",
        "../specs/demo.yaml",
        "../specs/microflow_demo.yaml",
        "../specs/digits.yaml",
        "../specs/fashion.yaml",
    ] {
        neulens::build::Model::new(spec).emit()?;
    }
    Ok(())
}
