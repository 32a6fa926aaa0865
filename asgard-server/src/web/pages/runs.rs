//! Läufe: the run reports the agents send, filterable by user, device and state, paged; a run's
//! detail with its counts, bytes, duration and errors.
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
use crate::db::{Db, RunRec};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t};
use crate::web::layout::{self, Nav, pager, table, url_encode, when};
use crate::web::session::AdminPage;

/// A device's last successful run older than this is overdue.
const OVERDUE_US: i64 = 48 * 3600 * 1_000_000;
const PER_PAGE: usize = 25;

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

/// The state of one run.
fn state_of(r: &RunRec) -> RunState {
    match r.exit_code {
        0 if r.errors.is_empty() && r.summary.files_skipped == 0 => RunState::Ok,
        0 | 3 => RunState::Warnings,
        _ => RunState::Failed,
    }
}

/// The state of a device from its last run and its last successful one.
pub(crate) fn run_state(last: Option<&RunRec>, success: Option<&RunRec>, now_us: i64) -> RunState {
    match (last, success) {
        (None, _) => RunState::Never,
        (Some(_), s) if s.is_none_or(|s| now_us - s.received_us > OVERDUE_US) => {
            if last.is_some_and(|l| !l.succeeded()) {
                RunState::Failed
            } else {
                RunState::Overdue
            }
        }
        (Some(l), _) => state_of(l),
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

struct Row {
    user: String,
    device: String,
    id: u64,
    run: RunRec,
}

/// Every stored run (newest first), with its user's and device's name.
fn all_runs(db: &Db) -> Result<Vec<Row>, crate::db::DbError> {
    let mut out = Vec::new();
    for d in db.last_runs()? {
        let Some(uid) = db.user_id(&d.user)? else {
            continue;
        };
        for (id, run) in db.runs(uid, d.device_id, crate::db::KEEP_RUNS)? {
            out.push(Row {
                user: d.user.clone(),
                device: d.device.clone(),
                id,
                run,
            });
        }
    }
    out.sort_by(|a, b| {
        b.run
            .received_us
            .cmp(&a.run.received_us)
            .then(b.id.cmp(&a.id))
    });
    Ok(out)
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
    let c = console(&req, &admin)?;
    let lang = admin.lang;
    let db = c.res.db.clone();
    let rows = web::block(move || all_runs(&db))
        .await
        .map_err(|e| admin.fail(Fail::from(e)))?
        .map_err(|e| admin.fail(Fail::from(e)))?;
    let q = q.into_inner();
    let pick = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let (user, device, state) = (pick(&q.user), pick(&q.device), pick(&q.state));
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| user.as_ref().is_none_or(|u| *u == r.user))
        .filter(|r| device.as_ref().is_none_or(|d| *d == r.device))
        .filter(|r| state.as_ref().is_none_or(|s| s == state_of(&r.run).id()))
        .collect();
    let total = rows.len();
    let page = q.page.unwrap_or(1).max(1);
    let rows = layout::page_of(rows, page, PER_PAGE);
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
        (table("runs-table", html! {
            th { (t(lang, Key::ColReceived)) } th { (t(lang, Key::ColUser)) }
            th { (t(lang, Key::ColDevice)) } th { (t(lang, Key::ColState)) }
            th.num { (t(lang, Key::ColFiles)) } th.num { (t(lang, Key::ColSkipped)) }
            th.num { (t(lang, Key::ColErrors)) } th.num { (t(lang, Key::ColBytesRead)) }
            th.num { (t(lang, Key::ColDuration)) }
        }, html! {
            @for r in &rows {
                tr data-testid={ "run-row-" (r.id) } {
                    td { a href={ "/admin/runs/" (url_encode(&r.user)) "/" (url_encode(&r.device)) "/" (r.id) }
                        data-testid={ "run-link-" (r.id) } { (when(r.run.received_us)) } }
                    td { (r.user) } td { (r.device) }
                    (state_cell(lang, state_of(&r.run), &format!("run-state-{}", r.id)))
                    td.num { (r.run.summary.files_seen) } td.num { (r.run.summary.files_skipped) }
                    td.num { (r.run.errors.len()) } td.num { (bytes_short(r.run.summary.bytes_read)) }
                    td.num { (format!("{:.0} s", r.run.summary.duration_s)) }
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
    let c = console(&req, &admin)?;
    let lang = admin.lang;
    let (user, device, id) = path.into_inner();
    let db = c.res.db.clone();
    let (u, d) = (user.clone(), device.clone());
    let found = web::block(move || {
        Ok::<_, crate::db::DbError>(
            all_runs(&db)?
                .into_iter()
                .find(|r| r.id == id && r.user == u && r.device == d),
        )
    })
    .await
    .map_err(|e| admin.fail(Fail::from(e)))?
    .map_err(|e| admin.fail(Fail::from(e)))?
    .ok_or_else(|| admin.fail(Fail::NotFound))?;
    let r = &found.run;
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
                dd class={ "state-" (state_of(r).id()) } data-testid="run-state" { (t(lang, state_of(r).key())) }
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
