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
