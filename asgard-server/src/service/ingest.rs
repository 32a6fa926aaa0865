//! The write side of a backup: `check`, the upload of chunks, and `commit`.
//!
//! An upload request arrives as a stream and is ingested in **slices** of at most
//! [`SLICE_BYTES`] (see [`Upload`]), so that its memory stays bounded: every part of a slice is
//! verified (bounded decode + blake3 against the claimed id, in parallel on every core), the ids
//! are looked up in one read transaction (global dedupe: a chunk the index knows is not written
//! again, unless verify marked it bad: then the verified bytes replace the damaged or lost ones,
//! which heals it), and the slice's new chunks are stored with one `put_many` (one sync). When
//! the whole body was read and every slice was good, all chunks of the request are recorded in
//! the index in one transaction. A request with any bad part records nothing and changes no
//! metadata; a bad part stores nothing of its slice, and the chunks of earlier slices of that
//! request stay in the store unrecorded, as after a crash between store and record: a later
//! upload of them writes nothing again, and the GC sweeps those nobody records as orphans.
//!
//! **No oracle.** Storage is deduplicated across users, the knowledge of what is stored is not:
//! `check` answers from the user's own chunks, an upload counts as new every chunk new to this
//! user, and a chunk the store had for someone else is answered no sooner than one written
//! ([`PutCost`]): no answer, body or timing, tells a user whether anybody else stores something.
//!
//! The record needs the store's word for the chunks the index lacks (see [`record_verified`]):
//! that lookup runs under the deletion fence and before the write transaction, never inside it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::protocol::{
    CommitEntry, CommitResponse, MAX_CHECK_IDS, MAX_COMMIT_ENTRIES, UploadResponse,
};
use asgard_core::stored::{self, DecodeError};
use asgard_core::{ChunkId, RawPath};

use super::ServiceError;
use crate::db::{Db, UploadedChunk, now_us};
use crate::store::ChunkStore;

mod putcost;
pub use putcost::PutCost;

/// A stored chunk may be this much larger than the largest plaintext (header byte, incompressible
/// zstd frame overhead).
const STORED_SLACK: usize = 64 * 1024;

/// The largest part (a chunk in stored form) an upload may carry; the reader of the request body
/// refuses a longer one before it is complete.
pub(crate) const MAX_PART_BYTES: usize = MAX_CHUNK_SIZE as usize + STORED_SLACK;

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// `check`: the distinct ids of `ids` that the user must upload (see [`Db::check`], which also
/// leases the others). At most [`MAX_CHECK_IDS`] per call.
pub(crate) fn check(db: &Db, user_id: u64, ids: &[ChunkId], now: i64) -> Result<Vec<ChunkId>> {
    if ids.len() > MAX_CHECK_IDS {
        return Err(ServiceError::BadRequest(format!(
            "at most {MAX_CHECK_IDS} ids per check"
        )));
    }
    Ok(db.check(user_id, ids, now)?)
}

/// The most bytes of parts handed to the store in one `put_many`: the upload handler collects
/// parts of a streamed body up to this much (or one part, if larger) and ingests them as a slice.
pub(crate) const SLICE_BYTES: usize = 16 << 20;

/// The most parts one upload request may carry (the agent sends at most 2,000): bounds the
/// bookkeeping an upload keeps until it is recorded.
pub(crate) const MAX_UPLOAD_PARTS: usize = 10_000;

/// One upload request being ingested slice by slice (see the module docs): the chunks verified
/// and stored so far, recorded by [`Upload::finish`] when the whole request was good.
#[derive(Debug)]
pub(crate) struct Upload {
    user_id: u64,
    verified: Vec<UploadedChunk>,
    healed: Vec<ChunkId>,
    /// Ids counted in the answer already (a chunk sent twice counts once).
    counted: HashSet<ChunkId>,
    response: UploadResponse,
    /// How long the answer must still wait so that chunks deduplicated against other users'
    /// data took as long as storing them would have (see [`PutCost`]).
    pad: Duration,
}

impl Upload {
    pub(crate) fn new(user_id: u64) -> Upload {
        Upload {
            user_id,
            verified: Vec::new(),
            healed: Vec::new(),
            counted: HashSet::new(),
            response: UploadResponse::default(),
            pad: Duration::ZERO,
        }
    }

    /// Ingests one slice of parts (id, chunk in stored form): verify all of them, then dedupe
    /// against the index, heal chunks marked bad, store the new ones with one `put_many`. Nothing
    /// is recorded yet. A bad part fails the slice before any of its parts is stored.
    ///
    /// The answer counts a chunk as new when it is new **to this user** (the user did not own it
    /// before), whether the store had it for someone else or not: only the storage is shared,
    /// never the knowledge of what it holds. For the same reason a chunk new to this user that
    /// the store already has is answered no faster than one that had to be written: `cost` says
    /// what writing it would have taken, and the difference is added to [`Upload::pad`].
    pub(crate) fn add_slice(
        &mut self,
        db: &Db,
        store: &dyn ChunkStore,
        parts: &[(ChunkId, Vec<u8>)],
        cost: &PutCost,
    ) -> Result<()> {
        let verified = verify_all(parts)?;
        self.add_verified(db, store, parts, verified, cost)
    }

    /// [`Upload::add_slice`] for parts verified already (`verified` in their order).
    fn add_verified(
        &mut self,
        db: &Db,
        store: &dyn ChunkStore,
        parts: &[(ChunkId, Vec<u8>)],
        verified: Vec<UploadedChunk>,
        cost: &PutCost,
    ) -> Result<()> {
        if parts.is_empty() {
            return Ok(());
        }
        let ids: Vec<ChunkId> = parts.iter().map(|(id, _)| *id).collect();
        // Global dedupe: a chunk the index knows is not written again, unless verify marked it
        // bad: then these verified bytes replace the damaged (or lost) ones.
        let records = db.chunk_records(&ids)?;
        let owned = db.owned_by(self.user_id, &ids)?;
        self.response.received += parts.len() as u32;
        let mut to_put: Vec<(ChunkId, &[u8])> = Vec::new();
        let mut put_bytes = 0u64;
        // Bytes of chunks new to this user that the store had already: not written.
        let mut hidden_bytes = 0u64;
        for (((id, bytes), rec), owned) in parts.iter().zip(&records).zip(owned) {
            let len = bytes.len() as u64;
            let new_to_user = !(owned && rec.is_some());
            let first = !self.counted.contains(id);
            match rec {
                None => {
                    if first {
                        to_put.push((*id, bytes));
                        put_bytes += len;
                    }
                }
                Some(r) if r.bad_since_us.is_some() => {
                    if !self.healed.contains(id) {
                        store.replace(id, bytes)?;
                        self.healed.push(*id);
                    }
                }
                Some(_) => {
                    if new_to_user && first {
                        hidden_bytes += len;
                    }
                }
            }
            let healing = rec.as_ref().is_some_and(|r| r.bad_since_us.is_some());
            if first && (new_to_user || healing) {
                self.counted.insert(*id);
                self.response.new_chunks += 1;
                self.response.new_bytes += len;
            }
        }
        let started = Instant::now();
        if !to_put.is_empty() {
            store.put_many(&to_put)?;
            cost.observe(put_bytes, started.elapsed());
        }
        if hidden_bytes > 0 {
            let target = cost.estimate(put_bytes + hidden_bytes);
            self.pad += target.saturating_sub(started.elapsed());
        }
        self.verified.extend(verified);
        Ok(())
    }

    /// How long the answer should wait before it is sent (see [`Upload::add_slice`]).
    pub(crate) fn pad(&self) -> Duration {
        self.pad
    }

    /// Records every chunk of the request (see [`record_verified`]) and returns the answer.
    pub(crate) fn finish(self, db: &Db, store: &dyn ChunkStore) -> Result<UploadResponse> {
        if !self.verified.is_empty() {
            record_verified(
                db,
                store,
                self.user_id,
                &self.verified,
                &self.healed,
                now_us(),
            )?;
        }
        Ok(self.response)
    }
}

/// Ingests the parts of one upload request held whole (tests): [`Upload`] over slices of
/// at most [`SLICE_BYTES`], all verified before the first is stored, so a bad part stores
/// nothing and records nothing. Returns the answer and the time it should wait (see
/// [`Upload::pad`]).
#[cfg(test)]
pub(crate) fn upload(
    db: &Db,
    store: &dyn ChunkStore,
    user_id: u64,
    parts: &[(ChunkId, Vec<u8>)],
    cost: &PutCost,
) -> Result<(UploadResponse, Duration)> {
    let mut verified = verify_all(parts)?.into_iter();
    let mut up = Upload::new(user_id);
    let mut start = 0;
    while start < parts.len() {
        let mut end = start + 1;
        let mut bytes = parts[start].1.len();
        while end < parts.len() && bytes + parts[end].1.len() <= SLICE_BYTES {
            bytes += parts[end].1.len();
            end += 1;
        }
        let slice_verified = verified.by_ref().take(end - start).collect();
        up.add_verified(db, store, &parts[start..end], slice_verified, cost)?;
        start = end;
    }
    let pad = up.pad();
    Ok((up.finish(db, store)?, pad))
}

/// Records verified chunks whose bytes are in the store (or were skipped because the index knew
/// them), clearing the bad mark of those in `healed` (see [`Db::record_upload_healing`]). Returns
/// the number of chunks new to the index.
///
/// Holds the deletion fence shared ([`Db::upload_fence`]) from the lookup to the end of the
/// record: it reads which chunks the index lacks, asks the store which of those it has (one
/// `exists_many`, before the write transaction: on an object store that is network round trips,
/// which must not hold redb's one writer), then records. Under the fence the GC removes no index
/// entry and deletes no file, so the store's answer is still true when the record is written; a
/// chunk the store lacks (the GC removed it after the upload skipped or wrote it) is left out,
/// and a commit that needs it is refused.
pub fn record_verified(
    db: &Db,
    store: &dyn ChunkStore,
    user_id: u64,
    list: &[UploadedChunk],
    healed: &[ChunkId],
    now: i64,
) -> Result<u32> {
    let fence = db.upload_fence();
    let mut ids: Vec<ChunkId> = list.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let unknown = db.chunks_unknown(&ids)?;
    let in_store: HashSet<ChunkId> = if unknown.is_empty() {
        HashSet::new()
    } else {
        unknown
            .iter()
            .zip(store.exists_many(&unknown)?)
            .filter_map(|(id, has)| has.then_some(*id))
            .collect()
    };
    Ok(db.record_upload_healing(&fence, user_id, list, healed, now, &in_store)?)
}

/// Verifies one part: bounded decode and blake3 against the claimed id.
fn verify_part(id: &ChunkId, bytes: &[u8]) -> Result<UploadedChunk> {
    let plain =
        stored::decode_verified(bytes, id, MAX_CHUNK_SIZE as usize).map_err(|e| match e {
            DecodeError::HashMismatch { .. } => ServiceError::ChunkHashMismatch(*id),
            DecodeError::TooLarge { .. } => ServiceError::ChunkTooLarge(*id),
            other => ServiceError::ChunkCorrupt(*id, other.to_string()),
        })?;
    Ok(UploadedChunk {
        id: *id,
        stored_len: bytes.len() as u64,
        plain_len: plain.len() as u32,
    })
}

/// Verifies every part, on as many threads as there are cores (each takes the next unverified
/// part, so one large chunk does not hold up the small ones). Returns the chunks in request order,
/// or the error of the first bad part in request order.
fn verify_all(parts: &[(ChunkId, Vec<u8>)]) -> Result<Vec<UploadedChunk>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(parts.len());
    if threads <= 1 {
        return parts.iter().map(|(id, b)| verify_part(id, b)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<UploadedChunk>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((id, bytes)) = parts.get(i) else {
                            return out;
                        };
                        out.push((i, verify_part(id, bytes)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(out) => out,
                Err(_) => vec![(
                    0,
                    Err(ServiceError::Internal(
                        "chunk verification thread failed".into(),
                    )),
                )],
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Checks one commit entry on its own (before any database work).
pub(crate) fn validate_entry(entry: &CommitEntry) -> Result<(), String> {
    let path: &RawPath = entry.path();
    if path.0.is_empty() {
        return Err("empty path".into());
    }
    if path.0.contains(&0) {
        return Err(format!("{path}: NUL byte in path"));
    }
    if let CommitEntry::Symlink { target, .. } = entry
        && (target.0.is_empty() || target.0.contains(&0))
    {
        return Err(format!(
            "{path}: a symbolic link needs a target without NUL bytes"
        ));
    }
    if let CommitEntry::File { meta, .. } = entry {
        if !meta.lengths_add_up() {
            return Err(format!("{path}: chunk lengths do not add up to the size"));
        }
        meta.params.validate().map_err(|e| format!("{path}: {e}"))?;
        if let Some(c) = meta.chunks.iter().find(|c| c.len > MAX_CHUNK_SIZE) {
            return Err(format!(
                "{path}: chunk {} is larger than {MAX_CHUNK_SIZE}",
                c.id
            ));
        }
        if meta.chunks.is_empty() && meta.hash != ChunkId::of(b"") {
            return Err(format!(
                "{path}: an empty file must have the hash of empty content"
            ));
        }
    }
    Ok(())
}

/// `commit`: validates every entry (at most [`MAX_COMMIT_ENTRIES`]), then commits them for the
/// device all or nothing (see [`Db::commit`]; `keep` is the configured `keep_versions`).
pub(crate) fn commit(
    db: &Db,
    user_id: u64,
    device_id: u64,
    entries: &[CommitEntry],
    keep: u32,
    now: i64,
) -> Result<CommitResponse> {
    if entries.len() > MAX_COMMIT_ENTRIES {
        return Err(ServiceError::BadRequest(format!(
            "at most {MAX_COMMIT_ENTRIES} entries per commit"
        )));
    }
    for e in entries {
        validate_entry(e).map_err(ServiceError::BadEntry)?;
    }
    Ok(db.commit(user_id, device_id, entries, keep, now)?)
}

#[cfg(test)]
mod tests;
