//! The front half of the pipeline as one call: spec text → validated `Graph` with bound weights,
//! plus the non-fatal notes (unused layers, unused tensors) for the build report.

use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::graph::build::{build_graph, unused_layers};
use crate::graph::Graph;
use crate::spec::{parse_spec_partial, WeightsSpec};
use crate::weights::random::RandomWeights;
use crate::weights::safetensors::SafeTensorsFile;
use crate::weights::WeightSource;
use std::path::{Path, PathBuf};

/// A validated model and what it was made from.
#[derive(Debug)]
pub struct Loaded {
    pub graph: Graph,
    /// The safetensors file the weights came from (None for `{ random: SEED }`).
    pub weights_file: Option<PathBuf>,
    /// Non-fatal remarks for the build report (e.g. unused tensors in the weights file).
    pub notes: Vec<String>,
}

/// Parses `text` (the spec, named `file` in messages), resolves the weights relative to
/// `base_dir`, validates and infers shapes. Returns every error found.
pub fn load_model(text: &str, file: &str, base_dir: &Path) -> Result<Loaded, Diagnostics> {
    let mut diags = Diagnostics::new();
    let Some(spec) = parse_spec_partial(text, file, &mut diags) else {
        return Err(diags);
    };
    let mut weights_file = None;
    let mut source: Option<Box<dyn WeightSource>> = None;
    // A missing or invalid `weights:` is reported by the parser.
    if let Some(w) = &spec.weights {
        match &w.value {
            WeightsSpec::File(rel) => {
                let path = base_dir.join(rel);
                // Name the file as the spec wrote it: absolute paths differ between machines.
                let opened = std::fs::read(&path)
                    .map_err(|e| format!("cannot read it: {e}"))
                    .and_then(SafeTensorsFile::parse);
                match opened {
                    Ok(f) => source = Some(Box::new(f)),
                    Err(e) => diags.push(Diagnostic::new(
                        file,
                        w.loc,
                        format!("cannot load weights `{rel}`: {e}"),
                    )),
                }
                weights_file = Some(path);
            }
            WeightsSpec::Random(seed) => source = Some(Box::new(RandomWeights::new(*seed))),
        }
    }
    let src: Option<&mut dyn WeightSource> = match source.as_mut() {
        Some(b) => Some(b.as_mut()),
        None => None,
    };
    let graph = build_graph(&spec, file, src, &mut diags);
    let Some(graph) = graph.filter(|_| diags.is_empty()) else {
        return Err(diags);
    };
    let mut notes = Vec::new();
    for i in unused_layers(&graph) {
        if let Some(n) = graph.nodes.get(i) {
            notes.push(format!(
                "{}:{}:{}: layer `{}` is never used (no layer reads it and it is not the output)",
                file, n.loc.line, n.loc.column, n.name
            ));
        }
    }
    if let Some(s) = &source {
        let unused = s.unused();
        if !unused.is_empty() {
            let names: Vec<String> = unused.iter().map(|n| format!("`{n}`")).collect();
            notes.push(format!(
                "{} tensor{} of the weights file {} not used: {}",
                unused.len(),
                if unused.len() == 1 { "" } else { "s" },
                if unused.len() == 1 { "is" } else { "are" },
                names.join(", ")
            ));
        }
    }
    Ok(Loaded {
        graph,
        weights_file,
        notes,
    })
}

/// Reads the spec at `path` and loads it: `path` as given is the file name in messages and its
/// directory is where the weights are looked up.
pub fn load_model_file(path: &Path) -> Result<Loaded, Diagnostics> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics::single(Diagnostic::new(
            &label,
            Loc::UNKNOWN,
            format!("cannot read the spec: {e}"),
        ))
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    load_model(&text, &label, base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::safetensors;

    /// A fresh directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("neulens-load-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const SPEC: &str = "\
input: { channels: 2, height: 4, width: 4 }
weights: net.safetensors
layers:
  - { name: c1, op: conv, out: 3, kernel: 3, pad: 1, act: relu }
  - { name: spare, op: global_avg_pool }
  - { name: bn, op: batchnorm, input: c1 }
  - { name: fc, op: dense, out: 2, bias: false }
";

    fn write_weights(dir: &Path) {
        let w: Vec<f32> = (0..54).map(|i| i as f32 * 0.01).collect();
        let fc: Vec<f32> = vec![0.5; 2 * 48];
        safetensors::write(
            &dir.join("net.safetensors"),
            &[
                ("c1.weight", &[3, 2, 3, 3], &w),
                ("c1.bias", &[3], &[1.0, 2.0, 3.0]),
                ("bn.weight", &[3], &[1.0; 3]),
                ("bn.bias", &[3], &[0.0; 3]),
                ("bn.running_mean", &[3], &[0.0; 3]),
                ("bn.running_var", &[3], &[1.0; 3]),
                ("bn.num_batches_tracked", &[1], &[0.0]),
                ("fc.weight", &[2, 48], &fc),
                ("fc.bias", &[2], &[0.0; 2]),
                ("extra", &[1], &[0.0]),
            ],
        )
        .unwrap();
    }

    #[test]
    fn loads_a_safetensors_model_with_notes() {
        let dir = temp_dir("ok");
        write_weights(&dir);
        let l = load_model(SPEC, "specs/net.yaml", &dir).unwrap();
        assert_eq!(
            l.weights_file.as_deref(),
            Some(dir.join("net.safetensors").as_path())
        );
        assert_eq!(l.graph.name, "net");
        let names: Vec<&str> = l.graph.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["input", "c1", "spare", "bn", "fc"]);
        assert_eq!(l.graph.output, 4);
        assert_eq!(l.graph.output_shape(), crate::graph::Shape::new(2, 1, 1));
        let crate::graph::Op::Conv(c) = &l.graph.nodes[1].op else {
            panic!()
        };
        assert_eq!(
            c.bias.as_ref().map(|b| b.data.clone()),
            Some(vec![1.0, 2.0, 3.0])
        );
        assert_eq!(c.weight.data[53], 0.53);
        assert_eq!(
            l.notes,
            [
                "specs/net.yaml:5:5: layer `spare` is never used (no layer reads it and it is not the output)",
                "2 tensors of the weights file are not used: `extra`, `fc.bias`",
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn loads_random_weights() {
        let text = SPEC.replace("net.safetensors", "{ random: 7 }");
        let l = load_model(&text, "<inline>", Path::new("/nonexistent")).unwrap();
        assert_eq!(l.weights_file, None);
        assert_eq!(l.graph.name, "inline");
        let crate::graph::Op::BatchNorm(bn) = &l.graph.nodes[3].op else {
            panic!()
        };
        assert!(bn.var.data.iter().all(|v| *v >= 0.0));
        let again = load_model(&text, "<inline>", Path::new("/nonexistent")).unwrap();
        assert_eq!(again.graph, l.graph, "same seed, same weights");
    }

    #[test]
    fn bad_weights_file_is_one_error_and_the_structure_is_still_checked() {
        let dir = temp_dir("corrupt");
        std::fs::write(dir.join("net.safetensors"), [1u8, 2, 3]).unwrap();
        let text = SPEC.replace("input: c1", "input: c2");
        let e = load_model(&text, "specs/net.yaml", &dir).unwrap_err();
        assert_eq!(e.len(), 2, "{e}");
        let d = &e.items[0];
        assert_eq!(
            (d.loc.line, d.loc.column, d.layer.as_deref()),
            (2, 10, None)
        );
        assert!(
            d.message
                .starts_with("cannot load weights `net.safetensors`: file too short: 3 bytes"),
            "{}",
            d.message
        );
        assert!(d.message.contains("net.safetensors"), "{}", d.message);
        assert_eq!(e.items[1].message, "unknown input `c2`, did you mean `c1`?");

        let e = load_model(SPEC, "specs/net.yaml", &dir.join("missing")).unwrap_err();
        assert_eq!(e.len(), 1, "{e}");
        assert!(e.items[0].to_string().starts_with(
            "specs/net.yaml:2:10: error: cannot load weights `net.safetensors`: cannot read it: "
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn weight_errors_from_a_real_file() {
        let dir = temp_dir("shape");
        write_weights(&dir);
        let text = SPEC.replace("kernel: 3, pad: 1", "kernel: 5, pad: 2");
        let e = load_model(&text, "specs/net.yaml", &dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            "specs/net.yaml:4:5: error: layer `c1`: weight `c1.weight` has the wrong shape (expected [3, 2, 5, 5], found [3, 2, 3, 3])"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_yaml_is_one_error() {
        let e = load_model("layers: [\n", "x.yaml", Path::new(".")).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e.items[0].message.starts_with("invalid YAML"));
    }

    #[test]
    fn load_model_file_reads_relative_to_the_spec() {
        let dir = temp_dir("file");
        write_weights(&dir);
        let spec_path = dir.join("tiny.yaml");
        std::fs::write(&spec_path, SPEC).unwrap();
        let l = load_model_file(&spec_path).unwrap();
        assert_eq!(l.graph.name, "tiny");
        assert_eq!(l.graph.file, spec_path.display().to_string());

        let missing = dir.join("nope.yaml");
        let e = load_model_file(&missing).unwrap_err();
        assert_eq!(e.len(), 1);
        let d = &e.items[0];
        assert_eq!(
            (d.loc.line, d.file.clone()),
            (0, missing.display().to_string())
        );
        assert!(d.to_string().starts_with(&format!(
            "{}: error: cannot read the spec: ",
            missing.display()
        )));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
