//! `POST /api/login`: register a device or authenticate it.

use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::protocol::{LoginRequest, LoginResponse, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

use super::throttle::Throttle;
use super::{ApiError, AppState, bearer, blocking, refused};
use crate::db::{LoginPolicy, hash_token, now_us};
use crate::service::bounds;
use crate::service::login::LoginAnswer;

pub(crate) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    refused::note(
        &req,
        refused::Who {
            user: Some(body.user.clone()),
            user_id: None,
            device: Some(body.device.clone()),
        },
    );
    bounds::login(&body, &state.config.limits)?;
    // Every field a newer protocol added is optional, so an older agent's requests read as they
    // always did (see `asgard_core::protocol::PROTOCOL_VERSION`).
    if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&body.protocol_version) {
        return Err(ApiError::ProtocolVersion(body.protocol_version));
    }
    for (what, name) in [("user", &body.user), ("device", &body.device)] {
        if let Err(e) = asgard_core::names::normalize(name) {
            return Err(ApiError::BadRequest(format!("{what}: {e}")));
        }
    }
    let token_hash = bearer(&req)?.map(|t| hash_token(&t));
    // A login without a token or code may register: it needs the address's hourly budgets.
    let registering = token_hash.is_none() && body.code.is_none();
    let throttle = req.app_data::<web::Data<Throttle>>().cloned();
    let addr = req.peer_addr().map(|a| a.ip());
    let reserved = match (&throttle, addr) {
        (Some(t), Some(ip)) if registering => {
            t.reserve_registration(ip)
                .map_err(ApiError::RegistrationLimit)?;
            Some((t.clone(), ip))
        }
        _ => None,
    };
    let st = state.clone();
    let request = body.clone();
    let answer = blocking(move || {
        // The mode and key set at run time (`registration set`) win over the configuration.
        let (registration, key_hash) = crate::ops::registration::effective(&st.db, &st.config)?;
        let policy = LoginPolicy {
            registration,
            enrollment_key: key_hash.as_ref(),
        };
        let answer = crate::service::login::login(&st.db, &request, token_hash, policy, now_us())?;
        Ok(answer)
    })
    .await;
    if let Some((t, ip)) = reserved {
        // A registration issued a token; a new user is one without an approval code (a further
        // device of an existing user always waits for approval by code).
        let (registered, new_user) = match &answer {
            Ok(a) => (
                a.outcome.token.is_some(),
                a.outcome.token.is_some() && a.outcome.approval.is_none(),
            ),
            Err(_) => (false, false),
        };
        t.settle(ip, registered, new_user);
    }
    let LoginAnswer {
        outcome,
        reread,
        reread_truncated,
    } = answer?;
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
