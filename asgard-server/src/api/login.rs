//! `POST /api/login`: register a device or authenticate it.

use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::protocol::{LoginRequest, LoginResponse, PROTOCOL_VERSION};

use super::{ApiError, AppState, bearer, blocking};
use crate::db::{LoginPolicy, hash_token, now_us};
use crate::service::login::LoginAnswer;

/// User and device names: 1..=128 characters, no control characters.
pub(crate) fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=128).contains(&n) && !name.chars().any(char::is_control)
}

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
        if !valid_name(name) {
            return Err(ApiError::BadRequest(format!(
                "{what}: 1-128 characters, no control characters"
            )));
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
        tracing::info!(user = %body.user, device = %body.device, status = ?outcome.status, "device registered");
    }
    Ok(HttpResponse::Ok().json(LoginResponse {
        user: body.user,
        device: body.device,
        token: outcome.token,
        status: outcome.status,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        keep_versions: state.config.keep_versions,
        reread,
        reread_truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("anna"));
        assert!(valid_name(&"ä".repeat(128)));
        assert!(!valid_name(&"a".repeat(129)));
        assert!(!valid_name(""));
        assert!(!valid_name("a\nb"));
    }
}
