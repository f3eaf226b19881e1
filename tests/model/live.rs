//! Liveness within the bound: from a state, faults stop; a fixed fair schedule runs (finish what each
//! replica holds, let Tencent deliver, let the Lease holder reconcile, let time pass) and must reach
//! "Paid=True if anything was charged" and "Ready=True or Stalled=True".

use std::collections::HashMap;

use super::engine::Model;
use super::shell::Edge;
use super::state::{Pc, State};

pub struct Live {
    memo: HashMap<State, bool>,
    pub runs: u64,
}

impl Live {
    pub fn new() -> Self {
        Self {
            memo: HashMap::new(),
            runs: 0,
        }
    }
}

/// The next fault-free step, or None when nothing is left to do (quiescent).
fn next(m: &mut Model, s: &State) -> Option<Edge> {
    for r in 0..m.cfg.replicas {
        if s.reps[r].pc != Pc::Idle {
            return m.rep_steps(s, r, true).into_iter().next();
        }
    }
    if let Some(e) = m.env_steps(s, true).into_iter().next() {
        return Some(e);
    }
    let e = m.reconcile(s, s.lease as usize, false);
    let mut same = e.state.clone();
    for (a, b) in same.reps.iter_mut().zip(s.reps.iter()) {
        a.wake = b.wake;
    }
    if same != *s {
        return Some(e);
    }
    let after = e.state;
    m.next_wake(&after).map(|t| m.tick(&after, t))
}

/// Paid=True if anything was charged (and not refunded), and Ready=True or Stalled=True (a stall may
/// keep retrying slowly).
fn goal(m: &Model, s: &State) -> bool {
    let info = &m.infos[s.store as usize];
    let charged = (0..m.cfg.subs.len()).any(|i| s.charges[i] > 0 && s.tstatus[i] != 6);
    let paid_ok = info.paid || !charged;
    paid_ok && (info.ready || info.stalled)
}

impl Model {
    /// Ok, or the failing continuation as (step labels + state lines).
    pub fn live(&mut self, live: &mut Live, s0: &State) -> Result<(), Vec<String>> {
        let bound = self.cfg.live_bound;
        let mut s = s0.phys();
        let mut path = Vec::new();
        let mut trace = Vec::new();
        let mut ok = false;
        for _ in 0..bound {
            if let Some(r) = live.memo.get(&s) {
                ok = *r;
                break;
            }
            live.runs += 1;
            path.push(s.clone());
            if goal(self, &s) {
                ok = true;
                break;
            }
            match next(self, &s) {
                Some(e) => {
                    trace.push(format!("{}\n      => {}", e.label, self.describe(&e.state)));
                    s = e.state.phys();
                }
                None => {
                    ok = false;
                    if !ok {
                        trace.push("(nothing left to do)".into());
                    }
                    break;
                }
            }
        }
        if path.len() == bound && !ok && !live.memo.contains_key(&s) {
            trace.push(format!("(not reached within {bound} fault-free steps)"));
        }
        for p in path {
            live.memo.insert(p, ok);
        }
        if ok {
            return Ok(());
        }
        if trace.len() > 16 {
            let n = trace.len();
            trace.splice(12..n - 4, [format!("... {} steps ...", n - 16)]);
        }
        Err(trace)
    }
}
