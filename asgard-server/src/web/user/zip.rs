//! udown (issue 14): `GET /my/zip?device=&path=&at=` (a folder, or the whole device when
//! `path` is empty, as of a time) and `POST /my/zip` (the paths ticked in one folder listing,
//! repeated `path` fields, with the session's CSRF token).
//!
//! `device` is the device's name (as on the start page), `path` the raw path bytes in
//! [`crate::web::userpath`] hex, `at` as on the folder pages (the picker's text, or µs since
//! the epoch; absent: now, see [`super::browse::at_of`]). The device and every path are checked *with the session's user id*
//! before anything is sent (another user's answers 404 like a missing one).
//!
//! **Streaming.** The archive is written by one blocking task ([`download::write_zip`]) into a
//! [`ChannelWriter`]: 64 KiB pieces over a channel of [`PIPE_PIECES`] places into the response.
//! A slow client blocks the writer, so the server holds at most the pipe, one chunk and the
//! zip's central directory whatever the archive's size. A client that goes away closes the
//! channel and the writer stops at its next piece. A chunk that fails verification ends the
//! body with an error: the browser reports a failed download, and the archive has no central
//! directory.

use std::io::Write;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::{Lang, RawPath};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::download::{audit, fail};
use crate::db::AuditAction;
use crate::service::download::{self, NotesText, ZipNote, ZipRequest};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t, tv};
use crate::web::session::{CsrfForm, UserForm, UserPage};
use crate::web::userpath;

/// Places in the pipe between the zip writer and the response.
const PIPE_PIECES: usize = 4;
/// Bytes per piece.
const PIECE: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
pub(crate) struct ZipQuery {
    device: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    at: String,
}

/// `POST /my/zip`: the fields as sent (`csrf`, `device`, `at`, and `path` once per ticked entry).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct ZipForm(Vec<(String, String)>);

impl ZipForm {
    fn field(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl CsrfForm for ZipForm {
    fn csrf(&self) -> &str {
        self.field("csrf").unwrap_or("")
    }
}

/// `GET /my/zip`
pub(crate) async fn folder(
    req: HttpRequest,
    user: UserPage,
    q: web::Query<ZipQuery>,
) -> Result<HttpResponse, WebError> {
    let q = q.into_inner();
    let path = userpath::decode(&q.path).map_err(|_| user.fail(Fail::NotFound))?;
    let at = super::browse::at_of(&user, &q.at)?;
    respond(req, user, q.device, vec![path], at).await
}

/// `POST /my/zip`
pub(crate) async fn selection(
    req: HttpRequest,
    UserForm(user, form): UserForm<ZipForm>,
) -> Result<HttpResponse, WebError> {
    let device = form.field("device").unwrap_or("").to_owned();
    let at = super::browse::at_of(&user, form.field("at").unwrap_or(""))?;
    let mut paths = Vec::new();
    for (k, v) in &form.0 {
        if k == "path" {
            if paths.len() == download::MAX_SELECTION {
                return Err(user.fail(Fail::BadRequest("too many paths".into())));
            }
            paths.push(userpath::decode(v).map_err(|_| user.fail(Fail::NotFound))?);
        }
    }
    if paths.is_empty() {
        return Err(user.fail(Fail::BadRequest("path".into())));
    }
    respond(req, user, device, paths, at).await
}

async fn respond(
    req: HttpRequest,
    user: UserPage,
    device: String,
    paths: Vec<RawPath>,
    at_us: Option<i64>,
) -> Result<HttpResponse, WebError> {
    let console = super::console(&req, &user)?;
    let (db, store) = (console.res.db.clone(), console.res.store.clone());
    let user_id = user.user.id;
    let checked = {
        let db = db.clone();
        let paths = paths.clone();
        web::block(move || {
            let device_id = db
                .user_device_id(user_id, &device)?
                .ok_or(crate::service::ServiceError::NotFound)?;
            let zreq = ZipRequest {
                device_id,
                paths,
                at_us,
            };
            let (device, name) = download::prepare_zip(&db, user_id, &zreq)?;
            Ok::<_, crate::service::ServiceError>((zreq, device, name))
        })
        .await
        .map_err(|e| user.fail(Fail::from(e)))?
    };
    let (zreq, device, name) = checked.map_err(|e| fail(&user, e))?;
    let shown: Vec<String> = paths.iter().map(|p| p.escaped().to_string()).collect();
    let detail = format!(
        "paths={} at={}",
        shown.join(","),
        at_us.map_or("now".to_owned(), |a| a.to_string())
    );
    audit(
        &req,
        &user,
        AuditAction::ZipDownload,
        format!("device:{}/{device}", user.user.name),
        detail,
    )
    .await?;

    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(PIPE_PIECES);
    let lang = user.lang;
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(PIECE),
        };
        let written = download::write_zip(
            &db,
            store,
            user_id,
            &zreq,
            &mut out,
            notes_text(lang),
            crate::db::now_us().saturating_mul(1000),
        );
        if let Err(e) = written {
            tracing::warn!(user = user_id, error = %e, "zip download ended early");
            // The pieces before the error are sent; then the body fails.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            download::content_disposition(false, name.as_bytes()),
        ))
        .streaming(body))
}

/// The notes file in the reader's language.
fn notes_text(lang: Lang) -> NotesText {
    Box::new(move |notes: &[ZipNote], more: u64| {
        let mut text = format!("{}\r\n\r\n", t(lang, Key::ZipNotesIntro));
        for n in notes {
            let line = match n {
                ZipNote::Renamed { original, written } => tv(
                    lang,
                    Key::ZipNoteRenamed,
                    &[("original", original), ("written", written)],
                ),
                ZipNote::LinkSkipped { name, target } => tv(
                    lang,
                    Key::ZipNoteLink,
                    &[("name", name), ("target", target)],
                ),
                ZipNote::Unsafe { path } => tv(lang, Key::ZipNoteUnsafe, &[("path", path)]),
            };
            text.push_str(&line);
            text.push_str("\r\n");
        }
        if more > 0 {
            text.push_str(&tv(lang, Key::ZipNoteMore, &[("count", &more.to_string())]));
            text.push_str("\r\n");
        }
        text
    })
}

/// The writing end of the pipe into the response: pieces of [`PIECE`] bytes, each waiting for
/// a place in the channel (so a slow reader slows the writer, and memory stays bounded).
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = PIECE - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
