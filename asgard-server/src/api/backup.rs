//! The backup endpoints: `check`, `upload` and `commit`.

use actix_multipart::Multipart;
use actix_web::{HttpResponse, web};
use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::protocol::{
    CheckRequest, CheckResponse, CommitEntry, CommitRequest, MAX_CHECK_IDS, MAX_COMMIT_ENTRIES,
    UploadResponse,
};
use asgard_core::stored::{self, DecodeError};
use asgard_core::{ChunkId, RawPath};
use futures_util::StreamExt;

use super::{ApiError, AppState, Authed, blocking};
use crate::db::{UploadedChunk, now_us};

/// A stored chunk may be this much larger than the largest plaintext (header byte, incompressible
/// zstd frame overhead).
const STORED_SLACK: usize = 64 * 1024;

pub async fn check(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    let ids = body.into_inner().chunks;
    if ids.len() > MAX_CHECK_IDS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_CHECK_IDS} ids per check"
        )));
    }
    let db = state.db.clone();
    let user = auth.0.user_id;
    let missing = blocking(move || Ok(db.check(user, &ids, now_us())?)).await?;
    Ok(HttpResponse::Ok().json(CheckResponse { missing }))
}

/// Reads every part (bounded per part and per request), then, in one blocking task: verifies all
/// parts in parallel on every core (decode with a size bound + blake3 against the claimed id),
/// looks all ids up in one read transaction, stores the new chunks with one `put_many` (one sync),
/// replaces the stored bytes of chunks marked bad (heals them), and records the chunks in redb in
/// one transaction. A request with any bad part stores nothing and changes no metadata.
pub async fn upload(
    state: web::Data<AppState>,
    auth: Authed,
    mut parts: Multipart,
) -> Result<HttpResponse, ApiError> {
    let max_total = state.config.max_upload_bytes;
    let max_part = MAX_CHUNK_SIZE as usize + STORED_SLACK;
    let mut total: u64 = 0;
    let mut received: Vec<(ChunkId, Vec<u8>)> = Vec::new();

    while let Some(field) = parts.next().await {
        let mut field = field.map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let name = field.name().unwrap_or_default().to_owned();
        let id: ChunkId = name
            .parse()
            .map_err(|_| ApiError::BadChunkId(name.chars().take(80).collect()))?;
        let mut bytes = Vec::new();
        while let Some(piece) = field.next().await {
            let piece = piece.map_err(|e| ApiError::BadRequest(e.to_string()))?;
            total += piece.len() as u64;
            if total > max_total {
                return Err(ApiError::UploadTooLarge(max_total));
            }
            if bytes.len() + piece.len() > max_part {
                return Err(ApiError::ChunkTooLarge(id.to_hex()));
            }
            bytes.extend_from_slice(&piece);
        }
        received.push((id, bytes));
    }
    if received.is_empty() {
        return Ok(HttpResponse::Ok().json(UploadResponse::default()));
    }

    let st = state.clone();
    let user = auth.0.user_id;
    let response = blocking(move || {
        let verified = verify_all(&received)?;
        let ids: Vec<ChunkId> = received.iter().map(|(id, _)| *id).collect();
        // Global dedupe: a chunk the index knows is not written again, unless verify marked it
        // bad: then these verified bytes replace the damaged (or lost) ones.
        let records = st.db.chunk_records(&ids)?;
        let mut response = UploadResponse {
            received: received.len() as u32,
            ..UploadResponse::default()
        };
        let mut to_put: Vec<(ChunkId, &[u8])> = Vec::new();
        let mut put_lens: Vec<u64> = Vec::new();
        let mut healed_ids: Vec<ChunkId> = Vec::new();
        for ((id, bytes), rec) in received.iter().zip(&records) {
            match rec {
                None => {
                    to_put.push((*id, bytes));
                    put_lens.push(bytes.len() as u64);
                }
                Some(r) if r.bad_since_us.is_some() => {
                    if !healed_ids.contains(id) {
                        st.store.replace(id, bytes)?;
                        healed_ids.push(*id);
                        response.new_chunks += 1;
                        response.new_bytes += bytes.len() as u64;
                    }
                }
                Some(_) => {}
            }
        }
        if !to_put.is_empty() {
            let written = st.store.put_many(&to_put)?;
            for (new, len) in written.into_iter().zip(put_lens) {
                if new {
                    response.new_chunks += 1;
                    response.new_bytes += len;
                }
            }
        }
        drop(to_put);
        st.db
            .record_upload_healing(user, &verified, &healed_ids, now_us(), &*st.store)?;
        Ok(response)
    })
    .await?;
    Ok(HttpResponse::Ok().json(response))
}

/// Verifies one part: bounded decode and blake3 against the claimed id.
fn verify_part(id: &ChunkId, bytes: &[u8]) -> Result<UploadedChunk, ApiError> {
    let plain =
        stored::decode_verified(bytes, id, MAX_CHUNK_SIZE as usize).map_err(|e| match e {
            DecodeError::HashMismatch { .. } => ApiError::ChunkHashMismatch(*id),
            DecodeError::TooLarge { .. } => ApiError::ChunkTooLarge(id.to_hex()),
            other => ApiError::ChunkCorrupt(*id, other.to_string()),
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
fn verify_all(parts: &[(ChunkId, Vec<u8>)]) -> Result<Vec<UploadedChunk>, ApiError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(parts.len());
    if threads <= 1 {
        return parts.iter().map(|(id, b)| verify_part(id, b)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<UploadedChunk, ApiError>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
                    Err(ApiError::Internal(
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
pub fn validate_entry(entry: &CommitEntry) -> Result<(), String> {
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

pub async fn commit(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<CommitRequest>,
) -> Result<HttpResponse, ApiError> {
    let entries = body.into_inner().entries;
    if entries.len() > MAX_COMMIT_ENTRIES {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_COMMIT_ENTRIES} entries per commit"
        )));
    }
    for e in &entries {
        validate_entry(e).map_err(ApiError::BadEntry)?;
    }
    let st = state.clone();
    let (user, device) = (auth.0.user_id, auth.0.device_id);
    let response = blocking(move || {
        Ok(st
            .db
            .commit(user, device, &entries, st.config.keep_versions, now_us())?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgard_core::ChunkParams;
    use asgard_core::protocol::{ChunkRef, FileMeta};

    fn entry(size: u64, lens: &[u32], hash: ChunkId) -> CommitEntry {
        CommitEntry::File {
            path: RawPath::from("/f"),
            meta: FileMeta {
                size,
                mtime_ns: 0,
                mode: 0,
                attributes: 0,
                hash,
                params: ChunkParams::default(),
                chunks: lens
                    .iter()
                    .map(|&len| ChunkRef {
                        id: ChunkId::of(b"c"),
                        len,
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn entries_are_validated() {
        let h = ChunkId::of(b"x");
        assert!(validate_entry(&entry(3, &[1, 2], h)).is_ok());
        assert!(validate_entry(&entry(4, &[1, 2], h)).is_err());
        assert!(validate_entry(&entry(0, &[], ChunkId::of(b""))).is_ok());
        assert!(validate_entry(&entry(0, &[], h)).is_err());
        let big = MAX_CHUNK_SIZE + 1;
        assert!(validate_entry(&entry(u64::from(big), &[big], h)).is_err());
        assert!(
            validate_entry(&CommitEntry::Deleted {
                path: RawPath(b"/a\0b".to_vec())
            })
            .is_err()
        );
        assert!(
            validate_entry(&CommitEntry::Deleted {
                path: RawPath::default()
            })
            .is_err()
        );
    }
}
