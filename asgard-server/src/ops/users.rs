//! The admin's user actions beyond retention: disable, enable and delete (`user
//! disable/enable/delete`, the users page). The listing is in `accounts.rs`.

use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::db::{Db, DbError};

/// What was done to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UserAction {
    Disabled,
    Enabled,
    Deleted,
}

/// What `user disable/enable/delete` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserChange {
    pub user: String,
    pub action: UserAction,
    /// After a deletion: what went (`None` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<DeletedCounts>,
}

/// What a deletion removed; the chunks only this user referenced go with the next GC passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeletedCounts {
    pub devices: u64,
    pub paths: u64,
    pub versions: u64,
}

fn not_found(user: &str) -> impl FnOnce(DbError) -> OpsError {
    let user = user.to_owned();
    move |e| match e {
        DbError::NotFound => OpsError::UserNotFound { user },
        e => e.into(),
    }
}

fn shown(name: &str) -> String {
    asgard_core::names::normalize(name).unwrap_or_else(|_| name.to_owned())
}

/// Disables (`true`) or enables a user.
pub(crate) fn set_disabled(
    db: &Db,
    user: &str,
    disabled: bool,
    now: i64,
) -> Result<UserChange, OpsError> {
    db.set_user_disabled(user, disabled, now)
        .map_err(not_found(user))?;
    Ok(UserChange {
        user: shown(user),
        action: if disabled {
            UserAction::Disabled
        } else {
            UserAction::Enabled
        },
        deleted: None,
    })
}

/// Deletes a user and everything of theirs (see `crate::db::Db::delete_user`).
pub(crate) fn delete(db: &Db, user: &str, now: i64) -> Result<UserChange, OpsError> {
    let d = db.delete_user(user, now).map_err(not_found(user))?;
    Ok(UserChange {
        user: shown(user),
        action: UserAction::Deleted,
        deleted: Some(DeletedCounts {
            devices: d.devices,
            paths: d.paths,
            versions: d.versions,
        }),
    })
}
