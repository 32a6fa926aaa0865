//! Setting metadata through handles: which owner and mode bits a restore gives, what it warns
//! about instead of failing, and that links get their own times.

use super::*;

use asgard_core::protocol::{EntryMeta, VersionKind};

/// A file version with this mode and these Windows attributes, mtime 1.5 s after the epoch.
pub(crate) fn version(mode: u32, attributes: u32) -> VersionInfo {
    VersionInfo {
        id: 1,
        time_us: 0,
        size: 0,
        mtime_ns: 1_500_000_000,
        mode,
        attributes,
        hash: None,
        deleted: false,
        kind: VersionKind::File,
        symlink_target: None,
        meta: EntryMeta::default(),
        meta_only: false,
    }
}

/// The handle of the folder `dir`, as a restore into it has it.
fn folder(dir: &Path) -> std::sync::Arc<Folder> {
    let target = super::super::handles::Target::open(dir, false).unwrap();
    target.dir(dir, false).unwrap()
}

#[test]
fn setuid_and_setgid_only_with_the_recorded_owner_when_root() {
    let root = Applier::with(true, false);
    assert_eq!(root.mode(0o6755, false, false), 0o755);
    assert_eq!(root.mode(0o6755, true, false), 0o4755);
    assert_eq!(root.mode(0o6755, false, true), 0o2755);
    assert_eq!(root.mode(0o7777, true, true), 0o7777);
    // Sticky bit and permissions are kept either way; type bits never reach chmod.
    assert_eq!(root.mode(0o101777, false, false), 0o1777);
    // A normal user's restored files are its own.
    let user = Applier::with(false, false);
    assert_eq!(user.mode(0o6755, false, false), 0o6755);
}

/// Unix only: it needs the user database to know `root` (Windows restores no owners).
#[cfg(unix)]
#[test]
fn owners_only_as_root_by_name_unless_numeric() {
    let mut v = version(0o644, 0);
    v.meta = EntryMeta {
        uid: Some(4242),
        gid: Some(4343),
        owner: Some("root".into()),
        group: Some("kein-solcher-name-xyz".into()),
        ..EntryMeta::default()
    };
    let none = Ids {
        uid: None,
        gid: None,
    };
    assert_eq!(Applier::with(false, false).ids(&v), none);
    // The name `root` is known here (uid 0); the group name is not, its number is used.
    assert_eq!(
        Applier::with(true, false).ids(&v),
        Ids {
            uid: Some(0),
            gid: Some(4343)
        }
    );
    assert_eq!(
        Applier::with(true, true).ids(&v),
        Ids {
            uid: Some(4242),
            gid: Some(4343)
        }
    );
    // Nothing recorded (a version from before owners were recorded): nothing set.
    assert_eq!(Applier::with(true, false).ids(&version(0o644, 0)), none);
}

#[cfg(unix)]
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_gets_owner_xattrs_mode_and_nanosecond_mtime() {
    use asgard_core::protocol::{Blob, Xattr};
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let file = std::fs::File::create(&p).unwrap();
    let mut v = version(0o4750, 0);
    v.mtime_ns = 1_700_000_000_123_456_789;
    v.meta = EntryMeta {
        uid: Some(1234),
        gid: Some(2345),
        xattrs: vec![Xattr {
            name: Blob(b"user.asgard".to_vec()),
            value: Blob(b"\x00wert\xff".to_vec()),
        }],
        ..EntryMeta::default()
    };
    let a = Applier::new(false);
    a.file(&file, &folder(dir.path()), "f".as_ref(), &v, &p, true)
        .unwrap();
    drop(file);
    let m = std::fs::symlink_metadata(&p).unwrap();
    assert_eq!(m.mtime(), 1_700_000_000);
    assert_eq!(m.mtime_nsec(), 123_456_789);
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (1234, 2345));
        // setuid survives because it was set after the owner.
        assert_eq!(m.mode() & 0o7777, 0o4750);
    } else {
        assert_eq!(m.mode() & 0o7777, 0o4750);
    }
    // tmpfs and ext4 keep user.* attributes; where the file system refuses, it is a warning.
    match rustix::fs::getxattr(&p, "user.asgard", &mut [0u8; 64][..]) {
        Ok(n) => assert_eq!(n, 6),
        Err(_) => assert_eq!(a.noted().len(), 1, "{:?}", a.noted()),
    }
    assert!(!a.differs(&std::fs::File::open(&p).unwrap(), &v));
    let mut other = v.clone();
    other.mode = 0o600;
    assert!(a.differs(&std::fs::File::open(&p).unwrap(), &other));
}

#[cfg(target_os = "linux")]
#[test]
fn refused_attributes_are_counted_warnings_not_errors() {
    use asgard_core::protocol::{Blob, Xattr};
    let dir = tempfile::tempdir().unwrap();
    let mut v = version(0o644, 0);
    // No such namespace: every kernel refuses it (EOPNOTSUPP).
    v.meta.xattrs = vec![Xattr {
        name: Blob(b"bogus.asgard".to_vec()),
        value: Blob(b"x".to_vec()),
    }];
    let a = Applier::with(false, false);
    for name in ["a", "b", "c"] {
        let p = dir.path().join(name);
        let file = std::fs::File::create(&p).unwrap();
        a.file(&file, &folder(dir.path()), name.as_ref(), &v, &p, true)
            .unwrap();
    }
    let noted = a.noted();
    assert_eq!(noted.len(), 1, "{noted:?}");
    let (part, why, n) = &noted[0];
    assert_eq!((*part, why), (Part::Xattr, &Why::NotSupported));
    assert_eq!(n.count, 3);
    assert_eq!(n.example, dir.path().join("a"));
    let lines = a.warnings(Lang::De);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("Warnung: erweiterte Attribute (z. B. bogus.asgard) konnten bei 3 "),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("nicht unterstützt"), "{}", lines[0]);
}

#[cfg(target_os = "linux")]
#[test]
fn a_link_gets_its_own_owner_and_mtime_not_its_targets() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("ziel");
    std::fs::write(&target, b"x").unwrap();
    let before = std::fs::metadata(&target).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("l")).unwrap();
    let t = super::super::handles::Target::open(dir.path(), false).unwrap();
    let folder = t.dir(dir.path(), false).unwrap();
    let mut v = version(0, 0);
    v.kind = VersionKind::Symlink;
    v.mtime_ns = 1_600_000_000_000_000_001;
    v.meta.uid = Some(3456);
    v.meta.gid = Some(4567);
    let a = Applier::new(false);
    a.link(&folder, std::ffi::OsStr::new("l"), &v, Path::new("l"));
    assert!(a.noted().is_empty(), "{:?}", a.noted());
    let m = std::fs::symlink_metadata(dir.path().join("l")).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_000, 1));
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (3456, 4567));
    }
    let after = std::fs::metadata(&target).unwrap();
    assert_eq!(after.mtime_nsec(), before.mtime_nsec());
    assert_eq!((after.uid(), after.mtime()), (before.uid(), before.mtime()));
}

/// The attributes a Windows restore sets, as the file system reports them back.
#[cfg(windows)]
fn restorable(p: &Path) -> u32 {
    use crate::platform::attr::RESTORABLE;
    crate::platform::attributes(&std::fs::symlink_metadata(p).unwrap()) & RESTORABLE
}

/// Issue 12: a folder gets its hidden and system attributes (and its times) back, exactly as
/// recorded, through its handle; a later version without them takes them away again. (Under
/// Wine they live in the `user.DOSATTRIB` extended attribute: this reads them back as a Windows
/// program does.)
#[cfg(windows)]
#[test]
fn windows_a_folder_gets_hidden_and_system_back() {
    use crate::platform::attr::{ARCHIVE, HIDDEN, SYSTEM};
    const DIRECTORY: u32 = 0x10;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("Ordner");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("drin.txt"), b"x").unwrap();
    assert_eq!(restorable(&sub) & (HIDDEN | SYSTEM), 0);
    let a = Applier::with(false, false);
    let mut v = version(0, DIRECTORY | HIDDEN | SYSTEM | ARCHIVE);
    v.kind = VersionKind::Dir;
    v.mtime_ns = 1_600_000_000_000_000_000;
    a.folder(&folder(&sub), &v, &sub);
    assert!(a.noted().is_empty(), "{:?}", a.noted());
    let got = restorable(&sub);
    assert_eq!(
        got & (HIDDEN | SYSTEM),
        HIDDEN | SYSTEM,
        "attributes {got:#x}"
    );
    let m = std::fs::metadata(&sub).unwrap();
    assert_eq!(crate::platform::mtime_ns(&m), v.mtime_ns);
    // What lies inside is still reachable.
    assert_eq!(std::fs::read(sub.join("drin.txt")).unwrap(), b"x");
    // Exactly as recorded: a version without them clears them.
    v.attributes = DIRECTORY;
    a.folder(&folder(&sub), &v, &sub);
    assert!(a.noted().is_empty(), "{:?}", a.noted());
    assert_eq!(restorable(&sub) & (HIDDEN | SYSTEM), 0);
}

/// Issue 12: a file found with the version's content but without its attributes (a restore
/// over a tree where only `attrib` changed) is seen to differ and gets them, with its times.
#[cfg(windows)]
#[test]
fn windows_a_file_found_up_to_date_gets_its_attributes() {
    use crate::platform::attr::{ARCHIVE, HIDDEN, READONLY, SYSTEM};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gleich.txt");
    std::fs::write(&p, b"gleich").unwrap();
    let a = Applier::with(false, false);
    let mut v = version(0, READONLY | HIDDEN | SYSTEM | ARCHIVE);
    v.mtime_ns = crate::platform::mtime_ns(&std::fs::metadata(&p).unwrap());
    let read = std::fs::File::open(&p).unwrap();
    assert!(a.differs(&read, &v), "only the attributes differ");
    a.file(
        &read,
        &folder(dir.path()),
        "gleich.txt".as_ref(),
        &v,
        &p,
        false,
    )
    .unwrap();
    drop(read);
    assert!(a.noted().is_empty(), "{:?}", a.noted());
    let got = restorable(&p);
    assert_eq!(
        got & (READONLY | HIDDEN | SYSTEM),
        READONLY | HIDDEN | SYSTEM,
        "attributes {got:#x}"
    );
    assert!(!a.differs(&std::fs::File::open(&p).unwrap(), &v));
    // Versions that recorded no attributes (Linux, older agents) leave them as they are.
    let unknown = VersionInfo {
        attributes: 0,
        ..v.clone()
    };
    assert!(!a.differs(&std::fs::File::open(&p).unwrap(), &unknown));
}
