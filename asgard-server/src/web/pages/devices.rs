//! Geräte und Token: every device with its user, status, created, last contact and address and
//! token state; approve or refuse a pending registration; reset a device (its token is revoked, a one-time
//! code is shown once), revoke its access, or give it a new token (shown once); the
//! registration mode and enrollment key at run time. Every action is an `ops` task.

use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::protocol::DeviceStatus;
use maud::html;
use serde::Deserialize;

use super::{back, console, html};
use crate::config::Registration;
use crate::ops::{RegistrationReport, Report, Task, TokenState};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t, tv};
use crate::web::layout::{self, Nav, Sort, flash, post_form, sort_th, table, when};
use crate::web::session::Admin;
use crate::web::session::{AdminForm, AdminPage, CsrfForm};

#[derive(Deserialize, Default)]
pub(crate) struct DevicesQuery {
    sort: Option<String>,
    dir: Option<String>,
    approved: Option<String>,
    revoked: Option<String>,
    refused: Option<String>,
    registration: Option<String>,
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
    let Report::Registration(reg) = c.run(&admin, Task::RegistrationShow).await? else {
        return Err(admin.fail(Fail::Internal("registration report".into())));
    };
    let body = html! {
        @if let Some(d) = q.approved.as_deref() { (flash(true, &tv(lang, Key::DeviceApproved, &[("device", d)]))) }
        @if let Some(d) = q.revoked.as_deref() { (flash(true, &tv(lang, Key::DeviceRevokedFlash, &[("device", d)]))) }
        @if let Some(d) = q.refused.as_deref() { (flash(true, &tv(lang, Key::DeviceRefusedFlash, &[("device", d)]))) }
        @if q.registration.is_some() { (flash(true, t(lang, Key::RegSaved))) }
        (table("devices-table", html! {
            (sort_th("/admin/devices?", "user", t(lang, Key::ColUser), &sort, false))
            (sort_th("/admin/devices?", "device", t(lang, Key::ColDevice), &sort, false))
            th { (t(lang, Key::ColSystem)) }
            th { (t(lang, Key::ColCreated)) }
            (sort_th("/admin/devices?", "seen", t(lang, Key::ColLastSeen), &sort, false))
            th { (t(lang, Key::ColAddress)) }
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
                    td { (when(d.created_us)) }
                    td { (when(d.last_seen_us)) }
                    td data-testid={ "device-addr-" (id) } { (d.last_addr.as_deref().unwrap_or("–")) }
                    td class={ "state-" (state) } data-testid={ "device-state-" (id) } data-state=(state)
                        data-token-state=(token_state_id(d.token_state)) {
                        (t(lang, if d.token_state == TokenState::Reset { Key::TokenReset } else { key }))
                    }
                    td {
                        @if d.status == DeviceStatus::Pending {
                            (post_form(&admin, "/admin/devices/approve", &format!("approve-form-{id}"), "inline", html! {
                                input type="hidden" name="user" value=(d.user);
                                input type="hidden" name="device" value=(d.device);
                                button type="submit" data-testid={ "approve-" (id) } { (t(lang, Key::Approve)) }
                            }))
                            (post_form(&admin, "/admin/devices/refuse", &format!("refuse-form-{id}"), "inline", html! {
                                input type="hidden" name="user" value=(d.user);
                                input type="hidden" name="device" value=(d.device);
                                button.danger type="submit" data-testid={ "refuse-" (id) } { (t(lang, Key::Refuse)) }
                            }))
                        } @else if !d.reset {
                            (post_form(&admin, "/admin/devices/reset", &format!("reset-form-{id}"), "inline", html! {
                                input type="hidden" name="user" value=(d.user);
                                input type="hidden" name="device" value=(d.device);
                                button.danger type="submit" data-testid={ "reset-" (id) } { (t(lang, Key::Reset)) }
                            }))
                            (post_form(&admin, "/admin/devices/revoke", &format!("revoke-form-{id}"), "inline", html! {
                                input type="hidden" name="user" value=(d.user);
                                input type="hidden" name="device" value=(d.device);
                                button.danger type="submit" data-testid={ "revoke-" (id) } { (t(lang, Key::Revoke)) }
                            }))
                        }
                        @if d.token_state != TokenState::Pending {
                            (post_form(&admin, "/admin/devices/token", &format!("token-form-{id}"), "inline", html! {
                                input type="hidden" name="user" value=(d.user);
                                input type="hidden" name="device" value=(d.device);
                                button.secondary type="submit" data-testid={ "new-token-" (id) } { (t(lang, Key::NewToken)) }
                            }))
                        }
                    }
                }
            }
            @if list.is_empty() { tr { td colspan="8" .muted { (t(lang, Key::NoDevices)) } } }
        }))
        p.muted { (t(lang, Key::ResetHint)) }
        (registration_section(&admin, &reg))
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
    audited(
        &req,
        &admin,
        Task::DeviceApprove {
            user: f.user.clone(),
            device: f.device.clone(),
        },
    )
    .await?;
    let object = format!("{}/{}", f.user, f.device);
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
    let lang = admin.lang;
    let task = Task::DeviceReset {
        user: f.user.clone(),
        device: f.device.clone(),
    };
    let Report::DeviceChanged(change) = audited(&req, &admin, task).await? else {
        return Err(admin.fail(Fail::Internal("device report".into())));
    };
    let object = format!("{}/{}", f.user, f.device);
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

fn token_state_id(s: TokenState) -> &'static str {
    match s {
        TokenState::Active => "active",
        TokenState::Pending => "pending",
        TokenState::Revoked => "revoked",
        TokenState::Reset => "reset",
    }
}

fn mode_id(m: Registration) -> &'static str {
    match m {
        Registration::Open => "open",
        Registration::Approve => "approve",
        Registration::Closed => "closed",
    }
}

/// The registration mode and key in force, and the form that changes them.
fn registration_section(admin: &Admin, reg: &RegistrationReport) -> maud::Markup {
    let lang = admin.lang;
    html! {
        section.card data-testid="registration" {
            h2 { (t(lang, Key::RegTitle)) }
            p data-testid="registration-mode" data-mode=(mode_id(reg.mode)) {
                (t(lang, match reg.mode {
                    Registration::Open => Key::RegOpen,
                    Registration::Approve => Key::RegApprove,
                    Registration::Closed => Key::RegClosed,
                }))
                " · "
                (t(lang, if reg.enrollment_key_required { Key::RegKeyRequired } else { Key::RegKeyNone }))
                " · "
                (t(lang, match reg.source {
                    crate::ops::registration::Source::Config => Key::RegSourceConfig,
                    crate::ops::registration::Source::Database => Key::RegSourceDb,
                }))
            }
            (post_form(admin, "/admin/devices/registration", "registration-form", "", html! {
                label { (t(lang, Key::RegMode)) " "
                    select name="mode" data-testid="registration-select" {
                        @for m in [Registration::Open, Registration::Approve, Registration::Closed] {
                            option value=(mode_id(m)) selected[m == reg.mode] {
                                (t(lang, match m {
                                    Registration::Open => Key::RegOpen,
                                    Registration::Approve => Key::RegApprove,
                                    Registration::Closed => Key::RegClosed,
                                }))
                            }
                        }
                    }
                }
                label { (t(lang, Key::RegKeyNew)) " "
                    input type="password" name="enrollment_key" autocomplete="new-password"
                        data-testid="registration-key";
                }
                label { input type="checkbox" name="clear_key" value="1" data-testid="registration-clear-key";
                    " " (t(lang, Key::RegKeyClear)) }
                button type="submit" name="action" value="save" data-testid="registration-save" { (t(lang, Key::RegSave)) }
                button.secondary type="submit" name="action" value="reset" data-testid="registration-reset" { (t(lang, Key::RegReset)) }
            }))
        }
    }
}

/// Runs a device or registration task and audits it with the admin (`ops::audit`).
async fn audited(req: &HttpRequest, admin: &Admin, task: Task) -> Result<Report, WebError> {
    console(req, admin)?.run_audited(admin, task).await
}

/// `POST /admin/devices/revoke`: the device is refused from its next request on.
pub(crate) async fn revoke(
    req: HttpRequest,
    AdminForm(admin, f): AdminForm<DeviceForm>,
) -> Result<HttpResponse, WebError> {
    let task = Task::DeviceRevoke {
        user: f.user.clone(),
        device: f.device.clone(),
    };
    audited(&req, &admin, task).await?;
    let object = format!("{}/{}", f.user, f.device);
    Ok(back(&format!(
        "/admin/devices?revoked={}",
        layout::url_encode(&object)
    )))
}

/// `POST /admin/devices/refuse`: the pending registration goes with its token.
pub(crate) async fn refuse(
    req: HttpRequest,
    AdminForm(admin, f): AdminForm<DeviceForm>,
) -> Result<HttpResponse, WebError> {
    let task = Task::DeviceRefuse {
        user: f.user.clone(),
        device: f.device.clone(),
    };
    audited(&req, &admin, task).await?;
    let object = format!("{}/{}", f.user, f.device);
    Ok(back(&format!(
        "/admin/devices?refused={}",
        layout::url_encode(&object)
    )))
}

/// `POST /admin/devices/token`: a new token, on this answer only; the old one dies.
pub(crate) async fn token(
    req: HttpRequest,
    AdminForm(admin, f): AdminForm<DeviceForm>,
) -> Result<HttpResponse, WebError> {
    let lang = admin.lang;
    let task = Task::DeviceToken {
        user: f.user.clone(),
        device: f.device.clone(),
    };
    let Report::DeviceChanged(change) = audited(&req, &admin, task).await? else {
        return Err(admin.fail(Fail::Internal("device report".into())));
    };
    let object = format!("{}/{}", f.user, f.device);
    let body = html! {
        p { (tv(lang, Key::NewTokenShown, &[("device", &object)])) }
        @if let Some(token) = &change.token {
            p { span.secret data-testid="new-token" { (token) } }
        }
        p.muted { (t(lang, Key::NewTokenHint)) }
        p.muted { (t(lang, Key::ShownOnce)) }
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

#[derive(Deserialize)]
pub(crate) struct RegistrationForm {
    #[serde(default)]
    csrf: String,
    /// `save` or `reset`.
    action: String,
    mode: Option<String>,
    enrollment_key: Option<String>,
    clear_key: Option<String>,
}

impl CsrfForm for RegistrationForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/devices/registration`: the mode and key from now on (or the file's again).
pub(crate) async fn registration(
    req: HttpRequest,
    AdminForm(admin, f): AdminForm<RegistrationForm>,
) -> Result<HttpResponse, WebError> {
    let task = match f.action.as_str() {
        "reset" => Task::RegistrationSet {
            mode: None,
            enrollment_key: None,
            clear_enrollment_key: false,
            reset: true,
        },
        "save" => {
            let mode = match f.mode.as_deref() {
                Some("open") => Some(Registration::Open),
                Some("approve") => Some(Registration::Approve),
                Some("closed") => Some(Registration::Closed),
                None | Some("") => None,
                Some(other) => return Err(admin.fail(Fail::BadRequest(format!("mode {other:?}")))),
            };
            Task::RegistrationSet {
                mode,
                enrollment_key: f.enrollment_key.filter(|k| !k.is_empty()),
                clear_enrollment_key: f.clear_key.is_some(),
                reset: false,
            }
        }
        other => return Err(admin.fail(Fail::BadRequest(format!("action {other:?}")))),
    };
    audited(&req, &admin, task).await?;
    Ok(back("/admin/devices?registration=saved"))
}
