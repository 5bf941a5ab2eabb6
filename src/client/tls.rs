//! The client's TLS: which certificates it trusts ([`Trust`]) and the two
//! rustls configurations an `https://` endpoint needs — one offering
//! ALPN `h2` then `http/1.1`, as browsers do, and one offering only
//! `http/1.1`, for a WebSocket that cannot ride HTTP/2 on this path.
//!
//! Trust is the system's CA bundle by default (the first of the usual
//! files that exists, as OpenSSL looks for it), a PEM file of its own
//! (`--tls-ca`: a private CA, or a server's self-signed certificate), or
//! nothing at all (`--tls-insecure`: any certificate, for a loopback bench
//! against `serve --tls-self-signed`; signatures are still checked, so the
//! handshake costs what a verifying one would, less the chain walk).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::ClientError;

/// Where system CA bundles live (Debian, Fedora, openSUSE, Alpine, macOS
/// with Homebrew's OpenSSL).
const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/etc/openssl/cert.pem",
];

/// ALPN protocol ids.
const H2: &[u8] = b"h2";
const HTTP11: &[u8] = b"http/1.1";

/// Which server certificates a client accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Trust {
    /// The system's CA bundle (`SSL_CERT_FILE` first, if set).
    #[default]
    System,
    /// The certificates of this PEM file (a CA, or the server's own).
    File(PathBuf),
    /// Any certificate: for loopback benches against a self-signed server.
    Insecure,
}

impl Trust {
    /// From the command line's `--tls-ca FILE` and `--tls-insecure`
    /// (which wins).
    pub fn from_flags(ca: Option<&Path>, insecure: bool) -> Trust {
        match (insecure, ca) {
            (true, _) => Trust::Insecure,
            (false, Some(file)) => Trust::File(file.to_owned()),
            (false, None) => Trust::System,
        }
    }
}

/// The configurations of an `https://` endpoint, built once.
#[derive(Clone)]
pub struct TlsClient {
    trust: Trust,
    /// ALPN `h2`, `http/1.1`.
    both: Arc<ClientConfig>,
    /// ALPN `http/1.1` only.
    http11: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("trust", &self.trust)
            .finish()
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        self.trust == other.trust
    }
}

impl Eq for TlsClient {}

impl TlsClient {
    /// Builds the configurations for `trust`.
    ///
    /// # Errors
    /// [`ClientError::Usage`] when the trusted file (or no system bundle)
    /// can be read, or holds no certificate.
    pub fn new(trust: Trust) -> Result<TlsClient, ClientError> {
        // ring, as the server uses (its provider is deprecated for lacking
        // a post-quantum key exchange: the two agree on X25519).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let build = |alpn: &[&[u8]]| -> Result<Arc<ClientConfig>, ClientError> {
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| ClientError::Usage(format!("TLS: {e}")))?;
            let mut c = match &trust {
                Trust::Insecure => builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider.clone())))
                    .with_no_client_auth(),
                Trust::System => builder
                    .with_root_certificates(system_roots()?)
                    .with_no_client_auth(),
                Trust::File(path) => builder
                    .with_root_certificates(Arc::new(roots_from(path)?))
                    .with_no_client_auth(),
            };
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(c))
        };
        Ok(TlsClient {
            both: build(&[H2, HTTP11])?,
            http11: build(&[HTTP11])?,
            trust,
        })
    }

    /// What it trusts.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// A connector offering `h2` (when `http2`) and `http/1.1`.
    pub(super) fn connector(&self, http2: bool) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(match http2 {
            true => self.both.clone(),
            false => self.http11.clone(),
        })
    }
}

/// The server name to verify and send (SNI) for `host`.
///
/// # Errors
/// [`ClientError::Usage`] for a host that is no DNS name or IP address.
pub(super) fn server_name(host: &str) -> Result<ServerName<'static>, ClientError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| ClientError::Usage(format!("TLS: {host:?} is not a server name: {e}")))
}

/// The system's roots, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, ClientError> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
            let path = from_env
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    format!(
                        "TLS: no system CA bundle ({}); name one with --tls-ca FILE",
                        SYSTEM_BUNDLES.join(", ")
                    )
                })?;
            roots_from(&path).map(Arc::new).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(ClientError::Usage)
}

/// Every certificate of a PEM file, as trust anchors.
fn roots_from(path: &Path) -> Result<RootCertStore, ClientError> {
    let bad = |why: String| ClientError::Usage(format!("--tls-ca {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not PEM: {e}")))?;
        // A bundle may hold a certificate webpki cannot use as an anchor:
        // skip it, as OpenSSL would; an empty store is refused below.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(bad("holds no usable certificate".into()));
    }
    Ok(roots)
}

/// `--tls-insecure`: any certificate chain, but the handshake's signature
/// must still be the certificate key's.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("feedgate-tls-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = TlsClient::new(Trust::File(empty)).unwrap_err().to_string();
        assert!(e.contains("--tls-ca") && e.contains("no usable"), "{e}");
        let e = TlsClient::new(Trust::File(dir.join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let good = dir.join("cert.pem");
        std::fs::write(&good, made.cert.pem()).unwrap();
        assert!(TlsClient::new(Trust::File(good)).is_ok());
        assert!(TlsClient::new(Trust::Insecure).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
