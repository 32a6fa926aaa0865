//! # Garbage collection
//!
//! Retention drops versions; the garbage collector (GC) then removes the chunks that no retained
//! version references any more, without ever removing one that a committed version, or a backup
//! still running, needs (ARCHITECTURE.md, invariants 1 and 2).
//!
//! ## One pass, three phases
//!
//! 1. **Prune.** Walk the paths table in key-range batches and apply retention to every path:
//!    at most `keep_versions` content versions (the user's own setting wins), and no versions at
//!    all for a path whose deletion marker is older than `deleted_keep_days`. Each batch is one
//!    write transaction that drops the versions *and* lowers the refcounts of their chunks.
//! 2. **Chunks.** Walk the chunk index in key-range batches (`batch` records per read
//!    transaction, resuming after the last key read; the index is never loaded whole). A chunk is
//!    *eligible* when its refcount is 0 and its lease (`last_touched_us`, set by every upload and
//!    by every `check` that answered "you need not upload this") is older than the grace period.
//!    - Eligible and not marked: **mark** it (`gc_candidate_since_us = now`).
//!    - Marked by an *earlier* pass and still eligible: **delete** it.
//!    - Marked but referenced or leased again: clear the mark. A new reference (commit) or lease
//!      (check, upload) clears the mark by itself, so a chunk must be found eligible by two
//!      passes with nothing in between before it goes.
//!
//!    Every write re-checks the record inside its own short write transaction: a decision taken in
//!    the read batch never acts on a chunk that was referenced or leased since.
//! 3. **Orphans.** List the store and delete files that have no index entry and are older than the
//!    grace period, and at least [`ORPHAN_MIN_AGE`]: an upload writes its files before it records
//!    them in one transaction at the end of the request, so a young file without an entry is
//!    usually an upload in flight, not an orphan.
//!
//! With `--grace 0s` a chunk released now is marked by the next pass and gone after the one after.
//!
//! ## Locks
//!
//! - redb serialises write transactions; every GC write is one short transaction, so backups
//!   interleave with a running GC.
//! - The **deletion fence** (`Db::deletion_fence`): the GC holds it exclusively from the
//!   transaction that removes index entries until their files are deleted, and while it deletes
//!   orphans; an upload holds it shared (`Db::upload_fence`, taken by
//!   `service::ingest::record_verified`) from its store lookup to its record transaction. An
//!   upload may skip writing a chunk the index knew, or its fresh file may be taken for an orphan;
//!   for a chunk the index lacks, the service then asks the store (before the write transaction),
//!   and under the fence no half-done deletion can contradict the answer. A vanished chunk is left
//!   out of the record, and the commit that needs it is refused.
//! - `Db::gc_running`: one pass at a time (the periodic one inside `serve`, one on demand).
//! - One process owns a data directory (the lock file), so in-process locks suffice.
//!
//! ## Why a running backup is safe
//!
//! An agent commits versions whose chunks it uploaded or that `check` reported present. `commit`
//! checks presence in the index inside the transaction that adds the references, and the index
//! entry is removed (phase two) before the file, so a version can only ever reference a chunk whose
//! file exists. The lease decides whether the backup *succeeds*: within the grace period the GC
//! leaves the chunk alone; with a grace shorter than the time between `check` and `commit` the
//! chunk may go, and the commit is refused with `missing_chunks` rather than accepted.
//!
//! ## Crashes and interruptions
//!
//! A pass keeps no state outside redb, so it may stop at any point; the next pass starts afresh.
//! - During prune or marking: each batch is one transaction, done wholly or not at all.
//! - After phase two's transaction, before the files are deleted: the files are orphans (no
//!   index entry). Never a dangling reference: no index entry points to a missing file. Phase
//!   three of a later pass deletes them.
//! - During orphan deletion: some orphans remain for the next pass.
//!
//! ## Phase four: compaction
//!
//! After the deletions the store compacts containers whose live share fell below
//! `compact_below_percent` ([`ChunkStore::compact`]; for the packed store: sealed segments). It
//! moves bytes, never presence: every chunk the store has before, it has after, with the same
//! bytes, so no fence is needed against uploads and commits. Its own crash safety is the store's
//! (see `store/packed/`).

use std::time::{Duration, Instant};

use asgard_core::ChunkId;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::db::{Db, DbError, META_LAST_GC, PathKey, RetentionRules};
use crate::store::{ChunkStore, StoreError};

/// Files without an index entry are orphans only when at least this old (see phase three).
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(3600);

/// Records per read transaction of a walk, by default.
pub const DEFAULT_BATCH: usize = 10_000;

/// What a pass does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// How long a lease protects an unreferenced chunk.
    pub grace: Duration,
    /// Report what the pass would do; change nothing.
    pub dry_run: bool,
    /// `keep_versions` of users without their own setting.
    pub keep_versions: u32,
    /// Versions of a path deleted this many days ago all go.
    pub deleted_keep_days: u32,
    /// Records per read transaction (and at most per write transaction).
    pub batch: usize,
    /// Compact store segments whose live share is below this percentage after the deletions
    /// (phase four); 0 = no compaction.
    pub compact_below_percent: u32,
}

impl GcOptions {
    /// The options of the configuration (not a dry run).
    pub fn from_config(config: &Config) -> GcOptions {
        GcOptions {
            grace: config.gc_grace.0,
            dry_run: false,
            keep_versions: config.keep_versions,
            deleted_keep_days: config.deleted_keep_days,
            batch: DEFAULT_BATCH,
            compact_below_percent: config.store.compact_below_percent,
        }
    }
}

/// The result of one pass (for a dry run: what it would have done).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// When the pass started (µs since the epoch; the time its decisions were taken against).
    pub started_us: i64,
    pub duration_ms: u64,
    pub paths_scanned: u64,
    /// Versions dropped by retention (too many versions, deleted paths past `deleted_keep_days`).
    pub versions_pruned: u64,
    /// Paths whose every version went.
    pub paths_removed: u64,
    pub chunks_scanned: u64,
    /// Chunks marked as candidates (phase one).
    pub candidates_marked: u64,
    /// Candidates that were referenced or leased again.
    pub marks_cleared: u64,
    /// Chunks removed from the index and the store (phase two).
    pub chunks_freed: u64,
    /// Stored bytes of those chunks.
    pub bytes_freed: u64,
    /// Store files without an index entry that were deleted.
    pub orphans_removed: u64,
    /// Read transactions of the chunk walk.
    pub chunk_batches: u64,
    /// Store segments compacted (phase four).
    #[serde(default)]
    pub segments_compacted: u64,
    /// Disk space the compaction gave back, in bytes.
    #[serde(default)]
    pub bytes_reclaimed: u64,
}

/// Why a pass stopped. Whatever it did before stays done and consistent (see the module docs).
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The database failed; the pass may be run again.
    #[error("garbage collection: {0}")]
    Db(#[from] DbError),
    /// The chunk store failed (listing, deleting); temporary or permanent, run again to see.
    #[error("garbage collection: {0}")]
    Store(#[from] StoreError),
    /// Another pass is running in this process.
    #[error("a garbage collection pass is already running")]
    AlreadyRunning,
}

/// Runs one pass with `now_us` as the time of every decision. See the module docs.
///
/// # Errors
/// [`GcError`]; a failed pass leaves everything consistent, and the next pass continues the work.
pub fn run(
    db: &Db,
    store: &dyn ChunkStore,
    opts: &GcOptions,
    now_us: i64,
) -> Result<GcReport, GcError> {
    let _running = match db.gc_running.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::WouldBlock) => return Err(GcError::AlreadyRunning),
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
    };
    let started = Instant::now();
    let batch = opts.batch.max(1);
    let grace_us = i64::try_from(opts.grace.as_micros()).unwrap_or(i64::MAX);
    let mut report = GcReport {
        dry_run: opts.dry_run,
        started_us: now_us,
        ..GcReport::default()
    };

    prune(db, opts, now_us, batch, &mut report)?;
    chunks(db, store, opts, now_us, grace_us, batch, &mut report)?;
    orphans(db, store, opts, now_us, grace_us, batch, &mut report)?;
    if !opts.dry_run && opts.compact_below_percent > 0 {
        let c = store.compact(opts.compact_below_percent)?;
        report.segments_compacted = c.segments_compacted;
        report.bytes_reclaimed = c.bytes_reclaimed;
    }

    report.duration_ms = started.elapsed().as_millis() as u64;
    if !opts.dry_run {
        record_report(db, &report)?;
    }
    let level_info = report.versions_pruned
        + report.chunks_freed
        + report.orphans_removed
        + report.segments_compacted
        > 0;
    macro_rules! log_report {
        ($lvl:ident) => {
            tracing::$lvl!(
                dry_run = report.dry_run,
                versions_pruned = report.versions_pruned,
                candidates_marked = report.candidates_marked,
                chunks_freed = report.chunks_freed,
                bytes_freed = report.bytes_freed,
                orphans_removed = report.orphans_removed,
                segments_compacted = report.segments_compacted,
                bytes_reclaimed = report.bytes_reclaimed,
                duration_ms = report.duration_ms,
                "garbage collection pass done"
            )
        };
    }
    if level_info {
        log_report!(info);
    } else {
        log_report!(debug);
    }
    Ok(report)
}

/// Phase one: retention over every path.
fn prune(
    db: &Db,
    opts: &GcOptions,
    now_us: i64,
    batch: usize,
    report: &mut GcReport,
) -> Result<(), GcError> {
    let rules = RetentionRules {
        keep_versions: opts.keep_versions,
        deleted_keep_us: i64::from(opts.deleted_keep_days) * 86_400 * 1_000_000,
        now_us,
    };
    let mut after: Option<PathKey> = None;
    loop {
        let b = db.prune_scan(after.as_ref(), batch, rules)?;
        report.paths_scanned += b.scanned as u64;
        if opts.dry_run {
            report.versions_pruned += b.versions;
        } else if !b.prune.is_empty() {
            let (dropped, removed) = db.prune_paths(&b.prune, rules)?;
            report.versions_pruned += dropped;
            report.paths_removed += removed;
        }
        match b.last {
            Some(k) => after = Some(k),
            None => return Ok(()),
        }
    }
}

/// Phase two: mark, unmark and delete over the chunk index.
fn chunks(
    db: &Db,
    store: &dyn ChunkStore,
    opts: &GcOptions,
    now_us: i64,
    grace_us: i64,
    batch: usize,
    report: &mut GcReport,
) -> Result<(), GcError> {
    let mut after: Option<[u8; 32]> = None;
    loop {
        let b = db.gc_chunk_batch(after.as_ref(), batch, now_us, grace_us)?;
        report.chunk_batches += 1;
        report.chunks_scanned += b.scanned as u64;
        if opts.dry_run {
            report.candidates_marked += b.mark.len() as u64;
            report.marks_cleared += b.unmark.len() as u64;
            report.chunks_freed += b.delete.len() as u64;
            report.bytes_freed += b.delete.iter().map(|(_, len)| len).sum::<u64>();
        } else {
            if !b.mark.is_empty() || !b.unmark.is_empty() {
                let (marked, cleared) = db.gc_mark(&b.mark, &b.unmark, now_us, grace_us)?;
                report.candidates_marked += marked;
                report.marks_cleared += cleared;
            }
            if !b.delete.is_empty() {
                let ids: Vec<ChunkId> = b.delete.iter().map(|(id, _)| *id).collect();
                let _fence = db.deletion_fence.write().unwrap_or_else(|e| e.into_inner());
                let removed = db.gc_remove(&ids, now_us, grace_us)?;
                // The index no longer knows these chunks: from here on a crash leaves orphan
                // files, never a reference to a missing one.
                let ids: Vec<ChunkId> = removed.iter().map(|(id, _)| *id).collect();
                store.delete_many(&ids)?;
                report.chunks_freed += removed.len() as u64;
                report.bytes_freed += removed.iter().map(|(_, len)| len).sum::<u64>();
            }
        }
        match b.last {
            Some(k) => after = Some(k),
            None => return Ok(()),
        }
    }
}

/// Phase three: store files without an index entry, old enough not to be an upload in flight.
fn orphans(
    db: &Db,
    store: &dyn ChunkStore,
    opts: &GcOptions,
    now_us: i64,
    grace_us: i64,
    batch: usize,
    report: &mut GcReport,
) -> Result<(), GcError> {
    let min_age_us = grace_us.max(ORPHAN_MIN_AGE.as_micros() as i64);
    let mut listing = store.list()?;
    loop {
        let ids: Vec<ChunkId> = listing.by_ref().take(batch).collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(());
        }
        let mut old = Vec::new();
        for id in db.chunks_unknown(&ids)? {
            if let Some(at) = store.stored_at_us(&id)?
                && now_us.saturating_sub(at) >= min_age_us
            {
                old.push(id);
            }
        }
        if old.is_empty() {
            continue;
        }
        if opts.dry_run {
            report.orphans_removed += old.len() as u64;
            continue;
        }
        let _fence = db.deletion_fence.write().unwrap_or_else(|e| e.into_inner());
        // An upload may have recorded one of them since the lookup above.
        report.orphans_removed += store.delete_many(&db.chunks_unknown(&old)?)?;
    }
}

/// Keeps the report of a pass in the meta table (`last_gc`, read by `stats`).
fn record_report(db: &Db, r: &GcReport) -> Result<(), DbError> {
    db.set_meta_json(META_LAST_GC, r)
}

/// The report of the last completed pass (not dry runs), if any ran.
///
/// # Errors
/// [`DbError`] when the meta table cannot be read.
pub fn last_report(db: &Db) -> Result<Option<GcReport>, DbError> {
    db.get_meta_json(META_LAST_GC)
}

#[cfg(test)]
mod tests;
