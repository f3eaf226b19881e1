//! One reconcile: resolve credentials, then the protocol in [`super::pipeline`] against the real
//! apiserver and Tencent.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action as KubeAction;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Api, Resource, ResourceExt};
use tokio::sync::watch;

use super::credentials::DefaultCredentials;
pub use super::credentials_cache::CredentialsCache;
use super::error::Error;
pub use super::events::EventPublisher;
use super::finalizer;
use super::journal::Journal;
use super::metrics::{Metrics, PaymentLabels, ResultLabels};
use super::pipeline::{self, Caller, Fresh, Next, Start, StatusStore};
use super::slots::{Share, Slots};
use super::status;
use super::superseded::Superseded;
use crate::api::{DealPayment, DealPaymentStatus};
use crate::driver::perform;
use crate::engine::{Action, Event, Note, NoteType, Policy};
use crate::tencent::{Client as TencentClient, Credentials};

/// Shared by every reconcile.
pub struct Context {
    pub kube: kube::Client,
    /// Tencent client, with the one global rate limiter.
    pub tencent: TencentClient,
    /// Default credentials and who may use them.
    pub defaults: DefaultCredentials,
    pub policy: Policy,
    /// Namespace budgets (`--namespace-budget`) and the reservations of attempts being written.
    pub budgets: Arc<super::budget::Budgets>,
    pub metrics: Arc<Metrics>,
    /// Publishes Kubernetes Events.
    pub recorder: EventPublisher,
    /// True while this replica holds the Lease (always true without leader election).
    pub leader: watch::Receiver<bool>,
    /// Credentials resolved by earlier reconciles, invalidated by the Secret watch.
    pub credentials: Arc<CredentialsCache>,
    /// Versions this process replaced: a reconcile that starts from one stops at once.
    pub superseded: Superseded,
    /// True once every watch of this leadership has listed (or `FILL_WAIT` passed): reconciles wait
    /// for it (see `lead`).
    pub filled: watch::Sender<bool>,
    /// `--concurrency` across every watched namespace (each namespace has its own controller), served
    /// round-robin between namespaces.
    pub slots: Slots,
}

/// Event notes are limited to 1 KiB by the API: cut by bytes, at a character boundary (Tencent's
/// domestic endpoint answers in Chinese, three bytes a character).
pub fn short(msg: &str) -> &str {
    const MAX: usize = 1024;
    if msg.len() <= MAX {
        return msg;
    }
    let mut end = MAX;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    &msg[..end]
}

/// The apiserver side of one DealPayment.
struct KubeStore<'a> {
    api: Api<DealPayment>,
    name: String,
    dp: &'a DealPayment,
    ctx: &'a Context,
    journal: Journal<'a>,
}

impl StatusStore for KubeStore<'_> {
    async fn write(
        &self,
        st: &DealPaymentStatus,
        expect_rv: Option<&str>,
    ) -> Result<String, Error> {
        // A new attempt takes its share of the namespace budget before it is persisted (and so
        // before PayDeals); the share is given back if the write fails.
        let admitted = self
            .ctx
            .budgets
            .admit(self.dp, st, jiff::Timestamp::now())
            .map_err(Error::OverBudget)?;
        let written = status::apply(&self.api, &self.name, st, expect_rv).await;
        match (&written, admitted) {
            (Err(_), Some(a)) => self.ctx.budgets.ledger.roll_back(a),
            (Ok(_), _) => {
                if let (Some(uid), Some(old)) = (self.dp.uid(), expect_rv) {
                    self.ctx.superseded.replaced(&uid, old);
                }
            }
            _ => {}
        }
        written
    }

    async fn read(&self) -> Result<Fresh, Error> {
        let obj = self.api.get_status(&self.name).await?;
        Ok(Fresh {
            resource_version: obj.resource_version().unwrap_or_default(),
            generation: obj.metadata.generation.unwrap_or(1),
            status: obj.status,
            spec: obj.spec,
        })
    }

    async fn open_receipt(&self, attempt: &crate::api::Attempt) -> Result<(), Error> {
        self.journal.open(attempt).await
    }

    async fn settle_receipts(
        &self,
        settled: &[crate::engine::receipts::SettledAttempt],
        status: &DealPaymentStatus,
    ) -> Result<(), Error> {
        self.journal.settle(settled, status).await
    }

    /// Publishes in its own task so the payment never waits for an Event write.
    fn publish(&self, n: &Note) {
        // The attempt's PaymentReceipt, written before the call, is its durable record: an Event that
        // says the same and expires in an hour would cost one more request per payment.
        if n.reason == crate::api::Reason::PaymentStarted {
            return;
        }
        let ev = KubeEvent {
            type_: match n.type_ {
                NoteType::Normal => EventType::Normal,
                NoteType::Warning => EventType::Warning,
            },
            reason: n.reason.to_string(),
            note: Some(short(&n.message).to_string()),
            action: "Pay".into(),
            secondary: None,
        };
        let (recorder, reference) = (self.ctx.recorder.clone(), self.dp.object_ref(&()));
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&ev, &reference).await {
                tracing::warn!(error = %e, "could not publish event");
            }
        });
    }
}

/// The Tencent side, for one DealPayment's credentials and region.
struct TencentCaller<'a, 's> {
    ctx: &'a Context,
    creds: Option<&'a Credentials>,
    region: Option<&'a str>,
    /// This reconcile's share of `--concurrency`, given back while a Tencent call waits for its
    /// account's rate limit and answer: otherwise the DealPayments of one busy account would hold every
    /// share while queueing for that account, and the other accounts would wait with nothing to do.
    slot: Slot<'s>,
}

/// A share of `ctx.slots` that can be given back and taken again.
struct Slot<'a> {
    slots: &'a Slots,
    namespace: &'a str,
    held: std::sync::Mutex<Option<Share<'a>>>,
}

impl<'a> Slot<'a> {
    async fn take(slots: &'a Slots, namespace: &'a str) -> Slot<'a> {
        let slot = Slot {
            slots,
            namespace,
            held: std::sync::Mutex::new(None),
        };
        slot.again().await;
        slot
    }

    fn give_back(&self) {
        self.held.lock().expect("slot lock").take();
    }

    async fn again(&self) {
        let share = self.slots.acquire(self.namespace).await;
        *self.held.lock().expect("slot lock") = Some(share);
    }
}

impl Caller for TencentCaller<'_, '_> {
    async fn perform(&self, action: &Action) -> Option<Event> {
        let creds = self.creds?;
        match action {
            Action::Pay { attempt, .. } => {
                tracing::info!(attempt = %attempt.id, ids = ?attempt.ids, "calling PayDeals")
            }
            Action::LookUp { ids, .. } => {
                tracing::info!(?ids, "looking up orders with DescribeDealsByCond")
            }
            _ => {}
        }
        // Test-only failpoint (debug builds only; compiled out of release builds):
        // `DEALPAY_TEST_FAILPOINT=pause-before-paydeals:SECONDS` makes every PayDeals call of this
        // process wait SECONDS after its write-ahead `inFlight` record was persisted (and after the
        // pipeline's Lease check) and before the request is sent. When `DEALPAY_TEST_FAILPOINT_FILE`
        // names a file, a line `paused <attempt id> <ids comma-separated>` is appended to it (and
        // flushed) as the pause begins, so an end-to-end test can SIGKILL the process exactly between
        // the write-ahead write and the call (tests/e2e, tests/chaos.rs).
        #[cfg(debug_assertions)]
        if let Action::Pay { attempt, .. } = action
            && let Ok(fp) = std::env::var("DEALPAY_TEST_FAILPOINT")
            && let Some(secs) = fp
                .strip_prefix("pause-before-paydeals:")
                .and_then(|s| s.parse::<f64>().ok())
        {
            if let Ok(path) = std::env::var("DEALPAY_TEST_FAILPOINT_FILE") {
                use std::io::Write as _;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                {
                    let _ = writeln!(f, "paused {} {}", attempt.id, attempt.ids.join(","));
                    let _ = f.sync_all();
                }
            }
            tracing::warn!(attempt = %attempt.id, secs, "test failpoint: pausing before PayDeals");
            tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
        }
        self.slot.give_back();
        let event = perform(&self.ctx.tencent, creds, self.region, action).await;
        self.slot.again().await;
        let event = event?;
        if let Event::Paid { result, .. } = &event {
            self.count_payment(result);
        }
        Some(event)
    }

    fn may_pay(&self) -> bool {
        *self.ctx.leader.borrow()
    }
}

impl TencentCaller<'_, '_> {
    fn count_payment(
        &self,
        r: &Result<crate::tencent::models::PayDealsResponse, crate::tencent::CallError>,
    ) {
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
        self.ctx.metrics.payments.get_or_create(&labels).inc();
    }
}

/// Reconciles one DealPayment.
#[tracing::instrument(skip_all, fields(namespace = dp.namespace().unwrap_or_default(), name = dp.name_any()))]
pub async fn reconcile(dp: Arc<DealPayment>, ctx: Arc<Context>) -> Result<KubeAction, Error> {
    let skipped = skip(&dp, &ctx);
    let result = match skipped {
        Some(_) => Ok(KubeAction::await_change()),
        None => reconcile_inner(&dp, &ctx).await,
    };
    let label = match (&result, skipped) {
        (_, Some(why)) => why.to_string(),
        (Ok(_), None) => "ok".to_string(),
        (Err(e), None) => e.category().to_string(),
    };
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels { result: label })
        .inc();
    result
}

/// Why this reconcile has nothing to do, as its metrics label.
fn skip(dp: &DealPayment, ctx: &Context) -> Option<&'static str> {
    let (uid, rv) = (dp.uid().unwrap_or_default(), dp.resource_version()?);
    if ctx.superseded.is_stale(&uid, &rv) {
        tracing::debug!(
            "cache older than this process's own write; the watch brings the newer one"
        );
        return Some("stale");
    }
    // Settled for this generation: a spec change or a deletion arrives as a new object.
    super::settled::is_settled(dp).then_some("settled")
}

async fn reconcile_inner(dp: &DealPayment, ctx: &Context) -> Result<KubeAction, Error> {
    let ns = dp.namespace().ok_or(Error::MissingMetadata)?;
    let name = dp.metadata.name.clone().ok_or(Error::MissingMetadata)?;
    // A namespace listed while others already pay is listed several times slower (the apiserver is
    // busy with their writes): every namespace starts once all are listed (docs/performance.md).
    let _ = ctx.filled.subscribe().wait_for(|filled| *filled).await;
    let slot = Slot::take(&ctx.slots, &ns).await;
    let api = Api::namespaced(ctx.kube.clone(), &ns);
    // Deletion protection (src/controller/finalizer.rs): adds the finalizer; on deletion pays nothing
    // new and holds the object until its payment's outcome is settled.
    let guard = finalizer::guard(&api, dp, ctx).await?;
    if let finalizer::Guard::Stop(action) = &guard {
        return Ok(action.clone());
    }
    let spec = guard.spec(&dp.spec);
    let (credentials, creds) = ctx.credentials.resolve(&ctx.kube, &ctx.defaults, dp).await;
    let journal = Journal {
        api: Api::namespaced(ctx.kube.clone(), &ns),
        dp,
        account: creds
            .as_ref()
            .map(|c| c.account_label())
            .unwrap_or_default(),
    };
    let store = KubeStore {
        api,
        name,
        dp,
        ctx,
        journal,
    };
    let caller = TencentCaller {
        ctx,
        creds: creds.as_ref(),
        region: dp.spec.region.as_deref(),
        slot,
    };
    let policy = ctx.budgets.policy(&ctx.policy, &ns, jiff::Timestamp::now());
    let resource_version = match &guard {
        finalizer::Guard::Added { resource_version } => Some(resource_version.clone()),
        _ => dp.resource_version(),
    };
    let start = Start {
        spec: &spec,
        generation: dp.metadata.generation.unwrap_or(1),
        status: dp.status.clone(),
        resource_version,
        credentials: &credentials,
    };
    Ok(
        match guard.bound(pipeline::run(&store, &caller, start, &policy).await?) {
            Next::After(d) => KubeAction::requeue(d),
            Next::Await => KubeAction::await_change(),
        },
    )
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

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn event_notes_are_cut_by_bytes_at_a_char_boundary() {
        let zh = "余额不足".repeat(200); // 2,400 bytes, 800 characters
        let cut = short(&zh);
        assert!(cut.len() <= 1024, "{}", cut.len());
        assert!(cut.len() >= 1021);
        assert!(zh.starts_with(cut));
        assert_eq!(short("plain"), "plain");
    }
}
