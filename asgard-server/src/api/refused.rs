//! One structured log line for every refused request (status 400 and above): status, error code,
//! method, path (never the query), client address, and the user and device when a handler learned
//! them. Never a token: the line is built from these fields only, not from headers or bodies.
//!
//! Handlers record who asked with [`note`]; the middleware [`log_refused`] reads it when the
//! answer is an error.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};

use super::ApiError;

/// Who made a request, as far as its handler learned it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Who {
    /// The user name a login named (shortened), or none.
    pub user: Option<String>,
    /// The user of an authenticated device.
    pub user_id: Option<u64>,
    /// The device name (of a login, or of the authenticated device).
    pub device: Option<String>,
}

/// The longest name or path written into a log line (in characters).
const MAX_LOGGED_CHARS: usize = 120;

/// Records who made `req` for its log line (a later note replaces an earlier one).
pub(crate) fn note(req: &HttpRequest, who: Who) {
    req.extensions_mut().insert(who);
}

/// `text`, at most [`MAX_LOGGED_CHARS`] characters (with `…` when shortened).
pub(crate) fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_LOGGED_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Middleware: logs each answer with status 400 or above as one line (`target: asgard::refused`;
/// `warn` for 429 and 5xx, `info` otherwise).
pub(crate) async fn log_refused(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = req.method().to_string();
    let path = clip(req.path());
    let client = req
        .peer_addr()
        .map_or_else(|| "-".to_owned(), |a| a.ip().to_string());
    let result = next.call(req).await;
    let (status, code, who) = match &result {
        Ok(res) => (
            res.status(),
            res.response()
                .error()
                .and_then(|e| e.as_error::<ApiError>())
                .map_or("-", ApiError::code),
            res.request().extensions().get::<Who>().cloned(),
        ),
        Err(e) => (
            e.as_response_error().status_code(),
            e.as_error::<ApiError>().map_or("-", ApiError::code),
            None,
        ),
    };
    if status.as_u16() >= 400 {
        let who = who.unwrap_or_default();
        let user = who
            .user
            .as_deref()
            .map(clip)
            .or_else(|| who.user_id.map(|id| format!("#{id}")))
            .unwrap_or_else(|| "-".into());
        let device = who.device.as_deref().map_or_else(|| "-".into(), clip);
        let status = status.as_u16();
        // `?` quotes and escapes the texts a client chose: no control character reaches the log.
        if status == 429 || status >= 500 {
            tracing::warn!(target: "asgard::refused", status, code, method = %method, path = ?path,
                client = %client, user = ?user, device = ?device, "request refused");
        } else {
            tracing::info!(target: "asgard::refused", status, code, method = %method, path = ?path,
                client = %client, user = ?user, device = ?device, "request refused");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_texts_and_marks_shortened_ones() {
        assert_eq!(clip("alice"), "alice");
        let long = "ä".repeat(500);
        let c = clip(&long);
        assert_eq!(c.chars().count(), MAX_LOGGED_CHARS + 1);
        assert!(c.ends_with('…'));
    }
}
