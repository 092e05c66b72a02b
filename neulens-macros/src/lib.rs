//! The `#[neulens_model]` attribute macro. (Being written.)
