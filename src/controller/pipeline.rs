//! The order that protects the money, independent of Kubernetes and Tencent clients:
//! decide → persist (guarded by the version decided on) → check the Lease → call → fold the answer →
//! persist, until the engine asks to wait.
//!
//! An answer is never dropped: a fold whose write meets a newer status re-reads it and folds the same
//! answer into that, so a stale cache can neither lose a fact nor overwrite a newer one.

use std::time::Duration;

use super::error::Error;
use crate::api::{Attempt, DealPaymentSpec, DealPaymentStatus};
use crate::driver::decide_now;
use crate::engine::receipts::SettledAttempt;
use crate::engine::{Action, CredentialsState, Decision, Event, Note, NoteType, Policy};

/// Reads and writes one DealPayment's status.
pub trait StatusStore {
    /// Writes `status` only if the object is still at `expect_rv`; returns the new resourceVersion
    /// or [`Error::Conflict`].
    fn write(
        &self,
        status: &DealPaymentStatus,
        expect_rv: Option<&str>,
    ) -> impl Future<Output = Result<String, Error>> + Send;
    /// Reads the object from the API server (not a cache): its status, resourceVersion and spec.
    fn read(&self) -> impl Future<Output = Result<Fresh, Error>> + Send;
    /// Publishes an Event for a note (best effort, never blocks the payment).
    fn publish(&self, note: &Note);
    /// Journals that PayDeals is about to be called for `attempt` (its PaymentReceipt, Pending), after
    /// the write-ahead record and before the call; the call is made only if this succeeds, and
    /// [`Error::Conflict`] means another writer holds this attempt's receipt.
    fn open_receipt(&self, _attempt: &Attempt) -> impl Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }
    /// Settles the receipts of attempts whose outcome is known, before `status` (which no longer lists
    /// them open) is written; a receipt already settled is left as it is.
    fn settle_receipts(
        &self,
        _settled: &[SettledAttempt],
        _status: &DealPaymentStatus,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }
}

/// The object as the API server holds it now: a decision after a conflict is made on all of it, so a
/// spec edited during a call (suspended, capped lower, an order removed, a dry run) is obeyed at once.
#[derive(Debug, Clone)]
pub struct Fresh {
    pub status: Option<DealPaymentStatus>,
    pub resource_version: String,
    pub spec: DealPaymentSpec,
    /// `metadata.generation`.
    pub generation: i64,
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
    let mut rec = Record {
        store,
        start: &start,
        spec: start.spec.clone(),
        generation: start.generation,
        stored: start.status.clone(),
        rv: start.resource_version.clone(),
        unsaved: Vec::new(),
        to_settle: Vec::new(),
    };
    let mut event = Event::Observe;
    let mut calls = 0;
    loop {
        if matches!(event, Event::Observe) && !caller.may_pay() {
            return Ok(Next::After(NOT_NOW));
        }
        let hold = calls >= MAX_CALLS || !caller.may_start();
        let policy = if hold { policy.holding() } else { *policy };
        let d = rec.decide(event, &policy, hold).await?;
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
        if let Action::Pay { attempt, .. } = &d.action {
            match store.open_receipt(attempt).await {
                Ok(()) => {}
                Err(Error::Conflict) => {
                    tracing::warn!(attempt = %attempt.id, "another writer holds this attempt's receipt; not calling");
                    return Ok(Next::After(NOT_NOW));
                }
                Err(e) => return Err(e),
            }
        }
        let Some(answer) = caller.perform(&d.action).await else {
            // The decision to look up was not written on its own (see `Record`).
            rec.flush(&policy).await?;
            return Ok(Next::After(NOT_NOW));
        };
        event = answer;
    }
}

/// The status as this reconcile knows it, and the answers folded into it but not written yet.
///
/// A decision whose next step is a lookup made at once is not written on its own: it is written with
/// the lookup's answer (measured: one status write, one watch event and one reconcile less per
/// payment). Losing it loses nothing: the written status still holds the attempt in flight or the
/// pending lookup, which is looked up again before any new attempt.
struct Record<'a, S> {
    store: &'a S,
    start: &'a Start<'a>,
    /// The spec decisions are made on: the one read at the start, then the one of each fresh read.
    spec: DealPaymentSpec,
    generation: i64,
    stored: Option<DealPaymentStatus>,
    /// The version `stored` was read or last written at.
    rv: Option<String>,
    /// Answers folded into `stored` since it was last written, oldest first, with their notes.
    unsaved: Vec<(Event, Vec<Note>)>,
    /// Attempts settled by the decisions in `stored` whose receipts are not written yet.
    to_settle: Vec<SettledAttempt>,
}

impl<S: StatusStore> Record<'_, S> {
    /// Decides on `event` and stores the decision unless it may wait for the next answer.
    async fn decide(
        &mut self,
        event: Event,
        policy: &Policy,
        hold: bool,
    ) -> Result<Decision, Error> {
        let d = self.fold(event.clone(), policy);
        self.to_settle.extend(d.settled.iter().cloned());
        let answered = !matches!(event, Event::Observe);
        let defer = answered && !hold && matches!(d.action, Action::LookUp { .. });
        if self.stored.as_ref() == Some(&d.status) && self.unsaved.is_empty() {
            publish_all(self.store, &d.notes);
            return Ok(d);
        }
        self.stored = Some(d.status.clone());
        if answered {
            self.unsaved.push((event, d.notes.clone()));
        }
        if defer {
            return Ok(d);
        }
        if !answered {
            // Nothing to refold: a conflict means the decision was made on an old status.
            self.write_once().await?;
            publish_all(self.store, &d.notes);
            return Ok(d);
        }
        Ok(self.flush(policy).await?.unwrap_or(d))
    }

    fn fold(&self, event: Event, policy: &Policy) -> Decision {
        decide_now(
            &self.spec,
            self.stored.as_ref(),
            self.generation,
            self.start.credentials,
            event,
            policy,
        )
    }

    async fn write_once(&mut self) -> Result<(), Error> {
        let st = self.stored.as_ref().expect("a decided status");
        if !self.to_settle.is_empty() {
            // The journal first: a status that no longer lists an attempt open never comes before its
            // settled receipt (settling twice is harmless, losing a settlement is not).
            self.store.settle_receipts(&self.to_settle, st).await?;
        }
        self.rv = Some(self.store.write(st, self.rv.as_deref()).await?);
        self.to_settle.clear();
        Ok(())
    }

    /// Writes what is unsaved; on a conflict, folds every unsaved answer again into a fresh read, so a
    /// stale cache can neither lose a fact nor overwrite a newer one. Returns the decision on the last
    /// answer when it was folded again.
    async fn flush(&mut self, policy: &Policy) -> Result<Option<Decision>, Error> {
        if self.unsaved.is_empty() {
            return Ok(None);
        }
        let (mut tries, mut refolded) = (0, None);
        loop {
            match self.write_once().await {
                Ok(()) => break,
                Err(Error::Conflict) if tries < MAX_REFOLDS => {
                    tries += 1;
                    tracing::debug!(tries, "status changed while folding answers; folding again");
                    let fresh = self.store.read().await?;
                    (self.stored, self.rv) = (fresh.status, Some(fresh.resource_version));
                    (self.spec, self.generation) = (fresh.spec, fresh.generation);
                    self.to_settle.clear();
                    for i in 0..self.unsaved.len() {
                        let d = self.fold(self.unsaved[i].0.clone(), policy);
                        self.to_settle.extend(d.settled.iter().cloned());
                        self.unsaved[i].1 = d.notes.clone();
                        self.stored = Some(d.status.clone());
                        refolded = Some(d);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let notes = std::mem::take(&mut self.unsaved)
            .into_iter()
            .flat_map(|(_, notes)| notes);
        publish_all(self.store, &one_normal(notes));
        Ok(refolded)
    }
}

/// The notes of answers written together, with their Normal notes joined into the first: a payment and
/// its confirmed delivery are one Event, not two requests to the API server. Warnings stay apart.
fn one_normal(notes: impl Iterator<Item = Note>) -> Vec<Note> {
    let mut out: Vec<Note> = Vec::new();
    for n in notes {
        let first = out.iter_mut().find(|o| o.type_ == NoteType::Normal);
        match first {
            Some(o) if n.type_ == NoteType::Normal => {
                o.message.push_str("; ");
                o.message.push_str(&n.message);
            }
            _ => out.push(n),
        }
    }
    out
}

fn publish_all<S: StatusStore>(store: &S, notes: &[Note]) {
    for n in notes {
        store.publish(n);
    }
}

#[cfg(test)]
mod tests;
