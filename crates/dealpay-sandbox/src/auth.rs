//! TC3-HMAC-SHA256 verification: recompute the signature with the shared signer and compare in constant time.

use super::api::ApiFailure;
use super::world::{Account, World};
use tencent_billing::credentials::Credentials;
use tencent_billing::sign::{
    ALGORITHM, SIGNED_HEADERS, SignInput, parse_authorization, scope_date, sign, signatures_equal,
};

/// Service name every credential scope must carry.
pub const SERVICE: &str = "billing";
/// Largest accepted difference between `X-TC-Timestamp` and the sandbox clock, in seconds.
pub const MAX_CLOCK_SKEW: i64 = 300;
/// The payload-hash placeholder the SDKs send in `X-TC-Content-SHA256` for unsigned bodies.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The request parts that the signature covers or that authentication reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthInput<'a> {
    /// `Authorization` header.
    pub authorization: Option<&'a str>,
    /// `Host` header exactly as sent.
    pub host: Option<&'a str>,
    /// `Content-Type` header exactly as sent.
    pub content_type: Option<&'a str>,
    /// `X-TC-Timestamp` header.
    pub timestamp: Option<&'a str>,
    /// `X-TC-Token` header.
    pub token: Option<&'a str>,
    /// `X-TC-Content-SHA256` header.
    pub content_sha256: Option<&'a str>,
    pub body: &'a [u8],
}

fn fail(code: &str, message: &str) -> ApiFailure {
    ApiFailure::new(code, message)
}

fn signature_failure() -> ApiFailure {
    fail(
        "AuthFailure.SignatureFailure",
        "The provided credentials could not be validated. Please check your signature is correct.",
    )
}

/// Finds the account that signed the request, or the error Tencent answers.
///
/// Order of checks: Authorization shape (`AuthFailure.InvalidAuthorization`), timestamp
/// (`MissingParameter`, `AuthFailure.SignatureExpire`), SecretId (`AuthFailure.SecretIdNotFound`),
/// signature (`AuthFailure.SignatureFailure`), token (`AuthFailure.TokenFailure`).
pub fn authenticate<'w>(
    world: &'w World,
    input: &AuthInput<'_>,
    now: i64,
) -> Result<&'w Account, ApiFailure> {
    authenticate_within(world, input, now, MAX_CLOCK_SKEW)
}

/// [`authenticate`] with a signature window of `ttl` seconds instead of Tencent's 300.
pub fn authenticate_within<'w>(
    world: &'w World,
    input: &AuthInput<'_>,
    now: i64,
    ttl: i64,
) -> Result<&'w Account, ApiFailure> {
    let invalid = || {
        fail(
            "AuthFailure.InvalidAuthorization",
            "Authorization in the request header is invalid: expected `TC3-HMAC-SHA256 Credential=SecretId/Date/Service/tc3_request, SignedHeaders=content-type;host, Signature=...`.",
        )
    };
    let raw = input.authorization.ok_or_else(invalid)?;
    if !raw.starts_with(ALGORITHM) {
        return Err(invalid());
    }
    let parsed = parse_authorization(raw).ok_or_else(invalid)?;
    let timestamp = fresh_timestamp(input.timestamp, now, ttl)?;
    let account = world
        .account_by_secret_id(&parsed.secret_id)
        .ok_or_else(|| {
            fail(
                "AuthFailure.SecretIdNotFound",
                "The SecretId is not found, please ensure that your SecretId is correct.",
            )
        })?;
    if parsed.signed_headers != SIGNED_HEADERS
        || parsed.service != SERVICE
        || parsed.date != scope_date(timestamp)
    {
        return Err(signature_failure());
    }
    check_signature(account, input, timestamp, &parsed.signature)?;
    let token_ok = match (&account.token, input.token.filter(|t| !t.is_empty())) {
        (None, None) => true,
        (Some(want), Some(got)) => signatures_equal(want, got),
        _ => false,
    };
    if !token_ok {
        return Err(fail(
            "AuthFailure.TokenFailure",
            "Token verification failed: the X-TC-Token is missing, invalid or not expected for this SecretId.",
        ));
    }
    Ok(account)
}

/// X-TC-Timestamp, within five minutes of the sandbox's clock.
fn fresh_timestamp(raw: Option<&str>, now: i64, ttl: i64) -> Result<i64, ApiFailure> {
    let ts_raw = raw.ok_or_else(|| {
        fail(
            "MissingParameter",
            "The request is missing a required parameter `Timestamp` (header X-TC-Timestamp).",
        )
    })?;
    let timestamp: i64 = ts_raw.trim().parse().map_err(|_| {
        fail(
            "InvalidParameter",
            "The value of header X-TC-Timestamp is not a unix timestamp.",
        )
    })?;
    // abs_diff: a timestamp near i64::MIN must not overflow into "within five minutes".
    if now.abs_diff(timestamp) > ttl.unsigned_abs() {
        return Err(fail(
            "AuthFailure.SignatureExpire",
            "Signature expired. Timestamp and server time cannot differ by more than five minutes.",
        ));
    }
    Ok(timestamp)
}

/// Recomputes the TC3 signature with the account's key and compares in constant time.
fn check_signature(
    account: &Account,
    input: &AuthInput<'_>,
    timestamp: i64,
    signature: &str,
) -> Result<(), ApiFailure> {
    let (Some(host), Some(content_type)) = (input.host, input.content_type) else {
        return Err(signature_failure());
    };
    let body = match input.content_sha256 {
        Some(v) if v.eq_ignore_ascii_case(UNSIGNED_PAYLOAD) => UNSIGNED_PAYLOAD.as_bytes(),
        _ => input.body,
    };
    let creds = Credentials::new(&account.secret_id, &account.secret_key, None);
    let expected = sign(
        &creds,
        &SignInput {
            service: SERVICE,
            host,
            content_type,
            timestamp,
            body,
        },
    );
    if !signatures_equal(&expected.signature, signature) {
        return Err(signature_failure());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tencent_billing::client::request_headers;
    use tencent_billing::credentials::Credentials;
    use tencent_billing::sign::sign;

    const NOW: i64 = 1_795_000_000;
    const HOST: &str = "127.0.0.1:8080";
    const BODY: &[u8] = br#"{"OrderIds":["1"]}"#;

    fn world() -> World {
        World::demo_with_sts()
    }

    struct Signed {
        headers: Vec<(&'static str, String)>,
    }

    impl Signed {
        fn new(id: &str, key: &str, token: Option<&str>, ts: i64) -> Self {
            let creds = Credentials::new(id, key, token.map(String::from));
            Self {
                headers: request_headers(&creds, HOST, "PayDeals", None, ts, BODY),
            }
        }

        fn get(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
        }

        fn input(&self) -> AuthInput<'_> {
            AuthInput {
                authorization: self.get("Authorization"),
                host: self.get("Host"),
                content_type: self.get("Content-Type"),
                timestamp: self.get("X-TC-Timestamp"),
                token: self.get("X-TC-Token"),
                content_sha256: None,
                body: BODY,
            }
        }
    }

    fn code(w: &World, input: &AuthInput<'_>) -> String {
        authenticate(w, input, NOW).unwrap_err().code
    }

    #[test]
    fn a_correct_signature_authenticates() {
        let w = world();
        let s = Signed::new("sandbox-secret-id", "sandbox-secret-key", None, NOW);
        assert_eq!(
            authenticate(&w, &s.input(), NOW).unwrap().uin,
            "100000000001"
        );
        let s = Signed::new("sts-id", "sts-key", Some("sts-token"), NOW - 299);
        assert_eq!(authenticate(&w, &s.input(), NOW).unwrap().uin, "2");
    }

    #[test]
    fn missing_or_malformed_authorization() {
        let w = world();
        let s = Signed::new("sandbox-secret-id", "sandbox-secret-key", None, NOW);
        for bad in [
            None,
            Some(""),
            Some("Basic abc"),
            Some("TC3-HMAC-SHA256 Credential=x, Signature=y"),
        ] {
            let mut i = s.input();
            i.authorization = bad;
            assert_eq!(code(&w, &i), "AuthFailure.InvalidAuthorization", "{bad:?}");
        }
    }

    #[test]
    fn unknown_secret_id() {
        let s = Signed::new("who", "sandbox-secret-key", None, NOW);
        assert_eq!(code(&world(), &s.input()), "AuthFailure.SecretIdNotFound");
    }

    #[test]
    fn wrong_key_body_host_or_content_type() {
        let w = world();
        let s = Signed::new("sandbox-secret-id", "wrong", None, NOW);
        assert_eq!(code(&w, &s.input()), "AuthFailure.SignatureFailure");
        let s = Signed::new("sandbox-secret-id", "sandbox-secret-key", None, NOW);
        let mut i = s.input();
        i.body = b"{}";
        assert_eq!(code(&w, &i), "AuthFailure.SignatureFailure");
        let mut i = s.input();
        i.host = Some("127.0.0.1");
        assert_eq!(
            code(&w, &i),
            "AuthFailure.SignatureFailure",
            "the port is signed"
        );
        let mut i = s.input();
        i.content_type = Some("application/json; charset=utf-8");
        assert_eq!(code(&w, &i), "AuthFailure.SignatureFailure");
        let mut i = s.input();
        i.content_type = None;
        assert_eq!(code(&w, &i), "AuthFailure.SignatureFailure");
    }

    #[test]
    fn scope_must_match() {
        let w = world();
        let s = Signed::new("sandbox-secret-id", "sandbox-secret-key", None, NOW);
        let auth = s.get("Authorization").unwrap();
        for (from, to) in [
            ("/billing/", "/cvm/"),
            ("SignedHeaders=content-type;host", "SignedHeaders=host"),
        ] {
            let changed = auth.replace(from, to);
            let mut i = s.input();
            i.authorization = Some(&changed);
            assert_eq!(code(&w, &i), "AuthFailure.SignatureFailure", "{changed}");
        }
    }

    #[test]
    fn timestamps_more_than_five_minutes_off_expire() {
        let w = world();
        for ts in [NOW - 301, NOW + 301] {
            let s = Signed::new("sandbox-secret-id", "sandbox-secret-key", None, ts);
            assert_eq!(code(&w, &s.input()), "AuthFailure.SignatureExpire");
        }
        let s = Signed::new("sandbox-secret-id", "sandbox-secret-key", None, NOW + 300);
        assert!(authenticate(&w, &s.input(), NOW).is_ok());
        let mut i = s.input();
        i.timestamp = None;
        assert_eq!(code(&w, &i), "MissingParameter");
        i.timestamp = Some("yesterday");
        assert_eq!(code(&w, &i), "InvalidParameter");
    }

    #[test]
    fn tokens_must_match_the_account() {
        let w = world();
        let s = Signed::new("sts-id", "sts-key", None, NOW);
        assert_eq!(code(&w, &s.input()), "AuthFailure.TokenFailure");
        let s = Signed::new("sts-id", "sts-key", Some("other"), NOW);
        assert_eq!(code(&w, &s.input()), "AuthFailure.TokenFailure");
        let s = Signed::new("sandbox-secret-id", "sandbox-secret-key", Some("t"), NOW);
        assert_eq!(code(&w, &s.input()), "AuthFailure.TokenFailure");
    }

    #[test]
    fn unsigned_payload_is_honoured() {
        let w = world();
        let creds = Credentials::new("sandbox-secret-id", "sandbox-secret-key", None);
        let sig = sign(
            &creds,
            &SignInput {
                service: SERVICE,
                host: HOST,
                content_type: "application/json",
                timestamp: NOW,
                body: UNSIGNED_PAYLOAD.as_bytes(),
            },
        );
        let i = AuthInput {
            authorization: Some(&sig.authorization),
            host: Some(HOST),
            content_type: Some("application/json"),
            timestamp: Some("1795000000"),
            token: None,
            content_sha256: Some(UNSIGNED_PAYLOAD),
            body: b"anything",
        };
        assert!(authenticate(&w, &i, NOW).is_ok());
    }
}
