//! `GET /metrics`: the main figures of `asgard-server stats` in the Prometheus text format, for a
//! scraper that holds the configured `metrics_token`.
//!
//! The figures are global counts (users, devices, versions, chunks, bytes, the chunks served);
//! nothing per user. They still tell whether content exists or is being restored somewhere, so
//! they are the admin's, not the users': without `metrics_token` the endpoint is off (404
//! `metrics_disabled`), with it a request needs `Authorization: Bearer <metrics_token>` (401
//! otherwise). The token is compared in constant time.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiError, AppState, bearer, blocking, restore};
use crate::db::secrets_equal;

/// Whether `req` may read the metrics of a server configured with `token`.
fn authorise(req: &HttpRequest, token: Option<&str>) -> Result<(), ApiError> {
    let Some(expected) = token else {
        return Err(ApiError::MetricsDisabled);
    };
    match bearer(req)? {
        Some(given) if secrets_equal(&given, expected) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// `GET /metrics` (one streaming scan of the version and chunk tables per scrape, see
/// `db/stats.rs`).
pub(crate) async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    authorise(&req, state.config.metrics_token.as_deref())?;
    let db = state.db.clone();
    let s = blocking(move || Ok(db.full_stats()?)).await?;
    let mut out = String::new();
    let gauges: [(&str, &str, f64); 10] = [
        ("asgard_users", "Registered users.", s.users as f64),
        ("asgard_devices", "Registered devices.", s.devices as f64),
        (
            "asgard_versions",
            "Retained file versions (incl. deletion markers).",
            s.versions as f64,
        ),
        ("asgard_chunks", "Chunks in the index.", s.chunks as f64),
        (
            "asgard_logical_bytes",
            "Sum of the sizes of all retained versions.",
            s.logical_bytes as f64,
        ),
        (
            "asgard_stored_bytes",
            "Stored bytes of all indexed chunks.",
            s.stored_bytes as f64,
        ),
        (
            "asgard_plain_bytes",
            "Plaintext bytes of the distinct referenced chunks.",
            s.plain_bytes as f64,
        ),
        (
            "asgard_dedupe_ratio",
            "Logical bytes / plain bytes (0 when nothing is stored).",
            s.dedupe_ratio.unwrap_or(0.0),
        ),
        (
            "asgard_compression_ratio",
            "Plain bytes / stored bytes of the referenced chunks (0 when nothing is stored).",
            s.compression_ratio.unwrap_or(0.0),
        ),
        (
            "asgard_bad_chunks",
            "Chunks found damaged or missing and not yet healed.",
            s.bad_chunks as f64,
        ),
    ];
    for (name, help, value) in gauges {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    let served = restore::chunks_served();
    out.push_str(&format!(
        "# HELP asgard_chunks_served_total Chunks read from the store and sent to clients.\n\
         # TYPE asgard_chunks_served_total counter\nasgard_chunks_served_total {served}\n"
    ));
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        ))
        .body(out))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn with(auth: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::get().uri("/metrics");
        if let Some(a) = auth {
            r = r.insert_header((header::AUTHORIZATION, a));
        }
        r.to_http_request()
    }

    #[test]
    fn off_without_a_token_and_only_the_token_opens_it() {
        let token = Some("scrape-0123456789abcdef");
        assert!(matches!(
            authorise(&with(Some("Bearer scrape-0123456789abcdef")), None),
            Err(ApiError::MetricsDisabled)
        ));
        assert!(authorise(&with(Some("Bearer scrape-0123456789abcdef")), token).is_ok());
        for wrong in [
            None,
            Some("Bearer scrape-0123456789abcdeF"),
            Some("Bearer scrape-0123456789abcde"),
            Some("Bearer "),
            Some("Basic c2NyYXBlOg=="),
            Some("scrape-0123456789abcdef"),
        ] {
            assert!(
                matches!(authorise(&with(wrong), token), Err(ApiError::Unauthorized)),
                "{wrong:?}"
            );
        }
    }
}
