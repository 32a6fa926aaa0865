//! The console's one asset, its style sheet, embedded in the binary and served at a URL that
//! names its content (`/assets/app-<hash>.css`), so browsers may cache it for a year and still
//! see a new version at once. No CDN, no build step, no script.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const APP_CSS: &str = include_str!("../../assets/app.css");

/// The URL of the style sheet (with the first 16 hex digits of its blake3 hash).
pub(crate) fn css_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let hash = blake3::hash(APP_CSS.as_bytes()).to_hex();
        format!("/assets/app-{}.css", &hash[..16])
    })
}

/// `GET /assets/{name}`: the style sheet under its current name; any other name is 404 (an old
/// hash too: the page that asked for it is from another server version).
pub(crate) async fn asset(name: web::Path<String>) -> HttpResponse {
    if css_url().strip_prefix("/assets/") == Some(name.as_str()) {
        HttpResponse::Ok()
            .content_type("text/css; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(APP_CSS)
    } else {
        HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found")
    }
}
