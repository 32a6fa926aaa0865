//! `GET /api/list`: paths and their retained versions, paginated.

use actix_web::{HttpResponse, web};
use asgard_core::RawPath;
use asgard_core::protocol::{ListQuery, ListResponse};

use super::ids::{self, Kind, Perm};
use super::{ApiError, AppState, Authed, blocking};
use crate::db::{DeviceSel, ListParams};

const DEFAULT_LIMIT: u32 = 1000;
const MAX_LIMIT: u32 = asgard_core::protocol::MAX_LIST_LIMIT;

/// Validates the query into database parameters; `devices` decodes the cursor's opaque device id.
pub(crate) fn params(
    q: ListQuery,
    calling_device: u64,
    devices: &Perm,
) -> Result<ListParams, ApiError> {
    let prefix = match &q.prefix_hex {
        Some(hex) => Some(RawPath(
            asgard_core::id::from_hex(hex)
                .ok_or_else(|| ApiError::BadRequest("prefix_hex: not hex".into()))?,
        )),
        None => None,
    };
    let after = match &q.cursor {
        Some(c) => {
            Some(ids::cursor_in(devices, c).ok_or_else(|| ApiError::BadRequest("cursor".into()))?)
        }
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
    let user = auth.0.user_id;
    let devices = Perm::of(&state.db, Kind::Device, user);
    let p = params(query.into_inner(), auth.0.device_id, &devices)?;
    let db = state.db.clone();
    let answer = blocking(move || {
        let (mut files, cursor) = db.list(user, &p)?;
        // Version ids and the cursor's device id count across all users: shown opaque.
        let versions = Perm::of(&db, Kind::Version, user);
        for v in files.iter_mut().flat_map(|f| f.versions.iter_mut()) {
            v.id = versions.encode(v.id);
        }
        let next_cursor = match cursor {
            Some(c) => Some(
                ids::cursor_out(&devices, &c)
                    .ok_or_else(|| ApiError::Internal(format!("cursor {c}")))?,
            ),
            None => None,
        };
        Ok(ListResponse { files, next_cursor })
    })
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_to_params() {
        let perm = Perm::new(&[1; 32], Kind::Device, 1);
        let p = params(ListQuery::default(), 7, &perm).unwrap();
        assert_eq!(p.devices, DeviceSel::Id(7));
        assert_eq!(p.limit, 1000);
        let q = ListQuery {
            all_devices: true,
            device: Some("x".into()),
            prefix_hex: Some("2f61".into()),
            limit: Some(99_999),
            ..Default::default()
        };
        let p = params(q, 7, &perm).unwrap();
        assert_eq!(p.devices, DeviceSel::All);
        assert_eq!(p.prefix, Some(RawPath::from("/a")));
        assert_eq!(p.limit, 5000);
        let bad = ListQuery {
            prefix_hex: Some("zz".into()),
            ..Default::default()
        };
        assert!(params(bad, 1, &perm).is_err());
        let cursor = ids::cursor_out(&perm, &crate::db::encode_cursor(4, b"/x")).unwrap();
        let q = ListQuery {
            cursor: Some(cursor),
            ..Default::default()
        };
        assert_eq!(
            params(q, 7, &perm).unwrap().after,
            Some((4, b"/x".to_vec()))
        );
        let q = ListQuery {
            cursor: Some("nicht hex".into()),
            ..Default::default()
        };
        assert!(params(q, 7, &perm).is_err());
    }
}
