//! TLS for client and peer URLs (rustls), from etcd's flags: certificate and key files, a
//! trusted CA for client certificates, client-certificate authentication, automatic
//! self-signed certificates (`--auto-tls`), cipher suites.

use crate::error::{Error, ErrorCode, Result};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One side's TLS flags (etcd's --cert-file/--key-file/..., or their --peer-* forms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub trusted_ca_file: Option<PathBuf>,
    /// Only clients with a certificate signed by the trusted CA get in.
    pub client_cert_auth: bool,
    /// A self-signed certificate made at start when no files are given.
    pub auto_tls: bool,
    /// Certificates this list revokes are refused (etcd's --client-crl-file and
    /// --peer-crl-file).
    pub crl_file: Option<PathBuf>,
    /// Only a client certificate with this common name gets in (--peer-cert-allowed-cn).
    pub allowed_cn: Option<String>,
}

impl TlsFiles {
    /// Whether https URLs can be served.
    pub fn enabled(&self) -> bool {
        (self.cert_file.is_some() && self.key_file.is_some()) || self.auto_tls
    }
}

fn bad(cause: String) -> Error {
    Error::new(ErrorCode::InvalidConfig, cause, 0)
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("{}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| bad(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad(format!("{}: no certificate in it", path.display())));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| bad(format!("{}: {e}", path.display())))
}

/// This side's certificate chain and key: from the files, or made now (auto TLS) for
/// `hosts`, as etcd's --auto-tls does.
fn identity(
    files: &TlsFiles,
    hosts: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    match (&files.cert_file, &files.key_file) {
        (Some(c), Some(k)) => Ok((certs(c)?, key(k)?)),
        _ if files.auto_tls => {
            let made = rcgen::generate_simple_self_signed(hosts.to_vec())
                .map_err(|e| bad(format!("--auto-tls: {e}")))?;
            let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
            Ok((vec![made.cert.der().clone()], key))
        }
        _ => Err(bad(
            "https URLs need --cert-file and --key-file (or --auto-tls)".into(),
        )),
    }
}

fn roots(path: &Path) -> Result<Arc<rustls::RootCertStore>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(path)? {
        roots
            .add(c)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    }
    Ok(Arc::new(roots))
}

/// The cipher suites etcd's --cipher-suites names (Go's names for TLS 1.2 suites), of
/// those rustls has. As with Go, the list restricts TLS 1.2 only: TLS 1.3's suites stay.
fn suites(names: &[String]) -> Result<Vec<rustls::SupportedCipherSuite>> {
    let all = rustls::crypto::ring::ALL_CIPHER_SUITES;
    if names.is_empty() {
        return Ok(all.to_vec());
    }
    let mut chosen: Vec<_> = all
        .iter()
        .filter(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)))
        .copied()
        .collect();
    for n in names {
        let suite = all
            .iter()
            .find(|s| {
                matches!(s, rustls::SupportedCipherSuite::Tls12(_))
                    && format!("{:?}", s.suite()) == *n
            })
            .ok_or_else(|| {
                bad(format!(
                    "--cipher-suites: unknown or unsupported cipher suite {n:?}"
                ))
            })?;
        chosen.push(*suite);
    }
    Ok(chosen)
}

fn provider(cipher_suites: &[String]) -> Result<Arc<rustls::crypto::CryptoProvider>> {
    Ok(Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: suites(cipher_suites)?,
        ..rustls::crypto::ring::default_provider()
    }))
}

fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    let crls: std::result::Result<Vec<_>, _> = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| bad(format!("{}: {e}", path.display())))?
        .collect();
    let crls = crls.map_err(|e| bad(format!("{}: {e}", path.display())))?;
    if crls.is_empty() {
        return Err(bad(format!(
            "{}: no certificate revocation list in it",
            path.display()
        )));
    }
    Ok(crls)
}

/// The CA's check, then the certificate's common name must be the one allowed.
#[derive(Debug)]
struct AllowedCommonName {
    inner: Arc<dyn ClientCertVerifier>,
    common_name: String,
}

impl ClientCertVerifier for AllowedCommonName {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cn = common_name(end_entity);
        if cn.as_deref() != Some(self.common_name.as_str()) {
            return Err(rustls::Error::General(format!(
                "the certificate's common name {cn:?} is not the allowed {:?}",
                self.common_name
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A server's TLS: HTTP/2 (gRPC) and HTTP/1.1 by ALPN, client certificates required when
/// `client_cert_auth` (checked against the trusted CA).
pub fn server_config(
    files: &TlsFiles,
    hosts: &[String],
    cipher_suites: &[String],
) -> Result<Arc<rustls::ServerConfig>> {
    let (chain, key) = identity(files, hosts)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider(cipher_suites)?)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?;
    let builder = if files.client_cert_auth {
        let ca = files.trusted_ca_file.as_deref().ok_or_else(|| {
            bad("client certificate authentication needs a trusted CA file".into())
        })?;
        let mut verifier = WebPkiClientVerifier::builder(roots(ca)?);
        if let Some(crl) = &files.crl_file {
            verifier = verifier.with_crls(crls(crl)?);
        }
        let verifier = verifier
            .build()
            .map_err(|e| bad(format!("{}: {e}", ca.display())))?;
        match &files.allowed_cn {
            Some(cn) => builder.with_client_cert_verifier(Arc::new(AllowedCommonName {
                inner: verifier,
                common_name: cn.clone(),
            })),
            None => builder.with_client_cert_verifier(verifier),
        }
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad(format!("TLS certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A peer's TLS as a client of other peers: their certificates checked against the peer
/// trusted CA (with auto TLS and no CA, as etcd, not checked: the peers' certificates are
/// self-signed), this member's own certificate shown.
pub fn peer_client_config(
    files: &TlsFiles,
    hosts: &[String],
    cipher_suites: &[String],
) -> Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider(cipher_suites)?)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?;
    let builder = match &files.trusted_ca_file {
        Some(ca) => builder.with_root_certificates(roots(ca)?),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider(cipher_suites)?))),
    };
    let mut config = match identity(files, hosts) {
        Ok((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad(format!("TLS certificate and key: {e}")))?,
        Err(_) => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a client needs for https endpoints (etcdctl's --cacert, --cert, --key,
/// --insecure-skip-tls-verify).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA that signed the members' certificates.
    pub ca_file: Option<PathBuf>,
    /// This client's certificate and key, for members that require one.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Do not check the members' certificates (self-signed, --auto-tls).
    pub insecure_skip_verify: bool,
}

impl ClientTls {
    /// Whether https endpoints can be reached.
    pub fn enabled(&self) -> bool {
        self.ca_file.is_some() || self.insecure_skip_verify
    }
}

/// A client's TLS for https endpoints (None when it has none: https is then refused).
pub fn client_config(tls: &ClientTls) -> Result<Option<rustls::ClientConfig>> {
    if !tls.enabled() {
        return Ok(None);
    }
    let provider = provider(&[])?;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?;
    let builder = match (&tls.ca_file, tls.insecure_skip_verify) {
        (_, true) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider))),
        (Some(ca), false) => builder.with_root_certificates(roots(ca)?),
        (None, false) => unreachable!("enabled() checked"),
    };
    Ok(Some(match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => builder
            .with_client_auth_cert(certs(c)?, key(k)?)
            .map_err(|e| bad(format!("TLS certificate and key: {e}")))?,
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(bad(
                "a client certificate needs both its cert and key files".into(),
            ))
        }
    }))
}

/// etcd's peer transport with auto TLS and no CA trusts any certificate (InsecureSkipVerify):
/// the signatures are still checked, the issuer is not.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The host names and addresses of `urls`, for an automatic certificate.
pub fn hosts_of(urls: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = urls
        .iter()
        .filter_map(|u| {
            url::Url::parse(u)
                .ok()?
                .host_str()
                .map(|h| h.trim_matches(['[', ']']).to_string())
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The subject's common name of a certificate (what etcd takes as a client's user).
pub(crate) fn common_name(cert: &rustls_pki_types::CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suites_take_gos_names_for_tls12_and_keep_tls13() {
        let all = suites(&[]).unwrap();
        let name = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
        let one = suites(&[name.to_string()]).unwrap();
        assert!(one.len() < all.len());
        assert!(one.iter().any(|s| format!("{:?}", s.suite()) == name));
        assert!(one.iter().all(|s| {
            matches!(s, rustls::SupportedCipherSuite::Tls13(_))
                || format!("{:?}", s.suite()) == name
        }));
        let e = suites(&["TLS_RSA_WITH_RC4_128_SHA".to_string()]).unwrap_err();
        assert!(e.cause.contains("TLS_RSA_WITH_RC4_128_SHA"), "{}", e.cause);
    }

    #[test]
    fn https_needs_a_certificate_and_a_ca_for_client_certificates() {
        let hosts = ["127.0.0.1".to_string()];
        let none = TlsFiles::default();
        assert!(!none.enabled());
        let e = server_config(&none, &hosts, &[]).unwrap_err();
        assert!(e.cause.contains("--cert-file"), "{}", e.cause);
        let auto = TlsFiles {
            auto_tls: true,
            ..TlsFiles::default()
        };
        assert!(server_config(&auto, &hosts, &[]).is_ok());
        let no_ca = TlsFiles {
            client_cert_auth: true,
            ..auto
        };
        let e = server_config(&no_ca, &hosts, &[]).unwrap_err();
        assert!(e.cause.contains("trusted CA"), "{}", e.cause);
    }
}
