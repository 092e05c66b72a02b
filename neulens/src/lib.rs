//! neulens. (Being written.)
#![no_std]
