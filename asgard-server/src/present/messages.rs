//! The command line's and the admin channel's own messages (reports are in [`super::reports`]).

use std::path::Path;

use asgard_core::Lang;

/// `Datenverzeichnis existiert nicht: <dir>`.
pub(crate) fn data_dir_missing(dir: &Path, lang: Lang) -> String {
    format!(
        "{} {}",
        lang.pick(
            "Datenverzeichnis existiert nicht:",
            "Data directory does not exist:"
        ),
        dir.display()
    )
}

/// The data directory cannot be created.
pub(crate) fn cannot_create_data_dir(dir: &Path, lang: Lang) -> String {
    format!(
        "{} {}",
        lang.pick(
            "Datenverzeichnis kann nicht angelegt werden:",
            "Cannot create data directory"
        ),
        dir.display()
    )
}

/// The metadata database cannot be opened.
pub(crate) fn cannot_open_db(path: &Path, lang: Lang) -> String {
    format!(
        "{} {}",
        lang.pick(
            "Metadaten-Datenbank kann nicht geöffnet werden:",
            "Cannot open metadata database"
        ),
        path.display()
    )
}

/// The metadata database was written by a newer server (schema version `found` > `known`).
pub(crate) fn db_schema_too_new(path: &Path, found: u64, known: u64, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Die Metadaten-Datenbank {} hat Schema-Version {found}, dieser Server kennt nur bis {known}: \
             sie wurde von einer neueren AsgardBackup-Version geschrieben. Starten Sie die neuere \
             Version (eine ältere könnte ihre Einträge falsch lesen).",
            path.display()
        ),
        Lang::En => format!(
            "The metadata database {} has schema version {found}, this server knows up to {known}: \
             it was written by a newer AsgardBackup version. Run the newer version (an older one \
             could misread its records).",
            path.display()
        ),
    }
}

/// The chunk store cannot be opened.
pub(crate) fn cannot_open_store(path: &Path, lang: Lang) -> String {
    format!(
        "{} {}",
        lang.pick(
            "Chunk-Speicher kann nicht geöffnet werden:",
            "Cannot open chunk store"
        ),
        path.display()
    )
}

/// Another process holds the data directory's lock.
pub(crate) fn data_dir_in_use(dir: &Path, lock_file: &Path, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Das Datenverzeichnis {} wird bereits von einem anderen AsgardBackup-Server benutzt (Sperrdatei {}).",
            dir.display(),
            lock_file.display()
        ),
        Lang::En => format!(
            "The data directory {} is already used by another AsgardBackup server (lock file {}).",
            dir.display(),
            lock_file.display()
        ),
    }
}

/// `db-restore` while the server (or a maintenance command) holds the data directory.
pub(crate) fn stop_server_before_db_restore(dir: &Path, lang: Lang) -> String {
    format!(
        "{} {}",
        lang.pick(
            "Der Server läuft noch (oder ein Wartungsbefehl): vor dem Zurückspielen der Datenbank den Server beenden. Datenverzeichnis:",
            "The server is still running (or a maintenance command): stop the server before restoring the database. Data directory:"
        ),
        dir.display()
    )
}

/// A path on the command line that cannot be made absolute.
pub(crate) fn invalid_path(p: &Path, lang: Lang) -> String {
    format!(
        "{} {}",
        lang.pick("Ungültiger Pfad:", "Invalid path:"),
        p.display()
    )
}

/// The address to listen on cannot be bound.
pub(crate) fn cannot_bind(listen: &str, lang: Lang) -> String {
    format!(
        "{} {listen}",
        lang.pick("Adresse kann nicht gebunden werden:", "Cannot bind address")
    )
}

/// The two lines `serve` prints once it listens.
pub(crate) fn server_running(addr: &std::net::SocketAddr, fingerprint: &str, lang: Lang) -> String {
    format!(
        "{}: https://{addr}\n{}: {fingerprint}\n",
        lang.pick("AsgardBackup-Server läuft", "AsgardBackup server running"),
        lang.pick(
            "Zertifikat-Fingerabdruck (SHA-256)",
            "Certificate fingerprint (SHA-256)"
        )
    )
}

/// `serve` listens beyond loopback with `registration: open` and no enrollment key.
pub(crate) fn open_registration_exposed(addr: &std::net::SocketAddr, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "WARNUNG: Der Server lauscht auf {addr} (nicht nur lokal) mit „registration: open“ und ohne enrollment_key. \
             Jeder, der den Server erreicht, kann Benutzer anlegen und erfährt, welche Benutzernamen es schon gibt \
             (weitere Geräte bestehender Benutzer warten aber auf Freigabe). \
             Setzen Sie einen enrollment_key oder „registration: approve“ in der Konfiguration."
        ),
        Lang::En => format!(
            "WARNING: the server listens on {addr} (not only locally) with \"registration: open\" and no enrollment_key. \
             Anyone who reaches the server can create users and learns which user names exist \
             (further devices of existing users still wait for approval). \
             Set an enrollment_key or \"registration: approve\" in the configuration."
        ),
    }
}

/// The admin channel got a line that is not complete (or longer than allowed).
pub(crate) fn channel_request_incomplete(lang: Lang) -> &'static str {
    lang.pick(
        "Anfrage unvollständig oder zu lang (eine JSON-Zeile erwartet)",
        "request incomplete or too long (one JSON line expected)",
    )
}

/// The admin channel got a request of another protocol version.
pub(crate) fn channel_version(version: u32, server: u32, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Protokollversion {version} des Verwaltungskanals wird nicht unterstützt (Server: {server})."
        ),
        Lang::En => {
            format!("Admin channel protocol version {version} is not supported (server: {server}).")
        }
    }
}

/// The data directory is locked but nobody answers on its admin channel.
pub(crate) fn channel_unanswered(dir: &Path, socket: &Path, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Das Datenverzeichnis {} ist gesperrt (ein laufender Server oder ein anderer Wartungsbefehl), aber der Verwaltungskanal {} antwortet nicht",
            dir.display(),
            socket.display()
        ),
        Lang::En => format!(
            "The data directory {} is locked (a running server or another maintenance command), but the admin channel {} does not answer",
            dir.display(),
            socket.display()
        ),
    }
}

/// `user delete NAME --confirm OTHER`: the confirmation does not repeat the name.
pub(crate) fn confirm_mismatch(user: &str, typed: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Bestätigung stimmt nicht: „{typed}“ ist nicht „{user}“. Zum Löschen den Benutzernamen mit --confirm genau wiederholen."
        ),
        Lang::En => format!(
            "Confirmation does not match: \"{typed}\" is not \"{user}\". To delete, repeat the user name exactly with --confirm."
        ),
    }
}

/// A maintenance job was asked to start while another one runs.
pub(crate) fn job_already_running(name: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Es läuft bereits eine Wartungsaufgabe ({name}); bitte warten, bis sie fertig ist."
        ),
        Lang::En => {
            format!("A maintenance job is running already ({name}); please wait until it is done.")
        }
    }
}
