//! # The packed store: chunks appended to segment files, located through a redb index
//!
//! One file per chunk costs a create, an fsync, a rename and a directory fsync per chunk; for
//! 100,000 small chunks that alone takes seconds. The packed store appends chunks to a few large
//! **segment** files below `<chunks>/packs/` and keeps where each chunk lives in its own redb file,
//! `<chunks>/index.redb`. A batch of chunks costs one write, one `fdatasync` and one index commit.
//!
//! ## Format
//!
//! A segment `packs/<id as 16 hex digits>.seg` starts with the 8 bytes [`SEGMENT_MAGIC`], followed
//! by records, each a 40-byte header (`RECORD_MAGIC`, the 32-byte chunk id, the stored length as
//! u32 little endian) and then the stored bytes. A segment is thus self-describing: compaction
//! reads it front to back, and the index could be rebuilt from the files. `get` checks the header
//! in front of the bytes it returns, so a stale or wrong location can never hand out another
//! chunk's bytes. Segment ids are never reused within a process.
//!
//! The index (`index.redb`, owned by the store, not the metadata database) has two tables:
//! `locations` (chunk id → segment, offset of the bytes, length, time stored) and `segments`
//! (segment id → committed length, live bytes = headers and bytes of the records the index still
//! points at). It is a separate file on purpose: it describes the files on this disk, so it must
//! not travel with `db-backup`/`db-restore` of the metadata (a restored older metadata database
//! would otherwise point at segments that compaction has since removed), and it keeps the
//! [`ChunkStore`] trait free of the metadata schema.
//!
//! ## Writing
//!
//! A few **writers** (slots, each with its own open segment) take batches: a batch takes a free
//! slot, appends all its records with one positional write, `fdatasync`s the segment (and the
//! directory when the segment is new), then commits all locations and the segment's new committed
//! length in one index transaction. Only then does the call return, so nothing is acknowledged
//! before it is durable, and concurrent uploads write and sync in parallel (redb serialises only
//! the short index commits). A slot starts a new segment when the next batch would pass the
//! target size; the old one is then **sealed** (never written again).
//!
//! Deletion is logical: the location goes and the segment's live bytes drop. `replace` appends the
//! new bytes like a put and moves the location in its index transaction.
//!
//! ## Compaction
//!
//! A sealed segment whose live share falls below a threshold is compacted: its records are read
//! front to back and those the index (a snapshot) still points at are appended to an output
//! segment, which is synced. One index transaction then moves only the locations that *still*
//! point at the old record (a chunk deleted or replaced meanwhile is not resurrected), checks that
//! the old segment's live bytes drop to exactly zero (otherwise nothing is moved and the segment
//! stays), and drops the old segment's row. Only then is the old file removed. A reader that
//! looked up the old location before and finds the file gone looks the chunk up again.
//!
//! ## What a crash leaves, and what [`PackedStore::open`] does about it
//!
//! - **During a batch, before its index commit**: bytes past the segment's committed length, or a
//!   whole new segment file without an index row. Nothing was acknowledged. `open` truncates every
//!   segment to its committed length and removes segment files the index does not know.
//! - **After a compaction's index commit, before the old file is removed**: the old file has no
//!   row any more, so `open` removes it; every location already points at the output segment.
//! - **During a compaction's copy**: output bytes past its committed length (truncated) or an
//!   output file without a row (removed); the old segment is untouched.
//! - **A segment shorter than its committed length** (lost by the disk, not by us): logged; the
//!   chunks in the lost part read as missing, and `verify` reports them.
//!
//! ## Chunks of the per-file layout
//!
//! Data directories of earlier versions hold one file per chunk (`ab/cd/<hex>`, see
//! [`LocalStore`]). `open` imports them: batches of them are appended like a put (keeping their
//! modification time as the time stored, which the GC's orphan sweep relies on), and a file is
//! removed only after the index commit of its batch. A crash anywhere leaves every chunk either
//! in the index or still a file (or both: the next import skips it and removes the file).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use asgard_core::ChunkId;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{ChunkLocation, ChunkStore, CompactReport, IdIter, LocalStore, StoreError};

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"ASGSEG\x00\x01";
/// The first bytes of every record header.
pub const RECORD_MAGIC: &[u8; 4] = b"ASGC";
/// Length of a record header: magic, chunk id, stored length (u32 LE).
pub const RECORD_HEADER: u64 = 4 + 32 + 4;
const SEG_HEADER: u64 = SEGMENT_MAGIC.len() as u64;

/// chunk id → (segment, offset of the stored bytes, stored length, time stored in µs).
const LOCATIONS: TableDefinition<&[u8; 32], (u64, u64, u32, i64)> =
    TableDefinition::new("locations");
/// segment id → (committed length, live bytes).
const SEGMENTS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("segments");

/// Open segment file handles kept for reads, at most this many.
const HANDLE_CACHE: usize = 256;
/// Legacy chunk files imported per batch.
const IMPORT_BATCH: usize = 1000;
const IMPORT_BATCH_BYTES: usize = 64 << 20;

/// Tuning of a [`PackedStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedOptions {
    /// A writer starts a new segment when the next batch would make its segment larger than this
    /// (a single larger batch still goes into one segment).
    pub segment_size: u64,
    /// Segments open for writing at the same time: concurrent batches up to this number write
    /// and sync in parallel.
    pub writers: usize,
}

impl Default for PackedOptions {
    fn default() -> Self {
        PackedOptions {
            segment_size: 64 << 20,
            writers: 4,
        }
    }
}

/// A segment open for appending, owned by one writer slot (or by a compaction).
#[derive(Debug)]
struct OpenSegment {
    id: u64,
    file: File,
    /// The committed length: every byte before it is described by the index.
    len: u64,
}

/// How an append treats ids the index has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Skip them (put, import).
    Put,
    /// Move their location to the new bytes (replace).
    Replace,
}

/// Chunks packed into segment files; see the module docs.
pub struct PackedStore {
    root: PathBuf,
    packs: PathBuf,
    index: Database,
    opts: PackedOptions,
    next_segment: AtomicU64,
    writers: Vec<Mutex<Option<OpenSegment>>>,
    next_writer: AtomicUsize,
    /// Segments being appended to (writer slots, a compaction's output): never compacted.
    open_segments: Mutex<HashSet<u64>>,
    handles: Mutex<Handles>,
    compacting: Mutex<()>,
}

#[derive(Default)]
struct Handles {
    files: HashMap<u64, Arc<File>>,
    /// Segments removed in this process (ids are never reused): never cached again.
    retired: HashSet<u64>,
}

impl std::fmt::Debug for PackedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedStore")
            .field("root", &self.root)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn db_err(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    StoreError::io(path, std::io::Error::other(e.to_string()))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn record_len(stored_len: u32) -> u64 {
    RECORD_HEADER + u64::from(stored_len)
}

fn record_header(id: &ChunkId, len: u32) -> [u8; RECORD_HEADER as usize] {
    let mut h = [0u8; RECORD_HEADER as usize];
    h[..4].copy_from_slice(RECORD_MAGIC);
    h[4..36].copy_from_slice(&id.0);
    h[36..].copy_from_slice(&len.to_le_bytes());
    h
}

/// The id and length of a record header, or `None` when it is not one.
fn parse_header(h: &[u8]) -> Option<(ChunkId, u32)> {
    if h.len() < RECORD_HEADER as usize || &h[..4] != RECORD_MAGIC {
        return None;
    }
    let id = ChunkId(h[4..36].try_into().ok()?);
    let len = u32::from_le_bytes(h[36..40].try_into().ok()?);
    Some((id, len))
}

fn segment_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

impl PackedStore {
    /// Opens (creating if needed) the store at `root` (`<data_dir>/chunks`), repairs what a crash
    /// left (see the module docs) and imports chunk files of the per-file layout. The caller holds
    /// the data directory lock: no other process uses the store.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the folders, the index or a repair step fail.
    pub fn open(root: &Path, opts: PackedOptions) -> Result<PackedStore, StoreError> {
        let packs = root.join("packs");
        fs::create_dir_all(&packs).map_err(|e| StoreError::io(&packs, e))?;
        // The folders must be durable in their parents before any segment below them counts.
        sync_dir(&packs)?;
        sync_dir(root)?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let index_path = root.join("index.redb");
        let index = Database::create(&index_path).map_err(|e| db_err(&index_path, e))?;
        {
            let txn = index.begin_write().map_err(|e| db_err(&index_path, e))?;
            txn.open_table(LOCATIONS)
                .map_err(|e| db_err(&index_path, e))?;
            txn.open_table(SEGMENTS)
                .map_err(|e| db_err(&index_path, e))?;
            txn.commit().map_err(|e| db_err(&index_path, e))?;
        }
        let store = PackedStore {
            root: root.to_path_buf(),
            packs,
            index,
            opts: PackedOptions {
                segment_size: opts.segment_size.max(SEG_HEADER + 1),
                writers: opts.writers.max(1),
            },
            next_segment: AtomicU64::new(1),
            writers: (0..opts.writers.max(1)).map(|_| Mutex::new(None)).collect(),
            next_writer: AtomicUsize::new(0),
            open_segments: Mutex::new(HashSet::new()),
            handles: Mutex::new(Handles::default()),
            compacting: Mutex::new(()),
        };
        store.recover()?;
        store.import_legacy()?;
        Ok(store)
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.redb")
    }

    fn dberr(&self, e: impl Into<redb::Error>) -> StoreError {
        db_err(&self.index_path(), e)
    }

    /// The file of segment `id`.
    pub fn segment_path(&self, id: u64) -> PathBuf {
        self.packs.join(segment_name(id))
    }

    /// Crash repair at open: truncate segments to their committed length, remove segment files
    /// the index does not know (torn new segments, compacted ones whose removal was cut off).
    fn recover(&self) -> Result<(), StoreError> {
        let rows: HashMap<u64, (u64, u64)> = {
            let txn = self.index.begin_read().map_err(|e| self.dberr(e))?;
            let t = txn.open_table(SEGMENTS).map_err(|e| self.dberr(e))?;
            let mut rows = HashMap::new();
            for row in t.iter().map_err(|e| self.dberr(e))? {
                let (k, v) = row.map_err(|e| self.dberr(e))?;
                rows.insert(k.value(), v.value());
            }
            rows
        };
        let mut max_id = rows.keys().copied().max().unwrap_or(0);
        let mut removed = false;
        for entry in fs::read_dir(&self.packs).map_err(|e| StoreError::io(&self.packs, e))? {
            let entry = entry.map_err(|e| StoreError::io(&self.packs, e))?;
            let path = entry.path();
            let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) else {
                tracing::warn!(path = %path.display(), "unexpected file in the segment folder");
                continue;
            };
            max_id = max_id.max(id);
            if !rows.contains_key(&id) {
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                tracing::info!(path = %path.display(), "removed a segment the index does not reference (left by a crash)");
                removed = true;
            }
        }
        if removed {
            sync_dir(&self.packs)?;
        }
        for (&id, &(committed, _)) in &rows {
            let path = self.segment_path(id);
            match fs::metadata(&path) {
                Ok(m) if m.len() > committed => {
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| StoreError::io(&path, e))?;
                    f.set_len(committed)
                        .and_then(|()| f.sync_all())
                        .map_err(|e| StoreError::io(&path, e))?;
                    tracing::info!(path = %path.display(), from = m.len(), to = committed, "truncated the unacknowledged tail of a segment (left by a crash)");
                }
                Ok(m) if m.len() < committed => {
                    tracing::error!(path = %path.display(), len = m.len(), committed, "segment is shorter than its committed length: chunks in the lost part are missing (run verify)");
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    tracing::error!(path = %path.display(), "segment file is missing: its chunks are missing (run verify)");
                }
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        self.next_segment.store(max_id + 1, Ordering::SeqCst);
        Ok(())
    }

    /// Imports chunk files of the per-file layout (see the module docs); idempotent.
    fn import_legacy(&self) -> Result<(), StoreError> {
        let has_legacy = fs::read_dir(&self.root)
            .map_err(|e| StoreError::io(&self.root, e))?
            .filter_map(Result::ok)
            .any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit())
            });
        if !has_legacy {
            return Ok(());
        }
        let legacy = LocalStore::open(&self.root)?;
        tracing::info!("importing chunk files of the per-file layout into segments");
        let mut done = 0usize;
        let mut batch: Vec<(ChunkId, Vec<u8>, i64)> = Vec::new();
        let mut batch_bytes = 0usize;
        // The listing reads one leaf folder at a time, so removing imported files as we go is safe
        // and the ids are never all in memory.
        let mut listing = legacy.list()?.peekable();
        while let Some(id) = listing.next() {
            let id = id?;
            match legacy.get(&id) {
                Ok(bytes) => {
                    let at = legacy.stored_at_us(&id)?.unwrap_or_else(now_us);
                    batch_bytes += bytes.len();
                    batch.push((id, bytes, at));
                }
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            let last = listing.peek().is_none();
            if !batch.is_empty()
                && (batch.len() >= IMPORT_BATCH || batch_bytes >= IMPORT_BATCH_BYTES || last)
            {
                let items: Vec<(ChunkId, &[u8], i64)> =
                    batch.iter().map(|(id, b, at)| (*id, &b[..], *at)).collect();
                self.append(&items, Mode::Put)?;
                // In the index now (or before): the files may go.
                for (id, _, _) in &batch {
                    let path = legacy.path_of(id);
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(StoreError::io(&path, e)),
                    }
                }
                done += batch.len();
                tracing::info!(done, "imported chunk files");
                batch.clear();
                batch_bytes = 0;
            }
        }
        drop(listing);
        drop(legacy);
        // Empty leftovers of the old layout; a folder that is not empty (a chunk file written
        // meanwhile cannot happen: we hold the lock) is left alone.
        for entry in fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, e))? {
            let entry = entry.map_err(|e| StoreError::io(&self.root, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let legacy_dir =
                (name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit())) || name == "tmp";
            if legacy_dir && entry.path().is_dir() {
                if let Ok(rd) = fs::read_dir(entry.path()) {
                    for sub in rd.filter_map(Result::ok) {
                        let _ = fs::remove_dir(sub.path());
                    }
                }
                let _ = fs::remove_dir(entry.path());
            }
        }
        sync_dir(&self.root)?;
        tracing::info!(chunks = done, "import of the per-file layout done");
        Ok(())
    }

    /// Takes a writer slot: a free one if any, else waits for one (round robin).
    fn writer(&self) -> MutexGuard<'_, Option<OpenSegment>> {
        let n = self.writers.len();
        let start = self.next_writer.fetch_add(1, Ordering::Relaxed) % n;
        for k in 0..n {
            if let Ok(g) = self.writers[(start + k) % n].try_lock() {
                return g;
            }
        }
        lock(&self.writers[start])
    }

    /// Creates a new, empty segment file (synced, with its name durable) and registers it as
    /// open. It has no index row until its first batch commits.
    fn new_segment(&self) -> Result<OpenSegment, StoreError> {
        let id = self.next_segment.fetch_add(1, Ordering::SeqCst);
        let path = self.segment_path(id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        file.write_all_at(SEGMENT_MAGIC, 0)
            .map_err(|e| StoreError::io(&path, e))?;
        lock(&self.open_segments).insert(id);
        Ok(OpenSegment {
            id,
            file,
            len: SEG_HEADER,
        })
    }

    fn seal(&self, seg: Option<OpenSegment>) {
        if let Some(s) = seg {
            lock(&self.open_segments).remove(&s.id);
        }
    }

    /// Appends `items` (id, stored bytes, time stored) as one batch; see the module docs.
    /// Returns per item whether this call stored it.
    fn append(&self, items: &[(ChunkId, &[u8], i64)], mode: Mode) -> Result<Vec<bool>, StoreError> {
        let mut result = vec![false; items.len()];
        // Which items to write: for a put, those the index lacks, each id once.
        let mut todo: Vec<usize> = Vec::with_capacity(items.len());
        {
            let txn = self.index.begin_read().map_err(|e| self.dberr(e))?;
            let t = txn.open_table(LOCATIONS).map_err(|e| self.dberr(e))?;
            let mut seen = HashSet::new();
            for (i, (id, _, _)) in items.iter().enumerate() {
                if !seen.insert(*id) {
                    continue;
                }
                if mode == Mode::Put && t.get(&id.0).map_err(|e| self.dberr(e))?.is_some() {
                    continue;
                }
                todo.push(i);
            }
        }
        if todo.is_empty() {
            return Ok(result);
        }
        for &i in &todo {
            if u32::try_from(items[i].1.len()).is_err() {
                return Err(StoreError::io(
                    &self.packs,
                    std::io::Error::new(ErrorKind::InvalidInput, "chunk larger than 4 GiB"),
                ));
            }
        }
        let batch_len: u64 = todo
            .iter()
            .map(|&i| record_len(items[i].1.len() as u32))
            .sum();

        let mut slot = self.writer();
        let full = slot
            .as_ref()
            .is_some_and(|s| s.len > SEG_HEADER && s.len + batch_len > self.opts.segment_size);
        if full {
            self.seal(slot.take());
        }
        let is_new = slot.is_none();
        if is_new {
            *slot = Some(self.new_segment()?);
        }
        let outcome = self.append_to(
            slot.as_mut().expect("a segment"),
            is_new,
            items,
            &todo,
            mode,
        );
        match outcome {
            Ok(stored) => {
                for i in stored {
                    result[i] = true;
                }
                Ok(result)
            }
            Err(e) => {
                // The segment's tail past its committed length is unknown now: write no more to
                // it (the tail is truncated at the next open).
                self.seal(slot.take());
                Err(e)
            }
        }
    }

    /// Writes the records of `todo` at the end of `seg`, syncs, and commits their locations.
    /// Returns the indices that the index now points at.
    fn append_to(
        &self,
        seg: &mut OpenSegment,
        is_new: bool,
        items: &[(ChunkId, &[u8], i64)],
        todo: &[usize],
        mode: Mode,
    ) -> Result<Vec<usize>, StoreError> {
        let path = self.segment_path(seg.id);
        let mut buf = Vec::with_capacity(
            todo.iter()
                .map(|&i| record_len(items[i].1.len() as u32) as usize)
                .sum(),
        );
        let mut offsets = Vec::with_capacity(todo.len());
        for &i in todo {
            let (id, bytes, _) = items[i];
            buf.extend_from_slice(&record_header(&id, bytes.len() as u32));
            offsets.push(seg.len + buf.len() as u64);
            buf.extend_from_slice(bytes);
        }
        seg.file
            .write_all_at(&buf, seg.len)
            .and_then(|()| seg.file.sync_data())
            .map_err(|e| StoreError::io(&path, e))?;
        if is_new {
            // The new segment's name must be durable before any location points into it.
            sync_dir(&self.packs)?;
        }
        let new_len = seg.len + buf.len() as u64;
        drop(buf);

        let txn = self.index.begin_write().map_err(|e| self.dberr(e))?;
        let mut stored = Vec::with_capacity(todo.len());
        {
            let mut locs = txn.open_table(LOCATIONS).map_err(|e| self.dberr(e))?;
            let mut segs = txn.open_table(SEGMENTS).map_err(|e| self.dberr(e))?;
            // Deletions lower the row's live bytes meanwhile: start from the row, not a copy.
            let mut live = segs
                .get(seg.id)
                .map_err(|e| self.dberr(e))?
                .map_or(0, |g| g.value().1);
            for (&i, &offset) in todo.iter().zip(&offsets) {
                let (id, bytes, at) = items[i];
                let len = bytes.len() as u32;
                let old = locs
                    .get(&id.0)
                    .map_err(|e| self.dberr(e))?
                    .map(|g| g.value());
                if let Some((old_seg, _, old_len, _)) = old {
                    if mode == Mode::Put {
                        // Stored by a concurrent batch meanwhile: ours are dead bytes.
                        continue;
                    }
                    lower_live(&mut segs, old_seg, record_len(old_len), seg.id, &mut live)
                        .map_err(|e| self.dberr(e))?;
                }
                locs.insert(&id.0, (seg.id, offset, len, at))
                    .map_err(|e| self.dberr(e))?;
                live += record_len(len);
                stored.push(i);
            }
            segs.insert(seg.id, (new_len, live))
                .map_err(|e| self.dberr(e))?;
        }
        txn.commit().map_err(|e| self.dberr(e))?;
        seg.len = new_len;
        Ok(stored)
    }

    fn location(&self, id: &ChunkId) -> Result<Option<(u64, u64, u32, i64)>, StoreError> {
        let txn = self.index.begin_read().map_err(|e| self.dberr(e))?;
        let t = txn.open_table(LOCATIONS).map_err(|e| self.dberr(e))?;
        Ok(t.get(&id.0).map_err(|e| self.dberr(e))?.map(|g| g.value()))
    }

    /// A read handle of segment `id`; `NotFound` when it was removed.
    fn handle(&self, id: u64) -> std::io::Result<Arc<File>> {
        {
            let h = lock(&self.handles);
            if let Some(f) = h.files.get(&id) {
                return Ok(f.clone());
            }
            if h.retired.contains(&id) {
                return Err(ErrorKind::NotFound.into());
            }
        }
        let f = Arc::new(File::open(self.segment_path(id))?);
        let mut h = lock(&self.handles);
        if !h.retired.contains(&id) {
            if h.files.len() >= HANDLE_CACHE {
                h.files.clear();
            }
            h.files.insert(id, f.clone());
        }
        Ok(f)
    }

    /// Forgets segment `id` for reading and removes its file (which the index no longer knows).
    fn remove_segment(&self, id: u64) -> Result<(), StoreError> {
        {
            let mut h = lock(&self.handles);
            h.retired.insert(id);
            h.files.remove(&id);
        }
        let path = self.segment_path(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
        sync_dir(&self.packs)
    }

    /// Compacts sealed segments whose live share is below `below_percent` (see the module docs).
    /// `between` runs after the live records of a segment are copied and synced, before the index
    /// transaction that moves them (tests use it to race deletions and replacements).
    pub fn compact_with(
        &self,
        below_percent: u32,
        between: &mut dyn FnMut(),
    ) -> Result<CompactReport, StoreError> {
        let _running = lock(&self.compacting);
        let mut report = CompactReport::default();
        let rows: Vec<(u64, u64, u64)> = {
            let txn = self.index.begin_read().map_err(|e| self.dberr(e))?;
            let t = txn.open_table(SEGMENTS).map_err(|e| self.dberr(e))?;
            let mut rows = Vec::new();
            for row in t.iter().map_err(|e| self.dberr(e))? {
                let (k, v) = row.map_err(|e| self.dberr(e))?;
                let (committed, live) = v.value();
                rows.push((k.value(), committed, live));
            }
            rows
        };
        let open = lock(&self.open_segments).clone();
        let below = u128::from(below_percent.min(100));
        let candidates: Vec<(u64, u64, u64)> = rows
            .into_iter()
            .filter(|(id, committed, live)| {
                let total = u128::from(committed.saturating_sub(SEG_HEADER));
                !open.contains(id) && u128::from(*live) * 100 < total * below
            })
            .collect();
        let mut out: Option<OpenSegment> = None;
        let result = (|| {
            for (id, committed, live) in candidates {
                if let Some(moved) =
                    self.compact_one(id, committed, live, &mut out, &mut *between)?
                {
                    report.segments_compacted += 1;
                    report.bytes_reclaimed += committed.saturating_sub(moved);
                }
            }
            Ok(())
        })();
        self.seal(out);
        result.map(|()| report)
    }

    /// Compacts one segment into `out`; returns the bytes copied, or `None` when it was left
    /// alone (its accounting did not add up).
    fn compact_one(
        &self,
        id: u64,
        committed: u64,
        live: u64,
        out: &mut Option<OpenSegment>,
        between: &mut dyn FnMut(),
    ) -> Result<Option<u64>, StoreError> {
        let path = self.segment_path(id);
        // Copy the records the index (a snapshot) points at.
        let mut moved: Vec<(ChunkId, u64, u64, u32, i64)> = Vec::new();
        let mut copied = 0u64;
        if live > 0 {
            let fits = out
                .as_ref()
                .is_some_and(|o| o.len == SEG_HEADER || o.len + live <= self.opts.segment_size);
            if !fits {
                self.seal(out.take());
            }
            if out.is_none() {
                *out = Some(self.new_segment()?);
            }
            let o = out.as_mut().expect("an output segment");
            let opath = self.segment_path(o.id);
            let was_empty = o.len == SEG_HEADER;
            let txn = self.index.begin_read().map_err(|e| self.dberr(e))?;
            let locs = txn.open_table(LOCATIONS).map_err(|e| self.dberr(e))?;
            let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
            let mut r = BufReader::with_capacity(1 << 20, file.take(committed));
            let mut magic = [0u8; SEG_HEADER as usize];
            r.read_exact(&mut magic)
                .map_err(|e| StoreError::io(&path, e))?;
            let mut pos = SEG_HEADER;
            let mut buf: Vec<u8> = Vec::new();
            let mut data = Vec::new();
            let mut header = [0u8; RECORD_HEADER as usize];
            while pos < committed {
                if r.read_exact(&mut header).is_err() {
                    break;
                }
                let Some((cid, len)) = parse_header(&header) else {
                    tracing::warn!(path = %path.display(), offset = pos, "damaged record header: segment not compacted");
                    return Ok(None);
                };
                data.resize(len as usize, 0);
                if r.read_exact(&mut data).is_err() {
                    break;
                }
                let offset = pos + RECORD_HEADER;
                pos = offset + u64::from(len);
                let loc = locs
                    .get(&cid.0)
                    .map_err(|e| self.dberr(e))?
                    .map(|g| g.value());
                if let Some((s, off, l, at)) = loc
                    && s == id
                    && off == offset
                    && l == len
                {
                    buf.extend_from_slice(&header);
                    let new_offset = o.len + copied + buf.len() as u64;
                    buf.extend_from_slice(&data);
                    moved.push((cid, offset, new_offset, len, at));
                    if buf.len() >= 1 << 20 {
                        o.file
                            .write_all_at(&buf, o.len + copied)
                            .map_err(|e| StoreError::io(&opath, e))?;
                        copied += buf.len() as u64;
                        buf.clear();
                    }
                }
            }
            drop(locs);
            drop(txn);
            o.file
                .write_all_at(&buf, o.len + copied)
                .and_then(|()| o.file.sync_data())
                .map_err(|e| StoreError::io(&opath, e))?;
            copied += buf.len() as u64;
            if was_empty {
                sync_dir(&self.packs)?;
            }
        }
        between();

        // Move what still points at the old records; the old segment must end with no live bytes.
        let txn = self.index.begin_write().map_err(|e| self.dberr(e))?;
        let mut moved_live = 0u64;
        {
            let mut locs = txn.open_table(LOCATIONS).map_err(|e| self.dberr(e))?;
            let mut segs = txn.open_table(SEGMENTS).map_err(|e| self.dberr(e))?;
            let Some((_, old_live)) = segs.get(id).map_err(|e| self.dberr(e))?.map(|g| g.value())
            else {
                return Ok(None);
            };
            let out_id = out.as_ref().map(|o| o.id);
            for &(cid, old_off, new_off, len, at) in &moved {
                let still = locs
                    .get(&cid.0)
                    .map_err(|e| self.dberr(e))?
                    .map(|g| g.value())
                    .is_some_and(|(s, off, _, _)| s == id && off == old_off);
                if still {
                    let out_id = out_id.expect("an output segment when records were copied");
                    locs.insert(&cid.0, (out_id, new_off, len, at))
                        .map_err(|e| self.dberr(e))?;
                    moved_live += record_len(len);
                }
            }
            if old_live != moved_live {
                tracing::warn!(
                    segment = id,
                    old_live,
                    moved_live,
                    "segment accounting does not add up: segment not compacted"
                );
                drop(locs);
                drop(segs);
                txn.abort().map_err(|e| self.dberr(e))?;
                return Ok(None);
            }
            segs.remove(id).map_err(|e| self.dberr(e))?;
            if let Some(o) = out.as_ref()
                && !moved.is_empty()
            {
                let out_live = segs
                    .get(o.id)
                    .map_err(|e| self.dberr(e))?
                    .map_or(0, |g| g.value().1);
                segs.insert(o.id, (o.len + copied, out_live + moved_live))
                    .map_err(|e| self.dberr(e))?;
            }
        }
        txn.commit().map_err(|e| self.dberr(e))?;
        if let Some(o) = out.as_mut()
            && !moved.is_empty()
        {
            o.len += copied;
        }
        // From here on nothing points into the old segment: a crash leaves a file `open` removes.
        self.remove_segment(id)?;
        tracing::debug!(segment = id, copied, "segment compacted");
        Ok(Some(copied))
    }
}

/// Lowers the live bytes of `seg` by `by` in the open transaction; `current`/`current_live` is a
/// segment whose row the caller writes itself (its running live count is lowered instead).
fn lower_live(
    segs: &mut redb::Table<u64, (u64, u64)>,
    seg: u64,
    by: u64,
    current: u64,
    current_live: &mut u64,
) -> Result<(), redb::StorageError> {
    if seg == current {
        *current_live = current_live.saturating_sub(by);
        return Ok(());
    }
    let row = segs.get(seg)?.map(|g| g.value());
    if let Some((committed, live)) = row {
        segs.insert(seg, (committed, live.saturating_sub(by)))?;
    }
    Ok(())
}

impl ChunkStore for PackedStore {
    fn put(&self, id: &ChunkId, stored: &[u8]) -> Result<bool, StoreError> {
        Ok(self.put_many(&[(*id, stored)])?[0])
    }

    fn put_many(&self, chunks: &[(ChunkId, &[u8])]) -> Result<Vec<bool>, StoreError> {
        let at = now_us();
        let items: Vec<(ChunkId, &[u8], i64)> =
            chunks.iter().map(|(id, b)| (*id, *b, at)).collect();
        self.append(&items, Mode::Put)
    }

    fn replace(&self, id: &ChunkId, stored: &[u8]) -> Result<(), StoreError> {
        self.append(&[(*id, stored, now_us())], Mode::Replace)?;
        Ok(())
    }

    fn get(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
        // A compaction may remove the segment between the lookup and the read: look again.
        for _ in 0..4 {
            let Some((seg, offset, len, _)) = self.location(id)? else {
                return Err(StoreError::NotFound { id: *id });
            };
            let path = self.segment_path(seg);
            let file = match self.handle(seg) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    if self.location(id)?.is_some_and(|l| l.0 == seg) {
                        // The index points at a file that is gone: the chunk is missing.
                        return Err(StoreError::NotFound { id: *id });
                    }
                    continue;
                }
                Err(e) => return Err(StoreError::io(path, e)),
            };
            let mut buf = vec![0u8; record_len(len) as usize];
            match file.read_exact_at(&mut buf, offset - RECORD_HEADER) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    tracing::warn!(chunk = %id, path = %path.display(), "segment ends before the chunk");
                    return Err(StoreError::NotFound { id: *id });
                }
                Err(e) => return Err(StoreError::io(path, e)),
            }
            if parse_header(&buf) != Some((*id, len)) {
                tracing::warn!(chunk = %id, path = %path.display(), offset, "the record header does not name the chunk");
                return Err(StoreError::NotFound { id: *id });
            }
            buf.drain(..RECORD_HEADER as usize);
            return Ok(buf);
        }
        Err(StoreError::io(
            self.packs.clone(),
            std::io::Error::other(format!("chunk {id} kept moving while being read")),
        ))
    }

    fn exists(&self, id: &ChunkId) -> Result<bool, StoreError> {
        Ok(self.location(id)?.is_some())
    }

    fn exists_many(&self, ids: &[ChunkId]) -> Result<Vec<bool>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.index.begin_read().map_err(|e| self.dberr(e))?;
        let t = txn.open_table(LOCATIONS).map_err(|e| self.dberr(e))?;
        ids.iter()
            .map(|id| Ok(t.get(&id.0).map_err(|e| self.dberr(e))?.is_some()))
            .collect()
    }

    fn delete(&self, id: &ChunkId) -> Result<bool, StoreError> {
        Ok(self.delete_many(std::slice::from_ref(id))? > 0)
    }

    fn delete_many(&self, ids: &[ChunkId]) -> Result<u64, StoreError> {
        let txn = self.index.begin_write().map_err(|e| self.dberr(e))?;
        let mut removed = 0;
        {
            let mut locs = txn.open_table(LOCATIONS).map_err(|e| self.dberr(e))?;
            let mut segs = txn.open_table(SEGMENTS).map_err(|e| self.dberr(e))?;
            for id in ids {
                let old = locs
                    .remove(&id.0)
                    .map_err(|e| self.dberr(e))?
                    .map(|g| g.value());
                if let Some((seg, _, len, _)) = old {
                    let mut unused = 0;
                    lower_live(&mut segs, seg, record_len(len), u64::MAX, &mut unused)
                        .map_err(|e| self.dberr(e))?;
                    removed += 1;
                }
            }
        }
        txn.commit().map_err(|e| self.dberr(e))?;
        Ok(removed)
    }

    fn stored_at_us(&self, id: &ChunkId) -> Result<Option<i64>, StoreError> {
        Ok(self.location(id)?.map(|l| l.3))
    }

    fn list(&self) -> Result<IdIter<'_>, StoreError> {
        // Key-range batches, each from its own read transaction (never the whole index at once).
        let mut after: Option<[u8; 32]> = None;
        let mut pending: std::vec::IntoIter<ChunkId> = Vec::new().into_iter();
        let mut finished = false;
        Ok(Box::new(std::iter::from_fn(move || {
            loop {
                if let Some(id) = pending.next() {
                    return Some(Ok(id));
                }
                if finished {
                    return None;
                }
                let batch = (|| {
                    let txn = self.index.begin_read().map_err(|e| self.dberr(e))?;
                    let t = txn.open_table(LOCATIONS).map_err(|e| self.dberr(e))?;
                    let range = match &after {
                        Some(k) => t.range::<&[u8; 32]>((
                            std::ops::Bound::Excluded(k),
                            std::ops::Bound::Unbounded,
                        )),
                        None => t.range::<&[u8; 32]>(..),
                    }
                    .map_err(|e| self.dberr(e))?;
                    let mut ids = Vec::new();
                    for row in range.take(10_000) {
                        let (k, _) = row.map_err(|e| self.dberr(e))?;
                        ids.push(ChunkId(*k.value()));
                    }
                    Ok::<_, StoreError>(ids)
                })();
                match batch {
                    Ok(ids) => {
                        if ids.len() < 10_000 {
                            finished = true;
                        }
                        after = ids.last().map(|id| id.0);
                        pending = ids.into_iter();
                    }
                    Err(e) => {
                        finished = true;
                        return Some(Err(e));
                    }
                }
            }
        })))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn compact(&self, below_percent: u32) -> Result<CompactReport, StoreError> {
        self.compact_with(below_percent, &mut || {})
    }

    fn locate(&self, id: &ChunkId) -> Result<Option<ChunkLocation>, StoreError> {
        Ok(self
            .location(id)?
            .map(|(seg, offset, len, _)| ChunkLocation {
                path: self.segment_path(seg),
                offset,
                len: u64::from(len),
            }))
    }
}

#[cfg(test)]
mod tests;
