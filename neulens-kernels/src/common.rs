//! Row-level building blocks shared by the loop nests (fill, strided gather,
//! fused activation, valid-column ranges); generic over `Simd`, vector body + scalar tail.

use crate::simd::Simd;
use crate::Act;

/// Chunk size (in f32) of the stack buffer used to gather strided input columns.
pub(crate) const GATHER: usize = 64;

/// Scalar activation.
#[inline(always)]
pub(crate) fn act_s(act: Act, x: f32) -> f32 {
    // Comparisons written like the SIMD `max`/`min` (NaN in `x` becomes 0, as with `maxps`).
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

/// Vector activation.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn act_v<V: Simd>(act: Act, x: V) -> V {
    // SAFETY: the caller guarantees `V`'s ISA is available.
    unsafe {
        match act {
            Act::None => x,
            Act::Relu => V::max(x, V::zero()),
            Act::Relu6 => V::min(V::max(x, V::zero()), V::splat(6.0)),
        }
    }
}

/// Applies `act` in place to `n` values at `p`.
///
/// # Safety
/// `p` valid for `n` reads and writes; the CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn act_inplace<V: Simd>(act: Act, n: usize, p: *mut f32) {
    if act == Act::None {
        return;
    }
    let mut i = 0;
    // SAFETY: `i + LANES <= n` in the vector loop and `i < n` in the tail keep every access
    // inside the caller's `n` elements.
    unsafe {
        while i + V::LANES <= n {
            act_v::<V>(act, V::load(p.add(i))).store(p.add(i));
            i += V::LANES;
        }
        while i < n {
            *p.add(i) = act_s(act, *p.add(i));
            i += 1;
        }
    }
}

/// Sets `n` values at `p` to `x`.
///
/// # Safety
/// `p` valid for `n` writes; the CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn fill<V: Simd>(n: usize, p: *mut f32, x: f32) {
    let mut i = 0;
    // SAFETY: accesses stay below `n` (vector loop: `i + LANES <= n`, tail: `i < n`).
    unsafe {
        let v = V::splat(x);
        while i + V::LANES <= n {
            v.store(p.add(i));
            i += V::LANES;
        }
        while i < n {
            *p.add(i) = x;
            i += 1;
        }
    }
}

/// Copies `n` values `src[i * stride]` into `dst[i]`.
///
/// # Safety
/// `src` valid for reads at `i * stride` for `i < n`; `dst` valid for `n` writes.
#[inline(always)]
pub(crate) unsafe fn gather(n: usize, src: *const f32, stride: usize, dst: *mut f32) {
    for i in 0..n {
        // SAFETY: `i < n`, within the ranges the caller guarantees.
        unsafe { *dst.add(i) = *src.add(i * stride) };
    }
}

/// Output columns `[x0, x1)` for which the input column `ox * s + k - pad` lies in `[0, w_in)`.
/// Returns `x0 >= x1` when no column is valid.
#[inline(always)]
pub(crate) fn valid_range(
    w_out: usize,
    w_in: usize,
    s: usize,
    k: usize,
    pad: usize,
) -> (usize, usize) {
    let x0 = if k >= pad { 0 } else { (pad - k).div_ceil(s) };
    let x1 = if w_in + pad <= k {
        0
    } else {
        let last = (w_in - 1 + pad - k) / s + 1;
        if last < w_out {
            last
        } else {
            w_out
        }
    };
    (x0, x1)
}

/// The input row `oy * s + k - pad`, if it lies in `[0, h_in)`.
#[inline(always)]
pub(crate) fn input_row(oy: usize, s: usize, k: usize, pad: usize, h_in: usize) -> Option<usize> {
    let r = oy * s + k;
    if r < pad || r - pad >= h_in {
        None
    } else {
        Some(r - pad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_matches_brute_force() {
        for w_in in 1..9usize {
            for s in 1..5usize {
                for k in 0..7usize {
                    for pad in 0..5usize {
                        for w_out in 1..12usize {
                            let ok = |ox: usize| {
                                let c = (ox * s + k) as isize - pad as isize;
                                c >= 0 && (c as usize) < w_in
                            };
                            let (x0, x1) = valid_range(w_out, w_in, s, k, pad);
                            for ox in 0..w_out {
                                assert_eq!(
                                    ok(ox),
                                    ox >= x0 && ox < x1,
                                    "{w_in} {s} {k} {pad} {ox}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
