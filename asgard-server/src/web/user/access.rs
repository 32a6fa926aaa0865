//! Getting in and out of the user's pages: the one-time link, the web password, logout.
//!
//! A link answers a 303 to `/my` (a URL without the secret) with the new session's cookie; a
//! used or expired link a short page with 410, an unknown or malformed one 404, and neither
//! gives a session. The login form says the same for a wrong name and a wrong password, and is
//! throttled like the admins' (see `WebAuth::user_login`).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::Lang;
use maud::{Markup, html};
use serde::Deserialize;

use crate::service::webauth::Refused;
use crate::service::webauth::user::LinkRefused;
use crate::web::csrf;
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, t};
use crate::web::layout;
use crate::web::pages::login::{CsrfOnly, refused};
use crate::web::session::{
    UserForm, client_of, context, cookie_session, removal_cookie, session_cookie, user_error,
};

fn see_other(to: &str) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::SeeOther();
    b.insert_header((header::LOCATION, to.to_owned()));
    b
}

fn html_page(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// Ends the session of the request's cookie, if any (a new one is about to replace it).
async fn end_old_session(req: &HttpRequest, lang: Lang) -> Result<(), WebError> {
    let (console, _) = context(req);
    let err = |fail| user_error(fail, lang);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    if let Some((old, _)) = cookie_session(&console, req).await.map_err(err)? {
        let auth = console.auth.clone();
        web::block(move || auth.logout(&old))
            .await
            .map_err(|e| err(e.into()))?;
    }
    Ok(())
}

/// `GET /link/{secret}`
pub(crate) async fn link(
    req: HttpRequest,
    secret: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let (console, lang) = context(&req);
    let err = |fail| user_error(fail, lang);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    let auth = console.auth.clone();
    let client = client_of(&req);
    let secret = secret.into_inner();
    let result = web::block(move || auth.link_login(&secret, client, crate::db::now_us()))
        .await
        .map_err(|e| err(e.into()))?;
    let (status, key) = match result {
        Ok(session) => {
            end_old_session(&req, lang).await?;
            return Ok(see_other("/my").cookie(session_cookie(&session)).finish());
        }
        Err(LinkRefused::Unknown) => (StatusCode::NOT_FOUND, Key::LinkUnknown),
        Err(LinkRefused::Gone) => (StatusCode::GONE, Key::LinkGone),
        Err(LinkRefused::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, Key::ErrInternal),
    };
    let body = html! {
        div.flash.error role="alert" data-testid="link-refused" { (t(lang, key)) }
    };
    Ok(html_page(
        status,
        layout::bare_user(lang, t(lang, Key::LinkTitle), body),
    ))
}

fn login_form(lang: Lang, error: Option<&str>) -> Markup {
    let body = html! {
        @if let Some(e) = error { div.flash.error role="alert" data-testid="login-error" { (e) } }
        form.stack method="post" action="/login" data-testid="login-form" {
            label { (t(lang, Key::LoginName))
                input type="text" name="name" autocomplete="username" required
                    maxlength="64" autofocus data-testid="login-name"; }
            label { (t(lang, Key::LoginPassword))
                input type="password" name="password" autocomplete="current-password" required
                    maxlength="1024" data-testid="login-password"; }
            button type="submit" data-testid="login-submit" { (t(lang, Key::LoginSubmit)) }
        }
        p.muted data-testid="login-hint" { (t(lang, Key::UserLoginHint)) }
    };
    layout::bare_user(lang, t(lang, Key::UserLoginTitle), body)
}

/// `GET /login`: the form; a signed-in user goes on to `/my`.
pub(crate) async fn login_page(req: HttpRequest) -> Result<HttpResponse, WebError> {
    let (console, lang) = context(&req);
    let err = |fail| user_error(fail, lang);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    let signed_in = cookie_session(&console, &req)
        .await
        .map_err(err)?
        .is_some_and(|(_, info)| info.user().is_some());
    if signed_in {
        return Ok(see_other("/my").finish());
    }
    Ok(html_page(StatusCode::OK, login_form(lang, None)))
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    name: String,
    password: String,
}

/// `POST /login`: the form has no session yet, so no token; it needs the server's own origin.
pub(crate) async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let (console, lang) = context(&req);
    let err = |fail| user_error(fail, lang);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    if !csrf::same_origin(&req) {
        return Err(err(Fail::Csrf));
    }
    let LoginForm { name, password } = form.into_inner();
    if name.len() > 256 || password.len() > 4096 {
        return Ok(refused(lang, &Refused::Invalid, |l, _| {
            login_form(l, Some(t(l, Key::LoginFailed)))
        }));
    }
    let client = client_of(&req);
    let auth = console.auth.clone();
    let result = web::block(move || auth.user_login(&name, &password, client, crate::db::now_us()))
        .await
        .map_err(|e| err(e.into()))?;
    match result {
        Ok(session) => {
            end_old_session(&req, lang).await?;
            Ok(see_other("/my").cookie(session_cookie(&session)).finish())
        }
        Err(Refused::Invalid) => Ok(refused(lang, &Refused::Invalid, |l, _| {
            login_form(l, Some(t(l, Key::LoginFailed)))
        })),
        Err(why) => Ok(refused(lang, &why, login_form)),
    }
}

/// `POST /logout`: ends the user's session on the server and removes the cookie.
pub(crate) async fn logout(
    req: HttpRequest,
    UserForm(user, _): UserForm<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let console = super::console(&req, &user)?;
    let auth = console.auth.clone();
    let id = user.session.clone();
    web::block(move || auth.logout(&id))
        .await
        .map_err(|e| user.fail(Fail::from(e)))?;
    Ok(see_other("/login").cookie(removal_cookie()).finish())
}
