//! The pages of the console: login and the six pages of the navigation bar.

pub(crate) mod audit;
pub(crate) mod devices;
pub(crate) mod login;
pub(crate) mod maintenance;
pub(crate) mod overview;
pub(crate) mod runs;
pub(crate) mod users;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::Markup;

use super::Console;
use super::error::{Fail, WebError};
use super::session::Admin;

/// The routes below `/admin`.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(overview::page))
        .route("/", web::get().to(overview::page))
        .route("/lang", web::get().to(login::set_lang))
        .route("/login", web::get().to(login::login_page))
        .route("/login", web::post().to(login::login))
        .route("/login/totp", web::get().to(login::totp_page))
        .route("/login/totp", web::post().to(login::totp))
        .route("/logout", web::post().to(login::logout))
        .route("/users", web::get().to(users::page))
        .route("/users/keep", web::post().to(users::keep))
        .route("/users/state", web::post().to(users::state))
        .route("/users/delete", web::post().to(users::delete))
        // Issue 14 (uauth): a restore link for a user.
        .route("/users/link", web::post().to(users::link))
        .route("/devices/revoke", web::post().to(devices::revoke))
        .route("/devices/token", web::post().to(devices::token))
        .route(
            "/devices/registration",
            web::post().to(devices::registration),
        )
        .route("/devices", web::get().to(devices::page))
        .route("/devices/approve", web::post().to(devices::approve))
        .route("/devices/refuse", web::post().to(devices::refuse))
        .route("/devices/reset", web::post().to(devices::reset))
        .route("/runs", web::get().to(runs::page))
        .route("/runs/{user}/{device}/{id}", web::get().to(runs::detail))
        .route("/maintenance", web::get().to(maintenance::page))
        .route("/maintenance/gc", web::post().to(maintenance::gc))
        .route("/maintenance/verify", web::post().to(maintenance::verify))
        .route(
            "/maintenance/db-backup",
            web::post().to(maintenance::db_backup),
        )
        .route("/audit", web::get().to(audit::page))
        .default_service(web::to(not_found));
}

/// An unknown console path: to the login without a session (nothing is revealed), to the TOTP
/// step for a session that waits for it, else 404.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, WebError> {
    let (console, lang) = super::session::context(&req);
    let err = WebError::console(lang, false);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    match super::session::cookie_session(&console, &req)
        .await
        .map_err(err)?
    {
        None => Err(err(Fail::NoSession)),
        // A session that still waits for its second factor learns nothing more either.
        Some((_, info)) if info.stage != crate::db::Stage::Full => Err(err(Fail::NeedTotp)),
        Some(_) => Err(err(Fail::NotFound)),
    }
}

/// The console state of a request (always there in the server).
pub(crate) fn console<'a>(req: &'a HttpRequest, admin: &Admin) -> Result<&'a Console, WebError> {
    req.app_data::<web::Data<Console>>()
        .map(|c| c.get_ref())
        .ok_or_else(|| admin.fail(Fail::Internal("no console state".into())))
}

/// A rendered page.
pub(crate) fn html(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// After a POST: back to a page (303), its message in the query (`?ok=<key>` shows a flash).
pub(crate) fn back(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}
