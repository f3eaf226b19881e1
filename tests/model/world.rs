//! The model's Tencent: what PayDeals may answer and do, what DescribeDealsByCond says, and how orders
//! move on their own.

use dealpay_operator::api::{Attempt, IdKind};
use dealpay_operator::engine::LookupAnswer;
use dealpay_operator::tencent::models::{Deal, PayDealsResponse, ResourceIds};
use dealpay_operator::tencent::{ApiError, CallError};

use super::state::{Config, N, State};

/// One way a PayDeals call can go.
pub struct PayOutcome {
    pub label: String,
    pub fault: bool,
    /// New Tencent status per charged sub-order (None: untouched).
    pub set: [Option<u8>; N],
    pub result: Result<PayDealsResponse, CallError>,
    /// The `late` fault: nothing runs now; the API may run the request later, charging this.
    pub late: Option<[Option<u8>; N]>,
}

fn api(code: &str) -> CallError {
    CallError::Api(ApiError {
        code: code.into(),
        message: format!("{code} (model)"),
        request_id: "rid-pay".into(),
    })
}

/// Sub-order indices an id stands for.
pub fn subs_of(cfg: &Config, kind: IdKind, id: &str) -> Vec<usize> {
    cfg.subs
        .iter()
        .enumerate()
        .filter(|(_, (o, b))| match kind {
            IdKind::Order => *o == id,
            IdKind::BigDeal => *b == id,
        })
        .map(|(i, _)| i)
        .collect()
}

fn success(cfg: &Config, kind: IdKind, listed: &[String]) -> PayDealsResponse {
    let mut subs = Vec::new();
    for id in listed {
        subs.extend(subs_of(cfg, kind, id));
    }
    PayDealsResponse {
        order_ids: subs.iter().map(|&i| cfg.subs[i].0.to_string()).collect(),
        resource_ids: ResourceIds {
            all: subs
                .iter()
                .map(|&i| format!("ins-{}", cfg.subs[i].0))
                .collect(),
            ..Default::default()
        },
        big_deal_ids: match kind {
            IdKind::BigDeal => listed.to_vec(),
            IdKind::Order => vec![],
        },
        request_id: "rid-pay".into(),
    }
}

fn set_all(subs: &[usize], to: u8) -> [Option<u8>; N] {
    let mut set = [None; N];
    for &i in subs {
        set[i] = Some(to);
    }
    set
}

/// Nonempty proper subsets of `ids`.
fn proper_subsets(ids: &[String]) -> Vec<Vec<String>> {
    let n = ids.len();
    (1..(1u32 << n) - 1)
        .map(|m| {
            (0..n)
                .filter(|i| m & (1 << i) != 0)
                .map(|i| ids[i].clone())
                .collect()
        })
        .collect()
}

/// True when `subs` holds each pay-together group whole or not at all.
fn closed(cfg: &Config, subs: &[usize]) -> bool {
    cfg.groups
        .iter()
        .all(|g| g.iter().all(|i| subs.contains(i)) || g.iter().all(|i| !subs.contains(i)))
}

/// Every outcome of PayDeals for `attempt` in state `s` (the truthful one first, not a fault).
pub fn pay_outcomes(cfg: &Config, s: &State, attempt: &Attempt) -> Vec<PayOutcome> {
    let kind = attempt.kind;
    let mut subs = Vec::new();
    for id in &attempt.ids {
        subs.extend(subs_of(cfg, kind, id));
    }
    let all_unpaid = !subs.is_empty() && subs.iter().all(|&i| s.tstatus[i] == 1);
    let together = closed(cfg, &subs);
    let mut v = Vec::new();
    let f = &cfg.faults;
    let some = |label: &str, fault: bool, set, result| PayOutcome {
        label: label.to_string(),
        fault,
        set,
        result,
        late: None,
    };
    if !all_unpaid {
        v.push(some(
            "refused InvalidDeal (not unpaid)",
            false,
            [None; N],
            Err(api("FailedOperation.InvalidDeal")),
        ));
    } else if !together {
        v.push(some(
            "refused NeedPayTogether",
            false,
            [None; N],
            Err(api("FailedOperation.NeedPayTogether")),
        ));
    } else {
        v.push(some(
            "charged all, success listing all",
            false,
            set_all(&subs, 2),
            Ok(success(cfg, kind, &attempt.ids)),
        ));
        if f.pay && !f.only_unknown {
            for part in proper_subsets(&attempt.ids) {
                let mut psubs = Vec::new();
                for id in &part {
                    psubs.extend(subs_of(cfg, kind, id));
                }
                v.push(some(
                    &format!("charged all, success listing only {part:?}"),
                    true,
                    set_all(&subs, 2),
                    Ok(success(cfg, kind, &part)),
                ));
                // Tencent charges a pay-together group whole or not at all.
                if !closed(cfg, &psubs) {
                    continue;
                }
                v.push(some(
                    &format!("charged only {part:?}, success listing {part:?}"),
                    true,
                    set_all(&psubs, 2),
                    Ok(success(cfg, kind, &part)),
                ));
            }
            v.push(some(
                "charged all, delivery failed: PaySuccDeliverFailed",
                true,
                set_all(&subs, 5),
                Err(api("FailedOperation.PaySuccDeliverFailed")),
            ));
            for (label, code) in [
                (
                    "refused InvalidParameterValue (Terminal)",
                    "InvalidParameterValue",
                ),
                (
                    "refused BalanceInsufficient (NeedsHuman)",
                    "FailedOperation.BalanceInsufficient",
                ),
                (
                    "refused RequestLimitExceeded (Transient)",
                    "RequestLimitExceeded",
                ),
            ] {
                v.push(some(label, true, [None; N], Err(api(code))));
            }
            v.push(some(
                "not sent (connection refused)",
                true,
                [None; N],
                Err(CallError::NotSent("connection refused (model)".into())),
            ));
        }
        if f.pay {
            v.push(some(
                "charged all (paying), connection cut after sending",
                true,
                set_all(&subs, 12),
                Err(CallError::OutcomeUnknown("connection cut (model)".into())),
            ));
            v.push(some(
                "charged all, HTTP 502",
                true,
                set_all(&subs, 2),
                Err(CallError::OutcomeUnknown("HTTP 502 (model)".into())),
            ));
            v.push(some(
                "charged all (paying), InternalError",
                true,
                set_all(&subs, 12),
                Err(api("InternalError")),
            ));
            if f.late {
                v.push(PayOutcome {
                    late: Some(set_all(&subs, 2)),
                    ..some(
                        "cut off before it ran; the API runs it later (late)",
                        true,
                        [None; N],
                        Err(CallError::OutcomeUnknown("timeout (model: late)".into())),
                    )
                });
            }
            if subs.len() > 1 && !f.only_unknown && closed(cfg, &subs[..1]) {
                v.push(some(
                    "charged only the first sub-order, connection cut",
                    true,
                    set_all(&subs[..1], 2),
                    Err(CallError::OutcomeUnknown("connection cut (model)".into())),
                ));
            }
        }
    }
    if f.pay {
        v.push(some(
            "not charged, connection cut after sending",
            true,
            [None; N],
            Err(CallError::OutcomeUnknown("connection cut (model)".into())),
        ));
        if !f.only_unknown {
            v.push(some(
                "not charged, HTTP 502",
                true,
                [None; N],
                Err(CallError::OutcomeUnknown("HTTP 502 (model)".into())),
            ));
        }
        v.push(some(
            "not charged, InternalError",
            true,
            [None; N],
            Err(api("InternalError")),
        ));
    }
    v
}

/// The truthful DescribeDealsByCond answer for `ids`.
pub fn lookup_truth(cfg: &Config, s: &State, kind: IdKind, ids: &[String]) -> LookupAnswer {
    let mut deals = Vec::new();
    for id in ids {
        for i in subs_of(cfg, kind, id) {
            let st = s.tstatus[i];
            deals.push(Deal {
                order_id: cfg.subs[i].0.into(),
                big_deal_id: cfg.subs[i].1.into(),
                status: i64::from(st),
                resource_id: if (2..=5).contains(&st) {
                    vec![format!("ins-{}", cfg.subs[i].0)]
                } else {
                    vec![]
                },
                ..Default::default()
            });
        }
    }
    LookupAnswer {
        deals,
        request_id: "rid-lookup".into(),
    }
}

/// Lookup errors the environment may inject.
pub fn lookup_errors() -> Vec<(&'static str, CallError)> {
    vec![
        ("lookup InternalError", api("InternalError")),
        (
            "lookup timed out",
            CallError::OutcomeUnknown("timeout (model)".into()),
        ),
    ]
}

/// Moves of a sub-order on Tencent's side: (label, new status, is a fault).
pub fn env_moves(st: u8) -> Vec<(&'static str, u8, bool)> {
    match st {
        12 => vec![
            ("paying -> paid", 2, false),
            ("paying -> delivery failed", 5, true),
        ],
        2 => vec![
            ("paid -> delivering", 3, false),
            ("paid -> delivered", 4, false),
            ("paid -> delivery failed", 5, true),
        ],
        3 => vec![
            ("delivering -> delivered", 4, false),
            ("delivering -> delivery failed", 5, true),
        ],
        1 => vec![("unpaid -> cancelled", 7, true)],
        4 => vec![("delivered -> refunded", 6, true)],
        _ => vec![],
    }
}
