//! Threads for one dense inference: a team of workers that runs the generated kernel sequence
//! together, splitting each convolution and pool (by output channels,
//! [`crate::kernels::conv::conv2d_part`], [`crate::kernels::part_range`]; Winograd by output
//! tiles on large maps, pattern-sparse convs by rows or tiles) and meeting at a [`Barrier`]
//! after every step. The
//! generated `infer_threads` is the only user; without the `std` feature a team is the calling
//! thread alone.

use core::sync::atomic::{AtomicUsize, Ordering};

/// A reusable barrier for the workers of one [`team`]: `wait` returns once all `n` have
/// called it, and everything a worker wrote before `wait` is visible to every worker after it
/// (release on arrival, acquire on leaving). It spins briefly, then yields the core, so a
/// worker waiting for a descheduled one does not burn its time slice.
pub struct Barrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl Barrier {
    /// A barrier for `n` workers (`n >= 1`).
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n: if n == 0 { 1 } else { n },
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Waits until all workers have arrived.
    pub fn wait(&self) {
        if self.n == 1 {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if spins < 4096 {
                core::hint::spin_loop();
                spins += 1;
            } else {
                #[cfg(feature = "std")]
                std::thread::yield_now();
                #[cfg(not(feature = "std"))]
                core::hint::spin_loop();
            }
        }
    }
}

/// The number of workers a [`team`] asked for `threads` runs: `threads` (at least 1) with the
/// `std` feature, 1 without it.
pub const fn workers(threads: usize) -> usize {
    if cfg!(feature = "std") && threads > 1 {
        threads
    } else {
        1
    }
}

/// Runs `f(worker, workers, barrier)` on `workers` workers at once (worker 0 is the calling
/// thread, the others scoped threads spawned for this call; `workers` is clamped to at least 1,
/// and to 1 without the `std` feature). Every worker must call `barrier.wait()` the same number
/// of times.
pub fn team<F: Fn(usize, usize, &Barrier) + Sync>(workers: usize, f: F) {
    let workers = self::workers(workers);
    let barrier = Barrier::new(workers);
    #[cfg(feature = "std")]
    if workers > 1 {
        std::thread::scope(|s| {
            for k in 1..workers {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || f(k, workers, barrier));
            }
            f(0, workers, &barrier);
        });
        return;
    }
    f(0, 1, &barrier);
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use std::vec::Vec;

    #[test]
    fn barrier_orders_every_step_of_every_worker() {
        // Each step, every worker adds its bit to the step's slot, then after the barrier
        // checks that all bits of the step are there (a barrier that lets a worker through
        // early fails this).
        for workers in 1..=4 {
            let slots: Vec<AtomicU64> = (0..200).map(|_| AtomicU64::new(0)).collect();
            team(workers, |k, n, b| {
                assert_eq!(n, workers);
                for slot in &slots {
                    slot.fetch_or(1 << k, Ordering::Relaxed);
                    b.wait();
                    assert_eq!(slot.load(Ordering::Relaxed), (1 << n) - 1);
                }
            });
        }
    }
}
