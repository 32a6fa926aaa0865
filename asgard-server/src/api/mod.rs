//! The HTTP API: shared state, the one error type every handler answers with, and the bearer-token
//! extractor. One file per group of endpoints.

pub(crate) mod backup;
pub(crate) mod budget;
pub(crate) mod devices;
pub(crate) mod ids;
pub(crate) mod list;
pub(crate) mod login;
pub(crate) mod metrics;
pub(crate) mod present;
pub(crate) mod refused;
pub(crate) mod restore;
pub(crate) mod runs;
pub(crate) mod seen;
pub(crate) mod throttle;
// Issue 14 (uauth).
pub(crate) mod weblink;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use asgard_core::protocol::{DeviceStatus, ErrorBody};
use asgard_core::{ChunkId, Lang};

use crate::config::{Config, Limits};
use crate::db::{Auth, Db, DbError, hash_token};
use crate::service::ServiceError;
use crate::service::bounds::Exceeded;
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
    /// When each device's last-seen record was last written (see [`seen`]).
    pub seen: seen::SeenThrottle,
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
            seen: seen::SeenThrottle::default(),
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
    /// The admin revoked (or replaced) this device's token.
    #[error("token revoked")]
    TokenRevoked,
    /// The admin disabled this device's user.
    #[error("user disabled")]
    UserDisabled,
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
    /// `/metrics` without a configured `metrics_token`.
    #[error("metrics disabled")]
    MetricsDisabled,
    /// A request over a configured limit: a field too long (400) or too many items (413).
    #[error("limit: {0}")]
    Limit(Exceeded),
    /// The body is larger than this endpoint accepts (`found` when the length was announced).
    #[error("body larger than {limit}")]
    BodyTooLarge { limit: usize, found: Option<u64> },
    /// The body is not of the type the endpoint reads (the type found, possibly empty).
    #[error("unsupported media type {0}")]
    UnsupportedMediaType(String),
    /// The path exists, the method does not (the methods it has).
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// No endpoint has this path.
    #[error("no endpoint {0}")]
    UnknownEndpoint(String),
    /// Too many requests of this token or address; retry after so many seconds.
    #[error("too many requests")]
    TooManyRequests(u64),
    /// Too many registrations or new users from this address; retry after so many seconds.
    #[error("registration limit")]
    RegistrationLimit(u64),
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
    /// Issue 14: a web password against the policy (400).
    #[error("weak password: {0}")]
    WeakPassword(crate::service::webauth::password::WeakPassword),
}

impl ApiError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::ProtocolVersion(_) => "protocol_version",
            ApiError::Unauthorized => "unauthorized",
            ApiError::DevicePending => "device_pending",
            ApiError::TokenRevoked => "token_revoked",
            ApiError::UserDisabled => "user_disabled",
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
            ApiError::MetricsDisabled => "metrics_disabled",
            ApiError::Limit(e) if e.is_count() => "too_many",
            ApiError::Limit(_) => "too_long",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::UnknownEndpoint(_) => "unknown_endpoint",
            ApiError::TooManyRequests(_) => "too_many_requests",
            ApiError::RegistrationLimit(_) => "registration_limit",
            ApiError::Internal(_) => "internal",
            ApiError::Busy => "busy",
            ApiError::LengthRequired => "length_required",
            ApiError::TooManyParts(_) => "too_many_parts",
            ApiError::WeakPassword(_) => "weak_password",
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
        if let ApiError::MethodNotAllowed(allow) = self {
            resp.insert_header((header::ALLOW, *allow));
        }
        if let ApiError::TooManyRequests(s) | ApiError::RegistrationLimit(s) = self {
            resp.insert_header((header::RETRY_AFTER, s.to_string()));
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
            ApiError::Unauthorized | ApiError::TokenRevoked => StatusCode::UNAUTHORIZED,
            ApiError::UserDisabled => StatusCode::FORBIDDEN,
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
            ApiError::UnknownDevice(_)
            | ApiError::NotFound
            | ApiError::Deleted
            | ApiError::MetricsDisabled => StatusCode::NOT_FOUND,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Limit(e) if e.is_count() => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Limit(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnknownEndpoint(_) => StatusCode::NOT_FOUND,
            ApiError::TooManyRequests(_) | ApiError::RegistrationLimit(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::LengthRequired => StatusCode::LENGTH_REQUIRED,
            ApiError::TooManyParts(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::WeakPassword(_) => StatusCode::BAD_REQUEST,
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
            DbError::TokenRevoked => ApiError::TokenRevoked,
            DbError::UserDisabled => ApiError::UserDisabled,
            DbError::BadName(d) => ApiError::BadRequest(d),
            DbError::ConfusableName { name } => ApiError::ConfusableName(name),
            DbError::TooManyDevices { limit } => ApiError::TooManyDevices(limit),
            DbError::EnrollmentKey => ApiError::EnrollmentKey,
            DbError::RegistrationClosed => ApiError::RegistrationClosed,
            DbError::UnknownDevice { device } => ApiError::UnknownDevice(device),
            DbError::MissingChunks(m) => ApiError::MissingChunks(m),
            DbError::NotFound => ApiError::NotFound,
            DbError::Deleted => ApiError::Deleted,
            e @ DbError::AdminExists { .. } => ApiError::BadRequest(e.to_string()),
            e @ (DbError::Storage(_)
            | DbError::Encoding(_)
            | DbError::Json(_)
            | DbError::Schema(_)
            | DbError::SchemaTooNew { .. }) => ApiError::Internal(e.to_string()),
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
            ServiceError::Limit(e) => ApiError::Limit(e),
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::RangeNotSatisfiable(size) => ApiError::RangeNotSatisfiable(size),
            e @ (ServiceError::Store(_)
            | ServiceError::Damaged { .. }
            | ServiceError::Internal(_)) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<Exceeded> for ApiError {
    fn from(e: Exceeded) -> Self {
        ApiError::Limit(e)
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
        let req = req.clone();
        Box::pin(async move {
            let token = token?.ok_or(ApiError::Unauthorized)?;
            let state = state.ok_or_else(|| ApiError::Internal("no app state".into()))?;
            let hash = hash_token(&token);
            let db = state.db.clone();
            let addr = req.peer_addr().map(|a| a.ip());
            let st = state.clone();
            let auth = blocking(move || {
                let auth = db.authenticate(&hash)?;
                let now = crate::db::now_us();
                if let Some(ip) = addr
                    && st.seen.due((auth.user_id, auth.device_id), ip, now)
                    && let Err(e) =
                        db.record_seen(auth.user_id, auth.device_id, &ip.to_string(), now)
                {
                    tracing::warn!(error = %e, "last-seen record not written");
                }
                Ok(auth)
            })
            .await?;
            refused::note(
                &req,
                refused::Who {
                    user: None,
                    user_id: Some(auth.user_id),
                    device: Some(auth.device.clone()),
                },
            );
            if auth.status == DeviceStatus::Pending {
                return Err(ApiError::DevicePending);
            }
            Ok(Authed(auth))
        })
    }
}

/// The JSON extractor of an endpoint whose bodies may have `limit` bytes; its failures become
/// [`ErrorBody`] answers: 413 for a body over the limit, 415 for another content type, 400 for
/// anything else (truncated or malformed JSON, wrong types).
pub(crate) fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, req| json_error(err, req).into())
}

fn json_error(err: actix_web::error::JsonPayloadError, req: &HttpRequest) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::OverflowKnownLength { length, limit } => ApiError::BodyTooLarge {
            limit,
            found: Some(length as u64),
        },
        E::Overflow { limit } => ApiError::BodyTooLarge { limit, found: None },
        E::ContentType => ApiError::UnsupportedMediaType(
            req.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| refused::clip(&String::from_utf8_lossy(v.as_bytes())))
                .unwrap_or_default(),
        ),
        other => ApiError::BadRequest(other.to_string()),
    }
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

/// Every route of the API, with the default limits (the API's unit tests).
#[cfg(test)]
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    routes_with(&Limits::default())(cfg);
}

/// Every route of the API, each JSON endpoint with its body limit from `limits`; a wrong method
/// answers 405 with `Allow`, an unknown path 404, both as [`ErrorBody`]. The middlewares, from the
/// outside in: the language of error messages (it renders the answer anew, so it is outermost),
/// the refused-request log (it reads the error of the answer), the rate limits.
pub(crate) fn routes_with(limits: &Limits) -> impl Fn(&mut web::ServiceConfig) + Clone + use<> {
    let small = json_config(limits.small_body());
    let check = json_config(limits.check_body());
    let commit = json_config(limits.commit_body());
    let ids = json_config(limits.id_list_body());
    let runs = json_config(limits.runs_body());
    move |cfg: &mut web::ServiceConfig| {
        let post = |path: &str, json: &web::JsonConfig| {
            web::resource(path)
                .app_data(json.clone())
                .default_service(web::to(|| not_allowed("POST")))
        };
        let get = |path: &str| web::resource(path).default_service(web::to(|| not_allowed("GET")));
        cfg.app_data(small.clone())
            .app_data(query_config())
            .app_data(path_config())
            .service(
                web::scope("")
                    .wrap(actix_web::middleware::from_fn(throttle::limit))
                    .wrap(actix_web::middleware::from_fn(refused::log_refused))
                    .wrap(actix_web::middleware::from_fn(with_request_language))
                    .service(get("/healthz").route(web::get().to(healthz)))
                    .service(get("/metrics").route(web::get().to(metrics::metrics)))
                    .service(post("/api/login", &small).route(web::post().to(login::login)))
                    .service(
                        post("/api/devices/approve", &small)
                            .route(web::post().to(devices::approve)),
                    )
                    .service(post("/api/check", &check).route(web::post().to(backup::check)))
                    .service(post("/api/upload", &small).route(web::post().to(backup::upload)))
                    .service(post("/api/commit", &commit).route(web::post().to(backup::commit)))
                    .service(get("/api/list").route(web::get().to(list::list)))
                    .service(post("/api/restore", &small).route(web::post().to(restore::restore)))
                    .service(get("/api/chunks/{id}").route(web::get().to(restore::chunk)))
                    .service(post("/api/manifest", &ids).route(web::post().to(restore::manifest)))
                    .service(post("/api/fetch", &ids).route(web::post().to(restore::fetch)))
                    // Issue 14 (uauth): the way into the browser for end users.
                    .service(post("/api/web-link", &small).route(web::post().to(weblink::link)))
                    .service(
                        post("/api/web-password", &small).route(web::post().to(weblink::password)),
                    )
                    .service(
                        web::resource("/api/runs")
                            .app_data(runs.clone())
                            .route(web::post().to(runs::report))
                            .route(web::get().to(runs::list))
                            .default_service(web::to(|| not_allowed("GET, POST"))),
                    )
                    .default_service(web::to(unknown_endpoint)),
            );
    }
}

/// A known path asked with a method it does not have: 405 with the ones it has.
async fn not_allowed(allow: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(allow))
}

/// A path no endpoint has: 404 naming it (shortened).
async fn unknown_endpoint(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::UnknownEndpoint(refused::clip(req.path())))
}

#[cfg(test)]
mod tests;
