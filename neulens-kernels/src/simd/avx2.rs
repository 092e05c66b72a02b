//! `Simd` for x86-64 AVX2+FMA (8 x f32 in `__m256`, fused multiply-add).
//! Only sound inside `#[target_feature(enable = "avx2,fma")]` code on a CPU that has both.

use core::arch::x86_64::*;

use super::Simd;

/// 8 f32 lanes in an AVX register (requires AVX2 and FMA).
#[derive(Clone, Copy, Debug)]
pub struct Avx2(pub __m256);

impl Simd for Avx2 {
    const LANES: usize = 8;
    // 16 YMM registers: 4 x 3 accumulators + 3 pixel vectors + 1 broadcast.
    const CONV_MR: usize = 4;
    const CONV_NV: usize = 3;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX2 and FMA.
        unsafe { Self(_mm256_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX2 and FMA.
        unsafe { Self(_mm256_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p` is valid for LANES reads and AVX2 and FMA support.
        unsafe { Self(_mm256_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees `p` is valid for LANES writes and AVX2 and FMA support.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX2 and FMA.
        unsafe { Self(_mm256_add_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX2 and FMA.
        unsafe { Self(_mm256_mul_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX2 and FMA.
        unsafe { Self(_mm256_fmadd_ps(a.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn max(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX2 and FMA.
        unsafe { Self(_mm256_max_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn min(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX2 and FMA.
        unsafe { Self(_mm256_min_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn load_first(n: usize, p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p` is valid for `n <= 8` reads and AVX2 support;
        // `vmaskmovps` does not access (or fault on) the masked-off elements.
        unsafe { Self(_mm256_maskload_ps(p, first_mask(n))) }
    }
    #[inline(always)]
    unsafe fn store_first(self, n: usize, p: *mut f32) {
        // SAFETY: the caller guarantees `p` is valid for `n <= 8` writes and AVX2 support;
        // masked-off elements are not written.
        unsafe { _mm256_maskstore_ps(p, first_mask(n), self.0) }
    }
    #[inline(always)]
    unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
        // SAFETY: the caller guarantees AVX2 support. Within each 128-bit half the shuffle
        // gives [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit permute (0, 2, 1, 3) orders the halves.
        unsafe {
            let e = _mm256_shuffle_ps::<0b10_00_10_00>(a.0, b.0);
            let o = _mm256_shuffle_ps::<0b11_01_11_01>(a.0, b.0);
            let fix = |v: __m256| {
                _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
            };
            (Self(fix(e)), Self(fix(o)))
        }
    }
    #[inline(always)]
    unsafe fn interleave(a: Self, b: Self) -> (Self, Self) {
        // SAFETY: the caller guarantees AVX2 support. Within each 128-bit half the unpacks give
        // [a0 b0 a1 b1 | a4 b4 a5 b5] and [a2 b2 a3 b3 | a6 b6 a7 b7]; the lane permutes pair
        // the low halves and the high halves.
        unsafe {
            let l = _mm256_unpacklo_ps(a.0, b.0);
            let h = _mm256_unpackhi_ps(a.0, b.0);
            (
                Self(_mm256_permute2f128_ps::<0x20>(l, h)),
                Self(_mm256_permute2f128_ps::<0x31>(l, h)),
            )
        }
    }
    #[inline(always)]
    unsafe fn splice(lo: Self, hi: Self, k: usize) -> Self {
        // Lane i of the mask is all ones (take `hi`) iff i >= k.
        const SPLICE: [i32; 16] = [0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1];
        // SAFETY: `8 - k .. 16 - k` lies inside the table for `k <= 8` (the caller's contract);
        // the caller guarantees AVX2 support.
        unsafe {
            let m = _mm256_loadu_si256(SPLICE.as_ptr().add(8 - k).cast());
            Self(_mm256_blendv_ps(lo.0, hi.0, _mm256_castsi256_ps(m)))
        }
    }
    #[inline(always)]
    unsafe fn reduce_add(self) -> f32 {
        let mut t = [0.0f32; 8];
        // SAFETY: `t` holds exactly LANES f32s; the caller guarantees AVX2 and FMA support.
        unsafe { self.store(t.as_mut_ptr()) };
        t.iter().sum()
    }
    #[inline(always)]
    unsafe fn reduce_max(self) -> f32 {
        let mut t = [0.0f32; 8];
        // SAFETY: `t` holds exactly LANES f32s; the caller guarantees AVX2 and FMA support.
        unsafe { self.store(t.as_mut_ptr()) };
        t.iter().fold(t[0], |m, &x| if x > m { x } else { m })
    }
}

/// Lanes `0..n` set (sign bit) for `vmaskmovps`.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn first_mask(n: usize) -> __m256i {
    // SAFETY: the caller guarantees AVX2 support.
    unsafe {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lane)
    }
}
