//! The HTTP API: shared state, the one error type every handler answers with, and the bearer-token
//! extractor. One file per group of endpoints.

pub(crate) mod backup;
pub(crate) mod budget;
pub(crate) mod devices;
pub(crate) mod list;
pub(crate) mod login;
pub(crate) mod present;
pub(crate) mod restore;
pub(crate) mod runs;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use asgard_core::protocol::{DeviceStatus, ErrorBody};
use asgard_core::{ChunkId, Lang};

use crate::config::Config;
use crate::db::{Auth, Db, DbError, hash_token};
use crate::service::ServiceError;
use crate::store::{ChunkStore, StoreError};

/// Everything a handler needs.
pub(crate) struct AppState {
    pub db: Arc<Db>,
    pub store: Arc<dyn ChunkStore>,
    pub config: Arc<Config>,
    /// The bytes of upload bodies in flight (`upload_budget_bytes`, see [`budget`]).
    pub upload_budget: budget::UploadBudget,
    /// What a store write costs, for the answer time of deduplicated uploads (see
    /// `crate::service::ingest`).
    pub put_cost: crate::service::ingest::PutCost,
}

impl AppState {
    /// The state of a server with this database, store and configuration.
    pub(crate) fn new(db: Arc<Db>, store: Arc<dyn ChunkStore>, config: Arc<Config>) -> AppState {
        AppState {
            upload_budget: budget::UploadBudget::new(
                config.upload_budget_bytes,
                config.upload_wait.0,
            ),
            put_cost: crate::service::ingest::PutCost::default(),
            db,
            store,
            config,
        }
    }
}

/// Every error answer of the API. Each maps to a status and a stable `code`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("protocol version {0}")]
    ProtocolVersion(u32),
    #[error("unauthorized")]
    Unauthorized,
    #[error("device pending")]
    DevicePending,
    #[error("name {0} confusable with an existing user")]
    ConfusableName(String),
    #[error("{0} devices already")]
    TooManyDevices(usize),
    #[error("unknown approval code")]
    ApprovalCode,
    #[error("enrollment key")]
    EnrollmentKey,
    #[error("registration closed")]
    RegistrationClosed,
    #[error("bad chunk id {0}")]
    BadChunkId(String),
    #[error("chunk too large {0}")]
    ChunkTooLarge(String),
    #[error("upload too large")]
    UploadTooLarge(u64),
    #[error("chunk hash mismatch {0}")]
    ChunkHashMismatch(ChunkId),
    #[error("chunk corrupt {0}: {1}")]
    ChunkCorrupt(ChunkId, String),
    #[error("bad entry: {0}")]
    BadEntry(String),
    #[error("missing chunks")]
    MissingChunks(Vec<ChunkId>),
    #[error("unknown device {0}")]
    UnknownDevice(String),
    #[error("not found")]
    NotFound,
    #[error("deleted")]
    Deleted,
    #[error("range not satisfiable (size {0})")]
    RangeNotSatisfiable(u64),
    /// A server-side failure (database, store); details are logged, not sent.
    #[error("internal: {0}")]
    Internal(String),
    /// The upload budget stayed spent for `upload_wait` (503 with `Retry-After`).
    #[error("busy")]
    Busy,
    /// An upload without `Content-Length` (411).
    #[error("length required")]
    LengthRequired,
    /// An upload of more parts than the server takes in one request (413).
    #[error("too many parts (at most {0})")]
    TooManyParts(usize),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::ProtocolVersion(_) => "protocol_version",
            ApiError::Unauthorized => "unauthorized",
            ApiError::DevicePending => "device_pending",
            ApiError::ConfusableName(_) => "name_confusable",
            ApiError::TooManyDevices(_) => "too_many_devices",
            ApiError::ApprovalCode => "approval_code",
            ApiError::EnrollmentKey => "enrollment_key",
            ApiError::RegistrationClosed => "registration_closed",
            ApiError::BadChunkId(_) => "bad_chunk_id",
            ApiError::ChunkTooLarge(_) => "chunk_too_large",
            ApiError::UploadTooLarge(_) => "upload_too_large",
            ApiError::ChunkHashMismatch(_) => "chunk_hash_mismatch",
            ApiError::ChunkCorrupt(..) => "chunk_corrupt",
            ApiError::BadEntry(_) => "bad_entry",
            ApiError::MissingChunks(_) => "missing_chunks",
            ApiError::UnknownDevice(_) => "unknown_device",
            ApiError::NotFound => "not_found",
            ApiError::Deleted => "deleted",
            ApiError::RangeNotSatisfiable(_) => "range_not_satisfiable",
            ApiError::Internal(_) => "internal",
            ApiError::Busy => "busy",
            ApiError::LengthRequired => "length_required",
            ApiError::TooManyParts(_) => "too_many_parts",
        }
    }

    /// The answer to send, its message in `lang`.
    fn response(&self, lang: Lang) -> HttpResponse {
        let body = ErrorBody {
            code: self.code().to_owned(),
            message: present::error_message(self, lang),
            missing: match self {
                ApiError::MissingChunks(m) => m.clone(),
                _ => Vec::new(),
            },
        };
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::Unauthorized = self {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let ApiError::RangeNotSatisfiable(size) = self {
            resp.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
        }
        if let ApiError::Busy = self {
            resp.insert_header((header::RETRY_AFTER, budget::RETRY_AFTER_SECS.to_string()));
        }
        resp.json(body)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_)
            | ApiError::ProtocolVersion(_)
            | ApiError::BadChunkId(_)
            | ApiError::ChunkHashMismatch(_)
            | ApiError::ChunkCorrupt(..)
            | ApiError::BadEntry(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::DevicePending | ApiError::EnrollmentKey | ApiError::RegistrationClosed => {
                StatusCode::FORBIDDEN
            }
            ApiError::ConfusableName(_)
            | ApiError::TooManyDevices(_)
            | ApiError::MissingChunks(_) => StatusCode::CONFLICT,
            ApiError::ApprovalCode => StatusCode::NOT_FOUND,
            ApiError::ChunkTooLarge(_) | ApiError::UploadTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnknownDevice(_) | ApiError::NotFound | ApiError::Deleted => {
                StatusCode::NOT_FOUND
            }
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::LengthRequired => StatusCode::LENGTH_REQUIRED,
            ApiError::TooManyParts(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// Logs an internal error's details (they are not sent) and answers in the default language;
    /// [`with_request_language`] then renders the message again in the request's language.
    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        self.response(Lang::default())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unauthorized => ApiError::Unauthorized,
            DbError::Pending => ApiError::DevicePending,
            DbError::BadName(d) => ApiError::BadRequest(d),
            DbError::ConfusableName { name } => ApiError::ConfusableName(name),
            DbError::TooManyDevices { limit } => ApiError::TooManyDevices(limit),
            DbError::EnrollmentKey => ApiError::EnrollmentKey,
            DbError::RegistrationClosed => ApiError::RegistrationClosed,
            DbError::UnknownDevice { device } => ApiError::UnknownDevice(device),
            DbError::MissingChunks(m) => ApiError::MissingChunks(m),
            DbError::NotFound => ApiError::NotFound,
            DbError::Deleted => ApiError::Deleted,
            e @ (DbError::Storage(_)
            | DbError::Encoding(_)
            | DbError::Json(_)
            | DbError::Schema(_)) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Db(e) => e.into(),
            ServiceError::BadRequest(d) => ApiError::BadRequest(d),
            ServiceError::ChunkHashMismatch(id) => ApiError::ChunkHashMismatch(id),
            ServiceError::ChunkTooLarge(id) => ApiError::ChunkTooLarge(id.to_hex()),
            ServiceError::ChunkCorrupt(id, d) => ApiError::ChunkCorrupt(id, d),
            ServiceError::BadEntry(d) => ApiError::BadEntry(d),
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::RangeNotSatisfiable(size) => ApiError::RangeNotSatisfiable(size),
            e @ (ServiceError::Store(_)
            | ServiceError::Damaged { .. }
            | ServiceError::Internal(_)) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// Runs blocking work (redb, store I/O, hashing) off the async workers.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f).await?
}

/// The language of a request's messages: its `Accept-Language`, else the configured language.
pub(crate) fn request_lang(req: &HttpRequest) -> Lang {
    req.headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language)
        .or_else(|| {
            req.app_data::<web::Data<AppState>>()
                .map(|s| s.config.lang())
        })
        .unwrap_or_default()
}

/// Middleware: every error answer of the API gets its message in the language of the request
/// ([`request_lang`]); status, code and headers stay as the error made them.
pub(crate) async fn with_request_language(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let lang = request_lang(req.request());
    let res = next.call(req).await?.map_into_boxed_body();
    let again = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .map(|e| e.response(lang));
    Ok(match again {
        Some(answer) => res.into_response(answer.map_into_boxed_body()),
        None => res,
    })
}

/// The bearer token of a request, if any. A malformed header counts as a wrong token.
pub(crate) fn bearer(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    let token = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    Ok(Some(token.to_owned()))
}

/// An authenticated, active device: the extractor every endpoint but login uses.
#[derive(Debug, Clone)]
pub(crate) struct Authed(pub Auth);

impl FromRequest for Authed {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token?.ok_or(ApiError::Unauthorized)?;
            let state = state.ok_or_else(|| ApiError::Internal("no app state".into()))?;
            let hash = hash_token(&token);
            let db = state.db.clone();
            let auth = blocking(move || Ok(db.authenticate(&hash)?)).await?;
            if auth.status == DeviceStatus::Pending {
                return Err(ApiError::DevicePending);
            }
            Ok(Authed(auth))
        })
    }
}

/// Turns extractor failures (bad JSON, wrong content type, bad query) into [`ErrorBody`] answers.
pub(crate) fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(128 * 1024 * 1024)
        .error_handler(|err, _| ApiError::BadRequest(err.to_string()).into())
}

pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| ApiError::BadRequest(err.to_string()).into())
}

pub(crate) fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _| ApiError::BadRequest(err.to_string()).into())
}

/// `GET /healthz`
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// `GET /metrics`: Prometheus text format; the main figures of `asgard-server stats` (one streaming
/// scan of the version and chunk tables per scrape, see `db/stats.rs`).
pub(crate) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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

/// Every route of the API.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(query_config())
        .app_data(path_config())
        .service(
            web::scope("")
                .wrap(actix_web::middleware::from_fn(with_request_language))
                .route("/healthz", web::get().to(healthz))
                .route("/metrics", web::get().to(metrics))
                .route("/api/login", web::post().to(login::login))
                .route("/api/devices/approve", web::post().to(devices::approve))
                .route("/api/check", web::post().to(backup::check))
                .route("/api/upload", web::post().to(backup::upload))
                .route("/api/commit", web::post().to(backup::commit))
                .route("/api/list", web::get().to(list::list))
                .route("/api/restore", web::post().to(restore::restore))
                .route("/api/chunks/{id}", web::get().to(restore::chunk))
                .route("/api/manifest", web::post().to(restore::manifest))
                .route("/api/fetch", web::post().to(restore::fetch))
                .route("/api/runs", web::post().to(runs::report))
                .route("/api/runs", web::get().to(runs::list)),
        );
}

#[cfg(test)]
mod tests;
