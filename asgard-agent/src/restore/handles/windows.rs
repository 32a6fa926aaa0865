//! Folder "handles" on Windows: a checked `\\?\` path, pinned by an open handle of the folder
//! itself and of each of its ancestors.
//!
//! Why not `cap-std` here: it builds each path from the folder handle's final path name with a
//! buffer of `MAX_PATH`, so below about 260 characters it fails (`ERROR_MORE_DATA`, seen under
//! Wine), and long paths must keep working. So each folder is opened with
//! `FILE_FLAG_OPEN_REPARSE_POINT` (a link or junction is opened as itself, never followed) and
//! checked through that handle to be a real folder; the handle is kept without
//! `FILE_SHARE_DELETE`, so the folder can be neither renamed nor replaced (by a link or junction)
//! while the restore uses its path, and every folder keeps its parent pinned the same way. Files
//! are opened with `FILE_FLAG_OPEN_REPARSE_POINT` and checked through their handle to be regular
//! files; creating is `CREATE_NEW`. All paths are verbatim (`\\?\`): no length limit, no
//! normalisation of names.

use std::ffi::OsStr;
use std::io;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf, Prefix};
use std::sync::Arc;

use super::{Open, is_link};
use crate::platform::attr;

/// What `lstat` says about an entry.
pub(crate) type Meta = std::fs::Metadata;

const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
const FILE_SHARE_READ: u32 = 0x1;
const FILE_SHARE_WRITE: u32 = 0x2;
const FILE_SHARE_DELETE: u32 = 0x4;
const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
const FILE_READ_ATTRIBUTES: u32 = 0x80;
const FILE_WRITE_ATTRIBUTES: u32 = 0x100;

/// An open folder below (or at) the target.
pub(crate) struct Folder {
    /// Its verbatim path.
    path: PathBuf,
    /// Its own handle: keeps it from being renamed or replaced.
    _pin: std::fs::File,
    /// Its parent, pinned as long as this folder is used.
    _parent: Option<Arc<Folder>>,
}

/// `path` in verbatim form (`\\?\C:\...`, `\\?\UNC\server\share\...`).
fn verbatim(path: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    let mut out = match abs.components().next() {
        Some(std::path::Component::Prefix(p)) => match p.kind() {
            Prefix::Disk(_) => PathBuf::from(r"\\?\"),
            Prefix::UNC(_, _) => {
                let rest = abs.as_os_str().to_string_lossy();
                return Ok(PathBuf::from(format!(
                    r"\\?\UNC\{}",
                    rest.trim_start_matches('\\')
                )));
            }
            _ => return Ok(abs),
        },
        _ => return Ok(abs),
    };
    out.push(abs.as_os_str());
    Ok(out)
}

/// Opens a folder as itself (a link or junction is not followed) and checks through the handle
/// that it is a real folder; the handle lets others read and write in it, but not delete or
/// rename it.
fn pin_folder(path: &Path) -> io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_dir() || is_link(&meta) {
        return Err(io::Error::from(io::ErrorKind::NotADirectory));
    }
    Ok(f)
}

impl Folder {
    /// The target folder itself (the path resolved as usual, then pinned).
    pub(super) fn open_root(path: &Path) -> io::Result<Folder> {
        let path = verbatim(&std::fs::canonicalize(path)?)?;
        Ok(Folder {
            _pin: pin_folder(&path)?,
            path,
            _parent: None,
        })
    }

    /// Opens the folder `name` in `parent`: it must be a real folder, not a link.
    pub(super) fn open_folder(parent: &Arc<Folder>, name: &OsStr) -> io::Result<Folder> {
        let path = parent.path.join(name);
        Ok(Folder {
            _pin: pin_folder(&path)?,
            path,
            _parent: Some(parent.clone()),
        })
    }

    pub(super) fn lstat(&self, name: &OsStr) -> io::Result<Meta> {
        std::fs::symlink_metadata(self.path.join(name))
    }

    pub(super) fn mkdir(&self, name: &OsStr) -> io::Result<()> {
        std::fs::create_dir(self.path.join(name))
    }

    /// Opens a file in this folder as itself (`FILE_FLAG_OPEN_REPARSE_POINT`) and checks through
    /// the handle that it is a regular file; creating is `CREATE_NEW`.
    pub(super) fn open_file(&self, name: &OsStr, how: Open) -> io::Result<std::fs::File> {
        let mut opts = std::fs::OpenOptions::new();
        opts.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE);
        match how {
            Open::Read => opts.read(true),
            Open::ReadWrite => opts.read(true).write(true),
            Open::CreateNew(attributes) => opts
                .read(true)
                .write(true)
                .create_new(true)
                .attributes(attributes & attr::ON_CREATE),
        };
        let f = opts.open(self.path.join(name))?;
        let meta = f.metadata()?;
        if !meta.is_file() || is_link(&meta) {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(f)
    }

    /// Removes a file or a link (the link itself; a folder link or junction with `remove_dir`).
    pub(super) fn remove(&self, name: &OsStr) -> io::Result<()> {
        let path = self.path.join(name);
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_attributes() & FILE_ATTRIBUTE_DIRECTORY != 0 {
            if !is_link(&meta) {
                return Err(io::Error::from(io::ErrorKind::IsADirectory));
            }
            std::fs::remove_dir(path)
        } else {
            std::fs::remove_file(path)
        }
    }

    /// Renames within this folder (`MoveFileExW`, replacing): a link at `to` is replaced, not
    /// followed.
    pub(super) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        std::fs::rename(self.path.join(from), self.path.join(to))
    }

    pub(super) fn read_link(&self, name: &OsStr) -> io::Result<PathBuf> {
        std::fs::read_link(self.path.join(name))
    }

    /// Creates a link with exactly the text `target`: a folder link when the target (seen from
    /// `dest`'s folder) is a folder, else a file link (a dangling target counts as a file).
    pub(super) fn symlink(&self, target: &Path, name: &OsStr, dest: &Path) -> io::Result<()> {
        let target_is_dir = dest.parent().is_some_and(|d| d.join(target).is_dir());
        let link = self.path.join(name);
        if target_is_dir {
            std::os::windows::fs::symlink_dir(target, link)
        } else {
            std::os::windows::fs::symlink_file(target, link)
        }
    }

    /// Creates the hard link `to_name` in `to` to the file `name` in this folder.
    pub(super) fn hard_link(&self, name: &OsStr, to: &Folder, to_name: &OsStr) -> io::Result<()> {
        std::fs::hard_link(self.path.join(name), to.path.join(to_name))
    }

    /// This folder, opened as itself for its times and attributes (see [`Pinned`]).
    pub(crate) fn open_attributes(&self) -> io::Result<Pinned> {
        Pinned::open(self.path.clone(), true)
    }

    /// The regular file `name` in this folder, opened as itself for its times and attributes
    /// (see [`Pinned`]); a link there is an error, never followed.
    pub(crate) fn open_file_attributes(&self, name: &OsStr) -> io::Result<Pinned> {
        Pinned::open(self.path.join(name), false)
    }

    /// Clears `FILE_ATTRIBUTE_READONLY` of a file in this folder (the lint is about Unix modes).
    #[allow(clippy::permissions_set_readonly_false)]
    pub(super) fn clear_read_only(&self, name: &OsStr) -> io::Result<()> {
        let path = self.path.join(name);
        let mut perms = std::fs::symlink_metadata(&path)?.permissions();
        perms.set_readonly(false);
        std::fs::set_permissions(path, perms)
    }
}

/// A file or folder opened as itself (`FILE_FLAG_OPEN_REPARSE_POINT`, checked not to be a link)
/// for its times and attributes (`FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES`, no data access,
/// so it can be opened beside the restore's own handles), and pinned: the handle does not share
/// delete, so while it is open the entry can be neither renamed nor replaced (by a link or
/// anything else), and its verbatim path, below folders pinned the same way, names exactly this
/// entry.
///
/// That is what makes [`Pinned::set_attributes`] safe to do by path: Rust's std sets no
/// attribute but read-only (its `Permissions` carry the others only from an existing file), the
/// handle-based `SetFileInformationByHandle` is reachable only through `unsafe` FFI (`windows`,
/// `windows-sys`: forbidden here), and the crates with safe wrappers for attributes by handle
/// (`winapi-util`, `winx`, `cap-primitives`) only read them or pass std's `Permissions` on.
/// `winsafe` wraps `SetFileAttributesW` safely (feature `kernel` only: no dependencies, a few
/// seconds of build, links `kernel32`/`user32` that every Windows program has), by a `&str`
/// path: a verbatim `\\?\` path has no length limit, and a name that is not valid Unicode (an
/// unpaired surrogate) fails with an error, never reaches another entry.
pub(crate) struct Pinned {
    file: std::fs::File,
    path: PathBuf,
}

impl Pinned {
    fn open(path: PathBuf, folder: bool) -> io::Result<Pinned> {
        let mut flags = FILE_FLAG_OPEN_REPARSE_POINT;
        if folder {
            flags |= FILE_FLAG_BACKUP_SEMANTICS;
        }
        let file = std::fs::OpenOptions::new()
            .access_mode(FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
            .custom_flags(flags)
            .open(&path)?;
        let meta = file.metadata()?;
        if is_link(&meta) || (folder && !meta.is_dir()) {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        if !folder && !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(Pinned { file, path })
    }

    /// The open handle (times are set through it).
    pub(crate) fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// Gives the entry exactly the attributes of [`attr::RESTORABLE`] that are in `attributes`
    /// (the others in `attributes` are ignored; the file system keeps its own).
    pub(crate) fn set_attributes(&self, attributes: u32) -> io::Result<()> {
        use winsafe::co::FILE_ATTRIBUTE as A;
        let path = self.path.to_str().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidFilename,
                "attributes not set: the name is not valid Unicode",
            )
        })?;
        let mut flags = A::default();
        for (bit, flag) in [
            (attr::READONLY, A::READONLY),
            (attr::HIDDEN, A::HIDDEN),
            (attr::SYSTEM, A::SYSTEM),
            (attr::ARCHIVE, A::ARCHIVE),
            (attr::NOT_CONTENT_INDEXED, A::NOT_CONTENT_INDEXED),
        ] {
            if attributes & bit != 0 {
                flags |= flag;
            }
        }
        if flags == A::default() {
            // "None of them" is NORMAL: 0 is not a valid argument.
            flags = A::NORMAL;
        }
        winsafe::SetFileAttributes(path, flags).map_err(|e| {
            // Windows error codes are below 2^31.
            io::Error::from_raw_os_error(u32::from(e) as i32)
        })
    }
}
