//! The chunk index and who owns what: `check` (with its lease), the record of an upload, the
//! chunk records and refcounts, and the ownership reads of restore.
//!
//! A user may read or reference a chunk only if [`USER_CHUNKS`] says they own it (they uploaded
//! it; `check` answers "not missing" only for chunks the user owns), so one user learns nothing of
//! another's data, not even whether a chunk exists. The chunk bytes themselves live in the [`crate::store::ChunkStore`];
//! no function here calls the store: whoever records an upload asks the store first, under an
//! [`UploadFence`] (see [`Db::record_upload_healing`]).

use std::collections::HashSet;
use std::sync::RwLockReadGuard;

use asgard_core::ChunkId;
use redb::ReadableTable;

use super::{CHUNKS, ChunkRec, Db, META, Result, STORED_BYTES, USER_CHUNKS, dec, enc};

/// A chunk verified by an upload, to be recorded.
#[derive(Debug, Clone, Copy)]
pub struct UploadedChunk {
    pub id: ChunkId,
    pub stored_len: u64,
    pub plain_len: u32,
}

/// The deletion fence held shared (see [`Db::upload_fence`]): while one lives, the GC deletes no
/// chunk file and removes no index entry. Drop it as soon as the upload is recorded.
pub struct UploadFence<'a> {
    db: &'a Db,
    _guard: RwLockReadGuard<'a, ()>,
}

/// Whether the index has `id` and it is not marked bad: what `check` and `commit` require.
pub(super) fn chunk_usable(
    t: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    id: &ChunkId,
) -> Result<bool> {
    Ok(match t.get(&id.0)? {
        Some(g) => dec::<ChunkRec>(g.value())?.bad_since_us.is_none(),
        None => false,
    })
}

impl Db {
    /// Takes the deletion fence shared, for one upload: the caller looks up in the store which of
    /// the chunks the index lacks are there, then records the upload with
    /// [`Db::record_upload_healing`], both under this fence, so that no GC deletion falls between
    /// the lookup and the record. Never call it while already holding one on this thread (a
    /// waiting GC would make the second one wait for ever).
    pub fn upload_fence(&self) -> UploadFence<'_> {
        UploadFence {
            db: self,
            _guard: self
                .deletion_fence
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The distinct ids (in request order) that this user does not own or that the store lacks.
    /// Answers only from the user's own chunks, so it reveals nothing about other users. A chunk
    /// that verify marked bad counts as lacking for every owner, so that whoever still has the
    /// bytes uploads them again and heals it.
    ///
    /// Every chunk answered "not missing" gets a lease (`last_touched_us = now`, GC candidate mark
    /// cleared) in the same transaction: the agent will commit versions referencing it without
    /// uploading it, so GC must leave it alone for the grace period (see `crate::ops::gc`).
    pub fn check(&self, user_id: u64, ids: &[ChunkId], now: i64) -> Result<Vec<ChunkId>> {
        // Most answers change nothing (a first backup: every chunk is missing): those come from a
        // read transaction, and only chunks whose lease must be renewed take a write transaction.
        let (missing, to_lease) = {
            let txn = self.read()?;
            check_in(
                &txn.open_table(USER_CHUNKS)?,
                &txn.open_table(CHUNKS)?,
                user_id,
                ids,
                now,
            )?
        };
        if to_lease.is_empty() {
            return Ok(missing);
        }
        let txn = self.write()?;
        let missing = {
            let mut chunks = txn.open_table(CHUNKS)?;
            // Read again inside the write transaction: the index may have changed in between.
            let (missing, to_lease) =
                check_in(&txn.open_table(USER_CHUNKS)?, &chunks, user_id, ids, now)?;
            for (id, rec) in to_lease {
                let leased = ChunkRec {
                    last_touched_us: rec.last_touched_us.max(now),
                    gc_candidate_since_us: None,
                    ..rec
                };
                chunks.insert(&id.0, enc(&leased)?.as_slice())?;
            }
            missing
        };
        txn.commit()?;
        Ok(missing)
    }

    /// Whether the chunk index knows `id` (from any user).
    pub fn chunk_known(&self, id: &ChunkId) -> Result<bool> {
        Ok(self.read()?.open_table(CHUNKS)?.get(&id.0)?.is_some())
    }

    /// Whether `user_id` owns `id` and the index has it.
    pub fn owns_chunk(&self, user_id: u64, id: &ChunkId) -> Result<bool> {
        let txn = self.read()?;
        Ok(txn
            .open_table(USER_CHUNKS)?
            .get((user_id, &id.0))?
            .is_some()
            && txn.open_table(CHUNKS)?.get(&id.0)?.is_some())
    }

    /// Per id of `ids`, whether `user_id` owns it already (one read transaction): an upload
    /// counts as new what is new to its user, never what is new to the store.
    pub fn owned_by(&self, user_id: u64, ids: &[ChunkId]) -> Result<Vec<bool>> {
        let txn = self.read()?;
        let owned = txn.open_table(USER_CHUNKS)?;
        ids.iter()
            .map(|id| Ok(owned.get((user_id, &id.0))?.is_some()))
            .collect()
    }

    /// The first of `ids` that `user_id` may not read (see [`Db::owns_chunk`]), if any.
    pub fn first_unowned_chunk(&self, user_id: u64, ids: &[ChunkId]) -> Result<Option<ChunkId>> {
        let txn = self.read()?;
        let owned = txn.open_table(USER_CHUNKS)?;
        let chunks = txn.open_table(CHUNKS)?;
        for id in ids {
            if owned.get((user_id, &id.0))?.is_none() || chunks.get(&id.0)?.is_none() {
                return Ok(Some(*id));
            }
        }
        Ok(None)
    }

    /// Which of `ids` the chunk index lacks (one read transaction).
    pub fn chunks_unknown(&self, ids: &[ChunkId]) -> Result<Vec<ChunkId>> {
        let txn = self.read()?;
        let chunks = txn.open_table(CHUNKS)?;
        let mut out = Vec::new();
        for id in ids {
            if chunks.get(&id.0)?.is_none() {
                out.push(*id);
            }
        }
        Ok(out)
    }

    /// Records the verified chunks of one upload request, all in one transaction, each with a
    /// fresh lease. Returns the number of chunks the index did not have before. `in_store` is the
    /// store's answer, see [`Db::record_upload_healing`].
    pub fn record_upload(
        &self,
        fence: &UploadFence<'_>,
        user_id: u64,
        list: &[UploadedChunk],
        now: i64,
        in_store: &HashSet<ChunkId>,
    ) -> Result<u32> {
        self.record_upload_healing(fence, user_id, list, &[], now, in_store)
    }

    /// [`Db::record_upload`], where the chunks in `healed` were bad and this request replaced
    /// their stored bytes (`ChunkStore::replace`) before calling: their bad mark is cleared and
    /// their stored length updated. A bad chunk that this request did not rewrite keeps its mark.
    ///
    /// A chunk the index lacks is recorded only if the store has it *now*: the upload may have
    /// skipped writing a chunk the index knew, or written one that the GC then swept as an orphan,
    /// and the GC may have removed it in between. So the caller, holding `fence` (taken before the
    /// lookup), asks the store which of the chunks the index lacks it holds, and passes those ids
    /// as `in_store`; a chunk the index lacks here and that is not in `in_store` is gone and left
    /// out (logged). Under the fence no deletion is half done and no index entry is removed, so
    /// the answer is still true when this transaction runs, and every chunk the index lacks now
    /// was looked up (it lacked it at the lookup too). A commit referencing a chunk left out is
    /// refused with `missing_chunks`, never accepted. The lookup happens before, never inside,
    /// the write transaction: on an object store it costs network round trips, and redb has one
    /// writer.
    pub fn record_upload_healing(
        &self,
        fence: &UploadFence<'_>,
        user_id: u64,
        list: &[UploadedChunk],
        healed: &[ChunkId],
        now: i64,
        in_store: &HashSet<ChunkId>,
    ) -> Result<u32> {
        assert!(
            std::ptr::eq(fence.db, self),
            "the upload fence of another database"
        );
        // Without a sync of its own: the chunks' bytes are durable in the store already, and a
        // version can only reference them through `commit`, whose durable transaction persists
        // this one with it (redb makes every earlier non-durable commit durable with the next
        // durable one). A crash before that loses only these records: the chunks are then
        // unindexed store entries, re-uploaded (not re-written) by the next run or swept as
        // orphans, and `commit` refuses to reference them meanwhile.
        let txn = self.write_unsynced()?;
        let mut new = 0;
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            let mut owned = txn.open_table(USER_CHUNKS)?;
            let mut meta = txn.open_table(META)?;
            let mut added_bytes = 0u64;
            let mut removed_bytes = 0u64;
            // In key order: neighbouring keys share B-tree pages, so fewer pages are touched.
            let mut list: Vec<&UploadedChunk> = list.iter().collect();
            list.sort_unstable_by_key(|c| c.id.0);
            // A chunk sent twice in one request is recorded (and counted) once.
            list.dedup_by_key(|c| c.id);
            for c in list {
                let known = chunks
                    .get(&c.id.0)?
                    .map(|g| dec::<ChunkRec>(g.value()))
                    .transpose()?;
                let rec = match known {
                    Some(r) => {
                        let mut r = ChunkRec {
                            last_touched_us: now,
                            gc_candidate_since_us: None,
                            ..r
                        };
                        if r.bad_since_us.is_some() && healed.contains(&c.id) {
                            tracing::info!(chunk = %c.id, "bad chunk healed by an upload");
                            r.bad_since_us = None;
                            removed_bytes += r.stored_len;
                            added_bytes += c.stored_len;
                            r.stored_len = c.stored_len;
                            r.plain_len = c.plain_len;
                        }
                        r
                    }
                    None if !in_store.contains(&c.id) => {
                        tracing::warn!(chunk = %c.id, "uploaded chunk vanished before it was recorded (removed by GC); not recorded");
                        continue;
                    }
                    None => {
                        new += 1;
                        added_bytes += c.stored_len;
                        ChunkRec {
                            stored_len: c.stored_len,
                            plain_len: c.plain_len,
                            refcount: 0,
                            last_touched_us: now,
                            gc_candidate_since_us: None,
                            bad_since_us: None,
                        }
                    }
                };
                chunks.insert(&c.id.0, enc(&rec)?.as_slice())?;
                owned.insert((user_id, &c.id.0), ())?;
            }
            let total = meta.get(STORED_BYTES)?.map(|g| g.value()).unwrap_or(0);
            meta.insert(
                STORED_BYTES,
                (total + added_bytes).saturating_sub(removed_bytes),
            )?;
        }
        txn.commit()?;
        Ok(new)
    }

    /// The index records of `ids`, in order, from one read transaction (the dedupe of an upload in
    /// `crate::service::ingest`).
    pub fn chunk_records(&self, ids: &[ChunkId]) -> Result<Vec<Option<ChunkRec>>> {
        let txn = self.read()?;
        let t = txn.open_table(CHUNKS)?;
        ids.iter()
            .map(|id| t.get(&id.0)?.map(|g| dec(g.value())).transpose())
            .collect()
    }

    /// The index record of a chunk (tests, verify).
    pub fn chunk_record(&self, id: &ChunkId) -> Result<Option<ChunkRec>> {
        self.read()?
            .open_table(CHUNKS)?
            .get(&id.0)?
            .map(|g| dec(g.value()))
            .transpose()
    }
}

/// Adds `delta` to a chunk's refcount. A chunk missing from the index or a count going below zero
/// is a bug elsewhere: logged, never fatal for the commit.
pub(super) fn adjust_refcount(
    chunks: &mut redb::Table<&[u8; 32], &[u8]>,
    id: &[u8; 32],
    delta: i64,
) -> Result<()> {
    let Some(mut rec) = chunks
        .get(id)?
        .map(|g| dec::<ChunkRec>(g.value()))
        .transpose()?
    else {
        tracing::error!(chunk = %ChunkId(*id), delta, "refcount change for a chunk missing from the index");
        return Ok(());
    };
    rec.refcount = match rec.refcount.checked_add_signed(delta) {
        Some(v) => v,
        None => {
            tracing::error!(chunk = %ChunkId(*id), "refcount would go below zero");
            0
        }
    };
    if delta > 0 {
        // A new reference saves a GC candidate: it must be found unreferenced afresh.
        rec.gc_candidate_since_us = None;
    }
    chunks.insert(id, enc(&rec)?.as_slice())?;
    Ok(())
}

/// The ids to upload, and the present chunks whose lease must be renewed (with their records).
type CheckAnswer = (Vec<ChunkId>, Vec<(ChunkId, ChunkRec)>);

/// The reading part of [`Db::check`].
fn check_in(
    owned: &impl ReadableTable<(u64, &'static [u8; 32]), ()>,
    chunks: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    user_id: u64,
    ids: &[ChunkId],
    now: i64,
) -> Result<CheckAnswer> {
    let mut missing = Vec::new();
    let mut to_lease = Vec::new();
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(*id) {
            continue;
        }
        if owned.get((user_id, &id.0))?.is_none() {
            missing.push(*id);
            continue;
        }
        match chunks.get(&id.0)?.map(|g| dec::<ChunkRec>(g.value())) {
            None => missing.push(*id),
            Some(rec) => {
                let rec = rec?;
                if rec.bad_since_us.is_some() {
                    missing.push(*id);
                } else if rec.last_touched_us < now || rec.gc_candidate_since_us.is_some() {
                    to_lease.push((*id, rec));
                }
            }
        }
    }
    Ok((missing, to_lease))
}
