//! `POST /api/restore` (one file version as plaintext, `Range` supported),
//! `GET /api/chunks/{id}` (one chunk in stored form), and the two batched endpoints of the agent's
//! restore pipeline: `POST /api/manifest` (the chunk lists of many versions) and `POST /api/fetch`
//! (many chunks in stored form, streamed as frames, see [`asgard_core::frames`]). The work is in
//! `crate::service::read`; these handlers stream its pieces, one blocking call per piece.

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::ChunkId;
use asgard_core::protocol::{
    FetchRequest, HEADER_FILE_HASH, HEADER_VERSION_ID, ManifestRequest, ManifestResponse,
    RestoreRequest,
};
use futures_util::{StreamExt, stream};

use super::ids::{Kind, Perm};
use super::{ApiError, AppState, Authed, blocking};
use crate::service::read;

/// The number behind the `asgard_chunks_served_total` metric.
pub(crate) fn chunks_served() -> u64 {
    read::chunks_served()
}

pub(crate) async fn restore(
    state: web::Data<AppState>,
    auth: Authed,
    req: HttpRequest,
    body: web::Json<RestoreRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut r = body.into_inner();
    let versions = Perm::of(&state.db, Kind::Version, auth.0.user_id);
    r.version_id = r.version_id.map(|id| versions.decode(id));
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let st = state.clone();
    let a = auth.0.clone();
    let plain = blocking(move || {
        let store = st.store.clone();
        Ok(read::restore(
            &st.db,
            store,
            a.user_id,
            a.device_id,
            &r,
            range.as_deref(),
        )?)
    })
    .await?;

    let mut resp = if plain.partial {
        let mut b = HttpResponse::PartialContent();
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", plain.start, plain.end - 1, plain.size),
        ));
        b
    } else {
        HttpResponse::Ok()
    };
    resp.content_type("application/octet-stream")
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((
            HEADER_VERSION_ID,
            versions.encode(plain.version_id).to_string(),
        ))
        .insert_header((
            HEADER_FILE_HASH,
            plain.hash.map(|h| h.to_hex()).unwrap_or_default(),
        ));
    let len = plain.end - plain.start;
    let body = stream::unfold(Some(plain), |plain| async move {
        let plain = plain.filter(|p| !p.is_done())?;
        let read = blocking(move || {
            let mut plain = plain;
            let item = plain.next();
            Ok((item, plain))
        })
        .await;
        match read {
            Ok((None, _)) => None,
            Ok((Some(Ok(piece)), plain)) => Some((Ok(Bytes::from(piece)), Some(plain))),
            // After an error the stream ends: the client sees a short body and must not trust it.
            Ok((Some(Err(e)), _)) => Some((Err(std::io::Error::other(e.to_string())), None)),
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    Ok(resp.body(SizedStream::new(len, body)))
}

pub(crate) async fn chunk(
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
    let bytes = blocking(move || Ok(read::stored_chunk(&st.db, &*st.store, user, &id)?)).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(bytes))
}

/// `POST /api/manifest`: the chunk lists of the caller's versions (any of the user's devices).
/// The ids in both directions are opaque (`ids.rs`); `missing` echoes the ids as sent.
pub(crate) async fn manifest(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<ManifestRequest>,
) -> Result<web::Json<ManifestResponse>, ApiError> {
    let ids = body.into_inner().version_ids;
    let db = state.db.clone();
    let user = auth.0.user_id;
    let resp = blocking(move || {
        let versions = Perm::of(&db, Kind::Version, user);
        let internal: Vec<u64> = ids.iter().map(|&id| versions.decode(id)).collect();
        let mut resp = read::manifests(&db, user, &internal)?;
        for m in &mut resp.versions {
            m.id = versions.encode(m.id);
        }
        for id in &mut resp.missing {
            *id = versions.encode(*id);
        }
        Ok(resp)
    })
    .await?;
    Ok(web::Json(resp))
}

/// `POST /api/fetch`: the requested chunks in stored form, one frame each, in request order,
/// streamed from the store. Refused as a whole (404) when the user may not read one of them.
pub(crate) async fn fetch(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<FetchRequest>,
) -> Result<HttpResponse, ApiError> {
    let ids = body.into_inner().chunks;
    let st = state.clone();
    let user = auth.0.user_id;
    let groups = blocking(move || Ok(read::fetch(&st.db, st.store.clone(), user, ids)?)).await?;
    let body = stream::unfold(Some(groups), |groups| async move {
        let groups = groups.filter(|g| !g.is_done())?;
        let read = blocking(move || {
            let mut groups = groups;
            let group = groups.next().unwrap_or_default();
            Ok((group, groups))
        })
        .await;
        Some(match read {
            Ok((group, groups)) => (Ok::<_, std::io::Error>(Bytes::from(group)), Some(groups)),
            // The blocking pool failed: end the body; the agent sees the missing frames.
            Err(e) => (Err(std::io::Error::other(e.to_string())), None),
        })
    })
    .boxed_local();
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .streaming(body))
}
