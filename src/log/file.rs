//! The file backend (`--log file:DIR`): a durable, embedded log on local
//! disk. A restart keeps every topic's epoch, seqs and retained events, so
//! cursors stay valid across it and no client is told to reset.
//!
//! On disk, per topic `T`, a directory `DIR/t.T/` holds segment files named
//! by the first seq they hold (`00000000000000000001.seg`): a header with
//! the topic's epoch, then one record per event holding the JSON
//! `Event::build` made at publish, each with its length and CRC-32
//! ([`segment`] has the format).
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
//! At start ([`recover`]) a torn last write (bad bytes after the last valid
//! record, with no valid record after them) is cut off and logged;
//! any other damage refuses to open, unless `--log-recover`, which keeps
//! what is readable under a new epoch so every client is told to reset.
//! Only a torn last write's seqs are given again in the same epoch (with
//! `always`, seqs never acknowledged).
//!
//! Descriptors: one per published topic (its newest segment), one for the
//! lock; a segment rotated out is closed at once, or with `batch`/`always`
//! once its last records are fsynced.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::oneshot;

use super::memory::{MemoryLog, lock};
use super::{
    Appended, Batch, Cursor, Epoch, Event, LogError, Retention, Subscription, Topic as TopicName,
    unix_micros,
};
use recover::{Recovered, recover};
use segment::{HEADER_LEN, encode, encode_header};

mod recover;
mod segment;

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
    /// Damaged places found at start and recovered from with
    /// `--log-recover` (a torn last write is cut, not counted: it was never
    /// acknowledged with `always`).
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
    /// `repair` (`--log-recover`) opens a damaged log anyway, each damaged
    /// topic in a new epoch. Blocking: call it off the runtime's worker
    /// threads.
    ///
    /// # Errors
    /// When the directory cannot be read, written or locked, or
    /// ([`io::ErrorKind::InvalidData`]) holds damage other than a torn last
    /// write and `repair` is off: the message names each file and offset.
    pub(crate) fn open(
        dir: &Path,
        fsync: Fsync,
        retention: Retention,
        max_topics: usize,
        repair: bool,
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
        recover::finish_rebuilds(dir)?;
        let mut topics = 0;
        let mut damaged = Vec::new();
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
            let (writer, events) = match recover(&shared, name, &entry.path(), repair)? {
                Recovered::Topic(writer, events) => (Arc::new(writer), events),
                Recovered::Empty => continue,
                Recovered::Damaged(damage) => {
                    damaged.push(damage);
                    continue;
                }
            };
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
        if !damaged.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                recover::refusal(dir, &damaged),
            ));
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
            if let Err(e) = writer.write(&mut st, &event, shared) {
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
    fn write(&self, st: &mut WriterState, event: &Event, shared: &Shared) -> io::Result<()> {
        // A closed newest segment (after a roll-back dropped the one after
        // it) is not reopened: a new one starts.
        let full = st.segments.back().is_none_or(|s| {
            s.file.is_none() || s.count >= shared.segment_events || s.len >= SEGMENT_BYTES
        });
        if full {
            let seg = new_segment(&self.dir, self.epoch, event.seq)?;
            // The segment rotated out takes no more appends. With `never`
            // nothing will fsync it, so its descriptor goes now; otherwise
            // now if it is synced, else once a sync round has synced it.
            if let Some(old) = st.segments.back_mut()
                && (shared.fsync == Fsync::Never || old.synced_len >= old.len)
            {
                old.file = None;
            }
            st.segments.push_back(seg);
            st.dir_dirty = true;
        }
        // A writer always holds its newest segment open; were it not, the
        // publish fails (503) rather than the task.
        let lost = || io::Error::other("the topic's newest segment is not open");
        let seg = st.segments.back_mut().ok_or_else(lost)?;
        let file = seg.file.as_ref().ok_or_else(lost)?;
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
            if let Some(seg) = st.segments.back_mut() {
                seg.count = (durable + 1).saturating_sub(seg.first_seq);
                seg.len = seg.synced_len;
            }
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
                result = sync_dir(&self.dir);
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
                    while let Some((event, tx)) = st.pending.pop_front_if(|(e, _)| e.seq <= target)
                    {
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

/// Makes the entries of `dir` (files created, renamed or removed in it)
/// durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
        sync_dir(&dir)?;
        sync_dir(root)?;
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

    #[tokio::test]
    async fn a_reopened_log_keeps_epoch_seqs_and_events() {
        for fsync in [Fsync::Always, Fsync::Batch, Fsync::Never] {
            let dir = TempDir::new();
            let log = FileLog::open(&dir.0, fsync, retention(100), 10, false).unwrap();
            for i in 1..=5 {
                let a = log.append(&name("t"), format!("{i}").as_bytes()).await;
                assert_eq!(a.unwrap().seq, i);
            }
            let before = log.read(&name("t"), &Cursor::at(0, Epoch::NONE), 100);
            drop(log);
            let log = FileLog::open(&dir.0, fsync, retention(100), 10, false).unwrap();
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
        let log = FileLog::open(&dir.0, Fsync::Always, retention(10), 1, false).unwrap();
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
        let log = FileLog::open(&dir.0, Fsync::Never, retention(100), 10, false).unwrap();
        for _ in 0..1000 {
            log.append(&name("t"), b"{}").await.unwrap();
        }
        let segs = fs::read_dir(topic_dir(&dir.0, &name("t"))).unwrap().count();
        // 100 retained in segments of 64: at most three segments.
        assert!(segs <= 3, "{segs} segments");
        drop(log);
        let log = FileLog::open(&dir.0, Fsync::Never, retention(100), 10, false).unwrap();
        let b = log.read(&name("t"), &Cursor::at(0, Epoch::NONE), 1000);
        assert_eq!(seqs(&b), (901..=1000).collect::<Vec<_>>());
    }

    /// Publishes `n` events (`{"n":i}`) to topic `t` of a fresh log, and
    /// closes it: the topic's epoch.
    async fn filled(dir: &Path, fsync: Fsync, keep: usize, n: u64) -> Epoch {
        let log = FileLog::open(dir, fsync, retention(keep), 10, false).unwrap();
        let mut epoch = Epoch::NONE;
        for i in 1..=n {
            let data = format!(r#"{{"n":{i}}}"#);
            epoch = log.append(&name("t"), data.as_bytes()).await.unwrap().epoch;
        }
        epoch
    }

    /// Where the record of `seq` starts in a segment of topic `t`.
    fn record_at(bytes: &[u8], seq: u64) -> usize {
        let json = format!(r#"{{"topic":"t","seq":{seq},"#);
        let at = bytes.windows(json.len()).position(|w| w == json.as_bytes());
        at.expect("the record") - segment::RECORD_HEAD
    }

    /// Opening refuses: the error's text, after checking it is
    /// `InvalidData` and says how to open anyway.
    fn refused(dir: &Path, keep: usize) -> String {
        let Err(e) = FileLog::open(dir, Fsync::Always, retention(keep), 10, false) else {
            panic!("a damaged log opened");
        };
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let text = e.to_string();
        assert!(text.contains("--log-recover"), "{text}");
        text
    }

    fn everything(log: &FileLog) -> Batch {
        log.read(&name("t"), &Cursor::at(0, Epoch::NONE), 10_000)
    }

    #[tokio::test]
    async fn a_flipped_bit_mid_segment_refuses_to_open_and_changes_nothing() {
        let dir = TempDir::new();
        filled(&dir.0, Fsync::Always, 1000, 200).await;
        let seg = segment_path(&topic_dir(&dir.0, &name("t")), 1);
        let mut bytes = fs::read(&seg).unwrap();
        let at = record_at(&bytes, 101);
        bytes[at + segment::RECORD_HEAD + 30] ^= 0x01;
        fs::write(&seg, &bytes).unwrap();
        let why = refused(&dir.0, 1000);
        let place = format!("{} at byte {at}: a record whose checksum", seg.display());
        assert!(why.contains(&place), "{why}");
        assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing cut");
        // Still refused the second time: nothing was "repaired" by the first.
        refused(&dir.0, 1000);
    }

    #[tokio::test]
    async fn seven_bytes_cut_out_mid_segment_refuse_to_open() {
        let dir = TempDir::new();
        let old = filled(&dir.0, Fsync::Always, 1000, 200).await;
        let seg = segment_path(&topic_dir(&dir.0, &name("t")), 1);
        let mut bytes = fs::read(&seg).unwrap();
        let at = record_at(&bytes, 101);
        bytes.drain(at + 30..at + 37);
        fs::write(&seg, &bytes).unwrap();
        let why = refused(&dir.0, 1000);
        assert!(
            why.contains(&format!("{} at byte {at}", seg.display())),
            "{why}"
        );
        assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing cut");
        // Recovered: the records after the cut are found where they moved
        // to, and kept, in a new epoch.
        let log = FileLog::open(&dir.0, Fsync::Always, retention(1000), 10, true).unwrap();
        let b = everything(&log);
        assert_ne!(b.epoch, old);
        assert_eq!(seqs(&b), (102..=200).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_flipped_bit_in_a_segment_header_refuses_to_open() {
        // One segment (the issue's case: the topic was deleted), then the
        // middle and the newest of three.
        for (keep, n, first) in [(1000, 200, 1), (100, 150, 65), (100, 150, 129)] {
            let dir = TempDir::new();
            let old = filled(&dir.0, Fsync::Always, keep, n).await;
            let seg = segment_path(&topic_dir(&dir.0, &name("t")), first);
            let mut bytes = fs::read(&seg).unwrap();
            bytes[20] ^= 0x10;
            fs::write(&seg, &bytes).unwrap();
            let why = refused(&dir.0, keep);
            let place = format!(
                "{} at byte 0: a segment header whose checksum",
                seg.display()
            );
            assert!(why.contains(&place), "{why}");
            assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing removed");
            // Recovered: its records are still readable, and all kept.
            let log = FileLog::open(&dir.0, Fsync::Always, retention(keep), 10, true).unwrap();
            let b = everything(&log);
            assert_ne!(b.epoch, old);
            let oldest = n + 1 - keep.min(n as usize) as u64;
            assert_eq!(seqs(&b), (oldest..=n).collect::<Vec<_>>(), "{first}");
            assert_eq!(log.append(&name("t"), b"1").await.unwrap().seq, n + 1);
            assert_eq!(log.corrupt_entries(), 1);
        }
    }

    /// A crash mid-append leaves the newest segment ending in bad bytes
    /// with nothing valid after them: cut off and logged, not counted, and
    /// the topic goes on in its epoch.
    #[tokio::test]
    async fn a_torn_last_write_is_cut_in_every_shape() {
        let fifth = encode(&Event::build(&name("t"), 5, 1, br#"{"n":5}"#));
        let shapes = [
            "half a record",
            "a length past the end",
            "zeros",
            "a head cut short",
            "a flipped bit in the last record",
        ];
        for shape in shapes {
            let dir = TempDir::new();
            let epoch = filled(&dir.0, Fsync::Always, 100, 4).await;
            let seg = segment_path(&topic_dir(&dir.0, &name("t")), 1);
            let mut bytes = fs::read(&seg).unwrap();
            match shape {
                "half a record" => bytes.extend(&fifth[..fifth.len() / 2]),
                "a length past the end" => bytes.extend(&fifth[..fifth.len() - 1]),
                "zeros" => bytes.extend([0; 100]),
                "a head cut short" => bytes.extend(&fifth[..10]),
                _ => {
                    let n = bytes.len();
                    bytes[n - 2] ^= 0x55;
                }
            }
            fs::write(&seg, &bytes).unwrap();
            let log = FileLog::open(&dir.0, Fsync::Always, retention(100), 10, false).unwrap();
            let b = everything(&log);
            let kept = if shape.starts_with("a flipped") { 3 } else { 4 };
            assert_eq!(seqs(&b), (1..=kept).collect::<Vec<_>>(), "{shape}");
            assert_eq!(b.epoch, epoch, "{shape}");
            assert_eq!(log.corrupt_entries(), 0, "{shape}");
            let a = log.append(&name("t"), b"0").await.unwrap();
            assert_eq!((a.seq, a.epoch), (kept + 1, epoch), "{shape}");
        }
        // A new segment whose header never made it whole, after full ones.
        let dir = TempDir::new();
        let epoch = filled(&dir.0, Fsync::Always, 100, 64).await;
        let next = segment_path(&topic_dir(&dir.0, &name("t")), 65);
        fs::write(&next, &encode_header(epoch, 65)[..20]).unwrap();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(100), 10, false).unwrap();
        assert!(!next.exists());
        assert_eq!(seqs(&everything(&log)), (1..=64).collect::<Vec<_>>());
        assert_eq!(log.append(&name("t"), b"0").await.unwrap().seq, 65);
        // A whole new segment, empty, after a segment whose last record is
        // torn (a power loss during a group commit): nothing valid follows
        // the torn record, so it is the log's last write.
        let dir = TempDir::new();
        let epoch = filled(&dir.0, Fsync::Always, 100, 64).await;
        let first = segment_path(&topic_dir(&dir.0, &name("t")), 1);
        let next = segment_path(&topic_dir(&dir.0, &name("t")), 65);
        let mut bytes = fs::read(&first).unwrap();
        bytes.truncate(bytes.len() - 5);
        fs::write(&first, &bytes).unwrap();
        fs::write(&next, encode_header(epoch, 65)).unwrap();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(100), 10, false).unwrap();
        assert!(!next.exists());
        assert_eq!(seqs(&everything(&log)), (1..=63).collect::<Vec<_>>());
        let a = log.append(&name("t"), b"0").await.unwrap();
        assert_eq!((a.seq, a.epoch, log.corrupt_entries()), (64, epoch, 0));
    }

    /// `--log-recover`: the newest gapless run of readable events stays,
    /// in a new epoch (so a cursor of the old one is a reset), no seq of
    /// the old epoch is given again, the damage is counted, the damaged
    /// files are kept aside, and the next start finds a sound log.
    #[tokio::test]
    async fn recovering_keeps_the_newest_readable_run_in_a_new_epoch() {
        let dir = TempDir::new();
        let old = filled(&dir.0, Fsync::Always, 1000, 200).await;
        let seg = segment_path(&topic_dir(&dir.0, &name("t")), 1);
        let mut bytes = fs::read(&seg).unwrap();
        let at = record_at(&bytes, 101);
        bytes[at + segment::RECORD_HEAD + 30] ^= 0x01;
        fs::write(&seg, &bytes).unwrap();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(1000), 10, true).unwrap();
        assert_eq!(log.corrupt_entries(), 1);
        let b = everything(&log);
        let new = b.epoch;
        assert_ne!(new, old);
        assert_eq!(seqs(&b), (102..=200).collect::<Vec<_>>());
        let held = log.read(&name("t"), &Cursor::at(150, old), 10);
        assert_eq!(held.reset, Some(super::super::ResetReason::EpochChanged));
        assert_eq!(held.epoch, new);
        assert_eq!(seqs(&held)[0], 102);
        let a = log.append(&name("t"), b"201").await.unwrap();
        assert_eq!((a.seq, a.epoch), (201, new));
        drop(log);
        let aside: Vec<PathBuf> = fs::read_dir(dir.0.join("damaged"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            fs::read(aside[0].join(seg.file_name().unwrap())).unwrap(),
            bytes
        );
        let log = FileLog::open(&dir.0, Fsync::Always, retention(1000), 10, false).unwrap();
        let b = everything(&log);
        assert_eq!((b.epoch, seqs(&b)), (new, (102..=201).collect::<Vec<_>>()));
        assert_eq!(log.corrupt_entries(), 0);
    }

    #[tokio::test]
    async fn a_rebuild_cut_short_by_a_crash_is_finished_or_dropped() {
        let dir = TempDir::new();
        let epoch = filled(&dir.0, Fsync::Always, 100, 3).await;
        // Crashed after the damaged directory was moved aside: the rebuilt
        // one is complete and takes its place.
        fs::rename(topic_dir(&dir.0, &name("t")), dir.0.join("rebuild.t")).unwrap();
        // Crashed before: the damaged one is still there; the rebuild goes.
        fs::create_dir_all(dir.0.join("rebuild.u")).unwrap();
        fs::create_dir_all(topic_dir(&dir.0, &name("u"))).unwrap();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(100), 10, false).unwrap();
        let b = everything(&log);
        assert_eq!((b.epoch, seqs(&b)), (epoch, vec![1, 2, 3]));
        assert!(!dir.0.join("rebuild.t").exists());
        assert!(!dir.0.join("rebuild.u").exists());
    }

    /// This process's open descriptors on segment files under `dir`.
    fn open_segments(dir: &Path) -> usize {
        let dir = fs::canonicalize(dir).unwrap();
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .filter(|p| p.starts_with(&dir) && p.to_string_lossy().contains(".seg"))
            .count()
    }

    /// Whether every record written is fsynced, in every topic.
    fn all_durable(log: &FileLog) -> bool {
        lock(&log.shared.writers).values().all(|w| {
            let st = lock(&w.state);
            st.written == st.durable && st.segments.iter().all(|s| s.synced_len >= s.len)
        })
    }

    /// A rotated segment's descriptor is closed whatever `--fsync`: with
    /// `batch` once the flush has synced it. One per topic stays open.
    #[tokio::test]
    async fn rotated_segments_are_closed_in_every_fsync_mode() {
        for fsync in [Fsync::Always, Fsync::Batch, Fsync::Never] {
            let dir = TempDir::new();
            let log = FileLog::open(&dir.0, fsync, retention(256), 100, false).unwrap();
            for t in 0..10 {
                for _ in 0..256 {
                    log.append(&name(&format!("t{t}")), b"{}").await.unwrap();
                }
            }
            let on_disk: usize = (0..10)
                .map(|t| {
                    fs::read_dir(topic_dir(&dir.0, &name(&format!("t{t}"))))
                        .unwrap()
                        .count()
                })
                .sum();
            assert_eq!(on_disk, 40, "{fsync}: 4 segments of 64 per topic");
            if fsync == Fsync::Batch {
                // The flush task's next rounds; no signal tells of them.
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while !all_durable(&log) {
                    assert!(std::time::Instant::now() < deadline, "never flushed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            assert_eq!(open_segments(&dir.0), 10, "{fsync}");
            drop(log);
            // The sync task holds its own references to the writers until
            // it sees the log go; no signal tells when it has.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while open_segments(&dir.0) != 0 {
                assert!(std::time::Instant::now() < deadline, "{fsync}: still open");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    #[tokio::test]
    async fn concurrent_publishers_share_fsyncs_and_stay_gapless() {
        let dir = TempDir::new();
        let log = FileLog::open(&dir.0, Fsync::Always, retention(10_000), 10, false).unwrap();
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
        let _log = FileLog::open(&dir.0, Fsync::Never, retention(10), 10, false).unwrap();
        assert!(FileLog::open(&dir.0, Fsync::Never, retention(10), 10, false).is_err());
    }
}
