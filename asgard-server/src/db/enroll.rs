//! Enrollment beyond a user's first device: pending registrations with their approval codes, the
//! one-time re-enrollment code of `device reset`, and names in normal form.
//!
//! Who may get a token for a device of an existing user:
//!
//! - whoever holds that device's token (it logs in as before);
//! - whoever holds the re-enrollment code the admin was given at `device reset` (one use,
//!   bounded time): it gets the device back with its files;
//! - anybody else gets a **pending registration** ([`PENDING`]): a token that only `login`
//!   accepts (answering "pending") and a short approval code. Nothing of the user is readable
//!   with it. An active device of the same user approves it with the code
//!   ([`Db::approve_by_code`]), or the admin by user and device name ([`Db::approve_device`]).
//!   Only then does it become a device, or take over the existing device of that name (a
//!   reinstalled machine): until then the existing device's token is untouched.
//!
//! A user has at most [`PENDING_PER_USER`] pending registrations: a new one replaces the oldest,
//! so a stranger flooding a user with registrations never locks the user's own devices out
//! (the user's next attempt gets a fresh code). Codes are stored as keyed blake3 hashes and
//! compared in constant time.

use asgard_core::names;
use asgard_core::protocol::{DeviceStatus, LoginRequest};
use redb::{ReadableTable, Table, WriteTransaction};

use super::{
    DEVICES, Db, DbError, DeviceRec, META, NAMES_VERSION, NEXT_DEVICE_ID, NEXT_PENDING_ID, PENDING,
    PENDING_TOKENS, PendingRec, REENROLL, ReenrollRec, Result, SKELETONS, TOKENS, USERS, UserRec,
    dec, enc, next_id,
};
use crate::db::auth::{hash_token, new_token, user_devices};

/// At most this many pending registrations per user; a new one replaces the oldest.
pub const PENDING_PER_USER: usize = 4;
/// How long an approval code is valid (1 hour); a later login of the pending device gets a new one.
pub const APPROVAL_CODE_VALID_US: i64 = 3600 * 1_000_000;

/// A new random code in its shown form (`K7MQ-4XTD`).
pub(super) fn new_code() -> String {
    let mut bytes = [0u8; names::CODE_LEN];
    getrandom::fill(&mut bytes).expect("operating system random source");
    names::code_from_random(&bytes)
}

/// The stored form of a code of `user_id`: a keyed blake3 over the user id and the canonical code.
pub(super) fn code_hash(user_id: u64, code: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("asgard 2026 enrollment code v1");
    h.update(&user_id.to_le_bytes());
    h.update(code.as_bytes());
    *h.finalize().as_bytes()
}

/// Constant-time equality of two hashes.
fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    blake3::Hash::from(*a) == blake3::Hash::from(*b)
}

/// A user by name: its normal form first, then the name as given (a user stored before names were
/// normalised whose normal form collided with another user keeps its old key).
pub(super) fn find_user(
    users: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<(String, UserRec)>> {
    let normal = names::normalize(name).ok();
    for key in normal.iter().map(String::as_str).chain([name]) {
        if let Some(g) = users.get(key)? {
            return Ok(Some((key.to_owned(), dec(g.value())?)));
        }
    }
    Ok(None)
}

/// A device of `user_id` by name, as [`find_user`] does.
pub(super) fn find_device(
    devices: &impl ReadableTable<(u64, &'static str), &'static [u8]>,
    user_id: u64,
    name: &str,
) -> Result<Option<(String, DeviceRec)>> {
    let normal = names::normalize(name).ok();
    for key in normal.iter().map(String::as_str).chain([name]) {
        if let Some(g) = devices.get((user_id, key))? {
            return Ok(Some((key.to_owned(), dec(g.value())?)));
        }
    }
    Ok(None)
}

/// The user and device of a token's `owner` (ids), if their stored names have the normal forms
/// `user` and `device`. A scan of the users: only for names stored before normalisation that
/// [`find_user`] and [`find_device`] cannot reach by their normal form (it was taken).
#[allow(clippy::type_complexity)]
pub(super) fn by_owner(
    users: &impl ReadableTable<&'static str, &'static [u8]>,
    devices: &impl ReadableTable<(u64, &'static str), &'static [u8]>,
    owner: (u64, u64),
    user: &str,
    device: &str,
) -> Result<Option<((String, UserRec), (String, DeviceRec))>> {
    let same = |stored: &str, wanted: &str| names::normalize(stored).is_ok_and(|n| n == wanted);
    let mut found_user = None;
    for row in users.iter()? {
        let (k, v) = row?;
        let rec: UserRec = dec(v.value())?;
        if rec.id == owner.0 && same(k.value(), user) {
            found_user = Some((k.value().to_owned(), rec));
            break;
        }
    }
    let Some(u) = found_user else {
        return Ok(None);
    };
    for (name, rec) in user_devices(devices, owner.0)? {
        if rec.id == owner.1 && same(&name, device) {
            return Ok(Some((u, (name, rec))));
        }
    }
    Ok(None)
}

/// A new pending registration (the token and code are shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPending {
    pub token: String,
    pub code: String,
    pub expires_us: i64,
}

/// The tables a pending registration touches.
pub(super) struct PendingTables<'t> {
    pub pending: Table<'t, (u64, u64), &'static [u8]>,
    pub tokens: Table<'t, &'static [u8; 32], (u64, u64)>,
}

impl<'t> PendingTables<'t> {
    pub(super) fn open(txn: &'t WriteTransaction) -> Result<Self> {
        Ok(PendingTables {
            pending: txn.open_table(PENDING)?,
            tokens: txn.open_table(PENDING_TOKENS)?,
        })
    }

    /// Adds a pending registration of `device` for `user_id`, replacing the oldest ones beyond
    /// [`PENDING_PER_USER`].
    pub(super) fn add(
        &mut self,
        meta: &mut Table<&str, u64>,
        user_id: u64,
        device: &str,
        req: &LoginRequest,
        now: i64,
    ) -> Result<NewPending> {
        let existing: Vec<u64> = self
            .pending
            .range((user_id, 0)..=(user_id, u64::MAX))?
            .map(|r| r.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        let excess = (existing.len() + 1).saturating_sub(PENDING_PER_USER);
        for pid in existing.into_iter().take(excess) {
            self.remove(user_id, pid)?;
        }
        let token = new_token();
        let code = new_code();
        let expires_us = now.saturating_add(APPROVAL_CODE_VALID_US);
        let rec = PendingRec {
            device: device.to_owned(),
            token_hash: hash_token(&token),
            code_hash: code_hash(user_id, &code),
            code_expires_us: expires_us,
            created_us: now,
            os: req.os.clone(),
            os_version: req.os_version.clone(),
            agent_version: req.agent_version.clone(),
        };
        let pid = next_id(meta, NEXT_PENDING_ID)?;
        self.pending.insert((user_id, pid), enc(&rec)?.as_slice())?;
        self.tokens.insert(&rec.token_hash, (user_id, pid))?;
        Ok(NewPending {
            token,
            code,
            expires_us,
        })
    }

    /// Removes a pending registration and its token.
    pub(super) fn remove(&mut self, user_id: u64, pid: u64) -> Result<Option<PendingRec>> {
        let Some(rec) = self
            .pending
            .remove((user_id, pid))?
            .map(|g| dec::<PendingRec>(g.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        self.tokens.remove(&rec.token_hash)?;
        Ok(Some(rec))
    }

    /// The login of a pending device with its token: `None` when the token is no pending one. A
    /// token of another user or device name is `Unauthorized`. An expired code is replaced and
    /// the new one returned.
    pub(super) fn login(
        &mut self,
        hash: &[u8; 32],
        user_id: Option<u64>,
        device: &str,
        now: i64,
    ) -> Result<Option<Option<(String, i64)>>> {
        let Some((uid, pid)) = self.tokens.get(hash)?.map(|g| g.value()) else {
            return Ok(None);
        };
        let mut rec: PendingRec = match self.pending.get((uid, pid))? {
            Some(g) => dec(g.value())?,
            None => return Err(DbError::Unauthorized),
        };
        if user_id != Some(uid) || rec.device != device || !same_hash(&rec.token_hash, hash) {
            return Err(DbError::Unauthorized);
        }
        if rec.code_expires_us > now {
            return Ok(Some(None));
        }
        let code = new_code();
        rec.code_hash = code_hash(uid, &code);
        rec.code_expires_us = now.saturating_add(APPROVAL_CODE_VALID_US);
        self.pending.insert((uid, pid), enc(&rec)?.as_slice())?;
        Ok(Some(Some((code, rec.code_expires_us))))
    }
}

/// Turns a pending registration into an active device: a new one, or the existing device of that
/// name (whose old token is revoked and whose re-enrollment code goes). `limit`: the most devices
/// the user may have (`devices_per_user`); `None` for the admin. Returns the device name.
fn activate(
    txn: &WriteTransaction,
    user_id: u64,
    pid: u64,
    limit: Option<usize>,
    now: i64,
) -> Result<String> {
    let mut pt = PendingTables::open(txn)?;
    let mut devices = txn.open_table(DEVICES)?;
    let mut tokens = txn.open_table(TOKENS)?;
    let mut meta = txn.open_table(META)?;
    let rec = pt.remove(user_id, pid)?.ok_or(DbError::NotFound)?;
    let existing = devices
        .get((user_id, rec.device.as_str()))?
        .map(|g| dec::<DeviceRec>(g.value()))
        .transpose()?;
    let mut device = match existing {
        Some(d) => {
            if let Some(old) = d.token_hash {
                tokens.remove(&old)?;
            }
            txn.open_table(REENROLL)?.remove((user_id, d.id))?;
            d
        }
        None => {
            if let Some(limit) = limit
                && user_devices(&devices, user_id)?.len() >= limit
            {
                return Err(DbError::TooManyDevices { limit });
            }
            DeviceRec {
                id: next_id(&mut meta, NEXT_DEVICE_ID)?,
                token_hash: None,
                status: DeviceStatus::Active,
                os: String::new(),
                os_version: String::new(),
                agent_version: String::new(),
                created_us: now,
                last_seen_us: now,
            }
        }
    };
    device.token_hash = Some(rec.token_hash);
    device.status = DeviceStatus::Active;
    device.os = rec.os;
    device.os_version = rec.os_version;
    device.agent_version = rec.agent_version;
    tokens.insert(&rec.token_hash, (user_id, device.id))?;
    devices.insert((user_id, rec.device.as_str()), enc(&device)?.as_slice())?;
    Ok(rec.device)
}

/// One pending registration, for `device list`.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub user: String,
    pub device: String,
    pub rec: PendingRec,
}

/// What the admin's `device reset` did.
#[derive(Debug, Clone)]
pub struct ResetOutcome {
    pub device: DeviceRec,
    /// The one-time re-enrollment code, shown once.
    pub code: String,
    pub expires_us: i64,
}

impl Db {
    /// An active device of `user_id` approves the pending registration that shows `code`; returns
    /// its device name. `NotFound` for a wrong, expired or used code (of this user: a code of
    /// another user's registration never matches, its hash is keyed by the user).
    pub fn approve_by_code(
        &self,
        user_id: u64,
        code: &str,
        devices_per_user: usize,
        now: i64,
    ) -> Result<String> {
        let code = names::normalize_code(code).ok_or(DbError::NotFound)?;
        let wanted = code_hash(user_id, &code);
        let txn = self.write()?;
        let pid = {
            let pending = txn.open_table(PENDING)?;
            let mut found = None;
            for row in pending.range((user_id, 0)..=(user_id, u64::MAX))? {
                let (k, v) = row?;
                let rec: PendingRec = dec(v.value())?;
                if same_hash(&rec.code_hash, &wanted) && rec.code_expires_us > now {
                    found = Some(k.value().1);
                }
            }
            found.ok_or(DbError::NotFound)?
        };
        let device = activate(&txn, user_id, pid, Some(devices_per_user), now)?;
        txn.commit()?;
        Ok(device)
    }

    /// The admin approves `user`/`device`: the newest pending registration of that name, else a
    /// device registered under `registration: approve`; an active device stays active.
    pub fn approve_device(&self, user: &str, device: &str) -> Result<()> {
        let txn = self.write()?;
        {
            let users = txn.open_table(USERS)?;
            let (_, u) = find_user(&users, user)?.ok_or(DbError::NotFound)?;
            let wanted = names::normalize(device).unwrap_or_else(|_| device.to_owned());
            let mut newest = None;
            for row in txn
                .open_table(PENDING)?
                .range((u.id, 0)..=(u.id, u64::MAX))?
            {
                let (k, v) = row?;
                if dec::<PendingRec>(v.value())?.device == wanted {
                    newest = Some(k.value().1);
                }
            }
            if let Some(pid) = newest {
                activate(&txn, u.id, pid, None, super::now_us())?;
            } else {
                let mut devices = txn.open_table(DEVICES)?;
                let (key, mut rec) =
                    find_device(&devices, u.id, device)?.ok_or(DbError::NotFound)?;
                rec.status = DeviceStatus::Active;
                devices.insert((u.id, key.as_str()), enc(&rec)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Revokes the device's token and makes a one-time re-enrollment code valid for `valid_us`
    /// (a later reset replaces it); the files stay. Only a login with this code gets the device
    /// back: a token-less login without it is a pending registration like any other.
    pub fn reset_device(
        &self,
        user: &str,
        device: &str,
        valid_us: i64,
        now: i64,
    ) -> Result<ResetOutcome> {
        let txn = self.write()?;
        let outcome = {
            let users = txn.open_table(USERS)?;
            let mut devices = txn.open_table(DEVICES)?;
            let mut tokens = txn.open_table(TOKENS)?;
            let (_, u) = find_user(&users, user)?.ok_or(DbError::NotFound)?;
            let (key, mut rec) = find_device(&devices, u.id, device)?.ok_or(DbError::NotFound)?;
            if let Some(hash) = rec.token_hash.take() {
                tokens.remove(&hash)?;
            }
            devices.insert((u.id, key.as_str()), enc(&rec)?.as_slice())?;
            let code = new_code();
            let expires_us = now.saturating_add(valid_us);
            let r = ReenrollRec {
                code_hash: code_hash(u.id, &code),
                expires_us,
            };
            txn.open_table(REENROLL)?
                .insert((u.id, rec.id), enc(&r)?.as_slice())?;
            // A revoked device that gets a code is "reset" now: the way back in is prepared.
            txn.open_table(super::REVOKED_DEVICES)?
                .remove((u.id, rec.id))?;
            ResetOutcome {
                device: rec,
                code,
                expires_us,
            }
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// Every pending registration, by user and device name.
    pub fn list_pending(&self) -> Result<Vec<PendingRow>> {
        let txn = self.read()?;
        let names = super::auth::user_names(&txn)?;
        let mut out = Vec::new();
        for row in txn.open_table(PENDING)?.iter()? {
            let (k, v) = row?;
            let rec: PendingRec = dec(v.value())?;
            out.push(PendingRow {
                user: names.get(&k.value().0).cloned().unwrap_or_default(),
                device: rec.device.clone(),
                rec,
            });
        }
        out.sort_by(|a, b| (&a.user, &a.device).cmp(&(&b.user, &b.device)));
        Ok(out)
    }
}

/// The login of a device with its re-enrollment code (in the login's write transaction): checks
/// and consumes the code, revokes any old token and gives the device `token_hash`. Every failure
/// is `Unauthorized`, whether the user, the device or the code is wrong.
pub(super) fn reenroll(
    txn: &WriteTransaction,
    user_id: u64,
    device: &mut DeviceRec,
    code: &str,
    token_hash: [u8; 32],
    now: i64,
) -> Result<()> {
    let code = names::normalize_code(code).ok_or(DbError::Unauthorized)?;
    let mut table = txn.open_table(REENROLL)?;
    let rec: ReenrollRec = table
        .get((user_id, device.id))?
        .map(|g| dec(g.value()))
        .transpose()?
        .ok_or(DbError::Unauthorized)?;
    if rec.expires_us <= now || !same_hash(&rec.code_hash, &code_hash(user_id, &code)) {
        return Err(DbError::Unauthorized);
    }
    table.remove((user_id, device.id))?;
    let mut tokens = txn.open_table(TOKENS)?;
    if let Some(old) = device.token_hash.take() {
        tokens.remove(&old)?;
    }
    tokens.insert(&token_hash, (user_id, device.id))?;
    device.token_hash = Some(token_hash);
    Ok(())
}

/// Brings user and device names stored before names were normalised into normal form, where the
/// normal form is free (else the old key stays and keeps working: lookups try the name as given
/// too), and records every user's skeleton. Runs once per database (at open).
pub(super) fn migrate_names(txn: &WriteTransaction) -> Result<()> {
    let mut meta = txn.open_table(META)?;
    if meta.get(NAMES_VERSION)?.map(|g| g.value()).unwrap_or(0) >= 1 {
        return Ok(());
    }
    let mut users = txn.open_table(USERS)?;
    let mut devices = txn.open_table(DEVICES)?;
    let mut skeletons = txn.open_table(SKELETONS)?;
    let all_users: Vec<(String, Vec<u8>)> = users
        .iter()?
        .map(|r| r.map(|(k, v)| (k.value().to_owned(), v.value().to_vec())))
        .collect::<Result<_, _>>()?;
    for (name, value) in all_users {
        let id = dec::<UserRec>(&value)?.id;
        let mut key = name.clone();
        if let Ok(normal) = names::normalize(&name)
            && normal != name
            && users.get(normal.as_str())?.is_none()
        {
            users.remove(name.as_str())?;
            users.insert(normal.as_str(), value.as_slice())?;
            key = normal;
        }
        let skel = names::skeleton(&key);
        if skeletons.get(skel.as_str())?.is_none() {
            skeletons.insert(skel.as_str(), id)?;
        }
        let own: Vec<(String, Vec<u8>)> = devices
            .range((id, "")..(id + 1, ""))?
            .map(|r| r.map(|(k, v)| (k.value().1.to_owned(), v.value().to_vec())))
            .collect::<Result<_, _>>()?;
        for (device, value) in own {
            if let Ok(normal) = names::normalize(&device)
                && normal != device
                && devices.get((id, normal.as_str()))?.is_none()
            {
                devices.remove((id, device.as_str()))?;
                devices.insert((id, normal.as_str()), value.as_slice())?;
            }
        }
    }
    meta.insert(NAMES_VERSION, 1)?;
    Ok(())
}

#[cfg(test)]
mod tests;
