//! `restore`: files (or a folder) back from the server, exactly, as stages like the backup's.
//!
//! ```text
//! plan ──────────► window (of at most restore.window_files) ──────────────────► links, summary
//! listing, chosen   temp files → places of each chunk → zero / copied / fetch
//! versions, safe    (requests of ~8 MiB, verified) → positional writes + hash
//! destinations      → check → mtime, mode → sync → rename into place
//! ```
//!
//! - [`plan`] reads the listing page by page and keeps only the chosen version of each path
//!   (`--version`, else the newest at `--at`, else the newest), maps each path to its destination,
//!   and looks at what is there already: the same content is "up to date", a differing file a
//!   conflict unless `--overwrite`, a folder in the way an error. It asks for the chunk lists of the
//!   files to restore.
//! - [`window`] restores many files at once: every file's temp file is created beside its
//!   destination when its first piece arrives, at its final length (so what is never written stays a hole); each
//!   distinct chunk is mapped to the places (file, offset) that need it, obtained once and written
//!   to all of them. An all-zero chunk (its id is the blake3 of that many zeros) is not fetched and
//!   not written at all; a chunk that an earlier window already put into a restored file is read
//!   back from there (and checked against its id).
//! - [`fetch`] gets every other chunk with `POST /api/fetch`, in requests of about
//!   [`fetch::REQUEST_BYTES`] that keep file order (so the chunks of many small files share a
//!   request), `restore.parallel_requests` of them in flight on the client's kept-alive
//!   connections, and verifies every chunk (bounded decode + blake3 against its id) on the blocking
//!   pool before it is written.
//! - [`write`](mod@write) puts each piece into its temp file with positional writes (zero blocks are never
//!   written, so a sparse file comes back sparse on file systems that support holes) and hashes
//!   each file as its content arrives (in order; ranges that arrived early are read back from the
//!   temp file once the gap before them is filled).
//! - [`finish`] checks each file when its last chunk is in: only when size and blake3 match the
//!   version are mtime and mode set, the data made durable (one `syncfs` per file system and window
//!   on Linux, an fsync per file elsewhere) and the temp file renamed into place. The renames are
//!   made durable on Linux by the next window's `syncfs` and one more at the end of the run
//!   (4,000 folder fsyncs cost more than a second on the mixed benchmark tree), elsewhere by an
//!   fsync of each folder after its window. Symbolic links come back last, as links with their exact target, so that no file
//!   of the same restore is written through a link it just created.
//!
//! **What is checked before a file is put in place**: its destination was built only from checked
//! components; whatever is there is either the same content, or replaced only with `--overwrite`
//! (never a folder); its size and blake3 match the version. A file that misses a chunk, or whose
//! hash differs, never replaces anything: its temp file is removed and the file is reported as an
//! error.
//!
//! **A restore never leaves its target**: no path from the server can lead outside the target
//! (`..`, `.`, drive letters and the like are refused); every file and folder is reached from an
//! open handle of the target folder (`--to`; in place the restored folder, or a single file's folder) one name at a
//! time, following no link ([`handles`]): neither one the restore has just created nor one that
//! was there already. A link where the backup has a folder is replaced only with `--overwrite`;
//! otherwise what lies below it is skipped with a warning and the run ends with exit code 1.
//! Temp files lie beside their destinations; links are created, never followed.
//!
//! **Overlap**: a window is settled (synced, renamed, its folders synced) on the blocking pool
//! while the next window is planned and filled, one window settling at a time; each fetch request
//! verifies and writes the frames of one network read while it receives the next.
//!
//! **Memory** is bounded by configuration: each request in flight holds the frames of two network
//! reads at most (one being written, one arriving); two windows hold the metadata of their files and
//! chunks (`restore.window_files` each, default 4096);
//! the map of chunks in already restored files is capped at [`window::COPY_SOURCES_MAX`] entries
//! (past that, a later repeat is fetched again); the listing is held page by page, only the chosen
//! versions are kept.

mod fetch;
mod finish;
mod handles;
mod meta;
mod plan;
mod window;
mod write;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use asgard_core::protocol::{ListQuery, VersionInfo};
use asgard_core::{Lang, RawPath};

use crate::client::Client;
use crate::list::prefix_hex;
use crate::present::restore as text;
use crate::progress::Progress;
use crate::session::{self, Ctx};
use crate::timefmt::parse_at;
use finish::{Out, Summary, Tally};
use handles::{Blocked, Target};
use meta::Applier;
use plan::{Done, Prepared, Selection, Skipped, WithManifest};
use window::Restorer;

/// What `restore` was asked to do.
pub struct RestoreArgs {
    pub path: PathBuf,
    pub version: Option<u64>,
    pub at: Option<String>,
    pub to: Option<PathBuf>,
    pub overwrite: bool,
    pub device: Option<String>,
    /// Owners by their recorded numbers, never by name (as root; like tar's `--numeric-owner`).
    pub numeric_owner: bool,
    /// Print the summary as JSON (messages go to stderr).
    pub json: bool,
}

/// Runs `restore`: plan, the folders, then the files window by window, the hard links, the
/// links, the folders' metadata (deepest first), then the summary.
pub async fn run(ctx: &Ctx, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let lang = ctx.lang;
    let at_us = match &args.at {
        Some(at) => {
            Some(parse_at(at, ctx.offset).ok_or_else(|| anyhow!(text::invalid_at(at, lang)))?)
        }
        None => None,
    };
    let root_path = std::path::absolute(&args.path)?;
    let root = RawPath::from_path(&root_path);
    let session = session::connect(ctx).await?;
    let query = ListQuery {
        device: args.device.clone(),
        prefix_hex: Some(prefix_hex(&root)),
        at_us,
        ..ListQuery::default()
    };
    let started = std::time::Instant::now();
    let progress = Progress::for_run(args.json, lang);
    let out = Out {
        progress: progress.clone(),
        json: args.json,
        lang,
    };
    let mut t = Tally::default();
    let selection = Selection {
        root: &root,
        version: args.version,
        at_us,
        to: args.to.as_deref(),
    };
    let chosen = plan::choose(
        &session.client,
        query,
        &selection,
        |skipped| match skipped {
            Skipped::Deleted(path) => {
                t.counts.deleted += 1;
                out.info(&text::deleted_at_that_time(&path, lang));
            }
            Skipped::Refused(e) => {
                t.counts.errors += 1;
                out.error(&text::path_refused(&e, lang));
            }
        },
    )
    .await?;
    if let Some(id) = args.version
        && !chosen.any
    {
        bail!("{}", text::version_not_found(id, &root, lang));
    }
    if !chosen.any {
        bail!("{}", text::nothing_backed_up(&root, lang));
    }

    // Every destination is reached from this folder's handle, following no link below it: the
    // folder the user named (`--to`; in place the restored folder itself, followed as the backup
    // follows it; for a single file its folder).
    let root_dest = root.to_path_buf();
    let mut dests = (chosen.files.iter().chain(&chosen.links).chain(&chosen.dirs))
        .map(|(d, _)| d)
        .chain(chosen.hard_links.iter().map(|h| &h.dest));
    let anchor = match &args.to {
        Some(to) => to.clone(),
        None if dests.any(|d| *d != root_dest) => root_path.clone(),
        None => root_path.parent().unwrap_or(&root_path).to_path_buf(),
    };
    let overwrite = args.overwrite;
    let target = tokio::task::spawn_blocking(move || {
        Target::open(&anchor, overwrite).with_context(|| anchor.display().to_string())
    })
    .await??;
    let target = Arc::new(target);
    let meta = Arc::new(Applier::new(args.numeric_owner));

    // Every chosen folder exists before the files (empty ones too); its metadata comes last.
    let dirs = create_folders(&target, chosen.dirs, &mut t, &out).await?;

    let files = chosen.files;
    progress.add_total(
        (files.len() + chosen.hard_links.len()) as u64,
        files.iter().map(|(_, v)| v.size).sum(),
    );
    let firsts: HashSet<PathBuf> = chosen.hard_links.iter().map(|h| h.first.clone()).collect();
    let mut run = Files {
        client: &session.client,
        restorer: Restorer::new(
            session.client.clone(),
            ctx.config.restore.parallel_requests,
            lang,
            progress.clone(),
            target.clone(),
            meta.clone(),
        ),
        target: target.clone(),
        meta: meta.clone(),
        progress: progress.clone(),
        out: &out,
        overwrite,
        lang,
        window_files: ctx.config.restore.window_files.max(1),
        firsts,
        in_place: HashSet::new(),
    };
    run.restore(files, &mut t).await?;

    // Hard links to files now in place and durable; where the first file of a group could not
    // be restored, the others are restored as files of their own.
    let mut alone = Vec::new();
    for h in chosen.hard_links {
        if !run.in_place.contains(&h.first) {
            alone.push((h.dest, h.version));
            continue;
        }
        let (target, first, dest) = (target.clone(), h.first, h.dest);
        let version = h.version;
        let (r, dest) = tokio::task::spawn_blocking(move || {
            let r = finish::restore_hard_link(&target, &first, &version, &dest, overwrite, lang);
            (r, dest)
        })
        .await?;
        match r {
            Ok(Done::Restored) => t.counts.restored += 1,
            Ok(done) => t.count(done, &dest, &out),
            Err(e) => t.error(&dest, &format!("{e:#}"), &out),
        }
        progress.add_done(1, 0);
    }
    if !alone.is_empty() {
        progress.add_total(0, alone.iter().map(|(_, v)| v.size).sum());
        run.firsts.clear();
        run.restore(alone, &mut t).await?;
    }
    let stats = run.restorer.stats();

    for (dest, version) in &chosen.links {
        match finish::restore_link(&target, version, dest, args.overwrite, &meta, lang) {
            Ok(Done::Restored) => t.counts.restored += 1,
            Ok(done) => t.count(done, dest, &out),
            Err(e) => t.error(dest, &format!("{e:#}"), &out),
        }
    }

    // The folders' metadata, deepest first, once everything in them is in place.
    let (target2, meta2) = (target.clone(), meta.clone());
    let errors =
        tokio::task::spawn_blocking(move || folder_metadata(&target2, dirs, &meta2, lang)).await?;
    t.counts.folders += errors.done;
    for (dest, e) in errors.failed {
        t.error(&dest, &e, &out);
    }
    // Every rename, link and folder of the run made durable (on Linux one `syncfs` per file
    // system instead of one `fsync` per folder; the files' data was durable before their rename).
    let target2 = target.clone();
    if let Err((path, e)) = tokio::task::spawn_blocking(move || target2.sync_renames()).await? {
        t.error(&path, &text::not_durable(&e, lang), &out);
    }
    progress.finish();
    for line in meta.warnings(lang) {
        out.error(&line);
    }

    let counts = t.counts;
    if args.json {
        let summary = Summary::new(&counts, stats, started.elapsed().as_secs_f64());
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", text::summary(&counts, lang));
    }
    Ok(if counts.conflicts > 0 || counts.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Creates every chosen folder below the target (a link in the way is not followed: the folder
/// is skipped with a warning, or replaced with `--overwrite`); returns those that exist now,
/// sorted by path.
async fn create_folders(
    target: &Arc<Target>,
    mut dirs: Vec<(PathBuf, VersionInfo)>,
    t: &mut Tally,
    out: &Out,
) -> anyhow::Result<Vec<(PathBuf, VersionInfo)>> {
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    let target = target.clone();
    let lang = out.lang;
    let made = tokio::task::spawn_blocking(move || {
        dirs.into_iter()
            .map(|(dest, v)| {
                let r = target.dir(&dest, true).map(drop);
                (dest, v, r)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    let mut ok = Vec::with_capacity(made.len());
    for (dest, v, r) in made {
        match r {
            Ok(()) => ok.push((dest, v)),
            Err(Blocked::Link(link)) => t.count(Done::Blocked(link), &dest, out),
            Err(e) => t.error(&dest, &e.describe(&dest, lang), out),
        }
    }
    Ok(ok)
}

/// What the folders' metadata pass did.
struct FolderPass {
    done: u64,
    failed: Vec<(PathBuf, String)>,
}

/// Gives every restored folder its metadata, deepest first: a folder's restrictive mode is set
/// only after everything below it is done. Failures to set a part are warnings
/// ([`Applier::folder`]); a folder that cannot be reached any more is an error.
fn folder_metadata(
    target: &Target,
    mut dirs: Vec<(PathBuf, VersionInfo)>,
    meta: &Applier,
    lang: Lang,
) -> FolderPass {
    deepest_first(&mut dirs);
    let mut pass = FolderPass {
        done: 0,
        failed: Vec::new(),
    };
    for (dest, v) in dirs {
        match target.dir(&dest, false) {
            Ok(dir) => {
                meta.folder(&dir, &v, &dest);
                pass.done += 1;
            }
            Err(e) => pass.failed.push((dest.clone(), e.describe(&dest, lang))),
        }
    }
    pass
}

/// Sorts folders so that each comes after every folder below it.
fn deepest_first<T>(dirs: &mut [(PathBuf, T)]) {
    dirs.sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
}

/// The regular files of a restore, window by window.
struct Files<'a> {
    client: &'a Client,
    restorer: Restorer,
    target: Arc<Target>,
    meta: Arc<Applier>,
    progress: Progress,
    out: &'a Out,
    overwrite: bool,
    lang: Lang,
    window_files: usize,
    /// Files that others are hard-linked to: [`Files::in_place`] notes which of them are in
    /// place (restored or up to date).
    firsts: HashSet<PathBuf>,
    in_place: HashSet<PathBuf>,
}

impl Files<'_> {
    /// Restores `files` window by window. A window is settled (made durable and renamed into
    /// place, [`Restorer::settle`]) on the blocking pool while the next one is planned and filled,
    /// so the file system's sync overlaps the next transfer; one window settles at a time.
    async fn restore(
        &mut self,
        files: Vec<(PathBuf, VersionInfo)>,
        t: &mut Tally,
    ) -> anyhow::Result<()> {
        let (out, lang, overwrite) = (self.out, self.lang, self.overwrite);
        let mut files = files.into_iter().peekable();
        let mut settling = None;
        loop {
            let window = next_window(&mut files, self.window_files);
            if window.is_empty() {
                break;
            }
            // What is at each destination already; folders and places for the rest.
            let (target, meta) = (self.target.clone(), self.meta.clone());
            let checked = tokio::task::spawn_blocking(move || {
                window
                    .into_iter()
                    .map(|(dest, v)| {
                        let r = plan::prepare(&target, &dest, &v, overwrite, &meta, lang);
                        (dest, v, r)
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
            let mut todo = Vec::new();
            for (dest, version, r) in checked {
                match r {
                    Ok(Prepared::Go(place)) => {
                        todo.push((dest, place, version));
                        continue;
                    }
                    Ok(Prepared::Done(done)) => {
                        if matches!(done, Done::UpToDate) && self.firsts.contains(&dest) {
                            self.in_place.insert(dest.clone());
                        }
                        t.count(done, &dest, out)
                    }
                    Err(e) => t.error(&dest, &format!("{e:#}"), out),
                }
                self.progress.add_done(1, version.size);
            }

            // The chunk lists of the files to restore.
            let mut jobs = Vec::with_capacity(todo.len());
            for job in plan::jobs(self.client, todo).await? {
                match job {
                    WithManifest::Job(job) => jobs.push(job),
                    WithManifest::Unfit { dest, version, why } => {
                        t.error(&dest, &text::unfit(why, version.id, lang), out);
                        self.progress.add_done(1, version.size);
                    }
                }
            }

            let filled = self.restorer.fill(jobs).await;
            if let Some(previous) = settling.take() {
                // (Also when filling failed: the window before is put in place and counted.)
                self.settled(previous, t).await?;
            }
            settling = Some(self.restorer.settle(filled?));
        }
        if let Some(last) = settling {
            self.settled(last, t).await?;
        }
        Ok(())
    }

    /// Counts the outcomes of a settled window.
    async fn settled(
        &mut self,
        settling: tokio::task::JoinHandle<(window::Filled, Vec<finish::Outcome>)>,
        t: &mut Tally,
    ) -> anyhow::Result<()> {
        let (filled, outcomes) = settling.await?;
        for ((dest, size), outcome) in filled.files().zip(outcomes) {
            match outcome {
                Ok(()) => {
                    t.counts.restored += 1;
                    t.counts.bytes += size;
                    if self.firsts.contains(dest) {
                        self.in_place.insert(dest.to_path_buf());
                    }
                }
                Err(e) => t.error(dest, &e, self.out),
            }
        }
        Ok(())
    }
}

/// At most this many folders per window: each file of a window keeps its folder's handle open
/// until the window is done, so this (with [`handles::CACHED_DIRS`]) bounds the open handles.
const WINDOW_FOLDERS: usize = 256;

/// The next window: at most `max_files` files in at most [`WINDOW_FOLDERS`] folders.
fn next_window(
    files: &mut std::iter::Peekable<impl Iterator<Item = (PathBuf, VersionInfo)>>,
    max_files: usize,
) -> Vec<(PathBuf, VersionInfo)> {
    let mut window = Vec::new();
    let mut folders: HashSet<PathBuf> = HashSet::new();
    while window.len() < max_files {
        let Some((dest, _)) = files.peek() else { break };
        let folder = dest.parent().unwrap_or(Path::new("")).to_path_buf();
        if !folders.contains(&folder) {
            if folders.len() >= WINDOW_FOLDERS {
                break;
            }
            folders.insert(folder);
        }
        window.extend(files.next());
    }
    window
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_get_their_metadata_after_everything_below_them() {
        let mut dirs: Vec<(PathBuf, ())> = ["/t/a", "/t/a/b/c", "/t", "/t/z/y", "/t/a/b"]
            .into_iter()
            .map(|d| (PathBuf::from(d), ()))
            .collect();
        deepest_first(&mut dirs);
        let pos = |p: &str| dirs.iter().position(|(d, _)| d == Path::new(p)).unwrap();
        for (below, above) in [
            ("/t/a/b/c", "/t/a/b"),
            ("/t/a/b", "/t/a"),
            ("/t/a", "/t"),
            ("/t/z/y", "/t"),
        ] {
            assert!(pos(below) < pos(above), "{below} before {above}: {dirs:?}");
        }
    }
}
