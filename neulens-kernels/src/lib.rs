//! neulens-kernels: no_std SIMD kernels. (Being written.)
#![no_std]
