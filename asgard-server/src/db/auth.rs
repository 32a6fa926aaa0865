//! Users, devices and their tokens: login (register or authenticate) and each user's own
//! retention setting; pending registrations, approval and reset are in `enroll.rs`.
//!
//! A device token is stored only as its blake3 hash ([`TOKENS`] maps it to the device, and the
//! device record holds it too, so that a reset revokes it by removing both in one transaction).

use asgard_core::names;
use asgard_core::protocol::{DeviceStatus, LoginRequest};
use redb::ReadableTable;

use super::enroll::{self, PendingTables};
use super::{
    DEVICES, DISABLED_USERS, Db, DbError, DeviceRec, KEEP_OVERRIDES, META, NEXT_DEVICE_ID,
    NEXT_USER_ID, PENDING_TOKENS, REVOKED_TOKENS, Result, SKELETONS, TOKENS, USERS, UserRec, dec,
    enc, next_id,
};
use crate::config::Registration;

/// The stored form of a device token: its blake3 hash.
pub fn hash_token(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// A new device token: `asg_` and 64 hex digits of 32 random bytes.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("operating system random source");
    format!("asg_{}", asgard_core::id::to_hex(&bytes))
}

/// Constant-time equality of two secrets (compares their blake3 hashes; blake3's `Hash` compares
/// in constant time).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    blake3::hash(a.as_bytes()) == blake3::hash(b.as_bytes())
}

/// An authenticated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub user_id: u64,
    pub device_id: u64,
    pub device: String,
    pub status: DeviceStatus,
}

/// Registration rules for `login`.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy<'a> {
    pub registration: Registration,
    /// blake3 of the enrollment key a registration must present ([`hash_token`] of the key);
    /// `None`: no key needed.
    pub enrollment_key: Option<&'a [u8; 32]>,
}

/// What `login` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    /// The user and device names in normal form (as stored).
    pub user: String,
    pub device: String,
    /// The new token, when one was issued.
    pub token: Option<String>,
    pub status: DeviceStatus,
    /// A pending registration's approval code and its expiry (µs), when one was made.
    pub approval: Option<(String, i64)>,
}

/// One row of `device list`.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub user: String,
    pub device: String,
    pub rec: DeviceRec,
}

/// A user and their own retention setting, for `user list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub id: u64,
    pub devices: u64,
    /// `None`: the configured `keep_versions` applies.
    pub keep_versions: Option<u32>,
}

/// The user's devices as (name, record), in name order.
pub(super) fn user_devices(
    t: &impl ReadableTable<(u64, &'static str), &'static [u8]>,
    user_id: u64,
) -> Result<Vec<(String, DeviceRec)>> {
    let mut out = Vec::new();
    for row in t.range((user_id, "")..(user_id + 1, ""))? {
        let (k, v) = row?;
        out.push((k.value().1.to_owned(), dec(v.value())?));
    }
    Ok(out)
}

/// Every user id with its name, for the admin's listings.
pub(super) fn user_names(
    txn: &redb::ReadTransaction,
) -> Result<std::collections::HashMap<u64, String>> {
    let mut names = std::collections::HashMap::new();
    for row in txn.open_table(USERS)?.iter()? {
        let (k, v) = row?;
        names.insert(dec::<UserRec>(v.value())?.id, k.value().to_owned());
    }
    Ok(names)
}

impl Db {
    /// Registers or authenticates a device. The names of `req` are brought into normal form
    /// (`asgard_core::names`); the answer's names are those.
    ///
    /// - With a token (`bearer`): the device of that token, if it is this user's device of this
    ///   name (its status), or the pending registration of that token (pending, with a new
    ///   approval code when the old one expired); anything else is `Unauthorized`.
    /// - With a re-enrollment code (`req.code`, after `device reset`): the device with a new
    ///   token, if user, device and code match; anything else is `Unauthorized`.
    /// - Otherwise (a registration, after the enrollment key check): the first device of a new
    ///   user is active (`registration: open`) or pending for the admin (`approve`); a further
    ///   device of an existing user, whatever its name, gets a pending registration (see
    ///   `enroll.rs`). `closed` refuses both alike.
    pub fn login(
        &self,
        req: &LoginRequest,
        bearer: Option<[u8; 32]>,
        policy: LoginPolicy<'_>,
        now: i64,
    ) -> Result<LoginOutcome> {
        let user_name = names::normalize(&req.user).map_err(|e| DbError::BadName(e.to_string()))?;
        let device_name =
            names::normalize(&req.device).map_err(|e| DbError::BadName(e.to_string()))?;
        let txn = self.write()?;
        let outcome = {
            let mut users = txn.open_table(USERS)?;
            let mut devices = txn.open_table(DEVICES)?;
            let mut meta = txn.open_table(META)?;
            let user = enroll::find_user(&users, &req.user)?;
            let device = match &user {
                Some((_, u)) => enroll::find_device(&devices, u.id, &req.device)?,
                None => None,
            };
            let touch = |mut d: DeviceRec| {
                d.os = req.os.clone();
                d.os_version = req.os_version.clone();
                d.agent_version = req.agent_version.clone();
                d.last_seen_us = now;
                d
            };
            let names = |user: &str, device: &str| (user.to_owned(), device.to_owned());

            if let Some(hash) = bearer {
                let owner = txn.open_table(TOKENS)?.get(&hash)?.map(|g| g.value());
                if owner.is_none() {
                    let mut pt = PendingTables::open(&txn)?;
                    let uid = user.as_ref().map(|(_, u)| u.id);
                    let Some(code) = pt.login(&hash, uid, &device_name, now)? else {
                        return Err(if txn.open_table(REVOKED_TOKENS)?.get(&hash)?.is_some() {
                            DbError::TokenRevoked
                        } else if txn.open_table(super::REFUSED_TOKENS)?.get(&hash)?.is_some() {
                            DbError::RegistrationRefused
                        } else {
                            DbError::Unauthorized
                        });
                    };
                    let (user, device) = names(&user.ok_or(DbError::Unauthorized)?.0, &device_name);
                    LoginOutcome {
                        user,
                        device,
                        token: None,
                        status: DeviceStatus::Pending,
                        approval: code,
                    }
                } else {
                    let found = match (user, device) {
                        (Some(u), Some(d)) if owner == Some((u.1.id, d.1.id)) => Some((u, d)),
                        // A name stored before normalisation whose normal form another user or
                        // device has: found by the token's owner.
                        _ => owner
                            .map(|(uid, did)| {
                                enroll::by_owner(
                                    &users,
                                    &devices,
                                    (uid, did),
                                    &user_name,
                                    &device_name,
                                )
                            })
                            .transpose()?
                            .flatten(),
                    };
                    let Some(((ukey, user), (dkey, device))) = found else {
                        return Err(DbError::Unauthorized);
                    };
                    if device.token_hash != Some(hash) {
                        return Err(DbError::Unauthorized);
                    }
                    if txn.open_table(DISABLED_USERS)?.get(user.id)?.is_some() {
                        return Err(DbError::UserDisabled);
                    }
                    let status = device.status;
                    devices.insert((user.id, dkey.as_str()), enc(&touch(device))?.as_slice())?;
                    let (user, device) = names(&ukey, &dkey);
                    LoginOutcome {
                        user,
                        device,
                        token: None,
                        status,
                        approval: None,
                    }
                }
            } else if let Some(code) = &req.code {
                let (Some((ukey, user)), Some((dkey, mut device))) = (user, device) else {
                    return Err(DbError::Unauthorized);
                };
                if txn.open_table(DISABLED_USERS)?.get(user.id)?.is_some() {
                    return Err(DbError::UserDisabled);
                }
                let token = new_token();
                enroll::reenroll(&txn, user.id, &mut device, code, hash_token(&token), now)?;
                let device = touch(device);
                let status = device.status;
                devices.insert((user.id, dkey.as_str()), enc(&device)?.as_slice())?;
                let (user, device) = names(&ukey, &dkey);
                LoginOutcome {
                    user,
                    device,
                    token: Some(token),
                    status,
                    approval: None,
                }
            } else {
                let given = blake3::hash(req.enrollment_key.as_deref().unwrap_or("").as_bytes());
                // `blake3::Hash` compares in constant time.
                if let Some(key) = policy.enrollment_key
                    && blake3::Hash::from(*key) != given
                {
                    return Err(DbError::EnrollmentKey);
                }
                if policy.registration == Registration::Closed {
                    return Err(DbError::RegistrationClosed);
                }
                match user {
                    Some((ukey, user)) => {
                        let mut pt = PendingTables::open(&txn)?;
                        let p = pt.add(&mut meta, user.id, &device_name, req, now)?;
                        LoginOutcome {
                            user: ukey,
                            device: device_name,
                            token: Some(p.token),
                            status: DeviceStatus::Pending,
                            approval: Some((p.code, p.expires_us)),
                        }
                    }
                    None => {
                        let mut skeletons = txn.open_table(SKELETONS)?;
                        let skel = names::skeleton(&user_name);
                        if skeletons.get(skel.as_str())?.is_some() {
                            return Err(DbError::ConfusableName { name: user_name });
                        }
                        let u = UserRec {
                            id: next_id(&mut meta, NEXT_USER_ID)?,
                            created_us: now,
                        };
                        users.insert(user_name.as_str(), enc(&u)?.as_slice())?;
                        skeletons.insert(skel.as_str(), u.id)?;
                        let status = match policy.registration {
                            Registration::Approve => DeviceStatus::Pending,
                            _ => DeviceStatus::Active,
                        };
                        let token = new_token();
                        let hash = hash_token(&token);
                        let device = touch(DeviceRec {
                            id: next_id(&mut meta, NEXT_DEVICE_ID)?,
                            token_hash: Some(hash),
                            status,
                            os: String::new(),
                            os_version: String::new(),
                            agent_version: String::new(),
                            created_us: now,
                            last_seen_us: now,
                        });
                        txn.open_table(TOKENS)?.insert(&hash, (u.id, device.id))?;
                        devices.insert((u.id, device_name.as_str()), enc(&device)?.as_slice())?;
                        LoginOutcome {
                            user: user_name,
                            device: device_name,
                            token: Some(token),
                            status,
                            approval: None,
                        }
                    }
                }
            }
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// The device of a token hash.
    pub fn authenticate(&self, hash: &[u8; 32]) -> Result<Auth> {
        let txn = self.read()?;
        let Some((user_id, device_id)) = txn.open_table(TOKENS)?.get(hash)?.map(|g| g.value())
        else {
            // The token of a pending registration opens nothing, but says why.
            if txn.open_table(PENDING_TOKENS)?.get(hash)?.is_some() {
                return Err(DbError::Pending);
            }
            // A token the admin revoked, replaced or refused says so.
            if Db::refused_token(&txn, hash)? {
                return Err(DbError::RegistrationRefused);
            }
            return Err(Db::revoked_token(&txn, hash)?.unwrap_or(DbError::Unauthorized));
        };
        if txn.open_table(DISABLED_USERS)?.get(user_id)?.is_some() {
            return Err(DbError::UserDisabled);
        }
        let devices = txn.open_table(DEVICES)?;
        user_devices(&devices, user_id)?
            .into_iter()
            .find(|(_, d)| d.id == device_id && d.token_hash.as_ref() == Some(hash))
            .map(|(name, d)| Auth {
                user_id,
                device_id,
                device: name,
                status: d.status,
            })
            .ok_or(DbError::Unauthorized)
    }

    /// Every device of every user, for `device list`.
    pub fn list_devices(&self) -> Result<Vec<DeviceRow>> {
        let txn = self.read()?;
        let names = user_names(&txn)?;
        let mut out = Vec::new();
        for row in txn.open_table(DEVICES)?.iter()? {
            let (k, v) = row?;
            let (user_id, device) = k.value();
            out.push(DeviceRow {
                user: names.get(&user_id).cloned().unwrap_or_default(),
                device: device.to_owned(),
                rec: dec(v.value())?,
            });
        }
        out.sort_by(|a, b| (&a.user, &a.device).cmp(&(&b.user, &b.device)));
        Ok(out)
    }

    /// Sets (`Some`) or clears (`None`) a user's own `keep_versions`; `NotFound` for an unknown
    /// user. It applies from the next commit of each path and to every path at the next GC pass.
    pub fn set_keep_override(&self, user: &str, keep: Option<u32>) -> Result<()> {
        let txn = self.write()?;
        {
            let users = txn.open_table(USERS)?;
            let user_id = enroll::find_user(&users, user)?
                .ok_or(DbError::NotFound)?
                .1
                .id;
            let mut keeps = txn.open_table(KEEP_OVERRIDES)?;
            match keep {
                Some(k) => keeps.insert(user_id, k.max(1))?,
                None => keeps.remove(user_id)?,
            };
        }
        txn.commit()?;
        Ok(())
    }

    /// Every user with their device count and own `keep_versions`, by name.
    pub fn list_users(&self) -> Result<Vec<UserRow>> {
        let txn = self.read()?;
        let keeps = txn.open_table(KEEP_OVERRIDES)?;
        let devices = txn.open_table(DEVICES)?;
        let mut out = Vec::new();
        for row in txn.open_table(USERS)?.iter()? {
            let (k, v) = row?;
            let id = dec::<UserRec>(v.value())?.id;
            out.push(UserRow {
                name: k.value().to_owned(),
                id,
                devices: devices.range((id, "")..(id + 1, ""))?.count() as u64,
                keep_versions: keeps.get(id)?.map(|g| g.value()),
            });
        }
        Ok(out)
    }
}
