//! Folding an event into the status.

use std::time::Duration;

use jiff::Timestamp;

use super::backoff::{Curve, Policy};
use super::lookup::{Verdict, verdict};
use super::receipts::SettledAttempt;
use super::{Asked, CredentialsState, Event, Input, LookupAnswer, Note, NoteType};
use dealpay_api::receipt::ReceiptOrder;
use dealpay_api::{
    Attempt, DealPaymentSpec, DealPaymentStatus, IdKind, LastError, LookupReason, OrderRecord,
    OrderState, PayTogether, PendingLookup,
};
use dealpay_api::{ErrorClass, Reason, ReceiptState, Time};
use tencent_billing::CallError;
use tencent_billing::models::{Deal, PayDealsResponse, status};

/// Code PayDeals answers for orders that are not unpaid, including already paid ones.
pub(super) const INVALID_DEAL: &str = "FailedOperation.InvalidDeal";

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
    /// Attempts settled by this decision (see `receipts.rs`).
    pub settled: Vec<SettledAttempt>,
    /// True when deciding on an observation (no answer in hand): only then is an attempt recorded in
    /// flight known to be orphaned; while folding an answer it may be another replica's live call.
    pub observed: bool,
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

/// The status record of a failed call; the wire's class becomes the CRD's.
pub fn last_error(e: &CallError) -> LastError {
    {
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
            class: class_of(e.class()),
        }
    }
}

/// The wire crate classifies codes; status keeps the CRD's own copy of the verdict.
pub fn class_of(c: tencent_billing::ErrorClass) -> ErrorClass {
    use tencent_billing::ErrorClass as Wire;
    match c {
        Wire::Terminal => ErrorClass::Terminal,
        Wire::NeedsHuman => ErrorClass::NeedsHuman,
        Wire::Transient => ErrorClass::Transient,
        Wire::ChargedNotDelivered => ErrorClass::ChargedNotDelivered,
        Wire::OutcomeUnknown => ErrorClass::OutcomeUnknown,
    }
}

/// What one lookup answer leaves to do, id by id.
struct Found {
    /// Still to look up (in delivery, in progress, not found, or paid but not yet listed).
    unresolved: Vec<String>,
    not_found: Vec<String>,
    /// Unpaid and never listed as paid: payable again.
    unpaid: Vec<String>,
    /// Some id's state explains a refusal of PayDeals.
    explained: bool,
    summary: String,
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
            settled: Vec::new(),
            observed: matches!(input.event, Event::Observe),
        }
    }

    pub fn note(&mut self, type_: NoteType, reason: Reason, message: impl Into<String>) {
        self.notes.push(Note {
            type_,
            reason,
            message: message.into(),
        });
    }

    /// A new generation clears terminal errors and starts every backoff afresh; new credentials reset
    /// the backoffs that a person's action can end.
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
            self.clear_backoff();
            self.st.unknown_outcomes = 0;
        }
        self.st.observed_generation = Some(self.generation);
        if let CredentialsState::Available { version } = self.credentials.clone() {
            let changed = self
                .st
                .credentials_version
                .as_ref()
                .is_some_and(|v| *v != version);
            let waiting = self.st.last_error.as_ref().is_some_and(|e| {
                matches!(e.class, ErrorClass::NeedsHuman | ErrorClass::OutcomeUnknown)
            }) || self.st.unknown_outcomes > 0;
            if changed && waiting {
                self.clear_backoff();
                self.st.unknown_outcomes = 0;
                if let Some(p) = self.st.pending_lookup.as_mut() {
                    p.next_at = None;
                    p.tries = 0;
                }
                self.note(
                    NoteType::Normal,
                    Reason::CredentialsChanged,
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

    fn at(&self, delay: Duration) -> Time {
        Time::new(self.now.checked_add(delay).unwrap_or(self.now))
    }

    /// Records one more failed PayDeals call and schedules the next on `curve`.
    pub fn back_off(&mut self, curve: Curve) -> Duration {
        self.st.consecutive_failures = self.st.consecutive_failures.saturating_add(1);
        let delay = curve.delay(self.st.consecutive_failures, self.jitter);
        self.st.next_retry_at = Some(self.at(delay));
        delay
    }

    /// Schedules the next PayDeals attempt after unknown outcomes proved harmless (orders unpaid).
    fn back_off_unknown(&mut self) -> Duration {
        let delay = self
            .policy
            .unknown
            .delay(self.st.unknown_outcomes.max(1), self.jitter);
        self.st.next_retry_at = Some(self.at(delay));
        delay
    }

    pub fn record(
        &mut self,
        id: &str,
        kind: IdKind,
        state: OrderState,
        tencent_status: Option<i64>,
        request_id: Option<String>,
    ) {
        let cost_cents = self.record_of(id).and_then(|o| o.cost_cents);
        self.st.orders.retain(|o| o.id != id);
        self.st.orders.push(OrderRecord {
            id: id.to_string(),
            state,
            tencent_status,
            request_id,
            cost_cents,
            kind: Some(kind),
        });
    }

    /// The kind of a recorded id: as recorded, else (an older record) the spec's.
    pub fn kind_of(&self, id: &str) -> IdKind {
        self.record_of(id)
            .and_then(|o| o.kind)
            .unwrap_or_else(|| self.spec.targets().0)
    }

    pub fn record_of(&self, id: &str) -> Option<&OrderRecord> {
        self.st.orders.iter().find(|o| o.id == id)
    }

    pub fn state_of(&self, id: &str) -> Option<OrderState> {
        self.record_of(id).map(|r| r.state)
    }

    /// Adds ids to the pending lookup (one lookup settles everything); a new reason only replaces
    /// `Delivery`, which is the weakest.
    ///
    /// One lookup has one kind. A lookup of another kind replaces a pending delivery check (the
    /// delivering ids are pended again once it is settled); a delivery check waits for a pending
    /// lookup of another kind. Two unknown outcomes of different kinds cannot meet: no attempt starts
    /// while an unknown outcome is pending.
    pub fn pend(&mut self, kind: IdKind, ids: Vec<String>, since: Time, reason: LookupReason) {
        if let Some(p) = self.st.pending_lookup.as_ref()
            && p.kind != kind
        {
            if reason == LookupReason::Delivery {
                return;
            }
            debug_assert_eq!(
                p.reason,
                LookupReason::Delivery,
                "two lookups of different kinds that are not delivery checks"
            );
            if p.reason == LookupReason::Delivery {
                self.st.pending_lookup = None;
            }
        }
        match self.st.pending_lookup.as_mut() {
            Some(p) if p.kind != kind => {}
            Some(p) => {
                push_unique(&mut p.ids, ids);
                if p.reason == LookupReason::Delivery {
                    p.reason = reason;
                    p.since = since;
                }
                p.next_at = None;
                p.tries = 0;
            }
            None => {
                self.st.pending_lookup = Some(Box::new(PendingLookup {
                    kind,
                    ids,
                    since,
                    reason,
                    tries: 0,
                    next_at: None,
                    not_found: vec![],
                    error: None,
                }))
            }
        }
    }

    /// An unknown outcome of a PayDeals call: count it and look the ids up before anything else.
    pub fn unknown_outcome(&mut self, attempt: Attempt, reason: LookupReason) {
        self.st.unknown_outcomes = self.st.unknown_outcomes.saturating_add(1);
        self.pend(attempt.kind, attempt.ids, attempt.started_at, reason);
    }

    pub fn apply_event(&mut self, event: Event) {
        match event {
            Event::Observe => {}
            Event::Paid { attempt, result } => {
                let ours = self
                    .st
                    .in_flight
                    .as_ref()
                    .is_some_and(|a| a.id == attempt.id);
                if ours {
                    self.st.in_flight = None;
                    match result {
                        Ok(resp) => self.on_paid(attempt, resp),
                        Err(e) => self.on_pay_error(attempt, &e),
                    }
                } else {
                    self.on_late_answer(attempt, result);
                }
            }
            Event::LookedUp { asked, result } => {
                let Some(pending) = self.st.pending_lookup.take() else {
                    return;
                };
                if !answers(&asked, &pending) {
                    // Made for another lookup (another replica settled it and started a new one): what
                    // it saw may predate the newer attempt, so it proves nothing about it.
                    self.note(
                        NoteType::Normal,
                        Reason::LateAnswer,
                        format!(
                            "a DescribeDealsByCond answer for {} ({}) came after that lookup was replaced; ignored",
                            asked.ids.join(", "),
                            asked.reason.as_str()
                        ),
                    );
                    self.st.pending_lookup = Some(pending);
                    return;
                }
                match result {
                    Ok(answer) => self.on_looked_up(*pending, answer, asked.at),
                    Err(e) => self.on_lookup_error(*pending, &e),
                }
            }
        }
    }

    /// An answer for an attempt the status no longer holds (another replica or a crash recovery took
    /// it over). A success is still proof of payment; anything else is left to the lookup.
    fn on_late_answer(&mut self, attempt: Attempt, result: Result<PayDealsResponse, CallError>) {
        match result {
            Ok(resp) => {
                let listed = listed_ids(&attempt, &resp);
                let fresh: Vec<String> = listed
                    .into_iter()
                    .filter(|id| !self.state_of(id).is_some_and(OrderState::charged))
                    .collect();
                self.note(
                    NoteType::Normal,
                    Reason::LateAnswer,
                    format!(
                        "PayDeals attempt {} answered success after its record was superseded; keeping what it proves",
                        attempt.id
                    ),
                );
                if !fresh.is_empty() {
                    self.record_paid(&attempt, &resp, &fresh);
                }
            }
            Err(e) if self.refusal_settles_lookup(&attempt, &e) => {
                // Refused before processing: the lookup started for this attempt has nothing to find,
                // and the refusal's own backoff applies (a person may have to act).
                if let Some(p) = self.st.pending_lookup.as_mut() {
                    p.ids.retain(|id| !attempt.ids.contains(id));
                }
                if self.st.pending_lookup.as_ref().is_some_and(|p| p.ids.is_empty()) {
                    self.st.pending_lookup = None;
                }
                self.st.unknown_outcomes = self.st.unknown_outcomes.saturating_sub(1);
                self.note(
                    NoteType::Normal,
                    Reason::LateAnswer,
                    format!("PayDeals attempt {} was refused ({}); no lookup needed", attempt.id, e.code()),
                );
                self.on_pay_error(attempt, &e);
            }
            Err(e) => self.note(
                NoteType::Warning,
                Reason::UnexpectedResult,
                format!(
                    "PayDeals attempt {} answered {} after its record was superseded; the lookup decides",
                    attempt.id,
                    e.code()
                ),
            ),
        }
    }

    /// A late refusal settles the lookup its attempt caused when nothing else happened since: no new
    /// attempt in flight, and every id of the attempt still waiting for that lookup.
    fn refusal_settles_lookup(&self, attempt: &Attempt, e: &CallError) -> bool {
        let refused = match class_of(e.class()) {
            ErrorClass::NeedsHuman | ErrorClass::Transient => true,
            ErrorClass::Terminal => e.code() != INVALID_DEAL,
            _ => false,
        };
        // The lookup may still be pending, or may have run already and found the ids unpaid.
        let looked_up_or_pending = self.st.pending_lookup.as_ref().is_none_or(|p| {
            p.reason == LookupReason::OutcomeUnknown
                && attempt.ids.iter().all(|id| p.ids.contains(id))
        });
        let unpaid = attempt.ids.iter().all(|id| self.record_of(id).is_none());
        refused
            && looked_up_or_pending
            && unpaid
            && self.st.unknown_outcomes > 0
            && self.st.in_flight.is_none()
    }

    /// Moves every open attempt whose ids are no longer in flight or pending a lookup into `settled`.
    pub fn settle_open_attempts(&mut self) {
        let open = std::mem::take(&mut self.st.open_attempts);
        for a in open {
            let in_flight = self.st.in_flight.as_ref().is_some_and(|f| f.id == a.id);
            let pending = self
                .st
                .pending_lookup
                .as_ref()
                .is_some_and(|p| a.ids.iter().any(|id| p.ids.contains(id)));
            if in_flight || pending {
                self.st.open_attempts.push(a);
                continue;
            }
            let orders: Vec<ReceiptOrder> = a
                .ids
                .iter()
                .filter_map(|id| self.record_of(id))
                .filter(|o| o.state.charged())
                .map(|o| ReceiptOrder {
                    id: o.id.clone(),
                    cost_cents: o.cost_cents,
                    tencent_status: o.tencent_status,
                })
                .collect();
            let settled = if orders.is_empty() {
                let unpayable = a
                    .ids
                    .iter()
                    .any(|id| self.state_of(id) == Some(OrderState::Unpayable));
                let code = match (&self.st.last_error, unpayable) {
                    (_, true) => "OrderUnpayable".to_string(),
                    (Some(e), _) => e.code.clone(),
                    (None, _) => "FoundUnpaid".to_string(),
                };
                SettledAttempt {
                    state: ReceiptState::NotCharged,
                    orders,
                    code: Some(code),
                    confirmed_by: Some("Lookup"),
                    attempt: a,
                }
            } else {
                SettledAttempt {
                    state: ReceiptState::Charged,
                    orders,
                    code: None,
                    confirmed_by: Some(if a.answered.is_some() {
                        "Answer"
                    } else {
                        "Lookup"
                    }),
                    attempt: a,
                }
            };
            self.settled.push(settled);
        }
    }

    /// Takes an open attempt out of `openAttempts` with what its receipt says.
    fn close_attempt(&mut self, id: &str, settle: impl FnOnce(Attempt) -> SettledAttempt) {
        if let Some(i) = self.st.open_attempts.iter().position(|a| a.id == id) {
            let a = self.st.open_attempts.remove(i);
            self.settled.push(settle(a));
        }
    }

    /// Records ids PayDeals listed as paid: charged, delivery to be confirmed by a lookup.
    fn record_paid(&mut self, attempt: &Attempt, resp: &PayDealsResponse, ids: &[String]) {
        let rid = Some(resp.request_id.clone()).filter(|r| !r.is_empty());
        if let Some(a) = self
            .st
            .open_attempts
            .iter_mut()
            .find(|a| a.id == attempt.id)
        {
            a.answered = rid.clone().or(Some(String::new()));
        }
        for id in ids {
            self.record(
                id,
                attempt.kind,
                OrderState::Delivering,
                Some(status::PAID),
                rid.clone(),
            );
        }
        push_unique(&mut self.st.order_ids, resp.order_ids.clone());
        push_unique(&mut self.st.big_deal_ids, resp.big_deal_ids.clone());
        push_unique(&mut self.st.resource_ids, resp.resource_ids.all.clone());
        self.st.request_id = rid;
        self.st.paid_at = Some(Time::seconds(self.now));
        self.pend(
            attempt.kind,
            ids.to_vec(),
            attempt.started_at,
            LookupReason::Delivery,
        );
    }

    fn on_paid(&mut self, attempt: Attempt, resp: PayDealsResponse) {
        let listed = listed_ids(&attempt, &resp);
        let unknown: Vec<String> = attempt
            .ids
            .iter()
            .filter(|id| !listed.contains(id))
            .cloned()
            .collect();
        self.record_paid(&attempt, &resp, &listed);
        self.st.last_error = None;
        self.clear_backoff();
        // Success without listing an id tells nothing about it: as unknown as a lost answer.
        self.st.unknown_outcomes = if unknown.is_empty() {
            0
        } else {
            self.st.unknown_outcomes.saturating_add(1)
        };
        self.note(
            NoteType::Normal,
            Reason::PaymentSucceeded,
            format!(
                "PayDeals paid {} (RequestId {}); confirming delivery",
                listed.join(", "),
                resp.request_id
            ),
        );
        if !unknown.is_empty() {
            self.note(
                NoteType::Warning,
                Reason::OutcomeUnknown,
                format!("PayDeals answered success without listing {}; looking them up before anything else", unknown.join(", ")),
            );
            self.pend(
                attempt.kind,
                unknown,
                attempt.started_at,
                LookupReason::PartialPayment,
            );
        }
    }

    fn on_pay_error(&mut self, attempt: Attempt, e: &CallError) {
        let err = last_error(e);
        let text = describe(&err);
        if !matches!(
            err.class,
            ErrorClass::OutcomeUnknown | ErrorClass::ChargedNotDelivered
        ) {
            // Refused before processing (InvalidDeal included: the ids may be paid, but not by this
            // call): its receipt is settled now, whatever the lookup then finds.
            self.close_attempt(&attempt.id, |a| SettledAttempt::refused(a, &err.code));
        }
        if err.class != ErrorClass::OutcomeUnknown {
            self.st.unknown_outcomes = 0;
        }
        match err.class {
            ErrorClass::Terminal if err.code == INVALID_DEAL => {
                self.note(
                    NoteType::Warning,
                    Reason::InvalidDeal,
                    format!(
                        "PayDeals failed: {text}; looking the orders up (they may be paid already)"
                    ),
                );
                self.pend(
                    attempt.kind,
                    attempt.ids,
                    attempt.started_at,
                    LookupReason::InvalidDeal,
                );
            }
            ErrorClass::Terminal => {
                self.note(
                    NoteType::Warning,
                    Reason::from_code(&err.code),
                    format!("PayDeals failed: {text}; fix the spec"),
                );
                self.st.stalled_generation = Some(attempt.generation);
                self.clear_backoff();
            }
            ErrorClass::NeedsHuman => {
                let d = self.back_off(self.policy.needs_human);
                self.note(
                    NoteType::Warning,
                    Reason::from_code(&err.code),
                    format!("PayDeals failed: {text}; retrying in {}s", d.as_secs()),
                );
            }
            ErrorClass::Transient => {
                let d = self.back_off(self.policy.transient);
                self.note(
                    NoteType::Normal,
                    Reason::from_code(&err.code),
                    format!(
                        "PayDeals was refused before processing: {text}; retrying in {}s",
                        d.as_secs()
                    ),
                );
            }
            ErrorClass::ChargedNotDelivered => {
                // One code for the whole call: which orders were charged and which delivered is per order.
                self.note(NoteType::Warning, Reason::DeliveryFailed, format!("PayDeals charged but delivery failed: {text}; looking each order up (a charged order is never paid again)"));
                self.pend(
                    attempt.kind,
                    attempt.ids,
                    attempt.started_at,
                    LookupReason::DeliverFailed,
                );
            }
            ErrorClass::OutcomeUnknown => {
                self.note(NoteType::Warning, Reason::OutcomeUnknown, format!("PayDeals outcome unknown: {text}; looking the orders up before any new attempt"));
                self.unknown_outcome(attempt, LookupReason::OutcomeUnknown);
            }
        }
        self.st.last_error = Some(Box::new(err));
    }

    fn on_lookup_error(&mut self, mut pending: PendingLookup, e: &CallError) {
        let err = last_error(e);
        let curve = if err.class == ErrorClass::NeedsHuman {
            self.policy.needs_human
        } else {
            self.policy.lookup
        };
        let delay = self.schedule_lookup(&mut pending, curve);
        let ids = pending.ids.join(", ");
        self.note(
            NoteType::Warning,
            Reason::LookupFailed,
            format!(
                "DescribeDealsByCond for {ids} failed: {}; retrying in {}s",
                describe(&err),
                delay.as_secs()
            ),
        );
        pending.error = Some(err);
        self.st.pending_lookup = Some(Box::new(pending));
    }

    fn schedule_lookup(&self, pending: &mut PendingLookup, curve: Curve) -> Duration {
        pending.tries = pending.tries.saturating_add(1);
        let delay = curve.delay(pending.tries, self.jitter);
        pending.next_at = Some(self.at(delay));
        delay
    }

    fn on_looked_up(&mut self, pending: PendingLookup, answer: LookupAnswer, asked_at: Timestamp) {
        if pending.reason == LookupReason::Quote {
            return self.on_quoted(pending, answer);
        }
        let mut found = self.sort_found(&pending, &answer);
        if let Some(dead_after) = self.request_may_run(&pending, asked_at)
            && !found.unpaid.is_empty()
        {
            let waiting = std::mem::take(&mut found.unpaid);
            return self.wait_out_request(pending, found, waiting, dead_after);
        }
        if !found.unpaid.is_empty() {
            self.on_found_unpaid(&pending, &found.unpaid, found.explained);
        }
        if found.unresolved.is_empty() {
            self.note(
                NoteType::Normal,
                Reason::OutcomeResolved,
                format!("DescribeDealsByCond found {}", found.summary),
            );
            self.settle_last_error();
            return;
        }
        self.look_again(pending, found);
    }

    /// Records what the lookup settled and sorts the ids by what is left to do.
    fn sort_found(&mut self, pending: &PendingLookup, answer: &LookupAnswer) -> Found {
        let rid = Some(answer.request_id.clone()).filter(|r| !r.is_empty());
        let mut unresolved = Vec::new();
        let mut not_found = Vec::new();
        let mut unpaid = Vec::new();
        let mut explained = false;
        let mut summary: Vec<String> = Vec::new();
        for id in &pending.ids {
            let deals = deals_of(&answer.deals, pending.kind, id);
            let v = verdict(&deals);
            let first_status = deals.first().map(|d| d.status);
            summary.push(format!(
                "{id}: {}",
                first_status.map_or("not found", status::name)
            ));
            let was_paid = self.state_of(id).is_some_and(OrderState::awaiting);
            if v.charged() {
                self.record_found(id, v, &deals, pending.kind, rid.clone());
            }
            match v {
                Verdict::Delivered | Verdict::DeliveryFailed | Verdict::PartlyUnpayable => {
                    explained = true
                }
                Verdict::Delivering | Verdict::PartlyPaid => {
                    explained = true;
                    unresolved.push(id.clone());
                }
                Verdict::Unpayable(s) => {
                    explained = true;
                    self.record(
                        id,
                        pending.kind,
                        OrderState::Unpayable,
                        Some(s),
                        rid.clone(),
                    );
                }
                // PayDeals listed it as paid: an unpaid answer is the lookup lagging, never a reason to pay.
                Verdict::Unpaid if was_paid => unresolved.push(id.clone()),
                Verdict::Unpaid => unpaid.push(id.clone()),
                Verdict::NotFound => {
                    not_found.push(id.clone());
                    unresolved.push(id.clone());
                }
                Verdict::InProgress => unresolved.push(id.clone()),
            }
        }
        Found {
            unresolved,
            not_found,
            unpaid,
            explained,
            summary: summary.join(", "),
        }
    }

    /// When the ids were made unknown by a PayDeals request that may still execute after `asked_at`
    /// (TC3: until its signature expires), the time it is dead; None when an unpaid answer is final.
    fn request_may_run(&self, pending: &PendingLookup, asked_at: Timestamp) -> Option<Timestamp> {
        if pending.reason != LookupReason::OutcomeUnknown {
            return None;
        }
        let dead_after = self.policy.request_dead_after(pending.since.get());
        (asked_at < dead_after).then_some(dead_after)
    }

    /// Ids found unpaid while the request given up on may still execute: not a reason to pay yet. They
    /// stay pending, looked up again in between (a lookup that finds them paid settles them at once)
    /// and once more after the request is dead; waiting out the window is not a failed lookup.
    fn wait_out_request(
        &mut self,
        pending: PendingLookup,
        found: Found,
        waiting: Vec<String>,
        dead_after: Timestamp,
    ) {
        let mut ids = found.unresolved;
        push_unique(&mut ids, waiting.clone());
        let step = self.policy.window_lookup_every.max(Duration::from_secs(1));
        // One second past the end, so the last lookup is surely sent after it.
        let last = dead_after
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap_or(dead_after);
        let next = self.now.checked_add(step).unwrap_or(last).min(last);
        self.st.pending_lookup = Some(Box::new(PendingLookup {
            ids,
            not_found: found.not_found,
            error: None,
            next_at: Some(Time::new(next)),
            ..pending
        }));
        self.note(
            NoteType::Normal,
            Reason::OutcomeUnknown,
            format!(
                "DescribeDealsByCond found {}; the PayDeals request given up on may still execute until {} (its signature window), so {} are not paid again before then; looking again at {}",
                found.summary,
                super::time::rfc3339(dead_after),
                waiting.join(", "),
                super::time::rfc3339(next)
            ),
        );
    }

    /// Some ids are not settled: look them up again later (as a delivery wait when all are charged).
    fn look_again(&mut self, pending: PendingLookup, found: Found) {
        let Found {
            unresolved,
            not_found,
            summary,
            ..
        } = found;
        let only_delivery = unresolved
            .iter()
            .all(|id| self.state_of(id).is_some_and(OrderState::awaiting));
        let mut next = PendingLookup {
            ids: unresolved.clone(),
            not_found,
            error: None,
            reason: if only_delivery {
                LookupReason::Delivery
            } else {
                pending.reason
            },
            ..pending
        };
        let delay = self.schedule_lookup(&mut next, self.policy.lookup);
        self.st.pending_lookup = Some(Box::new(next));
        let (type_, reason) = if only_delivery {
            (NoteType::Normal, Reason::Delivering)
        } else {
            (NoteType::Warning, Reason::OutcomeStillUnknown)
        };
        self.note(
            type_,
            reason,
            format!(
                "DescribeDealsByCond found {summary}; {} not settled, looking again in {}s",
                unresolved.join(", "),
                delay.as_secs()
            ),
        );
    }

    /// Prices the ids still to pay; ids found settled already are recorded as any lookup would.
    fn on_quoted(&mut self, pending: PendingLookup, answer: LookupAnswer) {
        let rid = Some(answer.request_id.clone()).filter(|r| !r.is_empty());
        let (mut priced, mut total, mut problems) = (Vec::new(), 0i64, Vec::new());
        let mut currencies: Vec<String> = Vec::new();
        for id in &pending.ids {
            let deals = deals_of(&answer.deals, pending.kind, id);
            let v = verdict(&deals);
            match v {
                Verdict::Unpaid => match cost_of(&deals) {
                    Some(c) => {
                        priced.push(id.clone());
                        total = total.saturating_add(c);
                        push_unique(
                            &mut currencies,
                            deals.iter().flat_map(|d| d.currency.clone()),
                        );
                    }
                    None => problems.push(format!(
                        "{id}: no price (RealTotalCost) in DescribeDealsByCond"
                    )),
                },
                _ if v.charged() => self.record_found(id, v, &deals, pending.kind, rid.clone()),
                Verdict::Unpayable(s) => self.record(
                    id,
                    pending.kind,
                    OrderState::Unpayable,
                    Some(s),
                    rid.clone(),
                ),
                Verdict::NotFound => {
                    problems.push(format!("{id}: not found by DescribeDealsByCond"))
                }
                _ => {
                    let st = deals.first().map_or("unknown", |d| status::name(d.status));
                    problems.push(format!("{id}: not unpaid ({st})"));
                }
            }
        }
        if currencies.len() > 1 {
            // One cap cannot bound amounts in several currencies.
            problems.push(format!(
                "priced in more than one currency ({})",
                currencies.join(", ")
            ));
        }
        let currency = currencies.first().cloned();
        let cost = match &currency {
            Some(c) => format!("{} {c}", dealpay_api::money::format_cents(total)),
            None => dealpay_api::money::format_cents(total),
        };
        let priced = priced.join(", ");
        self.note(
            NoteType::Normal,
            Reason::Priced,
            if problems.is_empty() {
                format!("{priced} cost {cost} in all (RealTotalCost)")
            } else {
                format!("{priced} cost {cost}; {}", problems.join("; "))
            },
        );
        // The quote covers every id still to pay, priced or not, so the planner can tell it is current.
        let ids: Vec<String> = pending
            .ids
            .iter()
            .filter(|id| self.record_of(id).is_none())
            .cloned()
            .collect();
        // The lookup listed the big deals' sub-orders exactly when the planner asked (dry run, orderIds).
        let checked = self.spec.dry_run && pending.kind == IdKind::Order;
        let pay_together = checked.then(|| left_out(self.spec.targets().1, &ids, &answer.deals));
        self.st.quote = Some(Box::new(dealpay_api::Quote {
            ids,
            total_cents: total,
            currency,
            checked_at: Time::new(self.now),
            request_id: rid,
            problems,
            pay_together,
        }));
    }

    /// Records a charged verdict with what the deals show.
    fn record_found(
        &mut self,
        id: &str,
        v: Verdict,
        deals: &[&Deal],
        kind: IdKind,
        rid: Option<String>,
    ) {
        let state = match v {
            Verdict::Delivered => OrderState::Paid,
            Verdict::Delivering => OrderState::Delivering,
            Verdict::DeliveryFailed => OrderState::DeliveryFailed,
            Verdict::PartlyPaid => OrderState::PartlyPaid,
            _ => OrderState::PartlyUnpayable,
        };
        let first_new = self.state_of(id).is_none_or(|s| !s.charged());
        self.record(
            id,
            kind,
            state,
            deals.first().map(|d| d.status),
            rid.clone(),
        );
        if let Some(cost) = cost_of(deals)
            && let Some(o) = self.st.orders.iter_mut().find(|o| o.id == id)
        {
            o.cost_cents = Some(cost);
        }
        self.record_currency(id, deals);
        push_unique(
            &mut self.st.resource_ids,
            deals.iter().flat_map(|d| d.resource_id.clone()),
        );
        push_unique(
            &mut self.st.order_ids,
            deals.iter().map(|d| d.order_id.clone()),
        );
        if kind == IdKind::BigDeal {
            push_unique(&mut self.st.big_deal_ids, [id.to_string()]);
        }
        // The RequestId of the PayDeals call that paid stays the proof; a lookup's is kept per order.
        if self.st.request_id.is_none() {
            self.st.request_id = rid;
        }
        if first_new {
            self.st.paid_at = Some(Time::seconds(self.now));
            self.st.unknown_outcomes = 0;
        }
    }

    /// Keeps the currency DescribeDealsByCond gives for charged orders; the total is only meaningful in
    /// one, so a second one is named in a warning.
    fn record_currency(&mut self, id: &str, deals: &[&Deal]) {
        for c in deals.iter().filter_map(|d| d.currency.as_deref()) {
            match self.st.currency.as_deref() {
                None => self.st.currency = Some(c.to_string()),
                Some(known) if known != c => {
                    let msg = format!(
                        "{id} is charged in {c}, other orders in {known}: status.totalCost adds them up as {known}"
                    );
                    self.note(NoteType::Warning, Reason::MixedCurrencies, msg);
                }
                Some(_) => {}
            }
        }
    }

    /// Ids proved unpaid: a new attempt is safe, but not at once after an unknown outcome (the call
    /// itself may be what fails) and not at all when PayDeals refused them for no visible reason.
    fn on_found_unpaid(&mut self, pending: &PendingLookup, unpaid: &[String], explained: bool) {
        match pending.reason {
            LookupReason::InvalidDeal if !explained => {
                self.st.stalled_generation = Some(self.generation);
                self.note(
                    NoteType::Warning,
                    Reason::InvalidDeal,
                    format!(
                        "PayDeals called {} invalid, yet they are unpaid: not paying again; check them in the Tencent Cloud console, then change any spec field (e.g. toggle spec.suspend) to retry",
                        unpaid.join(", ")
                    ),
                );
            }
            LookupReason::InvalidDeal => {
                self.note(
                    NoteType::Normal,
                    Reason::RetryingUnpaid,
                    format!(
                        "some orders were already settled; paying the unpaid rest ({})",
                        unpaid.join(", ")
                    ),
                );
            }
            _ if self.st.unknown_outcomes > 0 => {
                let d = self.back_off_unknown();
                self.note(
                    NoteType::Warning,
                    Reason::OutcomeUnknown,
                    format!(
                        "{} proved unpaid after {} unknown outcome(s) in a row; next attempt in {}s",
                        unpaid.join(", "),
                        self.st.unknown_outcomes,
                        d.as_secs()
                    ),
                );
            }
            _ => {}
        }
    }

    /// Once nothing is pending, an error that only explained the lookup is history.
    fn settle_last_error(&mut self) {
        let keep = self.st.stalled_generation.is_some()
            || self.st.unknown_outcomes > 0
            || self.st.next_retry_at.is_some();
        if !keep {
            self.st.last_error = None;
        }
    }
}

/// An answer folds into the pending lookup it was asked for: same kind, same start, same reason, and
/// every id still pending was asked about.
fn answers(asked: &Asked, pending: &PendingLookup) -> bool {
    asked.kind == pending.kind
        && asked.since == pending.since
        && asked.reason == pending.reason
        && pending.ids.iter().all(|id| asked.ids.contains(id))
}

fn listed_ids(attempt: &Attempt, resp: &PayDealsResponse) -> Vec<String> {
    let listed = match attempt.kind {
        IdKind::Order => &resp.order_ids,
        IdKind::BigDeal => &resp.big_deal_ids,
    };
    attempt
        .ids
        .iter()
        .filter(|id| listed.contains(id))
        .cloned()
        .collect()
}

/// RealTotalCost of the deals together, in cents; None if any deal has no price.
fn cost_of(deals: &[&Deal]) -> Option<i64> {
    deals
        .iter()
        .map(|d| d.real_total_cost.map(|c| c.round() as i64))
        .sum()
}

/// The deals of one id, each sub-order once: an answer that lists a deal twice (once for its own id,
/// once among its big deal's sub-orders) must not price it twice.
fn deals_of<'d>(deals: &'d [Deal], kind: IdKind, id: &str) -> Vec<&'d Deal> {
    let mut out: Vec<&Deal> = Vec::new();
    for d in deals {
        let matches = match kind {
            IdKind::Order => d.order_id == id,
            IdKind::BigDeal => d.big_deal_id == id,
        };
        if matches && !out.iter().any(|o| o.order_id == d.order_id) {
            out.push(d);
        }
    }
    out
}

/// Per big deal of the unpaid sub-orders among `ids`, its unpaid sub-orders in `deals` that `listed`
/// (spec.orderIds) leaves out; big deals with none left out are not named.
fn left_out(listed: &[String], ids: &[String], deals: &[Deal]) -> Vec<PayTogether> {
    let mut groups: Vec<PayTogether> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let unpaid = |d: &&Deal| d.status == status::UNPAID;
    for d in deals
        .iter()
        .filter(unpaid)
        .filter(|d| ids.contains(&d.order_id))
    {
        let big = d.big_deal_id.as_str();
        if big.is_empty() || seen.contains(&big) {
            continue;
        }
        seen.push(big);
        let mut missing: Vec<String> = deals
            .iter()
            .filter(unpaid)
            .filter(|s| s.big_deal_id == big && !listed.contains(&s.order_id))
            .map(|s| s.order_id.clone())
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            groups.push(PayTogether {
                big_deal_id: big.to_string(),
                missing,
            });
        }
    }
    groups
}
