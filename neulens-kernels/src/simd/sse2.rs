//! `Simd` for x86-64 SSE2 (4 x f32 in `__m128`); FMA is a separate multiply and add.
//! Only sound inside `#[target_feature(enable = "sse2")]` code (SSE2 is x86-64 baseline).

use core::arch::x86_64::*;

use super::Simd;

/// 4 f32 lanes in an SSE register.
#[derive(Clone, Copy, Debug)]
pub struct Sse2(pub __m128);

impl Simd for Sse2 {
    const LANES: usize = 4;
    // 16 XMM registers, no FMA (mul + add needs a temporary): 4 x 2 accumulators.
    const CONV_MR: usize = 4;
    const CONV_NV: usize = 2;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller guarantees the CPU supports SSE2.
        unsafe { Self(_mm_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller guarantees the CPU supports SSE2.
        unsafe { Self(_mm_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p` is valid for LANES reads and SSE2 support.
        unsafe { Self(_mm_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees `p` is valid for LANES writes and SSE2 support.
        unsafe { _mm_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports SSE2.
        unsafe { Self(_mm_add_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports SSE2.
        unsafe { Self(_mm_mul_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports SSE2.
        unsafe { Self(_mm_add_ps(_mm_mul_ps(a.0, b.0), c.0)) }
    }
    #[inline(always)]
    unsafe fn max(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports SSE2.
        unsafe { Self(_mm_max_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn min(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports SSE2.
        unsafe { Self(_mm_min_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
        // SAFETY: the caller guarantees SSE2 support.
        unsafe {
            (
                Self(_mm_shuffle_ps::<0b10_00_10_00>(a.0, b.0)),
                Self(_mm_shuffle_ps::<0b11_01_11_01>(a.0, b.0)),
            )
        }
    }
    #[inline(always)]
    unsafe fn interleave(a: Self, b: Self) -> (Self, Self) {
        // SAFETY: SSE2 is x86-64 baseline.
        unsafe {
            (
                Self(_mm_unpacklo_ps(a.0, b.0)),
                Self(_mm_unpackhi_ps(a.0, b.0)),
            )
        }
    }
    #[inline(always)]
    unsafe fn splice(lo: Self, hi: Self, k: usize) -> Self {
        // Lane i of the mask is all ones (take `hi`) iff i >= k.
        const SPLICE: [i32; 8] = [0, 0, 0, 0, -1, -1, -1, -1];
        // SAFETY: `4 - k .. 8 - k` lies inside the table for `k <= 4` (the caller's contract);
        // SSE2 is x86-64 baseline.
        unsafe {
            let m = _mm_castsi128_ps(_mm_loadu_si128(SPLICE.as_ptr().add(4 - k).cast()));
            Self(_mm_or_ps(_mm_and_ps(m, hi.0), _mm_andnot_ps(m, lo.0)))
        }
    }
    #[inline(always)]
    unsafe fn reduce_add(self) -> f32 {
        let mut t = [0.0f32; 4];
        // SAFETY: `t` holds exactly LANES f32s; the caller guarantees SSE2 support.
        unsafe { self.store(t.as_mut_ptr()) };
        t.iter().sum()
    }
    #[inline(always)]
    unsafe fn reduce_max(self) -> f32 {
        let mut t = [0.0f32; 4];
        // SAFETY: `t` holds exactly LANES f32s; the caller guarantees SSE2 support.
        unsafe { self.store(t.as_mut_ptr()) };
        t.iter().fold(t[0], |m, &x| if x > m { x } else { m })
    }
}
