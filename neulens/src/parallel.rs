//! Threads for one dense inference: a team of workers that runs the generated kernel sequence
//! together, splitting each convolution and pool (by output channels,
//! [`crate::kernels::conv::conv2d_part`], [`crate::kernels::part_range`]; Winograd by output
//! tiles on large maps, pattern-sparse convs by rows or tiles) and meeting at a [`Barrier`]
//! after every step. The generated `infer_threads` runs a [`team`] spawned for the call,
//! `infer_pool` the persistent threads of a [`Pool`]; without the `std` feature both are the
//! calling thread alone.

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

/// A persistent team for [`Pool::run`]: `workers - 1` threads started once and reused by
/// every call, so a model of well under a millisecond can still use several cores (a
/// [`team`] spawns its threads on every call, about 20–50 µs). Between calls the threads spin
/// for about 100 µs (back-to-back inferences find them awake), then sleep on a condition
/// variable. Dropping the pool stops and joins them. Without the `std` feature a pool is the
/// calling thread alone.
pub struct Pool {
    workers: usize,
    #[cfg(feature = "std")]
    shared: std::sync::Arc<pool::Shared>,
    #[cfg(feature = "std")]
    handles: std::vec::Vec<std::thread::JoinHandle<()>>,
    #[cfg(feature = "std")]
    run_lock: std::sync::Mutex<()>,
}

impl Pool {
    /// A pool of `threads` workers ([`workers`]: at least 1, and 1 without the `std`
    /// feature); worker 0 is whichever thread calls [`Pool::run`].
    pub fn new(threads: usize) -> Pool {
        let workers = self::workers(threads);
        #[cfg(feature = "std")]
        {
            let shared = std::sync::Arc::new(pool::Shared::new(workers));
            let handles = (1..workers)
                .map(|k| {
                    let sh = shared.clone();
                    std::thread::Builder::new()
                        .name(std::format!("neulens-{k}"))
                        .spawn(move || pool::worker(&sh, k))
                        .expect("neulens: spawning a pool thread")
                })
                .collect();
            Pool {
                workers,
                shared,
                handles,
                run_lock: std::sync::Mutex::new(()),
            }
        }
        #[cfg(not(feature = "std"))]
        Pool { workers }
    }

    /// Workers of this pool (the calling thread included).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `f(worker, workers, barrier)` on every worker of the pool at once, like [`team`]
    /// (worker 0 on the calling thread), and returns when all have finished. Calls from
    /// several threads take turns. Every worker must call `barrier.wait()` the same number of
    /// times. A panic in a pool thread is re-raised here.
    pub fn run<F: Fn(usize, usize, &Barrier) + Sync>(&self, f: F) {
        #[cfg(feature = "std")]
        if self.workers > 1 {
            let _turn = self
                .run_lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // SAFETY: `run` publishes `f` to the pool threads and does not return (or unwind)
            // before every thread has finished calling it (see `pool::Shared::run`).
            unsafe { self.shared.run(&f) };
            return;
        }
        f(0, 1, &Barrier::new(1));
    }
}

#[cfg(feature = "std")]
impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(feature = "std")]
mod pool {
    //! The shared state of a [`Pool`](super::Pool) and its threads' loop.
    use super::Barrier;
    use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, PoisonError};

    /// The job every worker runs, with its lifetime erased (see [`Shared::run`]).
    type Job = *const (dyn Fn(usize, usize, &Barrier) + Sync);

    /// How long an idle worker spins before it sleeps.
    const IDLE_SPIN: std::time::Duration = std::time::Duration::from_micros(100);

    pub(super) struct Shared {
        workers: usize,
        barrier: Barrier,
        /// Bumped once per job (and once to stop); a worker runs each new value's job.
        generation: AtomicUsize,
        /// Pool threads still running the current job.
        pending: AtomicUsize,
        stop: AtomicBool,
        panicked: AtomicBool,
        /// The current job, written by `run` before it bumps `generation`.
        job: Mutex<Option<JobPtr>>,
        sleep: Mutex<()>,
        wake: Condvar,
    }

    /// A [`Job`] that may cross threads: the closure is `Sync`, and `Shared::run` keeps it
    /// alive while any thread can call it.
    #[derive(Clone, Copy)]
    struct JobPtr(Job);
    // SAFETY: the pointee is `Sync` (shared calls from several threads are fine) and outlives
    // every use (see `Shared::run`).
    unsafe impl Send for JobPtr {}

    impl Shared {
        pub(super) fn new(workers: usize) -> Shared {
            Shared {
                workers,
                barrier: Barrier::new(workers),
                generation: AtomicUsize::new(0),
                pending: AtomicUsize::new(0),
                stop: AtomicBool::new(false),
                panicked: AtomicBool::new(false),
                job: Mutex::new(None),
                sleep: Mutex::new(()),
                wake: Condvar::new(),
            }
        }

        /// Runs `f` on every worker (worker 0 here) and waits for the pool threads.
        ///
        /// # Safety
        /// One `run` at a time (the pool's `run_lock`). `f` is called by the pool threads
        /// only between the `generation` bump and their `pending` decrement, and this function
        /// does not return or unwind before `pending` is 0, so the erased lifetime is never
        /// outlived.
        pub(super) unsafe fn run(&self, f: &(dyn Fn(usize, usize, &Barrier) + Sync)) {
            // SAFETY: erasing the lifetime only; see the contract above.
            let job: Job = unsafe {
                core::mem::transmute::<*const (dyn Fn(usize, usize, &Barrier) + Sync + '_), Job>(
                    f as *const _,
                )
            };
            *self.job.lock().unwrap_or_else(PoisonError::into_inner) = Some(JobPtr(job));
            self.pending.store(self.workers - 1, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            self.notify();
            /// Waits for the pool threads even if worker 0's call unwinds.
            struct Finish<'a>(&'a Shared);
            impl Drop for Finish<'_> {
                fn drop(&mut self) {
                    let mut spins = 0u32;
                    while self.0.pending.load(Ordering::Acquire) != 0 {
                        if spins < 4096 {
                            core::hint::spin_loop();
                            spins += 1;
                        } else {
                            std::thread::yield_now();
                        }
                    }
                }
            }
            let finish = Finish(self);
            f(0, self.workers, &self.barrier);
            drop(finish);
            if self.panicked.swap(false, Ordering::Relaxed) {
                panic!("neulens: a pool thread panicked");
            }
        }

        pub(super) fn stop(&self) {
            self.stop.store(true, Ordering::Release);
            self.generation.fetch_add(1, Ordering::Release);
            self.notify();
        }

        fn notify(&self) {
            let _g = self.sleep.lock().unwrap_or_else(PoisonError::into_inner);
            self.wake.notify_all();
        }
    }

    /// A pool thread: waits for each new generation, runs its job as worker `k`.
    pub(super) fn worker(sh: &Shared, k: usize) {
        let mut seen = 0usize;
        loop {
            let idle = std::time::Instant::now();
            while sh.generation.load(Ordering::Acquire) == seen {
                if idle.elapsed() < IDLE_SPIN {
                    for _ in 0..64 {
                        core::hint::spin_loop();
                    }
                    continue;
                }
                let g = sh.sleep.lock().unwrap_or_else(PoisonError::into_inner);
                // Checked under the lock `notify` takes, so a bump cannot be missed.
                if sh.generation.load(Ordering::Acquire) == seen {
                    drop(sh.wake.wait(g).unwrap_or_else(PoisonError::into_inner));
                }
            }
            seen = sh.generation.load(Ordering::Acquire);
            if sh.stop.load(Ordering::Acquire) {
                return;
            }
            let job = *sh.job.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(JobPtr(f)) = job {
                // SAFETY: `run` keeps the job alive until `pending` reaches 0 (below).
                let f = unsafe { &*f };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    f(k, sh.workers, &sh.barrier)
                }));
                if r.is_err() {
                    sh.panicked.store(true, Ordering::Relaxed);
                }
            }
            sh.pending.fetch_sub(1, Ordering::Release);
        }
    }
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

    #[test]
    fn pool_runs_every_job_on_every_worker_and_reuses_its_threads() {
        for workers in 1..=3 {
            let pool = Pool::new(workers);
            assert_eq!(pool.workers(), workers);
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            for job in 0..300u64 {
                let slots: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
                pool.run(|k, n, b| {
                    assert_eq!(n, workers);
                    threads.lock().unwrap().insert(std::thread::current().id());
                    for slot in &slots {
                        slot.fetch_add(job << (8 * k), Ordering::Relaxed);
                        b.wait();
                        let all: u64 = (0..n).map(|i| job << (8 * i)).sum();
                        assert_eq!(slot.load(Ordering::Relaxed), all);
                    }
                });
                // Some jobs wait long enough for the pool threads to fall asleep.
                if job % 100 == 99 {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
            // The calling thread plus the same `workers - 1` pool threads every time.
            assert_eq!(threads.lock().unwrap().len(), workers);
        }
    }

    #[test]
    fn a_panic_in_a_pool_thread_reaches_the_caller() {
        let pool = Pool::new(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(|k, _, _| assert_ne!(k, 1, "worker 1 fails"));
        }));
        assert!(r.is_err());
        // The pool still works afterwards.
        let hits = AtomicU64::new(0);
        pool.run(|_, _, _| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 2);
    }
}
