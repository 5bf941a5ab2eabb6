//! The Redis servers the tests run against: a `redis-server` child per
//! test on a free loopback port ([`RedisServer`]), or the Redis Cluster
//! `scripts/redis-test.sh` started ([`Cluster`], named by
//! `FEEDGATE_REDIS_CLUSTER`), shared by the cluster tests one at a time.
//! [`Target`] is either, for tests that run on both.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::common::PATIENCE;

/// Whether a missing Redis must fail the test rather than skip it.
fn required() -> bool {
    std::env::var("FEEDGATE_REQUIRE_REDIS").as_deref() == Ok("1")
}

/// Says a test is skipped, on the real stderr: the test harness captures
/// `eprintln!`, and a skip must be visible.
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

pub struct RedisServer {
    pub child: Child,
    pub port: u16,
    /// Working directory (AOF files when persistent); removed on drop.
    dir: PathBuf,
    persistent: bool,
    /// More `redis-server` arguments (`--replicaof …`).
    extra: Vec<String>,
}

impl RedisServer {
    pub fn binary() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("FEEDGATE_REDIS_SERVER") {
            let p = PathBuf::from(p);
            return p.is_file().then_some(p);
        }
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
    }

    /// Starts one on a free port; `None` (after saying so) when
    /// `redis-server` is not installed and not required.
    pub async fn start(persistent: bool) -> Option<RedisServer> {
        Self::start_with(persistent, Vec::new()).await
    }

    /// A replica of `master`, synced with it before this returns.
    pub async fn replica_of(master: &RedisServer) -> RedisServer {
        let extra = vec![
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            master.port.to_string(),
        ];
        let replica = Self::start_with(false, extra)
            .await
            .expect("redis-server is installed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut replica.conn().await)
                .await
                .unwrap();
            if info.contains("master_link_status:up") {
                return replica;
            }
            assert!(Instant::now() < deadline, "the replica never synced");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn start_with(persistent: bool, extra: Vec<String>) -> Option<RedisServer> {
        let Some(bin) = Self::binary() else {
            if required() {
                panic!(
                    "redis-server not installed, but FEEDGATE_REQUIRE_REDIS=1 \
                     (install the Debian package redis-server)"
                );
            }
            skip("redis-server not installed (tests/redis passes without it)");
            return None;
        };
        let dir = std::env::temp_dir().join(format!(
            "feedgate-redis-{}-{:016x}",
            std::process::id(),
            rand_u64()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // The port is free when probed; another process may grab it before
        // redis binds, so try a few.
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn(&bin, port, &dir, persistent, &extra).await {
                return Some(RedisServer {
                    child,
                    port,
                    dir,
                    persistent,
                    extra,
                });
            }
        }
        panic!("could not start redis-server on a free port");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it as an operator would (SIGTERM; with AOF it syncs first).
    pub async fn stop(&mut self) {
        signal(&self.child, "-TERM");
        let _ = tokio::time::timeout(PATIENCE, self.child.wait()).await;
    }

    /// Kills it as a crash would (SIGKILL: no shutdown, no last sync).
    pub async fn kill(&mut self) {
        signal(&self.child, "-KILL");
        let _ = tokio::time::timeout(PATIENCE, self.child.wait()).await;
    }

    /// Starts it again on the same port and directory.
    pub async fn restart(&mut self) {
        let bin = Self::binary().expect("binary");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(child) =
                spawn(&bin, self.port, &self.dir, self.persistent, &self.extra).await
            {
                self.child = child;
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not restart");
        }
    }

    pub async fn conn(&self) -> MultiplexedConnection {
        connect(&format!("127.0.0.1:{}", self.port)).await
    }

    /// `INFO commandstats` as command → calls.
    pub async fn command_calls(&self) -> HashMap<String, u64> {
        command_calls(&mut self.conn().await).await
    }

    pub async fn clients(&self) -> usize {
        clients(&mut self.conn().await).await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Spawns redis-server and waits (polling with a deadline) until it
/// answers PING; `None` when it exited first (port taken).
async fn spawn(
    bin: &PathBuf,
    port: u16,
    dir: &PathBuf,
    persistent: bool,
    extra: &[String],
) -> Option<Child> {
    let mut cmd = Command::new(bin);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", ""])
        .arg("--dir")
        .arg(dir);
    if persistent {
        cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        cmd.args(["--appendonly", "no"]);
    }
    cmd.args(extra);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn redis-server");
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if let Some(mut c) = try_connect(&format!("127.0.0.1:{port}")).await
            && redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok()
        {
            return Some(child);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.start_kill();
    None
}

pub fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("redis-server is running").to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// A test's own connection to the Redis at `addr` (`host:port`).
pub async fn connect(addr: &str) -> MultiplexedConnection {
    try_connect(addr).await.expect("test connection to redis")
}

/// A connection of the test's own to `addr`, if Redis answers there.
/// Named, so that connection counts leave out the test's own (one it
/// dropped may still be listed until Redis sees it close).
async fn try_connect(addr: &str) -> Option<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{addr}")).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(TEST_CLIENT)
        .query_async::<()>(&mut conn)
        .await
        .ok()?;
    Some(conn)
}

/// The name of every connection the tests open themselves.
const TEST_CLIENT: &str = "feedgate-test";

/// `INFO commandstats` as command → calls.
async fn command_calls(conn: &mut MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// Client connections (`CLIENT LIST`; the asking one included, replicas'
/// replication links too).
async fn clients(conn: &mut MultiplexedConnection) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(conn)
        .await
        .unwrap();
    // Not the test's own: this query's connection, and earlier ones Redis
    // has not seen close yet.
    let own = format!("name={TEST_CLIENT}");
    list.lines()
        .filter(|l| !l.split(' ').any(|field| field == own))
        .count()
}

// ---- The Redis Cluster scripts/redis-test.sh started -----------------------

/// Taken by each cluster test for its whole run: they share one cluster.
static CLUSTER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster named by `FEEDGATE_REDIS_CLUSTER`
/// (`redis+cluster://host:port,…`, all six nodes), flushed, for one test.
pub struct Cluster {
    pub url: String,
    /// `host:port` of every node started, alive or not.
    nodes: Vec<String>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    /// The cluster, once no other test uses it, emptied; `None` (after
    /// saying so) when none was started and none is required.
    pub async fn get() -> Option<Cluster> {
        let Ok(url) = std::env::var("FEEDGATE_REDIS_CLUSTER") else {
            if required() {
                panic!(
                    "FEEDGATE_REQUIRE_REDIS=1 but FEEDGATE_REDIS_CLUSTER is not set \
                     (scripts/redis-test.sh starts a cluster and sets it)"
                );
            }
            skip(
                "no Redis Cluster (FEEDGATE_REDIS_CLUSTER unset; scripts/redis-test.sh starts one)",
            );
            return None;
        };
        let turn = CLUSTER_TURN.lock().await;
        let nodes = url
            .strip_prefix("redis+cluster://")
            .expect("FEEDGATE_REDIS_CLUSTER is a redis+cluster:// URL")
            .split(',')
            .map(str::to_owned)
            .collect();
        let cluster = Cluster {
            url,
            nodes,
            _turn: turn,
        };
        cluster.wait_whole().await;
        for m in cluster.masters().await {
            redis::cmd("FLUSHALL")
                .query_async::<()>(&mut connect(&m).await)
                .await
                .unwrap();
        }
        Some(cluster)
    }

    /// The nodes that answer.
    async fn alive(&self) -> Vec<String> {
        let mut alive = Vec::new();
        for n in &self.nodes {
            let up = async {
                let mut c = try_connect(n).await?;
                redis::cmd("PING").query_async::<String>(&mut c).await.ok()
            };
            if tokio::time::timeout(Duration::from_secs(1), up)
                .await
                .ok()
                .flatten()
                .is_some()
            {
                alive.push(n.clone());
            }
        }
        alive
    }

    /// Waits until every node that answers says the cluster is whole and
    /// they all agree which masters serve the slots.
    pub async fn wait_whole(&self) {
        let deadline = Instant::now() + PATIENCE * 3;
        loop {
            let mut views = Vec::new();
            let mut ok = true;
            for n in self.alive().await {
                let mut c = connect(&n).await;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                ok &= info.contains("cluster_state:ok");
                views.push(slot_masters(&mut c).await);
            }
            views.dedup();
            if ok && views.len() == 1 {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster is not whole");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `host:port` of the masters, each once.
    pub async fn masters(&self) -> Vec<String> {
        let alive = self.alive().await;
        let mut c = connect(alive.first().expect("a node answers")).await;
        let mut masters: Vec<String> = slot_masters(&mut c)
            .await
            .into_iter()
            .map(|(_, _, m)| m)
            .collect();
        masters.sort();
        masters.dedup();
        masters
    }

    /// `host:port` of the master serving `key`.
    pub async fn master_of(&self, key: &str) -> String {
        let alive = self.alive().await;
        let mut c = connect(alive.first().expect("a node answers")).await;
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
        slot_masters(&mut c)
            .await
            .into_iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, m)| m)
            .expect("every slot is served")
    }

    /// Kills the node at `addr` as a crash would (SIGKILL).
    pub async fn kill(&self, addr: &str) {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut connect(addr).await)
            .await
            .unwrap();
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .expect("INFO server names the process")
            .trim()
            .to_owned();
        let ok = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -KILL {pid} ({addr}) failed");
    }

    /// Starts the node at `addr` again from the config file the script
    /// wrote (`FEEDGATE_REDIS_CLUSTER_DIR/PORT/redis.conf`): it rejoins
    /// the cluster as a replica. Returns once it has synced.
    pub async fn restart(&self, addr: &str) {
        let dir = std::env::var("FEEDGATE_REDIS_CLUSTER_DIR")
            .expect("FEEDGATE_REDIS_CLUSTER_DIR names the cluster's directory");
        let port = addr.rsplit_once(':').expect("host:port").1;
        let conf = format!("{dir}/{port}/redis.conf");
        let bin = RedisServer::binary().expect("redis-server");
        let ok = std::process::Command::new(bin)
            .arg(&conf)
            .status()
            .expect("redis-server")
            .success();
        assert!(ok, "redis-server {conf} failed");
        let deadline = Instant::now() + PATIENCE * 3;
        loop {
            let synced = async {
                let mut c = try_connect(addr).await?;
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut c)
                    .await
                    .ok()?;
                info.contains("master_link_status:up").then_some(())
            };
            if synced.await.is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{addr} did not rejoin as a replica"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.wait_whole().await;
    }

    /// The alive nodes, each with `CLIENT LIST`'s count.
    pub async fn clients(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for n in self.alive().await {
            out.insert(n.clone(), clients(&mut connect(&n).await).await);
        }
        out
    }
}

/// `(first slot, last slot, master host:port)` from `CLUSTER SLOTS`.
async fn slot_masters(c: &mut MultiplexedConnection) -> Vec<(i64, i64, String)> {
    let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(c)
        .await
        .unwrap();
    let mut out: Vec<(i64, i64, String)> = slots
        .into_iter()
        .filter_map(|range| {
            let redis::Value::Array(parts) = range else {
                return None;
            };
            let (redis::Value::Int(first), redis::Value::Int(last)) = (&parts[0], &parts[1]) else {
                return None;
            };
            let redis::Value::Array(master) = &parts[2] else {
                return None;
            };
            let (redis::Value::BulkString(host), redis::Value::Int(port)) =
                (&master[0], &master[1])
            else {
                return None;
            };
            Some((
                *first,
                *last,
                format!("{}:{port}", String::from_utf8_lossy(host)),
            ))
        })
        .collect();
    out.sort();
    out
}

// ---- Either ------------------------------------------------------------------

/// Anything gateway nodes can be pointed at.
pub trait Url {
    /// The `--log` URL.
    fn url(&self) -> String;
}

impl Url for RedisServer {
    fn url(&self) -> String {
        RedisServer::url(self)
    }
}

impl Url for Target {
    fn url(&self) -> String {
        Target::url(self)
    }
}

/// What a test that runs on both talks to.
pub enum Target {
    Single(RedisServer),
    Cluster(Cluster),
}

impl Target {
    /// The `--log` URL of gateway nodes.
    pub fn url(&self) -> String {
        match self {
            Target::Single(r) => r.url(),
            Target::Cluster(c) => c.url.clone(),
        }
    }

    /// `host:port` of each master.
    pub async fn masters(&self) -> Vec<String> {
        match self {
            Target::Single(r) => vec![format!("127.0.0.1:{}", r.port)],
            Target::Cluster(c) => c.masters().await,
        }
    }

    /// A connection to the master holding `key`.
    pub async fn conn_for(&self, key: &str) -> MultiplexedConnection {
        match self {
            Target::Single(r) => r.conn().await,
            Target::Cluster(c) => connect(&c.master_of(key).await).await,
        }
    }

    /// `INFO commandstats`, summed over the masters.
    pub async fn command_calls(&self) -> HashMap<String, u64> {
        let mut sum = HashMap::new();
        for m in self.masters().await {
            for (cmd, calls) in command_calls(&mut connect(&m).await).await {
                *sum.entry(cmd).or_default() += calls;
            }
        }
        sum
    }

    /// The channels subscribed on any master, plain and sharded.
    pub async fn channels(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.masters().await {
            let mut c = connect(&m).await;
            for kind in ["CHANNELS", "SHARDCHANNELS"] {
                let names: Vec<String> = redis::cmd("PUBSUB")
                    .arg(kind)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                out.extend(names);
            }
        }
        out.sort();
        out
    }

    /// Keys matching `pattern` on every master.
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.masters().await {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut connect(&m).await)
                .await
                .unwrap();
            out.extend(keys);
        }
        out
    }

    /// `CLIENT LIST`'s count on each Redis node that answers, replicas
    /// included.
    pub async fn clients_per_node(&self) -> std::collections::BTreeMap<String, usize> {
        match self {
            Target::Single(r) => [(format!("127.0.0.1:{}", r.port), r.clients().await)].into(),
            Target::Cluster(c) => c.clients().await.into_iter().collect(),
        }
    }

    /// Drops every key, as a Redis that lost its data.
    pub async fn flushall(&self) {
        for m in self.masters().await {
            redis::cmd("FLUSHALL")
                .query_async::<()>(&mut connect(&m).await)
                .await
                .unwrap();
        }
    }
}
