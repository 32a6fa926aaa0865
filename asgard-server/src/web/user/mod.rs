//! # The end user's pages (issue 14): restore in the browser
//!
//! Everything under `/my` is for a signed-in end user ([`UserPage`], [`super::session::UserForm`]);
//! an admin's session is no user's session, and a user's session opens nothing under `/admin`.
//! Every handler looks up each device, path and version it is given *with the session's user
//! id*: an id in a URL is no capability, and another user's id answers like a missing one.
//!
//! Getting in ([`access`]): a one-time link from `asgard-agent web` or from an admin
//! (`/link/{secret}`), or a web password at `/login`; `POST /logout` ends the session.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /my` | the start page: the user's devices with their last backup |
//! | `GET /link/{secret}` | a one-time link: exchanged for a session, then 303 to `/my` |
//! | `GET /login`, `POST /login` | name + web password |
//! | `POST /logout` | ends the session (CSRF) |
//! | `GET /lang?set=de|en&back=/my…` | the language switch |
//! | `GET /my/browse?device=&path=&at=&page=` | a folder as of a time, paged (ubrowse) |
//! | `GET /my/versions?device=&path=` | a path's timeline (ubrowse) |
//! | `GET /my/search?q=` | file names across the user's devices (ubrowse) |
//! | `GET /my/deleted?since=` | files deleted since a time, with their last version (ubrowse) |
//! | `GET /my/download/{version}` | one version as a download (`Range` supported), see [`download`] |
//! | `GET /my/preview/{version}` | one version shown in the browser (allow-listed types, sandboxed) |
//! | `GET /my/zip?device=&path=&at=`, `POST /my/zip` | a folder or a selection as a streamed zip, see [`zip`] |

//!
//! Paths in URLs are [`crate::web::userpath`] (lowercase hex of the raw bytes); `at` and
//! `since` are the `datetime-local` picker's text in the server's local time
//! ([`crate::web::usertime`]).
//!
//! `data-testid`s (ubrowse): browse: `breadcrumbs`, `crumb-root`, `crumb-{i}`, `at-form`,
//! `at-input`, `at-submit`, `at-now`, `at-shown`, `browse-empty`, `zip-form`, `browse-table`,
//! rows `entry-{name}` with `select-{name}` (checkbox, value = the path), `open-{name}`,
//! `versions-{name}`; `zip-selected`, `zip-folder`, `pager`, `pager-first`, `pager-next`;
//! versions: `version-path`, `back-to-folder`, `versions-table`, rows `version-{id}` with
//! `version-time-{id}`, `version-change-{id}`, `download-{id}`, `preview-{id}`; search:
//! `search-form`, `search-input`, `search-submit`, `search-table`; deleted: `deleted-form`,
//! `deleted-since`, `deleted-submit`, `deleted-table`; both: rows `hit-{i}`, `hit-path-{i}`,
//! `hit-versions-{i}`, `hit-folder-{i}`, `hit-download-{i}` (deleted), `scan-none`,
//! `scan-stopped-early`.

pub(crate) mod access;
// ubrowse
pub(crate) mod browse;
pub(crate) mod find;
// udown: downloads, previews and zips.
pub(crate) mod download;
pub(crate) mod start;
pub(crate) mod zip;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::{Fail, WebError};
use super::session::{UserPage, context, cookie_session, user_error};

/// The routes below `/my`. ubrowse and udown add theirs here, each group under its comment.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    // uauth
    cfg.route("", web::get().to(start::page))
        .route("/", web::get().to(start::page));
    // ubrowse
    cfg.route("/browse", web::get().to(browse::browse))
        .route("/versions", web::get().to(browse::versions))
        .route("/search", web::get().to(find::search))
        .route("/deleted", web::get().to(find::deleted));
    // udown
    cfg.route("/download/{version}", web::get().to(download::download))
        .route("/preview/{version}", web::get().to(download::preview))
        .route("/zip", web::get().to(zip::folder))
        .route("/zip", web::post().to(zip::selection));
    cfg.default_service(web::to(not_found));
}

/// The routes of getting in and out, outside `/my`: single resources (a scope here would catch
/// the API's paths), each with the security headers.
pub(crate) fn access_routes(cfg: &mut web::ServiceConfig) {
    let headers = || from_fn(super::headers::security_headers);
    cfg.service(
        web::resource("/link/{secret}")
            .wrap(headers())
            .route(web::get().to(access::link)),
    )
    .service(
        web::resource("/login")
            .wrap(headers())
            .route(web::get().to(access::login_page))
            .route(web::post().to(access::login)),
    )
    .service(
        web::resource("/logout")
            .wrap(headers())
            .route(web::post().to(access::logout)),
    )
    .service(
        web::resource("/lang")
            .wrap(headers())
            .route(web::get().to(super::pages::login::set_lang)),
    );
}

/// An unknown path under `/my`: to the login without a user session, else 404.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, WebError> {
    let (console, lang) = context(&req);
    let err = |fail| user_error(fail, lang);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    let user = cookie_session(&console, &req)
        .await
        .map_err(err)?
        .and_then(|(_, info)| info.user());
    match user {
        None => Err(err(Fail::NoSession)),
        Some(_) => Err(err(Fail::NotFound)),
    }
}

/// The console state of a user's request (always there in the server).
pub(crate) fn console<'a>(
    req: &'a HttpRequest,
    user: &UserPage,
) -> Result<&'a super::Console, WebError> {
    req.app_data::<web::Data<super::Console>>()
        .map(|c| c.get_ref())
        .ok_or_else(|| user.fail(Fail::Internal("no console state".into())))
}
