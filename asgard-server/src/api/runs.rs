//! `POST /api/runs` (an agent reports how a run went) and `GET /api/runs` (the calling device's
//! last runs, newest first). Run ids are opaque (`ids.rs`): the order is the list's, not theirs.

use actix_web::{HttpResponse, web};
use asgard_core::protocol::{
    MAX_RUN_ERRORS, MAX_RUN_TEXT, RunAccepted, RunList, RunReport, RunsQuery,
};

use super::ids::{Kind, Perm};
use super::{ApiError, AppState, Authed, blocking};
use crate::db::{KEEP_RUNS, RunRec, now_us};

/// Refuses a report that breaks the protocol's bounds (nothing is stored then).
pub(crate) fn validate(r: &RunReport) -> Result<(), ApiError> {
    if r.errors.len() > MAX_RUN_ERRORS {
        return Err(ApiError::BadRequest(format!(
            "errors: {} > {MAX_RUN_ERRORS}",
            r.errors.len()
        )));
    }
    if r.agent_version.len() > MAX_RUN_TEXT || r.errors.iter().any(|e| e.len() > MAX_RUN_TEXT) {
        return Err(ApiError::BadRequest(format!(
            "text longer than {MAX_RUN_TEXT} bytes"
        )));
    }
    let s = &r.summary;
    if !s.duration_s.is_finite() || s.duration_s < 0.0 {
        return Err(ApiError::BadRequest("duration_s".into()));
    }
    Ok(())
}

pub(crate) async fn report(
    state: web::Data<AppState>,
    auth: Authed,
    body: web::Json<RunReport>,
) -> Result<HttpResponse, ApiError> {
    let report = body.into_inner();
    validate(&report)?;
    let db = state.db.clone();
    let (user, device) = (auth.0.user_id, auth.0.device_id);
    let rec = RunRec::new(report, now_us());
    let id = blocking(move || {
        let id = db.add_run(user, device, &rec)?;
        Ok(Perm::of(&db, Kind::Run, user).encode(id))
    })
    .await?;
    Ok(HttpResponse::Ok().json(RunAccepted { id }))
}

pub(crate) async fn list(
    state: web::Data<AppState>,
    auth: Authed,
    query: web::Query<RunsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query
        .limit
        .map_or(KEEP_RUNS, |l| (l as usize).clamp(1, KEEP_RUNS));
    let db = state.db.clone();
    let (user, device) = (auth.0.user_id, auth.0.device_id);
    let runs = blocking(move || {
        let ids = Perm::of(&db, Kind::Run, user);
        let runs = db.runs(user, device, limit)?;
        Ok(runs.iter().map(|(id, r)| r.info(ids.encode(*id))).collect())
    })
    .await?;
    Ok(HttpResponse::Ok().json(RunList { runs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced() {
        let mut r = RunReport::default();
        assert!(validate(&r).is_ok());
        r.errors = vec!["x".into(); MAX_RUN_ERRORS];
        assert!(validate(&r).is_ok());
        r.errors.push("one too many".into());
        assert!(validate(&r).is_err());
        r.errors = vec!["x".repeat(MAX_RUN_TEXT + 1)];
        assert!(validate(&r).is_err());
        r.errors.clear();
        r.summary.duration_s = f64::NAN;
        assert!(validate(&r).is_err());
    }
}
