//! # The admin console in the browser
//!
//! Server-rendered pages (maud), German by default with an English switch, working without
//! JavaScript, and their JSON twin under `/api/admin/…`. The handlers are thin: they parse,
//! authorise ([`session`]), call one `ops` task or one `WebAuth` function, and render. The
//! restore pages for end users (the next issue) reuse the layout, the sessions, the CSRF check
//! and the catalogue.
//!
//! - [`layout`]: the one page layout and its components (table, sort header, pager, form with
//!   its CSRF field, flash message);
//! - [`i18n`]: the catalogue, one file per language in `locales/`, keys checked by the compiler;
//! - [`session`]: the extractors (page, form, JSON) and the session cookie;
//! - [`csrf`]: the origin check and the token's field and header;
//! - [`headers`]: the security headers of every console answer;
//! - [`assets`]: the embedded style sheet;
//! - `pages/`: login, TOTP, logout and the six pages; [`api`]: the JSON twin.
//!
//! ## Routes
//! | path | what |
//! | --- | --- |
//! | `GET /admin/login`, `POST /admin/login` | name + password form |
//! | `GET/POST /admin/login/totp` | the second factor (a session in stage NeedTotp) |
//! | `POST /admin/logout` | ends the session (CSRF) |
//! | `GET /admin/lang?set=de|en&back=/admin/…` | sets the `lang` cookie, back to the page |
//! | `GET /admin` | Übersicht |
//! | `GET /admin/users`, `POST /admin/users/keep` | Benutzer |
//! | `GET /admin/devices`, `POST /admin/devices/{approve,reset}` | Geräte und Token |
//! | `GET /admin/runs`, `GET /admin/runs/{id}` | Läufe |
//! | `GET /admin/maintenance`, `POST /admin/maintenance/{gc,verify,db-backup}` | Wartung |
//! | `GET /admin/audit` | Protokoll |
//! | `/api/admin/…` | the JSON twin, see [`api`] |
//! | `POST /admin/users/link` | issue 14: a restore link for a user, shown once |
//! | `/my…`, `/login`, `/logout`, `/link/{secret}`, `/lang` | issue 14: the user's pages, see [`user`] |
//!
//! ## `data-testid`s for the browser tests
//! - layout: `brand`, `nav`, `nav-overview`, `nav-users`, `nav-devices`, `nav-runs`,
//!   `nav-maintenance`, `nav-audit`, `nav-logout` (a button in `logout-form`), `admin-name`,
//!   `lang-switch`, `lang-de`, `lang-en`, `main`, `page-title`, `flash-ok`, `flash-error`,
//!   `pager`, `pager-prev`, `pager-next`, `pager-position`, `sort-<column>`; error pages:
//!   `error-message`, `error-back`;
//! - login: `login-form`, `login-name`, `login-password`, `login-submit`, `login-error`;
//!   TOTP: `totp-form`, `totp-code`, `totp-submit`, `totp-error`;
//! - Übersicht: `overview`, `overview-users`, `overview-devices`, `overview-pending`,
//!   `overview-logical`, `overview-stored`, `overview-dedupe`, `overview-compression`,
//!   `overview-last-gc`, `overview-last-verify`, table `last-runs` with rows
//!   `lastrun-row-{user}-{device}` and cells `lastrun-state-{user}-{device}`;
//! - Benutzer: table `users-table`, rows `user-row-{user}`, form `keep-form-{user}` with
//!   `keep-input-{user}`, `keep-set-{user}`, `keep-clear-{user}`; cell `keep-{user}`;
//! - Geräte und Token: table `devices-table`, rows `device-row-{user}-{device}`, cell
//!   `device-state-{user}-{device}`, buttons `approve-{user}-{device}`, `reset-{user}-{device}`;
//!   the one-time code after a reset: `one-time-code`;
//! - Läufe: filter form `runs-filter` (`runs-filter-user`, `runs-filter-device`,
//!   `runs-filter-state`, `runs-filter-submit`), table `runs-table`, rows `run-row-{id}`, links
//!   `run-link-{id}`; detail: `run-detail`, `run-state`, `run-errors`, `run-error`;
//! - Wartung: forms `gc-form` (`gc-dry-run` checkbox, `gc-start`), `verify-form`
//!   (`verify-sample` number, `verify-full` checkbox, `verify-start`), `dbbackup-form`
//!   (`dbbackup-start`); results `last-gc`, `last-verify`, `last-dbbackup`, `verify-damaged`;
//! - Protokoll: table `audit-table`, rows `audit-row-{id}`.
//! - Issue 14 (uauth), Benutzer: form `link-form-{user}` with button `link-{user}`; the answer
//!   shows the restore link once in `restore-link` (`back-to-users`). The user's pages (see
//!   [`user`]): `brand`, `nav`, `nav-my-devices`, `nav-search`, `nav-deleted`, `nav-logout` (in
//!   `logout-form`), `user-name`, `lang-switch`; start page: table `my-devices` with rows
//!   `my-device-{device}`, links `browse-{device}`, cells `my-last-backup-{device}`,
//!   `my-no-devices`, `link-origin` (a session from an admin's restore link); `/login`: as the
//!   admin's login plus `login-hint`; a refused link: `link-refused`.

pub(crate) mod api;
pub(crate) mod api_ops;
pub(crate) mod assets;
pub(crate) mod csrf;
pub(crate) mod error;
pub(crate) mod headers;
pub(crate) mod i18n;
pub(crate) mod layout;
pub(crate) mod pages;
pub(crate) mod session;
// uauth (issue 14): the end user's pages.
pub(crate) mod user;
// ubrowse: paths in the URLs of the user pages (used by the user pages as they land).
#[allow(dead_code)]
pub(crate) mod userpath;

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::db::{AuditAction, AuditRec};
use crate::ops::events::Origin;
use crate::ops::{Report, Resources, Task};
use crate::service::webauth::WebAuth;
use error::Fail;
use session::Admin;

/// What the console's handlers use: the server's task resources and the admin authentication.
pub(crate) struct Console {
    pub res: Resources,
    pub auth: Arc<WebAuth>,
}

impl Console {
    /// Runs `task` for `admin` off the async workers, through the one path every admin task
    /// takes (`Resources::run`: the same code the CLI and the scheduler use).
    pub(crate) async fn run(&self, admin: &Admin, task: Task) -> Result<Report, error::WebError> {
        let res = self.res.clone();
        web::block(move || res.run(&task, Origin::AdminChannel, &mut |_| {}))
            .await
            .map_err(|e| admin.fail(Fail::from(e)))?
            .map_err(|e| admin.fail(Fail::Ops(e)))
    }

    /// Records an admin action in the audit log (a failure to record is logged, not shown: the
    /// action itself happened or is about to).
    pub(crate) async fn audit(
        &self,
        admin: &Admin,
        action: AuditAction,
        object: &str,
        detail: &str,
    ) {
        let rec = AuditRec::new(crate::db::now_us(), admin.name.clone(), action, object)
            .client(admin.client)
            .detail(detail);
        let auth = self.auth.clone();
        if let Err(e) = web::block(move || auth.audit(rec)).await {
            tracing::error!(error = %e, "audit log");
        }
    }
}

/// Every route of the console; configure it before the API (whose scope catches every other
/// path). Each answer gets the security headers.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    let headers = || from_fn(headers::security_headers);
    cfg.service(
        web::scope("/assets")
            .wrap(headers())
            .route("/{name}", web::get().to(assets::asset)),
    )
    .service(
        web::scope("/api/admin")
            .wrap(headers())
            .configure(api::routes),
    )
    .service(
        web::scope("/admin")
            .wrap(headers())
            .configure(pages::routes),
    )
    // uauth (issue 14): the end user's pages under `/my`, and getting in and out.
    .service(web::scope("/my").wrap(headers()).configure(user::routes))
    .configure(user::access_routes);
}
