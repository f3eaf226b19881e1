//! The client's command-line flags, for the CLIs that embed the client to flatten.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::ClientConfig;

/// How to reach the Tencent Billing API ; the CLIs `#[command(flatten)]` it.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Billing API endpoint URL: the international site by default; `https://billing.tencentcloudapi.com`
    /// for an account of the domestic (China) site; the sandbox's URL for tests.
    #[arg(long, env = "DEALPAY_ENDPOINT", default_value = crate::client::DEFAULT_ENDPOINT)]
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
    /// Seconds the API executes a signed request after its X-TC-Timestamp (TC3: 300). PayDeals is signed
    /// with its attempt's start, and after an unknown outcome no new PayDeals goes out for the same
    /// orders until this plus --clock-margin has passed. Lower it only against a simulator configured
    /// the same (`dealpay sandbox --signature-ttl`).
    #[arg(long, env = "DEALPAY_SIGNATURE_TTL", default_value_t = 300)]
    pub signature_ttl: u64,
    /// Seconds of clock difference allowed between this host, other replicas and the API, added to
    /// --signature-ttl before a request given up on is taken as dead.
    #[arg(long, env = "DEALPAY_CLOCK_MARGIN", default_value_t = 60)]
    pub clock_margin: u64,
}

impl ClientArgs {
    /// The signature window and clock margin, as the engine's policy holds them.
    pub fn request_window(&self) -> (Duration, Duration) {
        (
            Duration::from_secs(self.signature_ttl.max(1)),
            Duration::from_secs(self.clock_margin),
        )
    }

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
