//! Winograd convolution F(2,3), F(4,3) (√2 points) and F(6,3) for 3×3 stride-1 ungrouped convs:
//! weight transform (build time, f64), input transform, per-position GEMM, fused output transform.
//!
//! Data flow per block of `NB` output tiles (an m×m output tile reads an (m+2)×(m+2) input tile):
//! 1. input transform `Bᵀ d B` of every tile of the block and every input channel into
//!    `V[position][c_in][NB]` (tiles contiguous, so vector lanes hold tiles). F(2,3) and F(4,3)
//!    gather the lanes of each run of tiles in one tile row as whole vectors, deinterleaving
//!    loads from a zero-padded copy of the block's rows (`gather_row`, runs joined with
//!    [`Simd::splice`]); F(6,3), and maps too narrow for long runs, gather lane by lane, with
//!    zero padding and out-of-image tiles handled there;
//! 2. per block of [`MR`] output channels: for each transform position a GEMM
//!    `U[position] (MR × c_in) · V[position] (c_in × NB)` into `M[position][MR][NB]`, then the
//!    output transform `Aᵀ M A` with bias and activation fused, writing only valid pixels.
//!
//! `U = G g Gᵀ` is computed in f64 and rounded once to f32, packed `[oc block][position][c_in][MR]`
//! so the GEMM microkernel reads consecutive broadcasts. All temporaries live in the caller's
//! scratch ([`scratch_len`]): one tile block of `V`, one `M` and two small staging areas.

use crate::common::{fill_row, prefetch, zero_row};
use crate::conv::ConvParams;
use crate::simd::Simd;
use crate::{check_isa, check_len, Act, Isa, KernelError};

/// Output channels per GEMM microkernel row block (U is packed in blocks of this many rows).
pub const MR: usize = 8;
/// Tiles per block are a multiple of this (the widest vector), so every ISA's lanes divide it.
const NB_ALIGN: usize = 16;
/// Upper bound on tiles per block.
const NB_MAX: usize = 64;
/// Target size (f32) of one block of transformed input `V` (1 MiB: half of this CPU's L2).
const V_BUDGET: usize = 256 * 1024;
/// Staging area for one vector's worth of gathered tiles: at most 8×8 positions × 16 lanes.
const STAGE: usize = 64 * NB_ALIGN;

/// Output tile size m of F(m×m, 3×3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WinogradTile {
    /// F(2,3): 4×4 input tiles, 2.25× fewer multiplies than direct.
    F2,
    /// F(4,3) with points {0, ±√2/2, ±√2, ∞}: 6×6 input tiles, 4×.
    F4,
    /// F(6,3) with points {0, ±1, ±2, ±1/2, ∞}: 8×8 input tiles, 5.06×.
    F6,
}

impl WinogradTile {
    /// All tile sizes, smallest first.
    pub const ALL: [WinogradTile; 3] = [WinogradTile::F2, WinogradTile::F4, WinogradTile::F6];
    /// Output tile side m.
    pub const fn m(self) -> usize {
        match self {
            WinogradTile::F2 => 2,
            WinogradTile::F4 => 4,
            WinogradTile::F6 => 6,
        }
    }
    /// Input tile side m + 2.
    pub const fn t(self) -> usize {
        self.m() + 2
    }
    /// Transform positions (m + 2)².
    pub const fn positions(self) -> usize {
        self.t() * self.t()
    }
    /// Short name for reports: "winograd-f2", "winograd-f4", "winograd-f6".
    pub const fn name(self) -> &'static str {
        match self {
            WinogradTile::F2 => "winograd-f2",
            WinogradTile::F4 => "winograd-f4",
            WinogradTile::F6 => "winograd-f6",
        }
    }
}

/// Whether `p` can run as Winograd: 3×3 kernel, stride 1, groups 1 (any padding).
pub const fn supported(p: &ConvParams) -> bool {
    p.kh == 3 && p.kw == 3 && p.sh == 1 && p.sw == 1 && p.groups == 1
}

/// Output tiles (rows, columns).
const fn tiles(p: &ConvParams, t: WinogradTile) -> (usize, usize) {
    (p.h_out.div_ceil(t.m()), p.w_out.div_ceil(t.m()))
}

/// Output-channel blocks of [`MR`].
const fn oc_blocks(p: &ConvParams) -> usize {
    p.c_out.div_ceil(MR)
}

/// Tiles per block: as many as keep `V` within 1 MiB (half of this CPU's L2; a multiple of 16 in [16, 64]),
/// but no more than the image has (rounded up to 16).
pub const fn tiles_per_block(p: &ConvParams, t: WinogradTile) -> usize {
    let per_tile = t.positions() * if p.c_in == 0 { 1 } else { p.c_in };
    let mut nb = V_BUDGET / per_tile / NB_ALIGN * NB_ALIGN;
    if nb < NB_ALIGN {
        nb = NB_ALIGN;
    }
    if nb > NB_MAX {
        nb = NB_MAX;
    }
    let (th, tw) = tiles(p, t);
    let all = (th * tw).div_ceil(NB_ALIGN) * NB_ALIGN;
    if all < nb && all > 0 {
        all
    } else {
        nb
    }
}

/// Whether one tile block of transformed input (`positions × c_in × tiles_per_block`) stays
/// within the cache budget; when it does not (large `c_in`, since a block has at least 16
/// tiles), every output-channel block re-reads it from L3 and Winograd loses to direct.
pub const fn block_fits_cache(p: &ConvParams, t: WinogradTile) -> bool {
    t.positions() * p.c_in * tiles_per_block(p, t) <= V_BUDGET
}

/// Length of the packed transformed weights: `oc_blocks × positions × c_in × MR`.
pub const fn packed_weight_len(p: &ConvParams, t: WinogradTile) -> usize {
    oc_blocks(p) * t.positions() * p.c_in * MR
}

/// f32 of scratch [`winograd_conv2d`] needs: one block of `V` (positions × c_in × NB), one of `M`
/// (positions × MR × NB), two staging areas of 64 × 16 and, for F(2,3) and F(4,3), the
/// zero-padded rows of one channel that the vector gather reads (`gather_plane`).
pub const fn scratch_len(p: &ConvParams, t: WinogradTile) -> usize {
    let nb = tiles_per_block(p, t);
    let (wp, rows) = gather_plane(p, t);
    let plane = if vector_gather(t.m()) { wp * rows } else { 0 };
    t.positions() * (p.c_in + MR) * nb + 2 * STAGE + plane
}

/// Whether the input transform gathers whole vectors: with `m` a power of two (F2, F4) the
/// lanes of one tile row, `m` columns apart, are a deinterleave of consecutive loads
/// ([`gather_row`]). F(6,3) gathers lane by lane.
const fn vector_gather(m: usize) -> bool {
    m == 2 || m == 4
}

/// Whether [`winograd_conv2d`] gathers and scatters the tiles of `p` as whole vectors on an ISA
/// of `lanes` f32 lanes: F(2,3) and F(4,3), when a tile row holds at least a third of a vector
/// (shorter runs need more joins than the vector loads save). Otherwise lane by lane. The cost
/// model prices the two paths apart.
pub const fn gathers_vectors(p: &ConvParams, t: WinogradTile, lanes: usize) -> bool {
    vector_gather(t.m()) && lanes > 1 && 3 * p.w_out.div_ceil(t.m()) >= lanes
}

/// The zero-padded copy of one channel's input rows that a tile block reads, for the vector
/// gather: (row length, rows). Plane column `NB_ALIGN · m + c` holds padded column `c` (input
/// column `c - pad_left`, zero outside the image): the left margin lets a run of tiles that
/// starts at lane `k0` be gathered from `k0` tiles before its first one, and the right end
/// covers the loads of a run that starts at the last tile (`(NB_ALIGN + 1) · m` columns on).
/// Rows: the tile rows a block of `tiles_per_block` tiles spans, `m` rows each, plus 2.
const fn gather_plane(p: &ConvParams, t: WinogradTile) -> (usize, usize) {
    let (_, tw) = tiles(p, t);
    let tw = if tw == 0 { 1 } else { tw };
    let m = t.m();
    let nb = tiles_per_block(p, t);
    ((2 * NB_ALIGN + tw + 1) * m, ((nb - 1) / tw + 2) * m + 2)
}

/// Columns `4k`, `4k + 2` and `4k + 1`, `4k + 3` of the `4 LANES` floats at `s`.
///
/// # Safety
/// `s` valid for `4 LANES` reads; `V`'s ISA available.
#[inline(always)]
unsafe fn quad<V: Simd>(s: *const f32) -> ((V, V), (V, V)) {
    let l = V::LANES;
    // SAFETY: four loads of `l` floats from `s`.
    unsafe {
        let (e01, o01) = V::deinterleave(V::load(s), V::load(s.add(l)));
        let (e23, o23) = V::deinterleave(V::load(s.add(2 * l)), V::load(s.add(3 * l)));
        (V::deinterleave(e01, e23), V::deinterleave(o01, o23))
    }
}

/// Stores `M` vectors (element `j` of every lane's tile row, `M` = 2 or 4) interleaved: the
/// `M · LANES` floats at `d` hold lane `k`'s `M` elements at `M k .. M k + M` (the tiles' row
/// as it lies in the output). F(4,3): two levels of interleave.
///
/// # Safety
/// `d` valid for `M · LANES` writes; `M` is 2 or 4; `V`'s ISA available.
#[inline(always)]
unsafe fn interleave_row<V: Simd, const M: usize>(v: &[V; M], d: *mut f32) {
    let l = V::LANES;
    // SAFETY: `M` stores of `l` floats from `d`.
    unsafe {
        if M == 2 {
            let (a, b) = V::interleave(v[0], v[1 % M]);
            a.store(d);
            b.store(d.add(l));
        } else {
            let (p0, p1) = V::interleave(v[0], v[2 % M]);
            let (q0, q1) = V::interleave(v[1 % M], v[3 % M]);
            let (r0, r1) = V::interleave(p0, q0);
            let (r2, r3) = V::interleave(p1, q1);
            r0.store(d);
            r1.store(d.add(l));
            r2.store(d.add(2 * l));
            r3.store(d.add(3 * l));
        }
    }
}

/// One row of `T = m + 2` transform inputs for `LANES` consecutive tiles of one tile row
/// (`m` = 2 or 4): lane `k`, element `j` is `s[m k + j]`. F(2,3): a deinterleave of two loads
/// gives columns `2k`, `2k + 1`, and of two loads 2 on, `2k + 2`, `2k + 3`. F(4,3): two
/// levels of deinterleave of four loads give `4k .. 4k + 3`, and of four loads 4 on, `4k + 4`,
/// `4k + 5` (the compiler drops the unused halves).
///
/// # Safety
/// `s` valid for `m · (LANES + 1)` reads; `M` is 2 or 4 and `T == M + 2`; `V`'s ISA available.
#[inline(always)]
unsafe fn gather_row<V: Simd, const T: usize, const M: usize>(s: *const f32) -> [V; T] {
    let l = V::LANES;
    // SAFETY: the loads read `s[0 .. m (l + 1))` (F4: 4 l floats from 0 and from 4).
    unsafe {
        let mut out = [V::zero(); T];
        if M == 2 {
            let (c0, c1) = V::deinterleave(V::load(s), V::load(s.add(l)));
            let (c2, c3) = V::deinterleave(V::load(s.add(2)), V::load(s.add(2 + l)));
            let c = [c0, c1, c2, c3];
            out[..T.min(4)].copy_from_slice(&c[..T.min(4)]);
        } else {
            let ((c0, c2), (c1, c3)) = quad::<V>(s);
            let ((c4, _), (c5, _)) = quad::<V>(s.add(4));
            let c = [c0, c1, c2, c3, c4, c5];
            out[..T.min(6)].copy_from_slice(&c[..T.min(6)]);
        }
        out
    }
}

/// Multiplies in the transformed domain (the GEMMs), counting whole tiles:
/// `tiles × positions × c_in × c_out`.
pub const fn transformed_macs(p: &ConvParams, t: WinogradTile) -> u64 {
    let (th, tw) = tiles(p, t);
    (th * tw) as u64 * t.positions() as u64 * p.c_in as u64 * p.c_out as u64
}

// ---------------------------------------------------------------------------------------------
// Transform matrices (ALGORITHMS.md §3). G in f64 (weights are transformed at build time in
// f64); Bᵀ and Aᵀ are kept for the tests, the run-time code uses their written-out form (`Xf`).

const S2: f64 = core::f64::consts::SQRT_2;

const G2: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];
#[cfg(test)]
const BT2: [[f64; 4]; 4] = [
    [1.0, 0.0, -1.0, 0.0],
    [0.0, 1.0, 1.0, 0.0],
    [0.0, -1.0, 1.0, 0.0],
    [0.0, 1.0, 0.0, -1.0],
];
#[cfg(test)]
const AT2: [[f64; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]];

const G4: [[f64; 3]; 6] = [
    [1.0, 0.0, 0.0],
    [-2.0 / 3.0, -S2 / 3.0, -1.0 / 3.0],
    [-2.0 / 3.0, S2 / 3.0, -1.0 / 3.0],
    [1.0 / 6.0, S2 / 6.0, 1.0 / 3.0],
    [1.0 / 6.0, -S2 / 6.0, 1.0 / 3.0],
    [0.0, 0.0, 1.0],
];
#[cfg(test)]
const BT4: [[f64; 6]; 6] = [
    [1.0, 0.0, -2.5, 0.0, 1.0, 0.0],
    [0.0, -S2, -2.0, S2 / 2.0, 1.0, 0.0],
    [0.0, S2, -2.0, -S2 / 2.0, 1.0, 0.0],
    [0.0, -S2 / 2.0, -0.5, S2, 1.0, 0.0],
    [0.0, S2 / 2.0, -0.5, -S2, 1.0, 0.0],
    [0.0, 1.0, 0.0, -2.5, 0.0, 1.0],
];
#[cfg(test)]
const AT4: [[f64; 6]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, S2 / 2.0, -S2 / 2.0, S2, -S2, 0.0],
    [0.0, 0.5, 0.5, 2.0, 2.0, 0.0],
    [0.0, S2 / 4.0, -S2 / 4.0, 2.0 * S2, -2.0 * S2, 1.0],
];

const G6: [[f64; 3]; 8] = [
    [1.0, 0.0, 0.0],
    [-2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0],
    [-2.0 / 9.0, 2.0 / 9.0, -2.0 / 9.0],
    [1.0 / 90.0, 1.0 / 45.0, 2.0 / 45.0],
    [1.0 / 90.0, -1.0 / 45.0, 2.0 / 45.0],
    [32.0 / 45.0, 16.0 / 45.0, 8.0 / 45.0],
    [32.0 / 45.0, -16.0 / 45.0, 8.0 / 45.0],
    [0.0, 0.0, 1.0],
];
#[cfg(test)]
const BT6: [[f64; 8]; 8] = [
    [1.0, 0.0, -21.0 / 4.0, 0.0, 21.0 / 4.0, 0.0, -1.0, 0.0],
    [0.0, 1.0, 1.0, -17.0 / 4.0, -17.0 / 4.0, 1.0, 1.0, 0.0],
    [0.0, -1.0, 1.0, 17.0 / 4.0, -17.0 / 4.0, -1.0, 1.0, 0.0],
    [0.0, 0.5, 0.25, -2.5, -1.25, 2.0, 1.0, 0.0],
    [0.0, -0.5, 0.25, 2.5, -1.25, -2.0, 1.0, 0.0],
    [0.0, 2.0, 4.0, -2.5, -5.0, 0.5, 1.0, 0.0],
    [0.0, -2.0, 4.0, 2.5, -5.0, -0.5, 1.0, 0.0],
    [0.0, -1.0, 0.0, 21.0 / 4.0, 0.0, -21.0 / 4.0, 0.0, 1.0],
];
#[cfg(test)]
const AT6: [[f64; 8]; 6] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.25, 0.25, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 0.125, -0.125, 0.0],
    [0.0, 1.0, 1.0, 16.0, 16.0, 1.0 / 16.0, 1.0 / 16.0, 0.0],
    [0.0, 1.0, -1.0, 32.0, -32.0, 1.0 / 32.0, -1.0 / 32.0, 1.0],
];

/// Rounds a matrix to f32.
#[cfg(test)]
const fn to_f32<const R: usize, const C: usize>(m: &[[f64; C]; R]) -> [[f32; C]; R] {
    let mut out = [[0.0f32; C]; R];
    let mut r = 0;
    while r < R {
        let mut c = 0;
        while c < C {
            out[r][c] = m[r][c] as f32;
            c += 1;
        }
        r += 1;
    }
    out
}

#[cfg(test)]
const BT2F: [[f32; 4]; 4] = to_f32(&BT2);
#[cfg(test)]
const AT2F: [[f32; 4]; 2] = to_f32(&AT2);
#[cfg(test)]
const BT4F: [[f32; 6]; 6] = to_f32(&BT4);
#[cfg(test)]
const AT4F: [[f32; 6]; 4] = to_f32(&AT4);
#[cfg(test)]
const BT6F: [[f32; 8]; 8] = to_f32(&BT6);
#[cfg(test)]
const AT6F: [[f32; 8]; 6] = to_f32(&AT6);

/// `G g Gᵀ` in f64 for one 3×3 kernel `g` (row-major), flattened row-major (T×T).
fn transform_kernel<const T: usize>(gm: &[[f64; 3]; T], g: &[f32], out: &mut [f64]) {
    let mut tmp = [[0.0f64; 3]; T];
    for (i, row) in tmp.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| gm[i][k] * g[k * 3 + j] as f64).sum();
        }
    }
    for i in 0..T {
        for j in 0..T {
            out[i * T + j] = (0..3).map(|k| tmp[i][k] * gm[j][k]).sum();
        }
    }
}

/// Build time: transforms PyTorch OIHW 3×3 weights into `U = G g Gᵀ` (f64, rounded once to f32),
/// packed `[oc / MR][position][c_in][oc % MR]` with zero rows past `c_out`
/// (`out.len() == packed_weight_len(p, t)`).
pub fn pack_weights(
    p: &ConvParams,
    t: WinogradTile,
    oihw: &[f32],
    out: &mut [f32],
) -> Result<(), KernelError> {
    p.validate()?;
    if !supported(p) {
        return Err(KernelError::BadParams(
            "winograd: needs a 3x3 stride-1 conv with groups 1",
        ));
    }
    check_len("conv weights (OIHW)", p.weight_len(), oihw.len())?;
    check_len(
        "packed winograd weights",
        packed_weight_len(p, t),
        out.len(),
    )?;
    out.fill(0.0);
    let np = t.positions();
    let mut u = [0.0f64; 64];
    for oc in 0..p.c_out {
        let (ob, r) = (oc / MR, oc % MR);
        for ic in 0..p.c_in {
            let g = &oihw[(oc * p.c_in + ic) * 9..][..9];
            match t {
                WinogradTile::F2 => transform_kernel(&G2, g, &mut u),
                WinogradTile::F4 => transform_kernel(&G4, g, &mut u),
                WinogradTile::F6 => transform_kernel(&G6, g, &mut u),
            }
            for (pos, &v) in u[..np].iter().enumerate() {
                out[((ob * np + pos) * p.c_in + ic) * MR + r] = v as f32;
            }
        }
    }
    Ok(())
}

dispatch! {
    /// Winograd convolution + bias + activation (see the module docs and [`ConvParams`]).
    ///
    /// # Safety
    /// `p` is valid ([`ConvParams::validate`]) and [`supported`]; `input` is valid for
    /// `p.input_len()` reads, `packed_u` for [`packed_weight_len`] reads (from
    /// [`pack_weights`] with the same `t`), `bias` for `p.c_out` reads, `output` for
    /// `p.output_len()` writes, `scratch` for [`scratch_len`] reads and writes; `output` and
    /// `scratch` overlap neither each other nor the other buffers; `isa` is available on this
    /// CPU (an ISA of another architecture runs the scalar twin).
    pub unsafe fn winograd_conv2d(p: &ConvParams, t: WinogradTile, input: *const f32, packed_u: *const f32, bias: *const f32, output: *mut f32, scratch: *mut f32) => winograd_impl
}

dispatch! {
    /// [`winograd_conv2d`] for the output tiles `tiles.0..tiles.1` only (row-major over the
    /// map's `ceil(h_out / m) × ceil(w_out / m)` tiles; the end is clamped), every output
    /// channel.
    ///
    /// # Safety
    /// The contract of [`winograd_conv2d`].
    pub unsafe fn winograd_conv2d_tiles(p: &ConvParams, t: WinogradTile, tiles: (usize, usize), input: *const f32, packed_u: *const f32, bias: *const f32, output: *mut f32, scratch: *mut f32) => winograd_tiles_impl
}

/// Output tiles per unit of a part's share (a multiple of every ISA's lane count, so no part
/// computes a partial vector of tiles that another part completes).
const PART_TILES: usize = 16;

/// Part `part` of `parts` of [`winograd_conv2d`]. When the map has at least one
/// group of 16 output tiles (`PART_TILES`) per part, each part computes its `part_range` of the
/// tiles for every output channel (its own input transforms: nothing is transformed twice).
/// Otherwise each part computes the output channels of [`crate::conv::channel_part`] and
/// transforms the whole input into its own scratch (see [`crate::conv::conv2d_part`]).
/// C1 (F6, 100 tiles) on 2 threads: 0.64 ms by channels (1.2× one thread), 0.45 ms by tiles
/// (1.7×; docs/BENCHMARKS.md, eleventh session).
///
/// # Safety
/// The contract of [`winograd_conv2d`] for `p`, for each part; `scratch` is this part's own.
#[allow(clippy::too_many_arguments)]
pub unsafe fn winograd_conv2d_part(
    isa: Isa,
    p: &ConvParams,
    t: WinogradTile,
    (part, parts): (usize, usize),
    input: *const f32,
    packed_u: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
) {
    const { assert!(MR == 8) };
    let (th, tw) = tiles(p, t);
    if (th * tw).div_ceil(PART_TILES) >= parts.max(1) {
        let range = crate::part_range(th * tw, PART_TILES, part, parts);
        if range.0 < range.1 {
            // SAFETY: forwarded contract; a tile range of the same conv.
            unsafe {
                winograd_conv2d_tiles(isa, p, t, range, input, packed_u, bias, output, scratch)
            };
        }
        return;
    }
    let (o0, o1) = crate::conv::channel_part(p.c_out, part, parts);
    if o0 >= o1 {
        return;
    }
    let sub = ConvParams {
        c_out: o1 - o0,
        ..*p
    };
    // SAFETY: U is packed `[oc / MR][position][c_in][MR]` and `o0` is a multiple of `MR`, so
    // channels `o0..o1` are the packed weights of `sub` at the offset below; bias and output
    // planes likewise; the scratch length does not depend on `c_out`.
    unsafe {
        winograd_conv2d(
            isa,
            &sub,
            t,
            input,
            packed_u.add(o0 * t.positions() * p.c_in),
            bias.add(o0),
            output.add(o0 * p.h_out * p.w_out),
            scratch,
        )
    }
}

/// Safe [`winograd_conv2d`]: checks parameters, slice lengths and ISA availability.
#[allow(clippy::too_many_arguments)]
pub fn winograd_conv2d_checked(
    isa: Isa,
    p: &ConvParams,
    t: WinogradTile,
    input: &[f32],
    packed_u: &[f32],
    bias: &[f32],
    output: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), KernelError> {
    p.validate()?;
    if !supported(p) {
        return Err(KernelError::BadParams(
            "winograd: needs a 3x3 stride-1 conv with groups 1",
        ));
    }
    check_len("input", p.input_len(), input.len())?;
    check_len("packed_u", packed_weight_len(p, t), packed_u.len())?;
    check_len("bias", p.c_out, bias.len())?;
    check_len("output", p.output_len(), output.len())?;
    check_len("scratch", scratch_len(p, t), scratch.len())?;
    check_isa(isa)?;
    // SAFETY: lengths checked above; the `&mut` slices cannot alias each other or the shared
    // ones; params validated and supported; ISA available.
    unsafe {
        winograd_conv2d(
            isa,
            p,
            t,
            input.as_ptr(),
            packed_u.as_ptr(),
            bias.as_ptr(),
            output.as_mut_ptr(),
            scratch.as_mut_ptr(),
        )
    };
    Ok(())
}

/// # Safety
/// Contract of [`winograd_conv2d`], with `V` the ISA's vector type.
#[inline(always)]
unsafe fn winograd_impl<V: Simd>(
    p: &ConvParams,
    t: WinogradTile,
    input: *const f32,
    u: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
) {
    // SAFETY: forwarded contract.
    unsafe { winograd_tiles_impl::<V>(p, t, (0, usize::MAX), input, u, bias, output, scratch) }
}

/// # Safety
/// Contract of [`winograd_conv2d_tiles`], with `V` the ISA's vector type.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn winograd_tiles_impl<V: Simd>(
    p: &ConvParams,
    t: WinogradTile,
    tiles: (usize, usize),
    input: *const f32,
    u: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
) {
    let b: Bufs = (input, u, bias, output, scratch);
    // SAFETY: forwarded contract.
    unsafe {
        match t {
            WinogradTile::F2 => run::<V, X2, 4, 2>(p, t, tiles, b),
            WinogradTile::F4 => run::<V, X4, 6, 4>(p, t, tiles, b),
            WinogradTile::F6 => run::<V, X6, 8, 6>(p, t, tiles, b),
        }
    }
}

/// The run-time 1-D transforms of one tile size, written out (what `Bᵀ x` and `Aᵀ x` compute
/// for the matrices above; `hand_transforms_match_the_matrices` checks them against those).
trait Xf<const T: usize, const M: usize> {
    /// `Bᵀ x`.
    ///
    /// # Safety
    /// The CPU supports `V`'s ISA.
    unsafe fn bt<V: Simd>(x: &[V; T]) -> [V; T];
    /// `Aᵀ x`.
    ///
    /// # Safety
    /// The CPU supports `V`'s ISA.
    unsafe fn at<V: Simd>(x: &[V; T]) -> [V; M];
}

/// F(2,3) transforms.
struct X2;
/// F(4,3) transforms (√2 points).
struct X4;
/// F(6,3) transforms.
struct X6;

/// `a - b`.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn sub<V: Simd>(a: V, b: V) -> V {
    // SAFETY: arithmetic only; the caller guarantees the ISA.
    unsafe { V::fma(V::splat(-1.0), b, a) }
}

/// `k * x + y`.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn kx<V: Simd>(k: f32, x: V, y: V) -> V {
    // SAFETY: arithmetic only; the caller guarantees the ISA.
    unsafe { V::fma(V::splat(k), x, y) }
}

impl Xf<4, 2> for X2 {
    #[inline(always)]
    unsafe fn bt<V: Simd>(x: &[V; 4]) -> [V; 4] {
        // SAFETY: arithmetic only; the caller guarantees the ISA.
        unsafe {
            [
                sub(x[0], x[2]),
                V::add(x[1], x[2]),
                sub(x[2], x[1]),
                sub(x[1], x[3]),
            ]
        }
    }
    #[inline(always)]
    unsafe fn at<V: Simd>(x: &[V; 4]) -> [V; 2] {
        // SAFETY: arithmetic only; the caller guarantees the ISA.
        unsafe { [V::add(V::add(x[0], x[1]), x[2]), sub(sub(x[1], x[2]), x[3])] }
    }
}

const S2F: f32 = core::f32::consts::SQRT_2;

impl Xf<6, 4> for X4 {
    #[inline(always)]
    unsafe fn bt<V: Simd>(x: &[V; 6]) -> [V; 6] {
        // SAFETY: arithmetic only; the caller guarantees the ISA.
        unsafe {
            let a = kx(-2.0, x[2], x[4]); // x4 - 2 x2
            let b = kx(-S2F, x[1], V::mul(V::splat(S2F / 2.0), x[3])); // -√2 x1 + √2/2 x3
            let c = kx(-0.5, x[2], x[4]); // x4 - x2 / 2
            let d = kx(-S2F / 2.0, x[1], V::mul(V::splat(S2F), x[3])); // -√2/2 x1 + √2 x3
            [
                V::add(kx(-2.5, x[2], x[0]), x[4]),
                V::add(a, b),
                sub(a, b),
                V::add(c, d),
                sub(c, d),
                V::add(kx(-2.5, x[3], x[1]), x[5]),
            ]
        }
    }
    #[inline(always)]
    unsafe fn at<V: Simd>(x: &[V; 6]) -> [V; 4] {
        // SAFETY: arithmetic only; the caller guarantees the ISA.
        unsafe {
            let (p12, m12) = (V::add(x[1], x[2]), sub(x[1], x[2]));
            let (p34, m34) = (V::add(x[3], x[4]), sub(x[3], x[4]));
            [
                V::add(V::add(x[0], p12), p34),
                kx(S2F / 2.0, m12, V::mul(V::splat(S2F), m34)),
                kx(0.5, p12, V::mul(V::splat(2.0), p34)),
                kx(S2F / 4.0, m12, kx(2.0 * S2F, m34, x[5])),
            ]
        }
    }
}

impl Xf<8, 6> for X6 {
    #[inline(always)]
    unsafe fn bt<V: Simd>(x: &[V; 8]) -> [V; 8] {
        // SAFETY: arithmetic only; the caller guarantees the ISA.
        unsafe {
            let a = kx(-4.25, x[4], V::add(x[2], x[6])); // x2 + x6 - 17/4 x4
            let b = kx(-4.25, x[3], V::add(x[1], x[5])); // x1 + x5 - 17/4 x3
            let c = kx(0.25, x[2], kx(-1.25, x[4], x[6])); // x2/4 - 5/4 x4 + x6
            let d = kx(0.5, x[1], kx(-2.5, x[3], V::mul(V::splat(2.0), x[5])));
            let e = kx(4.0, x[2], kx(-5.0, x[4], x[6])); // 4 x2 - 5 x4 + x6
            let f = kx(2.0, x[1], kx(-2.5, x[3], V::mul(V::splat(0.5), x[5])));
            [
                kx(5.25, sub(x[4], x[2]), sub(x[0], x[6])),
                V::add(a, b),
                sub(a, b),
                V::add(c, d),
                sub(c, d),
                V::add(e, f),
                sub(e, f),
                kx(5.25, sub(x[3], x[5]), sub(x[7], x[1])),
            ]
        }
    }
    #[inline(always)]
    unsafe fn at<V: Simd>(x: &[V; 8]) -> [V; 6] {
        // SAFETY: arithmetic only; the caller guarantees the ISA.
        unsafe {
            let (a, b) = (V::add(x[1], x[2]), sub(x[1], x[2]));
            let (c, d) = (V::add(x[3], x[4]), sub(x[3], x[4]));
            let (e, f) = (V::add(x[5], x[6]), sub(x[5], x[6]));
            [
                V::add(V::add(x[0], a), V::add(c, e)),
                kx(2.0, d, kx(0.5, f, b)),
                kx(4.0, c, kx(0.25, e, a)),
                kx(8.0, d, kx(0.125, f, b)),
                kx(16.0, c, kx(1.0 / 16.0, e, a)),
                kx(32.0, d, kx(1.0 / 32.0, f, V::add(b, x[7]))),
            ]
        }
    }
}

/// Vector activation.
///
/// # Safety
/// The CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn act_v<V: Simd>(act: Act, x: V) -> V {
    // SAFETY: arithmetic only; the caller guarantees the ISA.
    unsafe {
        match act {
            Act::None => x,
            Act::Relu => V::max(x, V::zero()),
            Act::Relu6 => V::min(V::max(x, V::zero()), V::splat(6.0)),
        }
    }
}

/// The buffers of one call: input, packed U, bias, output, scratch.
type Bufs = (*const f32, *const f32, *const f32, *mut f32, *mut f32);

/// The convolution of output tiles `first..end` (clamped to the map's) for one tile size
/// (T = m + 2).
///
/// # Safety
/// Contract of [`winograd_conv2d`]; `T`, `M` and the matrices belong to `t`.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn run<V: Simd, X: Xf<T, M>, const T: usize, const M: usize>(
    p: &ConvParams,
    t: WinogradTile,
    (first, end): (usize, usize),
    (input, u, bias, output, scratch): Bufs,
) {
    let l = V::LANES;
    let np = T * T;
    let (th, tw) = tiles(p, t);
    let ntiles = core::cmp::min(th * tw, end);
    let nb = tiles_per_block(p, t);
    let c_in = p.c_in;
    let plane_in = p.h_in * p.w_in;
    let plane_out = p.h_out * p.w_out;
    // Scratch layout: V [np][c_in][nb] | M [np][MR][nb] | stage_in | stage_out.
    let vbuf = scratch;
    // SAFETY (whole body): every offset below stays inside the regions of `scratch_len`
    // (V: np*c_in*nb, M: np*MR*nb, two stages of STAGE >= T*T*16), the input
    // (rows < h_in, columns < w_in, channels < c_in), the packed U (oc blocks < oc_blocks,
    // positions < np, channels < c_in, rows < MR), bias (< c_out) and output (channels < c_out,
    // rows < h_out, columns < w_out), as the loop bounds show.
    unsafe {
        let mbuf = vbuf.add(np * c_in * nb);
        let stage_in = mbuf.add(np * MR * nb);
        let stage_out = stage_in.add(STAGE);
        let plane = stage_out.add(STAGE);
        let (wp, _) = gather_plane(p, t);
        let margin = NB_ALIGN * M;
        // Lanes `m` columns apart are gathered as whole vectors (F2, F4) when the runs of one
        // tile row are long enough to pay for the joins (at least a third of a vector).
        let vec_gather = gathers_vectors(p, t, l);
        let mut t0 = first;
        while t0 < ntiles {
            let bt_n = core::cmp::min(nb, ntiles - t0);
            // GEMM width: the block's tiles rounded up to whole vectors (nb is a multiple of 16).
            let width = bt_n.div_ceil(l) * l;
            // The tile rows the block's lanes span (lanes past the block's tiles included).
            let ty_a = t0 / tw;
            let prows = ((t0 + width - 1) / tw - ty_a + 1) * M + 2;
            // 1. Input transform, `l` tiles at a time (one per lane).
            for ic in 0..c_in {
                let src = input.add(ic * plane_in);
                if vec_gather {
                    // The block's rows of this channel, zero-padded (margins and rows outside
                    // the image are zero; see `gather_plane`). The zeros are the same for
                    // every channel: after the first, only the image columns are copied.
                    let lo = core::cmp::min(margin + p.pad_left, wp);
                    let hi = core::cmp::max(core::cmp::min(lo + p.w_in, wp), lo);
                    for r in 0..prows {
                        let row = plane.add(r * wp);
                        let y = (ty_a * M + r) as isize - p.pad_top as isize;
                        let inside = y >= 0 && (y as usize) < p.h_in;
                        let srow = src.add(if inside { y as usize * p.w_in } else { 0 });
                        if ic == 0 {
                            if inside {
                                fill_row::<V>(row, wp, lo, hi, srow, 1);
                            } else {
                                zero_row::<V>(wp, row);
                            }
                        } else if inside {
                            fill_row::<V>(row.add(lo), hi - lo, 0, hi - lo, srow, 1);
                        }
                    }
                }
                let mut g = 0;
                while g < width {
                    let mut d = [[V::zero(); T]; T];
                    if vec_gather {
                        // Per run of lanes in one tile row: gather as if lane 0 were `k0`
                        // tiles before the run's first, and keep lanes `k0..` of it.
                        let mut k0 = 0;
                        while k0 < l {
                            let tile = t0 + g + k0;
                            let (ty, tx) = (tile / tw, tile % tw);
                            let n = core::cmp::min(tw - tx, l - k0);
                            let base = plane.add((ty - ty_a) * M * wp + margin + tx * M - k0 * M);
                            for i in 0..T {
                                let row = gather_row::<V, T, M>(base.add(i * wp));
                                for j in 0..T {
                                    d[i][j] = if k0 == 0 {
                                        row[j]
                                    } else {
                                        V::splice(d[i][j], row[j], k0)
                                    };
                                }
                            }
                            k0 += n;
                        }
                    }
                    for lane in 0..if vec_gather { 0 } else { l } {
                        let tile = t0 + g + lane;
                        let base = stage_in.add(lane);
                        if tile >= t0 + bt_n {
                            for k in 0..np {
                                *base.add(k * l) = 0.0;
                            }
                            continue;
                        }
                        let (ty, tx) = (tile / tw, tile % tw);
                        let y0 = (ty * t.m()) as isize - p.pad_top as isize;
                        let x0 = (tx * t.m()) as isize - p.pad_left as isize;
                        let inside = y0 >= 0
                            && x0 >= 0
                            && y0 as usize + T <= p.h_in
                            && x0 as usize + T <= p.w_in;
                        if inside {
                            // Fast path: the whole tile is in the image (fixed-size copies).
                            let tl = src.add(y0 as usize * p.w_in + x0 as usize);
                            for i in 0..T {
                                let row = tl.add(i * p.w_in);
                                for j in 0..T {
                                    *base.add((i * T + j) * l) = *row.add(j);
                                }
                            }
                            continue;
                        }
                        for i in 0..T {
                            let iy = y0 + i as isize;
                            let row_ok = iy >= 0 && (iy as usize) < p.h_in;
                            for j in 0..T {
                                let ix = x0 + j as isize;
                                let v = if row_ok && ix >= 0 && (ix as usize) < p.w_in {
                                    *src.add(iy as usize * p.w_in + ix as usize)
                                } else {
                                    0.0
                                };
                                *base.add((i * T + j) * l) = v;
                            }
                        }
                    }
                    if !vec_gather {
                        for i in 0..T {
                            for j in 0..T {
                                d[i][j] = V::load(stage_in.add((i * T + j) * l));
                            }
                        }
                    }
                    // Columns (Bᵀ d), then rows ((Bᵀ d) B).
                    let mut cols = [[V::zero(); T]; T];
                    for j in 0..T {
                        let mut col = [V::zero(); T];
                        for i in 0..T {
                            col[i] = d[i][j];
                        }
                        cols[j] = X::bt::<V>(&col);
                    }
                    for i in 0..T {
                        let mut row = [V::zero(); T];
                        for j in 0..T {
                            row[j] = cols[j][i];
                        }
                        let r = X::bt::<V>(&row);
                        for j in 0..T {
                            r[j].store(vbuf.add(((i * T + j) * c_in + ic) * nb + g));
                        }
                    }
                    g += l;
                }
            }
            // 2. Per output-channel block: GEMM per position, then output transform.
            for ob in 0..oc_blocks(p) {
                for pos in 0..np {
                    let up = u.add((ob * np + pos) * c_in * MR);
                    let vp = vbuf.add(pos * c_in * nb);
                    let mp = mbuf.add(pos * MR * nb);
                    gemm::<V>(c_in, nb, width, up, vp, mp);
                }
                let rows = core::cmp::min(MR, p.c_out - ob * MR);
                for r in 0..rows {
                    let oc = ob * MR + r;
                    let b = V::splat(*bias.add(oc));
                    let dst = output.add(oc * plane_out);
                    let mut g = 0;
                    while g < width {
                        let mut mt = [[V::zero(); T]; T];
                        for i in 0..T {
                            for j in 0..T {
                                mt[i][j] = V::load(mbuf.add(((i * T + j) * MR + r) * nb + g));
                            }
                        }
                        // Columns (Aᵀ m), then rows ((Aᵀ m) A).
                        let mut cols = [[V::zero(); M]; T];
                        for j in 0..T {
                            let mut col = [V::zero(); T];
                            for i in 0..T {
                                col[i] = mt[i][j];
                            }
                            cols[j] = X::at::<V>(&col);
                        }
                        for i in 0..M {
                            let mut row = [V::zero(); T];
                            for j in 0..T {
                                row[j] = cols[j][i];
                            }
                            let y = X::at::<V>(&row);
                            if vec_gather {
                                // Row `i` of every lane's tile, interleaved: lane `k`'s `m`
                                // pixels at `m k` (see `interleave_row`).
                                let mut v = [V::zero(); M];
                                for j in 0..M {
                                    v[j] = act_v::<V>(p.act, V::add(y[j], b));
                                }
                                interleave_row::<V, M>(&v, stage_out.add(i * M * l));
                                continue;
                            }
                            for j in 0..M {
                                act_v::<V>(p.act, V::add(y[j], b))
                                    .store(stage_out.add((i * M + j) * l));
                            }
                        }
                        let lanes = core::cmp::min(l, bt_n.saturating_sub(g));
                        // Runs of lanes in one tile row: each output row of a run is one
                        // contiguous copy (clipped at the right edge and the bottom).
                        let mut k0 = 0;
                        while vec_gather && k0 < lanes {
                            let tile = t0 + g + k0;
                            let (ty, tx) = (tile / tw, tile % tw);
                            let n = core::cmp::min(tw - tx, lanes - k0);
                            let (oy0, ox0) = (ty * M, tx * M);
                            let hh = core::cmp::min(M, p.h_out - oy0);
                            let cnt = core::cmp::min(n * M, p.w_out - ox0);
                            for i in 0..hh {
                                let orow = dst.add((oy0 + i) * p.w_out + ox0);
                                let srow = stage_out.add(i * M * l + k0 * M);
                                fill_row::<V>(orow, cnt, 0, cnt, srow, 1);
                            }
                            k0 += n;
                        }
                        for lane in 0..if vec_gather { 0 } else { lanes } {
                            let tile = t0 + g + lane;
                            let (ty, tx) = (tile / tw, tile % tw);
                            let (oy0, ox0) = (ty * M, tx * M);
                            let hh = core::cmp::min(M, p.h_out - oy0);
                            let ww = core::cmp::min(M, p.w_out - ox0);
                            if hh == M && ww == M {
                                // Fast path: a whole m×m tile (fixed-size copies).
                                for i in 0..M {
                                    let orow = dst.add((oy0 + i) * p.w_out + ox0);
                                    for j in 0..M {
                                        *orow.add(j) = *stage_out.add((i * M + j) * l + lane);
                                    }
                                }
                                continue;
                            }
                            for i in 0..hh {
                                let orow = dst.add((oy0 + i) * p.w_out + ox0);
                                for j in 0..ww {
                                    *orow.add(j) = *stage_out.add((i * M + j) * l + lane);
                                }
                            }
                        }
                        g += l;
                    }
                }
            }
            t0 += bt_n;
        }
    }
}

/// `C[r][0..width] = Σ_k A[k][r] · B[k][0..width]` for `r < MR`: A is packed `[k][MR]`
/// (`a` = U of one position and oc block), B is `[k][ldb]` (V of one position), C is
/// `[MR][ldb]`. `width` is a multiple of `LANES`.
///
/// # Safety
/// `a` valid for `k * MR` reads, `b` for reads at `kk * ldb + [0, width)`, `c` for writes at
/// `r * ldb + [0, width)`; the CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn gemm<V: Simd>(
    k: usize,
    ldb: usize,
    width: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
) {
    let l = V::LANES;
    let mut j = 0;
    // SAFETY: the tiles cover columns `[j, j + NV * LANES) ⊆ [0, width)`.
    unsafe {
        if l >= 8 {
            while j + 2 * l <= width {
                micro::<V, 2>(k, ldb, a, b.add(j), c.add(j));
                j += 2 * l;
            }
        } else {
            while j + 3 * l <= width {
                micro::<V, 3>(k, ldb, a, b.add(j), c.add(j));
                j += 3 * l;
            }
        }
        while j < width {
            micro::<V, 1>(k, ldb, a, b.add(j), c.add(j));
            j += l;
        }
    }
}

/// Prefetch distance (f32) of the transformed weights U in the microkernel: 8 KiB. U is read
/// once per tile block, position after position as one contiguous stream, so inside a whole
/// model (ResNet-18: 0.6–17 MB of U per layer) it comes from memory; the prefetch runs ahead
/// into the next position's U as well. ResNet-18 with layer3 on F(4,3) and layer4 on F(2,3)
/// (`ort_twin profile`, sum of the layers): 2 KiB ahead 11.8 ms, 4 KiB 10.3–10.7, 8 KiB
/// 9.6–10.0, 16 KiB 10.1–10.2; its layer3 convs took 1.02–1.18 ms in the model without a
/// prefetch and take 0.44–0.47 at 8 KiB (0.50–0.53 alone). docs/BENCHMARKS.md, fourteenth
/// session.
const U_PF: usize = 2048;

/// Register tile: MR rows × NV vectors of columns, accumulated over `k`.
///
/// # Safety
/// As [`gemm`], for columns `[0, NV * LANES)`.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn micro<V: Simd, const NV: usize>(
    k: usize,
    ldb: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
) {
    // SAFETY: offsets as documented on `gemm`.
    unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        for kk in 0..k {
            let mut x = [V::zero(); NV];
            for v in 0..NV {
                x[v] = V::load(b.add(kk * ldb + v * V::LANES));
            }
            let ak = a.add(kk * MR);
            if U_PF > 0 {
                prefetch(ak.wrapping_add(U_PF));
            }
            for r in 0..MR {
                let w = V::splat(*ak.add(r));
                for v in 0..NV {
                    acc[r][v] = V::fma(w, x[v], acc[r][v]);
                }
            }
        }
        for r in 0..MR {
            for v in 0..NV {
                acc[r][v].store(c.add(r * ldb + v * V::LANES));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use std::vec;
    use std::vec::Vec;

    /// Max |err| / RMS(want) over finite outputs.
    fn ratio(got: &[f32], want: &[f64]) -> f64 {
        let rms = (want.iter().map(|v| v * v).sum::<f64>() / want.len() as f64).sqrt();
        let max = got
            .iter()
            .zip(want)
            .map(|(&g, &w)| (g as f64 - w).abs())
            .fold(0.0f64, |m, e| if e.is_nan() || e > m { e } else { m });
        if rms > 0.0 {
            max / rms
        } else {
            max
        }
    }

    fn tol(t: WinogradTile) -> f64 {
        match t {
            WinogradTile::F2 => 1e-5,
            WinogradTile::F4 => 1e-4,
            WinogradTile::F6 => 3e-4,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn params(
        c_in: usize,
        c_out: usize,
        h: usize,
        w: usize,
        (pt, pb, pl, pr): (usize, usize, usize, usize),
        act: Act,
    ) -> Option<ConvParams> {
        Some(ConvParams {
            c_in,
            h_in: h,
            w_in: w,
            c_out,
            h_out: out_size(h, 3, 1, pt, pb)?,
            w_out: out_size(w, 3, 1, pl, pr)?,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            pad_top: pt,
            pad_left: pl,
            groups: 1,
            act,
        })
    }

    /// Runs one case on every ISA against the f64 reference and the scalar twin; returns the
    /// worst ratio (max |err| / RMS) seen.
    fn run_case(p: &ConvParams, t: WinogradTile, seed: u64) -> f64 {
        p.validate().unwrap_or_else(|e| panic!("{p:?}: {e:?}"));
        let mut rng = Rng::new(seed);
        let x = rng.vec(p.input_len());
        let w = rng.vec(p.weight_len());
        let b = rng.vec(p.c_out);
        let mut packed = vec![0.0; packed_weight_len(p, t)];
        pack_weights(p, t, &w, &mut packed).unwrap();
        let want = conv_ref(p, &x, &w, &b);
        let mut scratch = vec![f32::NAN; scratch_len(p, t)];
        let mut worst = 0.0f64;
        let mut twin: Vec<f64> = Vec::new();
        for isa in isas() {
            let mut out = vec![f32::NAN; p.output_len()];
            winograd_conv2d_checked(isa, p, t, &x, &packed, &b, &mut out, &mut scratch).unwrap();
            let r = ratio(&out, &want);
            assert!(
                r <= tol(t),
                "{t:?} {} {p:?}: max|err|/RMS {r:e} > {:e}",
                isa.name(),
                tol(t)
            );
            if isa == Isa::Scalar {
                twin = out.iter().map(|&v| v as f64).collect();
            } else {
                let rt = ratio(&out, &twin);
                assert!(
                    rt <= tol(t),
                    "{t:?} {} vs scalar twin {p:?}: {rt:e}",
                    isa.name()
                );
            }
            worst = worst.max(r);
        }
        worst
    }

    /// 1-D check of every transform triple in f64: Aᵀ[(G g) ⊙ (Bᵀ d)] is the correlation.
    fn check_1d<const T: usize, const M: usize>(
        g_m: &[[f64; 3]; T],
        bt: &[[f64; T]; T],
        at: &[[f64; T]; M],
    ) {
        let mut rng = Rng::new(7);
        for _ in 0..20 {
            let g: Vec<f64> = (0..3).map(|_| rng.f32() as f64).collect();
            let d: Vec<f64> = (0..T).map(|_| rng.f32() as f64).collect();
            let gg: Vec<f64> = (0..T)
                .map(|i| (0..3).map(|k| g_m[i][k] * g[k]).sum())
                .collect();
            let bd: Vec<f64> = (0..T)
                .map(|i| (0..T).map(|k| bt[i][k] * d[k]).sum())
                .collect();
            for o in 0..M {
                let y: f64 = (0..T).map(|k| at[o][k] * gg[k] * bd[k]).sum();
                let want: f64 = (0..3).map(|k| g[k] * d[o + k]).sum();
                assert!((y - want).abs() < 1e-12, "T={T} o={o}: {y} vs {want}");
            }
        }
    }

    /// The written-out transforms (scalar twin) against the f32 matrices on random vectors.
    fn check_hand<X: Xf<T, M>, const T: usize, const M: usize>(
        bt: &[[f32; T]; T],
        at: &[[f32; T]; M],
    ) {
        let mut rng = Rng::new(11);
        for _ in 0..50 {
            let mut x = [0.0f32; T];
            for v in x.iter_mut() {
                *v = rng.f32() * 4.0;
            }
            // SAFETY: the scalar twin needs no CPU feature.
            let (yb, ya) = unsafe { (X::bt::<f32>(&x), X::at::<f32>(&x)) };
            for r in 0..T {
                let want: f64 = (0..T).map(|c| bt[r][c] as f64 * x[c] as f64).sum();
                assert!((yb[r] as f64 - want).abs() < 1e-5, "T={T} Bt row {r}");
            }
            for r in 0..M {
                let want: f64 = (0..T).map(|c| at[r][c] as f64 * x[c] as f64).sum();
                assert!((ya[r] as f64 - want).abs() < 1e-4, "T={T} At row {r}");
            }
        }
    }

    #[test]
    fn parts_together_equal_the_whole_conv() {
        // As `conv::tests::parts_together_equal_the_whole_conv`, for every tile size. 9×11
        // splits by output channels (F2 on 3 or 4 parts, F4, F6: fewer 16-tile groups than
        // parts); 40×37 by tiles (F6: 49 tiles, a partial group; F2: 380 over several blocks).
        let shapes = [(5, 20, 9, 11), (3, 9, 40, 37)];
        for (i, t) in shapes
            .iter()
            .flat_map(|s| WinogradTile::ALL.map(|t| (s, t)))
            .enumerate()
        {
            let (&(c_in, c_out, h, w), t) = t;
            let p = params(c_in, c_out, h, w, (1, 1, 1, 1), Act::Relu).unwrap();
            let mut rng = Rng::new(17 + i as u64);
            let (x, w, b) = (
                rng.vec(p.input_len()),
                rng.vec(p.weight_len()),
                rng.vec(p.c_out),
            );
            let mut packed = vec![0.0; packed_weight_len(&p, t)];
            pack_weights(&p, t, &w, &mut packed).unwrap();
            for isa in isas() {
                let mut whole = vec![f32::NAN; p.output_len()];
                let mut scratch = vec![f32::NAN; scratch_len(&p, t)];
                winograd_conv2d_checked(isa, &p, t, &x, &packed, &b, &mut whole, &mut scratch)
                    .unwrap();
                let ctx = std::format!("{t:?} {isa:?}");
                check_parts(
                    &ctx,
                    &whole,
                    scratch_len(&p, t),
                    &[1, 2, 3, 4],
                    |part, out, sc| {
                        // SAFETY: the buffers have the lengths `winograd_conv2d` needs for `p`.
                        unsafe {
                            winograd_conv2d_part(
                                isa,
                                &p,
                                t,
                                part,
                                x.as_ptr(),
                                packed.as_ptr(),
                                b.as_ptr(),
                                out.as_mut_ptr(),
                                sc.as_mut_ptr(),
                            )
                        }
                    },
                );
            }
        }
    }

    #[test]
    fn hand_transforms_match_the_matrices() {
        check_hand::<X2, 4, 2>(&BT2F, &AT2F);
        check_hand::<X4, 6, 4>(&BT4F, &AT4F);
        check_hand::<X6, 8, 6>(&BT6F, &AT6F);
    }

    #[test]
    fn transform_matrices_compute_correlation() {
        check_1d(&G2, &BT2, &AT2);
        check_1d(&G4, &BT4, &AT4);
        check_1d(&G6, &BT6, &AT6);
    }

    #[test]
    fn packed_u_matches_g_g_gt() {
        // One kernel, checked against G g Gᵀ written out by hand in f64 (F(2,3): G is exact).
        let p = params(2, 9, 5, 5, (1, 1, 1, 1), Act::None).unwrap();
        let mut rng = Rng::new(3);
        let w = rng.vec(p.weight_len());
        let (oc, ic) = (8, 1); // second oc block, row 0
        let g = &w[(oc * 2 + ic) * 9..][..9];
        for t in WinogradTile::ALL {
            let gm: Vec<[f64; 3]> = match t {
                WinogradTile::F2 => G2.to_vec(),
                WinogradTile::F4 => G4.to_vec(),
                WinogradTile::F6 => G6.to_vec(),
            };
            let n = t.t();
            let mut packed = vec![0.0; packed_weight_len(&p, t)];
            pack_weights(&p, t, &w, &mut packed).unwrap();
            for a in 0..n {
                for bcol in 0..n {
                    let mut s = 0.0f64;
                    for i in 0..3 {
                        for j in 0..3 {
                            s += gm[a][i] * g[i * 3 + j] as f64 * gm[bcol][j];
                        }
                    }
                    let pos = a * n + bcol;
                    let got = packed[((oc / MR * n * n + pos) * 2 + ic) * MR + oc % MR];
                    assert_eq!(got, s as f32, "{t:?} U[{a}][{bcol}]");
                }
            }
            // Rows past c_out are zero.
            let last = packed[((n * n + 3) * 2 + ic) * MR + 5];
            assert_eq!(last, 0.0);
        }
    }

    #[test]
    fn edge_sizes_all_tiles() {
        for t in WinogradTile::ALL {
            let m = t.m();
            let sizes = [1, 2, 3, m - 1, m, m + 1, 2 * m + 1, 13, 28];
            let pads = [(0, 0, 0, 0), (1, 1, 1, 1), (1, 0, 0, 1), (0, 2, 2, 0)];
            let mut worst = 0.0f64;
            let mut n = 0;
            for (i, &h) in sizes.iter().enumerate() {
                for (j, &w) in sizes.iter().enumerate() {
                    let pad = pads[(i + j) % pads.len()];
                    let chans = [1, 3, 16, 17];
                    let (ci, co) = (chans[i % 4], chans[(j + i / 4) % 4]);
                    let act = ACTS[(i * 3 + j) % 3];
                    if let Some(p) = params(ci, co, h, w, pad, act) {
                        worst = worst.max(run_case(&p, t, (i * 31 + j) as u64));
                        n += 1;
                    }
                }
            }
            assert!(n > 50, "{n}");
            std::println!("{t:?}: edge sizes, worst max|err|/RMS {worst:.3e} ({n} cases)");
        }
    }

    #[test]
    fn channel_counts_and_activations() {
        for t in WinogradTile::ALL {
            let mut worst = 0.0f64;
            for (i, &ci) in [1usize, 3, 16, 17, 64].iter().enumerate() {
                for (j, &co) in [1usize, 3, 16, 17, 64].iter().enumerate() {
                    let act = ACTS[(i + j) % 3];
                    let pad = [(1, 1, 1, 1), (0, 0, 0, 0), (1, 0, 1, 0)][(i + 2 * j) % 3];
                    let p = params(ci, co, 9, 14, pad, act).unwrap();
                    worst = worst.max(run_case(&p, t, (i * 5 + j) as u64));
                }
            }
            std::println!("{t:?}: channels 1..64, worst max|err|/RMS {worst:.3e}");
        }
    }

    #[test]
    fn large_channels_many_blocks() {
        // Several tile blocks (nb < tiles) and several oc blocks, with a channel tail.
        for t in WinogradTile::ALL {
            let p = params(64, 20, 28, 28, (1, 1, 1, 1), Act::Relu).unwrap();
            let r = run_case(&p, t, 99);
            std::println!("{t:?}: 64->20 28x28, max|err|/RMS {r:.3e}");
            let p = params(256, 9, 13, 13, (1, 1, 1, 1), Act::None).unwrap();
            let r = run_case(&p, t, 98);
            std::println!("{t:?}: 256->9 13x13, max|err|/RMS {r:.3e}");
        }
    }

    #[test]
    fn relu6_saturates() {
        let p = params(3, 4, 6, 9, (1, 1, 1, 1), Act::Relu6).unwrap();
        for t in WinogradTile::ALL {
            let mut rng = Rng::new(42);
            let x: Vec<f32> = rng.vec(p.input_len()).iter().map(|v| v * 8.0).collect();
            let w = rng.vec(p.weight_len());
            let b = vec![0.5; p.c_out];
            let mut packed = vec![0.0; packed_weight_len(&p, t)];
            pack_weights(&p, t, &w, &mut packed).unwrap();
            let mut scratch = vec![0.0; scratch_len(&p, t)];
            let want = conv_ref(&p, &x, &w, &b);
            for isa in isas() {
                let mut out = vec![0.0; p.output_len()];
                winograd_conv2d_checked(isa, &p, t, &x, &packed, &b, &mut out, &mut scratch)
                    .unwrap();
                assert!(ratio(&out, &want) <= tol(t));
                let lo = out.iter().cloned().fold(f32::INFINITY, f32::min);
                let hi = out.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                assert!(lo == 0.0 && hi == 6.0, "{lo} {hi}");
            }
        }
    }

    #[test]
    fn rejects_unsupported_and_bad_lengths() {
        let p = params(4, 6, 5, 5, (1, 1, 1, 1), Act::None).unwrap();
        assert!(supported(&p));
        let t = WinogradTile::F4;
        let mut out = vec![0.0; p.output_len()];
        let mut scratch = vec![0.0; scratch_len(&p, t)];
        let x = vec![0.0; p.input_len()];
        let u = vec![0.0; packed_weight_len(&p, t)];
        let b = vec![0.0; 6];
        assert!(matches!(
            winograd_conv2d_checked(Isa::Scalar, &p, t, &x, &u, &b, &mut out, &mut scratch[1..]),
            Err(KernelError::BadLength {
                what: "scratch",
                ..
            })
        ));
        for bad in [
            ConvParams {
                kh: 5,
                kw: 5,
                h_out: 3,
                w_out: 3,
                ..p
            },
            ConvParams {
                sh: 2,
                h_out: 3,
                ..p
            },
            ConvParams { groups: 2, ..p },
        ] {
            assert!(!supported(&bad));
            let mut w = vec![0.0; packed_weight_len(&bad, t)];
            assert!(matches!(
                pack_weights(&bad, t, &vec![0.0; bad.weight_len()], &mut w),
                Err(KernelError::BadParams(_))
            ));
        }
        // Scratch stays proportional to a tile block, not the image.
        let big = params(64, 64, 224, 224, (1, 1, 1, 1), Act::None).unwrap();
        assert!(scratch_len(&big, t) < big.input_len() / 4);
    }
}
