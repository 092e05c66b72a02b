//! The microkernel contract: the `Simd` trait that every loop nest is written against, and one
//! implementation per ISA (scalar twin, SSE2, AVX2+FMA, AVX-512F, NEON), each in its own file.

pub mod scalar;

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
pub mod sse2;

#[cfg(target_arch = "aarch64")]
pub mod neon;

/// A vector of `LANES` f32 values held in registers.
///
/// Generic loop nests call these `#[inline(always)]` methods; they only become real vector
/// instructions when inlined into a `#[target_feature]` function of the matching ISA (which is
/// what the per-ISA entry points do).
///
/// # Safety (all methods)
/// The CPU must support the implementing type's ISA. Pointer methods additionally need the
/// stated number of valid, initialised `f32`s; no alignment is required.
pub trait Simd: Copy {
    /// f32 lanes per vector.
    const LANES: usize;
    /// Output channels of the convolution microkernel's register tile (1, 2, 4 or 8; divides
    /// the packing width 8).
    const CONV_MR: usize = 4;
    /// Vectors of output pixels in the convolution microkernel's register tile (1 to 4;
    /// `CONV_NV * LANES <= 64`).
    const CONV_NV: usize = 2;
    /// All lanes set to `x`.
    ///
    /// # Safety
    /// The CPU supports this ISA.
    unsafe fn splat(x: f32) -> Self;
    /// All lanes zero.
    ///
    /// # Safety
    /// The CPU supports this ISA.
    unsafe fn zero() -> Self;
    /// Loads `LANES` values from `p` (unaligned).
    ///
    /// # Safety
    /// `p` is valid for `LANES` reads; the CPU supports this ISA.
    unsafe fn load(p: *const f32) -> Self;
    /// Stores `LANES` values to `p` (unaligned).
    ///
    /// # Safety
    /// `p` is valid for `LANES` writes; the CPU supports this ISA.
    unsafe fn store(self, p: *mut f32);
    /// Lane-wise `a + b`.
    ///
    /// # Safety
    /// The CPU supports this ISA.
    unsafe fn add(a: Self, b: Self) -> Self;
    /// Lane-wise `a * b`.
    ///
    /// # Safety
    /// The CPU supports this ISA.
    unsafe fn mul(a: Self, b: Self) -> Self;
    /// Lane-wise `a * b + c` (fused where the ISA has it).
    ///
    /// # Safety
    /// The CPU supports this ISA.
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
    /// Lane-wise maximum (NaN handling is ISA-specific but never UB).
    ///
    /// # Safety
    /// The CPU supports this ISA.
    unsafe fn max(a: Self, b: Self) -> Self;
    /// Lane-wise minimum (NaN handling is ISA-specific but never UB).
    ///
    /// # Safety
    /// The CPU supports this ISA.
    unsafe fn min(a: Self, b: Self) -> Self;
    /// Stores the lanes whose bit is set in `mask` (bit `i` = lane `i`), in lane order, to
    /// consecutive floats at `p`.
    ///
    /// # Safety
    /// `p` is valid for `mask.count_ones()` writes; `mask < 1 << LANES`; the CPU supports this
    /// ISA.
    #[inline(always)]
    unsafe fn compress_store(self, mask: u32, p: *mut f32) {
        let mut t = [0.0f32; 16];
        debug_assert!(Self::LANES <= 16);
        // SAFETY: `t` holds at least LANES floats; the `k`-th set bit writes `p + k`, and there
        // are `mask.count_ones()` of them.
        unsafe {
            self.store(t.as_mut_ptr());
            let mut k = 0;
            for (i, &v) in t.iter().enumerate().take(Self::LANES) {
                if mask >> i & 1 != 0 {
                    *p.add(k) = v;
                    k += 1;
                }
            }
        }
    }
    /// The inverse of [`Simd::compress_store`]: lanes whose bit is set in `mask` take
    /// consecutive floats from `p` in lane order; the other lanes are zero.
    ///
    /// # Safety
    /// `p` is valid for `mask.count_ones()` reads; `mask < 1 << LANES`; the CPU supports this
    /// ISA.
    #[inline(always)]
    unsafe fn expand_load(mask: u32, p: *const f32) -> Self {
        let mut t = [0.0f32; 16];
        debug_assert!(Self::LANES <= 16);
        // SAFETY: as `compress_store`, reading instead of writing.
        unsafe {
            let mut k = 0;
            for (i, v) in t.iter_mut().enumerate().take(Self::LANES) {
                if mask >> i & 1 != 0 {
                    *v = *p.add(k);
                    k += 1;
                }
            }
            Self::load(t.as_ptr())
        }
    }
    /// Loads the first `n` floats at `p` into lanes `0..n` (the other lanes are zero): a
    /// vector-wide tail read that never touches memory past `p + n`.
    ///
    /// # Safety
    /// `p` is valid for `n` reads; `n <= LANES`; the CPU supports this ISA.
    #[inline(always)]
    unsafe fn load_first(n: usize, p: *const f32) -> Self {
        // SAFETY: a prefix mask of `n` bits reads exactly `n` floats.
        unsafe { Self::expand_load(((1u64 << n) - 1) as u32, p) }
    }
    /// Stores lanes `0..n` to the first `n` floats at `p` (the inverse of
    /// [`Simd::load_first`]).
    ///
    /// # Safety
    /// `p` is valid for `n` writes; `n <= LANES`; the CPU supports this ISA.
    #[inline(always)]
    unsafe fn store_first(self, n: usize, p: *mut f32) {
        // SAFETY: a prefix mask of `n` bits writes exactly `n` floats.
        unsafe { self.compress_store(((1u64 << n) - 1) as u32, p) }
    }
    /// Splits the `2 * LANES` consecutive floats held in `a` then `b` into their even-indexed
    /// and odd-indexed elements, in order: `([x0, x2, …], [x1, x3, …])`.
    ///
    /// # Safety
    /// The CPU supports this ISA.
    #[inline(always)]
    unsafe fn deinterleave(a: Self, b: Self) -> (Self, Self) {
        let (mut t, mut e, mut o) = ([0.0f32; 32], [0.0f32; 16], [0.0f32; 16]);
        debug_assert!(Self::LANES <= 16);
        // SAFETY: `t` holds 2 × LANES floats, `e` and `o` LANES each.
        unsafe {
            a.store(t.as_mut_ptr());
            b.store(t.as_mut_ptr().add(Self::LANES));
            for i in 0..Self::LANES {
                e[i] = t[2 * i];
                o[i] = t[2 * i + 1];
            }
            (Self::load(e.as_ptr()), Self::load(o.as_ptr()))
        }
    }
    /// The inverse of [`deinterleave`](Simd::deinterleave): the `2 * LANES` floats
    /// `[a0, b0, a1, b1, …]` as two vectors, the first `LANES` of them then the rest.
    ///
    /// # Safety
    /// The CPU supports this ISA.
    #[inline(always)]
    unsafe fn interleave(a: Self, b: Self) -> (Self, Self) {
        let (mut x, mut y, mut t) = ([0.0f32; 16], [0.0f32; 16], [0.0f32; 32]);
        debug_assert!(Self::LANES <= 16);
        // SAFETY: `x` and `y` hold LANES floats, `t` 2 × LANES.
        unsafe {
            a.store(x.as_mut_ptr());
            b.store(y.as_mut_ptr());
            for i in 0..Self::LANES {
                t[2 * i] = x[i];
                t[2 * i + 1] = y[i];
            }
            (
                Self::load(t.as_ptr()),
                Self::load(t.as_ptr().add(Self::LANES)),
            )
        }
    }
    /// Lanes `[0, k)` of `lo` and lanes `[k, LANES)` of `hi` (`k <= LANES`): a blend at a lane
    /// boundary, e.g. two runs of tiles gathered separately into one vector.
    ///
    /// # Safety
    /// The CPU supports this ISA.
    #[inline(always)]
    unsafe fn splice(lo: Self, hi: Self, k: usize) -> Self {
        let (mut a, mut b) = ([0.0f32; 16], [0.0f32; 16]);
        debug_assert!(Self::LANES <= 16 && k <= Self::LANES);
        // SAFETY: `a` and `b` hold at least LANES floats.
        unsafe {
            lo.store(a.as_mut_ptr());
            hi.store(b.as_mut_ptr());
            a[k..Self::LANES].copy_from_slice(&b[k..Self::LANES]);
            Self::load(a.as_ptr())
        }
    }
    /// Sum of all lanes.
    ///
    /// # Safety
    /// The CPU supports this ISA.
    unsafe fn reduce_add(self) -> f32;
    /// Maximum of all lanes.
    ///
    /// # Safety
    /// The CPU supports this ISA.
    unsafe fn reduce_max(self) -> f32;
}
