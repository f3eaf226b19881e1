#![no_main]
//! cargo-fuzz entry point; the body lives in `src/targets.rs`, shared with `tests/fuzz_smoke.rs`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dealpay_fuzz::sandbox_body(data));
