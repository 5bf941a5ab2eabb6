//! Reading a topic's segments back at start, and what damage found there
//! means.
//!
//! The rule: bad bytes after the topic's last valid record, with no valid
//! record after them (the end of the newest segment, and any newer segment
//! without a valid record), are a torn last write: what a crash in the
//! middle of an append leaves. They are cut off, logged, and the topic goes
//! on in its epoch: with `--fsync always` nothing in them was acknowledged.
//!
//! Anything else — a bad record with valid ones after it, bytes missing or
//! added in the middle, a bad segment header, a missing stretch of seqs, a
//! segment of another epoch — is damage to what was acknowledged. Cutting
//! there would give the lost seqs to new events in the same epoch, and a
//! client holding a cursor past the damage would resume into different
//! events under the same numbers, with no reset and no gap. So opening
//! refuses, naming each file, byte offset and what is wrong, and changes
//! nothing on disk. With `--log-recover` a damaged topic instead keeps its
//! newest gapless run of readable events under a new epoch (every client is
//! told `reset`), each damaged place is logged as an error and counted in
//! `feedgate_log_corrupt_entries_total`, and the damaged files are moved
//! to `DIR/damaged/`.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::segment::{self, HEADER_LEN, Item, Scan};
use super::{
    Segment, Shared, TOPIC_DIR_PREFIX, Writer, WriterState, new_segment, sync_dir, topic_dir,
};
use crate::log::{Epoch, Event, Topic, unix_micros};

/// Where `--log-recover` moves a damaged topic's directory (under `DIR`).
const DAMAGED_DIR: &str = "damaged";
/// Prefix of the directory a damaged topic is rebuilt in (under `DIR`),
/// before it takes the damaged one's place.
const REBUILD_PREFIX: &str = "rebuild.";
/// Damaged places listed per topic, in the log and in the refusal.
const LISTED: usize = 8;

/// One damaged place in a topic's files.
pub(super) struct Damage {
    path: PathBuf,
    offset: usize,
    what: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.path.display(),
            self.offset,
            self.what
        )
    }
}

/// What reading a topic's directory found.
pub(super) enum Recovered {
    /// Its writer, and its retained events (oldest first).
    Topic(Writer, VecDeque<Event>),
    /// No event: the directory was removed (a topic exists from its first
    /// stored event).
    Empty,
    /// Damage that is not a torn last write. Nothing was changed on disk.
    Damaged(Vec<Damage>),
}

/// A segment file as read back.
struct SegmentFile {
    /// The first seq its name says.
    named: u64,
    path: PathBuf,
    /// Bytes to keep: all, or up to a torn tail.
    len: usize,
    scan: Scan,
}

/// A torn last write: what follows the topic's last valid record.
struct Torn {
    /// The segment cut back, and where to.
    cut: Option<(PathBuf, usize)>,
    /// Newer segments with no valid record, removed whole.
    removed: Vec<PathBuf>,
    /// Bytes it spans.
    bytes: usize,
    /// What is wrong with its first bad bytes.
    why: &'static str,
}

/// Reads a topic's segments back (see the module doc for the rule).
/// `repair` is `--log-recover`.
pub(super) fn recover(
    shared: &Shared,
    name: Topic,
    dir: &Path,
    repair: bool,
) -> io::Result<Recovered> {
    let mut files = read_segments(dir, &name)?;
    let torn = take_torn_tail(&mut files);
    let (epoch, damage) = check(&files);
    if !damage.is_empty() {
        if !repair {
            for d in damage.iter().take(LISTED) {
                tracing::error!(topic = %name, "damaged file log: {d}");
            }
            return Ok(Recovered::Damaged(damage));
        }
        return rebuild(shared, name, dir, epoch, &files, damage);
    }
    if let Some(torn) = torn {
        let (path, offset) = torn.cut.clone().unwrap_or_default();
        tracing::warn!(
            topic = %name, path = %path.display(), offset, cut_bytes = torn.bytes,
            removed = ?torn.removed,
            "torn last write ({}): cut back to the last whole record", torn.why
        );
        if let Some((path, at)) = torn.cut {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(at as u64)?;
            f.sync_all()?;
        }
        for path in &torn.removed {
            fs::remove_file(path)?;
        }
        if !torn.removed.is_empty() {
            sync_dir(dir)?;
        }
    }
    open_writer(shared, name, dir, epoch, files)
}

/// Every `*.seg` file of a topic, read and scanned, oldest first.
fn read_segments(dir: &Path, name: &Topic) -> io::Result<Vec<SegmentFile>> {
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
    paths
        .into_iter()
        .map(|(named, path)| {
            let bytes = fs::read(&path)?;
            Ok(SegmentFile {
                named,
                len: bytes.len(),
                scan: segment::scan(&bytes, named, name),
                path,
            })
        })
        .collect()
}

/// Takes what follows the topic's last valid record off `files` when bad
/// bytes are in it: a torn last write. That is the end of the newest
/// segment, and any newer segment with no valid record (a rotation whose
/// first record, or header, never made it whole); such a segment, and one
/// left without even a valid header, is taken off whole.
fn take_torn_tail(files: &mut Vec<SegmentFile>) -> Option<Torn> {
    // The file of the last valid record, and the index just after it.
    let (file, item) = files
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, f)| {
            let last = f
                .scan
                .items
                .iter()
                .rposition(|(_, item)| matches!(item, Item::Record(_)));
            last.map(|j| (i, j + 1))
        })
        .unwrap_or((0, 0));
    let tail = files.get(file..)?;
    let why = tail
        .iter()
        .enumerate()
        .flat_map(|(i, f)| &f.scan.items[if i == 0 { item } else { 0 }..])
        .find_map(|(_, item)| match item {
            Item::Bad(why) => Some(*why),
            Item::Record(_) => None,
        })?;
    let mut bytes = 0;
    let mut removed = Vec::new();
    for f in files.drain(file + 1..).rev() {
        bytes += f.len;
        removed.push(f.path);
    }
    let f = &mut files[file];
    let mut cut = None;
    if let Some(&(at, _)) = f.scan.items.get(item) {
        bytes += f.len - at;
        f.scan.items.truncate(item);
        f.len = at;
        if at == 0 {
            removed.push(f.path.clone());
            files.pop();
        } else {
            cut = Some((f.path.clone(), at));
        }
    }
    Some(Torn {
        cut,
        removed,
        bytes,
        why,
    })
}

/// The topic's epoch (its first valid header's), and every damaged place:
/// bad bytes, headers of another epoch, seqs that do not follow on.
fn check(files: &[SegmentFile]) -> (Option<Epoch>, Vec<Damage>) {
    let epoch = files.iter().find_map(|f| f.scan.epoch);
    let mut damage = Vec::new();
    // The last record's seq, and whether a bad place came after it.
    let mut prev: Option<u64> = None;
    let mut explained = false;
    for (i, f) in files.iter().enumerate() {
        let mut note = |offset, what| {
            damage.push(Damage {
                path: f.path.clone(),
                offset,
                what,
            })
        };
        if let (Some(e), Some(topic)) = (f.scan.epoch, epoch)
            && e != topic
        {
            note(
                16,
                format!("a segment of epoch {e}, where the topic's is {topic}"),
            );
        }
        let (mut records, mut bad) = (0, false);
        for (at, item) in &f.scan.items {
            match item {
                Item::Bad(why) => {
                    note(*at, (*why).to_owned());
                    (explained, bad) = (true, true);
                }
                Item::Record(e) => {
                    if records == 0 && !bad && e.seq != f.named {
                        note(
                            *at,
                            format!("seq {} first in a segment named for seq {}", e.seq, f.named),
                        );
                    } else if let Some(p) = prev.filter(|p| e.seq != p + 1 && !explained) {
                        note(*at, format!("seq {} after seq {p}", e.seq));
                    }
                    prev = Some(e.seq);
                    explained = false;
                    records += 1;
                }
            }
        }
        // An empty segment is only ever the newest, begun at the next seq.
        let newest = i + 1 == files.len();
        if records == 0 && !bad && (!newest || prev.is_some_and(|p| f.named != p + 1)) {
            note(HEADER_LEN, "an empty segment out of sequence".to_owned());
        }
    }
    (epoch, damage)
}

/// The writer of an undamaged topic, its newest segment open for appends,
/// and its retained events.
fn open_writer(
    shared: &Shared,
    name: Topic,
    dir: &Path,
    epoch: Option<Epoch>,
    files: Vec<SegmentFile>,
) -> io::Result<Recovered> {
    let mut events: VecDeque<Event> = VecDeque::new();
    let mut segments: VecDeque<Segment> = VecDeque::new();
    for f in files {
        let mut count = 0;
        for (_, item) in f.scan.items {
            if let Item::Record(e) = item {
                events.push_back(e);
                if events.len() > shared.max_events {
                    events.pop_front();
                }
                count += 1;
            }
        }
        segments.push_back(Segment {
            first_seq: f.named,
            path: f.path,
            file: None,
            len: f.len as u64,
            synced_len: f.len as u64,
            count,
        });
    }
    let (Some(epoch), Some(head)) = (epoch, events.back().map(|e| e.seq)) else {
        tracing::warn!(topic = %name, dir = %dir.display(), "topic directory without events; removed");
        fs::remove_dir_all(dir)?;
        return Ok(Recovered::Empty);
    };
    // Appends go on in the newest segment.
    if let Some(seg) = segments.back_mut() {
        let file = OpenOptions::new().read(true).write(true).open(&seg.path)?;
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
    Ok(Recovered::Topic(writer, events))
}

/// `--log-recover` on a damaged topic: its newest gapless run of readable
/// events (at most the retention) is written to fresh segments in a new
/// epoch, which then replace the damaged directory; that one is moved to
/// `DIR/damaged/`. A crash on the way leaves either the damaged directory
/// in place (the next start finds it damaged again) or the rebuilt one
/// ready ([`finish_rebuilds`]).
fn rebuild(
    shared: &Shared,
    name: Topic,
    dir: &Path,
    old: Option<Epoch>,
    files: &[SegmentFile],
    damage: Vec<Damage>,
) -> io::Result<Recovered> {
    for d in damage.iter().take(LISTED) {
        tracing::error!(topic = %name, "damaged file log, recovering (--log-recover): {d}");
    }
    shared
        .corrupt
        .fetch_add(damage.len() as u64, Ordering::Relaxed);
    let records: Vec<&Event> = files
        .iter()
        .flat_map(|f| &f.scan.items)
        .filter_map(|(_, item)| match item {
            Item::Record(e) => Some(e),
            Item::Bad(_) => None,
        })
        .collect();
    let run_start = records
        .windows(2)
        .rposition(|w| w[1].seq != w[0].seq + 1)
        .map_or(0, |i| i + 1);
    let run = &records[run_start.max(records.len().saturating_sub(shared.max_events))..];
    let epoch = loop {
        let e = Epoch::random();
        if Some(e) != old {
            break e;
        }
    };

    let root = &shared.dir;
    let staging = root.join(format!("{REBUILD_PREFIX}{name}"));
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir(&staging)?;
    let per_segment = usize::try_from(shared.segment_events).unwrap_or(usize::MAX);
    for chunk in run.chunks(per_segment) {
        let seg = new_segment(&staging, epoch, chunk[0].seq)?;
        let file = seg
            .file
            .ok_or_else(|| io::Error::other("a new segment is not open"))?;
        let mut at = seg.len;
        for e in chunk {
            let record = segment::encode(e);
            file.write_all_at(&record, at)?;
            at += record.len() as u64;
        }
        file.sync_data()?;
    }
    sync_dir(&staging)?;
    let damaged = root.join(DAMAGED_DIR);
    fs::create_dir_all(&damaged)?;
    let aside = damaged.join(format!("{TOPIC_DIR_PREFIX}{name}.{}", unix_micros()));
    fs::rename(dir, &aside)?;
    fs::rename(&staging, dir)?;
    sync_dir(&damaged)?;
    sync_dir(root)?;
    tracing::error!(
        topic = %name,
        old_epoch = %old.unwrap_or(Epoch::NONE),
        new_epoch = %epoch,
        kept = run.len(),
        first = run.first().map_or(0, |e| e.seq),
        head = run.last().map_or(0, |e| e.seq),
        damaged_places = damage.len(),
        moved_to = %aside.display(),
        "file log topic recovered under a new epoch: every subscriber is told to reset"
    );
    match recover(shared, name, dir, false)? {
        Recovered::Damaged(d) => Err(io::Error::other(format!(
            "the rebuilt log is damaged: {}",
            d[0]
        ))),
        read => Ok(read),
    }
}

/// Finishes what a crash interrupted in [`rebuild`]: a rebuilt directory
/// whose damaged one was already moved aside takes its place; one whose
/// damaged directory is still there was not finished, and goes.
pub(super) fn finish_rebuilds(root: &Path) -> io::Result<()> {
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(REBUILD_PREFIX))
            .and_then(Topic::new)
        else {
            continue;
        };
        let live = topic_dir(root, &name);
        if live.exists() {
            tracing::warn!(topic = %name, "removing an unfinished rebuild");
            fs::remove_dir_all(entry.path())?;
        } else {
            tracing::warn!(topic = %name, "putting a finished rebuild in place");
            fs::rename(entry.path(), &live)?;
            sync_dir(root)?;
        }
    }
    Ok(())
}

/// Why the log does not open: the first damaged places of each damaged
/// topic, and how to open it anyway.
pub(super) fn refusal(root: &Path, damaged: &[Vec<Damage>]) -> String {
    let places: usize = damaged.iter().map(Vec::len).sum();
    let first = damaged
        .iter()
        .flat_map(|d| d.first())
        .take(LISTED)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "the file log in {dir} is damaged, not just torn at its end ({places} damaged \
         place(s) in {topics} topic(s)): {first}. Opening it as it is would drop \
         acknowledged events and give their seqs to new ones in the same epoch, so it is \
         not opened; nothing was changed on disk. To start anyway, run with --log-recover: \
         each damaged topic keeps its newest gapless run of readable events under a new \
         epoch (every subscriber is told to reset), and its damaged files are moved to \
         {damaged_dir}",
        dir = root.display(),
        topics = damaged.len(),
        damaged_dir = root.join(DAMAGED_DIR).display(),
    )
}
