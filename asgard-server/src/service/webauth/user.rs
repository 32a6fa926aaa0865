//! The end user's way in (issue 14): one-time links and the web password.
//!
//! - **Links** ([`create_link`], [`WebAuth::link_login`]): a link carries a random 256-bit
//!   secret (64 hex digits in `/link/{secret}`); the database keeps only its blake3 hash with the
//!   user, who made it and when it expires ([`LINK_VALID_US`]). Using it marks it used in the
//!   same write transaction that finds it, so it works once even when two requests race; the
//!   session it opens is an ordinary server-side session of [`Subject::User`] at [`Stage::Full`].
//! - **Web password**: see `password.rs` for the hash; the login goes through the same throttle
//!   as the admins' and answers the same [`Refused::Invalid`] for a wrong name and a wrong
//!   password.

use std::net::IpAddr;

use super::{Refused, WebAuth, random32, session_hash};
use crate::db::{
    AuditAction, AuditRec, Db, DbError, LinkCreator, LinkRec, LinkTake, SessionOrigin, Stage,
    Subject,
};

/// How long a one-time link is valid (10 minutes).
pub(crate) const LINK_VALID_US: i64 = 10 * 60 * 1_000_000;

/// A new link's secret and its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewLink {
    /// `/link/` and 64 hex digits; the secret is in it, so it is shown once and never stored.
    pub path: String,
    pub expires_us: i64,
}

/// The stored form of a link secret; `None` for a value that cannot be one.
fn link_hash(secret: &str) -> Option<[u8; 32]> {
    session_hash(secret)
}

/// Makes a one-time link for user `user_id`.
///
/// # Errors
/// The database failed.
pub(crate) fn create_link(
    db: &Db,
    user_id: u64,
    creator: LinkCreator,
    now_us: i64,
) -> Result<NewLink, DbError> {
    let secret = asgard_core::id::to_hex(&random32());
    let hash = link_hash(&secret).expect("a new secret has the form");
    let expires_us = now_us.saturating_add(LINK_VALID_US);
    db.link_create(
        &hash,
        &LinkRec {
            user_id,
            created_us: now_us,
            expires_us,
            creator,
            used_us: None,
        },
    )?;
    Ok(NewLink {
        path: format!("/link/{secret}"),
        expires_us,
    })
}

/// Why a link opened no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkRefused {
    /// Malformed or never made (404).
    Unknown,
    /// Used, expired, or its user is disabled or gone (410).
    Gone,
    /// The database failed.
    Unavailable,
}

impl WebAuth {
    /// Exchanges a link's secret for a new user session (its cookie value). Every refusal is
    /// audited with the client's address.
    ///
    /// # Errors
    /// [`LinkRefused`].
    pub(crate) fn link_login(
        &self,
        secret: &str,
        client: IpAddr,
        now_us: i64,
    ) -> Result<String, LinkRefused> {
        let refuse = |why: LinkRefused, detail: &str| {
            tracing::warn!(%client, detail, "login link refused");
            self.audit(
                AuditRec::new(now_us, "system", AuditAction::LinkRefused, "link")
                    .client(client)
                    .detail(detail),
            );
            why
        };
        let Some(hash) = link_hash(secret) else {
            return Err(refuse(LinkRefused::Unknown, "malformed"));
        };
        let unavailable = |e: DbError| {
            tracing::error!(error = %e, "login link: database error");
            LinkRefused::Unavailable
        };
        let rec = match self.db.link_take(&hash, now_us).map_err(unavailable)? {
            LinkTake::Valid(rec) => rec,
            LinkTake::Gone => return Err(refuse(LinkRefused::Gone, "used or expired")),
            LinkTake::Unknown => return Err(refuse(LinkRefused::Unknown, "unknown")),
        };
        let Some(name) = self.db.web_user(rec.user_id).map_err(unavailable)? else {
            return Err(refuse(LinkRefused::Gone, "user disabled or deleted"));
        };
        let origin = match &rec.creator {
            LinkCreator::Admin(admin) => Some(SessionOrigin {
                admin: admin.clone(),
                created_us: rec.created_us,
            }),
            LinkCreator::Device(_) => None,
        };
        let session = self
            .user_session(rec.user_id, origin, now_us)
            .map_err(unavailable)?;
        let actor = format!("user:{name}");
        let how = match &rec.creator {
            LinkCreator::Admin(admin) => format!("restore link of {admin}"),
            LinkCreator::Device(_) => "asgard-agent web".to_owned(),
        };
        tracing::info!(%client, user = %name, "user logged in by link");
        self.audit(
            AuditRec::new(now_us, &actor, AuditAction::LinkUsed, &actor)
                .client(client)
                .detail(how),
        );
        Ok(session)
    }

    /// A new fully logged-in session of user `user_id`.
    fn user_session(
        &self,
        user_id: u64,
        origin: Option<SessionOrigin>,
        now_us: i64,
    ) -> Result<String, DbError> {
        if let Err(e) = self
            .db
            .sessions_sweep(now_us, &self.policy.limits, super::SWEEP_LOOK)
        {
            tracing::warn!(error = %e, "session sweep failed");
        }
        let (session, mut rec) = self.new_session(Subject::User(user_id), Stage::Full, now_us);
        rec.origin = origin;
        let hash = session_hash(&session).expect("a new session id has the form");
        self.db.session_create(&hash, &rec)?;
        Ok(session)
    }

    /// Logs an end user in with their web password: the same throttle (per name and address),
    /// the same time spent and the same refusal for an unknown name and a wrong password as the
    /// admins' login.
    ///
    /// # Errors
    /// [`Refused::Throttled`], [`Refused::Invalid`], [`Refused::Unavailable`].
    pub(crate) fn user_login(
        &self,
        name: &str,
        password: &str,
        client: IpAddr,
        now_us: i64,
    ) -> Result<String, Refused> {
        // Keys of users are `user:`-prefixed so that a user and an admin of the same name do
        // not share a lock.
        let key = format!("user:{}", super::throttle_name(name));
        if let Err(retry_after) = self.throttle.check(&key, client, now_us) {
            tracing::warn!(%client, name = %key, "user login refused: locked after failed logins");
            self.audit(
                AuditRec::new(now_us, "system", AuditAction::LoginFailed, &key)
                    .client(client)
                    .detail("throttled"),
            );
            return Err(Refused::Throttled { retry_after });
        }
        let found = self
            .db
            .web_user_by_name(name)
            .map_err(WebAuth::unavailable)?;
        let hash = match &found {
            Some((id, _)) => self.db.web_password(*id).map_err(WebAuth::unavailable)?,
            None => None,
        };
        let ok = super::password::verify(
            password,
            hash.as_deref().unwrap_or(super::password::dummy_hash()),
        );
        let (id, name) = match found {
            Some(user) if ok && hash.is_some() => user,
            _ => {
                self.throttle.failure(&key, client, now_us);
                tracing::warn!(%client, name = %key, "user login failed");
                self.audit(
                    AuditRec::new(now_us, "system", AuditAction::LoginFailed, &key)
                        .client(client)
                        .detail("wrong name or password"),
                );
                return Err(Refused::Invalid);
            }
        };
        self.throttle.success(&key);
        let session = self
            .user_session(id, None, now_us)
            .map_err(WebAuth::unavailable)?;
        let actor = format!("user:{name}");
        tracing::info!(%client, user = %name, "user logged in");
        self.audit(
            AuditRec::new(now_us, &actor, AuditAction::Login, &actor)
                .client(client)
                .detail("web password"),
        );
        Ok(session)
    }
}
