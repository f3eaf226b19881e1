//! The payment engine: given spec, status, time and the outcome of the last call, the next status and action.
//!
//! Pure: no IO, no clock, no randomness (time, jitter and the next attempt id are inputs), no Kubernetes
//! client. The controller and `dealpay pay` both drive it, so the money logic exists once.

mod apply;
pub mod backoff;
pub mod conditions;
mod lookup;
mod plan;
pub mod receipts;
pub mod spend;
mod time;

use std::time::Duration;

use jiff::Timestamp;

use dealpay_api::Reason;
use dealpay_api::{Attempt, DealPaymentSpec, DealPaymentStatus, IdKind, LookupReason, Time};
use tencent_billing::CallError;
use tencent_billing::models::{Deal, PayDealsRequest, PayDealsResponse};

pub use backoff::{Curve, Policy, SIGNATURE_TTL};
pub use lookup::{Verdict, verdict};
pub use spend::{Charge, WindowBudget};
pub use time::{api_time, rfc3339};

/// What happened since the status was last decided.
#[derive(Debug, Clone)]
pub enum Event {
    /// Nothing new: a watch event, a requeue, a restart.
    Observe,
    /// The outcome of a PayDeals call; `attempt` is the one the call was made for, so an answer that
    /// arrives after the status moved on (another replica, a re-read) still folds in what it proves.
    Paid {
        /// The attempt the call was made for.
        attempt: Attempt,
        /// What PayDeals answered.
        result: Result<PayDealsResponse, CallError>,
    },
    /// The outcome of looking up `status.pendingLookup` (every deal found, any page); `asked` is the
    /// lookup the call was made for, so an answer is never folded into a different pending lookup.
    LookedUp {
        /// The lookup the call was made for, and when it was sent.
        asked: Asked,
        /// What DescribeDealsByCond answered.
        result: Result<LookupAnswer, CallError>,
    },
}

/// The pending lookup a DescribeDealsByCond call was made for (see [`Action::asked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub kind: IdKind,
    pub ids: Vec<String>,
    /// `pendingLookup.since` when the call was decided.
    pub since: Time,
    /// `pendingLookup.reason` when the call was decided.
    pub reason: LookupReason,
    /// When the first query was sent: an answer proves nothing about what happened after it.
    pub at: Timestamp,
}

/// Deals found by DescribeDealsByCond for the pending ids.
#[derive(Debug, Clone, Default)]
pub struct LookupAnswer {
    /// Deals returned (any status); when the action asked for `list_big_deals`, also every sub-order
    /// of the found deals' big deals (each deal once).
    pub deals: Vec<Deal>,
    /// RequestId of the last lookup call.
    pub request_id: String,
}

/// Whether API credentials can be had for this resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsState {
    /// Usable; `version` changes when they do (e.g. the Secret's resourceVersion).
    Available {
        /// Opaque version of the credentials, never their value.
        version: String,
    },
    /// Not usable, with a reason (e.g. `SecretNotFound`) and a message naming what to fix.
    Unavailable {
        reason: Reason,
        /// What is wrong, without any secret value.
        message: String,
    },
}

/// Everything one decision depends on.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The desired payment.
    pub spec: &'a DealPaymentSpec,
    /// The stored status (None for a new resource).
    pub status: Option<&'a DealPaymentStatus>,
    /// `metadata.generation`.
    pub generation: i64,
    /// The current time.
    pub now: Timestamp,
    /// A random number in [0, 1) for backoff jitter.
    pub jitter: f64,
    /// A fresh unique id, used if this decision starts a PayDeals attempt.
    pub attempt_id: String,
    /// The credentials this resource would use.
    pub credentials: CredentialsState,
    /// What happened.
    pub event: Event,
}

/// The next step for the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Persist the returned status (it holds the write-ahead `inFlight` record) and only then call PayDeals.
    Pay {
        /// The recorded attempt.
        attempt: Attempt,
        /// The request to send.
        request: PayDealsRequest,
    },
    /// Call DescribeDealsByCond (with StatusSet) for each id over the window, then decide on `Event::LookedUp`.
    LookUp {
        /// Kind of the ids.
        kind: IdKind,
        /// Ids to look up.
        ids: Vec<String>,
        /// Window start, `YYYY-MM-DD HH:MM:SS` (UTC+8, as the API uses).
        start_time: String,
        /// Window end.
        end_time: String,
        /// Then list, for every distinct non-empty `BigDealId` of the deals found, that big deal's
        /// sub-orders (one query each, by `BigDealId`): a dry run of sub-order ids checks with them
        /// that no unpaid sub-order of the same big deal is left out.
        list_big_deals: bool,
        /// `pendingLookup.since` of the lookup decided on (binds the answer, see [`Asked`]).
        since: Time,
        /// `pendingLookup.reason` of the lookup decided on.
        reason: LookupReason,
    },
    /// Decide again after this long (backoff).
    RequeueAfter(Duration),
    /// Nothing to do until the spec or the credentials change; `recheck` bounds the wait where useful.
    AwaitChange {
        /// Optional safety requeue.
        recheck: Option<Duration>,
    },
    /// Settled: every order is paid.
    Done,
}

impl Action {
    /// For a `LookUp`, the identity its answer carries back, sent at `at`.
    pub fn asked(&self, at: Timestamp) -> Option<Asked> {
        match self {
            Action::LookUp {
                kind,
                ids,
                since,
                reason,
                ..
            } => Some(Asked {
                kind: *kind,
                ids: ids.clone(),
                since: *since,
                reason: *reason,
                at,
            }),
            _ => None,
        }
    }
}

/// Severity of a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteType {
    /// Progress.
    Normal,
    /// Something needs attention.
    Warning,
}

/// Something worth a Kubernetes Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Normal or Warning.
    pub type_: NoteType,
    pub reason: Reason,
    /// Message, never containing a secret.
    pub message: String,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The new status to persist.
    pub status: DealPaymentStatus,
    /// The next step.
    pub action: Action,
    /// Events to emit.
    pub notes: Vec<Note>,
    /// Attempts whose outcome became known: settle their receipts before writing `status` (which no
    /// longer lists them in `openAttempts`).
    pub settled: Vec<receipts::SettledAttempt>,
}

/// Prepares a status carried over from elsewhere: every target id not already pending is looked up
/// before anything is paid or reported (an in-flight attempt is settled by the engine as usual).
pub fn verify_first(
    mut status: DealPaymentStatus,
    spec: &DealPaymentSpec,
    now: Timestamp,
) -> DealPaymentStatus {
    let (kind, ids) = spec.targets();
    let in_flight: Vec<String> = status
        .in_flight
        .as_ref()
        .map(|a| a.ids.clone())
        .unwrap_or_default();
    let ids: Vec<String> = ids
        .iter()
        .filter(|id| !in_flight.contains(id))
        .cloned()
        .collect();
    // What the old status claimed is forgotten until the lookup proves it again.
    status.orders.retain(|o| in_flight.contains(&o.id));
    status.order_ids.clear();
    status.big_deal_ids.clear();
    status.resource_ids.clear();
    status.request_id = None;
    status.paid_at = None;
    // A carried-over price may come from a clock that ran fast: the resumed run prices again.
    status.quote = None;
    status.pending_lookup = (!ids.is_empty()).then(|| {
        Box::new(dealpay_api::PendingLookup {
            kind,
            ids,
            since: dealpay_api::Time::seconds(now),
            reason: dealpay_api::LookupReason::Resume,
            tries: 0,
            next_at: None,
            not_found: vec![],
            error: None,
        })
    });
    status
}

/// Decides the next status and action.
pub fn decide(input: Input<'_>, policy: &Policy) -> Decision {
    let mut ctx = apply::Ctx::new(&input, policy);
    ctx.on_generation_and_credentials();
    ctx.apply_event(input.event.clone());
    plan::plan(ctx)
}

#[cfg(test)]
mod tests;
