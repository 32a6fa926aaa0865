//! Läufe: the run reports the agents send, filterable by user, device and state, paged; a run's
//! detail with its counts, bytes, duration and errors. Both read the runs through the ops task
//! `Task::RunList`, as the JSON twin and the command line do.
//!
//! Privacy: the console never shows file names. The agent's error messages may name a file
//! ("unlesbar: /home/anna/x"), so the detail shows each message with every path-like word
//! (one with `/` or `\`) replaced by "…", and the count of skipped files, never their names.

use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::Lang;
use asgard_core::fmt::bytes_short;
use maud::{Markup, html};
use serde::Deserialize;

use super::{console, html};
use crate::ops::{OpsError, Report, RunFilter, RunListReport, RunState as OpsRunState, Task};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t};
use crate::web::layout::{self, Nav, flash, pager, table, url_encode, when};
use crate::web::session::{Admin, AdminPage};

const PER_PAGE: usize = 25;
/// The last page a query may ask for (the task refuses offsets beyond `runlist::MAX_OFFSET`).
const MAX_PAGE: usize = crate::ops::runlist::MAX_OFFSET as usize / PER_PAGE;

/// How a run (or a device by its last run) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Ok,
    Warnings,
    Failed,
    Overdue,
    Never,
}

impl RunState {
    fn id(self) -> &'static str {
        match self {
            RunState::Ok => "ok",
            RunState::Warnings => "warnings",
            RunState::Failed => "failed",
            RunState::Overdue => "overdue",
            RunState::Never => "never",
        }
    }

    fn key(self) -> Key {
        match self {
            RunState::Ok => Key::StateOk,
            RunState::Warnings => Key::StateWarnings,
            RunState::Failed => Key::StateFailed,
            RunState::Overdue => Key::StateOverdue,
            RunState::Never => Key::StateNever,
        }
    }
}

/// The page's state of a run of the ops report.
fn shown(s: OpsRunState) -> RunState {
    match s {
        OpsRunState::Ok => RunState::Ok,
        OpsRunState::Warnings => RunState::Warnings,
        OpsRunState::Failed => RunState::Failed,
    }
}

/// A table cell with a state's word and class.
pub(crate) fn state_cell(lang: Lang, state: RunState, testid: &str) -> Markup {
    html! {
        td class={ "state-" (state.id()) } data-testid=(testid) data-state=(state.id()) {
            (t(lang, state.key()))
        }
    }
}

/// A message of the agent with its path-like words replaced (see the module docs).
pub(crate) fn without_paths(msg: &str) -> String {
    msg.split(' ')
        .map(|w| {
            if w.contains('/') || w.contains('\\') {
                "…"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A page of runs from the ops task (`Task::RunList`, as `/api/admin/runs` and `runs` on the
/// command line): `Ok(None)` when the user or device filtered by is unknown (the page then shows
/// no runs and says why).
async fn run_list(
    req: &HttpRequest,
    admin: &Admin,
    filter: RunFilter,
) -> Result<Result<RunListReport, String>, WebError> {
    let c = console(req, admin)?;
    let task = Task::RunList {
        user: filter.user,
        device: filter.device,
        state: filter.state,
        offset: filter.offset,
        limit: filter.limit,
    };
    match c.run(admin, task).await {
        Ok(Report::Runs(r)) => Ok(Ok(r)),
        Ok(_) => Err(admin.fail(Fail::Internal("run report".into()))),
        Err(WebError {
            fail: Fail::Ops(e @ (OpsError::UserNotFound { .. } | OpsError::DeviceNotFound { .. })),
            ..
        }) => Ok(Err(crate::present::ops_error(&e, admin.lang))),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct RunsQuery {
    user: Option<String>,
    device: Option<String>,
    state: Option<String>,
    page: Option<usize>,
}

/// `GET /admin/runs`
pub(crate) async fn page(
    req: HttpRequest,
    AdminPage(admin): AdminPage,
    q: web::Query<RunsQuery>,
) -> Result<HttpResponse, WebError> {
    let lang = admin.lang;
    let q = q.into_inner();
    let pick = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let (user, device, state) = (pick(&q.user), pick(&q.device), pick(&q.state));
    let wanted_state = match state.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<OpsRunState>(serde_json::Value::String(s.to_owned()))
                .map_err(|_| admin.fail(Fail::BadRequest(format!("state {s:?}"))))?,
        ),
    };
    let page = q.page.unwrap_or(1).clamp(1, MAX_PAGE);
    let filter = RunFilter {
        user: user.clone(),
        device: device.clone(),
        state: wanted_state,
        offset: ((page - 1) * PER_PAGE) as u64,
        limit: PER_PAGE as u32,
    };
    let (rows, total, unknown) = match run_list(&req, &admin, filter).await? {
        Ok(r) => (r.runs, usize::try_from(r.total).unwrap_or(usize::MAX), None),
        Err(why) => (Vec::new(), 0, Some(why)),
    };
    let base = format!(
        "/admin/runs?user={}&device={}&state={}&",
        url_encode(user.as_deref().unwrap_or("")),
        url_encode(device.as_deref().unwrap_or("")),
        url_encode(state.as_deref().unwrap_or(""))
    );
    let states = [RunState::Ok, RunState::Warnings, RunState::Failed];
    let body = html! {
        form.inline method="get" action="/admin/runs" data-testid="runs-filter" {
            label { (t(lang, Key::ColUser))
                input type="text" name="user" value=[user.as_deref()] data-testid="runs-filter-user"; }
            label { (t(lang, Key::ColDevice))
                input type="text" name="device" value=[device.as_deref()] data-testid="runs-filter-device"; }
            label { (t(lang, Key::ColState))
                select name="state" data-testid="runs-filter-state" {
                    option value="" { (t(lang, Key::All)) }
                    @for s in states {
                        option value=(s.id()) selected[state.as_deref() == Some(s.id())] { (t(lang, s.key())) }
                    }
                } }
            button type="submit" data-testid="runs-filter-submit" { (t(lang, Key::Filter)) }
        }
        @if let Some(why) = &unknown { (flash(false, why)) }
        (table("runs-table", html! {
            th { (t(lang, Key::ColReceived)) } th { (t(lang, Key::ColUser)) }
            th { (t(lang, Key::ColDevice)) } th { (t(lang, Key::ColState)) }
            th.num { (t(lang, Key::ColFiles)) } th.num { (t(lang, Key::ColSkipped)) }
            th.num { (t(lang, Key::ColErrors)) } th.num { (t(lang, Key::ColBytesRead)) }
            th.num { (t(lang, Key::ColDuration)) }
        }, html! {
            @for r in &rows {
                tr data-testid={ "run-row-" (r.run_id) } {
                    td { a href={ "/admin/runs/" (url_encode(&r.user)) "/" (url_encode(&r.device)) "/" (r.run_id) }
                        data-testid={ "run-link-" (r.run_id) } { (when(r.received_us)) } }
                    td { (r.user) } td { (r.device) }
                    (state_cell(lang, shown(r.state), &format!("run-state-{}", r.run_id)))
                    td.num { (r.summary.files_seen) } td.num { (r.summary.files_skipped) }
                    td.num { (r.errors.len()) } td.num { (bytes_short(r.summary.bytes_read)) }
                    td.num { (format!("{:.0} s", r.summary.duration_s)) }
                }
            }
            @if rows.is_empty() { tr { td colspan="9" .muted { (t(lang, Key::NoRuns)) } } }
        }))
        (pager(lang, &base, page, PER_PAGE, total))
    };
    Ok(html(layout::page(
        &admin,
        Nav::Runs,
        "/admin/runs",
        t(lang, Key::NavRuns),
        false,
        body,
    )))
}

/// `GET /admin/runs/{user}/{device}/{id}`
pub(crate) async fn detail(
    req: HttpRequest,
    AdminPage(admin): AdminPage,
    path: web::Path<(String, String, u64)>,
) -> Result<HttpResponse, WebError> {
    let lang = admin.lang;
    let (user, device, id) = path.into_inner();
    // A device keeps its last `KEEP_RUNS` runs: one page of its runs holds every one.
    let filter = RunFilter {
        user: Some(user.clone()),
        device: Some(device.clone()),
        state: None,
        offset: 0,
        limit: crate::ops::runlist::MAX_LIMIT,
    };
    let found = run_list(&req, &admin, filter)
        .await?
        .ok()
        .and_then(|l| l.runs.into_iter().find(|r| r.run_id == id))
        .ok_or_else(|| admin.fail(Fail::NotFound))?;
    let r = &found;
    let s = &r.summary;
    let facts = [
        (Key::ColUser, user.clone()),
        (Key::ColDevice, device.clone()),
        (Key::ColReceived, when(r.received_us)),
        (Key::ColDuration, format!("{:.1} s", s.duration_s)),
        (Key::ColFiles, s.files_seen.to_string()),
        (Key::RunNew, s.files_new.to_string()),
        (Key::RunChanged, s.files_changed.to_string()),
        (Key::RunDeleted, s.files_deleted.to_string()),
        (Key::ColSkipped, s.files_skipped.to_string()),
        (Key::ColBytesRead, bytes_short(s.bytes_read)),
        (Key::RunBytesNew, bytes_short(s.bytes_new)),
        (Key::RunAgent, r.agent_version.clone()),
    ];
    let body = html! {
        section.card data-testid="run-detail" {
            dl.facts {
                dt { (t(lang, Key::ColState)) }
                dd class={ "state-" (shown(r.state).id()) } data-testid="run-state" { (t(lang, shown(r.state).key())) }
                @for (k, v) in &facts { dt { (t(lang, *k)) } dd { (v) } }
            }
        }
        h2 { (t(lang, Key::ColErrors)) " (" (r.errors.len()) ")" }
        ul data-testid="run-errors" {
            @for e in &r.errors { li data-testid="run-error" { (without_paths(e)) } }
        }
        p.muted { (t(lang, Key::RunPrivacy)) }
    };
    let title = t(lang, Key::RunTitle);
    Ok(html(layout::page(
        &admin,
        Nav::Runs,
        "/admin/runs",
        title,
        false,
        body,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_lose_their_paths() {
        assert_eq!(
            without_paths("unlesbar: /home/anna/geheim.txt"),
            "unlesbar: …"
        );
        assert_eq!(
            without_paths(r"denied C:\Users\x\a.doc now"),
            "denied … now"
        );
        assert_eq!(without_paths("Server weg"), "Server weg");
    }
}
