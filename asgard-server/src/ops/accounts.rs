//! The account tasks: devices (list, approve, reset, revoke, new token) and users (list, their
//! own `keep_versions`; disable, enable and delete are in `users.rs`). They run in the server through the admin channel like every other task, so
//! an admin manages accounts without stopping the service.
//!
//! The reports name devices and users but carry no secret: a device's token hash never leaves
//! the database.

use asgard_core::protocol::DeviceStatus;
use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::config::Config;
use crate::db::{Db, DbError};

/// One device, for `device list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeviceInfo {
    pub user: String,
    pub device: String,
    pub status: DeviceStatus,
    /// The device has no token (`device reset` or `device revoke`).
    pub reset: bool,
    pub os: String,
    pub os_version: String,
    /// The last login or authenticated request (µs; recorded at most once a minute).
    pub last_seen_us: i64,
    /// When the device registered (µs).
    pub created_us: i64,
    /// The client address of its last authenticated request, if it made one since issue 13.
    pub last_addr: Option<String>,
    pub token_state: TokenState,
    pub agent_version: String,
}

/// Where a device's token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TokenState {
    /// The token opens the API.
    Active,
    /// Waiting for approval (a new device, or a new registration under this name).
    Pending,
    /// The admin revoked it; no new token or code was issued since.
    Revoked,
    /// The admin reset it: a one-time code lets the device log in again.
    Reset,
}

/// What `device approve` or `device reset` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeviceChange {
    pub user: String,
    pub device: String,
    pub action: DeviceAction,
    /// After a reset: the one-time re-enrollment code for the user (`asgard-agent login --code`),
    /// shown to the admin once; the database holds only its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Until when (µs) the code is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_expires_us: Option<i64>,
    /// After `device token`: the new device token, shown to the admin once (the database holds
    /// only its hash). The agent takes it with `asgard-agent login --token` (or its config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeviceAction {
    Approved,
    Reset,
    Revoked,
    /// A new token was issued ([`DeviceChange::token`]).
    NewToken,
    /// A pending registration was refused (its token is dead).
    Refused,
}

/// One user, for `user list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserInfo {
    pub name: String,
    pub devices: u64,
    /// The user's own setting; `None`: the configured `keep_versions` applies.
    pub keep_versions: Option<u32>,
    /// Retained versions (deletion markers included).
    pub versions: u64,
    /// Sum of the sizes of the retained versions.
    pub logical_bytes: u64,
    /// Stored bytes of the chunks that only this user holds (see `crate::db::UserUsage`): at
    /// least what deleting the user frees.
    pub unique_stored_bytes: u64,
    /// Since when the user is disabled (µs); `None`: enabled.
    pub disabled_since_us: Option<i64>,
}

/// The users and the configured default they fall back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserList {
    pub default_keep_versions: u32,
    pub users: Vec<UserInfo>,
}

/// What `user set-keep` or `user clear-keep` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeepChange {
    pub user: String,
    /// The new own setting; `None`: cleared.
    pub keep_versions: Option<u32>,
    pub default_keep_versions: u32,
}

/// Every device of every user, and every pending registration (status pending; a registration
/// under the name of an existing device is listed beside it).
pub(crate) fn devices(db: &Db) -> Result<Vec<DeviceInfo>, OpsError> {
    let mut out: Vec<DeviceInfo> = db
        .list_devices_full()?
        .into_iter()
        .map(|r| {
            let token_state = match (r.rec.token_hash.is_some(), r.rec.status) {
                (true, DeviceStatus::Pending) => TokenState::Pending,
                (true, _) => TokenState::Active,
                (false, _) if r.revoked_us.is_some() => TokenState::Revoked,
                (false, _) => TokenState::Reset,
            };
            let seen_us = r.seen.as_ref().map_or(0, |s| s.last_seen_us);
            DeviceInfo {
                user: r.user,
                device: r.device,
                status: r.rec.status,
                reset: r.rec.token_hash.is_none(),
                os: r.rec.os,
                os_version: r.rec.os_version,
                last_seen_us: r.rec.last_seen_us.max(seen_us),
                created_us: r.rec.created_us,
                last_addr: r.seen.map(|s| s.addr),
                token_state,
                agent_version: r.rec.agent_version,
            }
        })
        .collect();
    out.extend(db.list_pending()?.into_iter().map(|p| DeviceInfo {
        user: p.user,
        device: p.device,
        status: DeviceStatus::Pending,
        reset: false,
        os: p.rec.os,
        os_version: p.rec.os_version,
        last_seen_us: p.rec.created_us,
        created_us: p.rec.created_us,
        last_addr: None,
        token_state: TokenState::Pending,
        agent_version: p.rec.agent_version,
    }));
    out.sort_by(|a, b| (&a.user, &a.device).cmp(&(&b.user, &b.device)));
    Ok(out)
}

/// A name as the admin typed it, in normal form for the report (as given when it has none).
fn shown(name: &str) -> String {
    asgard_core::names::normalize(name).unwrap_or_else(|_| name.to_owned())
}

fn device_not_found(user: &str, device: &str) -> impl FnOnce(DbError) -> OpsError {
    let (user, device) = (user.to_owned(), device.to_owned());
    move |e| match e {
        DbError::NotFound => OpsError::DeviceNotFound { user, device },
        e => e.into(),
    }
}

/// Approves a pending device: the newest pending registration of that name (which then takes
/// over an existing device of that name), else a device waiting under `registration: approve`.
/// An active one stays active.
pub(crate) fn approve(db: &Db, user: &str, device: &str) -> Result<DeviceChange, OpsError> {
    db.approve_device(user, device)
        .map_err(device_not_found(user, device))?;
    Ok(DeviceChange {
        user: shown(user),
        device: shown(device),
        action: DeviceAction::Approved,
        code: None,
        code_expires_us: None,
        token: None,
    })
}

/// Refuses the pending registrations of `user`/`device` (or the waiting first device of a new
/// user): they go with their tokens, and the waiting agent is told `registration_refused`.
pub(crate) fn refuse(
    db: &Db,
    user: &str,
    device: &str,
    now: i64,
) -> Result<DeviceChange, OpsError> {
    db.refuse_device(user, device, now).map_err(|e| match e {
        DbError::NotFound => OpsError::NothingPending {
            user: user.to_owned(),
            device: device.to_owned(),
        },
        e => e.into(),
    })?;
    Ok(DeviceChange {
        user: shown(user),
        device: shown(device),
        action: DeviceAction::Refused,
        code: None,
        code_expires_us: None,
        token: None,
    })
}

/// Revokes a device's token and makes a one-time re-enrollment code for its user (valid
/// `reenroll_code_valid`); its files stay.
pub(crate) fn reset(
    db: &Db,
    config: &Config,
    user: &str,
    device: &str,
) -> Result<DeviceChange, OpsError> {
    let valid_us = i64::try_from(config.reenroll_code_valid.0.as_micros()).unwrap_or(i64::MAX);
    let out = db
        .reset_device(user, device, valid_us, crate::db::now_us())
        .map_err(device_not_found(user, device))?;
    Ok(DeviceChange {
        user: shown(user),
        device: shown(device),
        action: DeviceAction::Reset,
        code: Some(out.code),
        code_expires_us: Some(out.expires_us),
        token: None,
    })
}

/// Revokes a device's access: its token is refused from the next request on (`token_revoked`);
/// no code is made. Its files stay.
pub(crate) fn revoke(
    db: &Db,
    user: &str,
    device: &str,
    now: i64,
) -> Result<DeviceChange, OpsError> {
    db.revoke_device(user, device, now)
        .map_err(device_not_found(user, device))?;
    Ok(DeviceChange {
        user: shown(user),
        device: shown(device),
        action: DeviceAction::Revoked,
        code: None,
        code_expires_us: None,
        token: None,
    })
}

/// Issues a new token for a device (shown once); the old one is refused from then on.
pub(crate) fn new_token(
    db: &Db,
    user: &str,
    device: &str,
    now: i64,
) -> Result<DeviceChange, OpsError> {
    let token = db
        .new_device_token(user, device, now)
        .map_err(device_not_found(user, device))?;
    Ok(DeviceChange {
        user: shown(user),
        device: shown(device),
        action: DeviceAction::NewToken,
        code: None,
        code_expires_us: None,
        token: Some(token),
    })
}

/// Every user with their devices, versions, bytes, own `keep_versions` and disabled state.
pub(crate) fn users(db: &Db, config: &Config) -> Result<UserList, OpsError> {
    let usage = db.user_usage()?;
    let disabled = db.disabled_users()?;
    Ok(UserList {
        default_keep_versions: config.keep_versions,
        users: db
            .list_users()?
            .into_iter()
            .map(|r| {
                let u = usage.get(&r.id).copied().unwrap_or_default();
                UserInfo {
                    name: r.name,
                    devices: r.devices,
                    keep_versions: r.keep_versions,
                    versions: u.versions,
                    logical_bytes: u.logical_bytes,
                    unique_stored_bytes: u.unique_stored_bytes,
                    disabled_since_us: disabled.get(&r.id).copied(),
                }
            })
            .collect(),
    })
}

/// Sets (or with `None` clears) a user's own `keep_versions`.
pub(crate) fn set_keep(
    db: &Db,
    config: &Config,
    user: &str,
    versions: Option<u32>,
) -> Result<KeepChange, OpsError> {
    if versions == Some(0) {
        return Err(OpsError::BadKeep);
    }
    db.set_keep_override(user, versions).map_err(|e| match e {
        DbError::NotFound => OpsError::UserNotFound {
            user: user.to_owned(),
        },
        e => e.into(),
    })?;
    Ok(KeepChange {
        user: user.to_owned(),
        keep_versions: versions,
        default_keep_versions: config.keep_versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgard_core::protocol::{LoginRequest, PROTOCOL_VERSION};

    fn db_with_devices() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
        // The first device registers openly, the second one waits for an admin.
        for (device, registration) in [
            ("laptop", crate::config::Registration::Open),
            ("desktop", crate::config::Registration::Approve),
        ] {
            let policy = crate::db::LoginPolicy {
                registration,
                enrollment_key: None,
            };
            let req = LoginRequest {
                protocol_version: PROTOCOL_VERSION,
                user: "anna".into(),
                device: device.into(),
                os: "linux".into(),
                os_version: "6".into(),
                agent_version: "t".into(),
                enrollment_key: None,
                code: None,
            };
            db.login(&req, None, policy, 1).unwrap();
        }
        (dir, db)
    }

    #[test]
    fn devices_are_listed_approved_and_reset_without_their_tokens() {
        let (_dir, db) = db_with_devices();
        let list = devices(&db).unwrap();
        assert_eq!(list.len(), 2);
        let pending: Vec<_> = list
            .iter()
            .filter(|d| d.status == DeviceStatus::Pending)
            .collect();
        assert_eq!(pending.len(), 1, "the second device of a user waits");
        let json = serde_json::to_string(&list).unwrap();
        // No token or token hash leaves the database: the only "token" is the state.
        assert!(
            !json.contains("asg_") && json.replace("\"token_state\"", "").find("token").is_none(),
            "{json}"
        );
        assert!(list.iter().all(|d| d.token_state != TokenState::Revoked));

        let name = pending[0].device.clone();
        approve(&db, "anna", &name).unwrap();
        assert!(
            devices(&db)
                .unwrap()
                .iter()
                .all(|d| d.status == DeviceStatus::Active)
        );
        let change = reset(&db, &Config::default(), "Anna", &name).unwrap();
        assert_eq!(change.user, "anna");
        assert!(change.code.is_some_and(|c| c.len() == 9));
        assert!(devices(&db).unwrap().iter().any(|d| d.reset));
        assert!(matches!(
            approve(&db, "anna", "toaster"),
            Err(OpsError::DeviceNotFound { .. })
        ));
        assert!(matches!(
            reset(&db, &Config::default(), "bob", "laptop"),
            Err(OpsError::DeviceNotFound { .. })
        ));
    }

    #[test]
    fn keep_versions_per_user() {
        let (_dir, db) = db_with_devices();
        let config = Config::default();
        let change = set_keep(&db, &config, "ANNA ", Some(9)).unwrap();
        assert_eq!(change.keep_versions, Some(9));
        let list = users(&db, &config).unwrap();
        assert_eq!(list.users[0].keep_versions, Some(9));
        // The second device is a pending registration, not yet a device of anna's.
        assert_eq!(list.users[0].devices, 1);
        set_keep(&db, &config, "anna", None).unwrap();
        assert_eq!(users(&db, &config).unwrap().users[0].keep_versions, None);
        assert!(matches!(
            set_keep(&db, &config, "niemand", Some(2)),
            Err(OpsError::UserNotFound { .. })
        ));
        assert!(matches!(
            set_keep(&db, &config, "anna", Some(0)),
            Err(OpsError::BadKeep)
        ));
    }
}
