//! Copies of the metadata database: `db-backup` (on demand, and daily inside `serve` through [`super::schedule`], keeping the
//! newest [`crate::config::Config::db_backup_keep`]) and `db-restore`.
//!
//! The copy itself is [`Db::backup_to`] (one read transaction, hence consistent while the server
//! writes). Automatic and default copies go to `<data_dir>/db-backups/asgard-YYYYMMDD-HHMMSS.redb`
//! (UTC), names that sort by time; rotation only ever deletes files of exactly that form.
//!
//! `db-restore` needs the data directory lock (the server must be stopped). It checks the copy
//! (opens read-only, expected tables and types), copies it next to the live database under a
//! temporary name (fsync), keeps the live database as `asgard.redb.before-restore-<time>` (a hard
//! link, so `asgard.redb` never stops existing) and renames the copy over `asgard.redb`, which
//! swaps atomically. A crash at any step leaves either the old or the new database in place.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use asgard_core::Lang;
use serde::{Deserialize, Serialize};

use crate::db::{Db, DbError, check_database};
use asgard_core::fmt::compact_utc;

/// The folder of the automatic copies.
pub(crate) const BACKUP_DIR: &str = "db-backups";

/// What `db-backup` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BackupReport {
    /// The new copy.
    pub path: PathBuf,
    pub bytes: u64,
    /// Rows copied over all tables.
    pub rows: u64,
    /// Older automatic copies removed by rotation.
    pub removed: Vec<PathBuf>,
}

/// Whether `name` is an automatic copy's name: `asgard-YYYYMMDD-HHMMSS[-N].redb`.
fn is_backup_name(name: &str) -> bool {
    let Some(stem) = name
        .strip_prefix("asgard-")
        .and_then(|s| s.strip_suffix(".redb"))
    else {
        return false;
    };
    let b = stem.as_bytes();
    b.len() >= 15
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && (b.len() == 15
            || (b[15] == b'-' && b.len() > 16 && b[16..].iter().all(u8::is_ascii_digit)))
}

/// The automatic copies in `dir`, oldest first.
fn list_backups(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let e = e?;
                if is_backup_name(&e.file_name().to_string_lossy()) {
                    out.push(e.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Zero-padded time fields, then the `-N` of a second copy in the same second.
    out.sort_by_key(|p| {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let n: u32 = name[22..name.len() - 5]
            .trim_start_matches('-')
            .parse()
            .unwrap_or(1);
        (name[..22].to_owned(), n)
    });
    Ok(out)
}

/// A free name `asgard-<time>[-N].redb` in `dir`.
fn fresh_name(dir: &Path, now_us: i64) -> PathBuf {
    let base = format!("asgard-{}", compact_utc(now_us));
    let mut p = dir.join(format!("{base}.redb"));
    let mut n = 2;
    while p.exists() {
        p = dir.join(format!("{base}-{n}.redb"));
        n += 1;
    }
    p
}

/// Writes a copy of `db`: to `to` (a new file, or a file named by time inside an existing
/// folder), or into `<data_dir>/db-backups/` and then keeps only the newest `keep` there.
pub(crate) fn backup(
    db: &Db,
    data_dir: &Path,
    to: Option<&Path>,
    keep: u32,
    now_us: i64,
) -> anyhow::Result<BackupReport> {
    let (dest, rotate_in) = match to {
        Some(p) if p.is_dir() => (fresh_name(p, now_us), None),
        Some(p) => (p.to_path_buf(), None),
        None => {
            let dir = data_dir.join(BACKUP_DIR);
            std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
            (fresh_name(&dir, now_us), Some(dir))
        }
    };
    let summary = db
        .backup_to(&dest)
        .with_context(|| dest.display().to_string())?;
    restrict(&dest);
    let mut removed = Vec::new();
    if let Some(dir) = rotate_in {
        let all = list_backups(&dir)?;
        let excess = all.len().saturating_sub(keep.max(1) as usize);
        for old in &all[..excess] {
            match std::fs::remove_file(old) {
                Ok(()) => removed.push(old.clone()),
                Err(e) => {
                    tracing::warn!(path = %old.display(), error = %e, "cannot remove old db backup")
                }
            }
        }
    }
    Ok(BackupReport {
        path: summary.path,
        bytes: summary.bytes,
        rows: summary.rows,
        removed,
    })
}

/// The copy holds token hashes: readable by the server's user only.
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot restrict db backup permissions");
    }
}

/// Removes what a crash of an earlier process left in the data directory (the caller holds the
/// lock, so nobody is using them): unfinished copies in `db-backups/`, the temporary file of an
/// interrupted `db-restore`, and the private folder of an admin socket being created.
pub(crate) fn clean_temp(data_dir: &Path) {
    let remove = |path: &Path| {
        let r = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        match r {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed leftover of an interrupted task")
            }
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove leftover"),
        }
    };
    for (dir, is_leftover) in [
        (
            data_dir.join(BACKUP_DIR),
            (|n: &str| n.starts_with('.') && n.contains(".tmp-")) as fn(&str) -> bool,
        ),
        (data_dir.to_path_buf(), |n: &str| {
            n.starts_with(".asgard.redb.restore-") || n.starts_with(".admin-sock-")
        }),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if is_leftover(&e.file_name().to_string_lossy()) {
                remove(&e.path());
            }
        }
    }
}

/// When the next automatic copy is due: `interval` after the newest one, at once when there is
/// none. `None` when automatic copies are off.
pub(crate) fn next_due(data_dir: &Path, interval: Duration) -> Option<SystemTime> {
    if interval.is_zero() {
        return None;
    }
    let newest = list_backups(&data_dir.join(BACKUP_DIR))
        .ok()
        .and_then(|l| l.last().cloned())
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok());
    Some(match newest {
        Some(t) => t + interval,
        None => SystemTime::now(),
    })
}

/// What `db-restore` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RestoreReport {
    pub database: PathBuf,
    /// The database that was replaced, kept under this name; `None` when there was none.
    pub previous: Option<PathBuf>,
    pub versions: u64,
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `<data_dir>/asgard.redb` with the copy at `from`. The caller holds the data directory
/// lock (so no server runs on it).
pub(crate) fn replace_database(
    data_dir: &Path,
    from: &Path,
    now_us: i64,
    lang: Lang,
) -> anyhow::Result<RestoreReport> {
    // A newer schema stays a typed `DbError` (the caller words it, naming the file); anything else
    // means the file is no database of ours.
    let versions = check_database(from).map_err(|e| match e {
        e @ DbError::SchemaTooNew { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!(
            "{} {}",
            lang.pick(
                "Keine gültige AsgardBackup-Datenbank:",
                "Not a valid AsgardBackup database:"
            ),
            from.display()
        )),
    })?;
    let live = data_dir.join("asgard.redb");
    let tmp = data_dir.join(format!(".asgard.redb.restore-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let copied = (|| {
        std::fs::copy(from, &tmp)?;
        File::open(&tmp)?.sync_all()
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{} → {}", from.display(), tmp.display()));
    }
    // The copy on the data directory's disk must check out too (a short copy, a full disk).
    if let Err(e) = check_database(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        bail!("{}: {e}", tmp.display());
    }
    let previous = if live.exists() {
        let base = format!("asgard.redb.before-restore-{}", compact_utc(now_us));
        let mut keep = data_dir.join(&base);
        let mut n = 2;
        while keep.exists() {
            keep = data_dir.join(format!("{base}-{n}"));
            n += 1;
        }
        // A second name for the old file: `asgard.redb` stays in place until the rename below.
        if std::fs::hard_link(&live, &keep).is_err() {
            std::fs::copy(&live, &keep)
                .and_then(|_| File::open(&keep)?.sync_all())
                .with_context(|| format!("{} → {}", live.display(), keep.display()))?;
        }
        Some(keep)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&tmp, &live) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{} → {}", tmp.display(), live.display()));
    }
    sync_dir(data_dir).with_context(|| data_dir.display().to_string())?;
    // Opening it once adds tables that an older copy lacks.
    drop(Db::open(&live).with_context(|| live.display().to_string())?);
    Ok(RestoreReport {
        database: live,
        previous,
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_rotation() {
        assert!(is_backup_name("asgard-20240102-030405.redb"));
        assert!(is_backup_name("asgard-20240102-030405-2.redb"));
        assert!(!is_backup_name("asgard-20240102-030405-.redb"));
        assert!(!is_backup_name("asgard-2024010-030405.redb"));
        assert!(!is_backup_name("mine.redb"));
        assert!(!is_backup_name(".asgard-20240102-030405.redb.tmp-1"));

        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let db = Db::open(&data.join("asgard.redb")).unwrap();
        let backups = data.join(BACKUP_DIR);
        std::fs::create_dir_all(&backups).unwrap();
        std::fs::write(backups.join("notes.txt"), b"mine").unwrap();
        let base = 1_700_000_000_000_000i64;
        let mut made = Vec::new();
        for i in 0..5 {
            let r = backup(&db, data, None, 3, base + i * 1_000_000).unwrap();
            made.push(r.path);
        }
        // Two in the same second get distinct names.
        let same = backup(&db, data, None, 3, base + 4_000_000).unwrap();
        assert!(same.path.to_string_lossy().ends_with("-2.redb"), "{same:?}");
        made.push(same.path);
        let left = list_backups(&backups).unwrap();
        assert_eq!(left, made[3..].to_vec());
        assert!(backups.join("notes.txt").exists(), "foreign files stay");

        // To an explicit file: never overwritten; into an existing folder: a time name.
        let to = dir.path().join("x.redb");
        backup(&db, data, Some(&to), 3, base).unwrap();
        assert!(backup(&db, data, Some(&to), 3, base).is_err());
        let out = tempfile::tempdir().unwrap();
        let r = backup(&db, data, Some(out.path()), 3, base).unwrap();
        assert_eq!(r.path, out.path().join("asgard-20231114-221320.redb"));
    }

    #[test]
    fn due_after_the_newest_copy() {
        let dir = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(86_400);
        assert!(next_due(dir.path(), Duration::ZERO).is_none());
        let now = SystemTime::now();
        assert!(next_due(dir.path(), day).unwrap() <= SystemTime::now());
        let backups = dir.path().join(BACKUP_DIR);
        std::fs::create_dir_all(&backups).unwrap();
        std::fs::write(backups.join("asgard-20240102-030405.redb"), b"").unwrap();
        let due = next_due(dir.path(), day).unwrap();
        assert!(due > now + day - Duration::from_secs(60));
        // An unfinished copy is cleaned up.
        let tmp = backups.join(".asgard-20240102-030406.redb.tmp-77");
        std::fs::write(&tmp, b"half").unwrap();
        let restore_tmp = dir.path().join(".asgard.redb.restore-12");
        std::fs::write(&restore_tmp, b"half").unwrap();
        let sock_dir = dir.path().join(".admin-sock-13");
        std::fs::create_dir(&sock_dir).unwrap();
        std::fs::write(dir.path().join("keep.txt"), b"").unwrap();
        clean_temp(dir.path());
        assert!(!tmp.exists() && !restore_tmp.exists() && !sock_dir.exists());
        assert!(dir.path().join("keep.txt").exists());
        assert!(backups.join("asgard-20240102-030405.redb").exists());
    }

    #[test]
    fn restore_swaps_and_keeps_the_old_database() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let db = Db::open(&data.join("asgard.redb")).unwrap();
        db.set_meta_json("last_gc", &1).unwrap();
        let copy = dir.path().join("copy.redb");
        db.backup_to(&copy).unwrap();
        db.set_meta_json("last_gc", &2).unwrap();
        drop(db);

        let garbage = dir.path().join("garbage.redb");
        std::fs::write(&garbage, b"nonsense").unwrap();
        let err = replace_database(&data, &garbage, 0, Lang::De).unwrap_err();
        assert!(format!("{err:#}").contains("Keine gültige"), "{err:#}");

        let r = replace_database(&data, &copy, 1_700_000_000_000_000, Lang::De).unwrap();
        let prev = r.previous.clone().unwrap();
        assert!(prev.ends_with("asgard.redb.before-restore-20231114-221320"));
        assert_eq!(
            Db::open(&data.join("asgard.redb"))
                .unwrap()
                .get_meta_json::<i32>("last_gc")
                .unwrap(),
            Some(1)
        );
        assert_eq!(
            Db::open(&prev)
                .unwrap()
                .get_meta_json::<i32>("last_gc")
                .unwrap(),
            Some(2)
        );
        let leftovers: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert!(crate::present::reports::db_restore(&r, Lang::De).contains("bisherige Datenbank"));

        // Into a data directory without a database.
        let fresh = dir.path().join("fresh");
        std::fs::create_dir_all(&fresh).unwrap();
        assert_eq!(
            replace_database(&fresh, &copy, 0, Lang::De)
                .unwrap()
                .previous,
            None
        );
    }
}
