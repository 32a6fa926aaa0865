//! The admin refuses a registration (`device refuse`): the pending registrations of that device
//! name go with their tokens, or, for the first device of a new user under
//! `registration: approve`, the waiting device itself with its token. The refused tokens stay in
//! [`REFUSED_TOKENS`], so the agent that waits is told `registration_refused` (and why, in its
//! language) instead of a bare "unauthorized"; it may register again, which is a new pending
//! registration like any other.

use asgard_core::names;
use asgard_core::protocol::DeviceStatus;
use redb::ReadableTable;

use super::enroll::{PendingTables, find_device, find_user};
use super::{
    DEVICE_SEEN, DEVICES, Db, DbError, DeviceRec, PENDING, PendingRec, REENROLL, REFUSED_TOKENS,
    Result, TOKENS, USERS, dec,
};

impl Db {
    /// Refuses every pending registration of `user`/`device`, else the waiting (pending) device
    /// of that name; returns how many registrations went. `NotFound` when nothing of that name
    /// waits: an active device is never removed here (`device revoke` takes its access).
    pub fn refuse_device(&self, user: &str, device: &str, now: i64) -> Result<u64> {
        let txn = self.write()?;
        let refused = {
            let users = txn.open_table(USERS)?;
            let (_, u) = find_user(&users, user)?.ok_or(DbError::NotFound)?;
            let wanted = names::normalize(device).unwrap_or_else(|_| device.to_owned());
            let mut ids = Vec::new();
            for row in txn
                .open_table(PENDING)?
                .range((u.id, 0)..=(u.id, u64::MAX))?
            {
                let (k, v) = row?;
                if dec::<PendingRec>(v.value())?.device == wanted {
                    ids.push(k.value().1);
                }
            }
            let mut refused_tokens = txn.open_table(REFUSED_TOKENS)?;
            if ids.is_empty() {
                let mut devices = txn.open_table(DEVICES)?;
                let (key, rec): (String, DeviceRec) =
                    find_device(&devices, u.id, device)?.ok_or(DbError::NotFound)?;
                if rec.status != DeviceStatus::Pending {
                    return Err(DbError::NotFound);
                }
                if let Some(hash) = rec.token_hash {
                    txn.open_table(TOKENS)?.remove(&hash)?;
                    refused_tokens.insert(&hash, (u.id, now))?;
                }
                txn.open_table(REENROLL)?.remove((u.id, rec.id))?;
                txn.open_table(DEVICE_SEEN)?.remove((u.id, rec.id))?;
                devices.remove((u.id, key.as_str()))?;
                1
            } else {
                let mut pt = PendingTables::open(&txn)?;
                for pid in &ids {
                    if let Some(rec) = pt.remove(u.id, *pid)? {
                        refused_tokens.insert(&rec.token_hash, (u.id, now))?;
                    }
                }
                ids.len() as u64
            }
        };
        txn.commit()?;
        Ok(refused)
    }

    /// Whether the admin refused the registration of this token (see [`Db::refuse_device`]).
    pub(super) fn refused_token(txn: &redb::ReadTransaction, hash: &[u8; 32]) -> Result<bool> {
        Ok(txn.open_table(REFUSED_TOKENS)?.get(hash)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Registration;
    use crate::db::{LoginPolicy, hash_token};
    use crate::testutil::{OPEN, login_request as req, open_db, register};

    #[test]
    fn a_refused_registration_goes_with_its_token_and_the_agent_hears_why() {
        let (_d, db) = open_db();
        let (anna, _) = register(&db, "anna", "pc");
        let out = db.login(&req("anna", "laptop"), None, OPEN, 10).unwrap();
        let token = out.token.unwrap();
        // A second registration under the same name: both go.
        let again = db.login(&req("anna", "laptop"), None, OPEN, 11).unwrap();
        let token2 = again.token.unwrap();
        assert_eq!(db.list_pending().unwrap().len(), 2);

        // Another user's name or a device that does not wait: nothing happens.
        assert!(matches!(
            db.refuse_device("bob", "laptop", 20),
            Err(DbError::NotFound)
        ));
        assert!(matches!(
            db.refuse_device("anna", "pc", 20),
            Err(DbError::NotFound)
        ));
        assert_eq!(db.authenticate(&hash_token(&anna)).unwrap().device, "pc");

        assert_eq!(db.refuse_device("Anna", "LAPTOP", 20).unwrap(), 2);
        assert!(db.list_pending().unwrap().is_empty());
        for t in [&token, &token2] {
            assert!(matches!(
                db.login(&req("anna", "laptop"), Some(hash_token(t)), OPEN, 30),
                Err(DbError::RegistrationRefused)
            ));
            assert!(matches!(
                db.authenticate(&hash_token(t)),
                Err(DbError::RegistrationRefused)
            ));
        }
        // Approving it afterwards finds nothing; the active device is untouched.
        assert!(matches!(
            db.approve_device("anna", "laptop"),
            Err(DbError::NotFound)
        ));
        assert_eq!(db.authenticate(&hash_token(&anna)).unwrap().device, "pc");
        assert!(matches!(
            db.refuse_device("anna", "laptop", 40),
            Err(DbError::NotFound)
        ));
    }

    #[test]
    fn the_waiting_first_device_of_a_new_user_can_be_refused() {
        let (_d, db) = open_db();
        let approve = LoginPolicy {
            registration: Registration::Approve,
            enrollment_key: None,
        };
        let out = db.login(&req("bob", "pc"), None, approve, 1).unwrap();
        assert_eq!(out.status, DeviceStatus::Pending);
        let token = out.token.unwrap();
        assert_eq!(db.refuse_device("bob", "pc", 2).unwrap(), 1);
        assert!(db.list_devices().unwrap().is_empty());
        assert!(matches!(
            db.authenticate(&hash_token(&token)),
            Err(DbError::RegistrationRefused)
        ));
        // Registering again is a new registration: pending (bob exists now, without devices).
        let again = db.login(&req("bob", "pc"), None, approve, 3).unwrap();
        assert_eq!(again.status, DeviceStatus::Pending);
    }
}
