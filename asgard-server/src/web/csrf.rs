//! Cross-site request forgery: every state-changing request of a cookie session must carry the
//! session's CSRF token (the hidden form field `csrf`, or the header `X-CSRF-Token` for JSON),
//! compared in constant time by the session, and must come from the server's own origin: its
//! `Origin` header (or, when a browser sent none, its `Referer`) names the scheme and host the
//! request was sent to. `SameSite=Strict` on the cookie is a third fence, not the only one.
//! Requests with an admin API token carry no cookie and need neither check.

use actix_web::HttpRequest;
use actix_web::http::header;

/// The name of the hidden form field and of the JSON header that carry the token.
pub(crate) const FIELD: &str = "csrf";
pub(crate) const HEADER: &str = "x-csrf-token";

/// The host (with port) the request was sent to: the `Host` header (HTTP/1.1) or the URI's
/// authority (HTTP/2). Proxy headers (`X-Forwarded-Host`) are not trusted.
fn own_host(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
}

/// Whether the request comes from a page of this server: `Origin` equals `https://<host>`, or,
/// without `Origin`, `Referer` starts with `https://<host>/`. Neither header: refused (every
/// browser sends one of them on a form post; a script can set them, but it has no token).
pub(crate) fn same_origin(req: &HttpRequest) -> bool {
    let Some(host) = own_host(req) else {
        return false;
    };
    let own = format!("https://{host}");
    let text = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => origin.eq_ignore_ascii_case(&own),
        (None, Some(referer)) => referer
            .get(..own.len() + 1)
            .is_some_and(|p| p.eq_ignore_ascii_case(&format!("{own}/"))),
        (None, None) => false,
    }
}

/// The token a JSON request carries in its header.
pub(crate) fn header_token(req: &HttpRequest) -> Option<&str> {
    req.headers().get(HEADER).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(headers: &[(&str, &str)]) -> HttpRequest {
        let mut r = TestRequest::post()
            .uri("/admin/users")
            .insert_header(("host", "srv:8443"));
        for (k, v) in headers {
            r = r.insert_header((*k, *v));
        }
        r.to_http_request()
    }

    #[test]
    fn only_the_servers_own_origin_passes() {
        assert!(same_origin(&req(&[("origin", "https://srv:8443")])));
        assert!(same_origin(&req(&[(
            "referer",
            "https://srv:8443/admin/users"
        )])));
        for bad in [
            vec![],
            vec![("origin", "https://evil.example")],
            vec![("origin", "http://srv:8443")],
            vec![("origin", "https://srv:8443.evil.example")],
            vec![("origin", "null")],
            vec![("referer", "https://srv:8443.evil.example/admin")],
            vec![("referer", "https://srv:8443")],
            // Origin wins over a fitting Referer.
            vec![
                ("origin", "https://evil.example"),
                ("referer", "https://srv:8443/admin"),
            ],
        ] {
            assert!(!same_origin(&req(&bad)), "{bad:?}");
        }
    }
}
