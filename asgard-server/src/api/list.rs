//! `GET /api/list`: paths and their retained versions, paginated.

use actix_web::{HttpResponse, web};
use asgard_core::RawPath;
use asgard_core::protocol::{ListQuery, ListResponse};

use super::{ApiError, AppState, Authed, blocking};
use crate::db::{DeviceSel, ListParams, decode_cursor};

const DEFAULT_LIMIT: u32 = 1000;
const MAX_LIMIT: u32 = asgard_core::protocol::MAX_LIST_LIMIT;

/// Validates the query into database parameters.
pub(crate) fn params(q: ListQuery, calling_device: u64) -> Result<ListParams, ApiError> {
    let prefix = match &q.prefix_hex {
        Some(hex) => Some(RawPath(
            asgard_core::id::from_hex(hex)
                .ok_or_else(|| ApiError::BadRequest("prefix_hex: not hex".into()))?,
        )),
        None => None,
    };
    let after = match &q.cursor {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::BadRequest("cursor".into()))?),
        None => None,
    };
    let devices = if q.all_devices {
        DeviceSel::All
    } else if let Some(name) = q.device {
        DeviceSel::Named(name)
    } else {
        DeviceSel::Id(calling_device)
    };
    Ok(ListParams {
        devices,
        prefix,
        at_us: q.at_us,
        after,
        limit: q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize,
    })
}

pub(crate) async fn list(
    state: web::Data<AppState>,
    auth: Authed,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let p = params(query.into_inner(), auth.0.device_id)?;
    let db = state.db.clone();
    let user = auth.0.user_id;
    let (files, next_cursor) = blocking(move || Ok(db.list(user, &p)?)).await?;
    Ok(HttpResponse::Ok().json(ListResponse { files, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_to_params() {
        let p = params(ListQuery::default(), 7).unwrap();
        assert_eq!(p.devices, DeviceSel::Id(7));
        assert_eq!(p.limit, 1000);
        let q = ListQuery {
            all_devices: true,
            device: Some("x".into()),
            prefix_hex: Some("2f61".into()),
            limit: Some(99_999),
            ..Default::default()
        };
        let p = params(q, 7).unwrap();
        assert_eq!(p.devices, DeviceSel::All);
        assert_eq!(p.prefix, Some(RawPath::from("/a")));
        assert_eq!(p.limit, 5000);
        let bad = ListQuery {
            prefix_hex: Some("zz".into()),
            ..Default::default()
        };
        assert!(params(bad, 1).is_err());
    }
}
