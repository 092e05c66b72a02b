//! Test-only helpers: a tiny deterministic PRNG, naive f64 reference kernels, and the one
//! harness that runs a kernel on every available ISA against the scalar twin and the reference.

use std::format;
use std::vec::Vec;

use crate::conv::ConvParams;
use crate::pool::PoolParams;
use crate::{Act, Isa};

/// Widths / pixel counts around the lane counts 4, 8 and 16: 1, L-1, L, L+1, 2L+3.
pub const EDGE: [usize; 13] = [1, 3, 4, 5, 11, 7, 8, 9, 19, 15, 16, 17, 35];
/// Channel counts exercised.
pub const CHANNELS: [usize; 4] = [1, 3, 5, 17];
/// All activations.
pub const ACTS: [Act; 3] = [Act::None, Act::Relu, Act::Relu6];
/// Allowed error relative to the RMS of the expected output.
pub const TOL: f64 = 1e-5;

/// SplitMix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

/// Every ISA usable on this CPU (Scalar first).
pub fn isas() -> Vec<Isa> {
    Isa::ALL
        .iter()
        .copied()
        .filter(|i| i.is_available())
        .collect()
}

pub fn act_ref(act: Act, x: f64) -> f64 {
    match act {
        Act::None => x,
        Act::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
        Act::Relu6 => {
            let r = if x > 0.0 { x } else { 0.0 };
            if r < 6.0 {
                r
            } else {
                6.0
            }
        }
    }
}

fn rms(x: &[f64]) -> f64 {
    let f: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    if f.is_empty() {
        return 0.0;
    }
    (f.iter().map(|v| v * v).sum::<f64>() / f.len() as f64).sqrt()
}

/// `|got - want| <= tol * rms(want)` at every position where `want` is finite; where `want` is
/// not finite, `got` must not be finite either unless `only_finite`. Returns the number of
/// finite positions compared.
pub fn assert_close(ctx: &str, got: &[f32], want: &[f64], tol: f64, only_finite: bool) -> usize {
    assert_eq!(got.len(), want.len(), "{ctx}: length");
    let scale = rms(want).max(1e-30);
    let mut compared = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_finite() {
            let err = (g as f64 - w).abs();
            assert!(
                err <= tol * scale,
                "{ctx}: index {i}: got {g}, want {w} (err {err:e}, rms {scale:e})"
            );
            compared += 1;
        } else if !only_finite {
            assert!(
                !g.is_finite(),
                "{ctx}: index {i}: got {g}, want non-finite {w}"
            );
        }
    }
    compared
}

/// Runs `run` for every available ISA; checks the scalar twin against `want` and every other
/// ISA against both the scalar twin and `want`. Returns the number of ISAs run.
pub fn check_isas(
    ctx: &str,
    want: &[f64],
    only_finite: bool,
    mut run: impl FnMut(Isa) -> Vec<f32>,
) -> usize {
    let scalar = run(Isa::Scalar);
    assert_close(
        &format!("{ctx} [scalar vs f64 ref]"),
        &scalar,
        want,
        TOL,
        only_finite,
    );
    let twin: Vec<f64> = scalar.iter().map(|&v| v as f64).collect();
    let mut n = 1;
    for isa in isas().into_iter().filter(|&i| i != Isa::Scalar) {
        let got = run(isa);
        assert_close(
            &format!("{ctx} [{} vs scalar twin]", isa.name()),
            &got,
            &twin,
            TOL,
            only_finite,
        );
        assert_close(
            &format!("{ctx} [{} vs f64 ref]", isa.name()),
            &got,
            want,
            TOL,
            only_finite,
        );
        n += 1;
    }
    n
}

/// Checks that a kernel split into parts (the threads of `infer_threads`) computes `whole` bit
/// for bit: for each count in `counts`, `run((part, parts), out, scratch)` for every part (and
/// one past the last, which must do nothing) into one NaN-filled output, each part with its own
/// NaN-filled scratch of `scratch_len` floats.
pub fn check_parts(
    ctx: &str,
    whole: &[f32],
    scratch_len: usize,
    counts: &[usize],
    mut run: impl FnMut((usize, usize), &mut [f32], &mut [f32]),
) {
    for &parts in counts {
        let mut out = std::vec![f32::NAN; whole.len()];
        for part in 0..=parts {
            let mut scratch = std::vec![f32::NAN; scratch_len];
            run((part, parts), &mut out, &mut scratch);
        }
        let same = out
            .iter()
            .zip(whole)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{ctx}: {parts} parts differ from one call");
    }
}

/// Output size along one axis for total padding `pa + pb`, or `None` if the window never fits.
pub fn out_size(n: usize, k: usize, s: usize, pa: usize, pb: usize) -> Option<usize> {
    (n + pa + pb >= k).then(|| (n + pa + pb - k) / s + 1)
}

fn tap(oy: usize, s: usize, k: usize, pad: usize, n: usize) -> Option<usize> {
    let r = (oy * s + k) as isize - pad as isize;
    (r >= 0 && (r as usize) < n).then_some(r as usize)
}

/// Naive conv2d on unpacked OIHW weights, in f64.
pub fn conv_ref(p: &ConvParams, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
    let (cin_g, cout_g) = (p.c_in / p.groups, p.c_out / p.groups);
    let mut out = Vec::with_capacity(p.output_len());
    for oc in 0..p.c_out {
        let g = oc / cout_g;
        for oy in 0..p.h_out {
            for ox in 0..p.w_out {
                let mut s = b[oc] as f64;
                for icg in 0..cin_g {
                    for ky in 0..p.kh {
                        let Some(iy) = tap(oy, p.sh, ky, p.pad_top, p.h_in) else {
                            continue;
                        };
                        for kx in 0..p.kw {
                            let Some(ix) = tap(ox, p.sw, kx, p.pad_left, p.w_in) else {
                                continue;
                            };
                            let wv = w[((oc * cin_g + icg) * p.kh + ky) * p.kw + kx] as f64;
                            let xv = x[((g * cin_g + icg) * p.h_in + iy) * p.w_in + ix] as f64;
                            s += wv * xv;
                        }
                    }
                }
                out.push(act_ref(p.act, s));
            }
        }
    }
    out
}

/// Naive max (NaN-propagating) or average pooling, in f64.
pub fn pool_ref(p: &PoolParams, x: &[f32], max: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(p.output_len());
    for c in 0..p.c {
        for oy in 0..p.h_out {
            for ox in 0..p.w_out {
                let (mut m, mut s, mut cnt) = (f64::NEG_INFINITY, 0.0, 0usize);
                for ky in 0..p.kh {
                    let Some(iy) = tap(oy, p.sh, ky, p.pad_top, p.h_in) else {
                        continue;
                    };
                    for kx in 0..p.kw {
                        let Some(ix) = tap(ox, p.sw, kx, p.pad_left, p.w_in) else {
                            continue;
                        };
                        let v = x[(c * p.h_in + iy) * p.w_in + ix] as f64;
                        m = if v.is_nan() || m.is_nan() {
                            f64::NAN
                        } else {
                            m.max(v)
                        };
                        s += v;
                        cnt += 1;
                    }
                }
                let r = if max {
                    m
                } else if p.count_include_pad {
                    s / (p.kh * p.kw) as f64
                } else {
                    s / cnt as f64
                };
                out.push(act_ref(p.act, r));
            }
        }
    }
    out
}

/// Naive dense layer on `[out, in]` weights, in f64.
pub fn dense_ref(n_in: usize, n_out: usize, act: Act, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
    (0..n_out)
        .map(|o| {
            let s: f64 = (0..n_in)
                .map(|i| w[o * n_in + i] as f64 * x[i] as f64)
                .sum();
            act_ref(act, s + b[o] as f64)
        })
        .collect()
}

/// Naive softmax in f64.
pub fn softmax_ref(x: &[f32]) -> Vec<f64> {
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}
