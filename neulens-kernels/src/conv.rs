//! 2-D convolution (PyTorch cross-correlation, zero padding, groups, fused bias + activation):
//! parameters, weight packing, and the loop nests (general direct, 1x1 GEMM, depthwise).

use crate::simd::Simd;
use crate::{check_isa, check_len, Act, Isa, KernelError};
use crate::{cvec, direct};

/// Shape and hyper-parameters of one convolution (CHW input, batch 1).
///
/// Output pixel `(oy, ox)` reads input rows `oy * sh - pad_top + ky` and columns
/// `ox * sw - pad_left + kx`; anything outside the input is zero (so bottom/right padding is
/// implied by `h_out`/`w_out`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvParams {
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h_in: usize,
    /// Input width.
    pub w_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Zero rows above the input.
    pub pad_top: usize,
    /// Zero columns left of the input.
    pub pad_left: usize,
    /// Groups (`c_in` and `c_out` are multiples of it; `groups == c_in` is depthwise).
    pub groups: usize,
    /// Activation applied after the bias.
    pub act: Act,
}

impl ConvParams {
    /// f32 of scratch memory [`conv2d`] runs fastest with (padded input copies); the planner
    /// gives each conv its own arena range of this length (or of [`ConvParams::min_scratch_len`]
    /// under a tight arena budget), live only during the call.
    ///
    /// Depthwise: one input channel's grid (see `direct.rs`). 1x1 (stride 1, unpadded): none,
    /// or a zero-padded panel of `MAX_TW` pixels per input channel for planes smaller than
    /// that. Otherwise one band of grid rows: of all input channels when one tile's rows of
    /// them fit the L1 cache (no partial sums between channel blocks), else of a block of
    /// channels. Grids carry `MAX_TW + kw` floats of zeroed slack.
    pub const fn scratch_len(&self) -> usize {
        self.scratch(false)
    }
    /// The least scratch [`conv2d`] runs with: the grid in bands of fewer input channels,
    /// whose partial sums are stored and reloaded between channel blocks (at most
    /// [`ConvParams::scratch_len`]).
    pub const fn min_scratch_len(&self) -> usize {
        self.scratch(true)
    }
    const fn scratch(&self, least: bool) -> usize {
        if !self.is_sane() {
            return 0;
        }
        let g = direct::Grid::of(self);
        if self.is_depthwise() {
            g.channel_len() + direct::grid_slack(self)
        } else if self.is_pointwise() {
            if self.h_in * self.w_in < direct::MAX_TW {
                (self.c_in / self.groups) * direct::MAX_TW
            } else {
                0
            }
        } else if cvec::applies(self) {
            if least {
                cvec::min_scratch_len(self)
            } else {
                cvec::scratch_len(self)
            }
        } else if least {
            direct::band_min_scratch_len(self)
        } else {
            direct::band_scratch_len(self)
        }
    }
    /// `c_in * h_in * w_in`.
    pub const fn input_len(&self) -> usize {
        self.c_in * self.h_in * self.w_in
    }
    /// `c_out * h_out * w_out`.
    pub const fn output_len(&self) -> usize {
        self.c_out * self.h_out * self.w_out
    }
    /// PyTorch OIHW weight count: `c_out * (c_in / groups) * kh * kw`.
    pub const fn weight_len(&self) -> usize {
        if self.groups == 0 {
            return 0;
        }
        self.c_out * (self.c_in / self.groups) * self.kh * self.kw
    }
    /// Length of the packed weights: depthwise keeps one weight per tap (reordered by stride
    /// phase); otherwise output channels are padded to panels of 8 (see `direct.rs`).
    pub const fn packed_weight_len(&self) -> usize {
        if !self.is_sane() {
            return 0;
        }
        if self.is_depthwise() {
            self.weight_len()
        } else if cvec::applies(self) {
            cvec::packed_len(self)
        } else {
            direct::packed_len(self)
        }
    }
    /// Multiply-accumulates, counting padded taps: `output_len * (c_in / groups) * kh * kw`.
    pub const fn macs(&self) -> u64 {
        if self.groups == 0 {
            return 0;
        }
        self.output_len() as u64
            * (self.c_in / self.groups) as u64
            * self.kh as u64
            * self.kw as u64
    }

    /// Checks that sizes are nonzero, `groups` divides `c_in` and `c_out`, lengths do not
    /// overflow, and that the padding implied below/right of the input is at most
    /// `max(pad + 1, k - 1)` (so `h_out`/`w_out` are consistent with PyTorch or TF "SAME").
    pub fn validate(&self) -> Result<(), KernelError> {
        let sizes = [
            self.c_in,
            self.h_in,
            self.w_in,
            self.c_out,
            self.h_out,
            self.w_out,
            self.kh,
            self.kw,
            self.sh,
            self.sw,
            self.groups,
        ];
        if sizes.contains(&0) {
            return Err(KernelError::BadParams(
                "conv: all sizes, strides and groups must be nonzero",
            ));
        }
        if !self.c_in.is_multiple_of(self.groups) || !self.c_out.is_multiple_of(self.groups) {
            return Err(KernelError::BadParams(
                "conv: groups must divide c_in and c_out",
            ));
        }
        let lens = [
            [self.c_in, self.h_in, self.w_in, 1],
            [self.c_out, self.h_out, self.w_out, 1],
            [self.c_out, self.c_in / self.groups, self.kh, self.kw],
        ];
        for l in lens {
            if l.iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .is_none()
            {
                return Err(KernelError::BadParams(
                    "conv: tensor length overflows usize",
                ));
            }
        }
        let axes = [
            (
                self.h_out,
                self.sh,
                self.kh,
                self.h_in,
                self.pad_top,
                "conv: h_out too large for h_in, kh, sh and pad_top",
            ),
            (
                self.w_out,
                self.sw,
                self.kw,
                self.w_in,
                self.pad_left,
                "conv: w_out too large for w_in, kw, sw and pad_left",
            ),
        ];
        for (n_out, s, k, n_in, pad, msg) in axes {
            // Padding implied after the input; allow up to max(pad + 1, k - 1) (PyTorch
            // symmetric, TF "SAME" and full padding all fit).
            let need = (n_out - 1).checked_mul(s).and_then(|v| v.checked_add(k));
            let Some(need) = need else {
                return Err(KernelError::BadParams(msg));
            };
            if need.saturating_sub(n_in + pad) > core::cmp::max(pad + 1, k - 1) {
                return Err(KernelError::BadParams(msg));
            }
        }
        Ok(())
    }

    /// Whether the direct kernel runs this conv with the output channels in the vector lanes
    /// (small output maps; weights packed in 16-channel blocks) rather than the pixels. A pure
    /// function of the shape that does not depend on `c_out`; the build report and the cost
    /// model (`neulens-codegen` `plan::conv_cost`) read it.
    pub const fn channel_vectorized(&self) -> bool {
        self.is_sane() && !self.is_depthwise() && cvec::applies(self)
    }

    /// Nonzero sizes, strides and groups (what the `const fn` lengths need not to overflow
    /// into nonsense; [`ConvParams::validate`] checks the rest).
    const fn is_sane(&self) -> bool {
        self.c_in > 0
            && self.c_out > 0
            && self.kh > 0
            && self.kw > 0
            && self.sh > 0
            && self.sw > 0
            && self.groups > 0
    }

    /// Depthwise: one input channel per group (and more than one group).
    pub(crate) const fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.c_in
    }

    /// 1x1, stride 1, unpadded, same size: a GEMM straight on the input.
    pub(crate) const fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.h_out == self.h_in
            && self.w_out == self.w_in
    }
}

/// Build time: converts PyTorch OIHW weights into the kernel's packed layout
/// (`out.len() == p.packed_weight_len()`).
pub fn pack_conv_weights(p: &ConvParams, oihw: &[f32], out: &mut [f32]) -> Result<(), KernelError> {
    p.validate()?;
    check_len("conv weights (OIHW)", p.weight_len(), oihw.len())?;
    check_len("packed conv weights", p.packed_weight_len(), out.len())?;
    if p.is_depthwise() {
        direct::pack_depthwise(p, oihw, out);
    } else if cvec::applies(p) {
        cvec::pack(p, oihw, out);
    } else {
        direct::pack(p, oihw, out);
    }
    Ok(())
}

/// Convolution + bias + activation (see [`ConvParams`]).
///
/// # Safety
/// `p` is valid ([`ConvParams::validate`]); `input` is valid for `p.input_len()` reads,
/// `packed_w` for `p.packed_weight_len()` reads (from [`pack_conv_weights`]), `bias` for
/// `p.c_out` reads, `output` for `p.output_len()` writes, `scratch` for `scratch_len`
/// reads and writes (may dangle when that is 0), with `scratch_len` at least
/// [`ConvParams::min_scratch_len`] (the kernel picks the fastest banding that fits it);
/// `output` and `scratch` do not overlap each other or the other buffers; `isa` is
/// available on this CPU (an ISA of another architecture runs the scalar twin).
#[allow(clippy::too_many_arguments)]
pub unsafe fn conv2d(
    isa: Isa,
    p: &ConvParams,
    input: *const f32,
    packed_w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
    scratch_len: usize,
) {
    // SAFETY: forwarded contract; the one part of one is the whole conv (every output channel,
    // `p`'s own kernel choice).
    unsafe {
        conv2d_part(
            isa,
            p,
            (0, 1),
            input,
            packed_w,
            bias,
            output,
            scratch,
            scratch_len,
        )
    }
}

dispatch! {
    /// [`conv2d`] with the direct kernel chosen by the caller: `cvec` is
    /// `cvec::applies` of the whole convolution `p` is a part of (the choice depends on
    /// `c_out`, the packing follows the whole conv's). The one per-ISA instantiation of the
    /// direct kernels: [`conv2d_part`] calls it, and [`conv2d`] is its part `(0, 1)`.
    ///
    /// # Safety
    /// The contract of [`conv2d`], with `packed_w` packed for `cvec`'s kernel.
    unsafe fn conv2d_as(p: &ConvParams, cvec: bool, input: *const f32, packed_w: *const f32, bias: *const f32, output: *mut f32, scratch: *mut f32, scratch_len: usize) => conv2d_as_impl
}

/// Output channels `[oc0, oc1)` of part `part` of `parts` of a conv with `c_out` output
/// channels: contiguous runs of whole 8-channel weight panels (the packing unit of the direct
/// and the Winograd kernels), as even as that allows; empty for parts past the last panel.
pub const fn channel_part(c_out: usize, part: usize, parts: usize) -> (usize, usize) {
    crate::part_range(c_out, direct::PACK_MR, part, parts)
}

/// Part `part` of `parts` of [`conv2d`]: the output channels of [`channel_part`] (a grouped or
/// depthwise conv runs whole in part 0 and not at all in the others). `parts` threads, each
/// with its own scratch, compute the whole convolution between two barriers; every part reads
/// all of the input and writes only its own output channels.
///
/// # Safety
/// The contract of [`conv2d`] for `p`, for each part; `scratch` is this part's own.
#[allow(clippy::too_many_arguments)]
pub unsafe fn conv2d_part(
    isa: Isa,
    p: &ConvParams,
    (part, parts): (usize, usize),
    input: *const f32,
    packed_w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
    scratch_len: usize,
) {
    let (o0, o1) = if cvec::applies(p) {
        // Whole 16-channel blocks of the channel-vectorized packing.
        crate::part_range(p.c_out, cvec::BLOCK, part, parts)
    } else if p.groups == 1 {
        channel_part(p.c_out, part, parts)
    } else if part == 0 {
        (0, p.c_out)
    } else {
        (0, 0)
    };
    if o0 >= o1 {
        return;
    }
    let sub = ConvParams {
        c_out: o1 - o0,
        ..*p
    };
    // Packed panels of 8 (or blocks of 16) output channels are `8 (16) * c_in * kh * kw`
    // consecutive floats (groups 1), and `o0` is a multiple of 8 (16) or 0; the scratch does
    // not depend on `c_out`, and the part runs the whole conv's kernel.
    let per_channel = if p.groups == 1 {
        p.c_in * p.kh * p.kw
    } else {
        0
    };
    // SAFETY: `sub` is `p` restricted to channels `o0..o1`, whose packed weights, bias and
    // output planes start at the offsets below and lie inside the caller's buffers.
    unsafe {
        conv2d_as(
            isa,
            &sub,
            cvec::applies(p),
            input,
            packed_w.add(o0 * per_channel),
            bias.add(o0),
            output.add(o0 * p.h_out * p.w_out),
            scratch,
            scratch_len,
        )
    }
}

/// Safe [`conv2d`] for convolutions that need no scratch (`p.scratch_len() == 0`); see
/// [`conv2d_scratch_checked`] otherwise.
pub fn conv2d_checked(
    isa: Isa,
    p: &ConvParams,
    input: &[f32],
    packed_w: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<(), KernelError> {
    conv2d_scratch_checked(isa, p, input, packed_w, bias, output, &mut [])
}

/// Safe [`conv2d`]: checks parameters, slice lengths and ISA availability. `scratch` holds at
/// least [`ConvParams::min_scratch_len`] floats ([`ConvParams::scratch_len`] runs fastest).
pub fn conv2d_scratch_checked(
    isa: Isa,
    p: &ConvParams,
    input: &[f32],
    packed_w: &[f32],
    bias: &[f32],
    output: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), KernelError> {
    p.validate()?;
    check_len("input", p.input_len(), input.len())?;
    check_len("packed_w", p.packed_weight_len(), packed_w.len())?;
    check_len("bias", p.c_out, bias.len())?;
    check_len("output", p.output_len(), output.len())?;
    if scratch.len() < p.min_scratch_len() {
        return Err(KernelError::BadLength {
            what: "scratch",
            expected: p.min_scratch_len(),
            found: scratch.len(),
        });
    }
    check_isa(isa)?;
    // SAFETY: lengths checked above, the `&mut` slices cannot alias each other or the shared
    // ones, params validated and ISA available.
    unsafe {
        conv2d(
            isa,
            p,
            input.as_ptr(),
            packed_w.as_ptr(),
            bias.as_ptr(),
            output.as_mut_ptr(),
            scratch.as_mut_ptr(),
            scratch.len(),
        )
    };
    Ok(())
}

impl ConvParams {
    /// Whether [`conv2d_global_max`] runs `p`: a sane shape with groups 1 (any kernel, stride,
    /// padding and map size).
    pub const fn global_max_supported(&self) -> bool {
        self.is_sane() && self.groups == 1
    }
    /// Packed weight length of [`conv2d_global_max`] (16-channel blocks, whatever the map).
    pub const fn global_max_packed_len(&self) -> usize {
        if !self.global_max_supported() {
            return 0;
        }
        cvec::packed_len(self)
    }
    /// Scratch [`conv2d_global_max`] runs fastest with: a zero-padded copy of the input, none
    /// when every tap reads inside the input.
    pub const fn global_max_scratch_len(&self) -> usize {
        if !self.global_max_supported() {
            return 0;
        }
        cvec::scratch_len(self)
    }
    /// The least scratch of [`conv2d_global_max`]: the padded rows of one output row.
    pub const fn global_max_min_scratch_len(&self) -> usize {
        if !self.global_max_supported() {
            return 0;
        }
        cvec::min_scratch_len(self)
    }
}

/// Build time: PyTorch OIHW weights packed for [`conv2d_global_max`]
/// (`out.len() == p.global_max_packed_len()`).
pub fn pack_global_max_weights(
    p: &ConvParams,
    oihw: &[f32],
    out: &mut [f32],
) -> Result<(), KernelError> {
    p.validate()?;
    if !p.global_max_supported() {
        return Err(KernelError::BadParams(
            "a convolution fused with a global max pool needs groups 1",
        ));
    }
    check_len("conv weights (OIHW)", p.weight_len(), oihw.len())?;
    check_len("packed conv weights", p.global_max_packed_len(), out.len())?;
    cvec::pack(p, oihw, out);
    Ok(())
}

dispatch! {
    /// Convolution + bias + activation followed by a global max pool, without storing the
    /// map: `output[c]` is the largest value of output channel `c` (`c_out` floats). The
    /// channel-vectorized tiles of the direct kernel keep running maxima instead of storing
    /// their pixels, so the map (for example a micro-flow gate's 16×19×19) is never written
    /// or read back.
    ///
    /// # Safety
    /// `p` is valid and [`ConvParams::global_max_supported`]; `input` is valid for
    /// `p.input_len()` reads, `packed_w` for `p.global_max_packed_len()` reads (from
    /// [`pack_global_max_weights`]), `bias` for `p.c_out` reads, `output` for `p.c_out`
    /// writes, `scratch` for `scratch_len` reads and writes (may dangle when that is 0), with
    /// `scratch_len` at least [`ConvParams::global_max_min_scratch_len`]; `output` and
    /// `scratch` do not overlap each other or the other buffers; `isa` is available.
    pub unsafe fn conv2d_global_max(p: &ConvParams, input: *const f32, packed_w: *const f32, bias: *const f32, output: *mut f32, scratch: *mut f32, scratch_len: usize) => conv2d_global_max_impl
}

/// Part `part` of `parts` of [`conv2d_global_max`]: the maxima of whole 16-channel blocks of
/// output channels (the packing unit), as even as that allows; nothing for parts past the last
/// block. Every part reads all of the input and writes only its own channels' maxima.
///
/// # Safety
/// The contract of [`conv2d_global_max`] for `p`, for each part; `scratch` is this part's own.
#[allow(clippy::too_many_arguments)]
pub unsafe fn conv2d_global_max_part(
    isa: Isa,
    p: &ConvParams,
    (part, parts): (usize, usize),
    input: *const f32,
    packed_w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
    scratch_len: usize,
) {
    let (o0, o1) = crate::part_range(p.c_out, cvec::BLOCK, part, parts);
    if o0 >= o1 {
        return;
    }
    let sub = ConvParams {
        c_out: o1 - o0,
        ..*p
    };
    // SAFETY: `o0` is a multiple of 16, so channels `o0..o1` are whole packed blocks of
    // `16 * c_in * kh * kw` floats (groups 1) starting at `o0 * c_in * kh * kw`; their bias and
    // maxima start at `o0`; the scratch does not depend on `c_out`.
    unsafe {
        conv2d_global_max(
            isa,
            &sub,
            input,
            packed_w.add(o0 * p.c_in * p.kh * p.kw),
            bias.add(o0),
            output.add(o0),
            scratch,
            scratch_len,
        )
    }
}

/// Safe [`conv2d_global_max`]: checks parameters, slice lengths and ISA availability.
pub fn conv2d_global_max_checked(
    isa: Isa,
    p: &ConvParams,
    input: &[f32],
    packed_w: &[f32],
    bias: &[f32],
    output: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), KernelError> {
    p.validate()?;
    if !p.global_max_supported() {
        return Err(KernelError::BadParams(
            "a convolution fused with a global max pool needs groups 1",
        ));
    }
    check_len("input", p.input_len(), input.len())?;
    check_len("packed_w", p.global_max_packed_len(), packed_w.len())?;
    check_len("bias", p.c_out, bias.len())?;
    check_len("output", p.c_out, output.len())?;
    if scratch.len() < p.global_max_min_scratch_len() {
        return Err(KernelError::BadLength {
            what: "scratch",
            expected: p.global_max_min_scratch_len(),
            found: scratch.len(),
        });
    }
    check_isa(isa)?;
    // SAFETY: lengths checked above, the `&mut` slices cannot alias each other or the shared
    // ones, params validated and supported, ISA available.
    unsafe {
        conv2d_global_max(
            isa,
            p,
            input.as_ptr(),
            packed_w.as_ptr(),
            bias.as_ptr(),
            output.as_mut_ptr(),
            scratch.as_mut_ptr(),
            scratch.len(),
        )
    };
    Ok(())
}

/// # Safety
/// Contract of [`conv2d_global_max`], with `V` the ISA's vector type.
#[inline(always)]
unsafe fn conv2d_global_max_impl<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
    scratch_len: usize,
) {
    // SAFETY: forwarded contract.
    unsafe { cvec::conv_global_max::<V>(p, input, w, bias, output, scratch, scratch_len) }
}

/// # Safety
/// Contract of `conv2d_as`, with `V` the ISA's vector type.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn conv2d_as_impl<V: Simd>(
    p: &ConvParams,
    channels: bool,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
    scratch_len: usize,
) {
    // SAFETY: forwarded contract of `conv2d` (weights packed for the same path).
    unsafe {
        if p.is_depthwise() {
            direct::depthwise::<V>(p, input, w, bias, output, scratch);
        } else if channels {
            cvec::conv::<V>(p, input, w, bias, output, scratch, scratch_len);
        } else {
            direct::conv::<V>(p, input, w, bias, output, scratch, scratch_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use std::vec;
    use std::vec::Vec;

    /// Builds params from sizes and explicit top/bottom/left/right padding.
    #[allow(clippy::too_many_arguments)]
    fn params(
        (c_in, c_out, groups): (usize, usize, usize),
        (h_in, w_in): (usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (pt, pb, pl, pr): (usize, usize, usize, usize),
        act: Act,
    ) -> Option<ConvParams> {
        Some(ConvParams {
            c_in,
            h_in,
            w_in,
            c_out,
            h_out: out_size(h_in, kh, sh, pt, pb)?,
            w_out: out_size(w_in, kw, sw, pl, pr)?,
            kh,
            kw,
            sh,
            sw,
            pad_top: pt,
            pad_left: pl,
            groups,
            act,
        })
    }

    /// Runs one case on every ISA against the scalar twin and the f64 reference, with
    /// `poison` (index, value) pairs written into the input, with both bandings: the fast one
    /// (`scratch_len`) and, where it differs, the compact one. Returns the ISAs run.
    fn run_case(p: &ConvParams, seed: u64, poison: &[(usize, f32)]) -> usize {
        let mut lens = vec![p.scratch_len()];
        if p.min_scratch_len() != p.scratch_len() {
            lens.push(p.min_scratch_len());
        }
        run_case_scratch(p, seed, poison, &lens)
    }

    /// [`run_case`] with each scratch length of `lens`.
    fn run_case_scratch(
        p: &ConvParams,
        seed: u64,
        poison: &[(usize, f32)],
        lens: &[usize],
    ) -> usize {
        p.validate().unwrap_or_else(|e| panic!("{p:?}: {e:?}"));
        let mut rng = Rng::new(seed);
        let mut x = rng.vec(p.input_len());
        for &(i, v) in poison {
            x[i] = v;
        }
        let w = rng.vec(p.weight_len());
        let b = rng.vec(p.c_out);
        let mut packed = vec![0.0; p.packed_weight_len()];
        pack_conv_weights(p, &w, &mut packed).unwrap();
        let want = conv_ref(p, &x, &w, &b);
        lens.iter()
            .map(|&len| {
                check_isas(
                    &std::format!("{p:?} scratch {len}"),
                    &want,
                    p.act != Act::None,
                    |isa| {
                        let mut out = vec![f32::NAN; p.output_len()];
                        // NaN scratch: a kernel that reads scratch it did not write shows up as NaN.
                        let mut scratch = vec![f32::NAN; len];
                        conv2d_scratch_checked(isa, p, &x, &packed, &b, &mut out, &mut scratch)
                            .unwrap();
                        out
                    },
                )
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn channel_parts_cover_every_panel_once() {
        for c_out in [1, 7, 8, 9, 12, 20, 64, 100] {
            for parts in 1..=5 {
                let mut next = 0;
                for part in 0..parts + 1 {
                    let (o0, o1) = channel_part(c_out, part, parts);
                    assert!(o0 <= o1 && o1 <= c_out, "{c_out} {part}/{parts}");
                    if o0 < o1 {
                        assert_eq!(o0, next, "{c_out} {part}/{parts}: contiguous");
                        assert_eq!(o0 % 8, 0);
                        next = o1;
                    }
                }
                assert_eq!(next, c_out, "{c_out} in {parts} parts");
            }
        }
    }

    #[test]
    fn parts_together_equal_the_whole_conv() {
        // Every part with its own NaN scratch into one NaN-filled output: bitwise the output of
        // one whole call (each channel is computed by the same code either way), for direct,
        // strided, 1x1 and grouped convs, and channel counts that split unevenly.
        let cases = [
            params((5, 20, 1), (9, 11), (3, 3), (1, 1), (1, 1, 1, 1), Act::Relu),
            params(
                (6, 36, 1),
                (13, 10),
                (3, 3),
                (2, 2),
                (1, 1, 1, 1),
                Act::None,
            ),
            params((7, 12, 1), (6, 9), (1, 1), (1, 1), (0, 0, 0, 0), Act::Relu6),
            params((6, 12, 3), (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), Act::Relu),
            params((4, 4, 4), (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), Act::None),
            // Channel-vectorized (7x7 map), 16-channel blocks split unevenly.
            params((9, 70, 1), (7, 7), (3, 3), (1, 1), (1, 1, 1, 1), Act::Relu),
            // Channel-vectorized as a whole, where a 4-channel tail part alone would run the
            // grid kernel (asserted below): every part runs the whole conv's kernel.
            params((16, 20, 1), (7, 7), (3, 3), (1, 1), (1, 1, 1, 1), Act::None),
        ];
        let tail = ConvParams {
            c_out: 4,
            ..cases[6].unwrap()
        };
        assert!(cvec::applies(&cases[6].unwrap()) && !cvec::applies(&tail));
        for (i, p) in cases.into_iter().enumerate() {
            let p = p.unwrap();
            let mut rng = Rng::new(40 + i as u64);
            let (x, w, b) = (
                rng.vec(p.input_len()),
                rng.vec(p.weight_len()),
                rng.vec(p.c_out),
            );
            let mut packed = vec![0.0; p.packed_weight_len()];
            pack_conv_weights(&p, &w, &mut packed).unwrap();
            for isa in isas() {
                let mut whole = vec![f32::NAN; p.output_len()];
                let mut scratch = vec![f32::NAN; p.scratch_len()];
                conv2d_scratch_checked(isa, &p, &x, &packed, &b, &mut whole, &mut scratch).unwrap();
                let ctx = std::format!("{isa:?} case {i}");
                check_parts(
                    &ctx,
                    &whole,
                    p.scratch_len(),
                    &[1, 2, 3, 4],
                    |part, out, sc| {
                        // SAFETY: the buffers have the lengths `conv2d` needs for `p`.
                        unsafe {
                            conv2d_part(
                                isa,
                                &p,
                                part,
                                x.as_ptr(),
                                packed.as_ptr(),
                                b.as_ptr(),
                                out.as_mut_ptr(),
                                sc.as_mut_ptr(),
                                sc.len(),
                            )
                        }
                    },
                );
            }
        }
    }

    #[test]
    fn widths_around_lane_counts_3x3() {
        for (i, &w) in EDGE.iter().enumerate() {
            for (j, &c) in CHANNELS.iter().enumerate() {
                let p = params(
                    (c, 5, 1),
                    (4, w),
                    (3, 3),
                    (1, 1),
                    (1, 1, 1, 1),
                    ACTS[(i + j) % 3],
                )
                .unwrap();
                run_case(&p, (i * 10 + j) as u64, &[]);
            }
        }
    }

    #[test]
    fn pointwise_gemm_pixel_and_channel_counts() {
        for (i, &n) in EDGE.iter().chain(&[64, 67, 100]).enumerate() {
            for &ci in &CHANNELS {
                for &co in &CHANNELS {
                    let p = params(
                        (ci, co, 1),
                        (1, n),
                        (1, 1),
                        (1, 1),
                        (0, 0, 0, 0),
                        ACTS[i % 3],
                    )
                    .unwrap();
                    assert!(p.is_pointwise());
                    run_case(&p, (n * 100 + ci * 10 + co) as u64, &[]);
                }
            }
        }
        // 2-D planes, grouped 1x1 and a 1x1 with stride (general path).
        run_case(
            &params((6, 8, 1), (5, 7), (1, 1), (1, 1), (0, 0, 0, 0), Act::Relu).unwrap(),
            1,
            &[],
        );
        run_case(
            &params((6, 8, 2), (5, 7), (1, 1), (1, 1), (0, 0, 0, 0), Act::None).unwrap(),
            2,
            &[],
        );
        let strided = params((5, 3, 1), (9, 11), (1, 1), (2, 3), (0, 0, 0, 0), Act::Relu6).unwrap();
        assert!(!strided.is_pointwise());
        run_case(&strided, 3, &[]);
    }

    #[test]
    fn kernels_strides_and_asymmetric_padding() {
        let kernels = [
            (1, 1),
            (2, 2),
            (3, 3),
            (5, 5),
            (7, 7),
            (1, 3),
            (3, 1),
            (2, 5),
            (7, 1),
        ];
        let strides = [(1, 1), (2, 2), (3, 1), (1, 4), (4, 3), (2, 3)];
        let mut n = 0;
        for (i, &(kh, kw)) in kernels.iter().enumerate() {
            for (j, &(sh, sw)) in strides.iter().enumerate() {
                // Asymmetric "same"-style padding, and no padding.
                let pads = [
                    (
                        (kh - 1) - (kh - 1) / 2,
                        (kh - 1) / 2,
                        (kw - 1) / 2,
                        (kw - 1) - (kw - 1) / 2,
                    ),
                    (0, 0, 0, 0),
                ];
                for (k, &pad) in pads.iter().enumerate() {
                    let act = ACTS[(i + j + k) % 3];
                    for &(h, w) in &[(9, 11), (7, 17)] {
                        if let Some(p) = params((3, 5, 1), (h, w), (kh, kw), (sh, sw), pad, act) {
                            run_case(&p, (i * 100 + j * 10 + k) as u64, &[]);
                            n += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(n, kernels.len() * strides.len() * 2 * 2);
        // Top/left padding only (bottom/right implied zero), and padding larger than the kernel.
        run_case(
            &params((2, 3, 1), (6, 9), (3, 3), (1, 2), (2, 0, 1, 0), Act::None).unwrap(),
            7,
            &[],
        );
        run_case(
            &params((2, 3, 1), (6, 9), (1, 2), (1, 1), (2, 2, 3, 3), Act::None).unwrap(),
            8,
            &[],
        );
        // Long strided rows: more than one gather chunk.
        run_case(
            &params((2, 4, 1), (3, 300), (3, 3), (2, 2), (1, 1, 1, 1), Act::Relu).unwrap(),
            9,
            &[],
        );
    }

    #[test]
    fn channel_vectorized_small_maps() {
        // Small output maps (the channel-vectorized kernel): every row-chunk count of every
        // ISA, channel counts around the 16-channel block and the AVX-512 two-block tile,
        // stride 1 and 2 with and without padding (the padded copy and the in-place read),
        // 1x1 stride 2, 5x5 and a non-square kernel with unequal strides.
        let shapes = [
            ((3, 3), (1, 1), (1, 1, 1, 1)),
            ((3, 3), (1, 1), (0, 0, 0, 0)),
            ((3, 3), (2, 2), (1, 1, 1, 1)),
            ((3, 3), (2, 2), (0, 0, 0, 0)),
            ((1, 1), (2, 2), (0, 0, 0, 0)),
            ((5, 5), (1, 1), (2, 2, 2, 2)),
            ((2, 3), (1, 2), (1, 0, 0, 2)),
        ];
        // Output channel counts: a part of one 16-channel block (which the kernel takes only
        // where the grid kernel wastes even more), whole blocks and the AVX-512 two-block tile.
        let c_outs = [1, 5, 12, 16, 17, 33, 48, 67];
        let mut ran = [0usize; 8];
        for (i, &(k, s, pad)) in shapes.iter().enumerate() {
            for (j, &w_out) in [4usize, 5, 6, 7, 8, 9, 12, 13, 14, 17].iter().enumerate() {
                let c_in = [1, 3, 8][j % 3];
                // The input size that gives `w_out` (and 6 rows) with this kernel and stride.
                let (h_in, w_in) = (
                    (6 - 1) * s.0 + k.0 - pad.0 - pad.1,
                    (w_out - 1) * s.1 + k.1 - pad.2 - pad.3,
                );
                for (l, &c_out) in c_outs.iter().enumerate() {
                    let act = ACTS[(i + j + l) % 3];
                    let p = params((c_in, c_out, 1), (h_in, w_in), k, s, pad, act).unwrap();
                    assert_eq!((p.h_out, p.w_out), (6, w_out), "{p:?}");
                    if crate::cvec::applies(&p) {
                        ran[l] += 1;
                        let seed = (1000 + i * 100 + j * 10 + l) as u64;
                        assert!(run_case(&p, seed, &[]) >= 1);
                    }
                }
            }
        }
        let n: usize = ran.iter().sum();
        assert!(
            n >= 250,
            "only {n} shapes ran the channel-vectorized kernel"
        );
        assert!(
            ran.iter().all(|&r| r >= 5),
            "runs per c_out {c_outs:?}: {ran:?}"
        );
        // Between the least and the fast scratch: the padded copy in bands of several output
        // rows, the last band shorter.
        let p = params((6, 20, 1), (11, 9), (3, 3), (1, 1), (1, 1, 1, 1), Act::Relu).unwrap();
        assert!(crate::cvec::applies(&p));
        let (least, fast) = (p.min_scratch_len(), p.scratch_len());
        let row = fast / 13; // 13 padded rows of 6 channels
        let lens = [least + row, least + 4 * row + 1];
        assert!(lens.iter().all(|&len| least < len && len < fast));
        assert!(run_case_scratch(&p, 7, &[], &lens) >= 1);
    }

    #[test]
    fn global_max_equals_the_pooled_conv() {
        // The fused conv + global max pool against the f64 reference conv reduced by a maximum,
        // on every ISA: maps narrower than a tile and with a shifted last chunk, channel counts
        // around the 16-channel block and the two-block tile, the in-place read and the padded
        // copy at the least, an intermediate and the fast scratch, 1x1 and 5x5, all-negative
        // maps (the maximum below zero, then clamped by ReLU) and one large positive poison.
        let shapes = [
            ((3, 3), (2, 2), (0, 0, 0, 0)),
            ((3, 3), (1, 1), (1, 1, 1, 1)),
            ((3, 3), (2, 2), (1, 1, 1, 1)),
            ((1, 1), (1, 1), (0, 0, 0, 0)),
            ((5, 5), (1, 1), (2, 2, 2, 2)),
            ((2, 3), (1, 2), (1, 0, 0, 2)),
        ];
        let mut n = 0;
        for (i, &(k, s, pad)) in shapes.iter().enumerate() {
            for (j, &(h_out, w_out)) in
                [(1usize, 1usize), (2, 3), (5, 4), (6, 9), (19, 19), (7, 17)]
                    .iter()
                    .enumerate()
            {
                let c_out = [1, 5, 16, 17, 33, 48, 67][(i + j) % 7];
                let c_in = [1, 3, 8][j % 3];
                let Some(h_in) = ((h_out - 1) * s.0 + k.0).checked_sub(pad.0 + pad.1) else {
                    continue;
                };
                let Some(w_in) = ((w_out - 1) * s.1 + k.1).checked_sub(pad.2 + pad.3) else {
                    continue;
                };
                if h_in == 0 || w_in == 0 {
                    continue;
                }
                let act = ACTS[(i + j) % 3];
                let p = params((c_in, c_out, 1), (h_in, w_in), k, s, pad, act).unwrap();
                assert_eq!((p.h_out, p.w_out), (h_out, w_out), "{p:?}");
                let mut rng = Rng::new(300 + (i * 10 + j) as u64);
                let mut x = rng.vec(p.input_len());
                if j % 2 == 1 {
                    x[p.input_len() / 2] = 40.0;
                }
                let w = rng.vec(p.weight_len());
                let mut b = rng.vec(p.c_out);
                if i == 1 {
                    // A bias far below zero: every pixel (and so the maximum) is negative.
                    b.iter_mut().for_each(|v| *v -= 100.0);
                }
                let full = conv_ref(&p, &x, &w, &b);
                let plane = p.h_out * p.w_out;
                let want: Vec<f64> = full
                    .chunks(plane)
                    .map(|c| c.iter().copied().fold(f64::NEG_INFINITY, f64::max))
                    .collect();
                let mut packed = vec![0.0; p.global_max_packed_len()];
                pack_global_max_weights(&p, &w, &mut packed).unwrap();
                let (least, fast) = (p.global_max_min_scratch_len(), p.global_max_scratch_len());
                let mut lens = vec![fast];
                if least != fast {
                    lens.extend([least, (least + fast) / 2]);
                }
                for len in lens {
                    n += 1;
                    check_isas(&std::format!("{p:?} scratch {len}"), &want, false, |isa| {
                        let mut out = vec![f32::NAN; p.c_out];
                        let mut scratch = vec![f32::NAN; len];
                        conv2d_global_max_checked(isa, &p, &x, &packed, &b, &mut out, &mut scratch)
                            .unwrap();
                        out
                    });
                }
            }
        }
        assert!(n >= 50, "only {n} cases ran");
        // Grouped convs are refused, not run.
        let g = params((4, 4, 2), (5, 5), (3, 3), (1, 1), (0, 0, 0, 0), Act::None).unwrap();
        assert!(!g.global_max_supported());
        let r = conv2d_global_max_checked(
            Isa::Scalar,
            &g,
            &[0.0; 100],
            &[],
            &[0.0; 4],
            &mut [0.0; 4],
            &mut [],
        );
        assert!(matches!(r, Err(KernelError::BadParams(_))), "{r:?}");
    }

    #[test]
    fn groups_depthwise_and_multipliers() {
        // (c_in, c_out, groups): grouped, depthwise, multiplier 2, 3, 4, single input channel.
        let cfgs = [
            (6, 9, 3),
            (4, 8, 2),
            (5, 5, 5),
            (17, 17, 17),
            (3, 6, 3),
            (4, 12, 4),
            (2, 8, 2),
            (1, 8, 1),
        ];
        for (i, &g) in cfgs.iter().enumerate() {
            for (j, &(k, s, pad)) in [(3, 1, 1), (3, 2, 1), (5, 1, 2), (1, 1, 0), (7, 3, 3)]
                .iter()
                .enumerate()
            {
                for (m, &w) in [1usize, 9, 19].iter().enumerate() {
                    let act = ACTS[(i + j + m) % 3];
                    let p = params(g, (6, w), (k, k), (s, s), (pad, pad, pad, pad), act).unwrap();
                    run_case(&p, (i * 100 + j * 10 + m) as u64, &[]);
                }
            }
        }
    }

    #[test]
    fn bands_and_channel_blocks() {
        // (c_in, c_out, groups), (h, w), (kh, kw), (sh, sw), (pt, pb, pl, pr): big enough that
        // the grid is split into several bands and the input channels into several blocks (the
        // assertion below checks that), with c_out not a multiple of the tile's 4 or 8.
        let cases = [
            ((64, 13, 1), (20, 20), (3, 3), (1, 1), (1, 1, 1, 1)),
            ((72, 9, 1), (23, 17), (3, 3), (1, 1), (1, 1, 1, 1)),
            ((40, 11, 1), (31, 29), (3, 3), (2, 2), (1, 0, 0, 1)),
            ((48, 5, 1), (26, 33), (5, 5), (3, 3), (2, 1, 1, 2)),
            ((33, 7, 1), (30, 27), (4, 4), (4, 4), (0, 3, 3, 0)),
            ((96, 18, 2), (19, 21), (3, 3), (1, 1), (1, 1, 1, 1)),
            ((40, 6, 1), (24, 40), (1, 7), (1, 2), (0, 0, 3, 3)),
            // Few channels on big planes: 8-channel blocks in bands of rows.
            ((9, 5, 1), (60, 60), (3, 3), (1, 1), (1, 1, 1, 1)),
            ((10, 9, 1), (61, 61), (3, 3), (2, 2), (0, 1, 1, 0)),
            ((12, 3, 1), (64, 64), (5, 5), (3, 3), (2, 2, 2, 2)),
            ((20, 4, 2), (50, 47), (3, 3), (1, 1), (1, 1, 1, 1)),
            // The fast banding in bands of rows of all 16 channels.
            ((16, 5, 1), (130, 97), (3, 3), (1, 1), (1, 1, 1, 1)),
            // Weights over `PANELS_OUTER_WEIGHTS` on small maps: each panel over all tiles.
            ((128, 264, 1), (6, 7), (3, 3), (1, 1), (1, 1, 1, 1)),
            ((128, 260, 1), (9, 8), (3, 3), (2, 2), (1, 1, 1, 1)),
        ];
        let (mut blocked, mut banded, mut fast_banded, mut panels_outer) = (0, 0, 0, 0);
        for (i, &(c, hw, k, st, pad)) in cases.iter().enumerate() {
            let p = params(c, hw, k, st, pad, ACTS[i % 3]).unwrap();
            let (kc, rows) = direct::band_dims(&p, p.min_scratch_len());
            let g = direct::Grid::of(&p);
            let fast = direct::band_dims(&p, p.scratch_len());
            fast_banded += usize::from(fast.0 == p.c_in / p.groups && fast.1 < g.hq);
            panels_outer += usize::from(direct::packed_len(&p) > direct::PANELS_OUTER_WEIGHTS);
            blocked += usize::from(kc < p.c_in / p.groups);
            banded += usize::from(rows < g.hq);
            assert!(
                kc < p.c_in / p.groups || rows < g.hq,
                "{p:?}: kc {kc} rows {rows}"
            );
            run_case(&p, 700 + i as u64, &[]);
        }
        assert!(
            blocked >= 5 && banded >= 3 && fast_banded >= 1 && panels_outer == 2,
            "{blocked} {banded} {fast_banded} {panels_outer}"
        );
    }

    #[test]
    fn grid_junk_columns_and_lane_edges() {
        // Row widths around every lane count, so grid rows (w + 2) put row breaks at every
        // position inside a vector; c_out 1..9 around the tiles' 4 and 8 channels, and 12 and
        // 20 (a last block of 4 channels: the half-panel tile on 8-channel ISAs).
        for (i, &w) in EDGE.iter().enumerate() {
            for &(co, k) in &[(1usize, 3usize), (7, 3), (9, 5), (8, 2), (12, 3), (20, 3)] {
                let pad = k / 2;
                let p = params(
                    (6, co, 1),
                    (5, w),
                    (k, k),
                    (1, 1),
                    (pad, k - 1 - pad, pad, k - 1 - pad),
                    ACTS[i % 3],
                )
                .unwrap();
                run_case(&p, (i * 37 + co) as u64, &[]);
                // The same with stride 2: every column phase ends at a different place.
                let p2 = ConvParams {
                    sh: 2,
                    sw: 2,
                    h_out: out_size(5, k, 2, pad, k - 1 - pad).unwrap(),
                    w_out: out_size(w, k, 2, pad, k - 1 - pad).unwrap(),
                    ..p
                };
                run_case(&p2, (i * 41 + co) as u64, &[]);
            }
        }
    }

    #[test]
    fn pointwise_shifted_last_tile_and_small_planes() {
        // Planes just above / below the 64-pixel panel threshold and around tile widths
        // (16, 24, 48 pixels), many input channels.
        for (i, &n) in [47usize, 48, 49, 63, 64, 65, 97, 143].iter().enumerate() {
            let p = params(
                (70, 11, 1),
                (1, n),
                (1, 1),
                (1, 1),
                (0, 0, 0, 0),
                ACTS[i % 3],
            )
            .unwrap();
            assert!(p.is_pointwise());
            assert_eq!(p.scratch_len() == 0, n >= direct::MAX_TW);
            run_case(&p, 900 + n as u64, &[]);
        }
    }

    #[test]
    fn all_activations_clamp() {
        for act in ACTS {
            let p = params((3, 4, 1), (5, 8), (3, 3), (1, 1), (1, 1, 1, 1), act).unwrap();
            let mut rng = Rng::new(42);
            // Large inputs so Relu6 saturates somewhere.
            let x: Vec<f32> = rng.vec(p.input_len()).iter().map(|v| v * 8.0).collect();
            let w = rng.vec(p.weight_len());
            let b = vec![0.5; p.c_out];
            let want = conv_ref(&p, &x, &w, &b);
            let mut out = vec![0.0; p.output_len()];
            let mut packed = vec![0.0; p.packed_weight_len()];
            pack_conv_weights(&p, &w, &mut packed).unwrap();
            let mut scratch = vec![0.0; p.scratch_len()];
            for isa in isas() {
                conv2d_scratch_checked(isa, &p, &x, &packed, &b, &mut out, &mut scratch).unwrap();
                assert_close(isa.name(), &out, &want, TOL, false);
                let lo = out.iter().cloned().fold(f32::INFINITY, f32::min);
                let hi = out.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                match act {
                    Act::None => assert!(lo < 0.0 && hi > 6.0, "{lo} {hi}"),
                    Act::Relu => assert!(lo == 0.0 && hi > 6.0, "{lo} {hi}"),
                    Act::Relu6 => assert!(lo == 0.0 && hi == 6.0, "{lo} {hi}"),
                }
            }
        }
    }

    #[test]
    fn nan_and_inf_inputs_stay_local() {
        for &(k, g) in &[(3usize, 1usize), (1, 1), (3, 4)] {
            let p = params(
                (4, 8, g),
                (6, 19),
                (k, k),
                (1, 1),
                (k / 2, k / 2, k / 2, k / 2),
                Act::None,
            )
            .unwrap();
            let poison = [
                (7, f32::NAN),
                (p.input_len() - 3, f32::INFINITY),
                (40, f32::NEG_INFINITY),
            ];
            // `check_isas` requires non-finite outputs exactly where the reference is non-finite.
            assert!(run_case(&p, 5, &poison) >= 1);
        }
    }

    #[test]
    fn checked_wrapper_rejects_bad_input() {
        let p = params((4, 6, 2), (5, 5), (3, 3), (1, 1), (1, 1, 1, 1), Act::None).unwrap();
        let (x, w, b) = (
            vec![0.0; p.input_len()],
            vec![0.0; p.weight_len()],
            vec![0.0; 6],
        );
        let mut out = vec![0.0; p.output_len()];
        let packed = vec![0.0; p.packed_weight_len()];
        let mut scratch = vec![0.0; p.scratch_len()];
        assert_eq!(
            conv2d_checked(Isa::Scalar, &p, &x[1..], &w, &b, &mut out),
            Err(KernelError::BadLength {
                what: "input",
                expected: 100,
                found: 99
            })
        );
        assert_eq!(
            conv2d_checked(Isa::Scalar, &p, &x, &packed, &b[..5], &mut out),
            Err(KernelError::BadLength {
                what: "bias",
                expected: 6,
                found: 5
            })
        );
        let bad = ConvParams { groups: 3, ..p };
        assert!(matches!(bad.validate(), Err(KernelError::BadParams(_))));
        let bad = ConvParams { h_out: 7, ..p };
        assert!(matches!(bad.validate(), Err(KernelError::BadParams(_))));
        let bad = ConvParams { sw: 0, ..p };
        assert!(matches!(bad.validate(), Err(KernelError::BadParams(_))));
        assert_eq!(
            conv2d_checked(Isa::Scalar, &p, &x, &packed, &b, &mut out),
            Err(KernelError::BadLength {
                what: "scratch",
                expected: p.scratch_len(),
                found: 0
            })
        );
        let unavailable = Isa::ALL.iter().copied().find(|i| !i.is_available());
        if let Some(isa) = unavailable {
            assert_eq!(
                conv2d_scratch_checked(isa, &p, &x, &packed, &b, &mut out, &mut scratch),
                Err(KernelError::IsaUnavailable(isa))
            );
        }
        assert_eq!(p.weight_len(), 6 * 2 * 9);
        assert_eq!(p.macs(), 6 * 25 * 2 * 9);
    }

    #[test]
    fn vector_isas_are_exercised_on_x86_64() {
        if cfg!(target_arch = "x86_64") {
            let p = params((3, 5, 1), (4, 19), (3, 3), (1, 1), (1, 1, 1, 1), Act::None).unwrap();
            assert!(run_case(&p, 1, &[]) >= 2, "expected at least scalar + sse2");
        }
    }
}
