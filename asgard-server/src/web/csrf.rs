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
/// without a real `Origin`, `Referer` starts with `https://<host>/`, or, without either, the
/// browser's own `Sec-Fetch-Site: same-origin`. None of them: refused (a script can set
/// `Origin` and `Referer`, but it has no token; no page can set `Sec-Fetch-Site`).
///
/// Our pages send `Referrer-Policy: no-referrer`, and under that policy a browser sends a form
/// post with `Origin: null` and no `Referer` (Fetch: "serializing a request origin"): only the
/// fetch metadata then tells a post from our own page from a cross-site one.
pub(crate) fn same_origin(req: &HttpRequest) -> bool {
    let Some(host) = own_host(req) else {
        return false;
    };
    let own = format!("https://{host}");
    let text = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let origin = text(header::ORIGIN.as_str()).filter(|o| *o != "null");
    match (origin, text(header::REFERER.as_str())) {
        (Some(origin), _) => origin.eq_ignore_ascii_case(&own),
        (None, Some(referer)) => referer
            .get(..own.len() + 1)
            .is_some_and(|p| p.eq_ignore_ascii_case(&format!("{own}/"))),
        (None, None) => text("sec-fetch-site") == Some("same-origin"),
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
        // A form post from our own page under `Referrer-Policy: no-referrer`.
        assert!(same_origin(&req(&[
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
        for bad in [
            vec![],
            vec![("origin", "https://evil.example")],
            vec![("origin", "http://srv:8443")],
            vec![("origin", "https://srv:8443.evil.example")],
            vec![("origin", "null")],
            vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
            vec![("origin", "null"), ("sec-fetch-site", "same-site")],
            vec![("sec-fetch-site", "none")],
            // A real Origin wins over the fetch metadata.
            vec![
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
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
