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

/// The configured server differs from the one in the state (`old`): the device registers anew.
pub(crate) fn server_changed(old: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Hinweis: Der Server hat sich geändert (bisher {old}); das Gerät wird beim neuen \
             Server angemeldet."
        ),
        Lang::En => format!(
            "Note: the server changed (was {old}); the device registers with the new server."
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

/// The message for a device that waits for an admin's approval.
pub(crate) fn pending(device: &str, user: &str, lang: Lang) -> String {
    match lang {
        Lang::De => {
            format!("Gerät {device} von {user} wartet auf die Freigabe durch den Administrator.")
        }
        Lang::En => {
            format!("Device {device} of {user} is waiting for an administrator's approval.")
        }
    }
}

/// The message for a server error, by its stable code where known, else the server's text.
pub(crate) fn server_error(body: &ErrorBody, lang: Lang) -> String {
    let m = &body.message;
    match (body.code.as_str(), lang) {
        ("unauthorized", Lang::De) => format!(
            "Der Server hat die Anmeldung abgelehnt (Token ungültig oder Gerät gesperrt): {m}"
        ),
        ("unauthorized", Lang::En) => format!("The server refused the login: {m}"),
        ("device_exists", Lang::De) => format!(
            "Dieses Gerät ist für den Benutzer bereits registriert, aber hier ist kein gültiges \
             Token gespeichert. Der Administrator muss das Gerät freigeben oder entfernen. ({m})"
        ),
        ("device_exists", Lang::En) => format!(
            "This device is already registered for the user, but no valid token is stored here. \
             An administrator must reset or remove the device. ({m})"
        ),
        ("device_pending", Lang::De) => {
            "Das Gerät wartet noch auf die Freigabe durch den Administrator.".to_owned()
        }
        ("device_pending", Lang::En) => {
            "The device is still waiting for an administrator's approval.".to_owned()
        }
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
