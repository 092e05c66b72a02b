//! Compiles the demo spec with a C entry point and header, then compiles the C caller
//! (`c/model_user.c`) against that header with the `cc` crate and links it into this crate.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let built = neulens::build::Model::new("../../specs/demo.yaml")
        .c_api(true)
        .emit()?;
    let header_dir = built
        .c_header_file
        .as_ref()
        .and_then(|h| h.parent())
        .map(PathBuf::from)
        .ok_or("the builder did not write a C header")?;
    println!("cargo::rerun-if-changed=c/model_user.c");
    cc::Build::new()
        .file("c/model_user.c")
        .include(header_dir)
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-std=c99")
        .compile("neulens_c_model_user");
    Ok(())
}
