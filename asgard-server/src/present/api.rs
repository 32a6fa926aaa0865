//! The messages of the API's error answers, in the language of the request (see
//! `api::with_request_language`). The `code` of an answer is stable and for programs; the message
//! is for the person at the agent.

use asgard_core::Lang;

use crate::api::ApiError;

/// The message of `e` for a reader of `l`.
pub fn error_message(e: &ApiError, l: Lang) -> String {
    let de = l == Lang::De;
    match e {
        ApiError::BadRequest(d) => {
            format!("{}: {d}", l.pick("Ungültige Anfrage", "Bad request"))
        }
        ApiError::ProtocolVersion(v) => match l {
            Lang::De => format!(
                "Protokollversion {v} wird nicht unterstützt (Server: {}). Bitte Agent und Server auf denselben Stand bringen.",
                asgard_core::protocol::PROTOCOL_VERSION
            ),
            Lang::En => format!(
                "Protocol version {v} is not supported (server: {}). Please update agent and server to matching versions.",
                asgard_core::protocol::PROTOCOL_VERSION
            ),
        },
        ApiError::Unauthorized => l
            .pick(
                "Unbekanntes oder ungültiges Geräte-Token.",
                "Unknown or invalid device token.",
            )
            .into(),
        ApiError::DevicePending => l
            .pick(
                "Das Gerät wartet auf die Freigabe durch den Administrator (asgard-server device approve).",
                "The device is waiting for approval by the administrator (asgard-server device approve).",
            )
            .into(),
        ApiError::DeviceExists { user, device } if de => format!(
            "Das Gerät „{device}“ von Benutzer „{user}“ ist bereits registriert. Melden Sie sich mit dem Geräte-Token an oder lassen Sie das Gerät vom Administrator zurücksetzen (asgard-server device reset {user} {device})."
        ),
        ApiError::DeviceExists { user, device } => format!(
            "The device \"{device}\" of user \"{user}\" is already registered. Log in with the device token or ask the administrator to reset the device (asgard-server device reset {user} {device})."
        ),
        ApiError::EnrollmentKey => l
            .pick(
                "Der Registrierungsschlüssel fehlt oder ist falsch.",
                "The enrollment key is missing or wrong.",
            )
            .into(),
        ApiError::RegistrationClosed => l
            .pick(
                "Die Registrierung neuer Geräte ist auf diesem Server geschlossen.",
                "Registration of new devices is closed on this server.",
            )
            .into(),
        ApiError::BadChunkId(t) if de => format!("Ungültige Chunk-ID „{t}“."),
        ApiError::BadChunkId(t) => format!("Invalid chunk id \"{t}\"."),
        ApiError::ChunkTooLarge(id) if de => format!("Chunk {id} ist zu groß."),
        ApiError::ChunkTooLarge(id) => format!("Chunk {id} is too large."),
        ApiError::UploadTooLarge(max) if de => {
            format!("Die Upload-Anfrage ist größer als {max} Bytes.")
        }
        ApiError::UploadTooLarge(max) => format!("The upload request exceeds {max} bytes."),
        ApiError::ChunkHashMismatch(id) if de => {
            format!("Der Inhalt von Chunk {id} passt nicht zu seiner ID.")
        }
        ApiError::ChunkHashMismatch(id) => {
            format!("The content of chunk {id} does not match its id.")
        }
        ApiError::ChunkCorrupt(id, e) if de => format!("Chunk {id} ist beschädigt: {e}"),
        ApiError::ChunkCorrupt(id, e) => format!("Chunk {id} is corrupt: {e}"),
        ApiError::BadEntry(d) if de => format!("Ungültiger Eintrag: {d}"),
        ApiError::BadEntry(d) => format!("Invalid entry: {d}"),
        ApiError::MissingChunks(m) if de => format!(
            "{} Chunks fehlen auf dem Server; bitte zuerst hochladen.",
            m.len()
        ),
        ApiError::MissingChunks(m) => {
            format!("{} chunks are missing on the server; upload them first.", m.len())
        }
        ApiError::UnknownDevice(d) if de => format!("Unbekanntes Gerät „{d}“."),
        ApiError::UnknownDevice(d) => format!("Unknown device \"{d}\"."),
        ApiError::NotFound => l.pick("Nicht gefunden.", "Not found.").into(),
        ApiError::Deleted => l
            .pick(
                "Die Datei war zu diesem Zeitpunkt gelöscht.",
                "The file was deleted at that time.",
            )
            .into(),
        ApiError::RangeNotSatisfiable(size) if de => {
            format!("Der angeforderte Bereich liegt außerhalb der Datei ({size} Bytes).")
        }
        ApiError::RangeNotSatisfiable(size) => {
            format!("The requested range is outside the file ({size} bytes).")
        }
        ApiError::Internal(_) => l
            .pick(
                "Interner Serverfehler; Einzelheiten stehen im Server-Protokoll.",
                "Internal server error; see the server log for details.",
            )
            .into(),
    }
}
