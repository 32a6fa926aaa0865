//! `POST /api/login`: register a device or authenticate it.

use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::protocol::{LoginRequest, LoginResponse, PROTOCOL_VERSION};

use super::{ApiError, AppState, bearer, blocking};
use crate::db::{LoginPolicy, hash_token, now_us};
use crate::service::login::LoginAnswer;

pub(crate) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.protocol_version != PROTOCOL_VERSION {
        return Err(ApiError::ProtocolVersion(body.protocol_version));
    }
    for (what, name) in [("user", &body.user), ("device", &body.device)] {
        if let Err(e) = asgard_core::names::normalize(name) {
            return Err(ApiError::BadRequest(format!("{what}: {e}")));
        }
    }
    let token_hash = bearer(&req)?.map(|t| hash_token(&t));
    let st = state.clone();
    let request = body.clone();
    let answer = blocking(move || {
        let policy = LoginPolicy {
            registration: st.config.registration,
            enrollment_key: st.config.enrollment_key.as_deref(),
        };
        let answer = crate::service::login::login(&st.db, &request, token_hash, policy, now_us())?;
        Ok(answer)
    })
    .await?;
    let LoginAnswer {
        outcome,
        reread,
        reread_truncated,
    } = answer;
    if !reread.is_empty() {
        tracing::info!(user = %body.user, device = %body.device, paths = reread.len(),
            truncated = reread_truncated, "device asked to re-read files that reference bad chunks");
    }
    if outcome.token.is_some() {
        tracing::info!(user = %outcome.user, device = %outcome.device, status = ?outcome.status, "device registered");
    }
    let (approval_code, approval_expires_us) = outcome.approval.unzip();
    Ok(HttpResponse::Ok().json(LoginResponse {
        user: outcome.user,
        device: outcome.device,
        token: outcome.token,
        status: outcome.status,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        keep_versions: state.config.keep_versions,
        reread,
        reread_truncated,
        approval_code,
        approval_expires_us,
    }))
}
