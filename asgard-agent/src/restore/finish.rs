//! Putting restored files in place, and the summary.
//!
//! A file replaces anything only after its size and blake3 match the version; then its mtime and
//! mode are set and it is made durable before the rename: on Linux with one `syncfs` per file
//! system at the end of the window (an fsync per file costs milliseconds each, which for many small
//! files dwarfs the transfer), elsewhere with an fsync per file. After the renames the folders are
//! synced, so the renames survive a crash too (not possible on Windows). A file whose check, sync
//! or rename fails has its temp file removed and is reported as an error. Every step goes through
//! the file's folder handle ([`super::handles`]), never through a path.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use asgard_core::protocol::VersionInfo;
use asgard_core::{ChunkId, Lang};
use serde::Serialize;

use super::fetch::StatsSnapshot;
use super::handles::{Place, Target};
use super::meta::Applier;
use super::plan::{Done, Job, existing, reach};
use super::write::{HashState, hash_reader};
use crate::present::restore::{self as text, RestoreCounts};
use crate::progress::Progress;

/// Whether checked files are synced together at the end of a window (Linux: `syncfs`) rather than
/// one by one before their rename.
pub(crate) const SYNC_PER_WINDOW: bool = cfg!(target_os = "linux");

/// The result for one job, in job order: `Ok` restored, `Err` the message.
pub(crate) type Outcome = Result<(), String>;

/// The file's last piece is in (`file` is its temp file, open for reading and writing): checks
/// size and hash against the version, sets its metadata
/// (owner, extended attributes, mode, mtime: [`Applier::file`]), and (unless [`SYNC_PER_WINDOW`])
/// syncs it and renames it into place.
pub(crate) fn complete(
    job: &Job,
    file: std::fs::File,
    hash: &mut HashState,
    meta: &Applier,
    lang: Lang,
) -> anyhow::Result<()> {
    let expected = job
        .version
        .hash
        .ok_or_else(|| anyhow!("version {} has no hash", job.version.id))?;
    let size = file.metadata()?.len();
    let got: ChunkId = hash.finish(&file, size)?;
    if size != job.version.size || got != expected || hash.has_gaps() {
        anyhow::bail!(
            "{}",
            text::content_mismatch(size, job.version.size, &got, lang)
        );
    }
    let place = &job.place;
    meta.file(
        &file,
        &place.dir,
        &place.temp_name(),
        &job.version,
        &job.dest,
        true,
    )?;
    if !SYNC_PER_WINDOW {
        file.sync_all()?;
    }
    drop(file);
    if !SYNC_PER_WINDOW {
        job.place.rename_temp()?;
    }
    Ok(())
}

/// Makes the checked temp files of a window durable with one `syncfs` per file system (found from
/// each file's folder handle), then renames them into place. A file whose sync or rename fails
/// becomes an error (temp removed).
#[cfg(target_os = "linux")]
pub(crate) fn sync_and_rename<'a>(jobs: impl Iterator<Item = &'a Job>, outcomes: &mut [Outcome]) {
    use std::collections::HashMap;
    let mut synced: HashMap<u64, Result<(), String>> = HashMap::new();
    for (job, outcome) in jobs.zip(outcomes.iter_mut()) {
        if outcome.is_err() {
            continue;
        }
        let dir = &*job.place.dir;
        let result = rustix::fs::fstat(dir)
            .map_err(|e| e.to_string())
            .and_then(|st| {
                synced
                    .entry(st.st_dev)
                    .or_insert_with(|| rustix::fs::syncfs(dir).map_err(|e| format!("syncfs: {e}")))
                    .clone()
            })
            .and_then(|()| job.place.rename_temp().map_err(|e| e.to_string()));
        if let Err(e) = result {
            job.place.remove_temp();
            *outcome = Err(format!("{}: {e}", job.dest.display()));
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn sync_and_rename<'a>(_: impl Iterator<Item = &'a Job>, _: &mut [Outcome]) {}

/// Notes the folders of the restored files for [`Target::sync_renames`] (on Linux the next
/// window's `syncfs` or the one at the end makes their renames durable; elsewhere on Unix each
/// folder is synced now; not possible on Windows).
pub(crate) fn sync_folders<'a>(
    target: &Target,
    jobs: impl Iterator<Item = &'a Job>,
    outcomes: &[Outcome],
) {
    let mut seen = HashSet::new();
    for (job, outcome) in jobs.zip(outcomes) {
        if outcome.is_ok() && seen.insert(Arc::as_ptr(&job.place.dir)) {
            let _ = target.renamed_in(&job.place.dir);
        }
    }
}

/// Restores a symbolic link with its exact target (the target itself is not touched), through
/// the handles of its folders: a link on the way is not followed. The temp link gets the link's
/// own owner and mtime ([`Applier::link`]) before its rename. Links come after every regular
/// file, and no later write of the same restore follows one (see [`super::handles`]).
pub(crate) fn restore_link(
    target: &Target,
    version: &VersionInfo,
    dest: &Path,
    overwrite: bool,
    meta: &Applier,
    lang: Lang,
) -> anyhow::Result<Done> {
    let link_target = version
        .symlink_target
        .as_ref()
        .ok_or_else(|| anyhow!("version {} is a link without a target", version.id))?
        .to_path_buf();
    let place = match reach(target, dest, lang)? {
        Ok(place) => place,
        Err(done) => return Ok(done),
    };
    if let Some(done) = existing(&place, overwrite, lang, |meta| {
        Ok(meta.is_symlink() && place.read_link().ok().as_ref() == Some(&link_target))
    })? {
        return Ok(done);
    }
    let mut guard = TempGuard(Some(&place));
    place
        .create_temp_link(&link_target, dest)
        .with_context(|| text::symlink_failed(dest, lang))?;
    meta.link(&place.dir, &place.temp_name(), version, dest);
    place.rename_temp()?;
    guard.0 = None;
    target.renamed_in(&place.dir)?;
    Ok(Done::Restored)
}

/// Restores `dest` as a hard link to `first`, a file of the same restore that is in place and
/// durable already (restored in an earlier window, or found up to date): the link is made at the
/// temp name relative to the folder handles (no link followed), renamed into place, and its
/// folder synced. What is at `dest` already is up to date when it is that file (or has the same
/// content), else a conflict unless `--overwrite`.
pub(crate) fn restore_hard_link(
    target: &Target,
    first: &Path,
    version: &VersionInfo,
    dest: &Path,
    overwrite: bool,
    lang: Lang,
) -> anyhow::Result<Done> {
    let from = match target.existing(first) {
        Ok(place) => place,
        Err(e) => anyhow::bail!("{}", e.describe(first, lang)),
    };
    let place = match reach(target, dest, lang)? {
        Ok(place) => place,
        Err(done) => return Ok(done),
    };
    if let Some(done) = existing(&place, overwrite, lang, |meta| {
        if !meta.is_file() {
            return Ok(false);
        }
        #[cfg(unix)]
        {
            use cap_fs_ext::MetadataExt;
            if let Ok(first) = from.metadata()
                && first.dev() == meta.dev()
                && first.ino() == meta.ino()
            {
                return Ok(true);
            }
        }
        Ok(meta.len() == version.size
            && version.hash.is_some()
            && Some(hash_reader(place.open_read()?)?) == version.hash)
    })? {
        return Ok(done);
    }
    let mut guard = TempGuard(Some(&place));
    place.create_temp_hard_link(&from)?;
    place.rename_temp()?;
    guard.0 = None;
    target.renamed_in(&place.dir)?;
    Ok(Done::Restored)
}

/// Removes the temp file or link unless the restore completed.
struct TempGuard<'a>(Option<&'a Place>);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.remove_temp();
        }
    }
}

/// `restore --json`: the counts of the text summary and what the pipeline fetched.
#[derive(Serialize)]
pub(crate) struct Summary {
    pub(crate) files_restored: u64,
    pub(crate) bytes_restored: u64,
    pub(crate) folders_restored: u64,
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
            folders_restored: c.folders,
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
            Done::Blocked(link) => {
                self.counts.conflicts += 1;
                out.error(&text::link_in_the_way(&link, dest, out.lang));
            }
        }
    }

    pub(crate) fn error(&mut self, dest: &Path, e: &str, out: &Out) {
        self.counts.errors += 1;
        out.error(&text::file_error(dest, e, out.lang));
    }
}
