//! The texts of `restore`: per-file notes, refusals, chunk problems and the summary.

use std::path::{Path, PathBuf};

use asgard_core::fmt::bytes_short;
use asgard_core::{ChunkId, Lang, RawPath};

/// What a restore did, counted per file: the summary line is rendered from it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RestoreCounts {
    pub(crate) restored: u64,
    pub(crate) bytes: u64,
    /// Folders created or given their metadata.
    pub(crate) folders: u64,
    pub(crate) up_to_date: u64,
    pub(crate) deleted: u64,
    pub(crate) conflicts: u64,
    pub(crate) errors: u64,
}

/// The text summary after a restore.
pub(crate) fn summary(c: &RestoreCounts, lang: Lang) -> String {
    let folders = match (c.folders, lang) {
        (0, _) => String::new(),
        (n, Lang::De) => format!(", {n} Ordner"),
        (1, Lang::En) => ", 1 folder".to_owned(),
        (n, Lang::En) => format!(", {n} folders"),
    };
    match lang {
        Lang::De => format!(
            "Wiederhergestellt: {} ({}){folders}; bereits aktuell: {}; zu diesem Zeitpunkt \
             gelöscht: {}; Konflikte: {}; Fehler: {}",
            super::files_count(c.restored, lang),
            bytes_short(c.bytes),
            c.up_to_date,
            c.deleted,
            c.conflicts,
            c.errors
        ),
        Lang::En => format!(
            "Restored: {} ({}){folders}; already up to date: {}; deleted at that time: {}; \
             conflicts: {}; errors: {}",
            super::files_count(c.restored, lang),
            bytes_short(c.bytes),
            c.up_to_date,
            c.deleted,
            c.conflicts,
            c.errors
        ),
    }
}

/// `--at` could not be parsed.
pub(crate) fn invalid_at(text: &str, lang: Lang) -> String {
    format!(
        "{}: {text}",
        lang.pick(
            "Ungültige Zeitangabe für --at (RFC 3339 oder JJJJ-MM-TT HH:MM[:SS[.ffffff]])",
            "Invalid time for --at (RFC 3339 or YYYY-MM-DD HH:MM[:SS[.ffffff]])"
        )
    )
}

/// `--version ID` names no version under the root.
pub(crate) fn version_not_found(id: u64, root: &RawPath, lang: Lang) -> String {
    match lang {
        Lang::De => format!("Version {id} nicht gefunden unter {}", root.escaped()),
        Lang::En => format!("Version {id} not found under {}", root.escaped()),
    }
}

/// Nothing was backed up under the root (at the time asked for).
pub(crate) fn nothing_backed_up(root: &RawPath, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Unter {} wurde (zu diesem Zeitpunkt) nichts gesichert.",
            root.escaped()
        ),
        Lang::En => format!(
            "Nothing was backed up under {} (at that time).",
            root.escaped()
        ),
    }
}

/// The chosen version of a path is a deletion marker.
pub(crate) fn deleted_at_that_time(path: &RawPath, lang: Lang) -> String {
    format!(
        "{}: {}",
        lang.pick(
            "Zu diesem Zeitpunkt gelöscht, nicht wiederhergestellt",
            "Deleted at that time, not restored"
        ),
        path.escaped()
    )
}

/// A path from the server that would leave the target.
pub(crate) fn path_refused(reason: &str, lang: Lang) -> String {
    format!(
        "{}: {reason}",
        lang.pick("Fehler: Pfad abgelehnt", "Error: path refused")
    )
}

/// The file at the destination is the version already.
pub(crate) fn up_to_date(dest: &Path, lang: Lang) -> String {
    format!(
        "{}: {}",
        lang.pick("Bereits aktuell", "Already up to date"),
        super::shown(dest)
    )
}

/// A differing file is in the way and `--overwrite` is off.
pub(crate) fn conflict(dest: &Path, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Bestehende Datei wird nicht überschrieben: {} (mit --overwrite ersetzen)",
            super::shown(dest)
        ),
        Lang::En => format!(
            "Existing file is not overwritten: {} (replace with --overwrite)",
            super::shown(dest)
        ),
    }
}

/// A file that could not be restored.
pub(crate) fn file_error(dest: &Path, error: &str, lang: Lang) -> String {
    format!(
        "{}: {}: {error}",
        lang.pick("Fehler", "Error"),
        super::shown(dest)
    )
}

/// The final sync of the restored entries failed: they are in place but may not survive a
/// crash of the machine.
pub(crate) fn not_durable(e: &std::io::Error, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Die wiederhergestellten Einträge konnten nicht auf den Datenträger geschrieben werden \
             (bei einem Absturz könnten sie fehlen): {e}"
        ),
        Lang::En => format!(
            "The restored entries could not be flushed to the disk (they might be missing after \
             a crash): {e}"
        ),
    }
}

/// Why a version's chunk list cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unfit {
    /// The chunk lengths do not add up to the version's size.
    SizeMismatch,
    /// The server has no chunk list for the version.
    NotFound,
}

/// A version whose chunk list cannot be used (`id`: the version).
pub(crate) fn unfit(why: Unfit, id: u64, lang: Lang) -> String {
    let problem = match why {
        Unfit::SizeMismatch => lang.pick(
            "Die Blockliste der Version passt nicht zu ihrer Größe",
            "The version's chunk list does not match its size",
        ),
        Unfit::NotFound => lang.pick(
            "Version auf dem Server nicht (mehr) gefunden",
            "Version not found on the server (any more)",
        ),
    };
    format!("{problem} ({id})")
}

/// A chunk that could not be obtained.
pub(crate) fn chunk_not_received(id: &ChunkId, reason: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!("Datenblock {id} nicht erhalten: {reason}"),
        Lang::En => format!("chunk {id} not received: {reason}"),
    }
}

/// A chunk that arrived but does not decode to its id.
pub(crate) fn chunk_damaged(id: &ChunkId, error: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!("Datenblock {id} ist beschädigt: {error}"),
        Lang::En => format!("chunk {id} is damaged: {error}"),
    }
}

/// A restored file whose size or hash differs from the version: it replaces nothing.
pub(crate) fn content_mismatch(size: u64, expected: u64, got: &ChunkId, lang: Lang) -> String {
    format!(
        "{} ({} {size}/{expected}, blake3 {got})",
        lang.pick(
            "Die empfangenen Daten stimmen nicht mit der Version überein; nichts geschrieben",
            "The received data does not match the version; nothing written"
        ),
        lang.pick("Größe", "size"),
    )
}

/// A folder is where a file or link is to go.
pub(crate) fn folder_in_the_way(lang: Lang) -> &'static str {
    lang.pick("An der Stelle liegt ein Ordner", "A folder is in the way")
}

/// A symbolic link could not be created.
pub(crate) fn symlink_failed(dest: &Path, lang: Lang) -> String {
    format!(
        "{} {}",
        lang.pick(
            "Symbolische Verknüpfung kann nicht angelegt werden (unter Windows sind dafür das \
             Recht „Symbolische Verknüpfungen erstellen“ oder der Entwicklermodus nötig):",
            "Cannot create the symbolic link (on Windows this needs the \"Create symbolic \
             links\" right or developer mode):"
        ),
        super::shown(dest)
    )
}

/// A symbolic link lies where the backup has a folder on the way to `dest`: it is not followed,
/// `dest` is skipped.
pub(crate) fn link_in_the_way(link: &Path, dest: &Path, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Warnung: {} ist eine symbolische Verknüpfung, wo die Sicherung einen Ordner hat; \
             ihr wird nicht gefolgt, {} wird übersprungen (mit --overwrite wird die Verknüpfung \
             durch den Ordner ersetzt)",
            super::shown(link),
            super::shown(dest)
        ),
        Lang::En => format!(
            "Warning: {} is a symbolic link where the backup has a folder; it is not followed, \
             {} is skipped (--overwrite replaces the link with the folder)",
            super::shown(link),
            super::shown(dest)
        ),
    }
}

/// Something other than a folder lies where the backup has a folder.
pub(crate) fn not_a_folder(path: &Path, lang: Lang) -> String {
    format!(
        "{}: {}",
        lang.pick(
            "Dort liegt kein Ordner, wo die Sicherung einen hat",
            "Not a folder where the backup has one"
        ),
        super::shown(path)
    )
}

/// A destination that does not lie below the target folder (refused).
pub(crate) fn outside_target(path: &Path, lang: Lang) -> String {
    format!(
        "{}: {}",
        lang.pick(
            "Liegt nicht im Zielordner, abgelehnt",
            "Not within the target folder, refused"
        ),
        super::shown(path)
    )
}

/// What metadata of a restored entry could not be set.
#[cfg_attr(
    windows,
    allow(dead_code, reason = "Windows restores no owners or xattrs")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Part {
    Owner,
    Xattr,
    Mode,
    Time,
}

/// Why it could not be set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Why {
    /// EPERM, EACCES: the restoring user may not.
    NotPermitted,
    /// ENOTSUP: the target file system does not support it.
    NotSupported,
    /// Anything else (the system's message).
    Other(String),
}

/// One kind of metadata failure: how often, and the first entry it happened to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Noted {
    pub(crate) count: u64,
    pub(crate) example: PathBuf,
    /// The attribute's name for [`Part::Xattr`].
    pub(crate) detail: Option<String>,
}

/// Metadata that could not be set on some restored entries (one line per kind of failure, with
/// a count and the first entry it happened to): a warning, not an error.
pub(crate) fn metadata_not_set(part: Part, why: &Why, n: &Noted, lang: Lang) -> String {
    let what = match (part, &n.detail) {
        (Part::Owner, _) => lang.pick("Besitzer", "owner").to_owned(),
        (Part::Xattr, Some(name)) => match lang {
            Lang::De => format!("erweiterte Attribute (z. B. {name})"),
            Lang::En => format!("extended attributes (e.g. {name})"),
        },
        (Part::Xattr, None) => lang
            .pick("erweiterte Attribute", "extended attributes")
            .to_owned(),
        (Part::Mode, _) => lang.pick("Zugriffsrechte", "permissions").to_owned(),
        (Part::Time, _) => lang.pick("Zeitstempel", "times").to_owned(),
    };
    let why = match why {
        Why::NotPermitted => lang.pick("nicht erlaubt", "not permitted").to_owned(),
        Why::NotSupported => lang
            .pick(
                "vom Dateisystem des Ziels nicht unterstützt",
                "not supported by the target's file system",
            )
            .to_owned(),
        Why::Other(e) => e.clone(),
    };
    match lang {
        Lang::De => format!(
            "Warnung: {what} konnten bei {} Einträgen nicht gesetzt werden ({why}), z. B. {}",
            n.count,
            n.example.display()
        ),
        Lang::En => format!(
            "Warning: {what} could not be set on {} entries ({why}), e.g. {}",
            n.count,
            n.example.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary line, word for word in both languages.
    #[test]
    fn summary_in_both_languages() {
        let c = RestoreCounts {
            restored: 2,
            bytes: 1536,
            folders: 0,
            up_to_date: 1,
            deleted: 0,
            conflicts: 3,
            errors: 4,
        };
        assert_eq!(
            summary(&c, Lang::De),
            "Wiederhergestellt: 2 Dateien (1.5 KiB); bereits aktuell: 1; zu diesem Zeitpunkt \
             gelöscht: 0; Konflikte: 3; Fehler: 4"
        );
        assert_eq!(
            summary(&c, Lang::En),
            "Restored: 2 files (1.5 KiB); already up to date: 1; deleted at that time: 0; \
             conflicts: 3; errors: 4"
        );
        assert_eq!(
            conflict(Path::new("/t/a"), Lang::De),
            "Bestehende Datei wird nicht überschrieben: /t/a (mit --overwrite ersetzen)"
        );
    }
}
