//! The [`Committer`]: commits the entries in arrival order once every chunk before them is
//! acknowledged, and records committed files in the files cache.
//!
//! The watermark `done` counts the chunks, from the first of the run, that are all acknowledged;
//! acknowledgements that arrive out of order wait in `ahead` until the gap below them closes. An
//! entry tagged `after = n` (n chunks came before it) may be committed once `done >= n`: every
//! chunk it references was among those n (or is one the server already had). The files cache is
//! written right after each successful commit and only for the entries that commit answered, so
//! a file is recorded as known to the server only once it is.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use anyhow::bail;
use asgard_core::ChunkId;
use asgard_core::protocol::{CommitEntry, CommitOutcome, CommitRequest, CommitResponse};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Permit, Remote};
use crate::cache::{CacheEntry, Facts, FilesCache, Update};

/// Entries per commit request.
pub(crate) const COMMIT_ENTRIES: usize = 500;
/// Entry bytes ([`super::entry_cost`]) per commit request at most (one larger entry goes alone):
/// entries with many extended attributes make a few large requests, never one huge one.
pub(crate) const COMMIT_BYTES: usize = 16 << 20;
/// The longest a committable entry waits for others to share its request.
pub(crate) const COMMIT_LINGER: Duration = Duration::from_millis(200);
/// Commit requests in flight at once.
pub(crate) const COMMITS_IN_FLIGHT: usize = 2;

/// What to record in the files cache once an entry's commit succeeded: its facts (only when they
/// are settled, see `crate::cache`) and its content hash.
#[derive(Debug, Clone, Copy)]
pub struct CacheNote {
    pub(crate) facts: Facts,
    pub(crate) hash: ChunkId,
}

/// What the server did with our data. Files and links count as files; folders apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    pub files_new: u64,
    pub(crate) files_changed: u64,
    pub(crate) files_unchanged: u64,
    /// Versions of files and links stored.
    pub(crate) versions_created: u64,
    /// Deletion markers of files and links stored.
    pub(crate) files_deleted: u64,
    /// Folders that got a version (new, or changed metadata).
    pub(crate) dirs_stored: u64,
    /// Deletion markers of folders stored.
    pub(crate) dirs_deleted: u64,
    /// Files and links whose new version changed only metadata (also counted unchanged: their
    /// content is their newest version's; no content version was used up).
    pub(crate) files_meta_only: u64,
    /// Stored (compressed) bytes uploaded.
    pub(crate) bytes_sent: u64,
    /// Stored bytes the uploads added to the server's store.
    pub(crate) bytes_new: u64,
    pub(crate) chunks_uploaded: u64,
}

/// The committer's input.
#[derive(Debug)]
// Moved once or twice per entry; boxing would cost an allocation per file instead.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ToCommit {
    /// An entry that `after` chunks preceded.
    Entry {
        after: u64,
        entry: CommitEntry,
        note: Option<CacheNote>,
        permit: Permit,
        /// A folder's entry or deletion marker (counted apart).
        folder: bool,
    },
    /// These chunks (by number) are on the server.
    Acked(Vec<u64>),
}

/// The acknowledged chunks: all below `done`, and those in `ahead`.
#[derive(Debug, Default)]
pub(crate) struct Watermark {
    done: u64,
    ahead: BTreeSet<u64>,
}

impl Watermark {
    pub(crate) fn ack(&mut self, index: u64) {
        if index < self.done {
            return;
        }
        self.ahead.insert(index);
        while self.ahead.first() == Some(&self.done) {
            self.ahead.pop_first();
            self.done += 1;
        }
    }

    /// Chunks `0..done` are all acknowledged.
    pub(crate) fn done(&self) -> u64 {
        self.done
    }
}

/// What the committer keeps of an entry while its commit is out.
struct Note {
    cache: Option<CacheNote>,
    folder: bool,
    /// Held until the commit is answered.
    _permit: Permit,
}

struct Waiting {
    after: u64,
    entry: CommitEntry,
    note: Option<CacheNote>,
    permit: Permit,
    folder: bool,
    /// When it became committable (or arrived, if it was then).
    since: Instant,
}

pub(crate) struct Committer<'a, R> {
    remote: &'a R,
    cache: Option<&'a FilesCache>,
    input: mpsc::Receiver<ToCommit>,
}

impl<'a, R: Remote> Committer<'a, R> {
    pub(crate) fn new(
        remote: &'a R,
        cache: Option<&'a FilesCache>,
        input: mpsc::Receiver<ToCommit>,
    ) -> Self {
        Committer {
            remote,
            cache,
            input,
        }
    }

    /// Runs until the input is closed and every entry is committed; returns the counts and the
    /// first files cache error (the backup itself does not depend on the cache).
    ///
    /// Up to [`COMMITS_IN_FLIGHT`] commit requests run while the input keeps being taken: a
    /// committer that stopped reading during each commit would stall every stage before it.
    pub(crate) async fn run(mut self) -> anyhow::Result<(UploadStats, Option<String>)> {
        let remote = self.remote;
        let mut stats = UploadStats::default();
        let mut cache_error = None;
        let mut mark = Watermark::default();
        let mut queue: VecDeque<Waiting> = VecDeque::new();
        // Entries at the front of `queue` known to be committable.
        let mut ready = 0usize;
        let mut closed = false;
        let mut in_flight = FuturesUnordered::new();
        loop {
            // Entries that just became committable start their linger now.
            let now = Instant::now();
            while ready < queue.len() && queue[ready].after <= mark.done() {
                queue[ready].since = queue[ready].since.max(now);
                ready += 1;
            }
            let due = ready > 0
                && in_flight.len() < COMMITS_IN_FLIGHT
                && (ready >= COMMIT_ENTRIES || closed || now >= queue[0].since + COMMIT_LINGER);
            if due {
                let mut n = 0;
                let mut bytes = 0;
                while n < ready.min(COMMIT_ENTRIES) {
                    let cost = super::entry_cost(&queue[n].entry);
                    if n > 0 && bytes + cost > COMMIT_BYTES {
                        break;
                    }
                    bytes += cost;
                    n += 1;
                }
                let batch: Vec<Waiting> = queue.drain(..n).collect();
                ready -= n;
                let mut notes = Vec::with_capacity(n);
                let mut entries = Vec::with_capacity(n);
                for w in batch {
                    entries.push(w.entry);
                    // The entry's permit is held until its commit is answered.
                    notes.push(Note {
                        cache: w.note,
                        folder: w.folder,
                        _permit: w.permit,
                    });
                }
                let request = CommitRequest { entries };
                in_flight.push(async move {
                    let answer = remote.commit(&request).await;
                    (request, notes, answer)
                });
                continue;
            }
            if closed && queue.is_empty() && in_flight.is_empty() {
                return Ok((stats, cache_error));
            }
            if closed && in_flight.is_empty() && ready == 0 {
                bail!(
                    "backup pipeline ended with {} entries whose chunks were never acknowledged",
                    queue.len()
                );
            }
            let deadline = queue
                .front()
                .filter(|_| ready > 0 && in_flight.len() < COMMITS_IN_FLIGHT)
                .map(|w| w.since + COMMIT_LINGER);
            tokio::select! {
                msg = self.input.recv(), if !closed => match msg {
                    None => closed = true,
                    Some(ToCommit::Acked(indices)) => indices.into_iter().for_each(|i| mark.ack(i)),
                    Some(ToCommit::Entry { after, entry, note, permit, folder }) => queue.push_back(Waiting {
                        after,
                        entry,
                        note,
                        permit,
                        folder,
                        since: Instant::now(),
                    }),
                },
                Some((request, notes, answer)) = in_flight.next(), if !in_flight.is_empty() => {
                    self.answered(request, notes, answer?, &mut stats, &mut cache_error)?;
                },
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {},
            }
        }
    }

    /// Takes in the answer to one commit request: checks it, records the committed files in the
    /// files cache and counts the outcomes.
    fn answered(
        &self,
        request: CommitRequest,
        notes: Vec<Note>,
        answer: CommitResponse,
        stats: &mut UploadStats,
        cache_error: &mut Option<String>,
    ) -> anyhow::Result<()> {
        let n = notes.len();
        if answer.results.len() != n {
            bail!(
                "{} ({} / {n})",
                self.remote.lang().pick(
                    "Der Server hat nicht jeden Eintrag des Commits beantwortet",
                    "The server did not answer every commit entry"
                ),
                answer.results.len()
            );
        }
        let mut updates = Vec::new();
        for ((entry, note), r) in request.entries.into_iter().zip(&notes).zip(&answer.results) {
            match (r.outcome, note.cache, r.version_id) {
                (CommitOutcome::Deleted | CommitOutcome::AlreadyDeleted, _, _) => {
                    updates.push(Update::Remove(entry.path().clone()));
                }
                (_, Some(note), Some(version_id)) => {
                    let cached = CacheEntry {
                        facts: note.facts,
                        hash: note.hash,
                        version_id,
                    };
                    updates.push(Update::Put(entry.path().clone(), cached));
                }
                _ => {}
            }
        }
        if let Some(cache) = self.cache
            && !updates.is_empty()
            && let Err(e) = tokio::task::block_in_place(|| cache.apply(&updates))
            && cache_error.is_none()
        {
            *cache_error = Some(e.to_string());
        }
        for (r, note) in answer.results.iter().zip(&notes) {
            match r.outcome {
                CommitOutcome::New | CommitOutcome::Changed if note.folder => {
                    stats.dirs_stored += 1
                }
                CommitOutcome::Deleted if note.folder => stats.dirs_deleted += 1,
                _ if note.folder => {}
                CommitOutcome::Changed if r.meta_only => {
                    stats.files_unchanged += 1;
                    stats.files_meta_only += 1;
                }
                CommitOutcome::New => {
                    stats.files_new += 1;
                    stats.versions_created += 1;
                }
                CommitOutcome::Changed => {
                    stats.files_changed += 1;
                    stats.versions_created += 1;
                }
                CommitOutcome::Unchanged => stats.files_unchanged += 1,
                CommitOutcome::Deleted => stats.files_deleted += 1,
                CommitOutcome::AlreadyDeleted => {}
            }
        }
        Ok(())
    }
}
