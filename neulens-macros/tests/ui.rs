// UI tests of #[neulens_model]: every user-facing spec error as rustc shows it, bad macro arguments,
// and wrong-size arrays passed to the generated `infer`. Regenerate .stderr with TRYBUILD=overwrite.

use neulens_codegen::weights::safetensors::{serialize, Dtype};
use std::path::{Path, PathBuf};

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/specs")
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u16s(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The bytes of `tests/ui/specs/tiny.safetensors` (values used by `ui/files/pass/weights.rs`).
fn tiny_safetensors() -> Vec<u8> {
    let c1: Vec<f32> = (0..72).map(|i| i as f32 * 0.01 - 0.3).collect();
    let fc: Vec<f32> = (0..12).map(|i| i as f32 * 0.1 - 0.5).collect();
    // f16 bits of 0.5, -0.25, 1, 2, 0.125, -1.5, 0.75, 0, -0.5; bf16 bits of 1, -1, 0.5.
    let h = [
        0x3800, 0xB400, 0x3C00, 0x4000, 0x3000, 0xBE00, 0x3A00, 0x0000, 0xB800,
    ];
    let h_bias = [0x3F80, 0xBF80, 0x3F00];
    serialize(&[
        ("c1.weight".into(), Dtype::F32, vec![4, 2, 3, 3], f32s(&c1)),
        (
            "c1.bias".into(),
            Dtype::F32,
            vec![4],
            f32s(&[0.1, -0.2, 0.3, 0.4]),
        ),
        ("fc.weight".into(), Dtype::F32, vec![3, 4], f32s(&fc)),
        (
            "fc.bias".into(),
            Dtype::F32,
            vec![3],
            f32s(&[0.01, 0.02, 0.03]),
        ),
        ("h.weight".into(), Dtype::F16, vec![3, 3], u16s(&h)),
        ("h.bias".into(), Dtype::BF16, vec![3], u16s(&h_bias)),
        ("d.weight".into(), Dtype::I64, vec![3, 4], vec![0; 96]),
    ])
}

/// Writes the committed weight fixtures when they differ from what this code generates.
fn ensure_fixtures() {
    let tiny = tiny_safetensors();
    let corrupt = tiny[..tiny.len() / 2].to_vec();
    for (name, bytes) in [("tiny.safetensors", tiny), ("corrupt.safetensors", corrupt)] {
        let path = specs_dir().join(name);
        if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&path, &bytes).unwrap();
        }
    }
}

/// Whether a spec path relative to the trybuild project (`<target>/tests/trybuild/neulens-macros`,
/// which is CARGO_MANIFEST_DIR for the macro there) reaches this crate as
/// `../../../../neulens-macros/...`: true when the target directory is a child of the workspace
/// root, as with the default `target/` or `CARGO_TARGET_DIR=<workspace>/target-x`.
fn file_specs_reachable() -> bool {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/ui-<hash>
    let Some(target) = exe.ancestors().nth(3) else {
        return false;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match (target.parent(), workspace.canonicalize()) {
        (Some(p), Ok(w)) => p.canonicalize().ok() == Some(w),
        _ => false,
    }
}

#[test]
fn ui() {
    ensure_fixtures();
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
    if file_specs_reachable() {
        t.pass("tests/ui/files/pass/*.rs");
        t.compile_fail("tests/ui/files/fail/*.rs");
    } else {
        eprintln!("skipping tests/ui/files: the target directory is not a child of the workspace");
    }
}
