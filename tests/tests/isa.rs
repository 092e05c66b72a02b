//! Which ISA path the generated code takes: NEON on aarch64 (run under qemu-aarch64 by
//! scripts/cross-test.sh), an x86-64 SIMD ISA matching the target features on x86-64.

use neulens::Isa;
use neulens_tests::{rand_00, rand_55, resnet8};

/// The ISA that `cfg(target_feature)` enables for this target, i.e. what `ISA` must say.
fn expected() -> Isa {
    if cfg!(target_arch = "aarch64") {
        Isa::Neon
    } else if cfg!(target_arch = "x86_64") {
        if cfg!(target_feature = "avx512f") {
            Isa::Avx512
        } else if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
            Isa::Avx2
        } else {
            Isa::Sse2
        }
    } else {
        Isa::Scalar
    }
}

#[test]
fn generated_modules_report_the_compiled_isa() {
    let want = expected();
    for (name, isa) in [
        ("rand_00", rand_00::ISA),
        ("rand_55", rand_55::ISA),
        ("resnet8", resnet8::ISA),
    ] {
        assert_eq!(isa, want, "{name}: generated code says {}", isa.name());
        assert_eq!(isa, Isa::COMPILED, "{name}");
        assert!(
            isa.is_available(),
            "{name}: {} is not available",
            isa.name()
        );
    }
}

#[cfg(target_arch = "aarch64")]
#[test]
fn aarch64_takes_the_neon_path() {
    assert_eq!(resnet8::ISA, Isa::Neon);
    // `infer` runs with `active_isa()` (std: detected at run time): NEON too.
    assert_eq!(neulens::active_isa(), Isa::Neon);
    assert_eq!(Isa::detect(), Isa::Neon);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x86_64_takes_an_x86_simd_path() {
    assert!(matches!(resnet8::ISA, Isa::Sse2 | Isa::Avx2 | Isa::Avx512));
    assert_eq!(
        resnet8::ISA == Isa::Avx512,
        cfg!(target_feature = "avx512f")
    );
    assert_eq!(
        resnet8::ISA >= Isa::Avx2,
        cfg!(all(target_feature = "avx2", target_feature = "fma"))
    );
    // At run time `infer` may use a wider ISA than compiled in, never a narrower one.
    let active = neulens::active_isa();
    assert!(
        active >= resnet8::ISA && active.is_available(),
        "{active:?}"
    );
    assert!(matches!(active, Isa::Sse2 | Isa::Avx2 | Isa::Avx512));
}

/// The compiled ISA really runs (not only its label): resnet8 with it agrees with the scalar
/// kernels up to summation order, and is a probability vector.
#[test]
fn resnet8_runs_on_the_compiled_isa() {
    let input: Vec<f32> = (0..resnet8::INPUT_LEN)
        .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
        .collect();
    let run = |isa| {
        let mut arena = vec![0.0f32; resnet8::ARENA_LEN];
        let mut out = [0.0f32; resnet8::OUTPUT_LEN];
        neulens::with_isa(isa, || resnet8::infer_slices(&input, &mut arena, &mut out))
            .unwrap_or_else(|| panic!("{isa:?} is not available"))
            .expect("sizes from the model's consts");
        out
    };
    let simd = run(expected());
    let scalar = run(Isa::Scalar);
    let sum: f32 = simd.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "softmax output sums to {sum}");
    for (a, b) in simd.iter().zip(&scalar) {
        assert!(
            (a - b).abs() <= 1e-5,
            "{} {a} vs scalar {b}",
            expected().name()
        );
    }
}
