//! Finding the API key of a DealPayment: its own-namespace Secret, or the operator's default where allowed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};

use crate::api::{DealPayment, Reason};
use crate::engine::CredentialsState;
use crate::tencent::Credentials;

/// The operator's default credentials and who may use them.
#[derive(Debug, Clone, Default)]
pub struct DefaultCredentials {
    /// From the operator's environment (TENCENTCLOUD_SECRET_ID/KEY/TOKEN).
    pub env: Option<Credentials>,
    /// A Secret `(namespace, name)` holding them.
    pub secret: Option<(String, String)>,
    /// Namespaces whose DealPayments may use them.
    pub namespaces: Vec<String>,
}

impl DefaultCredentials {
    /// Whether any default credentials are configured.
    pub fn configured(&self) -> bool {
        self.env.is_some() || self.secret.is_some()
    }
}

fn unavailable(reason: Reason, message: String) -> (CredentialsState, Option<Credentials>) {
    (CredentialsState::Unavailable { reason, message }, None)
}

/// The account a credentials Secret names, if any: key `accountId`, else `uin` (`data` or
/// `stringData`). Keys of one account then share its rate limit; without it the SecretId is the account.
pub fn account_of(secret: &Secret) -> Option<String> {
    ["accountId", "uin"].iter().find_map(|k| {
        let v = secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(*k).cloned())
            .or_else(|| {
                secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(*k))
                    .and_then(|b| String::from_utf8(b.0.clone()).ok())
            })?;
        Some(v.trim().to_string()).filter(|v| !v.is_empty())
    })
}

async fn from_secret(
    client: &Client,
    ns: &str,
    name: &str,
) -> (CredentialsState, Option<Credentials>) {
    match Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(Some(secret)) => from_contents(ns, name, &secret),
        Ok(None) => unavailable(
            Reason::SecretNotFound,
            format!("Secret {ns}/{name} not found"),
        ),
        Err(kube::Error::Api(s)) if s.code == 403 => unavailable(
            Reason::SecretForbidden,
            format!(
                "the operator may not read Secret {ns}/{name}: {}",
                s.message
            ),
        ),
        Err(e) => unavailable(
            Reason::SecretUnreadable,
            format!("cannot read Secret {ns}/{name}: {e}"),
        ),
    }
}

/// The credentials a Secret holds, versioned by what they contain: a write that changes only metadata
/// (an annotation, a label, External Secrets' refresh) is not new credentials, so it resets no
/// backoff and ends no stall.
fn from_contents(ns: &str, name: &str, secret: &Secret) -> (CredentialsState, Option<Credentials>) {
    match credentials_from_secret(secret) {
        Ok(c) => {
            let c = c.with_account(account_of(secret));
            let version = format!("{ns}/{name}#{}", c.fingerprint());
            (CredentialsState::Available { version }, Some(c))
        }
        Err(e) => unavailable(Reason::SecretInvalid, format!("Secret {ns}/{name}: {e}")),
    }
}

/// Resolves the credentials of one DealPayment; the state never carries a secret value.
pub async fn resolve(
    client: &Client,
    defaults: &DefaultCredentials,
    dp: &DealPayment,
) -> (CredentialsState, Option<Credentials>) {
    let ns = dp.namespace().unwrap_or_default();
    if let Some(c) = &dp.spec.credentials {
        // Only the DealPayment's own namespace: a reference can never reach another tenant's Secret.
        return from_secret(client, &ns, &c.secret_ref.name).await;
    }
    if !defaults.configured() {
        return unavailable(
            Reason::NoCredentials,
            "spec.credentials.secretRef is not set and the operator has no default credentials"
                .into(),
        );
    }
    if !defaults.namespaces.iter().any(|n| n == &ns) {
        return unavailable(
            Reason::CredentialsNotAllowed,
            format!(
                "namespace {ns} may not use the operator's default credentials: set spec.credentials.secretRef"
            ),
        );
    }
    if let Some((sns, sname)) = &defaults.secret {
        return from_secret(client, sns, sname).await;
    }
    let creds = defaults.env.clone();
    (
        CredentialsState::Available {
            version: "env".into(),
        },
        creds,
    )
}

/// Credentials from a Secret's data/stringData keys `secretId`, `secretKey`, `token`.
pub fn credentials_from_secret(secret: &Secret) -> Result<Credentials, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in secret.data.iter().flatten() {
        let s = String::from_utf8(v.0.clone()).map_err(|_| format!("key {k} is not UTF-8"))?;
        values.insert(k.clone(), s);
    }
    for (k, v) in secret.string_data.iter().flatten() {
        values.insert(k.clone(), v.clone());
    }
    let get = |k: &str| {
        values
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let id = get("secretId").ok_or("key secretId is missing or empty")?;
    let key = get("secretKey").ok_or("key secretKey is missing or empty")?;
    Ok(Credentials::new(id, key, get("token")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret(data: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn account_is_named_by_account_id_else_uin() {
        assert_eq!(account_of(&secret(&[("secretId", "a")])), None);
        assert_eq!(
            account_of(&secret(&[("uin", "100000000001")])).as_deref(),
            Some("100000000001")
        );
        assert_eq!(
            account_of(&secret(&[("uin", "1"), ("accountId", " team-a ")])).as_deref(),
            Some("team-a")
        );
        assert_eq!(account_of(&secret(&[("accountId", "  ")])), None);
    }

    fn version_of(s: &Secret) -> String {
        match from_contents("ns", "creds", s).0 {
            CredentialsState::Available { version } => version,
            other => panic!("{other:?}"),
        }
    }

    /// Issue 21, defect 6: External Secrets, Argo CD annotations or a metadata-only edit rewrite the
    /// Secret (a new resourceVersion) without new credentials; that must not reset a backoff or a stall.
    #[test]
    fn the_version_follows_the_contents_not_the_resource_version() {
        let mut a = secret(&[("secretId", "AKIDx"), ("secretKey", "k1")]);
        a.metadata.resource_version = Some("100".into());
        let mut b = a.clone();
        b.metadata.resource_version = Some("101".into());
        b.metadata.annotations =
            Some([("argocd.argoproj.io/sync".to_string(), "x".to_string())].into());
        assert_eq!(
            version_of(&a),
            version_of(&b),
            "metadata only: same credentials"
        );
        let rotated = secret(&[("secretId", "AKIDx"), ("secretKey", "k2")]);
        assert_ne!(
            version_of(&a),
            version_of(&rotated),
            "a new key is new credentials"
        );
        let token = secret(&[("secretId", "AKIDx"), ("secretKey", "k1"), ("token", "t")]);
        assert_ne!(version_of(&a), version_of(&token));
        let v = version_of(&a);
        assert!(!v.contains("AKIDx") && !v.contains("k1"), "{v}");
    }
}
