//! `Simd` for x86-64 AVX-512F (16 x f32 in `__m512`, fused multiply-add).
//! Only sound inside `#[target_feature(enable = "avx512f")]` code on a CPU that has it.

use core::arch::x86_64::*;

use super::Simd;

/// 16 f32 lanes in a ZMM register (requires AVX-512F).
#[derive(Clone, Copy, Debug)]
pub struct Avx512(pub __m512);

impl Simd for Avx512 {
    const LANES: usize = 16;
    // 32 ZMM registers: 8 x 3 accumulators + 3 pixel vectors + 1 broadcast.
    const CONV_MR: usize = 8;
    const CONV_NV: usize = 3;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX-512F.
        unsafe { Self(_mm512_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX-512F.
        unsafe { Self(_mm512_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p` is valid for LANES reads and AVX-512F support.
        unsafe { Self(_mm512_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees `p` is valid for LANES writes and AVX-512F support.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn compress_store(self, mask: u32, p: *mut f32) {
        // SAFETY: the caller guarantees `p` is valid for `mask.count_ones()` writes (exactly
        // what `vcompressps` writes) and AVX-512F support.
        // Compressing in a register and storing the first `n` lanes with a mask is faster on
        // Intel cores than the memory form of `vcompressps` (which is microcoded there).
        unsafe {
            let packed = _mm512_maskz_compress_ps(mask as __mmask16, self.0);
            let n = mask.count_ones();
            _mm512_mask_storeu_ps(p.cast(), ((1u32 << n) - 1) as __mmask16, packed)
        }
    }
    #[inline(always)]
    unsafe fn expand_load(mask: u32, p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p` is valid for `mask.count_ones()` reads (exactly
        // what `vexpandps` reads; masked-off elements are not accessed) and AVX-512F support.
        unsafe { Self(_mm512_maskz_expandloadu_ps(mask as __mmask16, p.cast())) }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX-512F.
        unsafe { Self(_mm512_add_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX-512F.
        unsafe { Self(_mm512_mul_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX-512F.
        unsafe { Self(_mm512_fmadd_ps(a.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn max(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX-512F.
        unsafe { Self(_mm512_max_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn min(a: Self, b: Self) -> Self {
        // SAFETY: the caller guarantees the CPU supports AVX-512F.
        unsafe { Self(_mm512_min_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn load_first(n: usize, p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p` is valid for `n` reads; masked-off elements are
        // not accessed (no fault), and AVX-512F support.
        unsafe { Self(_mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p)) }
    }
    #[inline(always)]
    unsafe fn store_first(self, n: usize, p: *mut f32) {
        // SAFETY: the caller guarantees `p` is valid for `n` writes; masked-off elements are
        // not written, and AVX-512F support.
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, self.0) }
    }
    #[inline(always)]
    unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
        // SAFETY: the caller guarantees AVX-512F support.
        unsafe {
            let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            (
                Self(_mm512_permutex2var_ps(a.0, even, b.0)),
                Self(_mm512_permutex2var_ps(a.0, odd, b.0)),
            )
        }
    }
    #[inline(always)]
    unsafe fn interleave(a: Self, b: Self) -> (Self, Self) {
        // SAFETY: the caller guarantees AVX-512F support.
        unsafe {
            let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            let hi =
                _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            (
                Self(_mm512_permutex2var_ps(a.0, lo, b.0)),
                Self(_mm512_permutex2var_ps(a.0, hi, b.0)),
            )
        }
    }
    #[inline(always)]
    unsafe fn splice(lo: Self, hi: Self, k: usize) -> Self {
        // SAFETY: the caller guarantees AVX-512F support; a set mask bit takes `hi`'s lane.
        unsafe {
            Self(_mm512_mask_blend_ps(
                (0xffffu32 << k) as __mmask16,
                lo.0,
                hi.0,
            ))
        }
    }
    #[inline(always)]
    unsafe fn reduce_add(self) -> f32 {
        let mut t = [0.0f32; 16];
        // SAFETY: `t` holds exactly LANES f32s; the caller guarantees AVX-512F support.
        unsafe { self.store(t.as_mut_ptr()) };
        t.iter().sum()
    }
    #[inline(always)]
    unsafe fn reduce_max(self) -> f32 {
        let mut t = [0.0f32; 16];
        // SAFETY: `t` holds exactly LANES f32s; the caller guarantees AVX-512F support.
        unsafe { self.store(t.as_mut_ptr()) };
        t.iter().fold(t[0], |m, &x| if x > m { x } else { m })
    }
}
