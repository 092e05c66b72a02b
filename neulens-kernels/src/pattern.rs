//! Pattern-sparse 3×3 convolution (PatDNN): every kept kernel has 4 of its 9 taps (centre
//! included) in one of a small library of masks; owns the compact packed format, its packer and
//! the per-pattern microkernels (one straight-line body per mask, monomorphized per library).
//!
//! **Masks.** A mask is a `u16` whose bit `ky * 3 + kx` is set for each kept tap; a valid mask
//! has exactly 4 bits, bit 4 (the centre) among them: [`ALL_MASKS`] lists the C(8,3) = 56.
//!
//! **Libraries.** Generated code declares a library with [`pattern_library!`](crate::pattern_library),
//! a type implementing [`PatternLib`]: its masks, and a `match` from pattern id to
//! `visitor.visit::<MASK>()`. Each mask is a const generic, so the kernel body of every pattern is
//! compiled separately with its four tap offsets as constants, and only the patterns a library
//! names are instantiated.
//!
//! **Packed weights** (`u32` words stored in the f32 blob, then weights; see [`packed_len`]):
//! the filters are cut into blocks of [`FILTER_BLOCK`]; `starts[blocks * c_in * K + 1]` (kernel
//! index where the run of filter block `b`, input channel `c`, pattern `p` starts, in that order;
//! the next entry ends it), `oc[n]` (output channel of each kept kernel, ascending inside a run),
//! `w[4 n]` (the 4 weights of each kernel in tap order, row-major).
//!
//! **Kernel.** The input is copied into a zero-padded grid in scratch, one band of output rows
//! at a time (the band's grid stays within about the L2 size). With stride 2 each channel holds
//! four phase planes (even/odd padded rows × even/odd padded columns), so every tap of a
//! stride-2 output row is again a contiguous run of one phase plane: tap `(ky, kx)` reads phase
//! `(ky % 2, kx % 2)` shifted by `(ky / 2, kx / 2)`. Rows are padded to a multiple of the
//! vector width (plus the taps' halo), so every tap of a tile is a vector load at a constant
//! offset per mask and no tap needs a bounds check. (The second session's kernel stored each
//! plane three times, shifted by a column, so that every tap load was aligned; with the loads
//! shared by a whole run of filters below, the split loads cost less than filling the copies.)
//!
//! The loop is input-stationary, which is what makes the sparsity pay: per register tile of
//! `R` output rows × `NV` vectors along x, and per filter block, the accumulators of every
//! filter of the block live in an L1-resident buffer (started at the bias); per input channel
//! and pattern, the body of that pattern loads its 4 tap vectors of the tile *once* into
//! registers (constant offsets) and then, for every kernel of the run (every filter that keeps
//! this channel with this pattern), adds its 4 broadcast weights times them into that filter's
//! accumulators. A loaded input vector so serves every filter of the run (about
//! `block × connectivity / K` of them) instead of one, and an FMA costs about half a load
//! instead of one. No per-weight index and no branch in the inner loop. Activation and the
//! store (a lane mask at the right edge) when the block's channels are done.
//!
//! **Flat tiles.** Small maps waste lanes in row tiles (7×7 on 16 lanes: 8 rows × 16 columns
//! computed for 49 pixels). When the whole grid fits `GRID_BYTES` and it computes no more
//! pixels, the kernel instead runs flat tiles (`Geom`): `NV` vectors of consecutive pixels of
//! the flattened grid whose rows are `w_out + 2/s` wide, the dense direct kernel's layout (or
//! `w_out + 1` at stride 1 when the right halo column can be the next row's zero padding
//! column); the halo pixels at each row end are computed and not stored. A last tile that
//! needs at most half of its vectors runs as a half-width tile. Same runs, same bodies, one
//! grid fill per call, of the rows that call's tiles read (a thread's share of a layer fills
//! about its share of the grid).

use crate::common::{act_v, fill_row, flat_lane_mask, prefetch, zero_row};
use crate::conv::ConvParams;
use crate::simd::Simd;
use crate::{check_isa, check_len, Isa, KernelError};

/// Taps per kernel.
pub const TAPS: usize = 4;
/// The centre tap's bit.
pub const CENTRE: u16 = 1 << 4;
/// Marks a pruned kernel in the assignment passed to [`pack_pattern_weights`].
pub const PRUNED: u8 = u8::MAX;

/// All 56 valid masks, ascending.
pub const ALL_MASKS: [u16; 56] = all_masks();

const fn all_masks() -> [u16; 56] {
    let mut out = [0u16; 56];
    let (mut m, mut i) = (0u16, 0);
    while m < 512 {
        if valid_mask(m) {
            out[i] = m;
            i += 1;
        }
        m += 1;
    }
    out
}

/// Whether `m` is a valid pattern: 4 of the 9 taps, the centre among them.
pub const fn valid_mask(m: u16) -> bool {
    m < 512 && m & CENTRE != 0 && m.count_ones() == TAPS as u32
}

/// Whether `masks` is a usable library: 1 to 56 distinct [`valid_mask`]s.
pub const fn valid_library(masks: &[u16]) -> bool {
    if masks.is_empty() || masks.len() > ALL_MASKS.len() {
        return false;
    }
    let mut i = 0;
    while i < masks.len() {
        if !valid_mask(masks[i]) {
            return false;
        }
        let mut j = 0;
        while j < i {
            if masks[j] == masks[i] {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// A pattern library: the masks (pattern id = index) and the dispatch from a pattern id to the
/// kernel body of that mask. Implement it with [`pattern_library!`](crate::pattern_library).
pub trait PatternLib {
    /// The masks, in pattern-id order (each [`valid_mask`]).
    const MASKS: &'static [u16];
    /// Calls `v.visit::<MASKS[pid]>()` (nothing for an out-of-range id).
    fn visit<T: PatternVisitor>(pid: usize, v: &mut T);
}

/// What a [`PatternLib`] dispatches to: the kernel's per-pattern body, with the mask as a
/// constant. Only the kernels of this crate implement it.
pub trait PatternVisitor {
    /// Runs the body for `MASK` (bits above 8 are ignored; taps past the 4th are skipped).
    fn visit<const MASK: u16>(&mut self);
}

/// Declares a pattern library type: `pattern_library!(pub struct Lib = [0 => 0x0ba, 1 => 0x03a]);`
/// (pattern id `=>` mask, ids `0..K` in order).
#[macro_export]
macro_rules! pattern_library {
    ($(#[$meta:meta])* $vis:vis struct $name:ident = [$($pid:literal => $mask:literal),* $(,)?];) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default)]
        $vis struct $name;
        impl $crate::pattern::PatternLib for $name {
            const MASKS: &'static [u16] = &[$($mask),*];
            #[inline(always)]
            fn visit<T: $crate::pattern::PatternVisitor>(pid: usize, v: &mut T) {
                match pid {
                    $($pid => v.visit::<$mask>(),)*
                    _ => {}
                }
            }
        }
    };
}

/// A pattern-sparse convolution: the dense parameters plus the library size and the number of
/// kept kernels (what the packed length depends on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PatternParams {
    /// The convolution (3×3, stride 1 or 2, groups 1; see [`supported`]).
    pub conv: ConvParams,
    /// Library size K.
    pub patterns: usize,
    /// Kept kernels over all filters.
    pub kernels: usize,
}

impl PatternParams {
    /// Length in f32 words of the packed weights ([`packed_len`]).
    pub const fn packed_len(&self) -> usize {
        packed_len(&self.conv, self.patterns, self.kernels)
    }
    /// f32 of scratch the kernel needs ([`scratch_len`]).
    pub const fn scratch_len(&self) -> usize {
        scratch_len(&self.conv)
    }
    /// Multiply-accumulates actually done: 4 per kept kernel per output pixel.
    pub const fn macs(&self) -> u64 {
        (self.kernels * TAPS) as u64 * (self.conv.h_out * self.conv.w_out) as u64
    }
    /// Checks the convolution ([`ConvParams::validate`], [`supported`]) and the counts.
    pub fn validate(&self) -> Result<(), KernelError> {
        self.conv.validate()?;
        if !supported(&self.conv) {
            return Err(KernelError::BadParams(
                "pattern conv: needs a 3×3 kernel, stride 1 or 2 (both axes) and groups 1",
            ));
        }
        if self.patterns == 0 || self.patterns > ALL_MASKS.len() {
            return Err(KernelError::BadParams(
                "pattern conv: the library needs 1 to 56 patterns",
            ));
        }
        if self.kernels > self.conv.c_out * self.conv.c_in {
            return Err(KernelError::BadParams(
                "pattern conv: more kernels than c_out × c_in",
            ));
        }
        Ok(())
    }
}

/// Whether the pattern kernel runs `p`: 3×3, stride 1 or 2 (the same on both axes), groups 1
/// (any padding).
pub const fn supported(p: &ConvParams) -> bool {
    p.kh == 3 && p.kw == 3 && p.sh == p.sw && (p.sh == 1 || p.sh == 2) && p.groups == 1
}

/// Filters per block of the packed runs. A run (one channel, one pattern) serves about
/// `block × connectivity / K` filters with one load of its tap vectors: 16 at 256 filters,
/// connectivity 0.5 and 8 patterns. The block's accumulators (256 × 4 vectors of 64 bytes,
/// 64 KiB on AVX-512) spill a little past a 48 KiB L1 and still beat 128 filters (C4 −6 %,
/// C3 −2.5 %); 512 gained nothing more (docs/BENCHMARKS.md, ninth session).
pub const FILTER_BLOCK: usize = 256;

/// Packed length: `blocks * c_in * k + 1` (run starts) + `n` (output channels) + `4 n`
/// (weights), with `blocks = ceil(c_out / FILTER_BLOCK)`.
pub const fn packed_len(p: &ConvParams, k: usize, n: usize) -> usize {
    p.c_out.div_ceil(FILTER_BLOCK) * p.c_in * k + 1 + (1 + TAPS) * n
}

/// Register tile `(R, NV)` for an ISA with `lanes` f32 lanes and `many` (32) vector registers:
/// `R × NV` accumulator vectors per filter, whose 4 tap vectors stay in registers (4 with 32
/// registers: 16 tap vectors; 2 with 16), as many vectors along x as the row needs (1, 2 or
/// the most), the rest in rows.
pub const fn tile(lanes: usize, many: bool, w_out: usize) -> (usize, usize) {
    let most = if many || lanes == 1 { 4 } else { 2 };
    let nv = if lanes == 1 {
        most
    } else {
        match w_out.div_ceil(lanes) {
            1 => 1,
            2 => 2,
            _ => most,
        }
    };
    (most / nv, nv)
}

/// Whether `V` has 32 vector registers (AVX-512, NEON), by its convolution tile.
const fn many_regs<V: Simd>() -> bool {
    V::CONV_MR >= 8
}

/// Grid geometry for one tile shape: (row stride `ws`, output rows per band, planes per
/// channel). Per channel the grid holds one plane per stride phase (1 at stride 1, 4 at stride
/// 2), so tap `(ky, kx)` of a tile of `r × tw` outputs reads `tw` columns from column `kx / s`
/// of phase `(ky % s, kx % s)`, rows `ky / s` on. The row stride is a multiple of the vector
/// width with room for the `2 / s` halo columns of the last tile. The grid covers a band of
/// output rows at a time (a multiple of `r`, at least `r`, plus `2 / s` halo rows) that keeps
/// it within [`GRID_BYTES`].
const fn grid(p: &ConvParams, r: usize, tw: usize, lanes: usize) -> (usize, usize, usize) {
    let halo = 2 / p.sh;
    let ws = (p.w_out.div_ceil(tw) * tw + halo).next_multiple_of(lanes);
    let planes = p.sh * p.sw;
    let all = p.h_out.div_ceil(r) * r;
    // No more than the whole padded input, nor more than GRID_BYTES.
    let plain = 4 * p.c_in * p.sh * p.sw * (all + halo) * (p.w_out.div_ceil(tw) * tw + halo);
    let budget = if plain < GRID_BYTES {
        plain
    } else {
        GRID_BYTES
    };
    let fit = budget / (4 * p.c_in * planes * ws);
    let band = if fit >= halo + r {
        (fit - halo) / r * r
    } else {
        r
    };
    (ws, if band < all { band } else { all }, planes)
}

/// Bytes of grid one band may fill: about the L2 size less room for the weights and the
/// output (this machine's L2 is 2 MiB; docs/BENCHMARKS.md, "Pattern pruning").
const GRID_BYTES: usize = 3 << 19;

/// The loop layout of one ISA configuration: the register tile and the grid it reads.
///
/// Row tiles (`flat == false`): `r` output rows × `nv` vectors, over the banded grid of
/// [`grid`]. Flat tiles (`flat == true`, `r == 1`): `nv` vectors of consecutive pixels of the
/// flattened grid, whose rows are `ws = w_out + 2 / s` wide (not rounded to the vector width):
/// output `(oy, ox)` is flat pixel `oy ws + ox`, tap `(ky, kx)` is `ky / s` rows and `kx / s`
/// columns further in its phase plane, and the `2 / s` pixels per row past `w_out` are computed
/// and never stored (the dense direct kernel's layout, `direct.rs`). Small maps waste far fewer
/// lanes that way: 7×7 on 16 lanes computes 64 flat pixels per filter instead of 8 rows × 16.
///
/// At stride 1 with a zero column on both sides the flat rows are `w_out + 1` wide: the right
/// halo column of row `y` is the left padding column of row `y + 1`, zero either way (28×28:
/// 812 flat pixels instead of 840). When the last flat tile needs at most half of its
/// vectors (`tail`), a half-width tile computes it (14×14: 224 pixels instead of 256): the
/// `(1, nv / 2)` tile is instantiated anyway, so this adds no copy of the pattern bodies.
#[derive(Clone, Copy, Debug)]
struct Geom {
    flat: bool,
    r: usize,
    nv: usize,
    /// Flat only: the last tile is a `(1, nv / 2)` tile.
    tail: bool,
    /// Grid row stride.
    ws: usize,
    /// Grid rows per band and phase plane.
    rows: usize,
    /// Phase planes per channel.
    planes: usize,
}

/// The layout for `lanes` f32 lanes and `many` (32) registers: flat tiles when the whole flat
/// grid fits [`GRID_BYTES`] and computes no more pixels than the row tiles of [`tile`] (on a
/// tie flat is as fast or faster: one grid fill, no band halo rows; C2 −5 %), else row tiles.
const fn geom(p: &ConvParams, lanes: usize, many: bool) -> Geom {
    let (r, nv) = tile(lanes, many, p.w_out);
    let (ws, band, planes) = grid(p, r, nv * lanes, lanes);
    let halo = 2 / p.sh;
    let rowwise = Geom {
        flat: false,
        r,
        nv,
        tail: false,
        ws,
        rows: band + halo,
        planes,
    };
    if lanes == 1 {
        return rowwise;
    }
    let most = if many { 4 } else { 2 };
    let tw = most * lanes;
    // Stride 1: pad_left >= 1 and padded column w_out + 1 past the input (pad right >= 1).
    let shared = p.sh == 1 && p.pad_left >= 1 && p.w_out + 1 >= p.w_in + p.pad_left;
    let wsf = if shared { p.w_out + 1 } else { p.w_out + halo };
    let px = p.h_out * wsf;
    // The grid covers whole tiles; the half tile's pixels lie inside them.
    let q = px.div_ceil(tw) * tw;
    let tail = most == 4 && !px.is_multiple_of(tw) && px % tw <= tw / 2;
    let work = if tail { q - tw / 2 } else { q };
    let rows = (q + halo * wsf + halo).div_ceil(wsf);
    let row_work = p.h_out.div_ceil(r) * r * p.w_out.div_ceil(nv * lanes) * nv * lanes;
    if work <= row_work && 4 * p.c_in * planes * rows * wsf <= GRID_BYTES {
        Geom {
            flat: true,
            r: 1,
            nv: most,
            tail,
            ws: wsf,
            rows,
            planes,
        }
    } else {
        rowwise
    }
}

/// Floats of slack [`scratch_len`] adds so the grid can start on a 64-byte boundary.
const ALIGN_SLACK: usize = 16;

/// The ISA configurations whose grids [`scratch_len`] covers: (lanes, 32 registers).
const CONFIGS: [(usize, bool); 5] = [(1, false), (4, false), (4, true), (8, false), (16, true)];

/// Floats of the accumulator buffer: `t` vectors of `lanes` for each filter of a block.
const fn acc_len(p: &ConvParams, t: usize, lanes: usize) -> usize {
    let fb = if p.c_out < FILTER_BLOCK {
        p.c_out
    } else {
        FILTER_BLOCK
    };
    fb * t * lanes
}

/// f32 of scratch: the largest band of the padded grid (`c_in × planes × (band + halo) × ws`)
/// plus the accumulators of one filter block (`acc_len`) of any ISA's tile, and room to
/// align them.
pub const fn scratch_len(p: &ConvParams) -> usize {
    let mut best = 0;
    let mut i = 0;
    while i < CONFIGS.len() {
        let (lanes, many) = CONFIGS[i];
        let g = geom(p, lanes, many);
        let n = p.c_in * g.planes * g.rows * g.ws + ALIGN_SLACK + acc_len(p, g.r * g.nv, lanes);
        if n > best {
            best = n;
        }
        i += 1;
    }
    best
}

/// Build time: packs pruned OIHW weights. `assign[oc * c_in + ic]` is the pattern id of that
/// kernel or [`PRUNED`]; a kept kernel's weights outside its mask must be zero, a pruned one
/// must be all zero (so the packed kernel computes exactly the given weights). Returns the
/// [`PatternParams`] (the kept-kernel count) after filling `out` (`len == packed_len`).
pub fn pack_pattern_weights(
    p: &ConvParams,
    masks: &[u16],
    oihw: &[f32],
    assign: &[u8],
    out: &mut [f32],
) -> Result<PatternParams, KernelError> {
    let pp = pattern_params(p, masks, assign)?;
    pp.validate()?;
    check_len("conv weights (OIHW)", p.weight_len(), oihw.len())?;
    check_len("packed pattern weights", pp.packed_len(), out.len())?;
    let (c_in, c_out, k) = (p.c_in, p.c_out, masks.len());
    for (i, &m) in masks.iter().enumerate() {
        if !valid_mask(m) {
            return Err(KernelError::BadParams(
                "pattern conv: a mask must have 4 taps including the centre",
            ));
        }
        if masks[..i].contains(&m) {
            return Err(KernelError::BadParams("pattern conv: duplicate mask"));
        }
    }
    for (kk, &a) in assign.iter().enumerate() {
        let keep = if a == PRUNED { 0 } else { masks[a as usize] };
        let w = &oihw[kk * 9..kk * 9 + 9];
        if w.iter()
            .enumerate()
            .any(|(b, &v)| v != 0.0 && keep >> b & 1 == 0)
        {
            return Err(KernelError::BadParams(
                "pattern conv: a nonzero weight lies outside its kernel's pattern",
            ));
        }
    }
    let blocks = c_out.div_ceil(FILTER_BLOCK);
    let (starts, rest) = out.split_at_mut(blocks * c_in * k + 1);
    let (ocs, w) = rest.split_at_mut(pp.kernels);
    let mut n = 0usize;
    for b in 0..blocks {
        let filters = b * FILTER_BLOCK..c_out.min((b + 1) * FILTER_BLOCK);
        for ic in 0..c_in {
            for (pid, &m) in masks.iter().enumerate() {
                starts[(b * c_in + ic) * k + pid] = f32::from_bits(n as u32);
                for oc in filters.clone() {
                    if assign[oc * c_in + ic] as usize != pid {
                        continue;
                    }
                    ocs[n] = f32::from_bits(oc as u32);
                    let src = &oihw[(oc * c_in + ic) * 9..(oc * c_in + ic) * 9 + 9];
                    let mut t = 0;
                    for (bit, &v) in src.iter().enumerate() {
                        if m >> bit & 1 != 0 {
                            w[n * TAPS + t] = v;
                            t += 1;
                        }
                    }
                    n += 1;
                }
            }
        }
    }
    starts[blocks * c_in * k] = f32::from_bits(n as u32);
    debug_assert_eq!(n, pp.kernels);
    Ok(pp)
}

/// The [`PatternParams`] of an assignment (see [`pack_pattern_weights`]).
pub fn pattern_params(
    p: &ConvParams,
    masks: &[u16],
    assign: &[u8],
) -> Result<PatternParams, KernelError> {
    check_len("pattern assignment", p.c_out * p.c_in, assign.len())?;
    if let Some(&a) = assign
        .iter()
        .find(|&&a| a != PRUNED && a as usize >= masks.len())
    {
        let _ = a;
        return Err(KernelError::BadParams(
            "pattern conv: a pattern id is not in the library",
        ));
    }
    Ok(PatternParams {
        conv: *p,
        patterns: masks.len(),
        kernels: assign.iter().filter(|&&a| a != PRUNED).count(),
    })
}

dispatch! {
    /// Pattern-sparse 3×3 convolution + bias + activation with library `L`.
    ///
    /// # Safety
    /// `p` is valid ([`PatternParams::validate`]) and `p.patterns == L::MASKS.len()`; `input` is
    /// valid for `p.conv.input_len()` reads, `packed` for `p.packed_len()` reads (from
    /// [`pack_pattern_weights`] with `L::MASKS`), `bias` for `c_out` reads, `output` for
    /// `p.conv.output_len()` writes, `scratch` for `p.scratch_len()` reads and writes; `output`
    /// and `scratch` overlap nothing else; `isa` is available on this CPU.
    ///
    /// `part = (k, n)`: part `k` of `n` computes only its share of the output: with row tiles
    /// the rows `part_range(h_out, R, k, n)` (whole register tiles of `R` rows) of every
    /// filter; with flat tiles (small maps) its share of the (tile, filter block) pairs. Each
    /// writes its own outputs and fills its own grid (the rows its tiles read), so `n` threads
    /// with their own scratch compute the whole conv; `(0, 1)` is all of it
    /// ([`pattern_conv2d`]).
    pub unsafe fn pattern_conv2d_part<L: PatternLib>(p: &PatternParams, part: (usize, usize), input: *const f32, packed: *const f32, bias: *const f32, output: *mut f32, scratch: *mut f32) => pattern_impl
}

/// Pattern-sparse 3×3 convolution + bias + activation with library `L`: all of
/// [`pattern_conv2d_part`].
///
/// # Safety
/// As [`pattern_conv2d_part`].
pub unsafe fn pattern_conv2d<L: PatternLib>(
    isa: Isa,
    p: &PatternParams,
    input: *const f32,
    packed: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
) {
    // SAFETY: forwarded contract.
    unsafe { pattern_conv2d_part::<L>(isa, p, (0, 1), input, packed, bias, output, scratch) }
}

/// Safe [`pattern_conv2d`]: checks parameters, the library, lengths, the packed header and the
/// ISA.
#[allow(clippy::too_many_arguments)]
pub fn pattern_conv2d_checked<L: PatternLib>(
    isa: Isa,
    p: &PatternParams,
    input: &[f32],
    packed: &[f32],
    bias: &[f32],
    output: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), KernelError> {
    p.validate()?;
    if L::MASKS.len() != p.patterns || !L::MASKS.iter().all(|&m| valid_mask(m)) {
        return Err(KernelError::BadParams(
            "pattern conv: the library does not match the parameters",
        ));
    }
    let c = &p.conv;
    check_len("input", c.input_len(), input.len())?;
    check_len("packed", p.packed_len(), packed.len())?;
    check_len("bias", c.c_out, bias.len())?;
    check_len("output", c.output_len(), output.len())?;
    check_len("scratch", p.scratch_len(), scratch.len())?;
    check_isa(isa)?;
    // The header must index inside the buffers: monotone run starts ending at n, and every
    // kernel's output channel inside its run's filter block.
    let word = |i: usize| packed[i].to_bits() as usize;
    let k = p.patterns;
    let runs = c.c_out.div_ceil(FILTER_BLOCK) * c.c_in * k;
    let ocs = runs + 1;
    let mut prev = 0;
    for i in 0..=runs {
        let r = word(i);
        if r < prev || r > p.kernels {
            return Err(KernelError::BadParams("pattern conv: bad run table"));
        }
        if i < runs {
            let b = i / (c.c_in * k);
            let (f0, f1) = (b * FILTER_BLOCK, c.c_out.min((b + 1) * FILTER_BLOCK));
            let e = word(i + 1).min(p.kernels);
            if (r..e).any(|j| !(f0..f1).contains(&word(ocs + j))) {
                return Err(KernelError::BadParams("pattern conv: bad output channel"));
            }
        }
        prev = r;
    }
    if prev != p.kernels {
        return Err(KernelError::BadParams("pattern conv: bad run table"));
    }
    // SAFETY: lengths and header checked above; `&mut` slices cannot alias; ISA available.
    unsafe {
        pattern_conv2d::<L>(
            isa,
            p,
            input.as_ptr(),
            packed.as_ptr(),
            bias.as_ptr(),
            output.as_mut_ptr(),
            scratch.as_mut_ptr(),
        )
    };
    Ok(())
}

/// # Safety
/// Contract of [`pattern_conv2d`], with `V` the ISA's vector type.
#[inline(always)]
unsafe fn pattern_impl<V: Simd, L: PatternLib>(
    p: &PatternParams,
    part: (usize, usize),
    input: *const f32,
    packed: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
) {
    // SAFETY: forwarded contract (stride 1 or 2 by `validate`).
    unsafe {
        if p.conv.sh == 1 {
            by_width::<V, L, 1>(p, part, input, packed, bias, output, scratch)
        } else {
            by_width::<V, L, 2>(p, part, input, packed, bias, output, scratch)
        }
    }
}

/// [`conv_tile`] with the `(R, NV)` of `tile(V::LANES, many_regs::<V>(), w_out)`.
///
/// # Safety
/// Contract of [`pattern_conv2d`]; `S` is the stride.
#[inline(always)]
unsafe fn by_width<V: Simd, L: PatternLib, const S: usize>(
    p: &PatternParams,
    part: (usize, usize),
    input: *const f32,
    packed: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
) {
    let g = geom(&p.conv, V::LANES, many_regs::<V>());
    let all = Span {
        first: 0,
        end: usize::MAX,
    };
    let bufs = (input, packed, bias, output, scratch);
    // With a half-width last tile: the whole tiles, then the half tile, each split over the
    // parts (each call fills the grid rows its own tiles read).
    let (main, half) = if g.tail {
        let full = p.conv.h_out * g.ws / (4 * V::LANES);
        let half = Span {
            first: 2 * full,
            end: 2 * full + 1,
        };
        (Span { end: full, ..all }, Some(half))
    } else {
        (all, None)
    };
    // The (1, 2) tile: this layout's own (every shape but the four matched below), or the
    // half tile after the (1, 4) tiles. Each `conv_tile` shape is called from one place only:
    // every call site inlines a copy of the pattern bodies.
    let (r, nv) = (g.r, g.nv);
    // The half tile is split in mirror order: `part_range` gives its units to the last parts,
    // and the whole tiles' extra ones too (C3 on 2 threads: 1.5 and 2 tiles, not 1 and 2.5).
    let (half, half_part) = if matches!((r, nv), (4, 1) | (2, 2) | (1, 4) | (2, 1)) {
        let parts = part.1.max(1);
        let mirrored = if part.0 < parts {
            (parts - 1 - part.0, parts)
        } else {
            part
        };
        (half, mirrored)
    } else {
        (Some(all), part)
    };
    // SAFETY: forwarded contract; the layout is the one `scratch_len` sized the grid for.
    unsafe {
        match (r, nv) {
            (4, 1) => conv_tile::<V, L, S, 4, 1>(p, part, all, bufs),
            (2, 2) => conv_tile::<V, L, S, 2, 2>(p, part, all, bufs),
            (1, 4) => conv_tile::<V, L, S, 1, 4>(p, part, main, bufs),
            (2, 1) => conv_tile::<V, L, S, 2, 1>(p, part, all, bufs),
            _ => {}
        }
        if let Some(span) = half {
            conv_tile::<V, L, S, 1, 2>(p, half_part, span, bufs);
        }
    }
}

/// The units a [`conv_tile`] call runs, split over its parts: output rows for row tiles (all
/// of them), (tile, filter block) pairs of the flat tiles `[first, end)` of its own width for
/// flat tiles (`end` clamped to the layer's).
#[derive(Clone, Copy, Debug)]
struct Span {
    first: usize,
    end: usize,
}

/// The buffers of one call: input, packed weights, bias, output, scratch.
type Bufs = (*const f32, *const f32, *const f32, *mut f32, *mut f32);

/// Copies rows `[r0, r1)` of one band of the zero-padded input into the grid (see [`grid`]):
/// per channel, per stride phase `(py, px)` (stride `S` = 1: only `(0, 0)`), a plane of
/// `rows × ws` whose `(r, j)` holds the zero-padded input at `(S (rb + r) + py, S j + px)`,
/// i.e. the input `pad_top` rows and `pad_left` columns before that, or zero outside it.
///
/// Rows are written with whole vectors and masked tails (`common::fill_row`): the
/// bands are short rows (`ws` of 16–64 floats), where a `memcpy`/`memset` call per border and
/// segment cost more than the copy (8 % of the pruned ResNet-18 under `perf`).
///
/// # Safety
/// `input` valid for `p.input_len()` reads; `dst` for `c_in * S² * rows * ws` writes, not
/// overlapping; `r0 <= r1 <= rows`; `V`'s ISA available.
#[inline(always)]
unsafe fn fill_grid<V: Simd, const S: usize>(
    p: &ConvParams,
    input: *const f32,
    dst: *mut f32,
    (ws, rows): (usize, usize),
    rb: usize,
    (r0, r1): (usize, usize),
) {
    let plane = p.h_in * p.w_in;
    let ps = rows * ws;
    // SAFETY: writes stay below `c_in * S² * rows * ws`; reads at rows `< h_in`, columns
    // `< w_in` of channels `< c_in`.
    unsafe {
        for c in 0..p.c_in {
            let src = input.add(c * plane);
            for py in 0..S {
                for px in 0..S {
                    let base = dst.add(((c * S + py) * S + px) * ps);
                    for r in r0..r1 {
                        let row = base.add(r * ws);
                        let y = S * (rb + r) + py;
                        if y < p.pad_top || y - p.pad_top >= p.h_in {
                            zero_row::<V>(ws, row);
                            continue;
                        }
                        let srow = src.add((y - p.pad_top) * p.w_in);
                        // Grid column j holds padded column S j + px, i.e. input column
                        // S j + o: zeros, then the input columns [lo, hi), zeros.
                        let o = px as isize - p.pad_left as isize;
                        let first = |x: isize| {
                            if x <= 0 {
                                0
                            } else {
                                (x as usize).div_ceil(S).min(ws)
                            }
                        };
                        let lo = first(-o);
                        let hi = first(p.w_in as isize - o).max(lo);
                        // Input column S lo + o >= 0 is the first one read (none when
                        // hi == lo).
                        let c0 = if hi > lo {
                            ((S * lo) as isize + o) as usize
                        } else {
                            0
                        };
                        fill_row::<V>(row, ws, lo, hi, srow.add(c0), S);
                    }
                }
            }
        }
    }
}

/// The loop nest for one register tile shape: per band, fill the grid; per tile, per filter
/// block: the accumulators at the bias, every non-empty (channel, pattern) run through `L`,
/// activation and store. Row tiles: part `part` of `parts` computes the output rows of
/// `part_range(h_out, R, ..)` (all filters), with its own grid. Flat tiles ([`geom`]
/// flat, `R == 1`, see [`Geom`]): one band holding the whole grid, part `part` computes its
/// `part_range` of the span's (tile, filter block) pairs, after filling the grid rows those
/// tiles read. Both share one inlined copy of the runs' bodies (each copy is every pattern of
/// `L`; a second loop nest would double the code and the build time).
///
/// # Safety
/// Contract of [`pattern_conv2d`]; `(R, NV)` is the tile [`scratch_len`] covers for `V`, or
/// its half-width tail tile ([`Geom`]).
#[inline(always)]
unsafe fn conv_tile<V: Simd, L: PatternLib, const S: usize, const R: usize, const NV: usize>(
    p: &PatternParams,
    (part, parts): (usize, usize),
    span: Span,
    (input, packed, bias, output, scratch): Bufs,
) {
    let c = &p.conv;
    let tw = NV * V::LANES;
    let g = geom(c, V::LANES, many_regs::<V>());
    // Flat layouts run only flat calls: their (1, 4) or (1, 2) tiles and the half tile.
    let flat = g.flat;
    // Units: output rows (row tiles, bands of `band` rows) or flat tiles (one band).
    let (ws, band, planes) = if flat {
        (g.ws, usize::MAX, g.planes)
    } else {
        grid(c, R, tw, V::LANES)
    };
    let rows = if flat { g.rows } else { band + 2 / S };
    let (units, step, cols) = if flat {
        ((c.h_out * ws).div_ceil(tw), 1, 1)
    } else {
        (c.h_out, R, c.w_out)
    };
    let plane = c.h_out * c.w_out;
    let parts = if parts == 0 { 1 } else { parts };
    let end = units.min(span.end);
    let first = span.first.min(end);
    let blocks = c.c_out.div_ceil(FILTER_BLOCK);
    // Row tiles split rows (every filter block); flat tiles split (tile, filter block) pairs,
    // so a layer of one or two tiles (7×7) still splits over threads.
    let (k0, k1, h0, h1) = if flat {
        let (k0, k1) = crate::part_range((end - first) * blocks, 1, part, parts);
        (k0, k1, first + k0 / blocks, first + k1.div_ceil(blocks))
    } else {
        let (h0, h1) = crate::part_range(end - first, step, part, parts);
        (0, 0, first + h0, first + h1)
    };
    if part >= parts || h0 >= h1 {
        return;
    }
    // SAFETY: the packed header indexes inside the buffers (caller contract); every tile reads
    // band rows `< rows` and columns `< ws` of channels `< c_in` (flat: the grid's rows cover
    // every tap of the last tile, `geom`); the accumulators of a block (`<= FILTER_BLOCK`
    // filters × `R * NV` vectors) lie after the grid inside the scratch; stores stay inside
    // the output.
    unsafe {
        let scratch = scratch.add(scratch.align_offset(64).min(ALIGN_SLACK));
        let acc = scratch.add(c.c_in * planes * rows * ws);
        let mut b0 = h0;
        while b0 < h1 {
            if flat {
                // The grid rows this part's tiles read: from its first pixel's row to the one
                // of its last pixel's last tap (`2 / S` rows and columns on). A thread fills
                // only about its share of the grid.
                let halo = 2 / S;
                let need = ((h1 * tw + halo * (ws + 1)).div_ceil(ws)).min(rows);
                fill_grid::<V, S>(c, input, scratch, (ws, rows), 0, (h0 * tw / ws, need));
            } else {
                fill_grid::<V, S>(c, input, scratch, (ws, rows), b0, (0, rows));
            }
            let b1 = if flat || b0 + band >= h1 {
                h1
            } else {
                b0 + band
            };
            let mut u = b0;
            while u < b1 {
                let mut c0 = 0;
                while c0 < cols {
                    // Row tile: output rows from `u`, columns from `c0`. Flat tile `u`: flat
                    // pixels from `q0`, the first of them at output index `out0`.
                    let q0 = u * tw;
                    let (x, out0) = if flat {
                        (scratch.add(q0), q0 / ws * c.w_out + c.w_out.min(q0 % ws))
                    } else {
                        (scratch.add((u - b0) * ws + c0), u * c.w_out + c0)
                    };
                    let dests = if flat {
                        flat_dests::<NV>(c, ws, V::LANES, q0)
                    } else {
                        [(0, 0); NV]
                    };
                    // This part's filter blocks of the tile.
                    let (bl, bh) = if flat {
                        let base = (u - first) * blocks;
                        (k0.max(base) - base, k1.min(base + blocks) - base)
                    } else {
                        (0, blocks)
                    };
                    for b in bl..bh {
                        let f0 = b * FILTER_BLOCK;
                        let f1 = c.c_out.min(f0 + FILTER_BLOCK);
                        for f in f0..f1 {
                            let v = V::splat(*bias.add(f));
                            for i in 0..R * NV {
                                v.store(acc.add(((f - f0) * R * NV + i) * V::LANES));
                            }
                            // The tile's output lines of this filter (one plane each, so each
                            // store below would otherwise wait for its line): fetched while the
                            // block computes.
                            for r in 0..R {
                                let o = output.wrapping_add(f * plane + out0 + r * c.w_out);
                                for v in 0..NV {
                                    prefetch(o.wrapping_add(v * V::LANES));
                                }
                            }
                        }
                        block_runs::<V, L, S, R, NV>(p, b, x, (rows, ws, planes), acc, packed);
                        for f in f0..f1 {
                            let a = acc.add((f - f0) * R * NV * V::LANES);
                            if flat {
                                store_flat::<V, NV>(c, &dests, a, output.add(f * plane));
                            } else {
                                store::<V, R, NV>(c, a, output.add(f * plane), u, c0);
                            }
                        }
                    }
                    c0 += tw;
                }
                u += step;
            }
            b0 = b1;
        }
    }
}

/// Adds every non-empty (channel, pattern) run of filter block `b` into the block's
/// accumulators `acc`, for the tile whose grid origin (channel 0, phase 0) is `x` in a grid of
/// `planes` phase planes of `rows × ws` per channel.
///
/// # Safety
/// Contract of [`pattern_conv2d`]; `x` a tile origin of that grid (the tile's reads stay
/// inside it), `acc` the block's `R * NV` vectors per filter.
#[inline(always)]
unsafe fn block_runs<V: Simd, L: PatternLib, const S: usize, const R: usize, const NV: usize>(
    p: &PatternParams,
    b: usize,
    x: *const f32,
    (rows, ws, planes): (usize, usize, usize),
    acc: *mut f32,
    packed: *const f32,
) {
    let c = &p.conv;
    let k = p.patterns;
    let blocks = c.c_out.div_ceil(FILTER_BLOCK);
    // SAFETY: the packed header indexes inside the buffers (caller contract); channel `ic`'s
    // grid starts `ic * planes * rows * ws` after `x`'s channel 0.
    unsafe {
        let starts = packed as *const u32;
        let ocs = starts.add(blocks * c.c_in * k + 1);
        let w = ocs.add(p.kernels) as *const f32;
        let mut t = Tile::<V, S, R, NV> {
            x,
            ps: rows * ws,
            ws,
            acc,
            f0: b * FILTER_BLOCK,
            ocs,
            w,
            s: 0,
            e: 0,
            isa: core::marker::PhantomData,
        };
        let rs = starts.add(b * c.c_in * k);
        for ic in 0..c.c_in {
            t.x = x.add(ic * planes * rows * ws);
            let rc = rs.add(ic * k);
            let mut s = *rc as usize;
            for pid in 0..k {
                let e = *rc.add(pid + 1) as usize;
                if e > s {
                    t.s = s;
                    t.e = e;
                    L::visit(pid, &mut t);
                }
                s = e;
            }
        }
    }
}

/// Where each of the `NV` vectors of the flat tile at pixel `q0` goes (rows `ws` wide): its
/// stored lanes and the output index of the first ([`flat_lane_mask`]; `(0, 0)` stores none).
/// Computed once per tile for all its filters.
#[inline(always)]
fn flat_dests<const NV: usize>(
    c: &ConvParams,
    ws: usize,
    lanes: usize,
    q0: usize,
) -> [(u32, usize); NV] {
    let nq = c.h_out * ws;
    core::array::from_fn(|v| {
        let qv = q0 + v * lanes;
        flat_lane_mask(lanes, (nq, ws, c.w_out), qv, qv / ws, qv % ws)
    })
}

/// Stores one filter's flat tile `a` with the activation: per vector, straight to the output
/// when all its lanes are stored, else the stored lanes compressed (`dests`, [`flat_dests`]).
///
/// # Safety
/// `a` valid for `NV * LANES` reads, `out` for `h_out * w_out` writes, `dests` of this tile;
/// `V`'s ISA available.
#[inline(always)]
unsafe fn store_flat<V: Simd, const NV: usize>(
    c: &ConvParams,
    dests: &[(u32, usize); NV],
    a: *const f32,
    out: *mut f32,
) {
    let full = ((1u64 << V::LANES) - 1) as u32;
    // SAFETY: `flat_lane_mask` sets only lanes of pixels inside the output, whose output
    // indices run consecutively from `first`.
    unsafe {
        for (v, &(mask, first)) in dests.iter().enumerate() {
            if mask == 0 {
                continue;
            }
            let y = act_v::<V>(c.act, V::load(a.add(v * V::LANES)));
            if mask == full {
                y.store(out.add(first));
            } else {
                y.compress_store(mask, out.add(first));
            }
        }
    }
}

/// One (channel, pattern) run at stride `S` on a register tile of `R` rows × `NV` vectors: the
/// grid of the channel at the tile's first output pixel, the accumulator buffer of the filter
/// block starting at filter `f0`, and the run `[s, e)` of kept kernels the next `visit` adds.
struct Tile<V: Simd, const S: usize, const R: usize, const NV: usize> {
    /// Grid of the channel, phase 0, at the tile's first output pixel.
    x: *const f32,
    /// Floats per phase plane.
    ps: usize,
    /// Grid row stride.
    ws: usize,
    /// `R * NV` vectors per filter of the block.
    acc: *mut f32,
    f0: usize,
    ocs: *const u32,
    w: *const f32,
    s: usize,
    e: usize,
    isa: core::marker::PhantomData<V>,
}

/// The taps of mask `m` as `(ky, kx)` in row-major order (the first 4) and their count.
const fn taps_of(m: u16) -> ([(usize, usize); TAPS], usize) {
    let mut taps = [(0, 0); TAPS];
    let (mut b, mut n) = (0, 0);
    while b < 9 && n < TAPS {
        if m >> b & 1 != 0 {
            taps[n] = (b / 3, b % 3);
            n += 1;
        }
        b += 1;
    }
    (taps, n)
}

impl<V: Simd, const S: usize, const R: usize, const NV: usize> PatternVisitor
    for Tile<V, S, R, NV>
{
    // Const-bounded indices keep the tap vectors in registers after unrolling.
    #[allow(clippy::needless_range_loop)]
    #[inline(always)]
    fn visit<const MASK: u16>(&mut self) {
        let (taps, nt) = const { taps_of(MASK) };
        // SAFETY: a `Tile` only exists inside `conv_tile`, whose contract makes `[s, e)` a run of
        // kept kernels with output channels in `[f0, f0 + FILTER_BLOCK)` and 4 weights each, `x`
        // a tile origin whose rows `< R + 2 / S` and columns `< NV * LANES + 2 / S` of every
        // phase plane lie inside the grid, and `acc` the block's accumulators.
        unsafe {
            // The run's 4 taps of the tile, loaded once for all its filters.
            let mut xv = [[[V::zero(); NV]; R]; TAPS];
            for t in 0..nt {
                let (ky, kx) = taps[t];
                let phase = (ky % S) * S + kx % S;
                let xt = self.x.add(phase * self.ps + ky / S * self.ws + kx / S);
                for r in 0..R {
                    for v in 0..NV {
                        xv[t][r][v] = V::load(xt.add(r * self.ws + v * V::LANES));
                    }
                }
            }
            for kk in self.s..self.e {
                let f = *self.ocs.add(kk) as usize - self.f0;
                let a = self.acc.add(f * R * NV * V::LANES);
                let wk = self.w.add(kk * TAPS);
                let mut wv = [V::zero(); TAPS];
                for t in 0..nt {
                    wv[t] = V::splat(*wk.add(t));
                }
                for r in 0..R {
                    for v in 0..NV {
                        let at = a.add((r * NV + v) * V::LANES);
                        let mut y = V::load(at);
                        for t in 0..nt {
                            y = V::fma(wv[t], xv[t][r][v], y);
                        }
                        y.store(at);
                    }
                }
            }
        }
    }
}

/// Stores rows `< h_out` and columns `< w_out` of one filter's `R × NV` accumulators `a` at
/// output `(r0, c0)` of the channel plane `out`, with the activation.
///
/// # Safety
/// `a` valid for `R * NV * LANES` reads, `out` for `h_out * w_out` writes; `V`'s ISA available.
#[inline(always)]
unsafe fn store<V: Simd, const R: usize, const NV: usize>(
    c: &ConvParams,
    a: *const f32,
    out: *mut f32,
    r0: usize,
    c0: usize,
) {
    // SAFETY: only pixels with row `< h_out` and column `< w_out` are written.
    unsafe {
        for r in 0..R {
            let oy = r0 + r;
            if oy >= c.h_out {
                break;
            }
            let row = out.add(oy * c.w_out);
            for v in 0..NV {
                let ox = c0 + v * V::LANES;
                if ox >= c.w_out {
                    break;
                }
                let y = act_v::<V>(c.act, V::load(a.add((r * NV + v) * V::LANES)));
                let n = c.w_out - ox;
                if n >= V::LANES {
                    y.store(row.add(ox));
                } else {
                    y.compress_store((1u32 << n) - 1, row.add(ox));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::Act;
    use std::vec;
    use std::vec::Vec;

    crate::pattern_library!(
        /// Every valid mask, id = index in `ALL_MASKS`.
        struct All56 = [
            0 => 0x017, 1 => 0x01b, 2 => 0x01d, 3 => 0x01e, 4 => 0x033, 5 => 0x035, 6 => 0x036,
            7 => 0x039, 8 => 0x03a, 9 => 0x03c, 10 => 0x053, 11 => 0x055, 12 => 0x056,
            13 => 0x059, 14 => 0x05a, 15 => 0x05c, 16 => 0x071, 17 => 0x072, 18 => 0x074,
            19 => 0x078, 20 => 0x093, 21 => 0x095, 22 => 0x096, 23 => 0x099, 24 => 0x09a,
            25 => 0x09c, 26 => 0x0b1, 27 => 0x0b2, 28 => 0x0b4, 29 => 0x0b8, 30 => 0x0d1,
            31 => 0x0d2, 32 => 0x0d4, 33 => 0x0d8, 34 => 0x0f0, 35 => 0x113, 36 => 0x115,
            37 => 0x116, 38 => 0x119, 39 => 0x11a, 40 => 0x11c, 41 => 0x131, 42 => 0x132,
            43 => 0x134, 44 => 0x138, 45 => 0x151, 46 => 0x152, 47 => 0x154, 48 => 0x158,
            49 => 0x170, 50 => 0x191, 51 => 0x192, 52 => 0x194, 53 => 0x198, 54 => 0x1b0,
            55 => 0x1d0,
        ];
    );

    crate::pattern_library!(
        /// A small library in a scrambled order (ids need not follow mask order).
        struct Lib3 = [0 => 0x0b2, 1 => 0x03a, 2 => 0x116];
    );

    fn params(
        c_in: usize,
        c_out: usize,
        (h, w): (usize, usize),
        pad: usize,
        act: Act,
    ) -> ConvParams {
        strided(c_in, c_out, (h, w), pad, act, 1)
    }

    /// [`params`] with stride `st` on both axes.
    fn strided(
        c_in: usize,
        c_out: usize,
        (h, w): (usize, usize),
        pad: usize,
        act: Act,
        st: usize,
    ) -> ConvParams {
        ConvParams {
            c_in,
            h_in: h,
            w_in: w,
            c_out,
            h_out: (h + 2 * pad - 3) / st + 1,
            w_out: (w + 2 * pad - 3) / st + 1,
            kh: 3,
            kw: 3,
            sh: st,
            sw: st,
            pad_top: pad,
            pad_left: pad,
            groups: 1,
            act,
        }
    }

    /// Random weights projected onto `assign` (zeros outside each kernel's mask).
    fn masked_weights(rng: &mut Rng, masks: &[u16], assign: &[u8]) -> Vec<f32> {
        let mut w = rng.vec(assign.len() * 9);
        for (k, &a) in assign.iter().enumerate() {
            let m = if a == PRUNED { 0 } else { masks[a as usize] };
            for b in 0..9 {
                if m >> b & 1 == 0 {
                    w[k * 9 + b] = 0.0;
                }
            }
        }
        w
    }

    /// Packs and runs `L` on every ISA against the scalar twin and the f64 reference.
    fn run_case<L: PatternLib>(p: &ConvParams, assign: &[u8], seed: u64) {
        let mut rng = Rng::new(seed);
        let x = rng.vec(p.input_len());
        let w = masked_weights(&mut rng, L::MASKS, assign);
        let b = rng.vec(p.c_out);
        let pp = pattern_params(p, L::MASKS, assign).unwrap();
        let mut packed = vec![0.0; pp.packed_len()];
        pack_pattern_weights(p, L::MASKS, &w, assign, &mut packed).unwrap();
        let want = conv_ref(p, &x, &w, &b);
        check_isas(&std::format!("{p:?}"), &want, false, |isa| {
            let mut out = vec![f32::NAN; p.output_len()];
            let mut scratch = vec![f32::NAN; pp.scratch_len()];
            pattern_conv2d_checked::<L>(isa, &pp, &x, &packed, &b, &mut out, &mut scratch).unwrap();
            // Parts (the threads of `infer_threads`), each with its own NaN scratch: together
            // bit for bit the whole call.
            let ctx = std::format!("{isa:?} {p:?}");
            check_parts(&ctx, &out, pp.scratch_len(), &[2, 3, 8], |part, o, sc| {
                // SAFETY: the buffers have the lengths `pattern_conv2d_checked` accepted.
                unsafe {
                    pattern_conv2d_part::<L>(
                        isa,
                        &pp,
                        part,
                        x.as_ptr(),
                        packed.as_ptr(),
                        b.as_ptr(),
                        o.as_mut_ptr(),
                        sc.as_mut_ptr(),
                    )
                }
            });
            out
        });
    }

    #[test]
    fn all_masks_are_the_56_valid_ones() {
        assert_eq!(ALL_MASKS.len(), 56);
        assert!(ALL_MASKS.iter().all(|&m| valid_mask(m)));
        assert_eq!(All56::MASKS, &ALL_MASKS[..]);
        assert!(!valid_mask(0x00f) && !valid_mask(0x01f) && !valid_mask(0x210));
    }

    #[test]
    fn every_pattern_on_edge_sizes() {
        // Each of the 56 patterns alone (every kernel of the layer uses it), over widths around
        // the lane counts, 1-pixel planes and odd channel counts, at stride 1 and at stride 2
        // (where each tap reads its own phase plane).
        let shapes = [(1, 1), (1, 5), (3, 17), (5, 9), (2, 33), (7, 4), (15, 15)];
        let wide = [(1, 1), (2, 3), (5, 34), (9, 17), (4, 66), (13, 8), (30, 31)];
        for (pid, _) in ALL_MASKS.iter().enumerate() {
            let c_in = CHANNELS[pid % CHANNELS.len()];
            let c_out = [1, 2, 3, 5][pid % 4];
            let assign = vec![pid as u8; c_in * c_out];
            let p = params(c_in, c_out, shapes[pid % 7], 1, ACTS[pid % 3]);
            run_case::<All56>(&p, &assign, pid as u64);
            let p = strided(c_in, c_out, wide[pid % 7], 1, ACTS[pid % 3], 2);
            run_case::<All56>(&p, &assign, 1000 + pid as u64);
        }
    }

    #[test]
    fn mixed_patterns_pruned_kernels_and_edges() {
        for (i, &w) in EDGE.iter().enumerate() {
            for (j, &c_in) in CHANNELS.iter().enumerate() {
                let h = [1, 2, 5, 8, 15, 16][(i + j) % 6];
                // Every other case at stride 2, on an input twice as large (odd sizes too).
                let st = 1 + (i + j) % 2;
                let p = strided(c_in, 7, (h * st + j % 2, w * st), 1, ACTS[(i + j) % 3], st);
                let mut rng = Rng::new((i * 10 + j) as u64);
                // About 1 kernel in 3 pruned; whole filters pruned now and then.
                let assign: Vec<u8> = (0..c_in * 7)
                    .map(|k| {
                        let r = rng.next_u64() % 4;
                        if r == 3 || (k / c_in == 2 && i % 2 == 0) {
                            PRUNED
                        } else {
                            r as u8
                        }
                    })
                    .collect();
                run_case::<Lib3>(&p, &assign, (i * 100 + j) as u64);
            }
        }
    }

    #[test]
    fn padding_variants_and_all_56_in_one_layer() {
        // pad 0 and pad 2 (the grid holds zeros past the input), asymmetric implied padding, at
        // both strides.
        for st in [1, 2] {
            for (pad, hw) in [(0usize, (6usize, 21usize)), (2, (4, 10)), (1, (9, 30))] {
                let p = strided(56, 3, hw, pad, Act::Relu, st);
                let assign: Vec<u8> = (0..56 * 3).map(|k| (k % 56) as u8).collect();
                run_case::<All56>(&p, &assign, 9 + pad as u64 + 10 * st as u64);
            }
            let mut p = strided(4, 6, (7, 13), 1, Act::Relu6, st);
            p.h_out -= 1; // bottom padding 0 (stride 1) or an unread last input row (stride 2)
            p.w_out -= 1;
            let assign: Vec<u8> = (0..24).map(|k| (k % 3) as u8).collect();
            run_case::<Lib3>(&p, &assign, 77 + st as u64);
        }
    }

    #[test]
    fn larger_layers_every_tile_shape() {
        // Widths that select NV = 1..4 on every ISA, heights not multiples of R.
        for (i, &(c, hw, st)) in [
            (16usize, 56usize, 1usize),
            (24, 28, 1),
            (32, 14, 1),
            (40, 7, 1),
            (9, 45, 1),
            (16, 112, 2),
            (24, 56, 2),
            (32, 28, 2),
            (12, 15, 2),
            // Grids past GRID_BYTES: several bands.
            (64, 56, 1),
            (64, 112, 2),
        ]
        .iter()
        .enumerate()
        {
            let p = strided(c, 11, (hw, hw), 1, Act::Relu, st);
            let (r, nv) = tile(16, true, p.w_out);
            let band = grid(&p, r, nv * 16, 16).1;
            assert!(c < 64 || band < p.h_out, "{p:?}: several bands");
            let assign: Vec<u8> = (0..c * 11)
                .map(|k| {
                    if k % 2 == 1 {
                        PRUNED
                    } else {
                        ((k / 2) % 56) as u8
                    }
                })
                .collect();
            run_case::<All56>(&p, &assign, 500 + i as u64);
        }
    }

    #[test]
    fn flat_tiles_on_small_maps() {
        // The layouts: ResNet's 7×7 maps (stride 1 and 2) run flat on AVX-512 and AVX2, a grid
        // past GRID_BYTES in row tiles, the scalar twin always in row tiles.
        let c4 = strided(8, 8, (7, 7), 1, Act::Relu, 1);
        let s2 = strided(8, 8, (14, 14), 1, Act::Relu, 2);
        let c1 = strided(64, 8, (112, 112), 1, Act::Relu, 1);
        for p in [&c4, &s2] {
            assert!(geom(p, 16, true).flat && geom(p, 8, false).flat, "{p:?}");
            assert!(!geom(p, 1, false).flat, "{p:?}");
        }
        assert!(!geom(&c1, 16, true).flat);
        // Row width: w_out + 1 at stride 1 with a zero column on both sides (shared), else
        // w_out + 2 / s; the half-width last tile when the remainder fits it (32 lanes).
        let c3 = strided(8, 8, (14, 14), 1, Act::Relu, 1);
        let c2 = strided(8, 8, (28, 28), 1, Act::Relu, 1);
        let g = |p: &ConvParams| {
            let g = geom(p, 16, true);
            (g.flat, g.ws, g.tail)
        };
        assert_eq!(g(&c3), (true, 15, true)); // 210 pixels: 3 tiles and a half
        assert_eq!(g(&c2), (true, 29, false)); // 812: 44 past 12 tiles
        assert_eq!(g(&c4), (true, 8, false)); // 56: one tile
        assert_eq!(g(&s2), (true, 8, false));
        assert_eq!(
            g(&strided(8, 8, (11, 11), 0, Act::Relu, 1)),
            (true, 11, false)
        );
        assert!(!geom(&c3, 8, false).tail && !geom(&c3, 4, false).tail);
        // No zero column on the right (w_out one short): rows stay w_out + 2 wide.
        let no_right = ConvParams { w_out: 13, ..c3 };
        assert_eq!(g(&no_right), (true, 15, true));
        // Flat maps with several tiles, a partial last tile, a half-width last tile (also
        // alone), several filter blocks, both strides, pad 0 and 1, no right padding column,
        // split into parts by `run_case`.
        let cases = [
            (13usize, 7usize, 1usize, 1usize, FILTER_BLOCK + 3),
            (20, 14, 2, 1, 9),
            (8, 3, 1, 1, 5),
            (6, 9, 1, 1, 17),
            (5, 1, 1, 1, 3),
            (7, 10, 2, 1, 4),
            (9, 11, 1, 0, 6),
            (4, 13, 2, 0, 7),
            (6, 14, 1, 1, FILTER_BLOCK + 2),
            (3, 4, 1, 1, 5),
            (5, 28, 1, 1, 6),
        ];
        let no_right = ConvParams {
            c_in: 4,
            c_out: 6,
            ..no_right
        };
        let shapes = cases
            .iter()
            .map(|&(c, hw, st, pad, c_out)| strided(c, c_out, (hw, hw), pad, Act::Relu, st))
            .chain([no_right]);
        for (i, p) in shapes.enumerate() {
            let p = ConvParams {
                act: ACTS[i % 3],
                ..p
            };
            let mut rng = Rng::new(700 + i as u64);
            let assign: Vec<u8> = (0..p.c_in * p.c_out)
                .map(|_| match rng.next_u64() % 4 {
                    3 => PRUNED,
                    r => r as u8,
                })
                .collect();
            run_case::<Lib3>(&p, &assign, 800 + i as u64);
        }
    }

    #[test]
    fn several_filter_blocks() {
        // More filters than one block: runs per (block, channel, pattern), each block's
        // accumulators in turn; the last block partial.
        for (st, c_out) in [(1usize, 2 * FILTER_BLOCK + 5), (2, FILTER_BLOCK + 1)] {
            let p = strided(5, c_out, (9 * st, 10 * st), 1, Act::Relu, st);
            let mut rng = Rng::new(c_out as u64);
            let assign: Vec<u8> = (0..5 * c_out)
                .map(|_| match rng.next_u64() % 4 {
                    3 => PRUNED,
                    r => r as u8,
                })
                .collect();
            run_case::<Lib3>(&p, &assign, 31 + st as u64);
        }
    }

    #[test]
    fn packer_layout_and_errors() {
        let p = params(3, 2, (4, 4), 1, Act::None);
        let masks = Lib3::MASKS;
        // Filter 0 keeps 1 kernel (ic 1, pattern 2), filter 1 keeps 3 (ic 0 pattern 1, ic 1
        // pattern 0, ic 2 pattern 1).
        let assign = [PRUNED, 2, PRUNED, 1, 0, 1];
        let mut rng = Rng::new(1);
        let w = masked_weights(&mut rng, masks, &assign);
        let pp = pattern_params(&p, masks, &assign).unwrap();
        assert_eq!(pp.kernels, 4);
        assert_eq!(pp.packed_len(), 3 * 3 + 1 + 5 * 4);
        assert_eq!(pp.macs(), 4 * 4 * 16);
        let mut out = vec![0.0; pp.packed_len()];
        pack_pattern_weights(&p, masks, &w, &assign, &mut out).unwrap();
        let u: Vec<u32> = out[..10 + 4].iter().map(|v| v.to_bits()).collect();
        // One filter block; runs by (channel, pattern): ic 0: p1 = [0, 1) (filter 1); ic 1:
        // p0 = [1, 2) (filter 1), p2 = [2, 3) (filter 0); ic 2: p1 = [3, 4) (filter 1); end 4.
        // Output channels [1, 1, 0, 1].
        assert_eq!(u, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 1, 1, 0, 1]);
        // The 4 weights of the first kernel (filter 1, ic 0, mask 0x03a = taps 1, 3, 4, 5).
        let k0 = &w[3 * 9..3 * 9 + 9];
        assert_eq!(&out[14..18], &[k0[1], k0[3], k0[4], k0[5]]);

        let mut bad_w = w.clone();
        bad_w[(3 + 1) * 9] = 1.0; // outside mask 0x0b2
        assert!(pack_pattern_weights(&p, masks, &bad_w, &assign, &mut out).is_err());
        assert!(pack_pattern_weights(&p, &[0x0b2, 0x0b2, 0x116], &w, &assign, &mut out).is_err());
        assert!(pack_pattern_weights(&p, &[0x0b2, 0x0f, 0x116], &w, &assign, &mut out).is_err());
        assert!(pattern_params(&p, masks, &[3, 0, 0, 0, 0, 0]).is_err());
        let uneven = ConvParams {
            sh: 2,
            h_out: 2,
            ..p
        };
        assert!(pack_pattern_weights(&uneven, masks, &w, &assign, &mut out).is_err());
        // A corrupt header is rejected by the checked wrapper.
        let x = vec![0.0; p.input_len()];
        let mut o = vec![0.0; p.output_len()];
        let mut s = vec![0.0; pp.scratch_len()];
        // An output channel past c_out; a run start past the kernels.
        for (at, word) in [(10 + 2, 2u32), (5, 99)] {
            let mut corrupt = out.clone();
            corrupt[at] = f32::from_bits(word);
            let r = pattern_conv2d_checked::<Lib3>(
                Isa::Scalar,
                &pp,
                &x,
                &corrupt,
                &[0.0; 2],
                &mut o,
                &mut s,
            );
            assert!(
                matches!(r, Err(KernelError::BadParams(_))),
                "word {at}: {r:?}"
            );
        }
        assert!(pattern_conv2d_checked::<All56>(
            Isa::Scalar,
            &pp,
            &x,
            &out,
            &[0.0; 2],
            &mut o,
            &mut s
        )
        .is_err());
    }
}
