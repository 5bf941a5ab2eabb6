//! The file backend (`--log file:DIR`): a durable, embedded log on local
//! disk. A restart keeps every topic's epoch, seqs and retained events, so
//! cursors stay valid across it and no client is told to reset.
//!
//! On disk, per topic `T`, a directory `DIR/t.T/` holds segment files named
//! by the first seq they hold (`00000000000000000001.seg`). A segment starts
//! with a header (magic, version, the topic's epoch, its first seq, a
//! CRC-32) and continues with records, each
//! `len u32 | crc32 u32 | seq u64 | time_us u64 | event JSON (len bytes)`,
//! little-endian, the CRC covering `len` and everything after the CRC. The
//! event JSON is the one `Event::build` made at publish, stored once.
//!
//! In memory the backend keeps what the memory backend keeps — each topic's
//! retained window, its head signal and the placeholders of subscribers to
//! unpublished topics — in a [`MemoryLog`] used as an index: reads and
//! subscriptions are served from it and never touch the disk. The disk is
//! for durability; a restart reads the segments back (through
//! [`Event::decode`], so nothing unchecked reaches a client) into the
//! window. Memory is bounded by retention exactly as with `--log memory`;
//! disk by retention plus one segment per topic: a segment is deleted once
//! every event in it is older than the window.
//!
//! Durability ([`Fsync`]): every publish is written (`pwrite`) before it is
//! acknowledged, so a killed process loses nothing acknowledged. With
//! `always`, an event is also fsynced before its `201` and before any reader
//! can see it; concurrent publishers share one fsync (group commit: the
//! appends that arrive while one fsync runs are covered by the next). A
//! failed write or fsync cuts the file back to its last whole, synced
//! record, answers `503 unavailable`, and leaves nothing half-visible.
//!
//! At start a torn or corrupt tail (a crash mid-write) is detected by length
//! and CRC, cut back to the last whole record, logged, and never served.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::memory::{MemoryLog, lock};
use super::{
    Appended, Batch, Cursor, Epoch, Event, LogError, Retention, Subscription, Topic as TopicName,
    unix_micros,
};

/// When a publish is fsynced, relative to its `201`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Fsync before acknowledging (group commit): a `201` means on disk,
    /// through a power loss.
    #[default]
    Always,
    /// Acknowledge once written; fsync every 100 ms. A killed
    /// process loses nothing; a power loss at most that interval.
    Batch,
    /// Acknowledge once written; leave flushing to the OS. A killed process
    /// loses nothing; a power loss whatever the OS had not written back.
    Never,
}

/// How often `--fsync batch` flushes.
pub(crate) const BATCH_INTERVAL: Duration = Duration::from_millis(100);

impl Fsync {
    /// The flag's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Batch => "batch",
            Fsync::Never => "never",
        }
    }
}

impl FromStr for Fsync {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Fsync::Always),
            "batch" => Ok(Fsync::Batch),
            "never" => Ok(Fsync::Never),
            other => Err(format!(
                "--fsync {other:?}: expected always, batch or never"
            )),
        }
    }
}

impl std::fmt::Display for Fsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// First bytes of every segment.
const MAGIC: &[u8; 8] = b"FGLOGSEG";
const VERSION: u32 = 1;
/// magic, version, reserved, epoch, first seq, crc, pad.
const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 8 + 4 + 4;
/// len, crc, seq, time.
const RECORD_HEAD: usize = 4 + 4 + 8 + 8;
/// A segment is closed and a new one started past this many bytes…
const SEGMENT_BYTES: u64 = 64 << 20;
/// …or past this many events (and a quarter of the retention, so that
/// deleting whole segments keeps disk use near the retention).
const SEGMENT_EVENTS_MIN: u64 = 64;
/// Prefix of a topic's directory (topic names may be `.` or `..`).
const TOPIC_DIR_PREFIX: &str = "t.";
/// The lock file that keeps two processes off one directory.
const LOCK_FILE: &str = "LOCK";
/// How long opening waits for another holder of the lock to let go.
const LOCK_WAIT: Duration = if cfg!(test) {
    Duration::from_millis(300)
} else {
    Duration::from_secs(5)
};

/// Every topic's log in one directory. Cheap to clone.
#[derive(Clone)]
pub(crate) struct FileLog {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    fsync: Fsync,
    max_topics: usize,
    /// `--retention-events`.
    max_events: usize,
    segment_events: u64,
    /// Retained windows, head signals and placeholders: reads and
    /// subscriptions are served from here.
    index: MemoryLog,
    /// Published topics (the ones with files).
    writers: Mutex<HashMap<TopicName, Arc<Writer>>>,
    /// Serializes topic creation (rare; it touches directories).
    creating: tokio::sync::Mutex<()>,
    /// Records found corrupt at start and skipped (a torn tail is cut, not
    /// counted: it was never acknowledged with `always`).
    corrupt: AtomicU64,
    /// The last I/O error, until a write succeeds again.
    failing: Mutex<Option<String>>,
    /// Held for the life of the log: an advisory lock on `DIR/LOCK`.
    _lock: File,
}

/// One topic's files.
struct Writer {
    name: TopicName,
    dir: PathBuf,
    epoch: Epoch,
    state: Mutex<WriterState>,
}

struct WriterState {
    /// Oldest first; events are appended to the last.
    segments: VecDeque<Segment>,
    /// Seq of the newest record written to a file.
    written: u64,
    /// Seq of the newest record known to be fsynced.
    durable: u64,
    /// With `always`: written, not yet fsynced, not yet visible; each with
    /// the publisher waiting for it.
    pending: VecDeque<(Event, oneshot::Sender<Result<Appended, LogError>>)>,
    /// A sync task runs for this topic.
    syncing: bool,
    /// A segment was created since the directory was last fsynced.
    dir_dirty: bool,
    /// A failed write left bytes that could not be cut away yet.
    broken: bool,
}

struct Segment {
    first_seq: u64,
    path: PathBuf,
    /// Open while appended to or not yet synced.
    file: Option<Arc<File>>,
    /// Bytes of the header and whole records.
    len: u64,
    /// Bytes known to be on disk.
    synced_len: u64,
    /// Records in it.
    count: u64,
}

impl FileLog {
    /// Opens (or creates) the log in `dir`, reading back every topic.
    /// Blocking: call it off the runtime's worker threads.
    pub(crate) fn open(
        dir: &Path,
        fsync: Fsync,
        retention: Retention,
        max_topics: usize,
    ) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        // A log just dropped in this process (its last sync task still
        // finishing) or a process still exiting lets go within moments.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        while lock_file.try_lock().is_err() {
            if std::time::Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another feedgate", dir.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let segment_events = (retention.max_events as u64 / 4).max(SEGMENT_EVENTS_MIN);
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            fsync,
            max_topics,
            max_events: retention.max_events.max(1),
            segment_events,
            // The topic limit is counted here, on `writers`.
            index: MemoryLog::new(retention, usize::MAX),
            writers: Mutex::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
            corrupt: AtomicU64::new(0),
            failing: Mutex::new(None),
            _lock: lock_file,
        });
        let mut topics = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(name) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(TOPIC_DIR_PREFIX))
            else {
                continue;
            };
            let Some(name) = TopicName::new(name) else {
                tracing::warn!(path = %entry.path().display(), "not a topic directory; ignored");
                continue;
            };
            let Some((writer, events)) = recover(&shared, name, &entry.path())? else {
                continue;
            };
            let writer = Arc::new(writer);
            let mut first = None;
            for e in events {
                first = Some(shared.index.push(&writer.name, writer.epoch, e));
            }
            if let Some(first) = first {
                writer.trim(&mut lock(&writer.state), first);
            }
            topics += 1;
            lock(&shared.writers).insert(writer.name.clone(), writer);
        }
        let (_, events) = shared.index.stats();
        tracing::info!(dir = %dir.display(), topics, events, fsync = fsync.as_str(), "file log opened");
        if topics > max_topics {
            tracing::warn!(
                topics,
                max_topics,
                "more topics on disk than --max-topics; no new topic will be created"
            );
        }
        if fsync == Fsync::Batch {
            tokio::spawn(flush_periodically(Arc::downgrade(&shared)));
        }
        Ok(FileLog { shared })
    }

    pub(crate) async fn append(&self, name: &TopicName, data: &[u8]) -> Result<Appended, LogError> {
        let writer = self.writer(name).await?;
        let shared = &self.shared;
        let rx = {
            let mut st = lock(&writer.state);
            if st.broken {
                writer.repair(&mut st).map_err(|e| shared.fail(name, &e))?;
            }
            let seq = st.written + 1;
            let event = Event::build(name, seq, unix_micros(), data);
            if let Err(e) = writer.write(&mut st, &event, shared.segment_events) {
                let _ = writer.repair(&mut st);
                return Err(shared.fail(name, &e));
            }
            st.written = seq;
            let appended = Appended {
                seq,
                epoch: writer.epoch,
            };
            if shared.fsync != Fsync::Always {
                // Written is visible: a killed process loses nothing.
                let first = shared.index.push(name, writer.epoch, event);
                writer.trim(&mut st, first);
                drop(st);
                shared.recovered();
                return Ok(appended);
            }
            let (tx, rx) = oneshot::channel();
            st.pending.push_back((event, tx));
            if !st.syncing {
                st.syncing = true;
                let (w, s) = (writer.clone(), shared.clone());
                tokio::task::spawn_blocking(move || w.sync(&s, true));
            }
            rx
        };
        rx.await.unwrap_or_else(|_| {
            Err(LogError::Unavailable(
                "the log's sync task ended".to_owned(),
            ))
        })
    }

    pub(crate) fn read(&self, name: &TopicName, cursor: &Cursor, max: usize) -> Batch {
        self.shared.index.read(name, cursor, max)
    }

    pub(crate) fn read_window(
        &self,
        window: &super::memory::Topic,
        cursor: &Cursor,
        max: usize,
    ) -> Batch {
        self.shared.index.read_window(window, cursor, max)
    }

    pub(crate) fn subscribe(&self, name: &TopicName) -> Subscription {
        self.shared.index.subscribe(name)
    }

    /// Applies the retention age to every window, then deletes the segments
    /// that hold nothing retained.
    pub(crate) fn expire(&self) {
        self.shared.index.expire();
        let writers: Vec<_> = lock(&self.shared.writers).values().cloned().collect();
        for w in writers {
            if let Some(first) = self.shared.index.first_seq(&w.name) {
                w.trim(&mut lock(&w.state), first);
            }
        }
    }

    pub(crate) fn stats(&self) -> (usize, usize) {
        self.shared.index.stats()
    }

    pub(crate) fn corrupt_entries(&self) -> u64 {
        self.shared.corrupt.load(Ordering::Relaxed)
    }

    pub(crate) fn degraded(&self) -> Option<String> {
        lock(&self.shared.failing).clone()
    }

    /// The topic's writer; a first publish creates its directory and first
    /// segment (durably, whatever `--fsync`), counting it against the limit.
    async fn writer(&self, name: &TopicName) -> Result<Arc<Writer>, LogError> {
        if let Some(w) = lock(&self.shared.writers).get(name) {
            return Ok(w.clone());
        }
        let _creating = self.shared.creating.lock().await;
        {
            let writers = lock(&self.shared.writers);
            if let Some(w) = writers.get(name) {
                return Ok(w.clone());
            }
            if writers.len() >= self.shared.max_topics {
                return Err(LogError::TooManyTopics(self.shared.max_topics));
            }
        }
        let (root, name2) = (self.shared.dir.clone(), name.clone());
        let created = tokio::task::spawn_blocking(move || create_topic(&root, name2))
            .await
            .map_err(|e| LogError::Unavailable(e.to_string()))?;
        let writer = Arc::new(created.map_err(|e| self.shared.fail(name, &e))?);
        lock(&self.shared.writers).insert(name.clone(), writer.clone());
        Ok(writer)
    }
}

impl Shared {
    /// Logs an I/O error, marks the log degraded, and turns it into the
    /// error a publisher gets (`503 unavailable`).
    fn fail(&self, name: &TopicName, e: &io::Error) -> LogError {
        let why = format!("cannot write the log of topic {name}: {e}");
        tracing::error!(topic = %name, error = %e, "file log write failed");
        *lock(&self.failing) = Some(why.clone());
        LogError::Unavailable(why)
    }

    /// A write went through: no longer degraded.
    fn recovered(&self) {
        let mut failing = lock(&self.failing);
        if failing.is_some() {
            tracing::info!("file log writable again");
            *failing = None;
        }
    }
}

impl Drop for Shared {
    /// A clean shutdown flushes what `batch` has not yet.
    fn drop(&mut self) {
        if self.fsync == Fsync::Never {
            return;
        }
        for w in lock(&self.writers).values() {
            let st = lock(&w.state);
            for seg in st.segments.iter().filter(|s| s.len > s.synced_len) {
                if let Some(f) = &seg.file {
                    let _ = f.sync_data();
                }
            }
        }
    }
}

impl Writer {
    /// Writes `event` at the end of the newest segment, starting a new
    /// segment first when that one is full. On error the caller cuts the
    /// file back ([`Writer::repair`]).
    fn write(&self, st: &mut WriterState, event: &Event, segment_events: u64) -> io::Result<()> {
        // A segment read back at start whose tail could not be trusted is
        // not appended to (it is not open): a new one starts.
        let full = st.segments.back().is_none_or(|s| {
            s.file.is_none() || s.count >= segment_events || s.len >= SEGMENT_BYTES
        });
        if full {
            let seg = new_segment(&self.dir, self.epoch, event.seq)?;
            st.segments.push_back(seg);
            st.dir_dirty = true;
        }
        let seg = st.segments.back_mut().expect("a segment");
        let file = seg.file.as_ref().expect("the newest segment is open");
        let record = encode(event);
        file.write_all_at(&record, seg.len)?;
        seg.len += record.len() as u64;
        seg.count += 1;
        Ok(())
    }

    /// Cuts every segment back to its last whole record that was written
    /// (`len`; bytes of a failed write beyond it go), so the next record
    /// follows a whole one. Marks the writer broken if that fails.
    fn repair(&self, st: &mut WriterState) -> io::Result<()> {
        st.broken = true;
        if let Some(f) = st
            .segments
            .back()
            .and_then(|s| Some((s.file.as_ref()?, s.len)))
        {
            f.0.set_len(f.1)?;
        }
        st.broken = false;
        Ok(())
    }

    /// After a failed fsync with `always`: forget every record not known to
    /// be on disk (none was acknowledged or visible), on disk too.
    fn roll_back(&self, st: &mut WriterState) {
        while let Some(seg) = st.segments.back() {
            if seg.synced_len >= seg.len {
                break;
            }
            if seg.synced_len <= HEADER_LEN as u64 && st.segments.len() > 1 {
                // A segment with nothing synced but its header: drop it.
                let _ = fs::remove_file(&seg.path);
                st.segments.pop_back();
                continue;
            }
            let durable = st.durable;
            let seg = st.segments.back_mut().expect("a segment");
            seg.count = (durable + 1).saturating_sub(seg.first_seq);
            seg.len = seg.synced_len;
            break;
        }
        st.written = st.durable;
        // The cut itself is done by `repair`, now or before the next write.
        let _ = self.repair(st);
    }

    /// Fsyncs what is written: one round for `batch`, and for `always`
    /// rounds until nothing is left (each covers every append that came
    /// during the one before: group commit). With `always`, each synced
    /// event is then made visible and its publisher answered.
    fn sync(&self, shared: &Shared, until_done: bool) {
        loop {
            let (files, target, dir_dirty) = {
                let mut st = lock(&self.state);
                if st.written == st.durable {
                    st.syncing = false;
                    return;
                }
                let files: Vec<(u64, Arc<File>, u64)> = st
                    .segments
                    .iter()
                    .filter(|s| s.len > s.synced_len)
                    .filter_map(|s| Some((s.first_seq, s.file.clone()?, s.len)))
                    .collect();
                (files, st.written, std::mem::take(&mut st.dir_dirty))
            };
            let mut result = files.iter().try_for_each(|(_, f, _)| f.sync_data());
            if result.is_ok() && dir_dirty {
                result = File::open(&self.dir).and_then(|d| d.sync_all());
            }
            let mut st = lock(&self.state);
            let mut answered = Vec::new();
            match result {
                Ok(()) => {
                    let newest = st.segments.back().map(|s| s.first_seq);
                    for seg in st.segments.iter_mut() {
                        if let Some((_, _, len)) = files.iter().find(|f| f.0 == seg.first_seq) {
                            seg.synced_len = seg.synced_len.max(*len);
                        }
                        if Some(seg.first_seq) != newest && seg.synced_len >= seg.len {
                            // Closed and synced: its descriptor can go.
                            seg.file = None;
                        }
                    }
                    st.durable = target;
                    let mut first = None;
                    while st.pending.front().is_some_and(|(e, _)| e.seq <= target) {
                        let (event, tx) = st.pending.pop_front().expect("a pending event");
                        let seq = event.seq;
                        first = Some(shared.index.push(&self.name, self.epoch, event));
                        answered.push((
                            tx,
                            Ok(Appended {
                                seq,
                                epoch: self.epoch,
                            }),
                        ));
                    }
                    if let Some(first) = first {
                        self.trim(&mut st, first);
                    }
                    if !answered.is_empty() {
                        shared.recovered();
                    }
                }
                Err(e) => {
                    let err = shared.fail(&self.name, &e);
                    if shared.fsync == Fsync::Always {
                        self.roll_back(&mut st);
                        for (_, tx) in st.pending.drain(..) {
                            answered.push((tx, Err(err.clone())));
                        }
                    }
                    // `batch`: the events are visible already; the next
                    // round tries again.
                    st.dir_dirty |= dir_dirty;
                    st.syncing = false;
                    drop(st);
                    for (tx, r) in answered {
                        let _ = tx.send(r);
                    }
                    return;
                }
            }
            if !until_done {
                st.syncing = false;
            }
            drop(st);
            for (tx, r) in answered {
                let _ = tx.send(r);
            }
            if !until_done {
                return;
            }
        }
    }

    /// Deletes the oldest segments while every event in them is older than
    /// `first`, the oldest retained seq: what bounds the disk.
    fn trim(&self, st: &mut WriterState, first: u64) {
        while st.segments.len() > 1 && st.segments[1].first_seq <= first {
            let path = &st.segments[0].path;
            if let Err(e) = fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete an old segment");
                return;
            }
            st.segments.pop_front();
        }
    }
}

/// Runs `batch`'s fsync rounds until the log is dropped.
async fn flush_periodically(shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let writers: Vec<_> = lock(&shared.writers).values().cloned().collect();
        for w in writers {
            {
                let mut st = lock(&w.state);
                if st.syncing || st.written == st.durable {
                    continue;
                }
                st.syncing = true;
            }
            let s = shared.clone();
            tokio::task::spawn_blocking(move || w.sync(&s, false));
        }
    }
}

/// The directory of a topic.
fn topic_dir(root: &Path, name: &TopicName) -> PathBuf {
    root.join(format!("{TOPIC_DIR_PREFIX}{name}"))
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// A first publish: the topic's directory and first segment, synced with
/// their directory entries, in a fresh epoch. Nothing is left on error.
fn create_topic(root: &Path, name: TopicName) -> io::Result<Writer> {
    let dir = topic_dir(root, &name);
    let epoch = Epoch::random();
    let made = (|| {
        fs::create_dir_all(&dir)?;
        let mut seg = new_segment(&dir, epoch, 1)?;
        if let Some(f) = &seg.file {
            f.sync_data()?;
        }
        seg.synced_len = seg.len;
        File::open(&dir)?.sync_all()?;
        File::open(root)?.sync_all()?;
        Ok(seg)
    })();
    let seg = match made {
        Ok(seg) => seg,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    Ok(Writer {
        name,
        dir,
        epoch,
        state: Mutex::new(WriterState {
            segments: VecDeque::from([seg]),
            written: 0,
            durable: 0,
            pending: VecDeque::new(),
            syncing: false,
            dir_dirty: false,
            broken: false,
        }),
    })
}

/// Creates (or truncates: a leftover that held no record) the segment that
/// starts at `first_seq`, and writes its header.
fn new_segment(dir: &Path, epoch: Epoch, first_seq: u64) -> io::Result<Segment> {
    let path = segment_path(dir, first_seq);
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let header = encode_header(epoch, first_seq);
    if let Err(e) = file.write_all_at(&header, 0) {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(Segment {
        first_seq,
        path,
        file: Some(Arc::new(file)),
        len: HEADER_LEN as u64,
        synced_len: 0,
        count: 0,
    })
}

fn encode_header(epoch: Epoch, first_seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&epoch.0.to_le_bytes());
    h[24..32].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32(&h[..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

/// (epoch, first seq) from a header, if it is whole and ours.
fn decode_header(h: &[u8]) -> Option<(Epoch, u64)> {
    if h.len() < HEADER_LEN || &h[..8] != MAGIC {
        return None;
    }
    if u32_at(h, 8) != VERSION || u32_at(h, 32) != crc32(&h[..32]) {
        return None;
    }
    let epoch = Epoch(u64_at(h, 16));
    let first = u64_at(h, 24);
    (epoch != Epoch::NONE && first > 0).then_some((epoch, first))
}

fn encode(event: &Event) -> Vec<u8> {
    let json: &[u8] = &event.json;
    let mut r = Vec::with_capacity(RECORD_HEAD + json.len());
    r.extend_from_slice(&(json.len() as u32).to_le_bytes());
    r.extend_from_slice(&[0; 4]);
    r.extend_from_slice(&event.seq.to_le_bytes());
    r.extend_from_slice(&event.time_us.to_le_bytes());
    r.extend_from_slice(json);
    let crc = crc32_update(crc32(&r[..4]), &r[8..]);
    r[4..8].copy_from_slice(&crc.to_le_bytes());
    r
}

/// What a segment's bytes hold.
struct Scan {
    events: Vec<Event>,
    /// Bytes of the header and the whole, valid records.
    valid_len: usize,
    /// Why the rest (if any) is not valid.
    stop: Option<&'static str>,
}

/// Reads the records after the header, expecting `first_seq` onwards, up
/// to the first one that is cut short, fails its CRC, is out of sequence
/// or is not an event ([`Event::decode`]).
fn scan(bytes: &[u8], first_seq: u64) -> Scan {
    let mut at = HEADER_LEN;
    let mut events = Vec::new();
    let mut expect = first_seq;
    let stop = loop {
        let rest = &bytes[at..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < RECORD_HEAD {
            break Some("a record cut short");
        }
        let len = u32_at(rest, 0) as usize;
        let crc = u32_at(rest, 4);
        let seq = u64_at(rest, 8);
        let time = u64_at(rest, 16);
        if rest.len() < RECORD_HEAD + len {
            break Some("a record cut short");
        }
        let whole = &rest[..RECORD_HEAD + len];
        if crc != crc32_update(crc32(&whole[..4]), &whole[8..]) {
            break Some("a record with a bad checksum");
        }
        if seq != expect {
            break Some("a record out of sequence");
        }
        let json = Bytes::copy_from_slice(&whole[RECORD_HEAD..]);
        match Event::decode(seq, time, json) {
            Ok(e) => events.push(e),
            Err(_) => break Some("a record that is not an event"),
        }
        expect += 1;
        at += whole.len();
    };
    Scan {
        events,
        valid_len: at,
        stop,
    }
}

/// Reads a topic's segments back: its writer, and its retained events
/// (oldest first). `None` when the directory holds no event (it is then
/// removed: a topic exists from its first stored event).
///
/// Events must be contiguous: a segment that does not continue the one
/// before (a corrupt or missing one in between) restarts the window there,
/// so readers behind it are told about a gap. The newest segment's torn or
/// corrupt tail is cut off.
fn recover(
    shared: &Shared,
    name: TopicName,
    dir: &Path,
) -> io::Result<Option<(Writer, VecDeque<Event>)>> {
    let mut paths: Vec<(u64, PathBuf)> = fs::read_dir(dir)?
        .filter_map(|e| {
            let path = e.ok()?.path();
            let seq = path
                .file_name()?
                .to_str()?
                .strip_suffix(".seg")?
                .parse()
                .ok()?;
            Some((seq, path))
        })
        .collect();
    paths.sort();
    let max_events = shared.max_events;
    let mut events: VecDeque<Event> = VecDeque::new();
    let mut segments: VecDeque<Segment> = VecDeque::new();
    let mut epoch = None;
    let mut head = 0u64;
    let count = paths.len();
    for (i, (named, path)) in paths.into_iter().enumerate() {
        let newest = i + 1 == count;
        let bytes = fs::read(&path)?;
        let header = decode_header(&bytes).filter(|(_, first)| *first == named);
        let Some((seg_epoch, first)) = header else {
            // A segment whose header never made it whole was created by a
            // write that was never acknowledged.
            tracing::warn!(path = %path.display(), "segment without a valid header; removed");
            fs::remove_file(&path)?;
            continue;
        };
        let scan = scan(&bytes, first);
        if let Some(why) = scan.stop {
            let cut = bytes.len() - scan.valid_len;
            if newest {
                tracing::warn!(
                    topic = %name, path = %path.display(), cut_bytes = cut,
                    "torn or corrupt tail ({why}): cut back to the last whole record"
                );
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(scan.valid_len as u64)?;
                f.sync_all()?;
            } else {
                tracing::error!(
                    topic = %name, path = %path.display(), cut_bytes = cut,
                    "corrupt segment ({why}): its later records are skipped"
                );
                shared.corrupt.fetch_add(1, Ordering::Relaxed);
            }
        }
        let continues = epoch == Some(seg_epoch) && first == head + 1;
        if !continues && scan.events.is_empty() {
            // Nothing to read in it, and it does not follow on: drop it.
            tracing::warn!(topic = %name, path = %path.display(), "empty segment out of sequence; removed");
            fs::remove_file(&path)?;
            continue;
        }
        if !continues {
            if epoch.is_some() {
                tracing::error!(topic = %name, path = %path.display(), "segment does not continue the one before: readers behind it get a gap");
                shared.corrupt.fetch_add(1, Ordering::Relaxed);
            }
            events.clear();
            epoch = Some(seg_epoch);
        }
        let n = scan.events.len() as u64;
        for e in scan.events {
            head = e.seq;
            events.push_back(e);
            if events.len() > max_events {
                events.pop_front();
            }
        }
        segments.push_back(Segment {
            first_seq: first,
            path,
            file: None,
            len: scan.valid_len as u64,
            synced_len: scan.valid_len as u64,
            count: n,
        });
    }
    let Some(epoch) = epoch.filter(|_| !events.is_empty()) else {
        tracing::warn!(topic = %name, dir = %dir.display(), "topic directory without events; removed");
        fs::remove_dir_all(dir)?;
        return Ok(None);
    };
    // Appends go on in the newest segment (it ends at the head, cut back
    // to its last whole record if need be).
    if let Some(seg) = segments.back_mut() {
        let file = OpenOptions::new().read(true).write(true).open(&seg.path)?;
        file.set_len(seg.len)?;
        seg.file = Some(Arc::new(file));
    }
    let writer = Writer {
        name,
        dir: dir.to_owned(),
        epoch,
        state: Mutex::new(WriterState {
            segments,
            written: head,
            durable: head,
            pending: VecDeque::new(),
            syncing: false,
            dir_dirty: false,
            broken: false,
        }),
    };
    Ok(Some((writer, events)))
}

/// The little-endian u32 at `at` (the caller checked the length).
fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// The little-endian u64 at `at` (the caller checked the length).
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// CRC-32 (IEEE 802.3, the zlib one) of `data`.
fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

/// Continues a CRC-32 over more bytes.
fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

static CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "feedgate-file-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn name(n: &str) -> TopicName {
        TopicName::new(n).unwrap()
    }

    fn retention(max_events: usize) -> Retention {
        Retention {
            max_events,
            max_age: None,
        }
    }

    fn seqs(b: &Batch) -> Vec<u64> {
        b.events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_update(crc32(b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[tokio::test]
    async fn a_reopened_log_keeps_epoch_seqs_and_events() {
        for fsync in [Fsync::Always, Fsync::Batch, Fsync::Never] {
            let dir = TempDir::new();
            let log = FileLog::open(&dir.0, fsync, retention(100), 10).unwrap();
            for i in 1..=5 {
                let a = log.append(&name("t"), format!("{i}").as_bytes()).await;
                assert_eq!(a.unwrap().seq, i);
            }
            let before = log.read(&name("t"), &Cursor::at(0, Epoch::NONE), 100);
            drop(log);
            let log = FileLog::open(&dir.0, fsync, retention(100), 10).unwrap();
            let after = log.read(&name("t"), &Cursor::at(0, Epoch::NONE), 100);
            assert_eq!(after.epoch, before.epoch, "{fsync}");
            assert_eq!(after.events, before.events, "{fsync}");
            let a = log.append(&name("t"), b"6").await.unwrap();
            assert_eq!((a.seq, a.epoch), (6, before.epoch));
            assert_eq!(log.stats(), (1, 6));
        }
    }

    #[tokio::test]
    async fn reads_and_subscriptions_create_nothing_on_disk() {
        let dir = TempDir::new();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(10), 1).unwrap();
        let b = log.read(&name("ghost"), &Cursor::at(0, Epoch::NONE), 10);
        assert_eq!((b.epoch, b.next), (Epoch::NONE, 0));
        let sub = log.subscribe(&name("waiting"));
        assert_eq!(log.stats().0, 0);
        assert!(!topic_dir(&dir.0, &name("waiting")).exists());
        log.append(&name("real"), b"1").await.unwrap();
        assert_eq!(
            log.append(&name("more"), b"1").await.unwrap_err(),
            LogError::TooManyTopics(1)
        );
        drop(sub);
        let dirs = fs::read_dir(&dir.0).unwrap().count();
        assert_eq!(dirs, 2, "LOCK and t.real");
    }

    #[tokio::test]
    async fn segments_rotate_and_old_ones_are_deleted() {
        let dir = TempDir::new();
        let log = FileLog::open(&dir.0, Fsync::Never, retention(100), 10).unwrap();
        for _ in 0..1000 {
            log.append(&name("t"), b"{}").await.unwrap();
        }
        let segs = fs::read_dir(topic_dir(&dir.0, &name("t"))).unwrap().count();
        // 100 retained in segments of 64: at most three segments.
        assert!(segs <= 3, "{segs} segments");
        drop(log);
        let log = FileLog::open(&dir.0, Fsync::Never, retention(100), 10).unwrap();
        let b = log.read(&name("t"), &Cursor::at(0, Epoch::NONE), 1000);
        assert_eq!(seqs(&b), (901..=1000).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_to_the_last_whole_record() {
        let dir = TempDir::new();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(100), 10).unwrap();
        for _ in 0..3 {
            log.append(&name("t"), br#"{"x":1}"#).await.unwrap();
        }
        drop(log);
        let seg = segment_path(&topic_dir(&dir.0, &name("t")), 1);
        let whole = fs::metadata(&seg).unwrap().len();
        // Half of a fourth record (a write torn by a crash)...
        let mut bytes = fs::read(&seg).unwrap();
        let fourth = encode(&Event::build(&name("t"), 4, 1, b"2"));
        bytes.extend_from_slice(&fourth[..fourth.len() / 2]);
        fs::write(&seg, &bytes).unwrap();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(100), 10).unwrap();
        assert_eq!(fs::metadata(&seg).unwrap().len(), whole);
        assert_eq!(log.append(&name("t"), b"4").await.unwrap().seq, 4);
        drop(log);
        let mut bytes = fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 0x55;
        fs::write(&seg, &bytes).unwrap();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(100), 10).unwrap();
        let b = log.read(&name("t"), &Cursor::at(0, Epoch::NONE), 100);
        assert_eq!(seqs(&b), vec![1, 2, 3]);
        assert_eq!(log.append(&name("t"), b"5").await.unwrap().seq, 4);
    }

    #[tokio::test]
    async fn concurrent_publishers_share_fsyncs_and_stay_gapless() {
        let dir = TempDir::new();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(10_000), 10).unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let log = log.clone();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        log.append(&name("t"), b"1").await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let b = log.read(&name("t"), &Cursor::at(0, Epoch::NONE), 10_000);
        assert_eq!(seqs(&b), (1..=800).collect::<Vec<_>>());
    }

    #[test]
    fn a_second_process_cannot_open_the_same_directory() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _g = rt.enter();
        let dir = TempDir::new();
        let _log = FileLog::open(&dir.0, Fsync::Never, retention(10), 10).unwrap();
        assert!(FileLog::open(&dir.0, Fsync::Never, retention(10), 10).is_err());
    }
}
