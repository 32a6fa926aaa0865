//! The backup endpoints: `check`, `upload` and `commit` (the work is in `crate::service::ingest`).

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::ChunkId;
use asgard_core::protocol::{CheckRequest, CheckResponse, CommitRequest};
use futures_util::StreamExt;

use super::ids::{Kind, Perm};
use super::{ApiError, AppState, Authed, blocking};
use crate::db::now_us;
use crate::service::{bounds, ingest};

pub(crate) async fn check(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    let ids = body.into_inner().chunks;
    bounds::check(ids.len(), &state.config.limits)?;
    let db = state.db.clone();
    let user = auth.0.user_id;
    let missing = blocking(move || Ok(ingest::check(&db, user, &ids, now_us())?)).await?;
    Ok(HttpResponse::Ok().json(CheckResponse { missing }))
}

/// `POST /api/upload`: reserves the request's `Content-Length` in the upload budget (see
/// [`super::budget`]; 411 without one, 413 above `max_upload_bytes`, 503 `busy` when the budget
/// stays spent), then reads the multipart body as a stream and hands its parts to the ingest in
/// slices of at most [`ingest::SLICE_BYTES`] (see `crate::service::ingest`): the request holds
/// no more body bytes than its reservation (and, while the store writes a slice, its copy). The chunks are recorded once the whole body was read and
/// every part was good; a request with any bad part records nothing.
pub(crate) async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Authed,
    mut parts: Multipart,
) -> Result<HttpResponse, ApiError> {
    let max_total = state.config.max_upload_bytes;
    let length = content_length(&req)?;
    if length > max_total {
        return Err(ApiError::UploadTooLarge(max_total));
    }
    let reservation = state
        .upload_budget
        .reserve(length)
        .await
        .map_err(|_| ApiError::Busy)?;
    let max_part = ingest::MAX_PART_BYTES;
    let mut total: u64 = 0;
    let mut count = 0usize;
    let mut upload = ingest::Upload::new(auth.0.user_id);
    let mut slice: Vec<(ChunkId, Vec<u8>)> = Vec::new();
    let mut slice_bytes = 0usize;

    while let Some(field) = parts.next().await {
        let mut field = field.map_err(|e| ApiError::BadRequest(e.to_string()))?;
        count += 1;
        if count > ingest::MAX_UPLOAD_PARTS {
            return Err(ApiError::TooManyParts(ingest::MAX_UPLOAD_PARTS));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let id: ChunkId = name
            .parse()
            .map_err(|_| ApiError::BadChunkId(name.chars().take(80).collect()))?;
        // The pieces as they came, then one buffer of the exact size: no buffer grows by
        // doubling (which would hold up to twice a part, and leave the allocator fragmented).
        let mut pieces: Vec<web::Bytes> = Vec::new();
        let mut len = 0usize;
        while let Some(piece) = field.next().await {
            let piece = piece.map_err(|e| ApiError::BadRequest(e.to_string()))?;
            total += piece.len() as u64;
            if total > max_total {
                return Err(ApiError::UploadTooLarge(max_total));
            }
            len += piece.len();
            if len > max_part {
                return Err(ApiError::ChunkTooLarge(id.to_hex()));
            }
            pieces.push(piece);
        }
        let mut bytes = Vec::with_capacity(len);
        for p in pieces {
            bytes.extend_from_slice(&p);
        }
        if !slice.is_empty() && slice_bytes + bytes.len() > ingest::SLICE_BYTES {
            upload = ingest_slice(&state, upload, std::mem::take(&mut slice)).await?;
            slice_bytes = 0;
        }
        slice_bytes += bytes.len();
        slice.push((id, bytes));
    }
    upload = ingest_slice(&state, upload, slice).await?;
    let pad = upload.pad();
    let st = state.clone();
    let response = blocking(move || Ok(upload.finish(&st.db, &*st.store)?)).await?;
    drop(reservation);
    // Chunks the store had for someone else: answered no sooner than if they had been written.
    if !pad.is_zero() {
        actix_web::rt::time::sleep(pad).await;
    }
    Ok(HttpResponse::Ok().json(response))
}

/// Verifies and stores one slice of an upload in a blocking task.
async fn ingest_slice(
    state: &web::Data<AppState>,
    mut upload: ingest::Upload,
    slice: Vec<(ChunkId, Vec<u8>)>,
) -> Result<ingest::Upload, ApiError> {
    if slice.is_empty() {
        return Ok(upload);
    }
    let st = state.clone();
    blocking(move || {
        upload.add_slice(&st.db, &*st.store, &slice, &st.put_cost)?;
        Ok(upload)
    })
    .await
}

/// The request's `Content-Length`; 411 without a valid one.
fn content_length(req: &HttpRequest) -> Result<u64, ApiError> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or(ApiError::LengthRequired)
}

pub(crate) async fn commit(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<CommitRequest>,
) -> Result<HttpResponse, ApiError> {
    let entries = body.into_inner().entries;
    bounds::commit(&entries, &state.config.limits)?;
    let st = state.clone();
    let (user, device) = (auth.0.user_id, auth.0.device_id);
    let response = blocking(move || {
        let keep = st.config.keep_versions;
        let mut response = ingest::commit(&st.db, user, device, &entries, keep, now_us())?;
        let versions = Perm::of(&st.db, Kind::Version, user);
        for id in response
            .results
            .iter_mut()
            .filter_map(|r| r.version_id.as_mut())
        {
            *id = versions.encode(*id);
        }
        Ok(response)
    })
    .await?;
    Ok(HttpResponse::Ok().json(response))
}
