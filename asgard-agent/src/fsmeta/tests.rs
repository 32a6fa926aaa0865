//! Reading metadata from real temp files: attributes, bounds, hard-link keys, owners.

use super::*;

#[test]
fn wanted_names_by_privilege() {
    assert!(wanted(b"user.comment", false));
    for name in [
        &b"security.selinux"[..],
        b"trusted.overlay.opaque",
        b"system.posix_acl_access",
        b"system.posix_acl_default",
    ] {
        assert!(!wanted(name, false), "{name:?}");
        assert!(wanted(name, true), "{name:?}");
    }
    // Other system attributes belong to the file system; a prefix alone is no namespace.
    assert!(!wanted(b"system.nfs4_acl", true));
    assert!(!wanted(b"system.posix_acl_accessx", true));
    assert!(!wanted(b"user", true));
}

/// The group key of a regular file as the reader gets it: through the handle its content is
/// read from (Windows knows the link count only there).
fn file_key(p: &Path) -> Option<u64> {
    let file = File::open(p).unwrap();
    let meta = file.metadata().unwrap();
    MetaReader::new(false)
        .read(&meta, Source::File(&file))
        .meta
        .hardlink
}

#[test]
fn hardlink_key_is_shared_by_the_links_of_one_inode_only() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, single) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("single"),
    );
    std::fs::write(&a, b"one inode").unwrap();
    std::fs::write(&single, b"one inode").unwrap();
    assert_eq!(file_key(&a), None, "a file with one link has no group");
    if std::fs::hard_link(&a, &b).is_err() {
        return; // a file system without hard links
    }
    let ka = file_key(&a);
    assert!(ka.is_some());
    assert_eq!(ka, file_key(&b));
    assert_eq!(file_key(&single), None);
    // By path, as the scanner meets them before reading: the same group on Unix; on Windows
    // std's metadata has no link count, so none there (the read above finds it).
    let by_meta = |p: &Path| hardlink_key(&std::fs::symlink_metadata(p).unwrap());
    if cfg!(unix) {
        assert_eq!((by_meta(&a), by_meta(&b)), (ka, ka));
    } else {
        assert_eq!((by_meta(&a), by_meta(&b)), (None, None));
    }
    assert_eq!(by_meta(&single), None);
    // A folder (several links: its entries' `..`) is never a hard-link group.
    std::fs::create_dir_all(dir.path().join("d/e")).unwrap();
    let d = dir.path().join("d");
    assert_eq!(by_meta(&d), None);
    let read = MetaReader::new(false).read(
        &std::fs::symlink_metadata(&d).unwrap(),
        Source::Path {
            path: &d,
            follow: false,
        },
    );
    assert_eq!(read.meta.hardlink, None);
    // Other inodes get other keys.
    assert_ne!(inode_key(1, 2), inode_key(2, 1));
    assert_eq!(inode_key(1, 2), inode_key(1, 2));
}

#[cfg(unix)]
#[test]
fn owner_ids_and_names() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    let reader = MetaReader::new(false);
    let meta = std::fs::symlink_metadata(&f).unwrap();
    let read = reader.read(
        &meta,
        Source::Path {
            path: &f,
            follow: false,
        },
    );
    assert_eq!(read.meta.uid, Some(meta.uid()));
    assert_eq!(read.meta.gid, Some(meta.gid()));
    if meta.uid() == 0 {
        assert_eq!(read.meta.owner.as_deref(), Some("root"));
    }
    if meta.gid() == 0 {
        assert_eq!(read.meta.group.as_deref(), Some("root"));
    }
    // As root: a file given to root explicitly, and one given to ids nobody has (number only).
    if running_as_root() {
        std::os::unix::fs::chown(&f, Some(0), Some(0)).unwrap();
        let meta = std::fs::symlink_metadata(&f).unwrap();
        let read = reader.read(
            &meta,
            Source::Path {
                path: &f,
                follow: false,
            },
        );
        assert_eq!(
            (read.meta.owner.as_deref(), read.meta.group.as_deref()),
            (Some("root"), Some("root"))
        );
        let nobody = 3_999_999_001;
        std::os::unix::fs::chown(&f, Some(nobody), Some(nobody)).unwrap();
        let meta = std::fs::symlink_metadata(&f).unwrap();
        let read = reader.read(
            &meta,
            Source::Path {
                path: &f,
                follow: false,
            },
        );
        assert_eq!((read.meta.uid, read.meta.gid), (Some(nobody), Some(nobody)));
        assert_eq!((read.meta.owner, read.meta.group), (None, None));
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use asgard_core::meta::{Blob, MAX_XATTRS};
    use rustix::fs::{XattrFlags, setxattr};

    fn set(path: &Path, name: &str, value: &[u8]) -> bool {
        setxattr(path, name, value, XattrFlags::empty()).is_ok()
    }

    fn names(read: &Read) -> Vec<String> {
        read.meta
            .xattrs
            .iter()
            .map(|x| String::from_utf8_lossy(&x.name.0).into_owned())
            .collect()
    }

    #[test]
    fn user_xattrs_are_read_back_sorted_from_the_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"content").unwrap();
        if !set(&f, "user.zeta", b"last") {
            return; // no user attributes on this file system
        }
        assert!(set(&f, "user.alpha", b"\x00\xffbinary"));
        let file = File::open(&f).unwrap();
        let meta = file.metadata().unwrap();
        let read = MetaReader::new(false).read(&meta, Source::File(&file));
        assert!(read.dropped.is_none(), "{:?}", read.dropped);
        assert_eq!(names(&read), ["user.alpha", "user.zeta"]);
        assert_eq!(read.meta.xattrs[0].value, Blob(b"\x00\xffbinary".to_vec()));
        assert_eq!(read.meta.xattrs[1].value, Blob(b"last".to_vec()));
        assert_eq!(read.meta.check(), Ok(()));
        // By path the same; a link to it has none of its own (never followed).
        let by_path = MetaReader::new(false).read(
            &meta,
            Source::Path {
                path: &f,
                follow: false,
            },
        );
        assert_eq!(by_path.meta.xattrs, read.meta.xattrs);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let lmeta = std::fs::symlink_metadata(&link).unwrap();
        let of_link = MetaReader::new(false).read(
            &lmeta,
            Source::Path {
                path: &link,
                follow: false,
            },
        );
        assert!(of_link.meta.xattrs.is_empty(), "{:?}", of_link.meta.xattrs);
        assert!(of_link.dropped.is_none());
        // Following it (a root that is a link to a folder) reads the target's.
        let followed = MetaReader::new(false).read(
            &meta,
            Source::Path {
                path: &link,
                follow: true,
            },
        );
        assert_eq!(followed.meta.xattrs, read.meta.xattrs);
    }

    #[test]
    fn folder_xattrs_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        std::fs::create_dir(&d).unwrap();
        if !set(&d, "user.tag", b"blue") {
            return;
        }
        let meta = std::fs::symlink_metadata(&d).unwrap();
        let read = MetaReader::new(false).read(
            &meta,
            Source::Path {
                path: &d,
                follow: false,
            },
        );
        assert_eq!(names(&read), ["user.tag"]);
    }

    /// `trusted.*` (and ACLs) only when running as root; as root, only with privilege.
    #[test]
    fn privileged_namespaces_only_with_privilege() {
        if !running_as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        if !set(&f, "trusted.asgard", b"t") || !set(&f, "user.u", b"u") {
            return;
        }
        let meta = std::fs::symlink_metadata(&f).unwrap();
        let src = Source::Path {
            path: &f,
            follow: false,
        };
        assert_eq!(names(&MetaReader::new(false).read(&meta, src)), ["user.u"]);
        assert_eq!(
            names(&MetaReader::new(true).read(&meta, src)),
            ["trusted.asgard", "user.u"]
        );
    }

    /// More attributes than the bound: the entry is read without any, and says why.
    #[test]
    fn too_many_xattrs_are_dropped_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        for i in 0..=MAX_XATTRS {
            if !set(&f, &format!("user.a{i:03}"), b"v") {
                return; // no user attributes, or no room for this many
            }
        }
        let file = File::open(&f).unwrap();
        let meta = file.metadata().unwrap();
        let read = MetaReader::new(false).read(&meta, Source::File(&file));
        assert!(read.meta.xattrs.is_empty());
        assert!(
            matches!(
                read.dropped,
                Some(XattrsDropped::Bounds(MetaError::TooManyXattrs))
            ),
            "{:?}",
            read.dropped
        );
        // The rest of the metadata is still there.
        assert!(read.meta.uid.is_some());
        // Exactly the bound is fine.
        rustix::fs::removexattr(&f, "user.a000").unwrap();
        let read = MetaReader::new(false).read(&meta, Source::File(&file));
        assert!(read.dropped.is_none(), "{:?}", read.dropped);
        assert_eq!(read.meta.xattrs.len(), MAX_XATTRS);
    }

    /// A value over the bound is refused by its size, before it is read.
    #[test]
    fn oversized_value_is_refused_by_its_size() {
        use rustix::io::Errno;
        let reads = std::cell::Cell::new(0);
        let got = xattrs::sized(
            || Ok(asgard_core::meta::MAX_XATTR_VALUE + 1),
            |_| {
                reads.set(reads.get() + 1);
                Ok(0)
            },
            asgard_core::meta::MAX_XATTR_VALUE,
            MetaError::XattrValueTooLong,
        );
        assert!(matches!(
            got,
            Err(xattrs::Failed::Bounds(MetaError::XattrValueTooLong))
        ));
        assert_eq!(reads.get(), 0);
        // A value that grows between the size query and the read is asked for again.
        let size = std::cell::Cell::new(3);
        let got = xattrs::sized(
            || Ok(size.get()),
            |buf| {
                if buf.len() < 5 {
                    size.set(5);
                    return Err(Errno::RANGE);
                }
                buf.copy_from_slice(b"grown");
                Ok(5)
            },
            100,
            MetaError::XattrValueTooLong,
        );
        assert!(matches!(got, Ok(v) if v == b"grown"));
    }

    /// A file system without extended attributes (or an entry that cannot have any) gives
    /// none, silently; other errors are reported.
    #[test]
    fn not_supported_is_no_error() {
        use rustix::io::Errno;
        assert!(xattrs::unsupported(&Errno::NOTSUP.into()));
        assert!(xattrs::unsupported(&Errno::OPNOTSUPP.into()));
        assert!(!xattrs::unsupported(&Errno::ACCESS.into()));
        assert!(!xattrs::unsupported(&Errno::IO.into()));
    }
}

/// Windows: the owner's account is recorded (`DOMAIN\name`), for files by their handle and for
/// folders by path, looked up once per owner; no numbers. Under Wine every file is owned by
/// the one Wine user, so the test compares what two entries made by this process say.
#[cfg(windows)]
#[test]
fn windows_owner_account_is_recorded_once_per_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (f, g, d) = (
        dir.path().join("f"),
        dir.path().join("g"),
        dir.path().join("d"),
    );
    std::fs::write(&f, b"x").unwrap();
    std::fs::write(&g, b"y").unwrap();
    std::fs::create_dir(&d).unwrap();
    let reader = MetaReader::new(false);
    let of_file = |p: &Path| {
        let file = File::open(p).unwrap();
        reader
            .read(&file.metadata().unwrap(), Source::File(&file))
            .meta
    };
    let mf = of_file(&f);
    let owner = mf
        .owner
        .clone()
        .expect("the owner of a new file is recorded");
    assert!(!owner.is_empty() && owner.len() <= asgard_core::meta::MAX_OWNER_NAME);
    assert_eq!((mf.uid, mf.gid, mf.group.as_deref()), (None, None, None));
    assert_eq!(mf.check(), Ok(()));
    assert_eq!(of_file(&g).owner.as_deref(), Some(owner.as_str()));
    let md = reader
        .read(
            &std::fs::symlink_metadata(&d).unwrap(),
            Source::Path {
                path: &d,
                follow: false,
            },
        )
        .meta;
    assert_eq!(
        md.owner.as_deref(),
        Some(owner.as_str()),
        "a folder by path"
    );
    // Three entries, one owner: one lookup.
    assert_eq!(reader.owners.accounts_looked_up(), 1);
    // An entry that cannot be opened has no owner, and that is no error.
    let gone = dir.path().join("gone");
    let read = reader.read(
        &std::fs::symlink_metadata(&d).unwrap(),
        Source::Path {
            path: &gone,
            follow: false,
        },
    );
    assert_eq!(read.meta.owner, None);
    assert!(read.dropped.is_none());
}
