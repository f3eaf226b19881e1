//! Exhaustive bounded model check of the payment engine (see tests/model/).
//!
//! `cargo test --test model_check -- --nocapture` prints the state counts; `DEALPAY_MODEL_DEPTH=N`
//! explores deeper (default 14), `DEALPAY_MODEL_FAULTS=N` allows more faults per run (default 2);
//! `DEALPAY_MODEL_PAUSE=1` adds the scenario where a replica pauses
//! between its lease check and its PayDeals send.

mod model;

use model::check::{Report, run};
use model::engine::{Model, Mutant};
use model::{mutants, scenarios};

const DEFAULT_DEPTH: usize = 14;

fn depth() -> usize {
    std::env::var("DEALPAY_MODEL_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(DEFAULT_DEPTH)
}

/// Fault budget of the scenarios (the storm scenario has its own, larger one).
fn faults() -> Option<u8> {
    std::env::var("DEALPAY_MODEL_FAULTS")
        .ok()
        .and_then(|d| d.parse().ok())
}

fn print(r: &Report) {
    println!("{}", r.line());
    for v in &r.violations {
        let n = r.counts.get(&v.invariant).copied().unwrap_or(0);
        println!(
            "\n=== {} ({n} transitions) in [{}] with {} faults at most: {}\n{}\n",
            v.invariant, r.name, r.max_faults, v.message, v.trace
        );
    }
}

#[test]
fn engine_model_check() {
    let d = depth();
    let mut configs = vec![
        scenarios::two_orders(d),
        scenarios::pay_together(d),
        scenarios::big_deal(d + 2),
        scenarios::unknown_storm(2 * d + 8),
    ];
    if std::env::var("DEALPAY_MODEL_PAUSE").is_ok_and(|v| v == "1") {
        configs.push(scenarios::lease_pause(d));
    }
    let mut failed = Vec::new();
    for mut cfg in configs {
        if let (Some(f), false) = (faults(), cfg.faults.only_unknown) {
            cfg.max_faults = f;
        }
        let mut m = Model::new(cfg);
        let r = run(&mut m);
        print(&r);
        if !r.violations.is_empty() {
            failed.push(r.name);
        }
    }
    assert!(failed.is_empty(), "invariants violated in {failed:?}");
}

fn catches(mutant: Mutant, invariant: &str) {
    let mut m = Model::new(scenarios::two_orders(8));
    m.cfg.replicas = 1;
    m.mutant = Some(mutant);
    let r = run(&mut m);
    assert!(
        r.violations.iter().any(|v| v.invariant == invariant),
        "the planted bug was not caught as {invariant}: {}",
        r.line()
    );
    let v = r
        .violations
        .iter()
        .find(|v| v.invariant == invariant)
        .unwrap();
    assert!(v.trace.contains("VIOLATION") || invariant == "inv6");
}

#[test]
fn checker_catches_planted_bugs() {
    catches(mutants::pays_twice, "inv4");
    catches(mutants::skips_lookup, "inv2");
    catches(mutants::claims_paid, "inv1");
}

/// The `late` fault (a request the API runs after its client gave up, until its signature expires)
/// reproduces issue 21's defect 2 against an engine without the signature window: the retry goes out
/// while the late request may still run (inv7), and both charge (inv4). With the window (the engine
/// as it is, `engine_model_check`), neither happens.
#[test]
fn the_late_fault_finds_the_retry_race_of_an_engine_without_the_window() {
    let mut m = Model::new(scenarios::unknown_storm(16));
    m.policy.signature_ttl = std::time::Duration::from_millis(1);
    m.policy.clock_margin = std::time::Duration::ZERO;
    let r = run(&mut m);
    for inv in ["inv7", "inv4"] {
        assert!(
            r.violations.iter().any(|v| v.invariant == inv),
            "{inv} not found: {}",
            r.line()
        );
    }
}
