//! # Web authentication: admin logins, sessions, API tokens (issue 13)
//!
//! What the admin console's pages and its JSON twin call to know who is asking; no HTTP here.
//!
//! - **Login** ([`WebAuth::login`]): the name and password, checked against the argon2id hash
//!   (or, for an unknown name, against a dummy hash, so both cost the same time and answer the
//!   same [`Refused::Invalid`]). Failed logins are throttled per account name and per client
//!   address ([`throttle`]); a throttled login is refused before its password is looked at. Every
//!   failure is logged with the address and audited.
//! - **Second factor** ([`WebAuth::second_factor`]): an admin with TOTP gets a session of stage
//!   [`Stage::NeedTotp`] first, which opens nothing but this step; the right code (or a recovery
//!   code) replaces it by a new session id of stage [`Stage::Full`] (the old id is dead).
//! - **Sessions** ([`WebAuth::session`]): a cookie value is 64 hex digits of 32 random bytes; the
//!   database keeps only its blake3 hash. Idle and absolute expiry come from `web:` in the
//!   configuration ([`SessionPolicy`]); each session has its own CSRF token, compared in constant
//!   time ([`SessionInfo::csrf_matches`]).
//! - **API tokens** ([`WebAuth::api_token`]): `asgadm_` and 64 hex digits, for scripts
//!   (`Authorization: Bearer`), made by `asgard-server admin token NAME`, stored hashed.
//! - **Audit** ([`WebAuth::audit`]): the log every admin action goes to.

// The pages and the JSON twin in `crate::web` (branch i13-web) are this module's callers; until
// they are merged, parts of it are used by the tests and the admin commands only.
#![allow(dead_code)]

pub(crate) mod password;
pub(crate) mod throttle;
pub(crate) mod totp;
// Issue 14: the end user's links and web password.
pub(crate) mod user;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod user_tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::WebConfig;
use crate::db::{
    AuditAction, AuditRec, Db, DbError, SessionLimits, SessionOrigin, SessionRec, Stage, Subject,
    admin_name, secrets_equal,
};
use throttle::{Backoff, LoginThrottle};
use totp::CodeOutcome;

/// How long the second factor may take after the password (5 minutes).
pub(crate) const PENDING_US: i64 = 5 * 60 * 1_000_000;
/// Sessions the sweep at each login looks at (bounded work).
const SWEEP_LOOK: usize = 1000;
/// The prefix of admin API tokens (device tokens begin with `asg_`).
pub(crate) const ADMIN_TOKEN_PREFIX: &str = "asgadm_";

/// Session expiry and login back-off, from the `web:` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionPolicy {
    pub limits: SessionLimits,
    pub backoff: Backoff,
}

impl SessionPolicy {
    pub(crate) fn from_config(web: &WebConfig) -> SessionPolicy {
        SessionPolicy {
            limits: SessionLimits {
                idle_us: web.session_idle.as_micros_i64(),
                max_us: web.session_max.as_micros_i64(),
                pending_us: PENDING_US.min(web.session_max.as_micros_i64()),
            },
            backoff: Backoff {
                base_us: web.lockout_base.as_micros_i64(),
                max_us: web.lockout_max.as_micros_i64(),
            },
        }
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy::from_config(&WebConfig::default())
    }
}

/// A successful first step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Login {
    /// The cookie value (64 hex digits).
    pub session: String,
    /// The session is of stage [`Stage::NeedTotp`]: the second factor comes next.
    pub needs_totp: bool,
}

/// Why a login step was refused. Deliberately coarse: an unknown name, a wrong password and a
/// wrong code are all [`Refused::Invalid`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("invalid credentials")]
    Invalid,
    /// Too many failures of this name or address: try again after `retry_after`.
    #[error("too many failed logins; retry after {retry_after:?}")]
    Throttled { retry_after: Duration },
    /// Too many wrong codes: the account's second factor is locked until `until_us`.
    #[error("second factor locked until {until_us}")]
    SecondFactorLocked { until_us: i64 },
    /// The database failed (logged); temporary, as far as anyone can tell.
    #[error("authentication unavailable")]
    Unavailable,
}

/// The admin behind a session or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdminRef {
    pub id: u64,
    pub name: String,
}

impl AdminRef {
    /// The audit log's actor: `admin:NAME`.
    pub(crate) fn actor(&self) -> String {
        format!("admin:{}", self.name)
    }
}

/// The end user behind a session (issue 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRef {
    pub id: u64,
    pub name: String,
}

impl UserRef {
    /// The audit log's actor: `user:NAME`.
    pub(crate) fn actor(&self) -> String {
        format!("user:{}", self.name)
    }
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionInfo {
    pub subject: Subject,
    /// The name of the subject: the admin's or the user's.
    pub name: String,
    /// The session's CSRF token (64 hex digits) for the forms.
    pub csrf: String,
    pub stage: Stage,
    /// For a user session an admin's restore link opened: who made it and when.
    pub origin: Option<SessionOrigin>,
}

impl SessionInfo {
    /// Whether a form's CSRF token is this session's (constant time).
    pub(crate) fn csrf_matches(&self, given: &str) -> bool {
        secrets_equal(&self.csrf, given)
    }

    /// The admin, when the session is fully logged in.
    pub(crate) fn admin(&self) -> Option<AdminRef> {
        match (self.subject, self.stage) {
            (Subject::Admin(id), Stage::Full) => Some(AdminRef {
                id,
                name: self.name.clone(),
            }),
            _ => None,
        }
    }

    /// The end user, when this is a fully logged-in user session (never for an admin's).
    pub(crate) fn user(&self) -> Option<UserRef> {
        match (self.subject, self.stage) {
            (Subject::User(id), Stage::Full) => Some(UserRef {
                id,
                name: self.name.clone(),
            }),
            _ => None,
        }
    }
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("operating system random source");
    b
}

/// A new session id: 64 hex digits of 32 random bytes.
fn new_session_id() -> String {
    asgard_core::id::to_hex(&random32())
}

/// The stored form of a session id; `None` for a value that cannot be one (so junk costs no
/// database read).
fn session_hash(id: &str) -> Option<[u8; 32]> {
    (id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| *blake3::hash(id.as_bytes()).as_bytes())
}

/// A new admin API token: `asgadm_` and 64 hex digits of 32 random bytes.
pub(crate) fn new_admin_token() -> String {
    format!(
        "{ADMIN_TOKEN_PREFIX}{}",
        asgard_core::id::to_hex(&random32())
    )
}

/// The stored form of an admin API token.
pub(crate) fn admin_token_hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// The throttle's key of a tried name: its normal form, or for a name that has none the text
/// itself (cut, lower case) so that junk names are throttled too.
fn throttle_name(name: &str) -> String {
    admin_name(name).unwrap_or_else(|_| {
        let mut n: String = name.chars().take(64).collect();
        n.make_ascii_lowercase();
        n
    })
}

/// Logins, sessions, API tokens and the audit log of the admin console.
pub(crate) struct WebAuth {
    db: Arc<Db>,
    policy: SessionPolicy,
    throttle: LoginThrottle,
}

impl WebAuth {
    pub(crate) fn new(db: Arc<Db>, policy: SessionPolicy) -> WebAuth {
        WebAuth {
            throttle: LoginThrottle::new(policy.backoff),
            db,
            policy,
        }
    }

    fn unavailable(e: DbError) -> Refused {
        tracing::error!(error = %e, "admin authentication: database error");
        Refused::Unavailable
    }

    fn new_session(&self, subject: Subject, stage: Stage, now_us: i64) -> (String, SessionRec) {
        let rec = SessionRec {
            subject,
            created_us: now_us,
            last_us: now_us,
            csrf: random32(),
            stage,
            origin: None,
        };
        (new_session_id(), rec)
    }

    /// Checks name and password. `Ok` starts a session: of stage [`Stage::Full`], or of stage
    /// [`Stage::NeedTotp`] when the admin has a second factor (then [`WebAuth::second_factor`]).
    ///
    /// # Errors
    /// [`Refused::Throttled`] (before the password is looked at), [`Refused::Invalid`] for an
    /// unknown name or a wrong password alike (same time spent), [`Refused::Unavailable`].
    pub(crate) fn login(
        &self,
        name: &str,
        password: &str,
        client: IpAddr,
        now_us: i64,
    ) -> Result<Login, Refused> {
        let key = throttle_name(name);
        if let Err(retry_after) = self.throttle.check(&key, client, now_us) {
            tracing::warn!(%client, name = %key, "admin login refused: locked after failed logins");
            self.audit(
                AuditRec::new(now_us, "system", AuditAction::LoginFailed, &key)
                    .client(client)
                    .detail("throttled"),
            );
            return Err(Refused::Throttled { retry_after });
        }
        let found = self.db.admin_get(name).map_err(Self::unavailable)?;
        let hash = found
            .as_ref()
            .map_or(password::dummy_hash(), |(_, rec)| rec.hash.as_str());
        let ok = password::verify(password, hash);
        let (name, rec) = match found {
            Some(admin) if ok => admin,
            _ => {
                self.throttle.failure(&key, client, now_us);
                tracing::warn!(%client, name = %key, "admin login failed");
                self.audit(
                    AuditRec::new(now_us, "system", AuditAction::LoginFailed, &key)
                        .client(client)
                        .detail("wrong name or password"),
                );
                return Err(Refused::Invalid);
            }
        };
        self.throttle.success(&key);
        if let Err(e) = self
            .db
            .sessions_sweep(now_us, &self.policy.limits, SWEEP_LOOK)
        {
            tracing::warn!(error = %e, "session sweep failed");
        }
        let stage = if rec.totp.is_some() {
            Stage::NeedTotp
        } else {
            Stage::Full
        };
        let (session, srec) = self.new_session(Subject::Admin(rec.id), stage, now_us);
        let hash = session_hash(&session).expect("a new session id has the form");
        self.db
            .session_create(&hash, &srec)
            .map_err(Self::unavailable)?;
        if stage == Stage::Full {
            tracing::info!(%client, admin = %name, "admin logged in");
            self.audit(
                AuditRec::new(
                    now_us,
                    format!("admin:{name}"),
                    AuditAction::Login,
                    format!("admin:{name}"),
                )
                .client(client)
                .detail("password"),
            );
        }
        Ok(Login {
            session,
            needs_totp: stage == Stage::NeedTotp,
        })
    }

    /// The second step: `session` (of stage [`Stage::NeedTotp`]) and a TOTP or recovery code.
    /// `Ok` is a new session id of stage [`Stage::Full`]; the old id is dead.
    ///
    /// # Errors
    /// [`Refused::Invalid`] for an unknown, expired or already full session and a wrong or
    /// replayed code; [`Refused::SecondFactorLocked`] after too many wrong codes (audited).
    pub(crate) fn second_factor(
        &self,
        session: &str,
        code: &str,
        client: IpAddr,
        now_us: i64,
    ) -> Result<String, Refused> {
        let Some(old) = session_hash(session) else {
            return Err(Refused::Invalid);
        };
        let rec = self
            .db
            .session_touch(&old, now_us, &self.policy.limits)
            .map_err(Self::unavailable)?
            .filter(|r| r.stage == Stage::NeedTotp)
            .ok_or(Refused::Invalid)?;
        let Subject::Admin(id) = rec.subject else {
            return Err(Refused::Invalid);
        };
        let checked = self.db.admin_update(id, |admin| {
            admin.totp.as_mut().map(|t| {
                // The account name only labels the URI; checking does not depend on it.
                totp::check(t, "admin", code, now_us)
            })
        });
        let name = match self.db.admin_by_id(id) {
            Ok(Some((name, _))) => name,
            _ => String::new(),
        };
        let actor = format!("admin:{name}");
        let outcome = match checked {
            Ok(Some(o)) => o,
            // The admin or its second factor went away meanwhile.
            Ok(None) | Err(DbError::NotFound) => {
                let _ = self.db.session_delete(&old);
                return Err(Refused::Invalid);
            }
            Err(e) => return Err(Self::unavailable(e)),
        };
        match outcome {
            CodeOutcome::Accepted { recovery } => {
                let (new, full) = self.new_session(rec.subject, Stage::Full, now_us);
                let hash = session_hash(&new).expect("a new session id has the form");
                if !self
                    .db
                    .session_renew(&old, &hash, &full)
                    .map_err(Self::unavailable)?
                {
                    return Err(Refused::Invalid);
                }
                if recovery {
                    self.audit(
                        AuditRec::new(now_us, &actor, AuditAction::RecoveryUsed, &actor)
                            .client(client),
                    );
                }
                tracing::info!(%client, admin = %name, "admin logged in");
                self.audit(
                    AuditRec::new(now_us, &actor, AuditAction::Login, &actor)
                        .client(client)
                        .detail(if recovery {
                            "password + recovery code"
                        } else {
                            "password + totp"
                        }),
                );
                Ok(new)
            }
            CodeOutcome::Wrong => {
                tracing::warn!(%client, admin = %name, "wrong second-factor code");
                self.audit(
                    AuditRec::new(now_us, &actor, AuditAction::TotpFailed, &actor).client(client),
                );
                Err(Refused::Invalid)
            }
            CodeOutcome::NowLocked { until_us } => {
                tracing::warn!(%client, admin = %name, "second factor locked after wrong codes");
                self.audit(
                    AuditRec::new(now_us, &actor, AuditAction::TotpFailed, &actor).client(client),
                );
                self.audit(
                    AuditRec::new(now_us, "system", AuditAction::TotpLocked, &actor).client(client),
                );
                Err(Refused::SecondFactorLocked { until_us })
            }
            CodeOutcome::Locked { until_us } => {
                tracing::warn!(%client, admin = %name, "second-factor code while locked");
                self.audit(
                    AuditRec::new(now_us, &actor, AuditAction::TotpFailed, &actor)
                        .client(client)
                        .detail("locked"),
                );
                Err(Refused::SecondFactorLocked { until_us })
            }
        }
    }

    /// The live session behind a cookie value, its idle timer touched; `None` when unknown,
    /// expired or revoked (or its admin deleted).
    pub(crate) fn session(&self, session: &str, now_us: i64) -> Option<SessionInfo> {
        let hash = session_hash(session)?;
        let rec = match self.db.session_touch(&hash, now_us, &self.policy.limits) {
            Ok(r) => r?,
            Err(e) => {
                Self::unavailable(e);
                return None;
            }
        };
        let found = match rec.subject {
            Subject::Admin(id) => self.db.admin_by_id(id).map(|a| a.map(|(name, _)| name)),
            Subject::User(id) => self.db.web_user(id),
        };
        let name = match found {
            Ok(Some(name)) => name,
            Ok(None) => {
                let _ = self.db.session_delete(&hash);
                return None;
            }
            Err(e) => {
                Self::unavailable(e);
                return None;
            }
        };
        Some(SessionInfo {
            subject: rec.subject,
            name,
            csrf: asgard_core::id::to_hex(&rec.csrf),
            stage: rec.stage,
            origin: rec.origin,
        })
    }

    /// Ends a session (audited when it was a logged-in admin's).
    pub(crate) fn logout(&self, session: &str) {
        let Some(hash) = session_hash(session) else {
            return;
        };
        let now_us = crate::db::now_us();
        let info = self.session(session, now_us);
        let who = info
            .as_ref()
            .and_then(|s| s.admin().map(|a| a.actor()).or(s.user().map(|u| u.actor())));
        match self.db.session_delete(&hash) {
            Ok(true) => {
                if let Some(actor) = who {
                    self.audit(AuditRec::new(now_us, &actor, AuditAction::Logout, &actor));
                }
            }
            Ok(false) => {}
            Err(e) => {
                Self::unavailable(e);
            }
        }
    }

    /// The admin of an API token (`Authorization: Bearer asgadm_…`); `None` for anything else.
    pub(crate) fn api_token(&self, token: &str) -> Option<AdminRef> {
        if !token.starts_with(ADMIN_TOKEN_PREFIX) || token.len() != ADMIN_TOKEN_PREFIX.len() + 64 {
            return None;
        }
        match self.db.admin_token_lookup(&admin_token_hash(token)) {
            Ok(found) => found.map(|(id, name)| AdminRef { id, name }),
            Err(e) => {
                Self::unavailable(e);
                None
            }
        }
    }

    /// Appends an entry to the audit log (a failure is logged; the action itself stands).
    pub(crate) fn audit(&self, rec: AuditRec) {
        if let Err(e) = self.db.audit_append(&rec) {
            tracing::error!(error = %e, action = %rec.action, "audit log entry lost");
        }
    }

    /// Removes expired sessions, looking at up to `max_look` (for a periodic job).
    pub(crate) fn sweep(&self, now_us: i64, max_look: usize) -> u64 {
        self.db
            .sessions_sweep(now_us, &self.policy.limits, max_look)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "session sweep failed");
                0
            })
    }

    /// The database (for the pages that read the audit log).
    pub(crate) fn db(&self) -> &Arc<Db> {
        &self.db
    }
}
