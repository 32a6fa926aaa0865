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

/// Reads every part, verifies it (decode with a size bound + blake3 against the claimed id) and
/// puts new chunks into the store; a chunk marked bad gets its stored bytes replaced (healed). Only when every part verified are the chunks recorded in redb,
/// in one transaction; a request with any bad part changes no metadata.
pub async fn upload(
    state: web::Data<AppState>,
    auth: Authed,
    mut parts: Multipart,
) -> Result<HttpResponse, ApiError> {
    let max_total = state.config.max_upload_bytes;
    let max_part = MAX_CHUNK_SIZE as usize + STORED_SLACK;
    let mut total: u64 = 0;
    let mut verified = Vec::new();
    let mut healed_ids = Vec::new();
    let mut response = UploadResponse::default();

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

        let st = state.clone();
        let (chunk, new, healed) = blocking(move || {
            let plain = stored::decode_verified(&bytes, &id, MAX_CHUNK_SIZE as usize).map_err(
                |e| match e {
                    DecodeError::HashMismatch { .. } => ApiError::ChunkHashMismatch(id),
                    DecodeError::TooLarge { .. } => ApiError::ChunkTooLarge(id.to_hex()),
                    other => ApiError::ChunkCorrupt(id, other.to_string()),
                },
            )?;
            // Global dedupe: a chunk the index knows is not written again, unless verify marked
            // it bad: then these verified bytes replace the damaged (or lost) ones.
            let (new, healed) = match st.db.chunk_record(&id)? {
                None => (st.store.put(&id, &bytes)?, false),
                Some(rec) if rec.bad_since_us.is_some() => {
                    st.store.replace(&id, &bytes)?;
                    (true, true)
                }
                Some(_) => (false, false),
            };
            let chunk = UploadedChunk {
                id,
                stored_len: bytes.len() as u64,
                plain_len: plain.len() as u32,
            };
            Ok((chunk, new, healed))
        })
        .await?;
        if healed {
            healed_ids.push(chunk.id);
        }
        response.received += 1;
        if new {
            response.new_chunks += 1;
            response.new_bytes += chunk.stored_len;
        }
        verified.push(chunk);
    }

    if !verified.is_empty() {
        let st = state.clone();
        let user = auth.0.user_id;
        blocking(move || {
            Ok(st
                .db
                .record_upload_healing(user, &verified, &healed_ids, now_us(), &*st.store)?)
        })
        .await?;
    }
    Ok(HttpResponse::Ok().json(response))
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
