//! The write side of a backup: `check`, the upload of chunks, and `commit`.
//!
//! An upload request is handled in one go once its body is read: every part is verified (bounded
//! decode + blake3 against the claimed id, in parallel on every core), the ids are looked up in
//! one read transaction (global dedupe: a chunk the index knows is not written again, unless
//! verify marked it bad: then the verified bytes replace the damaged or lost ones, which heals
//! it), the new chunks are stored with one `put_many` (one sync), and the chunks are recorded in
//! the index in one transaction. A request with any bad part stores nothing and changes no
//! metadata: verification happens before anything is written.
//!
//! The record needs the store's word for the chunks the index lacks (see [`record_verified`]):
//! that lookup runs under the deletion fence and before the write transaction, never inside it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::protocol::{
    CommitEntry, CommitResponse, MAX_CHECK_IDS, MAX_COMMIT_ENTRIES, UploadResponse,
};
use asgard_core::stored::{self, DecodeError};
use asgard_core::{ChunkId, RawPath};

use super::ServiceError;
use crate::db::{Db, UploadedChunk, now_us};
use crate::store::ChunkStore;

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

/// Ingests the parts of one upload request (id, chunk in stored form), in request order: verify
/// all, dedupe against the index, heal chunks marked bad, store the new ones, record all. See the
/// module docs; a bad part fails the whole request before anything is written.
pub(crate) fn upload(
    db: &Db,
    store: &dyn ChunkStore,
    user_id: u64,
    parts: &[(ChunkId, Vec<u8>)],
) -> Result<UploadResponse> {
    if parts.is_empty() {
        return Ok(UploadResponse::default());
    }
    let verified = verify_all(parts)?;
    let ids: Vec<ChunkId> = parts.iter().map(|(id, _)| *id).collect();
    // Global dedupe: a chunk the index knows is not written again, unless verify marked it bad:
    // then these verified bytes replace the damaged (or lost) ones.
    let records = db.chunk_records(&ids)?;
    let mut response = UploadResponse {
        received: parts.len() as u32,
        ..UploadResponse::default()
    };
    let mut to_put: Vec<(ChunkId, &[u8])> = Vec::new();
    let mut put_lens: Vec<u64> = Vec::new();
    let mut healed_ids: Vec<ChunkId> = Vec::new();
    for ((id, bytes), rec) in parts.iter().zip(&records) {
        match rec {
            None => {
                to_put.push((*id, bytes));
                put_lens.push(bytes.len() as u64);
            }
            Some(r) if r.bad_since_us.is_some() => {
                if !healed_ids.contains(id) {
                    store.replace(id, bytes)?;
                    healed_ids.push(*id);
                    response.new_chunks += 1;
                    response.new_bytes += bytes.len() as u64;
                }
            }
            Some(_) => {}
        }
    }
    if !to_put.is_empty() {
        let written = store.put_many(&to_put)?;
        for (new, len) in written.into_iter().zip(put_lens) {
            if new {
                response.new_chunks += 1;
                response.new_bytes += len;
            }
        }
    }
    drop(to_put);
    record_verified(db, store, user_id, &verified, &healed_ids, now_us())?;
    Ok(response)
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
