//! Who may register a device, changeable at run time (`registration show/set`, the devices
//! page): the configuration file gives the start value; once the admin sets a mode or key it is
//! kept in the database and wins over the file (until `registration set --reset`).
//!
//! The enrollment key set at run time is stored only as its blake3 hash; the report says
//! whether a key is needed, never the key.

use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::config::{Config, Registration};
use crate::db::{Db, RegistrationSetting, hash_token};

/// The shortest enrollment key accepted at run time.
pub(crate) const MIN_KEY_LEN: usize = 12;

/// Where the rules in force come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// `config.yaml` (or the built-in default).
    Config,
    /// Set at run time (`registration set`, the devices page).
    Database,
}

/// The registration rules in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RegistrationReport {
    pub mode: Registration,
    /// A registration must present the enrollment key.
    pub enrollment_key_required: bool,
    pub source: Source,
    /// When the run-time setting was made (µs); `None` for the configuration.
    pub set_us: Option<i64>,
    /// The configuration file's values (in force again after a reset).
    pub config_mode: Registration,
    pub config_enrollment_key_required: bool,
}

/// What `registration set` changes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Change<'a> {
    pub mode: Option<Registration>,
    pub enrollment_key: Option<&'a str>,
    pub clear_enrollment_key: bool,
    pub reset: bool,
}

/// The mode and the enrollment key's hash that a login checks now.
///
/// # Errors
/// The database could not be read.
pub(crate) fn effective(
    db: &Db,
    config: &Config,
) -> Result<(Registration, Option<[u8; 32]>), crate::db::DbError> {
    Ok(match db.registration_setting()? {
        Some(s) => (s.mode, s.enrollment_key_hash),
        None => (
            config.registration,
            config.enrollment_key.as_deref().map(hash_token),
        ),
    })
}

/// The rules in force and where they come from.
pub(crate) fn show(db: &Db, config: &Config) -> Result<RegistrationReport, OpsError> {
    let setting = db.registration_setting()?;
    Ok(report(setting.as_ref(), config))
}

fn report(setting: Option<&RegistrationSetting>, config: &Config) -> RegistrationReport {
    let config_key = config.enrollment_key.is_some();
    match setting {
        Some(s) => RegistrationReport {
            mode: s.mode,
            enrollment_key_required: s.enrollment_key_hash.is_some(),
            source: Source::Database,
            set_us: Some(s.set_us),
            config_mode: config.registration,
            config_enrollment_key_required: config_key,
        },
        None => RegistrationReport {
            mode: config.registration,
            enrollment_key_required: config_key,
            source: Source::Config,
            set_us: None,
            config_mode: config.registration,
            config_enrollment_key_required: config_key,
        },
    }
}

/// Changes the rules from the next login on: what `change` leaves unset stays as it is in force
/// now (the file's value, or the earlier run-time one).
pub(crate) fn set(
    db: &Db,
    config: &Config,
    change: &Change<'_>,
    now: i64,
) -> Result<RegistrationReport, OpsError> {
    let anything =
        change.mode.is_some() || change.enrollment_key.is_some() || change.clear_enrollment_key;
    if change.reset {
        if anything {
            return Err(OpsError::BadRegistrationChange);
        }
        db.clear_registration_setting()?;
        return show(db, config);
    }
    if !anything || (change.enrollment_key.is_some() && change.clear_enrollment_key) {
        return Err(OpsError::BadRegistrationChange);
    }
    if let Some(k) = change.enrollment_key
        && k.trim().chars().count() < MIN_KEY_LEN
    {
        return Err(OpsError::ShortKey);
    }
    let (mode, key_hash) = effective(db, config)?;
    let setting = RegistrationSetting {
        mode: change.mode.unwrap_or(mode),
        enrollment_key_hash: match (change.enrollment_key, change.clear_enrollment_key) {
            (Some(k), _) => Some(hash_token(k)),
            (None, true) => None,
            (None, false) => key_hash,
        },
        set_us: now,
    };
    db.set_registration_setting(&setting)?;
    Ok(report(Some(&setting), config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{login_request, open_db};

    fn policy_login(
        db: &Db,
        config: &Config,
        user: &str,
        key: Option<&str>,
    ) -> Result<asgard_core::protocol::DeviceStatus, crate::db::DbError> {
        let (mode, hash) = effective(db, config)?;
        let mut req = login_request(user, "pc");
        req.enrollment_key = key.map(str::to_owned);
        let policy = crate::db::LoginPolicy {
            registration: mode,
            enrollment_key: hash.as_ref(),
        };
        Ok(db.login(&req, None, policy, 1)?.status)
    }

    #[test]
    fn the_database_setting_wins_over_the_file_until_reset() {
        let (_d, db) = open_db();
        let config = Config {
            enrollment_key: Some("aus-der-datei".into()),
            ..Config::default()
        };
        let r = show(&db, &config).unwrap();
        assert_eq!(
            (r.mode, r.enrollment_key_required, r.source),
            (Registration::Open, true, Source::Config)
        );
        assert!(matches!(
            policy_login(&db, &config, "anna", None),
            Err(crate::db::DbError::EnrollmentKey)
        ));

        // Approve mode, the file's key still needed.
        let change = Change {
            mode: Some(Registration::Approve),
            ..Change::default()
        };
        let r = set(&db, &config, &change, 5).unwrap();
        assert_eq!(
            (r.mode, r.enrollment_key_required, r.source, r.set_us),
            (Registration::Approve, true, Source::Database, Some(5))
        );
        assert_eq!(
            policy_login(&db, &config, "anna", Some("aus-der-datei")).unwrap(),
            asgard_core::protocol::DeviceStatus::Pending
        );
        // A new key replaces the file's; the old one no longer opens anything.
        let change = Change {
            enrollment_key: Some("neuer-schluessel-123"),
            ..Change::default()
        };
        set(&db, &config, &change, 6).unwrap();
        assert!(matches!(
            policy_login(&db, &config, "bert", Some("aus-der-datei")),
            Err(crate::db::DbError::EnrollmentKey)
        ));
        assert_eq!(
            policy_login(&db, &config, "bert", Some("neuer-schluessel-123")).unwrap(),
            asgard_core::protocol::DeviceStatus::Pending
        );
        // The key is not stored in plain text anywhere in the report or the database blob.
        let json = serde_json::to_string(&show(&db, &config).unwrap()).unwrap();
        assert!(!json.contains("neuer-schluessel"), "{json}");
        // Closed, no key: refused.
        let change = Change {
            mode: Some(Registration::Closed),
            clear_enrollment_key: true,
            ..Change::default()
        };
        let r = set(&db, &config, &change, 7).unwrap();
        assert!(!r.enrollment_key_required);
        assert!(matches!(
            policy_login(&db, &config, "carl", None),
            Err(crate::db::DbError::RegistrationClosed)
        ));
        // Reset: the file applies again.
        let r = set(
            &db,
            &config,
            &Change {
                reset: true,
                ..Change::default()
            },
            8,
        )
        .unwrap();
        assert_eq!(r.source, Source::Config);
        assert_eq!(
            policy_login(&db, &config, "dora", Some("aus-der-datei")).unwrap(),
            asgard_core::protocol::DeviceStatus::Active
        );
    }

    #[test]
    fn bad_changes_are_refused_and_change_nothing() {
        let (_d, db) = open_db();
        let config = Config::default();
        for change in [
            Change::default(),
            Change {
                reset: true,
                mode: Some(Registration::Closed),
                ..Change::default()
            },
            Change {
                enrollment_key: Some("x-long-enough-key"),
                clear_enrollment_key: true,
                ..Change::default()
            },
        ] {
            assert!(matches!(
                set(&db, &config, &change, 1),
                Err(OpsError::BadRegistrationChange)
            ));
        }
        let short = Change {
            enrollment_key: Some("kurz"),
            ..Change::default()
        };
        assert!(matches!(
            set(&db, &config, &short, 1),
            Err(OpsError::ShortKey)
        ));
        assert_eq!(show(&db, &config).unwrap().source, Source::Config);
    }
}
