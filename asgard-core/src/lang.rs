//! Language of user-facing text: German by default, English selectable.

use serde::{Deserialize, Serialize};

/// The language of messages shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// German, the default.
    #[default]
    De,
    /// English.
    En,
}

impl Lang {
    /// The language from an explicit setting (config), else from the `LANG` value, else German.
    /// Only an explicit English choice (`en`, `en_US.UTF-8`, ...) selects English.
    pub fn resolve(configured: Option<Lang>, lang_env: Option<&str>) -> Lang {
        if let Some(l) = configured {
            return l;
        }
        match lang_env {
            Some(v) if v.to_ascii_lowercase().starts_with("en") => Lang::En,
            _ => Lang::De,
        }
    }

    /// Picks the text for this language.
    pub fn pick<'a>(self, de: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::De => de,
            Lang::En => en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_unless_english_is_chosen() {
        assert_eq!(Lang::resolve(None, None), Lang::De);
        assert_eq!(Lang::resolve(None, Some("C.UTF-8")), Lang::De);
        assert_eq!(Lang::resolve(None, Some("de_DE.UTF-8")), Lang::De);
        assert_eq!(Lang::resolve(None, Some("en_US.UTF-8")), Lang::En);
        assert_eq!(Lang::resolve(Some(Lang::De), Some("en_US.UTF-8")), Lang::De);
        assert_eq!(Lang::En.pick("ja", "yes"), "yes");
    }
}
