//! Wartung: start GC (dry run or real), verify (a sample or all) and a db-backup now; see the
//! last reports. The task runs through `Console::run`, the same path as the CLI's; its report
//! is rendered in the reader's language by `crate::present`.

use actix_web::{HttpRequest, HttpResponse};
use maud::{Markup, html};
use serde::Deserialize;

use super::{console, html};
use crate::ops::{Report, Task};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t};
use crate::web::layout::{self, Nav, flash, post_form};
use crate::web::session::{Admin, AdminForm, AdminPage, CsrfForm};

fn forms(admin: &Admin) -> Markup {
    let lang = admin.lang;
    html! {
        section.card {
            h2 { (t(lang, Key::MaintGc)) }
            (post_form(admin, "/admin/maintenance/gc", "gc-form", "inline", html! {
                label { input type="checkbox" name="dry_run" value="on" checked data-testid="gc-dry-run"; (t(lang, Key::MaintDryRun)) }
                button type="submit" data-testid="gc-start" { (t(lang, Key::MaintStart)) }
            }))
        }
        section.card {
            h2 { (t(lang, Key::MaintVerify)) }
            (post_form(admin, "/admin/maintenance/verify", "verify-form", "inline", html! {
                label { (t(lang, Key::MaintSample))
                    input type="number" name="sample" min="1" max="100" value="10" data-testid="verify-sample"; }
                label { input type="checkbox" name="full" value="on" data-testid="verify-full"; (t(lang, Key::MaintFull)) }
                button type="submit" data-testid="verify-start" { (t(lang, Key::MaintStart)) }
            }))
        }
        section.card {
            h2 { (t(lang, Key::MaintDbBackup)) }
            (post_form(admin, "/admin/maintenance/db-backup", "dbbackup-form", "inline", html! {
                button type="submit" data-testid="dbbackup-start" { (t(lang, Key::MaintStart)) }
            }))
        }
    }
}

/// The page with the last reports, and `result` on top after a start.
async fn render(
    req: &HttpRequest,
    admin: &Admin,
    result: Option<Markup>,
) -> Result<HttpResponse, WebError> {
    let c = console(req, admin)?;
    let lang = admin.lang;
    let Report::Stats(stats) = c.run(admin, Task::Stats).await? else {
        return Err(admin.fail(Fail::Internal("stats report".into())));
    };
    let json = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
    };
    let body = html! {
        @if let Some(r) = result { (r) }
        @if stats.bad_chunks > 0 {
            div.flash.error data-testid="verify-damaged" { (t(lang, Key::MaintDamaged)) ": " (stats.bad_chunks) }
        }
        (forms(admin))
        h2 { (t(lang, Key::OvLastGc)) }
        @match json(&stats.last_gc) {
            Some(j) => pre.scroll data-testid="last-gc" { (j) },
            None => p.muted data-testid="last-gc" { (t(lang, Key::Never)) },
        }
        h2 { (t(lang, Key::OvLastVerify)) }
        @match json(&stats.last_verify) {
            Some(j) => pre.scroll data-testid="last-verify" { (j) },
            None => p.muted data-testid="last-verify" { (t(lang, Key::Never)) },
        }
    };
    let title = t(lang, Key::NavMaintenance);
    Ok(html(layout::page(
        admin,
        Nav::Maintenance,
        "/admin/maintenance",
        title,
        false,
        body,
    )))
}

/// `GET /admin/maintenance`
pub(crate) async fn page(
    req: HttpRequest,
    AdminPage(admin): AdminPage,
) -> Result<HttpResponse, WebError> {
    render(&req, &admin, None).await
}

#[derive(Deserialize)]
pub(crate) struct StartForm {
    #[serde(default)]
    csrf: String,
    dry_run: Option<String>,
    sample: Option<String>,
    full: Option<String>,
}

impl CsrfForm for StartForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The task a maintenance form asks for.
pub(crate) fn task_of(kind: &str, f: &StartForm) -> Result<Task, String> {
    Ok(match kind {
        "gc" => Task::Gc {
            dry_run: f.dry_run.is_some(),
            grace: None,
        },
        "verify" if f.full.is_some() => Task::Verify {
            sample_percent: None,
            user: None,
        },
        "verify" => {
            let p = f
                .sample
                .as_deref()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|p| *p > 0.0 && *p <= 100.0)
                .ok_or_else(|| "sample".to_owned())?;
            Task::Verify {
                sample_percent: Some(p),
                user: None,
            }
        }
        _ => Task::DbBackup { to: None },
    })
}

async fn start(
    req: HttpRequest,
    admin: Admin,
    f: StartForm,
    kind: &str,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    let task = task_of(kind, &f).map_err(|e| admin.fail(Fail::BadRequest(e)))?;
    c.audit(
        &admin,
        crate::db::AuditAction::MaintenanceStarted,
        task.name(),
        &format!("{task:?}"),
    )
    .await;
    let result = match c.run(&admin, task).await {
        Ok(report) => html! {
            (flash(report.exit_code() == 0, t(admin.lang, Key::MaintDone)))
            pre.scroll data-testid="maintenance-result" { (crate::present::report(&report, admin.lang)) }
        },
        Err(e) => html! { (flash(false, &e.fail_message())) },
    };
    render(&req, &admin, Some(result)).await
}

/// `POST /admin/maintenance/gc`
pub(crate) async fn gc(
    req: HttpRequest,
    AdminForm(a, f): AdminForm<StartForm>,
) -> Result<HttpResponse, WebError> {
    start(req, a, f, "gc").await
}

/// `POST /admin/maintenance/verify`
pub(crate) async fn verify(
    req: HttpRequest,
    AdminForm(a, f): AdminForm<StartForm>,
) -> Result<HttpResponse, WebError> {
    start(req, a, f, "verify").await
}

/// `POST /admin/maintenance/db-backup`
pub(crate) async fn db_backup(
    req: HttpRequest,
    AdminForm(a, f): AdminForm<StartForm>,
) -> Result<HttpResponse, WebError> {
    start(req, a, f, "db-backup").await
}
