//! A restore that cannot leave its target: every file and folder is reached from an open handle
//! of the target folder, one name at a time, and no symbolic link is followed on the way.
//!
//! The target folder (`--to`; for a restore in place the restored folder, or a single file's
//! folder) is the one path resolved the ordinary way: the user named it (and the backup followed
//! it the same way). Below it, each folder is looked
//! at with `lstat` relative to its parent's handle and opened with `O_NOFOLLOW` (`cap-std`, which
//! on Linux also uses `openat2` with `RESOLVE_BENEATH`); files are created with `O_EXCL`, opened
//! with `O_NOFOLLOW`, renamed with `renameat` (which replaces a link, never follows it) and removed
//! with `unlinkat`. So neither a link the restore has just created nor one that was already there
//! (planted by whoever can write into the target) can lead a write outside.
//!
//! Where a link lies where the backup has a folder, it is replaced by a folder only with
//! `--overwrite` (the link itself is removed, never followed); otherwise every entry below it is
//! skipped with a warning ([`Blocked::Link`]) and the run ends with exit code 1.
//!
//! Folder handles are cached by their path below the target (at most [`CACHED_DIRS`], then the
//! cache starts over), so that the files of one folder cost one `lstat` of their own name each,
//! not a walk from the target.
//!
//! **Windows**: `cap-std` works there too (it resolves each component itself, opening with
//! `FILE_FLAG_OPEN_REPARSE_POINT`, and checks reparse points), and its paths are built from the
//! folder handle's final path name in `\\?\` form, so paths longer than 260 characters keep
//! working. A folder that is any reparse point (symbolic link or junction) counts as a link. Only
//! a restored *link* is created by its full path there: `cap-std` refuses absolute link targets on
//! Windows; its folder has just been checked through the handles, and the link is then moved into
//! place relative to the folder handle, so a changed folder makes that rename fail instead.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use asgard_core::Lang;
use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt};
use cap_std::fs::{Dir, Metadata, OpenOptions};

use crate::present::restore as text;

/// At most this many folder handles are kept (then the cache starts over).
pub(crate) const CACHED_DIRS: usize = 256;

/// The prefix of a temp file beside its destination.
const TEMP_PREFIX: &str = ".asgard-restore-";

/// The target folder of a restore, open, and the folders below it opened so far.
pub(crate) struct Target {
    /// The target folder as the user named it (messages and the destinations' prefix).
    path: PathBuf,
    root: Arc<Dir>,
    /// Whether a link where the backup has a folder is replaced (`--overwrite`).
    overwrite: bool,
    /// Folders below the target (relative path) → their handle.
    dirs: Mutex<HashMap<PathBuf, Arc<Dir>>>,
}

/// Why a destination cannot be reached.
#[derive(Debug)]
pub(crate) enum Blocked {
    /// A symbolic link (or another reparse point) lies where the backup has a folder: its path.
    Link(PathBuf),
    /// Something other than a folder lies where the backup has a folder: its path.
    NotAFolder(PathBuf),
    /// The destination is not below the target (never built that way; refused all the same).
    Outside(PathBuf),
    /// The file system refused (path, error).
    Io(PathBuf, io::Error),
}

impl Blocked {
    /// The message for a file that is not restored because of this.
    pub(crate) fn describe(&self, dest: &Path, lang: Lang) -> String {
        match self {
            Blocked::Link(link) => text::link_in_the_way(link, dest, lang),
            Blocked::NotAFolder(path) => text::not_a_folder(path, lang),
            Blocked::Outside(path) => text::outside_target(path, lang),
            Blocked::Io(path, e) => format!("{}: {e}", path.display()),
        }
    }
}

impl Target {
    /// Opens the target folder `path` (created first if needed, following links in it: the user
    /// named it). `overwrite`: a link where the backup has a folder is replaced by the folder.
    pub(crate) fn open(path: &Path, overwrite: bool) -> io::Result<Target> {
        std::fs::create_dir_all(path)?;
        // Opened for reading (not `O_PATH`, as `Dir::open_ambient_dir` does on Linux), so that
        // the folder handles can be synced.
        #[cfg(unix)]
        let root = {
            let f = std::fs::File::open(path)?;
            if !f.metadata()?.is_dir() {
                return Err(io::Error::from(io::ErrorKind::NotADirectory));
            }
            Dir::from_std_file(f)
        };
        #[cfg(not(unix))]
        let root = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Target {
            path: path.to_owned(),
            root: Arc::new(root),
            overwrite,
            dirs: Mutex::new(HashMap::new()),
        })
    }

    /// The place of `dest` (a path below the target): its folder, created as needed, and its
    /// name. No link is followed on the way.
    pub(crate) fn place(&self, dest: &Path) -> Result<Place, Blocked> {
        self.reach(dest, true)
    }

    /// The place of `dest` when its folders exist already: nothing is created or replaced.
    pub(crate) fn existing(&self, dest: &Path) -> Result<Place, Blocked> {
        self.reach(dest, false)
    }

    fn reach(&self, dest: &Path, create: bool) -> Result<Place, Blocked> {
        let outside = || Blocked::Outside(dest.to_owned());
        let rel = dest.strip_prefix(&self.path).map_err(|_| outside())?;
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(name) => parts.push(name),
                _ => return Err(outside()),
            }
        }
        let (name, folders) = parts.split_last().ok_or_else(outside)?;
        let dir = self.folder(folders, create)?;
        Ok(Place {
            dir,
            name: (*name).to_owned(),
        })
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<Dir>>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handle of the folder `parts` below the target: from the deepest cached ancestor down,
    /// one name at a time.
    fn folder(&self, parts: &[&OsStr], create: bool) -> Result<Arc<Dir>, Blocked> {
        let prefix = |k: usize| parts[..k].iter().collect::<PathBuf>();
        let (mut k, mut dir) = {
            let cache = self.cache();
            let mut k = parts.len();
            loop {
                if k == 0 {
                    break (0, self.root.clone());
                }
                if let Some(d) = cache.get(&prefix(k)) {
                    break (k, d.clone());
                }
                k -= 1;
            }
        };
        while k < parts.len() {
            let full = || self.path.join(prefix(k + 1));
            dir = Arc::new(self.step(&dir, parts[k], create, full)?);
            k += 1;
            let mut cache = self.cache();
            if cache.len() >= CACHED_DIRS {
                cache.clear();
            }
            cache.insert(prefix(k), dir.clone());
        }
        Ok(dir)
    }

    /// Opens the folder `name` in `parent` without following a link; creates it if missing (and
    /// `create`); replaces a link there by a folder only with `--overwrite`.
    fn step(
        &self,
        parent: &Dir,
        name: &OsStr,
        create: bool,
        full: impl Fn() -> PathBuf,
    ) -> Result<Dir, Blocked> {
        let io = |e| Blocked::Io(full(), e);
        match parent.symlink_metadata(name) {
            Ok(meta) if is_link(&meta) => {
                if !(create && self.overwrite) {
                    return Err(Blocked::Link(full()));
                }
                // The link itself goes, whatever it points to.
                parent.remove_file_or_symlink(name).map_err(io)?;
                make_dir(parent, name).map_err(io)?;
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(Blocked::NotAFolder(full())),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                make_dir(parent, name).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        }
        open_folder(parent, name).map_err(io)
    }
}

/// Opens the folder `name` in `parent` for reading (so that it can be synced; `open_dir_nofollow`
/// gives an `O_PATH` handle on Linux), without following a link: if the name was swapped for a
/// link since it was looked at, this fails instead of following it.
fn open_folder(parent: &Dir, name: &OsStr) -> io::Result<Dir> {
    let mut opts = no_follow();
    opts.read(true).maybe_dir(true);
    let f = parent.open_with(name, &opts)?;
    if !f.metadata()?.is_dir() {
        return Err(io::Error::from(io::ErrorKind::NotADirectory));
    }
    Ok(Dir::from_std_file(f.into_std()))
}

fn make_dir(parent: &Dir, name: &OsStr) -> io::Result<()> {
    match parent.create_dir(name) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// Whether an entry is a symbolic link, or on Windows any reparse point (junctions too).
pub(crate) fn is_link(meta: &Metadata) -> bool {
    #[cfg(windows)]
    {
        use cap_std::fs::MetadataExt;
        const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
        if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return true;
        }
    }
    meta.is_symlink()
}

/// Where one destination lies: its folder's handle and its name in it. Its temp file is
/// `.asgard-restore-<name>` in the same folder, so the final rename stays within one file system.
#[derive(Clone)]
pub(crate) struct Place {
    pub(crate) dir: Arc<Dir>,
    pub(crate) name: OsString,
}

fn no_follow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.follow(FollowSymlinks::No);
    o
}

impl Place {
    /// The temp file's name.
    pub(crate) fn temp_name(&self) -> OsString {
        let mut n = OsString::from(TEMP_PREFIX);
        n.push(&self.name);
        n
    }

    /// What is at the destination (a link is described, not followed).
    pub(crate) fn metadata(&self) -> io::Result<Metadata> {
        self.dir.symlink_metadata(&self.name)
    }

    /// The destination, opened for reading; a link there is an error, never followed.
    pub(crate) fn open_read(&self) -> io::Result<std::fs::File> {
        let f = self.dir.open_with(&self.name, no_follow().read(true))?;
        Ok(f.into_std())
    }

    /// The target text of the link at the destination.
    pub(crate) fn read_link(&self) -> io::Result<PathBuf> {
        self.dir.read_link_contents(&self.name)
    }

    /// Creates the temp file, empty, with the recorded Windows attributes (hidden, system,
    /// archive, not indexed); read-only follows in [`apply_metadata`], after the content. Whatever
    /// lies at the temp name from a crashed run (a link too) is removed first, not followed (on
    /// Windows, `CREATE_NEW` would also refuse a hidden leftover).
    ///
    /// Why at creation: `CreateFileW` takes the attributes of a new file, which is exposed safely
    /// (`OpenOptionsExt::attributes`); setting `HIDDEN` on an existing file would need
    /// `SetFileAttributesW` through `unsafe` FFI or another dependency. A restore always writes a
    /// fresh temp file and renames it into place, so creation time is the one moment needed.
    pub(crate) fn create_temp(&self, attributes: u32) -> io::Result<std::fs::File> {
        self.remove_temp_quietly()?;
        let mut opts = no_follow();
        opts.write(true).read(true).create_new(true);
        #[cfg(windows)]
        {
            use cap_std::fs::OpenOptionsExt;
            opts.attributes(attributes & crate::platform::attr::ON_CREATE);
        }
        #[cfg(not(windows))]
        let _ = attributes;
        Ok(self.dir.open_with(self.temp_name(), &opts)?.into_std())
    }

    /// The temp file, opened for reading and writing (a link there is an error).
    pub(crate) fn open_temp(&self) -> io::Result<std::fs::File> {
        let f = self
            .dir
            .open_with(self.temp_name(), no_follow().read(true).write(true))?;
        Ok(f.into_std())
    }

    fn remove_temp_quietly(&self) -> io::Result<()> {
        match self.dir.remove_file_or_symlink(self.temp_name()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes the temp file (or link), if there is one.
    pub(crate) fn remove_temp(&self) {
        let _ = self.remove_temp_quietly();
    }

    /// Moves the temp file (or link) over the destination: a link there is replaced, never
    /// followed. On Windows a read-only file in the way is made writable first (replacing it is
    /// what `--overwrite` asked for).
    pub(crate) fn rename_temp(&self) -> io::Result<()> {
        #[cfg(windows)]
        if let Ok(meta) = self.metadata()
            && meta.is_file()
            && meta.permissions().readonly()
        {
            clear_read_only(&self.dir, &self.name, meta.permissions())?;
        }
        self.dir.rename(self.temp_name(), &self.dir, &self.name)
    }

    /// Creates a symbolic link with exactly the target text `target` at the temp name. `dest` is
    /// the destination's full path (used on Windows only, see the module text).
    pub(crate) fn create_temp_link(&self, target: &Path, dest: &Path) -> io::Result<()> {
        self.remove_temp_quietly()?;
        #[cfg(unix)]
        {
            let _ = dest;
            self.dir.symlink_contents(target, self.temp_name())
        }
        #[cfg(not(unix))]
        {
            let folder = dest.parent().ok_or_else(|| io::Error::other("no folder"))?;
            // Only Windows distinguishes file and folder links; a dangling target counts as a
            // file.
            let target_is_dir = folder.join(target).is_dir();
            let link = folder.join(self.temp_name());
            #[cfg(windows)]
            if target_is_dir {
                std::os::windows::fs::symlink_dir(target, &link)?;
            } else {
                std::os::windows::fs::symlink_file(target, &link)?;
            }
            #[cfg(not(windows))]
            {
                let _ = (target_is_dir, link);
                return Err(io::Error::other("symbolic links are not supported here"));
            }
            // The link must have appeared in the folder checked through the handles.
            match self.dir.symlink_metadata(self.temp_name()) {
                Ok(meta) if is_link(&meta) => Ok(()),
                _ => Err(io::Error::other("the folder changed during the restore")),
            }
        }
    }
}

/// Mode bits (Unix) or the read-only bit (Windows) of a restored file, set through its open
/// handle: setuid/setgid are not restored; 0 means unknown.
pub(crate) fn apply_metadata(file: &std::fs::File, mode: u32, attributes: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = attributes;
        if mode != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o1777))?;
        }
    }
    #[cfg(windows)]
    {
        let _ = mode;
        if attributes & crate::platform::attr::READONLY != 0 {
            let mut perms = file.metadata()?.permissions();
            perms.set_readonly(true);
            file.set_permissions(perms)?;
        }
    }
    #[cfg(not(any(unix, windows)))]
    let _ = (file, mode, attributes);
    Ok(())
}

/// On Windows this clears only `FILE_ATTRIBUTE_READONLY` (the lint is about Unix modes).
#[cfg(windows)]
#[allow(clippy::permissions_set_readonly_false)]
fn clear_read_only(dir: &Dir, name: &OsStr, mut perms: cap_std::fs::Permissions) -> io::Result<()> {
    perms.set_readonly(false);
    dir.set_permissions(name, perms)
}

#[cfg(test)]
mod tests;
