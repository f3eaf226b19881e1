//! Breadth-first search over hashed states up to a depth, invariants on every transition, liveness from
//! every state, and readable counterexample traces (shortest, since the search is breadth-first).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::engine::Model;
use super::live::Live;
use super::state::State;

pub struct Violation {
    /// "inv1".."inv6".
    pub invariant: String,
    pub message: String,
    pub trace: String,
}

pub struct Report {
    pub name: &'static str,
    pub states: usize,
    pub transitions: u64,
    pub depth: usize,
    pub max_faults: u8,
    pub decisions: u64,
    pub violations: Vec<Violation>,
    /// All violations found, by invariant (only the first of each has a trace).
    pub counts: HashMap<String, u64>,
    pub elapsed: Duration,
}

impl Report {
    pub fn line(&self) -> String {
        let total: u64 = self.counts.values().sum();
        format!(
            "model check [{}]: {} states, {} transitions, {} engine decisions, depth {}, faults <= {}, {} violations ({:.1}s)",
            self.name,
            self.states,
            self.transitions,
            self.decisions,
            self.depth,
            self.max_faults,
            total,
            self.elapsed.as_secs_f64()
        )
    }
}

fn trace(m: &mut Model, states: &[State], parent: &[u32], idx: u32) -> Vec<String> {
    let mut chain = vec![idx];
    let mut i = idx;
    while parent[i as usize] != u32::MAX {
        i = parent[i as usize];
        chain.push(i);
    }
    chain.reverse();
    let mut out = vec![format!("  0. start\n      => {}", m.describe(&states[0]))];
    for w in chain.windows(2) {
        let (p, c) = (&states[w[0] as usize], &states[w[1] as usize]);
        let label = m
            .successors(p)
            .into_iter()
            .find(|e| e.state == *c)
            .map_or("?".into(), |e| e.label);
        out.push(format!(
            "{:3}. {label}\n      => {}",
            out.len(),
            m.describe(c)
        ));
    }
    out
}

pub fn run(m: &mut Model) -> Report {
    let start = Instant::now();
    let depth = m.cfg.depth;
    let s0 = State::initial(&m.cfg, 0);
    let mut states = vec![s0.clone()];
    let mut parent = vec![u32::MAX];
    let mut seen: HashMap<State, u32> = HashMap::new();
    seen.insert(s0, 0);
    let mut live = Live::new();
    let mut violations: Vec<Violation> = Vec::new();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut transitions = 0u64;
    let mut level = vec![0u32];
    let mut reached = 0;
    let mut check_live = |m: &mut Model,
                          idx: u32,
                          states: &[State],
                          parent: &[u32],
                          violations: &mut Vec<Violation>,
                          counts: &mut HashMap<String, u64>| {
        if let Err(cont) = m.live(&mut live, &states[idx as usize]) {
            let c = counts.entry("inv6".into()).or_default();
            *c += 1;
            if *c == 1 {
                let mut t = trace(m, states, parent, idx);
                t.push("  -- faults stop; fault-free continuation:".into());
                t.extend(cont.into_iter().map(|l| format!("   ~ {l}")));
                violations.push(Violation {
                    invariant: "inv6".into(),
                    message: "liveness: after faults stop, not Paid=True for a charged order, or never settled (Ready=True / Stalled with nothing left)".into(),
                    trace: t.join("\n"),
                });
            }
        }
    };
    check_live(m, 0, &states, &parent, &mut violations, &mut counts);
    for d in 0..depth {
        let mut next_level = Vec::new();
        for &idx in &level {
            let s = states[idx as usize].clone();
            for e in m.successors(&s) {
                transitions += 1;
                for v in &e.violations {
                    let inv = v.split(':').next().unwrap_or("?").to_string();
                    let c = counts.entry(inv.clone()).or_default();
                    *c += 1;
                    if *c == 1 {
                        let mut t = trace(m, &states, &parent, idx);
                        t.push(format!(
                            "{:3}. {}   <-- VIOLATION\n      => {}",
                            t.len(),
                            e.label,
                            m.describe(&e.state)
                        ));
                        violations.push(Violation {
                            invariant: inv,
                            message: v.clone(),
                            trace: t.join("\n"),
                        });
                    }
                }
                if seen.contains_key(&e.state) {
                    continue;
                }
                let ni = states.len() as u32;
                seen.insert(e.state.clone(), ni);
                states.push(e.state);
                parent.push(idx);
                next_level.push(ni);
                check_live(m, ni, &states, &parent, &mut violations, &mut counts);
            }
        }
        if next_level.is_empty() {
            break;
        }
        reached = d + 1;
        level = next_level;
    }
    Report {
        name: m.cfg.name,
        states: states.len(),
        transitions,
        depth: reached,
        max_faults: m.cfg.max_faults,
        decisions: m.decisions,
        violations,
        counts,
        elapsed: start.elapsed(),
    }
}
