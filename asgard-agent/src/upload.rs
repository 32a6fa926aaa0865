//! The upload stage: a batch of pending chunks (check → compress → upload) and the queue of file
//! entries that reference them (commit).
//!
//! Order is what keeps an interrupted run safe: a commit is sent only after every chunk queued
//! before it has been flushed, so each committed version references only chunks the server has
//! (or leased to us in its `check` answer). Whatever was committed before an interruption stays.
//!
//! The files cache is written here, right after each successful commit and only for the entries
//! that commit answered: a file is recorded as known to the server only once it is.

use std::collections::HashSet;

use anyhow::bail;
use asgard_core::ChunkId;
use asgard_core::protocol::{CommitEntry, CommitOutcome, CommitRequest, MAX_CHECK_IDS};

use crate::cache::{CacheEntry, Facts, FilesCache, Update};
use crate::client::Client;

/// Flush the chunk batch at this many plaintext bytes...
const FLUSH_BYTES: usize = 8 * 1024 * 1024;
/// ...or at this many chunks.
const FLUSH_CHUNKS: usize = 1000;
/// Largest body of one upload request (stored bytes).
const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;
/// Entries per commit request.
const COMMIT_ENTRIES: usize = 500;

/// What the server did with our data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unchanged: u64,
    pub versions_created: u64,
    /// Deletion markers stored.
    pub files_deleted: u64,
    /// Stored (compressed) bytes uploaded.
    pub bytes_sent: u64,
    /// Stored bytes the uploads added to the server's store.
    pub bytes_new: u64,
    pub chunks_uploaded: u64,
}

pub struct Uploader<'a> {
    client: &'a Client,
    level: i32,
    pending: Vec<(ChunkId, Vec<u8>)>,
    pending_bytes: usize,
    pending_ids: HashSet<ChunkId>,
    /// Chunks the server confirmed present (or received) in this run.
    present: HashSet<ChunkId>,
    entries: Vec<(CommitEntry, Option<CacheNote>)>,
    cache: Option<&'a FilesCache>,
    /// Set when a cache update failed (reported once; the backup itself is not affected).
    pub cache_error: Option<String>,
    pub stats: UploadStats,
}

/// What to record in the files cache once an entry's commit succeeded: its facts (only when they
/// are settled, see [`crate::cache`]) and its content hash.
#[derive(Debug, Clone, Copy)]
pub struct CacheNote {
    pub facts: Facts,
    pub hash: ChunkId,
}

impl<'a> Uploader<'a> {
    pub fn new(client: &'a Client, level: i32, cache: Option<&'a FilesCache>) -> Self {
        Uploader {
            client,
            level,
            pending: Vec::new(),
            pending_bytes: 0,
            pending_ids: HashSet::new(),
            present: HashSet::new(),
            entries: Vec::new(),
            cache,
            cache_error: None,
            stats: UploadStats::default(),
        }
    }

    /// Queues a chunk unless it is known or queued already; flushes a full batch (and commits the
    /// entries whose chunks are then all on the server).
    pub async fn add_chunk(&mut self, id: ChunkId, data: Vec<u8>) -> anyhow::Result<()> {
        if self.present.contains(&id) || !self.pending_ids.insert(id) {
            return Ok(());
        }
        self.pending_bytes += data.len();
        self.pending.push((id, data));
        if self.pending_bytes >= FLUSH_BYTES || self.pending.len() >= FLUSH_CHUNKS {
            self.flush_chunks().await?;
            self.commit_entries().await?;
        }
        Ok(())
    }

    /// Queues a commit entry; a file's chunks must have been added before. `note` is recorded in
    /// the files cache once the entry is committed.
    pub async fn add_entry(
        &mut self,
        entry: CommitEntry,
        note: Option<CacheNote>,
    ) -> anyhow::Result<()> {
        self.entries.push((entry, note));
        if self.entries.len() >= COMMIT_ENTRIES {
            self.flush_chunks().await?;
            self.commit_entries().await?;
        }
        Ok(())
    }

    /// Flushes the remaining chunks and commits the remaining entries.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        self.flush_chunks().await?;
        self.commit_entries().await
    }

    /// Asks the server which pending chunks it lacks, compresses and uploads those.
    async fn flush_chunks(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        self.pending_ids.clear();

        let mut missing = HashSet::new();
        let ids: Vec<ChunkId> = batch.iter().map(|(id, _)| *id).collect();
        for piece in ids.chunks(MAX_CHECK_IDS) {
            missing.extend(self.client.check(piece.to_vec()).await?);
        }
        let to_send: Vec<(ChunkId, Vec<u8>)> = batch
            .into_iter()
            .filter(|(id, _)| missing.contains(id))
            .collect();
        let level = self.level;
        // Compression is CPU work: keep it off the async worker threads.
        let encoded = tokio::task::spawn_blocking(move || {
            to_send
                .into_iter()
                .map(|(id, plain)| (id, asgard_core::stored::encode(&plain, level)))
                .collect::<Vec<_>>()
        })
        .await?;

        let mut request = Vec::new();
        let mut request_bytes = 0;
        for (id, stored) in encoded {
            if !request.is_empty() && request_bytes + stored.len() > MAX_UPLOAD_BYTES {
                self.upload(std::mem::take(&mut request)).await?;
                request_bytes = 0;
            }
            request_bytes += stored.len();
            request.push((id, stored));
        }
        if !request.is_empty() {
            self.upload(request).await?;
        }
        self.present.extend(ids);
        Ok(())
    }

    async fn upload(&mut self, chunks: Vec<(ChunkId, Vec<u8>)>) -> anyhow::Result<()> {
        let bytes: usize = chunks.iter().map(|(_, s)| s.len()).sum();
        let count = chunks.len() as u64;
        let answer = self.client.upload(chunks).await?;
        self.stats.bytes_sent += bytes as u64;
        self.stats.bytes_new += answer.new_bytes;
        self.stats.chunks_uploaded += count;
        Ok(())
    }

    /// Commits the queued entries; call only after `flush_chunks`.
    async fn commit_entries(&mut self) -> anyhow::Result<()> {
        while !self.entries.is_empty() {
            let n = self.entries.len().min(COMMIT_ENTRIES);
            let (entries, notes): (Vec<CommitEntry>, Vec<Option<CacheNote>>) =
                self.entries.drain(..n).unzip();
            let request = CommitRequest { entries };
            let answer = self.client.commit(&request).await?;
            if answer.results.len() != n {
                bail!(
                    "{} ({} / {n})",
                    self.client.lang().pick(
                        "Der Server hat nicht jeden Eintrag des Commits beantwortet",
                        "The server did not answer every commit entry"
                    ),
                    answer.results.len()
                );
            }
            let mut updates = Vec::new();
            for ((entry, note), r) in request.entries.into_iter().zip(notes).zip(&answer.results) {
                match (r.outcome, note, r.version_id) {
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
            self.record(&updates);
            for r in answer.results {
                match r.outcome {
                    CommitOutcome::New => {
                        self.stats.files_new += 1;
                        self.stats.versions_created += 1;
                    }
                    CommitOutcome::Changed => {
                        self.stats.files_changed += 1;
                        self.stats.versions_created += 1;
                    }
                    CommitOutcome::Unchanged => self.stats.files_unchanged += 1,
                    CommitOutcome::Deleted => self.stats.files_deleted += 1,
                    CommitOutcome::AlreadyDeleted => {}
                }
            }
        }
        Ok(())
    }

    /// Writes cache updates (a blocking redb transaction, kept off the async worker's budget).
    fn record(&mut self, updates: &[Update]) {
        let Some(cache) = self.cache else { return };
        if let Err(e) = tokio::task::block_in_place(|| cache.apply(updates))
            && self.cache_error.is_none()
        {
            self.cache_error = Some(e.to_string());
        }
    }
}
