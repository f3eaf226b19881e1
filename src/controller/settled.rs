//! Settled DealPayments leave the reflector store for a small index of what is still read about them.
//!
//! Most DealPayments in a long-lived cluster are paid and delivered, and the operator watches them for
//! its lifetime. A settled object has nothing left to decide (`Ready=True` for its generation, no attempt
//! or lookup open, not being deleted), so it is never reconciled; what is still read about it is what the
//! gauges and the namespace budgets count. Kept as a whole typed object it cost about 1.7 KB in the
//! store (measured with a counting allocator); as a [`Summary`] it is about a tenth of that.
//!
//! The watch's events are routed around kube-runtime's reflector: a settled object goes to the index and
//! the store is told to drop it ([`Settled::before_store`]); an object with work again (a spec change,
//! a deletion) arrives whole from the watch, enters the store, and only then leaves the index
//! ([`Settled::after_store`]). Between those steps a reader may see one object in both; readers keep the
//! index's (see `caches.rs`), never neither.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::api::DealPayment;
use crate::engine::conditions::{READY, find};
use crate::engine::spend::{Charge, charge};

/// True when nothing is left to decide for this object's generation.
pub fn is_settled(dp: &DealPayment) -> bool {
    let Some(st) = &dp.status else {
        return false;
    };
    let generation = dp.metadata.generation;
    dp.metadata.deletion_timestamp.is_none()
        && generation.is_some()
        && st.observed_generation == generation
        && st.in_flight.is_none()
        && st.pending_lookup.is_none()
        && find(&st.conditions, READY).is_some_and(|c| {
            c.status == "True" && Some(c.observed_generation.unwrap_or(0)) == generation
        })
}

/// What the gauges and the namespace budgets read about one DealPayment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub uid: Box<str>,
    /// What it spent or may have spent, and since when (the budget window's view).
    pub charge: Option<Charge>,
    /// `status.totalCost` in cents (`dealpay_spent_total`).
    pub spent_cents: Option<i64>,
    /// The `Ready` condition's status and reason, if it has one.
    pub ready: Option<(Box<str>, Box<str>)>,
    pub dry_run: bool,
    pub unknown_outcomes: u32,
}

impl Summary {
    /// The summary of a whole object.
    pub fn of(dp: &DealPayment) -> Self {
        let st = dp.status.as_ref();
        Self {
            uid: dp.uid().unwrap_or_default().into(),
            charge: st.and_then(charge),
            spent_cents: st
                .and_then(|s| s.total_cost.as_deref())
                .and_then(crate::api::money::parse_cents),
            ready: st
                .and_then(|s| find(&s.conditions, READY))
                .map(|c| (c.status.as_str().into(), c.reason.as_str().into())),
            dry_run: dp.spec.dry_run,
            unknown_outcomes: st.map_or(0, |s| s.unknown_outcomes),
        }
    }
}

/// What one list of a watch found, logged when it is complete: reconciles start only then.
#[derive(Debug)]
pub struct Listing {
    started: std::time::Instant,
    settled: usize,
    open: usize,
}

impl Default for Listing {
    fn default() -> Self {
        Self {
            started: std::time::Instant::now(),
            settled: 0,
            open: 0,
        }
    }
}

impl Listing {
    /// Counts what [`Settled::before_store`] passed on into the list in progress (nothing passed on is
    /// a listed object it indexed as settled); logs the list when it is done.
    pub fn note(&mut self, scope: &str, routed: Option<&Event<DealPayment>>) {
        match routed {
            Some(Event::Init) => *self = Self::default(),
            None => self.settled += 1,
            Some(Event::InitApply(_)) => self.open += 1,
            Some(Event::InitDone) => tracing::info!(
                scope,
                settled = self.settled,
                open = self.open,
                ms = self.started.elapsed().as_millis() as u64,
                "listed DealPayments"
            ),
            _ => {}
        }
    }
}

/// namespace -> name -> summary.
type Index = HashMap<String, HashMap<Box<str>, Summary>>;

/// The settled DealPayments of one watch (one namespace, or the whole cluster).
#[derive(Debug, Default)]
pub struct Settled {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    live: Index,
    /// Built during a (re)list and swapped in at its end, as the reflector does with its store.
    relist: Option<Index>,
}

fn key(dp: &DealPayment) -> (String, Box<str>) {
    (dp.namespace().unwrap_or_default(), dp.name_any().into())
}

fn insert(index: &mut Index, dp: &DealPayment) {
    let (ns, name) = key(dp);
    index.entry(ns).or_default().insert(name, Summary::of(dp));
}

fn remove(index: &mut Index, dp: &DealPayment) {
    let (ns, name) = key(dp);
    if let Some(names) = index.get_mut(&ns) {
        names.remove(&name);
        if names.is_empty() {
            index.remove(&ns);
        }
    }
}

impl Settled {
    /// Routes one watch event before the reflector: a settled object is indexed, and the store is told
    /// to drop it (an `Apply` becomes a `Delete`; an `InitApply` is not passed on). Every other event
    /// passes unchanged. A real `Delete` removes the object from the index here.
    pub fn before_store(&self, event: Event<DealPayment>) -> Option<Event<DealPayment>> {
        let mut inner = self.inner.lock().expect("settled lock");
        match event {
            Event::Init => {
                inner.relist = Some(Index::new());
                Some(Event::Init)
            }
            Event::InitApply(dp) if is_settled(&dp) => {
                insert(inner.relist.get_or_insert_default(), &dp);
                None
            }
            Event::Apply(dp) if is_settled(&dp) => {
                insert(&mut inner.live, &dp);
                Some(Event::Delete(dp))
            }
            Event::Delete(dp) => {
                remove(&mut inner.live, &dp);
                Some(Event::Delete(dp))
            }
            other => Some(other),
        }
    }

    /// After the reflector: an object it stored (work left) leaves the index, and a finished (re)list
    /// replaces the index, each only once the store shows the same.
    pub fn after_store(&self, event: &Event<DealPayment>) {
        let mut inner = self.inner.lock().expect("settled lock");
        match event {
            Event::Apply(dp) => remove(&mut inner.live, dp),
            Event::InitDone => inner.live = inner.relist.take().unwrap_or_default(),
            _ => {}
        }
    }

    /// True when `dp` (same uid) is in the index: readers prefer the index's view.
    pub fn holds(&self, dp: &DealPayment) -> bool {
        let (ns, name) = key(dp);
        let uid = dp.uid().unwrap_or_default();
        let inner = self.inner.lock().expect("settled lock");
        inner
            .live
            .get(&ns)
            .and_then(|names| names.get(&name))
            .is_some_and(|s| *s.uid == *uid)
    }

    /// Calls `f(namespace, name, summary)` for every indexed object (of `namespace`, if given).
    pub fn for_each(&self, namespace: Option<&str>, mut f: impl FnMut(&str, &str, &Summary)) {
        let inner = self.inner.lock().expect("settled lock");
        for (ns, names) in &inner.live {
            if namespace.is_some_and(|want| want != ns) {
                continue;
            }
            for (name, s) in names {
                f(ns, name, s);
            }
        }
    }

    /// Objects indexed.
    #[cfg(test)]
    fn len(&self) -> usize {
        let inner = self.inner.lock().expect("settled lock");
        inner.live.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
pub(crate) mod tests;
