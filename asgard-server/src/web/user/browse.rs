//! `GET /my/browse` (a folder of a device as of a time, paged) and `GET /my/versions` (a
//! path's timeline). Device, folder and path are looked up with the session's user id
//! ([`crate::db::Db::children`], [`crate::db::Db::timeline`]): another user's device or path
//! answers 404 like a missing one.

use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::{Lang, RawPath};
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::ids::{Kind, Perm};
use crate::db::{Child, ChildPage, DbError, RecKind, VersionSummary};
use crate::web::i18n::{Key, t, tv};
use crate::web::layout::{self, UserNav, url_encode};
use crate::web::session::UserPage;
use crate::web::{error::Fail, error::WebError, pages::html, userpath, usertime};

/// Entries on one page of a folder.
pub(crate) const PAGE: usize = 100;

/// A failure of the browser's reads: whatever the user cannot see is "not found".
pub(crate) fn db_fail(e: DbError) -> Fail {
    match e {
        DbError::UnknownDevice { .. } | DbError::NotFound | DbError::Deleted => Fail::NotFound,
        e => Fail::from(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct BrowseQuery {
    device: String,
    /// [`userpath`] form; absent or empty: the device's top level.
    #[serde(default)]
    path: String,
    /// "Stand vom" as the picker sends it; absent or empty: now.
    #[serde(default)]
    at: String,
    /// The cursor of the page.
    page: Option<String>,
}

/// The `at` of a query or form (the folder pages and the zip links carry it as given): the
/// picker's text (local time, the end of its unit, [`usertime::parse`]) or µs since the epoch
/// (digits only, exact). `Ok(None)` for now, an error for a text that is no time.
pub(super) fn at_of(user: &UserPage, at: &str) -> Result<Option<i64>, WebError> {
    let at = at.trim();
    if at.is_empty() {
        return Ok(None);
    }
    if at.bytes().all(|b| b.is_ascii_digit()) {
        return at
            .parse()
            .map(Some)
            .map_err(|_| user.fail(Fail::BadRequest(t(user.lang, Key::BrAtBad).to_owned())));
    }
    usertime::parse(at)
        .map(Some)
        .ok_or_else(|| user.fail(Fail::BadRequest(t(user.lang, Key::BrAtBad).to_owned())))
}

/// The URL of a folder as of `at` (the picker's text, kept as given).
pub(crate) fn browse_url(device: &str, path: &RawPath, at: &str) -> String {
    let mut u = format!(
        "/my/browse?device={}&path={}",
        url_encode(device),
        userpath::encode(path)
    );
    if !at.is_empty() {
        u.push_str("&at=");
        u.push_str(&url_encode(at));
    }
    u
}

/// The URL of a path's timeline.
pub(crate) fn versions_url(device: &str, path: &RawPath) -> String {
    format!(
        "/my/versions?device={}&path={}",
        url_encode(device),
        userpath::encode(path)
    )
}

/// A name or path for people: every byte visible (`\xe9` for a Latin-1 byte).
pub(crate) fn shown(bytes: &[u8]) -> String {
    asgard_core::path::Escaped::name(bytes).to_string()
}

/// The folders from the top down to `folder` (each a crumb), for a Unix or Windows path.
fn crumbs(folder: &RawPath) -> Vec<(RawPath, String)> {
    let b = &folder.0;
    let sep = if folder.is_windows() { b'\\' } else { b'/' };
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..=b.len() {
        if i == b.len() || b[i] == sep {
            if i > start {
                out.push((RawPath(b[..i].to_vec()), shown(&b[start..i])));
            }
            start = i + 1;
        }
    }
    out
}

/// The folder that holds `path` (the device's top level for a top folder).
pub(crate) fn parent(path: &RawPath) -> RawPath {
    crumbs(path)
        .into_iter()
        .rev()
        .nth(1)
        .map(|(p, _)| p)
        .unwrap_or_default()
}

/// `GET /my/browse?device=…&path=…&at=…&page=…`
pub(crate) async fn browse(
    req: HttpRequest,
    user: UserPage,
    q: web::Query<BrowseQuery>,
) -> Result<HttpResponse, WebError> {
    let q = q.into_inner();
    let folder = userpath::decode(&q.path).map_err(|_| user.fail(Fail::NotFound))?;
    let at_us = at_of(&user, &q.at)?;
    let console = super::console(&req, &user)?;
    let db = console.res.db.clone();
    let (id, device, f, cursor) = (
        user.user.id,
        q.device.clone(),
        folder.clone(),
        q.page.clone(),
    );
    let page = web::block(move || db.children(id, &device, &f, at_us, cursor.as_deref(), PAGE))
        .await
        .map_err(|e| user.fail(Fail::from(e)))?
        .map_err(|e| user.fail(db_fail(e)))?;
    let lang = user.lang;
    let title = tv(lang, Key::BrTitle, &[("device", &q.device)]);
    let body = html! {
        (breadcrumbs(lang, &q.device, &page.folder, &q.at))
        (at_form(lang, &q.device, &folder, at_us))
        (listing(&user, &q, &page))
    };
    let back = browse_url(&q.device, &folder, &q.at);
    Ok(html(layout::user_page(
        &user,
        UserNav::None,
        &back,
        &title,
        body,
    )))
}

fn breadcrumbs(lang: Lang, device: &str, folder: &RawPath, at: &str) -> Markup {
    let parts = crumbs(folder);
    html! {
        nav.crumbs aria-label="breadcrumb" data-testid="breadcrumbs" {
            a href=(browse_url(device, &RawPath::default(), at)) data-testid="crumb-root" {
                (t(lang, Key::BrRoot)) " " (device)
            }
            @for (i, (path, name)) in parts.iter().enumerate() {
                " / "
                @if i + 1 == parts.len() {
                    span aria-current="page" data-testid={ "crumb-" (i) } { (name) }
                } @else {
                    a href=(browse_url(device, path, at)) data-testid={ "crumb-" (i) } { (name) }
                }
            }
        }
    }
}

fn at_form(lang: Lang, device: &str, folder: &RawPath, at_us: Option<i64>) -> Markup {
    html! {
        form method="get" action="/my/browse" data-testid="at-form" {
            input type="hidden" name="device" value=(device);
            input type="hidden" name="path" value=(userpath::encode(folder));
            label for="at" { (t(lang, Key::BrAt)) " " }
            input #at type="datetime-local" step="1" name="at" data-testid="at-input"
                value=(at_us.map(usertime::input_value).unwrap_or_default());
            " "
            button type="submit" data-testid="at-submit" { (t(lang, Key::BrAtShow)) }
            @if at_us.is_some() {
                " "
                a href=(browse_url(device, folder, "")) data-testid="at-now" { (t(lang, Key::BrAtNow)) }
            }
        }
        @if let Some(us) = at_us {
            p data-testid="at-shown" { (tv(lang, Key::BrAtShown, &[("when", &usertime::show(us))])) }
        }
    }
}

fn listing(user: &UserPage, q: &BrowseQuery, page: &ChildPage) -> Markup {
    let lang = user.lang;
    let zip_folder = format!(
        "/my/zip?device={}&path={}&at={}",
        url_encode(&q.device),
        userpath::encode(&page.folder),
        url_encode(&q.at)
    );
    html! {
        @if page.entries.is_empty() {
            p.muted data-testid="browse-empty" { (t(lang, Key::BrEmpty)) }
        } @else {
            form method="post" action="/my/zip" data-testid="zip-form" {
                (layout::user_csrf_field(user))
                input type="hidden" name="device" value=(q.device);
                input type="hidden" name="at" value=(q.at);
                (layout::table("browse-table", html! {
                    th { (t(lang, Key::BrSelect)) }
                    th { (t(lang, Key::BrColName)) }
                    th.num { (t(lang, Key::BrColSize)) }
                    th { (t(lang, Key::BrColChanged)) }
                    th {}
                }, html! {
                    @for c in &page.entries { (row(lang, &q.device, &q.at, c)) }
                }))
                button type="submit" data-testid="zip-selected" { (t(lang, Key::BrZipSelected)) }
            }
        }
        p { a href=(zip_folder) data-testid="zip-folder" { (t(lang, Key::BrZipFolder)) } }
        nav.pager data-testid="pager" {
            @if q.page.is_some() {
                a href=(browse_url(&q.device, &page.folder, &q.at)) data-testid="pager-first" {
                    "« " (t(lang, Key::BrFirstPage))
                }
                " "
            }
            @if let Some(next) = &page.next {
                a href={ (browse_url(&q.device, &page.folder, &q.at)) "&page=" (next) }
                    data-testid="pager-next" rel="next" { (t(lang, Key::BrNextPage)) " →" }
            }
        }
    }
}

fn row(lang: Lang, device: &str, at: &str, c: &Child) -> Markup {
    let name = shown(&c.name);
    let v = c.version.as_ref();
    html! {
        tr data-testid={ "entry-" (name) } {
            td {
                input type="checkbox" name="path" value=(userpath::encode(&c.path))
                    aria-label=(name) data-testid={ "select-" (name) };
            }
            td {
                @if c.folder {
                    "📁 " a href=(browse_url(device, &c.path, at)) data-testid={ "open-" (name) } { (name) }
                } @else {
                    a href=(versions_url(device, &c.path)) data-testid={ "open-" (name) } { (name) }
                }
            }
            td.num {
                @match v {
                    Some(v) if v.kind == RecKind::File && !c.folder => (asgard_core::fmt::bytes_exact(v.size, lang)),
                    Some(v) if v.kind == RecKind::Symlink => (t(lang, Key::BrLink)),
                    _ => (t(lang, Key::BrFolder)),
                }
            }
            td { @if let Some(v) = v { (usertime::show(v.mtime_ns.div_euclid(1000))) } }
            td {
                @if !c.folder {
                    a href=(versions_url(device, &c.path)) data-testid={ "versions-" (name) } {
                        (t(lang, Key::BrVersions))
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct VersionsQuery {
    device: String,
    path: String,
}

/// `GET /my/versions?device=…&path=…`
pub(crate) async fn versions(
    req: HttpRequest,
    user: UserPage,
    q: web::Query<VersionsQuery>,
) -> Result<HttpResponse, WebError> {
    let q = q.into_inner();
    let path = userpath::decode(&q.path).map_err(|_| user.fail(Fail::NotFound))?;
    let console = super::console(&req, &user)?;
    let db = console.res.db.clone();
    // Version ids go out opaque, as everywhere a user sees them (`/my/download/{id}` decodes).
    let ids = Perm::of(&db, Kind::Version, user.user.id);
    let (id, device, p) = (user.user.id, q.device.clone(), path.clone());
    let list = web::block(move || db.timeline(id, &device, &p))
        .await
        .map_err(|e| user.fail(Fail::from(e)))?
        .map_err(|e| user.fail(db_fail(e)))?;
    let lang = user.lang;
    let name = shown(path.file_name().unwrap_or(&path.0));
    let parent = parent(&path);
    let body = html! {
        p data-testid="version-path" { code { (shown(&path.0)) } }
        p { a href=(browse_url(&q.device, &parent, "")) data-testid="back-to-folder" { "← " (t(lang, Key::VerBack)) } }
        (layout::table("versions-table", html! {
            th { (t(lang, Key::VerColTime)) }
            th.num { (t(lang, Key::BrColSize)) }
            th { (t(lang, Key::BrColChanged)) }
            th { (t(lang, Key::VerColChange)) }
            th {}
        }, html! {
            @for v in &list { (version_row(lang, &ids, v)) }
        }))
    };
    let title = tv(lang, Key::VerTitle, &[("name", &name)]);
    let back = versions_url(&q.device, &path);
    Ok(html(layout::user_page(
        &user,
        UserNav::None,
        &back,
        &title,
        body,
    )))
}

fn version_row(lang: Lang, ids: &Perm, v: &VersionSummary) -> Markup {
    let id = ids.encode(v.id);
    let change = if v.deleted {
        Key::VerDeleted
    } else if v.meta_only {
        Key::VerMetaOnly
    } else {
        Key::VerContent
    };
    html! {
        tr data-testid={ "version-" (id) } {
            td data-testid={ "version-time-" (id) } { (usertime::show(v.time_us)) }
            td.num { @if !v.deleted { (asgard_core::fmt::bytes_exact(v.size, lang)) } }
            td { @if !v.deleted { (usertime::show(v.mtime_ns.div_euclid(1000))) } }
            td data-testid={ "version-change-" (id) } { (t(lang, change)) }
            td {
                @if v.is_file() {
                    a href={ "/my/download/" (id) } data-testid={ "download-" (id) } { (t(lang, Key::VerDownload)) }
                    " · "
                    a href={ "/my/preview/" (id) } data-testid={ "preview-" (id) } { (t(lang, Key::VerPreview)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crumbs_walk_down_unix_and_windows_paths() {
        let names = |p: &str| -> Vec<(String, String)> {
            crumbs(&RawPath::from(p))
                .into_iter()
                .map(|(p, n)| (p.lossy(), n))
                .collect()
        };
        assert_eq!(
            names("/home/anna/Bücher"),
            vec![
                ("/home".into(), "home".into()),
                ("/home/anna".into(), "anna".into()),
                ("/home/anna/Bücher".into(), "Bücher".into()),
            ]
        );
        assert_eq!(
            names(r"C:\Users\anna"),
            vec![
                ("C:".into(), "C:".into()),
                (r"C:\Users".into(), "Users".into()),
                (r"C:\Users\anna".into(), "anna".into()),
            ]
        );
        assert!(names("/").is_empty());
        assert!(names("").is_empty());
    }
}
