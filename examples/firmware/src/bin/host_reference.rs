//! The host side of the firmware check: prints the firmware's report for the same input with the
//! same (scalar) kernels, then checks that the host's own SIMD kernels agree within a tolerance.

use neulens::Isa;
use neulens_firmware::{argmax, features_line, report, resnet8, INPUT};

/// Largest |SIMD - scalar| accepted on the softmax output: only the summation order differs.
const TOLERANCE: f32 = 1e-5;

/// Runs the model with `isa`; returns the output and the report (+ diagnostic line) as text.
fn run(isa: Isa) -> ([f32; resnet8::OUTPUT_LEN], String) {
    let mut arena = vec![0.0f32; resnet8::ARENA_LEN];
    let mut output = [0.0f32; resnet8::OUTPUT_LEN];
    neulens::with_isa(isa, || {
        resnet8::infer_slices(&INPUT, &mut arena, &mut output).expect("sizes from the model")
    })
    .expect("this CPU runs the ISA");
    let mut text = String::new();
    report(&mut text, isa, &output).expect("formatting into a String");
    features_line(&mut text, &arena).expect("formatting into a String");
    let mut adaptive = vec![0.0f32; neulens_firmware::tiles::ADAPTIVE_ARENA_LEN];
    let adaptive: &mut neulens_firmware::tiles::AdaptiveArena = adaptive
        .as_mut_slice()
        .try_into()
        .expect("ADAPTIVE_ARENA_LEN");
    neulens::with_isa(isa, || {
        neulens_firmware::adaptive_report(&mut text, adaptive)
    })
    .expect("this CPU runs the ISA")
    .expect("formatting into a String");
    (output, text)
}

fn main() {
    let (scalar, text) = run(Isa::Scalar);
    print!("{text}");

    let native_isa = neulens::active_isa();
    let (native, _) = run(native_isa);
    let diff = scalar
        .iter()
        .zip(&native)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "# host: {} kernels vs scalar: max |diff| {diff:.3e}, class {}",
        native_isa.name(),
        argmax(&native)
    );
    if diff > TOLERANCE || argmax(&native) != argmax(&scalar) {
        eprintln!(
            "host {} output differs from scalar beyond {TOLERANCE}",
            native_isa.name()
        );
        std::process::exit(1);
    }
}
