//! `login`: register a device or authenticate it, and tell an authenticated device which of its
//! files to re-read because their retained versions reference chunks that verify found bad.

use asgard_core::RawPath;
use asgard_core::protocol::{DeviceStatus, LoginRequest, MAX_REREAD_PATHS};

use super::ServiceError;
use crate::db::{Db, LoginOutcome, LoginPolicy};

/// What a login did, and what the device should re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginAnswer {
    pub outcome: LoginOutcome,
    /// Paths of this device whose retained versions reference a bad chunk (at most
    /// [`MAX_REREAD_PATHS`]); empty for a new registration (it has no files cache to distrust).
    pub reread: Vec<RawPath>,
    /// More paths than [`MAX_REREAD_PATHS`] would qualify.
    pub reread_truncated: bool,
}

/// Registers or authenticates the device of `req` (see [`Db::login`]; `bearer` is the hash of the
/// token it sent, if any) and, for an active device that logged in with its token, looks up the
/// files it must re-read.
pub(crate) fn login(
    db: &Db,
    req: &LoginRequest,
    bearer: Option<[u8; 32]>,
    policy: LoginPolicy<'_>,
    now: i64,
) -> Result<LoginAnswer, ServiceError> {
    let outcome = db.login(req, bearer, policy, now)?;
    // A device that logs in with its token may hold files that reference chunks verify found
    // bad: tell it which, so that it re-reads them (a new registration has no cache).
    let (reread, reread_truncated) = match bearer {
        Some(hash) if outcome.status == DeviceStatus::Active => {
            let auth = db.authenticate(&hash)?;
            db.reread_paths(auth.user_id, auth.device_id, MAX_REREAD_PATHS)?
        }
        _ => (Vec::new(), false),
    };
    Ok(LoginAnswer {
        outcome,
        reread,
        reread_truncated,
    })
}
