//! Run-time side of NeuLens micro-flows: the policies a caller passes to a generated
//! `infer_adaptive`, the per-tile report it returns, and the budget controller that picks each
//! tile's width level. Everything is `no_std` and allocation-free; the per-(tile, level) MAC
//! counts are constants of the generated module, so the controller's MAC predictor is exact.

/// How `infer_adaptive` picks the width level of each tile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Policy {
    /// The gate's choice for every tile, unconstrained.
    Gate,
    /// Every tile at this level (0 = widest). Levels past the narrowest are clamped to it.
    Fixed(u8),
    /// The gate's choice, then the budget controller raises the compression of low-confidence
    /// tiles until the whole inference (gate + micro-flows + tail) fits the budget.
    Budget(Budget),
}

/// A budget for one adaptive inference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// At most this many multiply-accumulates.
    Macs(u64),
    /// At most this fraction of the dense model's MACs (`MACS` of the module).
    Fraction(f32),
    /// At most `ns` nanoseconds, predicted as MACs × `ns_per_mac` (a per-target factor the
    /// caller measures, e.g. dense latency / `MACS`).
    Nanos {
        /// The time budget.
        ns: u64,
        /// Nanoseconds per MAC on this target.
        ns_per_mac: f32,
    },
}

impl Budget {
    /// The budget in MACs for a model of `dense_macs` MACs.
    pub fn macs(self, dense_macs: u64) -> u64 {
        match self {
            Budget::Macs(m) => m,
            Budget::Fraction(f) => {
                if f.is_nan() || f <= 0.0 {
                    0
                } else {
                    (dense_macs as f64 * f as f64) as u64
                }
            }
            Budget::Nanos { ns, ns_per_mac } => {
                if ns_per_mac.is_nan() || ns_per_mac <= 0.0 {
                    u64::MAX
                } else {
                    (ns as f64 / ns_per_mac as f64) as u64
                }
            }
        }
    }
}

/// What one adaptive inference did, per tile (row-major over the grid) and in total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TileReport<const T: usize> {
    /// The level each tile ran at (0 = widest).
    pub levels: [u8; T],
    /// The level the gate chose (equal to `levels` unless the policy overrode it).
    pub gate_levels: [u8; T],
    /// The gate's confidence in its choice, in [0, 1] (1 for a fixed gate).
    pub confidence: [f32; T],
    /// MACs of each tile's micro-flow at its level.
    pub macs: [u64; T],
    /// Total MACs: gate on every tile, the micro-flows, and the tail.
    pub total_macs: u64,
    /// The budget in MACs, for `Policy::Budget`.
    pub budget_macs: Option<u64>,
    /// False only when even every tile at the narrowest level exceeds the budget.
    pub within_budget: bool,
}

/// Parameters of the budget controller (from the spec's `microflows` section).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Controller {
    /// θ_f: tiles whose gate confidence is below it are compressed first.
    pub theta: f32,
    /// Δw: how many tiles one round-robin pass steps.
    pub window: usize,
}

/// The budget controller of NeuLens: given the gate's `levels` and `confidence`, raises the
/// compression (the level index) of tiles one step at a time until
/// `fixed_macs + Σ tile_macs[t][levels[t]] <= budget`.
///
/// Order: tiles with confidence below `theta` first, lowest confidence first, then the others
/// (also lowest first); within that order, windows of `window` tiles are stepped round-robin
/// (one level per tile per pass) until every tile of the window is at the narrowest level, then
/// the next window. The sequence of steps does not depend on the budget, only where it stops,
/// so a larger budget never yields fewer MACs; and it ends with every tile at the narrowest
/// level, so it never exceeds the budget while a feasible assignment exists. Returns whether the
/// budget holds.
pub fn control<const T: usize, const R: usize>(
    levels: &mut [u8; T],
    confidence: &[f32; T],
    tile_macs: &[[u64; R]; T],
    fixed_macs: u64,
    budget: u64,
    c: Controller,
) -> bool {
    let total = |lv: &[u8; T]| -> u64 {
        let mut s = fixed_macs;
        for t in 0..T {
            s = s.saturating_add(tile_macs[t][(lv[t] as usize).min(R - 1)]);
        }
        s
    };
    if R == 0 || T == 0 {
        return fixed_macs <= budget;
    }
    for l in levels.iter_mut() {
        *l = (*l).min((R - 1) as u8);
    }
    let mut now = total(levels);
    if now <= budget {
        return true;
    }
    // Tiles in stepping order: below θ first, then by confidence (NaN counts as 0), stable.
    let mut order = [0usize; T];
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    let key = |t: usize| {
        let c0 = confidence[t];
        let c0 = if c0.is_nan() { 0.0 } else { c0 };
        (c0 >= c.theta, c0)
    };
    // Insertion sort (T is small, no allocation, stable).
    for i in 1..T {
        let mut j = i;
        while j > 0 {
            let (a, b) = (key(order[j - 1]), key(order[j]));
            let greater = a.0 & !b.0 || (a.0 == b.0 && a.1 > b.1);
            if !greater {
                break;
            }
            order.swap(j - 1, j);
            j -= 1;
        }
    }
    let window = c.window.max(1);
    let mut start = 0;
    while start < T {
        let end = (start + window).min(T);
        loop {
            let mut stepped = false;
            for &t in &order[start..end] {
                if (levels[t] as usize) < R - 1 {
                    let before = tile_macs[t][levels[t] as usize];
                    levels[t] += 1;
                    let after = tile_macs[t][levels[t] as usize];
                    now = now - before + after;
                    stepped = true;
                    if now <= budget {
                        return true;
                    }
                }
            }
            if !stepped {
                break;
            }
        }
        start = end;
    }
    now <= budget
}

/// A raw pointer that generated code hands to worker threads; it guarantees that workers use
/// disjoint parts of what it points to.
#[derive(Clone, Copy, Debug)]
pub struct SendPtr<T>(pub *mut T);

impl<T> SendPtr<T> {
    /// The pointer (a method, so that closures capture the whole `SendPtr`, not its field).
    #[inline(always)]
    pub fn get(self) -> *mut T {
        self.0
    }
}
// SAFETY: a plain address; generated code gives each worker its own arena region and tiles
// write disjoint windows of the stitched map, so sharing the address across threads is sound.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above; `SendPtr` itself is never written through a shared reference.
unsafe impl<T> Sync for SendPtr<T> {}

/// Runs `f(item, worker)` for every item in `0..n` on up to `workers` workers (worker indices
/// `0..workers`, each running one item at a time). With the `std` feature, worker 0 is the
/// calling thread and the others are scoped threads taking items from a shared counter; without
/// `std` everything runs on worker 0. Micro-flow tiles are independent, so this is how
/// `infer_adaptive_threads` spreads one image over several cores.
pub fn par_for<F: Fn(usize, usize) + Sync>(n: usize, workers: usize, f: F) {
    let workers = workers.clamp(1, n.max(1));
    #[cfg(feature = "std")]
    if workers > 1 {
        use core::sync::atomic::{AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let work = |worker: usize| loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            f(i, worker);
        };
        std::thread::scope(|s| {
            for worker in 1..workers {
                let work = &work;
                s.spawn(move || work(worker));
            }
            work(0);
        });
        return;
    }
    let _ = workers;
    for i in 0..n {
        f(i, 0);
    }
}

/// Where `__adaptive` (generated) runs its tiles: on `n` workers spawned for the call
/// ([`par_for`]) or on the threads of a [`Pool`](crate::parallel::Pool) ([`par_for_pool`]).
#[derive(Clone, Copy)]
pub enum Exec<'a> {
    /// `infer_adaptive_threads`: this many workers (1: the calling thread alone).
    Threads(usize),
    /// `infer_adaptive_pool`: the pool's workers.
    Pool(&'a crate::parallel::Pool),
}

impl Exec<'_> {
    /// Workers the tiles may run on (worker indices `0..workers()`).
    pub fn workers(self) -> usize {
        match self {
            Exec::Threads(n) => n.max(1),
            Exec::Pool(p) => p.workers(),
        }
    }
    /// `f(item, worker)` for every item in `0..n`, as [`par_for`] or [`par_for_pool`].
    pub fn par_for<F: Fn(usize, usize) + Sync>(self, n: usize, f: F) {
        match self {
            Exec::Threads(workers) => par_for(n, workers, f),
            Exec::Pool(pool) => par_for_pool(pool, n, f),
        }
    }
}

/// [`par_for`] on the threads of `pool` (worker indices `0..pool.workers()`; worker 0 is the
/// calling thread): every pool worker takes items from a shared counter until none are left,
/// and everything they wrote is visible to the caller when this returns.
pub fn par_for_pool<F: Fn(usize, usize) + Sync>(pool: &crate::parallel::Pool, n: usize, f: F) {
    if pool.workers() <= 1 || n <= 1 {
        for i in 0..n {
            f(i, 0);
        }
        return;
    }
    use core::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    pool.run(|worker, _, _| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        f(i, worker);
    });
}

/// The gate's decision from its logits: the argmax level (first on ties) and its softmax
/// probability as the confidence.
pub fn gate_decision(logits: &[f32]) -> (u8, f32) {
    let mut best = 0usize;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    let Some(&top) = logits.get(best) else {
        return (0, 1.0);
    };
    let mut sum = 0.0f32;
    for &v in logits {
        sum += crate::kernels::eltwise::expf(v - top);
    }
    let conf = if sum.is_finite() && sum > 0.0 {
        1.0 / sum
    } else {
        0.0
    };
    (best as u8, conf)
}

/// The energy gate: the tile's level from the standard deviation `e` of its input and the
/// thresholds (descending; `e >= thresholds[0]` is the widest level, below all of them the
/// narrowest). The confidence is the distance to the nearest threshold relative to it, at most 1.
pub fn energy_decision(e: f32, thresholds: &[f32]) -> (u8, f32) {
    let level = thresholds.iter().take_while(|&&t| e < t).count();
    let mut conf = 1.0f32;
    for &t in thresholds {
        let d = if t.abs() > 0.0 {
            (e - t).abs() / t.abs()
        } else {
            1.0
        };
        if d < conf {
            conf = d;
        }
    }
    (level as u8, if conf.is_nan() { 0.0 } else { conf })
}

/// Standard deviation of `x` (f64 accumulation), the energy gate's statistic.
pub fn tile_energy(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    let n = x.len() as f64;
    let (mut s, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        s += v as f64;
        s2 += v as f64 * v as f64;
    }
    let mean = s / n;
    let var = (s2 / n - mean * mean).max(0.0);
    libm_sqrt(var) as f32
}

/// `sqrt` without `std` (Newton iterations from a bit-level guess; exact to f64 rounding for
/// the statistic's purposes).
fn libm_sqrt(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return if v.is_finite() { 0.0 } else { v };
    }
    let mut r = f64::from_bits((v.to_bits() >> 1) + (1023u64 << 51));
    for _ in 0..6 {
        r = 0.5 * (r + v / r);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Controller = Controller {
        theta: 0.5,
        window: 2,
    };

    fn macs4() -> [[u64; 3]; 4] {
        [[100, 50, 20], [100, 50, 20], [80, 40, 10], [100, 60, 30]]
    }

    fn total(l: &[u8; 4], m: &[[u64; 3]; 4], fixed: u64) -> u64 {
        fixed + (0..4).map(|t| m[t][l[t] as usize]).sum::<u64>()
    }

    #[test]
    fn controller_respects_feasible_budgets_and_is_monotone() {
        let m = macs4();
        let conf = [0.9, 0.2, 0.4, 0.7];
        let min = total(&[2; 4], &m, 10);
        let mut last = 0u64;
        for budget in (0..=400).step_by(5) {
            let mut l = [0u8; 4];
            let ok = control(&mut l, &conf, &m, 10, budget, C);
            let t = total(&l, &m, 10);
            if budget >= min {
                assert!(ok, "budget {budget} is feasible");
                assert!(t <= budget, "budget {budget}: {t}");
            } else {
                assert!(!ok);
                assert_eq!(l, [2; 4], "infeasible ends at the narrowest level");
            }
            assert!(t >= last || budget < min, "monotone: {t} after {last}");
            if budget >= min {
                last = t;
            }
        }
        // Unconstrained: untouched.
        let mut l = [0u8, 1, 0, 2];
        assert!(control(&mut l, &conf, &m, 10, u64::MAX, C));
        assert_eq!(l, [0, 1, 0, 2]);
    }

    #[test]
    fn controller_steps_low_confidence_tiles_first() {
        let m = macs4();
        let conf = [0.9, 0.2, 0.4, 0.7];
        // Needs 50 fewer MACs: tile 1 (0.2) then tile 2 (0.4) take one step each.
        let mut l = [0u8; 4];
        assert!(control(&mut l, &conf, &m, 0, 380 - 90, C));
        assert_eq!(l, [0, 1, 1, 0]);
        // The confident tiles move only once the others are at the narrowest level.
        let mut l = [0u8; 4];
        assert!(control(&mut l, &conf, &m, 0, 30 + 20 + 10 + 100, C));
        assert_eq!(l, [1, 2, 2, 1]);
    }

    #[test]
    fn gate_and_energy_decisions() {
        let (l, c) = gate_decision(&[0.0, 3.0, 1.0]);
        assert_eq!(l, 1);
        let want = 1.0 / (1.0 + (-3.0f32).exp() + (-2.0f32).exp());
        assert!((c - want).abs() < 1e-5);
        assert_eq!(energy_decision(0.5, &[0.4, 0.2, 0.1]).0, 0);
        assert_eq!(energy_decision(0.3, &[0.4, 0.2, 0.1]).0, 1);
        assert_eq!(energy_decision(0.05, &[0.4, 0.2, 0.1]).0, 3);
        let (_, c) = energy_decision(0.3, &[0.4, 0.2, 0.1]);
        assert!((c - 0.25).abs() < 1e-6);
        let e = tile_energy(&[1.0, 3.0, 1.0, 3.0]);
        assert!((e - 1.0).abs() < 1e-6);
        assert!((libm_sqrt(2.0) - 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn par_for_runs_every_item_once_with_distinct_workers() {
        use core::sync::atomic::{AtomicU64, Ordering};
        for workers in [1, 2, 3, 8] {
            let seen = AtomicU64::new(0);
            let max_worker = AtomicU64::new(0);
            par_for(40, workers, |i, w| {
                let bit = 1u64 << i;
                assert_eq!(
                    seen.fetch_or(bit, Ordering::Relaxed) & bit,
                    0,
                    "item {i} twice"
                );
                max_worker.fetch_max(w as u64, Ordering::Relaxed);
            });
            assert_eq!(seen.load(Ordering::Relaxed), (1u64 << 40) - 1);
            assert!(max_worker.load(Ordering::Relaxed) < workers as u64);
        }
        par_for(0, 4, |_, _| panic!("no items"));
    }

    #[test]
    fn budget_conversions() {
        assert_eq!(Budget::Macs(7).macs(100), 7);
        assert_eq!(Budget::Fraction(0.5).macs(100), 50);
        assert_eq!(Budget::Fraction(f32::NAN).macs(100), 0);
        assert_eq!(
            Budget::Nanos {
                ns: 1000,
                ns_per_mac: 0.5
            }
            .macs(0),
            2000
        );
    }
}
