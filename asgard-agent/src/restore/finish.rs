//! Putting restored files in place, and the summary.
//!
//! A file replaces anything only after its size and blake3 match the version; then its mtime and
//! mode are set and it is made durable before the rename: on Linux with one `syncfs` per file
//! system at the end of the window (an fsync per file costs milliseconds each, which for many small
//! files dwarfs the transfer), elsewhere with an fsync per file. After the renames the folders are
//! synced, so the renames survive a crash too (not possible on Windows). A file whose check, sync
//! or rename fails has its temp file removed and is reported as an error.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use asgard_core::protocol::VersionInfo;
use asgard_core::{ChunkId, Lang};
use serde::Serialize;

use super::fetch::StatsSnapshot;
use super::plan::{Done, Job, existing, temp_beside};
use super::write::{HashState, open_rw};
use crate::platform;
use crate::present::restore::{self as text, RestoreCounts};
use crate::progress::Progress;

/// Whether checked files are synced together at the end of a window (Linux: `syncfs`) rather than
/// one by one before their rename.
pub(crate) const SYNC_PER_WINDOW: bool = cfg!(target_os = "linux");

/// The result for one job, in job order: `Ok` restored, `Err` the message.
pub(crate) type Outcome = Result<(), String>;

/// The file's last piece is in: checks size and hash against the version, sets mtime and mode,
/// and (unless [`SYNC_PER_WINDOW`]) syncs it and renames it into place.
pub(crate) fn complete(job: &Job, hash: &mut HashState, lang: Lang) -> anyhow::Result<()> {
    let expected = job
        .version
        .hash
        .ok_or_else(|| anyhow!("version {} has no hash", job.version.id))?;
    let file = open_rw(&job.tmp)?;
    let size = file.metadata()?.len();
    let got: ChunkId = hash.finish(&file, size)?;
    if size != job.version.size || got != expected || hash.has_gaps() {
        anyhow::bail!(
            "{}",
            text::content_mismatch(size, job.version.size, &got, lang)
        );
    }
    file.set_modified(platform::ns_to_system_time(job.version.mtime_ns))?;
    if !SYNC_PER_WINDOW {
        file.sync_all()?;
    }
    drop(file);
    platform::apply_metadata(&job.tmp, job.version.mode, job.version.attributes)?;
    if !SYNC_PER_WINDOW {
        platform::replace_file(&job.tmp, &job.dest)?;
    }
    Ok(())
}

/// Makes the checked temp files of a window durable with one `syncfs` per file system, then
/// renames them into place. A file whose sync or rename fails becomes an error (temp removed).
#[cfg(target_os = "linux")]
pub(crate) fn sync_and_rename<'a>(jobs: impl Iterator<Item = &'a Job>, outcomes: &mut [Outcome]) {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    let mut synced: HashMap<u64, Result<(), String>> = HashMap::new();
    for (job, outcome) in jobs.zip(outcomes.iter_mut()) {
        if outcome.is_err() {
            continue;
        }
        // A stat per file finds its file system; only the first file of each is opened.
        let result = std::fs::symlink_metadata(&job.tmp)
            .map_err(|e| e.to_string())
            .and_then(|meta| {
                synced
                    .entry(meta.dev())
                    .or_insert_with(|| {
                        std::fs::File::open(&job.tmp)
                            .map_err(|e| e.to_string())
                            .and_then(|f| {
                                rustix::fs::syncfs(&f).map_err(|e| format!("syncfs: {e}"))
                            })
                    })
                    .clone()
            })
            .and_then(|()| platform::replace_file(&job.tmp, &job.dest).map_err(|e| e.to_string()));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&job.tmp);
            *outcome = Err(format!("{}: {e}", job.dest.display()));
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn sync_and_rename<'a>(_: impl Iterator<Item = &'a Job>, _: &mut [Outcome]) {}

/// Syncs the folders of the restored files: the renames survive a crash once their folders are
/// synced (not possible on Windows).
pub(crate) fn sync_folders<'a>(jobs: impl Iterator<Item = &'a Job>, outcomes: &[Outcome]) {
    let mut dirs = HashSet::new();
    for (job, outcome) in jobs.zip(outcomes) {
        if outcome.is_ok()
            && let Some(dir) = job.dest.parent()
        {
            dirs.insert(dir.to_path_buf());
        }
    }
    #[cfg(unix)]
    for dir in dirs {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    drop(dirs);
}

/// Removes the temp file unless the restore completed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Restores a symbolic link with its exact target (the target itself is not touched). The link's
/// own mtime is not set: std has no call for that. Links come after every regular file, so that no
/// file of the same restore is written through a link it just created.
pub(crate) fn restore_link(
    version: &VersionInfo,
    dest: &Path,
    overwrite: bool,
    lang: Lang,
) -> anyhow::Result<Done> {
    let target = version
        .symlink_target
        .as_ref()
        .ok_or_else(|| anyhow!("version {} is a link without a target", version.id))?
        .to_path_buf();
    if let Some(done) = existing(dest, overwrite, lang, |meta| {
        Ok(meta.is_symlink() && std::fs::read_link(dest).ok().as_ref() == Some(&target))
    })? {
        return Ok(done);
    }
    let (dir, tmp) = temp_beside(dest)?;
    let _ = std::fs::remove_file(&tmp);
    // Only Windows distinguishes file and folder links; a dangling target counts as a file.
    let target_is_dir = dir.join(&target).is_dir();
    platform::create_symlink(&target, &tmp, target_is_dir)
        .with_context(|| text::symlink_failed(dest, lang))?;
    let mut guard = TempGuard(Some(tmp.clone()));
    std::fs::rename(&tmp, dest)?;
    guard.0 = None;
    Ok(Done::Restored)
}

/// `restore --json`: the counts of the text summary and what the pipeline fetched.
#[derive(Serialize)]
pub(crate) struct Summary {
    pub(crate) files_restored: u64,
    pub(crate) bytes_restored: u64,
    pub(crate) up_to_date: u64,
    pub(crate) deleted: u64,
    pub(crate) conflicts: u64,
    pub(crate) errors: u64,
    #[serde(flatten)]
    pub(crate) pipeline: StatsSnapshot,
    pub(crate) duration_s: f64,
}

impl Summary {
    pub(crate) fn new(c: &RestoreCounts, pipeline: StatsSnapshot, duration_s: f64) -> Summary {
        Summary {
            files_restored: c.restored,
            bytes_restored: c.bytes,
            up_to_date: c.up_to_date,
            deleted: c.deleted,
            conflicts: c.conflicts,
            errors: c.errors,
            pipeline,
            duration_s,
        }
    }
}

/// Where messages go: per-file notes to stdout (stderr in `--json` mode), errors to stderr, both
/// without tearing the progress bar.
pub(crate) struct Out {
    pub(crate) progress: Progress,
    pub(crate) json: bool,
    pub(crate) lang: Lang,
}

impl Out {
    pub(crate) fn info(&self, line: &str) {
        if self.json {
            self.progress.eprintln(line);
        } else {
            self.progress.println(line);
        }
    }

    pub(crate) fn error(&self, line: &str) {
        self.progress.eprintln(line);
    }
}

/// The counts of a restore, reported as they change.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) counts: RestoreCounts,
}

impl Tally {
    /// Counts (and reports) a file that needed no restore or could not be restored.
    pub(crate) fn count(&mut self, done: Done, dest: &Path, out: &Out) {
        match done {
            Done::Restored => self.counts.restored += 1,
            Done::UpToDate => {
                self.counts.up_to_date += 1;
                out.info(&text::up_to_date(dest, out.lang));
            }
            Done::Conflict => {
                self.counts.conflicts += 1;
                out.error(&text::conflict(dest, out.lang));
            }
        }
    }

    pub(crate) fn error(&mut self, dest: &Path, e: &str, out: &Out) {
        self.counts.errors += 1;
        out.error(&text::file_error(dest, e, out.lang));
    }
}
