//! User and device names as both sides compare and store them, and the one-time codes of device
//! enrollment as people type them.
//!
//! A name is normalised once, here, before anything compares or stores it: leading and trailing
//! white space goes, control, zero-width and bidi characters are refused (they make two names
//! look alike in every listing), the rest is Unicode NFC and lower case. So `ALICE`, `alice ` and
//! `alice` are one user. Names that still only *look* alike (Cyrillic `а` for Latin `a`) are told
//! apart by their confusable [`skeleton`]: the server refuses a new user whose skeleton another
//! user already has.

use unicode_normalization::UnicodeNormalization;

/// At most this many characters in a user or device name (after normalisation).
pub const MAX_NAME_CHARS: usize = 128;

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("name longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    /// A control, zero-width or bidi character (invisible, or reorders what is shown).
    #[error("name holds an invisible or control character U+{0:04X}")]
    Invisible(u32),
}

/// Characters that are invisible or change the display order: zero-width characters, joiners,
/// bidi marks, embeddings, overrides and isolates, the soft hyphen, the byte order mark, variation
/// selectors and tag characters.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}'
        | '\u{E0000}'..='\u{E0FFF}'
    ) || c.is_control()
}

/// The normal form of a user or device name: trimmed, NFC, lower case. Refuses empty and over-long
/// names and names with control, zero-width or bidi characters.
pub fn normalize(name: &str) -> Result<String, NameError> {
    let trimmed = name.trim();
    if let Some(c) = trimmed.chars().find(|&c| is_invisible(c)) {
        return Err(NameError::Invisible(c as u32));
    }
    // Lower case can leave a non-NFC sequence (and NFC can change case mapping input), so NFC
    // runs on both sides of it.
    let lowered: String = trimmed.nfc().collect::<String>().to_lowercase();
    let normal: String = lowered.nfc().collect();
    let n = normal.chars().count();
    if n == 0 {
        return Err(NameError::Empty);
    }
    if n > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    Ok(normal)
}

/// Whether `name` is already in normal form.
pub fn is_normal(name: &str) -> bool {
    normalize(name).is_ok_and(|n| n == name)
}

/// The confusable skeleton (Unicode TR 39) of a normalised name: two names with equal skeletons
/// look alike (`аlice` with a Cyrillic `а` and `alice`).
pub fn skeleton(normal: &str) -> String {
    let s: String = unicode_security::skeleton(normal).collect();
    s.to_lowercase()
}

/// Characters of a code (without the separator).
pub const CODE_LEN: usize = 8;

/// The letters a code is made of: 31 letters and digits, without `0`/`O` and `1`/`I`/`L` that
/// people mix up.
const CODE_CHARS: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A code from random bytes, shown grouped as `K7MQ-4XTD` (about 39.6 bits).
pub fn code_from_random(random: &[u8; CODE_LEN]) -> String {
    let mut out = String::with_capacity(CODE_LEN + 1);
    for (i, b) in random.iter().enumerate() {
        if i == CODE_LEN / 2 {
            out.push('-');
        }
        // 256 = 8 * 31 + 8: a tiny bias towards the first 8 letters, irrelevant for a code that
        // is valid a bounded time and used once.
        out.push(CODE_CHARS[*b as usize % CODE_CHARS.len()] as char);
    }
    out
}

/// A code as typed (any case, with or without `-` or spaces) in its canonical form `K7MQ-4XTD`;
/// `None` when it cannot be a code.
pub fn normalize_code(typed: &str) -> Option<String> {
    let chars: Vec<char> = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    // `is_ascii` first: `c as u8` keeps only the low byte, which would let `Ł` (U+0141) pass as
    // `A` (found by the `protocol` fuzz target).
    if chars.len() != CODE_LEN
        || !chars
            .iter()
            .all(|c| c.is_ascii() && CODE_CHARS.contains(&(*c as u8)))
    {
        return None;
    }
    let mut out = String::with_capacity(CODE_LEN + 1);
    for (i, c) in chars.into_iter().enumerate() {
        if i == CODE_LEN / 2 {
            out.push('-');
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_with_a_letter_outside_ascii_is_no_code() {
        // U+0141, U+0241, U+0132 and U+0433 have the low bytes of `A`, `A`, `2` and `3`.
        for typed in [
            "\u{141}AAA-AAAA",
            "AAAA-AAA\u{241}",
            "\u{132}\u{433}AA AAAA",
        ] {
            assert_eq!(normalize_code(typed), None, "{typed:?}");
        }
        assert_eq!(normalize_code("k7mq 4xtd").as_deref(), Some("K7MQ-4XTD"));
    }

    #[test]
    fn case_space_and_composition_variants_are_one_name() {
        for variant in ["alice", "ALICE", " Alice ", "AlIcE\t"] {
            assert_eq!(normalize(variant).unwrap(), "alice", "{variant:?}");
        }
        // é precomposed and e + combining acute
        assert_eq!(
            normalize("Ren\u{e9}").unwrap(),
            normalize("RENE\u{301}").unwrap()
        );
        assert!(is_normal("ren\u{e9}"));
        assert!(!is_normal("Alice"));
    }

    #[test]
    fn invisible_and_control_characters_are_refused() {
        for bad in [
            "al\u{200B}ice",
            "alice\u{202E}",
            "\u{2067}alice",
            "al\u{AD}ice",
            "a\nb",
            "a\u{0}b",
            "al\u{FEFF}ice",
            "ali\u{E0061}ce",
        ] {
            assert!(
                matches!(normalize(bad), Err(NameError::Invisible(_))),
                "{bad:?}"
            );
        }
        assert_eq!(normalize("  "), Err(NameError::Empty));
        assert_eq!(normalize(&"ä".repeat(128)).unwrap(), "ä".repeat(128));
        assert_eq!(normalize(&"a".repeat(129)), Err(NameError::TooLong));
    }

    #[test]
    fn confusable_names_share_a_skeleton() {
        let latin = normalize("alice").unwrap();
        let cyrillic = normalize("\u{430}lice").unwrap();
        assert_ne!(latin, cyrillic);
        assert_eq!(skeleton(&latin), skeleton(&cyrillic));
        assert_ne!(skeleton("alice"), skeleton("bob"));
    }

    #[test]
    fn codes_are_unambiguous_and_typed_leniently() {
        let code = code_from_random(&[0, 1, 2, 3, 30, 31, 255, 128]);
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
        assert_eq!(normalize_code(&code.to_lowercase()), Some(code.clone()));
        assert_eq!(normalize_code(&code.replace('-', " ")), Some(code.clone()));
        assert_eq!(normalize_code("K7MQ-4XT"), None);
        assert_eq!(normalize_code("K7MQ-4XT0"), None);
        assert_eq!(normalize_code("K7MQ-4XTDD"), None);
    }
}
