//! The Lua scripts that append, read and register topics, and the
//! `EVALSHA` calls that run them.
//!
//! Appends and reads are scripts so that seq allocation and append are one
//! atomic step, and an epoch with its events is always read consistently.
//! Each touches only its topic's keys (one hash slot), so it runs on a
//! Redis Cluster as on a single Redis; only [`REGISTER`], run once when a
//! topic is created, touches the global topic set.

use redis::{Cmd, Script};

/// Shared by [`APPEND`] and [`READ`].
///
/// KEYS: meta, log. ARGV[1] topic, ARGV[2] a fresh random epoch (Lua's
/// `math.random` is deterministic in Redis, so the caller draws it),
/// ARGV[3] the topic's channel, ARGV[4] `PUBLISH` or `SPUBLISH` (sharded
/// pub/sub, on a Redis Cluster).
///
/// `current` returns the topic's epoch and head, or nil when it does not
/// exist, after two checks that start a new epoch over the same events
/// when clients may have seen events that are no longer there:
///
/// - **going back in time**: a node saw a higher head in this epoch than
///   Redis has (an older RDB restored), so seqs it has seen would be handed
///   out again;
/// - **failover**: the master that last wrote the topic (`replid`, its
///   replication ID) is not this one, and this one was promoted from a
///   replica (`master_replid2` is set): replication is asynchronous, so the
///   last writes of the old master may be missing here. A master restarted
///   on its own data gets a new ID too, but no `master_replid2`: its data
///   is its own, and nothing changes but the recorded ID.
///
/// The new epoch keeps the stream: events that survived stay readable at
/// their seqs, and every client holding a cursor of the old epoch is told
/// to reset. Every new epoch is announced on the channel (`EPOCH HEAD`).
const PRELUDE: &str = r#"
local NO_ID = '0000000000000000000000000000000000000000'
local function notify(text)
  redis.call(ARGV[4], ARGV[3], text)
end
local function replication_ids()
  local info = redis.call('INFO', 'replication')
  return string.match(info, 'master_replid:(%x+)') or '',
    string.match(info, 'master_replid2:(%x+)') or NO_ID
end
local function current(seen_epoch, seen_head)
  local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'replid')
  local epoch, head, writer = m[1], tonumber(m[2]), m[3]
  if not epoch then return nil, 0 end
  local id, id2 = replication_ids()
  local back = seen_epoch == epoch and tonumber(seen_head) > head
  local promoted = writer and writer ~= id and id2 ~= NO_ID
  if back or promoted then
    -- Entries past the head are no part of this log (a stream edited by
    -- hand); the next seq must be writable.
    local top = string.format('%d-0', head)
    for _, e in ipairs(redis.call('XRANGE', KEYS[2], '(' .. top, '+')) do
      redis.call('XDEL', KEYS[2], e[1])
    end
    if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('XSETID', KEYS[2], top) end
    epoch = ARGV[2]
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'replid', id)
    notify(epoch .. ' ' .. head)
  elseif writer ~= id then
    redis.call('HSET', KEYS[1], 'replid', id)
  end
  return epoch, head
end
"#;

/// Appends one event. ARGV[5] MAXLEN, ARGV[6] time (µs), ARGV[7] data
/// JSON, ARGV[8]/[9] the epoch and head this node has seen (empty/0 when
/// the topic is not open here), ARGV[10] `1` when the topic may be created
/// (it is registered in the topic set).
///
/// A missing `meta` answers `absent` unless creating is allowed; then the
/// epoch is created (dropping any stale stream). The seq is taken, the
/// entry added, and only then the head moved, so a failed XADD (out of
/// memory) leaves no hole. The event JSON is built here because only here
/// is the seq known; its format is `Event::build`'s (`tests/redis.rs`
/// checks they agree byte for byte). The event is announced on the channel
/// as `EPOCH SEQ TIME JSON`: nodes following the topic need no read.
const APPEND: &str = r#"
local epoch, head = current(ARGV[8], ARGV[9])
if not epoch then
  if ARGV[10] ~= '1' then return {'absent'} end
  local id = replication_ids()
  epoch, head = ARGV[2], 0
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', '0', 'replid', id)
  notify(epoch .. ' 0')
end
local s = string.format('%d', head + 1)
local json = '{"topic":"' .. ARGV[1] .. '","seq":' .. s .. ',"time":' .. ARGV[6] .. ',"data":' .. ARGV[7] .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], s .. '-0', 't', ARGV[6], 'e', json)
redis.call('HSET', KEYS[1], 'seq', s)
notify(epoch .. ' ' .. s .. ' ' .. ARGV[6] .. ' ' .. json)
return {'ok', head + 1, epoch}
"#;

/// Reads the head, the epoch, and up to ARGV[7] entries after ARGV[5]
/// (from the oldest retained when ARGV[5] is empty or 0, from another
/// epoch ARGV[6], or past the head). ARGV[8] is the age cutoff in µs
/// (0: none): older entries are skipped, except the newest (an entry whose
/// time is unreadable counts as old). ARGV[9]/[10] are the epoch and head
/// this node has seen, for the checks in `current`.
///
/// Reading creates nothing: a topic without `meta` (never published to, or
/// lost with a flushed Redis) reads as empty in epoch 0 (`Epoch::NONE`).
const READ: &str = r#"
local epoch, head = current(ARGV[9], ARGV[10])
if not epoch then
  return {'ok', 0, '0000000000000000', {}}
end
local out = {}
local count = tonumber(ARGV[7])
if count > 0 then
  local after = tonumber(ARGV[5])
  local start = '-'
  if after and after > 0 and after <= head and (ARGV[6] == '' or ARGV[6] == epoch) then
    start = string.format('%d-0', after + 1)
  end
  local cutoff = tonumber(ARGV[8])
  local newest = string.format('%d-0', head)
  for _ = 1, 16 do
    local chunk = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', count)
    local i = 1
    while cutoff > 0 and i <= #chunk and chunk[i][1] ~= newest
      and (tonumber(chunk[i][2][2]) or 0) < cutoff do
      i = i + 1
    end
    if i <= #chunk or #chunk < count then
      for j = i, #chunk do out[#out + 1] = chunk[j] end
      break
    end
    start = '(' .. chunk[#chunk][1]
  end
end
return {'ok', head, epoch, out}
"#;

/// Counts a new topic against the limit, once. KEYS[1] the topic set;
/// ARGV[1] the topic, ARGV[2] the limit. Answers 1 when the topic is (now)
/// registered, 0 when the limit is reached.
const REGISTER: &str = r#"
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
"#;

/// One script: its code and SHA-1.
pub(super) struct Lua {
    code: String,
    script: Script,
}

impl Lua {
    fn new(code: String) -> Self {
        Lua {
            script: Script::new(&code),
            code,
        }
    }

    /// `EVALSHA` of this script with `keys` and `args`. A Redis that does
    /// not have the script answers `NOSCRIPT`; the caller then sends
    /// [`Lua::load`] and this again.
    pub(super) fn evalsha(&self, keys: &[&str], args: &[&[u8]]) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(keys.len()).arg(keys);
        for a in args {
            cmd.arg(*a);
        }
        cmd
    }

    /// `SCRIPT LOAD` of this script (on a cluster: on every master).
    pub(super) fn load(&self) -> Cmd {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(&self.code);
        cmd
    }
}

/// The three scripts, hashed once.
pub(super) struct Scripts {
    pub(super) append: Lua,
    pub(super) read: Lua,
    pub(super) register: Lua,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            append: Lua::new(format!("{PRELUDE}{APPEND}")),
            read: Lua::new(format!("{PRELUDE}{READ}")),
            register: Lua::new(REGISTER.to_owned()),
        }
    }
}
