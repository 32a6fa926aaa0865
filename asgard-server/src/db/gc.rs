//! The garbage collector's transactions: the pruning pass over the paths (retention, expired
//! deletions) and the two phases on the chunk index. The phases, the locks and why they are safe
//! are described in `crate::ops::gc`; every function here is one short transaction, and every write
//! transaction re-checks what it changes, so a decision taken in a read batch never acts on a
//! chunk that was referenced or leased, or a path that was committed to, in the meantime.

use asgard_core::ChunkId;
use redb::ReadableTable;

use super::retention::{Class, apply_retention, retention_drops};
use super::{
    CHUNKS, ChunkRec, Db, KEEP_OVERRIDES, META, PATHS, PathRec, Result, STORED_BYTES, USER_CHUNKS,
    USERS, UserRec, VERSIONS, VersionRec, adjust_refcount, dec, enc,
};

/// A key of the paths table, owned: (user id, device id, path bytes).
pub type PathKey = (u64, u64, Vec<u8>);

/// What the pruning pass found in one read batch of paths.
#[derive(Debug, Default)]
pub struct PathBatch {
    /// Paths looked at.
    pub scanned: usize,
    /// The last key read: the next batch starts after it. `None` when the table is exhausted.
    pub last: Option<PathKey>,
    /// Paths that retention or the deleted-path expiry would change.
    pub prune: Vec<PathKey>,
    /// Versions those changes would drop (at read time).
    pub versions: u64,
}

/// The retention rules a pruning pass applies.
#[derive(Debug, Clone, Copy)]
pub struct RetentionRules {
    /// `keep_versions` for users without their own setting.
    pub keep_versions: u32,
    /// The versions of a path deleted at least this long ago all go.
    pub deleted_keep_us: i64,
    pub now_us: i64,
}

/// What a GC pass does with one chunk record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkVerdict {
    /// Referenced or leased, and not marked: nothing to do.
    Live,
    /// Referenced or leased again, but still marked by an earlier pass: clear the mark.
    Unmark,
    /// Unreferenced and unleased, not yet marked: phase one marks it.
    Mark,
    /// Marked by an earlier pass and still unreferenced and unleased: phase two removes it.
    Delete,
    /// Marked in this very pass (or with a clock gone backwards): wait for a later pass.
    Wait,
}

/// The decision for one record at time `now` with a grace period of `grace_us`. A lease protects
/// a chunk while it is younger than the grace (so with a grace of zero, only references protect).
pub fn chunk_verdict(rec: &ChunkRec, now: i64, grace_us: i64) -> ChunkVerdict {
    let leased = now.saturating_sub(rec.last_touched_us) < grace_us;
    match (rec.refcount > 0 || leased, rec.gc_candidate_since_us) {
        (true, None) => ChunkVerdict::Live,
        (true, Some(_)) => ChunkVerdict::Unmark,
        (false, None) => ChunkVerdict::Mark,
        (false, Some(since)) if since < now => ChunkVerdict::Delete,
        (false, Some(_)) => ChunkVerdict::Wait,
    }
}

/// One read batch of the chunk index, sorted by what the pass will do.
#[derive(Debug, Default)]
pub struct ChunkBatch {
    /// Records read.
    pub scanned: usize,
    /// The last key read: the next batch starts after it. `None` when the index is exhausted.
    pub last: Option<[u8; 32]>,
    pub mark: Vec<ChunkId>,
    pub unmark: Vec<ChunkId>,
    /// Candidates to remove, with their stored sizes (at read time).
    pub delete: Vec<(ChunkId, u64)>,
}

impl Db {
    /// Reads up to `limit` chunk records after `after` in one read transaction and sorts them by
    /// [`chunk_verdict`]. Memory is bounded by `limit`, whatever the size of the index.
    pub fn gc_chunk_batch(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
        now: i64,
        grace_us: i64,
    ) -> Result<ChunkBatch> {
        let txn = self.read()?;
        let chunks = txn.open_table(CHUNKS)?;
        let lower = match after {
            Some(k) => std::ops::Bound::Excluded(k),
            None => std::ops::Bound::Unbounded,
        };
        let mut batch = ChunkBatch::default();
        for row in chunks
            .range::<&[u8; 32]>((lower, std::ops::Bound::Unbounded))?
            .take(limit)
        {
            let (k, v) = row?;
            let id = *k.value();
            let rec: ChunkRec = dec(v.value())?;
            batch.scanned += 1;
            match chunk_verdict(&rec, now, grace_us) {
                ChunkVerdict::Mark => batch.mark.push(ChunkId(id)),
                ChunkVerdict::Unmark => batch.unmark.push(ChunkId(id)),
                ChunkVerdict::Delete => batch.delete.push((ChunkId(id), rec.stored_len)),
                ChunkVerdict::Live | ChunkVerdict::Wait => {}
            }
            batch.last = Some(id);
        }
        if batch.scanned < limit {
            batch.last = None;
        }
        Ok(batch)
    }

    /// Phase one (and its undo), in one write transaction: marks the chunks of `mark` and clears
    /// the mark of `unmark`, each only if a fresh look still says so. Returns (marked, unmarked).
    pub fn gc_mark(
        &self,
        mark: &[ChunkId],
        unmark: &[ChunkId],
        now: i64,
        grace_us: i64,
    ) -> Result<(u64, u64)> {
        let txn = self.write()?;
        let (mut marked, mut unmarked) = (0, 0);
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            for (id, want) in mark
                .iter()
                .map(|id| (id, ChunkVerdict::Mark))
                .chain(unmark.iter().map(|id| (id, ChunkVerdict::Unmark)))
            {
                let Some(mut rec) = chunks
                    .get(&id.0)?
                    .map(|g| dec::<ChunkRec>(g.value()))
                    .transpose()?
                else {
                    continue;
                };
                if chunk_verdict(&rec, now, grace_us) != want {
                    continue;
                }
                if want == ChunkVerdict::Mark {
                    rec.gc_candidate_since_us = Some(now);
                    marked += 1;
                } else {
                    rec.gc_candidate_since_us = None;
                    unmarked += 1;
                }
                chunks.insert(&id.0, enc(&rec)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok((marked, unmarked))
    }

    /// Phase two, in one write transaction: removes the index entry and every user's ownership
    /// row of each candidate that a fresh look still finds marked by an earlier pass,
    /// unreferenced and unleased, and lowers `stored_bytes`. Returns the removed chunks with their
    /// stored sizes; the caller deletes their files after this returns, while it still holds the
    /// deletion fence exclusively.
    pub fn gc_remove(
        &self,
        candidates: &[ChunkId],
        now: i64,
        grace_us: i64,
    ) -> Result<Vec<(ChunkId, u64)>> {
        let txn = self.write()?;
        let mut removed = Vec::new();
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            let mut owned = txn.open_table(USER_CHUNKS)?;
            let mut meta = txn.open_table(META)?;
            // Ownership rows are keyed by user first; users are few, so look under each one.
            let mut user_ids = Vec::new();
            for row in txn.open_table(USERS)?.iter()? {
                user_ids.push(dec::<UserRec>(row?.1.value())?.id);
            }
            let mut freed = 0u64;
            for id in candidates {
                let Some(rec) = chunks
                    .get(&id.0)?
                    .map(|g| dec::<ChunkRec>(g.value()))
                    .transpose()?
                else {
                    continue;
                };
                if chunk_verdict(&rec, now, grace_us) != ChunkVerdict::Delete {
                    continue;
                }
                chunks.remove(&id.0)?;
                for &u in &user_ids {
                    owned.remove((u, &id.0))?;
                }
                freed += rec.stored_len;
                removed.push((*id, rec.stored_len));
            }
            let total = meta.get(STORED_BYTES)?.map(|g| g.value()).unwrap_or(0);
            meta.insert(STORED_BYTES, total.saturating_sub(freed))?;
        }
        txn.commit()?;
        Ok(removed)
    }
}

impl Db {
    /// Reads up to `limit` paths after `after` and finds those the retention rules would change.
    /// Reads one version per path, and all of a path's versions only when it has more than it may
    /// keep, so a pass over millions of paths stays cheap.
    pub fn prune_scan(
        &self,
        after: Option<&PathKey>,
        limit: usize,
        rules: RetentionRules,
    ) -> Result<PathBatch> {
        let txn = self.read()?;
        let paths = txn.open_table(PATHS)?;
        let versions = txn.open_table(VERSIONS)?;
        let keeps = txn.open_table(KEEP_OVERRIDES)?;
        let lower = match after {
            Some((u, d, p)) => std::ops::Bound::Excluded((*u, *d, p.as_slice())),
            None => std::ops::Bound::Unbounded,
        };
        let mut batch = PathBatch::default();
        let range = paths.range::<(u64, u64, &[u8])>((lower, std::ops::Bound::Unbounded))?;
        for row in range.take(limit) {
            let (k, v) = row?;
            let (user_id, device_id, path) = k.value();
            let key = (user_id, device_id, path.to_vec());
            batch.scanned += 1;
            let prec: PathRec = dec(v.value())?;
            let keep = keeps
                .get(user_id)?
                .map_or(rules.keep_versions, |g| g.value());
            let newest = match prec.versions.last() {
                Some(&id) => versions
                    .get(id)?
                    .map(|g| VersionRec::decode(g.value()))
                    .transpose()?,
                None => None,
            };
            let drops = if newest.is_some_and(|v| deletion_expired(&v, rules)) {
                prec.versions.len() as u64
            } else if prec.versions.len() > keep as usize {
                let mut classes = Vec::with_capacity(prec.versions.len());
                for &id in &prec.versions {
                    if let Some(g) = versions.get(id)? {
                        classes.push(Class::of(&VersionRec::decode(g.value())?));
                    }
                }
                retention_drops(&classes, keep)
                    .iter()
                    .filter(|d| **d)
                    .count() as u64
            } else {
                0
            };
            if drops > 0 || prec.versions.is_empty() {
                batch.prune.push(key.clone());
                batch.versions += drops;
            }
            batch.last = Some(key);
        }
        if batch.scanned < limit {
            batch.last = None;
        }
        Ok(batch)
    }

    /// Applies the retention rules to `keys` in one write transaction (re-reading each path) and
    /// releases the chunk references of the dropped versions. Returns (versions dropped, paths
    /// removed).
    pub fn prune_paths(&self, keys: &[PathKey], rules: RetentionRules) -> Result<(u64, u64)> {
        let txn = self.write()?;
        let (mut dropped, mut removed) = (0u64, 0u64);
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            let mut paths = txn.open_table(PATHS)?;
            let mut versions = txn.open_table(VERSIONS)?;
            let keeps = txn.open_table(KEEP_OVERRIDES)?;
            for (user_id, device_id, path) in keys {
                let key = (*user_id, *device_id, path.as_slice());
                let Some(mut prec) = paths
                    .get(key)?
                    .map(|g| dec::<PathRec>(g.value()))
                    .transpose()?
                else {
                    continue;
                };
                let newest = match prec.versions.last() {
                    Some(&id) => versions
                        .get(id)?
                        .map(|g| VersionRec::decode(g.value()))
                        .transpose()?,
                    None => None,
                };
                if prec.versions.is_empty() || newest.is_some_and(|v| deletion_expired(&v, rules)) {
                    for id in std::mem::take(&mut prec.versions) {
                        if let Some(v) = versions
                            .remove(id)?
                            .map(|g| VersionRec::decode(g.value()))
                            .transpose()?
                        {
                            for (chunk, _) in &v.chunks {
                                adjust_refcount(&mut chunks, chunk, -1)?;
                            }
                            dropped += 1;
                        }
                    }
                    paths.remove(key)?;
                    removed += 1;
                    continue;
                }
                let keep = keeps
                    .get(*user_id)?
                    .map_or(rules.keep_versions, |g| g.value());
                let n = apply_retention(&mut prec, &mut versions, &mut chunks, keep)?;
                if n > 0 {
                    paths.insert(key, enc(&prec)?.as_slice())?;
                    dropped += u64::from(n);
                }
            }
        }
        txn.commit()?;
        Ok((dropped, removed))
    }
}

/// Whether `newest` is a deletion marker older than `deleted_keep_days`: the path's versions go.
fn deletion_expired(newest: &VersionRec, rules: RetentionRules) -> bool {
    newest.deleted && newest.time_us.saturating_add(rules.deleted_keep_us) <= rules.now_us
}
