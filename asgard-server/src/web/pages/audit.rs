//! Protokoll: the audit log, newest first, paged by the id of the oldest entry shown. Each
//! action and each structured detail ([`AuditDetail`]) is shown in the reader's language; the
//! free text of entries written before the details were data is shown as it is.

use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::{console, html};
use crate::config::Registration;
use crate::db::{AuditAction, AuditDetail};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t, tv};
use crate::web::layout::{self, Nav, table, when};
use crate::web::session::AdminPage;

const PER_PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    before: Option<u64>,
}

/// `GET /admin/audit?before=<id>`
pub(crate) async fn page(
    req: HttpRequest,
    AdminPage(admin): AdminPage,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    let lang = admin.lang;
    let db = c.res.db.clone();
    let before = q.before;
    let rows = web::block(move || db.audit_page(before, PER_PAGE + 1))
        .await
        .map_err(|e| admin.fail(Fail::from(e)))?
        .map_err(|e| admin.fail(Fail::from(e)))?;
    let more = rows.len() > PER_PAGE;
    let rows = &rows[..rows.len().min(PER_PAGE)];
    let body = html! {
        (table("audit-table", html! {
            th { (t(lang, Key::ColTime)) } th { (t(lang, Key::ColAdmin)) }
            th { (t(lang, Key::ColClient)) } th { (t(lang, Key::ColAction)) }
            th { (t(lang, Key::ColObject)) } th { (t(lang, Key::ColDetail)) }
        }, html! {
            @for (id, r) in rows {
                tr data-testid={ "audit-row-" (id) } data-action=(r.action.as_str()) {
                    td { (when(r.time_us)) } td { (r.actor) }
                    td { (r.client.as_deref().unwrap_or("–")) } td { (action(lang, &r.action)) }
                    td { (r.object) } td.wrap { (detail(lang, &r.detail)) }
                }
            }
            @if rows.is_empty() { tr { td colspan="6" .muted { (t(lang, Key::NoEntries)) } } }
        }))
        nav.pager data-testid="pager" {
            @if before.is_some() { a href="/admin/audit" data-testid="pager-first" { (t(lang, Key::PagerNewest)) } }
            @if let (true, Some((id, _))) = (more, rows.last()) {
                a href={ "/admin/audit?before=" (id) } data-testid="pager-next" rel="next" { (t(lang, Key::PagerNext)) " →" }
            }
        }
    };
    Ok(html(layout::page(
        &admin,
        Nav::Audit,
        "/admin/audit",
        t(lang, Key::NavAudit),
        false,
        body,
    )))
}

/// An action in words (one this build does not know: its stable name).
fn action(lang: asgard_core::Lang, a: &AuditAction) -> String {
    let key = match a {
        AuditAction::Login => Key::AuditLogin,
        AuditAction::LoginFailed => Key::AuditLoginFailed,
        AuditAction::TotpFailed => Key::AuditTotpFailed,
        AuditAction::TotpLocked => Key::AuditTotpLocked,
        AuditAction::RecoveryUsed => Key::AuditRecoveryUsed,
        AuditAction::Logout => Key::AuditLogout,
        AuditAction::AdminCreated => Key::AuditAdminCreated,
        AuditAction::AdminDeleted => Key::AuditAdminDeleted,
        AuditAction::PasswordChanged => Key::AuditPasswordChanged,
        AuditAction::TotpEnabled => Key::AuditTotpEnabled,
        AuditAction::TotpDisabled => Key::AuditTotpDisabled,
        AuditAction::TokenCreated => Key::AuditTokenCreated,
        AuditAction::DeviceApproved => Key::AuditDeviceApproved,
        AuditAction::DeviceRefused => Key::AuditDeviceRefused,
        AuditAction::DeviceRevoked => Key::AuditDeviceRevoked,
        AuditAction::DeviceToken => Key::AuditDeviceToken,
        AuditAction::DeviceReset => Key::AuditDeviceReset,
        AuditAction::UserDisabled => Key::AuditUserDisabled,
        AuditAction::UserEnabled => Key::AuditUserEnabled,
        AuditAction::UserDeleted => Key::AuditUserDeleted,
        AuditAction::KeepChanged => Key::AuditKeepChanged,
        AuditAction::SettingChanged => Key::AuditSettingChanged,
        AuditAction::MaintenanceStarted => Key::AuditMaintenanceStarted,
        AuditAction::RestoreLinkCreated => Key::AuditRestoreLinkCreated,
        AuditAction::LinkUsed => Key::AuditLinkUsed,
        AuditAction::LinkRefused => Key::AuditLinkRefused,
        AuditAction::WebPasswordSet => Key::AuditWebPasswordSet,
        AuditAction::Download => Key::AuditDownload,
        AuditAction::Preview => Key::AuditPreview,
        AuditAction::ZipDownload => Key::AuditZipDownload,
        AuditAction::Other(name) => return name.clone(),
    };
    t(lang, key).to_owned()
}

/// A stored detail in words: a structured one in `lang`, free text (an older entry) as it is.
pub(crate) fn detail(lang: asgard_core::Lang, stored: &str) -> String {
    let Some(d) = AuditDetail::parse(stored) else {
        return stored.to_owned();
    };
    match d {
        AuditDetail::Gc { dry_run } => t(
            lang,
            if dry_run {
                Key::AuditGcDry
            } else {
                Key::AuditGc
            },
        )
        .to_owned(),
        AuditDetail::Verify {
            sample_percent,
            user,
        } => {
            let mut out = match sample_percent {
                Some(p) => tv(lang, Key::AuditVerifySample, &[("percent", &p.to_string())]),
                None => t(lang, Key::AuditVerifyAll).to_owned(),
            };
            if let Some(u) = user {
                out.push_str(", ");
                out.push_str(&tv(lang, Key::AuditVerifyUser, &[("user", &u)]));
            }
            out
        }
        AuditDetail::DbBackup => t(lang, Key::AuditDbBackup).to_owned(),
        AuditDetail::Keep { versions: Some(v) } => {
            tv(lang, Key::AuditKeepSet, &[("versions", &v.to_string())])
        }
        AuditDetail::Keep { versions: None } => t(lang, Key::AuditKeepCleared).to_owned(),
        AuditDetail::Registration {
            reset,
            mode,
            new_key,
            no_key,
        } => {
            let mut parts = Vec::new();
            if reset {
                parts.push(t(lang, Key::AuditRegReset).to_owned());
            }
            if let Some(m) = mode {
                let m = t(
                    lang,
                    match m {
                        Registration::Open => Key::AuditModeOpen,
                        Registration::Approve => Key::AuditModeApprove,
                        Registration::Closed => Key::AuditModeClosed,
                    },
                );
                parts.push(tv(lang, Key::AuditRegMode, &[("mode", m)]));
            }
            if new_key {
                parts.push(t(lang, Key::AuditRegKeyNew).to_owned());
            }
            if no_key {
                parts.push(t(lang, Key::AuditRegKeyNone).to_owned());
            }
            parts.join(", ")
        }
        AuditDetail::UserDeleted {
            devices,
            paths,
            versions,
        } => tv(
            lang,
            Key::AuditUserDeletedCounts,
            &[
                ("devices", &devices.to_string()),
                ("paths", &paths.to_string()),
                ("versions", &versions.to_string()),
            ],
        ),
        AuditDetail::Throttled => t(lang, Key::AuditThrottled).to_owned(),
        AuditDetail::WrongPassword => t(lang, Key::AuditWrongPassword).to_owned(),
        AuditDetail::Password => t(lang, Key::AuditPassword).to_owned(),
        AuditDetail::PasswordTotp => t(lang, Key::AuditPasswordTotp).to_owned(),
        AuditDetail::PasswordRecovery => t(lang, Key::AuditPasswordRecovery).to_owned(),
        AuditDetail::WhileLocked => t(lang, Key::AuditWhileLocked).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgard_core::Lang;

    #[test]
    fn details_read_in_the_readers_language_and_old_text_as_it_is() {
        let verify = AuditDetail::Verify {
            sample_percent: Some(5.0),
            user: None,
        }
        .encode();
        assert_eq!(detail(Lang::De, &verify), "Prüfung (Stichprobe 5 %)");
        assert_eq!(detail(Lang::En, &verify), "Verify (sample 5 %)");
        let gc = AuditDetail::Gc { dry_run: true }.encode();
        assert_eq!(detail(Lang::De, &gc), "Speicherbereinigung (Probelauf)");
        assert_eq!(detail(Lang::En, &gc), "Garbage collection (dry run)");
        let reg = AuditDetail::Registration {
            reset: false,
            mode: Some(Registration::Approve),
            new_key: true,
            no_key: false,
        }
        .encode();
        assert_eq!(
            detail(Lang::De, &reg),
            "Registrierung mit Freigabe, neuer Registrierungsschlüssel"
        );
        let all = AuditDetail::Verify {
            sample_percent: None,
            user: Some("anna".into()),
        }
        .encode();
        assert_eq!(
            detail(Lang::De, &all),
            "Prüfung (alle Datenblöcke), nur Benutzer anna"
        );
        // Entries written before: free text, Debug text of a task, shown unchanged.
        for old in [
            "dry run",
            "Gc { dry_run: true, grace: None }",
            "{ kaputt",
            "",
        ] {
            assert_eq!(detail(Lang::De, old), old);
        }
        assert_eq!(
            action(Lang::De, &AuditAction::MaintenanceStarted),
            "Wartung gestartet"
        );
        assert_eq!(
            action(Lang::En, &AuditAction::DeviceRefused),
            "Registration refused"
        );
        assert_eq!(
            action(Lang::De, &AuditAction::Other("frobnicated".into())),
            "frobnicated"
        );
    }
}
