//! The metadata of restored entries: owner, mode, extended attributes (POSIX ACLs included) and
//! times, set through open handles (never through a path that could lead through a link).
//!
//! **Order**, for each entry: owner first (`chown` clears setuid/setgid), then the extended
//! attributes (a POSIX access ACL moves the group bits of the mode), then the mode, then the
//! mtime last (nothing after it changes it). Files get theirs on the temp file before it is made
//! durable and renamed; links on the temp link before the rename; folders after every file and
//! link of the restore is in place, deepest first ([`super::run`]), so that neither a restrictive
//! mode locks the restore out of its own folders nor a default ACL is inherited by restored files.
//!
//! **Owners**: only a restore run as root (euid 0) gives entries away: by name where this machine
//! knows the recorded name, else by number (`--numeric-owner`: always by number), like tar. A
//! normal user keeps its own ownership silently. **Windows restores no owners**: the recorded
//! `DOMAIN\name` is for the record (giving a file away needs `SeRestorePrivilege`, and the
//! account may not exist on the restoring machine); restored entries belong to the restoring user.
//!
//! **setuid/setgid** come back only with the recorded owner (group): as root, a file whose owner
//! is unknown (a version from before owners were recorded) or could not be set loses the bit,
//! so a restore never makes a set-id program of someone it does not belong to. A normal user's
//! files are its own, the bits are set (the kernel drops setgid for a group the user is not in).
//!
//! **What may fail quietly**: an owner or an extended attribute the file system or the user does
//! not allow is a warning, counted per kind of failure (one line at the end of the run with a
//! count and an example), not an error: the content is there and checked. A restored file whose
//! mode or mtime cannot be set is an error as before; for folders, links and files found up to
//! date those are warnings too.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use asgard_core::Lang;
use asgard_core::protocol::VersionInfo;

use super::handles::Folder;
use crate::owners::Owners;
use crate::present::restore::{self as text, Noted, Part, Why};

/// The kind of failure, for counting.
pub(crate) fn why(e: &io::Error) -> Why {
    #[cfg(unix)]
    if let Some(code) = e.raw_os_error() {
        use rustix::io::Errno;
        if code == Errno::PERM.raw_os_error() || code == Errno::ACCESS.raw_os_error() {
            return Why::NotPermitted;
        }
        if code == Errno::NOTSUP.raw_os_error() || code == Errno::OPNOTSUPP.raw_os_error() {
            return Why::NotSupported;
        }
    }
    match e.kind() {
        io::ErrorKind::PermissionDenied => Why::NotPermitted,
        io::ErrorKind::Unsupported => Why::NotSupported,
        _ => Why::Other(e.to_string()),
    }
}

/// Sets the recorded metadata on restored entries and collects what could not be set.
#[cfg_attr(windows, allow(dead_code, reason = "Windows restores no owners"))]
pub(crate) struct Applier {
    owners: Owners,
    /// `--numeric-owner`: owners by recorded number, never by name.
    numeric: bool,
    /// Whether this restore gives entries to their recorded owners (euid 0).
    as_root: bool,
    warnings: Mutex<BTreeMap<(Part, Why), Noted>>,
}

/// The uid and gid to give an entry, and whether each one is the recorded one once set.
#[cfg_attr(windows, allow(dead_code, reason = "Windows restores no owners"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ids {
    uid: Option<u32>,
    gid: Option<u32>,
}

impl Applier {
    /// For this process: as root when the effective uid is 0 (Unix).
    pub(crate) fn new(numeric_owner: bool) -> Applier {
        #[cfg(unix)]
        let as_root = nix::unistd::geteuid().is_root();
        #[cfg(not(unix))]
        let as_root = false;
        Applier::with(as_root, numeric_owner)
    }

    pub(crate) fn with(as_root: bool, numeric_owner: bool) -> Applier {
        Applier {
            owners: Owners::default(),
            numeric: numeric_owner,
            as_root,
            warnings: Mutex::new(BTreeMap::new()),
        }
    }

    fn note(&self, part: Part, e: &io::Error, dest: &Path, detail: Option<String>) {
        let mut w = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        w.entry((part, why(e)))
            .and_modify(|n| n.count += 1)
            .or_insert_with(|| Noted {
                count: 1,
                example: dest.to_owned(),
                detail,
            });
    }

    /// What could not be set, one entry per kind of failure.
    pub(crate) fn noted(&self) -> Vec<(Part, Why, Noted)> {
        let w = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        w.iter()
            .map(|((p, why), n)| (*p, why.clone(), n.clone()))
            .collect()
    }

    /// The warnings of the run, one line per kind of failure.
    pub(crate) fn warnings(&self, lang: Lang) -> Vec<String> {
        self.noted()
            .into_iter()
            .map(|(part, why, n)| text::metadata_not_set(part, &why, &n, lang))
            .collect()
    }

    /// The owner to set: only as root, by name unless numeric, else by number; nothing known,
    /// nothing set.
    #[cfg_attr(windows, allow(dead_code, reason = "Windows restores no owners"))]
    fn ids(&self, v: &VersionInfo) -> Ids {
        if !self.as_root {
            return Ids {
                uid: None,
                gid: None,
            };
        }
        let m = &v.meta;
        // -1 means "leave as is" to chown: never a recorded id.
        let valid = |id: Option<u32>| id.filter(|&i| i != u32::MAX);
        Ids {
            uid: valid(
                self.owners
                    .restore_uid(m.uid, m.owner.as_deref(), self.numeric),
            ),
            gid: valid(
                self.owners
                    .restore_gid(m.gid, m.group.as_deref(), self.numeric),
            ),
        }
    }

    /// The mode to set: setuid/setgid only where the entry belongs to its recorded owner (group)
    /// or the restore runs as a normal user (see the module docs). `owner_set`/`group_set`: the
    /// recorded owner (group) was given.
    #[cfg_attr(windows, allow(dead_code, reason = "Windows has no modes"))]
    fn mode(&self, mode: u32, owner_set: bool, group_set: bool) -> u32 {
        let mut mode = mode & 0o7777;
        if self.as_root && !owner_set {
            mode &= !0o4000;
        }
        if self.as_root && !group_set {
            mode &= !0o2000;
        }
        mode
    }

    /// Whether an existing file with the version's content lacks the version's mode, mtime or
    /// (as root) owner, so that [`Applier::file`] should set them.
    pub(crate) fn differs(&self, file: &std::fs::File, v: &VersionInfo) -> bool {
        let Ok(m) = file.metadata() else { return true };
        if crate::platform::mtime_ns(&m) != v.mtime_ns {
            return true;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let ids = self.ids(v);
            (v.mode != 0 && m.mode() & 0o7777 != self.mode(v.mode, true, true))
                || ids.uid.is_some_and(|u| u != m.uid())
                || ids.gid.is_some_and(|g| g != m.gid())
        }
        #[cfg(not(unix))]
        {
            use crate::platform::{attr, attributes};
            v.attributes != 0
                && attributes(&m) & attr::RESTORABLE != v.attributes & attr::RESTORABLE
        }
    }

    /// A restored regular file, its open temp file (or the open file found up to date, `strict`
    /// false) `file`, which is `name` in `dir`: owner, extended attributes, mode, mtime through
    /// `file`; on Windows mtime, creation time and attributes through `name` opened as itself
    /// and pinned (`Folder::open_file_attributes`). With `strict`, a mode, attribute or mtime
    /// that cannot be set is an error.
    pub(crate) fn file(
        &self,
        file: &std::fs::File,
        dir: &Folder,
        name: &std::ffi::OsStr,
        v: &VersionInfo,
        dest: &Path,
        strict: bool,
    ) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            let _ = (dir, name);
            self.fd(file.as_fd(), v, dest, strict)
        }
        #[cfg(windows)]
        {
            let _ = file;
            windows::file(self, dir, name, v, dest, strict)
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = (file, dir, name, v, dest, strict);
            Ok(())
        }
    }

    /// A restored folder, through its handle; every failure is a warning.
    pub(crate) fn folder(&self, dir: &Folder, v: &VersionInfo, dest: &Path) {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            let _ = self.fd(dir.as_fd(), v, dest, false);
        }
        #[cfg(windows)]
        windows::folder(self, dir, v, dest);
        #[cfg(not(any(unix, windows)))]
        let _ = (dir, v, dest);
    }

    /// A restored link, `name` in `parent` (the temp link before its rename): owner and mtime of
    /// the link itself, never of what it points to. Failures are warnings. (Linux keeps no
    /// `user.*` attributes on links and no mode; Windows: nothing is set.)
    pub(crate) fn link(
        &self,
        parent: &Folder,
        name: &std::ffi::OsStr,
        v: &VersionInfo,
        dest: &Path,
    ) {
        #[cfg(unix)]
        {
            use rustix::fs::{AtFlags, Gid, Uid, chownat, utimensat};
            let ids = self.ids(v);
            if (ids.uid.is_some() || ids.gid.is_some())
                && let Err(e) = chownat(
                    parent,
                    name,
                    ids.uid.map(Uid::from_raw),
                    ids.gid.map(Gid::from_raw),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
            {
                self.note(Part::Owner, &e.into(), dest, None);
            }
            if let Err(e) = utimensat(
                parent,
                name,
                &unix::timestamps(v.mtime_ns),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                self.note(Part::Time, &e.into(), dest, None);
            }
        }
        #[cfg(not(unix))]
        let _ = (parent, name, v, dest);
    }

    /// Owner, extended attributes, mode and mtime through an open descriptor (file or folder).
    #[cfg(unix)]
    fn fd(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        v: &VersionInfo,
        dest: &Path,
        strict: bool,
    ) -> io::Result<()> {
        use rustix::fs::{Gid, Mode, Uid, XattrFlags, fchmod, fchown, fsetxattr, futimens};
        use std::os::unix::ffi::OsStrExt;

        let ids = self.ids(v);
        let mut owner_set = false;
        let mut group_set = false;
        if ids.uid.is_some() || ids.gid.is_some() {
            match fchown(fd, ids.uid.map(Uid::from_raw), ids.gid.map(Gid::from_raw)) {
                Ok(()) => {
                    owner_set = ids.uid.is_some();
                    group_set = ids.gid.is_some();
                }
                Err(e) => self.note(Part::Owner, &e.into(), dest, None),
            }
        }
        for x in &v.meta.xattrs {
            let name = std::ffi::OsStr::from_bytes(&x.name.0);
            if let Err(e) = fsetxattr(fd, name, &x.value.0, XattrFlags::empty()) {
                let detail = Some(String::from_utf8_lossy(&x.name.0).into_owned());
                self.note(Part::Xattr, &e.into(), dest, detail);
            }
        }
        let mut result = Ok(());
        let mut fail = |part: Part, e: io::Error| {
            if strict {
                if result.is_ok() {
                    result = Err(e);
                }
            } else {
                self.note(part, &e, dest, None);
            }
        };
        if v.mode != 0 {
            let mode = self.mode(v.mode, owner_set, group_set);
            if let Err(e) = fchmod(fd, Mode::from_bits_truncate(mode)) {
                fail(Part::Mode, e.into());
            }
        }
        if let Err(e) = futimens(fd, &unix::timestamps(v.mtime_ns)) {
            fail(Part::Time, e.into());
        }
        result
    }
}

#[cfg(unix)]
mod unix {
    use rustix::fs::{Timespec, Timestamps, UTIME_OMIT};

    /// The mtime `ns` (nanoseconds since the epoch), the access time left as it is.
    pub(super) fn timestamps(ns: i64) -> Timestamps {
        const NS: i64 = 1_000_000_000;
        Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: ns.div_euclid(NS),
                tv_nsec: ns.rem_euclid(NS),
            },
        }
    }
}

/// Windows: times (mtime, creation time) and attributes (read-only, hidden, system, archive, not
/// indexed: [`attr::RESTORABLE`]), exactly as recorded (a version with attributes 0, from Linux or
/// from before they were recorded, keeps what the file system gives). Both are set through the
/// entry opened as itself and pinned ([`super::handles::Pinned`]: a link is never followed, and
/// the entry cannot be swapped while its attributes are set by its path). A file also gets its
/// hidden/system/archive bits when its temp file is created (`handles::Place::create_temp`), so
/// it is never visible without them; they are set again here, after the content, together with
/// read-only (which would forbid writing the content). Folders get theirs after everything in
/// them ([`super::run`]), so neither read-only nor system locks the restore out.
#[cfg(windows)]
mod windows {
    use std::ffi::OsStr;
    use std::fs::FileTimes;
    use std::io;
    use std::os::windows::fs::FileTimesExt;
    use std::path::Path;

    use asgard_core::protocol::VersionInfo;

    use super::super::handles::Pinned;
    use super::{Applier, Folder, Part};
    use crate::platform::{attr, ns_to_system_time};

    fn times(v: &VersionInfo) -> FileTimes {
        let t = FileTimes::new().set_modified(ns_to_system_time(v.mtime_ns));
        match v.meta.btime_ns {
            Some(b) => t.set_created(ns_to_system_time(b)),
            None => t,
        }
    }

    /// Times, then attributes (read-only last); each failure goes to `fail`.
    fn apply(entry: &Pinned, v: &VersionInfo, mut fail: impl FnMut(Part, io::Error)) {
        if let Err(e) = entry.file().set_times(times(v)) {
            fail(Part::Time, e);
        }
        if v.attributes != 0
            && let Err(e) = entry.set_attributes(v.attributes & attr::RESTORABLE)
        {
            fail(Part::Mode, e);
        }
    }

    pub(super) fn file(
        a: &Applier,
        dir: &Folder,
        name: &OsStr,
        v: &VersionInfo,
        dest: &Path,
        strict: bool,
    ) -> io::Result<()> {
        let mut result = Ok(());
        let mut fail = |part: Part, e: io::Error| {
            if strict {
                if result.is_ok() {
                    result = Err(e);
                }
            } else {
                a.note(part, &e, dest, None);
            }
        };
        match dir.open_file_attributes(name) {
            Ok(entry) => apply(&entry, v, &mut fail),
            Err(e) => fail(Part::Time, e),
        }
        result
    }

    pub(super) fn folder(a: &Applier, dir: &Folder, v: &VersionInfo, dest: &Path) {
        match dir.open_attributes() {
            Ok(entry) => apply(&entry, v, |part, e| a.note(part, &e, dest, None)),
            Err(e) => a.note(Part::Time, &e, dest, None),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
