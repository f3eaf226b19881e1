//! Folding an event into the status.

use std::time::Duration;

use jiff::Timestamp;

use super::backoff::{Curve, Policy};
use super::lookup::{Verdict, verdict};
use super::time::{rfc3339, rfc3339_millis};
use super::{CredentialsState, Event, Input, LookupAnswer, Note, NoteType};
use crate::api::{
    Attempt, DealPaymentSpec, DealPaymentStatus, IdKind, LastError, OrderRecord, OrderState,
    PendingLookup,
};
use crate::tencent::error::reason_for_code;
use crate::tencent::models::{PayDealsResponse, status};
use crate::tencent::{CallError, ErrorClass};

/// Code PayDeals answers for orders that are not unpaid, including already paid ones.
pub(super) const INVALID_DEAL: &str = "FailedOperation.InvalidDeal";
/// Pending-lookup reason after an unknown outcome.
pub(super) const OUTCOME_UNKNOWN: &str = "OutcomeUnknown";

/// One decision in progress.
pub(super) struct Ctx<'a> {
    pub spec: &'a DealPaymentSpec,
    pub st: DealPaymentStatus,
    pub generation: i64,
    pub now: Timestamp,
    pub jitter: f64,
    pub attempt_id: String,
    pub credentials: CredentialsState,
    pub policy: &'a Policy,
    pub notes: Vec<Note>,
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for i in items {
        if !i.is_empty() && !list.contains(&i) {
            list.push(i);
        }
    }
}

/// Error text as shown in conditions and events: code, message, RequestId.
pub(super) fn describe(e: &LastError) -> String {
    match &e.request_id {
        Some(r) if !r.is_empty() => format!("{}: {} (RequestId {r})", e.code, e.message),
        _ => format!("{}: {}", e.code, e.message),
    }
}

impl From<&CallError> for LastError {
    fn from(e: &CallError) -> Self {
        let mut message = e.message();
        if e.code() == "AuthFailure.SignatureExpire" {
            message.push_str(
                " (the clock of the operator's host differs from Tencent's by more than 5 minutes)",
            );
        }
        LastError {
            code: e.code().to_string(),
            message,
            request_id: e.request_id().map(str::to_string).filter(|r| !r.is_empty()),
            class: e.class(),
        }
    }
}

impl<'a> Ctx<'a> {
    pub fn new(input: &Input<'a>, policy: &'a Policy) -> Self {
        Self {
            spec: input.spec,
            st: input.status.cloned().unwrap_or_default(),
            generation: input.generation,
            now: input.now,
            jitter: input.jitter,
            attempt_id: input.attempt_id.clone(),
            credentials: input.credentials.clone(),
            policy,
            notes: Vec::new(),
        }
    }

    pub fn note(&mut self, type_: NoteType, reason: impl Into<String>, message: impl Into<String>) {
        self.notes.push(Note {
            type_,
            reason: reason.into(),
            message: message.into(),
        });
    }

    /// A new generation clears terminal errors; new credentials reset the slow backoff.
    pub fn on_generation_and_credentials(&mut self) {
        if self
            .st
            .observed_generation
            .is_some_and(|g| g != self.generation)
        {
            if self.st.stalled_generation.is_some() {
                self.st.stalled_generation = None;
                self.st.last_error = None;
            }
            if self.st.pending_lookup.is_none() {
                self.clear_backoff();
            }
        }
        self.st.observed_generation = Some(self.generation);
        if let CredentialsState::Available { version } = self.credentials.clone() {
            let changed = self
                .st
                .credentials_version
                .as_ref()
                .is_some_and(|v| *v != version);
            let human = self
                .st
                .last_error
                .as_ref()
                .is_some_and(|e| e.class == ErrorClass::NeedsHuman);
            if changed && human && self.st.pending_lookup.is_none() {
                self.clear_backoff();
                self.note(
                    NoteType::Normal,
                    "CredentialsChanged",
                    "credentials changed: retrying now",
                );
            }
            self.st.credentials_version = Some(version);
        }
    }

    pub fn clear_backoff(&mut self) {
        self.st.consecutive_failures = 0;
        self.st.next_retry_at = None;
    }

    /// Records one more failure and schedules the retry on `curve`.
    pub fn back_off(&mut self, curve: Curve) -> Duration {
        self.st.consecutive_failures = self.st.consecutive_failures.saturating_add(1);
        let delay = curve.delay(self.st.consecutive_failures, self.jitter);
        let at = self.now.checked_add(delay).unwrap_or(self.now);
        self.st.next_retry_at = Some(rfc3339_millis(at));
        delay
    }

    pub fn record(
        &mut self,
        id: &str,
        state: OrderState,
        tencent_status: Option<i64>,
        request_id: Option<String>,
    ) {
        self.st.orders.retain(|o| o.id != id);
        self.st.orders.push(OrderRecord {
            id: id.to_string(),
            state,
            tencent_status,
            request_id,
        });
    }

    pub fn record_of(&self, id: &str) -> Option<&OrderRecord> {
        self.st.orders.iter().find(|o| o.id == id)
    }

    fn pend(&mut self, kind: IdKind, ids: Vec<String>, since: String, reason: &str) {
        self.st.pending_lookup = Some(PendingLookup {
            kind,
            ids,
            since,
            reason: reason.to_string(),
        });
        self.clear_backoff();
    }

    pub fn apply_event(&mut self, event: Event) {
        match event {
            Event::Observe => {}
            Event::Paid(result) => {
                let Some(attempt) = self.st.in_flight.take() else {
                    self.note(
                        NoteType::Warning,
                        "UnexpectedResult",
                        "a PayDeals result arrived without a recorded attempt; ignored",
                    );
                    return;
                };
                match result {
                    Ok(resp) => self.on_paid(attempt, resp),
                    Err(e) => self.on_pay_error(attempt, &e),
                }
            }
            Event::LookedUp(result) => {
                let Some(pending) = self.st.pending_lookup.take() else {
                    return;
                };
                match result {
                    Ok(answer) => self.on_looked_up(pending, answer),
                    Err(e) => {
                        let err = LastError::from(&e);
                        let curve = if err.class == ErrorClass::NeedsHuman {
                            self.policy.needs_human
                        } else {
                            self.policy.lookup
                        };
                        let ids = pending.ids.join(", ");
                        self.st.pending_lookup = Some(pending);
                        let delay = self.back_off(curve);
                        self.note(
                            NoteType::Warning,
                            "LookupFailed",
                            format!(
                                "DescribeDealsByCond for {ids} failed: {}; retrying in {}s",
                                describe(&err),
                                delay.as_secs()
                            ),
                        );
                        self.st.last_error = Some(err);
                    }
                }
            }
        }
    }

    fn on_paid(&mut self, attempt: Attempt, resp: PayDealsResponse) {
        let listed = match attempt.kind {
            IdKind::Order => &resp.order_ids,
            IdKind::BigDeal => &resp.big_deal_ids,
        };
        let (paid, unknown): (Vec<String>, Vec<String>) = attempt
            .ids
            .iter()
            .cloned()
            .partition(|id| listed.contains(id));
        let rid = Some(resp.request_id.clone()).filter(|r| !r.is_empty());
        for id in &paid {
            self.record(id, OrderState::Paid, None, rid.clone());
        }
        push_unique(&mut self.st.order_ids, resp.order_ids.clone());
        push_unique(&mut self.st.big_deal_ids, resp.big_deal_ids.clone());
        push_unique(&mut self.st.resource_ids, resp.resource_ids.all.clone());
        self.st.request_id = rid;
        if !paid.is_empty() {
            self.st.paid_at = Some(rfc3339(self.now));
        }
        self.st.last_error = None;
        self.clear_backoff();
        self.note(
            NoteType::Normal,
            "PaymentSucceeded",
            format!(
                "PayDeals paid {} (RequestId {})",
                paid.join(", "),
                resp.request_id
            ),
        );
        if !unknown.is_empty() {
            self.note(
                NoteType::Warning,
                OUTCOME_UNKNOWN,
                format!("PayDeals answered success without listing {}; looking them up before anything else", unknown.join(", ")),
            );
            self.pend(attempt.kind, unknown, attempt.started_at, "PartialPayment");
        }
    }

    fn on_pay_error(&mut self, attempt: Attempt, e: &CallError) {
        let err = LastError::from(e);
        let text = describe(&err);
        match err.class {
            ErrorClass::Terminal if err.code == INVALID_DEAL => {
                self.note(
                    NoteType::Warning,
                    "InvalidDeal",
                    format!(
                        "PayDeals failed: {text}; looking the orders up (they may be paid already)"
                    ),
                );
                self.pend(attempt.kind, attempt.ids, attempt.started_at, "InvalidDeal");
            }
            ErrorClass::Terminal => {
                self.note(
                    NoteType::Warning,
                    reason_for_code(&err.code),
                    format!("PayDeals failed: {text}; fix the spec"),
                );
                self.st.stalled_generation = Some(attempt.generation);
                self.clear_backoff();
            }
            ErrorClass::NeedsHuman => {
                let d = self.back_off(self.policy.needs_human);
                self.note(
                    NoteType::Warning,
                    reason_for_code(&err.code),
                    format!("PayDeals failed: {text}; retrying in {}s", d.as_secs()),
                );
            }
            ErrorClass::Transient => {
                let d = self.back_off(self.policy.transient);
                self.note(
                    NoteType::Normal,
                    reason_for_code(&err.code),
                    format!(
                        "PayDeals was refused before processing: {text}; retrying in {}s",
                        d.as_secs()
                    ),
                );
            }
            ErrorClass::ChargedNotDelivered => {
                for id in &attempt.ids {
                    self.record(
                        id,
                        OrderState::DeliveryFailed,
                        Some(status::DELIVERY_FAILED),
                        err.request_id.clone(),
                    );
                }
                self.st.paid_at = Some(rfc3339(self.now));
                self.note(NoteType::Warning, "DeliveryFailed", format!("PayDeals charged but delivery failed: {text}; contact Tencent Cloud support, it will not be paid again"));
            }
            ErrorClass::OutcomeUnknown => {
                self.note(NoteType::Warning, OUTCOME_UNKNOWN, format!("PayDeals outcome unknown: {text}; looking the orders up before any new attempt"));
                self.pend(
                    attempt.kind,
                    attempt.ids,
                    attempt.started_at,
                    OUTCOME_UNKNOWN,
                );
            }
        }
        self.st.last_error = Some(err);
    }

    fn on_looked_up(&mut self, pending: PendingLookup, answer: LookupAnswer) {
        let rid = Some(answer.request_id.clone()).filter(|r| !r.is_empty());
        let mut unresolved = Vec::new();
        let mut summary = Vec::new();
        for id in &pending.ids {
            let deals: Vec<_> = answer
                .deals
                .iter()
                .filter(|d| match pending.kind {
                    IdKind::Order => &d.order_id == id,
                    IdKind::BigDeal => &d.big_deal_id == id,
                })
                .collect();
            let v = verdict(&deals);
            let first_status = deals.first().map(|d| d.status);
            summary.push(format!(
                "{id}: {}",
                first_status.map_or("not found", status::name)
            ));
            match v {
                Verdict::Paid | Verdict::DeliveryFailed => {
                    let state = if v == Verdict::Paid {
                        OrderState::Paid
                    } else {
                        OrderState::DeliveryFailed
                    };
                    self.record(id, state, first_status, rid.clone());
                    push_unique(
                        &mut self.st.resource_ids,
                        deals.iter().flat_map(|d| d.resource_id.clone()),
                    );
                    push_unique(
                        &mut self.st.order_ids,
                        deals.iter().map(|d| d.order_id.clone()),
                    );
                    if pending.kind == IdKind::BigDeal {
                        push_unique(&mut self.st.big_deal_ids, [id.clone()]);
                    }
                    self.st.request_id = rid.clone();
                    self.st.paid_at = Some(rfc3339(self.now));
                }
                Verdict::Unpayable(s) => {
                    self.record(id, OrderState::Unpayable, Some(s), rid.clone())
                }
                Verdict::Unpaid if pending.reason == "InvalidDeal" => {
                    // PayDeals called it invalid yet it is unpaid: paying again would loop.
                    self.st.stalled_generation = Some(self.generation);
                }
                Verdict::Unpaid => {}
                Verdict::InProgress | Verdict::NotFound => unresolved.push(id.clone()),
            }
        }
        let summary = summary.join(", ");
        if unresolved.is_empty() {
            self.clear_backoff();
            if self.st.stalled_generation.is_none()
                && self.st.last_error.as_ref().is_some_and(|e| {
                    matches!(e.class, ErrorClass::OutcomeUnknown) || e.code == INVALID_DEAL
                })
            {
                self.st.last_error = None;
            }
            self.note(
                NoteType::Normal,
                "OutcomeResolved",
                format!("DescribeDealsByCond found {summary}"),
            );
        } else {
            let ids = unresolved.join(", ");
            self.st.pending_lookup = Some(PendingLookup {
                ids: unresolved,
                ..pending
            });
            let d = self.back_off(self.policy.lookup);
            self.note(
                NoteType::Warning,
                "OutcomeStillUnknown",
                format!(
                    "DescribeDealsByCond found {summary}; {ids} not settled, looking again in {}s",
                    d.as_secs()
                ),
            );
        }
    }
}
