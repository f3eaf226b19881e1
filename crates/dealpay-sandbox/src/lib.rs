//! A local simulator of the Tencent Billing API (PayDeals, DescribeDealsByCond) with fault injection,
//! a charge ledger and an admin API; see docs/sandbox.md.

pub mod admin;
pub mod api;
pub mod auth;
mod conn;
pub mod delivery;
pub mod describe;
pub mod faults;
pub mod handler;
pub mod pay;
pub mod ratelimit;
pub mod server;
pub mod state;
pub mod tls;
pub mod world;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{Fault, FaultRule};
pub use pay::{Charge, ChargeMode};
pub use state::{ActionStats, Stats};
pub use tls::TlsMode;
pub use world::{Account, DEMO_SECRET_ID, DEMO_SECRET_KEY, DEMO_UIN, Order, Voucher, World};

use state::{Shared, State};

/// Default `--rate-limit`: what the real PayDeals documents.
pub const DEFAULT_RATE_LIMIT: u32 = 20;

/// Everything that can stop the sandbox from starting.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The state file (or world) is invalid.
    #[error("invalid sandbox state: {0}")]
    State(String),
    /// Certificates or keys are unusable.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A non-loopback listen address without `allow_remote`.
    #[error(
        "refusing to listen on {0}: not a loopback address, and the sandbox (with its admin API) \
         must not be reachable from other hosts by accident; pass --allow-remote \
         (DEALPAY_SANDBOX_ALLOW_REMOTE=true) to do it anyway, ideally with --admin-token"
    )]
    Remote(SocketAddr),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

impl SandboxError {
    /// Low-cardinality label for logs and the exit message.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::State(_) => "state",
            Self::Tls(_) => "tls",
            Self::Remote(_) => "remote",
            Self::Bind { .. } => "bind",
        }
    }
}

/// Flags of `dealpay sandbox`.
#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the URL is printed first on stdout).
    #[arg(long, env = "DEALPAY_SANDBOX_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// YAML state file (accounts, orders, vouchers, faults); without it the demo world is served.
    #[arg(long, env = "DEALPAY_SANDBOX_STATE")]
    pub state: Option<PathBuf>,
    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a fresh CA; ca.pem, cert.pem and key.pem are written into this directory.
    #[arg(long, value_name = "DIR")]
    pub tls_self_signed: Option<PathBuf>,
    /// Extra DNS name or IP for the self-signed certificate (besides 127.0.0.1, ::1, localhost).
    #[arg(long = "tls-san", value_name = "NAME", requires = "tls_self_signed")]
    pub tls_sans: Vec<String>,
    /// Requests per second per account and action before `RequestLimitExceeded` (0 = off).
    #[arg(long, env = "DEALPAY_SANDBOX_RATE_LIMIT", default_value_t = DEFAULT_RATE_LIMIT)]
    pub rate_limit: u32,
    /// Charge already charged orders again instead of refusing them (to make double payments visible).
    #[arg(long, env = "DEALPAY_SANDBOX_DOUBLE_CHARGE", value_parser = clap::builder::BoolishValueParser::new())]
    pub double_charge: bool,
    /// Allow a listen address that is not loopback (e.g. `0.0.0.0:8080` for a cluster to reach it).
    #[arg(long, env = "DEALPAY_SANDBOX_ALLOW_REMOTE", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_remote: bool,
    /// Require `Authorization: Bearer TOKEN` on the admin API (`/_sandbox/*`); the Tencent API at `/` is
    /// unaffected (it checks TC3 signatures).
    #[arg(
        long,
        env = "DEALPAY_SANDBOX_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Seconds a signed request stays valid after its X-TC-Timestamp (Tencent's API: 300). Shorter only
    /// for tests, with the operator's `--signature-ttl` set the same.
    #[arg(long, env = "DEALPAY_SANDBOX_SIGNATURE_TTL", default_value_t = 300)]
    pub signature_ttl: u64,
    /// Print the demo world as a state file and exit.
    #[arg(long)]
    pub print_demo_state: bool,
}

/// How to start an in-process sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Address to bind; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The initial world.
    pub state: World,
    /// HTTP or HTTPS.
    pub tls: TlsMode,
    /// Requests per second per account and action (0 = off).
    pub rate_limit: u32,
    /// Charge orders already charged (status 2-5) again instead of answering `InvalidDeal`.
    pub double_charge: bool,
    /// Bind a non-loopback address too (otherwise `start` refuses it).
    pub allow_remote: bool,
    /// When set, the admin API answers 401 without `Authorization: Bearer <token>`.
    pub admin_token: Option<String>,
    /// Seconds a signed request stays valid after its X-TC-Timestamp (Tencent: 300). Tests shorten
    /// it, with the operator's `--signature-ttl` set the same, to wait out late requests quickly.
    pub signature_ttl: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            state: World::demo(),
            tls: TlsMode::Plain,
            rate_limit: DEFAULT_RATE_LIMIT,
            double_charge: false,
            allow_remote: false,
            admin_token: None,
            signature_ttl: auth::MAX_CLOCK_SKEW as u64,
        }
    }
}

/// A running sandbox; dropping it stops serving too, `shutdown` also waits for in-flight requests.
#[derive(Debug)]
pub struct Sandbox {
    addr: SocketAddr,
    https: bool,
    ca_pem: Option<PathBuf>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Sandbox {
    /// Binds, then serves in the background on the current tokio runtime.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        if !config.listen.ip().is_loopback() && !config.allow_remote {
            return Err(SandboxError::Remote(config.listen));
        }
        let mut world = config.state;
        world
            .normalize(jiff::Timestamp::now())
            .map_err(SandboxError::State)?;
        let tls = tls::acceptor(&config.tls)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SandboxError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: config.listen,
            source,
        })?;
        let mut state = State::new(
            world,
            config.rate_limit,
            ChargeMode::from_flag(config.double_charge),
        );
        state.signature_ttl = i64::try_from(config.signature_ttl.max(1)).unwrap_or(i64::MAX);
        let shared = Arc::new(Shared::new(state));
        let (https, acceptor, ca_pem) = match tls {
            Some((a, ca)) => (true, Some(a), ca),
            None => (false, None, None),
        };
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(
            listener,
            acceptor,
            server::router(shared.clone(), config.admin_token.filter(|t| !t.is_empty())),
            stop_rx,
        ));
        Ok(Sandbox {
            addr,
            https,
            ca_pem,
            shared,
            stop,
            task,
        })
    }

    /// The bound address (with the real port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for clients, e.g. `http://127.0.0.1:43121`; an unspecified bind address becomes loopback.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The CA certificate to trust, in self-signed mode.
    pub fn ca_pem_path(&self) -> Option<PathBuf> {
        self.ca_pem.clone()
    }

    /// Every charge so far, oldest first.
    pub fn ledger(&self) -> Vec<Charge> {
        self.shared.lock().ledger.clone()
    }

    /// A copy of the current world.
    pub fn world(&self) -> World {
        self.shared.lock().world.clone()
    }

    /// Changes the world in place (top up a balance, add an order, flip a flag).
    pub fn update_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.shared.lock().world)
    }

    /// One order as it is now.
    pub fn order(&self, order_id: &str) -> Option<Order> {
        self.shared.lock().world.orders.get(order_id).cloned()
    }

    /// Adds a fault rule; returns it with its id.
    pub fn add_fault(&self, rule: FaultRule) -> FaultRule {
        self.shared.lock().add_fault(rule)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.lock().world.faults.clear();
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Changes the rate limit (0 = off); buckets start full.
    pub fn set_rate_limit(&self, rate: u32) {
        self.shared.lock().limiter.set_rate(rate);
    }

    /// Turns double-charge mode on or off (see [`SandboxConfig::double_charge`]).
    pub fn set_double_charge(&self, on: bool) {
        self.shared.lock().charge_mode = ChargeMode::from_flag(on);
    }

    /// Restores the initial world and clears ledger, counters and rate-limit buckets.
    pub fn reset(&self) {
        self.shared.lock().reset();
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s) and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// SIGINT and SIGTERM, registered when created: a caller that reads the first stdout line and
/// sends SIGTERM at once must find the handler in place, not the default action (death by signal).
struct StopSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Self { streams }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.streams {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `dealpay sandbox` until SIGINT or SIGTERM; returns the exit code.
pub async fn run(args: SandboxArgs) -> i32 {
    if args.print_demo_state {
        print!("{}", World::demo().to_yaml());
        return 0;
    }
    let state = match &args.state {
        Some(path) => match World::from_yaml_file(path) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("sandbox: {e}");
                return 1;
            }
        },
        None => World::demo(),
    };
    let tls = match (&args.tls_self_signed, &args.tls_cert, &args.tls_key) {
        (Some(dir), _, _) => TlsMode::SelfSigned {
            dir: dir.clone(),
            extra_sans: args.tls_sans.clone(),
        },
        (None, Some(cert), Some(key)) => TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => TlsMode::Plain,
    };
    let config = SandboxConfig {
        listen: args.listen,
        state,
        tls,
        rate_limit: args.rate_limit,
        double_charge: args.double_charge,
        allow_remote: args.allow_remote,
        admin_token: args.admin_token.clone(),
        signature_ttl: args.signature_ttl,
    };
    let signals = StopSignals::install();
    let sandbox = match Sandbox::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sandbox: {e}");
            return 1;
        }
    };
    // Tests parse this first line; keep its format. Write errors are ignored: a reader that
    // stops after the first line (`head -1`) must not kill the sandbox with EPIPE.
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", sandbox.url());
        if let Some(ca) = sandbox.ca_pem_path() {
            let _ = writeln!(out, "ca certificate {}", ca.display());
        }
        let _ = out.flush();
    }
    tracing::info!(
        url = %sandbox.url(),
        rate_limit = args.rate_limit,
        double_charge = args.double_charge,
        admin_token = args.admin_token.as_deref().is_some_and(|t| !t.is_empty()),
        "sandbox serving; admin API under /_sandbox/"
    );
    signals.wait().await;
    tracing::info!("sandbox shutting down");
    sandbox.shutdown().await;
    0
}
