//! The HTTP client of the Billing API: signing, timeouts, body cap, rate limit and error mapping.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::credentials::Credentials;
use super::error::{CallError, ErrorClass};
use super::limiter::Limiter;
use super::models::{
    API_VERSION, DESCRIBE_DEALS_BY_COND, DescribeDealsRequest, DescribeDealsResponse, PAY_DEALS,
    PayDealsRequest, PayDealsResponse, parse_response,
};
use super::sign::{SignInput, sign};

/// Default endpoint: the international site.
pub const DEFAULT_ENDPOINT: &str = "https://billing.intl.tencentcloudapi.com";
/// Service name used in the credential scope.
pub const SERVICE: &str = "billing";
/// Content type sent and signed.
pub const CONTENT_TYPE: &str = "application/json";

/// Longest a PayDeals request may wait between its attempt's start and its sending (the rate limiter's
/// queue, a paused process): past it the request is not sent at all.
pub const PAY_SEND_FENCE: Duration = Duration::from_secs(20);

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://billing.intl.tencentcloudapi.com` or `http://127.0.0.1:8080`.
    pub endpoint: String,
    /// Default `X-TC-Region`, overridable per call.
    pub region: Option<String>,
    /// Extra PEM CA bundle trusted in addition to the compiled-in public roots.
    pub ca_file: Option<PathBuf>,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_body_bytes: usize,
    /// Requests per second per Tencent account and action (0 = unlimited).
    pub rate_per_second: u32,
    /// Requests per second for all calls of this client together (0 = no ceiling).
    pub global_rate_per_second: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            region: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_body_bytes: 4 << 20,
            rate_per_second: 20,
            global_rate_per_second: 0,
        }
    }
}

/// Configuration errors found while building a client.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The endpoint is not an http(s) URL with a host.
    #[error("invalid endpoint {0:?}: expected http(s)://host[:port]")]
    Endpoint(String),
    /// The CA file cannot be read or parsed.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// reqwest refused the configuration.
    #[error("cannot build HTTP client: {0}")]
    Http(String),
}

/// Receives one record per API call, for metrics.
pub trait CallObserver: Send + Sync {
    /// Called after every call with the account label ([`Credentials::account_label`]), action,
    /// outcome label, latency and time spent waiting for the rate limiter.
    fn observe(
        &self,
        account: &str,
        action: &'static str,
        outcome: &str,
        latency: Duration,
        limiter_wait: Duration,
    );
}

/// A Billing API client; cheap to clone, share one per process so the per-account limits hold.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    host: String,
    region: Option<String>,
    max_body_bytes: usize,
    limiter: Option<Arc<Limiter>>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url.as_str())
            .finish()
    }
}

/// The Host header for a URL: host, plus port when it is not the scheme's default.
pub fn host_header(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// The full header set of one signed request (pure, so tests can pin it).
pub fn request_headers(
    creds: &Credentials,
    host: &str,
    action: &str,
    region: Option<&str>,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let sig = sign(
        creds,
        &SignInput {
            service: SERVICE,
            host,
            content_type: CONTENT_TYPE,
            timestamp,
            body,
        },
    );
    let mut h = vec![
        ("Authorization", sig.authorization),
        ("Content-Type", CONTENT_TYPE.to_string()),
        ("Host", host.to_string()),
        ("X-TC-Action", action.to_string()),
        ("X-TC-Version", API_VERSION.to_string()),
        ("X-TC-Timestamp", timestamp.to_string()),
        ("X-TC-Language", "en-US".to_string()),
        (
            "X-TC-RequestClient",
            format!("dealpay/{}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    if let Some(r) = region.filter(|r| !r.is_empty()) {
        h.push(("X-TC-Region", r.to_string()));
    }
    if let Some(t) = &creds.token {
        h.push(("X-TC-Token", t.expose().to_string()));
    }
    h
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Splits transport failures into "never sent" and "may have been processed".
fn map_transport(e: &reqwest::Error) -> CallError {
    let text = error_chain(e);
    if e.is_connect() || e.is_builder() {
        CallError::NotSent(text)
    } else {
        CallError::OutcomeUnknown(text)
    }
}

impl Client {
    /// Builds a client from configuration.
    pub fn new(cfg: &ClientConfig) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(&cfg.endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| ConfigError::Endpoint(cfg.endpoint.clone()))?;
        let host = host_header(&url).ok_or_else(|| ConfigError::Endpoint(cfg.endpoint.clone()))?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("dealpay/{}", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).map_err(|e| ConfigError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ConfigError::CaFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(ConfigError::CaFile {
                    path: path.clone(),
                    reason: "no certificate in file".into(),
                });
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        // Evenly spaced lanes per account and action (limiter.rs), so no one-second
        // window of one account ever sees more than `rate`.
        let limiter = Some(Limiter::new(
            cfg.rate_per_second,
            cfg.global_rate_per_second,
        ))
        .filter(Limiter::is_active)
        .map(Arc::new);
        Ok(Self {
            http,
            url,
            host,
            region: cfg.region.clone().filter(|r| !r.is_empty()),
            max_body_bytes: cfg.max_body_bytes,
            limiter,
            observer: None,
        })
    }

    /// Attaches a metrics observer.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        self.url.as_str()
    }

    /// Pays orders, signed now. Never retried here: the caller must resolve any unknown outcome first.
    pub async fn pay_deals(
        &self,
        creds: &Credentials,
        region: Option<&str>,
        req: &PayDealsRequest,
    ) -> Result<PayDealsResponse, CallError> {
        self.call(creds, PAY_DEALS, region, req, None).await
    }

    /// Pays orders with `X-TC-Timestamp` set to `attempt_started` (Unix seconds), the start of the
    /// attempt recorded before the call. The API executes a signed request only within its signature
    /// window (300 s), so the attempt's record bounds when this request can still take effect, however
    /// long this process waits or freezes before sending. Refused here, unsent, when the rate limiter
    /// or anything else held it more than [`PAY_SEND_FENCE`] past that start.
    pub async fn pay_deals_signed_at(
        &self,
        creds: &Credentials,
        region: Option<&str>,
        req: &PayDealsRequest,
        attempt_started: i64,
    ) -> Result<PayDealsResponse, CallError> {
        self.call(creds, PAY_DEALS, region, req, Some(attempt_started))
            .await
    }

    /// Lists orders; retried a few times on transport and transient errors since it moves no money.
    pub async fn describe_deals(
        &self,
        creds: &Credentials,
        region: Option<&str>,
        req: &DescribeDealsRequest,
    ) -> Result<DescribeDealsResponse, CallError> {
        let mut delay = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .call(creds, DESCRIBE_DEALS_BY_COND, region, req, None)
                .await
            {
                Err(e)
                    if tries < 3
                        && matches!(
                            e.class(),
                            ErrorClass::Transient | ErrorClass::OutcomeUnknown
                        ) =>
                {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                other => return other,
            }
        }
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        creds: &Credentials,
        action: &'static str,
        region: Option<&str>,
        req: &Req,
        signed_at: Option<i64>,
    ) -> Result<Resp, CallError> {
        let body = serde_json::to_vec(req).map_err(|e| CallError::NotSent(e.to_string()))?;
        let account = creds.account_key();
        let limiter_wait = match &self.limiter {
            Some(l) => l.acquire(account, action).await,
            None => Duration::ZERO,
        };
        let now = unix_now();
        let timestamp = signed_at.unwrap_or(now);
        if now.saturating_sub(timestamp) > PAY_SEND_FENCE.as_secs() as i64 {
            return Err(CallError::NotSent(format!(
                "{action} not sent: its attempt started {}s ago, more than the {}s send fence (the request would carry an old signature time)",
                now.saturating_sub(timestamp),
                PAY_SEND_FENCE.as_secs()
            )));
        }
        let started = Instant::now();
        let result = self
            .send(
                creds,
                action,
                region.or(self.region.as_deref()),
                body,
                timestamp,
            )
            .await;
        if let (Some(l), Err(e)) = (&self.limiter, &result)
            && e.code().starts_with("RequestLimitExceeded")
        {
            l.penalize(account, action);
        }
        if let Some(o) = &self.observer {
            let outcome = match &result {
                Ok(_) => "success".to_string(),
                Err(e) => e.code().to_string(),
            };
            o.observe(
                &creds.account_label(),
                action,
                &outcome,
                started.elapsed(),
                limiter_wait,
            );
        }
        result
    }

    async fn send<Resp: DeserializeOwned>(
        &self,
        creds: &Credentials,
        action: &'static str,
        region: Option<&str>,
        body: Vec<u8>,
        timestamp: i64,
    ) -> Result<Resp, CallError> {
        let mut rb = self.http.post(self.url.clone());
        for (name, value) in request_headers(creds, &self.host, action, region, timestamp, &body) {
            rb = rb.header(name, value);
        }
        let mut resp = rb.body(body).send().await.map_err(|e| map_transport(&e))?;
        let status = resp.status();
        let mut buf = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > self.max_body_bytes {
                        return Err(CallError::OutcomeUnknown(format!(
                            "response body larger than {} bytes",
                            self.max_body_bytes
                        )));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(CallError::OutcomeUnknown(error_chain(&e))),
            }
        }
        if !status.is_success() {
            let snippet: String = String::from_utf8_lossy(&buf).chars().take(200).collect();
            return Err(CallError::OutcomeUnknown(format!(
                "HTTP {status}: {snippet}"
            )));
        }
        parse_response(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_set_matches_the_sdk() {
        let creds = Credentials::new(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            None,
        );
        let body = br#"{"OrderIds": ["20190225000000000001"], "AutoVoucher": 0}"#;
        let h = request_headers(
            &creds,
            "billing.intl.tencentcloudapi.com",
            "PayDeals",
            None,
            1551113065,
            body,
        );
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert!(get("Authorization").unwrap().ends_with(
            "Signature=095fe1dd14305f0b10aef437dce14899c75af23319d13a33a2afb5ea2b2daf2a"
        ));
        assert_eq!(get("Content-Type"), Some("application/json"));
        assert_eq!(get("Host"), Some("billing.intl.tencentcloudapi.com"));
        assert_eq!(get("X-TC-Action"), Some("PayDeals"));
        assert_eq!(get("X-TC-Version"), Some("2018-07-09"));
        assert_eq!(get("X-TC-Timestamp"), Some("1551113065"));
        assert_eq!(get("X-TC-Language"), Some("en-US"));
        assert!(get("X-TC-RequestClient").unwrap().starts_with("dealpay/"));
        assert_eq!(get("X-TC-Region"), None);
        assert_eq!(get("X-TC-Token"), None);
        assert_eq!(h.len(), 8);
    }

    #[test]
    fn region_and_token_only_when_set() {
        let creds = Credentials::new("id", "key", Some("sts".into()));
        let h = request_headers(&creds, "h", "PayDeals", Some("ap-guangzhou"), 0, b"{}");
        assert!(h.contains(&("X-TC-Region", "ap-guangzhou".to_string())));
        assert!(h.contains(&("X-TC-Token", "sts".to_string())));
        let h = request_headers(&creds, "h", "PayDeals", Some(""), 0, b"{}");
        assert!(!h.iter().any(|(k, _)| *k == "X-TC-Region"));
    }

    #[test]
    fn host_header_keeps_non_default_port() {
        let u = reqwest::Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(host_header(&u).unwrap(), "127.0.0.1:8080");
        let u = reqwest::Url::parse("https://billing.intl.tencentcloudapi.com").unwrap();
        assert_eq!(host_header(&u).unwrap(), "billing.intl.tencentcloudapi.com");
        let u = reqwest::Url::parse("https://example.com:443").unwrap();
        assert_eq!(host_header(&u).unwrap(), "example.com");
    }

    #[test]
    fn bad_endpoints_are_refused() {
        for e in ["ftp://x", "not a url", "http://"] {
            let cfg = ClientConfig {
                endpoint: e.into(),
                ..Default::default()
            };
            assert!(
                matches!(Client::new(&cfg), Err(ConfigError::Endpoint(_))),
                "{e}"
            );
        }
    }
}
