//! The order that protects the money, independent of Kubernetes and Tencent clients:
//! decide → persist (guarded by the version decided on) → check the Lease → call → fold the answer →
//! persist, until the engine asks to wait.
//!
//! An answer is never dropped: a fold whose write meets a newer status re-reads it and folds the same
//! answer into that, so a stale cache can neither lose a fact nor overwrite a newer one.

use std::time::Duration;

use super::error::Error;
use crate::api::{DealPaymentSpec, DealPaymentStatus};
use crate::driver::decide_now;
use crate::engine::{Action, CredentialsState, Decision, Event, Note, Policy};

/// Reads and writes one DealPayment's status.
pub trait StatusStore {
    /// Writes `status` only if the object is still at `expect_rv`; returns the new resourceVersion
    /// or [`Error::Conflict`].
    fn write(
        &self,
        status: &DealPaymentStatus,
        expect_rv: Option<&str>,
    ) -> impl Future<Output = Result<String, Error>> + Send;
    /// Reads the status and resourceVersion from the API server (not a cache).
    fn read(
        &self,
    ) -> impl Future<Output = Result<(Option<DealPaymentStatus>, String), Error>> + Send;
    /// Publishes an Event for a note (best effort, never blocks the payment).
    fn publish(&self, note: &Note);
}

/// Carries out the calls an action asks for.
pub trait Caller {
    /// The answer of PayDeals or DescribeDealsByCond; None for actions that call nothing.
    fn perform(&self, action: &Action) -> impl Future<Output = Option<Event>> + Send;
    /// True while this replica may make a call that spends money (the Lease).
    fn may_pay(&self) -> bool;
    /// False once the caller wants no new calls started (e.g. a deadline passed); answers still fold.
    fn may_start(&self) -> bool {
        true
    }
}

/// Calls one reconcile may make before yielding to other objects. Folding an answer is never cut
/// short by it: past the budget the engine folds and records, but starts nothing new.
pub const MAX_CALLS: usize = 8;
/// Re-reads after a conflict while folding an answer before giving up (the answer is then still
/// recoverable: the attempt is in the status and will be looked up).
pub const MAX_REFOLDS: usize = 5;

/// Where one reconcile starts.
pub struct Start<'a> {
    pub spec: &'a DealPaymentSpec,
    /// `metadata.generation`.
    pub generation: i64,
    /// The status as read (possibly from a stale cache).
    pub status: Option<DealPaymentStatus>,
    /// The resourceVersion it was read at.
    pub resource_version: Option<String>,
    /// The credentials' state.
    pub credentials: &'a CredentialsState,
}

/// How the reconcile ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Decide again after this long.
    After(Duration),
    /// Wait for a change of the object or the Secret.
    Await,
}

/// Pause after yielding the step budget or when a call cannot be made now.
pub const YIELD: Duration = Duration::from_millis(100);
/// Pause when this replica may not pay or has no credentials to call with.
pub const NOT_NOW: Duration = Duration::from_secs(5);

/// Runs the protocol until the engine asks to wait.
pub async fn run<S: StatusStore, C: Caller>(
    store: &S,
    caller: &C,
    start: Start<'_>,
    policy: &Policy,
) -> Result<Next, Error> {
    let mut stored = start.status.clone();
    let mut rv = start.resource_version.clone();
    let mut event = Event::Observe;
    let mut calls = 0;
    loop {
        if matches!(event, Event::Observe) && !caller.may_pay() {
            return Ok(Next::After(NOT_NOW));
        }
        let hold = calls >= MAX_CALLS || !caller.may_start();
        let policy = if hold { policy.holding() } else { *policy };
        let d = persist(store, &start, &mut stored, &mut rv, event, &policy).await?;
        match &d.action {
            Action::Pay { .. } if !caller.may_pay() => {
                // Recorded but not called: the next leader settles the attempt by lookup.
                tracing::warn!("lease lost before PayDeals; not calling");
                return Ok(Next::After(NOT_NOW));
            }
            Action::Pay { .. } | Action::LookUp { .. } if hold => return Ok(Next::After(YIELD)),
            Action::Pay { .. } | Action::LookUp { .. } => calls += 1,
            Action::RequeueAfter(d) if hold && d.is_zero() => return Ok(Next::After(YIELD)),
            Action::RequeueAfter(d) => return Ok(Next::After((*d).max(Duration::from_millis(50)))),
            Action::AwaitChange { recheck: Some(d) } => return Ok(Next::After(*d)),
            Action::AwaitChange { recheck: None } | Action::Done => return Ok(Next::Await),
        }
        let Some(answer) = caller.perform(&d.action).await else {
            return Ok(Next::After(NOT_NOW));
        };
        event = answer;
    }
}

/// Decides on `event` and stores the decision; an answered event that meets a conflict is folded
/// again into a fresh read.
async fn persist<S: StatusStore>(
    store: &S,
    start: &Start<'_>,
    stored: &mut Option<DealPaymentStatus>,
    rv: &mut Option<String>,
    event: Event,
    policy: &Policy,
) -> Result<Decision, Error> {
    let answered = !matches!(event, Event::Observe);
    let mut tries = 0;
    loop {
        let d = decide_now(
            start.spec,
            stored.as_ref(),
            start.generation,
            start.credentials,
            event.clone(),
            policy,
        );
        if stored.as_ref() == Some(&d.status) {
            publish_all(store, &d);
            return Ok(d);
        }
        match store.write(&d.status, rv.as_deref()).await {
            Ok(new_rv) => {
                *rv = Some(new_rv);
                *stored = Some(d.status.clone());
                publish_all(store, &d);
                return Ok(d);
            }
            Err(Error::Conflict) if answered && tries < MAX_REFOLDS => {
                tries += 1;
                let (fresh, fresh_rv) = store.read().await?;
                tracing::debug!(
                    tries,
                    "status changed while folding an answer; folding again"
                );
                *stored = fresh;
                *rv = Some(fresh_rv);
            }
            Err(e) => return Err(e),
        }
    }
}

fn publish_all<S: StatusStore>(store: &S, d: &Decision) {
    for n in &d.notes {
        store.publish(n);
    }
}

#[cfg(test)]
mod tests;
