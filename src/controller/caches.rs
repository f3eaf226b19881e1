//! What this process knows of every watched DealPayment: per watch, the reflector store (objects with
//! work left, whole) and the settled index (summaries). Budgets and gauges read both through here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use super::settled::{Settled, Summary};
use crate::api::{DealPayment, PaymentReceipt};

/// One watch's caches.
#[derive(Clone)]
pub struct Scope {
    /// Its namespace, or "all namespaces".
    pub name: String,
    pub store: Store<DealPayment>,
    pub settled: Arc<Settled>,
}

/// The caches of the watches this leadership started.
#[derive(Default)]
pub struct Caches {
    scopes: Mutex<Vec<Scope>>,
    /// Per watch, the PaymentReceipts (the journal budgets count once a DealPayment is gone).
    receipts: Mutex<Vec<Store<PaymentReceipt>>>,
}

impl Caches {
    /// Forgets every watch's cache (a new leadership starts new watches).
    pub fn clear(&self) {
        self.scopes.lock().expect("caches lock").clear();
        self.receipts.lock().expect("caches lock").clear();
    }

    pub fn add_receipts(&self, store: Store<PaymentReceipt>) {
        self.receipts.lock().expect("caches lock").push(store);
    }

    /// Calls `f` once per cached PaymentReceipt (of `namespace`, if given).
    pub fn for_each_receipt(&self, namespace: Option<&str>, mut f: impl FnMut(&PaymentReceipt)) {
        let stores = self.receipts.lock().expect("caches lock").clone();
        for store in &stores {
            for r in store.state() {
                if namespace.is_none_or(|want| r.namespace().as_deref() == Some(want)) {
                    f(&r);
                }
            }
        }
    }

    pub fn add(&self, scope: Scope) {
        self.scopes.lock().expect("caches lock").push(scope);
    }

    /// Waits until every watch has listed once, or `within` has passed; returns the scopes still
    /// listing then.
    pub async fn wait_filled(&self, within: Duration) -> Vec<String> {
        let scopes = self.scopes.lock().expect("caches lock").clone();
        let all = futures::future::join_all(scopes.iter().map(|s| s.store.wait_until_ready()));
        if tokio::time::timeout(within, all).await.is_ok() {
            return Vec::new();
        }
        scopes
            .iter()
            .filter(|s| s.store.wait_until_ready().now_or_never().is_none())
            .map(|s| s.name.clone())
            .collect()
    }

    /// Calls `f(namespace, name, summary)` once per cached DealPayment (of `namespace`, if given). An
    /// object caught between the store and the index, while its watch event moves it, counts as the
    /// index has it: the store's copy is the older one when it settles, and shows the same charge when
    /// it gets work again.
    pub fn for_each(&self, namespace: Option<&str>, mut f: impl FnMut(&str, &str, &Summary)) {
        let scopes = self.scopes.lock().expect("caches lock").clone();
        for scope in &scopes {
            scope.settled.for_each(namespace, &mut f);
            for dp in scope.store.state() {
                let ns = dp.namespace().unwrap_or_default();
                if namespace.is_some_and(|want| want != ns) || scope.settled.holds(&dp) {
                    continue;
                }
                f(&ns, &dp.name_any(), &Summary::of(&dp));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::controller::settled::tests::{open, paid};

    fn seen(caches: &Caches, namespace: Option<&str>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        caches.for_each(namespace, |ns, name, _| out.push((ns.into(), name.into())));
        out.sort();
        out
    }

    #[test]
    fn each_object_is_read_once_from_store_or_index() {
        let (store, mut writer) = reflector::store();
        let settled = Arc::new(Settled::default());
        let caches = Caches::default();
        caches.add(Scope {
            name: "n".into(),
            store,
            settled: settled.clone(),
        });
        for ev in [Event::Apply(paid("a", "n")), Event::Apply(open("b", "n"))] {
            if let Some(ev) = settled.before_store(ev) {
                writer.apply_watcher_event(&ev);
                settled.after_store(&ev);
            }
        }
        // The moment between the index taking `c` and the store dropping its older copy.
        writer.apply_watcher_event(&Event::Apply(open("c", "m")));
        settled.before_store(Event::Apply(paid("c", "m")));
        let all = seen(&caches, None);
        assert_eq!(
            all,
            [("m", "c"), ("n", "a"), ("n", "b")].map(|(a, b)| (a.into(), b.into()))
        );
        assert_eq!(seen(&caches, Some("n")).len(), 2);
        let mut charged = Vec::new();
        caches.for_each(Some("m"), |_, _, s| charged.push(s.charge.is_some()));
        assert_eq!(charged, [true], "the index's view, with the charge");
    }

    #[tokio::test(start_paused = true)]
    async fn reconciles_wait_for_every_watch_to_list_but_not_forever() {
        let caches = Caches::default();
        let mut writers = Vec::new();
        for name in ["fast", "slow"] {
            let (store, writer) = reflector::store();
            caches.add(Scope {
                name: name.into(),
                store,
                settled: Default::default(),
            });
            writers.push(writer);
        }
        writers[0].apply_watcher_event(&Event::InitDone);
        let started = tokio::time::Instant::now();
        let late = caches.wait_filled(Duration::from_secs(10)).await;
        assert_eq!(late, ["slow"]);
        assert_eq!(started.elapsed(), Duration::from_secs(10));

        writers[1].apply_watcher_event(&Event::InitDone);
        let started = tokio::time::Instant::now();
        assert!(caches.wait_filled(Duration::from_secs(10)).await.is_empty());
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "no wait once all have listed"
        );
    }
}
