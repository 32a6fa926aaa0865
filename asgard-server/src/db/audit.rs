//! The audit log (issue 13): every admin action and every login attempt, with time, actor, client
//! address and object, newest first on the *Protokoll* page. Bounded: the newest [`AUDIT_KEEP`]
//! entries stay, older ones are dropped as new ones arrive.
//!
//! An action is stored by its stable name (`login_failed`, `device_revoked`, ...), not by a
//! variant index, so adding an action anywhere in [`AuditAction`] never changes what old entries
//! read as, and an entry written by a newer server reads as [`AuditAction::Other`].

use serde::{Deserialize, Serialize};

use super::{AUDIT, Db, META, NEXT_AUDIT_ID, Result, dec, enc, next_id};

/// Audit entries kept; the oldest go first.
pub const AUDIT_KEEP: u64 = 100_000;

/// Longest text of an entry's `actor`, `client`, `object` and `detail` (longer ones are cut).
pub const AUDIT_TEXT_MAX: usize = 512;

macro_rules! audit_actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// What an audit entry records. Adding one: a line here (name in snake_case, stable).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)*
            /// A name this build does not know (written by a newer server).
            Other(String),
        }

        impl AuditAction {
            /// Every known action (for filters and tests).
            pub const ALL: &[AuditAction] = &[$(AuditAction::$variant,)*];

            /// The stable name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(AuditAction::$variant => $name,)*
                    AuditAction::Other(name) => name,
                }
            }

            /// The action of a stable name ([`AuditAction::Other`] for an unknown one).
            pub fn from_name(name: &str) -> AuditAction {
                match name {
                    $($name => AuditAction::$variant,)*
                    other => AuditAction::Other(other.to_owned()),
                }
            }
        }
    };
}

audit_actions! {
    /// A login that reached its last step (password, and the second factor when there is one).
    Login = "login",
    /// Wrong name or password, or refused by the throttle.
    LoginFailed = "login_failed",
    /// A wrong or replayed second-factor code.
    TotpFailed = "totp_failed",
    /// Too many wrong codes: the second factor is locked for a while.
    TotpLocked = "totp_locked",
    /// A recovery code was used (one fewer left).
    RecoveryUsed = "recovery_used",
    Logout = "logout",
    AdminCreated = "admin_created",
    AdminDeleted = "admin_deleted",
    PasswordChanged = "password_changed",
    TotpEnabled = "totp_enabled",
    TotpDisabled = "totp_disabled",
    TokenCreated = "token_created",
    DeviceApproved = "device_approved",
    DeviceRevoked = "device_revoked",
    DeviceToken = "device_token",
    DeviceReset = "device_reset",
    UserDisabled = "user_disabled",
    UserEnabled = "user_enabled",
    UserDeleted = "user_deleted",
    KeepChanged = "keep_changed",
    SettingChanged = "setting_changed",
    MaintenanceStarted = "maintenance_started",
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(AuditAction::from_name(&String::deserialize(d)?))
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`AUDIT`] value: one entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRec {
    pub time_us: i64,
    /// Who: `admin:NAME`, `cli` (a command on the server's machine) or `system`.
    pub actor: String,
    /// The client's address, for requests over the network.
    pub client: Option<String>,
    pub action: AuditAction,
    /// What it was done to (`admin:NAME`, `user:NAME`, `device:USER/NAME`, a setting's name; for
    /// a failed login the name that was tried).
    pub object: String,
    /// More, in a few words (never a secret).
    pub detail: String,
}

impl AuditRec {
    /// An entry of `now_us` without client and detail.
    pub fn new(
        now_us: i64,
        actor: impl Into<String>,
        action: AuditAction,
        object: impl Into<String>,
    ) -> AuditRec {
        AuditRec {
            time_us: now_us,
            actor: actor.into(),
            client: None,
            action,
            object: object.into(),
            detail: String::new(),
        }
    }

    /// The same entry with the client's address.
    pub fn client(mut self, client: impl std::fmt::Display) -> AuditRec {
        self.client = Some(client.to_string());
        self
    }

    /// The same entry with a detail.
    pub fn detail(mut self, detail: impl Into<String>) -> AuditRec {
        self.detail = detail.into();
        self
    }

    /// The entry with every text cut to [`AUDIT_TEXT_MAX`] bytes (a client may choose a name).
    fn bounded(&self) -> AuditRec {
        fn cut(s: &str) -> String {
            let mut end = s.len().min(AUDIT_TEXT_MAX);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        }
        AuditRec {
            time_us: self.time_us,
            actor: cut(&self.actor),
            client: self.client.as_deref().map(cut),
            action: self.action.clone(),
            object: cut(&self.object),
            detail: cut(&self.detail),
        }
    }
}

impl Db {
    /// Appends an entry (texts cut to [`AUDIT_TEXT_MAX`]); drops the oldest beyond
    /// [`AUDIT_KEEP`]. Returns the entry's id.
    pub fn audit_append(&self, rec: &AuditRec) -> Result<u64> {
        self.audit_append_keeping(rec, AUDIT_KEEP)
    }

    pub(super) fn audit_append_keeping(&self, rec: &AuditRec, keep: u64) -> Result<u64> {
        let txn = self.write()?;
        let id = {
            let id = next_id(&mut txn.open_table(META)?, NEXT_AUDIT_ID)?;
            let mut t = txn.open_table(AUDIT)?;
            t.insert(id, enc(&rec.bounded())?.as_slice())?;
            let mut len = redb::ReadableTableMetadata::len(&t)?;
            while len > keep {
                t.pop_first()?;
                len -= 1;
            }
            id
        };
        txn.commit()?;
        Ok(id)
    }

    /// Up to `limit` entries older than the entry `before` (all, when `None`), newest first, with
    /// their ids; the last id is the `before` of the next page.
    pub fn audit_page(&self, before: Option<u64>, limit: usize) -> Result<Vec<(u64, AuditRec)>> {
        let txn = self.read()?;
        let t = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        for row in t.range(..before.unwrap_or(u64::MAX))?.rev().take(limit) {
            let (k, v) = row?;
            out.push((k.value(), dec(v.value())?));
        }
        Ok(out)
    }
}
