// The run-time contract of generated modules: slice-length errors instead of panics, longer
// arenas accepted, non-finite inputs survive, and the array-typed `infer` of one model.

mod common;

use neulens::parallel::Pool;
use neulens::Error;
use neulens_tests::{resnet8, MODELS};

#[test]
fn wrong_lengths_are_errors_not_panics() {
    let mut failures = Vec::new();
    for m in MODELS {
        let input = common::input(m.input_len, 1);
        let mut arena = vec![0.0f32; m.arena_len];
        let mut out = vec![0.0f32; m.output_len];
        let mut check = |what: &str, got: Result<(), Error>, want: Result<(), Error>| {
            if got != want {
                failures.push(format!(
                    "{}: {what}: got {got:?}, expected {want:?}",
                    m.name
                ));
            }
        };

        let (il, ol, al) = (m.input_len, m.output_len, m.arena_len);
        let short_in = &input[..il - 1];
        let long_in: Vec<f32> = input.iter().copied().chain([0.5]).collect();
        check(
            "input one short",
            (m.infer)(short_in, &mut arena, &mut out),
            Err(Error::InputLength {
                expected: il,
                found: il - 1,
            }),
        );
        check(
            "input one long",
            (m.infer)(&long_in, &mut arena, &mut out),
            Err(Error::InputLength {
                expected: il,
                found: il + 1,
            }),
        );
        check(
            "empty input",
            (m.infer)(&[], &mut arena, &mut out),
            Err(Error::InputLength {
                expected: il,
                found: 0,
            }),
        );
        check(
            "output one short",
            (m.infer)(&input, &mut arena, &mut out[..ol - 1]),
            Err(Error::OutputLength {
                expected: ol,
                found: ol - 1,
            }),
        );
        let mut long_out = vec![0.0f32; ol + 3];
        check(
            "output three long",
            (m.infer)(&input, &mut arena, &mut long_out),
            Err(Error::OutputLength {
                expected: ol,
                found: ol + 3,
            }),
        );
        if al > 0 {
            check(
                "arena one short",
                (m.infer)(&input, &mut arena[..al - 1], &mut out),
                Err(Error::ArenaLength {
                    expected: al,
                    found: al - 1,
                }),
            );
            check(
                "empty arena",
                (m.infer)(&input, &mut [], &mut out),
                Err(Error::ArenaLength {
                    expected: al,
                    found: 0,
                }),
            );
        }

        // A longer arena is fine and gives the same result as an exact one.
        check(
            "exact arena",
            (m.infer)(&input, &mut arena, &mut out),
            Ok(()),
        );
        let mut long_arena = vec![f32::NAN; al + 17];
        let mut out2 = vec![0.0f32; ol];
        check(
            "arena 17 longer",
            (m.infer)(&input, &mut long_arena, &mut out2),
            Ok(()),
        );
        if !common::same_bits(&out, &out2) {
            failures.push(format!(
                "{}: a longer (NaN-filled) arena changed the output",
                m.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A named input pattern: the value at each index.
type Pattern = (&'static str, fn(usize) -> f32);

#[test]
fn non_finite_inputs_do_not_panic() {
    let patterns: [Pattern; 4] = [
        ("all NaN", |_| f32::NAN),
        ("all +Inf", |_| f32::INFINITY),
        ("all -Inf", |_| f32::NEG_INFINITY),
        ("mixed", |i| {
            [
                f32::NAN,
                f32::INFINITY,
                1.5,
                f32::NEG_INFINITY,
                -0.0,
                f32::MAX,
                f32::MIN,
            ][i % 7]
        }),
    ];
    let mut failures = Vec::new();
    for m in MODELS {
        // The big shipped models get one mixed run; the small ones every pattern.
        let pats = if m.macs > 100_000_000 {
            &patterns[3..]
        } else {
            &patterns[..]
        };
        for (what, f) in pats {
            let input: Vec<f32> = (0..m.input_len).map(f).collect();
            let mut arena = vec![0.0f32; m.arena_len];
            let mut out = vec![0.0f32; m.output_len];
            let r = std::panic::catch_unwind(move || (m.infer)(&input, &mut arena, &mut out));
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{}: {what}: {e}", m.name)),
                Err(_) => failures.push(format!("{}: {what}: panicked", m.name)),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn array_infer_runs_with_typed_arguments() {
    let data = common::input(resnet8::INPUT_LEN, 8);
    let input: [f32; resnet8::INPUT_LEN] = data.as_slice().try_into().expect("length");
    // The arena can be big: keep it off the stack.
    let mut arena: Box<resnet8::Arena> = vec![0.0f32; resnet8::ARENA_LEN]
        .into_boxed_slice()
        .try_into()
        .expect("length");
    let mut output = [0.0f32; resnet8::OUTPUT_LEN];
    resnet8::infer(&input, &mut arena, &mut output);

    // The same through the slice entry point and through the `neulens::Model` trait.
    let mut out_slices = vec![0.0f32; resnet8::OUTPUT_LEN];
    resnet8::infer_slices(&input, &mut arena[..], &mut out_slices).expect("lengths are right");
    assert_eq!(output.as_slice(), out_slices.as_slice());
    let mut out_trait = vec![0.0f32; resnet8::OUTPUT_LEN];
    run_generic::<resnet8::Model>(&input, &mut out_trait);
    assert_eq!(output.as_slice(), out_trait.as_slice());

    // resnet8 ends in softmax over 10 classes.
    assert_eq!(resnet8::OUTPUT_SHAPE, [10, 1, 1]);
    let sum: f32 = output.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "softmax output sums to {sum}");
    assert!(output.iter().all(|p| (0.0..=1.0).contains(p)), "{output:?}");
}

fn run_generic<M: neulens::Model>(input: &[f32], output: &mut [f32]) {
    assert_eq!(M::INPUT_LEN, M::INPUT_SHAPE.iter().product::<usize>());
    assert_eq!(M::OUTPUT_LEN, M::OUTPUT_SHAPE.iter().product::<usize>());
    assert!(!M::LAYERS.is_empty());
    let mut arena = vec![0.0f32; M::ARENA_LEN];
    M::infer_slices(input, &mut arena, output).expect("lengths are right");
}

#[test]
fn entries_match_their_modules() {
    for m in MODELS {
        assert!(
            m.input_len > 0 && m.output_len > 0,
            "{}: empty input or output",
            m.name
        );
        assert!(
            std::path::Path::new(m.spec).is_file(),
            "{}: spec {} is missing",
            m.name,
            m.spec
        );
    }
    let e = MODELS
        .iter()
        .find(|m| m.name == "resnet8")
        .expect("resnet8 is compiled");
    assert_eq!(
        (e.input_len, e.output_len, e.arena_len, e.macs),
        (
            resnet8::INPUT_LEN,
            resnet8::OUTPUT_LEN,
            resnet8::ARENA_LEN,
            resnet8::MACS
        )
    );
    assert_eq!(resnet8::INPUT_SHAPE, [3, 32, 32]);
}

/// One parallel entry point of a model, given the arena and the output.
type ArenaRun<'a> = dyn FnMut(&mut [f32], &mut [f32]) -> Result<(), Error> + 'a;

#[test]
fn threads_give_the_single_thread_result_bit_for_bit() {
    // Every model (random specs included: direct, strided, grouped, 1x1, Winograd, pattern)
    // on 1–3 workers (spawned per call, and a persistent pool) against `infer_slices`; the
    // arena holds NaN so a worker that reads scratch it did not write, or writes outside its
    // channels, shows up.
    let mut failures = Vec::new();
    let pools: Vec<Pool> = (1..=3).map(Pool::new).collect();
    for m in MODELS {
        let input = common::input(m.input_len, 7);
        let mut want = vec![0.0f32; m.output_len];
        let mut arena = vec![f32::NAN; m.arena_len];
        (m.infer)(&input, &mut arena, &mut want).expect("lengths are right");
        // One parallel entry point with `need` arena floats: the single-thread result bit for
        // bit, and exactly `ArenaLength` on an arena one float short.
        let mut check = |on: String, need: usize, run: &mut ArenaRun| {
            assert!(
                need >= m.arena_len,
                "{} on {on}: {need} < ARENA_LEN",
                m.name
            );
            let mut arena = vec![f32::NAN; need];
            let mut got = vec![f32::NAN; m.output_len];
            run(&mut arena, &mut got).expect("lengths are right");
            if !common::same_bits(&got, &want) {
                failures.push(format!("{} on {on} differs from infer", m.name));
            }
            if need == 0 {
                return;
            }
            let short = run(&mut arena[..need - 1], &mut got);
            let expected = Err(Error::ArenaLength {
                expected: need,
                found: need - 1,
            });
            if short != expected {
                failures.push(format!("{}: short arena on {on}: {short:?}", m.name));
            }
        };
        for pool in &pools {
            // A persistent pool (its threads reused from model to model).
            check(
                format!("a pool of {}", pool.workers()),
                (m.threads_arena_len)(pool.workers()),
                &mut |arena, out| (m.infer_pool)(&input, arena, out, pool),
            );
        }
        for threads in 1..=3 {
            check(
                format!("{threads} threads"),
                (m.threads_arena_len)(threads),
                &mut |arena, out| (m.infer_threads)(&input, arena, out, threads),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
