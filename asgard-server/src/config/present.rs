//! The configuration's messages that are more than a fixed phrase (the others use `Lang::pick`
//! where they are raised).

use asgard_core::Lang;

/// A setting given both as an old flat key and in its section.
pub(super) fn key_set_twice(key: &str, lang: Lang) -> String {
    match lang {
        Lang::De => {
            format!("{key} und store.{key} sind beide gesetzt; bitte nur store.{key} verwenden")
        }
        Lang::En => format!("both {key} and store.{key} are set; use only store.{key}"),
    }
}
