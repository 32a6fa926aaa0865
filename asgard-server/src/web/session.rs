//! Who is asking: the extractors every console handler starts with.
//!
//! - [`AdminPage`]: a page (GET) of a signed-in admin. No session: 303 to `/admin/login`; a
//!   session that still needs its second factor: 303 to `/admin/login/totp`. It refuses any
//!   other method, so a state-changing page handler cannot forget the CSRF check: those take
//!   [`AdminForm`], which checks the origin and the form's `csrf` field against the session.
//! - [`AdminApi`]: the JSON twin. An admin API token (`Authorization: Bearer`) or a cookie
//!   session; without either 401. A cookie request that changes state needs the `X-CSRF-Token`
//!   header and the server's own origin; a bearer request needs neither (no cookie rides along)
//!   and never gets a cookie session.
//!
//! A device token is not an admin token: [`WebAuth::api_token`] knows only admin tokens, so an
//! agent's token opens nothing here. Sessions live server-side ([`WebAuth`]): the cookie holds a
//! random id, the database its hash, so logout and revocation are real.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, web};
use asgard_core::Lang;
use serde::de::DeserializeOwned;

use super::Console;
use super::csrf;
use super::error::{Fail, WebError};
use super::i18n::lang_of;
use crate::db::Stage;
use crate::service::webauth::{SessionInfo, UserRef};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "asgard_session";

/// The session cookie for `id`: `HttpOnly; Secure; SameSite=Strict; Path=/`, a browser session
/// cookie (the server ends the session; the cookie carries no expiry of its own).
pub(crate) fn session_cookie(id: &str) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, id.to_owned())
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path("/")
        .finish()
}

/// A cookie that removes the session cookie.
pub(crate) fn removal_cookie() -> Cookie<'static> {
    let mut c = session_cookie("");
    c.make_removal();
    c
}

/// A signed-in admin and how to answer them.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub name: String,
    pub lang: Lang,
    /// The cookie session (its id and what the server holds of it); `None` for an admin API
    /// token.
    pub session: Option<(String, SessionInfo)>,
    /// The client's address, for the audit log.
    pub client: std::net::IpAddr,
    /// Answers go out as JSON (the API twin) rather than HTML.
    pub json: bool,
}

impl Admin {
    /// The CSRF token for the forms of a page (empty for token requests, which render none).
    pub(crate) fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |(_, s)| s.csrf.as_str())
    }

    /// `fail` answered the way this admin's request is answered.
    pub(crate) fn fail(&self, fail: impl Into<Fail>) -> WebError {
        WebError {
            fail: fail.into(),
            lang: self.lang,
            json: self.json,
            user: false,
        }
    }
}

/// The client's address (what the login throttle counts and the audit log records).
pub(crate) fn client_of(req: &HttpRequest) -> std::net::IpAddr {
    req.peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

/// The console state and the reader's language of a request.
pub(crate) fn context(req: &HttpRequest) -> (Option<web::Data<Console>>, Lang) {
    let console = req.app_data::<web::Data<Console>>().cloned();
    let configured = console
        .as_ref()
        .map(|c| c.res.config.lang())
        .unwrap_or_default();
    (console, lang_of(req, configured))
}

/// The session of the request's cookie, if it is one the server knows and still honours.
pub(crate) async fn cookie_session(
    console: &web::Data<Console>,
    req: &HttpRequest,
) -> Result<Option<(String, SessionInfo)>, Fail> {
    let Some(id) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let auth = console.auth.clone();
    let found = web::block(move || {
        let info = auth.session(&id, crate::db::now_us());
        info.map(|i| (id, i))
    })
    .await?;
    Ok(found)
}

/// Looks up the signed-in admin of a request. `json`: how failures are answered.
async fn admin_of(req: HttpRequest, json: bool) -> Result<Admin, WebError> {
    let (console, lang) = context(&req);
    let err = WebError::console(lang, json);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    let client = client_of(&req);
    if json && let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        // A bearer request is judged by its token alone, whatever cookie rides along.
        let token = value
            .to_str()
            .ok()
            .and_then(|t| t.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned())
            .ok_or_else(|| err(Fail::NoSession))?;
        let auth = console.auth.clone();
        let admin = web::block(move || auth.api_token(&token))
            .await
            .map_err(|e| err(e.into()))?
            .ok_or_else(|| err(Fail::NoSession))?;
        return Ok(Admin {
            name: admin.name,
            lang,
            session: None,
            client,
            json,
        });
    }
    let (id, info) = cookie_session(&console, &req)
        .await
        .map_err(err)?
        .ok_or_else(|| err(Fail::NoSession))?;
    if info.stage != Stage::Full {
        return Err(err(Fail::NeedTotp));
    }
    // A user's session (issue 14) is no admin's: it opens nothing here.
    let Some(admin_ref) = info.admin() else {
        return Err(err(Fail::NoSession));
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !csrf::same_origin(&req) {
        return Err(err(Fail::Csrf));
    }
    if json && !safe && !csrf::header_token(&req).is_some_and(|t| info.csrf_matches(t)) {
        return Err(err(Fail::Csrf));
    }
    Ok(Admin {
        name: admin_ref.name,
        lang,
        session: Some((id, info)),
        client,
        json,
    })
}

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, WebError>>>>;

/// A page (GET) of a signed-in admin.
pub(crate) struct AdminPage(pub Admin);

impl FromRequest for AdminPage {
    type Error = WebError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let admin = admin_of(req.clone(), false).await?;
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                return Err(admin.fail(Fail::Csrf));
            }
            Ok(AdminPage(admin))
        })
    }
}

/// A form that carries the session's CSRF token in its `csrf` field.
pub(crate) trait CsrfForm: DeserializeOwned + 'static {
    fn csrf(&self) -> &str;
}

/// A posted form of a signed-in admin, its origin and CSRF token checked.
pub(crate) struct AdminForm<T>(pub Admin, pub T);

impl<T: CsrfForm> FromRequest for AdminForm<T> {
    type Error = WebError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let form = web::Form::<T>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let admin = admin_of(req, false).await?;
            let form = form
                .await
                .map_err(|e| admin.fail(Fail::BadRequest(e.to_string())))?
                .into_inner();
            let matches = admin
                .session
                .as_ref()
                .is_some_and(|(_, s)| s.csrf_matches(form.csrf()));
            if !matches {
                return Err(admin.fail(Fail::Csrf));
            }
            Ok(AdminForm(admin, form))
        })
    }
}

/// A JSON request of a signed-in admin (session with CSRF header, or admin API token).
pub(crate) struct AdminApi(pub Admin);

impl FromRequest for AdminApi {
    type Error = WebError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(AdminApi(admin_of(req, true).await?)) })
    }
}

// --- uauth (issue 14): the end user's extractors ----------------------------------------------

/// A signed-in end user's request (issue 14). As an extractor: a page (GET or HEAD) of a user
/// session; no session, or an admin's session (which is no user's): 303 to `/login`. Every
/// handler looks up each device, path and version it is given *with* `user.id`.
#[derive(Debug, Clone)]
pub(crate) struct UserPage {
    pub user: UserRef,
    pub lang: Lang,
    /// The session's CSRF token for the page's forms.
    pub csrf: String,
    /// The client's address, for the audit log.
    #[allow(dead_code)] // for udown's audit of every download (issue 14)
    pub client: std::net::IpAddr,
    /// The cookie value of the session (to end it at logout).
    pub(crate) session: String,
    /// What the server holds of the session (e.g. the restore link it came from).
    pub(crate) info: SessionInfo,
}

impl UserPage {
    /// `fail` answered as a user's page is (no session: to `/login`; errors lead back to `/my`).
    pub(crate) fn fail(&self, fail: impl Into<Fail>) -> WebError {
        user_error(fail.into(), self.lang)
    }
}

/// An error of the user's area in the reader's language.
pub(crate) fn user_error(fail: Fail, lang: Lang) -> WebError {
    WebError {
        fail,
        lang,
        json: false,
        user: true,
    }
}

/// Looks up the signed-in user of a request; a state-changing request must come from the
/// server's own origin (the CSRF token is checked by [`UserForm`]).
async fn user_of(req: &HttpRequest) -> Result<UserPage, WebError> {
    let (console, lang) = context(req);
    let err = |fail| user_error(fail, lang);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    let (session, info) = cookie_session(&console, req)
        .await
        .map_err(err)?
        .ok_or_else(|| err(Fail::NoSession))?;
    let user = info.user().ok_or_else(|| err(Fail::NoSession))?;
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !csrf::same_origin(req) {
        return Err(err(Fail::Csrf));
    }
    Ok(UserPage {
        user,
        lang,
        csrf: info.csrf.clone(),
        client: client_of(req),
        session,
        info,
    })
}

impl FromRequest for UserPage {
    type Error = WebError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = user_of(&req).await?;
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                return Err(user.fail(Fail::Csrf));
            }
            Ok(user)
        })
    }
}

/// A posted form of a signed-in end user, its origin and CSRF token (`csrf` field) checked.
pub(crate) struct UserForm<T>(pub UserPage, pub T);

impl<T: CsrfForm> FromRequest for UserForm<T> {
    type Error = WebError;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let form = web::Form::<T>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let user = user_of(&req).await?;
            let form = form
                .await
                .map_err(|e| user.fail(Fail::BadRequest(e.to_string())))?
                .into_inner();
            if !user.info.csrf_matches(form.csrf()) {
                return Err(user.fail(Fail::Csrf));
            }
            Ok(UserForm(user, form))
        })
    }
}

// --- end uauth --------------------------------------------------------------------------------
