//! Pooling: max and average pooling over kh x kw windows (PyTorch semantics, zero/ignored
//! padding, fused activation) and global average pooling; loop nests generic over `Simd`.

use crate::common::{act_inplace, act_s, fill, fill_row, gather, input_row, valid_range, GATHER};
use crate::simd::Simd;
use crate::{check_isa, check_len, Act, Isa, KernelError};

/// Shape and hyper-parameters of a max/avg pooling layer (CHW, batch 1).
///
/// Output `(oy, ox)` covers input rows `oy * sh - pad_top + [0, kh)` and columns
/// `ox * sw - pad_left + [0, kw)`; positions outside the input are padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolParams {
    /// Channels (same in and out).
    pub c: usize,
    /// Input height.
    pub h_in: usize,
    /// Input width.
    pub w_in: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Padding rows above the input.
    pub pad_top: usize,
    /// Padding columns left of the input.
    pub pad_left: usize,
    /// Average pooling: divide by `kh * kw` (true) or by the number of in-bounds taps (false).
    pub count_include_pad: bool,
    /// Activation applied to the result.
    pub act: Act,
}

impl PoolParams {
    /// `c * h_in * w_in`.
    pub const fn input_len(&self) -> usize {
        self.c * self.h_in * self.w_in
    }
    /// `c * h_out * w_out`.
    pub const fn output_len(&self) -> usize {
        self.c * self.h_out * self.w_out
    }

    /// Checks nonzero sizes, `pad < kernel`, no length overflow, and that every window starts
    /// inside the (top/left padded) input, so every window holds at least one input value.
    pub fn validate(&self) -> Result<(), KernelError> {
        let sizes = [
            self.c, self.h_in, self.w_in, self.h_out, self.w_out, self.kh, self.kw, self.sh,
            self.sw,
        ];
        if sizes.contains(&0) {
            return Err(KernelError::BadParams(
                "pool: all sizes and strides must be nonzero",
            ));
        }
        if self.pad_top >= self.kh || self.pad_left >= self.kw {
            return Err(KernelError::BadParams(
                "pool: padding must be smaller than the window",
            ));
        }
        for l in [
            [self.c, self.h_in, self.w_in],
            [self.c, self.h_out, self.w_out],
        ] {
            if l.iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .is_none()
            {
                return Err(KernelError::BadParams(
                    "pool: tensor length overflows usize",
                ));
            }
        }
        if (self.h_out - 1)
            .checked_mul(self.sh)
            .is_none_or(|r| r >= self.h_in + self.pad_top)
        {
            return Err(KernelError::BadParams(
                "pool: h_out too large for h_in, sh and pad_top",
            ));
        }
        if (self.w_out - 1)
            .checked_mul(self.sw)
            .is_none_or(|c| c >= self.w_in + self.pad_left)
        {
            return Err(KernelError::BadParams(
                "pool: w_out too large for w_in, sw and pad_left",
            ));
        }
        Ok(())
    }
}

dispatch! {
    /// Max pooling; padded positions are ignored (as -inf). NaN inputs never cause UB (whether
    /// they propagate depends on the ISA's `max`).
    ///
    /// # Safety
    /// `p` is valid ([`PoolParams::validate`]), `input` valid for `p.input_len()` reads, `output`
    /// for `p.output_len()` writes, no overlap; `isa` available (another arch's ISA runs scalar).
    pub unsafe fn maxpool2d(p: &PoolParams, input: *const f32, output: *mut f32) => maxpool_impl
}

dispatch! {
    /// Average pooling (see [`PoolParams::count_include_pad`]).
    ///
    /// # Safety
    /// Same contract as [`maxpool2d`].
    pub unsafe fn avgpool2d(p: &PoolParams, input: *const f32, output: *mut f32) => avgpool_impl
}

dispatch! {
    /// Global average pooling: `output[ch] = act(mean(input[ch][0..hw]))`.
    ///
    /// # Safety
    /// `c, hw > 0`; `input` valid for `c * hw` reads, `output` for `c` writes, no overlap; `isa`
    /// available (another arch's ISA runs scalar).
    pub unsafe fn global_avg_pool(c: usize, hw: usize, input: *const f32, output: *mut f32, act: Act) => gap_impl
}

fn check_pool(isa: Isa, p: &PoolParams, input: &[f32], output: &[f32]) -> Result<(), KernelError> {
    p.validate()?;
    check_len("input", p.input_len(), input.len())?;
    check_len("output", p.output_len(), output.len())?;
    check_isa(isa)
}

/// Safe [`maxpool2d`].
pub fn maxpool2d_checked(
    isa: Isa,
    p: &PoolParams,
    input: &[f32],
    output: &mut [f32],
) -> Result<(), KernelError> {
    check_pool(isa, p, input, output)?;
    // SAFETY: parameters, lengths and ISA checked; `&mut` output cannot alias `input`.
    unsafe { maxpool2d(isa, p, input.as_ptr(), output.as_mut_ptr()) };
    Ok(())
}

/// Safe [`avgpool2d`].
pub fn avgpool2d_checked(
    isa: Isa,
    p: &PoolParams,
    input: &[f32],
    output: &mut [f32],
) -> Result<(), KernelError> {
    check_pool(isa, p, input, output)?;
    // SAFETY: parameters, lengths and ISA checked; `&mut` output cannot alias `input`.
    unsafe { avgpool2d(isa, p, input.as_ptr(), output.as_mut_ptr()) };
    Ok(())
}

/// Safe [`global_avg_pool`]: `output.len()` channels, `input.len() / output.len()` pixels each.
pub fn global_avg_pool_checked(
    isa: Isa,
    hw: usize,
    input: &[f32],
    output: &mut [f32],
    act: Act,
) -> Result<(), KernelError> {
    let c = output.len();
    if c == 0 || hw == 0 {
        return Err(KernelError::BadParams(
            "global_avg_pool: c and hw must be nonzero",
        ));
    }
    let n = c.checked_mul(hw).ok_or(KernelError::BadParams(
        "global_avg_pool: length overflows usize",
    ))?;
    check_len("input", n, input.len())?;
    check_isa(isa)?;
    // SAFETY: lengths and ISA checked; `&mut` output cannot alias `input`.
    unsafe { global_avg_pool(isa, c, hw, input.as_ptr(), output.as_mut_ptr(), act) };
    Ok(())
}

/// `y[i] = max(y[i], x[i])` (MAX) or `y[i] += x[i]` for `i < n`.
///
/// # Safety
/// `x` valid for `n` reads, `y` for `n` reads/writes, no overlap; `V`'s ISA available.
#[inline(always)]
unsafe fn combine_row<V: Simd, const MAX: bool>(n: usize, x: *const f32, y: *mut f32) {
    let mut i = 0;
    // SAFETY: vector loop keeps `i + LANES <= n`, tail `i < n`.
    unsafe {
        while i + V::LANES <= n {
            let a = V::load(y.add(i));
            let b = V::load(x.add(i));
            let r = if MAX { V::max(a, b) } else { V::add(a, b) };
            r.store(y.add(i));
            i += V::LANES;
        }
        while i < n {
            let (a, b) = (*y.add(i), *x.add(i));
            *y.add(i) = if MAX { <f32 as Simd>::max(a, b) } else { a + b };
            i += 1;
        }
    }
}

/// Floats in the stack row buffer of the strided path ([`pool_rows_strided`]; 1 KiB).
const STRIDED_BUF: usize = 256;

/// Shared window loop: init each output row to `init`, combine every valid tap as a row op.
/// Horizontal strides > 1 take [`pool_rows_strided`] on vector ISAs (unless the window is too
/// wide for its buffer); the scalar twin keeps the per-tap loop, which does fewer operations
/// when there are no lanes to fill.
///
/// # Safety
/// Contract of [`maxpool2d`], with `V` the ISA's vector type.
#[inline(always)]
unsafe fn pool_rows<V: Simd, const MAX: bool>(
    p: &PoolParams,
    input: *const f32,
    output: *mut f32,
    init: f32,
) {
    if V::LANES > 1 && p.sw == 2 && p.kw <= 3 {
        // SAFETY: forwarded contract; stride 2, window width <= 3 as it requires.
        unsafe { pool_rows_s2::<V, MAX>(p, input, output, init) };
        return;
    }
    if V::LANES > 1 && p.sw > 1 && p.kw + p.sw <= STRIDED_BUF {
        // SAFETY: forwarded contract; `kw + sw <= STRIDED_BUF` as it requires.
        unsafe { pool_rows_strided::<V, MAX>(p, input, output, init) };
        return;
    }
    let mut tmp = [0.0f32; GATHER];
    // SAFETY: output rows `ch * h_out * w_out + oy * w_out + [0, w_out)`; input rows from
    // `input_row` (< h_in), columns from `valid_range` (< w_in); gather chunks `<= GATHER`.
    unsafe {
        for ch in 0..p.c {
            let inp = input.add(ch * p.h_in * p.w_in);
            for oy in 0..p.h_out {
                let row = output.add((ch * p.h_out + oy) * p.w_out);
                fill::<V>(p.w_out, row, init);
                for ky in 0..p.kh {
                    let Some(iy) = input_row(oy, p.sh, ky, p.pad_top, p.h_in) else {
                        continue;
                    };
                    let in_row = inp.add(iy * p.w_in);
                    for kx in 0..p.kw {
                        let (x0, x1) = valid_range(p.w_out, p.w_in, p.sw, kx, p.pad_left);
                        if x0 >= x1 {
                            continue;
                        }
                        let src = in_row.add(x0 * p.sw + kx - p.pad_left);
                        if p.sw == 1 {
                            combine_row::<V, MAX>(x1 - x0, src, row.add(x0));
                        } else {
                            let mut done = 0;
                            while done < x1 - x0 {
                                let len = core::cmp::min(GATHER, x1 - x0 - done);
                                gather(len, src.add(done * p.sw), p.sw, tmp.as_mut_ptr());
                                combine_row::<V, MAX>(len, tmp.as_ptr(), row.add(x0 + done));
                                done += len;
                            }
                        }
                    }
                }
                if !MAX {
                    avg_finish(p, oy, row);
                }
                act_inplace::<V>(p.act, p.w_out, row);
            }
        }
    }
}

/// Strided window loop (`sw > 1`). Per output row, the output columns whose window lies wholly
/// inside the input are done in chunks of a stack buffer: the valid input rows are combined
/// vertically over the chunk's column span (contiguous vector ops), then the `kw` horizontal
/// taps in place (vector ops at every column), then every `sw`-th column is picked (one gather
/// per chunk instead of one per tap). The few edge columns whose window meets the left/right
/// padding combine their in-bounds taps one by one. Every combined value is an input value
/// (padding is skipped, never stored), so max ignores padding and sums hold only real taps.
///
/// # Safety
/// Contract of [`maxpool2d`], with `V` the ISA's vector type, and `p.kw + p.sw <= STRIDED_BUF`.
#[inline(always)]
unsafe fn pool_rows_strided<V: Simd, const MAX: bool>(
    p: &PoolParams,
    input: *const f32,
    output: *mut f32,
    init: f32,
) {
    let mut buf = [0.0f32; STRIDED_BUF];
    let b = buf.as_mut_ptr();
    let (xa, xb) = interior_cols(p);
    // Outputs per chunk: their column span `(n - 1) * sw + kw` fits the buffer (`n >= 1`).
    let n_max = (STRIDED_BUF - p.kw) / p.sw + 1;
    let op = |a: f32, x: f32| -> f32 {
        if MAX {
            // SAFETY: the scalar `Simd` impl needs no CPU feature.
            unsafe { <f32 as Simd>::max(a, x) }
        } else {
            a + x
        }
    };
    // SAFETY: input rows `[r0, r1)` are clamped to `[0, h_in)`. Interior chunk: columns
    // `c0 + [0, span)` with `c0 = ox0 * sw - pad_left >= 0` (`ox0 >= xa`) and
    // `c0 + span = (ox0 + n - 1) * sw - pad_left + kw <= w_in` (`ox0 + n - 1 < xb`);
    // `span <= STRIDED_BUF` by `n <= n_max`; the horizontal pass reads `buf[j + kx]`,
    // `j < span - kw + 1`, `kx < kw`, so `< span`; the gather reads `buf[k * sw]`,
    // `k < n`, `<= span - kw`. Edge columns clamp to `[0, w_in)`. Output writes
    // `row + [0, w_out)`.
    unsafe {
        for ch in 0..p.c {
            let inp = input.add(ch * p.h_in * p.w_in);
            for oy in 0..p.h_out {
                let row = output.add((ch * p.h_out + oy) * p.w_out);
                let (r0, r1) = window_rows(p, oy);
                if r0 >= r1 {
                    // No valid row (not possible with validated params): no tap at all.
                    fill::<V>(p.w_out, row, init);
                } else {
                    let mut ox0 = xa;
                    while ox0 < xb {
                        let n = core::cmp::min(n_max, xb - ox0);
                        let c0 = ox0 * p.sw - p.pad_left;
                        let span = (n - 1) * p.sw + p.kw;
                        fill_row::<V>(b, span, 0, span, inp.add(r0 * p.w_in + c0), 1);
                        for r in r0 + 1..r1 {
                            combine_row::<V, MAX>(span, inp.add(r * p.w_in + c0), b);
                        }
                        // In place: iteration `j` stores `buf[j..]` after reading
                        // `buf[j..j + kw + LANES - 1]`; later iterations read only `>= j + LANES`
                        // (vector) or `> j` (tail), never an already combined value.
                        let m = span - p.kw + 1;
                        if p.kw > 1 {
                            let mut j = 0;
                            while j + V::LANES <= m {
                                let mut acc = V::load(b.add(j));
                                for kx in 1..p.kw {
                                    let x = V::load(b.add(j + kx));
                                    acc = if MAX { V::max(acc, x) } else { V::add(acc, x) };
                                }
                                acc.store(b.add(j));
                                j += V::LANES;
                            }
                            while j < m {
                                let mut acc = *b.add(j);
                                for kx in 1..p.kw {
                                    acc = op(acc, *b.add(j + kx));
                                }
                                *b.add(j) = acc;
                                j += 1;
                            }
                        }
                        gather(n, b, p.sw, row.add(ox0));
                        ox0 += n;
                    }
                    for ox in (0..xa).chain(xb..p.w_out) {
                        *row.add(ox) = edge_col::<MAX>(p, inp, (r0, r1), ox, init);
                    }
                }
                if !MAX {
                    avg_finish(p, oy, row);
                }
                act_inplace::<V>(p.act, p.w_out, row);
            }
        }
    }
}

/// Input rows `[r0, r1)` (clamped to the input) of output row `oy`'s windows.
#[inline(always)]
fn window_rows(p: &PoolParams, oy: usize) -> (usize, usize) {
    let start = oy * p.sh;
    let r0 = core::cmp::min(start.saturating_sub(p.pad_top), p.h_in);
    let r1 = core::cmp::min((start + p.kh).saturating_sub(p.pad_top), p.h_in);
    (r0, r1)
}

/// Interior output columns `[xa, xb)`: `ox * sw - pad_left >= 0` and
/// `ox * sw - pad_left + kw <= w_in`. Empty interior: `xa == xb`, all columns are edges.
#[inline(always)]
fn interior_cols(p: &PoolParams) -> (usize, usize) {
    let xa = core::cmp::min(p.pad_left.div_ceil(p.sw), p.w_out);
    let xb = if p.w_in + p.pad_left >= p.kw {
        core::cmp::min(p.w_out, (p.w_in + p.pad_left - p.kw) / p.sw + 1)
    } else {
        0
    };
    (xa, core::cmp::max(xa, xb))
}

/// The window of output column `ox` over input rows `[r0, r1)` of plane `inp`, its in-bounds
/// taps combined one by one from `init` (the edge columns of the strided paths).
///
/// # Safety
/// `inp` valid for `h_in * w_in` reads; `r1 <= h_in`.
#[inline(always)]
unsafe fn edge_col<const MAX: bool>(
    p: &PoolParams,
    inp: *const f32,
    (r0, r1): (usize, usize),
    ox: usize,
    init: f32,
) -> f32 {
    let cs = ox * p.sw;
    let c0 = core::cmp::min(cs.saturating_sub(p.pad_left), p.w_in);
    let c1 = core::cmp::min((cs + p.kw).saturating_sub(p.pad_left), p.w_in);
    let mut acc = init;
    // SAFETY: rows `< r1 <= h_in`, columns clamped to `[0, w_in)`.
    unsafe {
        for r in r0..r1 {
            let in_row = inp.add(r * p.w_in);
            for c in c0..c1 {
                let x = *in_row.add(c);
                acc = if MAX {
                    <f32 as Simd>::max(acc, x)
                } else {
                    acc + x
                };
            }
        }
    }
    acc
}

/// Stride-2 window loop for windows 1–3 wide (ResNet's 3×3/2 max pool): per output row and per
/// vector of `LANES` interior output columns, the `2 LANES (+ 2)` input columns the windows span
/// are combined over the valid rows with two (four) vector loads per row, then split into even
/// and odd columns ([`Simd::deinterleave`]): column `2 j + kx` of the span is the even lane `j`
/// (kx 0), the odd lane `j` (kx 1) or the even lane `j` of the span shifted by 2 (kx 2). No
/// buffer, no gather; a masked tail per row. Edge columns as [`edge_col`].
///
/// # Safety
/// Contract of [`maxpool2d`], with `V` the ISA's vector type, `p.sw == 2`, `p.kw <= 3`.
#[inline(always)]
unsafe fn pool_rows_s2<V: Simd, const MAX: bool>(
    p: &PoolParams,
    input: *const f32,
    output: *mut f32,
    init: f32,
) {
    let l = V::LANES;
    let (xa, xb) = interior_cols(p);
    let op = |a: V, b: V| -> V {
        // SAFETY: `V`'s ISA is available (caller contract).
        unsafe {
            if MAX {
                V::max(a, b)
            } else {
                V::add(a, b)
            }
        }
    };
    // Floats `[off, off + l)` of the `avail` floats at `x`, zero past `avail`.
    let ld = |x: *const f32, off: usize, avail: usize| -> V {
        let k = avail.saturating_sub(off);
        // SAFETY: reads `x + [off, off + min(k, l))`, inside the row (`off + k = avail`).
        unsafe {
            if k >= l {
                V::load(x.add(off))
            } else {
                V::load_first(k, x.add(off))
            }
        }
    };
    // SAFETY: input rows `[r0, r1)` are clamped to `[0, h_in)`. Interior chunk of `m <= l`
    // outputs from `ox >= xa`: `c0 = 2 ox - pad_left >= 0`, and its windows end at
    // `2 (ox + m - 1) - pad_left + kw <= w_in` (`ox + m - 1 < xb`); `ld` reads columns
    // `[c0, w_in)` of the row only, the plain loads of the 3-wide fast path columns
    // `[c0, c0 + 2 l + 2)` with `c0 + 2 l + 2 <= w_in`. Output writes `row + [0, w_out)`.
    unsafe {
        for ch in 0..p.c {
            let inp = input.add(ch * p.h_in * p.w_in);
            for oy in 0..p.h_out {
                let row = output.add((ch * p.h_out + oy) * p.w_out);
                let (r0, r1) = window_rows(p, oy);
                if r0 >= r1 {
                    // No valid row (not possible with validated params): no tap at all.
                    fill::<V>(p.w_out, row, init);
                } else {
                    let mut ox = xa;
                    while ox < xb {
                        let m = core::cmp::min(l, xb - ox);
                        let c0 = 2 * ox - p.pad_left;
                        if p.kw == 3 && m == l && c0 + 2 * l + 2 <= p.w_in {
                            // A whole vector of 3-wide windows whose loads all stay inside
                            // the row (the common case): plain loads, no tail logic.
                            let x = inp.add(r0 * p.w_in + c0);
                            let (mut a0, mut a1) = (V::load(x), V::load(x.add(l)));
                            let (mut b0, mut b1) = (V::load(x.add(2)), V::load(x.add(2 + l)));
                            for r in r0 + 1..r1 {
                                let x = inp.add(r * p.w_in + c0);
                                a0 = op(a0, V::load(x));
                                a1 = op(a1, V::load(x.add(l)));
                                b0 = op(b0, V::load(x.add(2)));
                                b1 = op(b1, V::load(x.add(2 + l)));
                            }
                            let (even, odd) = V::deinterleave(a0, a1);
                            op(op(even, odd), V::deinterleave(b0, b1).0).store(row.add(ox));
                            ox += l;
                            continue;
                        }
                        // The windows span `2 (m - 1) + kw` floats; the loads may read up to
                        // the row end past them: extra floats land in odd lanes of the
                        // shifted span or in lanes `>= m`, which are never stored.
                        let need = p.w_in - c0;
                        let x = inp.add(r0 * p.w_in + c0);
                        let (mut a0, mut a1) = (ld(x, 0, need), ld(x, l, need));
                        let (mut b0, mut b1) = (V::zero(), V::zero());
                        if p.kw == 3 {
                            b0 = ld(x, 2, need);
                            b1 = ld(x, 2 + l, need);
                        }
                        for r in r0 + 1..r1 {
                            let x = inp.add(r * p.w_in + c0);
                            a0 = op(a0, ld(x, 0, need));
                            a1 = op(a1, ld(x, l, need));
                            if p.kw == 3 {
                                b0 = op(b0, ld(x, 2, need));
                                b1 = op(b1, ld(x, 2 + l, need));
                            }
                        }
                        let (even, odd) = V::deinterleave(a0, a1);
                        let mut y = even;
                        if p.kw >= 2 {
                            y = op(y, odd);
                        }
                        if p.kw == 3 {
                            y = op(y, V::deinterleave(b0, b1).0);
                        }
                        if m == l {
                            y.store(row.add(ox));
                        } else {
                            y.store_first(m, row.add(ox));
                        }
                        ox += m;
                    }
                    for ox in (0..xa).chain(xb..p.w_out) {
                        *row.add(ox) = edge_col::<MAX>(p, inp, (r0, r1), ox, init);
                    }
                }
                if !MAX {
                    avg_finish(p, oy, row);
                }
                act_inplace::<V>(p.act, p.w_out, row);
            }
        }
    }
}

/// Divides a row of window sums by the window size (or in-bounds tap count).
///
/// # Safety
/// `row` valid for `p.w_out` reads and writes.
#[inline(always)]
unsafe fn avg_finish(p: &PoolParams, oy: usize, row: *mut f32) {
    if p.count_include_pad {
        let inv = 1.0 / (p.kh * p.kw) as f32;
        for ox in 0..p.w_out {
            // SAFETY: `ox < w_out`.
            unsafe { *row.add(ox) *= inv };
        }
        return;
    }
    let span = |o: usize, s: usize, k: usize, pad: usize, n: usize| -> usize {
        let start = (o * s) as isize - pad as isize;
        let lo = start.max(0);
        let hi = (start + k as isize).min(n as isize);
        (hi - lo).max(0) as usize
    };
    let cy = span(oy, p.sh, p.kh, p.pad_top, p.h_in);
    for ox in 0..p.w_out {
        let cnt = cy * span(ox, p.sw, p.kw, p.pad_left, p.w_in);
        // Validated params give cnt >= 1; an invalid window divides by 0 (inf/NaN, never UB).
        // SAFETY: `ox < w_out`.
        unsafe { *row.add(ox) /= cnt as f32 };
    }
}

/// # Safety
/// Contract of [`maxpool2d`].
#[inline(always)]
unsafe fn maxpool_impl<V: Simd>(p: &PoolParams, input: *const f32, output: *mut f32) {
    let global = p.h_out == 1
        && p.w_out == 1
        && p.pad_top == 0
        && p.pad_left == 0
        && p.kh >= p.h_in
        && p.kw >= p.w_in;
    if global {
        // One window over the whole plane (the micro-flow gate's global max-pool): a vector
        // max-reduction per channel instead of the row loops.
        let hw = p.h_in * p.w_in;
        // SAFETY: channel `ch < c` reads `ch * hw + [0, hw)` (the input length); vector loops
        // `i + 4 * LANES <= hw` and `i + LANES <= hw`, tail `i < hw`; writes `output[ch]`,
        // `ch < c = output_len()`.
        unsafe {
            for ch in 0..p.c {
                let x = input.add(ch * hw);
                // Four accumulators: one max chain would wait out `max`'s latency per vector.
                let mut m = [V::splat(f32::NEG_INFINITY); 4];
                let mut i = 0;
                while i + 4 * V::LANES <= hw {
                    for (k, a) in m.iter_mut().enumerate() {
                        *a = V::max(*a, V::load(x.add(i + k * V::LANES)));
                    }
                    i += 4 * V::LANES;
                }
                while i + V::LANES <= hw {
                    m[0] = V::max(m[0], V::load(x.add(i)));
                    i += V::LANES;
                }
                let mut s = V::max(V::max(m[0], m[1]), V::max(m[2], m[3])).reduce_max();
                while i < hw {
                    let v = *x.add(i);
                    s = if v > s || v.is_nan() { v } else { s };
                    i += 1;
                }
                *output.add(ch) = act_s(p.act, s);
            }
        }
        return;
    }
    // SAFETY: forwarded contract.
    unsafe { pool_rows::<V, true>(p, input, output, f32::NEG_INFINITY) }
}

/// # Safety
/// Contract of [`avgpool2d`].
#[inline(always)]
unsafe fn avgpool_impl<V: Simd>(p: &PoolParams, input: *const f32, output: *mut f32) {
    if p.h_out == 1
        && p.w_out == 1
        && p.pad_top == 0
        && p.pad_left == 0
        && p.kh == p.h_in
        && p.kw == p.w_in
    {
        // One window exactly covering the plane (e.g. ResNet-8's final 8×8 average pool): the
        // global average pool's vector sum; no padding, so both divisors are kh·kw.
        // SAFETY: forwarded contract; `c * h_in * w_in` values read, `c` written.
        unsafe { gap_impl::<V>(p.c, p.h_in * p.w_in, input, output, p.act) };
        return;
    }
    // SAFETY: forwarded contract.
    unsafe { pool_rows::<V, false>(p, input, output, 0.0) }
}

/// # Safety
/// Contract of [`global_avg_pool`].
#[inline(always)]
unsafe fn gap_impl<V: Simd>(c: usize, hw: usize, input: *const f32, output: *mut f32, act: Act) {
    let inv = 1.0 / hw as f32;
    // SAFETY: channel `ch < c` reads `ch * hw + [0, hw)`; vector loop `i + 2*LANES <= hw` /
    // `i + LANES <= hw`, tail `i < hw`; writes `output[ch]`.
    unsafe {
        for ch in 0..c {
            let x = input.add(ch * hw);
            let (mut a0, mut a1) = (V::zero(), V::zero());
            let mut i = 0;
            while i + 2 * V::LANES <= hw {
                a0 = V::add(a0, V::load(x.add(i)));
                a1 = V::add(a1, V::load(x.add(i + V::LANES)));
                i += 2 * V::LANES;
            }
            if i + V::LANES <= hw {
                a0 = V::add(a0, V::load(x.add(i)));
                i += V::LANES;
            }
            let mut s = V::add(a0, a1).reduce_add();
            while i < hw {
                s += *x.add(i);
                i += 1;
            }
            *output.add(ch) = act_s(act, s * inv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use std::vec;

    #[allow(clippy::too_many_arguments)]
    fn params(
        c: usize,
        (h_in, w_in): (usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (pt, pb, pl, pr): (usize, usize, usize, usize),
        count_include_pad: bool,
        act: Act,
    ) -> Option<PoolParams> {
        Some(PoolParams {
            c,
            h_in,
            w_in,
            h_out: out_size(h_in, kh, sh, pt, pb)?,
            w_out: out_size(w_in, kw, sw, pl, pr)?,
            kh,
            kw,
            sh,
            sw,
            pad_top: pt,
            pad_left: pl,
            count_include_pad,
            act,
        })
    }

    /// Max and avg pooling of one case on every ISA vs scalar twin and f64 reference.
    fn run_case(p: &PoolParams, seed: u64, poison: &[(usize, f32)]) -> usize {
        p.validate().unwrap_or_else(|e| panic!("{p:?}: {e:?}"));
        let mut x = Rng::new(seed).vec(p.input_len());
        for &(i, v) in poison {
            x[i] = v;
        }
        let only_finite = !poison.is_empty();
        let ctx = std::format!("{p:?}");
        let n = check_isas(
            &std::format!("max {ctx}"),
            &pool_ref(p, &x, true),
            only_finite,
            |isa| {
                let mut out = vec![f32::NAN; p.output_len()];
                maxpool2d_checked(isa, p, &x, &mut out).unwrap();
                out
            },
        );
        check_isas(
            &std::format!("avg {ctx}"),
            &pool_ref(p, &x, false),
            only_finite,
            |isa| {
                let mut out = vec![f32::NAN; p.output_len()];
                avgpool2d_checked(isa, p, &x, &mut out).unwrap();
                out
            },
        );
        n
    }

    #[test]
    fn widths_and_channels() {
        for (i, &w) in EDGE.iter().enumerate() {
            for (j, &c) in CHANNELS.iter().enumerate() {
                let act = ACTS[(i + j) % 3];
                run_case(
                    &params(c, (5, w), (3, 3), (1, 1), (1, 1, 1, 1), j % 2 == 0, act).unwrap(),
                    1,
                    &[],
                );
                if let Some(p) = params(c, (4, w), (2, 2), (2, 2), (0, 0, 0, 0), false, act) {
                    run_case(&p, 2, &[]);
                }
            }
        }
    }

    #[test]
    fn windows_strides_and_padding() {
        let cases = [
            ((2, 2), (2, 2), (0, 0, 0, 0)),
            ((3, 3), (2, 2), (1, 1, 1, 1)),
            ((3, 3), (1, 1), (1, 1, 1, 1)),
            ((2, 3), (1, 2), (1, 0, 0, 2)),
            ((5, 5), (3, 3), (2, 2, 2, 2)),
            ((7, 7), (4, 4), (3, 3, 3, 3)),
            ((1, 1), (1, 1), (0, 0, 0, 0)),
            ((3, 1), (4, 1), (2, 0, 0, 0)),
            ((1, 5), (1, 3), (0, 0, 4, 1)),
            ((3, 3), (2, 3), (2, 1, 0, 2)),
        ];
        for (i, &(k, s, pad)) in cases.iter().enumerate() {
            for cip in [false, true] {
                for (j, &hw) in [(9, 11), (7, 17), (12, 35)].iter().enumerate() {
                    let p = params(3, hw, k, s, pad, cip, ACTS[(i + j) % 3]).unwrap();
                    run_case(&p, (i * 10 + j) as u64, &[]);
                }
            }
        }
        // Long strided rows: more than one gather chunk.
        run_case(
            &params(2, (3, 301), (3, 3), (2, 2), (1, 1, 1, 1), false, Act::None).unwrap(),
            3,
            &[],
        );
        // Strides 2-4 with padding on the strided path: interior chunks (several of the
        // 256-float buffer on long rows), left/right edge columns, windows wider than the input
        // (no interior column), both divisors, every act.
        let strided = [
            ((3, 3), (2, 2), (1, 1, 1, 1)),
            ((3, 3), (3, 3), (1, 2, 2, 1)),
            ((4, 4), (4, 4), (3, 3, 3, 3)),
            ((5, 3), (2, 3), (2, 2, 1, 2)),
            ((2, 5), (3, 4), (0, 1, 4, 0)),
            ((3, 7), (2, 2), (2, 0, 6, 6)),
            ((1, 4), (1, 2), (0, 0, 3, 0)),
        ];
        for (i, &(k, s, pad)) in strided.iter().enumerate() {
            for cip in [false, true] {
                for (j, &hw) in [(5, 1), (6, 2), (8, 5), (9, 23), (7, 64), (4, 700)]
                    .iter()
                    .enumerate()
                {
                    let p = params(2, hw, k, s, pad, cip, ACTS[(i + j) % 3]).unwrap();
                    run_case(&p, (100 + i * 10 + j) as u64, &[]);
                }
            }
        }
        // The stride-2 vector path (windows 1-3 wide): row widths around one and two vectors
        // of every ISA (full chunks, masked tails, the span's last column at the row end),
        // odd and even widths, with and without left/right padding.
        let s2 = [
            ((3, 3), (1, 1, 1, 1)),
            ((3, 3), (0, 0, 0, 0)),
            ((3, 2), (1, 0, 1, 0)),
            ((2, 2), (0, 1, 0, 1)),
            ((1, 1), (0, 0, 0, 0)),
            ((2, 3), (1, 1, 2, 2)),
        ];
        for (i, &(k, pad)) in s2.iter().enumerate() {
            for (j, w) in [3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 34, 35, 63, 65, 112]
                .into_iter()
                .enumerate()
            {
                let p = params(2, (6, w), k, (2, 2), pad, j % 2 == 0, ACTS[(i + j) % 3]).unwrap();
                run_case(&p, (300 + i * 20 + j) as u64, &[]);
            }
        }
        // A window too wide for the strided buffer takes the per-tap loop.
        run_case(
            &params(1, (2, 600), (2, 255), (1, 2), (1, 0, 7, 3), true, Act::Relu).unwrap(),
            4,
            &[],
        );
    }

    #[test]
    fn count_include_pad_divisor() {
        // 1x1 input of value 3, 3x3 window padded by 1 on every side: sum 3 over 9 or 1 taps.
        for isa in isas() {
            for (cip, want) in [(true, 3.0 / 9.0), (false, 3.0)] {
                let p = params(1, (1, 1), (3, 3), (1, 1), (1, 1, 1, 1), cip, Act::None).unwrap();
                let mut out = [0.0f32];
                avgpool2d_checked(isa, &p, &[3.0], &mut out).unwrap();
                assert!(
                    (out[0] - want).abs() < 1e-6,
                    "{} {cip}: {}",
                    isa.name(),
                    out[0]
                );
                maxpool2d_checked(isa, &p, &[-3.0], &mut out).unwrap();
                assert_eq!(out[0], -3.0, "padding must not act as 0 in max pooling");
            }
        }
    }

    #[test]
    fn nan_and_inf_inputs_stay_local() {
        let p = params(2, (6, 19), (3, 3), (2, 2), (1, 1, 1, 1), false, Act::None).unwrap();
        let poison = [(7, f32::NAN), (60, f32::INFINITY), (150, f32::NEG_INFINITY)];
        // Windows without a poisoned value must still match exactly; the rest must not crash.
        assert!(run_case(&p, 9, &poison) >= 1);
        let all_nan = vec![f32::NAN; p.input_len()];
        let mut out = vec![0.0; p.output_len()];
        for isa in isas() {
            maxpool2d_checked(isa, &p, &all_nan, &mut out).unwrap();
            avgpool2d_checked(isa, &p, &all_nan, &mut out).unwrap();
            assert!(out.iter().all(|v| v.is_nan()));
        }
    }

    #[test]
    fn whole_plane_max_windows() {
        // The global max/avg-pool fast paths (one window covering the plane), edge sizes, acts.
        for (i, &h) in EDGE.iter().enumerate() {
            let w = EDGE[(i * 3 + 1) % EDGE.len()];
            let act = [Act::None, Act::Relu, Act::Relu6][i % 3];
            let p = params(3, (h, w), (h, w), (h, w), (0, 0, 0, 0), false, act).unwrap();
            run_case(&p, 90 + i as u64, &[]);
        }
        let p = params(2, (5, 7), (5, 7), (5, 7), (0, 0, 0, 0), false, Act::None).unwrap();
        run_case(&p, 3, &[(4, f32::INFINITY), (40, f32::NEG_INFINITY)]);
    }

    #[test]
    fn global_avg_pool_sizes() {
        for (i, &hw) in EDGE.iter().chain(&[49, 196]).enumerate() {
            for &c in &CHANNELS {
                let act = ACTS[i % 3];
                let x = Rng::new((hw * 31 + c) as u64).vec(c * hw);
                let want: std::vec::Vec<f64> = (0..c)
                    .map(|ch| {
                        act_ref(
                            act,
                            x[ch * hw..][..hw].iter().map(|&v| v as f64).sum::<f64>() / hw as f64,
                        )
                    })
                    .collect();
                check_isas(&std::format!("gap c={c} hw={hw}"), &want, false, |isa| {
                    let mut out = vec![f32::NAN; c];
                    global_avg_pool_checked(isa, hw, &x, &mut out, act).unwrap();
                    out
                });
            }
        }
    }

    #[test]
    fn checked_wrappers_reject_bad_input() {
        let p = params(2, (4, 4), (2, 2), (2, 2), (0, 0, 0, 0), false, Act::None).unwrap();
        let mut out = vec![0.0; p.output_len()];
        assert_eq!(
            maxpool2d_checked(Isa::Scalar, &p, &[0.0; 31], &mut out),
            Err(KernelError::BadLength {
                what: "input",
                expected: 32,
                found: 31
            })
        );
        let bad = PoolParams { pad_top: 2, ..p };
        assert!(matches!(
            avgpool2d_checked(Isa::Scalar, &bad, &[0.0; 32], &mut out),
            Err(KernelError::BadParams(_))
        ));
        let bad = PoolParams { w_out: 3, ..p };
        assert!(matches!(bad.validate(), Err(KernelError::BadParams(_))));
        assert_eq!(
            global_avg_pool_checked(Isa::Scalar, 5, &[0.0; 9], &mut [0.0; 2], Act::None),
            Err(KernelError::BadLength {
                what: "input",
                expected: 10,
                found: 9
            })
        );
        assert!(global_avg_pool_checked(Isa::Scalar, 0, &[], &mut [0.0; 2], Act::None).is_err());
    }
}
