//! One reconcile: resolve credentials, let the engine decide, persist, call, fold the answer, repeat.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action as KubeAction;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use tokio::sync::watch;

use super::credentials::{DefaultCredentials, resolve};
use super::error::Error;
use super::metrics::{Metrics, PaymentLabels, ResultLabels};
use super::status;
use crate::api::DealPayment;
use crate::driver::{decide_now, perform};
use crate::engine::{Action, Event, NoteType, Policy};
use crate::tencent::Client as TencentClient;

/// Shared by every reconcile.
pub struct Context {
    /// Kubernetes client.
    pub kube: kube::Client,
    /// Tencent client, with the one global rate limiter.
    pub tencent: TencentClient,
    /// Default credentials and who may use them.
    pub defaults: DefaultCredentials,
    /// Backoff policy.
    pub policy: Policy,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// True while this replica holds the Lease (always true without leader election).
    pub leader: watch::Receiver<bool>,
}

/// Whether a decision rests on what was read or on the answer of a call this reconcile made.
enum EventKind {
    Observed,
    Answered,
}

/// Engine steps one reconcile may take before yielding (a step is one API call at most).
const MAX_STEPS: usize = 8;

fn short(msg: &str) -> String {
    // Event notes are limited to 1 kB by the API.
    msg.chars().take(1000).collect()
}

/// Publishes an Event without holding up the payment: the write happens in its own task.
fn publish(ctx: &Context, dp: &DealPayment, type_: NoteType, reason: &str, note: &str) {
    let ev = KubeEvent {
        type_: match type_ {
            NoteType::Normal => EventType::Normal,
            NoteType::Warning => EventType::Warning,
        },
        reason: reason.to_string(),
        note: Some(short(note)),
        action: "Pay".into(),
        secondary: None,
    };
    let (recorder, reference) = (ctx.recorder.clone(), dp.object_ref(&()));
    tokio::spawn(async move {
        if let Err(e) = recorder.publish(&ev, &reference).await {
            tracing::warn!(error = %e, "could not publish event");
        }
    });
}

fn is_leader(ctx: &Context) -> bool {
    *ctx.leader.borrow()
}

/// Reconciles one DealPayment.
#[tracing::instrument(skip_all, fields(namespace = dp.namespace().unwrap_or_default(), name = dp.name_any()))]
pub async fn reconcile(dp: Arc<DealPayment>, ctx: Arc<Context>) -> Result<KubeAction, Error> {
    let result = step_all(&dp, &ctx).await;
    let label = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => e.category().to_string(),
    };
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels { result: label })
        .inc();
    result
}

async fn step_all(dp: &DealPayment, ctx: &Context) -> Result<KubeAction, Error> {
    let ns = dp.namespace().ok_or(Error::MissingMetadata)?;
    let name = dp.metadata.name.clone().ok_or(Error::MissingMetadata)?;
    let api: Api<DealPayment> = Api::namespaced(ctx.kube.clone(), &ns);
    let (credentials, creds) = resolve(&ctx.kube, &ctx.defaults, dp).await;
    let region = dp.spec.region.clone();
    let mut stored = dp.status.clone();
    let mut rv = dp.resource_version();
    let mut event = Event::Observe;
    for _ in 0..MAX_STEPS {
        let event_kind = if matches!(event, Event::Observe) {
            EventKind::Observed
        } else {
            EventKind::Answered
        };
        // A call's answer is always folded in and stored; only new work needs the Lease.
        if !is_leader(ctx) && matches!(event, Event::Observe) {
            return Ok(KubeAction::requeue(Duration::from_secs(5)));
        }
        let generation = dp.metadata.generation.unwrap_or(1);
        let d = decide_now(
            &dp.spec,
            stored.as_ref(),
            generation,
            &credentials,
            event,
            &ctx.policy,
        );
        let changed = stored.as_ref() != Some(&d.status);
        // A decision on what we read may rest on a stale cache: guard its write with the version read.
        // A decision that folds in a call's answer records a fact and must land whatever changed meanwhile.
        let guard = if matches!(event_kind, EventKind::Observed) {
            rv.clone()
        } else {
            None
        };
        if let Action::Pay { attempt, .. } = &d.action {
            // Write-ahead: the attempt is stored, guarded by the version we decided on, before any call.
            rv = Some(status::apply(&api, &name, &d.status, rv.as_deref()).await?);
            stored = Some(d.status.clone());
            for n in &d.notes {
                publish(ctx, dp, n.type_, &n.reason, &n.message);
            }
            if !is_leader(ctx) {
                // Lost the Lease after recording: the next leader resolves the attempt by lookup.
                tracing::warn!(attempt = %attempt.id, "lease lost before PayDeals; not calling");
                return Ok(KubeAction::requeue(Duration::from_secs(5)));
            }
            let Some(creds) = creds.as_ref() else {
                return Ok(KubeAction::requeue(Duration::from_secs(5)));
            };
            tracing::info!(attempt = %attempt.id, ids = ?attempt.ids, "calling PayDeals");
            event = perform(&ctx.tencent, creds, region.as_deref(), &d.action)
                .await
                .unwrap_or(Event::Observe);
            if let Event::Paid(r) = &event {
                let labels = match r {
                    Ok(resp) => {
                        tracing::info!(request_id = %resp.request_id, "PayDeals succeeded");
                        PaymentLabels {
                            outcome: "paid".into(),
                            code: String::new(),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(code = e.code(), class = %e.class(), request_id = e.request_id().unwrap_or_default(), "PayDeals failed: {e}");
                        PaymentLabels {
                            outcome: e.class().as_str().into(),
                            code: e.code().into(),
                        }
                    }
                };
                ctx.metrics.payments.get_or_create(&labels).inc();
            }
            continue;
        }
        if changed {
            rv = Some(status::apply(&api, &name, &d.status, guard.as_deref()).await?);
            stored = Some(d.status.clone());
        }
        for n in &d.notes {
            publish(ctx, dp, n.type_, &n.reason, &n.message);
        }
        match d.action {
            Action::Pay { .. } => unreachable!("handled above"),
            Action::LookUp { ref ids, .. } => {
                let Some(creds) = creds.as_ref() else {
                    return Ok(KubeAction::requeue(Duration::from_secs(5)));
                };
                tracing::info!(?ids, "looking up orders with DescribeDealsByCond");
                event = perform(&ctx.tencent, creds, region.as_deref(), &d.action)
                    .await
                    .unwrap_or(Event::Observe);
            }
            Action::RequeueAfter(d) => {
                return Ok(KubeAction::requeue(d.max(Duration::from_millis(50))));
            }
            Action::AwaitChange { recheck: Some(d) } => return Ok(KubeAction::requeue(d)),
            Action::AwaitChange { recheck: None } | Action::Done => {
                return Ok(KubeAction::await_change());
            }
        }
    }
    Ok(KubeAction::requeue(Duration::from_millis(100)))
}

/// Kubernetes errors retry after a short pause; Tencent errors never reach here (the engine folds them).
pub fn error_policy(_dp: Arc<DealPayment>, err: &Error, _ctx: Arc<Context>) -> KubeAction {
    match err {
        // Expected while the cache catches up with our own writes; the watch brings the new version.
        Error::Conflict => {
            tracing::debug!("status changed since it was read; deciding again");
            KubeAction::requeue(Duration::from_millis(500))
        }
        _ => {
            tracing::warn!(category = err.category(), "reconcile failed: {err}");
            KubeAction::requeue(Duration::from_secs(5))
        }
    }
}
