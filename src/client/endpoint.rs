//! Where a client connects: `http://host:port[/prefix]`, parsed once.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::net::{TcpSocket, TcpStream};

use super::{ClientError, CountedStream};
use crate::wire::{ByteCount, CountingIo};

/// A feedgate server's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
    /// Path prefix, `/` or `/something/` (behind a proxy).
    prefix: String,
    /// Local address to connect from (`None`: the kernel picks).
    local: Option<IpAddr>,
}

impl Endpoint {
    /// Parses `http://host[:port][/prefix]`.
    ///
    /// # Errors
    /// [`ClientError::Usage`] for anything else (https is not spoken here:
    /// terminate TLS in front of feedgate).
    pub fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let bad = |why: &str| ClientError::Usage(format!("bad URL {url:?}: {why}"));
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("expected http://host:port"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad("bad port"))?)
            }
            _ => (authority, 80),
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
        })
    }

    /// The same endpoint, connecting from `local` (port chosen by the
    /// kernel). A load generator spreads its connections over several
    /// loopback source addresses this way, since each source address has
    /// only ~28k ephemeral ports.
    pub fn with_local_addr(mut self, local: IpAddr) -> Endpoint {
        self.local = Some(local);
        self
    }

    /// `host:port` for the `Host` header and `ws://` URLs.
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
        assert!(Endpoint::parse("https://h").is_err());
        assert!(Endpoint::parse("http://:1").is_err());
        assert!(Endpoint::parse("http://h:x").is_err());
    }
}
