//! Redis Cluster: the `redis+cluster://host:port,…` URL, and which master
//! serves which hash slot. Commands need none of this (redis-rs's cluster
//! connection routes them); a node's subscriber connections do: a topic's
//! channel is subscribed on the master of its slot (sharded pub/sub), so
//! when masters change (a failover, a slot move) topics move to the reader
//! of their new master.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::Value;

use super::Shared;
use crate::log::memory::lock;

/// The URL scheme of a Redis Cluster.
pub(super) const SCHEME: &str = "redis+cluster://";
/// How often the slot map is read when nothing asked for it: it also
/// changes without any connection failing (a slot moved by an operator).
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Shortest pause between two reads of the slot map.
const REFRESH_PAUSE: Duration = Duration::from_millis(200);

/// A `redis+cluster://[user:password@]host:port,host:port,…` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClusterUrl {
    /// `user:password@`, or empty: the same for every node.
    userinfo: String,
    /// `host:port` of the nodes to start from.
    pub(super) seeds: Vec<String>,
}

impl ClusterUrl {
    pub(super) fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("bad Redis Cluster URL {url:?}: {why}");
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it must start with redis+cluster://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hosts) = match rest.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), rest),
        };
        let mut seeds = Vec::new();
        for node in hosts.split(',') {
            let (host, port) = node
                .rsplit_once(':')
                .ok_or_else(|| bad("each node is host:port"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad(&format!("{node:?} is not host:port")));
            }
            seeds.push(node.to_owned());
        }
        Ok(ClusterUrl { userinfo, seeds })
    }

    /// The `redis://` URL of the node at `addr` (`host:port`).
    pub(super) fn node_url(&self, addr: &str) -> String {
        format!("redis://{}{addr}", self.userinfo)
    }
}

/// Which master serves which slots, from `CLUSTER SLOTS`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Topology {
    /// `(first slot, last slot, master host:port)`.
    ranges: Vec<(u16, u16, Arc<str>)>,
}

impl Topology {
    /// Parses a `CLUSTER SLOTS` reply; `None` when it is not one.
    fn parse(reply: Value) -> Option<Topology> {
        let Value::Array(entries) = reply else {
            return None;
        };
        let mut ranges = Vec::new();
        for entry in entries {
            let Value::Array(mut parts) = entry else {
                return None;
            };
            if parts.len() < 3 {
                return None;
            }
            let master = parts.swap_remove(2);
            let (Value::Int(first), Value::Int(last)) = (&parts[0], &parts[1]) else {
                return None;
            };
            let Value::Array(master) = master else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            let Some(Value::Int(port)) = master.get(1) else {
                return None;
            };
            ranges.push((
                u16::try_from(*first).ok()?,
                u16::try_from(*last).ok()?,
                Arc::from(format!("{host}:{port}")),
            ));
        }
        ranges.sort();
        Some(Topology { ranges })
    }

    /// The master serving `slot`, if the cluster covers it.
    pub(super) fn master_of(&self, slot: u16) -> Option<Arc<str>> {
        self.ranges
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, addr)| addr.clone())
    }

    /// Whether `addr` is one of the masters.
    pub(super) fn has_master(&self, addr: &str) -> bool {
        self.ranges.iter().any(|(_, _, a)| &**a == addr)
    }

    /// The masters, once each.
    pub(super) fn masters(&self) -> BTreeSet<Arc<str>> {
        self.ranges.iter().map(|(_, _, a)| a.clone()).collect()
    }
}

/// Keeps the node's slot map current: reads it at start, whenever a
/// subscriber connection fails or is told a slot moved
/// ([`Shared::topology_stale`]), and every [`REFRESH_INTERVAL`]; when it
/// changed, moves each topic to the reader of its slot's new master.
pub(super) async fn follow_topology(weak: Weak<Shared>) {
    let Some((stop, stale)) = weak
        .upgrade()
        .map(|s| (s.stop.clone(), s.topology_stale.clone()))
    else {
        return;
    };
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        match shared.commands.query(&cmd).await.map(Topology::parse) {
            Ok(Some(topology)) => {
                let changed = *lock(&shared.topology) != topology;
                if changed {
                    tracing::info!(masters = ?topology.masters(), "redis cluster slot map");
                    *lock(&shared.topology) = topology;
                    shared.rehome();
                }
            }
            Ok(None) => tracing::warn!("CLUSTER SLOTS answered something else"),
            Err(e) => tracing::debug!(error = %e, "cannot read the cluster slot map"),
        }
        drop(shared);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REFRESH_PAUSE) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = stale.notified() => {}
            _ = tokio::time::sleep(REFRESH_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_nodes() {
        let u = ClusterUrl::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/").unwrap();
        assert_eq!(u.seeds, ["127.0.0.1:7000", "127.0.0.1:7001"]);
        assert_eq!(u.node_url("10.0.0.1:7002"), "redis://10.0.0.1:7002");
        let u = ClusterUrl::parse("redis+cluster://:secret@h:1").unwrap();
        assert_eq!(u.node_url("h:2"), "redis://:secret@h:2");
        for bad in [
            "redis://h:1",
            "redis+cluster://",
            "redis+cluster://h",
            "redis+cluster://h:1,",
            "redis+cluster://h:port",
            "redis+cluster://:1",
        ] {
            assert!(ClusterUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_slot_map_names_each_slots_master() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 7001),
                node("10.0.0.3", 7004),
            ]),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
        ]);
        let t = Topology::parse(reply).unwrap();
        assert_eq!(t.master_of(0).as_deref(), Some("10.0.0.1:7000"));
        assert_eq!(t.master_of(5461).as_deref(), Some("10.0.0.2:7001"));
        assert_eq!(t.master_of(16383).as_deref(), Some("10.0.0.2:7001"));
        assert!(t.has_master("10.0.0.1:7000"));
        assert!(!t.has_master("10.0.0.3:7004"), "a replica");
        assert_eq!(t.masters().len(), 2);
        assert_eq!(Topology::parse(Value::Int(1)), None);
    }
}
