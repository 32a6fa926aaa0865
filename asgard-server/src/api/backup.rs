//! The backup endpoints: `check`, `upload` and `commit` (the work is in `crate::service::ingest`).

use actix_multipart::Multipart;
use actix_web::{HttpResponse, web};
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

/// Reads every part (bounded per part and per request), then ingests them in one blocking task
/// (see `crate::service::ingest`): a request with any bad part stores nothing and changes no
/// metadata.
pub(crate) async fn upload(
    state: web::Data<AppState>,
    auth: Authed,
    mut parts: Multipart,
) -> Result<HttpResponse, ApiError> {
    let max_total = state.config.max_upload_bytes;
    let max_part = ingest::MAX_PART_BYTES;
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

    let st = state.clone();
    let user = auth.0.user_id;
    let response =
        blocking(move || Ok(ingest::upload(&st.db, &*st.store, user, &received)?)).await?;
    Ok(HttpResponse::Ok().json(response))
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
