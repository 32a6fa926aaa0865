//! Login (name + password), the second factor, logout and the language switch.
//!
//! A refused login says the same for an unknown name and a wrong password (WebAuth also spends
//! the same time on both); a throttled one says how long to wait (429 with `Retry-After`). The
//! session id is renewed at each step by WebAuth; an old session cookie the browser still sent
//! is ended first. The login form has no session yet, so no token: its POST needs the server's
//! own origin (a forged login into another account is refused as well).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::Lang;
use maud::{Markup, html};
use serde::Deserialize;

use crate::db::{Stage, Subject};
use crate::service::webauth::Refused;
use crate::web::error::{Fail, WebError};
use crate::web::i18n::{Key, LANG_COOKIE, t, tv};
use crate::web::session::{
    AdminForm, CsrfForm, client_of, context, cookie_session, removal_cookie, session_cookie,
};
use crate::web::{csrf, layout};

fn html_page(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

fn see_other(to: &str) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::SeeOther();
    b.insert_header((header::LOCATION, to.to_owned()));
    b
}

fn login_form(lang: Lang, error: Option<&str>) -> Markup {
    let body = html! {
        @if let Some(e) = error { div.flash.error role="alert" data-testid="login-error" { (e) } }
        form.stack method="post" action="/admin/login" data-testid="login-form" {
            label { (t(lang, Key::LoginName))
                input type="text" name="name" autocomplete="username" required
                    maxlength="64" autofocus data-testid="login-name"; }
            label { (t(lang, Key::LoginPassword))
                input type="password" name="password" autocomplete="current-password" required
                    maxlength="1024" data-testid="login-password"; }
            button type="submit" data-testid="login-submit" { (t(lang, Key::LoginSubmit)) }
        }
    };
    layout::bare(lang, t(lang, Key::LoginTitle), body)
}

/// `GET /admin/login`
pub(crate) async fn login_page(req: HttpRequest) -> Result<HttpResponse, WebError> {
    let (console, lang) = context(&req);
    let err = WebError::console(lang, false);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    let session = cookie_session(&console, &req).await.map_err(err)?;
    // A user's session (issue 14) is no admin's: the form, not a redirect loop via `/admin`.
    if let Some((_, info)) = session.filter(|(_, i)| matches!(i.subject, Subject::Admin(_))) {
        return Ok(see_other(if info.stage == Stage::Full {
            "/admin"
        } else {
            "/admin/login/totp"
        })
        .finish());
    }
    Ok(html_page(StatusCode::OK, login_form(lang, None)))
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    name: String,
    password: String,
}

/// The answer to a refused step: the form again with the message, 401 or 429.
pub(crate) fn refused(
    lang: Lang,
    why: &Refused,
    form: impl Fn(Lang, Option<&str>) -> Markup,
) -> HttpResponse {
    let (status, text, wait) = match why {
        Refused::Invalid => (StatusCode::UNAUTHORIZED, String::new(), None),
        Refused::Throttled { retry_after } => {
            let s = retry_after.as_secs().max(1);
            let text = tv(lang, Key::LoginThrottled, &[("seconds", &s.to_string())]);
            (StatusCode::TOO_MANY_REQUESTS, text, Some(s))
        }
        Refused::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            t(lang, Key::ErrInternal).to_owned(),
            None,
        ),
        Refused::SecondFactorLocked { until_us } => {
            let s = (until_us - crate::db::now_us()).max(1_000_000) / 1_000_000;
            let text = tv(lang, Key::TotpLocked, &[("seconds", &s.to_string())]);
            (StatusCode::TOO_MANY_REQUESTS, text, Some(s as u64))
        }
    };
    let mut res = html_page(status, form(lang, Some(&text)));
    if let Some(s) = wait {
        res.headers_mut().insert(header::RETRY_AFTER, s.into());
    }
    res
}

/// `POST /admin/login`
pub(crate) async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let (console, lang) = context(&req);
    let err = WebError::console(lang, false);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    if !csrf::same_origin(&req) {
        return Err(err(Fail::Csrf));
    }
    if let Some((old, _)) = cookie_session(&console, &req).await.map_err(err)? {
        let auth = console.auth.clone();
        web::block(move || auth.logout(&old))
            .await
            .map_err(|e| err(e.into()))?;
    }
    let LoginForm { name, password } = form.into_inner();
    let client = client_of(&req);
    let auth = console.auth.clone();
    let result = web::block(move || auth.login(&name, &password, client, crate::db::now_us()))
        .await
        .map_err(|e| err(e.into()))?;
    match result {
        Ok(login) => {
            let to = if login.needs_totp {
                "/admin/login/totp"
            } else {
                "/admin"
            };
            Ok(see_other(to)
                .cookie(session_cookie(&login.session))
                .finish())
        }
        Err(Refused::Invalid) => Ok(refused(lang, &Refused::Invalid, |l, _| {
            login_form(l, Some(t(l, Key::LoginFailed)))
        })),
        Err(why) => Ok(refused(lang, &why, login_form)),
    }
}

fn totp_form(lang: Lang, csrf_token: &str, error: Option<&str>) -> Markup {
    let body = html! {
        @if let Some(e) = error { div.flash.error role="alert" data-testid="totp-error" { (e) } }
        p { (t(lang, Key::TotpHint)) }
        form.stack method="post" action="/admin/login/totp" data-testid="totp-form" {
            input type="hidden" name=(csrf::FIELD) value=(csrf_token);
            label { (t(lang, Key::TotpCode))
                input type="text" name="code" autocomplete="one-time-code" inputmode="text"
                    required maxlength="64" autofocus data-testid="totp-code"; }
            button type="submit" data-testid="totp-submit" { (t(lang, Key::TotpSubmit)) }
        }
    };
    layout::bare(lang, t(lang, Key::TotpTitle), body)
}

/// `GET /admin/login/totp`: only for a session that waits for its second factor.
pub(crate) async fn totp_page(req: HttpRequest) -> Result<HttpResponse, WebError> {
    let (console, lang) = context(&req);
    let err = WebError::console(lang, false);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    match cookie_session(&console, &req).await.map_err(err)? {
        None => Ok(see_other("/admin/login").finish()),
        Some((_, info)) if info.stage == Stage::Full => Ok(see_other("/admin").finish()),
        Some((_, info)) => Ok(html_page(StatusCode::OK, totp_form(lang, &info.csrf, None))),
    }
}

#[derive(Deserialize)]
pub(crate) struct TotpForm {
    #[serde(default)]
    csrf: String,
    code: String,
}

/// `POST /admin/login/totp`
pub(crate) async fn totp(
    req: HttpRequest,
    form: web::Form<TotpForm>,
) -> Result<HttpResponse, WebError> {
    let (console, lang) = context(&req);
    let err = WebError::console(lang, false);
    let console = console.ok_or_else(|| err(Fail::Internal("no console state".into())))?;
    let Some((id, info)) = cookie_session(&console, &req).await.map_err(err)? else {
        return Ok(see_other("/admin/login").finish());
    };
    if info.stage == Stage::Full {
        return Ok(see_other("/admin").finish());
    }
    if !csrf::same_origin(&req) || !info.csrf_matches(&form.csrf) {
        return Err(err(Fail::Csrf));
    }
    let client = client_of(&req);
    let auth = console.auth.clone();
    let code = form.into_inner().code;
    let result = web::block(move || auth.second_factor(&id, &code, client, crate::db::now_us()))
        .await
        .map_err(|e| err(e.into()))?;
    let token = info.csrf.clone();
    match result {
        Ok(renewed) => Ok(see_other("/admin")
            .cookie(session_cookie(&renewed))
            .finish()),
        Err(Refused::Invalid) => Ok(refused(lang, &Refused::Invalid, |l, _| {
            totp_form(l, &token, Some(t(l, Key::TotpFailed)))
        })),
        Err(why) => Ok(refused(lang, &why, |l, m| totp_form(l, &token, m))),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

impl CsrfForm for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/logout`: ends the session on the server and removes the cookie.
pub(crate) async fn logout(
    req: HttpRequest,
    AdminForm(admin, _): AdminForm<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let (console, _) = context(&req);
    let console = console.ok_or_else(|| admin.fail(Fail::Internal("no console state".into())))?;
    if let Some((id, _)) = admin.session.clone() {
        let auth = console.auth.clone();
        web::block(move || auth.logout(&id))
            .await
            .map_err(|e| admin.fail(Fail::from(e)))?;
    }
    Ok(see_other("/admin/login").cookie(removal_cookie()).finish())
}

#[derive(Deserialize)]
pub(crate) struct LangQuery {
    set: String,
    back: Option<String>,
}

/// `GET /admin/lang?set=de|en&back=/admin/…`: remembers the language in a cookie and goes back
/// to the page (only to a console page: no open redirect).
pub(crate) async fn set_lang(q: web::Query<LangQuery>) -> HttpResponse {
    let lang = if q.set == "en" { "en" } else { "de" };
    let back = q
        .back
        .as_deref()
        .filter(|b| {
            ["/admin", "/my", "/login"].iter().any(|p| b.starts_with(p))
                && !b.contains("//")
                && !b.contains('\\')
        })
        .unwrap_or("/admin");
    let cookie = Cookie::build(LANG_COOKIE, lang)
        .path("/")
        .secure(true)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    see_other(back).cookie(cookie).finish()
}
