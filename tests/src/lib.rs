//! Cross-crate tests of generated models.
