//! Element-wise kernels (add, per-channel affine, activation, softmax, copy) and the
//! core-only `expf` used by softmax. Outputs may equal an input pointer exactly (in place).

use crate::common::{act_inplace, act_s, act_v};
use crate::simd::Simd;
use crate::{check_isa, check_len, Act, Isa, KernelError};

dispatch! {
    /// `out[i] = act(a[i] + b[i])` for `i < n`.
    ///
    /// # Safety
    /// `a`, `b` valid for `n` reads, `out` for `n` writes; `out` either equals `a` or `b`
    /// exactly or overlaps neither; `isa` available (another arch's ISA runs scalar).
    pub unsafe fn add(n: usize, a: *const f32, b: *const f32, out: *mut f32, act: Act) => add_impl
}

dispatch! {
    /// `out[ch][i] = act(input[ch][i] * scale[ch] + shift[ch])` for `ch < c`, `i < hw`
    /// (folded batch norm and friends).
    ///
    /// # Safety
    /// `input` valid for `c * hw` reads, `scale`/`shift` for `c` reads, `out` for `c * hw`
    /// writes; `out` equals `input` exactly or overlaps nothing; `isa` available.
    pub unsafe fn affine(c: usize, hw: usize, input: *const f32, scale: *const f32, shift: *const f32, out: *mut f32, act: Act) => affine_impl
}

dispatch! {
    /// Applies `act` in place to `n` values.
    ///
    /// # Safety
    /// `data` valid for `n` reads and writes; `isa` available.
    pub unsafe fn activation(n: usize, data: *mut f32, act: Act) => activation_impl
}

dispatch! {
    /// Numerically stable softmax over `n` values (max subtracted before [`expf`]).
    ///
    /// # Safety
    /// `input` valid for `n` reads, `out` for `n` writes; `out` equals `input` exactly or
    /// overlaps nothing; `isa` available.
    pub unsafe fn softmax(n: usize, input: *const f32, out: *mut f32) => softmax_impl
}

/// Copies `n` values from `src` to `dst`.
///
/// # Safety
/// `src` valid for `n` reads, `dst` for `n` writes, and the two do not overlap.
pub unsafe fn copy(n: usize, src: *const f32, dst: *mut f32) {
    // SAFETY: forwarded caller contract.
    unsafe { core::ptr::copy_nonoverlapping(src, dst, n) }
}

/// A `c × h × w` window copied between two CHW tensors of other sizes: read from a
/// `c × src_h × src_w` tensor at row `src_y`, column `src_x`, written into a `c × dst_h × dst_w`
/// tensor at (`dst_y`, `dst_x`). Micro-flows use it to cut a tile out of the image (crop) and to
/// put a tile's output into the stitched feature map (paste).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// Channels.
    pub c: usize,
    /// Window height.
    pub h: usize,
    /// Window width.
    pub w: usize,
    /// Source height.
    pub src_h: usize,
    /// Source width.
    pub src_w: usize,
    /// Window top row in the source.
    pub src_y: usize,
    /// Window left column in the source.
    pub src_x: usize,
    /// Destination height.
    pub dst_h: usize,
    /// Destination width.
    pub dst_w: usize,
    /// Window top row in the destination.
    pub dst_y: usize,
    /// Window left column in the destination.
    pub dst_x: usize,
}

impl Window {
    /// `c * src_h * src_w`.
    pub const fn src_len(&self) -> usize {
        self.c * self.src_h * self.src_w
    }
    /// `c * dst_h * dst_w`.
    pub const fn dst_len(&self) -> usize {
        self.c * self.dst_h * self.dst_w
    }
    /// Whether the window lies inside both tensors (checked in `const` context by generated code).
    pub const fn fits(&self) -> bool {
        self.src_y + self.h <= self.src_h
            && self.src_x + self.w <= self.src_w
            && self.dst_y + self.h <= self.dst_h
            && self.dst_x + self.w <= self.dst_w
    }
}

/// Copies the window `p` from `src` to `dst`.
///
/// # Safety
/// `src` valid for `p.src_len()` reads, `dst` for `p.dst_len()` writes, the two do not overlap,
/// and `p.fits()`.
pub unsafe fn copy_window(p: &Window, src: *const f32, dst: *mut f32) {
    for ch in 0..p.c {
        for y in 0..p.h {
            let s = (ch * p.src_h + p.src_y + y) * p.src_w + p.src_x;
            let d = (ch * p.dst_h + p.dst_y + y) * p.dst_w + p.dst_x;
            // SAFETY: `fits()` puts both rows inside their tensors of the lengths the caller
            // guarantees; the tensors do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(src.add(s), dst.add(d), p.w) }
        }
    }
}

/// Safe [`copy_window`].
pub fn copy_window_checked(p: &Window, src: &[f32], dst: &mut [f32]) -> Result<(), KernelError> {
    if !p.fits() {
        return Err(KernelError::BadParams("window: does not fit its tensors"));
    }
    check_len("src", p.src_len(), src.len())?;
    check_len("dst", p.dst_len(), dst.len())?;
    // SAFETY: lengths and `fits()` checked; `&`/`&mut` slices cannot overlap.
    unsafe { copy_window(p, src.as_ptr(), dst.as_mut_ptr()) };
    Ok(())
}

/// Safe [`add`] into a separate output.
pub fn add_checked(
    isa: Isa,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    act: Act,
) -> Result<(), KernelError> {
    check_len("b", a.len(), b.len())?;
    check_len("out", a.len(), out.len())?;
    check_isa(isa)?;
    // SAFETY: lengths and ISA checked; `&mut out` cannot overlap `a` or `b`.
    unsafe { add(isa, a.len(), a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), act) };
    Ok(())
}

/// Safe in-place [`add`]: `acc[i] = act(acc[i] + b[i])`.
pub fn add_assign_checked(
    isa: Isa,
    acc: &mut [f32],
    b: &[f32],
    act: Act,
) -> Result<(), KernelError> {
    check_len("b", acc.len(), b.len())?;
    check_isa(isa)?;
    let p = acc.as_mut_ptr();
    // SAFETY: lengths and ISA checked; output equals input `a` exactly (allowed), `b` is a
    // shared borrow so it cannot overlap `acc`.
    unsafe { add(isa, acc.len(), p, b.as_ptr(), p, act) };
    Ok(())
}

/// Safe [`affine`]: `scale.len()` channels of `input.len() / scale.len()` values.
pub fn affine_checked(
    isa: Isa,
    input: &[f32],
    scale: &[f32],
    shift: &[f32],
    out: &mut [f32],
    act: Act,
) -> Result<(), KernelError> {
    let c = scale.len();
    if c == 0 || !input.len().is_multiple_of(c) {
        return Err(KernelError::BadParams(
            "affine: input length must be a nonzero multiple of the channel count",
        ));
    }
    check_len("shift", c, shift.len())?;
    check_len("out", input.len(), out.len())?;
    check_isa(isa)?;
    // SAFETY: lengths and ISA checked; `&mut out` cannot overlap the shared slices.
    unsafe {
        affine(
            isa,
            c,
            input.len() / c,
            input.as_ptr(),
            scale.as_ptr(),
            shift.as_ptr(),
            out.as_mut_ptr(),
            act,
        )
    };
    Ok(())
}

/// Safe [`activation`].
pub fn activation_checked(isa: Isa, data: &mut [f32], act: Act) -> Result<(), KernelError> {
    check_isa(isa)?;
    // SAFETY: the slice is valid for its length; ISA checked.
    unsafe { activation(isa, data.len(), data.as_mut_ptr(), act) };
    Ok(())
}

/// Safe [`softmax`] into a separate output.
pub fn softmax_checked(isa: Isa, input: &[f32], out: &mut [f32]) -> Result<(), KernelError> {
    check_len("out", input.len(), out.len())?;
    check_isa(isa)?;
    // SAFETY: lengths and ISA checked; `&mut out` cannot overlap `input`.
    unsafe { softmax(isa, input.len(), input.as_ptr(), out.as_mut_ptr()) };
    Ok(())
}

/// Safe in-place [`softmax`].
pub fn softmax_inplace_checked(isa: Isa, data: &mut [f32]) -> Result<(), KernelError> {
    check_isa(isa)?;
    let p = data.as_mut_ptr();
    // SAFETY: ISA checked; output equals input exactly, which `softmax` allows.
    unsafe { softmax(isa, data.len(), p, p) };
    Ok(())
}

/// Safe [`copy`].
pub fn copy_checked(src: &[f32], dst: &mut [f32]) -> Result<(), KernelError> {
    check_len("dst", src.len(), dst.len())?;
    dst.copy_from_slice(src);
    Ok(())
}

/// `e^x` without std or libm: round-to-nearest range reduction `x = n ln2 + r`, a degree-10
/// Taylor polynomial for `e^r` (|r| <= ln2/2) evaluated in f64, and an exact `2^n` scale.
/// Relative error is below one f32 rounding (~6e-8) over the normal range; returns 0 for
/// `x < -103.98`, +inf above `ln(f32::MAX)`, NaN for NaN.
pub fn expf(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > 88.72284 {
        return f32::INFINITY;
    }
    if x < -103.972_08 {
        return 0.0;
    }
    let xd = x as f64;
    let t = xd * core::f64::consts::LOG2_E;
    // Round to nearest; |t| <= 150 so the casts are exact and in range.
    let n = (if t >= 0.0 { t + 0.5 } else { t - 0.5 }) as i32;
    let r = xd - n as f64 * core::f64::consts::LN_2;
    const C: [f64; 11] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
    ];
    let mut p = C[10];
    for &c in C[..10].iter().rev() {
        p = p * r + c;
    }
    // n in [-150, 128]: 2^n is a normal f64.
    let scale = f64::from_bits(((n + 1023) as u64) << 52);
    (p * scale) as f32
}

/// # Safety
/// Contract of [`add`].
#[inline(always)]
unsafe fn add_impl<V: Simd>(n: usize, a: *const f32, b: *const f32, out: *mut f32, act: Act) {
    let mut i = 0;
    // SAFETY: vector loop keeps `i + LANES <= n`, tail `i < n`; each element is read before
    // it is written, so `out == a` or `out == b` is fine.
    unsafe {
        while i + V::LANES <= n {
            let s = V::add(V::load(a.add(i)), V::load(b.add(i)));
            act_v::<V>(act, s).store(out.add(i));
            i += V::LANES;
        }
        while i < n {
            *out.add(i) = act_s(act, *a.add(i) + *b.add(i));
            i += 1;
        }
    }
}

/// # Safety
/// Contract of [`affine`].
#[inline(always)]
unsafe fn affine_impl<V: Simd>(
    c: usize,
    hw: usize,
    input: *const f32,
    scale: *const f32,
    shift: *const f32,
    out: *mut f32,
    act: Act,
) {
    // SAFETY: channel `ch < c` touches `ch * hw + [0, hw)`; vector loop `i + LANES <= hw`,
    // tail `i < hw`; elements are read before written (in place allowed).
    unsafe {
        for ch in 0..c {
            let (s, t) = (*scale.add(ch), *shift.add(ch));
            let (sv, tv) = (V::splat(s), V::splat(t));
            let x = input.add(ch * hw);
            let y = out.add(ch * hw);
            let mut i = 0;
            while i + V::LANES <= hw {
                act_v::<V>(act, V::fma(V::load(x.add(i)), sv, tv)).store(y.add(i));
                i += V::LANES;
            }
            while i < hw {
                *y.add(i) = act_s(act, *x.add(i) * s + t);
                i += 1;
            }
        }
    }
}

/// # Safety
/// Contract of [`activation`].
#[inline(always)]
unsafe fn activation_impl<V: Simd>(n: usize, data: *mut f32, act: Act) {
    // SAFETY: forwarded contract.
    unsafe { act_inplace::<V>(act, n, data) }
}

/// # Safety
/// Contract of [`softmax`].
#[inline(always)]
unsafe fn softmax_impl<V: Simd>(n: usize, input: *const f32, out: *mut f32) {
    if n == 0 {
        return;
    }
    // SAFETY: every loop keeps vector accesses at `i + LANES <= n` and scalar ones at `i < n`;
    // pass 2 reads `input[i]` before writing `out[i]` (in place allowed), pass 3 only `out`.
    unsafe {
        let mut i = 0;
        let mut m = f32::NEG_INFINITY;
        if n >= V::LANES {
            let mut mv = V::load(input);
            i = V::LANES;
            while i + V::LANES <= n {
                mv = V::max(mv, V::load(input.add(i)));
                i += V::LANES;
            }
            m = mv.reduce_max();
        }
        while i < n {
            let x = *input.add(i);
            if x > m {
                m = x;
            }
            i += 1;
        }
        // The sum runs in f64: an f32 running sum over thousands of terms drifts by ~1e-5.
        let mut sum = 0.0f64;
        for i in 0..n {
            let e = expf(*input.add(i) - m);
            *out.add(i) = e;
            sum += e as f64;
        }
        let inv = (1.0 / sum) as f32;
        let iv = V::splat(inv);
        let mut i = 0;
        while i + V::LANES <= n {
            V::mul(V::load(out.add(i)), iv).store(out.add(i));
            i += V::LANES;
        }
        while i < n {
            *out.add(i) *= inv;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use std::vec;
    use std::vec::Vec;

    fn sizes() -> impl Iterator<Item = usize> {
        EDGE.iter().copied().chain([0, 64, 1000, 1001])
    }

    #[test]
    fn copy_window_crops_and_pastes() {
        // 2×4×5 source; copy the 2×2×3 window at (1, 2) into a 2×3×4 destination at (1, 0).
        let src: Vec<f32> = (0..40).map(|i| i as f32).collect();
        let mut dst = vec![-1.0f32; 24];
        let p = Window {
            c: 2,
            h: 2,
            w: 3,
            src_h: 4,
            src_w: 5,
            src_y: 1,
            src_x: 2,
            dst_h: 3,
            dst_w: 4,
            dst_y: 1,
            dst_x: 0,
        };
        copy_window_checked(&p, &src, &mut dst).unwrap();
        for ch in 0..2 {
            for y in 0..3 {
                for x in 0..4 {
                    let got = dst[(ch * 3 + y) * 4 + x];
                    let want = if y >= 1 && x < 3 {
                        src[(ch * 4 + (y - 1) + 1) * 5 + x + 2]
                    } else {
                        -1.0
                    };
                    assert_eq!(got, want, "c{ch} y{y} x{x}");
                }
            }
        }
        let bad = Window { src_x: 3, ..p };
        assert!(copy_window_checked(&bad, &src, &mut dst).is_err());
        assert!(copy_window_checked(&p, &src[1..], &mut dst).is_err());
    }

    #[test]
    fn expf_matches_f64_exp() {
        // Dense sweep of the range whose result is a normal f32, plus every exact integer.
        let (lo, hi) = (-87.33f32, 88.72f32);
        let steps = 2_000_000;
        let mut worst = 0.0f64;
        for i in 0..=steps {
            let x = lo + (hi - lo) * (i as f32 / steps as f32);
            let want = (x as f64).exp();
            let rel = ((expf(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
        }
        for k in -87..=88 {
            let want = (k as f64).exp();
            worst = worst.max(((expf(k as f32) as f64 - want) / want).abs());
        }
        assert!(worst < 2e-7, "worst relative error {worst:e}");
        assert_eq!(expf(0.0), 1.0);
        // Subnormal results stay accurate to an absolute subnormal ulp.
        for x in [-88.0f32, -95.5, -103.0] {
            assert!(
                (expf(x) as f64 - (x as f64).exp()).abs() <= f32::from_bits(1) as f64,
                "{x}"
            );
        }
        for x in [-104.0f32, -200.0, -1e30, f32::NEG_INFINITY] {
            assert_eq!(expf(x), 0.0, "{x}");
        }
        for x in [88.8f32, 100.0, 1e30, f32::INFINITY] {
            assert_eq!(expf(x), f32::INFINITY, "{x}");
        }
        assert!(expf(f32::NAN).is_nan());
    }

    #[test]
    fn add_all_sizes_and_in_place() {
        for (i, n) in sizes().enumerate() {
            let act = ACTS[i % 3];
            let mut rng = Rng::new(n as u64);
            let (a, b) = (rng.vec(n), rng.vec(n));
            let want: Vec<f64> = (0..n)
                .map(|k| act_ref(act, a[k] as f64 + b[k] as f64))
                .collect();
            check_isas(&std::format!("add n={n}"), &want, false, |isa| {
                let mut out = vec![f32::NAN; n];
                add_checked(isa, &a, &b, &mut out, act).unwrap();
                out
            });
            check_isas(&std::format!("add in place n={n}"), &want, false, |isa| {
                let mut acc = a.clone();
                add_assign_checked(isa, &mut acc, &b, act).unwrap();
                acc
            });
            // Raw entry point with out == b.
            for isa in isas() {
                let mut bb = b.clone();
                let p = bb.as_mut_ptr();
                // SAFETY: `a` and `bb` hold `n` values; out equals `b` exactly (allowed).
                unsafe { add(isa, n, a.as_ptr(), p, p, act) };
                assert_close(isa.name(), &bb, &want, TOL, false);
            }
        }
    }

    #[test]
    fn affine_channels_and_sizes() {
        for (i, hw) in EDGE.iter().copied().enumerate() {
            for &c in &CHANNELS {
                let act = ACTS[(i + c) % 3];
                let mut rng = Rng::new((hw * 100 + c) as u64);
                let (x, s, t) = (rng.vec(c * hw), rng.vec(c), rng.vec(c));
                let want: Vec<f64> = (0..c * hw)
                    .map(|k| act_ref(act, x[k] as f64 * s[k / hw] as f64 + t[k / hw] as f64))
                    .collect();
                check_isas(&std::format!("affine c={c} hw={hw}"), &want, false, |isa| {
                    let mut out = vec![f32::NAN; c * hw];
                    affine_checked(isa, &x, &s, &t, &mut out, act).unwrap();
                    out
                });
                check_isas(
                    &std::format!("affine in place c={c} hw={hw}"),
                    &want,
                    false,
                    |isa| {
                        let mut d = x.clone();
                        let p = d.as_mut_ptr();
                        // SAFETY: `d` has c*hw values, `s`/`t` c; out equals input exactly (allowed).
                        unsafe { affine(isa, c, hw, p, s.as_ptr(), t.as_ptr(), p, act) };
                        d
                    },
                );
            }
        }
    }

    #[test]
    fn activation_all_sizes() {
        for n in sizes() {
            let x: Vec<f32> = Rng::new(n as u64).vec(n).iter().map(|v| v * 10.0).collect();
            for act in ACTS {
                let want: Vec<f64> = x.iter().map(|&v| act_ref(act, v as f64)).collect();
                check_isas(
                    &std::format!("activation {act:?} n={n}"),
                    &want,
                    false,
                    |isa| {
                        let mut d = x.clone();
                        activation_checked(isa, &mut d, act).unwrap();
                        d
                    },
                );
            }
        }
    }

    #[test]
    fn softmax_sizes_large_values_and_in_place() {
        for n in sizes().filter(|&n| n > 0) {
            let mut rng = Rng::new(n as u64);
            for scale in [1.0f32, 30.0, 1000.0] {
                let x: Vec<f32> = rng.vec(n).iter().map(|v| v * scale + 500.0).collect();
                let want = softmax_ref(&x);
                check_isas(
                    &std::format!("softmax n={n} scale={scale}"),
                    &want,
                    false,
                    |isa| {
                        let mut out = vec![f32::NAN; n];
                        softmax_checked(isa, &x, &mut out).unwrap();
                        out
                    },
                );
                check_isas(
                    &std::format!("softmax in place n={n}"),
                    &want,
                    false,
                    |isa| {
                        let mut d = x.clone();
                        softmax_inplace_checked(isa, &mut d).unwrap();
                        d
                    },
                );
            }
        }
    }

    #[test]
    fn softmax_masked_and_non_finite() {
        let mut x = Rng::new(7).vec(19);
        x[3] = f32::NEG_INFINITY;
        x[18] = f32::NEG_INFINITY;
        let want = softmax_ref(&x);
        assert_eq!(want[3], 0.0);
        check_isas("softmax with -inf", &want, false, |isa| {
            let mut out = vec![f32::NAN; 19];
            softmax_checked(isa, &x, &mut out).unwrap();
            assert_eq!(out[18], 0.0);
            out
        });
        // NaN / +inf inputs: no crash, no panic; the result is whatever IEEE gives.
        x[5] = f32::NAN;
        x[7] = f32::INFINITY;
        for isa in isas() {
            let mut out = vec![0.0; 19];
            softmax_checked(isa, &x, &mut out).unwrap();
            assert!(out.iter().any(|v| v.is_nan()), "{}", isa.name());
        }
    }

    #[test]
    fn nan_and_inf_elementwise_stay_local() {
        let n = 35;
        let mut a = Rng::new(1).vec(n);
        let b = Rng::new(2).vec(n);
        a[0] = f32::NAN;
        a[17] = f32::INFINITY;
        a[34] = f32::NEG_INFINITY;
        let want: Vec<f64> = (0..n).map(|k| a[k] as f64 + b[k] as f64).collect();
        check_isas("add nan", &want, false, |isa| {
            let mut out = vec![0.0; n];
            add_checked(isa, &a, &b, &mut out, Act::None).unwrap();
            out
        });
        let want: Vec<f64> = (0..n).map(|k| act_ref(Act::Relu6, a[k] as f64)).collect();
        check_isas("relu6 nan", &want, true, |isa| {
            let mut d = a.clone();
            activation_checked(isa, &mut d, Act::Relu6).unwrap();
            assert_eq!(d[17], 6.0);
            assert_eq!(d[34], 0.0);
            d
        });
    }

    #[test]
    fn copy_and_checked_errors() {
        let src = Rng::new(3).vec(35);
        let mut dst = vec![0.0; 35];
        copy_checked(&src, &mut dst).unwrap();
        assert_eq!(src, dst);
        let mut raw = vec![0.0; 35];
        // SAFETY: both buffers hold 35 values and do not overlap.
        unsafe { copy(35, src.as_ptr(), raw.as_mut_ptr()) };
        assert_eq!(src, raw);
        assert_eq!(
            copy_checked(&src, &mut dst[1..]),
            Err(KernelError::BadLength {
                what: "dst",
                expected: 35,
                found: 34
            })
        );
        assert_eq!(
            add_checked(Isa::Scalar, &src, &src[1..], &mut dst, Act::None),
            Err(KernelError::BadLength {
                what: "b",
                expected: 35,
                found: 34
            })
        );
        assert!(matches!(
            affine_checked(Isa::Scalar, &src, &[1.0; 2], &[0.0; 2], &mut dst, Act::None),
            Err(KernelError::BadParams(_))
        ));
        if let Some(isa) = Isa::ALL.iter().copied().find(|i| !i.is_available()) {
            assert_eq!(
                activation_checked(isa, &mut dst, Act::Relu),
                Err(KernelError::IsaUnavailable(isa))
            );
        }
    }
}
