//! The little that differs between Linux and Windows: who the user is, what the machine is called,
//! where things live by default, and the file metadata a version records. Every `cfg` stays here.
//!
//! Functions that depend on the environment take a lookup closure (`env`) so that they are pure and
//! testable with a fake environment (Rust 2024 makes `set_var` unsafe, and `unsafe` is forbidden).

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whether this build runs on Windows.
pub const WINDOWS: bool = cfg!(windows);

/// The real process environment, as a lookup closure (empty values count as absent).
pub fn real_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The logged-in user: `USERNAME` on Windows, `USER` (else `LOGNAME`) on Unix.
pub fn user_name(windows: bool, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    if windows {
        env("USERNAME")
    } else {
        env("USER").or_else(|| env("LOGNAME"))
    }
}

/// The device name from the environment (`ASGARD_DEVICE`), else the hostname.
pub fn device_name(env: impl Fn(&str) -> Option<String>) -> String {
    env("ASGARD_DEVICE")
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// A short description of the operating system, best effort.
pub fn os_version() -> String {
    if cfg!(target_os = "linux")
        && let Ok(text) = std::fs::read_to_string("/etc/os-release")
        && let Some(v) = os_release_pretty_name(&text)
    {
        return v;
    }
    if WINDOWS {
        "Windows".to_owned()
    } else {
        std::env::consts::OS.to_owned()
    }
}

fn os_release_pretty_name(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// The default config file: `$XDG_CONFIG_HOME/asgard/agent.yaml` or `~/.config/asgard/agent.yaml`
/// on Unix, `%APPDATA%\AsgardBackup\agent.yaml` on Windows.
pub fn default_config_path(windows: bool, env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if windows {
        return env("APPDATA").map(|d| PathBuf::from(d).join("AsgardBackup").join("agent.yaml"));
    }
    let base = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("asgard").join("agent.yaml"))
}

/// The default state folder: `$XDG_DATA_HOME/asgard` or `~/.local/share/asgard` on Unix,
/// `%LOCALAPPDATA%\AsgardBackup` on Windows.
pub fn default_state_dir(windows: bool, env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if windows {
        return env("LOCALAPPDATA").map(|d| PathBuf::from(d).join("AsgardBackup"));
    }
    let base = env("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local").join("share")))?;
    Some(base.join("asgard"))
}

/// The folders `backup` saves when neither the command line nor the config names any: `$HOME` on
/// Unix; Documents, Desktop and Pictures under `%USERPROFILE%` on Windows.
pub fn default_user_folders(windows: bool, env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    if windows {
        match env("USERPROFILE") {
            Some(p) => ["Documents", "Desktop", "Pictures"]
                .iter()
                .map(|d| PathBuf::from(&p).join(d))
                .collect(),
            None => Vec::new(),
        }
    } else {
        env("HOME").map(PathBuf::from).into_iter().collect()
    }
}

/// Modification time in nanoseconds since the Unix epoch (negative before 1970; 0 if unknown).
pub fn mtime_ns(meta: &Metadata) -> i64 {
    meta.modified().map(system_time_to_ns).unwrap_or(0)
}

/// A `SystemTime` as nanoseconds since the epoch, saturating at the `i64` range.
pub fn system_time_to_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos())
            .map(|n| -n)
            .unwrap_or(i64::MIN),
    }
}

/// Nanoseconds since the epoch as a `SystemTime`.
pub fn ns_to_system_time(ns: i64) -> SystemTime {
    let abs = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + abs
    } else {
        UNIX_EPOCH - abs
    }
}

/// The time the files cache compares besides mtime, nanoseconds since the epoch. Unix: the inode
/// change time (ctime), which every write, chmod, rename and link count change moves and which no
/// program can set back. Windows: the creation time, because the NTFS change time is not available
/// from stable std; there the cache relies on the last-write time, size and attributes.
pub fn change_time_ns(meta: &Metadata) -> i64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec())
    }
    #[cfg(not(unix))]
    {
        meta.created().map(system_time_to_ns).unwrap_or(0)
    }
}

/// The inode number on Unix (a file replaced by another one gets a new one); 0 elsewhere.
pub fn inode(meta: &Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

/// Creates a symbolic link at `link` pointing to `target` (as given, relative or absolute). On
/// Windows a link is either a file or a folder link: `target_is_dir` chooses, and creating one
/// needs the "Create symbolic links" right or developer mode.
pub fn create_symlink(target: &Path, link: &Path, target_is_dir: bool) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let _ = target_is_dir;
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(windows)]
    {
        if target_is_dir {
            std::os::windows::fs::symlink_dir(target, link)
        } else {
            std::os::windows::fs::symlink_file(target, link)
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = (target, link, target_is_dir);
        Err(std::io::Error::other(
            "symbolic links are not supported here",
        ))
    }
}

/// Unix permission bits (including setuid/setgid/sticky); 0 elsewhere.
pub fn mode(meta: &Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

/// Windows file attributes; 0 elsewhere.
pub fn attributes(meta: &Metadata) -> u32 {
    #[cfg(windows)]
    {
        use std::os::windows::fs::MetadataExt;
        meta.file_attributes()
    }
    #[cfg(not(windows))]
    {
        let _ = meta;
        0
    }
}

/// Applies recorded Unix permission bits to a restored file (setuid/setgid are not restored).
/// Does nothing on Windows or when the mode is unknown (0).
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if mode != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o1777))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Creates a file that only the owner can read (the state file holds the device token).
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn user_from_username_on_windows() {
        let env = env_of(&[("USERNAME", "Bob"), ("USER", "wrong")]);
        assert_eq!(user_name(true, &env).as_deref(), Some("Bob"));
        assert_eq!(user_name(true, env_of(&[("USER", "x")])), None);
    }

    #[test]
    fn user_from_user_then_logname_on_unix() {
        let env = env_of(&[("USER", "alice"), ("USERNAME", "wrong")]);
        assert_eq!(user_name(false, &env).as_deref(), Some("alice"));
        let env = env_of(&[("LOGNAME", "carol")]);
        assert_eq!(user_name(false, &env).as_deref(), Some("carol"));
        assert_eq!(user_name(false, env_of(&[])), None);
    }

    #[cfg(windows)]
    #[test]
    fn real_windows_user_is_username() {
        let expected = std::env::var("USERNAME").ok().filter(|v| !v.is_empty());
        assert!(expected.is_some(), "USERNAME is not set");
        assert_eq!(user_name(WINDOWS, real_env), expected);
    }

    #[test]
    fn default_places() {
        let env = env_of(&[("HOME", "/home/a")]);
        assert_eq!(
            default_config_path(false, &env).unwrap(),
            PathBuf::from("/home/a/.config/asgard/agent.yaml")
        );
        assert_eq!(
            default_state_dir(false, &env).unwrap(),
            PathBuf::from("/home/a/.local/share/asgard")
        );
        let env = env_of(&[("HOME", "/home/a"), ("XDG_DATA_HOME", "/d")]);
        assert_eq!(
            default_state_dir(false, &env).unwrap(),
            PathBuf::from("/d/asgard")
        );
        assert_eq!(
            default_user_folders(false, &env),
            vec![PathBuf::from("/home/a")]
        );
        let env = env_of(&[("USERPROFILE", "C:\\Users\\Bob")]);
        assert_eq!(default_user_folders(true, &env).len(), 3);
        assert!(default_state_dir(true, &env).is_none());
    }

    #[test]
    fn time_conversions_round_trip() {
        // Multiples of 100 ns: Windows keeps file times in 100 ns ticks.
        for ns in [0, 100, 1_700_000_000_123_456_700, -5_000_000_100] {
            assert_eq!(system_time_to_ns(ns_to_system_time(ns)), ns);
        }
    }

    #[test]
    fn pretty_name() {
        let text = "NAME=Debian\nPRETTY_NAME=\"Debian GNU/Linux 13\"\n";
        assert_eq!(os_release_pretty_name(text).unwrap(), "Debian GNU/Linux 13");
    }
}
