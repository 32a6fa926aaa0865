//! The [`Reader`]: the scan's sink, on the scanner's threads (several at once).
//!
//! It skips a file whose metadata matches the files cache without opening it, otherwise reads it,
//! cuts it with FastCDC and hashes each chunk and the whole file with blake3, and hands the chunks
//! and then the file's entry to the [`Checker`](super::checker::Checker). Each item first takes its
//! bytes from the [`MemoryBudget`]: while the later stages hold the budget, the reader (and so the
//! scan) waits. A chunk seen before in this run is not sent again (the entry still lists it), and
//! an entry never overtakes such a chunk in the channel (see [`sent`]).
//!
//! A file whose size, mtime or change time moves while it is read is read again once, then
//! skipped with a warning: a torn version is never committed. A file that vanished since the walk
//! saw it counts as deleted, not as unreadable.
//!
//! Folders and links become entries too, each with its [`EntryMeta`](asgard_core::meta::EntryMeta)
//! (owner, extended attributes, hard-link group; see [`crate::fsmeta`]); the files cache skips
//! them like files. A second path of a hard-linked file whose inode was read in this run reuses
//! that read (same inode, size, times and mode) instead of reading the content again.

use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use asgard_core::protocol::{ChunkRef, CommitEntry, FileMeta, symlink_hash};
use asgard_core::{ChunkId, ChunkParams, Lang, RawPath};
use tokio::sync::mpsc;

use super::CacheNote;
use super::Item;
use super::budget::MemoryBudget;
use crate::cache::{CacheReader, Facts, Kind, NO_CONTENT};
use crate::fsmeta::{self, MetaReader, Source, XattrsDropped};
use crate::present::backup as text;
use crate::progress::Progress;
use crate::scan::ScanEvent;
use sent::{Claim, SentChunks};

/// What the reader saw.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Regular files and links found (folders are counted apart).
    pub(crate) files_seen: u64,
    pub(crate) files_skipped: u64,
    /// Matched the files cache: not opened.
    pub(crate) files_cached: u64,
    /// Folders found (roots included).
    pub(crate) dirs_seen: u64,
    /// Folders that matched the files cache: not sent.
    pub(crate) dirs_cached: u64,
    /// Second paths of a hard-linked file that reused the read of the first.
    pub(crate) links_reused: u64,
    pub bytes_read: u64,
    /// Roots that do not exist or cannot be read: the run fails.
    pub(crate) root_errors: Vec<String>,
    /// Roots (as given) that could not be scanned: no deletion is decided below them.
    pub(crate) failed_roots: Vec<PathBuf>,
    /// Folders below a root that could not be read: no deletion below them either.
    pub(crate) unreadable_dirs: Vec<RawPath>,
    /// Files and folders that could not be read: the run ends with exit code 3.
    pub(crate) unreadable: Vec<String>,
    /// Other warnings (changed while reading, extended attributes left out).
    pub(crate) warnings: Vec<String>,
    /// Every path the scan reported (read, cached, skipped or unreadable): not deleted.
    pub(crate) seen: PathSet,
}

/// A set of paths kept as 128-bit digests (blake3 of the path's bytes): 16 bytes per path instead
/// of the path itself, for the deletion check of a run (which holds every path the scan reported).
/// Two paths share a digest with a probability of about n²/2¹²⁹ (10⁻²⁵ for ten million paths); if
/// they ever did, a vanished path would be taken for seen and get its deletion marker one run later.
#[derive(Debug, Default)]
pub(crate) struct PathSet(HashSet<u128>);

impl PathSet {
    fn digest(path: &RawPath) -> u128 {
        let hash = blake3::hash(&path.0);
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash.as_bytes()[..16]);
        u128::from_le_bytes(first)
    }

    pub(crate) fn insert(&mut self, path: &RawPath) {
        self.0.insert(Self::digest(path));
    }

    pub(crate) fn remove(&mut self, path: &RawPath) {
        self.0.remove(&Self::digest(path));
    }

    pub(crate) fn contains(&self, path: &RawPath) -> bool {
        self.0.contains(&Self::digest(path))
    }
}

/// The scan's sink: cache lookup, reading, chunking and hashing. Called from the scanner's
/// threads.
pub struct Reader {
    tx: mpsc::Sender<Item>,
    budget: MemoryBudget,
    lang: Lang,
    run_start_ns: i64,
    cache: Option<CacheReader>,
    roots: Vec<PathBuf>,
    /// Chunks sent in this run, or being sent by one reader (see [`sent`]: an entry must never
    /// overtake a chunk it names in the channel, also when another reader sends that chunk).
    sent: SentChunks,
    /// Owner names and attributes (one owner cache for the run, shared by the scan threads).
    meta: MetaReader,
    /// Hard-linked files read in this run whose other paths have not all come yet.
    inodes: Mutex<HashMap<u64, ReadInode>>,
    report: Mutex<ScanReport>,
    /// The progress bar (drawn only on a terminal); warnings go through it so they do not tear it.
    progress: Progress,
}

impl Reader {
    /// A reader that sends into `tx`; `cache` (if any) lets it skip unchanged files; `roots` are
    /// the roots as given (their errors fail the run).
    pub fn new(
        tx: mpsc::Sender<Item>,
        budget: MemoryBudget,
        lang: Lang,
        run_start_ns: i64,
        cache: Option<CacheReader>,
        roots: Vec<PathBuf>,
        progress: Progress,
    ) -> Reader {
        Reader {
            tx,
            budget,
            lang,
            run_start_ns,
            cache,
            roots,
            sent: SentChunks::default(),
            meta: MetaReader::for_process(),
            inodes: Mutex::new(HashMap::new()),
            report: Mutex::new(ScanReport::default()),
            progress,
        }
    }

    /// What the scan saw (call after it returned).
    pub fn into_report(self) -> ScanReport {
        self.report.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// The run's sent chunks (the tests force interleavings of readers with it).
    #[cfg(test)]
    pub(crate) fn sent_chunks(&self) -> &SentChunks {
        &self.sent
    }

    /// Hands an entry on; false when the pipeline is gone.
    fn send_entry(&self, entry: CommitEntry, note: Option<CacheNote>) -> bool {
        let Some(permit) = self.budget.acquire(super::entry_cost(&entry)) else {
            return false;
        };
        let folder = matches!(entry, CommitEntry::Dir { .. });
        self.tx
            .blocking_send(Item::Entry {
                entry,
                note,
                permit,
                folder,
            })
            .is_ok()
    }

    /// Reports attributes that were left out of an entry (a warning; the entry is backed up).
    fn dropped(&self, path: &Path, dropped: Option<XattrsDropped>) {
        if let Some(why) = dropped {
            let msg = text::xattrs_dropped(path, &why, self.lang);
            self.warn(text::warning(&msg, self.lang));
            self.report().warnings.push(msg);
        }
    }

    /// A warning: into the run's log and on stderr (without tearing the progress bar).
    fn warn(&self, line: String) {
        tracing::warn!("{line}");
        self.progress.eprintln(&line);
    }

    fn report(&self) -> std::sync::MutexGuard<'_, ScanReport> {
        self.report.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles one event; false when the scan must stop (the pipeline is gone).
    pub fn on_event(&self, event: ScanEvent) -> bool {
        let lang = self.lang;
        match event {
            ScanEvent::File { path, meta } => {
                self.progress.add_total(1, meta.len());
                let go_on = self.file(&path, &meta);
                self.progress.add_done(1, meta.len());
                go_on
            }
            ScanEvent::Symlink { path, meta } => self.symlink(&path, &meta),
            ScanEvent::Dir {
                path,
                meta,
                followed,
            } => self.dir(&path, &meta, followed),
            ScanEvent::Skipped { path, reason } => {
                self.warn(text::skipped_not_regular(&path, &reason, lang));
                let mut r = self.report();
                r.files_skipped += 1;
                r.seen.insert(&RawPath::from_path(&path));
                true
            }
            ScanEvent::Unreadable {
                path,
                error,
                missing,
            } => {
                let mut r = self.report();
                if self.roots.contains(&path) {
                    let msg = text::root_unreadable(&path, missing, &error, lang);
                    r.root_errors.push(msg);
                    r.failed_roots.push(path);
                } else {
                    self.warn(text::folder_unreadable(&error, lang));
                    r.unreadable
                        .push(format!("{} ({error})", crate::present::shown(&path)));
                    r.unreadable_dirs.push(RawPath::from_path(&path));
                }
                true
            }
        }
    }

    fn symlink(&self, path: &Path, meta: &Metadata) -> bool {
        let raw = RawPath::from_path(path);
        let facts = Facts::of(Kind::Symlink, meta);
        {
            let mut r = self.report();
            r.files_seen += 1;
            r.seen.insert(&raw);
        }
        if self.cached(&raw, &facts) {
            self.report().files_cached += 1;
            return true;
        }
        let target = match std::fs::read_link(path) {
            Ok(t) => RawPath::from_path(&t),
            Err(e) => return self.unreadable(path, &raw, &e),
        };
        let read = self.meta.read(
            meta,
            Source::Path {
                path,
                follow: false,
            },
        );
        self.dropped(path, read.dropped);
        let note = self.note(facts, symlink_hash(&target));
        let entry = CommitEntry::Symlink {
            path: raw,
            target,
            mtime_ns: facts.mtime_ns,
            meta: read.meta,
        };
        self.send_entry(entry, note)
    }

    /// A folder: its metadata only (what lies in it comes as entries of its own).
    fn dir(&self, path: &Path, meta: &Metadata, followed: bool) -> bool {
        let raw = RawPath::from_path(path);
        let facts = Facts::of(Kind::Dir, meta);
        {
            let mut r = self.report();
            r.dirs_seen += 1;
            r.seen.insert(&raw);
        }
        if self.cached(&raw, &facts) {
            self.report().dirs_cached += 1;
            return true;
        }
        let read = self.meta.read(
            meta,
            Source::Path {
                path,
                follow: followed,
            },
        );
        self.dropped(path, read.dropped);
        let note = self.note(facts, NO_CONTENT);
        let entry = CommitEntry::Dir {
            path: raw,
            mtime_ns: facts.mtime_ns,
            mode: facts.mode,
            attributes: facts.attributes,
            meta: read.meta,
        };
        self.send_entry(entry, note)
    }

    /// The content of a hard-linked file whose inode another path of this run read already, if
    /// nothing about it changed since (counted; forgotten once every link came).
    fn read_before(&self, meta: &Metadata, facts: &Facts) -> Option<FileMeta> {
        let key = fsmeta::hardlink_key(meta)?;
        let mut inodes = self.inodes.lock().unwrap_or_else(|p| p.into_inner());
        let seen = inodes.get_mut(&key)?;
        if seen.facts != *facts {
            return None;
        }
        let file = seen.file.clone();
        seen.links_left = seen.links_left.saturating_sub(1);
        if seen.links_left == 0 {
            inodes.remove(&key);
        }
        drop(inodes);
        self.report().links_reused += 1;
        Some(file)
    }

    /// Remembers the read of a hard-linked file for its other paths.
    fn remember_read(&self, meta: &Metadata, file: FileMeta, facts: Facts) {
        let Some(key) = file.ext.hardlink else {
            return;
        };
        let links = links_of(meta);
        if links < 2 {
            return;
        }
        let seen = ReadInode {
            facts,
            file,
            links_left: links - 1,
        };
        self.inodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, seen);
    }

    fn file(&self, path: &Path, meta: &Metadata) -> bool {
        let raw = RawPath::from_path(path);
        {
            let mut r = self.report();
            r.files_seen += 1;
            r.seen.insert(&raw);
        }
        let walked = Facts::of(Kind::File, meta);
        if self.cached(&raw, &walked) {
            self.report().files_cached += 1;
            return true;
        }
        if let Some(file) = self.read_before(meta, &walked) {
            let note = self.note(walked, file.hash);
            return self.send_entry(
                CommitEntry::File {
                    path: raw,
                    meta: file,
                },
                note,
            );
        }
        for attempt in 0..2 {
            match self.read(path) {
                Ok(ReadOutcome::Done(file, facts, dropped)) => {
                    self.dropped(path, dropped);
                    let note = self.note(facts, file.hash);
                    let remember = file.ext.hardlink.is_some().then(|| file.clone());
                    if !self.send_entry(
                        CommitEntry::File {
                            path: raw,
                            meta: file,
                        },
                        note,
                    ) {
                        return false;
                    }
                    // Only now: the entry of another path must follow this one's chunks.
                    if let Some(file) = remember {
                        self.remember_read(meta, file, facts);
                    }
                    return true;
                }
                Ok(ReadOutcome::Stopped) => return false,
                Ok(ReadOutcome::Changed) if attempt == 0 => continue,
                Ok(ReadOutcome::Changed) => {
                    let msg = text::changed_while_read(path, self.lang);
                    self.warn(text::warning(&msg, self.lang));
                    let mut r = self.report();
                    r.files_skipped += 1;
                    r.warnings.push(msg);
                    return true;
                }
                // Deleted since the walk saw it: a deletion, not an unreadable file.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut r = self.report();
                    r.files_seen -= 1;
                    r.seen.remove(&raw);
                    return true;
                }
                Err(e) => return self.unreadable(path, &raw, &e),
            }
        }
        true
    }

    fn unreadable(&self, path: &Path, raw: &RawPath, e: &std::io::Error) -> bool {
        self.warn(text::file_unreadable(path, &e.to_string(), self.lang));
        let mut r = self.report();
        r.files_skipped += 1;
        r.unreadable.push(format!("{raw} ({e})"));
        true
    }

    /// True when the cache says the server has exactly this entry already.
    fn cached(&self, path: &RawPath, facts: &Facts) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|c| c.matching(path, facts).is_some())
    }

    /// What to record in the cache after the commit, if the file's times are settled.
    fn note(&self, facts: Facts, hash: ChunkId) -> Option<CacheNote> {
        facts
            .settled(self.run_start_ns)
            .then_some(CacheNote { facts, hash })
    }

    /// Reads one file into chunks (sent on the channel as they come) and its [`FileMeta`].
    fn read(&self, path: &Path) -> std::io::Result<ReadOutcome> {
        let sink = |id: ChunkId, data: Vec<u8>| {
            self.report().bytes_read += data.len() as u64;
            // Once `Queued`, the chunk is in the channel ahead of this file's entry; if another
            // reader is still queuing it, `claim` waits for that (see `sent`).
            let Claim::Mine(claim) = self.sent.claim(id) else {
                return true;
            };
            let Some(permit) = self.budget.acquire(data.len()) else {
                return false;
            };
            if self
                .tx
                .blocking_send(Item::Chunk { id, data, permit })
                .is_err()
            {
                return false;
            }
            claim.queued();
            true
        };
        read_file(
            path,
            |file, meta| self.meta.read(meta, Source::File(file)),
            sink,
        )
    }
}

/// A hard-linked file read in this run, for its other paths.
struct ReadInode {
    /// The facts it was read with; another path reuses the read only while they hold.
    facts: Facts,
    file: FileMeta,
    /// Paths of the inode not yet met (its link count less those met).
    links_left: u64,
}

/// The link count of a file (1 where unknown).
fn links_of(meta: &Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.nlink()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        1
    }
}

// Moved once or twice per entry; boxing would cost an allocation per file instead.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ReadOutcome {
    /// The content, metadata and facts of the file as it was read, and why its attributes were
    /// left out if they were.
    Done(FileMeta, Facts, Option<XattrsDropped>),
    Changed,
    /// The receiver is gone: stop the scan.
    Stopped,
}

/// Reads the file at `path` and gives each chunk to `sink` (false: stop), then returns the
/// file's [`FileMeta`] unless it changed while being read. A file no larger than one chunk's
/// maximum is read in one piece (no streaming buffer for the many small files of a tree).
/// `ext` reads the open file's further metadata before the content, so that a change of it
/// during the read (which moves the change time) is seen as a change.
pub(crate) fn read_file(
    path: &Path,
    ext: impl FnOnce(&File, &Metadata) -> fsmeta::Read,
    mut sink: impl FnMut(ChunkId, Vec<u8>) -> bool,
) -> std::io::Result<ReadOutcome> {
    let file = File::open(path)?;
    let before = file.metadata()?;
    let ext = ext(&file, &before);
    let params = ChunkParams::default();
    let mut hasher = blake3::Hasher::new();
    let mut chunks = Vec::new();
    let mut size = 0u64;
    let mut take = |data: Vec<u8>, hasher: &mut blake3::Hasher| {
        let id = ChunkId::of(&data);
        hasher.update(&data);
        size += data.len() as u64;
        chunks.push(ChunkRef {
            id,
            len: data.len() as u32,
        });
        sink(id, data)
    };
    if before.len() <= u64::from(params.max) {
        let mut data = Vec::with_capacity(before.len() as usize);
        // One byte more than announced shows a file that grew.
        (&file)
            .take(u64::from(params.max) + 1)
            .read_to_end(&mut data)?;
        let cuts = params.cut(&data);
        if cuts.len() == 1 {
            if !take(data, &mut hasher) {
                return Ok(ReadOutcome::Stopped);
            }
        } else {
            for (offset, len) in cuts {
                if !take(data[offset..offset + len].to_vec(), &mut hasher) {
                    return Ok(ReadOutcome::Stopped);
                }
            }
        }
    } else {
        for chunk in params.stream(&file) {
            if !take(chunk?, &mut hasher) {
                return Ok(ReadOutcome::Stopped);
            }
        }
    }
    // The same open file, so a rename over the path during the read does not count as a change.
    let after = file.metadata()?;
    let facts = Facts::of(Kind::File, &before);
    if size != before.len() || Facts::of(Kind::File, &after) != facts {
        return Ok(ReadOutcome::Changed);
    }
    Ok(ReadOutcome::Done(
        FileMeta {
            size,
            mtime_ns: facts.mtime_ns,
            mode: facts.mode,
            attributes: facts.attributes,
            hash: hasher.finalize().into(),
            params,
            chunks,
            ext: ext.meta,
        },
        facts,
        ext.dropped,
    ))
}

mod sent;

#[cfg(test)]
mod tests;
