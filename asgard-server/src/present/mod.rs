//! # Presentation: text for people, made from data, in a language passed per call
//!
//! The layers below (`ops`, `service`, `db`, `store`) return reports and errors as data; this
//! module is where they become text. Every function takes the reader's [`Lang`]: the language of
//! the command that asked (CLI, admin channel), of the HTTP request (API errors), never a
//! process-wide setting. The web pages of later issues render the same data with their own
//! templates and can reuse the phrases here.
//!
//! - [`reports`]: the maintenance reports (verify, gc, stats, db-backup/-restore, locate, devices,
//!   users);
//! - [`accounts`]: devices and users with their states, and what the account actions did;
//! - [`console`]: the admin console's reports on the command line (`overview`, `runs`);
//! - [`admins`]: the admin account commands (list, changes, QR code, password prompts);
//! - [`messages`]: the command line's and the admin channel's own messages.
//!
//! The API's error messages are in `api::present` (the API's own presentation, beside the error
//! type it renders).
//!
//! Numbers, sizes and times come from [`asgard_core::fmt`], shared with the agent.

pub(crate) mod accounts;
pub(crate) mod admins;
pub(crate) mod console;
pub(crate) mod help;
pub(crate) mod messages;
pub(crate) mod reports;

use asgard_core::Lang;

use crate::ops::{OpsError, Report, Step};

/// A task's report as text.
pub(crate) fn report(report: &Report, lang: Lang) -> String {
    match report {
        Report::Stats(s) => reports::stats(s, lang),
        Report::DbBackup(r) => reports::db_backup(r, lang),
        Report::Verify(r) => reports::verify_report(r, lang),
        Report::Gc(r) => reports::gc_report(r, lang),
        Report::Locate(r) => reports::locate(r, lang),
        Report::Devices(list) => accounts::devices(list, lang),
        Report::DeviceChanged(c) => accounts::device_change(c, lang),
        Report::Users(list) => accounts::users(list, lang),
        Report::KeepChanged(c) => reports::keep_change(c, lang),
        Report::Overview(r) => console::overview(r, lang),
        Report::UserChanged(c) => accounts::user_change(c, lang),
        Report::Registration(r) => accounts::registration(r, lang),
        Report::Runs(r) => console::runs(r, lang),
        Report::Admins(list) => admins::list(list, lang),
        Report::AdminChanged(c) => admins::change(c, lang),
        Report::UserLink(r) => accounts::user_link(r, lang),
    }
}

/// The line shown when a long task reaches `step`.
pub(crate) fn step(step: Step, lang: Lang) -> &'static str {
    match step {
        Step::BackingUpDatabase => lang.pick(
            "Sichere die Metadaten-Datenbank …",
            "Backing up the metadata database …",
        ),
        Step::Verifying => lang.pick("Prüfung der Chunks läuft …", "Verifying the chunks …"),
        Step::CollectingGarbage => lang.pick(
            "Speicherbereinigung läuft …",
            "Garbage collection running …",
        ),
        Step::DeletingUser => lang.pick(
            "Lösche den Benutzer mit allen Versionen …",
            "Deleting the user with all versions …",
        ),
    }
}

/// Why a task could not be carried out.
pub(crate) fn ops_error(e: &OpsError, lang: Lang) -> String {
    match (e, lang) {
        (OpsError::DeviceNotFound { user, device }, Lang::De) => {
            format!("Gerät „{device}“ von Benutzer „{user}“ nicht gefunden.")
        }
        (OpsError::DeviceNotFound { user, device }, Lang::En) => {
            format!("Device \"{device}\" of user \"{user}\" not found.")
        }
        (OpsError::UserNotFound { user }, Lang::De) => {
            format!("Benutzer „{user}“ nicht gefunden.")
        }
        (OpsError::UserNotFound { user }, Lang::En) => format!("User \"{user}\" not found."),
        (OpsError::BadChunkId(hex), _) => format!(
            "{} {hex}",
            lang.pick("Ungültige Chunk-ID:", "Invalid chunk id:")
        ),
        (OpsError::RelativePath(p), _) => format!(
            "{} {}",
            lang.pick(
                "Der Zielpfad muss absolut sein:",
                "The target path must be absolute:"
            ),
            p.display()
        ),
        (OpsError::BadKeep, _) => lang
            .pick(
                "keep_versions muss mindestens 1 sein.",
                "keep_versions must be at least 1.",
            )
            .to_owned(),
        (OpsError::ShortKey, _) => format!(
            "{} {}",
            lang.pick(
                "Der Anmeldeschlüssel ist zu kurz; mindestens so viele Zeichen:",
                "The enrollment key is too short; at least this many characters:"
            ),
            crate::ops::registration::MIN_KEY_LEN
        ),
        (OpsError::BadRegistrationChange, _) => lang
            .pick(
                "registration set: Bitte einen Modus (open, approve, closed), einen neuen Schlüssel oder --no-enrollment-key angeben, oder nur --reset (Schlüssel setzen und entfernen zugleich geht nicht).",
                "registration set: please give a mode (open, approve, closed), a new key or --no-enrollment-key, or only --reset (setting and removing the key at once is not possible).",
            )
            .to_owned(),
        (OpsError::AdminNotFound { name }, _) => admins::not_found(name, lang),
        (OpsError::AdminExists { name }, _) => admins::exists(name, lang),
        (OpsError::BadAdminName { name, reason }, _) => admins::bad_name(name, reason, lang),
        (OpsError::WeakPassword(w), _) => admins::weak_password(*w, lang),
        (OpsError::Other(e), _) => format!("{e:#}"),
        (e, _) => e.to_string(),
    }
}

/// The word in front of an error on the command line.
pub(crate) fn error_prefix(lang: Lang) -> &'static str {
    lang.pick("Fehler", "Error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_object_in_the_readers_language() {
        let e = OpsError::DeviceNotFound {
            user: "anna".into(),
            device: "laptop".into(),
        };
        assert_eq!(
            ops_error(&e, Lang::De),
            "Gerät „laptop“ von Benutzer „anna“ nicht gefunden."
        );
        assert_eq!(
            ops_error(&e, Lang::En),
            "Device \"laptop\" of user \"anna\" not found."
        );
        let e = OpsError::RelativePath("x.redb".into());
        assert!(ops_error(&e, Lang::En).contains("absolute"));
        assert!(ops_error(&e, Lang::De).contains("absolut sein"));
    }
}
