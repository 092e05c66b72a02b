//! Whole-model benches: resnet8, demo and resnet18 (compiled by build.rs) through `infer_slices`,
//! throughput in MACs; the kernels' ISA is fixed at compile time (`ISA`, SSE2 on default x86-64).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use neulens::Model;
use neulens_benches::{demo, microflow_demo, resnet18, resnet8};
use std::hint::black_box;
use std::time::Duration;

/// Benches one model as `models/<name>@<isa>` (the ISA its kernels were compiled for).
fn bench_model<M: Model>(c: &mut Criterion, isa: neulens::Isa, slow: bool) {
    // A deterministic, image-like input (the same as the example runner's).
    let [ch, h, w] = M::INPUT_SHAPE;
    let input: Vec<f32> = (0..ch * h * w)
        .map(|i| {
            let (ci, y, x) = (i / (h * w), (i / w) % h, i % w);
            ((x as f32 / w as f32) - 0.5) + 0.3 * ((y * 7 + x * 3 + ci * 11) % 17) as f32 / 17.0
        })
        .collect();
    let mut arena = vec![0f32; M::ARENA_LEN];
    let mut output = vec![0f32; M::OUTPUT_LEN];

    let mut group = c.benchmark_group("models");
    group.throughput(Throughput::Elements(M::MACS));
    if slow {
        // ~0.1–1 s per inference: the minimum sample count, one inference per sample.
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(10));
    } else {
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
    }
    group.bench_function(format!("{}@{}", M::NAME, isa.name()), |b| {
        b.iter(|| {
            M::infer_slices(black_box(&input), &mut arena, &mut output)
                .expect("sizes come from the model's consts");
            black_box(&output);
        })
    });
    group.finish();
}

/// Adaptive inference of `microflow_demo` (`microflows/<run>`): the dense model, every uniform
/// level, the gate, the gate under budgets, and two threads; throughput = the MACs each run did,
/// so the MAC reduction and the speed-up can be compared (docs/BENCHMARKS.md).
fn microflows(c: &mut Criterion) {
    use microflow_demo as m;
    use neulens::{Budget, Policy};
    let [ch, h, w] = m::INPUT_SHAPE;
    let input: Vec<f32> = (0..ch * h * w)
        .map(|i| {
            let (y, x) = ((i / w) % h, i % w);
            let blob = if y < h / 3 && x < w / 3 { 1.0 } else { 0.0 };
            blob + 0.05 * ((y * 7 + x * 3) % 17) as f32 / 17.0
        })
        .collect();
    let input: &[f32; m::INPUT_LEN] = input.as_slice().try_into().expect("INPUT_LEN");
    let mut arena = vec![0f32; m::ARENA_LEN.max(m::adaptive_arena_len(2))];
    let mut out = [0f32; m::OUTPUT_LEN];
    let mut group = c.benchmark_group("microflows");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(m::MACS));
    group.bench_function("dense", |b| {
        b.iter(|| {
            m::infer_slices(black_box(input), &mut arena, &mut out).expect("sizes");
            black_box(&out);
        })
    });
    // The same two runs on a persistent pool of 2 workers (`infer_adaptive_pool`).
    let pool = neulens::parallel::Pool::new(2);
    for (name, policy) in [
        ("level0_pool2", Policy::Fixed(0)),
        ("gate_pool2", Policy::Gate),
    ] {
        let r = m::infer_adaptive_pool(input, &mut arena, &mut out, policy, &pool)
            .expect("arena sized for 2 threads");
        group.throughput(Throughput::Elements(r.total_macs));
        group.bench_function(name, |b| {
            b.iter(|| {
                let r =
                    m::infer_adaptive_pool(black_box(input), &mut arena, &mut out, policy, &pool)
                        .expect("arena sized for 2 threads");
                black_box((&out, r));
            })
        });
    }
    let mut runs: Vec<(String, Policy, usize)> = (0..m::LEVELS as u8)
        .map(|l| (format!("level{l}"), Policy::Fixed(l), 1))
        .collect();
    runs.push(("gate".into(), Policy::Gate, 1));
    runs.push(("budget0.5".into(), Policy::Budget(Budget::Fraction(0.5)), 1));
    runs.push(("budget0.3".into(), Policy::Budget(Budget::Fraction(0.3)), 1));
    runs.push(("level0_2threads".into(), Policy::Fixed(0), 2));
    runs.push(("gate_2threads".into(), Policy::Gate, 2));
    for (name, policy, threads) in runs {
        let r = m::infer_adaptive_threads(input, &mut arena, &mut out, policy, threads)
            .expect("arena sized for 2 threads");
        group.throughput(Throughput::Elements(r.total_macs));
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = m::infer_adaptive_threads(
                    black_box(input),
                    &mut arena,
                    &mut out,
                    policy,
                    threads,
                )
                .expect("arena sized for 2 threads");
                black_box((&out, r));
            })
        });
    }
    group.finish();
}

fn models(c: &mut Criterion) {
    bench_model::<resnet8::Model>(c, resnet8::ISA, false);
    bench_model::<demo::Model>(c, demo::ISA, false);
    bench_model::<resnet18::Model>(c, resnet18::ISA, true);
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = models, microflows
}
criterion_main!(benches);
