//! One server process owns a data directory: an exclusive lock on `<data_dir>/asgard.lock`, held
//! for the lifetime of the process (the OS releases it when the process ends, even on a crash).

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

#[cfg(test)]
mod tests {
    use super::*;

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
