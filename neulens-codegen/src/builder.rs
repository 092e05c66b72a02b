//! The build-script API (`neulens::build::Model`), in the shape of prost-build and cc: a builder
//! that compiles a spec into `OUT_DIR`, prints `cargo::rerun-if-changed` for every input and
//! reports every error of the spec as a `cargo::error=` line.

use crate::compile::compile;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::emit::{self, BlobRef, EmitOptions};
use std::path::{Path, PathBuf};

/// Compiles one model spec from a build script.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     neulens_codegen::builder::Model::new("specs/net.yaml").emit()?;
///     Ok(())
/// }
/// // src/lib.rs: pub mod net { include!(concat!(env!("OUT_DIR"), "/net.rs")); }
/// ```
#[derive(Clone, Debug)]
pub struct Model {
    spec: PathBuf,
    out_dir: Option<PathBuf>,
    file_stem: Option<String>,
    cargo_output: Option<bool>,
    c_api: bool,
    write_pruned: Option<PathBuf>,
}

/// What `emit` wrote.
#[derive(Clone, Debug)]
pub struct Built {
    /// The model name (snake_case), also the default file stem.
    pub name: String,
    /// `OUT_DIR/<stem>.rs`: include it with `include!(concat!(env!("OUT_DIR"), "/<stem>.rs"))`.
    pub rust_file: PathBuf,
    /// `OUT_DIR/<stem>.weights.bin`: the packed weights the generated code embeds.
    pub weights_file: PathBuf,
    /// `OUT_DIR/<stem>.report.txt`: the build report.
    pub report_file: PathBuf,
    /// The build report as text.
    pub report: String,
    /// `OUT_DIR/<stem>.h` when `c_api(true)`.
    pub c_header_file: Option<PathBuf>,
    pub arena_bytes: usize,
    pub weight_bytes: usize,
    pub macs: u64,
}

impl Model {
    /// A spec path, relative to the crate root (`CARGO_MANIFEST_DIR`) or absolute.
    pub fn new(spec: impl AsRef<Path>) -> Self {
        Model {
            spec: spec.as_ref().to_path_buf(),
            out_dir: None,
            file_stem: None,
            cargo_output: None,
            c_api: false,
            write_pruned: None,
        }
    }

    /// Where to write (default: `OUT_DIR`).
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The stem of the generated files (default: the model name).
    pub fn file_stem(mut self, stem: impl Into<String>) -> Self {
        self.file_stem = Some(stem.into());
        self
    }

    /// Print `cargo::` directives (default: when running inside a build script, i.e. `OUT_DIR` set).
    pub fn cargo_output(mut self, on: bool) -> Self {
        self.cargo_output = Some(on);
        self
    }

    /// Also emit a C entry point `neulens_<name>_infer` (`#[no_mangle] extern "C"`) and a C
    /// header `OUT_DIR/<stem>.h` with the shapes and sizes as `#define`s.
    pub fn c_api(mut self, on: bool) -> Self {
        self.c_api = on;
        self
    }

    /// Also write the pattern-pruned weights and masks to this safetensors file (relative to
    /// the output directory unless absolute): `<param>.weight` and `<param>.mask` (1 = kept) of
    /// every pruned conv, in the units of the input `state_dict` (before batchnorm folding), for
    /// fine-tuning with the masks fixed (docs/ARCHITECTURE.md, "Pattern pruning").
    pub fn write_pruned(mut self, path: impl AsRef<Path>) -> Self {
        self.write_pruned = Some(path.as_ref().to_path_buf());
        self
    }

    /// Compiles the spec and writes the generated Rust, the weight blob and the report.
    /// On failure every error of the spec is returned (and printed as `cargo::error=` lines).
    pub fn emit(self) -> Result<Built, Diagnostics> {
        let cargo = self
            .cargo_output
            .unwrap_or_else(|| std::env::var_os("OUT_DIR").is_some());
        let r = self.emit_inner(cargo);
        if let Err(d) = &r {
            if cargo {
                for item in d.iter() {
                    println!("cargo::error={}", item.to_string().replace('\n', " "));
                }
            }
        }
        r
    }

    fn emit_inner(&self, cargo: bool) -> Result<Built, Diagnostics> {
        let label = self.spec.display().to_string();
        let spec_path = match std::env::var_os("CARGO_MANIFEST_DIR") {
            Some(root) if self.spec.is_relative() => PathBuf::from(root).join(&self.spec),
            _ => self.spec.clone(),
        };
        if cargo {
            println!("cargo::rerun-if-changed={}", spec_path.display());
        }
        let text = std::fs::read_to_string(&spec_path).map_err(|e| {
            Diagnostics::single(Diagnostic::new(
                &label,
                Loc::UNKNOWN,
                format!("cannot read the spec: {e}"),
            ))
        })?;
        let base = spec_path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let loaded = crate::load::load_model(&text, &label, &base);
        if let (true, Ok(l)) = (cargo, &loaded) {
            if let Some(w) = &l.weights_file {
                println!("cargo::rerun-if-changed={}", w.display());
            }
        }
        let loaded = loaded?;
        let out_dir =
            match (&self.out_dir, std::env::var_os("OUT_DIR")) {
                (Some(d), _) => d.clone(),
                (None, Some(d)) => PathBuf::from(d),
                (None, None) => return Err(Diagnostics::single(Diagnostic::new(
                    &label,
                    Loc::UNKNOWN,
                    "no output directory: call .out_dir(..) or run from a build script (OUT_DIR)",
                ))),
            };
        let stem = self
            .file_stem
            .clone()
            .unwrap_or_else(|| loaded.graph.name.clone());
        let blob_name = format!("{stem}.weights.bin");
        let blob_ref = match &self.out_dir {
            // Outside OUT_DIR the generated code must name the blob by absolute path.
            Some(d) => BlobRef::Path(d.join(&blob_name).display().to_string()),
            None => BlobRef::OutDir(blob_name.clone()),
        };
        let opts = EmitOptions {
            blob: blob_ref,
            c_api: self.c_api,
        };
        let compiled = compile(&loaded, &label, &opts)?;
        if cargo {
            for w in &compiled.warnings {
                println!("cargo::warning={label}: {}", w.replace('\n', " "));
            }
        }
        let header = format!(
            "// Generated by neulens-codegen from {label}. Do not edit: the build regenerates it,\n\
             // and the static assertions below reject hand edits that break its invariants.\n"
        );
        let code = emit::pretty(&compiled.emitted.tokens, &header);
        let io_err = |what: &Path, e: std::io::Error| {
            Diagnostics::single(Diagnostic::new(
                &label,
                Loc::UNKNOWN,
                format!("cannot write {}: {e}", what.display()),
            ))
        };
        std::fs::create_dir_all(&out_dir).map_err(|e| io_err(&out_dir, e))?;
        let rust_file = out_dir.join(format!("{stem}.rs"));
        let weights_file = out_dir.join(&blob_name);
        let report_file = out_dir.join(format!("{stem}.report.txt"));
        write_if_changed(&rust_file, code.as_bytes()).map_err(|e| io_err(&rust_file, e))?;
        write_if_changed(&weights_file, &compiled.emitted.blob)
            .map_err(|e| io_err(&weights_file, e))?;
        write_if_changed(&report_file, compiled.report.as_bytes())
            .map_err(|e| io_err(&report_file, e))?;
        if let Some(p) = &self.write_pruned {
            let path = out_dir.join(p);
            crate::prune::write_pruned(&compiled.pruned, &path).map_err(|e| io_err(&path, e))?;
        }
        let c_header_file = if self.c_api {
            let h = out_dir.join(format!("{stem}.h"));
            let text = emit::c_header(&compiled.plan, &label);
            write_if_changed(&h, text.as_bytes()).map_err(|e| io_err(&h, e))?;
            Some(h)
        } else {
            None
        };
        Ok(Built {
            name: loaded.graph.name.clone(),
            rust_file,
            weights_file,
            report_file,
            report: compiled.report,
            c_header_file,
            arena_bytes: compiled.plan.arena_bytes(),
            weight_bytes: compiled.plan.weight_bytes(),
            macs: compiled.plan.macs,
        })
    }
}

/// Writes only when the content differs, so unchanged models do not trigger rebuilds.
fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes)
}
