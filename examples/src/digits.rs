//! The demo people run first (`cargo run --release -p neulens-examples`): the trained NeuLens
//! micro-flow supernet of `specs/digits.yaml` (cluttered MNIST digits on a 96×96 canvas, see
//! train/README.md) on the 256 test canvases shipped in `specs/data/`; `-- fashion` runs the same
//! demo with `specs/fashion.yaml` (Fashion-MNIST items on the same canvases). For the dense model,
//! every uniform width level, the gate and the gate under budgets it prints accuracy, mean MACs,
//! mean latency and the latency reduction against dense, all measured in this run, then writes an
//! accuracy-vs-latency plot and a picture of test canvases with each tile coloured by its level.

use neulens::{Budget, Policy};
use neulens_codegen::weights::safetensors::SafeTensorsFile;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod digits_model {
    neulens::include_model!("digits");
}
mod fashion_model {
    neulens::include_model!("fashion");
}

type Infer = fn(&[f32], &mut [f32], &mut [f32]) -> Result<(), neulens::Error>;
/// Adaptive inference: (input, arena, output, policy) → (total MACs, level of each tile).
type InferAdaptive =
    fn(&[f32], &mut [f32], &mut [f32], Policy) -> Result<(u64, Vec<u8>), neulens::Error>;

/// What the demo needs of one compiled trained model (the generated module's items).
struct Trained {
    /// The spec's name: `specs/<name>.yaml`, `specs/data/<name>_test.safetensors`.
    name: &'static str,
    classes: [&'static str; 10],
    grid: usize,
    level_fractions: &'static [f32],
    macs: u64,
    input_len: usize,
    output_len: usize,
    arena_len: usize,
    infer: Infer,
    infer_adaptive: InferAdaptive,
}

macro_rules! trained {
    ($m:ident, $classes:expr) => {
        Trained {
            name: $m::NAME,
            classes: $classes,
            grid: $m::GRID,
            level_fractions: &$m::LEVEL_FRACTIONS,
            macs: $m::MACS,
            input_len: $m::INPUT_LEN,
            output_len: $m::OUTPUT_LEN,
            arena_len: if $m::ARENA_LEN > $m::ADAPTIVE_ARENA_LEN {
                $m::ARENA_LEN
            } else {
                $m::ADAPTIVE_ARENA_LEN
            },
            infer: $m::infer_slices,
            infer_adaptive: |x, arena, out, p| {
                $m::infer_adaptive_slices(x, arena, out, p)
                    .map(|r| (r.total_macs, r.levels.to_vec()))
            },
        }
    };
}

fn model(name: &str) -> Option<Trained> {
    match name {
        "digits" => Some(trained!(
            digits_model,
            ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
        )),
        "fashion" => Some(trained!(
            fashion_model,
            [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot"
            ]
        )),
        _ => None,
    }
}

/// The shipped test canvases: images (u8 → x / 255, as in training) and labels.
struct TestSet {
    n: usize,
    images: Vec<f32>,
    labels: Vec<usize>,
}

fn load_test_set(name: &str) -> Result<TestSet, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../specs/data")
        .join(format!("{name}_test.safetensors"));
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
    policy: Option<Policy>,
    accuracy: f64,
    mean_macs: f64,
    /// Mean ms per image (median of the timed passes over the set, see [`time_rows`]).
    ms: f64,
    /// Levels of each tile of the first images (for the tile picture).
    levels: Vec<Vec<u8>>,
}

/// Buffers of one model run.
struct Bufs {
    arena: Vec<f32>,
    out: Vec<f32>,
}

/// One pass of `policy` (None = the dense `infer`) over the set; `each` sees every image's
/// index, output, MACs and tile levels.
fn pass(
    m: &Trained,
    t: &TestSet,
    b: &mut Bufs,
    policy: Option<Policy>,
    mut each: impl FnMut(usize, &[f32], u64, Option<Vec<u8>>),
) {
    for i in 0..t.n {
        let x = &t.images[i * m.input_len..][..m.input_len];
        match policy {
            None => {
                (m.infer)(x, &mut b.arena, &mut b.out).expect("sizes");
                each(i, &b.out, m.macs, None);
            }
            Some(p) => {
                let (used, tile_levels) =
                    (m.infer_adaptive)(x, &mut b.arena, &mut b.out, p).expect("sizes");
                each(i, &b.out, used, Some(tile_levels));
            }
        }
    }
}

/// Accuracy, mean MACs and tile levels of `policy` over the set (untimed; also the warm-up).
fn evaluate(m: &Trained, t: &TestSet, name: &str, policy: Option<Policy>) -> Row {
    let mut b = Bufs {
        arena: vec![0f32; m.arena_len],
        out: vec![0f32; m.output_len],
    };
    let (mut correct, mut macs, mut levels) = (0usize, 0u64, Vec::new());
    pass(m, t, &mut b, policy, |i, out, used, tl| {
        correct += usize::from(argmax(out) == t.labels[i]);
        macs += used;
        if let Some(tl) = tl.filter(|_| levels.len() < 8) {
            levels.push(tl);
        }
    });
    Row {
        name: name.to_string(),
        policy,
        accuracy: 100.0 * correct as f64 / t.n as f64,
        mean_macs: macs as f64 / t.n as f64,
        ms: f64::NAN,
        levels,
    }
}

/// Times every row: `ROUNDS` rounds, each one pass of every row in turn, and each row's median
/// pass. Interleaving the rows spreads a burst of load from other processes over all of them
/// instead of one row's passes, so the ratios to the dense row stay fair.
fn time_rows(m: &Trained, t: &TestSet, rows: &mut [Row]) {
    const ROUNDS: usize = 7;
    let mut b = Bufs {
        arena: vec![0f32; m.arena_len],
        out: vec![0f32; m.output_len],
    };
    let mut times = vec![Vec::with_capacity(ROUNDS); rows.len()];
    for _ in 0..ROUNDS {
        for (r, row) in rows.iter().enumerate() {
            let start = Instant::now();
            pass(m, t, &mut b, row.policy, |_, _, _, _| {});
            times[r].push(start.elapsed().as_secs_f64());
        }
    }
    for (row, mut ts) in rows.iter_mut().zip(times) {
        ts.sort_by(f64::total_cmp);
        row.ms = ts[ROUNDS / 2] * 1e3 / t.n as f64;
    }
}

/// An SVG scatter of accuracy against mean latency, one labelled point per row.
fn plot_svg(model: &Trained, rows: &[Row]) -> String {
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
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{}: accuracy vs mean latency (neulens, this machine)</text>\n\
         <line x1=\"{m}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">mean latency per image (ms)</text>\n\
         <text x=\"15\" y=\"{}\" transform=\"rotate(-90 15 {})\" text-anchor=\"middle\">accuracy (%)</text>\n",
        w / 2.0,
        model.name,
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
fn tiles_svg(m: &Trained, t: &TestSet, gate: &Row) -> String {
    const COLOURS: [&str; 5] = ["#d7191c", "#fdae61", "#e6e600", "#abd9e9", "#2c7bb6"];
    let (side, scale, gap) = (96usize, 2usize, 12usize);
    let shown = gate.levels.len().min(8);
    let cell = side * scale + gap;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        cell * shown + gap,
        side * scale + 3 * gap + 20
    );
    let k = m.grid;
    for (n, levels) in gate.levels.iter().take(shown).enumerate() {
        let (ox, oy) = (gap + n * cell, gap);
        for yy in 0..side {
            for xx in 0..side {
                let v = t.images[n * m.input_len + yy * side + xx];
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
            m.classes.get(t.labels[n]).copied().unwrap_or("?")
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

/// The demo for one trained model (`digits` or `fashion`): the table, then the two pictures in
/// `target/neulens-demo/` (`<name>_accuracy_latency.svg`, `<name>_tiles.svg`).
pub fn run(name: &str) {
    let Some(m) = model(name) else {
        eprintln!("unknown trained model `{name}`; choose digits or fashion");
        std::process::exit(2);
    };
    let t = match load_test_set(m.name) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot load the shipped test set: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "model      {0} (specs/{0}.yaml, trained by train/train.py): {1}×{1} tiles, levels {2:?}, isa {3}",
        m.name,
        m.grid,
        m.level_fractions,
        neulens::active_isa().name()
    );
    println!(
        "test set   {} cluttered 96×96 canvases (specs/data/{}_test.safetensors)",
        t.n, m.name
    );
    let mut rows = vec![evaluate(&m, &t, "dense", None)];
    for (l, f) in m.level_fractions.iter().enumerate() {
        rows.push(evaluate(
            &m,
            &t,
            &format!("level {l} ({f})"),
            Some(Policy::Fixed(l as u8)),
        ));
    }
    rows.push(evaluate(&m, &t, "gate", Some(Policy::Gate)));
    for f in [0.5f32, 0.45, 0.4, 0.35, 0.3] {
        rows.push(evaluate(
            &m,
            &t,
            &format!("gate, budget {f}"),
            Some(Policy::Budget(Budget::Fraction(f))),
        ));
    }
    time_rows(&m, &t, &mut rows);
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
            r.mean_macs / m.macs as f64,
            r.ms,
            100.0 * (1.0 - r.ms / dense_ms)
        );
    }
    let dir = PathBuf::from("target/neulens-demo");
    let (plot, tiles) = (
        dir.join(format!("{}_accuracy_latency.svg", m.name)),
        dir.join(format!("{}_tiles.svg", m.name)),
    );
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&plot, plot_svg(&m, &rows)))
        .and_then(|()| {
            let gate = rows.iter().find(|r| r.name == "gate").expect("gate row");
            std::fs::write(&tiles, tiles_svg(&m, &t, gate))
        });
    match written {
        Ok(()) => println!("\nwrote {} and {}", plot.display(), tiles.display()),
        Err(e) => eprintln!("cannot write the pictures to {}: {e}", dir.display()),
    }
    println!(
        "(the gate and the budget controller trade accuracy for MACs; train/README.md has the training \
         numbers and which NeuLens targets they meet)"
    );
}
