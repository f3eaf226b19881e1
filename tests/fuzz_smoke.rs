//! Stable smoke run of the fuzz targets (see docs/fuzzing.md): every committed seed in
//! `fuzz/corpus/<target>/`, then a fixed number of inputs mutated from them by a seeded mutator,
//! through the very functions the cargo-fuzz binaries call (`fuzz/src/targets.rs`).
//!
//! `DEALPAY_FUZZ_SMOKE_CASES` changes the number of mutated inputs per target (default 3000),
//! `DEALPAY_FUZZ_SMOKE_SEED` the mutator's seed.

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target)
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).expect("readable corpus file");
            (p.file_name().unwrap().to_string_lossy().into_owned(), data)
        })
        .collect();
    out.sort();
    out
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"0",
    b"-1",
    b"null",
    b"[]",
    b"{}",
    b"\"\"",
    b"1e400",
    b"\"NaN\"",
    b"-9223372036854775808",
    b"18446744073709551616",
    b"\\u0000",
    b"\\ud800",
    b",",
    b"/",
    b"=",
    b" ",
    b"\t",
    b"\n",
    b"\xff",
];

/// A few libFuzzer-style mutations: byte flips and sets, inserts, deletes, duplicated ranges,
/// splices with another seed and interesting tokens.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[(String, Vec<u8>)]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(8));
                input.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                let chunk = input[i..i + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())].1;
                let cut = rng.below(input.len() + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                let token = INTERESTING[rng.below(INTERESTING.len())];
                let i = rng.below(len + 1);
                if len > 0 && rng.below(2) == 0 {
                    let end = (i + token.len()).min(len);
                    input.splice(i..end, token.iter().copied());
                } else {
                    input.splice(i..i, token.iter().copied());
                }
            }
        }
    }
    input.truncate(4096);
}

fn run_one(name: &str, f: fn(&[u8]), what: &str, input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
        panic!(
            "fuzz target {name} failed on {what}; input (escaped): b\"{}\"\n\
             save it with `printf` into fuzz/corpus/{name}/ or reproduce with \
             `cargo fuzz run {name} FILE` (docs/fuzzing.md)",
            input.escape_ascii()
        );
    }
}

fn smoke(name: &str) {
    let f = targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .expect("known target");
    let seeds = files(&dir("corpus", name));
    assert!(
        seeds.len() >= 5,
        "fuzz/corpus/{name}/ has {} seeds",
        seeds.len()
    );
    for (file, data) in &seeds {
        run_one(name, f, &format!("seed {file}"), data);
    }
    let cases = env_u64("DEALPAY_FUZZ_SMOKE_CASES", 3000);
    let seed = env_u64("DEALPAY_FUZZ_SMOKE_SEED", 0x5eed_f022);
    let mut rng = Rng(seed ^ name.len() as u64 ^ 0x9e37_79b9_7f4a_7c15);
    for case in 0..cases {
        let mut input = seeds[rng.below(seeds.len())].1.clone();
        mutate(&mut rng, &mut input, &seeds);
        run_one(
            name,
            f,
            &format!("mutated case {case} (seed {seed:#x})"),
            &input,
        );
    }
}

#[test]
fn parse_response_corpus_and_mutations() {
    smoke("parse_response");
}

#[test]
fn verify_request_corpus_and_mutations() {
    smoke("verify_request");
}

#[test]
fn sandbox_body_corpus_and_mutations() {
    smoke("sandbox_body");
}

/// Minimised crashers the fuzzer found and that are not fixed yet (`fuzz/crashes/<target>/`); once
/// fixed, a crasher moves into the seed corpus so it is replayed by the smoke tests for good.
#[test]
fn known_crashes_are_fixed() {
    for (name, f) in targets::TARGETS {
        for (file, data) in files(&dir("crashes", name)) {
            run_one(name, *f, &format!("crash {file}"), &data);
        }
    }
}
