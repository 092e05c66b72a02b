//! neulens-kernels: allocation-free, `no_std` f32 CNN kernels (CHW layout, batch 1) that
//! neulens-generated inference code calls; one generic loop nest per kernel, one microkernel per ISA.
//!
//! Every kernel family has an `unsafe` raw-pointer entry point taking an [`Isa`] (what generated
//! code calls) and a `_checked` safe wrapper over slices (lengths, parameters and ISA verified).
//! Loop nests are written once, generic over [`simd::Simd`]; per-ISA `#[target_feature]` wrappers
//! instantiate them (see the `dispatch!` macro in `macros.rs`).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(any(feature = "std", test))]
extern crate std;

#[macro_use]
mod macros;

mod common;
pub mod conv;
mod cvec;
pub mod dense;
mod direct;
pub mod eltwise;
pub mod isa;
pub mod pattern;
pub mod pool;
pub mod simd;
pub mod winograd;

#[cfg(test)]
mod testutil;

pub use isa::Isa;

/// Activation fused into the end of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// Identity.
    None,
    /// `max(0, x)`.
    Relu,
    /// `min(max(0, x), 6)`.
    Relu6,
}

/// Errors reported by the `_checked` wrappers and the weight packers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// A slice had the wrong length.
    BadLength {
        /// Which argument.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length actually passed.
        found: usize,
    },
    /// The requested ISA is not available on this CPU (or not compiled for this architecture).
    IsaUnavailable(Isa),
    /// The parameters are inconsistent (the message says which rule was broken).
    BadParams(&'static str),
}

impl core::fmt::Display for KernelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KernelError::BadLength {
                what,
                expected,
                found,
            } => write!(f, "`{what}` has length {found}, expected {expected}"),
            KernelError::IsaUnavailable(isa) => {
                write!(f, "ISA `{}` is not available on this CPU", isa.name())
            }
            KernelError::BadParams(msg) => write!(f, "bad kernel parameters: {msg}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KernelError {}

/// Returns `Err(BadLength)` unless `found == expected`.
pub(crate) fn check_len(
    what: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), KernelError> {
    if expected == found {
        Ok(())
    } else {
        Err(KernelError::BadLength {
            what,
            expected,
            found,
        })
    }
}

/// Returns `Err(IsaUnavailable)` unless `isa` can run on this CPU.
pub(crate) fn check_isa(isa: Isa) -> Result<(), KernelError> {
    if isa.is_available() {
        Ok(())
    } else {
        Err(KernelError::IsaUnavailable(isa))
    }
}

/// Part `part` of `parts` of `0..len` cut at multiples of `granule`: `(start, end)`, contiguous
/// and as even as whole granules allow (the last part ends at `len`); empty for `part >=
/// parts`. How `infer_threads` shares a layer's channels or elements among its workers.
pub const fn part_range(len: usize, granule: usize, part: usize, parts: usize) -> (usize, usize) {
    let g = if granule == 0 { 1 } else { granule };
    let parts = if parts == 0 { 1 } else { parts };
    let units = len.div_ceil(g);
    let (u0, u1) = (units * part / parts, units * (part + 1) / parts);
    let (a, b) = (u0 * g, u1 * g);
    (if a < len { a } else { len }, if b < len { b } else { len })
}
