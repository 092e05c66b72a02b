//! The README's run command: `cargo run --release -p neulens-examples [-- MODEL]`.
//! Without an argument: the trained micro-flow demo (`digits`, see digits.rs; `fashion` is the
//! same demo on Fashion-MNIST). With another model name:
//! runs a model compiled from a shipped spec on a deterministic input and prints the output, the
//! arena size and the time per inference.

use neulens::Model;
use std::time::{Duration, Instant};

mod digits;

mod resnet8 {
    neulens::include_model!("resnet8");
}
mod resnet18 {
    neulens::include_model!("resnet18");
}
mod demo {
    neulens::include_model!("demo");
}
mod microflow_demo {
    neulens::include_model!("microflow_demo");
}

fn main() {
    let which = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "digits".to_string());
    match which.as_str() {
        "digits" | "fashion" => digits::run(&which),
        "resnet8" => run::<resnet8::Model>("specs/resnet8.yaml"),
        "resnet18" => run::<resnet18::Model>("specs/resnet18.yaml"),
        "demo" => run::<demo::Model>("specs/demo.yaml"),
        "microflow_demo" => adaptive(),
        other => {
            eprintln!(
                "unknown model `{other}`; choose digits, fashion, resnet8, resnet18, demo or microflow_demo"
            );
            std::process::exit(2);
        }
    }
}

fn run<M: Model>(spec: &str) {
    // A deterministic, image-like input: smooth gradients plus a little texture.
    let [c, h, w] = M::INPUT_SHAPE;
    let input: Vec<f32> = (0..c * h * w)
        .map(|i| {
            let (ch, y, x) = (i / (h * w), (i / w) % h, i % w);
            ((x as f32 / w as f32) - 0.5) + 0.3 * ((y * 7 + x * 3 + ch * 11) % 17) as f32 / 17.0
        })
        .collect();
    let mut arena = vec![0f32; M::ARENA_LEN];
    let mut output = vec![0f32; M::OUTPUT_LEN];

    // Warm up, then time enough runs for about one second (at least 3).
    M::infer_slices(&input, &mut arena, &mut output).expect("sizes come from the model's consts");
    let t0 = Instant::now();
    M::infer_slices(&input, &mut arena, &mut output).expect("sizes come from the model's consts");
    let once = t0.elapsed().max(Duration::from_micros(1));
    let runs = (1.0 / once.as_secs_f64()).clamp(3.0, 2000.0) as usize;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        M::infer_slices(&input, &mut arena, &mut output)
            .expect("sizes come from the model's consts");
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    // The scalar twin in the same run, as the baseline for the speed-up.
    let scalar = neulens::with_isa(neulens::Isa::Scalar, || {
        let mut t = Vec::new();
        for _ in 0..(runs / 10).clamp(3, 50) {
            let s = Instant::now();
            M::infer_slices(&input, &mut arena, &mut output)
                .expect("sizes come from the model's consts");
            t.push(s.elapsed());
        }
        t.sort();
        t[t.len() / 2]
    });

    println!(
        "model      {} (compiled from {spec} at build time)",
        M::NAME
    );
    println!(
        "isa        {} (compiled for {})",
        neulens::active_isa().name(),
        neulens::Isa::COMPILED.name()
    );
    println!("input      {:?} (CHW f32)", M::INPUT_SHAPE);
    println!("output     {:?}", M::OUTPUT_SHAPE);
    println!("layers     {}", M::LAYERS.len());
    println!("MACs       {}", M::MACS);
    println!(
        "arena      {} bytes ({} f32)",
        M::ARENA_LEN * 4,
        M::ARENA_LEN
    );
    println!(
        "time       {:.3} ms per inference (median of {runs}), {:.2} GMAC/s",
        median.as_secs_f64() * 1e3,
        M::MACS as f64 / median.as_secs_f64() / 1e9
    );
    if let Some(sc) = scalar {
        println!(
            "scalar     {:.3} ms per inference (same run): {:.1}× speed-up from SIMD",
            sc.as_secs_f64() * 1e3,
            sc.as_secs_f64() / median.as_secs_f64()
        );
    }
    // The output shown and compared below is the active ISA's (the scalar run overwrote it).
    M::infer_slices(&input, &mut arena, &mut output).expect("sizes come from the model's consts");
    // Two threads (convolutions split by output channels) of a pool made once, checked
    // against one thread.
    let pool = neulens::parallel::Pool::new(2);
    let mut arena2 = vec![0f32; M::threads_arena_len(pool.workers())];
    let mut output2 = vec![0f32; M::OUTPUT_LEN];
    let two = median_time(|| {
        M::infer_pool(&input, &mut arena2, &mut output2, &pool).expect("arena sized for the pool")
    });
    assert_eq!(output, output2, "2 threads must give the 1-thread result");
    println!(
        "2 threads  {:.3} ms per inference ({:.2}× one thread; same output)",
        two.as_secs_f64() * 1e3,
        median.as_secs_f64() / two.as_secs_f64()
    );
    let mut top: Vec<(usize, f32)> = output.iter().copied().enumerate().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    print!("top-5      ");
    for (i, v) in top.iter().take(5) {
        print!("[{i}] {v:.5}  ");
    }
    println!();
    let shown: Vec<String> = output.iter().take(10).map(|v| format!("{v:.5}")).collect();
    println!("output[..{}] {}", shown.len(), shown.join(" "));
}

/// Median wall time of `f` over about half a second of runs (at least 5), after one warm-up.
fn median_time(mut f: impl FnMut()) -> Duration {
    f();
    let t0 = Instant::now();
    f();
    let once = t0.elapsed().max(Duration::from_micros(1));
    let runs = (0.5 / once.as_secs_f64()).clamp(5.0, 2000.0) as usize;
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// `-- microflow_demo`: the dense model against adaptive inference (NeuLens micro-flows) at every
/// uniform level, under the gate and under budgets, all measured in this run; the speed-up of
/// each is compared with its MAC reduction (how much of the saving tiling keeps).
fn adaptive() {
    use microflow_demo as m;
    use neulens::{Budget, Policy};
    let [c, h, w] = m::INPUT_SHAPE;
    let input: Vec<f32> = (0..c * h * w)
        .map(|i| {
            let (y, x) = ((i / w) % h, i % w);
            // A bright blob in one corner on a faint texture: tiles differ in content.
            let blob = if y < h / 3 && x < w / 3 { 1.0 } else { 0.0 };
            blob + 0.05 * ((y * 7 + x * 3) % 17) as f32 / 17.0
        })
        .collect();
    let input: &[f32; m::INPUT_LEN] = input.as_slice().try_into().expect("INPUT_LEN");
    let mut arena = vec![0f32; m::ARENA_LEN];
    let mut adaptive_arena = vec![0f32; m::adaptive_arena_len(2)];
    let mut out = [0f32; m::OUTPUT_LEN];
    let dense = median_time(|| {
        m::infer_slices(input, &mut arena, &mut out).expect("sizes from the consts");
    });
    println!(
        "model      {} (specs/microflow_demo.yaml): {}×{} tiles, {} width levels {:?}, isa {}",
        m::NAME,
        m::GRID,
        m::GRID,
        m::LEVELS,
        m::LEVEL_FRACTIONS,
        neulens::active_isa().name()
    );
    println!(
        "arena      dense {} B, adaptive {} B (1 thread), {} B (2 threads)",
        m::ARENA_LEN * 4,
        m::ADAPTIVE_ARENA_LEN * 4,
        m::adaptive_arena_len(2) * 4
    );
    println!(
        "{:<22} {:>12} {:>9} {:>10} {:>9} {:>13}  levels",
        "run", "MACs", "MACs/dense", "ms", "speed-up", "speed-up/MACs"
    );
    println!(
        "{:<22} {:>12} {:>9.3} {:>10.3} {:>9.2} {:>13}  -",
        "dense infer",
        m::MACS,
        1.0,
        dense.as_secs_f64() * 1e3,
        1.0,
        "-"
    );
    let mut policies: Vec<(String, Policy)> = (0..m::LEVELS as u8)
        .map(|l| (format!("level {l} (uniform)"), Policy::Fixed(l)))
        .collect();
    policies.push(("gate".into(), Policy::Gate));
    for f in [0.7f32, 0.5, 0.3] {
        policies.push((
            format!("gate, budget {f}×"),
            Policy::Budget(Budget::Fraction(f)),
        ));
    }
    for threads in [1usize, 2] {
        for (name, p) in &policies {
            if threads == 2 && !matches!(p, Policy::Fixed(0) | Policy::Gate) {
                continue;
            }
            let mut report = None;
            let pool = neulens::parallel::Pool::new(threads);
            let t = median_time(|| {
                report = Some(
                    m::infer_adaptive_pool(input, &mut adaptive_arena, &mut out, *p, &pool)
                        .expect("arena sized for 2 threads"),
                );
            });
            let r = report.expect("ran");
            let mac_ratio = r.total_macs as f64 / m::MACS as f64;
            let speedup = dense.as_secs_f64() / t.as_secs_f64();
            let label = if threads == 1 {
                name.clone()
            } else {
                format!("{name}, 2 threads")
            };
            println!(
                "{:<22} {:>12} {:>9.3} {:>10.3} {:>9.2} {:>13.2}  {:?}",
                label,
                r.total_macs,
                mac_ratio,
                t.as_secs_f64() * 1e3,
                speedup,
                speedup * mac_ratio,
                r.levels
            );
        }
    }
}
