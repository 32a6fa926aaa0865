//! The texts of talking to the server: login and registration, trust in its certificate, and its
//! errors by their stable codes.

use asgard_core::Lang;
use asgard_core::protocol::ErrorBody;

/// After `login`: registered now, or logged in (`url`: the server).
pub(crate) fn logged_in(
    registered: bool,
    user: &str,
    device: &str,
    url: &str,
    lang: Lang,
) -> String {
    match (registered, lang) {
        (true, Lang::De) => format!("Gerät {device} für Benutzer {user} registriert."),
        (true, Lang::En) => format!("Device {device} registered for user {user}."),
        (false, Lang::De) => format!("Angemeldet als {user} auf Gerät {device} ({url})"),
        (false, Lang::En) => format!("Logged in as {user} on device {device} ({url})"),
    }
}

/// The server URL differs from the one in the state (`old`): the device keeps its token, which
/// goes only to a server with the pinned certificate.
pub(crate) fn server_changed(old: &str, new: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Hinweis: Die Server-Adresse hat sich geändert (bisher {old}, jetzt {new}). Das Gerät \
             bleibt angemeldet, solange der Server dasselbe Zertifikat zeigt."
        ),
        Lang::En => format!(
            "Note: the server address changed (was {old}, now {new}). The device stays logged \
             in as long as the server shows the same certificate."
        ),
    }
}

/// The server URL changed, a token is stored, but no certificate is pinned to tell whether it is
/// the same server.
pub(crate) fn server_changed_unpinned(old: &str, new: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Die Server-Adresse hat sich geändert (bisher {old}, jetzt {new}), und es ist kein \
             Zertifikat-Fingerabdruck gespeichert, an dem der Server zu erkennen wäre. Das \
             Geräte-Token wird deshalb nicht an {new} geschickt (es bleibt gespeichert). Tragen \
             Sie den Fingerabdruck des Servers als server.fingerprint in die Konfiguration ein \
             (asgard-server fingerprint zeigt ihn)."
        ),
        Lang::En => format!(
            "The server address changed (was {old}, now {new}) and no certificate fingerprint is \
             stored to recognise the server by. The device token is therefore not sent to {new} \
             (it stays stored). Put the server's fingerprint into the config as \
             server.fingerprint (asgard-server fingerprint shows it)."
        ),
    }
}

/// A user or device name without a normal form.
pub(crate) fn bad_name(name: &str, e: &asgard_core::names::NameError, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Der Name {name:?} ist als Benutzer- oder Gerätename nicht möglich ({e}): erlaubt \
             sind 1 bis 128 sichtbare Zeichen ohne Steuer-, unsichtbare oder \
             Richtungszeichen. Setzen Sie device_name in der Konfiguration."
        ),
        Lang::En => format!(
            "The name {name:?} cannot be a user or device name ({e}): 1 to 128 visible \
             characters without control, invisible or direction characters are allowed. Set \
             device_name in the config."
        ),
    }
}

/// A typed code that cannot be one.
/// A token given with `login --token` that cannot be one.
pub(crate) fn bad_token(lang: Lang) -> &'static str {
    lang.pick(
        "Das ist kein gültiges Geräte-Token: Bitte das Token genau so angeben, wie \
         „asgard-server device token“ es ausgegeben hat (beginnt mit asg_).",
        "That is not a valid device token: please give the token exactly as \
         \"asgard-server device token\" printed it (it starts with asg_).",
    )
}

pub(crate) fn bad_code(typed: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "„{typed}“ ist kein gültiger Code. Ein Code hat 8 Zeichen, z. B. K7MQ-4XTD \
             (Groß- oder Kleinschreibung und Bindestrich sind egal)."
        ),
        Lang::En => format!(
            "\"{typed}\" is not a valid code. A code has 8 characters, e.g. K7MQ-4XTD (case \
             and dash do not matter)."
        ),
    }
}

/// `device approve` on a device that is not active itself.
pub(crate) fn approver_not_active(lang: Lang) -> &'static str {
    lang.pick(
        "Dieses Gerät ist selbst noch nicht freigegeben und kann deshalb keine anderen Geräte \
         freigeben. Bitte auf einem bereits aktiven Gerät aufrufen.",
        "This device is not approved itself and therefore cannot approve other devices. Please \
         run this on a device that is already active.",
    )
}

/// After `device approve`.
pub(crate) fn approved(device: &str, user: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Gerät {device} von {user} ist freigegeben. Auf dem Gerät jetzt \
             „asgard-agent login“ oder „asgard-agent backup“ aufrufen."
        ),
        Lang::En => format!(
            "Device {device} of {user} is approved. Now run \"asgard-agent login\" or \
             \"asgard-agent backup\" on that device."
        ),
    }
}

/// The stored token belongs to another user or device name.
pub(crate) fn token_of_another(
    (old_user, old_device): (&str, &str),
    (user, device): (&str, &str),
    lang: Lang,
) -> String {
    match lang {
        Lang::De => format!(
            "Hinweis: Das gespeicherte Token gehört zu {old_user} auf {old_device}; {user} auf \
             {device} wird neu registriert."
        ),
        Lang::En => format!(
            "Note: the stored token belongs to {old_user} on {old_device}; registering {user} on \
             {device}."
        ),
    }
}

/// No server is known: neither configured nor remembered from a registration.
pub(crate) fn no_server(lang: Lang) -> &'static str {
    lang.pick(
        "Kein Server angegeben. Bitte --server URL angeben, ASGARD_SERVER setzen oder \
         server.url in der Konfiguration eintragen.",
        "No server given. Use --server URL, set ASGARD_SERVER or put server.url into \
         the config.",
    )
}

/// `server.fingerprint` in the config (`text`) is not a SHA-256 fingerprint.
pub(crate) fn bad_fingerprint(text: &str, lang: Lang) -> String {
    format!(
        "{}: {text}",
        lang.pick(
            "server.fingerprint in der Konfiguration ist kein SHA-256-Fingerabdruck \
             (64 Hex-Ziffern)",
            "server.fingerprint in the config is not a SHA-256 fingerprint (64 hex digits)"
        )
    )
}

/// The server certificate was trusted on first contact (`fingerprint` as the server prints it).
pub(crate) fn trusted_on_first_use(fingerprint: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Warnung: Dem Server-Zertifikat wird beim ersten Kontakt vertraut \
             (Fingerabdruck {fingerprint}). Zum Festlegen: server.fingerprint in der \
             Konfiguration."
        ),
        Lang::En => format!(
            "Warning: the server certificate is trusted on first contact (fingerprint \
             {fingerprint}). To pin it: server.fingerprint in the config."
        ),
    }
}

/// The certificate differs from the pinned one: the connection was aborted.
pub(crate) fn fingerprint_changed(expected: &str, got: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Der Fingerabdruck des Server-Zertifikats hat sich geändert! Erwartet {expected}, \
             erhalten {got}. Das kann ein Angriff sein; die Verbindung wurde abgebrochen. \
             Wenn der Server wirklich ein neues Zertifikat hat, tragen Sie den neuen \
             Fingerabdruck als server.fingerprint in die Konfiguration ein."
        ),
        Lang::En => format!(
            "The server certificate's fingerprint has changed! Expected {expected}, got {got}. \
             This may be an attack; the connection was aborted. If the server really has \
             a new certificate, put the new fingerprint into the config as \
             server.fingerprint."
        ),
    }
}

/// The message for a device that waits for approval; `code`: the approval code and until when
/// (µs) it is valid.
pub(crate) fn pending(device: &str, user: &str, code: Option<(&str, i64)>, lang: Lang) -> String {
    match (code, lang) {
        (Some((code, until)), Lang::De) => format!(
            "Gerät {device} wartet auf Freigabe: Benutzer {user} hat schon ein Gerät, und ein \
             weiteres darf erst sichern, wenn es bestätigt ist (so kann sich niemand als {user} \
             ausgeben).\n\
             Freigabe-Code: {code} (gültig bis {until})\n\
             Auf einem Ihrer bereits angemeldeten Geräte eingeben: asgard-agent device approve {code}\n\
             Oder den Administrator bitten: asgard-server device approve {user} {device}\n\
             Danach hier erneut „asgard-agent login“ oder „asgard-agent backup“ aufrufen.",
            until = asgard_core::fmt::format_utc(until)
        ),
        (Some((code, until)), Lang::En) => format!(
            "Device {device} is waiting for approval: user {user} has a device already, and a \
             further one may back up only once it is confirmed (so nobody can pose as {user}).\n\
             Approval code: {code} (valid until {until})\n\
             Enter it on one of your devices that is already logged in: asgard-agent device approve {code}\n\
             Or ask the administrator: asgard-server device approve {user} {device}\n\
             Then run \"asgard-agent login\" or \"asgard-agent backup\" here again.",
            until = asgard_core::fmt::format_utc(until)
        ),
        (None, Lang::De) => {
            format!("Gerät {device} von {user} wartet auf die Freigabe durch den Administrator.")
        }
        (None, Lang::En) => {
            format!("Device {device} of {user} is waiting for an administrator's approval.")
        }
    }
}

/// The message for a server error, by its stable code where known, else the server's text.
pub(crate) fn server_error(body: &ErrorBody, lang: Lang) -> String {
    let m = &body.message;
    match (body.code.as_str(), lang) {
        ("unauthorized", Lang::De) => format!(
            "Der Server hat die Anmeldung abgelehnt (Token oder Code ungültig, oder das Gerät \
             wurde zurückgesetzt): {m}"
        ),
        ("unauthorized", Lang::En) => format!("The server refused the login: {m}"),
        ("approval_code", Lang::De) => format!(
            "Der Freigabe-Code passt zu keinem wartenden Gerät (falsch, abgelaufen oder schon \
             benutzt). Auf dem neuen Gerät „asgard-agent login“ aufrufen: Es zeigt den gültigen \
             Code. ({m})"
        ),
        ("approval_code", Lang::En) => format!(
            "The approval code matches no waiting device (wrong, expired or already used). Run \
             \"asgard-agent login\" on the new device: it shows the valid code. ({m})"
        ),
        ("token_revoked", Lang::De) => "Der Administrator hat den Zugang dieses Geräts zum \
             Server widerrufen; sein Token gilt nicht mehr. Sichern und Wiederherstellen gehen \
             erst wieder, wenn der Administrator einen neuen Zugang gibt: entweder ein neues \
             Token (hier dann „asgard-agent login --token TOKEN“) oder einen Einmal-Code \
             („asgard-agent login --code CODE“). Ihre bisher gesicherten Dateien bleiben \
             erhalten."
            .to_owned(),
        ("token_revoked", Lang::En) => "The administrator revoked this device's access to the \
             server; its token is no longer valid. Backup and restore work again once the \
             administrator gives new access: either a new token (then \"asgard-agent login \
             --token TOKEN\" here) or a one-time code (\"asgard-agent login --code CODE\"). \
             The files backed up so far are kept."
            .to_owned(),
        ("user_disabled", Lang::De) => "Der Administrator hat Ihr Benutzerkonto auf dem \
             Server gesperrt: Keines Ihrer Geräte kann sichern oder wiederherstellen, bis er es \
             wieder freischaltet. Ihre gesicherten Dateien bleiben erhalten. Bitte wenden Sie \
             sich an den Administrator."
            .to_owned(),
        ("user_disabled", Lang::En) => "The administrator disabled your user account on the \
             server: none of your devices can back up or restore until it is enabled again. \
             Your backed-up files are kept. Please contact the administrator."
            .to_owned(),
        ("name_confusable", _) | ("too_many_devices", _) => m.clone(),
        ("registration_refused", Lang::De) => "Der Administrator hat die Registrierung dieses \
             Geräts abgelehnt: Es kann weder sichern noch wiederherstellen. Bitte wenden Sie sich \
             an den Administrator; eine neue Anmeldung („asgard-agent login“) stellt eine neue \
             Anfrage."
            .to_owned(),
        ("registration_refused", Lang::En) => "The administrator refused this device's \
             registration: it can neither back up nor restore. Please contact the administrator; \
             a new login (\"asgard-agent login\") makes a new request."
            .to_owned(),
        ("device_pending", Lang::De) => "Das Gerät wartet noch auf Freigabe: „asgard-agent \
             login“ zeigt den Code, mit dem ein aktives Gerät desselben Benutzers es freigibt \
             (oder der Administrator mit asgard-server device approve)."
            .to_owned(),
        ("device_pending", Lang::En) => "The device is still waiting for approval: \
             \"asgard-agent login\" shows the code with which an active device of the same user \
             approves it (or the administrator, with asgard-server device approve)."
            .to_owned(),
        ("registration_closed", Lang::De) => {
            format!("Der Server nimmt keine neuen Geräte an. ({m})")
        }
        ("registration_closed", Lang::En) => {
            format!("The server does not accept new devices. ({m})")
        }
        ("enrollment_key", Lang::De) => format!(
            "Der Registrierungsschlüssel fehlt oder ist falsch (enrollment_key in der \
             Konfiguration). ({m})"
        ),
        ("enrollment_key", Lang::En) => {
            format!("The enrollment key is missing or wrong (enrollment_key in the config). ({m})")
        }
        ("missing_chunks", _) => {
            let ids: Vec<String> = body.missing.iter().map(|i| i.to_hex()).collect();
            format!(
                "{}: {}",
                lang.pick(
                    "Dem Server fehlen Datenblöcke, auf die der Commit verweist",
                    "The server lacks chunks that the commit references"
                ),
                ids.join(", ")
            )
        }
        ("not_found", Lang::De) => format!("Nicht gefunden: {m}"),
        ("not_found", Lang::En) => format!("Not found: {m}"),
        ("deleted", Lang::De) => format!("Diese Version ist eine Löschmarkierung: {m}"),
        ("deleted", Lang::En) => format!("This version is a deletion marker: {m}"),
        ("unknown_device", Lang::De) => format!("Unbekanntes Gerät: {m}"),
        ("unknown_device", Lang::En) => format!("Unknown device: {m}"),
        _ => format!(
            "{} ({}): {m}",
            lang.pick("Server-Fehler", "Server error"),
            body.code
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgard_core::ChunkId;

    #[test]
    fn known_codes_get_own_text() {
        let body = ErrorBody {
            code: "device_pending".into(),
            message: "pending".into(),
            missing: vec![],
        };
        assert!(server_error(&body, Lang::De).contains("Freigabe"));
        let body = ErrorBody {
            code: "registration_refused".into(),
            message: "registration refused".into(),
            missing: vec![],
        };
        assert!(server_error(&body, Lang::De).contains("abgelehnt"));
        let body = ErrorBody {
            code: "missing_chunks".into(),
            message: "x".into(),
            missing: vec![ChunkId::of(b"a")],
        };
        assert!(server_error(&body, Lang::De).contains(&ChunkId::of(b"a").to_hex()));
        let body = ErrorBody {
            code: "weird".into(),
            message: "Server says no".into(),
            missing: vec![],
        };
        assert!(server_error(&body, Lang::En).contains("Server says no"));
    }
}
