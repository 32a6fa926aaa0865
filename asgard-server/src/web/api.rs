//! The JSON twin of the console under `/api/admin/…`: the same tasks as the pages, for scripts.
//! An admin API token (`Authorization: Bearer`) or a cookie session (state changes then need
//! `X-CSRF-Token` and the server's own origin), see [`super::session::AdminApi`]. Answers are the
//! reports as JSON; errors `{code, message}` with their status.
//!
//! | method and path | task |
//! | --- | --- |
//! | `GET /api/admin/stats` | `stats` |
//! | `GET /api/admin/users` | `user list` |
//! | `GET /api/admin/devices` | `device list` |
//! | `POST /api/admin/users/keep` `{user, versions}` (`null` clears) | `user set-keep` |
//! | `POST /api/admin/devices/approve` `{user, device}` | `device approve` |
//! | `POST /api/admin/devices/reset` `{user, device}` | `device reset` (answers the one-time code) |
//! | `POST /api/admin/maintenance/gc` `{dry_run}` | `gc` |
//! | `POST /api/admin/maintenance/verify` `{sample_percent}` (`null` = all) | `verify` |
//! | `POST /api/admin/maintenance/db-backup` | `db-backup` |

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::error::{Fail, WebError};
use super::pages::console;
use super::session::{Admin, AdminApi};
use crate::ops::Task;

/// The routes below `/api/admin`.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(16 * 1024))
        .route("/stats", web::get().to(|r, a| get(r, a, Task::Stats)))
        .route("/users", web::get().to(|r, a| get(r, a, Task::UserList)))
        .route(
            "/devices",
            web::get().to(|r, a| get(r, a, Task::DeviceList)),
        )
        .route("/users/keep", web::post().to(keep))
        .route("/devices/approve", web::post().to(approve))
        .route("/devices/reset", web::post().to(reset))
        .route("/maintenance/gc", web::post().to(gc))
        .route("/maintenance/verify", web::post().to(verify))
        .route("/maintenance/db-backup", web::post().to(db_backup))
        // The account actions, reports and background jobs of the ops tasks.
        .configure(super::api_ops::routes)
        .default_service(web::to(unknown));
}

async fn unknown(AdminApi(admin): AdminApi) -> Result<HttpResponse, WebError> {
    Err(admin.fail(Fail::NotFound))
}

/// Runs `task` and answers its report; a change is audited (`ops::audit`: the entry the
/// command line leaves too) once it happened.
async fn answer(req: &HttpRequest, admin: &Admin, task: Task) -> Result<HttpResponse, WebError> {
    let report = console(req, admin)?.run_audited(admin, task).await?;
    Ok(HttpResponse::Ok().json(&report))
}

async fn get(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    task: Task,
) -> Result<HttpResponse, WebError> {
    answer(&req, &admin, task).await
}

/// Reads a JSON body in the twin's error shape.
fn body<T>(admin: &Admin, b: Result<web::Json<T>, actix_web::Error>) -> Result<T, WebError> {
    b.map(web::Json::into_inner)
        .map_err(|e| admin.fail(Fail::BadRequest(e.to_string())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeepBody {
    user: String,
    versions: Option<u32>,
}

async fn keep(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<KeepBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    answer(
        &req,
        &admin,
        Task::UserSetKeep {
            user: b.user,
            versions: b.versions,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceBody {
    user: String,
    device: String,
}

async fn approve(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<DeviceBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    answer(
        &req,
        &admin,
        Task::DeviceApprove {
            user: b.user,
            device: b.device,
        },
    )
    .await
}

async fn reset(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<DeviceBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    answer(
        &req,
        &admin,
        Task::DeviceReset {
            user: b.user,
            device: b.device,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GcBody {
    #[serde(default = "yes")]
    dry_run: bool,
}

fn yes() -> bool {
    true
}

async fn gc(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<GcBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    answer(
        &req,
        &admin,
        Task::Gc {
            dry_run: b.dry_run,
            grace: None,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    sample_percent: Option<f64>,
}

async fn verify(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<VerifyBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    if b.sample_percent.is_some_and(|p| !(p > 0.0 && p <= 100.0)) {
        return Err(admin.fail(Fail::BadRequest("sample_percent".into())));
    }
    answer(
        &req,
        &admin,
        Task::Verify {
            sample_percent: b.sample_percent,
            user: None,
        },
    )
    .await
}

async fn db_backup(req: HttpRequest, AdminApi(admin): AdminApi) -> Result<HttpResponse, WebError> {
    answer(&req, &admin, Task::DbBackup { to: None }).await
}
