//! Direct, 1x1 and depthwise convolution as an implicit GEMM over a zero-padded, stride-phase-split
//! copy of the input (the "grid"): weight packing, the grid fill, and one register-tiled microkernel.
//!
//! The grid of one input channel holds `npy x npx` stride phases of `hq x wq` floats each: phase
//! `(py, px)` at `(r, c)` is the zero-padded input at row `r * sh + py`, column `c * sw + px`. Tap
//! `(ky, kx) = (dy * sh + py, dx * sw + px)` of output pixel `q = oy * wq + ox` is then element
//! `q + dy * wq + dx` of phase `(py, px)`: every tap is a contiguous run of pixels whatever the
//! row width or stride. Columns `ox >= w_out` of the flat grid are computed and never stored.
//! Weights are packed as `[group][oc / 8][py][px][ic][dy][dx][8]` (zero-filled past `c_out`),
//! so the microkernel broadcasts the 8 (or `CONV_MR`) weights of a tap from consecutive floats.

use crate::common::{act_v, fill_row, fill_row_s2, flat_lane_mask, min, prefetch, zero_row};
use crate::conv::ConvParams;
use crate::simd::Simd;
use crate::Act;

/// Output channels per packed weight panel (every ISA's `CONV_MR` divides it).
pub(crate) const PACK_MR: usize = 8;
/// Upper bound of any microkernel's tile width `NV * LANES` (pixels).
pub(crate) const MAX_TW: usize = 64;
/// Vectors of pixels per depthwise tile.
const DW_NV: usize = 4;

/// Geometry of the grid of one input channel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    /// Row phases `min(sh, kh)`.
    pub npy: usize,
    /// Column phases `min(sw, kw)`.
    pub npx: usize,
    /// Rows per phase: `h_out + (kh - 1) / sh`.
    pub hq: usize,
    /// Columns per phase: `w_out + (kw - 1) / sw`.
    pub wq: usize,
}

impl Grid {
    /// The grid of `p`; `p` has nonzero kernel sizes and strides.
    pub(crate) const fn of(p: &ConvParams) -> Grid {
        Grid {
            npy: min(p.sh, p.kh),
            npx: min(p.sw, p.kw),
            hq: p.h_out + (p.kh - 1) / p.sh,
            wq: p.w_out + (p.kw - 1) / p.sw,
        }
    }
    /// Floats of one phase.
    pub(crate) const fn phase_len(&self) -> usize {
        self.hq * self.wq
    }
    /// Floats of one channel (all phases).
    pub(crate) const fn channel_len(&self) -> usize {
        self.npy * self.npx * self.phase_len()
    }
}

/// Floats after the last grid channel that a tile may read (zeroed by `fill_grid`).
pub(crate) const fn grid_slack(p: &ConvParams) -> usize {
    MAX_TW + p.kw
}

/// Target size (f32) of one band of the compact banding: half the input, at least 8 KiB (big
/// layers get big channel blocks and bands; small models keep a small arena).
const fn band_budget(p: &ConvParams) -> usize {
    let q = p.c_in * p.h_in * p.w_in / 2;
    if q > 2048 {
        q
    } else {
        2048
    }
}

/// Floats of one tile's working set (all input channels × the grid rows one tile reads) up to
/// which the fast banding keeps every input channel in one block, so no partial sums are
/// stored and reloaded between channel blocks: 48 KiB, the L1d of the CPUs measured. Small
/// convs (micro-flow tiles, late small maps) run 15–20 % faster this way
/// (docs/BENCHMARKS.md, "Grid fill and banding").
const ONE_BLOCK_TILE_SET: usize = 12 * 1024;

/// Packed weights (f32) above which the loop nest runs each weight panel over all tiles of a
/// band instead of all panels per tile: 1 MiB, half the L2 of the CPUs measured.
pub(crate) const PANELS_OUTER_WEIGHTS: usize = 256 * 1024;

/// Prefetch distance (f32) of the weights in the microkernel (0: none).
const PF: usize = 512;

/// Target size (f32) of one band of the fast banding: 256 KiB, L2-resident.
const ONE_BLOCK_BAND: usize = 64 * 1024;

/// Grid rows (per phase) that one tile of any ISA reads: its taps' rows plus the rows its
/// `MAX_TW` pixels span, at most the whole grid.
const fn tile_rows(p: &ConvParams, g: &Grid) -> usize {
    min(
        1 + (p.kh - 1) / p.sh + ((p.kw - 1) / p.sw + MAX_TW).div_ceil(g.wq),
        g.hq,
    )
}

/// The compact banding: `(kc, rows)`, input channels per block and grid rows per band (per
/// phase). `rows` is at least what one tile of any ISA reads (so every band holds a tile) and
/// at most the whole grid; `kc` is a multiple of 8 (or all of `c_in / groups`, or fewer than 8)
/// such that a block of `kc` channels x `rows` rows stays near [`band_budget`].
const fn compact_dims(p: &ConvParams) -> (usize, usize) {
    let g = Grid::of(p);
    let cin_g = p.c_in / p.groups;
    let budget = band_budget(p);
    let row = g.npy * g.npx * g.wq;
    // Prefer the whole grid (each weight panel then serves every tile) with blocks of at
    // least 8 input channels; otherwise 8-channel blocks in bands of rows.
    let kc_full = budget / (row * g.hq);
    let kc_min = min(cin_g, 8);
    if kc_full >= kc_min {
        let kc = min(cin_g, kc_full);
        return (
            if kc > 8 && kc < cin_g {
                kc - kc % 8
            } else {
                kc
            },
            g.hq,
        );
    }
    let rmin = tile_rows(p, &g);
    let fit = budget / (kc_min * row);
    let rows = if fit > rmin { fit } else { rmin };
    (kc_min, min(rows, g.hq))
}

/// The fast banding: every input channel in one block, in bands of rows near
/// [`ONE_BLOCK_BAND`]; `None` when one tile's working set exceeds [`ONE_BLOCK_TILE_SET`].
const fn one_block_dims(p: &ConvParams) -> Option<(usize, usize)> {
    let g = Grid::of(p);
    let cin_g = p.c_in / p.groups;
    let row = g.npy * g.npx * g.wq;
    let rmin = tile_rows(p, &g);
    if cin_g * row * rmin > ONE_BLOCK_TILE_SET {
        // Big weights on a small map: the panels-outer loop order streams each weight panel
        // over the band from L2 anyway, so the tile need not fit L1; the whole grid of every
        // channel in one block (when it stays L2-sized) saves the partial sums.
        if packed_len(p) > PANELS_OUTER_WEIGHTS && cin_g * row * g.hq <= ONE_BLOCK_BAND {
            return Some((cin_g, g.hq));
        }
        return None;
    }
    let fit = ONE_BLOCK_BAND / (cin_g * row);
    Some((cin_g, min(if fit > rmin { fit } else { rmin }, g.hq)))
}

/// Scratch of a banding: one band of one channel block plus slack.
const fn dims_scratch(p: &ConvParams, (kc, rows): (usize, usize)) -> usize {
    let g = Grid::of(p);
    kc * g.npy * g.npx * rows * g.wq + grid_slack(p)
}

/// The banding the kernel runs with `scratch_len` floats of scratch (at least
/// [`band_min_scratch_len`]): the fast one if it fits, else the compact one.
pub(crate) const fn band_dims(p: &ConvParams, scratch_len: usize) -> (usize, usize) {
    match one_block_dims(p) {
        Some(d) if dims_scratch(p, d) <= scratch_len => d,
        _ => compact_dims(p),
    }
}

/// Scratch of the fast banding of the grid path (the compact one's when there is no fast one).
pub(crate) const fn band_scratch_len(p: &ConvParams) -> usize {
    match one_block_dims(p) {
        Some(d) => dims_scratch(p, d),
        None => dims_scratch(p, compact_dims(p)),
    }
}

/// The least scratch the grid path runs with (the smaller of the two bandings).
pub(crate) const fn band_min_scratch_len(p: &ConvParams) -> usize {
    let (fast, compact) = (band_scratch_len(p), dims_scratch(p, compact_dims(p)));
    min(fast, compact)
}

/// Packed length for the grid path: `groups * ceil(cout_g / 8) * 8 * cin_g * kh * kw`.
pub(crate) const fn packed_len(p: &ConvParams) -> usize {
    let cin_g = p.c_in / p.groups;
    let cout_g = p.c_out / p.groups;
    p.groups * cout_g.div_ceil(PACK_MR) * PACK_MR * cin_g * p.kh * p.kw
}

/// Build time: OIHW weights into the layout above. `p` is valid, `oihw.len() == weight_len`,
/// `out.len() == packed_len(p)`.
pub(crate) fn pack(p: &ConvParams, oihw: &[f32], out: &mut [f32]) {
    let (cin_g, cout_g) = (p.c_in / p.groups, p.c_out / p.groups);
    let g = Grid::of(p);
    let mut i = 0;
    for grp in 0..p.groups {
        for ob in 0..cout_g.div_ceil(PACK_MR) {
            for py in 0..g.npy {
                for px in 0..g.npx {
                    for ic in 0..cin_g {
                        for ky in (py..p.kh).step_by(p.sh) {
                            for kx in (px..p.kw).step_by(p.sw) {
                                for j in 0..PACK_MR {
                                    let oc = ob * PACK_MR + j;
                                    out[i] = if oc < cout_g {
                                        let o = grp * cout_g + oc;
                                        oihw[((o * cin_g + ic) * p.kh + ky) * p.kw + kx]
                                    } else {
                                        0.0
                                    };
                                    i += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    debug_assert_eq!(i, out.len());
}

/// Build time, depthwise (`groups == c_in`): OIHW `[c_out][1][kh][kw]` with each channel's taps
/// reordered phase-major (`[py][px][dy][dx]`); same length as the OIHW weights.
pub(crate) fn pack_depthwise(p: &ConvParams, oihw: &[f32], out: &mut [f32]) {
    let g = Grid::of(p);
    let ksz = p.kh * p.kw;
    let mut i = 0;
    for oc in 0..p.c_out {
        for py in 0..g.npy {
            for px in 0..g.npx {
                for ky in (py..p.kh).step_by(p.sh) {
                    for kx in (px..p.kw).step_by(p.sw) {
                        out[i] = oihw[oc * ksz + ky * p.kw + kx];
                        i += 1;
                    }
                }
            }
        }
    }
    debug_assert_eq!(i, out.len());
}

/// Writes grid rows `r0..r1` (`r1 - r0 <= cap`) of input channels `c0..c0 + nc` to `dst`, laid
/// out `[channel][phase][cap][wq]` (row `r` at `r - r0`), then zeroes `grid_slack(p)` floats
/// after them.
///
/// # Safety
/// `p` valid; `input` valid for `p.input_len()` reads; `c0 + nc <= c_in`, `r1 <= hq`; `dst`
/// valid for `nc * npy * npx * cap * wq + grid_slack(p)` writes and not overlapping `input`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn fill_grid<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    c0: usize,
    nc: usize,
    (r0, r1, cap): (usize, usize, usize),
    dst: *mut f32,
) {
    let g = Grid::of(p);
    let plane = p.h_in * p.w_in;
    let (pl, cl) = (cap * g.wq, g.npy * g.npx * cap * g.wq);
    // SAFETY: every write is below `nc * cl + slack` (local rows `< cap`, columns `< wq`);
    // every read is at a row `iy < h_in` and column `ix < w_in` of a channel `< c_in`.
    unsafe {
        for c in 0..nc {
            let src = input.add((c0 + c) * plane);
            for py in 0..g.npy {
                if p.sw == 2 && g.npx == 2 {
                    // Both column phases of each input row at once.
                    let base = dst.add(c * cl + py * 2 * pl);
                    for r in r0..r1 {
                        let rows = [base.add((r - r0) * g.wq), base.add(pl + (r - r0) * g.wq)];
                        let y = r * p.sh + py;
                        if y < p.pad_top || y - p.pad_top >= p.h_in {
                            zero_row::<V>(g.wq, rows[0]);
                            zero_row::<V>(g.wq, rows[1]);
                        } else {
                            let srow = src.add((y - p.pad_top) * p.w_in);
                            fill_row_s2::<V>(rows, g.wq, srow, p.w_in, p.pad_left);
                        }
                    }
                    continue;
                }
                for px in 0..g.npx {
                    let base = dst.add(c * cl + (py * g.npx + px) * pl);
                    // Columns whose input column `col * sw + px - pad_left` is in [0, w_in).
                    let lo = if p.pad_left > px {
                        min((p.pad_left - px).div_ceil(p.sw), g.wq)
                    } else {
                        0
                    };
                    let hi = if p.w_in + p.pad_left > px {
                        min((p.w_in + p.pad_left - px).div_ceil(p.sw), g.wq)
                    } else {
                        0
                    };
                    let hi = if hi < lo { lo } else { hi };
                    for r in r0..r1 {
                        let row = base.add((r - r0) * g.wq);
                        let y = r * p.sh + py;
                        if y < p.pad_top || y - p.pad_top >= p.h_in {
                            zero_row::<V>(g.wq, row);
                            continue;
                        }
                        let srow = src.add((y - p.pad_top) * p.w_in);
                        // Input column `lo * sw + px - pad_left >= 0` is the first one read.
                        let s0 = srow.wrapping_add((lo * p.sw + px).wrapping_sub(p.pad_left));
                        fill_row::<V>(row, g.wq, lo, hi, s0, p.sw);
                    }
                }
            }
        }
        zero_row::<V>(grid_slack(p), dst.add(nc * cl));
    }
}

/// What a tile reads: `cin` channels `cs` floats apart, phases `pl` floats apart, rows `wq`
/// apart; weights advance by `ws` floats per tap, and these channels are `ic0..ic0 + cin` of
/// the `cin_total` that the packed weights hold per phase.
#[derive(Clone, Copy)]
struct Src {
    cin: usize,
    cin_total: usize,
    ic0: usize,
    cs: usize,
    pl: usize,
    wq: usize,
    ws: usize,
}

/// Where a tile's outputs go: channel planes `plane` apart, `nq` grid pixels of which columns
/// `< w_out` of each `wq`-wide grid row are stored (row `oy` at `oy * w_out`). `first`: start
/// from the bias (else from the partial sums already stored); `act` is applied at the store
/// (`Act::None` for partial sums).
#[derive(Clone, Copy)]
struct Dst {
    first: bool,
    act: Act,
    plane: usize,
    nq: usize,
    wq: usize,
    w_out: usize,
}

/// The microkernel: `MR` output channels x `NV` vectors of grid pixels from `x` (the grid of the
/// first input channel, offset to the tile's first pixel `q0`), accumulated in registers over
/// phases, input channels and taps; bias at the start, activation at the store. Channels `>= m`
/// are computed (zero weights) but neither read from `bias` nor stored.
///
/// # Safety
/// `x` valid for reads at every `phase * pl + ic * cs + dy * wq + dx + [0, NV * LANES)`;
/// `w` for the taps' `ws`-strided `MR` weights; `bias` for `m` reads; `out` (at `q = 0` of the
/// first channel) for the writes described by `Dst` for channels `< m`; `V`'s ISA available.
// Const-bounded `j`/`v` indices keep the accumulators in registers after unrolling.
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<V: Simd, const MR: usize, const NV: usize, const K: usize, const S: usize>(
    p: &ConvParams,
    g: &Grid,
    s: Src,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    m: usize,
    out: *mut f32,
    d: Dst,
    q0: usize,
) {
    // SAFETY: offsets as documented above.
    unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        if d.first {
            for j in 0..MR {
                if j < m {
                    let b = V::splat(*bias.add(j));
                    for a in acc[j].iter_mut() {
                        *a = b;
                    }
                }
            }
        } else {
            acc = load::<V, MR, NV>(m, out, d, q0);
        }
        // With `K > 0` the kernel is `K x K` with stride `S` (checked by `conv`): constant trip
        // counts, so the tap loops below unroll.
        let (kh, kw, sh, sw) = if K > 0 {
            (K, K, S, S)
        } else {
            (p.kh, p.kw, p.sh, p.sw)
        };
        let (npy, npx) = if K > 0 {
            (min(S, K), min(S, K))
        } else {
            (g.npy, g.npx)
        };
        let mut taps_before = 0;
        for py in 0..npy {
            let ny = (kh - py).div_ceil(sh);
            for px in 0..npx {
                let nx = (kw - px).div_ceil(sw);
                let xp = x.add((py * npx + px) * s.pl);
                let mut wp = w.add(s.ws * (s.cin_total * taps_before + s.ic0 * ny * nx));
                taps_before += ny * nx;
                for ic in 0..s.cin {
                    let xc = xp.add(ic * s.cs);
                    for dy in 0..ny {
                        let xr = xc.add(dy * s.wq);
                        for dx in 0..nx {
                            let xs = xr.add(dx);
                            let mut xv = [V::zero(); NV];
                            for v in 0..NV {
                                xv[v] = V::load(xs.add(v * V::LANES));
                            }
                            for j in 0..MR {
                                let wv = V::splat(*wp.add(j));
                                for v in 0..NV {
                                    acc[j][v] = V::fma(wv, xv[v], acc[j][v]);
                                }
                            }
                            if PF > 0 {
                                prefetch(wp.wrapping_add(PF));
                            }
                            wp = wp.add(s.ws);
                        }
                    }
                }
            }
        }
        store::<V, MR, NV>(acc, m, out, d, q0);
    }
}

/// Loads the partial sums of channels `< m` of a tile at grid pixel `q0` (the inverse of
/// [`store`]; lanes of pixels that are not stored read as zero).
///
/// # Safety
/// `out` valid for the reads described by `Dst` for channels `< m`; `V`'s ISA available.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn load<V: Simd, const MR: usize, const NV: usize>(
    m: usize,
    out: *const f32,
    d: Dst,
    q0: usize,
) -> [[V; NV]; MR] {
    const { assert!(V::LANES <= 16) };
    // SAFETY: a pixel is read only if `q < nq` (so `oy < h_out`) and `ox < w_out`, at
    // `j * plane + oy * w_out + ox` with `j < m` (`flat_lane_mask` gives exactly those).
    unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        for v in 0..NV {
            let qv = q0 + v * V::LANES;
            if qv >= d.nq {
                break;
            }
            let (oy, ox) = (qv / d.wq, qv % d.wq);
            if ox + V::LANES <= d.w_out {
                let o = out.add(oy * d.w_out + ox);
                for j in 0..MR {
                    if j < m {
                        acc[j][v] = V::load(o.add(j * d.plane));
                    }
                }
            } else {
                let (mask, first) = flat_lane_mask(V::LANES, (d.nq, d.wq, d.w_out), qv, oy, ox);
                if mask != 0 {
                    for j in 0..MR {
                        if j < m {
                            acc[j][v] = V::expand_load(mask, out.add(j * d.plane + first));
                        }
                    }
                }
            }
        }
        acc
    }
}

/// Stores channels `< m` of a tile at grid pixel `q0`: whole vectors straight to the output when
/// all their pixels are valid columns of one row, compressed stores of the valid lanes
/// otherwise; `d.act` applied on the way.
///
/// # Safety
/// `out` valid for the writes described by `Dst` for channels `< m`; `V`'s ISA available.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn store<V: Simd, const MR: usize, const NV: usize>(
    acc: [[V; NV]; MR],
    m: usize,
    out: *mut f32,
    d: Dst,
    q0: usize,
) {
    const { assert!(MR <= PACK_MR && NV >= 1 && V::LANES <= 16) };
    // SAFETY: a pixel is written only if `q < nq` (so `oy < h_out`) and `ox < w_out`, at
    // `j * plane + oy * w_out + ox` with `j < m` (`flat_lane_mask` gives exactly those).
    unsafe {
        for v in 0..NV {
            let qv = q0 + v * V::LANES;
            if qv >= d.nq {
                break;
            }
            let (oy, ox) = (qv / d.wq, qv % d.wq);
            if ox + V::LANES <= d.w_out {
                let o = out.add(oy * d.w_out + ox);
                for j in 0..MR {
                    if j < m {
                        act_v::<V>(d.act, acc[j][v]).store(o.add(j * d.plane));
                    }
                }
            } else {
                let (mask, first) = flat_lane_mask(V::LANES, (d.nq, d.wq, d.w_out), qv, oy, ox);
                if mask != 0 {
                    for j in 0..MR {
                        if j < m {
                            act_v::<V>(d.act, acc[j][v])
                                .compress_store(mask, out.add(j * d.plane + first));
                        }
                    }
                }
            }
        }
    }
}

/// Direct / 1x1 convolution with the ISA's register tile (`CONV_MR x CONV_NV`).
///
/// # Safety
/// Contract of `conv2d` with weights from [`pack`] and `scratch` of `scratch_len >=
/// p.min_scratch_len()` floats; `p` is not depthwise.
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
    // SAFETY: forwarded contract; `conv_k`'s `K`, `S` match `p` (or are 0).
    unsafe {
        match (p.kh, p.kw, p.sh, p.sw) {
            (3, 3, 1, 1) => conv_k::<V, 3, 1>(p, input, w, bias, output, scratch, scratch_len),
            (3, 3, 2, 2) => conv_k::<V, 3, 2>(p, input, w, bias, output, scratch, scratch_len),
            // The ResNet stem: its 49 taps in four phase loops of constant trip counts.
            (7, 7, 2, 2) => conv_k::<V, 7, 2>(p, input, w, bias, output, scratch, scratch_len),
            _ => conv_k::<V, 0, 0>(p, input, w, bias, output, scratch, scratch_len),
        }
    }
}

/// [`conv`] with the ISA's register tile, for a `K x K` kernel of stride `S` (or any with
/// `K == 0`): the common 3x3 shapes get tap loops with constant trip counts.
///
/// # Safety
/// As [`conv`], and `K == 0` or `p` is `K x K` with stride `S` on both axes.
#[inline(always)]
unsafe fn conv_k<V: Simd, const K: usize, const S: usize>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
    scratch_len: usize,
) {
    // SAFETY: forwarded contract; every arm's tile width is at most `MAX_TW`.
    unsafe {
        match (V::CONV_MR, V::CONV_NV) {
            (8, 3) if 3 * V::LANES <= MAX_TW => {
                conv_mr_nv::<V, 8, 3, K, S>(p, input, w, bias, output, scratch, scratch_len)
            }
            (4, 3) if 3 * V::LANES <= MAX_TW => {
                conv_mr_nv::<V, 4, 3, K, S>(p, input, w, bias, output, scratch, scratch_len)
            }
            (4, 2) if 2 * V::LANES <= MAX_TW => {
                conv_mr_nv::<V, 4, 2, K, S>(p, input, w, bias, output, scratch, scratch_len)
            }
            _ => conv_mr_nv::<V, 1, 1, K, S>(p, input, w, bias, output, scratch, scratch_len),
        }
    }
}

/// The loop nest: 1x1 straight on the input, otherwise band by band of the grid; per tile of
/// `NV * LANES` grid pixels (whose input panel stays in L1/L2), every block of `MR` channels.
///
/// # Safety
/// As [`conv`], and `NV * LANES <= MAX_TW`.
#[inline(always)]
unsafe fn conv_mr_nv<V: Simd, const MR: usize, const NV: usize, const K: usize, const S: usize>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
    scratch_len: usize,
) {
    let tw = NV * V::LANES;
    let cin_g = p.c_in / p.groups;
    let plane = p.h_out * p.w_out;
    let g = Grid::of(p);
    let nob = (p.c_out / p.groups).div_ceil(PACK_MR);
    let k = Tiles {
        p,
        g,
        w,
        bias,
        output,
        plane,
    };
    // SAFETY: every tile reads inside the input (1x1), the zero-padded panel, or the band plus
    // slack (see `tile`, `fill_grid`, `band_rows` and `ConvParams::scratch_len`); outputs are
    // written only at valid pixels of channels `< c_out`.
    unsafe {
        if p.is_pointwise() {
            let d = Dst {
                first: true,
                act: p.act,
                plane,
                nq: plane,
                wq: p.w_out,
                w_out: p.w_out,
            };
            let s = Src {
                cin: cin_g,
                cin_total: cin_g,
                ic0: 0,
                cs: plane,
                pl: 0,
                wq: p.w_out,
                ws: PACK_MR,
            };
            for grp in 0..p.groups {
                let xg = input.add(grp * cin_g * plane);
                if plane < tw {
                    // Fewer pixels than one tile: a zero-padded panel in scratch
                    // (`scratch_len` has `MAX_TW` per input channel when `plane < MAX_TW`).
                    for ic in 0..cin_g {
                        let row = scratch.add(ic * MAX_TW);
                        core::ptr::copy_nonoverlapping(xg.add(ic * plane), row, plane);
                        core::ptr::write_bytes(row.add(plane), 0, tw - plane);
                    }
                    let sp = Src { cs: MAX_TW, ..s };
                    k.blocks::<V, MR, NV, 0, 0>(grp, sp, scratch, d, 0, (0, nob));
                    continue;
                }
                let mut q0 = 0;
                while q0 < plane {
                    // The last tile is shifted back to end at the last pixel (it recomputes
                    // and rewrites a few pixels of the previous tile, identically).
                    let q = if q0 + tw > plane { plane - tw } else { q0 };
                    k.blocks::<V, MR, NV, 0, 0>(grp, s, xg.add(q), d, q, (0, nob));
                    q0 += tw;
                }
            }
            return;
        }
        let (kc, rows) = band_dims(p, scratch_len);
        // Weights beyond about half the L2 are evicted between two tiles (and come from L3 or
        // memory for every tile): then each 8-channel panel runs over all tiles of the band,
        // reading the weights once per band and the band's grid (L2) once per panel.
        let panels_outer = packed_len(p) > PANELS_OUTER_WEIGHTS;
        let nkb = cin_g.div_ceil(kc);
        let pl = rows * g.wq;
        let nq = p.h_out * g.wq;
        // Reach of a tile past its first pixel: rows and columns of the taps, plus its width.
        let reach = (p.kh - 1) / p.sh * g.wq + (p.kw - 1) / p.sw + tw;
        let mut q0 = 0;
        while q0 < nq {
            let r0 = q0 / g.wq;
            let r1 = min(r0 + rows, g.hq);
            // Tiles whose reads stay in this band (the last band takes the rest: its reads
            // past the grid land in rows that no stored pixel reads, or in the slack).
            let last = r0 + rows >= g.hq;
            let lim = (r0 + rows) * g.wq;
            let mut q_end = q0;
            while q_end < nq && (last || q_end + reach <= lim) {
                q_end += tw;
            }
            debug_assert!(q_end > q0, "a band must hold at least one tile");
            for grp in 0..p.groups {
                for kb in 0..nkb {
                    let ic0 = kb * kc;
                    let nc = min(kc, cin_g - ic0);
                    fill_grid::<V>(p, input, grp * cin_g + ic0, nc, (r0, r1, rows), scratch);
                    let s = Src {
                        cin: nc,
                        cin_total: cin_g,
                        ic0,
                        cs: g.npy * g.npx * pl,
                        pl,
                        wq: g.wq,
                        ws: PACK_MR,
                    };
                    let d = Dst {
                        first: kb == 0,
                        act: if kb + 1 == nkb { p.act } else { Act::None },
                        plane,
                        nq,
                        wq: g.wq,
                        w_out: p.w_out,
                    };
                    // Every panel per tile, or (big weights) every tile per panel.
                    for r in 0..if panels_outer { nob } else { 1 } {
                        let obs = if panels_outer { (r, r + 1) } else { (0, nob) };
                        let mut q = q0;
                        while q < q_end {
                            let x = scratch.add(q - r0 * g.wq);
                            // The grid's last pixels: only the vectors that hold any.
                            let left = nq - q;
                            if NV > 1 && left <= V::LANES {
                                k.blocks::<V, MR, 1, K, S>(grp, s, x, d, q, obs);
                            } else if NV > 2 && left <= 2 * V::LANES {
                                k.blocks::<V, MR, 2, K, S>(grp, s, x, d, q, obs);
                            } else {
                                k.blocks::<V, MR, NV, K, S>(grp, s, x, d, q, obs);
                            }
                            q += tw;
                        }
                    }
                }
            }
            q0 = q_end;
        }
    }
}

/// What the output-channel loop of one tile needs.
struct Tiles<'a> {
    p: &'a ConvParams,
    g: Grid,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    plane: usize,
}

impl Tiles<'_> {
    /// The 8-channel panels `obs.0..obs.1` of group `grp` for the tile at grid pixel `q0` read
    /// from `x`.
    ///
    /// # Safety
    /// `x` and the output satisfy `tile`'s contract for this tile; `V`'s ISA available.
    #[inline(always)]
    unsafe fn blocks<V: Simd, const MR: usize, const NV: usize, const K: usize, const S: usize>(
        &self,
        grp: usize,
        s: Src,
        x: *const f32,
        d: Dst,
        q0: usize,
        obs: (usize, usize),
    ) {
        let p = self.p;
        let cout_g = p.c_out / p.groups;
        let nob = cout_g.div_ceil(PACK_MR);
        let panel = PACK_MR * s.cin_total * p.kh * p.kw;
        // SAFETY: channel blocks stay below `cout_g` of group `grp`; weights of block `ob`
        // are the `panel` floats at `(grp * nob + ob) * panel`.
        unsafe {
            for ob in obs.0..obs.1 {
                let wb = self.w.add((grp * nob + ob) * panel);
                let mut j0 = 0;
                while j0 < PACK_MR && ob * PACK_MR + j0 < cout_g {
                    let oc = grp * cout_g + ob * PACK_MR + j0;
                    let left = cout_g - (ob * PACK_MR + j0);
                    let (wj, bj, oj) = (
                        wb.add(j0),
                        self.bias.add(oc),
                        self.output.add(oc * self.plane),
                    );
                    if MR == 8 && left <= 4 {
                        // The last 1–4 channels (c_out = 12, 20, …: micro-flow widths):
                        // half a panel instead of computing four zero channels.
                        tile::<V, 4, NV, K, S>(p, &self.g, s, x, wj, bj, left, oj, d, q0);
                        break;
                    }
                    tile::<V, MR, NV, K, S>(p, &self.g, s, x, wj, bj, min(MR, left), oj, d, q0);
                    j0 += MR;
                }
            }
        }
    }
}

/// Depthwise (`groups == c_in`, multiplier `c_out / c_in`): per input channel, its grid in
/// scratch, then each of its output channels in tiles of `DW_NV` vectors.
///
/// # Safety
/// Contract of `conv2d` with weights from [`pack_depthwise`] and `scratch` of
/// `p.scratch_len()`; `p.groups == p.c_in`.
#[inline(always)]
pub(crate) unsafe fn depthwise<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
) {
    let tw = DW_NV * V::LANES;
    const { assert!(DW_NV * 16 <= MAX_TW) };
    let mult = p.c_out / p.c_in;
    let ksz = p.kh * p.kw;
    let plane = p.h_out * p.w_out;
    let g = Grid::of(p);
    let nq = p.h_out * g.wq;
    let s = Src {
        cin: 1,
        cin_total: 1,
        ic0: 0,
        cs: g.channel_len(),
        pl: g.phase_len(),
        wq: g.wq,
        ws: 1,
    };
    let d = Dst {
        first: true,
        act: p.act,
        plane,
        nq,
        wq: g.wq,
        w_out: p.w_out,
    };
    // SAFETY: one channel's grid plus slack fits the scratch; tiles read within it (see
    // `tile`); output channel `oc < c_out` is written at its valid pixels only.
    unsafe {
        for c in 0..p.c_in {
            fill_grid::<V>(p, input, c, 1, (0, g.hq, g.hq), scratch);
            for oc in c * mult..(c + 1) * mult {
                let mut q0 = 0;
                while q0 < nq {
                    tile::<V, 1, DW_NV, 0, 0>(
                        p,
                        &g,
                        s,
                        scratch.add(q0),
                        w.add(oc * ksz),
                        bias.add(oc),
                        1,
                        output.add(oc * plane),
                        d,
                        q0,
                    );
                    q0 += tw;
                }
            }
        }
    }
}
