//! Seeded synthetic weights (`weights: { random: SEED }`): every parameter is a pure function of
//! (seed, name, shape, kind), so results never depend on the order of requests.

use super::{ParamKind, WeightError, WeightRequest, WeightSource};
use crate::graph::Tensor;

/// A `WeightSource` that invents every parameter: He-normal weights, small uniform biases and
/// batchnorm statistics in safe ranges (variance always > 0).
#[derive(Clone, Debug)]
pub struct RandomWeights {
    seed: u64,
}

/// 64-bit FNV-1a.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256** seeded through splitmix64.
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Self {
        let mut sm = seed;
        Rng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// A pair of independent standard normals (Box–Muller).
    fn normal_pair(&mut self) -> (f64, f64) {
        let u1 = 1.0 - self.unit(); // (0, 1]: ln is finite
        let u2 = self.unit();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        (r * t.cos(), r * t.sin())
    }
}

impl RandomWeights {
    pub fn new(seed: u64) -> Self {
        RandomWeights { seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The values for `req` (what `fetch` returns), or `None` when the element count overflows.
    pub fn generate(&self, req: &WeightRequest<'_>) -> Option<Tensor> {
        let count = req
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))?;
        let mut rng = Rng::new(self.seed ^ fnv1a(req.name));
        let data: Vec<f32> = match req.kind {
            ParamKind::Weight => {
                let fan_in = req
                    .shape
                    .iter()
                    .skip(1)
                    .try_fold(1usize, |a, &d| a.checked_mul(d));
                let fan_in = fan_in.unwrap_or(usize::MAX); // only when count == 0
                let std = (2.0 / fan_in.max(1) as f64).sqrt();
                let mut v = Vec::with_capacity(count);
                while v.len() < count {
                    let (a, b) = rng.normal_pair();
                    v.push((a * std) as f32);
                    if v.len() < count {
                        v.push((b * std) as f32);
                    }
                }
                v
            }
            kind => {
                let (lo, hi) = match kind {
                    ParamKind::Bias => (-0.1, 0.1),
                    ParamKind::BnGamma => (0.5, 1.5),
                    ParamKind::BnBeta | ParamKind::BnMean => (-0.2, 0.2),
                    ParamKind::BnVar => (0.5, 2.0),
                    ParamKind::Weight => (0.0, 0.0), // handled above
                };
                (0..count).map(|_| rng.uniform(lo, hi) as f32).collect()
            }
        };
        Some(Tensor {
            shape: req.shape.to_vec(),
            data,
        })
    }
}

impl WeightSource for RandomWeights {
    fn fetch(&mut self, req: &WeightRequest<'_>) -> Result<Tensor, WeightError> {
        // The contract has no "invalid request" error; an overflowing shape is reported as a
        // shape problem (the graph builder rejects such shapes before asking).
        self.generate(req).ok_or_else(|| WeightError::WrongShape {
            found: req.shape.to_vec(),
        })
    }

    fn contains(&self, _name: &str) -> bool {
        true
    }

    fn unused(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(w: &mut RandomWeights, name: &str, shape: &[usize], kind: ParamKind) -> Vec<f32> {
        w.fetch(&WeightRequest { name, shape, kind }).unwrap().data
    }

    fn mean_std(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }

    #[test]
    fn deterministic_across_instances_and_order() {
        let mut a = RandomWeights::new(7);
        let mut b = RandomWeights::new(7);
        let a1 = fetch(&mut a, "conv1.weight", &[4, 3, 3, 3], ParamKind::Weight);
        let a2 = fetch(&mut a, "conv1.bias", &[4], ParamKind::Bias);
        let b2 = fetch(&mut b, "conv1.bias", &[4], ParamKind::Bias);
        let b1 = fetch(&mut b, "conv1.weight", &[4, 3, 3, 3], ParamKind::Weight);
        assert_eq!(a1, b1);
        assert_eq!(a2, b2);
        assert_eq!(
            a1,
            fetch(&mut a, "conv1.weight", &[4, 3, 3, 3], ParamKind::Weight)
        );
        // Other seed or other name: other values.
        let mut c = RandomWeights::new(8);
        assert_ne!(
            a1,
            fetch(&mut c, "conv1.weight", &[4, 3, 3, 3], ParamKind::Weight)
        );
        assert_ne!(
            a1,
            fetch(&mut a, "conv2.weight", &[4, 3, 3, 3], ParamKind::Weight)
        );
        assert_eq!(a1.len(), 108);
    }

    #[test]
    fn he_normal_statistics() {
        let mut w = RandomWeights::new(1);
        // fan_in = 16·5·5 = 400 → std = sqrt(2/400) ≈ 0.0707; 10 000 values (odd sizes too).
        let v = fetch(&mut w, "w", &[25, 16, 5, 5], ParamKind::Weight);
        assert_eq!(v.len(), 10_000);
        let (mean, std) = mean_std(&v);
        let want = (2.0f64 / 400.0).sqrt();
        assert!(mean.abs() < 0.05 * want * 4.0, "mean {mean}");
        assert!((std / want - 1.0).abs() < 0.05, "std {std} want {want}");
        let odd = fetch(&mut w, "odd", &[3, 1], ParamKind::Weight);
        assert_eq!(odd.len(), 3);
        assert!(v.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn uniform_ranges_and_statistics() {
        let mut w = RandomWeights::new(3);
        let cases = [
            (ParamKind::Bias, -0.1, 0.1),
            (ParamKind::BnGamma, 0.5, 1.5),
            (ParamKind::BnBeta, -0.2, 0.2),
            (ParamKind::BnMean, -0.2, 0.2),
            (ParamKind::BnVar, 0.5, 2.0),
        ];
        for (kind, lo, hi) in cases {
            let v = fetch(&mut w, "p", &[10_000], kind);
            assert!(
                v.iter().all(|&x| (lo as f32) <= x && x <= hi as f32),
                "{kind:?}"
            );
            let (mean, std) = mean_std(&v);
            let want_std = (hi - lo) / 12f64.sqrt();
            assert!(
                (mean - (lo + hi) / 2.0).abs() < 0.05 * (hi - lo),
                "{kind:?} mean {mean}"
            );
            assert!((std / want_std - 1.0).abs() < 0.05, "{kind:?} std {std}");
        }
        let var = fetch(&mut w, "bn.running_var", &[1000], ParamKind::BnVar);
        assert!(var.iter().all(|&x| x > 0.0));
    }

    #[test]
    fn contract_extras() {
        let mut w = RandomWeights::new(0);
        assert!(w.contains("anything.at.all"));
        let _ = fetch(&mut w, "x", &[2], ParamKind::Bias);
        assert!(w.unused().is_empty());
        let t = w
            .fetch(&WeightRequest {
                name: "s",
                shape: &[],
                kind: ParamKind::Bias,
            })
            .unwrap();
        assert_eq!(t.data.len(), 1);
        let huge = [usize::MAX, 2];
        assert!(w
            .fetch(&WeightRequest {
                name: "h",
                shape: &huge,
                kind: ParamKind::Weight
            })
            .is_err());
    }
}
