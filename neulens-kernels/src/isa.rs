//! Instruction-set selection: the `Isa` enum, what was enabled at compile time (`COMPILED`),
//! and what is usable on the running CPU (`is_available`, `detect`).

/// A SIMD instruction set a kernel can be instantiated for.
///
/// Every variant exists on every target; an ISA of another architecture is simply never
/// available (the unsafe entry points fall back to the scalar twin for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable scalar code (1 lane); always available.
    Scalar,
    /// x86-64 SSE2 (4 lanes).
    Sse2,
    /// x86-64 AVX2 + FMA (8 lanes).
    Avx2,
    /// x86-64 AVX-512F (16 lanes).
    Avx512,
    /// aarch64 Advanced SIMD (4 lanes).
    Neon,
}

/// The best ISA enabled at compile time through `cfg(target_feature = ...)`.
pub const COMPILED: Isa = compiled();

const fn compiled() -> Isa {
    if cfg!(target_arch = "x86_64") {
        if cfg!(target_feature = "avx512f") {
            Isa::Avx512
        } else if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
            Isa::Avx2
        } else {
            Isa::Sse2
        }
    } else if cfg!(target_arch = "aarch64") {
        Isa::Neon
    } else {
        Isa::Scalar
    }
}

impl Isa {
    /// The best ISA enabled at compile time by `cfg(target_feature)` (same as [`COMPILED`]).
    pub const COMPILED: Isa = COMPILED;

    /// All variants, from the portable baseline to the widest.
    pub const ALL: [Isa; 5] = [Isa::Scalar, Isa::Sse2, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// f32 lanes per vector register.
    pub const fn lanes(self) -> usize {
        match self {
            Isa::Scalar => 1,
            Isa::Sse2 | Isa::Neon => 4,
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
        }
    }

    /// Short lowercase name: "scalar", "sse2", "avx2-fma", "avx512f", "neon".
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Sse2 => "sse2",
            Isa::Avx2 => "avx2-fma",
            Isa::Avx512 => "avx512f",
            Isa::Neon => "neon",
        }
    }

    /// Whether the compile-time target features alone guarantee this ISA.
    pub const fn is_compiled(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Neon => matches!(COMPILED, Isa::Neon),
            Isa::Sse2 => matches!(COMPILED, Isa::Sse2 | Isa::Avx2 | Isa::Avx512),
            Isa::Avx2 => matches!(COMPILED, Isa::Avx2 | Isa::Avx512),
            Isa::Avx512 => matches!(COMPILED, Isa::Avx512),
        }
    }

    /// Whether kernels may be called with this ISA on the running CPU.
    ///
    /// With the `std` feature (and in this crate's tests) x86 features are detected at run
    /// time; without it, this is [`Isa::is_compiled`].
    pub fn is_available(self) -> bool {
        if self.is_compiled() {
            return true;
        }
        #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
        {
            match self {
                Isa::Avx2 => {
                    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
                }
                Isa::Avx512 => std::is_x86_feature_detected!("avx512f"),
                _ => false,
            }
        }
        #[cfg(not(all(any(feature = "std", test), target_arch = "x86_64")))]
        {
            false
        }
    }

    /// The best ISA available on the running CPU (runtime detection; `std` only).
    #[cfg(any(feature = "std", test))]
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Sse2]
            .into_iter()
            .find(|i| i.is_available())
            .unwrap_or(Isa::Scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_always_available_and_compiled_is_available() {
        assert!(Isa::Scalar.is_available());
        assert!(COMPILED.is_available());
        assert!(Isa::detect().is_available());
        assert!(Isa::detect() >= COMPILED || COMPILED == Isa::Neon);
    }

    #[test]
    fn other_arch_is_unavailable() {
        if cfg!(target_arch = "x86_64") {
            assert!(!Isa::Neon.is_available());
            assert!(Isa::Sse2.is_available());
        }
        if cfg!(target_arch = "aarch64") {
            assert!(!Isa::Sse2.is_available());
            assert!(!Isa::Avx2.is_available());
            assert!(Isa::Neon.is_available());
        }
    }

    #[test]
    fn lanes_and_names() {
        let lanes: std::vec::Vec<usize> = Isa::ALL.iter().map(|i| i.lanes()).collect();
        assert_eq!(lanes, [1, 4, 8, 16, 4]);
        let names: std::vec::Vec<&str> = Isa::ALL.iter().map(|i| i.name()).collect();
        assert_eq!(names, ["scalar", "sse2", "avx2-fma", "avx512f", "neon"]);
    }
}
