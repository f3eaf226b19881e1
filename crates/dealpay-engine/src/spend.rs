//! What a status says was spent, and a namespace's budget over a rolling window.
//!
//! Derived from status alone (never from memory) so that a restarted operator counts the same money:
//! the shell sums [`charge`] over a namespace's DealPayments and hands the engine a [`WindowBudget`].

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use dealpay_api::{DealPaymentStatus, LookupReason, Time};

/// Money a DealPayment spent, or may have spent, counted at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// When it counts from: the latest payment or attempt, so a charge stays in the window longest.
    pub at: Timestamp,
    pub cents: i64,
}

/// What `st` spent or may have spent. Charged orders count at their looked-up price; while a charge is
/// not priced yet, or an attempt's outcome is unknown or in flight, the quoted total counts instead:
/// an over-count until the lookup settles it, never an under-count.
pub fn charge(st: &DealPaymentStatus) -> Option<Charge> {
    // A DealPayment that never called PayDeals spent nothing, whatever it found paid (a re-created
    // object whose orders another one paid; that money is in the other one's receipts).
    if st.attempts == 0 {
        return None;
    }
    let recorded = |id: &String| st.orders.iter().any(|o| &o.id == id);
    let charged = st.orders.iter().filter(|o| o.state.charged());
    let known: i64 = charged.clone().filter_map(|o| o.cost_cents).sum();
    let unpriced = charged.clone().any(|o| o.cost_cents.is_none());
    let unknown = st.pending_lookup.as_ref().filter(|p| {
        !matches!(p.reason, LookupReason::Quote | LookupReason::Delivery)
            && p.ids.iter().any(|id| !recorded(id))
    });
    let mut times: Vec<Timestamp> = Vec::new();
    let mut cents = known;
    if unpriced || unknown.is_some() || st.in_flight.is_some() {
        let quoted = st.in_flight.as_ref().and_then(|a| a.quoted_cents);
        let quote = st.quote.as_ref().map(|q| q.total_cents);
        cents = cents.saturating_add(quoted.max(quote).unwrap_or(0));
    }
    times.extend(st.paid_at.map(Time::get));
    times.extend(st.in_flight.as_ref().map(|a| a.started_at.get()));
    times.extend(unknown.map(|p| p.since.get()));
    let at = times.into_iter().max()?;
    (cents > 0).then_some(Charge { at, cents })
}

/// A namespace's budget as it stands now: the shell's figures, the engine's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowBudget {
    /// Most the namespace may spend in any window, in cents.
    pub limit_cents: i64,
    /// Length of the rolling window.
    pub window: Duration,
    /// Spent (or reserved for attempts in flight) in the window, this DealPayment's own charges included.
    pub spent_cents: i64,
    /// When the oldest charge in the window leaves it; None when nothing was spent in the window.
    pub frees_at: Option<Timestamp>,
}

impl WindowBudget {
    /// The budget for `charges` seen at `now`: those older than the window do not count.
    pub fn at(limit_cents: i64, window: Duration, charges: &[Charge], now: Timestamp) -> Self {
        let span = SignedDuration::try_from(window).unwrap_or(SignedDuration::MAX);
        let start = now.checked_sub(span).unwrap_or(Timestamp::MIN);
        let inside: Vec<&Charge> = charges.iter().filter(|c| c.at > start).collect();
        Self {
            limit_cents,
            window,
            spent_cents: inside.iter().map(|c| c.cents).sum(),
            frees_at: inside
                .iter()
                .map(|c| c.at.checked_add(span).unwrap_or(Timestamp::MAX))
                .min(),
        }
    }

    /// What is left to spend now (never negative).
    pub fn left_cents(&self) -> i64 {
        (self.limit_cents - self.spent_cents).max(0)
    }

    /// The window as written in flags, e.g. `24h`.
    pub fn window_text(&self) -> String {
        format_window(self.window)
    }
}

const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];

/// Parses a window such as `24h`, `7d`, `90m` or `3600s` (one unit, whole numbers, at least a second).
pub fn parse_window(s: &str) -> Option<Duration> {
    let (unit, per) = UNITS.iter().find(|(u, _)| s.ends_with(u))?;
    let n: u64 = s.strip_suffix(unit)?.parse().ok()?;
    let secs = n.checked_mul(*per).filter(|&v| v > 0)?;
    Some(Duration::from_secs(secs))
}

/// Writes a window in the largest unit that divides it (86,400 s is `1d`).
pub fn format_window(d: Duration) -> String {
    let secs = d.as_secs();
    let (unit, per) = UNITS
        .iter()
        .find(|(_, per)| secs > 0 && secs.is_multiple_of(*per))
        .unwrap_or(&("s", 1));
    format!("{}{unit}", secs / per)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dealpay_api::{Attempt, IdKind, OrderRecord, OrderState, PendingLookup, Quote};

    fn quote(cents: i64) -> Option<Quote> {
        Some(Quote {
            ids: vec!["o1".into()],
            total_cents: cents,
            currency: None,
            checked_at: "2026-11-28T09:59:00Z".parse().unwrap(),
            request_id: None,
            problems: vec![],
            pay_together: None,
        })
    }

    fn order(id: &str, state: OrderState, cost: Option<i64>) -> OrderRecord {
        OrderRecord {
            id: id.into(),
            state,
            tencent_status: None,
            request_id: None,
            cost_cents: cost,
            kind: None,
        }
    }

    /// Issue 22: a DealPayment re-created for orders another one paid finds them paid without calling
    /// PayDeals; it spent nothing (the e2e budget test counted that money twice).
    #[test]
    fn orders_found_paid_without_an_attempt_cost_this_payment_nothing() {
        let st = DealPaymentStatus {
            orders: vec![order("o1", OrderState::Paid, Some(1200))],
            paid_at: Some("2026-11-28T10:00:00Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(charge(&st), None);
        let paid = DealPaymentStatus { attempts: 1, ..st };
        assert_eq!(charge(&paid).map(|c| c.cents), Some(1200));
    }

    #[test]
    fn a_charge_counts_what_was_paid_and_what_may_have_been() {
        let mut st = DealPaymentStatus {
            quote: quote(1200).map(Box::new),
            ..Default::default()
        };
        assert_eq!(charge(&st), None, "priced, nothing paid");
        st.attempts = 1;
        st.in_flight = Some(Box::new(Attempt {
            id: "a".into(),
            started_at: "2026-11-28T10:00:00Z".parse().unwrap(),
            kind: IdKind::Order,
            ids: vec!["o1".into()],
            generation: 1,
            quoted_cents: Some(1200),
            answered: None,
            number: 0,
        }));
        let c = charge(&st).unwrap();
        assert_eq!(c.cents, 1200, "an attempt in flight counts its quote");
        assert_eq!(c.at, "2026-11-28T10:00:00Z".parse().unwrap());
        // The outcome was lost: the ids are looked up; until then the quote still counts.
        st.in_flight = None;
        st.pending_lookup = Some(Box::new(PendingLookup {
            kind: IdKind::Order,
            ids: vec!["o1".into()],
            since: "2026-11-28T10:00:00Z".parse().unwrap(),
            reason: LookupReason::OutcomeUnknown,
            tries: 0,
            next_at: None,
            not_found: vec![],
            error: None,
        }));
        assert_eq!(charge(&st).unwrap().cents, 1200);
        // Paid, price not looked up yet: the quote; then the price charged, not the quote.
        st.pending_lookup = None;
        st.paid_at = Some("2026-11-28T10:00:02Z".parse().unwrap());
        st.orders = vec![order("o1", OrderState::Delivering, None)];
        assert_eq!(charge(&st).unwrap().cents, 1200);
        st.orders = vec![order("o1", OrderState::Paid, Some(1300))];
        let c = charge(&st).unwrap();
        assert_eq!(
            (c.cents, c.at),
            (1300, "2026-11-28T10:00:02Z".parse().unwrap())
        );
        // An order found unpayable spent nothing.
        st.orders = vec![order("o1", OrderState::Unpayable, None)];
        assert_eq!(charge(&st), None);
    }

    #[test]
    fn the_window_forgets_old_charges_and_says_when_the_oldest_leaves() {
        let t = |s: &str| -> Timestamp { s.parse().unwrap() };
        let charges = [
            Charge {
                at: t("2026-11-27T09:00:00Z"),
                cents: 9999,
            },
            Charge {
                at: t("2026-11-28T08:00:00Z"),
                cents: 3000,
            },
            Charge {
                at: t("2026-11-28T09:30:00Z"),
                cents: 1000,
            },
        ];
        let b = WindowBudget::at(
            5000,
            Duration::from_secs(24 * 3600),
            &charges,
            t("2026-11-28T10:00:00Z"),
        );
        assert_eq!(b.spent_cents, 4000, "the charge of yesterday 09:00 is out");
        assert_eq!(b.left_cents(), 1000);
        assert_eq!(b.frees_at, Some(t("2026-11-29T08:00:00Z")));
        assert_eq!(b.window_text(), "1d");
        let empty = WindowBudget::at(
            5000,
            Duration::from_secs(3600),
            &[],
            t("2026-11-28T10:00:00Z"),
        );
        assert_eq!((empty.spent_cents, empty.frees_at), (0, None));
        let over = WindowBudget {
            spent_cents: 6000,
            ..b
        };
        assert_eq!(over.left_cents(), 0);
    }

    #[test]
    fn windows_parse_and_print_in_one_unit() {
        assert_eq!(parse_window("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_window("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_window("90m"), Some(Duration::from_secs(5_400)));
        for bad in ["", "h", "0h", "-1h", "1.5h", "24", "1w", "24 h"] {
            assert_eq!(parse_window(bad), None, "{bad:?}");
        }
        assert_eq!(format_window(Duration::from_secs(5_400)), "90m");
        assert_eq!(format_window(Duration::from_secs(7_200)), "2h");
        assert_eq!(format_window(Duration::from_secs(61)), "61s");
    }
}
