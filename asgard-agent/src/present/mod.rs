//! Text for people, rendered from data in the language passed per call.
//!
//! Logic modules decide and count; the messages with arguments, the summaries and the reports are
//! written here, word for word in German (the default) and English. A module that needs a text
//! hands over the data (a path, a count, a report struct) and the reader's language, never a
//! process-wide switch. A fixed phrase without arguments may stay at its place of use as
//! `lang.pick("…", "…")`.

pub(crate) mod backup;
pub(crate) mod errors;
pub(crate) mod plan;
pub(crate) mod restore;
pub(crate) mod schedule;
pub(crate) mod session;

use asgard_core::Lang;

/// The last line of `list`: how many paths it showed.
pub(crate) fn paths_count(count: usize, lang: Lang) -> String {
    match lang {
        Lang::De => format!("{count} Pfade."),
        Lang::En => format!("{count} paths."),
    }
}
