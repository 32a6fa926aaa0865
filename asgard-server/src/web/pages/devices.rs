//! Geräte und Token: every device with its user, status and last contact; approve a pending
//! registration; reset a device (its token is revoked, a one-time code is shown once).

use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::protocol::DeviceStatus;
use maud::html;
use serde::Deserialize;

use super::{back, console, html};
use crate::ops::{Report, Task};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t, tv};
use crate::web::layout::{self, Nav, Sort, flash, post_form, sort_th, table, when};
use crate::web::session::{AdminForm, AdminPage, CsrfForm};

#[derive(Deserialize, Default)]
pub(crate) struct DevicesQuery {
    sort: Option<String>,
    dir: Option<String>,
    approved: Option<String>,
}

/// `GET /admin/devices`
pub(crate) async fn page(
    req: HttpRequest,
    AdminPage(admin): AdminPage,
    q: web::Query<DevicesQuery>,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    let lang = admin.lang;
    let Report::Devices(mut list) = c.run(&admin, Task::DeviceList).await? else {
        return Err(admin.fail(Fail::Internal("device report".into())));
    };
    let sort = Sort::of(
        q.sort.as_deref(),
        q.dir.as_deref(),
        &["user", "device", "seen"],
    );
    match sort.col.as_str() {
        "device" => list.sort_by(|a, b| a.device.cmp(&b.device)),
        "seen" => list.sort_by_key(|d| d.last_seen_us),
        _ => list.sort_by(|a, b| (&a.user, &a.device).cmp(&(&b.user, &b.device))),
    }
    if sort.desc {
        list.reverse();
    }
    let body = html! {
        @if let Some(d) = q.approved.as_deref() { (flash(true, &tv(lang, Key::DeviceApproved, &[("device", d)]))) }
        (table("devices-table", html! {
            (sort_th("/admin/devices?", "user", t(lang, Key::ColUser), &sort, false))
            (sort_th("/admin/devices?", "device", t(lang, Key::ColDevice), &sort, false))
            th { (t(lang, Key::ColSystem)) }
            (sort_th("/admin/devices?", "seen", t(lang, Key::ColLastSeen), &sort, false))
            th { (t(lang, Key::ColToken)) }
            th { (t(lang, Key::ColActions)) }
        }, html! {
            @for d in &list {
                @let id = format!("{}-{}", d.user, d.device);
                @let (state, key) = match (d.status, d.reset) {
                    (DeviceStatus::Pending, _) => ("pending", Key::TokenPending),
                    (_, true) => ("revoked", Key::TokenRevoked),
                    _ => ("ok", Key::TokenActive),
                };
                tr data-testid={ "device-row-" (id) } {
                    td { (d.user) } td { (d.device) }
                    td { (d.os) " " (d.os_version) }
                    td { (when(d.last_seen_us)) }
                    td class={ "state-" (state) } data-testid={ "device-state-" (id) } data-state=(state) { (t(lang, key)) }
                    td {
                        @if d.status == DeviceStatus::Pending {
                            (post_form(&admin, "/admin/devices/approve", &format!("approve-form-{id}"), "inline", html! {
                                input type="hidden" name="user" value=(d.user);
                                input type="hidden" name="device" value=(d.device);
                                button type="submit" data-testid={ "approve-" (id) } { (t(lang, Key::Approve)) }
                            }))
                        } @else if !d.reset {
                            (post_form(&admin, "/admin/devices/reset", &format!("reset-form-{id}"), "inline", html! {
                                input type="hidden" name="user" value=(d.user);
                                input type="hidden" name="device" value=(d.device);
                                button.danger type="submit" data-testid={ "reset-" (id) } { (t(lang, Key::Reset)) }
                            }))
                        }
                    }
                }
            }
            @if list.is_empty() { tr { td colspan="6" .muted { (t(lang, Key::NoDevices)) } } }
        }))
        p.muted { (t(lang, Key::ResetHint)) }
    };
    Ok(html(layout::page(
        &admin,
        Nav::Devices,
        "/admin/devices",
        t(lang, Key::NavDevices),
        false,
        body,
    )))
}

#[derive(Deserialize)]
pub(crate) struct DeviceForm {
    #[serde(default)]
    csrf: String,
    user: String,
    device: String,
}

impl CsrfForm for DeviceForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/devices/approve`
pub(crate) async fn approve(
    req: HttpRequest,
    AdminForm(admin, f): AdminForm<DeviceForm>,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    c.run(
        &admin,
        Task::DeviceApprove {
            user: f.user.clone(),
            device: f.device.clone(),
        },
    )
    .await?;
    let object = format!("{}/{}", f.user, f.device);
    c.audit(&admin, crate::db::AuditAction::DeviceApproved, &object, "")
        .await;
    Ok(back(&format!(
        "/admin/devices?approved={}",
        layout::url_encode(&object)
    )))
}

/// `POST /admin/devices/reset`: revokes the token; the one-time code is on this answer only.
pub(crate) async fn reset(
    req: HttpRequest,
    AdminForm(admin, f): AdminForm<DeviceForm>,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    let lang = admin.lang;
    let Report::DeviceChanged(change) = c
        .run(
            &admin,
            Task::DeviceReset {
                user: f.user.clone(),
                device: f.device.clone(),
            },
        )
        .await?
    else {
        return Err(admin.fail(Fail::Internal("device report".into())));
    };
    let object = format!("{}/{}", f.user, f.device);
    c.audit(&admin, crate::db::AuditAction::DeviceReset, &object, "")
        .await;
    let body = html! {
        (flash(true, &tv(lang, Key::DeviceReset, &[("device", &object)])))
        @if let Some(code) = &change.code {
            p { (t(lang, Key::OneTimeCode)) }
            p { span.secret data-testid="one-time-code" { (code) } }
            @if let Some(until) = change.code_expires_us { p.muted { (t(lang, Key::ValidUntil)) " " (when(until)) } }
            p.muted { (t(lang, Key::ShownOnce)) }
        }
        p { a href="/admin/devices" data-testid="back-to-devices" { (t(lang, Key::BackToDevices)) } }
    };
    Ok(html(layout::page(
        &admin,
        Nav::Devices,
        "/admin/devices",
        t(lang, Key::NavDevices),
        false,
        body,
    )))
}
