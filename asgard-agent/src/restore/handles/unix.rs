//! Folder handles on Unix: `cap-std` directories, opened for reading (not `O_PATH`, so that they
//! can be synced); every call is relative to one (`openat`, `mkdirat`, `renameat`, `unlinkat`,
//! `readlinkat`, `fstatat` with `AT_SYMLINK_NOFOLLOW`), on Linux through `openat2` with
//! `RESOLVE_BENEATH` where the kernel has it.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt};
use cap_std::fs::{Dir, OpenOptions};

use super::Open;

/// What `lstat` says about an entry.
pub(crate) type Meta = cap_std::fs::Metadata;

/// An open folder below (or at) the target.
pub(crate) struct Folder(Dir);

fn no_follow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.follow(FollowSymlinks::No);
    o
}

impl AsFd for Folder {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Folder {
    /// The target folder itself, the path resolved as usual.
    pub(super) fn open_root(path: &Path) -> io::Result<Folder> {
        let f = std::fs::File::open(path)?;
        if !f.metadata()?.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        Ok(Folder(Dir::from_std_file(f)))
    }

    /// Opens the folder `name` in `parent` for reading without following a link (`O_NOFOLLOW`),
    /// and checks that it is a folder.
    pub(super) fn open_folder(parent: &Arc<Folder>, name: &OsStr) -> io::Result<Folder> {
        let mut opts = no_follow();
        opts.read(true).maybe_dir(true);
        let f = parent.0.open_with(name, &opts)?;
        if !f.metadata()?.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        Ok(Folder(Dir::from_std_file(f.into_std())))
    }

    pub(super) fn lstat(&self, name: &OsStr) -> io::Result<Meta> {
        self.0.symlink_metadata(name)
    }

    pub(super) fn mkdir(&self, name: &OsStr) -> io::Result<()> {
        self.0.create_dir(name)
    }

    /// Opens a file in this folder; a link at `name` is an error (`O_NOFOLLOW`), and creating
    /// is `O_EXCL`.
    pub(super) fn open_file(&self, name: &OsStr, how: Open) -> io::Result<std::fs::File> {
        let mut opts = no_follow();
        match how {
            Open::Read => opts.read(true),
            Open::ReadWrite => opts.read(true).write(true),
            // Windows attributes have no meaning here.
            Open::CreateNew(_attributes) => opts.read(true).write(true).create_new(true),
        };
        Ok(self.0.open_with(name, &opts)?.into_std())
    }

    /// Removes a file or a link (the link itself).
    pub(super) fn remove(&self, name: &OsStr) -> io::Result<()> {
        self.0.remove_file_or_symlink(name)
    }

    /// Renames within this folder; a link at `to` is replaced, not followed.
    pub(super) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        self.0.rename(from, &self.0, to)
    }

    pub(super) fn read_link(&self, name: &OsStr) -> io::Result<PathBuf> {
        self.0.read_link_contents(name)
    }

    /// Creates a link with exactly the text `target` (absolute targets too).
    pub(super) fn symlink(&self, target: &Path, name: &OsStr, _dest: &Path) -> io::Result<()> {
        self.0.symlink_contents(target, name)
    }

    /// Creates the hard link `to_name` in `to` to the file `name` in this folder; a link at
    /// `name` is linked itself, never followed (`linkat` without `AT_SYMLINK_FOLLOW`).
    pub(super) fn hard_link(&self, name: &OsStr, to: &Folder, to_name: &OsStr) -> io::Result<()> {
        rustix::fs::linkat(&self.0, name, &to.0, to_name, rustix::fs::AtFlags::empty())?;
        Ok(())
    }

    /// Makes what was renamed into this folder durable (`fsync` of the folder).
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.0.try_clone()?.into_std_file().sync_all()
    }
}
