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
//! `order[c_out]` (the output channel computed i-th: filters grouped by kernel count, most first),
//! `runs[c_out * K + 1]` (kernel index where filter i's run of pattern p starts; the next entry
//! ends it), `ic[n]` (input channel of each kept kernel, sorted by pattern then channel inside a
//! filter), `w[4 n]` (the 4 weights of each kernel in tap order, row-major).
//!
//! **Kernel.** The input is copied into a zero-padded grid in scratch, one band of output rows
//! at a time (the band's grid stays within about the L2 size). With stride 2 each channel holds
//! four phase planes (even/odd padded rows × even/odd padded columns), so every tap of a
//! stride-2 output row is again a contiguous run of one phase plane: tap `(ky, kx)` reads phase
//! `(ky % 2, kx % 2)` shifted by `(ky / 2, kx / 2)`. Each (phase) plane is stored once per
//! column shift, with a row stride that is a multiple of the vector width and the grid 64-byte
//! aligned, so every tap load is an aligned vector at a constant offset per mask (no load
//! splits a cache line, no tap needs a bounds check). Per filter, per tile of `R` output rows × `NV`
//! vectors along x, the accumulators start at the bias and stay in registers while the filter's
//! runs are visited; inside a run, each kernel is its channel index, 4 broadcast weights and, per
//! tap (a constant row/column offset of the grid), one FMA per accumulator with the shifted input
//! vector as memory operand: no per-weight index and no branch in the inner loop. Activation at
//! the store; partial vectors at the right edge are stored with a lane mask.

use crate::common::act_v;
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

/// Packed length: `c_out` (order) + `c_out * k + 1` (runs) + `n` (channels) + `4 n` (weights).
pub const fn packed_len(p: &ConvParams, k: usize, n: usize) -> usize {
    p.c_out + p.c_out * k + 1 + (1 + TAPS) * n
}

/// Register tile `(R, NV)` for an ISA with `lanes` f32 lanes and `many` (32) vector registers:
/// as many vectors along x as the row needs (up to 4), and rows so that the accumulators fill
/// about half the register file (14 or 7 for 32 registers: 56-, 28-, 14-, 7-row maps split
/// evenly).
pub const fn tile(lanes: usize, many: bool, w_out: usize) -> (usize, usize) {
    let nv = if lanes == 1 {
        4
    } else {
        match w_out.div_ceil(lanes) {
            1 => 1,
            2 => 2,
            _ => 4,
        }
    };
    (tile_rows(many, nv), nv)
}

/// Rows of the register tile for `nv` vectors (see [`tile`]).
pub const fn tile_rows(many: bool, nv: usize) -> usize {
    match (many, nv) {
        (true, 1) => 14,
        (true, 2) => 7,
        (true, _) => 4,
        (false, 1) => 7,
        (false, 2) => 4,
        (false, _) => 2,
    }
}

/// Largest [`tile_rows`].
const MAX_R: usize = 14;

/// Whether `V` has 32 vector registers (AVX-512, NEON), by its convolution tile.
const fn many_regs<V: Simd>() -> bool {
    V::CONV_MR >= 8
}

/// Grid geometry for one tile shape: (row stride `ws`, output rows per band, planes per
/// channel). Per channel the grid holds, for each stride phase (1 at stride 1, 4 at stride 2),
/// `2 / s + 1` copies shifted left by 0, 1 (and 2) columns, so tap `(ky, kx)` of a tile of
/// `r × tw` outputs reads `tw` columns of copy `kx / s` of phase `(ky % s, kx % s)`, rows
/// `ky / s` on. The row stride is a multiple of the vector width, so with the grid 64-byte
/// aligned every tap load is aligned. The grid covers a band of output rows at a time (a
/// multiple of `r`, at least `r`, plus `2 / s` halo rows) that keeps it within [`GRID_BYTES`]
/// and within the size of one plain zero-padded copy of the input, so the copies cost no
/// scratch beyond one band of `r` rows.
const fn grid(p: &ConvParams, r: usize, tw: usize, lanes: usize) -> (usize, usize, usize) {
    let halo = 2 / p.sh;
    let ws = (p.w_out.div_ceil(tw) * tw).next_multiple_of(lanes);
    let planes = p.sh * p.sw * (halo + 1);
    let all = p.h_out.div_ceil(r) * r;
    // No more than one unshifted copy of the padded input would take (so the copies cost no
    // scratch), nor more than GRID_BYTES.
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

/// Bytes of grid one band may fill: the shifted copies triple the lines a stride-1 kernel
/// touches, which pays while they stay in L2 (this machine's is 2 MiB). Measured on C1 (a
/// 2.8 MB grid): one band for the whole map 40 % slower than a plain grid without copies;
/// docs/BENCHMARKS.md, "Pattern pruning".
const GRID_BYTES: usize = 3 << 19;

/// Floats of slack [`scratch_len`] adds so the grid can start on a 64-byte boundary.
const ALIGN_SLACK: usize = 16;

/// The ISA configurations whose grids [`scratch_len`] covers: (lanes, 32 registers).
const CONFIGS: [(usize, bool); 5] = [(1, false), (4, false), (4, true), (8, false), (16, true)];

/// f32 of scratch: the largest band of the padded grid (`c_in × planes × (band + halo) × ws`)
/// of any ISA's tile, and room to align it.
pub const fn scratch_len(p: &ConvParams) -> usize {
    let mut best = 0;
    let mut i = 0;
    while i < CONFIGS.len() {
        let (lanes, many) = CONFIGS[i];
        let (r, nv) = tile(lanes, many, p.w_out);
        let (ws, band, planes) = grid(p, r, nv * lanes, lanes);
        let n = p.c_in * planes * (band + 2 / p.sh) * ws + ALIGN_SLACK;
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
    // Filters grouped by kernel count (most first, stable).
    let count = |oc: usize| {
        assign[oc * c_in..(oc + 1) * c_in]
            .iter()
            .filter(|&&a| a != PRUNED)
            .count()
    };
    // Filters grouped by kernel count, most first (stable): no allocation in this crate, so
    // one pass per distinct count (build time only).
    let max_count = (0..c_out).map(count).max().unwrap_or(0);
    let filters = (0..=max_count)
        .rev()
        .flat_map(|cnt| (0..c_out).filter(move |&oc| count(oc) == cnt));
    let (ord, rest) = out.split_at_mut(c_out);
    let (runs, rest) = rest.split_at_mut(c_out * k + 1);
    let (ics, w) = rest.split_at_mut(pp.kernels);
    let mut n = 0usize;
    for (i, oc) in filters.enumerate() {
        ord[i] = f32::from_bits(oc as u32);
        for (pid, &m) in masks.iter().enumerate() {
            runs[i * k + pid] = f32::from_bits(n as u32);
            for ic in 0..c_in {
                if assign[oc * c_in + ic] as usize != pid {
                    continue;
                }
                ics[n] = f32::from_bits(ic as u32);
                let src = &oihw[(oc * c_in + ic) * 9..(oc * c_in + ic) * 9 + 9];
                let mut t = 0;
                for (b, &v) in src.iter().enumerate() {
                    if m >> b & 1 != 0 {
                        w[n * TAPS + t] = v;
                        t += 1;
                    }
                }
                n += 1;
            }
        }
    }
    runs[c_out * k] = f32::from_bits(n as u32);
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
    /// `part = (k, n)`: part `k` of `n` computes only the filters `c_out * k / n ..
    /// c_out * (k + 1) / n` of the packed order (each writes its own output channels; every part
    /// fills its own grid), so `n` threads with their own scratch compute the whole conv; `(0, 1)`
    /// is all of it ([`pattern_conv2d`]).
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
    // The header must index inside the buffers: a permutation and monotone runs ending at n.
    let word = |i: usize| packed[i].to_bits() as usize;
    let mut seen = [false; 64];
    for i in 0..c.c_out {
        let f = word(i);
        if f >= c.c_out {
            return Err(KernelError::BadParams("pattern conv: bad filter order"));
        }
        if f < 64 {
            if seen[f] {
                return Err(KernelError::BadParams("pattern conv: bad filter order"));
            }
            seen[f] = true;
        }
    }
    let k = p.patterns;
    let runs = c.c_out;
    let mut prev = 0;
    for i in 0..=c.c_out * k {
        let r = word(runs + i);
        if r < prev || r > p.kernels {
            return Err(KernelError::BadParams("pattern conv: bad run table"));
        }
        prev = r;
    }
    if prev != p.kernels {
        return Err(KernelError::BadParams("pattern conv: bad run table"));
    }
    let ics = runs + c.c_out * k + 1;
    if (0..p.kernels).any(|j| word(ics + j) >= c.c_in) {
        return Err(KernelError::BadParams("pattern conv: bad input channel"));
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

/// [`conv_tile`] with the `NV` of `tile(V::LANES, many_regs::<V>(), w_out)`.
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
    // SAFETY: forwarded contract; `NV` is what `scratch_len` sized the grid for.
    unsafe {
        match tile(V::LANES, many_regs::<V>(), p.conv.w_out).1 {
            1 => conv_tile::<V, L, S, 1>(p, part, input, packed, bias, output, scratch),
            2 => conv_tile::<V, L, S, 2>(p, part, input, packed, bias, output, scratch),
            _ => conv_tile::<V, L, S, 4>(p, part, input, packed, bias, output, scratch),
        }
    }
}

/// Copies one band of the zero-padded input into the grid (see [`grid`]): per channel, per
/// stride phase `(py, px)` (stride `st` = 1: only `(0, 0)`), `nd` copies of `rows × ws`; copy
/// `dx` at `(r, j)` holds the zero-padded input at `(st (rb + r) + py, st (j + dx) + px)`, i.e.
/// the input `pad_top` rows and `pad_left` columns before that, or zero outside it.
///
/// # Safety
/// `input` valid for `p.input_len()` reads; `dst` for `c_in * st² * nd * rows * ws` writes, not
/// overlapping.
unsafe fn fill_grid(
    p: &ConvParams,
    input: *const f32,
    dst: *mut f32,
    (ws, rows, nd): (usize, usize, usize),
    rb: usize,
) {
    let plane = p.h_in * p.w_in;
    let st = p.sh;
    let ps = rows * ws;
    // SAFETY: writes stay below `c_in * st² * nd * rows * ws`; reads at rows `< h_in`, columns
    // `< w_in` of channels `< c_in`.
    unsafe {
        for c in 0..p.c_in {
            let src = input.add(c * plane);
            for py in 0..st {
                for px in 0..st {
                    for dx in 0..nd {
                        let base = dst.add((((c * st + py) * st + px) * nd + dx) * ps);
                        for r in 0..rows {
                            let row = base.add(r * ws);
                            let y = st * (rb + r) + py;
                            if y < p.pad_top || y - p.pad_top >= p.h_in {
                                core::ptr::write_bytes(row, 0, ws);
                                continue;
                            }
                            let srow = src.add((y - p.pad_top) * p.w_in);
                            // Grid column j holds padded column st (j + dx) + px, i.e. input
                            // column st j + o: zeros, then the input columns [lo, hi), zeros.
                            let o = (st * dx + px) as isize - p.pad_left as isize;
                            let first = |x: isize| {
                                if x <= 0 {
                                    0
                                } else {
                                    (x as usize).div_ceil(st).min(ws)
                                }
                            };
                            let lo = first(-o);
                            let hi = first(p.w_in as isize - o).max(lo);
                            core::ptr::write_bytes(row, 0, lo);
                            if hi > lo {
                                // Input column st lo + o >= 0 is the first one read.
                                let s0 = srow.add(((st * lo) as isize + o) as usize);
                                if st == 1 {
                                    core::ptr::copy_nonoverlapping(s0, row.add(lo), hi - lo);
                                } else {
                                    for j in 0..hi - lo {
                                        *row.add(lo + j) = *s0.add(st * j);
                                    }
                                }
                            }
                            core::ptr::write_bytes(row.add(hi), 0, ws - hi);
                        }
                    }
                }
            }
        }
    }
}

/// The loop nest for one register tile shape: fill the grid, then per filter (in packed order)
/// per tile: bias, every non-empty run through `L`, activation and store.
///
/// # Safety
/// Contract of [`pattern_conv2d`]; `(R, NV)` is the tile [`scratch_len`] covers for `V`.
#[inline(always)]
unsafe fn conv_tile<V: Simd, L: PatternLib, const S: usize, const NV: usize>(
    p: &PatternParams,
    (part, parts): (usize, usize),
    input: *const f32,
    packed: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
) {
    let c = &p.conv;
    let tw = NV * V::LANES;
    let rt = const { tile_rows(many_regs::<V>(), NV) };
    let (ws, band, planes) = grid(c, rt, tw, V::LANES);
    let rows = band + 2 / S;
    let k = p.patterns;
    let plane = c.h_out * c.w_out;
    let parts = if parts == 0 { 1 } else { parts };
    let (i0, i1) = (c.c_out * part / parts, c.c_out * (part + 1) / parts);
    if part >= parts || i0 >= i1 {
        return;
    }
    // SAFETY: the packed header indexes inside the buffers (caller contract); every tile reads
    // band rows `< rows` and columns `< ws` of channels `< c_in`; stores stay inside the output.
    unsafe {
        let scratch = scratch.add(scratch.align_offset(64).min(ALIGN_SLACK));
        let order = packed as *const u32;
        let runs = order.add(c.c_out);
        let ics = runs.add(c.c_out * k + 1);
        let w = ics.add(p.kernels) as *const f32;
        let mut b0 = 0;
        while b0 < c.h_out {
            fill_grid(c, input, scratch, (ws, rows, planes / (S * S)), b0);
            let b1 = if b0 + band < c.h_out {
                b0 + band
            } else {
                c.h_out
            };
            // Filter outer (its kept channels' grid rows stream through L1/L2 once per filter),
            // tiles inner; measured faster than tile-outer orders with or without L1 channel
            // blocks (docs/BENCHMARKS.md, "Pattern pruning").
            for i in i0..i1 {
                let f = *order.add(i) as usize;
                let b = V::splat(*bias.add(f));
                let out = output.add(f * plane);
                let rr = runs.add(i * k);
                let mut r0 = b0;
                while r0 < b1 {
                    let mut c0 = 0;
                    while c0 < c.w_out {
                        let mut t = Tile::<V, S, NV> {
                            acc: [[b; NV]; MAX_R],
                            x: scratch.add((r0 - b0) * ws + c0),
                            cs: planes * rows * ws,
                            ps: rows * ws,
                            ws,
                            ics,
                            w,
                            s: 0,
                            e: 0,
                        };
                        let mut s = *rr as usize;
                        for pid in 0..k {
                            let e = *rr.add(pid + 1) as usize;
                            if e > s {
                                t.s = s;
                                t.e = e;
                                L::visit(pid, &mut t);
                            }
                            s = e;
                        }
                        t.store(c, out, r0, c0);
                        c0 += tw;
                    }
                    r0 += rt;
                }
            }
            b0 += band;
        }
    }
}

/// The register tile of one filter at stride `S`: `R = tile_rows(..)` rows × `NV` vectors of
/// accumulators (the first `R` rows of `acc` are used) at grid `x`, and the run `[s, e)` of kept
/// kernels the next `visit` adds.
struct Tile<V: Simd, const S: usize, const NV: usize> {
    acc: [[V; NV]; MAX_R],
    /// Grid of channel 0, phase 0, at the tile's first output pixel.
    x: *const f32,
    /// Floats per grid channel (all its phase planes).
    cs: usize,
    /// Floats per phase plane.
    ps: usize,
    /// Grid row stride.
    ws: usize,
    ics: *const u32,
    w: *const f32,
    s: usize,
    e: usize,
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

impl<V: Simd, const S: usize, const NV: usize> PatternVisitor for Tile<V, S, NV> {
    // Const-bounded indices keep the accumulators in registers after unrolling.
    #[allow(clippy::needless_range_loop)]
    #[inline(always)]
    fn visit<const MASK: u16>(&mut self) {
        let (taps, nt) = const { taps_of(MASK) };
        let rt = const { tile_rows(many_regs::<V>(), NV) };
        // SAFETY: a `Tile` only exists inside `conv_tile`, whose contract makes `[s, e)` a run of
        // kept kernels with channels `< c_in` and 4 weights each, and `x` a tile origin whose
        // rows `< rt + 2 / S` and columns `< NV * LANES + 2 / S` of every phase plane lie inside
        // the grid.
        unsafe {
            for kk in self.s..self.e {
                let xc = self.x.add(*self.ics.add(kk) as usize * self.cs);
                let wk = self.w.add(kk * TAPS);
                for t in 0..nt {
                    let (ky, kx) = taps[t];
                    let wv = V::splat(*wk.add(t));
                    let copy = ((ky % S) * S + kx % S) * (2 / S + 1) + kx / S;
                    let xt = xc.add(copy * self.ps + ky / S * self.ws);
                    for r in 0..rt {
                        let xr = xt.add(r * self.ws);
                        for v in 0..NV {
                            self.acc[r][v] =
                                V::fma(wv, V::load(xr.add(v * V::LANES)), self.acc[r][v]);
                        }
                    }
                }
            }
        }
    }
}

impl<V: Simd, const S: usize, const NV: usize> Tile<V, S, NV> {
    /// Stores rows `< h_out` and columns `< w_out` of the tile at output `(r0, c0)` of the
    /// channel plane `out`, with the activation.
    ///
    /// # Safety
    /// `out` valid for `h_out * w_out` writes; `V`'s ISA available.
    #[allow(clippy::needless_range_loop)]
    #[inline(always)]
    unsafe fn store(&self, c: &ConvParams, out: *mut f32, r0: usize, c0: usize) {
        let rt = const { tile_rows(many_regs::<V>(), NV) };
        // SAFETY: only pixels with row `< h_out` and column `< w_out` are written.
        unsafe {
            for r in 0..rt {
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
                    let y = act_v::<V>(c.act, self.acc[r][v]);
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
    fn packer_layout_and_errors() {
        let p = params(3, 2, (4, 4), 1, Act::None);
        let masks = Lib3::MASKS;
        // Filter 0 keeps 1 kernel, filter 1 keeps 3: filter 1 goes first.
        let assign = [PRUNED, 2, PRUNED, 1, 0, 1];
        let mut rng = Rng::new(1);
        let w = masked_weights(&mut rng, masks, &assign);
        let pp = pattern_params(&p, masks, &assign).unwrap();
        assert_eq!(pp.kernels, 4);
        assert_eq!(pp.packed_len(), 2 + 2 * 3 + 1 + 5 * 4);
        assert_eq!(pp.macs(), 4 * 4 * 16);
        let mut out = vec![0.0; pp.packed_len()];
        pack_pattern_weights(&p, masks, &w, &assign, &mut out).unwrap();
        let u: Vec<u32> = out[..2 + 7 + 4].iter().map(|v| v.to_bits()).collect();
        // order [1, 0]; runs: filter 1: p0 at 0 (ic 1), p1 at 1 (ic 0, 2), p2 at 3 (none);
        // filter 0: p0 at 3, p1 at 3, p2 at 3 (ic 1), end 4; channels [1, 0, 2, 1].
        assert_eq!(u, [1, 0, 0, 1, 3, 3, 3, 3, 4, 1, 0, 2, 1]);
        // The 4 weights of the first kernel (filter 1, ic 1, mask 0x0b2 = taps 1, 4, 5, 7).
        let k0 = &w[(3 + 1) * 9..(3 + 1) * 9 + 9];
        assert_eq!(&out[13..17], &[k0[1], k0[4], k0[5], k0[7]]);

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
        let mut corrupt = out.clone();
        corrupt[2 + 6] = f32::from_bits(99);
        assert!(pattern_conv2d_checked::<Lib3>(
            Isa::Scalar,
            &pp,
            &x,
            &corrupt,
            &[0.0; 2],
            &mut o,
            &mut s
        )
        .is_err());
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
