//! Kernel benches: each kernel on the same data for every ISA this CPU runs (scalar, SSE2, AVX2+FMA,
//! AVX-512F, NEON), so the SIMD speed-up over the scalar twin is measured in one run.

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use neulens::kernels::conv::{
    conv2d_global_max_checked, conv2d_scratch_checked, pack_conv_weights, pack_global_max_weights,
    ConvParams,
};
use neulens::kernels::dense::{dense_checked, pack_dense_weights, DenseParams};
use neulens::kernels::eltwise::softmax_checked;
use neulens::kernels::pool::{maxpool2d_checked, PoolParams};
use neulens::{Act, Isa};
use std::hint::black_box;
use std::time::Duration;

/// Every ISA the running CPU can execute, scalar first (the baseline of every ratio).
fn isas() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
}

/// Deterministic values in [-1, 1) (xorshift), so every ISA sees identical data.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Output size of one axis (PyTorch formula, symmetric padding).
const fn out_dim(n: usize, k: usize, s: usize, pad: usize) -> usize {
    (n + 2 * pad - k) / s + 1
}

#[allow(clippy::too_many_arguments)]
fn conv_params(
    c_in: usize,
    c_out: usize,
    hw: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> ConvParams {
    let o = out_dim(hw, k, stride, pad);
    ConvParams {
        c_in,
        h_in: hw,
        w_in: hw,
        c_out,
        h_out: o,
        w_out: o,
        kh: k,
        kw: k,
        sh: stride,
        sw: stride,
        pad_top: pad,
        pad_left: pad,
        groups,
        act: Act::Relu,
    }
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

/// One convolution shape on every ISA; throughput is its MAC count.
fn bench_conv(c: &mut Criterion, name: &str, p: ConvParams) {
    p.validate().expect("bench conv params are valid");
    let input = data(p.input_len(), 1);
    let mut packed = vec![0.0; p.packed_weight_len()];
    pack_conv_weights(&p, &data(p.weight_len(), 2), &mut packed).expect("weights pack");
    let bias = data(p.c_out, 3);
    let mut output = vec![0.0; p.output_len()];
    let mut scratch = vec![0.0; p.scratch_len()];

    let mut group = c.benchmark_group(name);
    configure(&mut group);
    group.throughput(Throughput::Elements(p.macs()));
    for isa in isas() {
        group.bench_function(isa.name(), |b| {
            b.iter(|| {
                conv2d_scratch_checked(
                    isa,
                    black_box(&p),
                    black_box(&input),
                    &packed,
                    &bias,
                    &mut output,
                    &mut scratch,
                )
                .expect("conv runs");
                black_box(&output);
            })
        });
    }
    group.finish();
}

fn convs(c: &mut Criterion) {
    // 3×3, stride 1, pad 1: a ResNet-18 layer2-sized body conv and a ResNet-8 stack-1 conv.
    bench_conv(
        c,
        "conv3x3_s1/64x28x28-64",
        conv_params(64, 64, 28, 3, 1, 1, 1),
    );
    bench_conv(
        c,
        "conv3x3_s1/16x32x32-16",
        conv_params(16, 16, 32, 3, 1, 1, 1),
    );
    // Row width decides how much of each row the vector body covers: ResNet-18 layer1 (56 wide)
    // and ResNet-8 stack 3 (8 wide).
    bench_conv(
        c,
        "conv3x3_s1/64x56x56-64",
        conv_params(64, 64, 56, 3, 1, 1, 1),
    );
    bench_conv(
        c,
        "conv3x3_s1/64x8x8-64",
        conv_params(64, 64, 8, 3, 1, 1, 1),
    );
    // 3×3, stride 2, pad 1: a ResNet-18 down-sampling conv (28×28 → 14×14).
    bench_conv(
        c,
        "conv3x3_s2/64x28x28-128",
        conv_params(64, 128, 28, 3, 2, 1, 1),
    );
    // 1×1 (the GEMM path).
    bench_conv(
        c,
        "conv1x1/128x14x14-128",
        conv_params(128, 128, 14, 1, 1, 0, 1),
    );
    // Depthwise 3×3, pad 1.
    bench_conv(
        c,
        "dwconv3x3/64x28x28",
        conv_params(64, 64, 28, 3, 1, 1, 64),
    );
}

fn maxpool(c: &mut Criterion) {
    // The ResNet-18 stem pool: 64×112×112 → 64×56×56, 3×3, stride 2, pad 1.
    let o = out_dim(112, 3, 2, 1);
    let p = PoolParams {
        c: 64,
        h_in: 112,
        w_in: 112,
        h_out: o,
        w_out: o,
        kh: 3,
        kw: 3,
        sh: 2,
        sw: 2,
        pad_top: 1,
        pad_left: 1,
        count_include_pad: false,
        act: Act::None,
    };
    p.validate().expect("bench pool params are valid");
    let input = data(p.input_len(), 4);
    let mut output = vec![0.0; p.output_len()];
    let mut group = c.benchmark_group("maxpool3x3_s2/64x112x112");
    configure(&mut group);
    // Bytes of input read once: criterion prints GiB/s.
    group.throughput(Throughput::Bytes((p.input_len() * 4) as u64));
    for isa in isas() {
        group.bench_function(isa.name(), |b| {
            b.iter(|| {
                maxpool2d_checked(isa, black_box(&p), black_box(&input), &mut output)
                    .expect("maxpool runs");
                black_box(&output);
            })
        });
    }
    group.finish();
}

/// A conv followed by a global max pool, two ways on every ISA: the conv storing its map and
/// the pool reading it back (`unfused/`), and `conv2d_global_max` keeping running maxima in
/// registers (`fused/`). Shapes: the digits micro-flow gate's conv (1→16, 39×39 → 19×19,
/// stride 2, unpadded; nine per image) and the digits tail's `c4` (48→64, 12×12 → 6×6,
/// stride 2, pad 1).
fn conv_global_max(c: &mut Criterion) {
    let gate = ConvParams {
        h_out: 19,
        w_out: 19,
        pad_top: 0,
        pad_left: 0,
        ..conv_params(1, 16, 39, 3, 2, 0, 1)
    };
    for (name, p) in [
        ("gate_1x39x39-16_s2", gate),
        ("c4_48x12x12-64_s2", conv_params(48, 64, 12, 3, 2, 1, 1)),
    ] {
        p.validate().expect("bench conv params are valid");
        let pool = PoolParams {
            c: p.c_out,
            h_in: p.h_out,
            w_in: p.w_out,
            h_out: 1,
            w_out: 1,
            kh: p.h_out,
            kw: p.w_out,
            sh: 1,
            sw: 1,
            pad_top: 0,
            pad_left: 0,
            count_include_pad: false,
            act: Act::None,
        };
        let (input, w, bias) = (
            data(p.input_len(), 5),
            data(p.weight_len(), 6),
            data(p.c_out, 7),
        );
        let mut packed = vec![0.0; p.packed_weight_len()];
        pack_conv_weights(&p, &w, &mut packed).expect("weights pack");
        let mut packed_gmax = vec![0.0; p.global_max_packed_len()];
        pack_global_max_weights(&p, &w, &mut packed_gmax).expect("weights pack");
        let mut map = vec![0.0; p.output_len()];
        let mut scratch = vec![0.0; p.scratch_len().max(p.global_max_scratch_len())];
        let mut out = vec![0.0; p.c_out];
        let mut group = c.benchmark_group(format!("conv_global_max/{name}"));
        configure(&mut group);
        group.throughput(Throughput::Elements(p.macs()));
        for isa in isas() {
            group.bench_function(format!("unfused/{}", isa.name()), |b| {
                b.iter(|| {
                    conv2d_scratch_checked(
                        isa,
                        black_box(&p),
                        black_box(&input),
                        &packed,
                        &bias,
                        &mut map,
                        &mut scratch,
                    )
                    .expect("conv runs");
                    maxpool2d_checked(isa, &pool, &map, &mut out).expect("pool runs");
                    black_box(&out);
                })
            });
            group.bench_function(format!("fused/{}", isa.name()), |b| {
                b.iter(|| {
                    conv2d_global_max_checked(
                        isa,
                        black_box(&p),
                        black_box(&input),
                        &packed_gmax,
                        &bias,
                        &mut out,
                        &mut scratch,
                    )
                    .expect("fused conv runs");
                    black_box(&out);
                })
            });
        }
        group.finish();
    }
}

fn dense(c: &mut Criterion) {
    let p = DenseParams {
        in_features: 512,
        out_features: 1000,
        act: Act::None,
    };
    let input = data(p.in_features, 5);
    let mut packed = vec![0.0; p.packed_weight_len()];
    pack_dense_weights(&p, &data(p.packed_weight_len(), 6), &mut packed).expect("weights pack");
    let bias = data(p.out_features, 7);
    let mut output = vec![0.0; p.out_features];
    let mut group = c.benchmark_group("dense/512-1000");
    configure(&mut group);
    group.throughput(Throughput::Elements(p.macs()));
    for isa in isas() {
        group.bench_function(isa.name(), |b| {
            b.iter(|| {
                dense_checked(
                    isa,
                    black_box(&p),
                    black_box(&input),
                    &packed,
                    &bias,
                    &mut output,
                )
                .expect("dense runs");
                black_box(&output);
            })
        });
    }
    group.finish();
}

fn softmax(c: &mut Criterion) {
    let input: Vec<f32> = data(1000, 8).iter().map(|v| v * 8.0).collect();
    let mut output = vec![0.0; input.len()];
    let mut group = c.benchmark_group("softmax/1000");
    configure(&mut group);
    group.throughput(Throughput::Elements(input.len() as u64));
    for isa in isas() {
        group.bench_function(isa.name(), |b| {
            b.iter(|| {
                softmax_checked(isa, black_box(&input), &mut output).expect("softmax runs");
                black_box(&output);
            })
        });
    }
    group.finish();
}

/// The direct-path shapes of issue 4 (3×3, bias + ReLU): C1–C4 pad 1 stride 1, C5 a stem with
/// stride 2; plus a 1×1 GEMM on the C1 grid and a 3×3 depthwise on the C1 grid.
fn direct_convs(c: &mut Criterion) {
    bench_conv(
        c,
        "direct_c1/64x56x56-64",
        conv_params(64, 64, 56, 3, 1, 1, 1),
    );
    bench_conv(
        c,
        "direct_c2/128x28x28-128",
        conv_params(128, 128, 28, 3, 1, 1, 1),
    );
    bench_conv(
        c,
        "direct_c3/256x14x14-256",
        conv_params(256, 256, 14, 3, 1, 1, 1),
    );
    bench_conv(
        c,
        "direct_c4/512x7x7-512",
        conv_params(512, 512, 7, 3, 1, 1, 1),
    );
    bench_conv(
        c,
        "direct_c5/3x224x224-32_s2",
        conv_params(3, 32, 224, 3, 2, 1, 1),
    );
    bench_conv(
        c,
        "conv1x1/64x56x56-256",
        conv_params(64, 256, 56, 1, 1, 0, 1),
    );
    bench_conv(
        c,
        "dwconv3x3/128x56x56",
        conv_params(128, 128, 56, 3, 1, 1, 128),
    );
}

/// Winograd F(2,3)/F(4,3)/F(6,3) against the direct kernel in the same run, on the 3×3 stride-1
/// shapes of issue 4 (pad 1, bias, ReLU). Throughput is 2 × the direct MACs, so criterion's
/// "elem/s" is the effective FLOP/s. AVX-512 on every shape (or the best ISA there is); the other
/// ISAs on C4 only.
fn winograd(c: &mut Criterion) {
    use neulens::kernels::winograd::{self as wg, WinogradTile};
    let shapes = [
        ("c1_64x56x56-64", conv_params(64, 64, 56, 3, 1, 1, 1)),
        ("c2_128x28x28-128", conv_params(128, 128, 28, 3, 1, 1, 1)),
        ("c3_256x14x14-256", conv_params(256, 256, 14, 3, 1, 1, 1)),
        ("c4_512x7x7-512", conv_params(512, 512, 7, 3, 1, 1, 1)),
    ];
    let best = *isas().last().expect("scalar is always available");
    for (name, p) in shapes {
        p.validate().expect("bench conv params are valid");
        let input = data(p.input_len(), 1);
        let weights = data(p.weight_len(), 2);
        let bias = data(p.c_out, 3);
        let mut output = vec![0.0; p.output_len()];
        let mut packed = vec![0.0; p.packed_weight_len()];
        pack_conv_weights(&p, &weights, &mut packed).expect("weights pack");
        let mut scratch = vec![0.0; p.scratch_len()];
        let run_isas: Vec<Isa> = if name.starts_with("c4") {
            isas()
        } else {
            vec![best]
        };
        let mut group = c.benchmark_group(format!("winograd/{name}"));
        configure(&mut group);
        group.sample_size(10);
        group.throughput(Throughput::Elements(2 * p.macs()));
        for &isa in &run_isas {
            group.bench_function(format!("direct/{}", isa.name()), |b| {
                b.iter(|| {
                    conv2d_scratch_checked(
                        isa,
                        black_box(&p),
                        black_box(&input),
                        &packed,
                        &bias,
                        &mut output,
                        &mut scratch,
                    )
                    .expect("conv runs");
                    black_box(&output);
                })
            });
        }
        for t in WinogradTile::ALL {
            let mut u = vec![0.0; wg::packed_weight_len(&p, t)];
            wg::pack_weights(&p, t, &weights, &mut u).expect("winograd weights pack");
            let mut ws = vec![0.0; wg::scratch_len(&p, t)];
            for &isa in &run_isas {
                group.bench_function(format!("f{}/{}", t.m(), isa.name()), |b| {
                    b.iter(|| {
                        wg::winograd_conv2d_checked(
                            isa,
                            black_box(&p),
                            t,
                            black_box(&input),
                            &u,
                            &bias,
                            &mut output,
                            &mut ws,
                        )
                        .expect("winograd runs");
                        black_box(&output);
                    })
                });
            }
        }
        group.finish();
    }
}

neulens::kernels::pattern_library!(
    /// The bench library: 8 patterns (four 2×2 corners, four T shapes around the centre).
    struct Lib8 = [
        0 => 0x01b, 1 => 0x036, 2 => 0x0d8, 3 => 0x1b0, 4 => 0x03a, 5 => 0x0b2, 6 => 0x0b8,
        7 => 0x09a,
    ];
);

/// A pattern assignment at connectivity 0.5: every filter keeps `c_in / 2` kernels (chosen
/// pseudo-randomly), each with one of the 8 library patterns; weights outside the masks zeroed.
fn pattern_weights(p: &ConvParams, seed: u64) -> (Vec<u8>, Vec<f32>) {
    use neulens::kernels::pattern::{PatternLib, PRUNED};
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut assign = vec![PRUNED; p.c_out * p.c_in];
    for oc in 0..p.c_out {
        let mut ics: Vec<usize> = (0..p.c_in).collect();
        for i in (1..ics.len()).rev() {
            ics.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        for &ic in &ics[..p.c_in / 2] {
            assign[oc * p.c_in + ic] = (next() % 8) as u8;
        }
    }
    let mut w = data(p.weight_len(), seed);
    for (k, &a) in assign.iter().enumerate() {
        let m = if a == PRUNED {
            0
        } else {
            Lib8::MASKS[a as usize]
        };
        for b in 0..9 {
            if m >> b & 1 == 0 {
                w[k * 9 + b] = 0.0;
            }
        }
    }
    (assign, w)
}

/// Pattern-pruned 3×3 convs (8 patterns, connectivity 0.5, so 4.5× fewer MACs) against the
/// dense direct kernel on the same (pruned) weights in the same run, on the shapes of issue 5
/// and a stride-2 ResNet layer (pad 1, bias, ReLU). Throughput is 2 × the dense MACs: criterion's "elem/s" is the
/// GFLOP/s-equivalent, and the ratio of two rows is the speed-up.
fn pattern(c: &mut Criterion) {
    use neulens::kernels::pattern::{
        pack_pattern_weights, pattern_conv2d, pattern_conv2d_checked, pattern_params, PatternLib,
    };
    let shapes = [
        ("c1_64x56x56-64", conv_params(64, 64, 56, 3, 1, 1, 1)),
        ("c2_128x28x28-128", conv_params(128, 128, 28, 3, 1, 1, 1)),
        ("c3_256x14x14-256", conv_params(256, 256, 14, 3, 1, 1, 1)),
        ("c4_512x7x7-512", conv_params(512, 512, 7, 3, 1, 1, 1)),
        // ResNet-18's layer4.0.conv1: stride 2 onto a 7×7 map.
        ("s2_256x14x14-512", conv_params(256, 512, 14, 3, 2, 1, 1)),
        // ResNet-18's layer2.0.conv1: stride 2 (the kernel reads four phase planes).
        ("s2_64x56x56-128", conv_params(64, 128, 56, 3, 2, 1, 1)),
    ];
    let all = isas();
    let best = *all.last().expect("scalar is always available");
    let run_isas: Vec<Isa> = all.into_iter().filter(|&i| i != Isa::Scalar).collect();
    for (name, p) in shapes {
        p.validate().expect("bench conv params are valid");
        let input = data(p.input_len(), 1);
        let (assign, weights) = pattern_weights(&p, 2);
        let bias = data(p.c_out, 3);
        let mut output = vec![0.0; p.output_len()];
        let mut packed = vec![0.0; p.packed_weight_len()];
        pack_conv_weights(&p, &weights, &mut packed).expect("weights pack");
        let mut scratch = vec![0.0; p.scratch_len()];
        let pp = pattern_params(&p, Lib8::MASKS, &assign).expect("pattern params");
        let mut ppacked = vec![0.0; pp.packed_len()];
        pack_pattern_weights(&p, Lib8::MASKS, &weights, &assign, &mut ppacked)
            .expect("pattern weights pack");
        let mut pscratch = vec![0.0; pp.scratch_len()];
        let mut group = c.benchmark_group(format!("pattern/{name}"));
        configure(&mut group);
        group.sample_size(10);
        group.throughput(Throughput::Elements(2 * p.macs()));
        group.bench_function(format!("direct/{}", best.name()), |b| {
            b.iter(|| {
                conv2d_scratch_checked(
                    best,
                    black_box(&p),
                    black_box(&input),
                    &packed,
                    &bias,
                    &mut output,
                    &mut scratch,
                )
                .expect("conv runs");
                black_box(&output);
            })
        });
        for &isa in &run_isas {
            // Checked once (lengths, the packed header, the ISA); then timed as generated
            // models call it, without the O(kernels) header check of the safe wrapper.
            pattern_conv2d_checked::<Lib8>(
                isa,
                &pp,
                &input,
                &ppacked,
                &bias,
                &mut output,
                &mut pscratch,
            )
            .expect("pattern conv runs");
            group.bench_function(format!("pattern/{}", isa.name()), |b| {
                b.iter(|| {
                    // SAFETY: the same buffers and parameters `pattern_conv2d_checked` just
                    // accepted; `output` and `pscratch` are distinct `Vec`s.
                    unsafe {
                        pattern_conv2d::<Lib8>(
                            isa,
                            black_box(&pp),
                            black_box(input.as_ptr()),
                            ppacked.as_ptr(),
                            bias.as_ptr(),
                            output.as_mut_ptr(),
                            pscratch.as_mut_ptr(),
                        )
                    };
                    black_box(&output);
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = kernels;
    config = Criterion::default().without_plots();
    targets = convs, direct_convs, maxpool, conv_global_max, dense, softmax, winograd, pattern
}
criterion_main!(kernels);
