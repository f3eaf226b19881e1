//! What DescribeDealsByCond says about one id: a verdict for every combination of (sub-)order states.

use tencent_billing::models::{Deal, status};

/// The verdict on one id from the deals found for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Paid and delivered (every sub-order status 4).
    Delivered,
    /// Paid, some (sub-)order still paid-not-delivered or delivering (2, 3); none can fail the payment any more.
    Delivering,
    /// Charged, and delivery failed for at least one (sub-)order; the rest delivered.
    DeliveryFailed,
    /// Not paid: a new attempt is safe.
    Unpaid,
    /// Cancelled, expired, invalid, refunded: can never be paid (carries the first status code).
    Unpayable(i64),
    /// Settled with money moved for some sub-orders and the others unpayable (e.g. 4 and 7).
    PartlyUnpayable,
    /// A big deal with some sub-orders charged and the others still unpaid (or being paid): money moved,
    /// the whole is never paid again; looked up until it settles.
    PartlyPaid,
    /// Payment or refund in progress, awaiting confirmation: look again.
    InProgress,
    /// No deal found in the window.
    NotFound,
}

impl Verdict {
    /// True when the verdict proves money moved.
    pub fn charged(self) -> bool {
        matches!(
            self,
            Verdict::Delivered
                | Verdict::Delivering
                | Verdict::DeliveryFailed
                | Verdict::PartlyUnpayable
                | Verdict::PartlyPaid
        )
    }
}

fn charged(s: i64) -> bool {
    matches!(
        s,
        status::PAID | status::DELIVERING | status::DELIVERED | status::DELIVERY_FAILED
    )
}

fn unpayable(s: i64) -> bool {
    matches!(
        s,
        status::REFUNDED
            | status::CANCELLED
            | status::EXPIRED
            | status::INVALID
            | status::PRODUCT_INVALID
            | status::RESELLER_REFUSED
            | status::REFUNDING
    )
}

fn settled_charge(s: i64) -> bool {
    matches!(s, status::DELIVERED | status::DELIVERY_FAILED)
}

/// Judges the deals of one id (one deal for a sub-order, the sub-orders for a big deal).
pub fn verdict(deals: &[&Deal]) -> Verdict {
    let all = |f: &dyn Fn(i64) -> bool| deals.iter().all(|d| f(d.status));
    let any = |f: &dyn Fn(i64) -> bool| deals.iter().any(|d| f(d.status));
    if deals.is_empty() {
        Verdict::NotFound
    } else if all(&|s| s == status::DELIVERED) {
        Verdict::Delivered
    } else if all(&charged) {
        if any(&|s| matches!(s, status::PAID | status::DELIVERING)) {
            Verdict::Delivering
        } else {
            Verdict::DeliveryFailed
        }
    } else if all(&|s| s == status::UNPAID) {
        Verdict::Unpaid
    } else if all(&unpayable) {
        Verdict::Unpayable(deals[0].status)
    } else if all(&|s| settled_charge(s) || unpayable(s)) {
        Verdict::PartlyUnpayable
    } else if any(&charged) && all(&|s| charged(s) || s == status::UNPAID || s == status::PAYING) {
        Verdict::PartlyPaid
    } else {
        Verdict::InProgress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(states: &[i64]) -> Verdict {
        let deals: Vec<Deal> = states
            .iter()
            .map(|&s| Deal {
                status: s,
                ..Default::default()
            })
            .collect();
        verdict(&deals.iter().collect::<Vec<_>>())
    }

    #[test]
    fn every_pair_of_sub_order_states_has_a_verdict_that_never_overclaims() {
        for &a in &status::ALL {
            for &b in &status::ALL {
                let v = judge(&[a, b]);
                let money_moved = charged(a) || charged(b);
                if v.charged() {
                    assert!(money_moved, "{a},{b} -> {v:?}");
                }
                if v == Verdict::Delivered {
                    assert_eq!((a, b), (4, 4));
                }
                // A settled pair (nothing left to happen) must never stay "in progress" for ever.
                let settled = |s: i64| settled_charge(s) || unpayable(s);
                if settled(a) && settled(b) {
                    assert_ne!(v, Verdict::InProgress, "{a},{b}");
                    assert!(v.charged() || matches!(v, Verdict::Unpayable(_)));
                }
                if a == 1 && b == 1 {
                    assert_eq!(v, Verdict::Unpaid);
                }
                if (a == 1) != (b == 1) {
                    assert!(
                        !matches!(v, Verdict::Unpaid),
                        "{a},{b}: paying a half-paid big deal again is never safe"
                    );
                }
            }
        }
        assert_eq!(judge(&[4, 6]), Verdict::PartlyUnpayable);
        assert_eq!(judge(&[4, 7]), Verdict::PartlyUnpayable);
        assert_eq!(judge(&[4, 5]), Verdict::DeliveryFailed);
        assert_eq!(judge(&[4, 3]), Verdict::Delivering);
        assert_eq!(judge(&[5, 2]), Verdict::Delivering);
        assert_eq!(judge(&[4, 1]), Verdict::PartlyPaid);
        assert_eq!(judge(&[12, 1]), Verdict::InProgress);
        assert_eq!(judge(&[12]), Verdict::InProgress);
        assert_eq!(judge(&[]), Verdict::NotFound);
    }
}
