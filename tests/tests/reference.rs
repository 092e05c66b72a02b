// Every compiled model (random and shipped specs, and their forced-Winograd and pattern-pruned
// copies) against the f64 reference interpreter (run on the same pruned weights):
// max |error| / RMS(reference output) <= the model's tolerance (1e-5 direct, 1e-4 / 3e-4 with
// Winograd F(4,3) / F(6,3)); softmax outputs: per element, and sum 1 ± 1e-6.

mod common;

use neulens_tests::{random_models, shipped_models, ModelEntry, MODELS};
use std::path::Path;

/// The suite must not silently shrink.
const MIN_RANDOM_MODELS: usize = 48;

struct Outcome {
    max_err: f64,
    rms: f64,
    /// max |err| / RMS (the criterion, except for softmax outputs).
    ratio: f64,
    /// Softmax outputs only: max |err_i| / max(|ref_i|, RMS) (the criterion there), and Σ output.
    softmax: Option<(f64, f64)>,
}

/// Runs one model and the reference; Err describes the failure.
///
/// The criterion is max |err| / RMS(reference) <= `m.tolerance` (1e-5 for direct convolution,
/// looser for Winograd F(4,3)/F(6,3), from tests/build.rs), except for models ending in softmax: the
/// exponential turns an absolute error of the logits into a relative error of every probability,
/// and the RMS of a peaked distribution over many classes is far below its peak, so correct f32
/// logits (errors of a few ulp) can exceed 1e-5 of the RMS at the peak. There each element is
/// compared relative to its own magnitude (floored at the RMS), and the outputs must sum to 1
/// within 1e-6 (which catches a wrong normalisation).
///
/// The compiled model runs once per instruction set this CPU has (scalar, SSE2, AVX2, AVX-512 on
/// x86-64; scalar and NEON on aarch64) and every run must pass; the outcome is the worst run.
fn check(m: &ModelEntry) -> Result<Outcome, String> {
    let input = common::input(m.input_len, m.macs ^ m.input_len as u64);
    let loaded = neulens_codegen::load::load_model_file(Path::new(m.spec))
        .map_err(|d| format!("the reference cannot load {}:\n{d}", m.spec))?;
    // Pattern-pruned layers: the reference runs the same pruned weights (a no-op otherwise).
    let (pruned, _) = neulens_codegen::prune::apply(&loaded.graph);
    let g = &pruned;
    let is_softmax = matches!(g.nodes[g.output].op, neulens_codegen::graph::Op::Softmax);
    let reference = neulens_codegen::reference::run(g, &input)
        .map_err(|e| format!("the reference interpreter failed: {e}"))?;
    let mut worst: Option<Outcome> = None;
    let mut ran = 0;
    for isa in neulens::Isa::ALL {
        let mut arena = vec![0.0f32; m.arena_len];
        let mut out = vec![0.0f32; m.output_len];
        let Some(r) = neulens::with_isa(isa, || (m.infer)(&input, &mut arena, &mut out)) else {
            continue;
        };
        ran += 1;
        r.map_err(|e| format!("infer_slices failed on {}: {e}", isa.name()))?;
        let o = compare(&out, &reference, is_softmax, m.tolerance)
            .map_err(|e| format!("{}: {e}", isa.name()))?;
        if worst.as_ref().is_none_or(|w| o.ratio > w.ratio) {
            worst = Some(o);
        }
    }
    if ran < 2 {
        return Err(format!(
            "only {ran} instruction set(s) ran; expected scalar and at least one SIMD"
        ));
    }
    worst.ok_or_else(|| "no instruction set ran".to_string())
}

/// Compares one compiled output with the reference (see `check` for the criterion).
fn compare(
    out: &[f32],
    reference: &[f64],
    is_softmax: bool,
    tolerance: f64,
) -> Result<Outcome, String> {
    if reference.len() != out.len() {
        return Err(format!(
            "output length {} but the reference has {}",
            out.len(),
            reference.len()
        ));
    }
    let rms = (reference.iter().map(|r| r * r).sum::<f64>() / reference.len().max(1) as f64).sqrt();
    let mut max_err = 0.0f64;
    let mut max_rel = 0.0f64;
    let mut first_bad = None;
    for (i, (&o, &r)) in out.iter().zip(reference).enumerate() {
        let err = (f64::from(o) - r).abs();
        let scale = if is_softmax { r.abs().max(rms) } else { rms };
        // NaN compares false everywhere, so test for "not within" rather than "above".
        let within = err <= tolerance * scale;
        if !within && first_bad.is_none() {
            first_bad = Some((i, o, r));
        }
        if err.is_nan() || err > max_err {
            max_err = err;
        }
        let rel = if scale > 0.0 {
            err / scale
        } else if err == 0.0 {
            0.0
        } else {
            f64::INFINITY
        };
        if rel.is_nan() || rel > max_rel {
            max_rel = rel;
        }
    }
    let ratio = if rms > 0.0 {
        max_err / rms
    } else if max_err == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    let sum: f64 = out.iter().map(|&o| f64::from(o)).sum();
    let softmax = is_softmax.then_some((max_rel, sum));
    if let Some((i, o, r)) = first_bad {
        let what = if is_softmax {
            format!("max |err_i|/max(|ref_i|, RMS) {max_rel:.3e}")
        } else {
            format!("ratio {ratio:.3e}")
        };
        return Err(format!(
            "max |err| {max_err:.3e}, RMS {rms:.3e}, {what} > {tolerance:e}; \
             first bad index {i} of {}: compiled {o:e}, reference {r:e}",
            out.len()
        ));
    }
    if is_softmax && (sum.is_nan() || (sum - 1.0).abs() > 1e-6) {
        return Err(format!(
            "the softmax output sums to 1 {:+.3e} (max |err| {max_err:.3e})",
            sum - 1.0
        ));
    }
    Ok(Outcome {
        max_err,
        rms,
        ratio,
        softmax,
    })
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
            Ok(o) => {
                let sm = match o.softmax {
                    Some((rel, sum)) => {
                        format!("  softmax: max rel {rel:.3e}, sum-1 {:+.1e}", sum - 1.0)
                    }
                    None => String::new(),
                };
                lines.push(format!(
                    "  ok   {:<10} max|err| {:.3e}  RMS {:.3e}  ratio {:.3e} (tol {:.0e}){sm}  ({} MACs, {ms} ms)",
                    m.name, o.max_err, o.rms, o.ratio, m.tolerance, m.macs
                ))
            }
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
