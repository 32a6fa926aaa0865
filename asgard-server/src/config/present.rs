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

/// A limit of the `limits:` section below its least sensible value.
pub(super) fn limit_at_least(key: &str, min: u32, lang: Lang) -> String {
    match lang {
        Lang::De => format!("limits.{key} muss mindestens {min} sein"),
        Lang::En => format!("limits.{key} must be at least {min}"),
    }
}

/// A limit of the `limits:` section above the protocol's own bound.
pub(super) fn limit_at_most(key: &str, max: usize, lang: Lang) -> String {
    match lang {
        Lang::De => format!("limits.{key} darf höchstens {max} sein (die Grenze des Protokolls)"),
        Lang::En => format!("limits.{key} must be at most {max} (the protocol's bound)"),
    }
}
