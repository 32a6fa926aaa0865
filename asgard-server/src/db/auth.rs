//! Users, devices and their tokens: login (register or authenticate), the admin's approve and
//! reset, and each user's own retention setting.
//!
//! A device token is stored only as its blake3 hash ([`TOKENS`] maps it to the device, and the
//! device record holds it too, so that a reset revokes it by removing both in one transaction).

use asgard_core::protocol::{DeviceStatus, LoginRequest};
use redb::ReadableTable;

use super::{
    DEVICES, Db, DbError, DeviceRec, KEEP_OVERRIDES, META, NEXT_DEVICE_ID, NEXT_USER_ID, Result,
    TOKENS, USERS, UserRec, dec, enc, next_id,
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
    pub enrollment_key: Option<&'a str>,
}

/// What `login` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    /// The new token, when one was issued.
    pub token: Option<String>,
    pub status: DeviceStatus,
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

impl Db {
    /// Registers or authenticates a device (see the protocol docs for every case).
    pub fn login(
        &self,
        req: &LoginRequest,
        bearer: Option<[u8; 32]>,
        policy: LoginPolicy<'_>,
        now: i64,
    ) -> Result<LoginOutcome> {
        let txn = self.write()?;
        let outcome = {
            let mut users = txn.open_table(USERS)?;
            let mut devices = txn.open_table(DEVICES)?;
            let mut tokens = txn.open_table(TOKENS)?;
            let mut meta = txn.open_table(META)?;
            let user: Option<UserRec> = users
                .get(req.user.as_str())?
                .map(|g| dec(g.value()))
                .transpose()?;
            let device: Option<DeviceRec> = match &user {
                Some(u) => devices
                    .get((u.id, req.device.as_str()))?
                    .map(|g| dec(g.value()))
                    .transpose()?,
                None => None,
            };
            let touch = |mut d: DeviceRec| {
                d.os = req.os.clone();
                d.os_version = req.os_version.clone();
                d.agent_version = req.agent_version.clone();
                d.last_seen_us = now;
                d
            };

            if let Some(hash) = bearer {
                let owner = tokens.get(&hash)?.map(|g| g.value());
                let (Some(user), Some(device)) = (user, device) else {
                    return Err(DbError::Unauthorized);
                };
                if owner != Some((user.id, device.id)) || device.token_hash != Some(hash) {
                    return Err(DbError::Unauthorized);
                }
                let status = device.status;
                devices.insert(
                    (user.id, req.device.as_str()),
                    enc(&touch(device))?.as_slice(),
                )?;
                LoginOutcome {
                    token: None,
                    status,
                }
            } else {
                if let Some(d) = &device
                    && d.token_hash.is_some()
                {
                    return Err(DbError::DeviceExists {
                        user: req.user.clone(),
                        device: req.device.clone(),
                    });
                }
                if let Some(key) = policy.enrollment_key
                    && !secrets_equal(key, req.enrollment_key.as_deref().unwrap_or(""))
                {
                    return Err(DbError::EnrollmentKey);
                }
                let token = new_token();
                let hash = hash_token(&token);
                let user = match user {
                    Some(u) => u,
                    None => {
                        if policy.registration == Registration::Closed {
                            return Err(DbError::RegistrationClosed);
                        }
                        let u = UserRec {
                            id: next_id(&mut meta, NEXT_USER_ID)?,
                            created_us: now,
                        };
                        users.insert(req.user.as_str(), enc(&u)?.as_slice())?;
                        u
                    }
                };
                let device = match device {
                    // A device reset by the admin registers again and keeps its files and status.
                    Some(d) => d,
                    None => {
                        let status = match policy.registration {
                            Registration::Open => DeviceStatus::Active,
                            Registration::Approve => DeviceStatus::Pending,
                            Registration::Closed => return Err(DbError::RegistrationClosed),
                        };
                        DeviceRec {
                            id: next_id(&mut meta, NEXT_DEVICE_ID)?,
                            token_hash: None,
                            status,
                            os: String::new(),
                            os_version: String::new(),
                            agent_version: String::new(),
                            created_us: now,
                            last_seen_us: now,
                        }
                    }
                };
                let mut device = touch(device);
                device.token_hash = Some(hash);
                tokens.insert(&hash, (user.id, device.id))?;
                let status = device.status;
                devices.insert((user.id, req.device.as_str()), enc(&device)?.as_slice())?;
                LoginOutcome {
                    token: Some(token),
                    status,
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
            return Err(DbError::Unauthorized);
        };
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

    /// The distinct ids (in request order) that this user does not own or that the store lacks.
    /// Answers only from the user's own chunks, so it reveals nothing about other users. A chunk
    /// that verify marked bad counts as lacking for every owner, so that whoever still has the
    /// bytes uploads them again and heals it.
    ///
    /// Every chunk answered "not missing" gets a lease (`last_touched_us = now`, GC candidate mark
    /// cleared) in the same transaction: the agent will commit versions referencing it without
    /// Every device of every user, for `device list`.
    pub fn list_devices(&self) -> Result<Vec<DeviceRow>> {
        let txn = self.read()?;
        let mut names = std::collections::HashMap::new();
        for row in txn.open_table(USERS)?.iter()? {
            let (k, v) = row?;
            names.insert(dec::<UserRec>(v.value())?.id, k.value().to_owned());
        }
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

    /// Changes one device in a write transaction; `NotFound` when user or device is unknown.
    fn update_device(
        &self,
        user: &str,
        device: &str,
        f: impl FnOnce(&mut DeviceRec, &mut redb::Table<&[u8; 32], (u64, u64)>) -> Result<()>,
    ) -> Result<DeviceRec> {
        let txn = self.write()?;
        let rec = {
            let users = txn.open_table(USERS)?;
            let mut devices = txn.open_table(DEVICES)?;
            let mut tokens = txn.open_table(TOKENS)?;
            let user_id = users
                .get(user)?
                .map(|g| dec::<UserRec>(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?
                .id;
            let mut rec: DeviceRec = devices
                .get((user_id, device))?
                .map(|g| dec(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?;
            f(&mut rec, &mut tokens)?;
            devices.insert((user_id, device), enc(&rec)?.as_slice())?;
            rec
        };
        txn.commit()?;
        Ok(rec)
    }

    /// pending → active.
    pub fn approve_device(&self, user: &str, device: &str) -> Result<DeviceRec> {
        self.update_device(user, device, |rec, _| {
            rec.status = DeviceStatus::Active;
            Ok(())
        })
    }

    /// Revokes the device's token so that the device can register again; its files stay.
    pub fn reset_device(&self, user: &str, device: &str) -> Result<DeviceRec> {
        self.update_device(user, device, |rec, tokens| {
            if let Some(hash) = rec.token_hash.take() {
                tokens.remove(&hash)?;
            }
            Ok(())
        })
    }

    /// Sets (`Some`) or clears (`None`) a user's own `keep_versions`; `NotFound` for an unknown
    /// user. It applies from the next commit of each path and to every path at the next GC pass.
    pub fn set_keep_override(&self, user: &str, keep: Option<u32>) -> Result<()> {
        let txn = self.write()?;
        {
            let users = txn.open_table(USERS)?;
            let user_id = users
                .get(user)?
                .map(|g| dec::<UserRec>(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?
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
