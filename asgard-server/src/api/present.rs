//! The messages of the API's error answers, in the language of the request (see
//! [`super::with_request_language`]). The `code` of an answer is stable and for programs; the message
//! is for the person at the agent.

use asgard_core::Lang;

use crate::api::ApiError;
use crate::service::bounds::{Exceeded, Measure};

/// The message of `e` for a reader of `l`.
pub(crate) fn error_message(e: &ApiError, l: Lang) -> String {
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
                "Anmeldung abgelehnt: Das Geräte-Token oder der Code ist unbekannt, ungültig oder abgelaufen. Ein zurückgesetztes Gerät meldet sich mit dem Code des Administrators an (asgard-agent login --code CODE).",
                "Login refused: the device token or the code is unknown, invalid or expired. A device that was reset logs in with the administrator's code (asgard-agent login --code CODE).",
            )
            .into(),
        ApiError::TokenRevoked => l
            .pick(
                "Der Administrator hat den Zugang dieses Geräts widerrufen: Sein Token gilt nicht mehr. Für einen neuen Zugang bitte den Administrator um ein neues Token oder einen Einmal-Code (asgard-agent login --code CODE).",
                "The administrator revoked this device's access: its token is no longer valid. To get back in, ask the administrator for a new token or a one-time code (asgard-agent login --code CODE).",
            )
            .into(),
        ApiError::UserDisabled => l
            .pick(
                "Der Administrator hat diesen Benutzer gesperrt: Seine Geräte können nicht sichern oder wiederherstellen, bis er wieder freigeschaltet ist.",
                "The administrator disabled this user: their devices cannot back up or restore until the user is enabled again.",
            )
            .into(),
        ApiError::DevicePending => l
            .pick(
                "Das Gerät ist noch nicht freigegeben. Ein bereits aktives Gerät desselben Benutzers gibt es mit dem Code frei, den „asgard-agent login“ auf diesem Gerät anzeigt (asgard-agent device approve CODE), oder der Administrator (asgard-server device approve BENUTZER GERÄT).",
                "The device is not approved yet. An already active device of the same user approves it with the code that \"asgard-agent login\" shows on this device (asgard-agent device approve CODE), or the administrator does (asgard-server device approve USER DEVICE).",
            )
            .into(),
        ApiError::ConfusableName(name) if de => format!(
            "Der Benutzername „{name}“ sieht einem bestehenden Benutzer zum Verwechseln ähnlich und wird deshalb nicht angelegt. Bitte einen anderen Namen wählen (Gerätekonfiguration) oder den Administrator fragen."
        ),
        ApiError::ConfusableName(name) => format!(
            "The user name \"{name}\" looks confusingly like an existing user and is therefore not created. Please choose another name or ask the administrator."
        ),
        ApiError::TooManyDevices(n) if de => format!(
            "Der Benutzer hat bereits {n} Geräte, mehr sind nicht erlaubt (devices_per_user). Bitte ein altes Gerät vom Administrator entfernen lassen."
        ),
        ApiError::TooManyDevices(n) => format!(
            "The user has {n} devices already; no more are allowed (devices_per_user). Please ask the administrator to remove an old device."
        ),
        ApiError::ApprovalCode => l
            .pick(
                "Der Freigabe-Code ist unbekannt, abgelaufen oder schon benutzt. Auf dem neuen Gerät „asgard-agent login“ aufrufen: Es zeigt den gültigen Code.",
                "The approval code is unknown, expired or already used. Run \"asgard-agent login\" on the new device: it shows the valid code.",
            )
            .into(),
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
        ApiError::MetricsDisabled => l
            .pick(
                "/metrics ist abgeschaltet. Zum Einschalten in der Server-Konfiguration metrics_token setzen (ein langes Geheimnis); der Scraper sendet es dann als „Authorization: Bearer TOKEN“.",
                "/metrics is turned off. To turn it on, set metrics_token in the server configuration (a long secret); the scraper then sends it as \"Authorization: Bearer TOKEN\".",
            )
            .into(),
        ApiError::Limit(e) => limit_message(e, l),
        ApiError::BodyTooLarge { limit, found } => match (found, de) {
            (Some(n), true) => format!(
                "Die Anfrage ist zu groß: {n} Bytes, erlaubt sind höchstens {limit} Bytes für diesen Endpunkt."
            ),
            (Some(n), false) => format!(
                "The request is too large: {n} bytes; this endpoint accepts at most {limit} bytes."
            ),
            (None, true) => format!(
                "Die Anfrage ist zu groß: Erlaubt sind höchstens {limit} Bytes für diesen Endpunkt."
            ),
            (None, false) => {
                format!("The request is too large: this endpoint accepts at most {limit} bytes.")
            }
        },
        ApiError::UnsupportedMediaType(t) if de => {
            format!("Falscher Inhaltstyp „{t}“: erwartet wird application/json.")
        }
        ApiError::UnsupportedMediaType(t) => {
            format!("Wrong content type \"{t}\": application/json is expected.")
        }
        ApiError::MethodNotAllowed(allow) if de => {
            format!("Diese Methode ist hier nicht erlaubt; erlaubt: {allow}.")
        }
        ApiError::MethodNotAllowed(allow) => {
            format!("This method is not allowed here; allowed: {allow}.")
        }
        ApiError::UnknownEndpoint(p) if de => format!("Unbekannter Pfad „{p}“."),
        ApiError::UnknownEndpoint(p) => format!("Unknown path \"{p}\"."),
        ApiError::TooManyRequests(s) if de => {
            format!("Zu viele Anfragen; bitte in {s} Sekunden erneut versuchen.")
        }
        ApiError::TooManyRequests(s) => {
            format!("Too many requests; please try again in {s} seconds.")
        }
        ApiError::RegistrationLimit(s) if de => format!(
            "Zu viele Registrierungen von dieser Adresse; bitte in {s} Sekunden erneut versuchen oder den Administrator fragen."
        ),
        ApiError::RegistrationLimit(s) => format!(
            "Too many registrations from this address; please try again in {s} seconds or ask the administrator."
        ),
        ApiError::Internal(_) => l
            .pick(
                "Interner Serverfehler; Einzelheiten stehen im Server-Protokoll.",
                "Internal server error; see the server log for details.",
            )
            .into(),
        ApiError::Busy => l
            .pick(
                "Der Server ist gerade ausgelastet (zu viele gleichzeitige Uploads). Bitte in einigen Sekunden erneut versuchen; der Agent wiederholt die Anfrage selbst.",
                "The server is busy right now (too many concurrent uploads). Please try again in a few seconds; the agent repeats the request by itself.",
            )
            .into(),
        ApiError::LengthRequired => l
            .pick(
                "Eine Upload-Anfrage muss ihre Länge angeben (Content-Length).",
                "An upload request must state its length (Content-Length).",
            )
            .into(),
        ApiError::TooManyParts(n) if de => {
            format!("Die Upload-Anfrage hat mehr als {n} Teile; bitte auf mehrere Anfragen verteilen.")
        }
        ApiError::TooManyParts(n) => {
            format!("The upload request has more than {n} parts; please split it into several requests.")
        }
        ApiError::WeakPassword(w) => crate::present::admins::weak_password(*w, l),
    }
}

/// The message of a request over a configured limit: the field, the size found, the limit and its
/// key in the configuration.
fn limit_message(e: &Exceeded, l: Lang) -> String {
    let Exceeded {
        field,
        key,
        limit,
        found,
        measure,
    } = e;
    match (measure, l) {
        (Measure::Items, Lang::De) => format!(
            "„{field}“ hat {found} Einträge; erlaubt sind höchstens {limit} pro Anfrage (limits.{key})."
        ),
        (Measure::Items, Lang::En) => format!(
            "\"{field}\" has {found} items; at most {limit} are allowed per request (limits.{key})."
        ),
        (Measure::Components, Lang::De) => format!(
            "„{field}“ hat {found} Bestandteile; erlaubt sind höchstens {limit} (limits.{key})."
        ),
        (Measure::Components, Lang::En) => format!(
            "\"{field}\" has {found} components; at most {limit} are allowed (limits.{key})."
        ),
        (Measure::Bytes | Measure::Utf16, _) if *key == "max_component_bytes" => {
            let unit = match (measure, l) {
                (Measure::Utf16, Lang::De) => "Zeichen",
                (Measure::Utf16, Lang::En) => "characters",
                (_, Lang::De) => "Bytes",
                (_, Lang::En) => "bytes",
            };
            match l {
                Lang::De => format!(
                    "Ein Name in „{field}“ ist {found} {unit} lang; erlaubt sind höchstens {limit} (limits.{key})."
                ),
                Lang::En => format!(
                    "A name in \"{field}\" is {found} {unit} long; at most {limit} are allowed (limits.{key})."
                ),
            }
        }
        (_, Lang::De) => format!(
            "„{field}“ ist {found} Bytes lang; erlaubt sind höchstens {limit} (limits.{key})."
        ),
        (_, Lang::En) => format!(
            "\"{field}\" is {found} bytes long; at most {limit} are allowed (limits.{key})."
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::{App, test, web};
    use asgard_core::protocol::ErrorBody;

    use super::*;
    use crate::api::{AppState, routes};
    use crate::config::Config;
    use crate::db::Db;
    use crate::store::LocalStore;

    /// The message of a `GET /api/list` without a token, asked with `accept` from a server
    /// configured for `configured`.
    async fn unauthorized_message(configured: Option<Lang>, accept: Option<&str>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let state = web::Data::new(AppState::new(
            Arc::new(Db::open(&dir.path().join("asgard.redb")).unwrap()),
            Arc::new(LocalStore::open(&dir.path().join("chunks")).unwrap()),
            Arc::new(Config {
                language: configured,
                ..Config::default()
            }),
        ));
        let app = test::init_service(App::new().app_data(state).configure(routes)).await;
        let mut req = test::TestRequest::get().uri("/api/list");
        if let Some(a) = accept {
            req = req.insert_header(("Accept-Language", a));
        }
        let resp = test::call_service(&app, req.to_request()).await;
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers().get("www-authenticate").unwrap(), "Bearer");
        let body: ErrorBody = test::read_body_json(resp).await;
        assert_eq!(body.code, "unauthorized");
        body.message
    }

    #[actix_web::test]
    async fn error_messages_take_the_language_of_the_request_else_the_config() {
        let de = "Anmeldung abgelehnt: Das Geräte-Token oder der Code ist unbekannt, ungültig oder abgelaufen. Ein zurückgesetztes Gerät meldet sich mit dem Code des Administrators an (asgard-agent login --code CODE).";
        let en = "Login refused: the device token or the code is unknown, invalid or expired. A device that was reset logs in with the administrator's code (asgard-agent login --code CODE).";
        assert_eq!(unauthorized_message(None, None).await, de);
        assert_eq!(unauthorized_message(Some(Lang::En), None).await, en);
        assert_eq!(
            unauthorized_message(Some(Lang::De), Some("en-US,en;q=0.9")).await,
            en
        );
        assert_eq!(
            unauthorized_message(Some(Lang::En), Some("de-CH, en;q=0.5")).await,
            de
        );
        // A language the server does not speak: the configured one.
        assert_eq!(
            unauthorized_message(Some(Lang::En), Some("fr-FR")).await,
            en
        );
    }

    #[actix_web::test]
    async fn extractor_errors_are_rendered_in_the_request_language_too() {
        let dir = tempfile::tempdir().unwrap();
        let state = web::Data::new(AppState::new(
            Arc::new(Db::open(&dir.path().join("asgard.redb")).unwrap()),
            Arc::new(LocalStore::open(&dir.path().join("chunks")).unwrap()),
            Arc::new(Config::default()),
        ));
        let app = test::init_service(App::new().app_data(state).configure(routes)).await;
        let req = test::TestRequest::post()
            .uri("/api/login")
            .insert_header(("Accept-Language", "en"))
            .insert_header(("Content-Type", "application/json"))
            .set_payload("{not json")
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), 400);
        let body: ErrorBody = test::read_body_json(resp).await;
        assert_eq!(body.code, "bad_request");
        assert!(body.message.starts_with("Bad request"), "{}", body.message);
    }
}
