//! Fuzz target bodies of dealpay-operator. The code is in `targets.rs` so that the stable smoke test
//! (`tests/fuzz_smoke.rs` in the main crate) can include the very same file with `#[path]`.

mod targets;

pub use targets::*;
