//! udown (issue 14): `GET /my/download/{version}` and `GET /my/preview/{version}`.
//!
//! The version in the URL is the opaque id the API shows the same user ([`Perm`] of
//! [`Kind::Version`] and the session's user): the timeline and the deleted files encode every
//! id they link with that permutation. The id is decoded and looked up *with the session's user
//! id*; another user's id, a missing one, a folder, a link and a deletion marker all answer the
//! same 404. The bytes are those of the CLI restore ([`download::download`]): one verified chunk
//! at a time; a chunk that fails verification ends the body early, so the browser reports a
//! failed download instead of keeping damaged bytes. Every answer is audited before its first
//! byte.
//!
//! A preview is served only for an allow-list of types ([`download::preview_type`]) with
//! `Content-Security-Policy: sandbox`, `X-Content-Type-Options: nosniff` and
//! `Content-Disposition: inline`: no backed-up file can run script in the server's origin.
//! Anything else gets 415 and a page that offers the download.

use actix_web::body::SizedStream;
use actix_web::http::{StatusCode, header};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;
use maud::html;

use crate::api::ids::{Kind, Perm};
use crate::db::{AuditAction, AuditRec};
use crate::service::ServiceError;
use crate::service::download::{self, Download};
use crate::service::read::PlainStream;
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t, tv};
use crate::web::layout::{self, UserNav};
use crate::web::session::UserPage;

/// The CSP of a preview: a sandboxed document (no script, no same origin, no forms), which may
/// show its own picture and nothing else.
pub(crate) const PREVIEW_CSP: &str = "sandbox; default-src 'none'; img-src 'self'; \
     style-src 'unsafe-inline'";

/// A service failure answered to `user` (another user's version is a 404 like a missing one).
pub(crate) fn fail(user: &UserPage, e: ServiceError) -> WebError {
    match e {
        ServiceError::NotFound | ServiceError::Db(crate::db::DbError::NotFound) => {
            user.fail(Fail::NotFound)
        }
        ServiceError::BadRequest(text) => user.fail(Fail::BadRequest(text)),
        other => user.fail(Fail::Internal(other.to_string())),
    }
}

/// Records what `user` took out (a failure to record is logged: the answer goes out anyway, as
/// the admin console's audit does).
pub(crate) async fn audit(
    req: &HttpRequest,
    user: &UserPage,
    action: AuditAction,
    object: String,
    detail: String,
) -> Result<(), WebError> {
    let console = super::console(req, user)?;
    let rec = AuditRec::new(
        crate::db::now_us(),
        format!("user:{}", user.user.name),
        action,
        object,
    )
    .client(user.client)
    .detail(detail);
    let auth = console.auth.clone();
    if let Err(e) = web::block(move || auth.audit(rec)).await {
        tracing::error!(error = %e, "audit log");
    }
    Ok(())
}

/// Looks the version of the URL up for `user` and plans the bytes `range` asks for.
async fn lookup(
    req: &HttpRequest,
    user: &UserPage,
    opaque: &str,
    range: Option<String>,
) -> Result<(Download, u64), WebError> {
    // Anything but a number is an id that was never handed out: the same 404.
    let opaque: u64 = opaque.parse().map_err(|_| user.fail(Fail::NotFound))?;
    let console = super::console(req, user)?;
    let (db, store) = (console.res.db.clone(), console.res.store.clone());
    let user_id = user.user.id;
    let found = web::block(move || {
        let internal = Perm::of(&db, Kind::Version, user_id).decode(opaque);
        download::download(&db, store, user_id, internal, range.as_deref())
    })
    .await
    .map_err(|e| user.fail(Fail::from(e)))?;
    match found {
        Ok(d) => Ok((d, opaque)),
        Err(ServiceError::RangeNotSatisfiable(size)) => Err(range_refused(user, size)),
        Err(e) => Err(fail(user, e)),
    }
}

/// 416 with the size, as RFC 9110 asks.
fn range_refused(user: &UserPage, size: u64) -> WebError {
    user.fail(Fail::RangeNotSatisfiable(size))
}

/// The audit entry's object and detail for one version.
fn what(user: &UserPage, d: &Download, opaque: u64) -> (String, String) {
    let path = asgard_core::RawPath(d.plain.path.clone());
    let mut detail = format!("path={} version={opaque}", path.escaped());
    if d.plain.partial {
        detail.push_str(&format!(
            " range={}-{}",
            d.plain.start,
            d.plain.end.saturating_sub(1)
        ));
    }
    (format!("device:{}/{}", user.user.name, d.device), detail)
}

/// The body of a version: its verified pieces, one blocking store read each. After a failed
/// chunk the body ends with an error (the connection is cut short of `Content-Length`).
fn body(
    plain: PlainStream,
) -> SizedStream<impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>> {
    let len = plain.end - plain.start;
    let pieces = stream::unfold(Some(plain), |plain| async move {
        let plain = plain.filter(|p| !p.is_done())?;
        let read = web::block(move || {
            let mut plain = plain;
            let item = plain.next();
            (item, plain)
        })
        .await;
        match read {
            Ok((None, _)) => None,
            Ok((Some(Ok(piece)), plain)) => Some((Ok(Bytes::from(piece)), Some(plain))),
            Ok((Some(Err(e)), _)) => Some((Err(std::io::Error::other(e.to_string())), None)),
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    SizedStream::new(len, pieces)
}

/// The status line and range headers of a version's answer.
fn head(d: &Download) -> actix_web::HttpResponseBuilder {
    let mut resp = if d.plain.partial {
        let mut b = HttpResponse::PartialContent();
        b.insert_header((
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{}",
                d.plain.start,
                d.plain.end - 1,
                d.plain.size
            ),
        ));
        b
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::ACCEPT_RANGES, "bytes"))
        // A version never changes: its bytes may stay in the browser's private cache.
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"));
    resp
}

fn range_of(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `GET /my/download/{version}`
pub(crate) async fn download(
    req: HttpRequest,
    user: UserPage,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let (d, opaque) = lookup(&req, &user, &path, range_of(&req)).await?;
    let (object, detail) = what(&user, &d, opaque);
    audit(&req, &user, AuditAction::Download, object, detail).await?;
    let disposition = download::content_disposition(false, &d.name());
    Ok(head(&d)
        .content_type("application/octet-stream")
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .body(body(d.plain)))
}

/// `GET /my/preview/{version}`
pub(crate) async fn preview(
    req: HttpRequest,
    user: UserPage,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let (d, opaque) = lookup(&req, &user, &path, range_of(&req)).await?;
    let name = d.name();
    let Some(kind) = download::preview_type(&name) else {
        return Ok(no_preview(&user, &name, opaque));
    };
    let (object, detail) = what(&user, &d, opaque);
    audit(&req, &user, AuditAction::Preview, object, detail).await?;
    Ok(head(&d)
        .content_type(kind)
        .insert_header((header::CONTENT_SECURITY_POLICY, PREVIEW_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            download::content_disposition(true, &name),
        ))
        .body(body(d.plain)))
}

/// 415: no preview for this type; the page offers the download.
fn no_preview(user: &UserPage, name: &[u8], opaque: u64) -> HttpResponse {
    let lang = user.lang;
    let name = String::from_utf8_lossy(name);
    let href = format!("/my/download/{opaque}");
    let body = html! {
        p data-testid="no-preview" { (tv(lang, Key::DlNoPreview, &[("name", &name)])) }
        p { a.button href=(href) data-testid="no-preview-download" { (t(lang, Key::DlDownload)) } }
    };
    HttpResponse::build(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .content_type("text/html; charset=utf-8")
        .body(
            layout::user_page(
                user,
                UserNav::None,
                "/my",
                t(lang, Key::DlNoPreviewTitle),
                body,
            )
            .into_string(),
        )
}
