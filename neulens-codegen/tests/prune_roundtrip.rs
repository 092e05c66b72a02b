// The PatDNN flow (prune → fine-tune with the masks fixed → rebuild) through the build.rs API:
// a build with `write_pruned` writes `<param>.weight` and `<param>.mask` of every pruned conv;
// the masks describe the weights (4 taps with the centre per kept kernel, nothing elsewhere, at
// most K distinct masks, the kept count per filter of the rate); a "fine-tuned" copy (the kept
// weights changed, the masks respected, the unpruned layers as they were) rebuilds with the
// fine-tuned weights kept exactly, the same masks, and the report saying so.

use neulens_codegen::builder::Model;
use neulens_codegen::weights::safetensors::{write, SafeTensorsFile};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// A fresh directory, removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!(
            "neulens-prune-roundtrip-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `c0` stays dense (`prune: off`), `c1` (stride 1) and `c2` (stride 2) are pattern-pruned with
/// the model-wide 4 patterns at connectivity 0.5, `c3` is 1×1 (never pruned).
fn spec(weights: &str) -> String {
    format!(
        "name: rt\ninput: {{ channels: 4, height: 10, width: 12 }}\nweights: {weights}\n\
         prune: {{ patterns: 4, connectivity: 0.5 }}\nlayers:\n\
         \x20 - {{ name: c0, op: conv, out: 8, kernel: 3, pad: 1, act: relu, prune: off }}\n\
         \x20 - {{ name: c1, op: conv, out: 8, kernel: 3, pad: 1, act: relu, algo: pattern }}\n\
         \x20 - {{ name: c2, op: conv, out: 6, kernel: 3, stride: 2, pad: 1, algo: pattern }}\n\
         \x20 - {{ name: c3, op: conv, out: 3, kernel: 1 }}\n"
    )
}

type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn read(path: &std::path::Path) -> Tensors {
    let f = SafeTensorsFile::open(path).unwrap();
    f.names()
        .into_iter()
        .map(|n| {
            let data = f
                .raw(n)
                .unwrap()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (n.to_string(), (f.shape(n).unwrap().to_vec(), data))
        })
        .collect()
}

fn save(path: &std::path::Path, t: &Tensors) {
    let refs: Vec<(&str, &[usize], &[f32])> = t
        .iter()
        .map(|(n, (s, d))| (n.as_str(), s.as_slice(), d.as_slice()))
        .collect();
    write(path, &refs).unwrap();
}

/// Deterministic dense weights for every layer of [`spec`].
fn dense() -> Tensors {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut t = Tensors::new();
    for (name, o, i, k) in [
        ("c0", 8, 4, 3),
        ("c1", 8, 8, 3),
        ("c2", 6, 8, 3),
        ("c3", 3, 6, 1),
    ] {
        let w = (0..o * i * k * k).map(|_| next()).collect();
        t.insert(format!("{name}.weight"), (vec![o, i, k, k], w));
        t.insert(
            format!("{name}.bias"),
            (vec![o], (0..o).map(|_| next()).collect()),
        );
    }
    t
}

/// Checks one written layer: its masks, its weights against them, and the rate.
fn check_layer(t: &Tensors, name: &str, c_in: usize, masks: &mut BTreeSet<u16>) {
    let (shape, w) = &t[&format!("{name}.weight")];
    let (mshape, m) = &t[&format!("{name}.mask")];
    assert_eq!(shape, mshape, "{name}");
    let c_out = shape[0];
    for f in 0..c_out {
        let mut kept = 0;
        for ic in 0..c_in {
            let k = (f * c_in + ic) * 9;
            let bits = (0..9)
                .filter(|&b| m[k + b] == 1.0)
                .fold(0u16, |a, b| a | 1 << b);
            assert!(m[k..k + 9].iter().all(|&v| v == 0.0 || v == 1.0));
            if bits == 0 {
                assert!(
                    w[k..k + 9].iter().all(|&v| v == 0.0),
                    "{name}: pruned kernel"
                );
                continue;
            }
            kept += 1;
            assert_eq!(bits.count_ones(), 4, "{name}: 4 taps");
            assert!(bits & 1 << 4 != 0, "{name}: the centre is kept");
            for b in 0..9 {
                if bits >> b & 1 == 0 {
                    assert_eq!(w[k + b], 0.0, "{name}: weight outside its mask");
                }
            }
            masks.insert(bits);
        }
        assert_eq!(kept, c_in / 2, "{name}: filter {f} keeps half its kernels");
    }
}

#[test]
fn prune_finetune_rebuild_keeps_the_finetuned_weights() {
    let t = Tmp::new("flow");
    let dense = dense();
    save(&t.0.join("dense.safetensors"), &dense);
    std::fs::write(t.0.join("net.yaml"), spec("dense.safetensors")).unwrap();
    let b1 = Model::new(t.0.join("net.yaml"))
        .out_dir(t.0.join("out1"))
        .cargo_output(false)
        .write_pruned("pruned.safetensors")
        .emit()
        .unwrap();
    let pruned = read(&t.0.join("out1/pruned.safetensors"));
    assert_eq!(
        pruned.keys().collect::<Vec<_>>(),
        ["c1.mask", "c1.weight", "c2.mask", "c2.weight"],
        "only the pruned convs are written"
    );
    let mut masks = BTreeSet::new();
    check_layer(&pruned, "c1", 8, &mut masks);
    check_layer(&pruned, "c2", 8, &mut masks);
    assert!(masks.len() <= 4, "at most K distinct patterns: {masks:?}");
    // The kept taps are the dense weights there.
    for name in ["c1", "c2"] {
        let key = format!("{name}.weight");
        let (_, w) = &pruned[&key];
        let (_, m) = &pruned[&format!("{name}.mask")];
        for ((&p, &d), &k) in w.iter().zip(&dense[&key].1).zip(m) {
            assert_eq!(p, if k == 1.0 { d } else { 0.0 });
        }
    }
    assert!(b1.report.contains("pattern"), "{}", b1.report);

    // "Fine-tune" with the masks fixed: change every kept weight, keep the zeros; the other
    // tensors come from the original state_dict, as a PyTorch user would save them.
    let mut tuned = dense.clone();
    for name in ["c1", "c2"] {
        let key = format!("{name}.weight");
        let (shape, w) = &pruned[&key];
        let w2: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v == 0.0 {
                    0.0
                } else {
                    v * 1.25 + 0.001 * (i % 7) as f32
                }
            })
            .collect();
        tuned.insert(key, (shape.clone(), w2));
    }
    save(&t.0.join("tuned.safetensors"), &tuned);
    std::fs::write(t.0.join("net.yaml"), spec("tuned.safetensors")).unwrap();
    let b2 = Model::new(t.0.join("net.yaml"))
        .out_dir(t.0.join("out2"))
        .cargo_output(false)
        .write_pruned("pruned.safetensors")
        .emit()
        .unwrap();
    let again = read(&t.0.join("out2/pruned.safetensors"));
    for name in ["c1", "c2"] {
        let key = format!("{name}.weight");
        assert_eq!(
            again[&key], tuned[&key],
            "{name}: fine-tuned weights kept exactly"
        );
        let mk = format!("{name}.mask");
        assert_eq!(again[&mk], pruned[&mk], "{name}: same masks");
    }
    let exact = b2
        .report
        .lines()
        .filter(|l| l.contains("kept exactly"))
        .count();
    assert_eq!(exact, 2, "{}", b2.report);
    // The generated code of both builds calls the pattern kernel for c1 and c2, in `infer`
    // (whole) and in `infer_threads` (by parts).
    for b in [&b1, &b2] {
        let rust = std::fs::read_to_string(&b.rust_file).unwrap();
        assert_eq!(rust.matches("pattern_conv2d::<").count(), 2, "{}", b.name);
        assert_eq!(
            rust.matches("pattern_conv2d_part::<").count(),
            2,
            "{}",
            b.name
        );
    }
}
