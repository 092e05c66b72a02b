//! Compiles the shipped specs (resnet8, resnet18, demo, microflow_demo) and the one-conv specs of the ONNX Runtime
//! comparison (`compare/specs/conv_c1..c5.yaml`, the conv shapes of issue 4; `conv_c1..c3_pattern.yaml`,
//! the same shapes pattern-pruned for issue 5) into OUT_DIR, exactly
//! as a user's build script would; src/lib.rs includes the generated modules.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for spec in [
        "../specs/resnet8.yaml",
        "../specs/resnet18.yaml",
        "../specs/demo.yaml",
        "../specs/microflow_demo.yaml",
        "compare/specs/conv_c1.yaml",
        "compare/specs/conv_c2.yaml",
        "compare/specs/conv_c3.yaml",
        "compare/specs/conv_c4.yaml",
        "compare/specs/conv_c5.yaml",
        "compare/specs/resnet18_pruned.yaml",
        "compare/specs/conv_c1_pattern.yaml",
        "compare/specs/conv_c2_pattern.yaml",
        "compare/specs/conv_c3_pattern.yaml",
    ] {
        neulens::build::Model::new(spec).emit()?;
    }
    Ok(())
}
