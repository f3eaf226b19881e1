//! The one command line: every flag, with its environment variable, in one place.

use clap::{Parser, Subcommand, ValueEnum};

/// dealpay: pays Tencent Cloud orders declared as Kubernetes DealPayment resources.
#[derive(Debug, Parser)]
#[command(name = "dealpay", version, about)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `dealpay_operator=debug`); an invalid one is
    /// an error (exit 2).
    #[arg(long, env = "DEALPAY_LOG", default_value = "info", global = true, value_parser = log_filter)]
    pub log_level: String,
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller against the cluster in KUBECONFIG or in-cluster config.
    Run(Box<crate::controller::RunArgs>),
    /// Print the DealPayment CustomResourceDefinition as YAML.
    Crd {
        /// Print instead the JSON Schema of a DealPayment (kubeconform's layout; `schemas/` holds it).
        #[arg(long, conflicts_with = "receipt")]
        json_schema: bool,
        /// Print instead the PaymentReceipt CRD (the payment journal).
        #[arg(long)]
        receipt: bool,
    },
    /// Serve a local simulator of the Tencent Billing API (not in the image's binary: `sandbox` feature).
    #[cfg(feature = "sandbox")]
    Sandbox(crate::sandbox::SandboxArgs),
    /// Pay the DealPayment manifests in a file once, without a cluster.
    Pay(Box<crate::pay::PayArgs>),
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

impl Cli {
    /// The async runtime the subcommand runs on: `run` on `--worker-threads`, the rest on one per core.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let threads = match &self.command {
            Command::Run(args) => args.worker_threads,
            _ => 0,
        };
        let mut builder = match threads {
            1 => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        };
        if threads > 1 {
            builder.worker_threads(usize::from(threads));
        }
        builder.enable_all().build()
    }
}

/// Parses nothing, wires everything: runs the chosen subcommand and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    init_logging(&cli.log_level, cli.log_format);
    match cli.command {
        Command::Run(args) => crate::controller::run(*args).await,
        Command::Crd {
            json_schema,
            receipt,
        } => {
            if json_schema {
                print!("{}", crate::api::admission::json_schema_text());
            } else if receipt {
                print!("{}", crate::api::receipt_crd_yaml());
            } else {
                print!("{}", crate::api::crd_yaml());
            }
            0
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => crate::sandbox::run(args).await,
        Command::Pay(args) => crate::pay::run(*args).await,
    }
}
