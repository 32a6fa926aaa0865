//! Benutzer: every user with their devices, versions, logical bytes, the bytes only they hold
//! and own `keep_versions` (set and clear); disable, enable and delete a user (the deletion
//! asks for the name typed again). Every figure and action is an `ops` task.

use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::fmt::bytes_short;
use maud::html;
use serde::Deserialize;

use super::{back, console, html};
use crate::ops::{Report, Task};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t, tv};
use crate::web::layout::{self, Nav, Sort, flash, post_form, sort_th, table};
use crate::web::session::{AdminForm, AdminPage, CsrfForm};

#[derive(Deserialize, Default)]
pub(crate) struct UsersQuery {
    sort: Option<String>,
    dir: Option<String>,
    ok: Option<String>,
    /// A state change or deletion just made: `disabled`, `enabled` or `deleted`, of `user`.
    done: Option<String>,
    user: Option<String>,
}

/// `GET /admin/users`
pub(crate) async fn page(
    req: HttpRequest,
    AdminPage(admin): AdminPage,
    q: web::Query<UsersQuery>,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    let lang = admin.lang;
    let Report::Users(mut list) = c.run(&admin, Task::UserList).await? else {
        return Err(admin.fail(Fail::Internal("user report".into())));
    };
    let sort = Sort::of(
        q.sort.as_deref(),
        q.dir.as_deref(),
        &["name", "devices", "keep", "versions", "logical", "unique"],
    );
    match sort.col.as_str() {
        "devices" => list.users.sort_by_key(|u| u.devices),
        "versions" => list.users.sort_by_key(|u| u.versions),
        "logical" => list.users.sort_by_key(|u| u.logical_bytes),
        "unique" => list.users.sort_by_key(|u| u.unique_stored_bytes),
        "keep" => list.users.sort_by_key(|u| u.keep_versions),
        _ => list.users.sort_by(|a, b| a.name.cmp(&b.name)),
    }
    if sort.desc {
        list.users.reverse();
    }
    let default = list.default_keep_versions.to_string();
    let body = html! {
        @if let Some(user) = q.ok.as_deref() {
            (flash(true, &tv(lang, Key::KeepSaved, &[("user", user)])))
        }
        @if let (Some(done), Some(user)) = (q.done.as_deref(), q.user.as_deref()) {
            @let key = match done {
                "disabled" => Some(Key::UserDisabledFlash),
                "enabled" => Some(Key::UserEnabledFlash),
                "deleted" => Some(Key::UserDeletedFlash),
                _ => None,
            };
            @if let Some(key) = key { (flash(true, &tv(lang, key, &[("user", user)]))) }
        }
        p.muted { (tv(lang, Key::KeepDefault, &[("n", &default)])) }
        (table("users-table", html! {
            (sort_th("/admin/users?", "name", t(lang, Key::ColUser), &sort, false))
            (sort_th("/admin/users?", "devices", t(lang, Key::ColDevices), &sort, true))
            (sort_th("/admin/users?", "versions", t(lang, Key::ColVersions), &sort, true))
            (sort_th("/admin/users?", "logical", t(lang, Key::ColLogical), &sort, true))
            (sort_th("/admin/users?", "unique", t(lang, Key::ColUnique), &sort, true))
            (sort_th("/admin/users?", "keep", t(lang, Key::ColKeep), &sort, true))
            th { (t(lang, Key::ColState)) }
            th { (t(lang, Key::ColActions)) }
        }, html! {
            @for u in &list.users {
                tr data-testid={ "user-row-" (u.name) } {
                    td { (u.name) }
                    td.num { (u.devices) }
                    td.num data-testid={ "versions-" (u.name) } { (u.versions) }
                    td.num data-testid={ "logical-" (u.name) } { (bytes_short(u.logical_bytes)) }
                    td.num data-testid={ "unique-" (u.name) } { (bytes_short(u.unique_stored_bytes)) }
                    td.num data-testid={ "keep-" (u.name) } {
                        @match u.keep_versions {
                            Some(n) => (n),
                            None => span.muted { (default) " (" (t(lang, Key::KeepInherited)) ")" },
                        }
                    }
                    td data-testid={ "user-state-" (u.name) }
                        data-state=(if u.disabled_since_us.is_some() { "disabled" } else { "active" }) {
                        @if u.disabled_since_us.is_some() {
                            span.state-failed { (t(lang, Key::UserDisabledBadge)) }
                        } @else {
                            (t(lang, Key::UserActive))
                        }
                    }
                    td {
                        (post_form(&admin, "/admin/users/keep", &format!("keep-form-{}", u.name), "inline", html! {
                            input type="hidden" name="user" value=(u.name);
                            input type="number" name="versions" min="1" max="100000"
                                value=[u.keep_versions] aria-label=(t(lang, Key::ColKeep))
                                data-testid={ "keep-input-" (u.name) };
                            button type="submit" name="action" value="set"
                                data-testid={ "keep-set-" (u.name) } { (t(lang, Key::KeepSet)) }
                            button.secondary type="submit" name="action" value="clear"
                                data-testid={ "keep-clear-" (u.name) } { (t(lang, Key::KeepClear)) }
                        }))
                        @let disabled = u.disabled_since_us.is_some();
                        (post_form(&admin, "/admin/users/state", &format!("state-form-{}", u.name), "inline", html! {
                            input type="hidden" name="user" value=(u.name);
                            @if disabled {
                                button type="submit" name="action" value="enable"
                                    data-testid={ "enable-" (u.name) } { (t(lang, Key::Enable)) }
                            } @else {
                                button.secondary type="submit" name="action" value="disable"
                                    data-testid={ "disable-" (u.name) } { (t(lang, Key::Disable)) }
                            }
                        }))
                        (post_form(&admin, "/admin/users/link", &format!("link-form-{}", u.name), "inline", html! {
                            input type="hidden" name="user" value=(u.name);
                            button.secondary type="submit" data-testid={ "link-" (u.name) } {
                                (t(lang, Key::UserLinkButton))
                            }
                        }))
                        (post_form(&admin, "/admin/users/delete", &format!("delete-form-{}", u.name), "inline", html! {
                            input type="hidden" name="user" value=(u.name);
                            input type="text" name="confirm" required autocomplete="off"
                                placeholder=(u.name) aria-label=(t(lang, Key::DeleteConfirm))
                                data-testid={ "delete-confirm-" (u.name) };
                            button.danger type="submit" data-testid={ "delete-" (u.name) } { (t(lang, Key::Delete)) }
                        }))
                    }
                }
            }
            @if list.users.is_empty() { tr { td colspan="9" .muted { (t(lang, Key::NoUsers)) } } }
        }))
        p.muted { (t(lang, Key::UniqueHint)) }
        p.muted { (t(lang, Key::DeleteHint)) }
    };
    Ok(html(layout::page(
        &admin,
        Nav::Users,
        "/admin/users",
        t(lang, Key::NavUsers),
        false,
        body,
    )))
}

#[derive(Deserialize)]
pub(crate) struct KeepForm {
    #[serde(default)]
    csrf: String,
    user: String,
    action: String,
    versions: Option<String>,
}

impl CsrfForm for KeepForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The `keep_versions` change a form asks for (`None` = clear).
pub(crate) fn keep_of(action: &str, versions: Option<&str>) -> Result<Option<u32>, String> {
    match action {
        "clear" => Ok(None),
        "set" => versions
            .map(str::trim)
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| "versions".to_owned()),
        other => Err(format!("action {other:?}")),
    }
}

/// `POST /admin/users/keep`
pub(crate) async fn keep(
    req: HttpRequest,
    AdminForm(admin, form): AdminForm<KeepForm>,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    let versions = keep_of(&form.action, form.versions.as_deref())
        .map_err(|e| admin.fail(Fail::BadRequest(e)))?;
    let user = form.user;
    c.run(
        &admin,
        Task::UserSetKeep {
            user: user.clone(),
            versions,
        },
    )
    .await?;
    c.audit(
        &admin,
        crate::db::AuditAction::KeepChanged,
        &user,
        &format!("{versions:?}"),
    )
    .await;
    Ok(back(&format!(
        "/admin/users?ok={}",
        layout::url_encode(&user)
    )))
}

#[derive(Deserialize)]
pub(crate) struct UserActionForm {
    #[serde(default)]
    csrf: String,
    user: String,
    /// `disable` or `enable` (state form); the name typed again (delete form).
    #[serde(default)]
    action: String,
    #[serde(default)]
    confirm: String,
}

impl CsrfForm for UserActionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Runs a user task, audits it with the admin (`ops::audit`, as the command line does) and
/// goes back to the list with its flash.
async fn user_task(
    req: &HttpRequest,
    admin: &crate::web::session::Admin,
    task: Task,
    done: &str,
    user: &str,
) -> Result<HttpResponse, WebError> {
    let c = console(req, admin)?;
    let report = c.run(admin, task.clone()).await?;
    let db = c.res.db.clone();
    let actor = crate::ops::audit::Actor {
        name: admin.name.clone(),
        client: Some(admin.client.to_string()),
    };
    let _ = web::block(move || crate::ops::audit::record(&db, &actor, &task, &report)).await;
    Ok(back(&format!(
        "/admin/users?done={done}&user={}",
        layout::url_encode(user)
    )))
}

/// `POST /admin/users/state`: disable or enable a user.
pub(crate) async fn state(
    req: HttpRequest,
    AdminForm(admin, f): AdminForm<UserActionForm>,
) -> Result<HttpResponse, WebError> {
    let (task, done) = match f.action.as_str() {
        "disable" => (
            Task::UserDisable {
                user: f.user.clone(),
            },
            "disabled",
        ),
        "enable" => (
            Task::UserEnable {
                user: f.user.clone(),
            },
            "enabled",
        ),
        other => return Err(admin.fail(Fail::BadRequest(format!("action {other:?}")))),
    };
    user_task(&req, &admin, task, done, &f.user).await
}

/// `POST /admin/users/delete`: only with the user's name typed again.
pub(crate) async fn delete(
    req: HttpRequest,
    AdminForm(admin, f): AdminForm<UserActionForm>,
) -> Result<HttpResponse, WebError> {
    if f.confirm.trim() != f.user.trim() {
        return Err(admin.fail(Fail::BadRequest(
            t(admin.lang, Key::DeleteConfirm).to_owned(),
        )));
    }
    let task = Task::UserDelete {
        user: f.user.clone(),
    };
    user_task(&req, &admin, task, "deleted", &f.user).await
}

/// Issue 14: `POST /admin/users/link`: a one-time restore link for the user, shown once on the
/// answer (never in a URL or the audit log). Without `web.public_url` the link names the host
/// this admin reached the server by.
pub(crate) async fn link(
    req: HttpRequest,
    AdminForm(admin, f): AdminForm<UserActionForm>,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    let task = Task::UserLink {
        user: f.user.clone(),
        by: Some(admin.name.clone()),
    };
    let report = c.run(&admin, task.clone()).await?;
    let Report::UserLink(link) = &report else {
        return Err(admin.fail(Fail::Internal("user link report".into())));
    };
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
    let url = match (&c.res.config.web.public_url, host) {
        (None, Some(host)) => format!("https://{host}{}", link.path),
        _ => link.url.clone(),
    };
    let lang = admin.lang;
    let minutes = (crate::service::webauth::user::LINK_VALID_US / 60_000_000).to_string();
    let body = html! {
        p { (tv(lang, Key::UserLinkShown, &[("user", &link.user), ("minutes", &minutes)])) }
        p { span.secret data-testid="restore-link" { (url) } }
        p.muted { (t(lang, Key::ShownOnce)) }
        p { a href="/admin/users" data-testid="back-to-users" { (t(lang, Key::NavUsers)) } }
    };
    let db = c.res.db.clone();
    let actor = crate::ops::audit::Actor {
        name: admin.name.clone(),
        client: Some(admin.client.to_string()),
    };
    let _ = web::block(move || crate::ops::audit::record(&db, &actor, &task, &report)).await;
    Ok(html(layout::page(
        &admin,
        Nav::Users,
        "/admin/users",
        t(lang, Key::NavUsers),
        false,
        body,
    )))
}
