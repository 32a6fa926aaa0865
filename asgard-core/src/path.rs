//! Paths exactly as they were on the device.
//!
//! A [`RawPath`] holds the bytes of an absolute path: on Unix the raw bytes of the name (which need
//! not be UTF-8), on Windows the WTF-8 form of the UTF-16 name. In JSON a valid UTF-8 path is a plain
//! string; any other is an object `{"hex": "..."}`, so no name is ever lost or altered on the wire.
//! Both Unix (`/home/a/b`) and Windows (`C:\Users\a`) paths are understood on every platform, so the
//! rules can be tested with Windows paths on Linux.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{from_hex, to_hex};

/// The bytes of an absolute path as it was on the device.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RawPath(pub Vec<u8>);

/// A path component that must never reach the file system from restored metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path {path}: {reason}")]
pub struct UnsafePath {
    pub path: String,
    pub reason: &'static str,
}

impl RawPath {
    /// The path of a local file, as bytes.
    pub fn from_path(p: &Path) -> Self {
        RawPath(p.as_os_str().as_encoded_bytes().to_vec())
    }

    /// The path as UTF-8 text, with invalid sequences replaced (for display only).
    pub fn lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// The path for people, every byte visible and none lost: see [`Escaped`].
    pub fn escaped(&self) -> Escaped<'_> {
        Escaped::new(&self.0)
    }

    /// Whether the path looks like a Windows path (`C:\...`, `C:/...` or `\\server\share`).
    pub fn is_windows(&self) -> bool {
        is_windows_bytes(&self.0)
    }

    fn is_sep(&self, c: u8) -> bool {
        c == b'/' || (c == b'\\' && self.is_windows())
    }

    /// True when `self` is `prefix` itself or lies below it. An empty prefix contains everything.
    /// Windows paths compare case-insensitively (ASCII) and with either slash.
    pub fn is_within(&self, prefix: &RawPath) -> bool {
        let p = prefix.trimmed();
        if p.is_empty() {
            return true;
        }
        let windows = prefix.is_windows();
        let eq = |a: u8, b: u8| {
            if windows {
                let norm = |c: u8| {
                    if c == b'\\' {
                        b'/'
                    } else {
                        c.to_ascii_lowercase()
                    }
                };
                norm(a) == norm(b)
            } else {
                a == b
            }
        };
        let s = &self.0;
        if s.len() < p.len() || !s.iter().zip(p).all(|(&a, &b)| eq(a, b)) {
            return false;
        }
        s.len() == p.len() || self.is_sep(s[p.len()]) || self.is_sep(p[p.len() - 1])
    }

    /// The path without trailing separators (but a root like `/` or `C:\` stays whole).
    fn trimmed(&self) -> &[u8] {
        let mut b = &self.0[..];
        while b.len() > 1 && self.is_sep(b[b.len() - 1]) && !(b.len() == 3 && b[1] == b':') {
            b = &b[..b.len() - 1];
        }
        b
    }

    /// The last component (file or folder name), if any.
    pub fn file_name(&self) -> Option<&[u8]> {
        self.trimmed()
            .rsplit(|&c| self.is_sep(c))
            .next()
            .filter(|n| !n.is_empty() && (n.len() != 2 || n[1] != b':'))
    }

    /// The components of `self` below `prefix`, each checked to be a plain name: no `..`, no `.`,
    /// no empty part, no drive letter and no NUL. Returns `None` when `self` is not within `prefix`.
    pub fn components_below(&self, prefix: &RawPath) -> Option<Result<Vec<&[u8]>, UnsafePath>> {
        if !self.is_within(prefix) {
            return None;
        }
        let p = prefix.trimmed().len();
        let rest = &self.0[p.min(self.0.len())..];
        let parts: Vec<&[u8]> = rest
            .split(|&c| self.is_sep(c))
            .filter(|c| !c.is_empty())
            .collect();
        for part in &parts {
            if let Err(reason) = check_component(part) {
                return Some(Err(UnsafePath {
                    path: self.lossy(),
                    reason,
                }));
            }
        }
        Some(Ok(parts))
    }

    /// The local path with these bytes. On Unix every byte string is a valid path; elsewhere an
    /// invalid UTF-8 sequence is replaced.
    pub fn to_path_buf(&self) -> PathBuf {
        bytes_to_path(&self.0)
    }
}

/// Whether bytes look like a Windows path (`C:\...`, `C:/...` or `\\server\share`).
fn is_windows_bytes(b: &[u8]) -> bool {
    (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') || b.starts_with(b"\\\\")
}

/// Checks that one path component is a plain name that stays inside its folder.
pub fn check_component(part: &[u8]) -> Result<(), &'static str> {
    if part.is_empty() {
        return Err("empty name");
    }
    if part == b"." || part == b".." {
        return Err("'.' or '..' in path");
    }
    if part.contains(&0) {
        return Err("NUL byte in name");
    }
    if part.contains(&b'/') || part.contains(&b'\\') {
        return Err("separator inside a name");
    }
    if part.len() >= 2 && part[1] == b':' {
        return Err("drive letter inside a path");
    }
    Ok(())
}

/// A local path from raw bytes (see [`RawPath::to_path_buf`]).
pub fn bytes_to_path(b: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(b))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(b).into_owned())
    }
}

/// A path or name shown to people so that nothing is hidden or lost, like `ls -b`:
///
/// - valid UTF-8 is shown as it is, except control characters (`\n`, `\t`, ESC, ...), which are
///   shown as `\n`, `\t`, `\r` or `\xHH` (and C1 controls as `\u{85}`), so a name cannot move
///   the cursor or hide in the terminal;
/// - each byte that is not part of valid UTF-8 is shown as `\xHH` (two lowercase hex digits):
///   `caf\xe9` for Latin-1 `café`, never the `�` that would make two names look alike;
/// - a backslash is doubled (`\\`) so that the escapes stay unambiguous, except in Windows
///   paths (`C:\...`, `\\server\share`), where it is the separator and shown as it is.
///
/// A name without control characters and backslashes that is valid UTF-8 looks exactly as
/// [`RawPath::lossy`] shows it.
#[derive(Clone, Copy)]
pub struct Escaped<'a> {
    bytes: &'a [u8],
    keep_backslash: bool,
}

impl<'a> Escaped<'a> {
    /// Escapes the bytes of a path (a Windows path keeps its backslashes).
    pub fn new(bytes: &'a [u8]) -> Self {
        let keep_backslash = is_windows_bytes(bytes);
        Escaped {
            bytes,
            keep_backslash,
        }
    }

    /// Escapes the bytes of one name (a backslash in it is always doubled).
    pub fn name(bytes: &'a [u8]) -> Self {
        Escaped {
            bytes,
            keep_backslash: false,
        }
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for chunk in self.bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' if !self.keep_backslash => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\t' => f.write_str("\\t")?,
                    '\r' => f.write_str("\\r")?,
                    c if c.is_control() && u32::from(c) < 0x80 => {
                        write!(f, "\\x{:02x}", u32::from(c))?
                    }
                    c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                    c => f.write_char(c)?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl fmt::Display for RawPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lossy())
    }
}

impl fmt::Debug for RawPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawPath({:?})", self.lossy())
    }
}

impl From<&str> for RawPath {
    fn from(s: &str) -> Self {
        RawPath(s.as_bytes().to_vec())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum PathRepr {
    Text(String),
    Hex { hex: String },
}

impl Serialize for RawPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(&self.0);
        }
        match std::str::from_utf8(&self.0) {
            Ok(text) => PathRepr::Text(text.to_owned()).serialize(s),
            Err(_) => PathRepr::Hex {
                hex: to_hex(&self.0),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return Ok(RawPath(serde_bytes_vec(d)?));
        }
        match PathRepr::deserialize(d)? {
            PathRepr::Text(t) => Ok(RawPath(t.into_bytes())),
            PathRepr::Hex { hex } => from_hex(&hex)
                .map(RawPath)
                .ok_or_else(|| serde::de::Error::custom("path: invalid hex")),
        }
    }
}

fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("path bytes")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = a.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
    d.deserialize_byte_buf(V)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rp(s: &str) -> RawPath {
        RawPath::from(s)
    }

    #[test]
    fn within_unix() {
        assert!(rp("/home/a/b.txt").is_within(&rp("/home/a")));
        assert!(rp("/home/a/b.txt").is_within(&rp("/home/a/")));
        assert!(rp("/home/a").is_within(&rp("/home/a")));
        assert!(!rp("/home/ab").is_within(&rp("/home/a")));
        assert!(rp("/x").is_within(&rp("/")));
        assert!(rp("/x").is_within(&rp("")));
    }

    #[test]
    fn within_windows_ignores_case_and_slash() {
        assert!(rp(r"C:\Users\Bob\Documents\x.doc").is_within(&rp(r"c:/users/bob/documents")));
        assert!(rp(r"C:\Users\Bob").is_within(&rp(r"C:\")));
        assert!(!rp(r"C:\Users\Bobby").is_within(&rp(r"C:\Users\Bob")));
    }

    #[test]
    fn components_reject_traversal() {
        let unix = rp("/a/b/c/d");
        let ok = unix.components_below(&rp("/a/b")).unwrap().unwrap();
        assert_eq!(ok, vec![&b"c"[..], &b"d"[..]]);
        let windows = rp(r"C:\Users\x\y.txt");
        let win = windows.components_below(&rp(r"C:\Users")).unwrap().unwrap();
        assert_eq!(win, vec![&b"x"[..], &b"y.txt"[..]]);
        assert!(
            rp("/a/b/../../etc/passwd")
                .components_below(&rp("/a/b"))
                .unwrap()
                .is_err()
        );
        assert!(rp("/z").components_below(&rp("/a")).is_none());
    }

    #[test]
    fn file_names() {
        assert_eq!(rp("/a/b.txt").file_name(), Some(&b"b.txt"[..]));
        assert_eq!(rp("/a/dir/").file_name(), Some(&b"dir"[..]));
        assert_eq!(rp(r"C:\Users\Bob").file_name(), Some(&b"Bob"[..]));
        assert_eq!(rp(r"C:\").file_name(), None);
        assert_eq!(rp("/").file_name(), None);
    }

    #[test]
    fn non_utf8_round_trips_through_json() {
        let p = RawPath(b"/tmp/caf\xe9".to_vec());
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"hex":"2f746d702f636166e9"}"#);
        assert_eq!(serde_json::from_str::<RawPath>(&json).unwrap(), p);
        let text = serde_json::to_string(&rp("/tmp/Grüße")).unwrap();
        assert_eq!(text, r#""/tmp/Grüße""#);
    }

    #[test]
    fn escaped_shows_every_byte() {
        let e = |b: &[u8]| RawPath(b.to_vec()).escaped().to_string();
        assert_eq!(e(b"/tmp/Gr\xc3\xbc\xc3\x9fe"), "/tmp/Grüße");
        assert_eq!(e(b"/tmp/caf\xe9"), "/tmp/caf\\xe9");
        assert_eq!(e(b"/tmp/\xff\xfe.txt"), "/tmp/\\xff\\xfe.txt");
        // A truncated UTF-8 sequence: each byte on its own.
        assert_eq!(e(b"/a\xc3"), "/a\\xc3");
        assert_eq!(e(b"/a\nb\tc\x1b[31m"), "/a\\nb\\tc\\x1b[31m");
        assert_eq!(e("/a\u{85}".as_bytes()), "/a\\u{85}");
        // The text `\xff` and the byte 0xff differ.
        assert_eq!(e(b"/x\\xff"), "/x\\\\xff");
        assert_ne!(e(b"/x\\xff"), e(b"/x\xff"));
        assert_eq!(e(br"C:\Users\Bob"), r"C:\Users\Bob");
        assert_eq!(Escaped::name(br"a\b").to_string(), r"a\\b");
        assert_eq!(e(b"/tmp/plain name"), rp("/tmp/plain name").lossy());
    }

    proptest! {
        #[test]
        fn escaped_is_printable_and_distinct(
            a in proptest::collection::vec(any::<u8>(), 0..24),
            b in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let (ea, eb) = (Escaped::name(&a).to_string(), Escaped::name(&b).to_string());
            prop_assert!(!ea.chars().any(char::is_control), "{ea:?}");
            // A replacement character only where the name really has one.
            prop_assert_eq!(
                ea.contains('\u{fffd}'),
                a.windows(3).any(|w| w == "\u{fffd}".as_bytes())
            );
            if a != b {
                prop_assert_ne!(ea, eb);
            }
        }

        #[test]
        fn any_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let p = RawPath(bytes);
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(&serde_json::from_str::<RawPath>(&json).unwrap(), &p);
            let bin = postcard::to_stdvec(&p).unwrap();
            prop_assert_eq!(&postcard::from_bytes::<RawPath>(&bin).unwrap(), &p);
        }
    }
}
