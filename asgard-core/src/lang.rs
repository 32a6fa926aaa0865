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

    /// The language a client asks for in an HTTP `Accept-Language` value (`de-DE,de;q=0.9,en;q=0.8`):
    /// the supported language with the highest weight, the first one listed on a tie; `None` when
    /// it names neither German nor English (or only with weight 0).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(Lang, u32)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let primary = tag.split(['-', '_']).next().unwrap_or("");
            let lang = if primary.eq_ignore_ascii_case("de") {
                Lang::De
            } else if primary.eq_ignore_ascii_case("en") {
                Lang::En
            } else {
                continue;
            };
            // The weight in thousandths (q=0.8 -> 800); a malformed one counts as 1.
            let mut weight = 1000;
            for p in parts {
                if let Some(q) = p.trim().strip_prefix("q=") {
                    weight = q
                        .trim()
                        .parse::<f32>()
                        .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u32);
                }
            }
            if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
                best = Some((lang, weight));
            }
        }
        best.map(|(l, _)| l)
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

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        let al = Lang::from_accept_language;
        assert_eq!(al("de-DE,de;q=0.9,en;q=0.8"), Some(Lang::De));
        assert_eq!(al("en-US,en;q=0.9,de;q=0.8"), Some(Lang::En));
        assert_eq!(al("fr-FR, en;q=0.5, de;q=0.7"), Some(Lang::De));
        assert_eq!(al("EN"), Some(Lang::En));
        assert_eq!(al("fr, *;q=0.1"), None);
        assert_eq!(al("en;q=0, de;q=0"), None);
        assert_eq!(al("en;q=garbage"), Some(Lang::En));
        assert_eq!(al(""), None);
    }
}
