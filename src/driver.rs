//! Carries out the engine's API actions: one PayDeals call, or the DescribeDealsByCond lookups.

use crate::api::IdKind;
use crate::engine::{Event, LookupAnswer};
use crate::tencent::models::{DescribeDealsRequest, MAX_DEALS_LIMIT, PayDealsRequest, status};
use crate::tencent::{CallError, Client, Credentials};

/// Calls PayDeals once; the caller has already persisted the attempt.
pub async fn pay(
    client: &Client,
    creds: &Credentials,
    region: Option<&str>,
    request: &PayDealsRequest,
) -> Event {
    Event::Paid(client.pay_deals(creds, region, request).await)
}

/// Looks every id up with `StatusSet` (every status), paging until all deals are read.
pub async fn look_up(
    client: &Client,
    creds: &Credentials,
    region: Option<&str>,
    kind: IdKind,
    ids: &[String],
    start_time: &str,
    end_time: &str,
) -> Event {
    Event::LookedUp(look_up_all(client, creds, region, kind, ids, start_time, end_time).await)
}

async fn look_up_all(
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
