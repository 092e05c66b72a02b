//! The demo model with a C ABI: `neulens_demo_infer` is exported from this crate (and its static
//! library); `c/model_user.c` calls it through the generated `demo.h`. Safe wrappers for tests.

/// The generated model (its `neulens_demo_infer` is `#[no_mangle] extern "C"`).
pub mod demo {
    neulens::include_model!("demo");
}

unsafe extern "C" {
    fn c_demo_run(out: *mut f32) -> i32;
    fn c_demo_null_check() -> i32;
    fn c_demo_sizes(which: i32) -> core::ffi::c_ulong;
}

/// The deterministic input the C side uses, computed the same way.
pub fn input() -> Vec<f32> {
    (0..demo::INPUT_LEN)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect()
}

/// Runs the model from C; returns the C function's status and the output.
pub fn run_from_c() -> (i32, Vec<f32>) {
    let mut out = vec![0f32; demo::OUTPUT_LEN];
    // SAFETY: `out` holds OUTPUT_LEN floats, as c_demo_run's contract requires.
    let status = unsafe { c_demo_run(out.as_mut_ptr()) };
    (status, out)
}

/// What the entry point answers to a NULL input, called from C.
pub fn null_status_from_c() -> i32 {
    // SAFETY: takes no arguments; uses only its own static buffers.
    unsafe { c_demo_null_check() }
}

/// The header's (input, output, arena) lengths and MACs as C sees them.
pub fn sizes_from_c() -> [u64; 4] {
    // SAFETY: pure function of its argument.
    [0, 1, 2, 3].map(|w| unsafe { c_demo_sizes(w) } as u64)
}
