//! The texts of `backup`: the summary, the scan's notes and warnings, the files cache.

use std::fmt::Write as _;
use std::path::Path;

use asgard_core::Lang;
use asgard_core::fmt::bytes_short;
use asgard_core::meta::{MAX_XATTR_NAME, MAX_XATTR_TOTAL, MAX_XATTR_VALUE, MAX_XATTRS, MetaError};
use asgard_core::protocol::RunSummary;
use serde::Serialize;

use crate::fsmeta::XattrsDropped;

/// Counts of a run beyond the [`RunSummary`] (whose stored form on the server stays as it is):
/// folders, counted apart from files, and metadata-only versions. `backup --json` prints them
/// next to the summary's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct FolderCounts {
    /// Folders found (roots included).
    pub(crate) folders_seen: u64,
    /// Folders that got a version (new, or changed mode, owner, time or attributes).
    pub(crate) folders_stored: u64,
    /// Deletion markers of folders.
    pub(crate) folders_deleted: u64,
    /// Files and links whose content was unchanged but whose metadata (mode, owner, times,
    /// attributes) got a version of its own; also counted as unchanged.
    pub(crate) files_metadata_only: u64,
}

/// The text summary after a backup: one row per count, then the files that could not be read.
pub(crate) fn summary(
    s: &RunSummary,
    folders: &FolderCounts,
    unreadable: &[String],
    lang: Lang,
) -> String {
    let folder_row = match lang {
        Lang::De => format!(
            "{} ({} gesichert, {} gelöscht)",
            folders.folders_seen, folders.folders_stored, folders.folders_deleted
        ),
        Lang::En => format!(
            "{} ({} stored, {} deleted)",
            folders.folders_seen, folders.folders_stored, folders.folders_deleted
        ),
    };
    let rows: [(&str, &str, String); 12] = [
        ("Dateien gesehen", "files seen", s.files_seen.to_string()),
        ("neu", "new", s.files_new.to_string()),
        ("geändert", "changed", s.files_changed.to_string()),
        ("unverändert", "unchanged", s.files_unchanged.to_string()),
        (
            "nur Metadaten neu",
            "metadata only",
            folders.files_metadata_only.to_string(),
        ),
        ("gelöscht", "deleted", s.files_deleted.to_string()),
        ("übersprungen", "skipped", s.files_skipped.to_string()),
        ("Ordner", "folders", folder_row),
        ("gelesen", "read", bytes_short(s.bytes_read)),
        ("gesendet", "sent", bytes_short(s.bytes_sent)),
        ("neu gespeichert", "newly stored", bytes_short(s.bytes_new)),
        ("Dauer", "duration", format!("{:.1} s", s.duration_s)),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        lang.pick("Sicherung abgeschlossen:", "Backup finished:")
    );
    for (de, en, value) in rows {
        let _ = writeln!(out, "  {:<18} {value}", format!("{}:", lang.pick(de, en)));
    }
    if !unreadable.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            lang.pick(
                "Nicht lesbar (nicht gesichert):",
                "Unreadable (not backed up):"
            )
        );
        for u in unreadable {
            let _ = writeln!(out, "  {u}");
        }
    }
    out
}

/// The server found damaged data: `files` paths are read again (`more`: further ones follow in
/// later runs).
pub(crate) fn reread_note(files: usize, more: bool, lang: Lang) -> String {
    let more = if more {
        lang.pick(
            " (weitere folgen in späteren Läufen)",
            " (more in later runs)",
        )
    } else {
        ""
    };
    let n = super::files_count(files as u64, lang);
    let one = files == 1;
    match lang {
        Lang::De => format!(
            "Hinweis: Der Server hat beschädigte Daten gefunden; {n} {} neu gelesen, um sie \
             zu reparieren{more}.",
            if one { "wird" } else { "werden" }
        ),
        Lang::En => format!(
            "Note: the server found damaged data; {n} {} read again to repair it{more}.",
            if one { "is" } else { "are" }
        ),
    }
}

/// The files cache cannot be used in this run.
pub(crate) fn cache_unusable(error: &str, lang: Lang) -> String {
    format!(
        "{}: {error}",
        lang.pick(
            "Warnung: Dateicache nicht nutzbar, alle Dateien werden gelesen",
            "Warning: files cache unusable, every file is read"
        )
    )
}

/// A root of the backup is missing or cannot be read: nothing below it is marked deleted.
pub(crate) fn root_unreadable(path: &Path, missing: bool, error: &str, lang: Lang) -> String {
    match (lang, missing) {
        (Lang::De, true) => format!(
            "Zu sichernder Pfad nicht gefunden (nichts als gelöscht markiert): {}",
            super::shown(path)
        ),
        (Lang::En, true) => format!(
            "Path to back up not found (nothing marked deleted): {}",
            super::shown(path)
        ),
        (Lang::De, false) => format!(
            "Zu sichernder Pfad nicht lesbar (nichts als gelöscht markiert): {} ({error})",
            super::shown(path)
        ),
        (Lang::En, false) => format!(
            "Path to back up cannot be read (nothing marked deleted): {} ({error})",
            super::shown(path)
        ),
    }
}

/// A warning line: `Warnung: {message}`.
pub(crate) fn warning(message: &str, lang: Lang) -> String {
    format!("{}: {message}", lang.pick("Warnung", "Warning"))
}

/// The scan met something that is not a regular file, a link or a folder (`reason`: its kind).
pub(crate) fn skipped_not_regular(path: &Path, reason: &str, lang: Lang) -> String {
    format!(
        "{} ({reason}): {}",
        lang.pick(
            "Hinweis: übersprungen, keine normale Datei",
            "Note: skipped, not a regular file"
        ),
        super::shown(path)
    )
}

/// A folder below a root cannot be read: nothing below it is marked deleted.
pub(crate) fn folder_unreadable(error: &str, lang: Lang) -> String {
    format!(
        "{}: {error}",
        lang.pick(
            "Warnung: Ordner kann nicht gelesen werden",
            "Warning: cannot read folder"
        )
    )
}

/// A file kept changing while it was read (twice): skipped, never committed torn.
pub(crate) fn changed_while_read(path: &Path, lang: Lang) -> String {
    format!(
        "{}: {}",
        lang.pick(
            "Datei ändert sich beim Lesen, übersprungen",
            "File changes while being read, skipped"
        ),
        super::shown(path)
    )
}

/// An entry's extended attributes were left out (`why`); the entry itself is backed up.
pub(crate) fn xattrs_dropped(path: &Path, why: &XattrsDropped, lang: Lang) -> String {
    let reason = match why {
        XattrsDropped::Bounds(e) => bounds_reason(*e, lang),
        XattrsDropped::Io(e) => e.to_string(),
    };
    format!(
        "{} ({reason}): {}",
        lang.pick(
            "Erweiterte Attribute nicht gesichert",
            "Extended attributes not backed up"
        ),
        path.display()
    )
}

/// Which bound of `asgard_core::meta` an entry's attributes exceed, for people.
fn bounds_reason(e: MetaError, lang: Lang) -> String {
    match (e, lang) {
        (MetaError::TooManyXattrs, Lang::De) => format!("mehr als {MAX_XATTRS} Attribute"),
        (MetaError::TooManyXattrs, Lang::En) => format!("more than {MAX_XATTRS} attributes"),
        (MetaError::XattrNameTooLong, Lang::De) => {
            format!("ein Name länger als {MAX_XATTR_NAME} Bytes")
        }
        (MetaError::XattrNameTooLong, Lang::En) => {
            format!("a name longer than {MAX_XATTR_NAME} bytes")
        }
        (MetaError::XattrValueTooLong, Lang::De) => {
            format!(
                "ein Wert größer als {}",
                bytes_short(MAX_XATTR_VALUE as u64)
            )
        }
        (MetaError::XattrValueTooLong, Lang::En) => {
            format!(
                "a value larger than {}",
                bytes_short(MAX_XATTR_VALUE as u64)
            )
        }
        (MetaError::XattrsTooLarge, Lang::De) => {
            format!(
                "zusammen größer als {}",
                bytes_short(MAX_XATTR_TOTAL as u64)
            )
        }
        (MetaError::XattrsTooLarge, Lang::En) => {
            format!(
                "larger than {} together",
                bytes_short(MAX_XATTR_TOTAL as u64)
            )
        }
        (other, _) => other.to_string(),
    }
}

/// A file cannot be read (`error`): skipped, reported as unreadable.
pub(crate) fn file_unreadable(path: &Path, error: &str, lang: Lang) -> String {
    format!(
        "{} {} ({error})",
        lang.pick(
            "Warnung: Datei kann nicht gelesen werden:",
            "Warning: cannot read file:"
        ),
        super::shown(path)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary as the user sees it, row by row.
    #[test]
    fn summary_rows_in_both_languages() {
        let s = RunSummary {
            files_seen: 3,
            files_new: 1,
            files_changed: 1,
            files_unchanged: 1,
            files_deleted: 0,
            files_skipped: 0,
            bytes_read: 1536,
            bytes_sent: 0,
            bytes_new: 3 << 20,
            versions_created: 2,
            duration_s: 1.26,
        };
        let folders = FolderCounts {
            folders_seen: 4,
            folders_stored: 2,
            folders_deleted: 1,
            files_metadata_only: 5,
        };
        let de = summary(&s, &folders, &["/a (kaputt)".to_owned()], Lang::De);
        assert!(
            de.starts_with("Sicherung abgeschlossen:\n  Dateien gesehen:   3\n"),
            "{de}"
        );
        assert!(de.contains("\n  gelesen:           1.5 KiB\n"), "{de}");
        assert!(
            de.contains("\n  Ordner:            4 (2 gesichert, 1 gelöscht)\n"),
            "{de}"
        );
        assert!(de.contains("\n  nur Metadaten neu: 5\n"), "{de}");
        assert!(de.contains("\n  neu gespeichert:   3.0 MiB\n"), "{de}");
        assert!(de.contains("\n  Dauer:             1.3 s\n"), "{de}");
        assert!(
            de.ends_with("Nicht lesbar (nicht gesichert):\n  /a (kaputt)\n"),
            "{de}"
        );
        let en = summary(&s, &folders, &[], Lang::En);
        assert!(
            en.contains("\n  folders:           4 (2 stored, 1 deleted)\n"),
            "{en}"
        );
        assert!(
            en.starts_with("Backup finished:\n  files seen:        3\n"),
            "{en}"
        );
        assert!(en.ends_with("  duration:          1.3 s\n"), "{en}");
    }

    #[test]
    fn xattrs_dropped_says_why_in_both_languages() {
        use asgard_core::meta::MetaError;
        let p = Path::new("/home/anna/a.txt");
        let why = XattrsDropped::Bounds(MetaError::XattrsTooLarge);
        assert_eq!(
            xattrs_dropped(p, &why, Lang::De),
            "Erweiterte Attribute nicht gesichert (zusammen größer als 128.0 KiB): /home/anna/a.txt"
        );
        let why = XattrsDropped::Bounds(MetaError::TooManyXattrs);
        assert_eq!(
            xattrs_dropped(p, &why, Lang::En),
            "Extended attributes not backed up (more than 64 attributes): /home/anna/a.txt"
        );
    }

    /// What `human_bytes` showed, `bytes_short` shows (the summaries' sizes stay as they were).
    #[test]
    fn bytes_for_people() {
        assert_eq!(bytes_short(0), "0 B");
        assert_eq!(bytes_short(1536), "1.5 KiB");
        assert_eq!(bytes_short(3 * 1024 * 1024), "3.0 MiB");
    }
}
