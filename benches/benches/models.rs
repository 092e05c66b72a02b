//! Whole-model benches: resnet8, demo and resnet18 (compiled by build.rs) through `infer_slices`,
//! throughput in MACs; the kernels' ISA is fixed at compile time (`ISA`, SSE2 on default x86-64).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use neulens::Model;
use neulens_benches::{demo, resnet18, resnet8};
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

fn models(c: &mut Criterion) {
    bench_model::<resnet8::Model>(c, resnet8::ISA, false);
    bench_model::<demo::Model>(c, demo::ISA, false);
    bench_model::<resnet18::Model>(c, resnet18::ISA, true);
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = models
}
criterion_main!(benches);
