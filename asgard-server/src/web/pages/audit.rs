//! Protokoll: the audit log, newest first, paged by the id of the oldest entry shown.

use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::{console, html};
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t};
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
                    td { (r.client.as_deref().unwrap_or("–")) } td { (r.action.as_str()) }
                    td { (r.object) } td.wrap { (r.detail) }
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
