//! Calibration data of the `algo: auto` cost model (neulens-codegen `plan::conv_cost`): times
//! the direct kernel and Winograd F(2,3)/F(4,3)/F(6,3) on 3×3 stride-1 pad-1 convs (hot caches,
//! the best ISA of this CPU, one thread) next to the model's estimates and choice.
//!
//! ```sh
//! cargo run --release -p neulens-benches --bin conv_calib            # full grid, ~2 min
//! cargo run --release -p neulens-benches --bin conv_calib -- quick   # C1–C4 + a few small ones
//! cargo run --release -p neulens-benches --bin conv_calib -- tiles   # the micro-flow tile convs
//! # any one conv (3×3 stride 2 included; Winograd columns only where it applies):
//! cargo run --release -p neulens-benches --bin conv_calib -- shape 32 24 24 48 12 12 3 2 1 1
//! #                                            c_in h_in w_in c_out h_out w_out k stride pad_top pad_left
//! ```
//!
//! Each time is the minimum over 3 alternating rounds of the median of ≥ 15 calls (minimum of
//! medians: robust to other processes sharing the cores). Output: one markdown row per shape.

use neulens::kernels::conv::{conv2d_scratch_checked, pack_conv_weights, ConvParams};
use neulens::kernels::winograd::{self as wg, WinogradTile};
use neulens::{Act, Isa};
use neulens_codegen::plan::{conv_cost, ConvAlgo};
use std::hint::black_box;
use std::time::{Duration, Instant};

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

fn params(c: usize, hw: usize) -> ConvParams {
    tile_params(c, hw, (1, 1))
}

/// A square `hw`-pixel output with padding (before, after) on both axes, like a micro-flow tile
/// conv (padding only on the image border sides).
fn tile_params(c: usize, hw: usize, (pa, pb): (usize, usize)) -> ConvParams {
    let hw_in = hw + 2 - pa - pb;
    ConvParams {
        c_in: c,
        h_in: hw_in,
        w_in: hw_in,
        c_out: c,
        h_out: hw,
        w_out: hw,
        kh: 3,
        kw: 3,
        sh: 1,
        sw: 1,
        pad_top: pa,
        pad_left: pa,
        groups: 1,
        act: Act::Relu,
    }
}

/// Median ns of one call of `f` over a ~`budget` batch (at least 15 calls).
fn median_ns(budget: Duration, mut f: impl FnMut()) -> f64 {
    let t0 = Instant::now();
    f();
    let one = t0.elapsed().max(Duration::from_nanos(100));
    let n = ((budget.as_nanos() / one.as_nanos()) as usize).clamp(15, 20_000);
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[n / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let tiles = std::env::args().any(|a| a == "tiles");
    let isa = Isa::ALL
        .into_iter()
        .rev()
        .find(|i| i.is_available())
        .expect("scalar is always available");
    let mut shapes: Vec<(String, ConvParams)> = [(64, 56), (128, 28), (256, 14), (512, 7)]
        .iter()
        .enumerate()
        .map(|(i, &(c, hw))| (format!("C{}", i + 1), params(c, hw)))
        .collect();
    let (cs, maps): (&[usize], &[usize]) = if quick {
        (&[16, 32], &[12, 20, 24])
    } else {
        (&[8, 16, 32, 64], &[8, 12, 16, 20, 24, 32, 48])
    };
    for &c in cs {
        for &hw in maps {
            shapes.push((String::new(), params(c, hw)));
        }
    }
    if let Some(at) = std::env::args().position(|a| a == "shape") {
        let a: Vec<usize> = std::env::args()
            .skip(at + 1)
            .map(|s| s.parse().expect("shape: ten numbers"))
            .collect();
        assert_eq!(
            a.len(),
            10,
            "shape: c_in h_in w_in c_out h_out w_out k stride pad_top pad_left"
        );
        shapes = vec![(
            "shape".to_string(),
            ConvParams {
                c_in: a[0],
                h_in: a[1],
                w_in: a[2],
                c_out: a[3],
                h_out: a[4],
                w_out: a[5],
                kh: a[6],
                kw: a[6],
                sh: a[7],
                sw: a[7],
                pad_top: a[8],
                pad_left: a[9],
                groups: 1,
                act: Act::Relu,
            },
        )];
    }
    if tiles {
        // The level-0 tile convs of specs/microflow_demo.yaml (b1a 17–19 px, b1b 16–17 px,
        // padding only on the image border side), 32 channels.
        shapes.clear();
        for hw in [16, 17, 18, 19] {
            for pad in [(0, 0), (1, 0), (0, 1)] {
                shapes.push((format!("tile pad {pad:?}"), tile_params(32, hw, pad)));
            }
        }
    }
    if std::env::args().any(|a| a == "features") {
        // The cost model's terms per shape (for refitting the constants): direct MACs, then per
        // tile F2/F4/F6 the padded GEMM MACs, transformed values, U floats × blocks (0 0 0 when
        // the block does not fit the cache), and 1 when the tiles are gathered as whole vectors
        // on AVX-512 (`winograd::gathers_vectors`: its own transform constant), else 0.
        for (name, p) in &shapes {
            let mut line = format!("{name};{};{};{}", p.c_in, p.h_out, p.macs());
            for t in WinogradTile::ALL {
                let tiles = p.h_out.div_ceil(t.m()) * p.w_out.div_ceil(t.m());
                let nb = wg::tiles_per_block(p, t);
                let padded = tiles / nb * nb + (tiles % nb).div_ceil(16) * 16;
                let pos = t.positions();
                let f = if wg::block_fits_cache(p, t) {
                    (
                        padded * pos * p.c_in * p.c_out,
                        tiles * pos * (p.c_in + p.c_out),
                        wg::packed_weight_len(p, t) * tiles.div_ceil(nb),
                    )
                } else {
                    (0, 0, 0)
                };
                let vec = u8::from(wg::gathers_vectors(p, t, 16));
                line += &format!(";{};{};{};{vec}", f.0, f.1, f.2);
            }
            println!("{line}");
        }
        return;
    }
    println!("ISA {}", isa.name());
    println!("| shape | c | map | direct µs | F2 µs | F4 µs | F6 µs | fastest | model picks | model est. µs (direct/F2/F4/F6) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|---|---|");
    for (name, p) in shapes {
        p.validate().expect("valid conv");
        let input = data(p.input_len(), 1);
        let weights = data(p.weight_len(), 2);
        let bias = data(p.c_out, 3);
        let mut output = vec![0.0; p.output_len()];
        let mut packed = vec![0.0; p.packed_weight_len()];
        pack_conv_weights(&p, &weights, &mut packed).expect("weights pack");
        let mut scratch = vec![0.0; p.scratch_len()];
        let mut us: Vec<(WinogradTile, Vec<f32>, Vec<f32>)> = WinogradTile::ALL
            .into_iter()
            .filter(|_| wg::supported(&p))
            .map(|t| {
                let mut u = vec![0.0; wg::packed_weight_len(&p, t)];
                wg::pack_weights(&p, t, &weights, &mut u).expect("winograd weights pack");
                (t, u, vec![0.0; wg::scratch_len(&p, t)])
            })
            .collect();
        let budget = Duration::from_millis(if quick { 60 } else { 40 });
        let mut best = [f64::INFINITY; 4];
        for _round in 0..3 {
            let d = median_ns(budget, || {
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
            });
            best[0] = best[0].min(d);
            for (k, (t, u, ws)) in us.iter_mut().enumerate() {
                let w = median_ns(budget, || {
                    wg::winograd_conv2d_checked(
                        isa,
                        black_box(&p),
                        *t,
                        black_box(&input),
                        u,
                        &bias,
                        &mut output,
                        ws,
                    )
                    .expect("winograd runs");
                    black_box(&output);
                });
                best[k + 1] = best[k + 1].min(w);
            }
        }
        let algos = [
            ConvAlgo::Direct,
            ConvAlgo::Winograd(WinogradTile::F2),
            ConvAlgo::Winograd(WinogradTile::F4),
            ConvAlgo::Winograd(WinogradTile::F6),
        ];
        let label = |i: usize| ["direct", "F2", "F4", "F6"][i];
        let argmin = |v: &[f64]| {
            (0..v.len())
                .min_by(|&a, &b| v[a].total_cmp(&v[b]))
                .expect("four algos")
        };
        let est: Vec<f64> = algos
            .iter()
            .map(|&a| match a {
                ConvAlgo::Winograd(_) if !wg::supported(&p) => f64::INFINITY,
                _ => conv_cost(&p, a),
            })
            .collect();
        let us_ = |x: f64| {
            if x.is_finite() {
                format!("{:.1}", x / 1e3)
            } else {
                "–".to_string()
            }
        };
        let (fast, pick) = (argmin(&best), argmin(&est));
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {}{} | {} |",
            p.c_in,
            p.h_out,
            us_(best[0]),
            us_(best[1]),
            us_(best[2]),
            us_(best[3]),
            label(fast),
            label(pick),
            if best[pick] > best[fast] * 1.05 {
                format!(" (+{:.0} %)", (best[pick] / best[fast] - 1.0) * 100.0)
            } else {
                String::new()
            },
            est.iter().map(|&e| us_(e)).collect::<Vec<_>>().join("/")
        );
    }
}
