//! Server-side browser sessions (issue 13). The browser holds a random 256-bit id (its cookie);
//! the database holds only the id's blake3 hash with who it belongs to, so a copy of the database
//! opens no session, and logout, revocation and expiry are real: a session not in [`SESSIONS`] is
//! no session.
//!
//! A session expires when it was idle longer than the idle limit, when it is older than the
//! absolute limit, or (for one waiting for its second factor) when that step took too long. An
//! expired session is removed when it is met ([`Db::session_touch`]) and by the bounded sweep
//! ([`Db::sessions_sweep`]) that the service runs now and then.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{Db, Result, SESSIONS, dec, enc};

/// Who a session belongs to. Postcard stores the variant's index: new kinds (the end users of
/// issue 14) go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Subject {
    /// An admin, by id.
    Admin(u64),
    /// An end user (issue 14), by user id: the restore pages under `/my`.
    User(u64),
}

/// Where a user's session came from, when not from the user's own device or password: a restore
/// link an admin made (shown on the user's start page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOrigin {
    /// The admin who made the link.
    pub admin: String,
    /// When the link was made (µs).
    pub created_us: i64,
}

/// How far a session got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The password was right; the second factor is still to come. Opens nothing but that step.
    NeedTotp,
    /// Logged in.
    Full,
}

/// [`SESSIONS`] value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRec {
    pub subject: Subject,
    pub created_us: i64,
    /// The last request that used it (updated at most every [`TOUCH_EVERY_US`]).
    pub last_us: i64,
    /// The session's CSRF token: every state-changing form must send it back.
    pub csrf: [u8; 32],
    pub stage: Stage,
    /// Issue 14: set for a user session that an admin-made restore link opened. Records of
    /// issue 13 end before this field ([`SessionRec::decode`] reads both shapes).
    pub origin: Option<SessionOrigin>,
}

/// The shape of [`SessionRec`] before issue 14.
#[derive(Serialize, Deserialize)]
struct SessionRecV1 {
    subject: Subject,
    created_us: i64,
    last_us: i64,
    csrf: [u8; 32],
    stage: Stage,
}

impl SessionRec {
    /// Decodes a stored session of either shape (postcard ignores trailing bytes, so the old
    /// shape is tried only when the new one is too short).
    pub fn decode(bytes: &[u8]) -> Result<SessionRec> {
        match dec::<SessionRec>(bytes) {
            Ok(rec) => Ok(rec),
            Err(e) => match dec::<SessionRecV1>(bytes) {
                Ok(v1) => Ok(SessionRec {
                    subject: v1.subject,
                    created_us: v1.created_us,
                    last_us: v1.last_us,
                    csrf: v1.csrf,
                    stage: v1.stage,
                    origin: None,
                }),
                Err(_) => Err(e),
            },
        }
    }
}

/// When a session expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Longest time between two requests.
    pub idle_us: i64,
    /// Longest life of a session, whatever its use.
    pub max_us: i64,
    /// Longest time from the password to the second factor.
    pub pending_us: i64,
}

impl SessionLimits {
    /// Whether `rec` has expired at `now_us`.
    pub fn expired(&self, rec: &SessionRec, now_us: i64) -> bool {
        let age = now_us.saturating_sub(rec.created_us);
        now_us.saturating_sub(rec.last_us) > self.idle_us
            || age > self.max_us
            || (rec.stage == Stage::NeedTotp && age > self.pending_us)
    }
}

/// The idle timer of a session is written at most this often (a page view is not worth a durable
/// write each time); the idle limit is in minutes, so this costs it nothing.
pub const TOUCH_EVERY_US: i64 = 10_000_000;

/// Removes every session of `subject`; returns how many.
pub(super) fn revoke_subject(txn: &WriteTransaction, subject: Subject) -> Result<u64> {
    let mut sessions = txn.open_table(SESSIONS)?;
    let mut gone = 0;
    let mut failed = None;
    sessions.retain(|_, v| match SessionRec::decode(v) {
        Ok(rec) => {
            let keep = rec.subject != subject;
            gone += u64::from(!keep);
            keep
        }
        Err(e) => {
            // An undecodable session opens nothing; drop it, but say so.
            failed = Some(e);
            false
        }
    })?;
    if let Some(e) = failed {
        tracing::warn!(error = %e, "undecodable session record removed");
    }
    Ok(gone)
}

impl Db {
    /// Stores a new session under the hash of its id.
    pub fn session_create(&self, hash: &[u8; 32], rec: &SessionRec) -> Result<()> {
        let txn = self.write()?;
        txn.open_table(SESSIONS)?
            .insert(hash, enc(rec)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The live session of `hash`, its idle timer brought up to `now_us`; `None` when unknown or
    /// expired (an expired one is removed).
    pub fn session_touch(
        &self,
        hash: &[u8; 32],
        now_us: i64,
        limits: &SessionLimits,
    ) -> Result<Option<SessionRec>> {
        let rec = {
            let txn = self.read()?;
            let t = txn.open_table(SESSIONS)?;
            match t.get(hash)? {
                Some(g) => SessionRec::decode(g.value())?,
                None => return Ok(None),
            }
        };
        if limits.expired(&rec, now_us) {
            self.session_delete(hash)?;
            return Ok(None);
        }
        if now_us - rec.last_us < TOUCH_EVERY_US {
            return Ok(Some(rec));
        }
        // Again in a write transaction: a logout between the read and here must win.
        let txn = self.write()?;
        let out = {
            let mut t = txn.open_table(SESSIONS)?;
            let current = t
                .get(hash)?
                .map(|g| SessionRec::decode(g.value()))
                .transpose()?;
            match current {
                Some(mut rec) if !limits.expired(&rec, now_us) => {
                    rec.last_us = rec.last_us.max(now_us);
                    t.insert(hash, enc(&rec)?.as_slice())?;
                    Some(rec)
                }
                _ => None,
            }
        };
        txn.commit()?;
        Ok(out)
    }

    /// Removes a session; whether it existed.
    pub fn session_delete(&self, hash: &[u8; 32]) -> Result<bool> {
        let txn = self.write()?;
        let existed = txn.open_table(SESSIONS)?.remove(hash)?.is_some();
        txn.commit()?;
        Ok(existed)
    }

    /// Replaces the session `old` by `new` (a new id after a login step) in one transaction;
    /// false (and nothing stored) when `old` is gone meanwhile.
    pub fn session_renew(&self, old: &[u8; 32], new: &[u8; 32], rec: &SessionRec) -> Result<bool> {
        let txn = self.write()?;
        {
            let mut t = txn.open_table(SESSIONS)?;
            if t.remove(old)?.is_none() {
                return Ok(false);
            }
            t.insert(new, enc(rec)?.as_slice())?;
        }
        txn.commit()?;
        Ok(true)
    }

    /// Removes every session of `subject` (revocation); returns how many.
    pub fn sessions_revoke(&self, subject: Subject) -> Result<u64> {
        let txn = self.write()?;
        let gone = revoke_subject(&txn, subject)?;
        txn.commit()?;
        Ok(gone)
    }

    /// Removes expired sessions, looking at most at `max_look` of them (bounded work per call);
    /// returns how many it removed.
    pub fn sessions_sweep(
        &self,
        now_us: i64,
        limits: &SessionLimits,
        max_look: usize,
    ) -> Result<u64> {
        let expired: Vec<[u8; 32]> = {
            let txn = self.read()?;
            let t = txn.open_table(SESSIONS)?;
            // Keys are hashes, so a random starting point makes every session as likely to be
            // looked at, whatever `max_look` is; the look wraps around at the end.
            let mut start = [0u8; 32];
            getrandom::fill(&mut start).expect("operating system random source");
            let mut out = Vec::new();
            let rows = t
                .range::<&[u8; 32]>(&start..)?
                .chain(t.range::<&[u8; 32]>(..&start)?);
            for row in rows.take(max_look) {
                let (k, v) = row?;
                let dead =
                    SessionRec::decode(v.value()).map_or(true, |r| limits.expired(&r, now_us));
                if dead {
                    out.push(*k.value());
                }
            }
            out
        };
        if expired.is_empty() {
            return Ok(0);
        }
        let txn = self.write()?;
        let mut gone = 0;
        {
            let mut t = txn.open_table(SESSIONS)?;
            for k in &expired {
                // Checked again: it may have been renewed (a new id) or removed meanwhile.
                let dead = match t.get(k)? {
                    Some(g) => {
                        SessionRec::decode(g.value()).map_or(true, |r| limits.expired(&r, now_us))
                    }
                    None => false,
                };
                if dead {
                    t.remove(k)?;
                    gone += 1;
                }
            }
        }
        txn.commit()?;
        Ok(gone)
    }

    /// How many sessions are stored (live or not yet swept).
    pub fn sessions_count(&self) -> Result<u64> {
        Ok(redb::ReadableTableMetadata::len(
            &self.read()?.open_table(SESSIONS)?,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_stored_before_issue_14_still_reads() {
        let old = SessionRecV1 {
            subject: Subject::Admin(7),
            created_us: 1,
            last_us: 2,
            csrf: [9; 32],
            stage: Stage::Full,
        };
        let rec = SessionRec::decode(&enc(&old).unwrap()).unwrap();
        assert_eq!(rec.subject, Subject::Admin(7));
        assert_eq!((rec.created_us, rec.last_us, rec.csrf), (1, 2, [9; 32]));
        assert_eq!(rec.origin, None);
        let new = SessionRec {
            subject: Subject::User(3),
            origin: Some(SessionOrigin {
                admin: "root".into(),
                created_us: 5,
            }),
            ..rec
        };
        assert_eq!(SessionRec::decode(&enc(&new).unwrap()).unwrap(), new);
    }
}
