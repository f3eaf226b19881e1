//! `dealpay pay`: drive the engine once for each manifest in a file, without a cluster.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde::Deserialize;
use tokio::time::Instant;

use crate::api::{DealPayment, validate_spec};
use crate::api::{DealPaymentStatus, Reason};
use crate::controller::credentials::credentials_from_secret;
use crate::controller::error::Error as ShellError;
use crate::controller::pipeline::{self, Caller, Fresh, Next, Start, StatusStore};
use crate::driver::perform;
use crate::engine::conditions::{PAYABLE, READY, RECONCILING, STALLED, find, is_true};
use crate::engine::{Action, CredentialsState, Event, Note, Policy, verify_first};
#[cfg(feature = "sandbox")]
use crate::sandbox::{DEMO_SECRET_ID, DEMO_SECRET_KEY, Sandbox, SandboxConfig};
use crate::tencent::ClientArgs;
use crate::tencent::{Client, Credentials};

/// Exit code: every manifest is Ready.
pub const EXIT_READY: i32 = 0;
/// Exit code: a manifest, flag or credential file is invalid.
pub const EXIT_INVALID: i32 = 2;
/// Exit code: a payment stalled (needs a person or a spec change) or is suspended.
pub const EXIT_STALLED: i32 = 3;
/// Exit code: `--timeout` ran out first.
pub const EXIT_TIMEOUT: i32 = 4;

/// Flags of `dealpay pay`.
#[derive(Debug, clap::Args)]
pub struct PayArgs {
    /// File with one or more DealPayment manifests (YAML, `---` separated); `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Pay against an in-process sandbox with its demo world and demo credentials (only in builds with
    /// the `sandbox` feature, the default of a source checkout; the image's binary refuses it).
    #[arg(long)]
    pub sandbox: bool,
    /// Secrets for `spec.credentials.secretRef`: Kubernetes Secret manifests (data or stringData with
    /// secretId, secretKey, token), or one plain map with those keys used as the default credentials.
    #[arg(long, env = "DEALPAY_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// Bound on the whole run, in seconds. No PayDeals call starts after it; an answer is still recorded.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// Keep every status in FILE (YAML, rewritten before each PayDeals call). A rerun with the same
    /// file continues from it, looking every order up before paying anything.
    #[arg(long, env = "DEALPAY_STATE_FILE", value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Price and check every payment without paying: the same step a DealPayment with spec.dryRun takes
    /// (orders exist, are unpaid, priced, within the caps). Exit 0 when every one is Payable.
    #[arg(long)]
    pub dry_run: bool,
    /// Most one DealPayment may cost (e.g. "1200.00"); a manifest's spec.maxTotalCost applies too.
    #[arg(long, env = "DEALPAY_MAX_TOTAL_COST", value_parser = crate::api::money::amount_arg)]
    pub max_total_cost: Option<i64>,
    /// Seconds a pricing stays valid before a capped payment (as `dealpay run --quote-max-age`).
    #[arg(long, env = "DEALPAY_QUOTE_MAX_AGE", default_value_t = 60.0)]
    pub quote_max_age: f64,
    /// Continue from the `status` in the input manifests (e.g. an earlier run's output), looking every
    /// order up before paying anything. Without it an input status is ignored.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub api: ClientArgs,
}

/// Reads every DealPayment in a YAML stream. Each document is checked against the CRD's schema before
/// it is deserialised (`crate::api::admission`), so errors name the document and the field path as the
/// API server does; every error of every document is reported.
pub fn parse_manifests(text: &str) -> Result<Vec<DealPayment>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let mut value =
            serde_json::Value::deserialize(doc).map_err(|e| format!("document {}: {e}", i + 1))?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default();
        let api_version = value
            .get("apiVersion")
            .and_then(|k| k.as_str())
            .unwrap_or_default();
        if kind != "DealPayment" || api_version != "billing.dealpay.dev/v1alpha1" {
            errors.push(format!(
                "document {}: expected apiVersion billing.dealpay.dev/v1alpha1, kind DealPayment; got {api_version:?}, {kind:?}",
                i + 1
            ));
            continue;
        }
        let invalid = crate::api::admission::validate_object(&mut value);
        if !invalid.is_empty() {
            let name = value
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .unwrap_or_default();
            // The API server's words: `DealPayment.billing.dealpay.dev "NAME" is invalid: [a, b]`.
            let list = if invalid.len() == 1 {
                invalid[0].clone()
            } else {
                format!("[{}]", invalid.join(", "))
            };
            errors.push(format!(
                "document {}: DealPayment.billing.dealpay.dev {name:?} is invalid: {list}",
                i + 1
            ));
            continue;
        }
        match serde_json::from_value::<DealPayment>(value) {
            Ok(dp) => out.push(dp),
            Err(e) => errors.push(format!("document {}: {e}", i + 1)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n"))
    }
}

/// Every validation error of every manifest, each prefixed with the manifest's name.
pub fn validate_manifests(manifests: &[DealPayment]) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, dp) in manifests.iter().enumerate() {
        let name = dp
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| format!("document {}", i + 1));
        if dp.metadata.name.as_deref().unwrap_or_default().is_empty() {
            errors.push(format!("{name}: metadata.name: required"));
        }
        errors.extend(
            validate_spec(&dp.spec)
                .into_iter()
                .map(|e| format!("{name}: {e}")),
        );
    }
    errors
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlainCredentials {
    secret_id: String,
    secret_key: String,
    #[serde(default)]
    token: Option<String>,
}

struct Keyring {
    default: Option<Credentials>,
    named: BTreeMap<String, Credentials>,
    /// Only the sandbox's demo account may stand in for a named Secret: elsewhere that could pay from the wrong account.
    default_for_named: bool,
}

impl Keyring {
    fn load(
        path: Option<&PathBuf>,
        default: Option<Credentials>,
        default_for_named: bool,
    ) -> Result<Self, String> {
        let mut ring = Keyring {
            default,
            named: BTreeMap::new(),
            default_for_named,
        };
        let Some(path) = path else { return Ok(ring) };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (i, doc) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let where_ = format!("{} document {}", path.display(), i + 1);
            let value =
                serde_json::Value::deserialize(doc).map_err(|e| format!("{where_}: {e}"))?;
            if value.is_null() {
                continue;
            }
            if value.get("kind").and_then(|k| k.as_str()) == Some("Secret") {
                let secret: Secret =
                    serde_json::from_value(value).map_err(|e| format!("{where_}: {e}"))?;
                let creds = credentials_from_secret(&secret)
                    .map_err(|e| format!("{where_}: Secret {}: {e}", secret.name_any()))?;
                ring.named.insert(secret.name_any(), creds);
            } else {
                let plain: PlainCredentials = serde_json::from_value(value).map_err(|_| {
                    format!("{where_}: expected a Secret or a map with secretId and secretKey")
                })?;
                ring.default = Some(Credentials::new(
                    plain.secret_id,
                    plain.secret_key,
                    plain.token,
                ));
            }
        }
        Ok(ring)
    }

    fn for_payment(&self, dp: &DealPayment) -> Result<&Credentials, (Reason, String)> {
        match &dp.spec.credentials {
            Some(c) => self
                .named
                .get(&c.secret_ref.name)
                .or(self.default.as_ref().filter(|_| self.default_for_named))
                .ok_or_else(|| (Reason::SecretNotFound, format!("Secret {} is not in --secret-file", c.secret_ref.name))),
            None => self.default.as_ref().ok_or_else(|| {
                (Reason::NoCredentials, "no credentials: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY or pass --secret-file".into())
            }),
        }
    }
}

/// How one payment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ready.
    Ready,
    /// Stalled, suspended or otherwise waiting for a change.
    Stalled,
    /// The deadline came first.
    TimedOut,
}

/// Where `dealpay pay` keeps statuses: in memory, and with `--state-file` also on disk, rewritten
/// (atomically) at every status write — so the write-ahead record of a PayDeals call is on disk
/// before the call, and a rerun after a kill looks the orders up before paying.
#[derive(Default)]
pub struct StateFile {
    path: Option<PathBuf>,
    statuses: Mutex<BTreeMap<String, DealPaymentStatus>>,
}

impl StateFile {
    /// Reads `path` if it exists (a missing file is an empty state).
    pub fn open(path: Option<PathBuf>) -> Result<Self, String> {
        let statuses = match &path {
            Some(p) if p.exists() => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            _ => BTreeMap::new(),
        };
        Ok(Self {
            path,
            statuses: Mutex::new(statuses),
        })
    }

    fn key(dp: &DealPayment) -> String {
        format!(
            "{}/{}",
            dp.namespace().unwrap_or_else(|| "default".into()),
            dp.name_any()
        )
    }

    /// The status stored for this payment.
    pub fn get(&self, dp: &DealPayment) -> Option<DealPaymentStatus> {
        self.lock().get(&Self::key(dp)).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DealPaymentStatus>> {
        self.statuses.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, key: &str, status: &DealPaymentStatus) -> Result<(), String> {
        let mut all = self.lock();
        all.insert(key.to_string(), status.clone());
        let Some(path) = &self.path else {
            return Ok(());
        };
        let text = serde_norway::to_string(&*all).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The status side of one payment: the state file, with a counter as resourceVersion.
struct FileStore<'a> {
    file: &'a StateFile,
    key: String,
    name: String,
    rv: Mutex<u64>,
    /// The manifest's spec (a one-shot run reads it once).
    spec: crate::api::DealPaymentSpec,
    generation: i64,
}

impl StatusStore for FileStore<'_> {
    async fn write(
        &self,
        status: &DealPaymentStatus,
        _expect_rv: Option<&str>,
    ) -> Result<String, ShellError> {
        self.file
            .put(&self.key, status)
            .map_err(ShellError::StateFile)?;
        let mut rv = self.rv.lock().unwrap_or_else(|e| e.into_inner());
        *rv += 1;
        Ok(rv.to_string())
    }
    async fn read(&self) -> Result<Fresh, ShellError> {
        let rv = *self.rv.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Fresh {
            status: self.file.lock().get(&self.key).cloned(),
            resource_version: rv.to_string(),
            spec: self.spec.clone(),
            generation: self.generation,
        })
    }
    fn publish(&self, n: &Note) {
        tracing::info!(payment = %self.name, reason = %n.reason, "{}", n.message);
    }
}

/// The API side of one payment; no call starts after the deadline.
struct DeadlineCaller<'a> {
    client: &'a Client,
    creds: Option<&'a Credentials>,
    region: Option<&'a str>,
    deadline: Instant,
}

impl Caller for DeadlineCaller<'_> {
    async fn perform(&self, action: &Action) -> Option<Event> {
        perform(self.client, self.creds?, self.region, action).await
    }
    fn may_pay(&self) -> bool {
        true
    }
    fn may_start(&self) -> bool {
        Instant::now() < self.deadline
    }
}

/// Drives one DealPayment to a final state; `dp.status` is where it starts and what it ends with.
pub async fn drive(
    client: &Client,
    creds: Result<&Credentials, (Reason, String)>,
    dp: &mut DealPayment,
    deadline: Instant,
    policy: &Policy,
) -> Outcome {
    let file = StateFile::default();
    if let Some(st) = dp.status.take() {
        let _ = file.put(&StateFile::key(dp), &st);
    }
    drive_recorded(client, creds, dp, deadline, policy, &file).await
}

/// [`drive`] with the statuses in `file`.
pub async fn drive_recorded(
    client: &Client,
    creds: Result<&Credentials, (Reason, String)>,
    dp: &mut DealPayment,
    deadline: Instant,
    policy: &Policy,
    file: &StateFile,
) -> Outcome {
    let credentials = match &creds {
        Ok(_) => CredentialsState::Available {
            version: "static".into(),
        },
        Err((reason, message)) => CredentialsState::Unavailable {
            reason: reason.clone(),
            message: message.clone(),
        },
    };
    let store = FileStore {
        file,
        key: StateFile::key(dp),
        name: dp.name_any(),
        rv: Mutex::new(0),
        spec: dp.spec.clone(),
        generation: dp.metadata.generation.unwrap_or(1),
    };
    let caller = DeadlineCaller {
        client,
        creds: creds.ok(),
        region: dp.spec.region.as_deref(),
        deadline,
    };
    let outcome = loop {
        let (status, rv) = match store.read().await {
            Ok(f) => (f.status, f.resource_version),
            Err(_) => Default::default(),
        };
        let start = Start {
            spec: &dp.spec,
            generation: dp.metadata.generation.unwrap_or(1),
            status,
            resource_version: Some(rv),
            credentials: &credentials,
        };
        let next = match pipeline::run(&store, &caller, start, policy).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(payment = %store.name, "{e}");
                break Outcome::Stalled;
            }
        };
        let conditions = file.get(dp).map(|s| s.conditions).unwrap_or_default();
        if is_true(&conditions, READY) {
            break Outcome::Ready;
        }
        match next {
            Next::Await => break Outcome::Stalled,
            Next::After(_) if is_true(&conditions, STALLED) => break Outcome::Stalled,
            // Settled without being Ready (a dry run's verdict, Payable or not): the recheck the engine
            // asks for is a long-running operator's; a one-shot run has its answer.
            Next::After(_) if settled(&conditions) && Instant::now() < deadline => {
                break Outcome::Stalled;
            }
            Next::After(wait) if Instant::now() + wait > deadline => break Outcome::TimedOut,
            Next::After(wait) => tokio::time::sleep(wait).await,
        }
    };
    dp.status = file.get(dp);
    outcome
}

/// Written, and neither in progress nor stalled: nothing is left to do until the spec changes.
fn settled(conditions: &[Condition]) -> bool {
    find(conditions, RECONCILING).is_some_and(|c| c.status == "False")
}

/// The in-process sandbox of `--sandbox`.
#[cfg(feature = "sandbox")]
type SandboxHandle = Sandbox;
/// Without the `sandbox` feature there is none: `--sandbox` is refused.
#[cfg(not(feature = "sandbox"))]
type SandboxHandle = std::convert::Infallible;

#[cfg(not(feature = "sandbox"))]
async fn start_sandbox(_: u64) -> Result<(SandboxHandle, String, Credentials), String> {
    Err(
        "this dealpay was built without the sandbox (cargo feature `sandbox`); \
         run it from a source checkout: cargo run -- pay --sandbox ..."
            .to_string(),
    )
}

#[cfg(not(feature = "sandbox"))]
async fn stop_sandbox(sb: SandboxHandle) {
    match sb {}
}

#[cfg(feature = "sandbox")]
async fn start_sandbox(signature_ttl: u64) -> Result<(SandboxHandle, String, Credentials), String> {
    // The simulator keeps the signature window the operator waits out.
    let sb = Sandbox::start(SandboxConfig {
        signature_ttl,
        ..SandboxConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let url = sb.url();
    tracing::info!(%url, "paying against an in-process sandbox with its demo world");
    Ok((
        sb,
        url,
        Credentials::new(DEMO_SECRET_ID, DEMO_SECRET_KEY, None),
    ))
}

#[cfg(feature = "sandbox")]
async fn stop_sandbox(sb: SandboxHandle) {
    sb.shutdown().await;
}

fn read_input(path: &PathBuf) -> Result<String, String> {
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Runs `dealpay pay` and returns the exit code.
pub async fn run(args: PayArgs) -> i32 {
    match pay(args).await {
        Ok(code) => code,
        Err(PayError::Invalid(errors)) => {
            for e in errors {
                eprintln!("invalid: {e}");
            }
            EXIT_INVALID
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_INVALID
        }
    }
}

/// Why `dealpay pay` paid nothing at all (exit code 2); a payment that stalls is an outcome, not this.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// A manifest file could not be read or parsed.
    #[error("{0}")]
    Input(String),
    /// Manifests that the API server would refuse, one message each.
    #[error("{} invalid manifest(s)", .0.len())]
    Invalid(Vec<String>),
    /// `--sandbox` could not start its simulator.
    #[error("cannot start the sandbox: {0}")]
    Sandbox(String),
    /// `--secret-file` is unreadable or invalid.
    #[error("{0}")]
    Secrets(String),
    /// The Tencent client could not be built (e.g. an unreadable --ca-file).
    #[error("{0}")]
    Client(String),
    /// `--state-file` cannot be read.
    #[error("state file: {0}")]
    StateFile(String),
}

impl PayError {
    /// Label for logs.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Input(_) => "input",
            Self::Invalid(_) => "invalid",
            Self::Sandbox(_) => "sandbox",
            Self::Secrets(_) => "secrets",
            Self::Client(_) => "client",
            Self::StateFile(_) => "state_file",
        }
    }
}

/// load → connect → resume → pay every manifest → print → exit code.
async fn pay(args: PayArgs) -> Result<i32, PayError> {
    let mut manifests = load(&args.files)?;
    let (api, default_creds, sandbox) = endpoint(&args).await?;
    let keyring = Keyring::load(args.secret_file.as_ref(), default_creds, args.sandbox)
        .map_err(PayError::Secrets)?;
    let client = Client::new(&api.client_config()).map_err(|e| PayError::Client(e.to_string()))?;
    let file = StateFile::open(args.state_file.clone()).map_err(PayError::StateFile)?;
    resume(&mut manifests, &args, &file);
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout.max(0.0));
    let policy = crate::driver::with_request_window(
        Policy {
            max_total_cents: args.max_total_cost,
            quote_max_age: Duration::from_secs_f64(args.quote_max_age.max(0.01)),
            ..Policy::default()
        },
        &args.api,
    );
    let outcomes = futures::future::join_all(manifests.iter_mut().map(|dp| {
        let creds = keyring.for_payment(dp);
        let (client, policy, file) = (&client, &policy, &file);
        async move { drive_recorded(client, creds, dp, deadline, policy, file).await }
    }))
    .await;
    for dp in &manifests {
        print!("---\n{}", serde_norway::to_string(dp).unwrap_or_default());
    }
    if let Some(sb) = sandbox {
        stop_sandbox(sb).await;
    }
    report(&manifests, &outcomes);
    Ok(exit_code(args.dry_run, &manifests, &outcomes))
}

/// Every manifest of every file, checked as the API server would check it.
fn load(files: &[PathBuf]) -> Result<Vec<DealPayment>, PayError> {
    let mut manifests = Vec::new();
    for f in files {
        let text = read_input(f).map_err(PayError::Input)?;
        let parsed =
            parse_manifests(&text).map_err(|e| PayError::Input(format!("{}: {e}", f.display())))?;
        manifests.extend(parsed);
    }
    let errors = validate_manifests(&manifests);
    if errors.is_empty() {
        Ok(manifests)
    } else {
        Err(PayError::Invalid(errors))
    }
}

/// The API to call, the default credentials, and the sandbox serving both with `--sandbox`.
async fn endpoint(
    args: &PayArgs,
) -> Result<(ClientArgs, Option<Credentials>, Option<SandboxHandle>), PayError> {
    let mut api = args.api.clone();
    if !args.sandbox {
        return Ok((api, Credentials::from_env(), None));
    }
    let (sb, url, creds) = start_sandbox(api.signature_ttl)
        .await
        .map_err(PayError::Sandbox)?;
    api.endpoint = url;
    Ok((api, Some(creds), Some(sb)))
}

/// Statuses from the state file (or, with --resume, from the manifests) are claims to verify first.
fn resume(manifests: &mut [DealPayment], args: &PayArgs, file: &StateFile) {
    let now = jiff::Timestamp::now();
    for dp in manifests {
        dp.spec.dry_run |= args.dry_run;
        let input = dp.status.take().filter(|_| args.resume);
        if let Some(st) = file.get(dp).or(input) {
            let _ = file.put(&StateFile::key(dp), &verify_first(st, &dp.spec, now));
        }
    }
}

fn report(manifests: &[DealPayment], outcomes: &[Outcome]) {
    for (dp, o) in manifests.iter().zip(outcomes) {
        let reason = dp
            .status
            .as_ref()
            .and_then(|s| crate::engine::conditions::find(&s.conditions, READY))
            .map(|c| format!("{}: {}", c.reason, c.message))
            .unwrap_or_default();
        eprintln!("{}: {:?} {reason}", dp.name_any(), o);
    }
}

/// 0 Ready (or, in a dry run, all Payable), 3 stalled, 4 timed out.
fn exit_code(dry_run: bool, manifests: &[DealPayment], outcomes: &[Outcome]) -> i32 {
    if outcomes.contains(&Outcome::TimedOut) {
        return EXIT_TIMEOUT;
    }
    if dry_run {
        let payable = |dp: &DealPayment| {
            dp.status
                .as_ref()
                .is_some_and(|s| is_true(&s.conditions, PAYABLE))
        };
        return if manifests.iter().all(payable) {
            EXIT_READY
        } else {
            EXIT_STALLED
        };
    }
    if outcomes.contains(&Outcome::Stalled) {
        EXIT_STALLED
    } else {
        EXIT_READY
    }
}
