//! Metadata of an entry beyond its content and mode (issue 12): owner, extended attributes
//! (POSIX ACLs included), hard-link groups and the Windows creation time.
//!
//! Every field is optional: an old agent sends none, a version committed before these fields
//! existed has none, and a restore then simply leaves that part as the restoring process makes it
//! (as tar does for an archive without owners).
//!
//! **Bounds** (checked by the server on every commit, kept by the agent when it reads them): at
//! most [`MAX_XATTRS`] attributes per entry, names of at most [`MAX_XATTR_NAME`] bytes, values of
//! at most [`MAX_XATTR_VALUE`] bytes, [`MAX_XATTR_TOTAL`] bytes of names and values together, and
//! owner and group names of at most [`MAX_OWNER_NAME`] bytes. An entry with more is backed up
//! without its attributes and with a warning.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{from_hex, to_hex};

/// At most this many extended attributes per entry.
pub const MAX_XATTRS: usize = 64;
/// At most this many bytes in an attribute's name (Linux: `XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;
/// At most this many bytes in one attribute's value.
pub const MAX_XATTR_VALUE: usize = 64 * 1024;
/// At most this many bytes of names and values of one entry together.
pub const MAX_XATTR_TOTAL: usize = 128 * 1024;
/// At most this many bytes in an owner or group name.
pub const MAX_OWNER_NAME: usize = 256;

/// Bytes that are hex text in JSON and plain bytes in binary formats (postcard).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Blob(pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(t) => write!(f, "{t:?}"),
            Err(_) => write!(f, "0x{}", to_hex(&self.0)),
        }
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&to_hex(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            from_hex(&text)
                .map(Blob)
                .ok_or_else(|| serde::de::Error::custom("invalid hex"))
        } else {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                    Ok(v)
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut a: A,
                ) -> Result<Vec<u8>, A::Error> {
                    let mut out = Vec::new();
                    while let Some(b) = a.next_element()? {
                        out.push(b);
                    }
                    Ok(out)
                }
            }
            d.deserialize_bytes(V).map(Blob)
        }
    }
}

/// One extended attribute: its full name (`user.comment`, `system.posix_acl_access`, ...) and
/// value, byte for byte. POSIX ACLs are the attributes `system.posix_acl_access` and
/// `system.posix_acl_default` in the kernel's binary form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Xattr {
    /// The name in hex (names are bytes, like paths).
    pub name: Blob,
    /// The value in hex.
    pub value: Blob,
}

/// Metadata of a file, folder or link beyond size, mtime, mode and attributes. JSON: absent
/// fields are unknown (not "none").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EntryMeta {
    /// Numeric owner (Unix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Numeric group (Unix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The owner's name where the backing-up machine knows it (Windows: `DOMAIN\user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The group's name where the backing-up machine knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Extended attributes, sorted by name, each name once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
    /// Hard-link group: the same value for paths that were one inode in the run that backed them
    /// up (only set for a regular file with more than one link). A restore links paths whose
    /// chosen versions share this value, the content hash, the size and the mtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardlink: Option<u64>,
    /// Creation time, nanoseconds since the Unix epoch (Windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btime_ns: Option<i64>,
}

/// Why an [`EntryMeta`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaError {
    TooManyXattrs,
    XattrNameTooLong,
    XattrNameEmpty,
    XattrValueTooLong,
    XattrsTooLarge,
    XattrsNotSortedOrDuplicate,
    OwnerNameTooLong,
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetaError::TooManyXattrs => "too many extended attributes",
            MetaError::XattrNameTooLong => "extended attribute name too long",
            MetaError::XattrNameEmpty => "empty extended attribute name",
            MetaError::XattrValueTooLong => "extended attribute value too long",
            MetaError::XattrsTooLarge => "extended attributes too large in total",
            MetaError::XattrsNotSortedOrDuplicate => {
                "extended attributes not sorted by name or a name twice"
            }
            MetaError::OwnerNameTooLong => "owner or group name too long",
        })
    }
}

impl EntryMeta {
    /// Nothing known.
    pub fn is_empty(&self) -> bool {
        *self == EntryMeta::default()
    }

    /// The bounds of the module docs.
    pub fn check(&self) -> Result<(), MetaError> {
        if self
            .owner
            .as_ref()
            .is_some_and(|n| n.len() > MAX_OWNER_NAME)
            || self
                .group
                .as_ref()
                .is_some_and(|n| n.len() > MAX_OWNER_NAME)
        {
            return Err(MetaError::OwnerNameTooLong);
        }
        xattrs_within_bounds(&self.xattrs)
    }
}

/// Whether a list of attributes keeps the bounds (and is sorted by name without repeats).
pub fn xattrs_within_bounds(xattrs: &[Xattr]) -> Result<(), MetaError> {
    if xattrs.len() > MAX_XATTRS {
        return Err(MetaError::TooManyXattrs);
    }
    let mut total = 0usize;
    for x in xattrs {
        if x.name.0.is_empty() {
            return Err(MetaError::XattrNameEmpty);
        }
        if x.name.0.len() > MAX_XATTR_NAME {
            return Err(MetaError::XattrNameTooLong);
        }
        if x.value.0.len() > MAX_XATTR_VALUE {
            return Err(MetaError::XattrValueTooLong);
        }
        total += x.name.0.len() + x.value.0.len();
    }
    if total > MAX_XATTR_TOTAL {
        return Err(MetaError::XattrsTooLarge);
    }
    if xattrs.windows(2).any(|w| w[0].name >= w[1].name) {
        return Err(MetaError::XattrsNotSortedOrDuplicate);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(name: &str, value: &[u8]) -> Xattr {
        Xattr {
            name: Blob(name.as_bytes().to_vec()),
            value: Blob(value.to_vec()),
        }
    }

    #[test]
    fn empty_meta_is_an_empty_json_object_and_reads_back() {
        assert_eq!(serde_json::to_string(&EntryMeta::default()).unwrap(), "{}");
        let m: EntryMeta = serde_json::from_str("{}").unwrap();
        assert!(m.is_empty());
    }

    #[test]
    fn json_round_trip_with_hex_blobs() {
        let m = EntryMeta {
            uid: Some(1000),
            gid: Some(100),
            owner: Some("anna".into()),
            group: Some("users".into()),
            xattrs: vec![x("user.a", b"\x00\xff"), x("user.b", b"text")],
            hardlink: Some(u64::MAX),
            btime_ns: Some(-5),
        };
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""value":"00ff""#), "{json}");
        assert!(json.contains(&u64::MAX.to_string()), "{json}");
        assert_eq!(serde_json::from_str::<EntryMeta>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Xattr>(r#"{"name":"zz","value":""}"#).is_err());
    }

    #[test]
    fn blobs_are_bytes_in_postcard() {
        let b = Blob(vec![1, 2, 3]);
        let enc = postcard::to_stdvec(&b).unwrap();
        assert_eq!(enc, vec![3, 1, 2, 3]);
        assert_eq!(postcard::from_bytes::<Blob>(&enc).unwrap(), b);
    }

    #[test]
    fn bounds_are_checked() {
        assert_eq!(EntryMeta::default().check(), Ok(()));
        let ok = EntryMeta {
            xattrs: vec![x("user.a", b"1"), x("user.b", b"2")],
            ..EntryMeta::default()
        };
        assert_eq!(ok.check(), Ok(()));
        let unsorted = vec![x("user.b", b"1"), x("user.a", b"2")];
        assert_eq!(
            xattrs_within_bounds(&unsorted),
            Err(MetaError::XattrsNotSortedOrDuplicate)
        );
        let twice = vec![x("user.a", b"1"), x("user.a", b"2")];
        assert_eq!(
            xattrs_within_bounds(&twice),
            Err(MetaError::XattrsNotSortedOrDuplicate)
        );
        let many: Vec<Xattr> = (0..=MAX_XATTRS)
            .map(|i| x(&format!("user.{i:04}"), b""))
            .collect();
        assert_eq!(xattrs_within_bounds(&many), Err(MetaError::TooManyXattrs));
        let big = vec![x("user.a", &vec![0; MAX_XATTR_VALUE + 1])];
        assert_eq!(
            xattrs_within_bounds(&big),
            Err(MetaError::XattrValueTooLong)
        );
        let total: Vec<Xattr> = (0..3)
            .map(|i| x(&format!("user.{i}"), &vec![0; MAX_XATTR_VALUE]))
            .collect();
        assert_eq!(xattrs_within_bounds(&total), Err(MetaError::XattrsTooLarge));
        let long = vec![x(&"u".repeat(MAX_XATTR_NAME + 1), b"")];
        assert_eq!(
            xattrs_within_bounds(&long),
            Err(MetaError::XattrNameTooLong)
        );
        assert_eq!(
            xattrs_within_bounds(&[x("", b"")]),
            Err(MetaError::XattrNameEmpty)
        );
        let owner = EntryMeta {
            owner: Some("a".repeat(MAX_OWNER_NAME + 1)),
            ..EntryMeta::default()
        };
        assert_eq!(owner.check(), Err(MetaError::OwnerNameTooLong));
    }
}
