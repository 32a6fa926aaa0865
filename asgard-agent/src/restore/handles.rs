//! A restore that cannot leave its target: every file and folder is reached from an open handle
//! of the target folder, one name at a time, and no symbolic link is followed on the way.
//!
//! The target folder (`--to`; for a restore in place the restored folder, or a single file's
//! folder) is the one path resolved the ordinary way: the user named it (and the backup followed
//! it the same way). Below it (`handles/unix.rs`), each folder is looked at with `lstat` relative
//! to its parent's handle and opened with `O_NOFOLLOW` (`cap-std`, which on Linux also uses
//! `openat2` with `RESOLVE_BENEATH`); files are created with `O_EXCL`, opened with `O_NOFOLLOW`,
//! renamed with `renameat` (which replaces a link, never follows it) and removed with `unlinkat`. So neither a link the restore has just created nor one that was already there
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
//! **Windows** (`handles/windows.rs`): `cap-std` fails there on paths longer than 260 characters (it
//! rebuilds paths from a `MAX_PATH` buffer), so each folder is a verbatim (`\\?\`) path opened
//! as itself (`FILE_FLAG_OPEN_REPARSE_POINT`), checked through that handle to be a real folder
//! (any reparse point, junctions too, counts as a link) and kept open without
//! `FILE_SHARE_DELETE`, so neither it nor its ancestors can be renamed or replaced while the
//! restore uses the path; files are opened as themselves and checked to be regular files.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use asgard_core::Lang;

use crate::present::restore as text;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::{Folder, Meta};
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{Folder, Meta, Pinned};

/// At most this many folder handles are kept (then the cache starts over).
pub(crate) const CACHED_DIRS: usize = 256;

/// The prefix of a temp file beside its destination.
const TEMP_PREFIX: &str = ".asgard-restore-";

/// How a file is opened below a folder handle; a link at its name is never followed.
pub(crate) enum Open {
    /// For reading.
    Read,
    /// For reading and writing.
    ReadWrite,
    /// Created new, for reading and writing, with these Windows attributes.
    CreateNew(u32),
}

/// The target folder of a restore, open, and the folders below it opened so far.
pub(crate) struct Target {
    /// The target folder as the user named it (messages and the destinations' prefix).
    path: PathBuf,
    root: Arc<Folder>,
    /// Whether a link where the backup has a folder is replaced (`--overwrite`).
    overwrite: bool,
    /// Folders below the target (relative path) → their handle.
    dirs: Mutex<HashMap<PathBuf, Arc<Folder>>>,
    /// Linux: one folder per file system (device number) in which entries were renamed or made
    /// since the last [`Target::sync_renames`].
    #[cfg(target_os = "linux")]
    renamed: Mutex<HashMap<u64, Arc<Folder>>>,
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
        Ok(Target {
            path: path.to_owned(),
            root: Arc::new(Folder::open_root(path)?),
            overwrite,
            dirs: Mutex::new(HashMap::new()),
            #[cfg(target_os = "linux")]
            renamed: Mutex::new(HashMap::new()),
        })
    }

    /// Notes that entries were renamed into (or made in) `dir`; they are made durable by
    /// [`Target::sync_renames`]. Linux: the folder's file system is remembered (a `syncfs` of it
    /// covers every folder on it, instead of one `fsync` per folder); elsewhere on Unix the
    /// folder is synced at once; on Windows a folder cannot be synced.
    pub(crate) fn renamed_in(&self, dir: &Arc<Folder>) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let dev = rustix::fs::fstat(&**dir)?.st_dev;
            let mut renamed = self.renamed.lock().unwrap_or_else(|e| e.into_inner());
            renamed.entry(dev).or_insert_with(|| dir.clone());
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        dir.sync()?;
        #[cfg(windows)]
        let _ = dir;
        Ok(())
    }

    /// Makes the renames noted by [`Target::renamed_in`] durable: on Linux one `syncfs` per file
    /// system they touched (the target's own included). An error names the folder whose file
    /// system could not be synced.
    pub(crate) fn sync_renames(&self) -> Result<(), (PathBuf, io::Error)> {
        #[cfg(target_os = "linux")]
        {
            let mut folders: Vec<Arc<Folder>> = {
                let mut renamed = self.renamed.lock().unwrap_or_else(|e| e.into_inner());
                renamed.drain().map(|(_, d)| d).collect()
            };
            if folders.is_empty() {
                folders.push(self.root.clone());
            }
            for dir in folders {
                rustix::fs::syncfs(&*dir).map_err(|e| (self.path.clone(), e.into()))?;
            }
        }
        Ok(())
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

    /// The handle of the folder `dest`: the target itself, or a folder below it (created, with
    /// its parents, when `create`). No link is followed on the way or at `dest`.
    pub(crate) fn dir(&self, dest: &Path, create: bool) -> Result<Arc<Folder>, Blocked> {
        self.folder(&self.parts(dest)?, create)
    }

    fn reach(&self, dest: &Path, create: bool) -> Result<Place, Blocked> {
        let parts = self.parts(dest)?;
        let (name, folders) = parts
            .split_last()
            .ok_or_else(|| Blocked::Outside(dest.to_owned()))?;
        let dir = self.folder(folders, create)?;
        Ok(Place {
            dir,
            name: (*name).to_owned(),
        })
    }

    /// The names of `dest` below the target (none for the target itself).
    fn parts<'a>(&self, dest: &'a Path) -> Result<Vec<&'a OsStr>, Blocked> {
        let outside = || Blocked::Outside(dest.to_owned());
        let rel = dest.strip_prefix(&self.path).map_err(|_| outside())?;
        rel.components()
            .map(|c| match c {
                Component::Normal(name) => Ok(name),
                _ => Err(outside()),
            })
            .collect()
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<Folder>>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handle of the folder `parts` below the target: from the deepest cached ancestor down,
    /// one name at a time.
    fn folder(&self, parts: &[&OsStr], create: bool) -> Result<Arc<Folder>, Blocked> {
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
        parent: &Arc<Folder>,
        name: &OsStr,
        create: bool,
        full: impl Fn() -> PathBuf,
    ) -> Result<Folder, Blocked> {
        let io = |e| Blocked::Io(full(), e);
        match parent.lstat(name) {
            Ok(meta) if is_link(&meta) => {
                if !(create && self.overwrite) {
                    return Err(Blocked::Link(full()));
                }
                // The link itself goes, whatever it points to.
                parent.remove(name).map_err(io)?;
                make_dir(parent, name).map_err(io)?;
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(Blocked::NotAFolder(full())),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                make_dir(parent, name).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        }
        // If the name was swapped for a link since the look, this fails instead of following it.
        Folder::open_folder(parent, name).map_err(io)
    }
}

fn make_dir(parent: &Folder, name: &OsStr) -> io::Result<()> {
    match parent.mkdir(name) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// Whether an entry is a symbolic link, or on Windows any reparse point (junctions too).
pub(crate) fn is_link(meta: &Meta) -> bool {
    #[cfg(windows)]
    {
        use std::os::windows::fs::MetadataExt;
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
    pub(crate) dir: Arc<Folder>,
    pub(crate) name: OsString,
}

impl Place {
    /// The temp file's name.
    pub(crate) fn temp_name(&self) -> OsString {
        let mut n = OsString::from(TEMP_PREFIX);
        n.push(&self.name);
        n
    }

    /// What is at the destination (a link is described, not followed).
    pub(crate) fn metadata(&self) -> io::Result<Meta> {
        self.dir.lstat(&self.name)
    }

    /// The destination, opened for reading; a link there is an error, never followed.
    pub(crate) fn open_read(&self) -> io::Result<std::fs::File> {
        self.dir.open_file(&self.name, Open::Read)
    }

    /// The target text of the link at the destination.
    pub(crate) fn read_link(&self) -> io::Result<PathBuf> {
        self.dir.read_link(&self.name)
    }

    /// Creates the temp file, empty, with the recorded Windows attributes (hidden, system,
    /// archive, not indexed); read-only follows with the rest of the metadata (`restore::meta`),
    /// after the content. Whatever lies at the temp name from a crashed run (a link too) makes
    /// the exclusive create fail; it is then removed, not followed, and the create repeated.
    ///
    /// Why at creation: `CreateFileW` takes the attributes of a new file, which is exposed safely
    /// (`OpenOptionsExt::attributes`); setting `HIDDEN` on an existing file would need
    /// `SetFileAttributesW` through `unsafe` FFI or another dependency. A restore always writes a
    /// fresh temp file and renames it into place, so creation time is the one moment needed.
    pub(crate) fn create_temp(&self, attributes: u32) -> io::Result<std::fs::File> {
        // Leftovers are rare: try first, remove only when something is there (saves a lookup
        // per file).
        match self
            .dir
            .open_file(&self.temp_name(), Open::CreateNew(attributes))
        {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.remove_temp_quietly()?;
                self.dir
                    .open_file(&self.temp_name(), Open::CreateNew(attributes))
            }
            r => r,
        }
    }

    /// The temp file, opened for reading and writing (a link there is an error).
    pub(crate) fn open_temp(&self) -> io::Result<std::fs::File> {
        self.dir.open_file(&self.temp_name(), Open::ReadWrite)
    }

    fn remove_temp_quietly(&self) -> io::Result<()> {
        match self.dir.remove(&self.temp_name()) {
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
            self.dir.clear_read_only(&self.name)?;
        }
        self.dir.rename(&self.temp_name(), &self.name)
    }

    /// Creates a hard link to the file `from` (a place whose file is in place and durable) at the
    /// temp name; neither name's link is followed (`linkat` without `AT_SYMLINK_FOLLOW`).
    pub(crate) fn create_temp_hard_link(&self, from: &Place) -> io::Result<()> {
        self.remove_temp_quietly()?;
        from.dir.hard_link(&from.name, &self.dir, &self.temp_name())
    }

    /// Creates a symbolic link with exactly the target text `target` at the temp name. `dest` is
    /// the destination's full path (Windows: whether the target is a folder is judged from it).
    pub(crate) fn create_temp_link(&self, target: &Path, dest: &Path) -> io::Result<()> {
        self.remove_temp_quietly()?;
        self.dir.symlink(target, &self.temp_name(), dest)
    }
}

#[cfg(test)]
mod tests;
