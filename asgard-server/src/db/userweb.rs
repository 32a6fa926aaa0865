//! The end user's side of the browser (issue 14): who a user session belongs to.

use super::auth::user_names;
use super::{DISABLED_USERS, Db, Result};

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
