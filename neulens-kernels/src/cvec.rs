//! Direct convolution with the output channels in the vector lanes ("channel-vectorized"), for
//! small output maps: the rule that picks it ([`applies`]), its weight packing, the zero-padded
//! input copy, and its register-tiled microkernel.
//!
//! The grid kernel of `direct.rs` puts pixels in the lanes and computes every grid column, so a
//! map only a few pixels wide wastes most of its tile: a 7×7 output fills 63 of 96 lanes and
//! 7 of every 9 columns (half the FMAs). Here a tile is `NV` vectors of output channels (16-channel
//! blocks) × `NP` consecutive pixels of one output row: each tap loads `NV` weight vectors and
//! broadcasts `NP` input values, so every lane does useful work whatever the map width. Rows are
//! cut into equal chunks of at most the ISA's `NP`; a row's last chunk shifts back to end at the
//! row's end (it recomputes and rewrites a few pixels, identically).
//!
//! Weights are packed `[c_out / 16][ic][ky][kx][16]` (zero-filled past `c_out`), the same for
//! every ISA, so the build-time packing does not depend on the CPU the model runs on. The choice
//! between this layout and the grid's ([`applies`]) depends on the whole convolution's `c_out`
//! (few output channels leave most lanes empty here); a part of a conv split by output channels
//! ([`crate::conv::conv2d_part`]) is handed the whole conv's choice, so it runs the kernel its
//! weights were packed for.

use crate::common::{act_v, fill_row, min, zero_row};
use crate::conv::ConvParams;
use crate::direct::PACK_MR;
use crate::simd::Simd;
use crate::Act;

/// Output channels per packed weight block (a multiple of every ISA's lane count).
pub(crate) const BLOCK: usize = 16;

/// Tile width (pixels) of the AVX-512 grid kernel, the yardstick of [`applies`].
const GRID_TW: usize = 48;

/// Whether the channel-vectorized kernel runs `p` (a function of the shape, `c_out` included;
/// see the module docs for conv parts):
/// - groups 1, more than one tap (the grid kernel is faster on 1×1 with stride), output rows at
///   least 4 pixels wide;
/// - this kernel's own lane use (`c_out` over whole 16-channel blocks) above the grid kernel's
///   (valid pixels over computed pixels, with `GRID_TW`-pixel tiles over `wq`-wide grid rows,
///   times `c_out` over whole 8-channel panels). 4 output channels fill a quarter of the 16
///   lanes: a 4→4 3×3 conv onto 17×18 runs 2.5× faster on the grid kernel, which uses 80 % of
///   its lanes there;
/// - and either the grid's pixel use below 80 %, or at least 64 input channels on rows of at
///   most 16 pixels (C3, 14×14 256→256: 5–10 % faster on AVX-512, 25 % on AVX2; on 28-pixel
///   rows AVX-512 gains 5 % but AVX2 loses 25 %, so those stay on the grid).
///
/// Measured in docs/BENCHMARKS.md ("Channel-vectorized direct kernel", and the fifteenth
/// session).
pub(crate) const fn applies(p: &ConvParams) -> bool {
    if p.groups != 1 || p.kh * p.kw < 2 || p.w_out < 4 || p.sh == 0 || p.sw == 0 {
        return false;
    }
    let wq = p.w_out + (p.kw - 1) / p.sw;
    let computed = (p.h_out * wq).div_ceil(GRID_TW) * GRID_TW;
    let valid = p.h_out * p.w_out;
    // Own lane use, c_out over whole 16-channel blocks, against the grid's: valid over
    // computed pixels times c_out over whole 8-channel panels.
    if p.c_out.div_ceil(PACK_MR) * PACK_MR * computed <= valid * p.c_out.div_ceil(BLOCK) * BLOCK {
        return false;
    }
    if p.c_in >= 64 && p.w_out <= 16 {
        return true;
    }
    // valid / computed < 0.8
    5 * valid < 4 * computed
}

/// Packed length: `ceil(c_out / 16) * 16 * c_in * kh * kw`.
pub(crate) const fn packed_len(p: &ConvParams) -> usize {
    p.c_out.div_ceil(BLOCK) * BLOCK * p.c_in * p.kh * p.kw
}

/// Build time: OIHW weights into `[c_out / 16][ic][ky][kx][16]`. `p` is valid with groups 1,
/// `oihw.len() == weight_len`, `out.len() == packed_len(p)`.
pub(crate) fn pack(p: &ConvParams, oihw: &[f32], out: &mut [f32]) {
    let mut i = 0;
    for ob in 0..p.c_out.div_ceil(BLOCK) {
        for ic in 0..p.c_in {
            for ky in 0..p.kh {
                for kx in 0..p.kw {
                    for j in 0..BLOCK {
                        let oc = ob * BLOCK + j;
                        out[i] = if oc < p.c_out {
                            oihw[((oc * p.c_in + ic) * p.kh + ky) * p.kw + kx]
                        } else {
                            0.0
                        };
                        i += 1;
                    }
                }
            }
        }
    }
    debug_assert_eq!(i, out.len());
}

/// Rows and columns of the zero-padded input the taps read: `(h_out - 1) * sh + kh` by
/// `(w_out - 1) * sw + kw`.
const fn padded_dims(p: &ConvParams) -> (usize, usize) {
    ((p.h_out - 1) * p.sh + p.kh, (p.w_out - 1) * p.sw + p.kw)
}

/// Whether the taps read inside the input itself (no padding on the top and left, and no row
/// or column past the input): then the kernel reads the input in place.
const fn in_place(p: &ConvParams) -> bool {
    let (hp, wp) = padded_dims(p);
    p.pad_top == 0 && p.pad_left == 0 && hp <= p.h_in && wp <= p.w_in
}

/// Scratch floats of the fast path: the zero-padded copy of the whole input (none when the
/// input is read in place).
pub(crate) const fn scratch_len(p: &ConvParams) -> usize {
    if in_place(p) {
        0
    } else {
        let (hp, wp) = padded_dims(p);
        p.c_in * hp * wp
    }
}

/// The least scratch: the padded rows of one output row (the kernel then copies the input in
/// bands of output rows, and every band reads all the weights again).
pub(crate) const fn min_scratch_len(p: &ConvParams) -> usize {
    if in_place(p) {
        0
    } else {
        let (_, wp) = padded_dims(p);
        p.c_in * p.kh * wp
    }
}

/// Pixels per tile of an ISA with `lanes` lanes: the most whose accumulators (`16 / lanes`
/// vectors per block, two blocks on AVX-512) stay in the register file with the weights.
const fn np_max(lanes: usize) -> usize {
    match lanes {
        16 => 8,
        8 => 6,
        4 => 3,
        // The scalar twin: 16 accumulators per pixel already fill a Cortex-M4F's 32 registers.
        _ => 1,
    }
}

/// `(chunks, np)`: each output row in `chunks` chunks of `np <= np_max` pixels (`np <= w_out`).
const fn row_chunks(w_out: usize, np_max: usize) -> (usize, usize) {
    let chunks = w_out.div_ceil(np_max);
    (chunks, w_out.div_ceil(chunks))
}

/// Where a tile reads and writes (the parts that do not change from tile to tile).
#[derive(Clone, Copy)]
struct Geo {
    /// Floats between input channels and between input rows (padded copy or the input).
    xplane: usize,
    xrow: usize,
    /// Floats between two 16-channel weight blocks.
    wblock: usize,
    /// Output plane (`h_out * w_out`).
    plane: usize,
    act: Act,
}

/// The microkernel: `NV * LANES` output channels (`m` of them stored, `m >= 1`) × `NP` pixels
/// of one output row, accumulated in registers over input channels and taps; bias at the
/// start, activation and the transposing store at the end. With `GMAX` it stores nothing: it
/// folds the `NP` pixels into the running maxima at `out` (before the activation, which is
/// monotone and applied to the maxima at the end).
///
/// # Safety
/// `x`: the (padded) input at the tile's first tap (row `oy * sh`, column `ox0 * sw` of
/// channel 0), valid for every tap of `NP` pixels of `c_in` channels; `w`: the first packed
/// block of the tile's channels (`NV * LANES / 16` blocks `g.wblock` apart); `bias`: `NV *
/// LANES` floats; `out`: the tile's first output (channel 0 of the tile, pixel `oy * w_out +
/// ox0`), valid for `m` channel planes, or with `GMAX` `NV * LANES` running maxima; `V`'s ISA
/// available.
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<
    V: Simd,
    const NV: usize,
    const NP: usize,
    const K: usize,
    const S: usize,
    const GMAX: bool,
>(
    p: &ConvParams,
    g: Geo,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    m: usize,
    out: *mut f32,
) {
    const { assert!(BLOCK.is_multiple_of(V::LANES) && NP <= 8) };
    // `conv_k` instantiates every ISA's tile shapes for every `V` and runs only its own; this
    // (constant) check keeps the others' stack buffer in bounds.
    if NV * V::LANES > 4 * BLOCK {
        return;
    }
    // SAFETY: reads and writes as documented above.
    unsafe {
        let (kh, kw, sw) = if K > 0 { (K, K, S) } else { (p.kh, p.kw, p.sw) };
        // Vector `v` is lanes `(v * LANES) % 16..` of block `(v * LANES) / 16`.
        let mut woff = [0usize; NV];
        for v in 0..NV {
            woff[v] = (v * V::LANES) / BLOCK * g.wblock + (v * V::LANES) % BLOCK;
        }
        let mut acc = [[V::zero(); NP]; NV];
        for v in 0..NV {
            let b = V::load(bias.add(v * V::LANES));
            acc[v] = [b; NP];
        }
        let mut wp = w;
        for ic in 0..p.c_in {
            let xc = x.add(ic * g.xplane);
            for ky in 0..kh {
                let xr = xc.add(ky * g.xrow);
                for kx in 0..kw {
                    let mut wv = [V::zero(); NV];
                    for v in 0..NV {
                        wv[v] = V::load(wp.add(woff[v]));
                    }
                    for q in 0..NP {
                        let xv = V::splat(*xr.add(q * sw + kx));
                        for v in 0..NV {
                            acc[v][q] = V::fma(wv[v], xv, acc[v][q]);
                        }
                    }
                    wp = wp.add(BLOCK);
                }
            }
        }
        if GMAX {
            for v in 0..NV {
                let mut r = V::load(out.add(v * V::LANES));
                for q in 0..NP {
                    r = V::max(r, acc[v][q]);
                }
                r.store(out.add(v * V::LANES));
            }
            return;
        }
        // Transpose through the stack: `buf[q][c]`, then each channel's `NP` pixels.
        let mut buf = [[0f32; 4 * BLOCK]; NP];
        for q in 0..NP {
            for v in 0..NV {
                act_v::<V>(g.act, acc[v][q]).store(buf[q].as_mut_ptr().add(v * V::LANES));
            }
        }
        for c in 0..min(m, NV * V::LANES) {
            let o = out.add(c * g.plane);
            for q in 0..NP {
                *o.add(q) = buf[q][c];
            }
        }
    }
}

/// The loop nest for one tile shape: channel groups of `NV * LANES` (`NV1` vectors for a last
/// group of at most `NV1 * LANES` channels), rows, chunks. With `GMAX`, `output` holds the
/// `c_out` running maxima (see [`conv_global_max`]).
///
/// # Safety
/// As [`conv`] (or [`conv_global_max`]), `x` the (padded) input with strides `g` from padded
/// row `oy0 * sh` on, holding the rows of output rows `oy0..oy1`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn nest<
    V: Simd,
    const NV: usize,
    const NV1: usize,
    const NP: usize,
    const K: usize,
    const S: usize,
    const GMAX: bool,
>(
    p: &ConvParams,
    g: Geo,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    (chunks, oy0, oy1): (usize, usize, usize),
) {
    // SAFETY: every tile's reads are taps of valid output pixels (inside the padded input) and
    // packed blocks `< ceil(c_out / 16)` (a tile of `NV` vectors runs only when more than
    // `NV1 * LANES` channels are left); its writes are `oy < h_out`, `ox0 + NP <= w_out` of
    // channels `< c_out`.
    unsafe {
        let mut c0 = 0;
        while c0 < p.c_out {
            let m = p.c_out - c0;
            let wide = m > NV1 * V::LANES;
            // This group's bias, zero past `c_out` (tiles load whole vectors of it).
            let mut b = [0f32; 4 * BLOCK];
            core::ptr::copy_nonoverlapping(bias.add(c0), b.as_mut_ptr(), min(m, 4 * BLOCK));
            let wc = w.add(c0 / BLOCK * g.wblock);
            let width = if wide { NV } else { NV1 } * V::LANES;
            // `GMAX`: this group's running maxima, whole vectors (the lanes past `c_out` hold
            // the maxima of zero weights and are never written back).
            let mut mx = [f32::NEG_INFINITY; 4 * BLOCK];
            if GMAX {
                core::ptr::copy_nonoverlapping(output.add(c0), mx.as_mut_ptr(), min(m, width));
            }
            for oy in oy0..oy1 {
                let xr = x.add((oy - oy0) * p.sh * g.xrow);
                for k in 0..chunks {
                    let ox0 = min(k * NP, p.w_out - NP);
                    let xt = xr.add(ox0 * p.sw);
                    let ot = if GMAX {
                        mx.as_mut_ptr()
                    } else {
                        output.add(c0 * g.plane + oy * p.w_out + ox0)
                    };
                    if wide {
                        tile::<V, NV, NP, K, S, GMAX>(p, g, xt, wc, b.as_ptr(), m, ot);
                    } else {
                        tile::<V, NV1, NP, K, S, GMAX>(p, g, xt, wc, b.as_ptr(), m, ot);
                    }
                }
            }
            if GMAX {
                core::ptr::copy_nonoverlapping(mx.as_ptr(), output.add(c0), min(m, width));
            }
            c0 += width;
        }
    }
}

/// Zero-padded copy of padded rows `r0..r1` (all columns the taps read) of every input channel:
/// `[c_in][r1 - r0][wp]`.
///
/// # Safety
/// `input` valid for `p.input_len()` reads, `dst` for `c_in * (r1 - r0) * wp` writes.
#[inline(always)]
unsafe fn fill_padded<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    (r0, r1): (usize, usize),
    dst: *mut f32,
) {
    let (_, wp) = padded_dims(p);
    // Columns `lo..hi` of a padded row are input columns `0..hi - lo`.
    let lo = min(p.pad_left, wp);
    let hi = min(p.pad_left + p.w_in, wp);
    // SAFETY: rows `< r1 - r0` and columns `< wp` of each channel of `dst`; input rows and
    // columns inside `[0, h_in) x [0, w_in)`.
    unsafe {
        for c in 0..p.c_in {
            let src = input.add(c * p.h_in * p.w_in);
            for r in r0..r1 {
                let row = dst.add((c * (r1 - r0) + r - r0) * wp);
                if r < p.pad_top || r - p.pad_top >= p.h_in {
                    zero_row::<V>(wp, row);
                } else {
                    fill_row::<V>(row, wp, lo, hi, src.add((r - p.pad_top) * p.w_in), 1);
                }
            }
        }
    }
}

/// Channel-vectorized convolution (see the module comment): `p` satisfies [`applies`].
///
/// # Safety
/// Contract of `conv2d` with weights from [`pack`] and `scratch` valid for `scratch_len >=`
/// [`min_scratch_len`] floats (with [`scratch_len`] the whole input is copied at once).
#[inline(always)]
pub(crate) unsafe fn conv<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
    scratch_len: usize,
) {
    // SAFETY: forwarded contract.
    unsafe { conv_any::<V, false>(p, input, w, bias, output, (scratch, scratch_len)) }
}

/// Convolution + bias + activation reduced by a global max pool: `output[c]` is the largest
/// value of output channel `c` over the whole map (`c_out` floats), and the map is never
/// stored. The tiles fold their pixels into running maxima instead of storing them (a row's
/// shifted last chunk folds a few pixels twice, which a maximum ignores); the activation, being
/// monotone, is applied to the maxima.
///
/// # Safety
/// As [`conv`] with `output` valid for `c_out` writes, groups 1, any kernel size and map.
#[inline(always)]
pub(crate) unsafe fn conv_global_max<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
    scratch_len: usize,
) {
    // SAFETY: `output` holds `c_out` floats; the rest is the forwarded contract.
    unsafe {
        for c in 0..p.c_out {
            *output.add(c) = f32::NEG_INFINITY;
        }
        conv_any::<V, true>(p, input, w, bias, output, (scratch, scratch_len));
        crate::common::act_inplace::<V>(p.act, p.c_out, output);
    }
}

/// [`conv`] or (`GMAX`) [`conv_global_max`], dispatched to the kernel sizes with constant taps.
///
/// # Safety
/// The contract of the function it implements.
#[inline(always)]
unsafe fn conv_any<V: Simd, const GMAX: bool>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    s: (*mut f32, usize),
) {
    // SAFETY: forwarded contract; `K`, `S` match `p` (or are 0).
    unsafe {
        match (p.kh, p.kw, p.sh, p.sw) {
            (3, 3, 1, 1) => conv_k::<V, 3, 1, GMAX>(p, input, w, bias, output, s),
            (3, 3, 2, 2) => conv_k::<V, 3, 2, GMAX>(p, input, w, bias, output, s),
            _ => conv_k::<V, 0, 0, GMAX>(p, input, w, bias, output, s),
        }
    }
}

/// [`conv_any`] for a `K x K` kernel of stride `S` (any with `K == 0`).
///
/// # Safety
/// As [`conv_any`], and `K == 0` or `p` is `K x K` with stride `S` on both axes.
#[inline(always)]
unsafe fn conv_k<V: Simd, const K: usize, const S: usize, const GMAX: bool>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    (scratch, scratch_len): (*mut f32, usize),
) {
    let (chunks, np) = row_chunks(p.w_out, np_max(V::LANES));
    let mut g = Geo {
        xplane: p.h_in * p.w_in,
        xrow: p.w_in,
        wblock: BLOCK * p.c_in * p.kh * p.kw,
        plane: p.h_out * p.w_out,
        act: p.act,
    };
    // Output rows per band of the padded copy: as many as `scratch_len` holds (all of them
    // with `scratch_len(p)`, one with `min_scratch_len(p)`).
    let (_, wp) = padded_dims(p);
    let band = if in_place(p) {
        p.h_out
    } else {
        min((scratch_len / (p.c_in * wp) - p.kh) / p.sh + 1, p.h_out)
    };
    let mut oy0 = 0;
    while oy0 < p.h_out {
        let oy1 = min(oy0 + band, p.h_out);
        let x = if in_place(p) {
            input
        } else {
            let rows = (oy0 * p.sh, (oy1 - 1) * p.sh + p.kh);
            // SAFETY: `c_in * (rows.1 - rows.0) * wp <= scratch_len` by the choice of `band`.
            unsafe { fill_padded::<V>(p, input, rows, scratch) };
            g.xrow = wp;
            g.xplane = (rows.1 - rows.0) * wp;
            scratch as *const f32
        };
        let r = (chunks, oy0, oy1);
        // SAFETY: forwarded contract; `np <= w_out` (so `ox0 = w_out - NP >= 0`).
        unsafe {
            macro_rules! go {
                ($nv:literal, $nv1:literal, [$($n:literal),*]) => {
                    match np {
                        $($n => nest::<V, $nv, $nv1, $n, K, S, GMAX>(p, g, x, w, bias, output, r),)*
                        _ => unreachable!(),
                    }
                };
            }
            match V::LANES {
                16 => go!(2, 1, [1, 2, 3, 4, 5, 6, 7, 8]),
                8 => go!(2, 2, [1, 2, 3, 4, 5, 6]),
                4 => go!(4, 4, [1, 2, 3]),
                _ => go!(16, 16, [1]),
            }
        }
        oy0 = oy1;
    }
}
