//! What DescribeDealsByCond says about one id.

use crate::tencent::models::{Deal, status};

/// The verdict on one id from the deals found for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Paid, delivering or delivered.
    Paid,
    /// Charged but delivery failed.
    DeliveryFailed,
    /// Not paid: a new attempt is safe.
    Unpaid,
    /// Cancelled, expired, invalid, refunded: can never be paid (carries the status code).
    Unpayable(i64),
    /// Payment in progress or mixed sub-order states: look again later.
    InProgress,
    /// No deal found in the window.
    NotFound,
}

fn paid(s: i64) -> bool {
    matches!(s, status::PAID | status::DELIVERING | status::DELIVERED)
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

/// Judges the deals of one id (one deal for a sub-order, the sub-orders for a big deal).
pub fn verdict(deals: &[&Deal]) -> Verdict {
    let all = |f: fn(i64) -> bool| deals.iter().all(|d| f(d.status));
    if deals.is_empty() {
        Verdict::NotFound
    } else if all(paid) {
        Verdict::Paid
    } else if all(|s| paid(s) || s == status::DELIVERY_FAILED) {
        Verdict::DeliveryFailed
    } else if all(|s| s == status::UNPAID) {
        Verdict::Unpaid
    } else if all(unpayable) {
        Verdict::Unpayable(deals[0].status)
    } else {
        Verdict::InProgress
    }
}
