//! The one error type of the console's handlers. The same failure answers a page as HTML
//! (a redirect to the login, or a short page in the reader's language) and the JSON twin as
//! `{code, message}` with the matching status.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use asgard_core::Lang;
use maud::html;

use super::i18n::{Key, t};
use super::layout;
use crate::ops::{OpsError, gc::GcError, verify::VerifyError};

/// What went wrong.
#[derive(Debug)]
pub(crate) enum Fail {
    /// No (valid) session: pages go to the login, the API answers 401.
    NoSession,
    /// The session still needs its second factor: pages go to the TOTP step, the API 401.
    NeedTotp,
    /// A state-changing request without the session's CSRF token or from another origin.
    Csrf,
    /// A malformed request (a form or query that does not parse, a confirmation that differs).
    BadRequest(String),
    NotFound,
    /// An admin task refused or failed; its text comes from `crate::present`.
    Ops(OpsError),
    /// A server-side failure; the detail is logged, not shown.
    Internal(String),
    /// udown (issue 14): a `Range` outside a file of this size (416 with `Content-Range`).
    RangeNotSatisfiable(u64),
}

/// A [`Fail`] with how to answer it: HTML or JSON, in which language.
#[derive(Debug)]
pub(crate) struct WebError {
    pub fail: Fail,
    pub lang: Lang,
    pub json: bool,
    /// The request was one of the end user's pages (issue 14): no session goes to `/login`, the
    /// error page leads back to `/my`.
    pub user: bool,
}

impl WebError {
    /// How a console (admin) request's failures are answered: `json` or an HTML page, in `lang`.
    pub(crate) fn console(lang: Lang, json: bool) -> impl Fn(Fail) -> WebError + Copy {
        move |fail| WebError {
            fail,
            lang,
            json,
            user: false,
        }
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.fail)
    }
}

impl Fail {
    fn code(&self) -> &'static str {
        match self {
            Fail::NoSession => "unauthorized",
            Fail::NeedTotp => "second_factor_required",
            Fail::Csrf => "csrf",
            Fail::BadRequest(_) => "bad_request",
            Fail::NotFound => "not_found",
            Fail::Ops(
                OpsError::DeviceNotFound { .. }
                | OpsError::UserNotFound { .. }
                | OpsError::NothingPending { .. },
            ) => "not_found",
            Fail::Ops(e) if already_running(e) => "already_running",
            Fail::Ops(_) => "refused",
            Fail::Internal(_) => "internal",
            Fail::RangeNotSatisfiable(_) => "range_not_satisfiable",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Fail::NoSession | Fail::NeedTotp => StatusCode::UNAUTHORIZED,
            Fail::Csrf => StatusCode::FORBIDDEN,
            Fail::BadRequest(_) => StatusCode::BAD_REQUEST,
            Fail::NotFound => StatusCode::NOT_FOUND,
            Fail::Ops(
                OpsError::DeviceNotFound { .. }
                | OpsError::UserNotFound { .. }
                | OpsError::NothingPending { .. },
            ) => StatusCode::NOT_FOUND,
            Fail::Ops(e) if already_running(e) => StatusCode::CONFLICT,
            Fail::Ops(
                OpsError::BadKeep
                | OpsError::BadChunkId(_)
                | OpsError::RelativePath(_)
                | OpsError::ShortKey
                | OpsError::BadRegistrationChange,
            ) => StatusCode::BAD_REQUEST,
            Fail::Ops(_) | Fail::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Fail::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
        }
    }

    fn message(&self, lang: Lang) -> String {
        match self {
            Fail::NoSession => t(lang, Key::ErrNoSession).to_owned(),
            Fail::NeedTotp => t(lang, Key::ErrNeedTotp).to_owned(),
            Fail::Csrf => t(lang, Key::ErrCsrf).to_owned(),
            Fail::BadRequest(d) => format!("{} {d}", t(lang, Key::ErrBadRequest)),
            Fail::NotFound => t(lang, Key::ErrNotFound).to_owned(),
            Fail::Ops(e) => crate::present::ops_error(e, lang),
            Fail::Internal(_) => t(lang, Key::ErrInternal).to_owned(),
            Fail::RangeNotSatisfiable(size) => {
                format!("{} Range (> {size})", t(lang, Key::ErrBadRequest))
            }
        }
    }
}

fn already_running(e: &OpsError) -> bool {
    matches!(
        e,
        OpsError::Gc(GcError::AlreadyRunning) | OpsError::Verify(VerifyError::AlreadyRunning)
    )
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        self.fail.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Fail::Internal(detail) = &self.fail {
            tracing::error!(%detail, "admin console: internal error");
        }
        if self.json {
            return HttpResponse::build(self.fail.status()).json(serde_json::json!({
                "code": self.fail.code(),
                "message": self.fail.message(self.lang),
            }));
        }
        let to = match self.fail {
            Fail::NoSession if self.user => Some("/login"),
            Fail::NoSession => Some("/admin/login"),
            Fail::NeedTotp => Some("/admin/login/totp"),
            _ => None,
        };
        if let Some(to) = to {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish();
        }
        if let Fail::RangeNotSatisfiable(size) = self.fail {
            return HttpResponse::build(self.fail.status())
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .finish();
        }
        let lang = self.lang;
        let body = html! {
            div.flash.error role="alert" data-testid="error-message" { (self.fail.message(lang)) }
            p { a href=(if self.user { "/my" } else { "/admin" }) data-testid="error-back" {
                (t(lang, Key::ErrBack))
            } }
        };
        let title = t(lang, Key::ErrTitle);
        let page = if self.user {
            layout::bare_user(lang, title, body)
        } else {
            layout::bare(lang, title, body)
        };
        HttpResponse::build(self.fail.status())
            .content_type("text/html; charset=utf-8")
            .body(page.into_string())
    }
}

impl From<actix_web::error::BlockingError> for Fail {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Fail::Internal(e.to_string())
    }
}

impl From<crate::db::DbError> for Fail {
    fn from(e: crate::db::DbError) -> Self {
        Fail::Internal(e.to_string())
    }
}

impl From<OpsError> for Fail {
    fn from(e: OpsError) -> Self {
        Fail::Ops(e)
    }
}
