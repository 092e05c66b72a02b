//! Fully connected layer (`y = W x + b`, fused activation): parameters, weight packing and
//! the GEMV loop nest (4 output rows share each input vector load), generic over `Simd`.

use crate::common::act_s;
use crate::simd::Simd;
use crate::{check_isa, check_len, Act, Isa, KernelError};

/// Shape of a dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DenseParams {
    /// Input length.
    pub in_features: usize,
    /// Output length.
    pub out_features: usize,
    /// Activation applied after the bias.
    pub act: Act,
}

impl DenseParams {
    /// Packed weight count (`out_features * in_features`; the layout is PyTorch's `[out, in]`).
    pub const fn packed_weight_len(&self) -> usize {
        self.in_features * self.out_features
    }
    /// Multiply-accumulates.
    pub const fn macs(&self) -> u64 {
        self.in_features as u64 * self.out_features as u64
    }
    /// Checks nonzero sizes and no length overflow.
    pub fn validate(&self) -> Result<(), KernelError> {
        if self.in_features == 0 || self.out_features == 0 {
            return Err(KernelError::BadParams(
                "dense: in_features and out_features must be nonzero",
            ));
        }
        if self.in_features.checked_mul(self.out_features).is_none() {
            return Err(KernelError::BadParams(
                "dense: weight length overflows usize",
            ));
        }
        Ok(())
    }
}

/// Build time: converts PyTorch `[out, in]` weights into the packed layout.
pub fn pack_dense_weights(p: &DenseParams, oi: &[f32], out: &mut [f32]) -> Result<(), KernelError> {
    p.validate()?;
    check_len("dense weights ([out, in])", p.packed_weight_len(), oi.len())?;
    check_len("packed dense weights", p.packed_weight_len(), out.len())?;
    out.copy_from_slice(oi);
    Ok(())
}

dispatch! {
    /// `output = act(W input + bias)`.
    ///
    /// # Safety
    /// `p` valid; `input` valid for `in_features` reads, `packed_w` for `packed_weight_len()`
    /// (from [`pack_dense_weights`]), `bias` for `out_features`, `output` for `out_features`
    /// writes, not overlapping the others; `isa` available (another arch's ISA runs scalar).
    pub unsafe fn dense(p: &DenseParams, input: *const f32, packed_w: *const f32, bias: *const f32, output: *mut f32) => dense_impl
}

/// Safe [`dense`].
pub fn dense_checked(
    isa: Isa,
    p: &DenseParams,
    input: &[f32],
    packed_w: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<(), KernelError> {
    p.validate()?;
    check_len("input", p.in_features, input.len())?;
    check_len("packed_w", p.packed_weight_len(), packed_w.len())?;
    check_len("bias", p.out_features, bias.len())?;
    check_len("output", p.out_features, output.len())?;
    check_isa(isa)?;
    // SAFETY: lengths and ISA checked; `&mut` output cannot alias the shared slices.
    unsafe {
        dense(
            isa,
            p,
            input.as_ptr(),
            packed_w.as_ptr(),
            bias.as_ptr(),
            output.as_mut_ptr(),
        )
    };
    Ok(())
}

/// # Safety
/// Contract of [`dense`].
#[inline(always)]
unsafe fn dense_impl<V: Simd>(
    p: &DenseParams,
    x: *const f32,
    w: *const f32,
    bias: *const f32,
    y: *mut f32,
) {
    let k = p.in_features;
    let mut o = 0;
    // SAFETY: row blocks stay below `out_features`.
    unsafe {
        while o + 4 <= p.out_features {
            dot_rows::<V, 4>(p.act, k, x, w.add(o * k), bias.add(o), y.add(o));
            o += 4;
        }
        while o < p.out_features {
            dot_rows::<V, 1>(p.act, k, x, w.add(o * k), bias.add(o), y.add(o));
            o += 1;
        }
    }
}

/// `y[j] = act(b[j] + dot(w[j], x))` for `j < N`.
///
/// # Safety
/// `x` valid for `k` reads, `w` for `N * k`, `b` for `N`, `y` for `N` writes; `V`'s ISA available.
#[inline(always)]
unsafe fn dot_rows<V: Simd, const N: usize>(
    act: Act,
    k: usize,
    x: *const f32,
    w: *const f32,
    b: *const f32,
    y: *mut f32,
) {
    // Two-level summation: vector partial sums over chunks of CHUNK inputs, then the chunk sums.
    // A single running sum over tens of thousands of inputs (the scalar twin has one lane) drifts
    // by ~1e-5 relative; chunking keeps every ISA near the f64 result.
    const CHUNK: usize = 256;
    // SAFETY: vector loops keep `i + LANES <= end <= k`, the tail `i < k`; rows `j < N`.
    unsafe {
        let mut total = [0.0f32; N];
        let mut i = 0;
        while i + V::LANES <= k {
            let end = (i + CHUNK).min(k);
            let mut acc = [V::zero(); N];
            while i + V::LANES <= end {
                let xv = V::load(x.add(i));
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = V::fma(V::load(w.add(j * k + i)), xv, *a);
                }
                i += V::LANES;
            }
            for (t, a) in total.iter_mut().zip(acc.iter()) {
                *t += a.reduce_add();
            }
        }
        for (j, t) in total.iter().enumerate() {
            let mut s = *t;
            for r in i..k {
                s += *w.add(j * k + r) * *x.add(r);
            }
            *y.add(j) = act_s(act, s + *b.add(j));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use std::vec;

    fn run_case(p: &DenseParams, seed: u64, poison: &[(usize, f32)]) -> usize {
        let mut rng = Rng::new(seed);
        let mut x = rng.vec(p.in_features);
        for &(i, v) in poison {
            x[i] = v;
        }
        let w = rng.vec(p.packed_weight_len());
        let b = rng.vec(p.out_features);
        let mut packed = vec![0.0; p.packed_weight_len()];
        pack_dense_weights(p, &w, &mut packed).unwrap();
        let want = dense_ref(p.in_features, p.out_features, p.act, &x, &w, &b);
        check_isas(&std::format!("{p:?}"), &want, p.act != Act::None, |isa| {
            let mut out = vec![f32::NAN; p.out_features];
            dense_checked(isa, p, &x, &packed, &b, &mut out).unwrap();
            out
        })
    }

    #[test]
    fn feature_counts_and_activations() {
        for (i, &n_in) in EDGE.iter().chain(&[64, 100, 1000]).enumerate() {
            for (j, &n_out) in CHANNELS.iter().chain(&[10, 32]).enumerate() {
                let p = DenseParams {
                    in_features: n_in,
                    out_features: n_out,
                    act: ACTS[(i + j) % 3],
                };
                run_case(&p, (i * 10 + j) as u64, &[]);
            }
        }
    }

    #[test]
    fn nan_and_inf_inputs_do_not_crash() {
        let p = DenseParams {
            in_features: 19,
            out_features: 5,
            act: Act::None,
        };
        // Every output sees every input, so all outputs must be non-finite (checked by the harness).
        assert!(run_case(&p, 3, &[(4, f32::NAN), (17, f32::INFINITY)]) >= 1);
    }

    #[test]
    fn checked_wrapper_rejects_bad_input() {
        let p = DenseParams {
            in_features: 3,
            out_features: 2,
            act: Act::Relu,
        };
        assert_eq!(p.macs(), 6);
        let mut out = [0.0; 2];
        assert_eq!(
            dense_checked(Isa::Scalar, &p, &[0.0; 3], &[0.0; 5], &[0.0; 2], &mut out),
            Err(KernelError::BadLength {
                what: "packed_w",
                expected: 6,
                found: 5
            })
        );
        assert_eq!(
            pack_dense_weights(&p, &[0.0; 6], &mut [0.0; 7]),
            Err(KernelError::BadLength {
                what: "packed dense weights",
                expected: 6,
                found: 7
            })
        );
        let zero = DenseParams {
            in_features: 0,
            ..p
        };
        assert!(matches!(
            dense_checked(Isa::Scalar, &zero, &[], &[], &[0.0; 2], &mut out),
            Err(KernelError::BadParams(_))
        ));
    }
}
