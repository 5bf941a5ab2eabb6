//! The connection appends and reads go through — one multiplexed
//! connection to a single Redis, or redis-rs's cluster connection, which
//! sends each command to the master of its key's slot — with a deadline on
//! every command and the node's view of Redis's health, for `/healthz`.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, Pipeline, RedisError, Value};

use super::scripts::Lua;
use crate::log::LogError;
use crate::log::memory::lock;

/// Longest wait for one command's answer, whatever the connection state:
/// a publish to a hung Redis answers 503 after this, not never.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait to establish a connection.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnect backoff of the shared connection, from this…
pub(super) const BACKOFF_MIN: Duration = Duration::from_millis(100);

/// The connection for appends and reads (never blocking commands, never
/// subscriptions). It reconnects by itself.
pub(super) struct Commands {
    target: Target,
    pub(super) health: Health,
}

enum Target {
    Single(ConnectionManager),
    /// Connected on first use, so that a node starts while the cluster is
    /// unreachable (and says so on `/healthz`).
    Cluster(Box<LazyCluster>),
}

struct LazyCluster {
    client: ClusterClient,
    conn: tokio::sync::Mutex<Option<ClusterConnection>>,
}

/// A handle on either connection, cloned per command.
enum Handle {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Handle {
    /// Runs `cmd`; an error reply is an `Err`.
    async fn query(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        let reply = match self {
            Handle::Single(c) => c.req_packed_command(cmd).await?,
            Handle::Cluster(c) => c.req_packed_command(cmd).await?,
        };
        reply.extract_error()
    }

    /// The commands of `pipe` back to back on one connection (on a
    /// cluster: the master of the slot of their keys). Errors of single
    /// commands come back as [`Value::ServerError`].
    async fn pipeline(&mut self, pipe: &Pipeline, count: usize) -> Result<Vec<Value>, RedisError> {
        match self {
            Handle::Single(c) => c.req_packed_commands(pipe, 0, count).await,
            Handle::Cluster(c) => c.req_packed_commands(pipe, 0, count).await,
        }
    }
}

impl Commands {
    /// Connects lazily to one Redis at `url` (`redis://host:port/db`).
    pub(super) fn single(url: &str) -> Result<Self, String> {
        let client = Client::open(url).map_err(|e| format!("bad Redis URL {url:?}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            // A few quick tries per reconnect, so a command waiting on one
            // fails fast; the probe starts another every second.
            .set_number_of_retries(3)
            .set_min_delay(BACKOFF_MIN)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot set up the Redis connection to {url}: {e}"))?;
        Ok(Commands {
            target: Target::Single(conn),
            health: Health::new(),
        })
    }

    /// A Redis Cluster reached first through `nodes` (`redis://host:port`
    /// each); the rest of the cluster is discovered from them.
    pub(super) fn cluster(nodes: &[String]) -> Result<Self, String> {
        let client = ClusterClient::builder(nodes.iter().map(String::as_str))
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(COMMAND_TIMEOUT)
            // Redirections after a failover or a slot move are followed
            // within the command's deadline.
            .retries(4)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()
            .map_err(|e| format!("bad Redis Cluster nodes {nodes:?}: {e}"))?;
        Ok(Commands {
            target: Target::Cluster(Box::new(LazyCluster {
                client,
                conn: tokio::sync::Mutex::new(None),
            })),
            health: Health::new(),
        })
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    async fn handle(&self) -> Result<Handle, RedisError> {
        match &self.target {
            Target::Single(c) => Ok(Handle::Single(c.clone())),
            Target::Cluster(lazy) => {
                let mut conn = lazy.conn.lock().await;
                if let Some(c) = &*conn {
                    return Ok(Handle::Cluster(c.clone()));
                }
                let c = lazy.client.get_async_connection().await?;
                *conn = Some(c.clone());
                Ok(Handle::Cluster(c))
            }
        }
    }

    /// Runs `cmd` within [`COMMAND_TIMEOUT`] (on a cluster, where its key
    /// lives), recording Redis's health from the outcome.
    pub(super) async fn query(&self, cmd: &Cmd) -> Result<Value, LogError> {
        self.deadline(COMMAND_TIMEOUT, async {
            self.handle().await?.query(cmd).await
        })
        .await
    }

    /// Runs a script, loading it first when Redis does not have it (a new
    /// or restarted Redis, a promoted replica).
    pub(super) async fn script(
        &self,
        lua: &Lua,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<Value, LogError> {
        let cmd = lua.evalsha(keys, args);
        self.deadline(COMMAND_TIMEOUT, async {
            let mut conn = self.handle().await?;
            match conn.query(&cmd).await {
                Err(e) if e.code() == Some("NOSCRIPT") => {
                    conn.query(&lua.load()).await?;
                    conn.query(&cmd).await
                }
                other => other,
            }
        })
        .await
    }

    /// Runs a script and, right behind it on the same connection (to the
    /// same master), `WAIT replicas timeout`: its answer, and how many
    /// replicas confirmed having everything this connection wrote so far.
    pub(super) async fn script_and_wait(
        &self,
        lua: &Lua,
        keys: &[&str],
        args: &[&[u8]],
        replicas: usize,
        timeout: Duration,
    ) -> Result<(Value, u64), LogError> {
        let mut pipe = redis::pipe();
        pipe.add_command(lua.evalsha(keys, args));
        pipe.cmd("WAIT")
            .arg(replicas)
            .arg(timeout.as_millis() as u64);
        self.deadline(COMMAND_TIMEOUT + timeout, async {
            let mut conn = self.handle().await?;
            let mut values = conn.pipeline(&pipe, 2).await?;
            if let Some(Value::ServerError(e)) = values.first()
                && e.code() == "NOSCRIPT"
            {
                conn.query(&lua.load()).await?;
                values = conn.pipeline(&pipe, 2).await?;
            }
            let mut values = values.into_iter();
            let (Some(reply), Some(acked)) = (values.next(), values.next()) else {
                return Err(RedisError::from((
                    redis::ErrorKind::Parse,
                    "a script and WAIT answered fewer than two replies",
                )));
            };
            let reply = reply.extract_error()?;
            let acked = match acked.extract_error()? {
                Value::Int(n) => u64::try_from(n).unwrap_or(0),
                _ => 0,
            };
            Ok((reply, acked))
        })
        .await
    }

    async fn deadline<T>(
        &self,
        limit: Duration,
        work: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, LogError> {
        match tokio::time::timeout(limit, work).await {
            Ok(Ok(v)) => {
                self.health.ok();
                Ok(v)
            }
            Ok(Err(e)) => {
                let why = format!("redis: {e}");
                self.health.failed(why.clone());
                Err(LogError::Unavailable(why))
            }
            Err(_) => {
                let why = format!("redis did not answer within {limit:?}");
                self.health.failed(why.clone());
                Err(LogError::Unavailable(why))
            }
        }
    }
}

/// Whether Redis answers, for `/healthz`.
pub(super) struct Health {
    problem: Mutex<Option<String>>,
}

impl Health {
    /// Degraded until the first command succeeds: a node that has never
    /// reached Redis cannot serve anything.
    fn new() -> Self {
        Health {
            problem: Mutex::new(Some("not connected to redis yet".into())),
        }
    }

    pub(super) fn ok(&self) {
        if lock(&self.problem).take().is_some() {
            tracing::info!("redis reachable");
        }
    }

    pub(super) fn failed(&self, why: String) {
        let mut p = lock(&self.problem);
        if p.is_none() {
            tracing::warn!(error = %why, "redis unavailable");
        }
        *p = Some(why);
    }

    pub(super) fn problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }
}
