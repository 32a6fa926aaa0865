//! The configured limits ([`Limits`]) applied to a request before anything else looks at it: pure
//! functions over the parsed request, each refusal naming the field, the limit (with its
//! configuration key) and the size found. The API calls them first in its handlers, so that a
//! request over a limit reaches neither the database nor the store.

use asgard_core::RawPath;
use asgard_core::meta::{EntryMeta, MAX_OWNER_NAME, MetaError};
use asgard_core::protocol::{CommitEntry, LoginRequest};

use super::ServiceError;
use crate::config::Limits;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Bytes of a text or a path.
    Bytes,
    /// UTF-16 units of a Windows path component.
    Utf16,
    /// Components of a path.
    Components,
    /// Entries of a list (commit entries, check ids, chunk references).
    Items,
}

/// A request over one of the configured limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {found} > {limit} (limits.{key})")]
pub struct Exceeded {
    /// The field, e.g. `entries[3].path` or `os_version`.
    pub field: String,
    /// The key of the limit in the `limits:` section.
    pub key: &'static str,
    pub limit: u64,
    pub found: u64,
    pub measure: Measure,
}

impl Exceeded {
    /// A count over its limit (the whole request is too large: 413); otherwise a field is too long
    /// (400).
    pub fn is_count(&self) -> bool {
        self.measure == Measure::Items
    }
}

fn at_most(
    field: impl FnOnce() -> String,
    key: &'static str,
    limit: u32,
    found: usize,
    measure: Measure,
) -> Result<(), Exceeded> {
    if found as u64 > u64::from(limit) {
        return Err(Exceeded {
            field: field(),
            key,
            limit: u64::from(limit),
            found: found as u64,
            measure,
        });
    }
    Ok(())
}

/// `login`: every text field within `max_field_bytes`.
pub(crate) fn login(req: &LoginRequest, l: &Limits) -> Result<(), Exceeded> {
    let fields: [(&str, Option<&String>); 7] = [
        ("user", Some(&req.user)),
        ("device", Some(&req.device)),
        ("os", Some(&req.os)),
        ("os_version", Some(&req.os_version)),
        ("agent_version", Some(&req.agent_version)),
        ("enrollment_key", req.enrollment_key.as_ref()),
        ("code", req.code.as_ref()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            text(name, v, l)?;
        }
    }
    Ok(())
}

/// One text field (`name`) within `max_field_bytes`.
pub(crate) fn text(name: &str, value: &str, l: &Limits) -> Result<(), Exceeded> {
    at_most(
        || name.to_owned(),
        "max_field_bytes",
        l.max_field_bytes,
        value.len(),
        Measure::Bytes,
    )
}

/// `check`: at most `max_check_ids` ids.
pub(crate) fn check(ids: usize, l: &Limits) -> Result<(), Exceeded> {
    at_most(
        || "chunks".to_owned(),
        "max_check_ids",
        l.max_check_ids,
        ids,
        Measure::Items,
    )
}

/// `commit`: the number of entries and of chunk references, every path and symlink target
/// (length, components, and that a path is absolute without `.` or `..` components; a folder's
/// path like any other) and every entry's [`EntryMeta`] (see [`meta`]).
pub(crate) fn commit(entries: &[CommitEntry], l: &Limits) -> Result<(), ServiceError> {
    at_most(
        || "entries".to_owned(),
        "max_commit_entries",
        l.max_commit_entries,
        entries.len(),
        Measure::Items,
    )?;
    let refs: usize = entries
        .iter()
        .map(|e| match e {
            CommitEntry::File { meta, .. } => meta.chunks.len(),
            _ => 0,
        })
        .sum();
    at_most(
        || "entries[].meta.chunks".to_owned(),
        "max_commit_chunks",
        l.max_commit_chunks,
        refs,
        Measure::Items,
    )?;
    for (i, e) in entries.iter().enumerate() {
        path(|| format!("entries[{i}].path"), e.path(), l)?;
        if let CommitEntry::Symlink { target, .. } = e {
            at_most(
                || format!("entries[{i}].target"),
                "max_path_bytes",
                l.max_path_bytes,
                target.0.len(),
                Measure::Bytes,
            )?;
        }
        // The field as the JSON names it: a file's metadata sits in `meta.ext`.
        match e {
            CommitEntry::File { meta: m, .. } => {
                meta(&format!("entries[{i}].meta.ext"), &m.ext, l)?
            }
            CommitEntry::Symlink { meta: m, .. } | CommitEntry::Dir { meta: m, .. } => {
                meta(&format!("entries[{i}].meta"), m, l)?
            }
            CommitEntry::Deleted { .. } => {}
        }
    }
    Ok(())
}

/// An entry's metadata (`field` names it): owner and group names within `max_field_bytes`, and
/// the fixed bounds of [`EntryMeta::check`] (attribute count and sizes, names sorted and unique,
/// names of at most [`MAX_OWNER_NAME`] bytes). A refusal names the field (`….xattrs`, `….owner`).
fn meta(field: &str, m: &EntryMeta, l: &Limits) -> Result<(), ServiceError> {
    for (name, value) in [("owner", &m.owner), ("group", &m.group)] {
        if let Some(v) = value {
            text(&format!("{field}.{name}"), v, l)?;
        }
    }
    m.check().map_err(|e| {
        let part = match e {
            MetaError::OwnerNameTooLong
                if m.owner.as_ref().is_some_and(|n| n.len() > MAX_OWNER_NAME) =>
            {
                "owner"
            }
            MetaError::OwnerNameTooLong => "group",
            _ => "xattrs",
        };
        ServiceError::BadEntry(format!("{field}.{part}: {e}"))
    })
}

/// A path of the device: within the length limits, absolute (`/…`, `C:\…`, `\\server\…`) and
/// without `.` or `..` components (no agent sends them; the restore refuses them anyway).
fn path(field: impl Fn() -> String, p: &RawPath, l: &Limits) -> Result<(), ServiceError> {
    at_most(
        &field,
        "max_path_bytes",
        l.max_path_bytes,
        p.0.len(),
        Measure::Bytes,
    )?;
    let windows = p.is_windows();
    if !windows && p.0.first() != Some(&b'/') {
        return Err(ServiceError::BadEntry(format!(
            "{}: {p}: the path is not absolute",
            field()
        )));
    }
    let parts =
        p.0.split(|&c| c == b'/' || (windows && c == b'\\'))
            .filter(|c| !c.is_empty());
    let mut count = 0;
    for part in parts {
        count += 1;
        if part == b"." || part == b".." {
            return Err(ServiceError::BadEntry(format!(
                "{}: {p}: '.' or '..' in the path",
                field()
            )));
        }
        let (len, measure) = if windows {
            (utf16_units(part), Measure::Utf16)
        } else {
            (part.len(), Measure::Bytes)
        };
        at_most(
            &field,
            "max_component_bytes",
            l.max_component_bytes,
            len,
            measure,
        )?;
    }
    at_most(
        &field,
        "max_path_components",
        l.max_path_components,
        count,
        Measure::Components,
    )?;
    Ok(())
}

/// The UTF-16 length of a WTF-8 name: one unit per character, two for one beyond the BMP (a byte
/// that does not continue a sequence starts one; a four-byte lead starts a surrogate pair).
fn utf16_units(name: &[u8]) -> usize {
    name.iter()
        .map(|&b| match b {
            0x80..=0xBF => 0,
            0xF0..=0xFF => 2,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use asgard_core::protocol::{ChunkRef, FileMeta};
    use asgard_core::{ChunkId, ChunkParams};

    use super::*;

    fn deleted(path: &[u8]) -> CommitEntry {
        CommitEntry::Deleted {
            path: RawPath(path.to_vec()),
        }
    }

    fn exceeded(r: Result<(), ServiceError>) -> Exceeded {
        match r {
            Err(ServiceError::Limit(e)) => e,
            other => panic!("expected a limit, got {other:?}"),
        }
    }

    #[test]
    fn paths_within_limits_pass_and_the_refusal_names_field_limit_and_size() {
        let l = Limits::default();
        commit(&[deleted(b"/home/a/b.txt"), deleted(b"C:\\Users\\a")], &l).unwrap();
        let long = [b"/".as_slice(), &vec![b'a'; 4200]].concat();
        let e = exceeded(commit(&[deleted(b"/ok"), deleted(&long)], &l));
        assert_eq!(e.field, "entries[1].path");
        assert_eq!((e.key, e.limit, e.found), ("max_path_bytes", 4096, 4201));
        assert!(!e.is_count());
        let name = [b"/x/".as_slice(), &vec![b'n'; 256]].concat();
        let e = exceeded(commit(&[deleted(&name)], &l));
        assert_eq!((e.key, e.found), ("max_component_bytes", 256));
        let deep = b"/a".repeat(513);
        let e = exceeded(commit(&[deleted(&deep)], &l));
        assert_eq!(
            (e.key, e.found, e.measure),
            ("max_path_components", 513, Measure::Components)
        );
    }

    #[test]
    fn windows_components_count_utf16_units() {
        let l = Limits::default();
        // 255 characters of three bytes each: 765 bytes, 255 UTF-16 units.
        let name = "€".repeat(255);
        let p = format!("C:\\Users\\{name}");
        commit(&[deleted(p.as_bytes())], &l).unwrap();
        // 128 characters beyond the BMP: 256 units.
        let p = format!("C:\\{}", "😀".repeat(128));
        let e = exceeded(commit(&[deleted(p.as_bytes())], &l));
        assert_eq!((e.found, e.measure), (256, Measure::Utf16));
    }

    #[test]
    fn relative_and_dotted_paths_are_refused() {
        let l = Limits::default();
        for p in [
            &b"relative/x"[..],
            b"",
            b"/a/../etc/passwd",
            b"/a/./b",
            b"C:\\a\\..\\b",
        ] {
            match commit(&[deleted(p)], &l) {
                Err(ServiceError::BadEntry(d)) => assert!(d.contains("entries[0].path"), "{d}"),
                other => panic!("{p:?}: {other:?}"),
            }
        }
        // On Unix a backslash is part of a name.
        commit(&[deleted(b"/a/..\\b")], &l).unwrap();
    }

    #[test]
    fn counts_are_413_material() {
        let l = Limits {
            max_commit_entries: 2,
            max_commit_chunks: 3,
            ..Limits::default()
        };
        let e = exceeded(commit(
            &[deleted(b"/a"), deleted(b"/b"), deleted(b"/c")],
            &l,
        ));
        assert_eq!((e.key, e.limit, e.found), ("max_commit_entries", 2, 3));
        assert!(e.is_count());
        let refs = vec![
            ChunkRef {
                id: ChunkId::of(b"x"),
                len: 1
            };
            4
        ];
        let file = CommitEntry::File {
            path: RawPath(b"/f".to_vec()),
            meta: FileMeta {
                size: 4,
                mtime_ns: 0,
                mode: 0,
                attributes: 0,
                ext: Default::default(),
                hash: ChunkId::of(b"xxxx"),
                params: ChunkParams::default(),
                chunks: refs,
            },
        };
        let e = exceeded(commit(&[file], &l));
        assert_eq!((e.key, e.found), ("max_commit_chunks", 4));
        assert_eq!(check(10_000, &Limits::default()), Ok(()));
        assert_eq!(
            check(10_001, &Limits::default()).unwrap_err().key,
            "max_check_ids"
        );
    }

    #[test]
    fn login_fields_are_bounded() {
        let l = Limits::default();
        let mut req = LoginRequest {
            protocol_version: 1,
            user: "alice".into(),
            device: "laptop".into(),
            os: "linux".into(),
            os_version: "6.1".into(),
            agent_version: "0.1".into(),
            enrollment_key: None,
            code: None,
        };
        login(&req, &l).unwrap();
        req.os_version = "x".repeat(10 << 20);
        let e = login(&req, &l).unwrap_err();
        assert_eq!((e.field.as_str(), e.found), ("os_version", 10 << 20));
        req.os_version.clear();
        req.code = Some("c".repeat(513));
        assert_eq!(login(&req, &l).unwrap_err().field, "code");
    }

    fn xattr(name: &str, value: &[u8]) -> asgard_core::meta::Xattr {
        asgard_core::meta::Xattr {
            name: asgard_core::meta::Blob(name.as_bytes().to_vec()),
            value: asgard_core::meta::Blob(value.to_vec()),
        }
    }

    fn bad_entry(r: Result<(), ServiceError>) -> String {
        match r {
            Err(ServiceError::BadEntry(d)) => d,
            other => panic!("expected a bad entry, got {other:?}"),
        }
    }

    #[test]
    fn entry_metadata_is_bounded_and_the_refusal_names_the_field() {
        let l = Limits::default();
        let dir = |path: &[u8], meta: EntryMeta| CommitEntry::Dir {
            path: RawPath(path.to_vec()),
            mtime_ns: 0,
            mode: 0o40755,
            attributes: 0,
            meta,
        };
        let good = EntryMeta {
            owner: Some("anna".into()),
            group: Some("users".into()),
            xattrs: vec![xattr("user.a", b"1"), xattr("user.b", b"2")],
            ..EntryMeta::default()
        };
        commit(&[deleted(b"/x"), dir(b"/d", good.clone())], &l).unwrap();
        // A folder's path is checked like any path.
        assert!(bad_entry(commit(&[dir(b"d/rel", good.clone())], &l)).contains("entries[0].path"));

        let unsorted = EntryMeta {
            xattrs: vec![xattr("user.b", b"1"), xattr("user.a", b"2")],
            ..EntryMeta::default()
        };
        let d = bad_entry(commit(&[deleted(b"/x"), dir(b"/d", unsorted)], &l));
        assert!(d.starts_with("entries[1].meta.xattrs:"), "{d}");
        let big = EntryMeta {
            xattrs: vec![xattr(
                "user.a",
                &vec![0; asgard_core::meta::MAX_XATTR_VALUE + 1],
            )],
            ..EntryMeta::default()
        };
        let link = CommitEntry::Symlink {
            path: RawPath::from("/l"),
            target: RawPath::from("t"),
            mtime_ns: 0,
            meta: big.clone(),
        };
        assert!(bad_entry(commit(&[link], &l)).starts_with("entries[0].meta.xattrs:"));
        // A file's metadata is `meta.ext` in the JSON.
        let file = CommitEntry::File {
            path: RawPath::from("/f"),
            meta: FileMeta {
                size: 0,
                mtime_ns: 0,
                mode: 0,
                attributes: 0,
                ext: big,
                hash: ChunkId::of(b""),
                params: ChunkParams::default(),
                chunks: Vec::new(),
            },
        };
        assert!(bad_entry(commit(&[file], &l)).starts_with("entries[0].meta.ext.xattrs:"));

        // Names: the fixed bound of the protocol, and the configured field limit.
        let long_group = EntryMeta {
            group: Some("g".repeat(MAX_OWNER_NAME + 1)),
            ..EntryMeta::default()
        };
        assert!(
            bad_entry(commit(&[dir(b"/d", long_group)], &l)).starts_with("entries[0].meta.group:")
        );
        let tight = Limits {
            max_field_bytes: 64,
            ..Limits::default()
        };
        let owner = EntryMeta {
            owner: Some("o".repeat(65)),
            ..EntryMeta::default()
        };
        commit(&[dir(b"/d", owner.clone())], &l).unwrap();
        let e = exceeded(commit(&[dir(b"/d", owner)], &tight));
        assert_eq!(
            (e.field.as_str(), e.key, e.found),
            ("entries[0].meta.owner", "max_field_bytes", 65)
        );
        assert!(!e.is_count());
    }
}
