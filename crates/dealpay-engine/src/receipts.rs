//! The facts an attempt's PaymentReceipt is settled with.
//!
//! Derived from the status on every decision (never from memory: `Ctx::settle_open_attempts` in
//! `apply.rs`), so an attempt whose receipt could not be settled before a crash is settled by the next
//! decision; the shell writes the receipt before the status that drops the attempt from `openAttempts`.

use dealpay_api::receipt::ReceiptOrder;
use dealpay_api::{Attempt, ReceiptState};

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
