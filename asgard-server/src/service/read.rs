//! The read side: one file version as verified plaintext (with a byte range), the chunk lists of
//! many versions, chunks in stored form for the agent's restore pipeline, and the count of chunks
//! served.
//!
//! A version is read chunk by chunk ([`PlainStream`] yields one piece per chunk), so a reader holds
//! one chunk at a time whatever the file's size. Every chunk is decoded with a size bound and
//! checked against its id before a byte of it is handed out; a chunk that fails ends the stream,
//! and the reader must treat a short stream as failed. `fetch` ([`FetchGroups`]) does not decode
//! what it sends: the agent verifies every chunk, so the server's CPU goes into reading, not into
//! decompressing for nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use asgard_core::ChunkId;
use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::frames;
use asgard_core::protocol::{
    ChunkRef, MAX_FETCH_IDS, MAX_MANIFEST_IDS, ManifestResponse, RestoreRequest, VersionManifest,
};

use super::ServiceError;
use crate::db::Db;
use crate::store::ChunkStore;

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Chunks read from the store and sent to clients (restore, chunk and fetch answers) since start.
static CHUNKS_SERVED: AtomicU64 = AtomicU64::new(0);

/// The number behind the `asgard_chunks_served_total` metric.
pub(crate) fn chunks_served() -> u64 {
    CHUNKS_SERVED.load(Ordering::Relaxed)
}

fn count_served(n: u64) {
    CHUNKS_SERVED.fetch_add(n, Ordering::Relaxed);
}

/// A parsed `Range` header against a known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// No usable range: send everything (200). Malformed or multi-range headers land here too,
    /// which RFC 9110 allows.
    Full,
    /// Bytes `start..=end` (206).
    Part { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

/// Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range.
pub(crate) fn parse_range(header: Option<&str>, size: u64) -> RangeSpec {
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
fn load_chunk(store: &dyn ChunkStore, id: &ChunkId) -> Result<Vec<u8>> {
    let stored = store.get(id)?;
    count_served(1);
    asgard_core::stored::decode_verified(&stored, id, MAX_CHUNK_SIZE as usize).map_err(|e| {
        ServiceError::Damaged {
            id: *id,
            detail: e.to_string(),
        }
    })
}

/// One version's plaintext, or the requested range of it, as pieces of verified chunks (an
/// iterator; each `next` reads one chunk from the store, so call it where blocking is allowed).
/// After an error the iterator ends: the bytes before it are not the whole answer.
pub(crate) struct PlainStream {
    pub version_id: u64,
    /// The size of the whole file.
    pub size: u64,
    /// blake3 of the whole file's content.
    pub hash: Option<ChunkId>,
    /// The bytes `start..end` of the file are sent.
    pub start: u64,
    pub end: u64,
    /// A range was asked for and is granted (206 rather than 200).
    pub partial: bool,
    /// Where the version lives: its device and path, and the file's mtime and mode (the
    /// browser's download names the file and the zip keeps its time).
    pub device_id: u64,
    pub path: Vec<u8>,
    pub mtime_ns: i64,
    pub mode: u32,
    store: Arc<dyn ChunkStore>,
    /// The chunks overlapping `start..end`, each with the slice of it to send (skip, take).
    plan: std::vec::IntoIter<(ChunkId, usize, usize)>,
}

impl PlainStream {
    /// Whether every piece has been read, without touching the store.
    pub(crate) fn is_done(&self) -> bool {
        self.plan.len() == 0
    }
}

impl Iterator for PlainStream {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (id, skip, take) = self.plan.next()?;
        let item = match load_chunk(&*self.store, &id) {
            Ok(mut plain) if plain.len() >= skip + take => {
                plain.truncate(skip + take);
                if skip > 0 {
                    plain.drain(..skip);
                }
                Ok(plain)
            }
            Ok(_) => {
                tracing::error!(chunk = %id, version = self.version_id, "chunk shorter than recorded");
                Err(ServiceError::Damaged {
                    id,
                    detail: "chunk shorter than recorded".into(),
                })
            }
            Err(e) => {
                tracing::error!(chunk = %id, version = self.version_id, error = %e, "restore aborted");
                Err(e)
            }
        };
        if item.is_err() {
            self.plan = Vec::new().into_iter();
        }
        Some(item)
    }
}

/// `restore`: finds the version (by id, or the newest of a path at or before a time, see
/// [`Db::find_version`]) and plans the chunks of the range `range` (a `Range` header's text) asks
/// for. A symbolic link or a folder has no content to read (all it holds is in the listing).
pub(crate) fn restore(
    db: &Db,
    store: Arc<dyn ChunkStore>,
    user_id: u64,
    device_id: u64,
    req: &RestoreRequest,
    range: Option<&str>,
) -> Result<PlainStream> {
    if req.version_id.is_none() && req.path.is_none() {
        return Err(ServiceError::BadRequest(
            "version_id or path required".into(),
        ));
    }
    let (version_id, rec) = db.find_version(
        user_id,
        device_id,
        req.version_id,
        req.device.as_deref(),
        req.path.as_ref(),
        req.at_us,
    )?;
    if !rec.has_content() {
        // No id in the text: the caller knows the version by its opaque id only.
        return Err(ServiceError::BadRequest(if rec.is_dir() {
            "the version is a folder: all it holds is in the listing".into()
        } else {
            "the version is a symbolic link: its target is in the listing".into()
        }));
    }
    let size = rec.size;
    let (start, end, partial) = match parse_range(range, size) {
        RangeSpec::Full => (0, size, false),
        RangeSpec::Part { start, end } => (start, end + 1, true),
        RangeSpec::Unsatisfiable => return Err(ServiceError::RangeNotSatisfiable(size)),
    };
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
    Ok(PlainStream {
        version_id,
        size,
        hash: rec.hash.map(ChunkId),
        start,
        end,
        partial,
        device_id: rec.device_id,
        path: rec.path,
        mtime_ns: rec.mtime_ns,
        mode: rec.mode,
        store,
        plan: plan.into_iter(),
    })
}

/// One chunk in stored form, if `user_id` owns it (another user's chunk is "not found").
pub(crate) fn stored_chunk(
    db: &Db,
    store: &dyn ChunkStore,
    user_id: u64,
    id: &ChunkId,
) -> Result<Vec<u8>> {
    if !db.owns_chunk(user_id, id)? {
        return Err(ServiceError::NotFound);
    }
    let bytes = store.get(id)?;
    count_served(1);
    Ok(bytes)
}

/// `manifest`: the chunk lists of the user's versions `ids` (any of the user's devices), in
/// request order; ids that do not exist, belong to someone else, are deletion markers, symbolic
/// links or folders are listed as missing. At most [`MAX_MANIFEST_IDS`].
pub(crate) fn manifests(db: &Db, user_id: u64, ids: &[u64]) -> Result<ManifestResponse> {
    if ids.len() > MAX_MANIFEST_IDS {
        return Err(ServiceError::BadRequest(format!(
            "{} version ids, at most {MAX_MANIFEST_IDS}",
            ids.len()
        )));
    }
    let recs = db.user_versions(user_id, ids)?;
    let mut resp = ManifestResponse {
        versions: Vec::with_capacity(recs.len()),
        missing: Vec::new(),
    };
    for (&id, rec) in ids.iter().zip(recs) {
        match rec {
            Some(rec) if rec.has_content() => resp.versions.push(VersionManifest {
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
            }),
            _ => resp.missing.push(id),
        }
    }
    Ok(resp)
}

/// Frames of one fetch answer are read from the store in groups of about this many bytes (one
/// blocking call each), so the answer never holds more than a group and one chunk.
const FETCH_GROUP_BYTES: usize = 1 << 20;
/// ... and of at most this many chunks.
const FETCH_GROUP_CHUNKS: usize = 64;

/// The frames of a `fetch` answer ([`asgard_core::frames`]), one group of chunks per `next`
/// (a blocking read from the store). A chunk that cannot be read becomes a "missing" frame; the
/// details stay in the server log.
pub(crate) struct FetchGroups {
    store: Arc<dyn ChunkStore>,
    ids: Vec<ChunkId>,
    next: usize,
}

impl FetchGroups {
    /// Whether every chunk has been read (the answer is complete), without touching the store.
    pub(crate) fn is_done(&self) -> bool {
        self.next >= self.ids.len()
    }
}

impl Iterator for FetchGroups {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.is_done() {
            return None;
        }
        let mut out = Vec::new();
        let mut taken = 0;
        while let Some(id) = self.ids.get(self.next) {
            if taken >= FETCH_GROUP_CHUNKS || out.len() >= FETCH_GROUP_BYTES {
                break;
            }
            self.next += 1;
            taken += 1;
            match self.store.get(id) {
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
        Some(out)
    }
}

/// `fetch`: the chunks `ids` in stored form, in request order. Refused as a whole (not found)
/// when the user may not read one of them. At most [`MAX_FETCH_IDS`].
pub(crate) fn fetch(
    db: &Db,
    store: Arc<dyn ChunkStore>,
    user_id: u64,
    ids: Vec<ChunkId>,
) -> Result<FetchGroups> {
    if ids.len() > MAX_FETCH_IDS {
        return Err(ServiceError::BadRequest(format!(
            "{} chunk ids, at most {MAX_FETCH_IDS}",
            ids.len()
        )));
    }
    if db.first_unowned_chunk(user_id, &ids)?.is_some() {
        return Err(ServiceError::NotFound);
    }
    Ok(FetchGroups {
        store,
        ids,
        next: 0,
    })
}

#[cfg(test)]
mod tests;
