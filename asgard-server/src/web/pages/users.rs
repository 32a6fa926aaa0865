//! Benutzer: every user with their devices and own `keep_versions` (set and clear).

use actix_web::{HttpRequest, HttpResponse, web};
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
        &["name", "devices", "keep"],
    );
    match sort.col.as_str() {
        "devices" => list.users.sort_by_key(|u| u.devices),
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
        p.muted { (tv(lang, Key::KeepDefault, &[("n", &default)])) }
        (table("users-table", html! {
            (sort_th("/admin/users?", "name", t(lang, Key::ColUser), &sort, false))
            (sort_th("/admin/users?", "devices", t(lang, Key::ColDevices), &sort, true))
            (sort_th("/admin/users?", "keep", t(lang, Key::ColKeep), &sort, true))
            th { (t(lang, Key::ColActions)) }
        }, html! {
            @for u in &list.users {
                tr data-testid={ "user-row-" (u.name) } {
                    td { (u.name) }
                    td.num { (u.devices) }
                    td.num data-testid={ "keep-" (u.name) } {
                        @match u.keep_versions {
                            Some(n) => (n),
                            None => span.muted { (default) " (" (t(lang, Key::KeepInherited)) ")" },
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
                    }
                }
            }
            @if list.users.is_empty() { tr { td colspan="4" .muted { (t(lang, Key::NoUsers)) } } }
        }))
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
