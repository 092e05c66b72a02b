//! Compiles ../../specs/resnet8.yaml and ../../specs/microflow_tiny.yaml into OUT_DIR (as a user's build script would) and puts
//! memory.x on the linker search path for cortex-m-rt's link.x.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);

    // The model; the spec's `budget` fails the build when its arena would not fit.
    neulens::build::Model::new("../../specs/resnet8.yaml").emit()?;
    // A micro-flow model: adaptive inference without std (tiles run one after the other).
    neulens::build::Model::new("../../specs/microflow_tiny.yaml").emit()?;

    std::fs::copy("memory.x", out_dir.join("memory.x"))?;
    println!("cargo::rustc-link-search={}", out_dir.display());
    println!("cargo::rerun-if-changed=memory.x");
    println!("cargo::rerun-if-changed=build.rs");
    Ok(())
}
