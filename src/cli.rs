//! The one command line: every flag, with its environment variable, in one place.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::tencent::ClientConfig;

/// dealpay: pays Tencent Cloud orders declared as Kubernetes DealPayment resources.
#[derive(Debug, Parser)]
#[command(name = "dealpay", version, about)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `dealpay_operator=debug`); an invalid one is
    /// an error (exit 2).
    #[arg(long, env = "DEALPAY_LOG", default_value = "info", global = true, value_parser = log_filter)]
    pub log_level: String,
    /// Log format.
    #[arg(long, env = "DEALPAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller against the cluster in KUBECONFIG or in-cluster config.
    Run(Box<crate::controller::RunArgs>),
    /// Print the DealPayment CustomResourceDefinition as YAML.
    Crd {
        /// Print instead the JSON Schema of a DealPayment (kubeconform's layout; `schemas/` holds it).
        #[arg(long)]
        json_schema: bool,
    },
    /// Serve a local simulator of the Tencent Billing API (not in the image's binary: `sandbox` feature).
    #[cfg(feature = "sandbox")]
    Sandbox(crate::sandbox::SandboxArgs),
    /// Pay the DealPayment manifests in a file once, without a cluster.
    Pay(crate::pay::PayArgs),
}

/// Parses an amount flag such as `1200.00` into cents.
pub fn amount_cents(s: &str) -> Result<i64, String> {
    crate::engine::money::parse_cents(s)
        .ok_or_else(|| format!("{s:?} is not an amount like 1200.00 (at most two decimals)"))
}

/// How to reach the Tencent Billing API (shared by `run` and `pay`).
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Billing API endpoint URL: the international site by default; `https://billing.tencentcloudapi.com`
    /// for an account of the domestic (China) site; the sandbox's URL for tests.
    #[arg(long, env = "DEALPAY_ENDPOINT", default_value = crate::tencent::client::DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Default X-TC-Region (PayDeals needs none; a DealPayment's `region` overrides it).
    #[arg(long, env = "DEALPAY_REGION")]
    pub region: Option<String>,
    /// Extra PEM CA bundle to trust (e.g. the sandbox's CA); public roots are compiled in.
    #[arg(long, env = "DEALPAY_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Connect timeout in seconds.
    #[arg(long, env = "DEALPAY_CONNECT_TIMEOUT", default_value_t = 5.0)]
    pub connect_timeout: f64,
    /// Whole-request timeout in seconds.
    #[arg(long, env = "DEALPAY_REQUEST_TIMEOUT", default_value_t = 30.0)]
    pub request_timeout: f64,
    /// Tencent API requests per second per account and action, evenly spaced (0 = unlimited).
    #[arg(long, env = "DEALPAY_RATE", default_value_t = 20)]
    pub rate: u32,
    /// Optional ceiling on Tencent API requests per second of the whole process (0 = none).
    #[arg(long, env = "DEALPAY_GLOBAL_RATE", default_value_t = 0)]
    pub global_rate: u32,
}

impl ApiArgs {
    /// The client configuration these flags describe.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            ca_file: self.ca_file.clone(),
            connect_timeout: Duration::from_secs_f64(self.connect_timeout.max(0.001)),
            timeout: Duration::from_secs_f64(self.request_timeout.max(0.001)),
            rate_per_second: self.rate,
            global_rate_per_second: self.global_rate,
            ..ClientConfig::default()
        }
    }
}

/// Checks a `--log-level` filter: clap refuses an invalid one (exit 2) instead of logging at `info`.
pub fn log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(|_| s.to_string())
        .map_err(|e| {
            format!("{s:?} is not a log filter like `info` or `dealpay_operator=debug,warn`: {e}")
        })
}

/// Sets up tracing as the flags ask. Text logs are coloured only when stderr is a terminal (not in
/// CI logs, `2>file` or a pod's log); `NO_COLOR` turns colour off there too.
pub fn init_logging(level: &str, format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Parses nothing, wires everything: runs the chosen subcommand and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    init_logging(&cli.log_level, cli.log_format);
    match cli.command {
        Command::Run(args) => crate::controller::run(*args).await,
        Command::Crd { json_schema } => {
            if json_schema {
                print!("{}", crate::api::admission::json_schema_text());
            } else {
                print!("{}", crate::api::crd_yaml());
            }
            0
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => crate::sandbox::run(args).await,
        Command::Pay(args) => crate::pay::run(args).await,
    }
}
