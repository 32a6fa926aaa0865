//! The agent's state file (`state.json` in the state folder): which server this device is
//! registered with, its token and the server certificate's fingerprint. User and device names are
//! kept in normal form (`asgard_core::names`).
//!
//! Written atomically (temp file, fsync, rename) and readable only by the owner on Unix, because it
//! holds the device token.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::platform;

const FILE: &str = "state.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) server_url: String,
    pub(crate) user: String,
    pub(crate) device: String,
    /// The device token from the registration.
    #[serde(default)]
    pub(crate) token: Option<String>,
    /// The server certificate's SHA-256 (`AB:CD:...`), pinned for later runs. It, not the URL,
    /// is the server's identity: a new URL with this certificate keeps the token.
    #[serde(default)]
    pub(crate) fingerprint: Option<String>,
    /// While the device waits for approval: the code to approve it with on another device of
    /// the user (`K7MQ-4XTD`) and until when (µs) it is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) approval_code: Option<(String, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("Zustandsdatei {} kann nicht gelesen werden: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Zustandsdatei {} ist beschädigt: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("Zustandsdatei {} kann nicht geschrieben werden: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl State {
    /// Reads `state.json` from `dir`; `None` when there is none yet.
    pub(crate) fn load(dir: &Path) -> Result<Option<State>, StateError> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StateError::Parse { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    /// Writes `state.json` into `dir` (created if needed): temp file, fsync, rename, so a crash
    /// leaves either the old or the new state, never a torn file.
    pub(crate) fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = dir.join(FILE);
        // A temp name of its own per writer: another agent process (a `list` during a scheduled
        // backup) may save at the same moment, and a shared name made one of them fail.
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!("{FILE}.{}-{n}.tmp", std::process::id()));
        let err = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        let mut f = platform::create_private(&tmp).map_err(err)?;
        f.write_all(&json).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        if let Err(e) = rename_replacing(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(e));
        }
        // fsync the folder so the rename itself survives a crash (not possible on Windows).
        #[cfg(unix)]
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// `rename`, replacing `to`. Windows refuses to replace a file that another writer is replacing at
/// the same moment (access denied); such a clash lasts only as long as the other rename, so it is
/// tried again for up to about a second.
fn rename_replacing(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::rename(from, to) {
            Err(e)
                if cfg!(windows)
                    && e.kind() == std::io::ErrorKind::PermissionDenied
                    && tries < 100 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("nested");
        assert_eq!(State::load(&sub).unwrap(), None);
        let s = State {
            server_url: "https://127.0.0.1:8443".into(),
            user: "alice".into(),
            device: "pc".into(),
            token: Some("tok".into()),
            fingerprint: Some("AB:CD".into()),
            approval_code: Some(("K7MQ-4XTD".into(), 5)),
        };
        s.save(&sub).unwrap();
        assert_eq!(State::load(&sub).unwrap(), Some(s.clone()));
        let mut t = s;
        t.token = None;
        t.save(&sub).unwrap();
        assert_eq!(State::load(&sub).unwrap(), Some(t));
        let leftovers: Vec<_> = std::fs::read_dir(&sub)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(sub.join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn damaged_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        assert!(matches!(
            State::load(dir.path()),
            Err(StateError::Parse { .. })
        ));
    }

    /// Regression: concurrent saves (two agent processes) shared one temp name, and the rename of
    /// one of them failed because the other had already moved the file away.
    #[test]
    fn concurrent_saves_do_not_collide_on_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = State {
            server_url: "https://h:1".into(),
            user: "u".into(),
            device: "d".into(),
            token: Some("asg_x".into()),
            fingerprint: None,
            approval_code: None,
        };
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        state.save(dir.path()).unwrap();
                    }
                });
            }
        });
        assert_eq!(State::load(dir.path()).unwrap(), Some(state));
    }
}
