//! The JSON twin of the console's account actions, reports and background jobs of issue 13 (the
//! `ops` tasks): every answer is the task's report as JSON, as `--json` of the command prints
//! it. Each change is audited with the admin and the client's address through
//! `crate::ops::audit` (the same entries the command line leaves), never with a secret.
//!
//! | method and path | task |
//! | --- | --- |
//! | `GET /api/admin/overview` | `overview` |
//! | `GET /api/admin/runs?user=&device=&state=&offset=&limit=` | `runs` |
//! | `POST /api/admin/users/disable` `{user}` | `user disable` |
//! | `POST /api/admin/users/enable` `{user}` | `user enable` |
//! | `POST /api/admin/users/delete` `{user, confirm}` (`confirm` repeats the name) | `user delete` |
//! | `POST /api/admin/devices/revoke` `{user, device}` | `device revoke` |
//! | `POST /api/admin/devices/token` `{user, device}` (answers the new token, once) | `device token` |
//! | `POST /api/admin/devices/refuse` `{user, device}` | `device refuse` |
//! | `GET /api/admin/registration` | `registration show` |
//! | `POST /api/admin/registration` `{mode?, enrollment_key?, clear_enrollment_key?, reset?}` | `registration set` |
//! | `GET /api/admin/verify/damage` | what the last verify found: chunk ids, counts per device |
//! | `POST /api/admin/jobs` `{task: "gc"\|"verify"\|"db-backup", dry_run?, sample_percent?}` | a background job: `{id}` (409 while one runs) |
//! | `GET /api/admin/jobs` | `{current, last}`: the running job and the last one of each kind |
//! | `GET /api/admin/jobs/{id}` | one job: steps, and when finished its report or error |

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::error::{Fail, WebError};
use super::pages::console;
use super::session::{Admin, AdminApi};
use crate::config::Registration;
use crate::ops::audit::Actor;
use crate::ops::jobs::{JobBoard, JobError, JobId};
use crate::ops::{RunState, Task};

/// The routes of this file (below `/api/admin`; the caller registers them before its
/// catch-all).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/overview", web::get().to(overview))
        .route("/runs", web::get().to(runs))
        .route("/users/disable", web::post().to(disable))
        .route("/users/enable", web::post().to(enable))
        .route("/users/delete", web::post().to(delete))
        .route("/devices/revoke", web::post().to(revoke))
        .route("/devices/token", web::post().to(token))
        .route("/devices/refuse", web::post().to(refuse))
        .route("/registration", web::get().to(registration_show))
        .route("/registration", web::post().to(registration_set))
        .route("/verify/damage", web::get().to(verify_damage))
        .route("/jobs", web::post().to(job_start))
        .route("/jobs", web::get().to(jobs))
        .route("/jobs/{id}", web::get().to(job));
}

fn actor(admin: &Admin) -> Actor {
    Actor {
        name: admin.name.clone(),
        client: Some(admin.client.to_string()),
    }
}

/// Runs `task` and answers its report; a change is audited once it happened.
async fn run(req: &HttpRequest, admin: &Admin, task: Task) -> Result<HttpResponse, WebError> {
    let report = console(req, admin)?.run_audited(admin, task).await?;
    Ok(HttpResponse::Ok().json(&report))
}

/// Reads a JSON body in the twin's error shape.
fn body<T>(admin: &Admin, b: Result<web::Json<T>, actix_web::Error>) -> Result<T, WebError> {
    b.map(web::Json::into_inner)
        .map_err(|e| admin.fail(Fail::BadRequest(e.to_string())))
}

async fn overview(req: HttpRequest, AdminApi(admin): AdminApi) -> Result<HttpResponse, WebError> {
    run(&req, &admin, Task::Overview).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    user: Option<String>,
    device: Option<String>,
    state: Option<RunState>,
    #[serde(default)]
    offset: u64,
    limit: Option<u32>,
}

async fn runs(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    q: Result<web::Query<RunsQuery>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let q = q
        .map(web::Query::into_inner)
        .map_err(|e| admin.fail(Fail::BadRequest(e.to_string())))?;
    let task = Task::RunList {
        user: q.user.filter(|s| !s.is_empty()),
        device: q.device.filter(|s| !s.is_empty()),
        state: q.state,
        offset: q.offset,
        limit: q.limit.unwrap_or_else(crate::ops::runlist::default_limit),
    };
    run(&req, &admin, task).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    user: String,
}

async fn disable(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<UserBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    run(&req, &admin, Task::UserDisable { user: b.user }).await
}

async fn enable(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<UserBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    run(&req, &admin, Task::UserEnable { user: b.user }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    user: String,
    /// The user's name typed again.
    confirm: String,
}

async fn delete(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<DeleteBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    if b.confirm.trim() != b.user.trim() {
        return Err(admin.fail(Fail::BadRequest("confirm".into())));
    }
    run(&req, &admin, Task::UserDelete { user: b.user }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceBody {
    user: String,
    device: String,
}

async fn revoke(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<DeviceBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    let task = Task::DeviceRevoke {
        user: b.user,
        device: b.device,
    };
    run(&req, &admin, task).await
}

async fn token(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<DeviceBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    let task = Task::DeviceToken {
        user: b.user,
        device: b.device,
    };
    run(&req, &admin, task).await
}

async fn refuse(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<DeviceBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    let task = Task::DeviceRefuse {
        user: b.user,
        device: b.device,
    };
    run(&req, &admin, task).await
}

async fn registration_show(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
) -> Result<HttpResponse, WebError> {
    run(&req, &admin, Task::RegistrationShow).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationBody {
    mode: Option<Registration>,
    enrollment_key: Option<String>,
    #[serde(default)]
    clear_enrollment_key: bool,
    #[serde(default)]
    reset: bool,
}

async fn registration_set(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<RegistrationBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    let task = Task::RegistrationSet {
        mode: b.mode,
        enrollment_key: b.enrollment_key,
        clear_enrollment_key: b.clear_enrollment_key,
        reset: b.reset,
    };
    run(&req, &admin, task).await
}

async fn verify_damage(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
) -> Result<HttpResponse, WebError> {
    run(&req, &admin, Task::VerifyDamage).await
}

fn board<'a>(req: &'a HttpRequest, admin: &Admin) -> Result<&'a JobBoard, WebError> {
    req.app_data::<web::Data<JobBoard>>()
        .map(|b| b.get_ref())
        .ok_or_else(|| admin.fail(Fail::Internal("no job board".into())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobBody {
    /// `gc`, `verify` or `db-backup`.
    task: String,
    /// GC: only report (default true, as the console's button).
    #[serde(default)]
    dry_run: Option<bool>,
    /// Verify: a sample of this many percent; absent = every chunk.
    #[serde(default)]
    sample_percent: Option<f64>,
}

async fn job_start(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    b: Result<web::Json<JobBody>, actix_web::Error>,
) -> Result<HttpResponse, WebError> {
    let b = body(&admin, b)?;
    let task = match b.task.as_str() {
        "gc" => Task::Gc {
            dry_run: b.dry_run.unwrap_or(true),
            grace: None,
        },
        "verify" => {
            if b.sample_percent.is_some_and(|p| !(p > 0.0 && p <= 100.0)) {
                return Err(admin.fail(Fail::BadRequest("sample_percent".into())));
            }
            Task::Verify {
                sample_percent: b.sample_percent,
                user: None,
            }
        }
        "db-backup" => Task::DbBackup { to: None },
        other => return Err(admin.fail(Fail::BadRequest(format!("task {other}")))),
    };
    let data = req
        .app_data::<web::Data<JobBoard>>()
        .cloned()
        .ok_or_else(|| admin.fail(Fail::Internal("no job board".into())))?;
    let who = actor(&admin);
    let started = web::block(move || data.into_inner().start(task, &who))
        .await
        .map_err(|e| admin.fail(Fail::Internal(e.to_string())))?;
    match started {
        Ok(id) => Ok(HttpResponse::Accepted().json(json!({ "id": id }))),
        Err(JobError::AlreadyRunning(current)) => Ok(HttpResponse::Conflict().json(json!({
            "code": "already_running",
            "message": crate::present::messages::job_already_running(&current.name, admin.lang),
            "current": current,
        }))),
        Err(e) => Err(admin.fail(Fail::Internal(e.to_string()))),
    }
}

async fn jobs(req: HttpRequest, AdminApi(admin): AdminApi) -> Result<HttpResponse, WebError> {
    let b = board(&req, &admin)?;
    Ok(HttpResponse::Ok().json(json!({ "current": b.current(), "last": b.last() })))
}

async fn job(
    req: HttpRequest,
    AdminApi(admin): AdminApi,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id: u64 = id
        .parse()
        .map_err(|_| admin.fail(Fail::BadRequest("id".into())))?;
    let b = board(&req, &admin)?;
    match b.status(JobId(id)) {
        Some(s) => Ok(HttpResponse::Ok().json(s)),
        None => Err(admin.fail(Fail::NotFound)),
    }
}
