//! The restore pipeline: many files at once, each chunk fetched once.
//!
//! `restore` hands over the regular files to restore in windows of at most `restore.window_files`
//! (default 4096). For a window the [`Restorer`]
//!
//! 1. creates every file's temp file beside its destination, already at its final length (so what
//!    is never written stays a hole);
//! 2. maps each distinct chunk to the places (file, offset) that need it: a chunk shared by several
//!    files, or repeated within one, is obtained once and written to all its places;
//! 3. obtains each chunk in the cheapest way: an all-zero chunk (its id is the blake3 of that many
//!    zeros) is not fetched and not written at all; a chunk that an earlier window already put into
//!    a restored file is read back from there (and checked against its id); every other chunk is
//!    fetched with `POST /api/fetch`, in requests of about [`REQUEST_BYTES`] that keep file order
//!    (so the chunks of many small files share a request), `restore.parallel_requests` of them in
//!    flight on the client's kept-alive connections;
//! 4. verifies every fetched chunk (bounded decode + blake3 against its id) on the blocking pool
//!    and writes it with positional writes into each temp file that needs it;
//! 5. hashes each file as its content arrives (in order; ranges that arrived early are read back
//!    from the temp file once the gap before them is filled), and when a file's last chunk is in,
//!    compares size and blake3 with the version and sets mtime and mode. A file that misses a
//!    chunk, or whose hash differs, never replaces anything: its temp file is removed and the file
//!    is reported as an error;
//! 6. makes the checked files durable before they replace anything: on Linux with one `syncfs`
//!    per file system at the end of the window (an fsync per file costs milliseconds each, which
//!    for many small files dwarfs the transfer), elsewhere with an fsync per file; then renames
//!    them into place and syncs their folders.
//!
//! Memory is bounded by configuration: each request in flight holds one frame (one chunk) at a
//! time; a window holds the metadata of its files and chunks; the map of chunks in already restored
//! files is capped at [`COPY_SOURCES_MAX`] entries (past that, a later repeat is fetched again).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use asgard_core::frames::{Frame, FrameDecoder};
use asgard_core::protocol::{MAX_FETCH_IDS, VersionInfo, VersionManifest};
use asgard_core::{ChunkId, Lang};
use futures_util::StreamExt;
use serde::Serialize;

use crate::client::Client;
use crate::platform;
use crate::progress::Progress;

/// Plaintext bytes asked for in one fetch request (the last chunk may overshoot).
pub const REQUEST_BYTES: u64 = 8 << 20;
/// At most this many chunks of already restored files are remembered as copy sources.
pub const COPY_SOURCES_MAX: usize = 200_000;
/// Zero blocks of this size (aligned to the file offset) are skipped, not written.
const SPARSE_BLOCK: u64 = 4096;
/// Read-back buffer for hashing and copying.
const READ_BUF: usize = 1 << 20;
/// Whether checked files are synced together at the end of a window (Linux: `syncfs`) rather than
/// one by one before their rename.
const SYNC_PER_WINDOW: bool = cfg!(target_os = "linux");

/// One regular file to restore.
pub struct Job {
    pub dest: PathBuf,
    /// The temp file beside `dest` (its folder exists).
    pub tmp: PathBuf,
    pub version: VersionInfo,
    pub manifest: VersionManifest,
}

/// What the pipeline did, for the summary.
#[derive(Debug, Default)]
pub struct Stats {
    /// Fetch requests sent.
    pub requests: AtomicU64,
    /// Chunks received from the server (and verified).
    pub chunks_fetched: AtomicU64,
    /// Stored (compressed) bytes of those chunks.
    pub bytes_fetched: AtomicU64,
    /// Distinct all-zero chunks that were neither fetched nor written.
    pub chunks_zero: AtomicU64,
    /// Chunks read back from files restored earlier in this run instead of being fetched.
    pub chunks_copied: AtomicU64,
    /// Places filled from a chunk obtained for another place (dedupe within a window).
    pub chunks_shared: AtomicU64,
}

/// The counters as plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub chunks_fetched: u64,
    pub bytes_fetched: u64,
    pub chunks_zero: u64,
    pub chunks_copied: u64,
    pub chunks_shared: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: l(&self.requests),
            chunks_fetched: l(&self.chunks_fetched),
            bytes_fetched: l(&self.bytes_fetched),
            chunks_zero: l(&self.chunks_zero),
            chunks_copied: l(&self.chunks_copied),
            chunks_shared: l(&self.chunks_shared),
        }
    }
}

/// Restores windows of files; keeps what later windows can reuse.
pub struct Restorer {
    client: Client,
    parallel: usize,
    lang: Lang,
    progress: Progress,
    stats: Arc<Stats>,
    /// The id of the all-zero chunk of each length seen so far.
    zero_ids: HashMap<u32, ChunkId>,
    /// Chunks in files restored by earlier windows: where a copy lies.
    copies: HashMap<ChunkId, (Arc<PathBuf>, u64)>,
}

/// The result for one job, in job order: `Ok` restored, `Err` the message.
pub type Outcome = Result<(), String>;

impl Restorer {
    pub fn new(client: Client, parallel: usize, lang: Lang, progress: Progress) -> Restorer {
        Restorer {
            client,
            parallel: parallel.clamp(1, 32),
            lang,
            progress,
            stats: Arc::default(),
            zero_ids: HashMap::new(),
            copies: HashMap::new(),
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Restores one window of files; returns one outcome per job, in order.
    pub async fn run_window(&mut self, jobs: Vec<Job>) -> anyhow::Result<Vec<Outcome>> {
        let lang = self.lang;
        // 1. Temp files at their final length.
        let (jobs, created) = tokio::task::spawn_blocking(move || {
            let created: Vec<std::io::Result<()>> = jobs.iter().map(create_temp).collect();
            (jobs, created)
        })
        .await?;

        // 2. Slots and the places of every chunk.
        let mut places: HashMap<ChunkId, Places> = HashMap::new();
        let mut order: Vec<ChunkId> = Vec::new();
        let mut slots = Vec::with_capacity(jobs.len());
        for (i, (job, made)) in jobs.into_iter().zip(created).enumerate() {
            let mut state = SlotState::default();
            match made {
                Ok(()) => {
                    let mut offset = 0u64;
                    let params = job.manifest.params;
                    for c in &job.manifest.chunks {
                        let p = places.entry(c.id).or_insert_with(|| {
                            order.push(c.id);
                            Places {
                                len: c.len,
                                zero_candidate: false,
                                at: Vec::new(),
                            }
                        });
                        // A zero run is cut at the min or max size; a repeated chunk is worth the
                        // check too. Other lengths are not hashed as zeros (that would cost a pass
                        // over the data for nothing).
                        p.zero_candidate |= c.len == params.max || c.len == params.min;
                        p.at.push((i, offset));
                        offset += u64::from(c.len);
                    }
                    state.remaining = job.manifest.chunks.len();
                }
                Err(e) => {
                    state.outcome = Some(Err(format!("{}: {e}", job.tmp.display())));
                    self.progress.add_done(1, job.version.size);
                }
            }
            slots.push(Slot {
                job,
                state: Mutex::new(state),
            });
        }
        for p in places.values_mut() {
            p.zero_candidate |= p.at.len() > 1;
            let extra = p.at.len().saturating_sub(1) as u64;
            self.stats.chunks_shared.fetch_add(extra, Ordering::Relaxed);
        }
        let window = Arc::new(Window {
            slots,
            places,
            lang,
            progress: self.progress.clone(),
        });

        // 3. Empty files, zero chunks and copies from earlier windows, on the blocking pool.
        let (zero_ids, copies) = (
            std::mem::take(&mut self.zero_ids),
            std::mem::take(&mut self.copies),
        );
        let (w, stats) = (window.clone(), self.stats.clone());
        let (to_fetch, zero_ids, copies) = tokio::task::spawn_blocking(move || {
            let mut zero_ids = zero_ids;
            for i in 0..w.slots.len() {
                let mut st = w.slots[i].lock();
                if st.remaining == 0 && st.outcome.is_none() {
                    w.finish(i, &mut st);
                }
            }
            let mut to_fetch = Vec::new();
            for id in order {
                let p = &w.places[&id];
                if p.zero_candidate {
                    let zero = *zero_ids.entry(p.len).or_insert_with(|| zero_id(p.len));
                    if zero == id {
                        stats.chunks_zero.fetch_add(1, Ordering::Relaxed);
                        w.deliver(&id, Piece::Zero(p.len));
                        continue;
                    }
                }
                if let Some((path, offset)) = copies.get(&id)
                    && let Ok(plain) = read_verified(path, *offset, p.len, &id)
                {
                    stats.chunks_copied.fetch_add(1, Ordering::Relaxed);
                    w.deliver(&id, Piece::Data(&plain));
                    continue;
                }
                to_fetch.push(id);
            }
            (to_fetch, zero_ids, copies)
        })
        .await?;
        self.zero_ids = zero_ids;
        self.copies = copies;

        // 4. Fetch the rest, a few requests at a time.
        let batches = batches(&to_fetch, |id| u64::from(window.places[id].len));
        let fetches = batches.into_iter().map(|batch| {
            let (client, w, stats) = (self.client.clone(), window.clone(), self.stats.clone());
            async move { fetch_batch(&client, batch, &w, &stats).await }
        });
        futures_util::stream::iter(fetches)
            .buffer_unordered(self.parallel)
            .collect::<Vec<()>>()
            .await;

        // 5. Loose ends, durability, renames, folder syncs, copy sources.
        let w = window.clone();
        let outcomes = tokio::task::spawn_blocking(move || {
            let mut outcomes = Vec::with_capacity(w.slots.len());
            for (i, slot) in w.slots.iter().enumerate() {
                let mut st = slot.lock();
                if st.outcome.is_none() {
                    // Every place is either delivered or failed, so this is a bug; stay safe.
                    st.error.get_or_insert_with(|| "incomplete".to_owned());
                    st.remaining = 0;
                    w.finish(i, &mut st);
                }
                outcomes.push(
                    st.outcome
                        .clone()
                        .unwrap_or_else(|| Err("incomplete".into())),
                );
            }
            if SYNC_PER_WINDOW {
                sync_and_rename(&w.slots, &mut outcomes);
            }
            let mut dirs = HashSet::new();
            for (slot, outcome) in w.slots.iter().zip(&outcomes) {
                if outcome.is_ok()
                    && let Some(dir) = slot.job.dest.parent()
                {
                    dirs.insert(dir.to_path_buf());
                }
            }
            // The renames survive a crash once their folders are synced (not possible on Windows).
            #[cfg(unix)]
            for dir in dirs {
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            #[cfg(not(unix))]
            drop(dirs);
            outcomes
        })
        .await?;
        for (slot, outcome) in window.slots.iter().zip(&outcomes) {
            if outcome.is_err() {
                continue;
            }
            let dest = Arc::new(slot.job.dest.clone());
            let mut offset = 0u64;
            for c in &slot.job.manifest.chunks {
                if self.copies.len() >= COPY_SOURCES_MAX {
                    break;
                }
                self.copies
                    .entry(c.id)
                    .or_insert_with(|| (dest.clone(), offset));
                offset += u64::from(c.len);
            }
        }
        Ok(outcomes)
    }
}

/// Splits ids (in order) into requests of about [`REQUEST_BYTES`] and at most [`MAX_FETCH_IDS`].
fn batches(ids: &[ChunkId], len: impl Fn(&ChunkId) -> u64) -> Vec<Vec<ChunkId>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0u64;
    for id in ids {
        cur.push(*id);
        bytes += len(id);
        if bytes >= REQUEST_BYTES || cur.len() >= MAX_FETCH_IDS {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One fetch request: every frame is verified and written on the blocking pool before the next is
/// read, so a request holds one chunk at a time. Whatever the answer lacks fails its files.
async fn fetch_batch(client: &Client, batch: Vec<ChunkId>, w: &Arc<Window>, stats: &Arc<Stats>) {
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let mut done = 0usize;
    let result: anyhow::Result<()> = async {
        let mut resp = client.fetch(batch.clone()).await?;
        let mut decoder = FrameDecoder::default();
        while let Some(piece) = resp.chunk().await? {
            decoder.push(&piece);
            while let Some(frame) = decoder.next_frame()? {
                let Some(want) = batch.get(done) else {
                    anyhow::bail!("the server sent more chunks than requested");
                };
                if frame.id() != want {
                    anyhow::bail!("the server sent chunk {} instead of {want}", frame.id());
                }
                done += 1;
                let w = w.clone();
                let stats = stats.clone();
                tokio::task::spawn_blocking(move || match frame {
                    Frame::Data { id, stored } => {
                        stats
                            .bytes_fetched
                            .fetch_add(stored.len() as u64, Ordering::Relaxed);
                        w.deliver_stored(&id, &stored, &stats);
                    }
                    Frame::Missing { id, reason } => {
                        let text = w.chunk_error(&id, &reason);
                        w.fail(&id, &text);
                    }
                })
                .await?;
            }
        }
        decoder.finish()?;
        if done < batch.len() {
            anyhow::bail!("the answer ended after {done} of {} chunks", batch.len());
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let rest: Vec<ChunkId> = batch[done.min(batch.len())..].to_vec();
        let w = w.clone();
        let text = format!("{e:#}");
        let _ = tokio::task::spawn_blocking(move || {
            for id in &rest {
                let msg = w.chunk_error(id, &text);
                w.fail(id, &msg);
            }
        })
        .await;
    }
}

/// Where one distinct chunk goes.
struct Places {
    len: u32,
    zero_candidate: bool,
    /// (slot index, offset in that file).
    at: Vec<(usize, u64)>,
}

struct Slot {
    job: Job,
    state: Mutex<SlotState>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct SlotState {
    /// Places of this file not yet delivered or failed.
    remaining: usize,
    /// The content hash up to `hashed` (created with the first piece, dropped when done).
    hasher: Option<Box<blake3::Hasher>>,
    hashed: u64,
    /// Ranges written beyond `hashed`: start → end.
    pending: BTreeMap<u64, u64>,
    /// The first thing that went wrong.
    error: Option<String>,
    outcome: Option<Outcome>,
}

/// A chunk's content for a place.
#[derive(Clone, Copy)]
enum Piece<'a> {
    Data(&'a [u8]),
    /// That many zero bytes: nothing is written (the temp file is a hole there).
    Zero(u32),
}

impl Piece<'_> {
    fn len(&self) -> u64 {
        match self {
            Piece::Data(d) => d.len() as u64,
            Piece::Zero(n) => u64::from(*n),
        }
    }
}

struct Window {
    slots: Vec<Slot>,
    places: HashMap<ChunkId, Places>,
    lang: Lang,
    progress: Progress,
}

impl Window {
    /// The message for a chunk that could not be obtained.
    fn chunk_error(&self, id: &ChunkId, reason: &str) -> String {
        match self.lang {
            Lang::De => format!("Datenblock {id} nicht erhalten: {reason}"),
            Lang::En => format!("chunk {id} not received: {reason}"),
        }
    }

    /// Decodes and verifies a fetched chunk, then writes it to its places.
    fn deliver_stored(&self, id: &ChunkId, stored: &[u8], stats: &Stats) {
        let Some(p) = self.places.get(id) else { return };
        match asgard_core::stored::decode_verified(stored, id, p.len as usize) {
            Ok(plain) if plain.len() == p.len as usize => {
                stats.chunks_fetched.fetch_add(1, Ordering::Relaxed);
                self.deliver(id, Piece::Data(&plain));
            }
            Ok(plain) => {
                let reason = format!("{} bytes instead of {}", plain.len(), p.len);
                self.fail(id, &self.chunk_error(id, &reason));
            }
            Err(e) => {
                let reason = match self.lang {
                    Lang::De => format!("Datenblock {id} ist beschädigt: {e}"),
                    Lang::En => format!("chunk {id} is damaged: {e}"),
                };
                self.fail(id, &reason);
            }
        }
    }

    /// Writes a chunk's content to every place that needs it.
    fn deliver(&self, id: &ChunkId, piece: Piece<'_>) {
        let Some(p) = self.places.get(id) else { return };
        for &(i, offset) in &p.at {
            let mut st = self.slots[i].lock();
            if st.error.is_none()
                && let Err(e) = put(&self.slots[i].job.tmp, &mut st, offset, piece)
            {
                st.error = Some(format!("{}: {e}", self.slots[i].job.tmp.display()));
            }
            self.one_done(i, &mut st);
        }
    }

    /// Marks a chunk's places as failed.
    fn fail(&self, id: &ChunkId, reason: &str) {
        let Some(p) = self.places.get(id) else { return };
        for &(i, _) in &p.at {
            let mut st = self.slots[i].lock();
            st.error.get_or_insert_with(|| reason.to_owned());
            self.one_done(i, &mut st);
        }
    }

    fn one_done(&self, i: usize, st: &mut SlotState) {
        st.remaining = st.remaining.saturating_sub(1);
        if st.remaining == 0 && st.outcome.is_none() {
            self.finish(i, st);
        }
    }

    /// The file's last place is in: check it and put it in place, or remove the temp file.
    fn finish(&self, i: usize, st: &mut SlotState) {
        let job = &self.slots[i].job;
        let outcome = match st.error.take() {
            Some(e) => Err(e),
            None => self.complete(job, st).map_err(|e| format!("{e:#}")),
        };
        st.hasher = None;
        st.pending.clear();
        if outcome.is_err() {
            let _ = std::fs::remove_file(&job.tmp);
        }
        self.progress.add_done(1, job.version.size);
        st.outcome = Some(outcome);
    }

    fn complete(&self, job: &Job, st: &mut SlotState) -> anyhow::Result<()> {
        let lang = self.lang;
        let expected = job
            .version
            .hash
            .ok_or_else(|| anyhow::anyhow!("version {} has no hash", job.version.id))?;
        let file = open_rw(&job.tmp)?;
        let size = file.metadata()?.len();
        let hasher = st.hasher.get_or_insert_with(Box::default);
        if st.hashed < size {
            // Only when pieces are missing from the hash (not expected): read them back.
            hash_range(&file, st.hashed, size, hasher)?;
        }
        let got: ChunkId = hasher.finalize().into();
        if size != job.version.size || got != expected || !st.pending.is_empty() {
            anyhow::bail!(
                "{} ({} {size}/{}, blake3 {got})",
                lang.pick(
                    "Die empfangenen Daten stimmen nicht mit der Version überein; nichts \
                     geschrieben",
                    "The received data does not match the version; nothing written"
                ),
                lang.pick("Größe", "size"),
                job.version.size
            );
        }
        file.set_modified(platform::ns_to_system_time(job.version.mtime_ns))?;
        if !SYNC_PER_WINDOW {
            file.sync_all()?;
        }
        drop(file);
        platform::apply_metadata(&job.tmp, job.version.mode, job.version.attributes)?;
        if !SYNC_PER_WINDOW {
            platform::replace_file(&job.tmp, &job.dest)?;
        }
        Ok(())
    }
}

/// Makes the checked temp files of a window durable with one `syncfs` per file system, then
/// renames them into place. A file whose sync or rename fails becomes an error (temp removed).
#[cfg(target_os = "linux")]
fn sync_and_rename(slots: &[Slot], outcomes: &mut [Outcome]) {
    use std::os::unix::fs::MetadataExt;
    let mut synced: HashMap<u64, Result<(), String>> = HashMap::new();
    for (slot, outcome) in slots.iter().zip(outcomes.iter_mut()) {
        if outcome.is_err() {
            continue;
        }
        let job = &slot.job;
        // A stat per file finds its file system; only the first file of each is opened.
        let result = std::fs::symlink_metadata(&job.tmp)
            .map_err(|e| e.to_string())
            .and_then(|meta| {
                synced
                    .entry(meta.dev())
                    .or_insert_with(|| {
                        std::fs::File::open(&job.tmp)
                            .map_err(|e| e.to_string())
                            .and_then(|f| {
                                rustix::fs::syncfs(&f).map_err(|e| format!("syncfs: {e}"))
                            })
                    })
                    .clone()
            })
            .and_then(|()| platform::replace_file(&job.tmp, &job.dest).map_err(|e| e.to_string()));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&job.tmp);
            *outcome = Err(format!("{}: {e}", job.dest.display()));
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_and_rename(_: &[Slot], _: &mut [Outcome]) {}

/// Creates a job's temp file (attributes as recorded) at its final length.
fn create_temp(job: &Job) -> std::io::Result<()> {
    let file = platform::create_restore_file(&job.tmp, job.version.attributes)?;
    file.set_len(job.version.size)?;
    Ok(())
}

fn open_rw(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
}

/// Writes a piece at `offset` of the temp file and advances the file's hash.
fn put(tmp: &Path, st: &mut SlotState, offset: u64, piece: Piece<'_>) -> std::io::Result<()> {
    let file = open_rw(tmp)?;
    if let Piece::Data(data) = piece {
        write_sparse_at(&file, offset, data)?;
    }
    let end = offset + piece.len();
    if offset != st.hashed {
        st.pending.insert(offset, end);
        return Ok(());
    }
    let hasher = st.hasher.get_or_insert_with(Box::default);
    match piece {
        Piece::Data(data) => {
            hasher.update(data);
        }
        Piece::Zero(n) => hash_zeros(hasher, u64::from(n)),
    }
    st.hashed = end;
    // Ranges that arrived early and now follow on: read them back.
    while let Some(end) = st.pending.remove(&st.hashed) {
        hash_range(&file, st.hashed, end, hasher)?;
        st.hashed = end;
    }
    Ok(())
}

fn hash_zeros(hasher: &mut blake3::Hasher, mut n: u64) {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        hasher.update(&ZEROS[..k]);
        n -= k as u64;
    }
}

/// Hashes bytes `from..to` of a file.
fn hash_range(
    file: &std::fs::File,
    from: u64,
    to: u64,
    hasher: &mut blake3::Hasher,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; (to - from).min(READ_BUF as u64) as usize];
    let mut at = from;
    while at < to {
        let k = (to - at).min(buf.len() as u64) as usize;
        read_exact_at(file, &mut buf[..k], at)?;
        hasher.update(&buf[..k]);
        at += k as u64;
    }
    Ok(())
}

/// The blake3 of `len` zero bytes: the id of the all-zero chunk of that length.
pub fn zero_id(len: u32) -> ChunkId {
    let mut h = blake3::Hasher::new();
    hash_zeros(&mut h, u64::from(len));
    h.finalize().into()
}

/// Reads a chunk from a restored file and checks it against its id.
fn read_verified(path: &Path, offset: u64, len: u32, id: &ChunkId) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; len as usize];
    read_exact_at(&file, &mut buf, offset)?;
    if ChunkId::of(&buf) != *id {
        return Err(std::io::Error::other("changed since it was restored"));
    }
    Ok(buf)
}

/// Writes `data` at `offset`, skipping 4 KiB blocks (aligned to the file offset) that are all zero:
/// the file was created at its full length, so they read as zeros and stay holes where the file
/// system supports them. Runs of data blocks are written with one call.
fn write_sparse_at(file: &std::fs::File, offset: u64, data: &[u8]) -> std::io::Result<()> {
    let block_end = |i: usize| {
        let off = offset + i as u64;
        (i + (SPARSE_BLOCK - off % SPARSE_BLOCK) as usize).min(data.len())
    };
    let mut i = 0;
    while i < data.len() {
        let mut j = block_end(i);
        let zero = is_zero(&data[i..j]);
        while j < data.len() {
            let k = block_end(j);
            if is_zero(&data[j..k]) != zero {
                break;
            }
            j = k;
        }
        if !zero {
            write_all_at(file, &data[i..j], offset + i as u64)?;
        }
        i = j;
    }
    Ok(())
}

pub fn is_zero(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(16);
    words.all(|w| u128::from_ne_bytes(w.try_into().expect("16 bytes")) == 0)
        && words.remainder().iter().all(|&x| x == 0)
}

#[cfg(unix)]
fn write_all_at(file: &std::fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(data, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(windows)]
fn write_all_at(file: &std::fs::File, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !data.is_empty() {
        let n = file.seek_write(data, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &std::fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_writes_give_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut data = vec![0u8; 3 * 1024 * 1024 + 77];
        data[5000] = 1;
        data[1_000_000..1_000_100].fill(7);
        data[3 * 1024 * 1024 + 70] = 9;
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(data.len() as u64).unwrap();
        // Odd piece sizes, written out of order: blocks are aligned to the file offset.
        let pieces: Vec<(usize, &[u8])> = data
            .chunks(12_345)
            .enumerate()
            .map(|(k, c)| (k * 12_345, c))
            .collect();
        for (off, piece) in pieces.iter().rev() {
            write_sparse_at(&f, *off as u64, piece).unwrap();
        }
        drop(f);
        assert_eq!(std::fs::read(&p).unwrap(), data);
    }

    #[test]
    fn out_of_order_pieces_hash_like_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut data: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        data[50_000..120_000].fill(0);
        std::fs::File::create(&p)
            .unwrap()
            .set_len(data.len() as u64)
            .unwrap();
        let cuts = [0usize, 30_000, 50_000, 120_000, 150_000, 200_000];
        let mut st = SlotState::default();
        // 3rd, 1st, 5th, 2nd (zero), 4th.
        for k in [2usize, 0, 4, 1, 3] {
            let (a, b) = (cuts[k], cuts[k + 1]);
            let piece = if is_zero(&data[a..b]) {
                Piece::Zero((b - a) as u32)
            } else {
                Piece::Data(&data[a..b])
            };
            put(&p, &mut st, a as u64, piece).unwrap();
        }
        assert_eq!(st.hashed, data.len() as u64);
        assert!(st.pending.is_empty());
        let got: ChunkId = st.hasher.unwrap().finalize().into();
        assert_eq!(got, ChunkId::of(&data));
        assert_eq!(std::fs::read(&p).unwrap(), data);
    }

    #[test]
    fn zero_ids_are_blake3_of_zeros() {
        assert_eq!(zero_id(0), ChunkId::of(b""));
        assert_eq!(zero_id(100_000), ChunkId::of(&vec![0; 100_000]));
    }

    #[test]
    fn batches_follow_bytes_and_count() {
        let ids: Vec<ChunkId> = (0..10u8).map(|i| ChunkId([i; 32])).collect();
        let b = batches(&ids, |_| REQUEST_BYTES / 3 + 1);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
        let many: Vec<ChunkId> = (0..(MAX_FETCH_IDS + 5) as u32)
            .map(|i| {
                let mut a = [0u8; 32];
                a[..4].copy_from_slice(&i.to_le_bytes());
                ChunkId(a)
            })
            .collect();
        let b = batches(&many, |_| 1);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_FETCH_IDS, 5]
        );
        assert!(batches(&[], |_| 1).is_empty());
    }
}
