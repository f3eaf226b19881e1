//! Credentials, held so that their secret parts never print.

use std::fmt;

/// Env var holding the SecretId (the name tccli uses).
pub const ENV_SECRET_ID: &str = "TENCENTCLOUD_SECRET_ID";
/// Env var holding the SecretKey.
pub const ENV_SECRET_KEY: &str = "TENCENTCLOUD_SECRET_KEY";
/// Env var holding the optional STS token.
pub const ENV_TOKEN: &str = "TENCENTCLOUD_TOKEN";

/// A string whose Debug and Display print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value; call only where it is used for signing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A Tencent Cloud API key pair, with an STS token for temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The SecretId (an identifier, but still not printed in full).
    pub secret_id: String,
    pub secret_key: Secret,
    /// The STS session token, sent as `X-TC-Token`.
    pub token: Option<Secret>,
    /// The account these keys belong to, when the Secret names it (`accountId` or `uin`): keys of
    /// one account then share one rate limit. Not secret; never sent to Tencent.
    pub account: Option<String>,
}

impl Credentials {
    /// Builds credentials; an empty token counts as none.
    pub fn new(
        secret_id: impl Into<String>,
        secret_key: impl Into<String>,
        token: Option<String>,
    ) -> Self {
        Self {
            secret_id: secret_id.into(),
            secret_key: Secret::new(secret_key),
            token: token.filter(|t| !t.is_empty()).map(Secret::new),
            account: None,
        }
    }

    /// The same keys, naming their account (an empty name counts as none).
    pub fn with_account(mut self, account: Option<String>) -> Self {
        self.account = account
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty());
        self
    }

    /// What the rate limiter keys on: the named account, else the SecretId.
    pub fn account_key(&self) -> &str {
        self.account.as_deref().unwrap_or(&self.secret_id)
    }

    /// A short digest of everything that signs a request (id, key, token, account): equal exactly when
    /// the credentials are the same, and no help in guessing any of them (16 hex digits of SHA-256).
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"dealpay credentials v1\0");
        for part in [
            self.secret_id.as_str(),
            self.secret_key.expose(),
            self.token.as_ref().map_or("", |t| t.expose()),
            self.account.as_deref().unwrap_or(""),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())[..16].to_string()
    }

    /// The account's label in metrics and logs: the named account as given, else `key-` and the first
    /// 12 hex digits of the SecretId's SHA-256 (never the SecretId itself).
    pub fn account_label(&self) -> String {
        match &self.account {
            Some(a) => a.clone(),
            None => {
                use sha2::Digest as _;
                let digest = sha2::Sha256::digest(self.secret_id.as_bytes());
                format!("key-{}", &hex::encode(digest)[..12])
            }
        }
    }

    /// Reads `TENCENTCLOUD_SECRET_ID`/`_SECRET_KEY`/`_TOKEN`; `None` unless both id and key are set.
    pub fn from_env() -> Option<Self> {
        let id = std::env::var(ENV_SECRET_ID)
            .ok()
            .filter(|v| !v.is_empty())?;
        let key = std::env::var(ENV_SECRET_KEY)
            .ok()
            .filter(|v| !v.is_empty())?;
        Some(Self::new(id, key, std::env::var(ENV_TOKEN).ok()))
    }

    /// The SecretId shortened for logs: the first four characters only.
    pub fn masked_id(&self) -> String {
        let head: String = self.secret_id.chars().take(4).collect();
        format!("{head}****")
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("secret_id", &self.masked_id())
            .field("secret_key", &self.secret_key)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("account", &self.account)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_print_secrets() {
        let c = Credentials::new(
            "AKIDsecretid",
            "the-key-value",
            Some("the-token-value".into()),
        );
        let shown = format!("{c:?} {} {:?}", c.secret_key, c.token);
        assert!(!shown.contains("the-key-value"), "{shown}");
        assert!(!shown.contains("the-token-value"), "{shown}");
        assert!(!shown.contains("AKIDsecretid"), "{shown}");
        assert!(shown.contains("AKID****"));
    }

    #[test]
    fn account_key_and_label() {
        let c = Credentials::new("AKIDsecretid", "k", None);
        assert_eq!(c.account_key(), "AKIDsecretid");
        let label = c.account_label();
        assert!(label.starts_with("key-") && label.len() == 16, "{label}");
        assert!(!label.contains("AKID"));
        let named = c.clone().with_account(Some(" 100000000001 ".into()));
        assert_eq!(named.account_key(), "100000000001");
        assert_eq!(named.account_label(), "100000000001");
        let other_key =
            Credentials::new("AKIDother", "k", None).with_account(Some("100000000001".into()));
        assert_eq!(other_key.account_key(), named.account_key());
        assert_eq!(c.clone().with_account(Some(String::new())).account, None);
    }

    #[test]
    fn empty_token_is_none() {
        assert!(
            Credentials::new("a", "b", Some(String::new()))
                .token
                .is_none()
        );
    }
}
