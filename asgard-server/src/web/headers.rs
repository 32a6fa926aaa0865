//! Security headers on every answer of the admin console (`/admin`, `/api/admin`, `/assets`).
//!
//! The policy allows only the server's own style sheet: no script at all (the console works
//! without JavaScript), no frames, forms only to the server itself. Pages are never cached
//! (`no-store`); an asset sets its own long cache before this middleware sees it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// The Content-Security-Policy of every console answer.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every header this middleware sets, with its value (the e2e tests check them all).
pub(crate) const HEADERS: [(&str, &str); 5] = [
    ("content-security-policy", CSP),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("strict-transport-security", "max-age=31536000"),
    ("x-content-type-options", "nosniff"),
];

/// Middleware: adds [`HEADERS`] and, unless the handler chose a cache policy, `no-store`.
pub(crate) async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    for (name, value) in HEADERS {
        // udown (issue 14): a preview sets its own, stricter policy (`sandbox`); keep it.
        if name == "content-security-policy" && h.contains_key(header::CONTENT_SECURITY_POLICY) {
            continue;
        }
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
