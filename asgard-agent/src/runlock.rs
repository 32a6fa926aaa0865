//! The run lock: one agent at a time writes the state folder.
//!
//! `backup` and `login` hold an exclusive lock on `<state dir>/agent.lock` for their whole run
//! (`File::try_lock`: `flock` on Unix, `LockFileEx` on Windows). The operating system drops the
//! lock when the process ends, however it ends, so a crashed run never leaves a stale lock behind.
//! A second run does not wait: a scheduled backup that finds the previous one still running simply
//! ends with exit code 1 and a clear message. Commands that only read (`list`, `restore`,
//! `schedule`) take no lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in the state folder.
pub(crate) const LOCK_FILE: &str = "agent.lock";

/// Held while the run lasts; the lock goes with the value (or the process).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    /// The lock file (the tests check where it is).
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests"))]
    pub(crate) path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another agent holds the lock (`holder`: its process id, when it could be read).
    #[error("the state folder is locked by another agent run ({})", path.display())]
    Busy { path: PathBuf, holder: Option<u32> },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Takes the run lock in `state_dir` (created if needed), or fails at once if another run holds
/// it. Writes this process's id into the file for the other side's message.
pub fn acquire(state_dir: &Path) -> Result<RunLock, LockError> {
    let path = state_dir.join(LOCK_FILE);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(io)?;
    // No truncate on open: the file may belong to a running agent whose pid we want to show.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            // On Windows the holder's lock also blocks reading: then there is no pid to show.
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(LockError::Busy { path, holder });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(RunLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = acquire(&state).unwrap();
        match acquire(&state) {
            Err(LockError::Busy { holder, .. }) => {
                // The message names the holder (see `present::errors`).
                #[cfg(unix)]
                assert_eq!(holder, Some(std::process::id()), "pid missing");
                #[cfg(not(unix))]
                let _ = holder;
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(first);
        let again = acquire(&state).unwrap();
        assert_eq!(again.path, state.join(LOCK_FILE));
    }
}
