//! The impure half both shells share: deciding with the real clock, and carrying out API actions.

use jiff::Timestamp;

use crate::api::{DealPaymentSpec, DealPaymentStatus, IdKind};
use crate::engine::{
    Action, CredentialsState, Decision, Event, Input, LookupAnswer, Policy, decide,
};
use crate::tencent::models::{DescribeDealsRequest, MAX_DEALS_LIMIT, status};
use crate::tencent::{CallError, Client, Credentials};

/// Asks the engine with the current time, fresh jitter and a fresh attempt id.
pub fn decide_now(
    spec: &DealPaymentSpec,
    status: Option<&DealPaymentStatus>,
    generation: i64,
    credentials: &CredentialsState,
    event: Event,
    policy: &Policy,
) -> Decision {
    decide(
        Input {
            spec,
            status,
            generation,
            now: Timestamp::now(),
            jitter: fastrand::f64(),
            attempt_id: uuid::Uuid::new_v4().to_string(),
            credentials: credentials.clone(),
            event,
        },
        policy,
    )
}

/// Carries out `Pay` (one PayDeals call: the caller has persisted the attempt) or `LookUp`; None for
/// actions that call nothing.
pub async fn perform(
    client: &Client,
    creds: &Credentials,
    region: Option<&str>,
    action: &Action,
) -> Option<Event> {
    match action {
        Action::Pay { attempt, request } => Some(Event::Paid {
            attempt: attempt.clone(),
            result: client.pay_deals(creds, region, request).await,
        }),
        Action::LookUp {
            kind,
            ids,
            start_time,
            end_time,
        } => Some(Event::LookedUp(
            look_up(client, creds, region, *kind, ids, start_time, end_time).await,
        )),
        Action::RequeueAfter(_) | Action::AwaitChange { .. } | Action::Done => None,
    }
}

/// Looks every id up with `StatusSet` (every status), one id per query.
///
/// The SDK documents `Offset` as a page number while older readings treat it as a record offset, so
/// the answer never depends on a second page: one id matches a handful of deals, and an answer that
/// says more matched than it returned is an error (looked up again after a backoff), never a guess.
async fn look_up(
    client: &Client,
    creds: &Credentials,
    region: Option<&str>,
    kind: IdKind,
    ids: &[String],
    start_time: &str,
    end_time: &str,
) -> Result<LookupAnswer, CallError> {
    let mut answer = LookupAnswer::default();
    for id in ids {
        let req = DescribeDealsRequest {
            start_time: start_time.to_string(),
            end_time: end_time.to_string(),
            limit: MAX_DEALS_LIMIT,
            offset: 0,
            // Without StatusSet the API lists only delivered orders.
            status_set: status::ALL.to_vec(),
            order_id: (kind == IdKind::Order).then(|| id.clone()),
            big_deal_id: (kind == IdKind::BigDeal).then(|| id.clone()),
            ..Default::default()
        };
        let resp = client.describe_deals(creds, region, &req).await?;
        if resp.total_count > resp.deals.len() as u64 {
            return Err(CallError::Incomplete(format!(
                "DescribeDealsByCond for {id} returned {} of {} deals",
                resp.deals.len(),
                resp.total_count
            )));
        }
        answer.deals.extend(resp.deals);
        answer.request_id = resp.request_id;
    }
    Ok(answer)
}
