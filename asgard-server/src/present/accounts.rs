//! The account reports as text: devices with their token state, users with their figures, and
//! what the account actions of issue 13 did (revoke, new token, disable, enable, delete, the
//! registration mode).

use std::fmt::Write;

use asgard_core::Lang;
use asgard_core::fmt::{bytes_short, format_utc};
use asgard_core::protocol::DeviceStatus;

use crate::config::Registration;
use crate::ops::accounts::DeviceAction;
use crate::ops::registration::Source;
use crate::ops::users::UserAction;
use crate::ops::{DeviceChange, DeviceInfo, RegistrationReport, TokenState, UserChange, UserList};

/// A token state in words.
pub(crate) fn token_state(s: TokenState, lang: Lang) -> &'static str {
    match s {
        TokenState::Active => lang.pick("aktiv", "active"),
        TokenState::Pending => lang.pick("wartet auf Freigabe", "pending"),
        TokenState::Revoked => lang.pick("widerrufen", "revoked"),
        TokenState::Reset => lang.pick("zurückgesetzt", "reset"),
    }
}

/// `device list`: one tab-separated line per device.
pub(crate) fn devices(list: &[DeviceInfo], lang: Lang) -> String {
    let mut out = String::new();
    if list.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            lang.pick("Keine Geräte registriert.", "No devices registered.")
        );
    }
    for d in list {
        let status = match (d.status, d.token_state) {
            (DeviceStatus::Pending, _) => lang.pick("wartet auf Freigabe", "pending"),
            (_, s) => token_state(s, lang),
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{status}\t{} {}\t{}: {}\t{}: {}\t{}: {}",
            d.user,
            d.device,
            d.os,
            d.os_version,
            lang.pick("angelegt", "created"),
            format_utc(d.created_us),
            lang.pick("zuletzt gesehen", "last seen"),
            format_utc(d.last_seen_us),
            lang.pick("Adresse", "address"),
            d.last_addr.as_deref().unwrap_or("–"),
        );
    }
    out
}

/// `user list`: one tab-separated line per user.
pub(crate) fn users(list: &UserList, lang: Lang) -> String {
    let mut out = String::new();
    if list.users.is_empty() {
        let _ = writeln!(out, "{}", lang.pick("Keine Benutzer.", "No users."));
    }
    for u in &list.users {
        let keep = match u.keep_versions {
            Some(k) => format!("keep_versions {k}"),
            None => format!(
                "keep_versions {} ({})",
                list.default_keep_versions,
                lang.pick("Standard", "default")
            ),
        };
        let disabled = match u.disabled_since_us {
            Some(t) => format!(
                "\t{} {}",
                lang.pick("GESPERRT seit", "DISABLED since"),
                format_utc(t)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{}\t{} {}\t{} {}\t{} {}\t{} {}\t{keep}{disabled}",
            u.name,
            u.devices,
            lang.pick("Gerät(e)", "device(s)"),
            u.versions,
            lang.pick("Versionen", "versions"),
            bytes_short(u.logical_bytes),
            lang.pick("logisch", "logical"),
            bytes_short(u.unique_stored_bytes),
            lang.pick("nur bei ihm gespeichert", "stored for this user only"),
        );
    }
    out
}

/// What `device revoke` or `device token` did (approve and reset: `reports::device_change`).
pub(crate) fn device_change(c: &DeviceChange, lang: Lang) -> String {
    let (user, device) = (&c.user, &c.device);
    let token = c.token.as_deref().unwrap_or("-");
    let text = match (c.action, lang) {
        (DeviceAction::Revoked, Lang::De) => format!(
            "Der Zugang von Gerät „{device}“ (Benutzer „{user}“) ist widerrufen: Ab der nächsten Anfrage wird es abgewiesen. Seine Dateien bleiben erhalten.\n\
             Einen neuen Zugang gibt: asgard-server device token {user} {device} (neues Token) oder asgard-server device reset {user} {device} (Einmal-Code)."
        ),
        (DeviceAction::Revoked, Lang::En) => format!(
            "The access of device \"{device}\" (user \"{user}\") is revoked: it is refused from its next request on. Its files are kept.\n\
             To give it access again: asgard-server device token {user} {device} (new token) or asgard-server device reset {user} {device} (one-time code)."
        ),
        (DeviceAction::NewToken, Lang::De) => format!(
            "Neues Token für Gerät „{device}“ von Benutzer „{user}“ (wird nur jetzt angezeigt; das alte gilt nicht mehr):\n{token}\n\
             Auf dem Gerät: asgard-agent login --token {token}"
        ),
        (DeviceAction::NewToken, Lang::En) => format!(
            "New token for device \"{device}\" of user \"{user}\" (shown only now; the old one is no longer valid):\n{token}\n\
             On the device: asgard-agent login --token {token}"
        ),
        (DeviceAction::Approved | DeviceAction::Reset, _) => {
            return super::reports::device_change(c, lang);
        }
    };
    text + "\n"
}

/// What `user disable/enable/delete` did.
pub(crate) fn user_change(c: &UserChange, lang: Lang) -> String {
    let user = &c.user;
    let text = match (c.action, lang) {
        (UserAction::Disabled, Lang::De) => format!(
            "Benutzer „{user}“ ist gesperrt: Seine Geräte werden abgewiesen, bis er wieder freigeschaltet ist (asgard-server user enable {user}). Seine Dateien bleiben erhalten."
        ),
        (UserAction::Disabled, Lang::En) => format!(
            "User \"{user}\" is disabled: their devices are refused until the user is enabled again (asgard-server user enable {user}). Their files are kept."
        ),
        (UserAction::Enabled, Lang::De) => {
            format!("Benutzer „{user}“ ist wieder freigeschaltet.")
        }
        (UserAction::Enabled, Lang::En) => format!("User \"{user}\" is enabled again."),
        (UserAction::Deleted, _) => {
            let d = c.deleted.unwrap_or(crate::ops::users::DeletedCounts {
                devices: 0,
                paths: 0,
                versions: 0,
            });
            match lang {
                Lang::De => format!(
                    "Benutzer „{user}“ ist gelöscht: {} Gerät(e), {} Pfade, {} Versionen. Chunks, die sonst niemand nutzt, entfernt die nächste Speicherbereinigung.",
                    d.devices, d.paths, d.versions
                ),
                Lang::En => format!(
                    "User \"{user}\" is deleted: {} device(s), {} paths, {} versions. Chunks nobody else uses go with the next garbage collection.",
                    d.devices, d.paths, d.versions
                ),
            }
        }
    };
    text + "\n"
}

/// A registration mode in words.
pub(crate) fn mode(m: Registration, lang: Lang) -> &'static str {
    match m {
        Registration::Open => lang.pick("offen (open)", "open"),
        Registration::Approve => lang.pick("mit Freigabe (approve)", "approve"),
        Registration::Closed => lang.pick("geschlossen (closed)", "closed"),
    }
}

/// `registration show/set`.
pub(crate) fn registration(r: &RegistrationReport, lang: Lang) -> String {
    let key = |k: bool| {
        if k {
            lang.pick("nötig", "required")
        } else {
            lang.pick("keiner", "none")
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}",
        lang.pick("Registrierung", "Registration"),
        mode(r.mode, lang)
    );
    let _ = writeln!(
        out,
        "{}: {}",
        lang.pick("Anmeldeschlüssel", "Enrollment key"),
        key(r.enrollment_key_required)
    );
    match (r.source, r.set_us) {
        (Source::Database, Some(t)) => {
            let _ = writeln!(
                out,
                "{} {} ({}: {}, {} {})",
                lang.pick("Zur Laufzeit festgelegt am", "Set at run time on"),
                format_utc(t),
                lang.pick("Konfigurationsdatei", "configuration file"),
                mode(r.config_mode, lang),
                lang.pick("Schlüssel", "key"),
                key(r.config_enrollment_key_required)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "{}",
                lang.pick(
                    "Aus der Konfigurationsdatei.",
                    "From the configuration file."
                )
            );
        }
    }
    out
}
/// Issue 14: `user link`: the link, shown once.
pub(crate) fn user_link(r: &crate::ops::userlink::LinkReport, lang: Lang) -> String {
    let until = asgard_core::fmt::format_utc(r.expires_us);
    match lang {
        Lang::De => format!(
            "Wiederherstellungs-Link für {user} (nur einmal gültig, bis {until}; er wird nur \
             jetzt angezeigt):\n\n  {url}\n\nErreicht der Benutzer den Server unter einer \
             anderen Adresse, gilt derselbe Pfad dort: {path}\n",
            user = r.user,
            url = r.url,
            path = r.path,
        ),
        Lang::En => format!(
            "Restore link for {user} (works once, until {until}; shown only now):\n\n  \
             {url}\n\nIf the user reaches the server by another address, the same path works \
             there: {path}\n",
            user = r.user,
            url = r.url,
            path = r.path,
        ),
    }
}
