//! Which attempts have a known outcome now: the facts each attempt's PaymentReceipt is settled with.
//!
//! Derived from the status on every decision (never from memory), so an attempt whose receipt could not
//! be settled before a crash is settled by the next decision; the shell writes the receipt before the
//! status that drops the attempt from `openAttempts`.

use dealpay_api::receipt::ReceiptOrder;
use dealpay_api::{Attempt, OrderState, ReceiptState};

use super::apply::Ctx;

/// An attempt whose outcome is known, and what its receipt says.
#[derive(Debug, Clone, PartialEq)]
pub struct SettledAttempt {
    pub attempt: Attempt,
    /// Charged or NotCharged.
    pub state: ReceiptState,
    /// The ids it charged, with what each cost.
    pub orders: Vec<ReceiptOrder>,
    /// Why nothing was charged.
    pub code: Option<String>,
    /// `Answer` or `Lookup`.
    pub confirmed_by: Option<&'static str>,
}

impl SettledAttempt {
    /// An attempt PayDeals refused before processing: nothing was charged.
    pub fn refused(attempt: Attempt, code: &str) -> Self {
        Self {
            attempt,
            state: ReceiptState::NotCharged,
            orders: vec![],
            code: Some(code.to_string()),
            confirmed_by: Some("Answer"),
        }
    }
}

/// Moves every open attempt whose ids are no longer in flight or pending a lookup into `ctx.settled`.
pub(super) fn settle_open(ctx: &mut Ctx<'_>) {
    let open = std::mem::take(&mut ctx.st.open_attempts);
    for a in open {
        let in_flight = ctx.st.in_flight.as_ref().is_some_and(|f| f.id == a.id);
        let pending = ctx
            .st
            .pending_lookup
            .as_ref()
            .is_some_and(|p| a.ids.iter().any(|id| p.ids.contains(id)));
        if in_flight || pending {
            ctx.st.open_attempts.push(a);
            continue;
        }
        let orders: Vec<ReceiptOrder> = a
            .ids
            .iter()
            .filter_map(|id| ctx.record_of(id))
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
                .any(|id| ctx.state_of(id) == Some(OrderState::Unpayable));
            let code = match (&ctx.st.last_error, unpayable) {
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
        ctx.settled.push(settled);
    }
}
