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
pub(crate) fn user_name(windows: bool, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    if windows {
        env("USERNAME")
    } else {
        env("USER").or_else(|| env("LOGNAME"))
    }
}

/// The device name from the environment (`ASGARD_DEVICE`), else the hostname.
pub(crate) fn device_name(env: impl Fn(&str) -> Option<String>) -> String {
    env("ASGARD_DEVICE")
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// A short description of the operating system, best effort.
pub(crate) fn os_version() -> String {
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
pub(crate) fn default_config_path(
    windows: bool,
    env: impl Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
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

/// This process's peak resident memory in bytes: `VmHWM` from `/proc/self/status` on Linux;
/// `None` elsewhere (reading it on Windows would need unsafe code) or when it cannot be read.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// The `VmHWM:   1234 kB` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut words = line["VmHWM:".len()..].split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib * 1024)
}

/// Modification time in nanoseconds since the Unix epoch (negative before 1970; 0 if unknown).
pub(crate) fn mtime_ns(meta: &Metadata) -> i64 {
    meta.modified().map(system_time_to_ns).unwrap_or(0)
}

/// A `SystemTime` as nanoseconds since the epoch, saturating at the `i64` range.
pub(crate) fn system_time_to_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos())
            .map(|n| -n)
            .unwrap_or(i64::MIN),
    }
}

/// Nanoseconds since the epoch as a `SystemTime` (the Windows restore's file times; Unix sets
/// them with `futimens`/`utimensat`).
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn ns_to_system_time(ns: i64) -> SystemTime {
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
pub(crate) fn change_time_ns(meta: &Metadata) -> i64 {
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
pub(crate) fn inode(meta: &Metadata) -> u64 {
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

/// Unix permission bits (including setuid/setgid/sticky); 0 elsewhere.
pub(crate) fn mode(meta: &Metadata) -> u32 {
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
pub(crate) fn attributes(meta: &Metadata) -> u32 {
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

/// Creates a symbolic link `link` pointing at `target` (Unix; the schedule's `timers.target.wants`
/// link). Unsupported on Windows, where nothing needs it.
pub(crate) fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(not(unix))]
    {
        let _ = (target, link);
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

/// Windows attribute bits (`FILE_ATTRIBUTE_*`) that a backup records and a restore sets again.
/// (`restore::handles` sets them on the restored file.)
#[cfg_attr(
    not(windows),
    allow(dead_code, reason = "only the Windows build sets attributes")
)]
pub(crate) mod attr {
    pub(crate) const READONLY: u32 = 0x1;
    pub(crate) const HIDDEN: u32 = 0x2;
    pub(crate) const SYSTEM: u32 = 0x4;
    pub(crate) const ARCHIVE: u32 = 0x20;
    pub(crate) const NOT_CONTENT_INDEXED: u32 = 0x2000;
    /// What a restore sets on files and folders: the bits a user or program chooses. The ones
    /// the file system manages itself (directory, compressed, sparse, reparse point, ...) are
    /// not restored.
    pub(crate) const RESTORABLE: u32 = READONLY | HIDDEN | SYSTEM | ARCHIVE | NOT_CONTENT_INDEXED;
    /// Set when a file is created: everything restorable but read-only (which would forbid
    /// writing the content).
    pub(crate) const ON_CREATE: u32 = RESTORABLE & !READONLY;
}

/// Creates a file that only the owner can read (the state file holds the device token).
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// What a file that is neither a regular file, a folder nor a link is (German, shown in reports).
pub(crate) fn special_file_kind(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "benannte Pipe (FIFO)";
        }
        if ft.is_socket() {
            return "Socket";
        }
        if ft.is_block_device() {
            return "Blockgerät";
        }
        if ft.is_char_device() {
            return "Zeichengerät";
        }
    }
    let _ = ft;
    "besonderer Dateityp"
}

/// The mount points of this machine (Linux: `/proc/self/mountinfo`); empty elsewhere or when
/// unknown.
pub(crate) fn mount_points() -> Vec<PathBuf> {
    if cfg!(target_os = "linux")
        && let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo")
    {
        return parse_mountinfo(&text);
    }
    Vec::new()
}

/// Mount points from `mountinfo` text (field 5; `\040`-style octal escapes decoded).
fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|field| {
            let b = field.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                let octal = b
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
                match (b[i], octal) {
                    (b'\\', Some(d)) => {
                        out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                        i += 4;
                    }
                    (c, _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            asgard_core::path::bytes_to_path(&out)
        })
        .collect()
}

/// Whether two existing paths lie on the same file system (Unix device ids; true when unknown).
pub(crate) fn same_device(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev(),
            _ => true,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status =
            "Name:\tasgard-agent\nVmPeak:\t  99999 kB\nVmHWM:\t   41236 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(41236 * 1024));
        assert_eq!(parse_vm_hwm("VmRSS: 5 kB\n"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        }
    }

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
        let env = env_of(&[("USERPROFILE", "C:\\Users\\Bob")]);
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
    fn mountinfo_mount_points() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    40 22 0:35 / /home/a/my\\040disk rw - fuse x rw\n";
        assert_eq!(
            parse_mountinfo(text),
            [PathBuf::from("/"), PathBuf::from("/home/a/my disk")]
        );
    }

    #[test]
    fn pretty_name() {
        let text = "NAME=Debian\nPRETTY_NAME=\"Debian GNU/Linux 13\"\n";
        assert_eq!(os_release_pretty_name(text).unwrap(), "Debian GNU/Linux 13");
    }
}
