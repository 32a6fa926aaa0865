//! Paths in the URLs of the user pages (`/my/browse?path=…`, `/my/versions?path=…`,
//! `/my/zip?path=…`): the raw bytes of the path as lowercase hex.
//!
//! A backed-up name need not be UTF-8 (a Latin-1 name on Linux), so a path cannot travel as
//! text without losing bytes; hex carries any bytes, needs no escaping in a query string or a
//! path segment, and is what the protocol already uses for such names (`{"hex": …}`). It is
//! twice as long as the path, which for the bounded path lengths is no concern (base64url would
//! save a third at the price of a dependency). [`encode`] writes the one canonical form
//! (lowercase); [`decode`] takes only that form, so one path has exactly one URL.
//!
//! Decoding checks the shape only: whether the path exists, and for whom, is the service's
//! question, always asked with the session's user id.

use asgard_core::RawPath;

/// Longest path [`decode`] accepts, in bytes: far above any configured `max_path_bytes` (a
/// path the server stores is never refused), low enough that a URL cannot make it allocate much.
pub(crate) const MAX_PATH_BYTES: usize = 64 * 1024;

/// Why a path parameter of a URL is not a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadPath {
    /// Not lowercase hex of whole bytes (odd length, another character, uppercase digits).
    #[error("the path is not lowercase hex")]
    NotHex,
    /// Longer than [`MAX_PATH_BYTES`].
    #[error("the path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
}

/// The URL form of `path`: lowercase hex of its bytes (the empty path gives the empty text).
pub(crate) fn encode(path: &RawPath) -> String {
    asgard_core::id::to_hex(&path.0)
}

/// The path of a URL parameter written by [`encode`].
///
/// # Errors
/// [`BadPath::NotHex`] for anything but lowercase hex of whole bytes, [`BadPath::TooLong`] for a
/// path over [`MAX_PATH_BYTES`].
pub(crate) fn decode(text: &str) -> Result<RawPath, BadPath> {
    if text.len() > 2 * MAX_PATH_BYTES {
        return Err(BadPath::TooLong);
    }
    if !text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(BadPath::NotHex);
    }
    asgard_core::id::from_hex(text)
        .map(RawPath)
        .ok_or(BadPath::NotHex)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn umlauts_and_latin1_names_survive() {
        for bytes in [
            "/home/anna/Bücher/Über.txt".as_bytes().to_vec(),
            b"/home/anna/caf\xe9".to_vec(),
            br"C:\Users\anna\a b&c=d?e#f".to_vec(),
            Vec::new(),
        ] {
            let p = RawPath(bytes);
            let text = encode(&p);
            assert!(
                text.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
            assert_eq!(decode(&text), Ok(p));
        }
    }

    #[test]
    fn only_the_canonical_form_is_a_path() {
        assert_eq!(encode(&RawPath::from("/a")), "2f61");
        assert_eq!(decode("2F61"), Err(BadPath::NotHex));
        assert_eq!(decode("2f6"), Err(BadPath::NotHex));
        assert_eq!(decode("2f6g"), Err(BadPath::NotHex));
        assert_eq!(decode("/a"), Err(BadPath::NotHex));
        assert_eq!(decode("+2f61"), Err(BadPath::NotHex));
        assert_eq!(
            decode(&"61".repeat(MAX_PATH_BYTES)).map(|p| p.0.len()),
            Ok(MAX_PATH_BYTES)
        );
        assert_eq!(
            decode(&"61".repeat(MAX_PATH_BYTES + 1)),
            Err(BadPath::TooLong)
        );
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let p = RawPath(bytes);
            prop_assert_eq!(decode(&encode(&p)), Ok(p));
        }

        #[test]
        fn decode_never_panics_and_reencodes_to_its_input(text in "[0-9a-fA-F/+ ]{0,40}") {
            if let Ok(p) = decode(&text) {
                prop_assert_eq!(encode(&p), text);
            }
        }
    }
}
