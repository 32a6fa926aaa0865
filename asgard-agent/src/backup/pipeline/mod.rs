//! The backup pipeline: role-named stages linked by bounded channels.
//!
//! ```text
//! scan threads ──► Reader ──► Checker ──► Compressor ──► Sender ──► Committer
//!  (files cache,    read,     batched     zstd on every   batched    batched commit,
//!   parallel walk)  FastCDC,  `check`,    core, skipped   `upload`,  files cache
//!                   blake3    2 in flight where it does   3 in flight
//!                                         not pay
//!                             └── present chunks and every entry ────────►┘
//! ```
//!
//! - [`Reader`] runs on the scanner's threads (one per core). It sends each new chunk, then the
//!   file's commit entry, into one channel; so a file's entry follows its chunks there, also a
//!   chunk of it that another reader sends (that reader claims the chunk first, and a reader
//!   meeting a claimed chunk waits until it is queued: see `reader::sent`).
//! - [`Checker`](checker::Checker) numbers the chunks in the order they arrive and asks the server
//!   in batches which ones it lacks (a "present" answer is a lease, so those chunks are done at
//!   once). It forwards every entry to the committer tagged with the number of chunks that came
//!   before it.
//! - [`Compressor`](compressor::Compressor) encodes the missing chunks on one worker thread per
//!   core (each keeps its zstd contexts); a chunk whose sample does not shrink is stored raw without a full
//!   compression pass (see [`compressor::encode`]).
//! - [`Sender`](sender::Sender) packs encoded chunks, from however many files, into multipart
//!   requests and keeps a few in flight on the client's kept-alive connections (see
//!   [`crate::client`]).
//! - [`Committer`](committer::Committer) keeps the entries in arrival order and a watermark: the
//!   number of chunks, counted from the first, that are all acknowledged (by `check` or by an
//!   upload). Requests complete out of order, so acknowledgements beyond the watermark wait in a
//!   set until the gap closes. An entry is committed only when the watermark has passed every
//!   chunk that came before it, hence every chunk it references is on the server (or leased to
//!   us); the files cache learns of an entry only from a successful commit. Commits go out in
//!   batches, at most [`committer::COMMIT_ENTRIES`] at a time and at least every
//!   [`committer::COMMIT_LINGER`], so an interrupted run keeps what it committed; up to
//!   [`committer::COMMITS_IN_FLIGHT`] at once, and the committer keeps taking input meanwhile.
//!
//! **Channels** between the stages hold up to [`ITEM_CHANNEL`] items each. Their capacity does not
//! bound memory (the budget does); it is generous so that a stage that is briefly busy (a commit
//! or an upload waiting for its answer, a compressor descheduled) does not stall every stage
//! before it. (With four-item channels and a committer that stopped reading during each commit, the
//! first backup of 100,000 small files left a fifth of both cores idle.)
//!
//! **Memory** is bounded by [`MemoryBudget`]: every chunk and entry takes its bytes from it before
//! it leaves the reader, shrinks to the stored size once compressed, and gives its bytes back when
//! it is done (uploaded or committed), so the bytes
//! buffered between the stages never exceed `memory_mib` from the config, whatever the file and
//! tree sizes. Outside the budget are each reader thread's current chunk and streaming buffer
//! (about 2 MiB per core), the compressor's scratch space (one chunk per core), and the run's
//! bookkeeping (the set of chunk ids sent and of paths seen, which grow with the tree).
//!
//! **Failure**: the first stage that fails ends the run with its error; the others are dropped with
//! what they hold (and their permits), the budget is closed so the reader stops waiting, and the
//! scan ends at its next send. What was committed stays committed.
//!
//! **No deadlock**: the stages form a chain without cycles (the committer never waits for a stage
//! before it except for its input), every batch leaves after a short linger even when it is not
//! full, and one item larger than the whole budget still passes alone.

pub(crate) mod budget;
pub(crate) mod checker;
pub(crate) mod committer;
pub(crate) mod compressor;
pub(crate) mod reader;
pub(crate) mod sender;

use std::future::Future;

use asgard_core::protocol::{CommitEntry, CommitRequest, CommitResponse, UploadResponse};
use asgard_core::{ChunkId, Lang};
use tokio::sync::mpsc;

pub use budget::{MemoryBudget, Permit};
pub use committer::{CacheNote, UploadStats};
pub use reader::{Reader, ScanReport};

use crate::cache::FilesCache;

/// What the reader hands on: a new chunk, or a file's (or link's, folder's, or deletion's) entry,
/// which comes after the chunks it references.
#[derive(Debug)]
// Moved once or twice per entry; boxing would cost an allocation per file instead.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    Chunk {
        id: ChunkId,
        data: Vec<u8>,
        permit: Permit,
    },
    Entry {
        entry: CommitEntry,
        note: Option<CacheNote>,
        permit: Permit,
        /// A folder's entry or deletion marker: counted apart from files.
        folder: bool,
    },
}

/// Items in each channel between two stages at most (the budget bounds their bytes).
pub const ITEM_CHANNEL: usize = 256;

/// What an entry is charged against the budget: roughly its size in memory (and, within a small
/// factor, in a commit request: extended attributes travel as hex, twice their bytes).
pub(crate) fn entry_cost(entry: &CommitEntry) -> usize {
    let (chunks, meta) = match entry {
        CommitEntry::File { meta, .. } => (meta.chunks.len(), Some(&meta.ext)),
        CommitEntry::Symlink { meta, .. } | CommitEntry::Dir { meta, .. } => (0, Some(meta)),
        CommitEntry::Deleted { .. } => (0, None),
    };
    let meta = meta.map_or(0, |m| {
        let names =
            m.owner.as_ref().map_or(0, String::len) + m.group.as_ref().map_or(0, String::len);
        let xattrs: usize = m
            .xattrs
            .iter()
            .map(|x| 64 + x.name.0.len() + x.value.0.len())
            .sum();
        names + 2 * xattrs
    });
    256 + entry.path().0.len() + 40 * chunks + meta
}

/// The server calls the pipeline makes; `crate::client::Client` in a backup, a fake in tests
/// and benches.
pub trait Remote {
    /// `POST /api/check`: which of `ids` must be uploaded.
    fn check(&self, ids: Vec<ChunkId>) -> impl Future<Output = anyhow::Result<Vec<ChunkId>>>;
    /// `POST /api/upload` with chunks in stored form.
    fn upload(
        &self,
        chunks: Vec<(ChunkId, Vec<u8>)>,
    ) -> impl Future<Output = anyhow::Result<UploadResponse>>;
    /// `POST /api/commit`.
    fn commit(&self, req: &CommitRequest) -> impl Future<Output = anyhow::Result<CommitResponse>>;
    /// The language of messages.
    fn lang(&self) -> Lang;
}

impl Remote for crate::client::Client {
    fn check(&self, ids: Vec<ChunkId>) -> impl Future<Output = anyhow::Result<Vec<ChunkId>>> {
        crate::client::Client::check(self, ids)
    }
    fn upload(
        &self,
        chunks: Vec<(ChunkId, Vec<u8>)>,
    ) -> impl Future<Output = anyhow::Result<UploadResponse>> {
        crate::client::Client::upload(self, chunks)
    }
    fn commit(&self, req: &CommitRequest) -> impl Future<Output = anyhow::Result<CommitResponse>> {
        crate::client::Client::commit(self, req)
    }
    fn lang(&self) -> Lang {
        crate::client::Client::lang(self)
    }
}

/// How the pipeline runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// zstd level (0 or less: store raw).
    pub(crate) level: i32,
    /// Compression jobs at once (the number of cores).
    pub(crate) compress_jobs: usize,
    /// Largest upload request body, in stored bytes.
    pub(crate) request_bytes: usize,
    /// Upload requests in flight.
    pub(crate) uploads_in_flight: usize,
    /// Check requests in flight.
    pub(crate) checks_in_flight: usize,
}

impl Settings {
    /// Defaults for a budget of `budget` bytes: requests small enough that those in flight use at
    /// most half of it.
    pub fn for_budget(level: i32, budget: usize) -> Settings {
        let uploads_in_flight = 3;
        Settings {
            level,
            compress_jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            request_bytes: (budget / 2 / uploads_in_flight).clamp(1 << 20, 16 << 20),
            uploads_in_flight,
            checks_in_flight: 2,
        }
    }
}

/// Runs the stages after the reader until `input` is closed and drained and everything is
/// committed; returns what the server did. On the first error the budget is closed (the reader
/// stops) and the error returned.
pub async fn run<R: Remote>(
    remote: &R,
    cache: Option<&FilesCache>,
    settings: Settings,
    budget: &MemoryBudget,
    input: mpsc::Receiver<Item>,
) -> anyhow::Result<(UploadStats, Option<String>)> {
    let (to_compress, compress_in) = mpsc::channel(ITEM_CHANNEL);
    let (to_send, send_in) = mpsc::channel(ITEM_CHANNEL);
    let (to_commit, commit_in) = mpsc::channel(ITEM_CHANNEL);
    let checker = checker::Checker::new(
        remote,
        settings.checks_in_flight,
        input,
        to_compress,
        to_commit.clone(),
    );
    let compressor =
        compressor::Compressor::new(settings.level, settings.compress_jobs, compress_in, to_send);
    let sender = sender::Sender::new(
        remote,
        settings.request_bytes,
        settings.uploads_in_flight,
        send_in,
        to_commit,
    );
    let committer = committer::Committer::new(remote, cache, commit_in);
    let result = tokio::try_join!(
        checker.run(),
        compressor.run(),
        sender.run(),
        committer.run()
    );
    match result {
        Ok(((), (), sent, (mut stats, cache_error))) => {
            stats.bytes_sent = sent.bytes_sent;
            stats.bytes_new = sent.bytes_new;
            stats.chunks_uploaded = sent.chunks_uploaded;
            Ok((stats, cache_error))
        }
        Err(e) => {
            budget.close();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests;

/// Items gathered for one request: it leaves when full, when no more will come, or when its
/// first item has waited `linger` (so a trickle of items never waits for a full batch).
#[derive(Debug)]
struct Batch<T> {
    items: Vec<T>,
    bytes: usize,
    since: Option<tokio::time::Instant>,
    max_items: usize,
    max_bytes: usize,
    linger: std::time::Duration,
}

impl<T> Batch<T> {
    fn new(max_items: usize, max_bytes: usize, linger: std::time::Duration) -> Batch<T> {
        Batch {
            items: Vec::new(),
            bytes: 0,
            since: None,
            max_items,
            max_bytes,
            linger,
        }
    }

    fn push(&mut self, item: T, bytes: usize) {
        self.since.get_or_insert_with(tokio::time::Instant::now);
        self.items.push(item);
        self.bytes += bytes;
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn is_full(&self) -> bool {
        self.items.len() >= self.max_items || self.bytes >= self.max_bytes
    }

    /// Would one more item of `bytes` overflow it?
    fn would_overflow(&self, bytes: usize) -> bool {
        !self.items.is_empty() && self.bytes + bytes > self.max_bytes
    }

    /// When it should leave at the latest.
    fn deadline(&self) -> tokio::time::Instant {
        self.since
            .map_or_else(tokio::time::Instant::now, |s| s + self.linger)
    }

    /// Whether it should leave now, given whether more items can still come.
    fn ready(&self, closed: bool) -> bool {
        !self.is_empty()
            && (self.is_full() || closed || tokio::time::Instant::now() >= self.deadline())
    }

    fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        self.since = None;
        std::mem::take(&mut self.items)
    }
}
