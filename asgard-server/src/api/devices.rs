//! `POST /api/devices/approve`: an active device confirms a pending device of the same user by
//! the code that the pending device shows.

use actix_web::{HttpResponse, web};
use asgard_core::protocol::{ApproveRequest, ApproveResponse};

use super::{ApiError, AppState, Authed, blocking};
use crate::db::{DbError, now_us};

pub(crate) async fn approve(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<ApproveRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = body.into_inner().code;
    if code.len() > 64 {
        return Err(ApiError::ApprovalCode);
    }
    let db = state.db.clone();
    let limit = state.config.devices_per_user as usize;
    let user_id = auth.0.user_id;
    let device = blocking(
        move || match db.approve_by_code(user_id, &code, limit, now_us()) {
            Ok(d) => Ok(d),
            Err(DbError::NotFound) => Err(ApiError::ApprovalCode),
            Err(e) => Err(e.into()),
        },
    )
    .await?;
    tracing::info!(user_id, by = %auth.0.device, %device, "device approved by code");
    Ok(HttpResponse::Ok().json(ApproveResponse { device }))
}
