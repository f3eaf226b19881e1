//! Delivery that takes time: the status and resources a reader sees, derived from the charge time.
//!
//! A charged order stores its final outcome (4 delivered, 5 delivery failed) at once, plus the
//! charge time when it has a `deliveryDelayMs`. Readers ask [`Order::status_at`] instead of reading
//! `status`, so the phase moves on with the clock without a background task, and a PATCHed delay
//! applies to an order already being delivered.

use super::world::Order;
use tencent_billing::models::status;

impl Order {
    /// The status DescribeDealsByCond reports at `now_ms` (unix milliseconds): 2 (paid) for the
    /// first half of the delivery delay after the charge, 3 (delivering) for the second half, then
    /// the stored outcome. Orders without a pending delivery report their stored status.
    pub fn status_at(&self, now_ms: i64) -> i64 {
        self.pending_phase(now_ms).unwrap_or(self.status)
    }

    /// True while the order is charged but its delivery has not finished.
    pub fn delivering_at(&self, now_ms: i64) -> bool {
        self.pending_phase(now_ms).is_some()
    }

    /// 2 or 3 while a delivery is pending, None otherwise.
    fn pending_phase(&self, now_ms: i64) -> Option<i64> {
        let charged = self.charged_at_ms?;
        // Only a delivery outcome can be pending; an admin who set another status meant it.
        if !matches!(self.status, status::DELIVERED | status::DELIVERY_FAILED) {
            return None;
        }
        let delay = i64::try_from(self.delivery_delay_ms).unwrap_or(i64::MAX);
        let elapsed = now_ms.saturating_sub(charged);
        if elapsed >= delay {
            None
        } else if elapsed < delay / 2 {
            Some(status::PAID)
        } else {
            Some(status::DELIVERING)
        }
    }

    /// The resources a reader sees at `now_ms`: none while delivery is pending (they do not exist
    /// yet), the order's resources otherwise.
    pub fn resource_ids_at(&self, now_ms: i64) -> &[String] {
        if self.delivering_at(now_ms) {
            &[]
        } else {
            &self.resource_ids
        }
    }
}

/// Unix milliseconds of `ts`, the clock `status_at` compares with.
pub fn unix_ms(ts: jiff::Timestamp) -> i64 {
    ts.as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charged(delay: u64, deliverable: bool) -> Order {
        let mut o = Order::new("1", "u", 10);
        o.resource_ids = vec!["ins-1".into()];
        o.delivery_delay_ms = delay;
        o.deliverable = deliverable;
        o.status = if deliverable {
            status::DELIVERED
        } else {
            status::DELIVERY_FAILED
        };
        o.charged_at_ms = Some(1_000);
        o
    }

    #[test]
    fn phases_follow_the_clock() {
        let o = charged(1_000, true);
        assert_eq!(o.status_at(1_000), status::PAID);
        assert_eq!(o.status_at(1_499), status::PAID);
        assert_eq!(o.status_at(1_500), status::DELIVERING);
        assert_eq!(o.status_at(1_999), status::DELIVERING);
        assert_eq!(o.status_at(2_000), status::DELIVERED);
        assert!(o.resource_ids_at(1_999).is_empty());
        assert_eq!(o.resource_ids_at(2_000), ["ins-1"]);
    }

    #[test]
    fn undeliverable_orders_end_in_delivery_failed() {
        let o = charged(1_000, false);
        assert_eq!(o.status_at(1_200), status::PAID);
        assert_eq!(o.status_at(1_700), status::DELIVERING);
        assert_eq!(o.status_at(5_000), status::DELIVERY_FAILED);
    }

    #[test]
    fn no_pending_delivery_reads_the_stored_status() {
        let mut o = charged(0, true);
        assert_eq!(o.status_at(1_000), status::DELIVERED);
        o.charged_at_ms = None;
        o.delivery_delay_ms = 1_000;
        assert_eq!(o.status_at(1_000), status::DELIVERED);
        let mut cancelled = charged(1_000, true);
        cancelled.status = status::CANCELLED;
        assert_eq!(cancelled.status_at(1_000), status::CANCELLED);
        assert_eq!(cancelled.resource_ids_at(1_000), ["ins-1"]);
    }
}
