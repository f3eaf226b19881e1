//! TLS for the sandbox: a throwaway CA and server certificate (rcgen), or files given by the user,
//! served with rustls on the ring provider (chosen explicitly, never the process default).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use super::SandboxError;

/// Names every generated server certificate is valid for.
pub const DEFAULT_SANS: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// How the sandbox speaks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP.
    #[default]
    Plain,
    /// HTTPS with a fresh CA and server certificate written to `dir` as ca.pem, cert.pem, key.pem.
    SelfSigned {
        /// Where the PEM files go (created if missing; files are replaced on every start).
        dir: PathBuf,
        /// Extra DNS names or IP addresses for the server certificate.
        extra_sans: Vec<String>,
    },
    /// HTTPS with a PEM certificate chain and private key supplied by the user.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Tls(format!("{what}: {e}"))
}

fn write(path: &Path, data: &str) -> Result<(), SandboxError> {
    std::fs::write(path, data).map_err(|e| SandboxError::Io {
        context: format!("writing {}", path.display()),
        source: e,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, SandboxError> {
    std::fs::read(path).map_err(|e| SandboxError::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })
}

/// PEM texts of a generated CA and a server certificate signed by it.
#[derive(Debug, Clone)]
pub struct GeneratedPki {
    /// CA certificate: what clients trust.
    pub ca_pem: String,
    pub cert_pem: String,
    /// Server private key (PKCS#8).
    pub key_pem: String,
}

/// Generates a CA and a server certificate for 127.0.0.1, ::1, localhost and `extra_sans`.
pub fn generate(extra_sans: &[String]) -> Result<GeneratedPki, SandboxError> {
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_err("CA", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "dealpay sandbox CA");
    dn.push(DnType::OrganizationName, "dealpay sandbox");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(|e| tls_err("CA key", e))?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| tls_err("CA certificate", e))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
    for n in extra_sans {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_err("server", e))?;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| tls_err(&format!("SAN {n:?}"), e)),
        })
        .collect::<Result<_, _>>()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(|e| tls_err("server key", e))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| tls_err("server certificate", e))?;
    Ok(GeneratedPki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Builds the acceptor for a mode; returns the CA path to trust for self-signed mode.
pub fn acceptor(mode: &TlsMode) -> Result<Option<(TlsAcceptor, Option<PathBuf>)>, SandboxError> {
    let (cert_pem, key_pem, ca_path) = match mode {
        TlsMode::Plain => return Ok(None),
        TlsMode::SelfSigned { dir, extra_sans } => {
            std::fs::create_dir_all(dir).map_err(|e| SandboxError::Io {
                context: format!("creating {}", dir.display()),
                source: e,
            })?;
            let pki = generate(extra_sans)?;
            let ca = dir.join("ca.pem");
            write(&ca, &pki.ca_pem)?;
            write(&dir.join("cert.pem"), &pki.cert_pem)?;
            write(&dir.join("key.pem"), &pki.key_pem)?;
            (
                pki.cert_pem.into_bytes(),
                pki.key_pem.into_bytes(),
                Some(ca),
            )
        }
        TlsMode::Files { cert, key } => (read(cert)?, read(key)?, None),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err("certificate PEM", e))?;
    if certs.is_empty() {
        return Err(SandboxError::Tls("no certificate in the PEM file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| tls_err("private key PEM", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_err("certificate and key", e))?;
    // Only HTTP/1.1 is served; advertising h2 would make clients try it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some((TlsAcceptor::from(Arc::new(config)), ca_path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_mode_writes_three_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let mode = TlsMode::SelfSigned {
            dir: dir.path().join("tls"),
            extra_sans: vec!["sandbox.example".into(), "10.0.0.1".into()],
        };
        let (_, ca) = acceptor(&mode).unwrap().unwrap();
        assert_eq!(ca.unwrap(), dir.path().join("tls/ca.pem"));
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            let text = std::fs::read_to_string(dir.path().join("tls").join(f)).unwrap();
            assert!(text.starts_with("-----BEGIN"), "{f}");
        }
        let files = TlsMode::Files {
            cert: dir.path().join("tls/cert.pem"),
            key: dir.path().join("tls/key.pem"),
        };
        let (_, ca) = acceptor(&files).unwrap().unwrap();
        assert!(ca.is_none());
    }

    #[test]
    fn bad_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pem");
        std::fs::write(&p, "not pem").unwrap();
        let mode = TlsMode::Files {
            cert: p.clone(),
            key: p.clone(),
        };
        assert!(matches!(acceptor(&mode), Err(SandboxError::Tls(_))));
        let missing = TlsMode::Files {
            cert: dir.path().join("nope"),
            key: p,
        };
        assert!(matches!(acceptor(&missing), Err(SandboxError::Io { .. })));
        assert!(acceptor(&TlsMode::Plain).unwrap().is_none());
    }
}
