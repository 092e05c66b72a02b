//! The scalar twin: `Simd` for plain `f32` (1 lane), the always-available baseline every
//! vector ISA is tested against.

use super::Simd;

// Every method is plain safe arithmetic; `unsafe` is only the trait's signature.
impl Simd for f32 {
    const LANES: usize = 1;
    // The twin: 4 x 2 scalar accumulators.
    const CONV_MR: usize = 4;
    const CONV_NV: usize = 2;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        x
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        0.0
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p` is valid for 1 read.
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees `p` is valid for 1 write.
        unsafe { p.write_unaligned(self) }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        a + b
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        a * b
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        // Not fused: `f32::mul_add` needs std/libm on some no_std targets.
        a * b + c
    }
    #[inline(always)]
    unsafe fn max(a: Self, b: Self) -> Self {
        // Same as SSE `maxps`: returns `b` unless `a > b` (so NaN in `a` yields `b`).
        if a > b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    unsafe fn min(a: Self, b: Self) -> Self {
        if a < b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    unsafe fn load_first(n: usize, p: *const f32) -> Self {
        if n == 0 {
            0.0
        } else {
            // SAFETY: `n == 1`: the caller guarantees one valid read.
            unsafe { *p }
        }
    }
    #[inline(always)]
    unsafe fn store_first(self, n: usize, p: *mut f32) {
        if n != 0 {
            // SAFETY: `n == 1`: the caller guarantees one valid write.
            unsafe { *p = self }
        }
    }
    #[inline(always)]
    unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
        (a, b)
    }
    #[inline(always)]
    unsafe fn reduce_add(self) -> f32 {
        self
    }
    #[inline(always)]
    unsafe fn reduce_max(self) -> f32 {
        self
    }
}
