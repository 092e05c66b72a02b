// Helpers shared by the integration tests (included with `mod common;`): deterministic inputs and
// compile-to-a-temp-dir utilities. Not every test file uses every helper.
#![allow(dead_code)]

/// A deterministic input of `n` values in [-2, 2]: a smooth wave, a hash-like scatter, exact
/// zeros and the two ends of the range.
pub fn input(n: usize, salt: u64) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ salt.wrapping_mul(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match i % 11 {
                0 => 0.0,
                5 => 2.0,
                7 => -2.0,
                3 | 9 => (i as f32 * 0.37).sin() * 2.0,
                _ => ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0,
            }
        })
        .collect()
}

/// Whether two outputs are equal bit for bit (same length, every float the same bits; NaNs
/// compare by their bits too).
pub fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// A fresh, empty directory under the system temp dir (unique per process, tag and call).
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("neulens-tests-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// Removes a directory made by `temp_dir` when dropped (also when a test fails).
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
