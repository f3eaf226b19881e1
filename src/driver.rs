//! The impure half both shells share: deciding with the real clock, and carrying out API actions.

use jiff::Timestamp;

use crate::api::{DealPaymentSpec, DealPaymentStatus, IdKind};
use crate::engine::{
    Action, CredentialsState, Decision, Event, Input, LookupAnswer, Policy, decide,
};
use crate::tencent::models::{
    DescribeDealsRequest, DescribeDealsResponse, MAX_DEALS_LIMIT, status,
};
use crate::tencent::{CallError, Client, ClientArgs, Credentials};

/// `policy` with the signature window and clock margin of `--signature-ttl`/`--clock-margin` (both
/// shells): lookups while a request given up on may still run come once per margin, 1–60 s apart.
pub fn with_request_window(policy: Policy, api: &ClientArgs) -> Policy {
    let (signature_ttl, clock_margin) = api.request_window();
    Policy {
        signature_ttl,
        clock_margin,
        window_lookup_every: clock_margin.clamp(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(60),
        ),
        ..policy
    }
}

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
            // Signed with the attempt's start: the API's own clock then refuses it once the window the
            // engine waits out has passed, even if this process froze before sending.
            result: client
                .pay_deals_signed_at(creds, region, request, attempt.started_at.get().as_second())
                .await,
        }),
        Action::LookUp {
            kind,
            ids,
            start_time,
            end_time,
            list_big_deals,
            ..
        } => {
            let asked = action.asked(Timestamp::now())?;
            let window = Window {
                client,
                creds,
                region,
                start_time,
                end_time,
            };
            Some(Event::LookedUp {
                asked,
                result: look_up(&window, *kind, ids, *list_big_deals).await,
            })
        }
        Action::RequeueAfter(_) | Action::AwaitChange { .. } | Action::Done => None,
    }
}

/// Where and over which window DescribeDealsByCond is asked.
struct Window<'a> {
    client: &'a Client,
    creds: &'a Credentials,
    region: Option<&'a str>,
    start_time: &'a str,
    end_time: &'a str,
}

impl Window<'_> {
    /// Every deal of one sub-order (`IdKind::Order`) or one big deal, any status, in one page.
    ///
    /// The SDK documents `Offset` as a page number while older readings treat it as a record offset, so
    /// the answer never depends on a second page: one id matches a handful of deals, and an answer that
    /// says more matched than it returned is an error (looked up again after a backoff), never a guess.
    async fn deals_of(&self, kind: IdKind, id: &str) -> Result<DescribeDealsResponse, CallError> {
        let req = DescribeDealsRequest {
            start_time: self.start_time.to_string(),
            end_time: self.end_time.to_string(),
            limit: MAX_DEALS_LIMIT,
            offset: 0,
            // Without StatusSet the API lists only delivered orders.
            status_set: status::ALL.to_vec(),
            order_id: (kind == IdKind::Order).then(|| id.to_string()),
            big_deal_id: (kind == IdKind::BigDeal).then(|| id.to_string()),
            ..Default::default()
        };
        let resp = self
            .client
            .describe_deals(self.creds, self.region, &req)
            .await?;
        if resp.total_count > resp.deals.len() as u64 {
            return Err(CallError::Incomplete(format!(
                "DescribeDealsByCond for {id} returned {} of {} deals",
                resp.deals.len(),
                resp.total_count
            )));
        }
        Ok(resp)
    }
}

/// Looks every id up with `StatusSet` (every status), one id per query; with `list_big_deals`, then
/// every distinct big deal of the deals found, one query each, adding the sub-orders not yet listed.
async fn look_up(
    window: &Window<'_>,
    kind: IdKind,
    ids: &[String],
    list_big_deals: bool,
) -> Result<LookupAnswer, CallError> {
    let mut answer = LookupAnswer::default();
    for id in ids {
        let resp = window.deals_of(kind, id).await?;
        answer.deals.extend(resp.deals);
        answer.request_id = resp.request_id;
    }
    if !list_big_deals {
        return Ok(answer);
    }
    let mut big_deals: Vec<String> = Vec::new();
    for d in &answer.deals {
        if !d.big_deal_id.is_empty() && !big_deals.contains(&d.big_deal_id) {
            big_deals.push(d.big_deal_id.clone());
        }
    }
    for big in &big_deals {
        let resp = window.deals_of(IdKind::BigDeal, big).await?;
        for d in resp.deals {
            if !answer.deals.iter().any(|a| a.order_id == d.order_id) {
                answer.deals.push(d);
            }
        }
        answer.request_id = resp.request_id;
    }
    Ok(answer)
}
