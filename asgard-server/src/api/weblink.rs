//! Issue 14: `POST /api/web-link` (a one-time login link for the browser, for the calling
//! device's user) and `POST /api/web-password` (the user's web password for `/login`). Both
//! take the device token like every other agent endpoint: no token, a revoked token or a
//! disabled user is refused by [`Authed`] before anything happens.

use actix_web::{HttpRequest, HttpResponse, web};
use asgard_core::protocol::{WebLinkResponse, WebPasswordRequest};

use super::{ApiError, AppState, Authed, blocking};
use crate::db::{AuditAction, AuditRec, LinkCreator, now_us};
use crate::service::webauth::password;
use crate::service::webauth::user::create_link;

/// `POST /api/web-link`
pub(crate) async fn link(
    state: web::Data<AppState>,
    auth: Authed,
) -> Result<HttpResponse, ApiError> {
    let db = state.db.clone();
    let (user_id, device_id) = (auth.0.user_id, auth.0.device_id);
    let link = blocking(move || {
        Ok(create_link(
            &db,
            user_id,
            LinkCreator::Device(device_id),
            now_us(),
        )?)
    })
    .await?;
    tracing::info!(user_id, device = %auth.0.device, "one-time web link made");
    let url = state
        .config
        .web
        .public_url
        .as_deref()
        .map(|base| format!("{}{}", base.trim_end_matches('/'), link.path));
    Ok(HttpResponse::Ok().json(WebLinkResponse {
        path: link.path,
        url,
        expires_us: link.expires_us,
    }))
}

/// `POST /api/web-password`: the policy and the hash of the admins' passwords; the user's
/// other browser sessions end.
pub(crate) async fn password(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<WebPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let pw = body.into_inner().password;
    let db = state.db.clone();
    let user_id = auth.0.user_id;
    let client = req.peer_addr().map(|a| a.ip().to_string());
    let user = blocking(move || {
        let name = db.web_user(user_id)?.ok_or(ApiError::UserDisabled)?;
        password::check_policy(&name, &pw).map_err(ApiError::WeakPassword)?;
        let phc = password::hash(&pw);
        db.set_web_password(user_id, &phc)?;
        let actor = format!("user:{name}");
        let mut rec = AuditRec::new(now_us(), &actor, AuditAction::WebPasswordSet, &actor);
        if let Some(c) = client {
            rec = rec.client(c);
        }
        if let Err(e) = db.audit_append(&rec) {
            tracing::error!(error = %e, "audit log entry lost");
        }
        Ok(name)
    })
    .await?;
    tracing::info!(%user, device = %auth.0.device, "web password set");
    Ok(HttpResponse::NoContent().finish())
}
