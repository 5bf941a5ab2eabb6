//! A TLS-terminating proxy for the doctor's HTTPS tests, in front of a
//! cleartext feedgate: it decrypts and forwards the bytes as they are
//! (feedgate tells HTTP/1.1 from h2c by the preface), and is broken in one
//! of the two ways a real edge breaks HTTP/2:
//!
//! - [`Edge::Http11Only`]: its ALPN offers only `http/1.1`, so every
//!   browser is downgraded to HTTP/1.1 at the edge;
//! - [`Edge::NoWebSocketOverH2`]: it speaks HTTP/2 but not RFC 8441 — the
//!   server's SETTINGS reach the client without
//!   `SETTINGS_ENABLE_CONNECT_PROTOCOL`, so a WebSocket cannot ride
//!   HTTP/2 and takes a connection of its own.

use std::net::SocketAddr;

use feedgate::tls::{Tls, TlsSource};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the edge is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// ALPN `http/1.1` only.
    Http11Only,
    /// HTTP/2 without extended CONNECT.
    NoWebSocketOverH2,
}

/// A running proxy; stops when dropped.
pub struct TlsProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// HTTP/2 frame header length, and the types and setting this proxy reads.
const FRAME_HEADER: usize = 9;
const SETTINGS: u8 = 0x4;
const ACK: u8 = 0x1;
const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
/// One setting: a 16-bit id and a 32-bit value.
const SETTING_LEN: usize = 6;
/// The largest frame feedgate may send a client that accepts the
/// protocol's default (2^14); anything longer is refused, not buffered.
const MAX_FRAME: usize = 1 << 14;

impl TlsProxy {
    /// Starts the proxy on a free loopback port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr, edge: Edge) -> TlsProxy {
        let tls = Tls::new(&TlsSource::SelfSigned, edge == Edge::NoWebSocketOverH2)
            .expect("a self-signed certificate");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = tls.acceptor().clone();
                tokio::spawn(async move {
                    let Ok(client) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let h2 = client.get_ref().1.alpn_protocol() == Some(b"h2");
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = tokio::io::split(client);
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = async {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                        let _ = server_write.shutdown().await;
                    };
                    let down = async {
                        let _ = match h2 {
                            true => {
                                strip_extended_connect(&mut server_read, &mut client_write).await
                            }
                            false => tokio::io::copy(&mut server_read, &mut client_write)
                                .await
                                .map(drop),
                        };
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        TlsProxy { addr, task }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

/// Copies HTTP/2 frames from the server, dropping
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL` from every SETTINGS frame.
async fn strip_extended_connect(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<()> {
    let mut head = [0u8; FRAME_HEADER];
    loop {
        match from.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        if len > MAX_FRAME {
            return Err(std::io::Error::other(format!("a {len}-byte frame")));
        }
        let mut payload = vec![0u8; len];
        from.read_exact(&mut payload).await?;
        if head[3] == SETTINGS && head[4] & ACK == 0 {
            payload = payload
                .chunks(SETTING_LEN)
                .filter(|s| {
                    s.len() < 2 || u16::from_be_bytes([s[0], s[1]]) != ENABLE_CONNECT_PROTOCOL
                })
                .flatten()
                .copied()
                .collect();
            let kept = payload.len();
            head[0] = (kept >> 16) as u8;
            head[1] = (kept >> 8) as u8;
            head[2] = kept as u8;
        }
        to.write_all(&head).await?;
        to.write_all(&payload).await?;
        to.flush().await?;
    }
}
