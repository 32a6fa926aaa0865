//! `GET /my/search?q=…` (file names across all the user's devices) and `GET /my/deleted?since=…`
//! (files deleted since a date, with their last version). Both are bounded walks over the
//! user's own paths ([`crate::db::Db::search`], [`crate::db::Db::deleted_since`]) and say so when
//! they stopped early.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::browse::{browse_url, db_fail, parent, shown, versions_url};
use crate::api::ids::{Kind, Perm};
use crate::db::{Findings, ScanBounds};
use crate::web::i18n::{Key, t};
use crate::web::layout::{self, UserNav, url_encode};
use crate::web::session::UserPage;
use crate::web::{error::Fail, error::WebError, pages::html, usertime};

/// The bounds of one search or deleted-files page: 200 hits, 200,000 paths, two seconds.
fn bounds() -> ScanBounds {
    ScanBounds {
        hits: 200,
        entries: 200_000,
        deadline: Some(Instant::now() + Duration::from_secs(2)),
    }
}

/// The longest search text taken (bytes).
const QUERY_MAX: usize = 255;

#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /my/search?q=…`
pub(crate) async fn search(
    req: HttpRequest,
    user: UserPage,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, WebError> {
    let text = q.into_inner().q.trim().to_owned();
    if text.len() > QUERY_MAX {
        return Err(user.fail(Fail::BadRequest(format!("q > {QUERY_MAX}"))));
    }
    let lang = user.lang;
    let found = if text.is_empty() {
        None
    } else {
        let console = super::console(&req, &user)?;
        let db = console.res.db.clone();
        let ids = Perm::of(&db, Kind::Version, user.user.id);
        let (id, needle) = (user.user.id, text.clone());
        let found = web::block(move || db.search(id, &needle, bounds()))
            .await
            .map_err(|e| user.fail(Fail::from(e)))?
            .map_err(|e| user.fail(db_fail(e)))?;
        Some((found, ids))
    };
    let body = html! {
        form method="get" action="/my/search" data-testid="search-form" {
            label for="q" { (t(lang, Key::SearchLabel)) " " }
            input #q type="search" name="q" value=(text) maxlength=(QUERY_MAX) data-testid="search-input";
            " "
            button type="submit" data-testid="search-submit" { (t(lang, Key::SearchSubmit)) }
        }
        @if let Some((f, ids)) = &found { (hits(&user, ids, f, false)) }
    };
    let back = format!("/my/search?q={}", url_encode(&text));
    Ok(html(layout::user_page(
        &user,
        UserNav::Search,
        &back,
        t(lang, Key::SearchTitle),
        body,
    )))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeletedQuery {
    #[serde(default)]
    since: String,
}

/// `GET /my/deleted?since=…` (default: the last 30 days)
pub(crate) async fn deleted(
    req: HttpRequest,
    user: UserPage,
    q: web::Query<DeletedQuery>,
) -> Result<HttpResponse, WebError> {
    let lang = user.lang;
    let since_text = q.into_inner().since;
    let since = if since_text.trim().is_empty() {
        crate::db::now_us() - 30 * 24 * 3600 * 1_000_000
    } else {
        // The picker's time is the start of its unit here ("deleted since 14:00" includes 14:00).
        usertime::parse_start(&since_text)
            .ok_or_else(|| user.fail(Fail::BadRequest(t(lang, Key::BrAtBad).to_owned())))?
    };
    let console = super::console(&req, &user)?;
    let db = console.res.db.clone();
    let ids = Perm::of(&db, Kind::Version, user.user.id);
    let id = user.user.id;
    let found = web::block(move || db.deleted_since(id, since, bounds()))
        .await
        .map_err(|e| user.fail(Fail::from(e)))?
        .map_err(|e| user.fail(db_fail(e)))?;
    let body = html! {
        form method="get" action="/my/deleted" data-testid="deleted-form" {
            label for="since" { (t(lang, Key::DelSince)) " " }
            input #since type="datetime-local" step="1" name="since" data-testid="deleted-since"
                value=(usertime::input_value(since));
            " "
            button type="submit" data-testid="deleted-submit" { (t(lang, Key::BrAtShow)) }
        }
        (hits(&user, &ids, &found, true))
    };
    let back = format!("/my/deleted?since={}", url_encode(&since_text));
    Ok(html(layout::user_page(
        &user,
        UserNav::Deleted,
        &back,
        t(lang, Key::DelTitle),
        body,
    )))
}

/// The table of search hits or deleted files.
/// Version ids in its links are `ids`' opaque ones.
fn hits(user: &UserPage, ids: &Perm, f: &Findings, deleted: bool) -> maud::Markup {
    let lang = user.lang;
    let (table, none, more) = if deleted {
        ("deleted-table", Key::DelNone, Key::DelMore)
    } else {
        ("search-table", Key::SearchNone, Key::SearchMore)
    };
    html! {
        @if f.stopped_early {
            p.flash.error role="status" data-testid="scan-stopped-early" { (t(lang, more)) }
        }
        @if f.hits.is_empty() {
            p.muted data-testid="scan-none" { (t(lang, none)) }
        } @else {
            (layout::table(table, html! {
                th { (t(lang, Key::ColDevice)) }
                th { (t(lang, Key::ColPath)) }
                @if deleted {
                    th { (t(lang, Key::DelAt)) }
                    th { (t(lang, Key::DelLast)) }
                } @else {
                    th { (t(lang, Key::BrColChanged)) }
                }
                th {}
            }, html! {
                @for (i, h) in f.hits.iter().enumerate() {
                    @let folder = parent(&h.path);
                    tr data-testid={ "hit-" (i) } {
                        td { (h.device) }
                        td data-testid={ "hit-path-" (i) } {
                            a href=(versions_url(&h.device, &h.path)) { (shown(&h.path.0)) }
                        }
                        @if deleted {
                            td { (usertime::show(h.newest.time_us)) }
                            td {
                                @if let Some(v) = &h.last_live {
                                    (usertime::show(v.time_us)) " · "
                                    (asgard_core::fmt::bytes_exact(v.size, lang))
                                    @if v.is_file() {
                                        " · "
                                        a href={ "/my/download/" (ids.encode(v.id)) } data-testid={ "hit-download-" (i) } {
                                            (t(lang, Key::VerDownload))
                                        }
                                    }
                                }
                            }
                        } @else {
                            td {
                                @if h.newest.deleted { (t(lang, Key::VerDeleted)) }
                                @else { (usertime::show(h.newest.mtime_ns.div_euclid(1000))) }
                            }
                        }
                        td {
                            a href=(versions_url(&h.device, &h.path)) data-testid={ "hit-versions-" (i) } {
                                (t(lang, Key::BrVersions))
                            }
                            " · "
                            a href=(browse_url(&h.device, &folder, "")) data-testid={ "hit-folder-" (i) } {
                                (t(lang, Key::BrFolder))
                            }
                        }
                    }
                }
            }))
        }
    }
}
