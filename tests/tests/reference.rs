// Every compiled model (random and shipped specs) against the f64 reference interpreter:
// max |error| relative to the RMS of the reference output must stay within 1e-5.

mod common;

use neulens_tests::{random_models, shipped_models, ModelEntry, MODELS};
use std::path::Path;

/// Max |compiled - reference| / RMS(reference) allowed (direct convolution, DESIGN.md).
const TOLERANCE: f64 = 1e-5;
/// The suite must not silently shrink.
const MIN_RANDOM_MODELS: usize = 48;

struct Outcome {
    max_err: f64,
    rms: f64,
    ratio: f64,
}

/// Runs one model and the reference; Err describes the failure.
fn check(m: &ModelEntry) -> Result<Outcome, String> {
    let input = common::input(m.input_len, m.macs ^ m.input_len as u64);
    let mut arena = vec![0.0f32; m.arena_len];
    let mut out = vec![0.0f32; m.output_len];
    (m.infer)(&input, &mut arena, &mut out).map_err(|e| format!("infer_slices failed: {e}"))?;
    let loaded = neulens_codegen::load::load_model_file(Path::new(m.spec))
        .map_err(|d| format!("the reference cannot load {}:\n{d}", m.spec))?;
    let reference = neulens_codegen::reference::run(&loaded.graph, &input)
        .map_err(|e| format!("the reference interpreter failed: {e}"))?;
    if reference.len() != out.len() {
        return Err(format!(
            "output length {} but the reference has {}",
            out.len(),
            reference.len()
        ));
    }
    let rms = (reference.iter().map(|r| r * r).sum::<f64>() / reference.len().max(1) as f64).sqrt();
    let mut max_err = 0.0f64;
    let mut first_bad = None;
    for (i, (&o, &r)) in out.iter().zip(&reference).enumerate() {
        let err = (f64::from(o) - r).abs();
        // NaN compares false everywhere, so test for "not within" rather than "above".
        let within = err <= TOLERANCE * rms;
        if !within && first_bad.is_none() {
            first_bad = Some((i, o, r));
        }
        if err.is_nan() || err > max_err {
            max_err = if err.is_nan() { f64::NAN } else { err };
        }
    }
    let ratio = if rms > 0.0 {
        max_err / rms
    } else if max_err == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    match first_bad {
        None => Ok(Outcome {
            max_err,
            rms,
            ratio,
        }),
        Some((i, o, r)) => Err(format!(
            "max |err| {max_err:.3e}, RMS {rms:.3e}, ratio {ratio:.3e} > {TOLERANCE:e}; \
             first bad index {i} of {}: compiled {o:e}, reference {r:e}",
            out.len()
        )),
    }
}

/// Checks every model, prints one line per model and fails naming every failing model.
fn check_all<'a>(family: &str, models: impl Iterator<Item = &'a ModelEntry>) {
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for m in models {
        count += 1;
        let start = std::time::Instant::now();
        let r = std::panic::catch_unwind(|| check(m))
            .unwrap_or_else(|_| Err("panicked (see the message above)".to_string()));
        let ms = start.elapsed().as_millis();
        match r {
            Ok(o) => lines.push(format!(
                "  ok   {:<10} max|err| {:.3e}  RMS {:.3e}  ratio {:.3e}  ({} MACs, {ms} ms)",
                m.name, o.max_err, o.rms, o.ratio, m.macs
            )),
            Err(e) => {
                lines.push(format!("  FAIL {:<10} {e}", m.name));
                failures.push(format!("{} ({}): {e}", m.name, m.spec));
            }
        }
    }
    println!("{family}: {count} models\n{}", lines.join("\n"));
    assert!(count > 0, "{family}: no models");
    assert!(
        failures.is_empty(),
        "{family}: {} of {count} models differ from the reference:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn shipped_specs_match_reference() {
    check_all("shipped specs", shipped_models());
}

/// The random models, split in four interleaved parts so the test harness runs them in parallel.
fn random_part(part: usize) {
    check_all(
        &format!("random specs, part {part}/4"),
        random_models().skip(part).step_by(4),
    );
}

#[test]
fn random_specs_match_reference_part0() {
    random_part(0);
}

#[test]
fn random_specs_match_reference_part1() {
    random_part(1);
}

#[test]
fn random_specs_match_reference_part2() {
    random_part(2);
}

#[test]
fn random_specs_match_reference_part3() {
    random_part(3);
}

#[test]
fn suite_has_enough_random_models() {
    let n = random_models().count();
    assert!(
        n >= MIN_RANDOM_MODELS,
        "only {n} random models (at least {MIN_RANDOM_MODELS} expected)"
    );
    assert!(
        shipped_models().count() >= 1,
        "no shipped spec was compiled"
    );
    let mut names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), MODELS.len(), "duplicate model names");
}

#[test]
fn random_specs_stay_small() {
    let big: Vec<String> = random_models()
        .filter(|m| m.macs > 4_000_000)
        .map(|m| format!("{} ({} MACs)", m.name, m.macs))
        .collect();
    assert!(
        big.is_empty(),
        "random specs above 4M MACs slow the suite down: {big:?}"
    );
}
