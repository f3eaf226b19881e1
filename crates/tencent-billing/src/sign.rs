//! TC3-HMAC-SHA256 request signing, as Tencent Cloud's official SDKs implement it.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;

/// The signing algorithm name that prefixes the Authorization header.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The headers covered by the signature, in canonical order.
pub const SIGNED_HEADERS: &str = "content-type;host";

type HmacSha256 = Hmac<Sha256>;

/// What one request is signed over.
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    /// Service name in the credential scope, e.g. `billing`.
    pub service: &'a str,
    /// Host header exactly as sent (with port when not the default).
    pub host: &'a str,
    /// Content-Type header exactly as sent.
    pub content_type: &'a str,
    /// Unix seconds, also sent as `X-TC-Timestamp`.
    pub timestamp: i64,
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// Every intermediate value of one signature, so tests can pin each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Hex SHA-256 of the body.
    pub payload_hash: String,
    /// Hex SHA-256 of the canonical request.
    pub canonical_request_hash: String,
    /// `YYYY-MM-DD/<service>/tc3_request`.
    pub credential_scope: String,
    /// Hex HMAC signature.
    pub signature: String,
    /// The complete `Authorization` header value.
    pub authorization: String,
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// UTC date (`YYYY-MM-DD`) of a unix timestamp, as used in the credential scope.
pub fn scope_date(timestamp: i64) -> String {
    let days = timestamp.div_euclid(86_400);
    // try_days: a timestamp outside jiff's range gives the epoch's date (the signature then fails)
    // instead of a panic.
    let date = jiff::Span::new()
        .try_days(days)
        .ok()
        .and_then(|span| jiff::civil::date(1970, 1, 1).checked_add(span).ok())
        .unwrap_or(jiff::civil::date(1970, 1, 1));
    date.strftime("%Y-%m-%d").to_string()
}

/// Computes the TC3 signature for one POST request to `/`.
pub fn sign(creds: &Credentials, input: &SignInput<'_>) -> Signature {
    let payload_hash = sha256_hex(input.body);
    let canonical_request = format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\n{SIGNED_HEADERS}\n{payload_hash}",
        input.content_type, input.host
    );
    let canonical_request_hash = sha256_hex(canonical_request.as_bytes());
    let date = scope_date(input.timestamp);
    let credential_scope = format!("{date}/{}/tc3_request", input.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{credential_scope}\n{canonical_request_hash}",
        input.timestamp
    );
    let k_date = hmac(
        format!("TC3{}", creds.secret_key.expose()).as_bytes(),
        date.as_bytes(),
    );
    let k_service = hmac(&k_date, input.service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
        creds.secret_id
    );
    Signature {
        payload_hash,
        canonical_request_hash,
        credential_scope,
        signature,
        authorization,
    }
}

/// The parts of a received `Authorization` header (used by the sandbox to verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// SecretId named in the credential.
    pub secret_id: String,
    /// `YYYY-MM-DD` in the credential scope.
    pub date: String,
    /// Service in the credential scope.
    pub service: String,
    /// Signed header list as sent.
    pub signed_headers: String,
    /// Hex signature as sent.
    pub signature: String,
}

/// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=..., Signature=...`.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    // The SecretId itself never contains '/', so split from the right.
    let mut it = credential?.rsplitn(4, '/');
    let terminator = it.next()?;
    let service = it.next()?;
    let date = it.next()?;
    let secret_id = it.next()?;
    if terminator != "tc3_request" || secret_id.is_empty() {
        return None;
    }
    Some(ParsedAuthorization {
        secret_id: secret_id.to_string(),
        date: date.to_string(),
        service: service.to_string(),
        signed_headers: signed_headers?.to_string(),
        signature: signature?.to_string(),
    })
}

/// Constant-time comparison of two signatures, so the sandbox leaks no timing.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;

    const KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    const ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";

    #[test]
    fn tencent_published_cvm_example() {
        let creds = Credentials::new(ID, KEY, None);
        let body = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let sig = sign(
            &creds,
            &SignInput {
                service: "cvm",
                host: "cvm.tencentcloudapi.com",
                content_type: "application/json; charset=utf-8",
                timestamp: 1551113065,
                body: body.as_bytes(),
            },
        );
        assert_eq!(
            sig.payload_hash,
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sig.canonical_request_hash,
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(sig.credential_scope, "2019-02-25/cvm/tc3_request");
        assert_eq!(
            sig.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn python_sdk_pay_deals_request() {
        let creds = Credentials::new(ID, KEY, None);
        let body = r#"{"OrderIds": ["20190225000000000001"], "AutoVoucher": 0}"#;
        let sig = sign(
            &creds,
            &SignInput {
                service: "billing",
                host: "billing.intl.tencentcloudapi.com",
                content_type: "application/json",
                timestamp: 1551113065,
                body: body.as_bytes(),
            },
        );
        assert_eq!(
            sig.authorization,
            format!(
                "TC3-HMAC-SHA256 Credential={ID}/2019-02-25/billing/tc3_request, \
                 SignedHeaders=content-type;host, \
                 Signature=095fe1dd14305f0b10aef437dce14899c75af23319d13a33a2afb5ea2b2daf2a"
            )
        );
    }

    #[test]
    fn authorization_round_trips_through_the_parser() {
        let creds = Credentials::new("id/with-no-slash", KEY, None);
        let sig = sign(
            &creds,
            &SignInput {
                service: "billing",
                host: "127.0.0.1:8080",
                content_type: "application/json",
                timestamp: 0,
                body: b"{}",
            },
        );
        let parsed = parse_authorization(&sig.authorization).unwrap();
        assert_eq!(parsed.secret_id, "id/with-no-slash");
        assert_eq!(parsed.date, "1970-01-01");
        assert_eq!(parsed.service, "billing");
        assert_eq!(parsed.signed_headers, SIGNED_HEADERS);
        assert!(signatures_equal(&parsed.signature, &sig.signature));
        assert!(!signatures_equal(&parsed.signature, "00"));
    }

    #[test]
    fn malformed_authorization_is_rejected() {
        for bad in [
            "",
            "Basic abc",
            "TC3-HMAC-SHA256 Credential=id/2019-02-25/billing/other, SignedHeaders=a, Signature=b",
            "TC3-HMAC-SHA256 Credential=id, SignedHeaders=a, Signature=b",
            "TC3-HMAC-SHA256 SignedHeaders=a, Signature=b",
        ] {
            assert!(parse_authorization(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scope_date_is_utc() {
        assert_eq!(scope_date(1551113065), "2019-02-25");
        assert_eq!(scope_date(86_399), "1970-01-01");
        assert_eq!(scope_date(86_400), "1970-01-02");
    }
}
