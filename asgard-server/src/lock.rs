//! One server process owns a data directory: an exclusive lock on `<data_dir>/asgard.lock`, held
//! for the lifetime of the process (the OS releases it when the process ends, even on a crash).
//!
//! The data directory is private to the server's user: [`private_umask`] makes every file the
//! process creates 0600 and every folder 0700, and [`prepare_data_dir`] tightens a directory that
//! an older version (or a copy) left readable by others.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use asgard_core::Lang;

/// The held lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the lock of `data_dir` (which must exist) when it is free; `Ok(None)` when another process
/// holds it (a running server, or another admin command working in-process).
pub(crate) fn try_acquire(data_dir: &Path, lang: Lang) -> anyhow::Result<Option<DataDirLock>> {
    match acquire_inner(data_dir, lang)? {
        Ok(lock) => Ok(Some(lock)),
        Err(_held) => Ok(None),
    }
}

/// Takes the lock of `data_dir` (which must exist), or fails at once when another process holds it.
pub(crate) fn acquire(data_dir: &Path, lang: Lang) -> anyhow::Result<DataDirLock> {
    acquire_inner(data_dir, lang)?
}

/// The outer error: the lock file cannot be used at all; the inner one: another process holds it.
fn acquire_inner(data_dir: &Path, lang: Lang) -> anyhow::Result<anyhow::Result<DataDirLock>> {
    let path = data_dir.join("asgard.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| {
            format!(
                "{} {}",
                lang.pick(
                    "Sperrdatei kann nicht geöffnet werden:",
                    "Cannot open lock file"
                ),
                path.display()
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Ok(DataDirLock { _file: file, path })),
        Err(TryLockError::WouldBlock) => Ok(Err(anyhow!(
            "{}",
            crate::present::messages::data_dir_in_use(data_dir, &path, lang)
        ))),
        Err(TryLockError::Error(e)) => Err(e).with_context(|| {
            format!(
                "{} {}",
                lang.pick("Sperre kann nicht gesetzt werden:", "Cannot take lock"),
                path.display()
            )
        }),
    }
}

/// Makes every file and folder this process creates from now on private to its user (umask 077).
pub(crate) fn private_umask() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        rustix::process::umask(Mode::from_raw_mode(0o077));
    }
}

/// Makes `data_dir` and everything below it private: folders 0700, files 0600 (database, segments,
/// database copies, the admin socket, TLS key and certificate). Symbolic links are left alone and
/// not followed. Returns how many modes it changed (0 on a directory that was already private).
pub(crate) fn prepare_data_dir(data_dir: &Path, lang: Lang) -> anyhow::Result<usize> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;

        fn walk(p: &Path, changed: &mut usize) -> std::io::Result<()> {
            let meta = std::fs::symlink_metadata(p)?;
            let ft = meta.file_type();
            if ft.is_symlink() {
                return Ok(());
            }
            let want = if ft.is_dir() { 0o700 } else { 0o600 };
            if meta.permissions().mode() & 0o7777 != want {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(want))?;
                *changed += 1;
            }
            if ft.is_dir() {
                for e in std::fs::read_dir(p)? {
                    walk(&e?.path(), changed)?;
                }
            }
            Ok(())
        }
        let mut changed = 0;
        walk(data_dir, &mut changed).with_context(|| {
            format!(
                "{} {}",
                lang.pick(
                    "Rechte des Datenverzeichnisses können nicht gesetzt werden:",
                    "Cannot set the permissions of the data directory"
                ),
                data_dir.display()
            )
        })?;
        Ok(changed)
    }
    #[cfg(not(unix))]
    {
        let _ = (data_dir, lang);
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn prepare_data_dir_tightens_folders_and_files_and_leaves_links_alone() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("chunks/packs")).unwrap();
        std::fs::write(data.join("asgard.redb"), b"db").unwrap();
        std::fs::write(data.join("chunks/packs/seg-1"), b"seg").unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"x").unwrap();
        std::os::unix::fs::symlink(&outside, data.join("link")).unwrap();
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        for p in [&data, &data.join("chunks"), &data.join("chunks/packs")] {
            set(p, 0o755);
        }
        for p in [
            data.join("asgard.redb"),
            data.join("chunks/packs/seg-1"),
            outside.clone(),
        ] {
            set(&p, 0o644);
        }
        assert_eq!(prepare_data_dir(&data, Lang::De).unwrap(), 5);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("chunks/packs")), 0o700);
        assert_eq!(mode(&data.join("asgard.redb")), 0o600);
        assert_eq!(mode(&data.join("chunks/packs/seg-1")), 0o600);
        // The link's target outside the data dir keeps its mode.
        assert_eq!(mode(&outside), 0o644);
        assert_eq!(prepare_data_dir(&data, Lang::De).unwrap(), 0);
    }

    #[test]
    fn second_lock_is_refused_until_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), Lang::De).unwrap();
        let err = acquire(dir.path(), Lang::De).unwrap_err().to_string();
        assert!(err.contains("bereits von einem anderen"), "{err}");
        assert!(err.contains("asgard.lock"), "{err}");
        assert!(try_acquire(dir.path(), Lang::De).unwrap().is_none());
        drop(first);
        acquire(dir.path(), Lang::De).unwrap();
        assert!(try_acquire(dir.path(), Lang::De).unwrap().is_some());
    }
}
