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
    DeviceRefused = "device_refused",
    /// Issue 14: an admin made a restore link for a user.
    RestoreLinkCreated = "restore_link_created",
    /// Issue 14: a one-time link opened a user session.
    LinkUsed = "link_used",
    /// Issue 14: a used, expired or unknown link was tried.
    LinkRefused = "link_refused",
    /// Issue 14: a user set their web password.
    WebPasswordSet = "web_password_set",
    // Issue 14, udown: what a user took out in the browser.
    /// One version downloaded (`detail`: path, version, range).
    Download = "download",
    /// One version opened as a preview in the browser.
    Preview = "preview",
    /// A zip of a folder, a device or a selection as of a time.
    ZipDownload = "zip_download",
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

/// What an entry's `detail` says, as data: stored in [`AuditRec::detail`] as a JSON object, so
/// that the *Protokoll* page renders it in the reader's language. Entries written before it (and
/// any detail that is no such object) hold free text, shown as it is. Never a secret: no token,
/// code, key or password has a field here. Adding one: a variant (its tag is its stable name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "kebab-case")]
pub enum AuditDetail {
    /// A GC start.
    Gc { dry_run: bool },
    /// A verify start: a sample of this many percent (all chunks when `None`), of one user.
    Verify {
        sample_percent: Option<f64>,
        user: Option<String>,
    },
    /// A metadata backup start.
    DbBackup,
    /// A user's own `keep_versions` set (`None`: cleared, the configuration applies).
    Keep { versions: Option<u32> },
    /// The registration setting changed: back to the file (`reset`), a mode, a new enrollment
    /// key (never the key itself), or none needed any more.
    Registration {
        reset: bool,
        mode: Option<crate::config::Registration>,
        new_key: bool,
        no_key: bool,
    },
    /// What deleting a user removed.
    UserDeleted {
        devices: u64,
        paths: u64,
        versions: u64,
    },
    /// A login refused by the throttle.
    Throttled,
    /// A login with a wrong name or password.
    WrongPassword,
    /// A login by password (no second factor).
    Password,
    /// A login by password and TOTP code.
    PasswordTotp,
    /// A login by password and recovery code.
    PasswordRecovery,
    /// A second-factor code while the second factor was locked.
    WhileLocked,
}

impl AuditDetail {
    /// The stored form (JSON).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The detail of a stored text, if it is one (else it is free text of an older entry).
    pub fn parse(text: &str) -> Option<AuditDetail> {
        if !text.starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
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

    /// The same entry with a structured detail (see [`AuditDetail`]).
    pub fn described(self, detail: &AuditDetail) -> AuditRec {
        self.detail(detail.encode())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
        (dir, db)
    }

    fn entry(i: i64) -> AuditRec {
        AuditRec::new(i, "cli", AuditAction::AdminCreated, format!("admin:a{i}"))
    }

    #[test]
    fn pages_go_newest_first_and_the_log_is_bounded() {
        let (_d, db) = db();
        for i in 0..25 {
            db.audit_append_keeping(&entry(i), 20).unwrap();
        }
        let first = db.audit_page(None, 8).unwrap();
        let times: Vec<i64> = first.iter().map(|(_, r)| r.time_us).collect();
        assert_eq!(times, (17..25).rev().collect::<Vec<_>>());
        let second = db.audit_page(Some(first.last().unwrap().0), 8).unwrap();
        assert_eq!(second[0].1.time_us, 16);
        let mut all = first.clone();
        let mut before = None;
        all.clear();
        loop {
            let page = db.audit_page(before, 7).unwrap();
            let Some(last) = page.last() else { break };
            before = Some(last.0);
            all.extend(page);
        }
        // The oldest five went; the newest twenty are all there, once each.
        let times: Vec<i64> = all.iter().map(|(_, r)| r.time_us).collect();
        assert_eq!(times, (5..25).rev().collect::<Vec<_>>());
        assert!(db.audit_page(Some(0), 10).unwrap().is_empty());
    }

    #[test]
    fn details_are_data_and_old_free_text_stays_text() {
        let (_d, db) = db();
        let d = AuditDetail::Verify {
            sample_percent: Some(5.0),
            user: Some("anna".into()),
        };
        let rec = AuditRec::new(1, "cli", AuditAction::MaintenanceStarted, "verify").described(&d);
        db.audit_append(&rec).unwrap();
        db.audit_append(&entry(2).detail("Verify { sample_percent: Some(5.0), user: None }"))
            .unwrap();
        db.audit_append(&entry(3).detail("{kein json")).unwrap();
        let page = db.audit_page(None, 3).unwrap();
        assert_eq!(AuditDetail::parse(&page[2].1.detail), Some(d));
        assert_eq!(AuditDetail::parse(&page[1].1.detail), None);
        assert_eq!(AuditDetail::parse(&page[0].1.detail), None);
        // Every variant fits an entry (the longest names a user of the longest name).
        let long = AuditDetail::Registration {
            reset: true,
            mode: Some(crate::config::Registration::Approve),
            new_key: true,
            no_key: true,
        };
        assert!(
            long.encode().len() < AUDIT_TEXT_MAX / 2,
            "{}",
            long.encode()
        );
    }

    #[test]
    fn actions_are_stored_by_name_and_texts_are_bounded() {
        let (_d, db) = db();
        let rec = AuditRec::new(1, "system", AuditAction::LoginFailed, "x".repeat(5000))
            .client("192.0.2.1")
            .detail("ä".repeat(AUDIT_TEXT_MAX));
        db.audit_append(&rec).unwrap();
        let (_, got) = db.audit_page(None, 1).unwrap().remove(0);
        assert_eq!(got.object.len(), AUDIT_TEXT_MAX);
        assert!(got.detail.len() <= AUDIT_TEXT_MAX && got.detail.chars().all(|c| c == 'ä'));
        assert_eq!(got.client.as_deref(), Some("192.0.2.1"));
        assert_eq!(got.action, AuditAction::LoginFailed);
        // The stored form names the action, so a new variant anywhere changes no old entry.
        let bytes = enc(&rec).unwrap();
        assert!(bytes.windows(12).any(|w| w == b"login_failed"));
        assert_eq!(
            serde_json::to_string(&AuditAction::DeviceRevoked).unwrap(),
            "\"device_revoked\""
        );
        // An action of a newer server reads as `Other`.
        let mut newer = rec.clone();
        newer.action = AuditAction::Other("quota_changed".into());
        let back: AuditRec = dec(&enc(&newer).unwrap()).unwrap();
        assert_eq!(back.action, AuditAction::Other("quota_changed".into()));
        for a in AuditAction::ALL {
            assert_eq!(&AuditAction::from_name(a.as_str()), a);
        }
    }

    /// A database of a server from before the admin console (no admin, session or audit tables)
    /// opens, gets the tables, and works.
    #[test]
    fn a_database_without_the_admin_tables_opens_and_gets_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("asgard.redb");
        {
            let old = redb::Database::create(&path).unwrap();
            let txn = old.begin_write().unwrap();
            let users: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("users");
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            txn.open_table(users).unwrap();
            txn.open_table(meta)
                .unwrap()
                .insert("next_user_id", 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert!(!db.admin_exists().unwrap());
        assert!(db.audit_page(None, 10).unwrap().is_empty());
        assert_eq!(db.sessions_count().unwrap(), 0);
        db.admin_create("root", "$argon2id$x", 1).unwrap();
        db.audit_append(&entry(1)).unwrap();
        assert!(db.admin_exists().unwrap());
        drop(db);
        let db = Db::open(&path).unwrap();
        assert_eq!(db.admin_list().unwrap()[0].name, "root");
        assert_eq!(db.audit_page(None, 10).unwrap().len(), 1);
    }
}
