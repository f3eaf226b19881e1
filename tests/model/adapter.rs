//! The only place that knows the engine's API shape: how a PayDeals answer is handed to `decide`, which
//! recorded order states mean "charged", and the backoff a re-payment must respect.

use std::time::Duration;

use dealpay_operator::api::{Attempt, OrderState};
use dealpay_operator::engine::{Event, Policy};
use dealpay_operator::tencent::CallError;
use dealpay_operator::tencent::models::PayDealsResponse;

/// The fixed jitter every decision is made with.
pub const JITTER: f64 = 0.5;

/// The event that folds a PayDeals answer for `attempt`.
pub fn paid_event(attempt: &Attempt, result: Result<PayDealsResponse, CallError>) -> Event {
    Event::Paid {
        attempt: attempt.clone(),
        result,
    }
}

/// True when the engine recorded that money moved for this id.
pub fn is_charged(state: &OrderState) -> bool {
    state.charged()
}

/// Consecutive unknown outcomes after which the engine says Stalled.
pub fn max_unknown(policy: &Policy) -> u32 {
    policy.max_unknown_outcomes
}

/// Least time between a PayDeals whose answer was folded as the `run`-th unknown outcome in a row (of
/// calls that charged nothing) and the next PayDeals.
pub fn unknown_gap(policy: &Policy, run: u8) -> Duration {
    policy.unknown.delay(u32::from(run), JITTER)
}
