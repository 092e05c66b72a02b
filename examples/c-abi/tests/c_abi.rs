//! The C caller (compiled with cc against the generated header) gets bit-identical results to the
//! Rust `infer` on the same input, and the header agrees with the Rust constants.

use neulens_c_abi_example::{demo, input, null_status_from_c, run_from_c, sizes_from_c};

#[test]
fn c_caller_matches_rust_infer() {
    let (status, from_c) = run_from_c();
    assert_eq!(status, 0);
    let x = input();
    let mut arena = vec![0f32; demo::ARENA_LEN];
    let mut from_rust = vec![0f32; demo::OUTPUT_LEN];
    demo::infer_slices(&x, &mut arena, &mut from_rust).unwrap();
    assert_eq!(from_c.len(), demo::OUTPUT_LEN);
    assert!(from_rust.iter().any(|v| *v != 0.0));
    for (i, (c, r)) in from_c.iter().zip(&from_rust).enumerate() {
        assert_eq!(c.to_bits(), r.to_bits(), "output {i}: C {c} vs Rust {r}");
    }
}

#[test]
fn null_pointer_is_an_error_not_a_crash() {
    assert_eq!(null_status_from_c(), -1);
}

#[test]
fn header_matches_rust_constants() {
    assert_eq!(
        sizes_from_c(),
        [
            demo::INPUT_LEN as u64,
            demo::OUTPUT_LEN as u64,
            demo::ARENA_LEN as u64,
            demo::MACS
        ]
    );
}
