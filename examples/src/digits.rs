//! The demo people run first (`cargo run --release -p neulens-examples`): the trained NeuLens
//! micro-flow supernet of `specs/digits.yaml` (cluttered MNIST digits on a 96×96 canvas, see
//! train/README.md) on the 256 test canvases shipped in `specs/data/`. For the dense model, every
//! uniform width level, the gate and the gate under budgets it prints accuracy, mean MACs, mean
//! latency and the latency reduction against dense, all measured in this run, then writes an
//! accuracy-vs-latency plot and a picture of test canvases with each tile coloured by its level.

use neulens::{Budget, Policy};
use neulens_codegen::weights::safetensors::SafeTensorsFile;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod model {
    neulens::include_model!("digits");
}

/// The shipped test canvases: images (u8 → x / 255, as in training) and labels.
struct TestSet {
    n: usize,
    images: Vec<f32>,
    labels: Vec<usize>,
}

fn load_test_set() -> Result<TestSet, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/data/digits_test.safetensors");
    let f = SafeTensorsFile::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let shape = f.shape("images").ok_or("no `images` tensor")?.to_vec();
    if shape.len() != 4 || shape[1..] != [1, 96, 96] {
        return Err(format!(
            "`images` has shape {shape:?}, expected [N, 1, 96, 96]"
        ));
    }
    let images: Vec<f32> = f
        .raw("images")
        .ok_or("no `images` data")?
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect();
    let labels: Vec<usize> = f
        .raw("labels")
        .ok_or("no `labels` tensor")?
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
        .collect();
    if labels.len() != shape[0] {
        return Err(format!("{} labels for {} images", labels.len(), shape[0]));
    }
    Ok(TestSet {
        n: shape[0],
        images,
        labels,
    })
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// One row of the table: a policy over the whole test set.
struct Row {
    name: String,
    accuracy: f64,
    mean_macs: f64,
    /// Mean ms per image (median of three timed passes over the set).
    ms: f64,
    /// Levels of each tile of the first images (for the tile picture).
    levels: Vec<Vec<u8>>,
}

/// Runs `policy` (None = the dense `infer`) over the set: three timed passes after a warm-up.
fn evaluate(t: &TestSet, name: &str, policy: Option<Policy>) -> Row {
    let mut arena = vec![0f32; model::ARENA_LEN.max(model::ADAPTIVE_ARENA_LEN)];
    let mut out = [0f32; model::OUTPUT_LEN];
    let mut correct = 0usize;
    let mut macs = 0u64;
    let mut levels = Vec::new();
    let mut pass = |record: bool| {
        let start = Instant::now();
        for i in 0..t.n {
            let x: &[f32; model::INPUT_LEN] = t.images[i * model::INPUT_LEN..][..model::INPUT_LEN]
                .try_into()
                .expect("INPUT_LEN");
            let m = match policy {
                None => {
                    model::infer_slices(x, &mut arena, &mut out).expect("sizes");
                    model::MACS
                }
                Some(p) => {
                    let r =
                        model::infer_adaptive_slices(x, &mut arena, &mut out, p).expect("sizes");
                    if record && levels.len() < 8 {
                        levels.push(r.levels.to_vec());
                    }
                    r.total_macs
                }
            };
            if record {
                correct += usize::from(argmax(&out) == t.labels[i]);
                macs += m;
            }
        }
        start.elapsed().as_secs_f64()
    };
    pass(true);
    let mut times = [pass(false), pass(false), pass(false)];
    times.sort_by(f64::total_cmp);
    Row {
        name: name.to_string(),
        accuracy: 100.0 * correct as f64 / t.n as f64,
        mean_macs: macs as f64 / t.n as f64,
        ms: times[1] * 1e3 / t.n as f64,
        levels,
    }
}

/// An SVG scatter of accuracy against mean latency, one labelled point per row.
fn plot_svg(rows: &[Row]) -> String {
    let (w, h, m) = (640.0, 420.0, 60.0);
    let max_ms = rows.iter().map(|r| r.ms).fold(0.0, f64::max) * 1.1;
    let (lo, hi) = (
        rows.iter()
            .map(|r| r.accuracy)
            .fold(100.0, f64::min)
            .floor()
            - 2.0,
        rows.iter().map(|r| r.accuracy).fold(0.0, f64::max).ceil() + 2.0,
    );
    let x = |ms: f64| m + (w - 2.0 * m) * ms / max_ms;
    let y = |acc: f64| h - m - (h - 2.0 * m) * (acc - lo) / (hi - lo);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">digits: accuracy vs mean latency (neulens, this machine)</text>\n\
         <line x1=\"{m}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">mean latency per image (ms)</text>\n\
         <text x=\"15\" y=\"{}\" transform=\"rotate(-90 15 {})\" text-anchor=\"middle\">accuracy (%)</text>\n",
        w / 2.0,
        h - m,
        w - m,
        h - m,
        h - m,
        w / 2.0,
        h - 20.0,
        h / 2.0,
        h / 2.0
    );
    for k in 0..=4 {
        let ms = max_ms * k as f64 / 4.0;
        let acc = lo + (hi - lo) * k as f64 / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{ms:.3}</text><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{acc:.0}</text>",
            x(ms),
            h - m + 15.0,
            m - 5.0,
            y(acc) + 4.0
        );
    }
    for r in rows {
        let colour = if r.name.starts_with("dense") {
            "black"
        } else if r.name.starts_with("level") {
            "steelblue"
        } else {
            "crimson"
        };
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x(r.ms),
            y(r.accuracy),
            x(r.ms) + 6.0,
            y(r.accuracy) - 4.0,
            r.name
        );
    }
    s.push_str("</svg>\n");
    s
}

/// An SVG of the first test canvases (grey pixels) with each tile's output block outlined in the
/// colour of the level the gate gave it (widest = red … narrowest = blue).
fn tiles_svg(t: &TestSet, gate: &Row) -> String {
    const COLOURS: [&str; 5] = ["#d7191c", "#fdae61", "#e6e600", "#abd9e9", "#2c7bb6"];
    let (side, scale, gap) = (96usize, 2usize, 12usize);
    let shown = gate.levels.len().min(8);
    let cell = side * scale + gap;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        cell * shown + gap,
        side * scale + 3 * gap + 20
    );
    let k = model::GRID;
    for (n, levels) in gate.levels.iter().take(shown).enumerate() {
        let (ox, oy) = (gap + n * cell, gap);
        for yy in 0..side {
            for xx in 0..side {
                let v = t.images[n * model::INPUT_LEN + yy * side + xx];
                if v > 0.02 {
                    let g = 255 - (v.clamp(0.0, 1.0) * 255.0) as u8;
                    let _ = write!(
                        s,
                        "<rect x=\"{}\" y=\"{}\" width=\"{scale}\" height=\"{scale}\" fill=\"rgb({g},{g},{g})\"/>",
                        ox + xx * scale,
                        oy + yy * scale
                    );
                }
            }
        }
        // Each tile owns one k-th of the image in each direction (its output block, scaled back).
        let tile = side * scale / k;
        for (ti, &l) in levels.iter().enumerate() {
            let c = COLOURS[(l as usize).min(COLOURS.len() - 1)];
            let _ = write!(
                s,
                "<rect x=\"{}\" y=\"{}\" width=\"{tile}\" height=\"{tile}\" fill=\"{c}\" fill-opacity=\"0.25\" stroke=\"{c}\" stroke-width=\"2\"/>",
                ox + (ti % k) * tile,
                oy + (ti / k) * tile
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{ox}\" y=\"{}\">label {}</text>",
            oy + side * scale + 15,
            t.labels[n]
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{gap}\" y=\"{}\">tile colour = width level chosen by the gate: red 1.0, orange 0.75, yellow 0.5, light blue 0.375, blue 0.25</text>",
        side * scale + 3 * gap + 12
    );
    s.push_str("</svg>\n");
    s
}

/// The demo: the table, then the two pictures in `target/neulens-demo/`.
pub fn run() {
    let t = match load_test_set() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot load the shipped test set: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "model      {} (specs/digits.yaml, trained by train/train.py): {}×{} tiles, levels {:?}, isa {}",
        model::NAME,
        model::GRID,
        model::GRID,
        model::LEVEL_FRACTIONS,
        neulens::active_isa().name()
    );
    println!(
        "test set   {} cluttered 96×96 canvases (specs/data/digits_test.safetensors)",
        t.n
    );
    let mut rows = vec![evaluate(&t, "dense", None)];
    for l in 0..model::LEVELS as u8 {
        rows.push(evaluate(
            &t,
            &format!("level {} ({})", l, model::LEVEL_FRACTIONS[l as usize]),
            Some(Policy::Fixed(l)),
        ));
    }
    rows.push(evaluate(&t, "gate", Some(Policy::Gate)));
    for f in [0.5f32, 0.3, 0.25] {
        rows.push(evaluate(
            &t,
            &format!("gate, budget {f}"),
            Some(Policy::Budget(Budget::Fraction(f))),
        ));
    }
    let dense_ms = rows[0].ms;
    println!(
        "\n{:<22} {:>9} {:>12} {:>10} {:>10} {:>16}",
        "run", "accuracy", "mean MACs", "MACs/dense", "ms/image", "latency saved"
    );
    for r in &rows {
        println!(
            "{:<22} {:>8.2}% {:>12.0} {:>10.3} {:>10.4} {:>15.1}%",
            r.name,
            r.accuracy,
            r.mean_macs,
            r.mean_macs / model::MACS as f64,
            r.ms,
            100.0 * (1.0 - r.ms / dense_ms)
        );
    }
    let dir = PathBuf::from("target/neulens-demo");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("accuracy_latency.svg"), plot_svg(&rows)))
        .and_then(|()| {
            let gate = rows.iter().find(|r| r.name == "gate").expect("gate row");
            std::fs::write(dir.join("tiles.svg"), tiles_svg(&t, gate))
        });
    match written {
        Ok(()) => println!(
            "\nwrote {0}/accuracy_latency.svg and {0}/tiles.svg",
            dir.display()
        ),
        Err(e) => eprintln!("cannot write the pictures to {}: {e}", dir.display()),
    }
    println!(
        "(the gate and the budget controller trade accuracy for MACs; train/README.md has the training \
         numbers and where they fall short of the NeuLens targets)"
    );
}
