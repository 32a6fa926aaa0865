//! Text for people, rendered from data in the language passed per call.
//!
//! Logic modules decide and count; the messages with arguments, the summaries and the reports are
//! written here, word for word in German (the default) and English. A module that needs a text
//! hands over the data (a path, a count, a report struct) and the reader's language, never a
//! process-wide switch. A fixed phrase without arguments may stay at its place of use as
//! `lang.pick("…", "…")`.
//!
//! The report structs are the data the texts are made from: [`asgard_core::protocol::RunSummary`]
//! for a backup (the same struct goes to the server and into `--json`), [`restore::RestoreCounts`]
//! for a restore, [`asgard_core::Plan`] for `plan`. `present` sits below the commands and above
//! the parts: it reads the error types of `config` and `runlock` and the scanner's rule-file name,
//! and nothing in it does I/O.
//!
//! - [`backup`]: the summary rows, the scan's root errors, the files cache notes.
//! - [`restore`]: per-file notes, refusals, chunk problems, the summary line.
//! - [`plan`]: the plan as text.
//! - [`session`]: login, certificate trust, the server's errors by code.
//! - [`schedule`]: what was installed and how to start it.
//! - [`errors`]: the config and lock errors the binary prints ([`errors::Describe`]).
//! - [`help`]: the command-line help in the reader's language.

pub(crate) mod backup;
pub(crate) mod errors;
pub mod help;
pub(crate) mod plan;
pub(crate) mod restore;
pub(crate) mod schedule;
pub(crate) mod session;
// Issue 14 (uauth).
pub(crate) mod web;

use std::path::Path;

use asgard_core::{Escaped, Lang};

/// A local path in a message: escaped like `list` shows names (see [`Escaped`]), so a name that
/// is not UTF-8 reads `caf\xe9`, not `caf�`.
pub(crate) fn shown(path: &Path) -> Escaped<'_> {
    Escaped::new(path.as_os_str().as_encoded_bytes())
}

/// The last line of `list`: how many paths it showed.
pub(crate) fn paths_count(count: usize, lang: Lang) -> String {
    let noun = match lang {
        Lang::De => plural(count as u64, "Pfad", "Pfade"),
        Lang::En => plural(count as u64, "path", "paths"),
    };
    format!("{count} {noun}.")
}

/// "1 Datei", "2 Dateien" / "1 file", "0 files".
pub(crate) fn files_count(count: u64, lang: Lang) -> String {
    let noun = match lang {
        Lang::De => plural(count, "Datei", "Dateien"),
        Lang::En => plural(count, "file", "files"),
    };
    format!("{count} {noun}")
}

/// The singular for exactly one, else the plural (German and English agree on this rule,
/// zero included: "0 Dateien", "0 files").
pub(crate) fn plural<'a>(count: u64, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn paths_in_messages_are_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"/home/a/caf\xe9.txt"));
        assert_eq!(shown(p).to_string(), "/home/a/caf\\xe9.txt");
        let msg = restore::conflict(p, Lang::De);
        assert!(msg.contains("caf\\xe9.txt"), "{msg}");
        let msg = backup::file_unreadable(p, "EACCES", Lang::En);
        assert!(msg.contains("caf\\xe9.txt"), "{msg}");
        let raw = asgard_core::RawPath(b"/x/\xff".to_vec());
        let msg = restore::nothing_backed_up(&raw, Lang::De);
        assert!(msg.contains("/x/\\xff"), "{msg}");
    }

    #[test]
    fn one_is_singular_in_both_languages() {
        assert_eq!(files_count(1, Lang::De), "1 Datei");
        assert_eq!(files_count(2, Lang::De), "2 Dateien");
        assert_eq!(files_count(0, Lang::De), "0 Dateien");
        assert_eq!(files_count(1, Lang::En), "1 file");
        assert_eq!(files_count(0, Lang::En), "0 files");
        assert_eq!(paths_count(1, Lang::De), "1 Pfad.");
        assert_eq!(paths_count(3, Lang::De), "3 Pfade.");
        assert_eq!(paths_count(1, Lang::En), "1 path.");
    }
}
