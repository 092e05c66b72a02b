// Adaptive (micro-flow) inference of every compiled model that has a `microflows:` section (the
// `rand_NN_mf` copies of the random specs and the shipped micro-flow specs):
// - every tile at the widest level equals the untiled `infer`;
// - every level, on every instruction set, equals the f64 reference run of the sliced tile graphs;
// - the compiled gate decides like the reference gate;
// - the budget controller: budgets respected while feasible, monotone, never widens a tile.

mod common;

use neulens::{Budget, Policy};
use neulens_codegen::microflow::{self, Microflows};
use neulens_tests::{adaptive_models, AdaptiveEntry, AdaptiveReport, ModelEntry};
use std::path::Path;

/// The suite must not silently shrink (random specs for which a valid split exists, plus shipped).
const MIN_ADAPTIVE_MODELS: usize = 36;

fn microflows(m: &ModelEntry) -> Microflows {
    let loaded = neulens_codegen::load::load_model_file(Path::new(m.spec))
        .unwrap_or_else(|d| panic!("{}: {d}", m.spec));
    microflow::build(&loaded.graph)
        .unwrap_or_else(|d| panic!("{}: {d}", m.spec))
        .expect("the spec has a microflows section")
}

/// max |got − want| / scale, where scale is the RMS of `want`, or for softmax outputs (which
/// sum to 1) each element's own magnitude floored at the RMS (see reference.rs for why).
fn err(got: &[f32], want: &[f64], softmax: bool) -> f64 {
    assert_eq!(got.len(), want.len());
    let rms = (want.iter().map(|v| v * v).sum::<f64>() / want.len().max(1) as f64)
        .sqrt()
        .max(1e-30);
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            let scale = if softmax { w.abs().max(rms) } else { rms };
            (g as f64 - w).abs() / scale
        })
        .fold(0.0, f64::max)
}

fn is_softmax(m: &ModelEntry) -> bool {
    let loaded = neulens_codegen::load::load_model_file(Path::new(m.spec)).unwrap();
    let g = &loaded.graph;
    matches!(g.nodes[g.output].op, neulens_codegen::graph::Op::Softmax)
}

fn run(m: &ModelEntry, a: &AdaptiveEntry, input: &[f32], p: Policy) -> (Vec<f32>, AdaptiveReport) {
    // A dirty arena: nothing may depend on it being zeroed.
    let mut arena = vec![f32::NAN; a.arena_len];
    let mut out = vec![0.0f32; m.output_len];
    let r = (a.infer)(input, &mut arena, &mut out, p).expect("sizes from the model's consts");
    (out, r)
}

#[test]
fn the_suite_has_micro_flow_models() {
    let n = adaptive_models().count();
    assert!(
        n >= MIN_ADAPTIVE_MODELS,
        "{n} adaptive models, expected at least {MIN_ADAPTIVE_MODELS}"
    );
    assert!(adaptive_models().any(|(m, _)| m.name == "microflow_demo"));
}

#[test]
fn widest_level_equals_untiled_infer() {
    let mut failures = Vec::new();
    for (m, a) in adaptive_models() {
        let input = common::input(m.input_len, m.macs);
        let mut arena = vec![0.0f32; m.arena_len];
        let mut dense = vec![0.0f32; m.output_len];
        (m.infer)(&input, &mut arena, &mut dense).unwrap();
        let dense64: Vec<f64> = dense.iter().map(|&v| v as f64).collect();
        let (out, r) = run(m, a, &input, Policy::Fixed(0));
        assert!(r.levels.iter().all(|&l| l == 0));
        // Both are f32 computations (possibly with other algorithms per tile): twice the bound.
        let e = err(&out, &dense64, is_softmax(m));
        if e.is_nan() || e > 2.0 * m.tolerance {
            failures.push(format!("{}: {e:e}", m.name));
        }
    }
    assert!(failures.is_empty(), "tiled ≠ untiled: {failures:#?}");
}

#[test]
fn every_level_on_every_isa_matches_the_sliced_reference() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (m, a) in adaptive_models() {
        let mf = microflows(m);
        assert_eq!(mf.tiles.len(), a.tiles, "{}", m.name);
        assert_eq!(mf.num_levels(), a.levels, "{}", m.name);
        let input = common::input(m.input_len, m.macs ^ 0x5eed);
        let softmax = is_softmax(m);
        for l in 0..a.levels {
            let want = microflow::reference_run(&mf, &input, &vec![l; a.tiles]).unwrap();
            for isa in neulens::Isa::ALL {
                let Some((out, r)) =
                    neulens::with_isa(isa, || run(m, a, &input, Policy::Fixed(l as u8)))
                else {
                    continue;
                };
                checked += 1;
                let macs: Vec<u64> = mf.tile_macs.iter().map(|t| t[l]).collect();
                assert_eq!(r.macs, macs, "{} level {l}", m.name);
                assert_eq!(r.total_macs, macs.iter().sum::<u64>() + mf.tail_macs);
                let e = err(&out, &want, softmax);
                if e.is_nan() || e > m.tolerance {
                    failures.push(format!("{} level {l} {}: {e:e}", m.name, isa.name()));
                }
            }
        }
    }
    assert!(checked > 0);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_gate_decides_like_the_reference_gate() {
    let mut compared = 0;
    for (m, a) in adaptive_models() {
        let mf = microflows(m);
        for salt in 0..3u64 {
            let input = common::input(m.input_len, m.macs ^ salt);
            let want = microflow::reference_gate(&mf, &input).unwrap();
            let (out, r) = run(m, a, &input, Policy::Gate);
            assert_eq!(r.levels, r.gate_levels, "{}", m.name);
            for (t, (&(l, conf), (&got, &c))) in want
                .iter()
                .zip(r.gate_levels.iter().zip(&r.confidence))
                .enumerate()
            {
                // f32 vs f64: a decision exactly at a boundary may flip; the confidences agree.
                assert!(
                    (conf - c as f64).abs() < 1e-3,
                    "{} tile {t}: confidence {c} vs reference {conf}",
                    m.name
                );
                if conf > 1e-3 && conf < 1.0 - 1e-9
                    || matches!(mf.gate, microflow::GateKind::Fixed(_))
                {
                    assert_eq!(got as usize, l, "{} tile {t} (confidence {conf})", m.name);
                    compared += 1;
                }
            }
            // The output is the reference run with the gate's levels.
            let levels: Vec<usize> = r.levels.iter().map(|&l| l as usize).collect();
            let reference = microflow::reference_run(&mf, &input, &levels).unwrap();
            let e = err(&out, &reference, is_softmax(m));
            assert!(e <= m.tolerance, "{}: {e:e}", m.name);
            assert_eq!(
                r.total_macs,
                r.macs.iter().sum::<u64>() + mf.tail_macs + a.gate_macs,
                "{}",
                m.name
            );
        }
    }
    assert!(compared > 50, "only {compared} gate decisions compared");
}

#[test]
fn the_budget_controller_respects_budgets_and_is_monotone() {
    for (m, a) in adaptive_models() {
        let input = common::input(m.input_len, m.macs ^ 77);
        let narrowest = (a.levels - 1) as u8;
        let min = run(m, a, &input, Policy::Fixed(narrowest)).1.total_macs + a.gate_macs;
        let (_, gate) = run(m, a, &input, Policy::Gate);
        let mut last = 0u64;
        for f in [0.0f32, 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0, 1.5] {
            let (_, r) = run(m, a, &input, Policy::Budget(Budget::Fraction(f)));
            let budget = Budget::Fraction(f).macs(m.macs);
            assert_eq!(r.budget_macs, Some(budget));
            assert_eq!(r.within_budget, budget >= min, "{} at {f}", m.name);
            if budget >= min {
                assert!(
                    r.total_macs <= budget,
                    "{} at {f}: {} > {budget}",
                    m.name,
                    r.total_macs
                );
            } else {
                assert!(r.levels.iter().all(|&l| l == narrowest), "{}", m.name);
            }
            assert!(
                r.total_macs >= last,
                "{}: budget {f} gave {} MACs, a smaller one {last}",
                m.name,
                r.total_macs
            );
            last = r.total_macs;
            // The controller only compresses, starting from the gate's choice.
            assert_eq!(r.gate_levels, gate.gate_levels, "{}", m.name);
            assert!(
                r.levels.iter().zip(&r.gate_levels).all(|(l, g)| l >= g),
                "{}",
                m.name
            );
            if budget >= gate.total_macs {
                assert_eq!(
                    r.levels, gate.levels,
                    "{}: an ample budget changes nothing",
                    m.name
                );
            }
        }
        // A time budget is a MAC budget through ns/MAC.
        let (_, r) = run(
            m,
            a,
            &input,
            Policy::Budget(Budget::Nanos {
                ns: m.macs,
                ns_per_mac: 2.0,
            }),
        );
        assert_eq!(r.budget_macs, Some(m.macs / 2));
    }
}

#[test]
fn adaptive_slices_check_lengths() {
    let (m, a) = adaptive_models().next().unwrap();
    let input = vec![0.0f32; m.input_len];
    let mut out = vec![0.0f32; m.output_len];
    let mut short = vec![0.0f32; a.arena_len - 1];
    let e = (a.infer)(&input, &mut short, &mut out, Policy::Gate).unwrap_err();
    assert_eq!(
        e,
        neulens::Error::ArenaLength {
            expected: a.arena_len,
            found: a.arena_len - 1
        }
    );
    let mut arena = vec![0.0f32; a.arena_len + 5];
    let e = (a.infer)(&input[1..], &mut arena, &mut out, Policy::Gate).unwrap_err();
    assert!(matches!(e, neulens::Error::InputLength { .. }));
}

#[test]
fn threads_give_the_same_result_as_one_thread() {
    for (m, a) in adaptive_models() {
        let input = common::input(m.input_len, m.macs ^ 3);
        let (want, wr) = run(m, a, &input, Policy::Gate);
        assert_eq!((a.arena_len_for)(1), a.arena_len);
        for threads in [2, 3] {
            // A persistent pool first: its threads run the gate and the tiles.
            let pool = neulens::parallel::Pool::new(threads);
            let mut arena = vec![f32::NAN; (a.arena_len_for)(pool.workers())];
            let mut out = vec![0.0f32; m.output_len];
            let r = (a.infer_pool)(&input, &mut arena, &mut out, Policy::Gate, &pool).unwrap();
            assert_eq!(r, wr, "{} on a pool of {threads}", m.name);
            assert!(
                common::same_bits(&out, &want),
                "{} on a pool of {threads}: outputs differ",
                m.name
            );
            let mut arena = vec![f32::NAN; (a.arena_len_for)(threads)];
            let mut out = vec![0.0f32; m.output_len];
            let r = (a.infer_threads)(&input, &mut arena, &mut out, Policy::Gate, threads).unwrap();
            assert_eq!(r, wr, "{} with {threads} threads", m.name);
            assert!(
                common::same_bits(&out, &want),
                "{} with {threads} threads: outputs differ",
                m.name
            );
            let short = (a.arena_len_for)(threads) - 1;
            let mut arena = vec![0.0f32; short];
            let e = (a.infer_threads)(&input, &mut arena, &mut out, Policy::Gate, threads);
            assert!(
                matches!(e, Err(neulens::Error::ArenaLength { .. })),
                "{}",
                m.name
            );
        }
    }
}
