//! Übersicht: counts, sizes with the dedupe and compression factors, last GC and verify, and
//! the last run of every device with its state.

use actix_web::{HttpRequest, HttpResponse};
use asgard_core::fmt::{bytes_short, decimal};
use asgard_core::protocol::DeviceStatus;
use maud::html;

use super::{console, html};
use crate::ops::{Report, Task};
use crate::web::error::WebError;
use crate::web::i18n::{Key, t};
use crate::web::layout::{self, Nav, table, when};
use crate::web::pages::runs::{RunState, run_state, state_cell};
use crate::web::session::AdminPage;

/// `GET /admin`
pub(crate) async fn page(
    req: HttpRequest,
    AdminPage(admin): AdminPage,
) -> Result<HttpResponse, WebError> {
    let c = console(&req, &admin)?;
    let lang = admin.lang;
    let Report::Stats(stats) = c.run(&admin, Task::Stats).await? else {
        return Err(admin.fail(crate::web::error::Fail::Internal("stats report".into())));
    };
    let Report::Devices(devices) = c.run(&admin, Task::DeviceList).await? else {
        return Err(admin.fail(crate::web::error::Fail::Internal("device report".into())));
    };
    let pending = devices
        .iter()
        .filter(|d| d.status == DeviceStatus::Pending)
        .count();
    let db = c.res.db.clone();
    let last = actix_web::web::block(move || db.last_runs())
        .await
        .map_err(|e| admin.fail(crate::web::error::Fail::from(e)))?
        .map_err(|e| admin.fail(crate::web::error::Fail::from(e)))?;
    let now = crate::db::now_us();
    let factor = |x: Option<f64>| x.map_or("–".to_owned(), |x| format!("{}×", decimal(x, lang)));
    let summary = |v: &Option<serde_json::Value>| match v {
        None => t(lang, Key::Never).to_owned(),
        Some(v) => v
            .get("finished_us")
            .or_else(|| v.get("time_us"))
            .and_then(|x| x.as_i64())
            .map_or_else(|| t(lang, Key::Done).to_owned(), when),
    };
    let body = html! {
        section.card data-testid="overview" {
            dl.facts {
                dt { (t(lang, Key::OvUsers)) } dd data-testid="overview-users" { (stats.users) }
                dt { (t(lang, Key::OvDevices)) } dd data-testid="overview-devices" { (stats.devices) }
                dt { (t(lang, Key::OvPending)) } dd data-testid="overview-pending" {
                    a href="/admin/devices" { (pending) } }
                dt { (t(lang, Key::OvLogical)) } dd data-testid="overview-logical" { (bytes_short(stats.logical_bytes)) }
                dt { (t(lang, Key::OvStored)) } dd data-testid="overview-stored" { (bytes_short(stats.stored_bytes)) }
                dt { (t(lang, Key::OvDedupe)) } dd data-testid="overview-dedupe" { (factor(stats.dedupe_ratio)) }
                dt { (t(lang, Key::OvCompression)) } dd data-testid="overview-compression" { (factor(stats.compression_ratio)) }
                dt { (t(lang, Key::OvBadChunks)) } dd data-testid="overview-bad-chunks" { (stats.bad_chunks) }
                dt { (t(lang, Key::OvLastGc)) } dd data-testid="overview-last-gc" { (summary(&stats.last_gc)) }
                dt { (t(lang, Key::OvLastVerify)) } dd data-testid="overview-last-verify" { (summary(&stats.last_verify)) }
            }
        }
        h2 { (t(lang, Key::OvLastRuns)) }
        (table("last-runs", html! {
            th { (t(lang, Key::ColUser)) } th { (t(lang, Key::ColDevice)) }
            th { (t(lang, Key::ColLastRun)) } th { (t(lang, Key::ColState)) }
            th { (t(lang, Key::ColLastSuccess)) }
        }, html! {
            @for d in &last {
                @let state = run_state(d.last.as_ref().map(|(_, r)| r), d.last_success.as_ref().map(|(_, r)| r), now);
                tr data-testid={ "lastrun-row-" (d.user) "-" (d.device) } {
                    td { (d.user) } td { (d.device) }
                    td { (d.last.as_ref().map_or("–".to_owned(), |(_, r)| when(r.received_us))) }
                    (state_cell(lang, state, &format!("lastrun-state-{}-{}", d.user, d.device)))
                    td { (d.last_success.as_ref().map_or("–".to_owned(), |(_, r)| when(r.received_us))) }
                }
            }
            @if last.is_empty() { tr { td colspan="5" .muted { (t(lang, Key::NoDevices)) } } }
        }))
    };
    let _ = RunState::Never;
    Ok(html(layout::page(
        &admin,
        Nav::Overview,
        "/admin",
        t(lang, Key::NavOverview),
        false,
        body,
    )))
}
