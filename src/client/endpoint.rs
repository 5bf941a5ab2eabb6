//! Where a client connects: `http://host:port[/prefix]` or
//! `https://host[:port][/prefix]`, parsed once, and how: TLS trust,
//! HTTP/2, a local address, a connection shared by its clones.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::net::{TcpSocket, TcpStream};

use super::linger::Sockets;
use super::pool::Pool;
use super::tls::{TlsClient, Trust};
use super::{ClientError, CountedStream};
use crate::wire::{ByteCount, CountingIo};

/// A feedgate server's base URL, and how to reach it.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    /// Path prefix, `/` or `/something/` (behind a proxy).
    prefix: String,
    /// Local address to connect from (`None`: the kernel picks).
    local: Option<IpAddr>,
    /// `https://`: TLS with these settings.
    tls: Option<TlsClient>,
    /// Speak HTTP/2: offered by ALPN under TLS, h2c with prior knowledge
    /// in the clear.
    http2: bool,
    /// The one connection this endpoint and its clones share
    /// ([`Endpoint::shared`]).
    pool: Option<Arc<Pool>>,
    /// The sockets dialed through it, while they are open (see
    /// [`Endpoint::tracked`]).
    sockets: Option<Sockets>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field(
                "url",
                &format!("{}://{}{}", self.scheme(), self.host_header(), self.prefix),
            )
            .field("local", &self.local)
            .field("trust", &self.tls.as_ref().map(TlsClient::trust))
            .field("http2", &self.http2)
            .field("shared", &self.pool.is_some())
            .finish()
    }
}

impl Endpoint {
    /// Parses `http://host[:port][/prefix]` or `https://…` (trusting the
    /// system's certificate authorities), speaking HTTP/1.1.
    ///
    /// # Errors
    /// [`ClientError::Usage`] for anything else, or an `https://` URL on a
    /// system without a CA bundle.
    pub fn parse(url: &str) -> Result<Endpoint, ClientError> {
        Self::parse_with(url, Trust::System)
    }

    /// [`Endpoint::parse`], trusting `trust` for an `https://` URL.
    ///
    /// # Errors
    /// As [`Endpoint::parse`]; a trusted file that does not load.
    pub fn parse_with(url: &str, trust: Trust) -> Result<Endpoint, ClientError> {
        let bad = |why: &str| ClientError::Usage(format!("bad URL {url:?}: {why}"));
        let (rest, tls, default_port) =
            match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
                (Some(rest), _) => (rest, false, 80),
                (_, Some(rest)) => (rest, true, 443),
                _ => return Err(bad("expected http://host:port or https://host:port")),
            };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad("bad port"))?)
            }
            _ => (authority, default_port),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let mut prefix = path.to_owned();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Endpoint {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            prefix,
            local: None,
            tls: match tls {
                true => Some(TlsClient::new(trust)?),
                false => None,
            },
            http2: false,
            pool: None,
            sockets: None,
        })
    }

    /// The same endpoint speaking HTTP/2 (`true`) or HTTP/1.1: under TLS,
    /// ALPN offers `h2` then `http/1.1` and the server chooses; in the
    /// clear, h2c with prior knowledge.
    pub fn with_http2(mut self, http2: bool) -> Endpoint {
        self.http2 = http2;
        self
    }

    /// The same endpoint whose clones all share one HTTP/2 connection, as
    /// a browser does for one origin: every request, stream and WebSocket
    /// made through it is a stream of that connection (on HTTP/1.1 each
    /// still gets a connection of its own). Their bytes count into
    /// [`Endpoint::shared_bytes`].
    pub fn shared(mut self) -> Endpoint {
        self.pool = Some(Arc::new(Pool::default()));
        self
    }

    /// The same endpoint, counting the sockets dialed through it (and its
    /// clones) until each has closed, reading the server's last bytes
    /// ([`Endpoint::sockets`]).
    pub fn tracked(mut self) -> Endpoint {
        self.sockets = Some(Sockets::default());
        self
    }

    /// The same endpoint, counting its sockets among `sockets`.
    pub(super) fn tracked_by(mut self, sockets: Sockets) -> Endpoint {
        self.sockets = Some(sockets);
        self
    }

    /// The sockets of a [`Endpoint::shared`] endpoint's connection, open
    /// until the last clone of the endpoint is gone and it has closed.
    pub fn shared_sockets(&self) -> Option<Sockets> {
        self.pool.as_ref().map(|p| p.sockets.clone())
    }

    /// The sockets of a [`Endpoint::tracked`] endpoint.
    pub fn sockets(&self) -> Option<&Sockets> {
        self.sockets.as_ref()
    }

    /// The bytes of a [`Endpoint::shared`] endpoint's connections.
    pub fn shared_bytes(&self) -> Option<Arc<ByteCount>> {
        self.pool.as_ref().map(|p| p.bytes.clone())
    }

    /// The shared connection, if any.
    pub(super) fn pool(&self) -> Option<&Pool> {
        self.pool.as_deref()
    }

    /// Whether it asks for HTTP/2.
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// Whether it is `https://`.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The TLS settings of an `https://` endpoint.
    pub(super) fn tls(&self) -> Option<&TlsClient> {
        self.tls.as_ref()
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The host, without brackets or port (TLS's server name).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The base URL, `scheme://host:port/prefix`.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme(), self.host_header(), self.prefix)
    }

    /// The same endpoint, connecting from `local` (port chosen by the
    /// kernel). A load generator spreads its connections over several
    /// loopback source addresses this way, since each source address has
    /// only ~28k ephemeral ports.
    pub fn with_local_addr(mut self, local: IpAddr) -> Endpoint {
        self.local = Some(local);
        self
    }

    /// `host:port` for the `Host` header (HTTP/2's `:authority`) and
    /// `ws://` URLs.
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The request path for `rel` (no leading slash) under the prefix.
    pub fn path(&self, rel: &str) -> String {
        format!("{}{}", self.prefix, rel)
    }

    /// Opens a counted TCP connection with Nagle off (latency matters more
    /// than packet count to a measurement client).
    ///
    /// # Errors
    /// When connecting fails.
    pub async fn connect(&self, bytes: Arc<ByteCount>) -> Result<CountedStream, ClientError> {
        Ok(CountingIo::new(self.connect_tcp().await?, bytes))
    }

    /// Opens a TCP connection with Nagle off, not yet counted (a caller
    /// that splits it counts each half).
    ///
    /// # Errors
    /// When connecting fails.
    pub async fn connect_tcp(&self) -> Result<TcpStream, ClientError> {
        let tcp = match self.local {
            None => TcpStream::connect((self.host.as_str(), self.port)).await?,
            Some(local) => {
                let mut last = None;
                let mut connected = None;
                for addr in tokio::net::lookup_host((self.host.as_str(), self.port)).await? {
                    let socket = if addr.is_ipv4() {
                        TcpSocket::new_v4()?
                    } else {
                        TcpSocket::new_v6()?
                    };
                    let attempt = async {
                        socket.bind((local, 0).into())?;
                        socket.connect(addr).await
                    };
                    match attempt.await {
                        Ok(s) => {
                            connected = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match connected {
                    Some(s) => s,
                    None => {
                        return Err(last
                            .unwrap_or_else(|| std::io::Error::other("no address to connect to"))
                            .into());
                    }
                }
            }
        };
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let e = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(e.host_header(), "127.0.0.1:8080");
        assert_eq!(e.path("metrics"), "/metrics");
        let e = Endpoint::parse("http://example:81/feed").unwrap();
        assert_eq!(e.path("topics/a/poll"), "/feed/topics/a/poll");
        assert_eq!(Endpoint::parse("http://h").unwrap().host_header(), "h:80");
        assert!(Endpoint::parse("ftp://h").is_err());
        let e = Endpoint::parse_with("https://localhost/feed", Trust::Insecure).unwrap();
        assert_eq!(e.host_header(), "localhost:443");
        assert_eq!(e.url(), "https://localhost:443/feed/");
        assert!(e.is_tls() && !e.http2());
        assert!(e.clone().with_http2(true).http2());
        assert!(Endpoint::parse("http://:1").is_err());
        assert!(Endpoint::parse("http://h:x").is_err());
    }
}
