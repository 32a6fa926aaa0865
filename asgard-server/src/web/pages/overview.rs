//! Übersicht: counts, sizes with the dedupe and compression factors, free space, last GC and
//! verify, pending registrations, and the last run of every device with its state — all from
//! the `overview` task (the same report as `asgard-server overview --json`).

use actix_web::{HttpRequest, HttpResponse};
use asgard_core::fmt::{bytes_short, decimal};
use maud::html;

use super::{console, html};
use crate::ops::{DeviceRunState, Report, Task};
use crate::web::error::WebError;
use crate::web::i18n::{Key, t, tv};
use crate::web::layout::{self, Nav, table, when};
use crate::web::pages::runs::{RunState, state_cell};
use crate::web::session::AdminPage;

/// The page's state of a device (the runs page's states are the same five).
fn shown(s: DeviceRunState) -> RunState {
    match s {
        DeviceRunState::Ok => RunState::Ok,
        DeviceRunState::Warnings => RunState::Warnings,
        DeviceRunState::Failed => RunState::Failed,
        DeviceRunState::Overdue => RunState::Overdue,
        DeviceRunState::Never => RunState::Never,
    }
}

/// `GET /admin`
pub(crate) async fn page(
    req: HttpRequest,
    AdminPage(admin): AdminPage,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    let lang = admin.lang;
    let Report::Overview(ov) = c.run(&admin, Task::Overview).await? else {
        return Err(admin.fail(crate::web::error::Fail::Internal("overview report".into())));
    };
    let stats = &ov.stats;
    let factor = |x: Option<f64>| x.map_or("–".to_owned(), |x| format!("{}×", decimal(x, lang)));
    let summary = |v: &Option<serde_json::Value>| match v {
        None => t(lang, Key::Never).to_owned(),
        Some(v) => v
            .get("finished_us")
            .or_else(|| v.get("time_us"))
            .and_then(|x| x.as_i64())
            .map_or_else(|| t(lang, Key::Done).to_owned(), when),
    };
    let space = ov.space.map_or_else(
        || "–".to_owned(),
        |s| {
            tv(
                lang,
                Key::OvSpaceValue,
                &[
                    ("free", &bytes_short(s.available_bytes)),
                    ("total", &bytes_short(s.total_bytes)),
                ],
            )
        },
    );
    let body = html! {
        section.card data-testid="overview" {
            dl.facts {
                dt { (t(lang, Key::OvUsers)) } dd data-testid="overview-users" { (ov.users) }
                dt { (t(lang, Key::OvDevices)) } dd data-testid="overview-devices" { (ov.devices) }
                dt { (t(lang, Key::OvPending)) } dd data-testid="overview-pending" {
                    a href="/admin/devices" { (ov.pending.len()) } }
                dt { (t(lang, Key::OvLogical)) } dd data-testid="overview-logical" { (bytes_short(stats.logical_bytes)) }
                dt { (t(lang, Key::OvStored)) } dd data-testid="overview-stored" { (bytes_short(stats.stored_bytes)) }
                dt { (t(lang, Key::OvDedupe)) } dd data-testid="overview-dedupe" { (factor(stats.dedupe_ratio)) }
                dt { (t(lang, Key::OvCompression)) } dd data-testid="overview-compression" { (factor(stats.compression_ratio)) }
                dt { (t(lang, Key::OvSpace)) } dd data-testid="overview-space" { (space) }
                dt { (t(lang, Key::OvBadChunks)) } dd data-testid="overview-bad-chunks" { (stats.bad_chunks) }
                dt { (t(lang, Key::OvLastGc)) } dd data-testid="overview-last-gc" { (summary(&stats.last_gc)) }
                dt { (t(lang, Key::OvLastVerify)) } dd data-testid="overview-last-verify" { (summary(&stats.last_verify)) }
            }
        }
        @if !ov.pending.is_empty() {
            h2 { (t(lang, Key::OvPendingList)) }
            (table("pending-registrations", html! {
                th { (t(lang, Key::ColUser)) } th { (t(lang, Key::ColDevice)) } th { (t(lang, Key::ColSince)) }
            }, html! {
                @for p in &ov.pending {
                    tr data-testid={ "pending-row-" (p.user) "-" (p.device) } {
                        td { (p.user) } td { a href="/admin/devices" { (p.device) } } td { (when(p.since_us)) }
                    }
                }
            }))
        }
        h2 { (t(lang, Key::OvLastRuns)) }
        (table("last-runs", html! {
            th { (t(lang, Key::ColUser)) } th { (t(lang, Key::ColDevice)) }
            th { (t(lang, Key::ColLastRun)) } th { (t(lang, Key::ColState)) }
            th { (t(lang, Key::ColLastSuccess)) }
        }, html! {
            @for d in &ov.device_runs {
                tr data-testid={ "lastrun-row-" (d.user) "-" (d.device) } {
                    td { (d.user) } td { (d.device) }
                    td { (d.last_run_us.map_or("–".to_owned(), when)) }
                    (state_cell(lang, shown(d.state), &format!("lastrun-state-{}-{}", d.user, d.device)))
                    td { (d.last_success_us.map_or("–".to_owned(), when)) }
                }
            }
            @if ov.device_runs.is_empty() { tr { td colspan="5" .muted { (t(lang, Key::NoDevices)) } } }
        }))
    };
    Ok(html(layout::page(
        &admin,
        Nav::Overview,
        "/admin",
        t(lang, Key::NavOverview),
        false,
        body,
    )))
}
