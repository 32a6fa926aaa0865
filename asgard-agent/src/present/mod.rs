//! Text for people, rendered from data in the language passed per call.
//!
//! Logic modules decide and count; the messages with arguments, the summaries and the reports are
//! written here, word for word in German (the default) and English. A module that needs a text
//! hands over the data (a path, a count, a report struct) and the reader's language, never a
//! process-wide switch. A fixed phrase without arguments may stay at its place of use as
//! `lang.pick("…", "…")`.

pub(crate) mod restore;
