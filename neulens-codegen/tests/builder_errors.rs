// The build.rs API on bad input: each error class of a spec or its weights, asserted item by item
// (file, line, column, layer, message, expected/found), plus the happy path and weight dtypes.

use neulens_codegen::builder::Model;
use neulens_codegen::weights::safetensors::{serialize, write, Dtype};
use neulens_codegen::{Built, Diagnostic, Diagnostics};
use std::path::PathBuf;

/// A fresh directory, removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!(
            "neulens-builder-errors-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }

    fn spec(&self) -> PathBuf {
        self.0.join("net.yaml")
    }

    fn label(&self) -> String {
        self.spec().display().to_string()
    }

    fn out(&self) -> PathBuf {
        self.0.join("out")
    }

    /// Writes `net.yaml` and runs the builder on it.
    fn emit(&self, text: &str) -> Result<Built, Diagnostics> {
        std::fs::write(self.spec(), text).unwrap();
        Model::new(self.spec())
            .out_dir(self.out())
            .cargo_output(false)
            .emit()
    }

    fn errors(&self, text: &str) -> Vec<Diagnostic> {
        match self.emit(text) {
            Ok(b) => panic!("expected errors, built {}", b.name),
            Err(d) => {
                assert!(!d.is_empty());
                for item in d.iter() {
                    assert_eq!(item.file, self.label(), "{item}");
                }
                d.items
            }
        }
    }

    fn one_error(&self, text: &str) -> Diagnostic {
        let d = self.errors(text);
        assert_eq!(d.len(), 1, "{d:#?}");
        d.into_iter().next().unwrap()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const HEAD: &str = "input: { channels: 3, height: 8, width: 8 }\nweights: { random: 1 }\nlayers:\n";

fn spec(layers: &str) -> String {
    format!("{HEAD}{layers}")
}

/// 1-based (line, column) of the first occurrence of `needle`.
fn pos(text: &str, needle: &str) -> (u64, u64) {
    let off = text.find(needle).expect("needle");
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let col = off - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line as u64, col as u64)
}

fn at(d: &Diagnostic) -> (u64, u64) {
    (d.loc.line, d.loc.column)
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `c1.weight` [4, 2, 3, 3], `c1.bias` [4], `fc.weight` [3, 4], `fc.bias` [3] as f32.
fn tiny_tensors() -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let c1: Vec<f32> = (0..72).map(|i| i as f32 * 0.01 - 0.3).collect();
    let fc: Vec<f32> = (0..12).map(|i| i as f32 * 0.125 - 0.5).collect();
    vec![
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
            f32s(&[0.25, 0.5, -1.0]),
        ),
    ]
}

const WEIGHTED: &str = "\
name: weighted
input: { channels: 2, height: 5, width: 5 }
weights: w.safetensors
layers:
  - { name: c1, op: conv, out: 4, kernel: 3, pad: 1, act: relu }
  - { name: gap, op: global_avg_pool }
  - { name: fc, op: dense, out: 3 }
";

#[test]
fn happy_path_writes_three_files_and_reports_every_layer() {
    let t = Tmp::new("happy");
    let text = spec(
        "  - { name: conv1, op: conv, out: 8, kernel: 3, pad: 1 }\n  - { name: bn1, op: batchnorm, act: relu }\n  - { name: pool, op: maxpool, kernel: 2 }\n  - { name: short, op: conv, out: 8, kernel: 1, stride: 2, inputs: [bn1] }\n  - { name: res, op: add, inputs: [pool, short], act: relu }\n  - { name: cat, op: concat, inputs: [res, pool] }\n  - { name: gap, op: global_avg_pool }\n  - { name: flat, op: flatten }\n  - { name: fc, op: dense, out: 10 }\n  - { name: prob, op: softmax }\n",
    );
    let b = t.emit(&format!("name: happy\n{text}")).unwrap();
    assert_eq!(b.name, "happy");
    assert_eq!(b.rust_file, t.out().join("happy.rs"));
    assert_eq!(b.weights_file, t.out().join("happy.weights.bin"));
    assert_eq!(b.report_file, t.out().join("happy.report.txt"));
    let code = std::fs::read_to_string(&b.rust_file).unwrap();
    assert!(code.contains("pub fn infer"), "{code}");
    let blob = std::fs::read(&b.weights_file).unwrap();
    assert!(blob.len() >= b.weight_bytes && b.weight_bytes > 0);
    let report = std::fs::read_to_string(&b.report_file).unwrap();
    assert_eq!(report, b.report);
    // bn1 is folded into conv1; every other layer has a row, and the fold is noted.
    for layer in [
        "conv1", "pool", "short", "res", "cat", "gap", "flat", "fc", "prob",
    ] {
        assert!(report.contains(layer), "{layer} missing from\n{report}");
    }
    assert!(report.contains("bn1"), "{report}");
    assert!(b.arena_bytes > 0 && b.macs > 0);
}

#[test]
fn cannot_read_the_spec() {
    let t = Tmp::new("nospec");
    let path = t.0.join("missing.yaml");
    let e = Model::new(&path)
        .out_dir(t.out())
        .cargo_output(false)
        .emit()
        .unwrap_err();
    assert_eq!(e.len(), 1);
    let d = &e.items[0];
    assert_eq!((d.file.as_str(), at(d)), (path.to_str().unwrap(), (0, 0)));
    assert!(d.message.starts_with("cannot read the spec: "), "{d}");
    assert!(d.to_string().starts_with(&format!(
        "{}: error: cannot read the spec: ",
        path.display()
    )));
}

#[test]
fn no_output_directory() {
    if std::env::var_os("OUT_DIR").is_some() {
        return;
    }
    let t = Tmp::new("noout");
    std::fs::write(t.spec(), spec("  - { name: s, op: softmax }\n")).unwrap();
    let e = Model::new(t.spec()).cargo_output(false).emit().unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e.items[0].message.starts_with("no output directory"), "{e}");
}

#[test]
fn malformed_yaml() {
    let t = Tmp::new("yaml");
    let d = t.one_error("input: { channels: 3\nlayers: [\n");
    assert!(d.message.starts_with("invalid YAML: "), "{d}");
    assert!(d.loc.line >= 2, "{d}");
    assert_eq!(d.layer, None);
    let d = t.one_error(&spec("  - name: a\n    op: conv\n    op: dense\n"));
    assert_eq!(d.message, "invalid YAML: duplicate mapping key: op");
    assert_eq!(at(&d), (6, 5));
    assert_eq!(
        d.to_string(),
        format!(
            "{}:6:5: error: invalid YAML: duplicate mapping key: op",
            t.label()
        )
    );
}

#[test]
fn unknown_op() {
    let t = Tmp::new("op");
    let text = spec("  - { name: c1, op: convv, out: 4, kernel: 3 }\n");
    let d = t.one_error(&text);
    assert_eq!(d.message, "unknown op `convv`, did you mean `conv`?");
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(&text, "convv"), Some("c1"))
    );
    assert!(d
        .expected
        .as_deref()
        .unwrap()
        .starts_with("one of `conv`, "));
}

#[test]
fn unknown_field() {
    let t = Tmp::new("field");
    let text = spec("  - { name: c1, op: conv, out: 4, kernel: 3, strides: 2 }\n");
    let d = t.one_error(&text);
    assert_eq!(
        d.message,
        "unknown field `strides` for op `conv`, did you mean `stride`?"
    );
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(&text, "strides"), Some("c1"))
    );
    assert!(d.expected.as_deref().unwrap().contains("`stride`"));
    let d = t
        .errors("input: { channels: 3, height: 8, width: 8 }\nweights: { random: 1 }\nlayrs: []\n");
    assert_eq!(
        d[0].message,
        "unknown top-level field `layrs`, did you mean `layers`?"
    );
    assert_eq!(at(&d[0]), (3, 1));
}

#[test]
fn unknown_input_with_suggestion() {
    let t = Tmp::new("input");
    let text = spec(
        "  - { name: conv1, op: conv, out: 4, kernel: 1 }\n  - { name: conv2, op: conv, out: 4, kernel: 1 }\n  - { name: r, op: add, inputs: [conv1, cnv2] }\n",
    );
    let d = t.one_error(&text);
    assert_eq!(d.message, "unknown input `cnv2`, did you mean `conv2`?");
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(&text, "cnv2"), Some("r"))
    );
}

#[test]
fn cycle() {
    let t = Tmp::new("cycle");
    let text = spec(
        "  - { name: a, op: conv, out: 3, kernel: 1, input: c }\n  - { name: b, op: conv, out: 3, kernel: 1 }\n  - { name: c, op: conv, out: 3, kernel: 1 }\n  - { name: out, op: global_avg_pool, input: input }\n",
    );
    let d = t.one_error(&text);
    assert_eq!(d.message, "cycle: a → b → c → a");
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(&text, "{ name: a"), Some("a"))
    );
}

#[test]
fn add_shape_mismatch() {
    let t = Tmp::new("add");
    let text = spec(
        "  - { name: c1, op: conv, out: 4, kernel: 1 }\n  - { name: c2, op: conv, out: 8, kernel: 1 }\n  - { name: r, op: add, inputs: [c1, c2] }\n",
    );
    let d = t.one_error(&text);
    assert_eq!(d.message, "inputs of `add` have different shapes");
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(&text, "[c1, c2]"), Some("r"))
    );
    assert_eq!(d.expected.as_deref(), Some("the same shape for all inputs"));
    assert_eq!(d.found.as_deref(), Some("`c1`: 4×8×8, `c2`: 8×8×8"));
}

#[test]
fn concat_shape_mismatch() {
    let t = Tmp::new("concat");
    let text = spec(
        "  - { name: c1, op: conv, out: 4, kernel: 1 }\n  - { name: c2, op: conv, out: 4, kernel: 1, stride: 2 }\n  - { name: k, op: concat, inputs: [c1, c2] }\n",
    );
    let d = t.one_error(&text);
    assert_eq!(
        d.message,
        "inputs of `concat` have different heights or widths"
    );
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(&text, "[c1, c2]"), Some("k"))
    );
    assert_eq!(
        d.expected.as_deref(),
        Some("the same height and width for all inputs")
    );
    assert_eq!(d.found.as_deref(), Some("`c1`: 4×8×8, `c2`: 4×4×4"));
}

fn write_tiny(t: &Tmp) {
    std::fs::write(t.0.join("w.safetensors"), serialize(&tiny_tensors())).unwrap();
}

#[test]
fn missing_weight_with_suggestion() {
    let t = Tmp::new("missing");
    write_tiny(&t);
    let text = WEIGHTED.replace("name: fc,", "name: fc2,");
    let d = t.one_error(&text);
    assert_eq!(
        d.message,
        "missing weight `fc2.weight`, did you mean `fc.weight`?"
    );
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(&text, "{ name: fc2"), Some("fc2"))
    );
    // With `param`, the error points at the prefix.
    let text = WEIGHTED.replace("out: 3 }", "out: 3, param: head }");
    let d = t.one_error(&text);
    assert_eq!(d.message, "missing weight `head.weight`");
    assert_eq!(at(&d), pos(&text, "head }"));
}

#[test]
fn wrong_weight_shape() {
    let t = Tmp::new("shape");
    write_tiny(&t);
    let text = WEIGHTED.replace("kernel: 3, pad: 1", "kernel: 5, pad: 2");
    let d = t.one_error(&text);
    assert_eq!(
        d.to_string(),
        format!(
            "{}:5:5: error: layer `c1`: weight `c1.weight` has the wrong shape (expected [4, 2, 5, 5], found [4, 2, 3, 3])",
            t.label()
        )
    );
    assert_eq!(d.expected.as_deref(), Some("[4, 2, 5, 5]"));
    assert_eq!(d.found.as_deref(), Some("[4, 2, 3, 3]"));
}

#[test]
fn wrong_weight_dtype() {
    let t = Tmp::new("dtype");
    let mut tensors = tiny_tensors();
    tensors[2] = ("fc.weight".into(), Dtype::I64, vec![3, 4], vec![0; 96]);
    std::fs::write(t.0.join("w.safetensors"), serialize(&tensors)).unwrap();
    let d = t.one_error(WEIGHTED);
    assert_eq!(d.message, "weight `fc.weight` has an unsupported dtype");
    assert_eq!(d.expected.as_deref(), Some("F32, F16, BF16 or F64"));
    assert_eq!(d.found.as_deref(), Some("I64"));
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(WEIGHTED, "{ name: fc"), Some("fc"))
    );
}

#[test]
fn truncated_safetensors() {
    let t = Tmp::new("truncated");
    let full = serialize(&tiny_tensors());
    for cut in [full.len() / 2, full.len() - 1, 12, 3, 0] {
        std::fs::write(t.0.join("w.safetensors"), &full[..cut]).unwrap();
        let d = t.one_error(WEIGHTED);
        assert_eq!(
            (at(&d), d.layer.as_deref()),
            (pos(WEIGHTED, "w.safetensors"), None),
            "{d}"
        );
        assert!(
            d.message
                .starts_with("cannot load weights `w.safetensors`: "),
            "{d}"
        );
        assert!(d.message.contains("w.safetensors"), "{d}");
        let why = if cut < 8 {
            "file too short"
        } else if cut == 12 {
            "truncated: header says"
        } else {
            "go past the end of the data section"
        };
        assert!(d.message.contains(why), "cut at {cut}: {d}");
    }
}

#[test]
fn corrupt_header_json() {
    let t = Tmp::new("json");
    let header = b"{\"c1.weight\": {\"dtype\": \"F32\", "; // cut off mid-object
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    std::fs::write(t.0.join("w.safetensors"), &bytes).unwrap();
    let d = t.one_error(WEIGHTED);
    assert!(
        d.message.contains("header is not valid JSON"),
        "{}",
        d.message
    );
    assert_eq!(at(&d), (3, 10));
    // A header that is JSON but not a safetensors header.
    let mut bytes = 2u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"[]");
    std::fs::write(t.0.join("w.safetensors"), &bytes).unwrap();
    let d = t.one_error(WEIGHTED);
    assert!(
        d.message.contains("header is not a JSON object of tensors"),
        "{d}"
    );
}

#[test]
fn missing_weights_file() {
    let t = Tmp::new("nofile");
    let d = t.one_error(WEIGHTED);
    assert_eq!(at(&d), (3, 10));
    assert!(
        d.message
            .starts_with("cannot load weights `w.safetensors`: cannot read it: "),
        "{d}"
    );
}

/// Messages should name files as the user wrote them, like the spec label.
#[test]
fn weight_errors_name_the_file_as_written() {
    let t = Tmp::new("aswritten");
    let d = t.one_error(WEIGHTED);
    let dir = t.0.display().to_string();
    assert!(!d.message.contains(&dir), "{d}");
    assert!(d.message.contains("`w.safetensors`"), "{d}");
}

#[test]
fn arena_budget_exceeded() {
    let t = Tmp::new("budget");
    let text = spec(
        "  - { name: c1, op: conv, out: 16, kernel: 3, pad: 1 }\n  - { name: c2, op: conv, out: 16, kernel: 3, pad: 1 }\n  - { name: gap, op: global_avg_pool }\nbudget: { arena_bytes: 64 }\n",
    );
    // What the plan needs: two live 16×8×8 maps (8192 bytes) plus c2's kernel scratch.
    let need = t
        .emit(&text.replace("budget: { arena_bytes: 64 }\n", ""))
        .unwrap()
        .arena_bytes;
    assert!(need >= 8192, "{need}");
    let d = t.one_error(&text);
    assert_eq!(
        d.message,
        "the plan needs a larger arena than the budget allows"
    );
    assert_eq!(at(&d), pos(&text, "64 }"));
    assert_eq!(d.expected.as_deref(), Some("at most 64 bytes"));
    // The error reports the least arena (every kernel with its least scratch), at most what
    // the plan takes without a budget; a budget of exactly that builds.
    let found = d.found.as_deref().unwrap();
    let least: usize = found
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{found}"));
    assert!((8192..=need).contains(&least), "{least} vs {need}");
    assert!(
        found.starts_with(&format!("{least} bytes (largest live set: `c2` with ")),
        "{found}"
    );
    // The same spec within its budget builds.
    let b = t
        .emit(&text.replace("64 }", &format!("{least} }}")))
        .unwrap();
    assert_eq!(b.arena_bytes, least);
}

#[test]
fn kernel_larger_than_padded_input() {
    let t = Tmp::new("kernel");
    let text = "input: { channels: 1, height: 2, width: 9 }\nweights: { random: 1 }\nlayers:\n  - { name: c, op: conv, out: 1, kernel: 5, pad: 1 }\n";
    let d = t.one_error(text);
    assert_eq!(d.message, "kernel larger than padded input");
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(text, "5, pad"), Some("c"))
    );
    assert_eq!(
        d.expected.as_deref(),
        Some("a padded input of at least 5×5")
    );
    assert_eq!(d.found.as_deref(), Some("4×11"));
    let text = spec("  - { name: p, op: avgpool, kernel: [3, 9] }\n");
    let d = t.one_error(&text);
    assert_eq!(
        (d.message.as_str(), d.layer.as_deref()),
        ("kernel larger than padded input", Some("p"))
    );
    assert_eq!(d.found.as_deref(), Some("8×8"));
}

#[test]
fn zero_sizes() {
    let t = Tmp::new("zero");
    let text = "input: { channels: 3, height: 0, width: 8 }\nweights: { random: 1 }\nlayers:\n  - { name: s, op: softmax }\n";
    let d = t.one_error(text);
    assert_eq!(d.message, "zero size: `height` must be at least 1");
    assert_eq!(at(&d), pos(text, "0,"));
    assert_eq!(
        (d.expected.as_deref(), d.found.as_deref()),
        (Some("1 ≤ height ≤ 16384"), Some("0"))
    );
    let text = spec("  - { name: c, op: conv, out: 0, kernel: 3 }\n");
    let d = t.one_error(&text);
    assert_eq!(
        (d.message.as_str(), d.layer.as_deref()),
        ("zero size: `out` must be at least 1", Some("c"))
    );
    assert_eq!(at(&d), pos(&text, "0,"));
    let d = t.one_error(&spec(
        "  - { name: c, op: conv, out: 3, kernel: 3, stride: 0 }\n",
    ));
    assert_eq!(d.message, "zero size: `stride` must be at least 1");
}

#[test]
fn absurd_sizes_and_overflow() {
    let t = Tmp::new("absurd");
    let text = "input: { channels: 65536, height: 16384, width: 16384 }\nweights: { random: 1 }\nlayers:\n  - { name: s, op: softmax }\n";
    let d = t.one_error(text);
    assert_eq!(d.message, "absurd size: the model input is too large");
    assert_eq!((at(&d), d.layer.as_deref()), ((1, 8), None));
    assert_eq!(
        d.expected.as_deref(),
        Some("at most 2^28 = 268435456 values")
    );
    assert_eq!(
        d.found.as_deref(),
        Some("65536×16384×16384 = 17592186044416 values")
    );
    let text = spec("  - { name: fc, op: dense, out: 268435456 }\n");
    let d = t.one_error(&text);
    assert_eq!(d.message, "absurd size: weight `fc.weight` is too large");
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(&text, "268435456"), Some("fc"))
    );
    assert_eq!(
        d.found.as_deref(),
        Some("[268435456, 192] = 51539607552 values")
    );
    // Past the range of the checks: out of range, never an arithmetic overflow.
    let d = t.one_error(&spec("  - { name: fc, op: dense, out: 268435457 }\n"));
    assert_eq!(d.message, "`out` is out of range");
    let d = t.one_error(&spec(
        "  - { name: fc, op: dense, out: 18446744073709551615 }\n",
    ));
    assert_eq!(d.message, "`out` is out of range");
    assert_eq!(d.found.as_deref(), Some("18446744073709551615"));
    // A concat whose channels add up past the limit.
    let text = "input: { channels: 65536, height: 64, width: 64 }\nweights: { random: 1 }\nlayers:\n  - { name: k, op: concat, inputs: [input, input] }\n";
    let d = t.one_error(text);
    assert_eq!(
        (d.message.as_str(), d.layer.as_deref()),
        ("absurd size: the output is too large", Some("k"))
    );
}

/// An integer literal beyond u64 becomes a float in the YAML layer: it is reported as a wrong
/// type with the rounded value, not as out of range with the value as written (a usability bug).
#[test]
fn integer_beyond_u64_is_a_wrong_type() {
    let t = Tmp::new("huge");
    let text = spec("  - { name: fc, op: dense, out: 18446744073709551617 }\n");
    let d = t.one_error(&text);
    assert_eq!(d.message, "wrong type for `out`");
    assert_eq!(
        (at(&d), d.layer.as_deref()),
        (pos(&text, "1844"), Some("fc"))
    );
    assert_eq!(d.expected.as_deref(), Some("an integer"));
    assert_eq!(d.found.as_deref(), Some("number `18446744073709552000`"));
}

#[test]
fn all_errors_are_reported_together() {
    let t = Tmp::new("all");
    write_tiny(&t);
    // Parser (unknown op, zero size), graph (unknown input) and weights (wrong shape) at once.
    let text = "\
input: { channels: 2, height: 5, width: 5 }
weights: w.safetensors
layers:
  - { name: c1, op: conv, out: 4, kernel: 5, pad: 2, act: relu }
  - { name: x, op: convolution, out: 4, kernel: 3 }
  - { name: z, op: dense, out: 0, input: input }
  - { name: r, op: add, inputs: [c1, c9] }
";
    let d = t.errors(text);
    let shown: Vec<(u64, u64, Option<&str>, &str)> = d
        .iter()
        .map(|d| {
            (
                d.loc.line,
                d.loc.column,
                d.layer.as_deref(),
                d.message.as_str(),
            )
        })
        .collect();
    let unknown_op = pos(text, "convolution");
    let zero = pos(text, "0, input");
    let c9 = pos(text, "c9");
    assert_eq!(
        shown,
        [
            (
                unknown_op.0,
                unknown_op.1,
                Some("x"),
                "unknown op `convolution`"
            ),
            (
                zero.0,
                zero.1,
                Some("z"),
                "zero size: `out` must be at least 1"
            ),
            (
                c9.0,
                c9.1,
                Some("r"),
                "unknown input `c9`, did you mean `c1`?"
            ),
            (4, 5, Some("c1"), "weight `c1.weight` has the wrong shape"),
        ]
    );
}

/// f16, bf16 and f64 tensors holding values exact in f16 pack to the same blob as f32 ones.
#[test]
fn f16_bf16_and_f64_weights_are_accepted() {
    let t = Tmp::new("dtypes");
    write_tiny(&t);
    let base = t.emit(WEIGHTED).unwrap();
    let want = std::fs::read(&base.weights_file).unwrap();
    assert!(want.iter().any(|b| *b != 0));

    // Values exact in f16 (tiny_tensors' conv weights and biases are not: replace them).
    let c1: Vec<f32> = (0..72).map(|i| (i as f32 - 36.0) / 64.0).collect();
    let mut f32_tensors = tiny_tensors();
    let c1_bias = [0.125f32, -0.25, 0.375, 0.5];
    f32_tensors[0].3 = f32s(&c1);
    f32_tensors[1].3 = f32s(&c1_bias);
    std::fs::write(t.0.join("w.safetensors"), serialize(&f32_tensors)).unwrap();
    let want = std::fs::read(&t.emit(WEIGHTED).unwrap().weights_file).unwrap();

    let as_f16 = |x: f32| -> [u8; 2] {
        // Exact for the normal values used here: sign, 5-bit exponent, 10-bit mantissa.
        let b = x.to_bits();
        if x == 0.0 {
            return [0, (b >> 24) as u8 & 0x80];
        }
        let sign = (b >> 16) & 0x8000;
        let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
        assert!(
            (1..31).contains(&exp) && b & 0x1fff == 0,
            "{x} is not exact in f16"
        );
        ((sign | (exp as u32) << 10 | (b >> 13) & 0x3ff) as u16).to_le_bytes()
    };
    let as_bf16 = |x: f32| -> [u8; 2] { ((x.to_bits() >> 16) as u16).to_le_bytes() };
    let as_f64 = |x: f32| -> [u8; 8] { f64::from(x).to_le_bytes() };
    for (i, dtype) in [Dtype::F16, Dtype::BF16, Dtype::F64]
        .into_iter()
        .enumerate()
    {
        let tensors: Vec<_> = f32_tensors
            .iter()
            .enumerate()
            .map(|(k, (name, _, shape, bytes))| {
                // Alternate: some tensors keep f32, the others take the dtype under test.
                if (k + i) % 2 == 1 {
                    return (name.clone(), Dtype::F32, shape.clone(), bytes.clone());
                }
                let vals = bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                let raw: Vec<u8> = match dtype {
                    Dtype::F16 => vals.flat_map(as_f16).collect(),
                    Dtype::BF16 => vals.flat_map(as_bf16).collect(),
                    _ => vals.flat_map(as_f64).collect(),
                };
                (name.clone(), dtype, shape.clone(), raw)
            })
            .collect();
        std::fs::write(t.0.join("w.safetensors"), serialize(&tensors)).unwrap();
        let b = t
            .emit(WEIGHTED)
            .unwrap_or_else(|e| panic!("{dtype:?}: {e}"));
        let got = std::fs::read(&b.weights_file).unwrap();
        assert_eq!(got, want, "{dtype:?} weights differ from f32");
    }
    // f32 writer of the crate agrees with `serialize`.
    let fc: Vec<f32> = (0..12).map(|i| i as f32 * 0.125 - 0.5).collect();
    write(
        &t.0.join("w.safetensors"),
        &[
            ("c1.weight", &[4, 2, 3, 3], &c1),
            ("c1.bias", &[4], &c1_bias),
            ("fc.weight", &[3, 4], &fc),
            ("fc.bias", &[3], &[0.25, 0.5, -1.0]),
        ],
    )
    .unwrap();
    let got = std::fs::read(&t.emit(WEIGHTED).unwrap().weights_file).unwrap();
    assert_eq!(got, want);
}

/// No prefix of a valid spec (nor a bad weights file) makes the pipeline panic.
#[test]
fn truncated_specs_never_panic() {
    let t = Tmp::new("prefixes");
    write_tiny(&t);
    let text =
        format!("{WEIGHTED}  - {{ name: p, op: softmax }}\nbudget: {{ arena_bytes: 4096 }}\n");
    for (i, _) in text.char_indices() {
        // Ok or Err, both fine: only a panic fails.
        let _ = t.emit(&text[..i]);
    }
}

/// With `cargo_output(true)` every item becomes one `cargo::error=` line (run in a child process
/// of this test binary so that its stdout can be read).
#[test]
fn cargo_output_prints_one_error_line_per_item() {
    let t = Tmp::new("cargo");
    let text = spec(
        "  - { name: c1, op: convv, out: 4 }\n  - { name: c2, op: conv, out: 0, kernel: 3 }\n  - { name: r, op: add, inputs: [c2, nope] }\n",
    );
    if std::env::var_os("NEULENS_CARGO_OUTPUT_CHILD").is_some() {
        std::fs::write(t.spec(), &text).unwrap();
        let r = Model::new(t.spec())
            .out_dir(t.out())
            .cargo_output(true)
            .emit();
        assert!(r.is_err());
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cargo_output_prints_one_error_line_per_item",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NEULENS_CARGO_OUTPUT_CHILD", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let errors: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("cargo::error="))
        .collect();
    assert_eq!(errors.len(), 3, "{stdout}");
    assert!(
        errors[0].contains(":4:21: error: layer `c1`: unknown op `convv`"),
        "{stdout}"
    );
    assert!(errors[1].contains("layer `c2`: zero size"), "{stdout}");
    assert!(
        errors[2].contains("layer `r`: unknown input `nope`"),
        "{stdout}"
    );
    assert!(stdout.contains("cargo::rerun-if-changed="), "{stdout}");
}

#[test]
fn micro_flow_errors_are_reported_together() {
    let t = Tmp::new("microflows");
    write_tiny(&t);
    // The learned gate's weights are missing from the file: one error per tensor, at the gate.
    let text = format!(
        "{WEIGHTED}microflows: {{ split_after: c1, grid: 5, levels: [1.0, 0.5], gate: {{ weights: gate, channels: 4 }} }}\n"
    );
    let d = t.errors(&text);
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "missing weight `gate.conv.weight`",
            "missing weight `gate.fc.weight`, did you mean `fc.weight`?"
        ]
    );
    for e in &d {
        assert_eq!(at(e), pos(&text, "{ weights: gate"));
        assert_eq!(e.layer.as_deref(), Some("microflows.gate"));
    }
    // A grid that does not divide the split's map, a level that keeps no channel of `c1`... but
    // `c1` is the split (full width), so only the grid is wrong; then an op the supernet cannot
    // hold and a split that is the output.
    let text = format!(
        "{WEIGHTED}microflows: {{ split_after: c1, grid: 2, levels: [1.0, 0.1], gate: {{ fixed: 1 }} }}\n"
    );
    let d = t.one_error(&text);
    assert_eq!(
        d.message,
        "the feature map after `c1` is 5×5 (H×W), which a 2×2 grid does not divide"
    );
    assert_eq!(at(&d), pos(&text, "2, levels"));
    assert_eq!(
        d.expected.as_deref(),
        Some("a grid that divides both 5 and 5")
    );
    let text =
        format!("{WEIGHTED}microflows: {{ split_after: fc, grid: 1, gate: {{ fixed: 0 }} }}\n");
    let d = t.errors(&text);
    let msgs: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    assert_eq!(d.len(), 3, "{msgs:#?}");
    assert!(
        msgs[0].contains("`fc` is the model output: nothing is left for the tail"),
        "{msgs:#?}"
    );
    assert!(
        msgs[1].contains("layer `gap`: `global_avg_pool` cannot be inside the micro-flow supernet"),
        "{msgs:#?}"
    );
    assert!(
        msgs[2].contains("layer `fc`: `dense` cannot be inside the micro-flow supernet"),
        "{msgs:#?}"
    );
    // And a valid one builds, with the micro-flow section in the report.
    let text = format!(
        "{WEIGHTED}microflows: {{ split_after: c1, grid: 5, levels: [1.0, 0.5], gate: {{ energy: [0.5] }} }}\n"
    );
    let b = t.emit(&text).unwrap();
    assert!(
        b.report.contains("micro-flows: 5×5 tiles up to `c1`"),
        "{}",
        b.report
    );
}
