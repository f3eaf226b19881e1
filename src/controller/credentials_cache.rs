//! Resolved credentials kept between reconciles.
//!
//! Every payment writes its status three times and each write's watch event reconciles it again; without
//! a cache each of those reconciles read the Secret from the apiserver (2.4 Secret reads per payment in
//! `scripts/bench`). The Secret metadata watch that already re-triggers reconciles on a change also
//! invalidates this cache, so a changed Secret is read again exactly when it used to matter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::{Client, ResourceExt};

use super::credentials::{DefaultCredentials, resolve};
use crate::api::DealPayment;
use crate::engine::CredentialsState;
use crate::tencent::Credentials;

/// A bound on staleness should a Secret event be missed (a watch gap before its relist).
pub const MAX_AGE: Duration = Duration::from_secs(60);

type Key = (String, Option<String>);

#[derive(Default)]
struct Inner {
    /// Advanced by every invalidation; a read that overlapped one is not stored.
    epoch: u64,
    entries: HashMap<Key, (Instant, CredentialsState, Option<Credentials>)>,
}

/// Resolved credentials by (namespace, `secretRef` name); only usable ones are kept.
#[derive(Default)]
pub struct CredentialsCache {
    inner: Mutex<Inner>,
}

impl CredentialsCache {
    /// Forgets everything: called for every Secret event, before the reconciles it triggers.
    pub fn invalidate(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.entries.clear();
    }

    /// [`resolve`], from the cache when a usable answer younger than [`MAX_AGE`] is there.
    pub async fn resolve(
        &self,
        client: &Client,
        defaults: &DefaultCredentials,
        dp: &DealPayment,
    ) -> (CredentialsState, Option<Credentials>) {
        let key = key(dp);
        let epoch = {
            let inner = self.lock();
            if let Some((at, state, creds)) = inner.entries.get(&key)
                && at.elapsed() < MAX_AGE
            {
                return (state.clone(), creds.clone());
            }
            inner.epoch
        };
        let (state, creds) = resolve(client, defaults, dp).await;
        self.store(epoch, key, &state, &creds);
        (state, creds)
    }

    fn store(&self, epoch: u64, key: Key, state: &CredentialsState, creds: &Option<Credentials>) {
        if !matches!(state, CredentialsState::Available { .. }) {
            // A missing or unreadable Secret is read again next time: its fix may not bring a
            // Secret event this cache would see (e.g. RBAC granted).
            return;
        }
        let mut inner = self.lock();
        if inner.epoch == epoch {
            inner
                .entries
                .insert(key, (Instant::now(), state.clone(), creds.clone()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The namespace decides which defaults apply; the `secretRef` name which Secret.
fn key(dp: &DealPayment) -> Key {
    (
        dp.namespace().unwrap_or_default(),
        dp.spec
            .credentials
            .as_ref()
            .map(|c| c.secret_ref.name.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn available(v: &str) -> CredentialsState {
        CredentialsState::Available { version: v.into() }
    }

    fn cached(cache: &CredentialsCache, key: &Key) -> Option<CredentialsState> {
        cache.lock().entries.get(key).map(|e| e.1.clone())
    }

    #[test]
    fn a_read_that_overlapped_a_secret_event_is_not_kept() {
        let cache = CredentialsCache::default();
        let key: Key = ("ns".into(), Some("tencent".into()));
        let before = cache.lock().epoch;
        cache.invalidate(); // the Secret changed while the old version was being read
        cache.store(before, key.clone(), &available("ns/tencent@1"), &None);
        assert_eq!(cached(&cache, &key), None);

        let now = cache.lock().epoch;
        cache.store(now, key.clone(), &available("ns/tencent@2"), &None);
        assert_eq!(cached(&cache, &key), Some(available("ns/tencent@2")));
        cache.invalidate();
        assert_eq!(cached(&cache, &key), None);
    }

    #[test]
    fn unusable_credentials_are_read_again() {
        let cache = CredentialsCache::default();
        let key: Key = ("ns".into(), Some("tencent".into()));
        let missing = CredentialsState::Unavailable {
            reason: crate::api::Reason::SecretNotFound,
            message: "Secret ns/tencent not found".into(),
        };
        let epoch = cache.lock().epoch;
        cache.store(epoch, key.clone(), &missing, &None);
        assert_eq!(cached(&cache, &key), None);
    }
}
