//! The admin console's account actions (issue 13): disabling and deleting users, revoking a
//! device's access or giving it a new token, where devices were last seen, and the registration
//! mode set at run time.
//!
//! ## Revoked versus reset
//! `device reset` (in `enroll.rs`) takes a device's token and hands out a one-time code: the way
//! back in is prepared. `device revoke` takes the token and prepares nothing: the device is out
//! until the admin gives it a new token (`device token`) or a code (`device reset`). The hash of
//! a revoked token stays in [`REVOKED_TOKENS`], so the device is told `token_revoked` and not a
//! bare "unauthorized"; [`REVOKED_DEVICES`] marks the device's state until a new token or code.
//!
//! ## Deleting a user
//! A user may own millions of versions: one write transaction for all of them would hold every
//! dirty page of the change in memory. [`Db::delete_user`] is a resumable sequence instead:
//! 1. one transaction disables the user and takes every token, pending registration and code of
//!    theirs (nothing of theirs is accepted from then on);
//! 2. transactions of at most [`DELETE_BATCH`] paths each remove those paths and their versions
//!    and release the versions' chunk references (each batch is consistent on its own);
//! 3. one last transaction removes whatever paths are left (so a commit that slipped in between
//!    is caught), the ownership rows, runs, devices and finally the user record.
//!
//! A crash between the steps leaves a disabled user with fewer versions, which is consistent:
//! every remaining version still holds its chunk references. Running the deletion again finds
//! the user and carries on. Chunks nobody references any more are collected by the normal GC
//! (two passes, after the grace period), never here.

use asgard_core::names;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::enroll::{find_device, find_user};
use super::{
    CHUNKS, DEVICE_SEEN, DEVICES, DISABLED_USERS, Db, DbError, DeviceRec, KEEP_OVERRIDES,
    META_JSON, META_REGISTRATION, PATHS, PENDING, PENDING_TOKENS, PathRec, REENROLL, REREAD,
    REVOKED_DEVICES, REVOKED_TOKENS, RUNS, Result, SKELETONS, SeenRec, TOKENS, USER_CHUNKS, USERS,
    VERSIONS, VersionRec, adjust_refcount, dec, enc,
};
use crate::config::Registration;
use crate::db::auth::{hash_token, new_token};

/// Paths removed per transaction by [`Db::delete_user`].
pub const DELETE_BATCH: usize = 2000;

/// The registration rules set at run time (`registration set`), kept as JSON in `meta_json`
/// under [`META_REGISTRATION`]. Once set it wins over the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationSetting {
    pub mode: Registration,
    /// blake3 of the enrollment key (the key itself is never stored); `None`: no key needed.
    pub enrollment_key_hash: Option<[u8; 32]>,
    /// When it was set (µs).
    pub set_us: i64,
}

/// Every device with what the admin console shows about it.
#[derive(Debug, Clone)]
pub struct DeviceFull {
    pub user: String,
    pub user_id: u64,
    pub device: String,
    pub rec: DeviceRec,
    pub seen: Option<SeenRec>,
    /// Since when the admin revoked the device's access (no new token or code since).
    pub revoked_us: Option<i64>,
}

/// What [`Db::delete_user`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeletedUser {
    pub devices: u64,
    pub paths: u64,
    pub versions: u64,
}

/// The user's id by name, or `NotFound`.
fn user_id(txn: &WriteTransaction, user: &str) -> Result<(String, u64)> {
    let users = txn.open_table(USERS)?;
    let (key, rec) = find_user(&users, user)?.ok_or(DbError::NotFound)?;
    Ok((key, rec.id))
}

impl Db {
    /// The registration rules set at run time, if the admin set any.
    pub fn registration_setting(&self) -> Result<Option<RegistrationSetting>> {
        self.get_meta_json(META_REGISTRATION)
    }

    /// Stores the registration rules (they apply from the next login on).
    pub fn set_registration_setting(&self, setting: &RegistrationSetting) -> Result<()> {
        self.set_meta_json(META_REGISTRATION, setting)
    }

    /// Forgets the registration rules set at run time: the configuration file applies again.
    pub fn clear_registration_setting(&self) -> Result<()> {
        let txn = self.write()?;
        txn.open_table(META_JSON)?.remove(META_REGISTRATION)?;
        txn.commit()?;
        Ok(())
    }

    /// Disables (`true`) or enables a user; `NotFound` for an unknown user. A disabled user's
    /// devices are refused with `UserDisabled` on every request; nothing else changes.
    pub fn set_user_disabled(&self, user: &str, disabled: bool, now: i64) -> Result<()> {
        let txn = self.write()?;
        {
            let (_, id) = user_id(&txn, user)?;
            let mut t = txn.open_table(DISABLED_USERS)?;
            if disabled {
                if t.get(id)?.is_none() {
                    t.insert(id, now)?;
                }
                // Their browser sessions end with them (issue 14).
                super::sessions::revoke_subject(&txn, super::Subject::User(id))?;
            } else {
                t.remove(id)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Whether the user of this id is disabled.
    pub fn user_disabled(&self, user_id: u64) -> Result<bool> {
        Ok(self
            .read()?
            .open_table(DISABLED_USERS)?
            .get(user_id)?
            .is_some())
    }

    /// Every disabled user id with the time it was disabled.
    pub fn disabled_users(&self) -> Result<std::collections::HashMap<u64, i64>> {
        let txn = self.read()?;
        let mut out = std::collections::HashMap::new();
        for row in txn.open_table(DISABLED_USERS)?.iter()? {
            let (k, v) = row?;
            out.insert(k.value(), v.value());
        }
        Ok(out)
    }

    /// Why a token that opens no device was refused: `TokenRevoked` if the admin revoked or
    /// replaced it, else `None`.
    pub(super) fn revoked_token(
        txn: &redb::ReadTransaction,
        hash: &[u8; 32],
    ) -> Result<Option<DbError>> {
        Ok(txn
            .open_table(REVOKED_TOKENS)?
            .get(hash)?
            .map(|_| DbError::TokenRevoked))
    }

    /// Takes the device's token (and any re-enrollment code) and marks it revoked: from the next
    /// request on it is refused with `TokenRevoked`. Its files stay.
    pub fn revoke_device(&self, user: &str, device: &str, now: i64) -> Result<()> {
        let txn = self.write()?;
        {
            let (_, uid) = user_id(&txn, user)?;
            let mut devices = txn.open_table(DEVICES)?;
            let (key, mut rec) = find_device(&devices, uid, device)?.ok_or(DbError::NotFound)?;
            if let Some(hash) = rec.token_hash.take() {
                txn.open_table(TOKENS)?.remove(&hash)?;
                txn.open_table(REVOKED_TOKENS)?
                    .insert(&hash, (uid, rec.id, now))?;
            }
            txn.open_table(REENROLL)?.remove((uid, rec.id))?;
            txn.open_table(REVOKED_DEVICES)?
                .insert((uid, rec.id), now)?;
            devices.insert((uid, key.as_str()), enc(&rec)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Gives the device a new token (returned, shown once); the old one is refused from now on
    /// (`TokenRevoked`), a pending re-enrollment code dies. The device keeps its status.
    pub fn new_device_token(&self, user: &str, device: &str, now: i64) -> Result<String> {
        let txn = self.write()?;
        let token = {
            let (_, uid) = user_id(&txn, user)?;
            let mut devices = txn.open_table(DEVICES)?;
            let (key, mut rec) = find_device(&devices, uid, device)?.ok_or(DbError::NotFound)?;
            let mut tokens = txn.open_table(TOKENS)?;
            if let Some(old) = rec.token_hash.take() {
                tokens.remove(&old)?;
                txn.open_table(REVOKED_TOKENS)?
                    .insert(&old, (uid, rec.id, now))?;
            }
            let token = new_token();
            let hash = hash_token(&token);
            tokens.insert(&hash, (uid, rec.id))?;
            rec.token_hash = Some(hash);
            txn.open_table(REENROLL)?.remove((uid, rec.id))?;
            txn.open_table(REVOKED_DEVICES)?.remove((uid, rec.id))?;
            devices.insert((uid, key.as_str()), enc(&rec)?.as_slice())?;
            token
        };
        txn.commit()?;
        Ok(token)
    }

    /// Records that a device made an authenticated request from `addr` at `now`, without sync
    /// (see [`DEVICE_SEEN`]); the caller limits how often (at most once a minute per device).
    pub fn record_seen(&self, user_id: u64, device_id: u64, addr: &str, now: i64) -> Result<()> {
        let txn = self.write_unsynced()?;
        {
            let rec = SeenRec {
                last_seen_us: now,
                addr: addr.chars().take(64).collect(),
            };
            txn.open_table(DEVICE_SEEN)?
                .insert((user_id, device_id), enc(&rec)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Every device of every user with where it was last seen and whether it was revoked, by
    /// user and device name.
    pub fn list_devices_full(&self) -> Result<Vec<DeviceFull>> {
        let txn = self.read()?;
        let names = super::auth::user_names(&txn)?;
        let seen = txn.open_table(DEVICE_SEEN)?;
        let revoked = txn.open_table(REVOKED_DEVICES)?;
        let mut out = Vec::new();
        for row in txn.open_table(DEVICES)?.iter()? {
            let (k, v) = row?;
            let (user_id, device) = k.value();
            let rec: DeviceRec = dec(v.value())?;
            out.push(DeviceFull {
                user: names.get(&user_id).cloned().unwrap_or_default(),
                user_id,
                device: device.to_owned(),
                seen: seen
                    .get((user_id, rec.id))?
                    .and_then(|g| postcard::from_bytes(g.value()).ok()),
                revoked_us: revoked.get((user_id, rec.id))?.map(|g| g.value()),
                rec,
            });
        }
        out.sort_by(|a, b| (&a.user, &a.device).cmp(&(&b.user, &b.device)));
        Ok(out)
    }

    /// Deletes a user with all their devices, tokens, paths, versions, runs and registrations
    /// (see the module docs for the sequence and what a crash leaves). `NotFound` for an unknown
    /// user.
    pub fn delete_user(&self, user: &str, now: i64) -> Result<DeletedUser> {
        self.delete_user_in(user, now, DELETE_BATCH)
    }

    /// [`Db::delete_user`] with `batch` paths per transaction.
    pub(crate) fn delete_user_in(&self, user: &str, now: i64, batch: usize) -> Result<DeletedUser> {
        let batch = batch.max(1);
        let mut out = DeletedUser::default();
        // 1. Nothing of theirs is accepted any more.
        let txn = self.write()?;
        let uid = {
            let (_, uid) = user_id(&txn, user)?;
            let mut disabled = txn.open_table(DISABLED_USERS)?;
            if disabled.get(uid)?.is_none() {
                disabled.insert(uid, now)?;
            }
            let mut tokens = txn.open_table(TOKENS)?;
            let mut devices = txn.open_table(DEVICES)?;
            for (name, mut rec) in super::user_devices(&devices, uid)? {
                if let Some(h) = rec.token_hash.take() {
                    tokens.remove(&h)?;
                    devices.insert((uid, name.as_str()), enc(&rec)?.as_slice())?;
                }
            }
            let mut pending = txn.open_table(PENDING)?;
            let mut ptokens = txn.open_table(PENDING_TOKENS)?;
            for row in pending.extract_from_if((uid, 0)..=(uid, u64::MAX), |_, _| true)? {
                let rec: super::PendingRec = dec(row?.1.value())?;
                ptokens.remove(&rec.token_hash)?;
            }
            let mut reenroll = txn.open_table(REENROLL)?;
            reenroll.retain_in((uid, 0)..=(uid, u64::MAX), |_, _| false)?;
            super::sessions::revoke_subject(&txn, super::Subject::User(uid))?;
            txn.open_table(super::WEB_PASSWORDS)?.remove(uid)?;
            uid
        };
        txn.commit()?;
        // 2. The paths and versions, a batch at a time.
        loop {
            let txn = self.write()?;
            let (paths, versions) = delete_paths(&txn, uid, batch)?;
            txn.commit()?;
            out.paths += paths;
            out.versions += versions;
            if (paths as usize) < batch {
                break;
            }
        }
        // 3. The rest, and the user.
        let txn = self.write()?;
        {
            let (key, _) = user_id(&txn, user)?;
            loop {
                let (paths, versions) = delete_paths(&txn, uid, batch)?;
                out.paths += paths;
                out.versions += versions;
                if paths == 0 {
                    break;
                }
            }
            txn.open_table(USER_CHUNKS)?
                .retain_in((uid, &[0u8; 32])..=(uid, &[0xffu8; 32]), |_, _| false)?;
            txn.open_table(RUNS)?
                .retain_in((uid, 0, 0)..=(uid, u64::MAX, u64::MAX), |_, _| false)?;
            let mut reread = txn.open_table(REREAD)?;
            let stale: Vec<(u64, Vec<u8>)> = reread
                .range((uid, 0, &[][..])..(uid + 1, 0, &[][..]))?
                .map(|r| r.map(|(k, _)| (k.value().1, k.value().2.to_vec())))
                .collect::<std::result::Result<_, _>>()?;
            for (did, path) in stale {
                reread.remove((uid, did, path.as_slice()))?;
            }
            let mut devices = txn.open_table(DEVICES)?;
            let mut seen = txn.open_table(DEVICE_SEEN)?;
            let mut revoked = txn.open_table(REVOKED_DEVICES)?;
            for (name, rec) in super::user_devices(&devices, uid)? {
                devices.remove((uid, name.as_str()))?;
                seen.remove((uid, rec.id))?;
                revoked.remove((uid, rec.id))?;
                out.devices += 1;
            }
            txn.open_table(REVOKED_TOKENS)?
                .retain(|_, (u, _, _)| u != uid)?;
            txn.open_table(KEEP_OVERRIDES)?.remove(uid)?;
            txn.open_table(DISABLED_USERS)?.remove(uid)?;
            let mut skeletons = txn.open_table(SKELETONS)?;
            let skel = names::skeleton(&key);
            if skeletons
                .get(skel.as_str())?
                .is_some_and(|g| g.value() == uid)
            {
                skeletons.remove(skel.as_str())?;
            }
            txn.open_table(USERS)?.remove(key.as_str())?;
        }
        txn.commit()?;
        Ok(out)
    }
}

/// Removes up to `limit` paths of the user with their versions and releases the versions' chunk
/// references (in `txn`). Returns (paths, versions) removed.
fn delete_paths(txn: &WriteTransaction, uid: u64, limit: usize) -> Result<(u64, u64)> {
    let mut paths = txn.open_table(PATHS)?;
    let mut versions = txn.open_table(VERSIONS)?;
    let mut chunks = txn.open_table(CHUNKS)?;
    let keys: Vec<(u64, Vec<u8>, PathRec)> = paths
        .range((uid, 0, &[][..])..(uid + 1, 0, &[][..]))?
        .take(limit)
        .map(|r| {
            let (k, v) = r?;
            Ok((k.value().1, k.value().2.to_vec(), dec(v.value())?))
        })
        .collect::<Result<_>>()?;
    let mut removed = 0u64;
    for (did, path, rec) in &keys {
        for &id in &rec.versions {
            if let Some(g) = versions.remove(id)? {
                let v = VersionRec::decode(g.value())?;
                for (chunk, _) in &v.chunks {
                    adjust_refcount(&mut chunks, chunk, -1)?;
                }
                removed += 1;
            }
        }
        paths.remove((uid, *did, path.as_slice()))?;
    }
    Ok((keys.len() as u64, removed))
}

#[cfg(test)]
mod tests;
