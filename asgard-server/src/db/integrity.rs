//! The metadata side of verify and healing: bounded walks over the chunk index and the versions,
//! the bad marks, the re-read list handed to agents at login, and the last verify result.
//!
//! Every walk reads one batch per read transaction and returns a cursor, so verify never holds
//! the whole index in memory nor one read transaction for the whole run (which would pin old
//! pages of the database file while backups go on). The orchestration lives in `crate::ops::verify`.

use std::collections::HashMap;

use asgard_core::{ChunkId, RawPath};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{
    CHUNKS, ChunkRec, DEVICES, Db, META_LAST_VERIFY, PATHS, PathRec, REREAD, Result, USER_CHUNKS,
    USERS, UserRec, VERSIONS, VersionRec, dec, enc,
};

/// One entry of a chunk walk: the id and its index record (`None` when a user owns a chunk that
/// the index lacks).
#[derive(Debug, Clone, Copy)]
pub struct ChunkBatchItem {
    pub id: ChunkId,
    pub rec: Option<ChunkRec>,
}

/// A reference of a retained version to a chunk that is marked bad or missing from the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRef {
    pub id: ChunkId,
    /// Plaintext length, from the version.
    pub len: u32,
    /// How often the version references the chunk.
    pub occurrences: u32,
    /// The index has no record of the chunk (otherwise it is marked bad).
    pub unindexed: bool,
}

/// A retained version that references at least one bad or unindexed chunk.
#[derive(Debug, Clone)]
pub struct VersionIssue {
    pub version_id: u64,
    pub user_id: u64,
    pub device_id: u64,
    pub path: RawPath,
    pub refs: Vec<BadRef>,
}

/// Where a walk over one user's paths goes on: after this (device id, path).
pub(super) type PathCursor = (u64, Vec<u8>);

/// One batch of a version walk.
#[derive(Debug, Default)]
pub struct VersionBatch {
    /// Versions looked at (0 at the end of the walk).
    pub versions: u64,
    /// Chunk references looked at.
    pub references: u64,
    pub issues: Vec<VersionIssue>,
}

/// A file version that references a bad chunk, as verify lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedVersion {
    pub user: String,
    pub device: String,
    pub path: RawPath,
    pub version_id: u64,
    /// The bad or unindexed chunks it references.
    pub chunks: Vec<ChunkId>,
}

/// The last verify result, kept in the meta table (JSON under [`META_LAST_VERIFY`]) for `stats` and
/// the admin pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySummary {
    pub finished_us: i64,
    pub duration_ms: u64,
    /// Sample in hundredths of a percent (10000 = every chunk).
    pub sample_basis_points: u64,
    /// The user id the run was limited to (0 = all users).
    pub user_id: u64,
    pub chunks_checked: u64,
    pub damaged: u64,
    pub missing: u64,
    pub unindexed: u64,
    /// Chunks in scope marked bad when the run ended.
    pub bad_chunks: u64,
    pub affected_versions: u64,
}

/// The bad and unindexed references of one version, looked up in the chunk index.
fn inspect(
    chunks: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    rec: &VersionRec,
) -> Result<Vec<BadRef>> {
    let mut out: Vec<BadRef> = Vec::new();
    for (id, len) in &rec.chunks {
        if let Some(r) = out.iter_mut().find(|r| r.id.0 == *id) {
            r.occurrences += 1;
            continue;
        }
        let state = match chunks.get(id)? {
            None => Some(true),
            Some(g) => dec::<ChunkRec>(g.value())?.bad_since_us.map(|_| false),
        };
        if let Some(unindexed) = state {
            out.push(BadRef {
                id: ChunkId(*id),
                len: *len,
                occurrences: 1,
                unindexed,
            });
        }
    }
    Ok(out)
}

fn issue(id: u64, rec: VersionRec, refs: Vec<BadRef>) -> VersionIssue {
    VersionIssue {
        version_id: id,
        user_id: rec.user_id,
        device_id: rec.device_id,
        path: RawPath(rec.path),
        refs,
    }
}

impl Db {
    /// The id of a user by name.
    pub fn user_id(&self, name: &str) -> Result<Option<u64>> {
        Ok(self
            .read()?
            .open_table(USERS)?
            .get(name)?
            .map(|g| dec::<UserRec>(g.value()))
            .transpose()?
            .map(|u| u.id))
    }

    /// User names by id and device names by (user id, device id). Users and devices are few
    /// (people and their machines), unlike chunks and versions.
    #[allow(clippy::type_complexity)]
    pub fn names(&self) -> Result<(HashMap<u64, String>, HashMap<(u64, u64), String>)> {
        let txn = self.read()?;
        let mut users = HashMap::new();
        for row in txn.open_table(USERS)?.iter()? {
            let (k, v) = row?;
            users.insert(dec::<UserRec>(v.value())?.id, k.value().to_owned());
        }
        let mut devices = HashMap::new();
        for row in txn.open_table(DEVICES)?.iter()? {
            let (k, v) = row?;
            let (user_id, name) = k.value();
            let rec: super::DeviceRec = dec(v.value())?;
            devices.insert((user_id, rec.id), name.to_owned());
        }
        Ok((users, devices))
    }

    /// Up to `limit` index entries after `after` (from the start when `None`), in id order.
    pub fn chunk_batch(&self, after: Option<ChunkId>, limit: usize) -> Result<Vec<ChunkBatchItem>> {
        let txn = self.read()?;
        let chunks = txn.open_table(CHUNKS)?;
        let lower = after.map(|a| a.0);
        let range = match &lower {
            Some(a) => chunks
                .range::<&[u8; 32]>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?,
            None => chunks.range::<&[u8; 32]>(..)?,
        };
        let mut out = Vec::with_capacity(limit.min(4096));
        for row in range.take(limit) {
            let (k, v) = row?;
            out.push(ChunkBatchItem {
                id: ChunkId(*k.value()),
                rec: Some(dec(v.value())?),
            });
        }
        Ok(out)
    }

    /// Up to `limit` chunks owned by `user_id` after `after`, with their index records.
    pub fn user_chunk_batch(
        &self,
        user_id: u64,
        after: Option<ChunkId>,
        limit: usize,
    ) -> Result<Vec<ChunkBatchItem>> {
        let txn = self.read()?;
        let owned = txn.open_table(USER_CHUNKS)?;
        let chunks = txn.open_table(CHUNKS)?;
        let start = after.map(|a| a.0).unwrap_or([0; 32]);
        let lower = match after {
            Some(_) => std::ops::Bound::Excluded((user_id, &start)),
            None => std::ops::Bound::Included((user_id, &start)),
        };
        let upper = std::ops::Bound::Included((user_id, &[0xff; 32]));
        let mut out = Vec::with_capacity(limit.min(4096));
        for row in owned.range::<(u64, &[u8; 32])>((lower, upper))?.take(limit) {
            let (k, _) = row?;
            let id = *k.value().1;
            out.push(ChunkBatchItem {
                id: ChunkId(id),
                rec: chunks.get(&id)?.map(|g| dec(g.value())).transpose()?,
            });
        }
        Ok(out)
    }

    /// Sets or clears bad marks after verify read the chunks, in one write transaction.
    ///
    /// `found_bad` are chunks whose bytes failed, `found_good` chunks marked bad whose bytes are
    /// fine now. Before changing a mark, `is_bad` reads the chunk again inside the transaction:
    /// an upload may have healed it since verify read it, and its record is written in a later
    /// transaction than its bytes, so a re-read here never marks freshly healed bytes bad, and a
    /// heal that lands after this transaction clears the mark again. Chunks that left the index
    /// meanwhile (GC) are skipped. Returns (chunks marked bad now, marks cleared).
    pub fn set_bad_marks(
        &self,
        found_bad: &[ChunkId],
        found_good: &[ChunkId],
        is_bad: &dyn Fn(&ChunkId) -> bool,
        now: i64,
    ) -> Result<(Vec<ChunkId>, Vec<ChunkId>)> {
        if found_bad.is_empty() && found_good.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let txn = self.write()?;
        let mut marked = Vec::new();
        let mut cleared = Vec::new();
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            for (id, want_bad) in found_bad
                .iter()
                .map(|i| (i, true))
                .chain(found_good.iter().map(|i| (i, false)))
            {
                let Some(mut rec) = chunks
                    .get(&id.0)?
                    .map(|g| dec::<ChunkRec>(g.value()))
                    .transpose()?
                else {
                    continue;
                };
                if is_bad(id) != want_bad {
                    continue;
                }
                if want_bad {
                    if rec.bad_since_us.is_none() {
                        rec.bad_since_us = Some(now);
                        chunks.insert(&id.0, enc(&rec)?.as_slice())?;
                        tracing::warn!(chunk = %id, "chunk marked bad");
                    }
                    marked.push(*id);
                } else if rec.bad_since_us.is_some() {
                    rec.bad_since_us = None;
                    chunks.insert(&id.0, enc(&rec)?.as_slice())?;
                    tracing::info!(chunk = %id, "bad mark cleared: the stored bytes verify again");
                    cleared.push(*id);
                }
            }
        }
        txn.commit()?;
        Ok((marked, cleared))
    }

    /// Up to `limit` retained versions with an id above `after`, and the ones among them that
    /// reference a bad or unindexed chunk. Returns the batch and the cursor for the next one
    /// (`None` at the end).
    pub fn version_batch(&self, after: u64, limit: usize) -> Result<(VersionBatch, Option<u64>)> {
        let txn = self.read()?;
        let versions = txn.open_table(VERSIONS)?;
        let chunks = txn.open_table(CHUNKS)?;
        let mut batch = VersionBatch::default();
        let mut last = None;
        for row in versions
            .range::<u64>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))?
            .take(limit)
        {
            let (k, v) = row?;
            let id = k.value();
            last = Some(id);
            let rec = VersionRec::decode(v.value())?;
            batch.versions += 1;
            batch.references += rec.chunks.len() as u64;
            let refs = inspect(&chunks, &rec)?;
            if !refs.is_empty() {
                batch.issues.push(issue(id, rec, refs));
            }
        }
        Ok((batch, last))
    }

    /// Like [`Db::version_batch`], for the versions of up to `limit` paths of one user, after the
    /// (device id, path) cursor.
    pub fn user_version_batch(
        &self,
        user_id: u64,
        after: Option<PathCursor>,
        limit: usize,
    ) -> Result<(VersionBatch, Option<PathCursor>)> {
        let txn = self.read()?;
        let paths = txn.open_table(PATHS)?;
        let versions = txn.open_table(VERSIONS)?;
        let chunks = txn.open_table(CHUNKS)?;
        let lower = match &after {
            Some((d, p)) => std::ops::Bound::Excluded((user_id, *d, p.as_slice())),
            None => std::ops::Bound::Included((user_id, 0, &[][..])),
        };
        let upper = std::ops::Bound::Excluded((user_id + 1, 0, &[][..]));
        let mut batch = VersionBatch::default();
        let mut last = None;
        for row in paths
            .range::<(u64, u64, &[u8])>((lower, upper))?
            .take(limit)
        {
            let (k, v) = row?;
            let (_, device_id, path) = k.value();
            last = Some((device_id, path.to_vec()));
            let prec: PathRec = dec(v.value())?;
            for id in prec.versions {
                let Some(g) = versions.get(id)? else { continue };
                let rec = VersionRec::decode(g.value())?;
                batch.versions += 1;
                batch.references += rec.chunks.len() as u64;
                let refs = inspect(&chunks, &rec)?;
                if !refs.is_empty() {
                    batch.issues.push(issue(id, rec, refs));
                }
            }
        }
        Ok((batch, last))
    }

    /// Gives chunks that retained versions reference but the index lacks an index record again,
    /// marked bad (stored length 0, so `check` asks for them and an upload heals them), or adds
    /// `refs` to the refcount of one that verify recreated earlier in the same run. `refs` is the
    /// number of references verify counted, so the refcount matches the versions and GC keeps the
    /// chunk.
    pub fn restore_index_entries(&self, list: &[(ChunkId, u32, u64)], now: i64) -> Result<()> {
        if list.is_empty() {
            return Ok(());
        }
        let txn = self.write()?;
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            for &(id, plain_len, refs) in list {
                let rec = match chunks.get(&id.0)?.map(|g| dec::<ChunkRec>(g.value())) {
                    Some(r) => {
                        let r = r?;
                        ChunkRec {
                            refcount: r.refcount + refs,
                            bad_since_us: r.bad_since_us.or(Some(now)),
                            ..r
                        }
                    }
                    None => {
                        tracing::warn!(chunk = %id, "referenced chunk missing from the index: recreated as bad");
                        ChunkRec {
                            stored_len: 0,
                            plain_len,
                            refcount: refs,
                            last_touched_us: now,
                            gc_candidate_since_us: None,
                            bad_since_us: Some(now),
                        }
                    }
                };
                chunks.insert(&id.0, enc(&rec)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Remembers paths whose versions reference bad chunks, for [`Db::reread_paths`].
    pub fn record_reread(&self, list: &[(u64, u64, RawPath)]) -> Result<()> {
        if list.is_empty() {
            return Ok(());
        }
        let txn = self.write()?;
        {
            let mut t = txn.open_table(REREAD)?;
            for (user, device, path) in list {
                t.insert((*user, *device, path.0.as_slice()), ())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The paths of this device whose retained versions still reference a bad chunk (at most
    /// `cap`; the bool says whether more exist). Entries whose versions no longer do (healed,
    /// pruned) are dropped from the list as a side effect.
    pub fn reread_paths(
        &self,
        user_id: u64,
        device_id: u64,
        cap: usize,
    ) -> Result<(Vec<RawPath>, bool)> {
        let mut out = Vec::new();
        let mut stale = Vec::new();
        let mut more = false;
        {
            let txn = self.read()?;
            let reread = txn.open_table(REREAD)?;
            let paths = txn.open_table(PATHS)?;
            let versions = txn.open_table(VERSIONS)?;
            let chunks = txn.open_table(CHUNKS)?;
            let lower = (user_id, device_id, &[][..]);
            let upper = (user_id, device_id + 1, &[][..]);
            for row in reread.range::<(u64, u64, &[u8])>(lower..upper)? {
                let (k, _) = row?;
                let path = k.value().2.to_vec();
                let prec: Option<PathRec> = paths
                    .get((user_id, device_id, path.as_slice()))?
                    .map(|g| dec(g.value()))
                    .transpose()?;
                let mut bad = false;
                for id in prec.map(|p| p.versions).unwrap_or_default() {
                    let Some(g) = versions.get(id)? else { continue };
                    if !inspect(&chunks, &VersionRec::decode(g.value())?)?.is_empty() {
                        bad = true;
                        break;
                    }
                }
                if !bad {
                    stale.push(path);
                } else if out.len() < cap {
                    out.push(RawPath(path));
                } else {
                    more = true;
                    break;
                }
            }
        }
        if !stale.is_empty() {
            let txn = self.write()?;
            {
                let mut t = txn.open_table(REREAD)?;
                for p in &stale {
                    t.remove((user_id, device_id, p.as_slice()))?;
                }
            }
            txn.commit()?;
        }
        Ok((out, more))
    }

    /// Removes a chunk's index record, as a bug or a damaged database might (tests only).
    #[cfg(test)]
    pub fn remove_chunk_record_for_tests(&self, id: &ChunkId) {
        let txn = self.write().unwrap();
        txn.open_table(CHUNKS).unwrap().remove(&id.0).unwrap();
        txn.commit().unwrap();
    }

    /// Stores the result of a verify run.
    pub fn save_verify_summary(&self, s: &VerifySummary) -> Result<()> {
        self.set_meta_json(META_LAST_VERIFY, s)
    }

    /// The result of the last verify run, if one ran.
    pub fn last_verify(&self) -> Result<Option<VerifySummary>> {
        self.get_meta_json(META_LAST_VERIFY)
    }
}
