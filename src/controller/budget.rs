//! Per-namespace budgets over a rolling window (`--namespace-budget team-a=5000.00/24h`).
//!
//! What a namespace spent is derived from the status of its DealPayments (so a restart counts the same
//! money), read from the watch's caches (`caches.rs`) or, for objects this process wrote since it became leader,
//! from what it wrote (the store lags behind our own writes). The engine gets the figures as a
//! [`WindowBudget`] and stalls on its own; the write of a new attempt is checked again here, under one
//! lock, so two DealPayments reconciled at once cannot both take the last of a budget.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use kube::ResourceExt;

use super::caches::Caches;
use super::metrics::Metrics;
use super::settled::Summary;
use crate::api::money::{format_cents, parse_cents};
use crate::api::{DealPayment, DealPaymentStatus, PaymentReceipt};
use crate::engine::Policy;
use crate::engine::spend::{Charge, WindowBudget, charge, format_window, parse_window};

/// The namespace `--namespace-budget` applies to when it names none of its own.
pub const ANY_NAMESPACE: &str = "*";

/// One `--namespace-budget NAMESPACE=AMOUNT/WINDOW`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceBudget {
    /// The namespace, or `*` for every namespace without a budget of its own (each on its own).
    pub namespace: String,
    /// Most it may spend in any window, in cents.
    pub limit_cents: i64,
    /// The rolling window.
    pub window: Duration,
}

impl std::fmt::Display for NamespaceBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={}/{}",
            self.namespace,
            format_cents(self.limit_cents),
            format_window(self.window)
        )
    }
}

/// Parses `team-a=5000.00/24h` (window units d, h, m, s).
pub fn parse_flag(s: &str) -> Result<NamespaceBudget, String> {
    let bad = |why: &str| {
        format!(
            "--namespace-budget {s:?}: {why} (expected NAMESPACE=AMOUNT/WINDOW, e.g. team-a=5000.00/24h)"
        )
    };
    let (ns, rest) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
    let (amount, window) = rest.split_once('/').ok_or_else(|| bad("no '/WINDOW'"))?;
    let ns = ns.trim();
    let name_ok = ns == ANY_NAMESPACE
        || (!ns.is_empty()
            && ns.len() <= 63
            && ns
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    if !name_ok {
        return Err(bad("not a namespace name or '*'"));
    }
    Ok(NamespaceBudget {
        namespace: ns.to_string(),
        limit_cents: parse_cents(amount.trim()).ok_or_else(|| bad("not an amount like 5000.00"))?,
        window: parse_window(window.trim()).ok_or_else(|| bad("not a window like 24h, 7d, 30m"))?,
    })
}

/// What this process last wrote for one DealPayment.
#[derive(Debug, Clone)]
struct Written {
    namespace: String,
    /// What its status says it spent (counted while it has no receipt in the cache).
    charge: Option<Charge>,
    attempt: Option<String>,
    /// Its open attempts' reservations (quote at start), counted beside its receipts until each
    /// attempt's own receipt is in the cache.
    open: Vec<(String, Charge)>,
}

/// A DealPayment as the cache shows it: uid, and what its status says it spent.
#[derive(Debug, Clone)]
pub struct Seen {
    /// metadata.uid (a re-created object with the same name is another payment).
    pub uid: String,
    /// Its charge, from status (or, for a receipt, from the receipt).
    pub charge: Option<Charge>,
    /// For a PaymentReceipt: the attempt it journals. Once a DealPayment has receipts, they are what
    /// it spent: its status may also show orders it found paid by someone else.
    pub receipt_of: Option<String>,
}

impl From<&PaymentReceipt> for Seen {
    /// One attempt's receipt, under its DealPayment's uid (attempts this process wrote whose receipts
    /// the cache does not show yet count beside it, at their quote: see `Ledger::charges`).
    fn from(r: &PaymentReceipt) -> Self {
        Self {
            uid: r.spec.deal_payment.uid.clone(),
            receipt_of: Some(r.spec.attempt_id.clone()),
            charge: r.charge().map(|(at, cents)| Charge {
                at: at.get(),
                cents,
            }),
        }
    }
}

impl From<&Summary> for Seen {
    fn from(s: &Summary) -> Self {
        Self {
            uid: s.uid.to_string(),
            charge: s.charge,
            receipt_of: None,
        }
    }
}

/// An admitted write, to be undone if the write fails.
#[derive(Debug)]
#[must_use = "roll back an admission whose write failed"]
pub struct Admission {
    uid: String,
    before: Option<Written>,
}

/// The budgets and what this process wrote since it became leader.
#[derive(Debug, Default)]
pub struct Ledger {
    budgets: Vec<NamespaceBudget>,
    written: Mutex<HashMap<String, Written>>,
}

impl Ledger {
    /// A ledger for these budgets (the last one given for a namespace wins).
    pub fn new(budgets: Vec<NamespaceBudget>) -> Self {
        Self {
            budgets,
            written: Mutex::default(),
        }
    }

    /// The budget of `namespace`, its own or the `*` one.
    pub fn budget_of(&self, namespace: &str) -> Option<&NamespaceBudget> {
        let find = |n: &str| self.budgets.iter().rev().find(|b| b.namespace == n);
        find(namespace).or_else(|| find(ANY_NAMESPACE))
    }

    /// Forgets what this process wrote: another replica may have written since (called on becoming leader).
    pub fn forget(&self) {
        self.written.lock().expect("ledger lock").clear();
    }

    fn charges(
        written: &HashMap<String, Written>,
        namespace: &str,
        seen: &[Seen],
        skip: Option<&str>,
    ) -> Vec<Charge> {
        let mut out = Vec::new();
        let journaled: HashSet<&str> = seen
            .iter()
            .filter(|s| s.receipt_of.is_some())
            .map(|s| s.uid.as_str())
            .collect();
        for s in seen.iter().filter(|s| Some(s.uid.as_str()) != skip) {
            let receipt = s.receipt_of.is_some();
            // Receipts always count; a status only while it has no receipts and we did not write it.
            if receipt || (!journaled.contains(s.uid.as_str()) && !written.contains_key(&s.uid)) {
                out.extend(s.charge);
            }
        }
        for (uid, w) in written
            .iter()
            .filter(|(uid, w)| w.namespace == namespace && Some(uid.as_str()) != skip)
        {
            if journaled.contains(uid.as_str()) {
                let cached = |id: &str| {
                    seen.iter()
                        .any(|s| s.uid == *uid && s.receipt_of.as_deref() == Some(id))
                };
                out.extend(w.open.iter().filter(|(id, _)| !cached(id)).map(|(_, c)| *c));
            } else {
                out.extend(w.charge);
            }
        }
        out
    }

    /// The namespace's budget as the engine should see it now (None without a budget).
    pub fn measure(&self, namespace: &str, seen: &[Seen], now: Timestamp) -> Option<WindowBudget> {
        let b = self.budget_of(namespace)?;
        let written = self.written.lock().expect("ledger lock");
        let charges = Self::charges(&written, namespace, seen, None);
        Some(WindowBudget::at(b.limit_cents, b.window, &charges, now))
    }

    /// Every budgeted namespace's figures now, by namespace: each namespace with a budget of its own,
    /// and each namespace with DealPayments (in `seen` or written by this process) that only the `*`
    /// budget covers. The same computation as [`Ledger::measure`], so the gauges show what is paid by.
    pub fn figures(
        &self,
        seen: &BTreeMap<String, Vec<Seen>>,
        now: Timestamp,
    ) -> Vec<(String, WindowBudget)> {
        let mut namespaces: BTreeSet<String> = self
            .budgets
            .iter()
            .filter(|b| b.namespace != ANY_NAMESPACE)
            .map(|b| b.namespace.clone())
            .collect();
        if self.budget_of(ANY_NAMESPACE).is_some() {
            namespaces.extend(seen.keys().cloned());
            let written = self.written.lock().expect("ledger lock");
            namespaces.extend(written.values().map(|w| w.namespace.clone()));
        }
        namespaces
            .into_iter()
            .filter_map(|ns| {
                let b = self.measure(&ns, seen.get(&ns).map_or(&[], Vec::as_slice), now)?;
                Some((ns, b))
            })
            .collect()
    }

    /// Checks a status write for `uid` before it is sent: a new attempt in flight must fit in what the
    /// namespace has left, counting every other DealPayment and attempts admitted but not yet visible
    /// in the store. Admitted, it counts at once (the reservation); roll it back if the write fails.
    /// `stored_attempt` is the attempt in flight in the status being replaced, which is not new.
    pub fn admit(
        &self,
        namespace: &str,
        uid: &str,
        stored_attempt: Option<&str>,
        status: &DealPaymentStatus,
        seen: &[Seen],
        now: Timestamp,
    ) -> Result<Admission, String> {
        let mut written = self.written.lock().expect("ledger lock");
        let before = written.get(uid).cloned();
        let attempt = status.in_flight.as_ref();
        let new_attempt = attempt.filter(|a| {
            Some(a.id.as_str()) != stored_attempt
                && before.as_ref().and_then(|w| w.attempt.as_deref()) != Some(a.id.as_str())
        });
        if let (Some(a), Some(b)) = (new_attempt, self.budget_of(namespace)) {
            let Some(cents) = a.quoted_cents else {
                return Err(format!(
                    "attempt {} has no price and {namespace} has a budget: nothing is paid blind",
                    a.id
                ));
            };
            let others = Self::charges(&written, namespace, seen, Some(uid));
            let mut all = others.clone();
            all.extend(charge(status));
            let with = WindowBudget::at(b.limit_cents, b.window, &all, now);
            if with.spent_cents > b.limit_cents {
                let spent = WindowBudget::at(b.limit_cents, b.window, &others, now).spent_cents;
                return Err(format!(
                    "{namespace}'s budget is {} per {}: {} spent or reserved in the window by other DealPayments, this DealPayment {} with attempt {} ({}); not paying",
                    format_cents(b.limit_cents),
                    format_window(b.window),
                    format_cents(spent),
                    format_cents(with.spent_cents - spent),
                    a.id,
                    format_cents(cents)
                ));
            }
        }
        written.insert(
            uid.to_string(),
            Written {
                namespace: namespace.to_string(),
                charge: charge(status),
                attempt: attempt.map(|a| a.id.clone()),
                open: status
                    .open_attempts
                    .iter()
                    .map(|a| {
                        let c = Charge {
                            at: a.started_at.get(),
                            cents: a.quoted_cents.unwrap_or(0),
                        };
                        (a.id.clone(), c)
                    })
                    .collect(),
            },
        );
        self.prune(&mut written, now);
        Ok(Admission {
            uid: uid.to_string(),
            before,
        })
    }

    /// Undoes an admission whose write failed (nothing was written, nothing will be paid).
    pub fn roll_back(&self, a: Admission) {
        let mut written = self.written.lock().expect("ledger lock");
        match a.before {
            Some(w) => written.insert(a.uid, w),
            None => written.remove(&a.uid),
        };
    }

    /// Drops charges that left the longest window (the store's older view of them is out too); an
    /// entry without a charge stays, since it may be newer than a store still showing an attempt.
    fn prune(&self, written: &mut HashMap<String, Written>, now: Timestamp) {
        let longest = self
            .budgets
            .iter()
            .map(|b| b.window)
            .max()
            .unwrap_or_default();
        let Ok(span) = jiff::SignedDuration::try_from(longest) else {
            return;
        };
        let start = now.checked_sub(span).unwrap_or(Timestamp::MIN);
        written.retain(|_, w| {
            w.attempt.is_some() || !w.open.is_empty() || w.charge.is_none_or(|c| c.at > start)
        });
    }
}

/// The ledger with the caches it reads the other DealPayments from.
pub struct Budgets {
    pub ledger: Ledger,
    caches: Arc<Caches>,
}

impl Budgets {
    /// Budgets read against these caches (the controllers').
    pub fn new(budgets: Vec<NamespaceBudget>, caches: Arc<Caches>) -> Self {
        Self {
            ledger: Ledger::new(budgets),
            caches,
        }
    }

    /// Every DealPayment in the caches, by namespace.
    fn seen_all(&self) -> BTreeMap<String, Vec<Seen>> {
        self.seen_in(None)
    }

    /// Shares the budgets, publishing their figures as the namespace budget gauges of `metrics` at
    /// every scrape (held weakly: the gauges stop when the budgets are dropped).
    pub fn published(self, metrics: &Metrics) -> Arc<Self> {
        let budgets = Arc::new(self);
        let weak = Arc::downgrade(&budgets);
        metrics.watch_budgets(Box::new(move || {
            weak.upgrade().map_or_else(Vec::new, |b| {
                b.ledger.figures(&b.seen_all(), Timestamp::now())
            })
        }));
        budgets
    }

    /// What the namespace spent, from the journal: each attempt's receipt (Charged at its amount,
    /// Pending at its quote), whether its DealPayment still exists or not, so a deleted or deleted and
    /// re-created DealPayment counts the same after restarts and failovers. A DealPayment without any
    /// receipt (written before receipts existed) counts from its status.
    fn seen(&self, namespace: &str) -> Vec<Seen> {
        self.seen_in(Some(namespace))
            .remove(namespace)
            .unwrap_or_default()
    }

    /// [`Budgets::seen`] for one namespace or all, by namespace, in one pass over the caches.
    fn seen_in(&self, namespace: Option<&str>) -> BTreeMap<String, Vec<Seen>> {
        let mut out: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
        let mut journaled: HashSet<String> = HashSet::new();
        self.caches.for_each_receipt(namespace, |r| {
            journaled.insert(r.spec.deal_payment.uid.clone());
            let ns = r.metadata.namespace.clone().unwrap_or_default();
            out.entry(ns).or_default().push(Seen::from(r));
        });
        self.caches.for_each(namespace, |ns, _, dp| {
            if !journaled.contains(dp.uid.as_ref() as &str) {
                out.entry(ns.to_string()).or_default().push(Seen::from(dp));
            }
        });
        out
    }

    /// `base` with the namespace's budget as it stands now.
    pub fn policy(&self, base: &Policy, namespace: &str, now: Timestamp) -> Policy {
        if self.ledger.budget_of(namespace).is_none() {
            return *base;
        }
        Policy {
            namespace_budget: self.ledger.measure(namespace, &self.seen(namespace), now),
            ..*base
        }
    }

    /// [`Ledger::admit`] against the stores.
    pub fn admit(
        &self,
        dp: &DealPayment,
        status: &DealPaymentStatus,
        now: Timestamp,
    ) -> Result<Option<Admission>, String> {
        let ns = dp.namespace().unwrap_or_default();
        if self.ledger.budget_of(&ns).is_none() {
            return Ok(None);
        }
        let stored = dp.status.as_ref().and_then(|s| s.in_flight.as_ref());
        let seen = self.seen(&ns);
        let uid = dp.uid().unwrap_or_else(|| dp.name_any());
        self.ledger
            .admit(&ns, &uid, stored.map(|a| a.id.as_str()), status, &seen, now)
            .map(Some)
    }
}

#[cfg(test)]
mod tests;
