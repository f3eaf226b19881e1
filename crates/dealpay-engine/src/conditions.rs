//! The four conditions (Ready, Reconciling, Stalled, Paid), kstatus-compatible, with stable transition times.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub use dealpay_api::ConditionType;
use dealpay_api::Reason;

/// Short names for the condition types, as the engine and its tests use them.
pub const READY: ConditionType = ConditionType::Ready;
pub const RECONCILING: ConditionType = ConditionType::Reconciling;
pub const STALLED: ConditionType = ConditionType::Stalled;
pub const PAID: ConditionType = ConditionType::Paid;
pub const PAYABLE: ConditionType = ConditionType::Payable;

/// The state of one condition before timestamps are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub type_: ConditionType,
    /// True or False.
    pub status: bool,
    pub reason: Reason,
    pub message: String,
}

/// Builds the condition list; `lastTransitionTime` is kept from `old` unless the status flips.
pub fn merge(
    old: &[Condition],
    desired: Vec<Desired>,
    generation: i64,
    now: Timestamp,
) -> Vec<Condition> {
    desired
        .into_iter()
        .map(|d| {
            let status = if d.status { "True" } else { "False" }.to_string();
            let last_transition_time = old
                .iter()
                .find(|c| c.type_ == d.type_.as_str() && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: d.type_.as_str().to_string(),
                status,
                reason: d.reason.into(),
                // The API requires a string; an empty one would be sent as null.
                message: if d.message.is_empty() {
                    "-".into()
                } else {
                    d.message
                },
                observed_generation: Some(generation),
                last_transition_time,
            }
        })
        .collect()
}

/// Looks a condition up by type: a `ConditionType` or, for readers of foreign status, its string.
pub fn find(conditions: &[Condition], type_: impl AsRef<str>) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_ref())
}

/// True when the condition of that type is present with status True.
pub fn is_true(conditions: &[Condition], type_: impl AsRef<str>) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(status: bool, reason: &str) -> Desired {
        Desired {
            type_: READY,
            status,
            reason: Reason::from_code(reason),
            message: "m".into(),
        }
    }

    #[test]
    fn transition_time_changes_only_when_status_flips() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let t2: Timestamp = "2026-01-01T00:02:00Z".parse().unwrap();
        let c0 = merge(&[], vec![d(false, "Paying")], 1, t0);
        assert_eq!(c0[0].last_transition_time, Time(t0));
        let c1 = merge(&c0, vec![d(false, "BalanceInsufficient")], 2, t1);
        assert_eq!(
            c1[0].last_transition_time,
            Time(t0),
            "reason change alone keeps the time"
        );
        assert_eq!(c1[0].observed_generation, Some(2));
        assert_eq!(c1[0].reason, "BalanceInsufficient");
        let c2 = merge(&c1, vec![d(true, "Paid")], 2, t2);
        assert_eq!(c2[0].last_transition_time, Time(t2));
        assert!(is_true(&c2, READY));
        assert!(!is_true(&c1, READY));
    }
}
