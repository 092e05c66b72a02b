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

/// Sets `n` floats at `p` to zero with vector stores (no call into `memset`: the rows of a
/// grid are short, and a call per row costs more than the stores).
///
/// # Safety
/// `p` valid for `n` writes; the CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn zero_row<V: Simd>(n: usize, p: *mut f32) {
    // SAFETY: full vectors while `i + LANES <= n`, then the `n - i < LANES` left.
    unsafe {
        let z = V::zero();
        let mut i = 0;
        while i + V::LANES <= n {
            z.store(p.add(i));
            i += V::LANES;
        }
        if i < n {
            z.store_first(n - i, p.add(i));
        }
    }
}

/// One row of a zero-padded, stride-phase grid: `row[..lo]` and `row[hi..n]` zero,
/// `row[lo + i] = src[i * st]` for `i < hi - lo`. Stride 1 is a vector copy and stride 2 a
/// vector deinterleave (even elements of pairs of loads); other strides gather.
///
/// # Safety
/// `lo <= hi <= n`; `row` valid for `n` writes; `src` valid for reads at `i * st` for
/// `i < hi - lo` (and nothing past the last of them is read); the CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn fill_row<V: Simd>(
    row: *mut f32,
    n: usize,
    lo: usize,
    hi: usize,
    src: *const f32,
    st: usize,
) {
    let l = V::LANES;
    // SAFETY: writes stay in `[0, n)`; reads below `(hi - lo - 1) * st + 1` floats of `src`
    // (each branch checks what its vector reads against `avail`).
    unsafe {
        zero_row::<V>(lo, row);
        let (d, k) = (row.add(lo), hi - lo);
        let mut i = 0;
        if st == 1 {
            while i + l <= k {
                V::load(src.add(i)).store(d.add(i));
                i += l;
            }
            if i < k {
                V::load_first(k - i, src.add(i)).store_first(k - i, d.add(i));
            }
        } else if st == 2 && k > 0 {
            // Floats readable from `src`: up to and including the last element taken.
            let avail = 2 * k - 1;
            while 2 * (i + l) <= avail {
                let s = src.add(2 * i);
                V::deinterleave(V::load(s), V::load(s.add(l)))
                    .0
                    .store(d.add(i));
                i += l;
            }
            if i < k {
                let (s, r) = (src.add(2 * i), avail - 2 * i);
                let a = V::load_first(if r < l { r } else { l }, s);
                let b = V::load_first(r.saturating_sub(l), s.add(l));
                V::deinterleave(a, b).0.store_first(k - i, d.add(i));
            }
        } else {
            gather(k, src, st, d);
        }
        zero_row::<V>(n - hi, row.add(hi));
    }
}

/// One input row into both column phases of a stride-2 grid at once: the zero-padded row
/// (`pad` zeros, then `w_in` input floats, then zeros) has its even elements in `rows[0]` and
/// its odd ones in `rows[1]`, `wq` floats each. One pair of loads and one deinterleave serve
/// both phases, and the loop-invariant counts let the masks be hoisted out of a row loop.
///
/// # Safety
/// `src` valid for `w_in` reads; both rows valid for `wq` writes and not overlapping `src`
/// or each other; the CPU supports `V`'s ISA.
#[inline(always)]
pub(crate) unsafe fn fill_row_s2<V: Simd>(
    rows: [*mut f32; 2],
    wq: usize,
    src: *const f32,
    w_in: usize,
    pad: usize,
) {
    let l = V::LANES;
    // Input column i is padded column i + pad: phase (i + pad) % 2, column (i + pad) / 2. The
    // even input columns start at column `pad / 2` of phase `pad % 2`, the odd ones at
    // `(pad + 1) / 2` of the other phase.
    let (pe, ce) = (pad % 2, pad / 2);
    let (po, co) = ((pad + 1) % 2, pad.div_ceil(2));
    let ne = min(w_in.div_ceil(2), wq.saturating_sub(ce));
    let no = min(w_in / 2, wq.saturating_sub(co));
    // SAFETY: row writes below `wq` (`ce + ne <= wq`, `co + no <= wq`); reads below `w_in`.
    unsafe {
        zero_row::<V>(wq, rows[0]);
        zero_row::<V>(wq, rows[1]);
        let (de, dd) = (rows[pe].add(ce), rows[po].add(co));
        let mut k = 0;
        while k < ne {
            let r = w_in - 2 * k;
            let (a, b) = if r >= 2 * l {
                (V::load(src.add(2 * k)), V::load(src.add(2 * k + l)))
            } else {
                (
                    V::load_first(min(r, l), src.add(2 * k)),
                    V::load_first(r.saturating_sub(l), src.add(2 * k + l)),
                )
            };
            let (e, o) = V::deinterleave(a, b);
            e.store_first(min(l, ne - k), de.add(k));
            if no > k {
                o.store_first(min(l, no - k), dd.add(k));
            }
            k += l;
        }
    }
}

/// Asks the cache hierarchy for the line at `p` ahead of use (a hint: never faults, no effect
/// on results; a no-op off x86-64). The direct kernel uses it to stream weights that do not
/// stay in cache.
#[inline(always)]
pub(crate) fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is SSE (x86-64 baseline) and never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The smaller of `a` and `b`, usable in `const fn`s (the grid geometry of `direct.rs`).
#[inline(always)]
pub(crate) const fn min(a: usize, b: usize) -> usize {
    if a < b {
        a
    } else {
        b
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

/// Lanes of the vector at flat pixel `qv` (row `oy`, column `ox` of a flattened grid whose rows
/// are `wq` wide, `nq` pixels in all) that are stored (bit `i`: pixel `qv + i` is `< nq` and in
/// a column `< w_out`), and the output index (`oy * w_out + ox`) of the first of them.
/// Stored pixels in grid order have consecutive output indices, so a vector is one compressed
/// store. `(0, 0)` when no lane is stored.
#[inline(always)]
pub(crate) fn flat_lane_mask(
    lanes: usize,
    (nq, wq, w_out): (usize, usize, usize),
    qv: usize,
    oy: usize,
    ox: usize,
) -> (u32, usize) {
    // One step per grid row the vector touches (at most `lanes / wq + 2`), not per lane.
    let lim = min(lanes, nq.saturating_sub(qv));
    let (mut y, mut x, mut i) = (oy, ox, 0);
    let (mut mask, mut first) = (0u32, usize::MAX);
    while i < lim {
        let row_end = min(lim, i + (wq - x));
        if x < w_out {
            let valid_end = min(row_end, i + (w_out - x));
            mask |= (((1u64 << valid_end) - 1) & !((1u64 << i) - 1)) as u32;
            if first == usize::MAX {
                first = y * w_out + x;
            }
        }
        i = row_end;
        x = 0;
        y += 1;
    }
    if mask == 0 {
        (0, 0)
    } else {
        (mask, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    dispatch! {
        /// [`fill_row`] on `isa` (test entry point).
        unsafe fn fill_row_on(row: *mut f32, n: usize, lo: usize, hi: usize, src: *const f32, st: usize) => fill_row
    }

    #[test]
    fn fill_row_zeroes_copies_and_gathers_on_every_isa() {
        // Every split of rows up to 40 floats (past two AVX-512 vectors plus a tail) into
        // zeros, data and zeros, at strides 1 (copy), 2 (deinterleave) and 3 (gather); the
        // source holds exactly the floats read, and a NaN sentinel after the row must survive.
        for isa in crate::Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for st in 1..=3usize {
                for n in 0..=40usize {
                    for lo in 0..=n.min(3) {
                        for hi in lo..=n {
                            let k = hi - lo;
                            let src: vec::Vec<f32> = (0..(k.max(1) - 1) * st + usize::from(k > 0))
                                .map(|i| i as f32 + 1.0)
                                .collect();
                            let mut row = vec![f32::NAN; n + 1];
                            // SAFETY: `row` holds n + 1 floats, `src` the (k - 1) * st + 1 read.
                            unsafe {
                                fill_row_on(isa, row.as_mut_ptr(), n, lo, hi, src.as_ptr(), st)
                            };
                            for (j, &v) in row[..n].iter().enumerate() {
                                let want = if j < lo || j >= hi {
                                    0.0
                                } else {
                                    src[(j - lo) * st]
                                };
                                assert_eq!(v, want, "{isa:?} st {st} n {n} lo {lo} hi {hi} at {j}");
                            }
                            assert!(row[n].is_nan(), "{isa:?} wrote past the row");
                        }
                    }
                }
            }
        }
    }

    dispatch! {
        /// [`fill_row_s2`] on `isa` (test entry point).
        unsafe fn fill_row_s2_on(rows: [*mut f32; 2], wq: usize, src: *const f32, w_in: usize, pad: usize) => fill_row_s2
    }

    #[test]
    fn fill_row_s2_splits_the_padded_row_into_both_phases_on_every_isa() {
        // Against the definition: phase px, column j holds padded column 2 j + px, i.e. input
        // column 2 j + px - pad or zero; rows up to 40 input floats, grid rows shorter and
        // longer than the input needs, 0 to 3 padding columns; NaN sentinels after each row.
        for isa in crate::Isa::ALL.into_iter().filter(|i| i.is_available()) {
            for w_in in 0..=40usize {
                for pad in 0..=3usize {
                    for wq in [1, (w_in + pad).div_ceil(2), (w_in + pad) / 2 + 2, 21] {
                        let wq = wq.max(1);
                        let src: vec::Vec<f32> = (0..w_in).map(|i| i as f32 + 1.0).collect();
                        let mut r0 = vec![f32::NAN; wq + 1];
                        let mut r1 = vec![f32::NAN; wq + 1];
                        // SAFETY: rows of wq + 1 floats, `src` of w_in.
                        unsafe {
                            fill_row_s2_on(
                                isa,
                                [r0.as_mut_ptr(), r1.as_mut_ptr()],
                                wq,
                                src.as_ptr(),
                                w_in,
                                pad,
                            )
                        };
                        for (px, row) in [&r0, &r1].into_iter().enumerate() {
                            for (j, &v) in row[..wq].iter().enumerate() {
                                let x = (2 * j + px) as isize - pad as isize;
                                let want = if x >= 0 && (x as usize) < w_in {
                                    src[x as usize]
                                } else {
                                    0.0
                                };
                                assert_eq!(
                                    v, want,
                                    "{isa:?} w_in {w_in} pad {pad} wq {wq} px {px} j {j}"
                                );
                            }
                            assert!(row[wq].is_nan(), "{isa:?} wrote past the row");
                        }
                    }
                }
            }
        }
    }

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
