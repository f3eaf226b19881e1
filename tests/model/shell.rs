//! The shell, step by step as src/controller/reconcile.rs does it (every write guarded by the version
//! read; an answer's fold that conflicts re-reads and re-folds), and the environment's moves.

use dealpay_operator::api::IdKind;
use dealpay_operator::engine::Action;
use dealpay_operator::tencent::ErrorClass;

use std::time::Duration;

use super::adapter::{JITTER, max_unknown, unknown_gap};
use super::engine::{Act, Ev, Model};
use super::state::{Id, Late, Pc, Rep, State, bump_lag};
use super::world::{env_moves, lookup_errors, lookup_truth, pay_outcomes, subs_of};

/// One transition: what happened, the state after, and the invariants it broke.
pub struct Edge {
    pub label: String,
    pub state: State,
    pub violations: Vec<String>,
}

/// A transition under construction.
struct Tx {
    s: State,
    label: String,
    v: Vec<String>,
}

fn ms(t: u64) -> String {
    format!("{:.2}s", t as f64 / 1000.0)
}

impl Model {
    /// Stores `sid`, checking the invariants on what users would read.
    fn write(&self, tx: &mut Tx, sid: Id) {
        tx.s.prev = Some(tx.s.store);
        tx.s.store = sid;
        for r in tx.s.reps.iter_mut() {
            bump_lag(&mut r.pc);
        }
        let info = &self.infos[sid as usize];
        let charged = tx.s.charges.iter().any(|c| *c > 0);
        if info.paid && !charged {
            tx.v.push("inv1: Paid=True written but no order was charged".into());
        }
        let n = self.cfg.subs.len();
        // 6 (refunded) is only reached from 4 here: it was delivered.
        if info.ready && !tx.s.tstatus[..n].iter().all(|t| *t == 4 || *t == 6) {
            tx.v.push(format!(
                "inv1: Ready=True written while Tencent statuses are {:?}",
                &tx.s.tstatus[..n]
            ));
        }
        if !info.ready && info.progress_reason.is_none() {
            tx.v.push(
                "inv5: not Ready, yet neither Reconciling nor Stalled is True with a reason".into(),
            );
        }
    }

    /// Carries out a decision made by replica `r` holding version `lag` of status `held`.
    fn dispatch(&self, tx: &mut Tx, r: usize, lag: u8, held: Id, nsid: Id, act: Act) {
        let now = tx.s.now;
        let changed = nsid != held;
        let conflict = |tx: &mut Tx| {
            tx.label
                .push_str(" -> write conflict (409), reconcile ends");
            tx.s.reps[r] = Rep {
                pc: Pc::Idle,
                wake: None,
            };
        };
        let mut lag = lag;
        if changed || matches!(act, Act::Pay(_)) {
            if lag != 0 {
                return conflict(tx);
            }
            self.write(tx, nsid);
            lag = 0;
        }
        let (pc, wake) = match act {
            Act::Pay(att) => {
                tx.label.push_str(" -> write-ahead stored, Pay");
                (Pc::PayWritten { lag, st: nsid, att }, None)
            }
            Act::LookUp(a) => {
                tx.label.push_str(" -> LookUp");
                (
                    Pc::LookupReady {
                        lag,
                        st: nsid,
                        act: a,
                    },
                    None,
                )
            }
            Act::Requeue(d) => {
                tx.label.push_str(&format!(" -> RequeueAfter({})", ms(d)));
                let max = u32::from(*tx.s.ghost.run.iter().max().unwrap_or(&0));
                let info = &self.infos[tx.s.store as usize];
                if max >= max_unknown(&self.policy) && !info.stalled {
                    tx.v.push(format!(
                        "inv3: {max} unknown outcomes in a row, waiting to retry, yet not Stalled"
                    ));
                }
                (Pc::Idle, Some(now + d))
            }
            Act::Await(d) => {
                tx.label.push_str(" -> AwaitChange");
                (Pc::Idle, d.map(|d| now + d))
            }
            Act::Done => {
                tx.label.push_str(" -> Done");
                (Pc::Idle, None)
            }
        };
        tx.s.reps[r] = Rep { pc, wake };
    }

    /// Folds an answer: decide on what the replica holds; on a conflicting write, re-read and re-fold.
    fn fold(&mut self, tx: &mut Tx, r: usize, lag: u8, st: Id, ev: Ev) {
        let (nsid, act, v) = self.decide(st, tx.s.now, ev, r as u8);
        if nsid != st && lag != 0 {
            tx.label.push_str(" -> conflict (409): re-read, re-fold");
            let store = tx.s.store;
            let (nsid, act, v) = self.decide(store, tx.s.now, ev, r as u8);
            tx.v.extend(v);
            return self.dispatch(tx, r, 0, store, nsid, act);
        }
        tx.v.extend(v);
        self.dispatch(tx, r, lag, st, nsid, act);
    }

    fn spec_ids(&self, ids: &[String]) -> Vec<usize> {
        ids.iter().filter_map(|i| self.id_index(i)).collect()
    }

    fn send(&mut self, s: &State, r: usize, lag: u8, st: Id, att: Id, ff: bool) -> Vec<Edge> {
        let attempt = self.attempts.get(att).clone();
        let mut out = Vec::new();
        for o in pay_outcomes(&self.cfg, s, &attempt) {
            if o.fault && (ff || s.faults >= self.cfg.max_faults) {
                continue;
            }
            let mut tx = Tx {
                s: s.clone(),
                label: format!("R{r} PayDeals {:?}: {}", attempt.ids, o.label),
                v: vec![],
            };
            if o.fault {
                tx.s.faults += 1;
            }
            // Every PayDeals after the first needs a fault to explain it.
            let bound = u32::from(s.faults) + 1;
            if let Some(l) = s.late.filter(|l| s.now <= l.until) {
                let subs = attempt
                    .ids
                    .iter()
                    .flat_map(|id| subs_of(&self.cfg, attempt.kind, id));
                if subs.into_iter().any(|i| l.set[i].is_some()) {
                    tx.v.push(format!(
                        "inv7: PayDeals for {:?} while an earlier request for them may still execute (until t={})",
                        attempt.ids,
                        ms(l.until)
                    ));
                }
            }
            if let Some(set) = o.late {
                let started = attempt.started_at.get().as_millisecond()
                    - Model::timestamp(0).as_millisecond();
                tx.s.late = Some(Late {
                    set,
                    until: started.max(0) as u64 + 300_000,
                });
            }
            for k in self.spec_ids(&attempt.ids) {
                let g = &mut tx.s.ghost;
                if g.unknown[k] {
                    tx.v.push(format!("inv2: PayDeals for {} while its previous attempt's outcome is unknown and no lookup answered since", self.cfg.ids[k]));
                }
                if let Some(t) = g.last_pay[k].filter(|t| s.now - t < g.gap[k]) {
                    tx.v.push(format!(
                        "inv3: PayDeals for {} {} after the last one; backoff asks {}",
                        self.cfg.ids[k],
                        ms(s.now - t),
                        ms(g.gap[k])
                    ));
                }
                g.pays[k] += 1;
                if u32::from(g.pays[k]) > bound {
                    tx.v.push(format!(
                        "inv3: {} PayDeals calls for {} with {} faults so far (bound {bound})",
                        g.pays[k], self.cfg.ids[k], s.faults
                    ));
                }
                g.unknown[k] = true;
                g.last_pay[k] = Some(s.now);
                g.gap[k] = 0;
                g.charged_by_last[k] = o.set.iter().any(Option::is_some);
            }
            for (i, to) in o.set.iter().enumerate() {
                if let Some(to) = to {
                    tx.s.charges[i] += 1;
                    tx.s.tstatus[i] = *to;
                    if tx.s.charges[i] > 1 {
                        tx.v.push(format!("inv4: order {} charged twice", self.cfg.subs[i].0));
                    }
                }
            }
            let res = self.pay_res.intern(o.result).0;
            tx.s.reps[r].pc = Pc::PayAnswered { lag, st, att, res };
            out.push(Edge {
                label: tx.label,
                state: tx.s,
                violations: tx.v,
            });
        }
        out
    }

    fn fold_paid(&mut self, s: &State, r: usize, lag: u8, st: Id, att: Id, res: Id) -> Edge {
        let attempt = self.attempts.get(att).clone();
        let result = self.pay_res.get(res).clone();
        let mut tx = Tx {
            s: s.clone(),
            label: format!("R{r} folds the PayDeals answer"),
            v: vec![],
        };
        for k in self.spec_ids(&attempt.ids) {
            let id = self.cfg.ids[k];
            let (known, gap) = match &result {
                Ok(resp) => {
                    let listed = match attempt.kind {
                        IdKind::Order => &resp.order_ids,
                        IdKind::BigDeal => &resp.big_deal_ids,
                    };
                    (listed.iter().any(|l| l == id), Duration::ZERO)
                }
                Err(e) => match e.class() {
                    // A call that charged something worked; one that charged nothing may be what fails.
                    ErrorClass::OutcomeUnknown if tx.s.ghost.charged_by_last[k] => {
                        tx.s.ghost.run[k] = 0;
                        (false, Duration::ZERO)
                    }
                    ErrorClass::OutcomeUnknown => {
                        tx.s.ghost.run[k] = tx.s.ghost.run[k].saturating_add(1);
                        (false, unknown_gap(&self.policy, tx.s.ghost.run[k]))
                    }
                    ErrorClass::Transient => (true, self.policy.transient.delay(1, JITTER)),
                    ErrorClass::NeedsHuman => (true, self.policy.needs_human.delay(1, JITTER)),
                    _ => (true, Duration::ZERO),
                },
            };
            // A replica that already decided its PayDeals (write-ahead stored, not yet sent) decided
            // without this answer: the backoff it asks for binds the attempts decided after it.
            let decided_before = s.reps.iter().enumerate().any(|(i, rep)| {
                i != r && matches!(rep.pc, Pc::PayWritten { .. } | Pc::Paused { .. })
            });
            let g = &mut tx.s.ghost;
            if known {
                g.unknown[k] = false;
                g.run[k] = 0;
            }
            let gap = gap.as_millis() as u64;
            if !decided_before {
                g.gap[k] = g.gap[k].max(gap);
            }
        }
        tx.s.reps[r].pc = Pc::Idle;
        self.fold(&mut tx, r, lag, st, Ev::Paid { att, res });
        Edge {
            label: tx.label,
            state: tx.s,
            violations: tx.v,
        }
    }

    fn look_up(&mut self, s: &State, r: usize, lag: u8, st: Id, act: Id, ff: bool) -> Vec<Edge> {
        let Action::LookUp { kind, ids, .. } = self.lookups.get(act).clone() else {
            unreachable!()
        };
        let truth = lookup_truth(&self.cfg, s, kind, &ids);
        let shown: Vec<String> = truth
            .deals
            .iter()
            .map(|d| format!("{}={}", d.order_id, d.status))
            .collect();
        let mut answers = vec![(format!("answers {shown:?}"), Ok(truth), false)];
        if !ff && self.cfg.faults.lookup && s.faults < self.cfg.max_faults {
            for (l, e) in lookup_errors() {
                answers.push((l.to_string(), Err(e), true));
            }
        }
        let mut out = Vec::new();
        for (label, res, fault) in answers {
            let mut tx = Tx {
                s: s.clone(),
                label: format!("R{r} DescribeDealsByCond {ids:?} {label}"),
                v: vec![],
            };
            if fault {
                tx.s.faults += 1;
            }
            if res.is_ok() {
                for k in self.spec_ids(&ids) {
                    tx.s.ghost.unknown[k] = false;
                }
            }
            let l = self.look_res.intern(res).0;
            tx.s.reps[r].pc = Pc::Idle;
            self.fold(&mut tx, r, lag, st, Ev::Looked { act, res: l });
            out.push(Edge {
                label: tx.label,
                state: tx.s,
                violations: tx.v,
            });
        }
        out
    }

    /// Reconcile start by the Lease holder: read (fresh or stale), decide on Observe, carry out.
    pub fn reconcile(&mut self, s: &State, r: usize, stale: bool) -> Edge {
        let (sid, lag) = if stale {
            (s.prev.expect("prev"), 1)
        } else {
            (s.store, 0)
        };
        let mut tx = Tx {
            s: s.clone(),
            label: format!(
                "R{r} reconciles on a {} read",
                if stale { "STALE" } else { "fresh" }
            ),
            v: vec![],
        };
        if stale {
            tx.s.faults += 1;
        }
        let (nsid, act, v) = self.decide(sid, s.now, Ev::Observe, r as u8);
        tx.v.extend(v);
        self.dispatch(&mut tx, r, lag, sid, nsid, act);
        Edge {
            label: tx.label,
            state: tx.s,
            violations: tx.v,
        }
    }

    /// Steps replica `r` can take (`ff`: fault-free only).
    pub fn rep_steps(&mut self, s: &State, r: usize, ff: bool) -> Vec<Edge> {
        let can_fault = !ff && s.faults < self.cfg.max_faults;
        match s.reps[r].pc {
            Pc::Idle if s.lease as usize == r => {
                let mut v = vec![self.reconcile(s, r, false)];
                if can_fault && self.cfg.faults.stale && s.prev.is_some_and(|p| p != s.store) {
                    v.push(self.reconcile(s, r, true));
                }
                v
            }
            Pc::Idle => vec![],
            Pc::PayWritten { lag, st, att } => {
                if s.lease as usize != r {
                    let mut n = s.clone();
                    n.reps[r].pc = Pc::Idle;
                    return vec![Edge {
                        label: format!("R{r} lease check fails: PayDeals not called"),
                        state: n,
                        violations: vec![],
                    }];
                }
                if self.cfg.pause_after_lease_check {
                    let mut n = s.clone();
                    n.reps[r].pc = Pc::Paused { lag, st, att };
                    return vec![Edge {
                        label: format!("R{r} lease check passes"),
                        state: n,
                        violations: vec![],
                    }];
                }
                self.send(s, r, lag, st, att, ff)
            }
            Pc::Paused { lag, st, att } => self.send(s, r, lag, st, att, ff),
            Pc::PayAnswered { lag, st, att, res } => vec![self.fold_paid(s, r, lag, st, att, res)],
            Pc::LookupReady { lag, st, act } => self.look_up(s, r, lag, st, act, ff),
        }
    }

    /// The earliest wake after now.
    pub fn next_wake(&self, s: &State) -> Option<u64> {
        s.reps[..self.cfg.replicas]
            .iter()
            .filter_map(|r| r.wake)
            .filter(|w| *w > s.now)
            .min()
    }

    pub fn tick(&self, s: &State, t: u64) -> Edge {
        let mut n = s.clone();
        n.now = t;
        // Past its signature's expiry the API refuses the late request.
        if n.late.is_some_and(|l| l.until < t) {
            n.late = None;
        }
        for r in n.reps.iter_mut() {
            if r.wake.is_some_and(|w| w <= t) {
                r.wake = None;
            }
        }
        Edge {
            label: format!("time passes {} (to t={})", ms(t - s.now), ms(t)),
            state: n,
            violations: vec![],
        }
    }

    /// Tencent moving orders on its own, and running a late request.
    pub fn env_steps(&self, s: &State, ff: bool) -> Vec<Edge> {
        let mut out = Vec::new();
        if let Some(l) = s.late.filter(|l| s.now <= l.until) {
            let mut n = s.clone();
            n.late = None;
            let mut v = Vec::new();
            for (i, to) in l.set.iter().enumerate() {
                if let Some(to) = to {
                    n.charges[i] += 1;
                    if n.tstatus[i] == 1 {
                        n.tstatus[i] = *to;
                    }
                    if n.charges[i] > 1 {
                        v.push(format!("inv4: order {} charged twice", self.cfg.subs[i].0));
                    }
                }
            }
            out.push(Edge {
                label: "the API runs the late PayDeals request".into(),
                state: n,
                violations: v,
            });
        }
        for i in 0..self.cfg.subs.len() {
            for (label, to, fault) in env_moves(s.tstatus[i]) {
                if fault && (ff || !self.cfg.faults.env || s.faults >= self.cfg.max_faults) {
                    continue;
                }
                let mut n = s.clone();
                n.tstatus[i] = to;
                if fault {
                    n.faults += 1;
                }
                out.push(Edge {
                    label: format!("Tencent: {} {label}", self.cfg.subs[i].0),
                    state: n,
                    violations: vec![],
                });
            }
        }
        out
    }

    /// Every transition from `s`.
    pub fn successors(&mut self, s: &State) -> Vec<Edge> {
        let mut out = Vec::new();
        let can_fault = s.faults < self.cfg.max_faults;
        for r in 0..self.cfg.replicas {
            out.extend(self.rep_steps(s, r, false));
            if can_fault && self.cfg.faults.crash && s.reps[r].pc != Pc::Idle {
                let mut n = s.clone();
                n.reps[r] = Rep {
                    pc: Pc::Idle,
                    wake: None,
                };
                n.faults += 1;
                out.push(Edge {
                    label: format!("R{r} CRASHES in {:?}", s.reps[r].pc),
                    state: n,
                    violations: vec![],
                });
            }
            // A replica busy in a reconcile only re-acquires the Lease in the pause scenario (Lease ABA).
            let may_take = s.reps[r].pc == Pc::Idle || self.cfg.pause_after_lease_check;
            if can_fault && self.cfg.faults.lease && s.lease as usize != r && may_take {
                let mut n = s.clone();
                n.lease = r as u8;
                n.faults += 1;
                out.push(Edge {
                    label: format!("R{r} takes the Lease"),
                    state: n,
                    violations: vec![],
                });
            }
        }
        if let Some(t) = self.next_wake(s) {
            out.push(self.tick(s, t));
        }
        out.extend(self.env_steps(s, false));
        out
    }

    /// One line about a state.
    pub fn describe(&self, s: &State) -> String {
        let n = self.cfg.subs.len();
        let world: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "{}={}{}",
                    self.cfg.subs[i].0,
                    s.tstatus[i],
                    if s.charges[i] > 0 { "$" } else { "" }
                )
            })
            .collect();
        let reps: Vec<String> = (0..self.cfg.replicas)
            .map(|r| {
                let pc = match s.reps[r].pc {
                    Pc::Idle => "Idle",
                    Pc::PayWritten { .. } => "PayWritten",
                    Pc::Paused { .. } => "PausedBeforeSend",
                    Pc::PayAnswered { .. } => "HoldsPayAnswer",
                    Pc::LookupReady { .. } => "LookupReady",
                };
                format!("R{r}:{pc}")
            })
            .collect();
        format!(
            "t={} tencent[{}] lease=R{} {} faults={} | {}",
            ms(s.now),
            world.join(" "),
            s.lease,
            reps.join(" "),
            s.faults,
            self.infos[s.store as usize].summary
        )
    }
}
