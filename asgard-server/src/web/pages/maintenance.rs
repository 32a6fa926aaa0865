//! Wartung: start GC (dry run or real), verify (a sample or all) and a db-backup now, watch a
//! running one, see the last reports. A start is a background job on the server's
//! [`JobBoard`] (one at a time, run through `Resources::run` like the CLI's tasks, its start in
//! the audit log): the answer waits a little, so a short job's report comes with it; a longer
//! one goes on, and the page shows its steps until its report. Reports are rendered in the
//! reader's language by `crate::present`.

use actix_web::{HttpRequest, HttpResponse};
use maud::{Markup, html};
use serde::Deserialize;

use super::{console, html};
use crate::ops::jobs::{JobBoard, JobError, JobStatus};
use crate::ops::verify::{BadKind, DamageList};
use crate::ops::{Report, Task};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t, tv};
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
    let Report::VerifyDamage(damage) = c.run(admin, Task::VerifyDamage).await? else {
        return Err(admin.fail(Fail::Internal("damage report".into())));
    };
    let json = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
    };
    let board = req.app_data::<actix_web::web::Data<JobBoard>>();
    let running = board.and_then(|b| b.current());
    let last = board.map(|b| b.last()).unwrap_or_default();
    let body = html! {
        @if let Some(r) = result { (r) }
        @if let Some(j) = &running { (job_running(admin, j)) }
        @if stats.bad_chunks > 0 || !damage.is_empty() {
            section.card data-testid="verify-damaged" {
                @if stats.bad_chunks > 0 {
                    div.flash.error data-testid="bad-chunks-now" { (t(lang, Key::MaintDamaged)) ": " (stats.bad_chunks) }
                }
                @if !damage.is_empty() { (damage_list(lang, &damage)) }
            }
        }
        (forms(admin))
        @if !last.is_empty() {
            h2 { (t(lang, Key::MaintLastJobs)) }
            @for j in &last {
                @if let Some(end) = &j.finished {
                    section.card data-testid={ "job-" (j.name) } {
                        p { (j.name) " · " (layout::when(j.started_us)) " – " (layout::when(end.finished_us)) }
                        @if let Some(data) = &end.data {
                            pre.scroll { (crate::present::report(data, lang)) }
                        }
                        @if let Some(e) = &end.error { (flash(false, e)) }
                    }
                }
            }
        }
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

/// What the last verify found: the first bad chunks' ids and the affected versions per user and
/// device, as counts (never a path).
fn damage_list(lang: asgard_core::Lang, d: &DamageList) -> Markup {
    html! {
        h2 { (tv(lang, Key::MaintDamageTitle, &[("when", &layout::when(d.started_us))])) }
        @if d.chunks_total > 0 {
            p data-testid="damaged-total" data-total=(d.chunks_total) {
                (tv(lang, Key::MaintDamageChunks, &[
                    ("total", &d.chunks_total.to_string()),
                    ("shown", &d.chunks.len().to_string()),
                ]))
            }
            (layout::table("damaged-chunks", html! {
                th { (t(lang, Key::ColChunk)) } th { (t(lang, Key::ColKind)) }
            }, html! {
                @for c in &d.chunks {
                    @let hex = c.id.to_hex();
                    tr data-testid={ "damaged-chunk-" (hex) } {
                        td.wrap { code { (hex) } }
                        td { (t(lang, match c.kind {
                            BadKind::Damaged => Key::KindDamaged,
                            BadKind::Missing => Key::KindMissing,
                            BadKind::Unindexed => Key::KindUnindexed,
                        })) }
                    }
                }
            }))
        }
        @if d.affected_versions > 0 {
            p data-testid="affected-total" data-total=(d.affected_versions) {
                (tv(lang, Key::MaintDamageAffected, &[("total", &d.affected_versions.to_string())]))
            }
            (layout::table("damaged-devices", html! {
                th { (t(lang, Key::ColUser)) } th { (t(lang, Key::ColDevice)) }
                th.num { (t(lang, Key::ColVersions)) }
            }, html! {
                @for v in &d.devices {
                    tr data-testid={ "damaged-device-" (v.user) "-" (v.device) } {
                        td { (v.user) } td { (v.device) }
                        td.num data-testid={ "damaged-versions-" (v.user) "-" (v.device) } { (v.versions) }
                    }
                }
            }))
            p.muted { (t(lang, Key::MaintDamageHint)) }
        }
    }
}

/// A running job: its task, since when, and the steps it reached.
fn job_running(admin: &Admin, j: &JobStatus) -> Markup {
    let lang = admin.lang;
    html! {
        section.card data-testid="job-running" data-job=(j.id.0) {
            p { (tv(lang, Key::MaintRunning, &[("since", &layout::when(j.started_us)), ("task", &j.name)])) }
            @for s in &j.steps { p.muted { (crate::present::step(s.step, lang)) } }
            p.muted { (t(lang, Key::MaintRunningHint)) }
        }
    }
}

/// How long a start waits for its job before answering (a longer job goes on; the page shows
/// it running).
const WAIT_FOR_JOB: std::time::Duration = std::time::Duration::from_secs(20);

async fn start(
    req: HttpRequest,
    admin: Admin,
    f: StartForm,
    kind: &str,
) -> Result<HttpResponse, WebError> {
    let task = task_of(kind, &f).map_err(|e| admin.fail(Fail::BadRequest(e)))?;
    let board = req
        .app_data::<actix_web::web::Data<JobBoard>>()
        .cloned()
        .ok_or_else(|| admin.fail(Fail::Internal("no job board".into())))?;
    let actor = crate::ops::audit::Actor {
        name: admin.name.clone(),
        client: Some(admin.client.to_string()),
    };
    let lang = admin.lang;
    let outcome = actix_web::web::block(move || {
        let board = board.into_inner();
        board
            .start(task, &actor)
            .map(|id| board.wait(id, WAIT_FOR_JOB))
    })
    .await
    .map_err(|e| admin.fail(Fail::from(e)))?;
    let result = match outcome {
        Ok(Some(JobStatus {
            finished: Some(end),
            ..
        })) => match (&end.data, &end.error) {
            (Some(report), _) => html! {
                (flash(report.exit_code() == 0, t(lang, Key::MaintDone)))
                pre.scroll data-testid="maintenance-result" { (crate::present::report(report, lang)) }
            },
            (None, e) => html! { (flash(false, e.as_deref().unwrap_or(""))) },
        },
        // Still running: the page shows it (from the board).
        Ok(_) => html! {},
        Err(JobError::AlreadyRunning(j)) => html! {
            (flash(false, &crate::present::messages::job_already_running(&j.name, lang)))
        },
        Err(e) => return Err(admin.fail(Fail::Internal(e.to_string()))),
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
