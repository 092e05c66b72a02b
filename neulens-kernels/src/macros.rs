//! The `dispatch!` macro: turns one generic `#[inline(always)]` loop nest into per-ISA
//! `#[target_feature]` instantiations plus the `Isa`-switched entry point that calls them.

/// `dispatch!(/// docs  pub unsafe fn name(a: A, b: B) => generic_impl);` defines
/// `pub unsafe fn name(isa: Isa, a: A, b: B)` that calls `generic_impl::<V>(a, b)` with the
/// `Simd` type of `isa`, inside a function compiled with that ISA's target features.
/// ISAs of another architecture fall back to the scalar twin.
macro_rules! dispatch {
    (
        $(#[$meta:meta])*
        $vis:vis unsafe fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) => $generic:ident
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name(isa: $crate::Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                /// # Safety
                /// Caller's contract, plus the CPU has SSE2 (x86-64 baseline).
                #[target_feature(enable = "sse2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn sse2($($arg: $ty),*) {
                    // SAFETY: forwarded caller contract; SSE2 is enabled here.
                    unsafe { $generic::<$crate::simd::sse2::Sse2>($($arg),*) }
                }
                /// # Safety
                /// Caller's contract, plus the CPU has AVX2 and FMA.
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) {
                    // SAFETY: forwarded caller contract; AVX2+FMA are enabled here.
                    unsafe { $generic::<$crate::simd::avx2::Avx2>($($arg),*) }
                }
                /// # Safety
                /// Caller's contract, plus the CPU has AVX-512F.
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) {
                    // SAFETY: forwarded caller contract; AVX-512F is enabled here.
                    unsafe { $generic::<$crate::simd::avx512::Avx512>($($arg),*) }
                }
                match isa {
                    // SAFETY: the caller guarantees `isa` is available on this CPU.
                    $crate::Isa::Sse2 => return unsafe { sse2($($arg),*) },
                    // SAFETY: as above.
                    $crate::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    // SAFETY: as above.
                    $crate::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    _ => {}
                }
            }
            #[cfg(target_arch = "aarch64")]
            {
                if isa == $crate::Isa::Neon {
                    // SAFETY: forwarded caller contract; NEON is baseline on aarch64.
                    return unsafe { $generic::<$crate::simd::neon::Neon>($($arg),*) };
                }
            }
            let _ = isa;
            // SAFETY: forwarded caller contract; the scalar twin needs no CPU feature.
            unsafe { $generic::<f32>($($arg),*) }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis unsafe fn $name:ident < $g:ident : $bound:path > ( $($arg:ident : $ty:ty),* $(,)? ) => $generic:ident
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name<$g: $bound>(isa: $crate::Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                /// # Safety
                /// Caller's contract, plus the CPU has SSE2 (x86-64 baseline).
                #[target_feature(enable = "sse2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn sse2<$g: $bound>($($arg: $ty),*) {
                    // SAFETY: forwarded caller contract; SSE2 is enabled here.
                    unsafe { $generic::<$crate::simd::sse2::Sse2, $g>($($arg),*) }
                }
                /// # Safety
                /// Caller's contract, plus the CPU has AVX2 and FMA.
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2<$g: $bound>($($arg: $ty),*) {
                    // SAFETY: forwarded caller contract; AVX2+FMA are enabled here.
                    unsafe { $generic::<$crate::simd::avx2::Avx2, $g>($($arg),*) }
                }
                /// # Safety
                /// Caller's contract, plus the CPU has AVX-512F.
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512<$g: $bound>($($arg: $ty),*) {
                    // SAFETY: forwarded caller contract; AVX-512F is enabled here.
                    unsafe { $generic::<$crate::simd::avx512::Avx512, $g>($($arg),*) }
                }
                match isa {
                    // SAFETY: the caller guarantees `isa` is available on this CPU.
                    $crate::Isa::Sse2 => return unsafe { sse2::<$g>($($arg),*) },
                    // SAFETY: as above.
                    $crate::Isa::Avx2 => return unsafe { avx2::<$g>($($arg),*) },
                    // SAFETY: as above.
                    $crate::Isa::Avx512 => return unsafe { avx512::<$g>($($arg),*) },
                    _ => {}
                }
            }
            #[cfg(target_arch = "aarch64")]
            {
                if isa == $crate::Isa::Neon {
                    // SAFETY: forwarded caller contract; NEON is baseline on aarch64.
                    return unsafe { $generic::<$crate::simd::neon::Neon, $g>($($arg),*) };
                }
            }
            let _ = isa;
            // SAFETY: forwarded caller contract; the scalar twin needs no CPU feature.
            unsafe { $generic::<f32, $g>($($arg),*) }
        }
    };
}
