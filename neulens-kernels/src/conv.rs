//! 2-D convolution (PyTorch cross-correlation, zero padding, groups, fused bias + activation):
//! parameters, weight packing, and the loop nests (general direct, 1x1 GEMM, depthwise).

use crate::common::{
    act_inplace, act_s, act_v, axpy_rows, fill, gather, input_row, valid_range, GATHER,
};
use crate::simd::Simd;
use crate::{check_isa, check_len, Act, Isa, KernelError};

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
    /// f32 of scratch memory [`conv2d`] needs (padded input copies, transformed tiles, ...);
    /// the planner gives each conv its own arena range of this length, live only during the call.
    pub const fn scratch_len(&self) -> usize {
        0
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
    /// Length of the packed weights (currently the OIHW layout itself).
    pub const fn packed_weight_len(&self) -> usize {
        self.weight_len()
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

    fn is_pointwise(&self) -> bool {
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
    out.copy_from_slice(oihw);
    Ok(())
}

dispatch! {
    /// Convolution + bias + activation (see [`ConvParams`]).
    ///
    /// # Safety
    /// `p` is valid ([`ConvParams::validate`]); `input` is valid for `p.input_len()` reads,
    /// `packed_w` for `p.packed_weight_len()` reads (from [`pack_conv_weights`]), `bias` for
    /// `p.c_out` reads, `output` for `p.output_len()` writes, `scratch` for `p.scratch_len()`
    /// reads and writes (may dangle when that is 0); `output` and `scratch` do not overlap each
    /// other or the other buffers; `isa` is available on this CPU (an ISA of another
    /// architecture runs the scalar twin).
    pub unsafe fn conv2d(p: &ConvParams, input: *const f32, packed_w: *const f32, bias: *const f32, output: *mut f32, scratch: *mut f32) => conv2d_impl
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

/// Safe [`conv2d`]: checks parameters, slice lengths (scratch too) and ISA availability.
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
    check_len("scratch", p.scratch_len(), scratch.len())?;
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
        )
    };
    Ok(())
}

/// # Safety
/// Contract of [`conv2d`], with `V` the ISA's vector type.
#[inline(always)]
unsafe fn conv2d_impl<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    scratch: *mut f32,
) {
    let _ = scratch;
    // SAFETY: forwarded contract of `conv2d`.
    unsafe {
        if p.is_pointwise() {
            pointwise::<V>(p, input, w, bias, output);
        } else if p.groups > 1 && p.groups == p.c_in {
            depthwise::<V>(p, input, w, bias, output);
        } else {
            direct::<V>(p, input, w, bias, output);
        }
    }
}

/// General direct convolution: per group, blocks of 4 output channels share each input row.
///
/// # Safety
/// Contract of [`conv2d`].
#[inline(always)]
unsafe fn direct<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
) {
    let cin_g = p.c_in / p.groups;
    let cout_g = p.c_out / p.groups;
    for g in 0..p.groups {
        let mut oc = g * cout_g;
        let end = oc + cout_g;
        // SAFETY: every block covers output channels `< c_out` of group `g`.
        unsafe {
            while oc + 4 <= end {
                conv_block::<V, 4>(p, input, w, bias, output, g * cin_g, oc);
                oc += 4;
            }
            while oc < end {
                conv_block::<V, 1>(p, input, w, bias, output, g * cin_g, oc);
                oc += 1;
            }
        }
    }
}

/// Depthwise (`groups == c_in`, channel multiplier `m = c_out / c_in`): the `m` outputs of
/// each input channel are computed together.
///
/// # Safety
/// Contract of [`conv2d`], and `p.groups == p.c_in`.
#[inline(always)]
unsafe fn depthwise<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
) {
    let m = p.c_out / p.groups;
    for c in 0..p.c_in {
        let mut oc = c * m;
        let end = oc + m;
        // SAFETY: every block covers output channels `< c_out` of group `c`.
        unsafe {
            while oc + 4 <= end {
                conv_block::<V, 4>(p, input, w, bias, output, c, oc);
                oc += 4;
            }
            while oc + 2 <= end {
                conv_block::<V, 2>(p, input, w, bias, output, c, oc);
                oc += 2;
            }
            while oc < end {
                conv_block::<V, 1>(p, input, w, bias, output, c, oc);
                oc += 1;
            }
        }
    }
}

/// Computes output channels `oc0..oc0 + N` (all in one group whose first input channel is
/// `ic0`) row by row: bias-init, accumulate every valid tap as a row axpy, then activation.
///
/// # Safety
/// Contract of [`conv2d`]; `oc0 + N <= c_out` and the channels belong to the group at `ic0`.
#[inline(always)]
unsafe fn conv_block<V: Simd, const N: usize>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
    ic0: usize,
    oc0: usize,
) {
    let cin_g = p.c_in / p.groups;
    let ksz = p.kh * p.kw;
    let plane_in = p.h_in * p.w_in;
    let plane_out = p.h_out * p.w_out;
    let mut tmp = [0.0f32; GATHER];
    // SAFETY: rows are `oc * plane_out + oy * w_out + [0, w_out)` with `oc < c_out`,
    // `oy < h_out`; input rows come from `input_row` (< h_in) and columns from `valid_range`
    // (< w_in); weight indices are `< c_out * cin_g * ksz`; `tmp` chunks are `<= GATHER`.
    unsafe {
        for oy in 0..p.h_out {
            let mut rows = [output; N];
            for (j, r) in rows.iter_mut().enumerate() {
                *r = output.add((oc0 + j) * plane_out + oy * p.w_out);
                fill::<V>(p.w_out, *r, *bias.add(oc0 + j));
            }
            for ic in 0..cin_g {
                for ky in 0..p.kh {
                    let Some(iy) = input_row(oy, p.sh, ky, p.pad_top, p.h_in) else {
                        continue;
                    };
                    let in_row = input.add((ic0 + ic) * plane_in + iy * p.w_in);
                    for kx in 0..p.kw {
                        let (x0, x1) = valid_range(p.w_out, p.w_in, p.sw, kx, p.pad_left);
                        if x0 >= x1 {
                            continue;
                        }
                        let mut wt = [0.0f32; N];
                        for (j, wj) in wt.iter_mut().enumerate() {
                            *wj = *w.add(((oc0 + j) * cin_g + ic) * ksz + ky * p.kw + kx);
                        }
                        let src = in_row.add(x0 * p.sw + kx - p.pad_left);
                        if p.sw == 1 {
                            let mut dst = rows;
                            for d in dst.iter_mut() {
                                *d = d.add(x0);
                            }
                            axpy_rows::<V, N>(x1 - x0, &wt, src, &dst);
                        } else {
                            let mut done = 0;
                            while done < x1 - x0 {
                                let len = core::cmp::min(GATHER, x1 - x0 - done);
                                gather(len, src.add(done * p.sw), p.sw, tmp.as_mut_ptr());
                                let mut dst = rows;
                                for d in dst.iter_mut() {
                                    *d = d.add(x0 + done);
                                }
                                axpy_rows::<V, N>(len, &wt, tmp.as_ptr(), &dst);
                                done += len;
                            }
                        }
                    }
                }
            }
            for r in rows {
                act_inplace::<V>(p.act, p.w_out, r);
            }
        }
    }
}

/// 1x1, stride 1, unpadded: per group a GEMM `out[oc][px] = b[oc] + sum_ic w[oc][ic] in[ic][px]`
/// over flat pixels, register-blocked 4 output channels x 2 vectors of pixels.
///
/// # Safety
/// Contract of [`conv2d`] and `p.is_pointwise()`.
#[inline(always)]
unsafe fn pointwise<V: Simd>(
    p: &ConvParams,
    input: *const f32,
    w: *const f32,
    bias: *const f32,
    output: *mut f32,
) {
    let cin_g = p.c_in / p.groups;
    let cout_g = p.c_out / p.groups;
    let np = p.h_in * p.w_in;
    for g in 0..p.groups {
        // SAFETY: group `g` reads input channels `g*cin_g..`, weights rows `g*cout_g..`, all in
        // bounds by the `conv2d` contract; the tiles below stay within `np` pixels.
        unsafe {
            let inp = input.add(g * cin_g * np);
            let mut oc = g * cout_g;
            let end = oc + cout_g;
            while oc + 4 <= end {
                pointwise_rows::<V, 4>(
                    p.act,
                    cin_g,
                    np,
                    inp,
                    w.add(oc * cin_g),
                    bias.add(oc),
                    output.add(oc * np),
                );
                oc += 4;
            }
            while oc < end {
                pointwise_rows::<V, 1>(
                    p.act,
                    cin_g,
                    np,
                    inp,
                    w.add(oc * cin_g),
                    bias.add(oc),
                    output.add(oc * np),
                );
                oc += 1;
            }
        }
    }
}

/// `MR` output channels of a pointwise conv over all `np` pixels.
///
/// # Safety
/// `inp` valid for `k * np` reads, `w` for `MR * k`, `bias` for `MR`, `out` for `MR * np`
/// writes; the CPU supports `V`'s ISA.
#[inline(always)]
unsafe fn pointwise_rows<V: Simd, const MR: usize>(
    act: Act,
    k: usize,
    np: usize,
    inp: *const f32,
    w: *const f32,
    bias: *const f32,
    out: *mut f32,
) {
    let mut px = 0;
    // SAFETY: tiles cover pixels `[px, px + NV * LANES)` only while that is `<= np`; the scalar
    // tail covers `px < np`.
    unsafe {
        while px + 2 * V::LANES <= np {
            gemm_tile::<V, MR, 2>(act, k, np, inp.add(px), w, bias, out.add(px));
            px += 2 * V::LANES;
        }
        while px + V::LANES <= np {
            gemm_tile::<V, MR, 1>(act, k, np, inp.add(px), w, bias, out.add(px));
            px += V::LANES;
        }
        while px < np {
            for j in 0..MR {
                let mut s = *bias.add(j);
                for ic in 0..k {
                    s += *w.add(j * k + ic) * *inp.add(ic * np + px);
                }
                *out.add(j * np + px) = act_s(act, s);
            }
            px += 1;
        }
    }
}

/// Register tile: `MR` channels x `NV` vectors of pixels, accumulated over `k` input channels.
///
/// # Safety
/// `inp` valid for reads at `ic * np + [0, NV * LANES)` for `ic < k`, `out` likewise for writes
/// at `j * np + ..` for `j < MR`, `w` for `MR * k` reads, `bias` for `MR`; `V`'s ISA available.
// Explicit const-bounded indices keep the `MR x NV` accumulators in registers after unrolling.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn gemm_tile<V: Simd, const MR: usize, const NV: usize>(
    act: Act,
    k: usize,
    np: usize,
    inp: *const f32,
    w: *const f32,
    bias: *const f32,
    out: *mut f32,
) {
    // SAFETY: offsets as documented above.
    unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        for j in 0..MR {
            let b = V::splat(*bias.add(j));
            for a in acc[j].iter_mut() {
                *a = b;
            }
        }
        for ic in 0..k {
            let mut x = [V::zero(); NV];
            for (v, xv) in x.iter_mut().enumerate() {
                *xv = V::load(inp.add(ic * np + v * V::LANES));
            }
            for j in 0..MR {
                let wv = V::splat(*w.add(j * k + ic));
                for v in 0..NV {
                    acc[j][v] = V::fma(wv, x[v], acc[j][v]);
                }
            }
        }
        for j in 0..MR {
            for v in 0..NV {
                act_v::<V>(act, acc[j][v]).store(out.add(j * np + v * V::LANES));
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
    /// `poison` (index, value) pairs written into the input. Returns the ISAs run.
    fn run_case(p: &ConvParams, seed: u64, poison: &[(usize, f32)]) -> usize {
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
        check_isas(&std::format!("{p:?}"), &want, p.act != Act::None, |isa| {
            let mut out = vec![f32::NAN; p.output_len()];
            conv2d_checked(isa, p, &x, &packed, &b, &mut out).unwrap();
            out
        })
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
            for isa in isas() {
                conv2d_checked(isa, &p, &x, &w, &b, &mut out).unwrap();
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
        assert_eq!(
            conv2d_checked(Isa::Scalar, &p, &x[1..], &w, &b, &mut out),
            Err(KernelError::BadLength {
                what: "input",
                expected: 100,
                found: 99
            })
        );
        assert_eq!(
            conv2d_checked(Isa::Scalar, &p, &x, &w, &b[..5], &mut out),
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
        let unavailable = Isa::ALL.iter().copied().find(|i| !i.is_available());
        if let Some(isa) = unavailable {
            assert_eq!(
                conv2d_checked(isa, &p, &x, &w, &b, &mut out),
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
