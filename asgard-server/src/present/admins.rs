//! The admin account commands as text: `admin list`, what `admin create/passwd/delete/totp/token`
//! did (with the QR code of a new second factor), their errors, the password prompts and the
//! start-up hint when no admin exists yet.

use std::fmt::Write;

use asgard_core::Lang;
use asgard_core::fmt::format_utc;

use crate::db::BadAdminName;
use crate::ops::admins::{AdminAction, AdminChange, AdminList};
use crate::service::webauth::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, WeakPassword};

/// `admin list`.
pub(crate) fn list(list: &AdminList, lang: Lang) -> String {
    let mut out = String::new();
    if list.admins.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            lang.pick(
                "Keine Admins. Den ersten legt `asgard-server admin create NAME` an.",
                "No admins. `asgard-server admin create NAME` creates the first one."
            )
        );
    }
    for a in &list.admins {
        let totp = if a.totp {
            lang.pick("TOTP an", "TOTP on")
        } else {
            lang.pick("TOTP aus", "TOTP off")
        };
        let _ = writeln!(
            out,
            "{}\t{} {}\t{totp}\t{} {}",
            a.name,
            lang.pick("angelegt", "created"),
            format_utc(a.created_us),
            a.tokens,
            lang.pick("API-Token", "API token(s)")
        );
    }
    out
}

/// The otpauth URI as a QR code of Unicode half blocks (light modules dark, for a terminal with
/// a dark background; the quiet zone around it makes it readable on a light one too).
pub(crate) fn qr_code(uri: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .build(),
    )
}

/// What an admin command did.
pub(crate) fn change(c: &AdminChange, lang: Lang) -> String {
    let n = &c.name;
    let mut out = match (c.action, lang) {
        (AdminAction::Created, Lang::De) => {
            format!("Admin „{n}“ angelegt. Anmeldung unter https://<server>/admin/login.\n")
        }
        (AdminAction::Created, Lang::En) => {
            format!("Admin \"{n}\" created. Log in at https://<server>/admin/login.\n")
        }
        (AdminAction::PasswordChanged, Lang::De) => {
            format!("Passwort von Admin „{n}“ geändert; seine Sitzungen sind beendet.\n")
        }
        (AdminAction::PasswordChanged, Lang::En) => {
            format!("Password of admin \"{n}\" changed; its sessions have ended.\n")
        }
        (AdminAction::Deleted, Lang::De) => {
            format!("Admin „{n}“ gelöscht, mit seinen API-Token und Sitzungen.\n")
        }
        (AdminAction::Deleted, Lang::En) => {
            format!("Admin \"{n}\" deleted, with its API tokens and sessions.\n")
        }
        (AdminAction::TotpEnabled, Lang::De) => format!(
            "Zweiter Faktor (TOTP) für Admin „{n}“ eingeschaltet. Den QR-Code mit einer \
             Authenticator-App scannen (oder die Adresse eintragen):\n"
        ),
        (AdminAction::TotpEnabled, Lang::En) => format!(
            "Second factor (TOTP) of admin \"{n}\" turned on. Scan the QR code with an \
             authenticator app (or enter the address):\n"
        ),
        (AdminAction::TotpDisabled, Lang::De) => {
            format!("Zweiter Faktor (TOTP) für Admin „{n}“ ausgeschaltet.\n")
        }
        (AdminAction::TotpDisabled, Lang::En) => {
            format!("Second factor (TOTP) of admin \"{n}\" turned off.\n")
        }
        (AdminAction::TokenCreated, Lang::De) => format!(
            "Neues API-Token für Admin „{n}“ (wird nur jetzt angezeigt; für Skripte als \
             `Authorization: Bearer <Token>`):\n"
        ),
        (AdminAction::TokenCreated, Lang::En) => format!(
            "New API token of admin \"{n}\" (shown only now; for scripts as \
             `Authorization: Bearer <token>`):\n"
        ),
    };
    if let Some(t) = &c.totp {
        let _ = writeln!(out, "\n{}\n", t.uri);
        if let Some(qr) = qr_code(&t.uri) {
            let _ = writeln!(out, "{qr}\n");
        }
        let _ = writeln!(
            out,
            "{}",
            lang.pick(
                "Wiederherstellungscodes (je einmal gültig, statt eines TOTP-Codes; jetzt sicher \
                 aufbewahren, sie werden nicht wieder angezeigt):",
                "Recovery codes (each valid once, instead of a TOTP code; keep them safe now, \
                 they are not shown again):"
            )
        );
        for code in &t.recovery_codes {
            let _ = writeln!(out, "  {code}");
        }
    }
    if let Some(token) = &c.token {
        let _ = writeln!(out, "{token}");
    }
    out
}

/// Why a new password is refused.
pub(crate) fn weak_password(e: WeakPassword, lang: Lang) -> String {
    match (e, lang) {
        (WeakPassword::TooShort, Lang::De) => {
            format!("Das Passwort ist zu kurz: mindestens {MIN_PASSWORD_CHARS} Zeichen.")
        }
        (WeakPassword::TooShort, Lang::En) => {
            format!("The password is too short: at least {MIN_PASSWORD_CHARS} characters.")
        }
        (WeakPassword::TooLong, Lang::De) => {
            format!("Das Passwort ist zu lang: höchstens {MAX_PASSWORD_BYTES} Bytes.")
        }
        (WeakPassword::TooLong, Lang::En) => {
            format!("The password is too long: at most {MAX_PASSWORD_BYTES} bytes.")
        }
        (WeakPassword::EqualsName, Lang::De) => {
            "Das Passwort darf nicht der Name des Admins sein.".to_owned()
        }
        (WeakPassword::EqualsName, Lang::En) => {
            "The password must not be the admin's name.".to_owned()
        }
    }
}

/// Why an admin name is refused.
pub(crate) fn bad_name(name: &str, e: &BadAdminName, lang: Lang) -> String {
    let why = match e {
        BadAdminName::Empty => lang.pick("er ist leer", "it is empty"),
        BadAdminName::TooLong => lang.pick("er ist zu lang", "it is too long"),
        BadAdminName::BadChar => lang.pick(
            "erlaubt sind nur a-z, 0-9, Punkt, Unterstrich, Bindestrich und @",
            "only a-z, 0-9, dot, underscore, hyphen and @ are allowed",
        ),
    };
    match lang {
        Lang::De => format!("Ungültiger Admin-Name „{name}“: {why}."),
        Lang::En => format!("Invalid admin name \"{name}\": {why}."),
    }
}

/// An admin that does not exist.
pub(crate) fn not_found(name: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!("Admin „{name}“ nicht gefunden."),
        Lang::En => format!("Admin \"{name}\" not found."),
    }
}

/// An admin name that is taken.
pub(crate) fn exists(name: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!("Admin „{name}“ gibt es schon."),
        Lang::En => format!("Admin \"{name}\" exists already."),
    }
}

/// The first password prompt.
pub(crate) fn password_prompt(name: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!("Neues Passwort für Admin „{name}“: "),
        Lang::En => format!("New password of admin \"{name}\": "),
    }
}

/// The second password prompt.
pub(crate) fn password_again(lang: Lang) -> &'static str {
    lang.pick("Passwort wiederholen: ", "Repeat the password: ")
}

/// The two passwords typed differ.
pub(crate) fn passwords_differ(lang: Lang) -> &'static str {
    lang.pick(
        "Die beiden Passwörter stimmen nicht überein.",
        "The two passwords do not match.",
    )
}

/// `--password-stdin` read nothing.
pub(crate) fn no_password_on_stdin(lang: Lang) -> &'static str {
    lang.pick(
        "Kein Passwort auf der Standardeingabe.",
        "No password on standard input.",
    )
}

/// The start-up hint of a server without admins.
pub(crate) fn no_admin_yet(lang: Lang) -> &'static str {
    lang.pick(
        "Noch kein Admin für die Weboberfläche: den ersten legt `asgard-server admin create NAME` \
         an (auch während der Server läuft).\n",
        "No admin for the web interface yet: `asgard-server admin create NAME` creates the \
         first one (also while the server runs).\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::admins::{AdminInfo, TotpShown};

    #[test]
    fn the_weak_password_message_is_german_by_default() {
        assert_eq!(
            weak_password(WeakPassword::TooShort, Lang::De),
            "Das Passwort ist zu kurz: mindestens 12 Zeichen."
        );
        assert!(weak_password(WeakPassword::TooShort, Lang::En).contains("too short"));
    }

    #[test]
    fn a_new_second_factor_shows_uri_qr_code_and_recovery_codes() {
        let c = AdminChange {
            name: "root".into(),
            action: AdminAction::TotpEnabled,
            totp: Some(TotpShown {
                uri: "otpauth://totp/AsgardBackup:root?secret=ABC&issuer=AsgardBackup".into(),
                recovery_codes: vec!["abcd-efgh-jkmn-pqrs".into()],
            }),
            token: None,
            sessions_ended: false,
        };
        let text = change(&c, Lang::De);
        assert!(text.contains("otpauth://totp/AsgardBackup:root"), "{text}");
        assert!(text.contains("abcd-efgh-jkmn-pqrs"), "{text}");
        assert!(
            text.contains('▀') || text.contains('▄'),
            "a QR code: {text}"
        );
        assert!(text.contains("Wiederherstellungscodes"), "{text}");
        assert!(change(&c, Lang::En).contains("Recovery codes"));
    }

    #[test]
    fn the_list_shows_totp_and_tokens() {
        let l = AdminList {
            admins: vec![AdminInfo {
                name: "root".into(),
                created_us: 0,
                totp: true,
                tokens: 2,
            }],
        };
        let text = list(&l, Lang::De);
        assert!(text.contains("root") && text.contains("TOTP an") && text.contains("2 API-Token"));
        assert!(list(&AdminList { admins: vec![] }, Lang::En).contains("admin create"));
    }
}
