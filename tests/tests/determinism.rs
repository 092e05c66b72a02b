// Compiling the same spec twice into two fresh directories must give byte-identical Rust (up to
// the output directory path, which the code names for the blob) and byte-identical weight blobs.

mod common;

use common::TempDir;
use std::path::Path;

/// Compiles `spec` twice into fresh temp dirs and compares the outputs.
fn assert_deterministic(spec: &Path, stem: &str) {
    let dirs = [
        TempDir(common::temp_dir(stem)),
        TempDir(common::temp_dir(stem)),
    ];
    let built: Vec<_> = dirs
        .iter()
        .map(|d| {
            neulens_codegen::builder::Model::new(spec)
                .out_dir(&d.0)
                .file_stem(stem)
                .cargo_output(false)
                .emit()
                .unwrap_or_else(|e| panic!("{} does not compile:\n{e}", spec.display()))
        })
        .collect();
    let code: Vec<String> = built
        .iter()
        .zip(&dirs)
        .map(|(b, d)| {
            let text = std::fs::read_to_string(&b.rust_file).expect("read the generated code");
            assert!(
                text.contains(&d.0.display().to_string()),
                "the code should name its blob by absolute path"
            );
            text.replace(&d.0.display().to_string(), "<OUT_DIR>")
        })
        .collect();
    if code[0] != code[1] {
        let line = code[0]
            .lines()
            .zip(code[1].lines())
            .position(|(a, b)| a != b);
        panic!("{stem}: the generated Rust differs between two builds (first differing line: {line:?})");
    }
    let blobs: Vec<Vec<u8>> = built
        .iter()
        .map(|b| std::fs::read(&b.weights_file).expect("read the blob"))
        .collect();
    assert!(!blobs[0].is_empty(), "{stem}: empty weight blob");
    assert!(
        blobs[0] == blobs[1],
        "{stem}: the weight blobs differ between two builds"
    );
    assert_eq!(
        built[0].report, built[1].report,
        "{stem}: the build reports differ"
    );
    assert_eq!(built[0].macs, built[1].macs);
}

#[test]
fn random_spec_compiles_deterministically() {
    let m = neulens_tests::random_models()
        .max_by_key(|m| m.macs)
        .expect("there are random models");
    assert_deterministic(Path::new(m.spec), m.name);
}

#[test]
fn resnet8_compiles_deterministically() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/resnet8.yaml");
    assert_deterministic(&spec, "resnet8");
}
