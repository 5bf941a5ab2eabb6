//! A `feedgate serve` child process (the same binary), for runs whose
//! server must be a process of its own: idle mode reads its RSS, and runs
//! of more than ~9k subscribers need it because each process may hold only
//! as many sockets as its open-file limit allows (both ends of every
//! connection would otherwise live in the bench's process).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::BenchError;
use crate::client::{Endpoint, HttpConn};
use crate::wire::ByteCount;

/// The server child, killed when dropped.
pub struct ChildServer {
    child: Child,
    url: String,
}

impl ChildServer {
    /// Starts `feedgate serve` on a free loopback port, sized for
    /// `connections`, holding long polls up to `longpoll_max`; with `tls`,
    /// on HTTPS with a self-signed certificate.
    ///
    /// # Errors
    /// When this process is not the `feedgate` binary (from the library,
    /// start a server yourself and pass its URL), or spawning fails.
    pub fn spawn(
        connections: usize,
        longpoll_max: Duration,
        tls: bool,
    ) -> Result<ChildServer, BenchError> {
        let exe = std::env::current_exe()?;
        let is_feedgate = exe
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("feedgate"));
        if !is_feedgate {
            return Err(BenchError::Usage(
                "a child server runs this binary's `serve`; from the library, start a server and pass its URL (and PID)".into(),
            ));
        }
        // A free port: bind, note, release (the child binds it a moment later).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(exe)
            .args([
                "serve",
                "--listen",
                &listen,
                "--max-connections",
                &(connections + 1_000).to_string(),
                "--retention-events",
                "1000000",
                "--longpoll-max",
                &format!("{}s", longpoll_max.as_secs().max(60)),
            ])
            .args(tls.then_some("--tls-self-signed"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(ChildServer {
            child,
            url: format!("{}://{listen}", if tls { "https" } else { "http" }),
        })
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 10 s) until `GET /healthz` answers 2xx.
///
/// # Errors
/// When it never does.
pub async fn wait_healthy(ep: &Endpoint) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = async {
            let mut http = HttpConn::connect(ep, Arc::new(ByteCount::default())).await?;
            http.request(hyper::Method::GET, &ep.path("healthz"), None)
                .await
        };
        match probe.await {
            Ok((s, _)) if s.is_success() => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(BenchError::Server("the server did not come up".into()));
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
