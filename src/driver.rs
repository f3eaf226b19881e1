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
        Action::Pay { request, .. } => {
            Some(Event::Paid(client.pay_deals(creds, region, request).await))
        }
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

/// Looks every id up with `StatusSet` (every status), paging until all deals are read.
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
        let mut offset = 0u32;
        loop {
            let req = DescribeDealsRequest {
                start_time: start_time.to_string(),
                end_time: end_time.to_string(),
                limit: MAX_DEALS_LIMIT,
                offset,
                // Without StatusSet the API lists only delivered orders.
                status_set: status::ALL.to_vec(),
                order_id: (kind == IdKind::Order).then(|| id.clone()),
                big_deal_id: (kind == IdKind::BigDeal).then(|| id.clone()),
                ..Default::default()
            };
            let resp = client.describe_deals(creds, region, &req).await?;
            let got = resp.deals.len() as u32;
            answer.deals.extend(resp.deals);
            answer.request_id = resp.request_id;
            offset += got;
            if got == 0 || u64::from(offset) >= resp.total_count {
                break;
            }
        }
    }
    Ok(answer)
}
