//! The admin account tasks (issue 13): create, change the password, list, delete, turn the TOTP
//! second factor on or off, make an API token. Like every task they run in the server through
//! the admin channel or in-process on a stopped data directory; every one that changes something
//! is audited with the actor `cli` (these tasks come from the command line on the server's
//! machine only).
//!
//! Secrets a task makes (the TOTP URI and recovery codes, an API token) are in its report once,
//! for the admin who asked; the database keeps only what it needs (hashes; the TOTP secret). A
//! password travels in the task over the admin channel (a 0600 Unix socket) and is never logged:
//! [`Password`] has no `Debug` text.

use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::db::{AuditAction, AuditRec, Db, DbError, admin_name};
use crate::service::webauth::{self, password, totp};

/// The actor of the audit entries of these tasks.
const ACTOR: &str = "cli";

/// A password in a task: serialized as the plain string (the admin channel is private), never
/// shown by `Debug` (the channel logs the tasks it gets).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// One admin, for `admin list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AdminInfo {
    pub name: String,
    pub created_us: i64,
    /// The TOTP second factor is on.
    pub totp: bool,
    /// API tokens it has.
    pub tokens: u64,
}

/// Every admin, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AdminList {
    pub admins: Vec<AdminInfo>,
}

/// What an admin task did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AdminAction {
    Created,
    PasswordChanged,
    Deleted,
    TotpEnabled,
    TotpDisabled,
    TokenCreated,
}

/// A new second factor, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TotpShown {
    /// The `otpauth://` URI for the authenticator app (also shown as a QR code).
    pub uri: String,
    /// One-time recovery codes for when the app is lost.
    pub recovery_codes: Vec<String>,
}

/// What `admin create/passwd/delete/totp/token` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AdminChange {
    pub name: String,
    pub action: AdminAction,
    /// After `admin totp NAME`: the new second factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpShown>,
    /// After `admin token NAME`: the new API token (the database keeps only its hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// After `admin passwd` and `admin delete`: the sessions that ended.
    #[serde(default)]
    pub sessions_ended: bool,
}

impl AdminChange {
    fn new(name: String, action: AdminAction) -> AdminChange {
        AdminChange {
            name,
            action,
            totp: None,
            token: None,
            sessions_ended: false,
        }
    }
}

fn normal(name: &str) -> Result<String, OpsError> {
    admin_name(name).map_err(|e| OpsError::BadAdminName {
        name: name.to_owned(),
        reason: e,
    })
}

fn not_found(name: &str) -> impl FnOnce(DbError) -> OpsError {
    let name = name.to_owned();
    move |e| match e {
        DbError::NotFound => OpsError::AdminNotFound { name },
        e => e.into(),
    }
}

fn audit(db: &Db, now_us: i64, action: AuditAction, name: &str, detail: &str) {
    let rec = AuditRec::new(now_us, ACTOR, action, format!("admin:{name}")).detail(detail);
    if let Err(e) = db.audit_append(&rec) {
        tracing::error!(error = %e, "audit log entry lost");
    }
}

/// Makes an admin account with `password` (checked against the policy first).
pub(crate) fn create(
    db: &Db,
    name: &str,
    password: &Password,
    now_us: i64,
) -> Result<AdminChange, OpsError> {
    let name = normal(name)?;
    password::check_policy(&name, &password.0)?;
    db.admin_create(&name, &password::hash(&password.0), now_us)
        .map_err(|e| match e {
            DbError::AdminExists { name } => OpsError::AdminExists { name },
            e => e.into(),
        })?;
    audit(db, now_us, AuditAction::AdminCreated, &name, "");
    Ok(AdminChange::new(name, AdminAction::Created))
}

/// Sets a new password; every session of the admin ends.
pub(crate) fn passwd(
    db: &Db,
    name: &str,
    password: &Password,
    now_us: i64,
) -> Result<AdminChange, OpsError> {
    let name = normal(name)?;
    password::check_policy(&name, &password.0)?;
    db.admin_set_password(&name, &password::hash(&password.0))
        .map_err(not_found(&name))?;
    audit(db, now_us, AuditAction::PasswordChanged, &name, "");
    let mut change = AdminChange::new(name, AdminAction::PasswordChanged);
    change.sessions_ended = true;
    Ok(change)
}

/// Every admin.
pub(crate) fn list(db: &Db) -> Result<AdminList, OpsError> {
    Ok(AdminList {
        admins: db
            .admin_list()?
            .into_iter()
            .map(|r| AdminInfo {
                name: r.name,
                created_us: r.created_us,
                totp: r.totp,
                tokens: r.tokens,
            })
            .collect(),
    })
}

/// Deletes an admin with its API tokens and sessions.
pub(crate) fn delete(db: &Db, name: &str, now_us: i64) -> Result<AdminChange, OpsError> {
    let name = normal(name)?;
    db.admin_delete(&name).map_err(not_found(&name))?;
    audit(db, now_us, AuditAction::AdminDeleted, &name, "");
    let mut change = AdminChange::new(name, AdminAction::Deleted);
    change.sessions_ended = true;
    Ok(change)
}

/// Turns the TOTP second factor on (a new secret and new recovery codes, replacing any old ones)
/// or, with `off`, off.
pub(crate) fn set_totp(
    db: &Db,
    name: &str,
    off: bool,
    now_us: i64,
) -> Result<AdminChange, OpsError> {
    let name = normal(name)?;
    if off {
        db.admin_set_totp(&name, None).map_err(not_found(&name))?;
        audit(db, now_us, AuditAction::TotpDisabled, &name, "");
        return Ok(AdminChange::new(name, AdminAction::TotpDisabled));
    }
    let setup = totp::setup(&name);
    db.admin_set_totp(&name, Some(setup.rec))
        .map_err(not_found(&name))?;
    audit(db, now_us, AuditAction::TotpEnabled, &name, "");
    let mut change = AdminChange::new(name, AdminAction::TotpEnabled);
    change.totp = Some(TotpShown {
        uri: setup.uri,
        recovery_codes: setup.recovery_codes,
    });
    Ok(change)
}

/// Makes a new API token for the admin (shown once).
pub(crate) fn token(db: &Db, name: &str, now_us: i64) -> Result<AdminChange, OpsError> {
    let name = normal(name)?;
    let token = webauth::new_admin_token();
    db.admin_token_add(&name, &webauth::admin_token_hash(&token), now_us)
        .map_err(not_found(&name))?;
    audit(db, now_us, AuditAction::TokenCreated, &name, "");
    let mut change = AdminChange::new(name, AdminAction::TokenCreated);
    change.token = Some(token);
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Task;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
        (dir, db)
    }

    fn pw(s: &str) -> Password {
        Password(s.to_owned())
    }

    #[test]
    fn a_password_never_shows_in_the_log_form_of_a_task() {
        let t = Task::AdminCreate {
            admin: "root".into(),
            password: pw("Donnerkeil-2024!"),
        };
        assert!(!format!("{t:?}").contains("Donnerkeil"));
        // The wire form carries it (over the private socket) and reads back.
        let wire = serde_json::to_string(&t).unwrap();
        assert_eq!(
            wire,
            r#"{"name":"admin-create","admin":"root","password":"Donnerkeil-2024!"}"#
        );
        assert_eq!(serde_json::from_str::<Task>(&wire).unwrap(), t);
    }

    #[test]
    fn accounts_are_created_listed_changed_and_deleted_and_every_change_is_audited() {
        let (_d, db) = db();
        assert!(matches!(
            create(&db, "root", &pw("kurz"), 1),
            Err(OpsError::WeakPassword(password::WeakPassword::TooShort))
        ));
        assert!(matches!(
            create(&db, "administrator", &pw("Administrator"), 1),
            Err(OpsError::WeakPassword(password::WeakPassword::EqualsName))
        ));
        assert!(matches!(
            create(&db, "a b", &pw("Donnerkeil-2024!"), 1),
            Err(OpsError::BadAdminName { .. })
        ));
        assert!(!db.admin_exists().unwrap(), "nothing was made");
        let c = create(&db, "Root", &pw("Donnerkeil-2024!"), 1).unwrap();
        assert_eq!((c.name.as_str(), c.action), ("root", AdminAction::Created));
        assert!(matches!(
            create(&db, "root", &pw("Donnerkeil-2025!"), 2),
            Err(OpsError::AdminExists { .. })
        ));
        let stored = db.admin_get("root").unwrap().unwrap().1;
        assert!(password::verify("Donnerkeil-2024!", &stored.hash));

        let t = token(&db, "root", 3).unwrap().token.unwrap();
        assert!(t.starts_with("asgadm_"));
        let on = set_totp(&db, "root", false, 4).unwrap().totp.unwrap();
        assert!(
            on.uri.starts_with("otpauth://totp/AsgardBackup:root?"),
            "{}",
            on.uri
        );
        assert!(on.uri.contains("issuer=AsgardBackup"));
        assert_eq!(on.recovery_codes.len(), 10);
        let listed = list(&db).unwrap().admins;
        assert_eq!(listed.len(), 1);
        assert!(listed[0].totp && listed[0].tokens == 1);
        // The report of a list holds no secret.
        let json = serde_json::to_string(&list(&db).unwrap()).unwrap();
        assert!(
            !json.contains("argon2") && !json.contains("asgadm_"),
            "{json}"
        );

        set_totp(&db, "root", true, 5).unwrap();
        assert!(!list(&db).unwrap().admins[0].totp);
        passwd(&db, "root", &pw("Neues-Passwort-1"), 6).unwrap();
        let stored = db.admin_get("root").unwrap().unwrap().1;
        assert!(password::verify("Neues-Passwort-1", &stored.hash));
        assert!(matches!(
            passwd(&db, "root", &pw("zu-kurz"), 6),
            Err(OpsError::WeakPassword(_))
        ));
        delete(&db, "root", 7).unwrap();
        assert!(list(&db).unwrap().admins.is_empty());
        for result in [
            delete(&db, "root", 8),
            token(&db, "root", 8),
            set_totp(&db, "root", false, 8),
            passwd(&db, "root", &pw("Donnerkeil-2024!"), 8),
        ] {
            assert!(
                matches!(result, Err(OpsError::AdminNotFound { .. })),
                "{result:?}"
            );
        }
        let log: Vec<_> = db
            .audit_page(None, 100)
            .unwrap()
            .into_iter()
            .rev()
            .map(|(_, r)| (r.actor, r.action, r.object))
            .collect();
        let expect = [
            AuditAction::AdminCreated,
            AuditAction::TokenCreated,
            AuditAction::TotpEnabled,
            AuditAction::TotpDisabled,
            AuditAction::PasswordChanged,
            AuditAction::AdminDeleted,
        ];
        assert_eq!(log.len(), expect.len(), "{log:?}");
        for ((actor, action, object), want) in log.iter().zip(expect) {
            assert_eq!(
                (actor.as_str(), action, object.as_str()),
                ("cli", &want, "admin:root")
            );
        }
    }
}
