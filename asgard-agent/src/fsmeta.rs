//! What a backup records of an entry beyond its content, size, mtime, mode and attributes
//! (issue 12): owner ids and names, extended attributes (POSIX ACLs included), the hard-link group
//! and, on Windows, the creation time. The result is an [`EntryMeta`] for the commit entry.
//!
//! - **Links are never followed.** A link's own owner and attributes are read (`l*` calls); a
//!   file's from its open handle, between the two `fstat`s of the read, so that an attribute
//!   changed during the read moves the change time and the read is repeated; a folder's by path
//!   (following only for a root that is a link to a folder: the user named that folder).
//! - **Which attributes** (Linux): `user.*` always; `security.*`, `trusted.*` and the POSIX ACLs
//!   (`system.posix_acl_access`, `system.posix_acl_default`) only when the agent runs as root.
//!   Others cannot read `trusted.*` at all, and only root may set the rest on a restore. Further
//!   `system.*` names belong to the file system itself. Sorted by name, as the server requires.
//!   Other Unix systems record no attributes.
//! - **Bounds** of [`asgard_core::meta`]: an entry over them is backed up without its attributes;
//!   the caller warns (the run still succeeds). A file system without attribute support (ENOTSUP)
//!   gives none, silently; an attribute that vanishes between listing and reading is left out.
//! - **Hard links**: a regular file with more than one link gets a group key from blake3 of its
//!   (device, inode), the same for every path of that inode (within a run and across runs while
//!   the inode lives; a restore links only paths whose versions also share content and mtime).
//!   Windows: (volume serial number, file index) of the handle the content is read through; std
//!   has no link count there (its `symlink_metadata` gives none on stable), so [`hardlink_key`]
//!   by metadata alone knows no group and the reader reads every link of a file itself.
//! - **Owner names** come from [`Owners`] (one per run, cached, shared by the scanner threads).
//!   Windows records the owner's account (`DOMAIN\name`) and no numbers, for the record only
//!   (see `fsmeta/windows.rs`); an owner that cannot be read is left out, the entry is backed up.

use std::fs::{File, Metadata};
use std::path::Path;

use asgard_core::meta::{EntryMeta, MetaError};

use crate::owners::Owners;

/// Where to read an entry's attributes from.
#[derive(Clone, Copy)]
#[cfg_attr(
    not(any(target_os = "linux", windows)),
    allow(
        dead_code,
        reason = "only Linux reads attributes, only Windows owners by handle"
    )
)]
pub(crate) enum Source<'a> {
    /// An open regular file (its attributes belong to the content being read).
    File(&'a File),
    /// A link or a folder by path, the link itself (`follow` false) or what it points to.
    Path { path: &'a Path, follow: bool },
}

/// Why an entry's extended attributes were left out.
#[derive(Debug)]
pub(crate) enum XattrsDropped {
    /// Over the bounds of [`asgard_core::meta`].
    Bounds(MetaError),
    /// Reading them failed (other than "not supported here").
    Io(std::io::Error),
}

/// An entry's metadata, and why its attributes are missing if they are.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub(crate) meta: EntryMeta,
    pub(crate) dropped: Option<XattrsDropped>,
}

/// Reads [`EntryMeta`] for one run.
#[derive(Debug)]
pub(crate) struct MetaReader {
    owners: Owners,
    /// Runs as root: the privileged attribute namespaces are read too.
    privileged: bool,
}

impl MetaReader {
    /// A reader for this process (privileged when the effective user is root).
    pub(crate) fn for_process() -> MetaReader {
        MetaReader::new(running_as_root())
    }

    pub(crate) fn new(privileged: bool) -> MetaReader {
        MetaReader {
            owners: Owners::default(),
            privileged,
        }
    }

    /// The metadata of the entry `meta` describes (from `symlink_metadata`, or the open file's
    /// `metadata`), with its attributes read from `src`.
    pub(crate) fn read(&self, meta: &Metadata, src: Source<'_>) -> Read {
        let mut out = Read {
            meta: self.ids(meta, src),
            dropped: None,
        };
        #[cfg(windows)]
        let hardlink = windows::hardlink_key(src);
        #[cfg(not(windows))]
        let hardlink = hardlink_key(meta);
        out.meta.hardlink = hardlink;
        out.meta.btime_ns = creation_time_ns(meta);
        match xattrs::read(src, self.privileged) {
            Ok(list) => match asgard_core::meta::xattrs_within_bounds(&list) {
                Ok(()) => out.meta.xattrs = list,
                Err(e) => out.dropped = Some(XattrsDropped::Bounds(e)),
            },
            Err(xattrs::Failed::Bounds(e)) => out.dropped = Some(XattrsDropped::Bounds(e)),
            Err(xattrs::Failed::Io(e)) => out.dropped = Some(XattrsDropped::Io(e)),
        }
        out
    }

    /// Owner and group, by number and (where this machine knows them, within the bound) name.
    fn ids(&self, meta: &Metadata, src: Source<'_>) -> EntryMeta {
        #[cfg(unix)]
        {
            let _ = src;
            use std::os::unix::fs::MetadataExt;
            let bounded =
                |n: Option<String>| n.filter(|n| n.len() <= asgard_core::meta::MAX_OWNER_NAME);
            EntryMeta {
                uid: Some(meta.uid()),
                gid: Some(meta.gid()),
                owner: bounded(self.owners.user_name(meta.uid())),
                group: bounded(self.owners.group_name(meta.gid())),
                ..EntryMeta::default()
            }
        }
        #[cfg(windows)]
        {
            let _ = meta;
            EntryMeta {
                owner: windows::owner(src, &self.owners),
                ..EntryMeta::default()
            }
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = (meta, src, &self.owners);
            EntryMeta::default()
        }
    }
}

/// Whether the effective user is root.
fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        nix::unistd::geteuid().is_root()
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// The hard-link group of a regular file with more than one link: blake3 of (device, inode).
/// Unix only: on Windows the metadata has no link count (see the module docs).
pub(crate) fn hardlink_key(meta: &Metadata) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.file_type().is_file() && meta.nlink() > 1).then(|| inode_key(meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The group key of one inode.
#[cfg_attr(not(any(unix, windows)), allow(dead_code))]
pub(crate) fn inode_key(dev: u64, ino: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&dev.to_le_bytes());
    h.update(&ino.to_le_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// Windows: the creation time (restored there); elsewhere not recorded (Linux cannot set it).
fn creation_time_ns(meta: &Metadata) -> Option<i64> {
    if cfg!(windows) {
        meta.created().ok().map(crate::platform::system_time_to_ns)
    } else {
        None
    }
}

/// Whether an attribute name is recorded (see the module docs).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn wanted(name: &[u8], privileged: bool) -> bool {
    name.starts_with(b"user.")
        || (privileged
            && (name.starts_with(b"security.")
                || name.starts_with(b"trusted.")
                || name == b"system.posix_acl_access"
                || name == b"system.posix_acl_default"))
}

#[cfg(target_os = "linux")]
mod xattrs {
    use super::{Source, wanted};
    use asgard_core::meta::{Blob, MAX_XATTR_NAME, MAX_XATTR_VALUE, MAX_XATTRS, MetaError, Xattr};
    use rustix::fs as rfs;
    use rustix::io::Errno;

    pub(super) enum Failed {
        /// Known to be over the bounds before all values were read.
        Bounds(MetaError),
        Io(std::io::Error),
    }

    impl From<Errno> for Failed {
        fn from(e: Errno) -> Failed {
            Failed::Io(e.into())
        }
    }

    /// Tries a size query and a read until the read fits (the list or a value may grow between
    /// the two calls: ERANGE).
    pub(super) fn sized(
        query: impl Fn() -> Result<usize, Errno>,
        get: impl Fn(&mut [u8]) -> Result<usize, Errno>,
        limit: usize,
        over: MetaError,
    ) -> Result<Vec<u8>, Failed> {
        for _ in 0..4 {
            let size = query()?;
            if size > limit {
                return Err(Failed::Bounds(over));
            }
            let mut buf = vec![0u8; size];
            if size == 0 {
                return Ok(buf);
            }
            match get(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(Errno::RANGE) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Failed::Io(Errno::RANGE.into()))
    }

    /// The wanted attributes of `src`, sorted by name; none where the file system has none.
    pub(super) fn read(src: Source<'_>, privileged: bool) -> Result<Vec<Xattr>, Failed> {
        // A list of more names than the bound allows, each at most MAX_XATTR_NAME long, is
        // refused before it is read; unwanted names count, so this is generous.
        let list_limit = 16 * MAX_XATTRS * (MAX_XATTR_NAME + 1);
        let listed = sized(
            || match src {
                Source::File(f) => rfs::flistxattr_query(f),
                Source::Path {
                    path,
                    follow: false,
                } => rfs::llistxattr_query(path),
                Source::Path { path, follow: true } => rfs::listxattr_query(path),
            },
            |buf| match src {
                Source::File(f) => rfs::flistxattr(f, buf),
                Source::Path {
                    path,
                    follow: false,
                } => rfs::llistxattr(path, buf),
                Source::Path { path, follow: true } => rfs::listxattr(path, buf),
            },
            list_limit,
            MetaError::TooManyXattrs,
        );
        let listed = match listed {
            Ok(l) => l,
            Err(Failed::Io(e)) if unsupported(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names: Vec<&[u8]> = listed
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty() && wanted(n, privileged))
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.len() > MAX_XATTRS {
            return Err(Failed::Bounds(MetaError::TooManyXattrs));
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if name.len() > MAX_XATTR_NAME {
                return Err(Failed::Bounds(MetaError::XattrNameTooLong));
            }
            let value = sized(
                || match src {
                    Source::File(f) => rfs::fgetxattr_query(f, name),
                    Source::Path {
                        path,
                        follow: false,
                    } => rfs::lgetxattr_query(path, name),
                    Source::Path { path, follow: true } => rfs::getxattr_query(path, name),
                },
                |buf| match src {
                    Source::File(f) => rfs::fgetxattr(f, name, buf),
                    Source::Path {
                        path,
                        follow: false,
                    } => rfs::lgetxattr(path, name, buf),
                    Source::Path { path, follow: true } => rfs::getxattr(path, name, buf),
                },
                MAX_XATTR_VALUE,
                MetaError::XattrValueTooLong,
            );
            match value {
                Ok(v) => out.push(Xattr {
                    name: Blob(name.to_vec()),
                    value: Blob(v),
                }),
                // Removed since it was listed.
                Err(Failed::Io(e)) if e.raw_os_error() == Some(Errno::NODATA.raw_os_error()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The file system (or this kind of entry) has no extended attributes.
    pub(super) fn unsupported(e: &std::io::Error) -> bool {
        e.raw_os_error() == Some(Errno::NOTSUP.raw_os_error())
            || e.raw_os_error() == Some(Errno::OPNOTSUPP.raw_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
mod xattrs {
    use super::Source;
    use asgard_core::meta::{MetaError, Xattr};

    #[allow(dead_code)]
    pub(super) enum Failed {
        Bounds(MetaError),
        Io(std::io::Error),
    }

    /// Other systems record no attributes.
    pub(super) fn read(src: Source<'_>, privileged: bool) -> Result<Vec<Xattr>, Failed> {
        let _ = (src, privileged);
        Ok(Vec::new())
    }
}

#[cfg(windows)]
mod windows;

#[cfg(test)]
mod tests;
