//! The real `decide()`, called with interned inputs and memoised (it is pure), plus what the invariants
//! read off each stored status.

use std::collections::HashMap;

use dealpay_operator::api::{Attempt, DealPaymentSpec, DealPaymentStatus};
use dealpay_operator::engine::conditions::{ConditionType, find, is_true};
use dealpay_operator::engine::{
    Action, CredentialsState, Decision, Event, Input, LookupAnswer, Policy, decide,
};
use dealpay_operator::tencent::CallError;
use dealpay_operator::tencent::models::PayDealsResponse;
use jiff::{SignedDuration, Timestamp};

use super::adapter::{JITTER, is_charged, paid_event};
use super::state::{Config, Id, Interner};

pub const T0: &str = "2026-11-28T10:00:00Z";

/// A decider that rewrites the real engine's decision (for planting bugs in the self-test).
pub type Mutant = fn(&Input<'_>, Decision) -> Decision;

/// What a decision was about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Ev {
    Observe,
    Paid {
        att: Id,
        res: Id,
    },
    /// The answer `res` to the lookup action `act`, asked at the decision's time.
    Looked {
        act: Id,
        res: Id,
    },
}

/// The engine's action, interned.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Act {
    Pay(Id),
    LookUp(Id),
    Requeue(u64),
    Await(Option<u64>),
    Done,
}

/// A stored status as the invariants see it.
pub struct Info {
    pub ready: bool,
    pub paid: bool,
    pub stalled: bool,
    /// Reason of the True one of Reconciling/Stalled, if any is True with a reason.
    pub progress_reason: Option<String>,
    pub summary: String,
}

/// Status id, time, event, replica.
type DecideKey = (Id, u64, Ev, u8);
/// New status id, action, and an invariant-4 violation.
pub type Decided = (Id, Act, Option<String>);

pub struct Model {
    pub cfg: Config,
    pub spec: DealPaymentSpec,
    pub policy: Policy,
    pub statuses: Interner<Option<DealPaymentStatus>>,
    pub infos: Vec<Info>,
    pub attempts: Interner<Attempt>,
    pub pay_res: Interner<Result<PayDealsResponse, CallError>>,
    pub look_res: Interner<Result<LookupAnswer, CallError>>,
    pub lookups: Interner<Action>,
    memo: HashMap<DecideKey, Decided>,
    pub mutant: Option<Mutant>,
    pub decisions: u64,
}

fn cond(st: &DealPaymentStatus, t: ConditionType) -> String {
    find(&st.conditions, t).map_or("-".into(), |c| format!("{}/{}", c.status, c.reason))
}

impl Model {
    pub fn new(cfg: Config) -> Self {
        let (order_ids, big_deal_ids) = match cfg.kind {
            dealpay_operator::api::IdKind::Order => {
                (cfg.ids.iter().map(|s| s.to_string()).collect(), vec![])
            }
            dealpay_operator::api::IdKind::BigDeal => {
                (vec![], cfg.ids.iter().map(|s| s.to_string()).collect())
            }
        };
        let spec = DealPaymentSpec {
            order_ids,
            big_deal_ids,
            ..Default::default()
        };
        let mut m = Self {
            cfg,
            spec,
            policy: Policy::default(),
            statuses: Interner::new(),
            infos: Vec::new(),
            attempts: Interner::new(),
            pay_res: Interner::new(),
            look_res: Interner::new(),
            lookups: Interner::new(),
            memo: HashMap::new(),
            mutant: None,
            decisions: 0,
        };
        m.status_id(None);
        m
    }

    pub fn id_index(&self, id: &str) -> Option<usize> {
        self.cfg.ids.iter().position(|i| *i == id)
    }

    pub fn status_id(&mut self, st: Option<DealPaymentStatus>) -> Id {
        let (id, new) = self.statuses.intern(st);
        if new {
            let info = self.info_of(self.statuses.get(id).as_ref());
            self.infos.push(info);
        }
        id
    }

    fn info_of(&self, st: Option<&DealPaymentStatus>) -> Info {
        let Some(st) = st else {
            return Info {
                ready: false,
                paid: false,
                stalled: false,
                progress_reason: Some("(no status yet)".into()),
                summary: "(no status)".into(),
            };
        };
        let c = &st.conditions;
        let reason_of = |t: ConditionType| {
            find(c, t)
                .filter(|c| c.status == "True" && !c.reason.is_empty())
                .map(|c| c.reason.clone())
        };
        let v = serde_json::to_value(st).unwrap_or_default();
        let ids = |p: &serde_json::Value| {
            p.get("ids")
                .map(|i| i.to_string().replace('"', ""))
                .unwrap_or_default()
        };
        let orders: Vec<String> = st
            .orders
            .iter()
            .map(|o| format!("{}:{:?}", o.id, o.state))
            .collect();
        let mut summary = format!(
            "Ready={} Reconciling={} Stalled={} Paid={} attempts={}",
            cond(st, ConditionType::Ready),
            cond(st, ConditionType::Reconciling),
            cond(st, ConditionType::Stalled),
            cond(st, ConditionType::Paid),
            st.attempts
        );
        if let Some(f) = v.get("inFlight") {
            summary.push_str(&format!(" inFlight={}", ids(f)));
        }
        if let Some(p) = v.get("pendingLookup") {
            let reason = p.get("reason").and_then(|r| r.as_str()).unwrap_or("");
            summary.push_str(&format!(" pendingLookup={}({reason})", ids(p)));
        }
        if !orders.is_empty() {
            summary.push_str(&format!(" orders=[{}]", orders.join(",")));
        }
        for key in ["consecutiveFailures", "unknownOutcomes", "nextRetryAt"] {
            if let Some(x) = v.get(key) {
                summary.push_str(&format!(" {key}={}", x.to_string().replace('"', "")));
            }
        }
        if let Some(e) = &st.last_error {
            summary.push_str(&format!(" lastError={}", e.code));
        }
        Info {
            ready: is_true(c, ConditionType::Ready),
            paid: is_true(c, ConditionType::Paid),
            stalled: is_true(c, ConditionType::Stalled),
            progress_reason: reason_of(ConditionType::Reconciling)
                .or_else(|| reason_of(ConditionType::Stalled)),
            summary,
        }
    }

    pub fn timestamp(now: u64) -> Timestamp {
        let t0: Timestamp = T0.parse().expect("T0");
        t0.checked_add(SignedDuration::from_millis(now as i64))
            .expect("time")
    }

    /// Decides with the real engine: the new status id, the action, and an invariant-4 violation if the
    /// engine chose to pay an id its input status records as charged.
    pub fn decide(&mut self, sid: Id, now: u64, ev: Ev, rep: u8) -> Decided {
        if let Some(hit) = self.memo.get(&(sid, now, ev, rep)) {
            return hit.clone();
        }
        self.decisions += 1;
        let status = self.statuses.get(sid).clone();
        let event = match ev {
            Ev::Observe => Event::Observe,
            Ev::Paid { att, res } => {
                paid_event(self.attempts.get(att), self.pay_res.get(res).clone())
            }
            Ev::Looked { act, res } => Event::LookedUp {
                asked: self
                    .lookups
                    .get(act)
                    .asked(Self::timestamp(now))
                    .expect("a lookup action"),
                result: self.look_res.get(res).clone(),
            },
        };
        let attempts = status.as_ref().map_or(0, |s| s.attempts);
        let input = Input {
            spec: &self.spec,
            status: status.as_ref(),
            generation: 1,
            now: Self::timestamp(now),
            jitter: JITTER,
            attempt_id: format!("r{rep}-{}", attempts + 1),
            credentials: CredentialsState::Available {
                version: "1".into(),
            },
            event,
        };
        let mut d = decide(input.clone(), &self.policy);
        if let Some(m) = self.mutant {
            d = m(&input, d);
        }
        let mut violation = None;
        let act = match &d.action {
            Action::Pay { attempt, .. } => {
                let recorded: Vec<&String> = attempt
                    .ids
                    .iter()
                    .filter(|id| {
                        status.as_ref().is_some_and(|s| {
                            s.orders
                                .iter()
                                .any(|o| &&o.id == id && is_charged(&o.state))
                        })
                    })
                    .collect();
                if !recorded.is_empty() {
                    violation = Some(format!(
                        "inv4: PayDeals decided for {recorded:?}, recorded as charged in the status decided on"
                    ));
                }
                Act::Pay(self.attempts.intern(attempt.clone()).0)
            }
            a @ Action::LookUp { .. } => Act::LookUp(self.lookups.intern(a.clone()).0),
            Action::RequeueAfter(d) => Act::Requeue((d.as_millis() as u64).max(50)),
            Action::AwaitChange { recheck } => {
                Act::Await(recheck.map(|d| (d.as_millis() as u64).max(50)))
            }
            Action::Done => Act::Done,
        };
        let nsid = self.status_id(Some(d.status));
        let out = (nsid, act, violation);
        self.memo.insert((sid, now, ev, rep), out.clone());
        out
    }
}
