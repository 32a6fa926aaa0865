//! `POST /api/restore` (one file version as plaintext, `Range` supported),
//! `GET /api/chunks/{id}` (one chunk in stored form), and the two batched endpoints of the agent's
//! restore pipeline: `POST /api/manifest` (the chunk lists of many versions) and `POST /api/fetch`
//! (many chunks in stored form, streamed as frames, see [`asgard_core::frames`]).
//!
//! `fetch` does not decode what it sends: the agent verifies every chunk (bounded decode + blake3
//! against its id), so the server's CPU goes into reading, not into decompressing for nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::ChunkId;
use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::frames;
use asgard_core::protocol::{
    ChunkRef, FetchRequest, HEADER_FILE_HASH, HEADER_VERSION_ID, MAX_FETCH_IDS, MAX_MANIFEST_IDS,
    ManifestRequest, ManifestResponse, RestoreRequest, VersionManifest,
};
use futures_util::{StreamExt, stream};

use super::{ApiError, AppState, Authed, blocking};
use crate::store::ChunkStore;

/// Chunks read from the store and sent to clients (restore, chunk and fetch answers) since start.
static CHUNKS_SERVED: AtomicU64 = AtomicU64::new(0);

/// The number behind the `asgard_chunks_served_total` metric.
pub fn chunks_served() -> u64 {
    CHUNKS_SERVED.load(Ordering::Relaxed)
}

fn count_served(n: u64) {
    CHUNKS_SERVED.fetch_add(n, Ordering::Relaxed);
}

/// A parsed `Range` header against a known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// No usable range: send everything (200). Malformed or multi-range headers land here too,
    /// which RFC 9110 allows.
    Full,
    /// Bytes `start..=end` (206).
    Part { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

/// Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeSpec {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.is_empty(), b.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match num(b) {
            None => RangeSpec::Full,
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if size == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Part {
                start: size.saturating_sub(n),
                end: size - 1,
            },
        },
        // bytes=a-
        (false, true) => match num(a) {
            None => RangeSpec::Full,
            Some(s) if s >= size => RangeSpec::Unsatisfiable,
            Some(s) => RangeSpec::Part {
                start: s,
                end: size - 1,
            },
        },
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s <= e => {
                if s >= size {
                    RangeSpec::Unsatisfiable
                } else {
                    RangeSpec::Part {
                        start: s,
                        end: e.min(size - 1),
                    }
                }
            }
            _ => RangeSpec::Full,
        },
        (true, true) => RangeSpec::Full,
    }
}

/// Reads, decodes and verifies one chunk from the store.
fn load_chunk(store: &dyn ChunkStore, id: &ChunkId) -> Result<Vec<u8>, ApiError> {
    let stored = store.get(id)?;
    count_served(1);
    asgard_core::stored::decode_verified(&stored, id, MAX_CHUNK_SIZE as usize)
        .map_err(|e| ApiError::Internal(format!("stored chunk {id} is damaged: {e}")))
}

pub async fn restore(
    state: web::Data<AppState>,
    auth: Authed,
    req: HttpRequest,
    body: web::Json<RestoreRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner();
    if r.version_id.is_none() && r.path.is_none() {
        return Err(ApiError::BadRequest("version_id or path required".into()));
    }
    let db = state.db.clone();
    let a = auth.0.clone();
    let (version_id, rec) = blocking(move || {
        Ok(db.find_version(
            a.user_id,
            a.device_id,
            r.version_id,
            r.device.as_deref(),
            r.path.as_ref(),
            r.at_us,
        )?)
    })
    .await?;
    if rec.symlink_target.is_some() {
        return Err(ApiError::BadRequest(format!(
            "version {version_id} is a symbolic link: its target is in the listing"
        )));
    }

    let size = rec.size;
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (start, end, partial) = match parse_range(range_header, size) {
        RangeSpec::Full => (0, size, false),
        RangeSpec::Part { start, end } => (start, end + 1, true),
        RangeSpec::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable(size)),
    };

    // The chunks overlapping [start, end), each with the slice of it to send.
    let mut plan = Vec::new();
    let mut offset = 0u64;
    for (id, len) in &rec.chunks {
        let len = u64::from(*len);
        let (from, to) = (offset, offset + len);
        offset = to;
        if to <= start || from >= end {
            continue;
        }
        let skip = start.saturating_sub(from) as usize;
        let take = (end.min(to) - from.max(start)) as usize;
        plan.push((ChunkId(*id), skip, take));
    }

    let store: Arc<dyn ChunkStore> = state.store.clone();
    let body = stream::unfold(plan.into_iter(), move |mut plan| {
        let store = store.clone();
        async move {
            let (id, skip, take) = plan.next()?;
            let loaded = blocking(move || load_chunk(&*store, &id)).await;
            let item = match loaded {
                Ok(plain) if plain.len() >= skip + take => {
                    Ok(Bytes::from(plain).slice(skip..skip + take))
                }
                Ok(_) => {
                    tracing::error!(chunk = %id, version = version_id, "chunk shorter than recorded");
                    Err(std::io::Error::other("chunk shorter than recorded"))
                }
                Err(e) => {
                    tracing::error!(chunk = %id, version = version_id, error = %e, "restore aborted");
                    Err(std::io::Error::other(e.to_string()))
                }
            };
            // After an error the stream ends: the client sees a short body and must not trust it.
            let rest = if item.is_ok() {
                plan
            } else {
                Vec::new().into_iter()
            };
            Some((item, rest))
        }
    });

    let mut resp = if partial {
        let mut b = HttpResponse::PartialContent();
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", end - 1),
        ));
        b
    } else {
        HttpResponse::Ok()
    };
    resp.content_type("application/octet-stream")
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((HEADER_VERSION_ID, version_id.to_string()))
        .insert_header((
            HEADER_FILE_HASH,
            rec.hash.map(|h| ChunkId(h).to_hex()).unwrap_or_default(),
        ));
    Ok(resp.body(SizedStream::new(end - start, body)))
}

pub async fn chunk(
    state: web::Data<AppState>,
    auth: Authed,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let text = path.into_inner();
    let id: ChunkId = text
        .parse()
        .map_err(|_| ApiError::BadChunkId(text.chars().take(80).collect()))?;
    let st = state.clone();
    let user = auth.0.user_id;
    let bytes = blocking(move || {
        if !st.db.owns_chunk(user, &id)? {
            return Err(ApiError::NotFound);
        }
        Ok(st.store.get(&id)?)
    })
    .await?;
    count_served(1);
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(bytes))
}

/// `POST /api/manifest`: the chunk lists of the caller's versions (any of the user's devices).
pub async fn manifest(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<ManifestRequest>,
) -> Result<web::Json<ManifestResponse>, ApiError> {
    let ids = body.into_inner().version_ids;
    if ids.len() > MAX_MANIFEST_IDS {
        return Err(ApiError::BadRequest(format!(
            "{} version ids, at most {MAX_MANIFEST_IDS}",
            ids.len()
        )));
    }
    let db = state.db.clone();
    let user = auth.0.user_id;
    let recs = blocking(move || {
        let recs = db.user_versions(user, &ids)?;
        Ok(ids.into_iter().zip(recs).collect::<Vec<_>>())
    })
    .await?;
    let mut resp = ManifestResponse {
        versions: Vec::with_capacity(recs.len()),
        missing: Vec::new(),
    };
    for (id, rec) in recs {
        match rec {
            Some(rec) if !rec.deleted && rec.symlink_target.is_none() => {
                resp.versions.push(VersionManifest {
                    id,
                    size: rec.size,
                    params: rec.params,
                    chunks: rec
                        .chunks
                        .iter()
                        .map(|&(id, len)| ChunkRef {
                            id: ChunkId(id),
                            len,
                        })
                        .collect(),
                })
            }
            _ => resp.missing.push(id),
        }
    }
    Ok(web::Json(resp))
}

/// Frames of one fetch answer are read from the store in groups of about this many bytes (one
/// blocking call each), so the answer never holds more than a group and one chunk.
const FETCH_GROUP_BYTES: usize = 1 << 20;
/// ... and of at most this many chunks.
const FETCH_GROUP_CHUNKS: usize = 64;

/// Reads chunks from `ids[*next..]` into frames until a group is full.
fn read_group(store: &dyn ChunkStore, ids: &[ChunkId], next: &mut usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut taken = 0;
    while let Some(id) = ids.get(*next) {
        if taken >= FETCH_GROUP_CHUNKS || out.len() >= FETCH_GROUP_BYTES {
            break;
        }
        *next += 1;
        taken += 1;
        match store.get(id) {
            Ok(stored) => match frames::data_header(id, stored.len()) {
                Some(h) => {
                    count_served(1);
                    out.extend_from_slice(&h);
                    out.extend_from_slice(&stored);
                }
                None => out.extend(frames::missing_frame(id, "stored chunk too large")),
            },
            Err(e) => {
                // Details (paths) stay in the server log.
                tracing::error!(chunk = %id, error = %e, "fetch: chunk cannot be read");
                out.extend(frames::missing_frame(id, "cannot be read from the store"));
            }
        }
    }
    out
}

/// `POST /api/fetch`: the requested chunks in stored form, one frame each, in request order,
/// streamed from the store. Refused as a whole (404) when the user may not read one of them.
pub async fn fetch(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<FetchRequest>,
) -> Result<HttpResponse, ApiError> {
    let ids = body.into_inner().chunks;
    if ids.len() > MAX_FETCH_IDS {
        return Err(ApiError::BadRequest(format!(
            "{} chunk ids, at most {MAX_FETCH_IDS}",
            ids.len()
        )));
    }
    let db = state.db.clone();
    let user = auth.0.user_id;
    let ids = blocking(move || match db.first_unowned_chunk(user, &ids)? {
        Some(_) => Err(ApiError::NotFound),
        None => Ok(ids),
    })
    .await?;
    let ids: Arc<[ChunkId]> = ids.into();
    let store: Arc<dyn ChunkStore> = state.store.clone();
    let body = stream::unfold(0usize, move |next| {
        let (store, ids) = (store.clone(), ids.clone());
        async move {
            if next >= ids.len() {
                return None;
            }
            let read = blocking(move || {
                let mut next = next;
                let group = read_group(&*store, &ids, &mut next);
                Ok((group, next))
            })
            .await;
            Some(match read {
                Ok((group, next)) => (Ok::<_, std::io::Error>(Bytes::from(group)), next),
                // The blocking pool failed: end the body; the agent sees the missing frames.
                Err(e) => (Err(std::io::Error::other(e.to_string())), usize::MAX),
            })
        }
    })
    .boxed_local();
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeSpec::*;
        let p = |h: &str, size| parse_range(Some(h), size);
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(p("bytes=0-4", 10), Part { start: 0, end: 4 });
        assert_eq!(p("bytes=5-", 10), Part { start: 5, end: 9 });
        assert_eq!(p("bytes=-3", 10), Part { start: 7, end: 9 });
        assert_eq!(p("bytes=-30", 10), Part { start: 0, end: 9 });
        assert_eq!(p("bytes=8-100", 10), Part { start: 8, end: 9 });
        assert_eq!(p("bytes=10-", 10), Unsatisfiable);
        assert_eq!(p("bytes=10-12", 10), Unsatisfiable);
        assert_eq!(p("bytes=-0", 10), Unsatisfiable);
        assert_eq!(p("bytes=0-", 0), Unsatisfiable);
        assert_eq!(p("bytes=5-2", 10), Full);
        assert_eq!(p("bytes=0-1,4-5", 10), Full);
        assert_eq!(p("items=0-1", 10), Full);
        assert_eq!(p("bytes=a-b", 10), Full);
    }
}
