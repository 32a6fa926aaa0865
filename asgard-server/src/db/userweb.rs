//! The end user's side of the browser (issue 14): who a user session belongs to.

use super::auth::user_names;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{DISABLED_USERS, Db, Result, WEB_LINKS, dec, enc};

impl Db {
    /// The name of the user `id`, if that user exists and is not disabled (a user session of
    /// anyone else opens nothing). Reads the user table (one row per user: small).
    pub fn web_user(&self, id: u64) -> Result<Option<String>> {
        let txn = self.read()?;
        if txn.open_table(DISABLED_USERS)?.get(id)?.is_some() {
            return Ok(None);
        }
        Ok(user_names(&txn)?.remove(&id))
    }
}

/// One device of a user with its last backup, for the user's start page.
#[derive(Debug, Clone)]
pub struct UserDevice {
    pub name: String,
    pub id: u64,
    pub status: asgard_core::protocol::DeviceStatus,
    /// The newest run report, and the newest that succeeded.
    pub last: Option<super::RunRec>,
    pub last_success: Option<super::RunRec>,
}

impl Db {
    /// The devices of user `user_id` (only theirs) with their last run reports, by name.
    pub fn user_devices_last(&self, user_id: u64) -> Result<Vec<UserDevice>> {
        let txn = self.read()?;
        let devices = txn.open_table(super::DEVICES)?;
        let runs = txn.open_table(super::RUNS)?;
        let mut out = Vec::new();
        for (name, rec) in super::user_devices(&devices, user_id)? {
            let mut last = None;
            let mut last_success = None;
            let range = (user_id, rec.id, 0)..=(user_id, rec.id, u64::MAX);
            for run in runs.range(range)?.rev() {
                let r: super::RunRec = super::dec(run?.1.value())?;
                let ok = r.succeeded();
                if last.is_none() {
                    last = Some(r.clone());
                }
                if ok {
                    last_success = Some(r);
                    break;
                }
            }
            out.push(UserDevice {
                name,
                id: rec.id,
                status: rec.status,
                last,
                last_success,
            });
        }
        Ok(out)
    }
}

/// Who made a one-time login link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkCreator {
    /// `asgard-agent web` on this device (by device id).
    Device(u64),
    /// An admin on the console or `asgard-server user link` (the admin's name, or `cli`).
    Admin(String),
}

/// [`WEB_LINKS`] value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRec {
    pub user_id: u64,
    pub created_us: i64,
    pub expires_us: i64,
    pub creator: LinkCreator,
    /// When it was used (it works once).
    pub used_us: Option<i64>,
}

/// What [`Db::link_take`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTake {
    /// A valid link, now used.
    Valid(LinkRec),
    /// Used or expired.
    Gone,
    Unknown,
}

/// How long a used or expired link is kept to be answered as gone.
const LINK_KEEP_US: i64 = 24 * 3600 * 1_000_000;
/// Rows the sweep at each new link looks at (bounded work).
const LINK_SWEEP_LOOK: usize = 256;

impl Db {
    /// Stores a new link under the hash of its secret; removes up to a few links that are long
    /// dead.
    pub fn link_create(&self, hash: &[u8; 32], rec: &LinkRec) -> Result<()> {
        let txn = self.write()?;
        {
            let mut t = txn.open_table(WEB_LINKS)?;
            let mut dead = Vec::new();
            // Keys are hashes: from a random point on, every link is as likely to be looked at.
            let mut start = [0u8; 32];
            getrandom::fill(&mut start).expect("operating system random source");
            let rows = t
                .range::<&[u8; 32]>(&start..)?
                .chain(t.range::<&[u8; 32]>(..&start)?);
            for row in rows.take(LINK_SWEEP_LOOK) {
                let (k, v) = row?;
                let gone = dec::<LinkRec>(v.value()).map_or(true, |r| {
                    r.expires_us.saturating_add(LINK_KEEP_US) < rec.created_us
                });
                if gone {
                    dead.push(*k.value());
                }
            }
            for k in &dead {
                t.remove(k)?;
            }
            t.insert(hash, enc(rec)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Uses the link of `hash` at `now_us`: valid once, before it expires.
    pub fn link_take(&self, hash: &[u8; 32], now_us: i64) -> Result<LinkTake> {
        let txn = self.write()?;
        let out = {
            let mut t = txn.open_table(WEB_LINKS)?;
            let found = t
                .get(hash)?
                .map(|g| dec::<LinkRec>(g.value()))
                .transpose()?;
            match found {
                None => LinkTake::Unknown,
                Some(rec) if rec.used_us.is_some() || now_us >= rec.expires_us => LinkTake::Gone,
                Some(mut rec) => {
                    rec.used_us = Some(now_us);
                    t.insert(hash, enc(&rec)?.as_slice())?;
                    LinkTake::Valid(rec)
                }
            }
        };
        txn.commit()?;
        Ok(out)
    }

    /// The id of the active (not disabled) user `name`, with the name in normal form.
    pub fn web_user_by_name(&self, name: &str) -> Result<Option<(u64, String)>> {
        let Ok(name) = asgard_core::names::normalize(name) else {
            return Ok(None);
        };
        let txn = self.read()?;
        let Some(rec) = txn
            .open_table(super::USERS)?
            .get(name.as_str())?
            .map(|g| dec::<super::UserRec>(g.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        if txn.open_table(DISABLED_USERS)?.get(rec.id)?.is_some() {
            return Ok(None);
        }
        Ok(Some((rec.id, name)))
    }
}

impl Db {
    /// The hash of user `user_id`'s web password, if they set one.
    pub fn web_password(&self, user_id: u64) -> Result<Option<String>> {
        Ok(self
            .read()?
            .open_table(super::WEB_PASSWORDS)?
            .get(user_id)?
            .map(|g| g.value().to_owned()))
    }

    /// Sets user `user_id`'s web password hash; their other browser sessions end.
    pub fn set_web_password(&self, user_id: u64, phc: &str) -> Result<()> {
        let txn = self.write()?;
        txn.open_table(super::WEB_PASSWORDS)?.insert(user_id, phc)?;
        super::sessions::revoke_subject(&txn, super::Subject::User(user_id))?;
        txn.commit()?;
        Ok(())
    }
}
