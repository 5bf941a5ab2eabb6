//! TLS termination: the certificate (a PEM pair from `--tls-cert` and
//! `--tls-key`, or an in-memory self-signed one), ALPN (`h2`, then
//! `http/1.1`), and reloading the pair on SIGHUP without dropping a
//! connection.
//!
//! TLS sits above the byte-counting socket (`wire.rs`): the wire counters
//! see ciphertext, handshakes included; the plaintext above is attributed
//! to transports and the records' overhead shared out in proportion
//! (`wire/tls_ledger.rs`).

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// `--tls-cert FILE --tls-key FILE`: PEM, the certificate file may hold
    /// the chain after the leaf.
    Files {
        /// The certificate (chain), PEM.
        cert: PathBuf,
        /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// `--tls-self-signed`: made at start for `localhost` and `127.0.0.1`,
    /// kept in memory only.
    SelfSigned,
}

/// Why TLS cannot be set up (the message names the flag).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{flag} {path}: {source}")]
    Read {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A file holds no usable PEM item of the kind asked for.
    #[error("{flag} {path}: {why}")]
    Pem {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The key does not belong to the certificate.
    #[error("--tls-key {key} does not match --tls-cert {cert}")]
    Mismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
    /// The self-signed certificate could not be made.
    #[error("--tls-self-signed: {0}")]
    SelfSigned(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The server's TLS: an acceptor whose certificate can be replaced while
/// it serves.
pub struct Tls {
    acceptor: TlsAcceptor,
    resolver: Arc<Current>,
    source: TlsSource,
    fingerprint: String,
}

/// The certificate new handshakes get.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

impl Tls {
    /// TLS 1.2 and 1.3 with the certificate of `source`, offering `h2`
    /// (when `http2`) and `http/1.1` by ALPN.
    ///
    /// # Errors
    /// A file that is missing, holds no certificate or key, or a key that
    /// does not match the certificate ([`TlsError`] names the flag).
    pub fn new(source: &TlsSource, http2: bool) -> Result<Tls, TlsError> {
        let key = load(source)?;
        let fingerprint = fingerprint(&key.cert[0]);
        let resolver = Arc::new(Current(RwLock::new(Arc::new(key))));
        // ring, not aws-lc-rs: no C toolchain beyond `cc` to build it. Its
        // provider is deprecated for lacking a post-quantum key exchange;
        // clients then agree on X25519, as they do with most servers.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            source: source.clone(),
            fingerprint,
        })
    }

    /// The acceptor for new connections.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// The SHA-256 fingerprint of the certificate new handshakes get, as
    /// colon-separated hex (what browsers show).
    pub fn fingerprint(&self) -> String {
        self.fingerprint_now()
    }

    fn fingerprint_now(&self) -> String {
        let current = self
            .resolver
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        current
            .cert
            .first()
            .map_or_else(|| self.fingerprint.clone(), fingerprint)
    }

    /// Reads the certificate and key again (SIGHUP): new handshakes use the
    /// new pair, open connections keep theirs. A self-signed certificate
    /// is kept as it is.
    ///
    /// # Errors
    /// The new pair is unusable; the old one stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        if self.source == TlsSource::SelfSigned {
            return Ok(());
        }
        let key = load(&self.source)?;
        *self
            .resolver
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }
}

/// The certified key `source` names.
fn load(source: &TlsSource) -> Result<CertifiedKey, TlsError> {
    let (chain, key) = match source {
        TlsSource::Files { cert, key } => (read_chain(cert)?, read_key(key)?),
        TlsSource::SelfSigned => {
            let made = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ])
            .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
            let der = made.signing_key.serialize_der();
            (
                vec![made.cert.der().clone()],
                PrivateKeyDer::try_from(der).map_err(|e| TlsError::SelfSigned(e.to_string()))?,
            )
        }
    };
    let signing = any_supported_type(&key).map_err(|e| match source {
        TlsSource::Files { key, .. } => TlsError::Pem {
            flag: "--tls-key",
            path: key.display().to_string(),
            why: format!("not a usable private key: {e}"),
        },
        TlsSource::SelfSigned => TlsError::SelfSigned(e.to_string()),
    })?;
    let certified = CertifiedKey::new(chain, signing);
    if let TlsSource::Files { cert, key } = source
        && certified.keys_match().is_err()
    {
        return Err(TlsError::Mismatch {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
        });
    }
    Ok(certified)
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        flag,
        path: path.display().to_string(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("--tls-cert", path)?;
    let bad = |why: String| TlsError::Pem {
        flag: "--tls-cert",
        path: path.display().to_string(),
        why,
    };
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(bad("holds no CERTIFICATE".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("--tls-key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        flag: "--tls-key",
        path: path.display().to_string(),
        why: format!("holds no private key: {e}"),
    })
}

/// SHA-256 of a certificate's DER, as `AB:CD:…`.
fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn pair(name: &str) -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    #[test]
    fn bad_pairs_are_refused_naming_the_flag() {
        let dir = std::env::temp_dir().join(format!("feedgate-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_a, key_a) = pair("a.example");
        let (_, key_b) = pair("b.example");
        let cert = write(&dir, "a.crt", &cert_a);
        let key = write(&dir, "a.key", &key_a);
        let other_key = write(&dir, "b.key", &key_b);
        let missing = dir.join("nope.crt");
        let ok = Tls::new(
            &TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            true,
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
        let cases = [
            (
                TlsSource::Files {
                    cert: missing,
                    key: key.clone(),
                },
                "--tls-cert",
            ),
            (
                TlsSource::Files {
                    cert: key.clone(),
                    key: key.clone(),
                },
                "--tls-cert",
            ),
            (
                TlsSource::Files {
                    cert: cert.clone(),
                    key: cert.clone(),
                },
                "--tls-key",
            ),
            (
                TlsSource::Files {
                    cert: cert.clone(),
                    key: other_key,
                },
                "does not match",
            ),
        ];
        for (source, says) in cases {
            let e = Tls::new(&source, true).err().expect("refused").to_string();
            assert!(e.contains(says), "{e}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_reload_with_a_bad_pair_keeps_the_old_one() {
        let dir = std::env::temp_dir().join(format!("feedgate-tls-r-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c1, k1) = pair("one.example");
        let (c2, k2) = pair("two.example");
        let cert = write(&dir, "s.crt", &c1);
        let key = write(&dir, "s.key", &k1);
        let tls = Tls::new(
            &TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            true,
        )
        .unwrap();
        let first = tls.fingerprint();
        // A half-written pair: the new certificate with the old key.
        write(&dir, "s.crt", &c2);
        assert!(tls.reload().is_err());
        assert_eq!(tls.fingerprint(), first);
        write(&dir, "s.key", &k2);
        tls.reload().unwrap();
        assert_ne!(tls.fingerprint(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_self_signed_certificate_has_a_fingerprint() {
        let tls = Tls::new(&TlsSource::SelfSigned, false).unwrap();
        let f = tls.fingerprint();
        assert_eq!(f.len(), 32 * 3 - 1, "{f}");
        assert!(tls.reload().is_ok());
        assert_eq!(tls.fingerprint(), f, "a self-signed certificate is kept");
    }
}
