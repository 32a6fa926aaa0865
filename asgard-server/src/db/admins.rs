//! Admin accounts of the web console (issue 13): their password hashes, their second factor and
//! their API tokens. Accounts are made on the command line only; there is no default admin.
//!
//! Secrets are stored only as hashes: the password as an argon2id PHC string (made and checked in
//! `crate::service::webauth`, which owns the policy), the TOTP recovery codes and the API tokens
//! as blake3 hashes. The TOTP secret itself must be stored as it is (the server computes the codes
//! from it); the data directory is private (0700) like the TLS key.
//!
//! Deleting an admin removes its tokens and its sessions in the same transaction, so nothing it
//! held opens anything afterwards.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::sessions::revoke_subject;
use super::{ADMIN_TOKENS, ADMINS, Db, DbError, META, NEXT_ADMIN_ID, Result, dec, enc, next_id};

/// Longest admin name, in bytes.
pub const ADMIN_NAME_MAX: usize = 64;

/// [`ADMINS`] value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRec {
    pub id: u64,
    /// argon2id PHC string (`$argon2id$v=19$m=…`).
    pub hash: String,
    pub created_us: i64,
    /// The second factor, when turned on (`admin totp NAME`).
    pub totp: Option<TotpRec>,
}

/// The TOTP second factor of an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpRec {
    /// The shared secret (20 random bytes; RFC 6238 with SHA-1, 6 digits, 30 s steps).
    pub secret: Vec<u8>,
    /// blake3 of each recovery code not used yet (in normal form, see `webauth::totp`).
    pub recovery: Vec<[u8; 32]>,
    /// Wrong codes in a row; at the limit the second factor locks until `locked_until_us`.
    pub failures: u32,
    /// While `now` is before this, no code is accepted (0: not locked).
    pub locked_until_us: i64,
    /// The last time step whose code was accepted: a code of it or of an earlier step is refused,
    /// so a code seen over a shoulder cannot be replayed.
    pub last_step: u64,
}

/// One admin for `admin list` (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRow {
    pub name: String,
    pub id: u64,
    pub created_us: i64,
    pub totp: bool,
    pub tokens: u64,
}

/// Why an admin name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAdminName {
    #[error("empty admin name")]
    Empty,
    #[error("admin name longer than {ADMIN_NAME_MAX} bytes")]
    TooLong,
    #[error("admin name with a character other than a-z, 0-9, '.', '_', '-', '@'")]
    BadChar,
}

/// An admin name in normal form: trimmed, ASCII lower case, only `a-z 0-9 . _ - @`, at most
/// [`ADMIN_NAME_MAX`] bytes. Login and every command use this form, so `Admin` and `admin` are
/// one account.
pub fn admin_name(name: &str) -> std::result::Result<String, BadAdminName> {
    let n = name.trim().to_ascii_lowercase();
    if n.is_empty() {
        return Err(BadAdminName::Empty);
    }
    if n.len() > ADMIN_NAME_MAX {
        return Err(BadAdminName::TooLong);
    }
    if !n
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_@".contains(&b))
    {
        return Err(BadAdminName::BadChar);
    }
    Ok(n)
}

fn normal(name: &str) -> Result<String> {
    admin_name(name).map_err(|e| DbError::BadName(e.to_string()))
}

/// The admin with id `id` as (name, record); few admins exist, so a scan is fine.
pub(super) fn admin_by_id_in(
    admins: &impl ReadableTable<&'static str, &'static [u8]>,
    id: u64,
) -> Result<Option<(String, AdminRec)>> {
    for row in admins.iter()? {
        let (k, v) = row?;
        let rec: AdminRec = dec(v.value())?;
        if rec.id == id {
            return Ok(Some((k.value().to_owned(), rec)));
        }
    }
    Ok(None)
}

/// Removes every API token of admin `id`; returns how many.
fn remove_tokens(txn: &WriteTransaction, id: u64) -> Result<u64> {
    let mut tokens = txn.open_table(ADMIN_TOKENS)?;
    let mut gone = 0;
    tokens.retain(|_, (admin, _)| {
        let keep = admin != id;
        gone += u64::from(!keep);
        keep
    })?;
    Ok(gone)
}

impl Db {
    /// Makes a new admin with the password hash `hash`; `Conflict`-like [`DbError::AdminExists`]
    /// when the name is taken. Returns the new admin's id.
    pub fn admin_create(&self, name: &str, hash: &str, now_us: i64) -> Result<u64> {
        let name = normal(name)?;
        let txn = self.write()?;
        let id = {
            let mut admins = txn.open_table(ADMINS)?;
            if admins.get(name.as_str())?.is_some() {
                return Err(DbError::AdminExists { name });
            }
            let rec = AdminRec {
                id: next_id(&mut txn.open_table(META)?, NEXT_ADMIN_ID)?,
                hash: hash.to_owned(),
                created_us: now_us,
                totp: None,
            };
            admins.insert(name.as_str(), enc(&rec)?.as_slice())?;
            rec.id
        };
        txn.commit()?;
        Ok(id)
    }

    /// The admin of this name (any spelling of its normal form); `None` when there is none or the
    /// name has no normal form.
    pub fn admin_get(&self, name: &str) -> Result<Option<(String, AdminRec)>> {
        let Ok(name) = admin_name(name) else {
            return Ok(None);
        };
        let txn = self.read()?;
        let rec = txn.open_table(ADMINS)?.get(name.as_str())?;
        rec.map(|g| Ok((name.clone(), dec(g.value())?))).transpose()
    }

    /// The admin with this id as (name, record).
    pub fn admin_by_id(&self, id: u64) -> Result<Option<(String, AdminRec)>> {
        admin_by_id_in(&self.read()?.open_table(ADMINS)?, id)
    }

    /// Whether any admin exists (the start-up message tells how to make the first one).
    pub fn admin_exists(&self) -> Result<bool> {
        Ok(!redb::ReadableTableMetadata::is_empty(
            &self.read()?.open_table(ADMINS)?,
        )?)
    }

    /// Changes an admin's record in one write transaction: `f` gets the record and returns what
    /// the caller wants back; the changed record is stored (also when `f` returns an `Err` of the
    /// caller's own, so that a failure count it raised is kept). `NotFound` for no such admin.
    pub fn admin_update<R>(&self, id: u64, f: impl FnOnce(&mut AdminRec) -> R) -> Result<R> {
        let txn = self.write()?;
        let out = {
            let mut admins = txn.open_table(ADMINS)?;
            let (name, mut rec) = admin_by_id_in(&admins, id)?.ok_or(DbError::NotFound)?;
            let out = f(&mut rec);
            admins.insert(name.as_str(), enc(&rec)?.as_slice())?;
            out
        };
        txn.commit()?;
        Ok(out)
    }

    /// Sets a new password hash and ends every session of the admin (a changed password must
    /// throw out whoever used the old one). `NotFound` for no such admin.
    pub fn admin_set_password(&self, name: &str, hash: &str) -> Result<()> {
        let name = normal(name)?;
        let txn = self.write()?;
        {
            let mut admins = txn.open_table(ADMINS)?;
            let mut rec: AdminRec =
                dec(admins.get(name.as_str())?.ok_or(DbError::NotFound)?.value())?;
            rec.hash = hash.to_owned();
            admins.insert(name.as_str(), enc(&rec)?.as_slice())?;
            revoke_subject(&txn, super::Subject::Admin(rec.id))?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Turns the second factor on (`Some`, replacing an old one) or off (`None`). `NotFound` for
    /// no such admin.
    pub fn admin_set_totp(&self, name: &str, totp: Option<TotpRec>) -> Result<()> {
        let name = normal(name)?;
        let txn = self.write()?;
        {
            let mut admins = txn.open_table(ADMINS)?;
            let mut rec: AdminRec =
                dec(admins.get(name.as_str())?.ok_or(DbError::NotFound)?.value())?;
            rec.totp = totp;
            admins.insert(name.as_str(), enc(&rec)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Deletes an admin with its API tokens and sessions. `NotFound` for no such admin.
    pub fn admin_delete(&self, name: &str) -> Result<()> {
        let name = normal(name)?;
        let txn = self.write()?;
        {
            let mut admins = txn.open_table(ADMINS)?;
            let rec: AdminRec = dec(admins
                .remove(name.as_str())?
                .ok_or(DbError::NotFound)?
                .value())?;
            remove_tokens(&txn, rec.id)?;
            revoke_subject(&txn, super::Subject::Admin(rec.id))?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Every admin by name, with whether its second factor is on and how many API tokens it has.
    pub fn admin_list(&self) -> Result<Vec<AdminRow>> {
        let txn = self.read()?;
        let tokens = txn.open_table(ADMIN_TOKENS)?;
        let mut counts = std::collections::HashMap::<u64, u64>::new();
        for row in tokens.iter()? {
            *counts.entry(row?.1.value().0).or_default() += 1;
        }
        let mut out = Vec::new();
        for row in txn.open_table(ADMINS)?.iter()? {
            let (k, v) = row?;
            let rec: AdminRec = dec(v.value())?;
            out.push(AdminRow {
                name: k.value().to_owned(),
                id: rec.id,
                created_us: rec.created_us,
                totp: rec.totp.is_some(),
                tokens: counts.get(&rec.id).copied().unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Stores a new API token (its hash) for the admin `name`; returns the admin's id.
    /// `NotFound` for no such admin.
    pub fn admin_token_add(&self, name: &str, hash: &[u8; 32], now_us: i64) -> Result<u64> {
        let name = normal(name)?;
        let txn = self.write()?;
        let id = {
            let admins = txn.open_table(ADMINS)?;
            let rec: AdminRec = dec(admins.get(name.as_str())?.ok_or(DbError::NotFound)?.value())?;
            txn.open_table(ADMIN_TOKENS)?
                .insert(hash, (rec.id, now_us))?;
            rec.id
        };
        txn.commit()?;
        Ok(id)
    }

    /// The admin (id, name) an API token hash belongs to.
    pub fn admin_token_lookup(&self, hash: &[u8; 32]) -> Result<Option<(u64, String)>> {
        let txn = self.read()?;
        let Some((id, _)) = txn.open_table(ADMIN_TOKENS)?.get(hash)?.map(|g| g.value()) else {
            return Ok(None);
        };
        Ok(admin_by_id_in(&txn.open_table(ADMINS)?, id)?.map(|(name, _)| (id, name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_names_have_one_normal_form() {
        assert_eq!(
            admin_name(" Root@Example.org ").unwrap(),
            "root@example.org"
        );
        assert_eq!(admin_name(""), Err(BadAdminName::Empty));
        assert_eq!(admin_name("a b"), Err(BadAdminName::BadChar));
        assert_eq!(admin_name("ädmin"), Err(BadAdminName::BadChar));
        assert_eq!(admin_name("a:b"), Err(BadAdminName::BadChar));
        assert_eq!(admin_name(&"a".repeat(65)), Err(BadAdminName::TooLong));
    }
}
