//! `Simd` for aarch64 Advanced SIMD (4 x f32 in `float32x4_t`, fused multiply-add).
//! NEON is baseline on aarch64, so this is sound in any aarch64 code.

use core::arch::aarch64::*;

use super::Simd;

/// 4 f32 lanes in a NEON Q register.
#[derive(Clone, Copy, Debug)]
pub struct Neon(pub float32x4_t);

impl Simd for Neon {
    const LANES: usize = 4;
    // 32 Q registers: 8 x 3 accumulators + 3 pixel vectors + 1 broadcast.
    const CONV_MR: usize = 8;
    const CONV_NV: usize = 3;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { Self(vdupq_n_f32(x)) }
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { Self(vdupq_n_f32(0.0)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p` is valid for 4 reads; vld1q has no alignment needs.
        unsafe { Self(vld1q_f32(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees `p` is valid for 4 writes; vst1q has no alignment needs.
        unsafe { vst1q_f32(p, self.0) }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { Self(vaddq_f32(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { Self(vmulq_f32(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: NEON is baseline on aarch64. vfmaq_f32(c, a, b) = c + a * b.
        unsafe { Self(vfmaq_f32(c.0, a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn max(a: Self, b: Self) -> Self {
        // SAFETY: NEON is baseline on aarch64.
        // `a > b ? a : b` lane-wise, like SSE `maxps` and the scalar twin (NaN in either → `b`);
        // `vmaxq_f32` would propagate NaN instead.
        unsafe { Self(vbslq_f32(vcgtq_f32(a.0, b.0), a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn min(a: Self, b: Self) -> Self {
        // SAFETY: NEON is baseline on aarch64.
        // `a < b ? a : b` lane-wise, like SSE `minps` and the scalar twin.
        unsafe { Self(vbslq_f32(vcltq_f32(a.0, b.0), a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { (Self(vuzp1q_f32(a.0, b.0)), Self(vuzp2q_f32(a.0, b.0))) }
    }
    #[inline(always)]
    unsafe fn interleave(a: Self, b: Self) -> (Self, Self) {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { (Self(vzip1q_f32(a.0, b.0)), Self(vzip2q_f32(a.0, b.0))) }
    }
    #[inline(always)]
    unsafe fn splice(lo: Self, hi: Self, k: usize) -> Self {
        // Lane i of the mask is all ones (take `hi`) iff i >= k.
        const SPLICE: [u32; 8] = [0, 0, 0, 0, u32::MAX, u32::MAX, u32::MAX, u32::MAX];
        // SAFETY: `4 - k .. 8 - k` lies inside the table for `k <= 4` (the caller's contract);
        // NEON is baseline on aarch64.
        unsafe {
            let m = vld1q_u32(SPLICE.as_ptr().add(4 - k));
            Self(vbslq_f32(m, hi.0, lo.0))
        }
    }
    #[inline(always)]
    unsafe fn reduce_add(self) -> f32 {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { vaddvq_f32(self.0) }
    }
    #[inline(always)]
    unsafe fn reduce_max(self) -> f32 {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { vmaxvq_f32(self.0) }
    }
}
