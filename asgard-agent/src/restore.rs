//! `restore`: files (or a folder) back from the server, exactly.
//!
//! This module decides what to restore and reports it; [`crate::restorer`] moves the data: many
//! files at once into temp files next to their destinations, each chunk fetched once, all-zero
//! chunks not at all. Only when size and blake3 match the version are mtime and mode set, the data
//! fsynced and the temp file renamed into place. An existing file is never changed unless
//! `--overwrite` says so, and no path from the server can lead outside the target (`..`, drive
//! letters and the like are refused).
//!
//! Zero blocks are never written, so a sparse file comes back sparse on file systems that support
//! holes. Symbolic links come back as links with their exact target, after every regular file, so
//! that no file of the same restore is written through a link it just created.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::path::{bytes_to_path, check_component};
use asgard_core::protocol::{
    ListQuery, MAX_MANIFEST_IDS, VersionInfo, VersionKind, VersionManifest,
};
use asgard_core::{ChunkId, Lang, RawPath};
use serde::Serialize;

use crate::list::{for_each_page, prefix_hex};
use crate::platform;
use crate::progress::Progress;
use crate::restorer::{Job, Restorer, StatsSnapshot};
use crate::session::{self, Ctx};
use crate::timefmt::{human_bytes, parse_at};

pub struct RestoreArgs {
    pub path: PathBuf,
    pub version: Option<u64>,
    pub at: Option<String>,
    pub to: Option<PathBuf>,
    pub overwrite: bool,
    pub device: Option<String>,
    /// Print the summary as JSON (messages go to stderr).
    pub json: bool,
}

/// Where a backed-up file goes. `root` is the path the user asked for (file or folder), `file` a
/// path at or below it. With `to`, a single file lands as `to/<name>` and a folder's files as
/// `to/<folder name>/<parts...>`; without, at their original place. Unsafe components are refused.
pub fn destination(root: &RawPath, file: &RawPath, to: Option<&Path>) -> Result<PathBuf, String> {
    let parts = match file.components_below(root) {
        None => return Err(format!("{file} is not within {root}")),
        Some(Err(e)) => return Err(e.to_string()),
        Some(Ok(parts)) => parts,
    };
    let checked = |name: &[u8]| -> Result<PathBuf, String> {
        check_component(name).map_err(|reason| format!("unsafe path {file}: {reason}"))?;
        Ok(bytes_to_path(name))
    };
    if parts.is_empty() {
        return match to {
            Some(dir) => {
                let name = file
                    .file_name()
                    .ok_or_else(|| format!("{file} has no file name"))?;
                Ok(dir.join(checked(name)?))
            }
            None => Ok(file.to_path_buf()),
        };
    }
    let mut dest = match to {
        Some(dir) => match root.file_name() {
            Some(name) => dir.join(checked(name)?),
            None => dir.to_owned(),
        },
        None => root.to_path_buf(),
    };
    for part in parts {
        dest.push(checked(part)?);
    }
    Ok(dest)
}

#[derive(Default)]
struct Tally {
    restored: u64,
    bytes: u64,
    up_to_date: u64,
    deleted: u64,
    conflicts: u64,
    errors: u64,
}

pub async fn run(ctx: &Ctx, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let lang = ctx.lang;
    let at_us = match &args.at {
        Some(text) => Some(parse_at(text, ctx.offset).ok_or_else(|| {
            anyhow!(
                "{}: {text}",
                lang.pick(
                    "Ungültige Zeitangabe für --at (RFC 3339 oder JJJJ-MM-TT HH:MM[:SS])",
                    "Invalid time for --at (RFC 3339 or YYYY-MM-DD HH:MM[:SS])"
                )
            )
        })?),
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
    };
    let mut t = Tally::default();
    // (destination, version) of every regular file and every link to restore, chosen and sorted
    // out page by page: only the chosen versions are kept, not the whole listing, and each once.
    let mut chosen_any = false;
    let mut files: Vec<(PathBuf, VersionInfo)> = Vec::new();
    let mut links: Vec<(PathBuf, VersionInfo)> = Vec::new();
    for_each_page(&session.client, query, |page| {
        for f in page {
            if !f.path.is_within(&root) {
                continue;
            }
            let chosen = match args.version {
                Some(id) => f.versions.into_iter().find(|v| v.id == id),
                None => f
                    .versions
                    .into_iter()
                    .filter(|v| at_us.is_none_or(|at| v.time_us <= at))
                    .max_by_key(|v| (v.time_us, v.id)),
            };
            let Some(version) = chosen else { continue };
            chosen_any = true;
            if version.deleted {
                t.deleted += 1;
                out.info(&format!(
                    "{}: {}",
                    lang.pick(
                        "Zu diesem Zeitpunkt gelöscht, nicht wiederhergestellt",
                        "Deleted at that time, not restored"
                    ),
                    f.path
                ));
                continue;
            }
            match destination(&root, &f.path, args.to.as_deref()) {
                Ok(dest) if version.kind == VersionKind::Symlink => links.push((dest, version)),
                Ok(dest) => files.push((dest, version)),
                Err(e) => {
                    t.errors += 1;
                    out.error(&format!(
                        "{}: {e}",
                        lang.pick("Fehler: Pfad abgelehnt", "Error: path refused")
                    ));
                }
            }
        }
        Ok(())
    })
    .await?;
    if let Some(id) = args.version
        && !chosen_any
    {
        bail!(
            "{}",
            match lang {
                Lang::De => format!("Version {id} nicht gefunden unter {root}"),
                Lang::En => format!("Version {id} not found under {root}"),
            }
        );
    }
    if !chosen_any {
        bail!(
            "{}",
            match lang {
                Lang::De => format!("Unter {root} wurde (zu diesem Zeitpunkt) nichts gesichert."),
                Lang::En => format!("Nothing was backed up under {root} (at that time)."),
            }
        );
    }

    progress.add_total(files.len() as u64, files.iter().map(|(_, v)| v.size).sum());
    let mut restorer = Restorer::new(
        session.client.clone(),
        ctx.config.restore.parallel_requests,
        lang,
        progress.clone(),
    );
    let window_files = ctx.config.restore.window_files.max(1);
    let mut files = files.into_iter();
    loop {
        let window: Vec<(PathBuf, VersionInfo)> = files.by_ref().take(window_files).collect();
        if window.is_empty() {
            break;
        }
        // What is at each destination already; temp paths (and folders) for the rest.
        let overwrite = args.overwrite;
        let checked = tokio::task::spawn_blocking(move || {
            window
                .into_iter()
                .map(|(dest, v)| {
                    let r = prepare(&dest, &v, overwrite, lang);
                    (dest, v, r)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        let mut todo = Vec::new();
        for (dest, version, r) in checked {
            match r {
                Ok(Prepared::Go(tmp)) => {
                    todo.push((dest, tmp, version));
                    continue;
                }
                Ok(Prepared::Done(done)) => t.count(done, &dest, &out, lang),
                Err(e) => t.error(&dest, &format!("{e:#}"), &out, lang),
            }
            progress.add_done(1, version.size);
        }

        // The chunk lists of the files to restore.
        let mut manifests: HashMap<u64, VersionManifest> = HashMap::new();
        for group in todo.chunks(MAX_MANIFEST_IDS) {
            let ids = group.iter().map(|(_, _, v)| v.id).collect();
            let resp = session.client.manifest(ids).await?;
            manifests.extend(resp.versions.into_iter().map(|m| (m.id, m)));
        }
        let mut jobs = Vec::with_capacity(todo.len());
        for (dest, tmp, version) in todo {
            let problem = match manifests.remove(&version.id) {
                Some(m) if manifest_fits(&m, &version) => {
                    jobs.push(Job {
                        dest,
                        tmp,
                        version,
                        manifest: m,
                    });
                    continue;
                }
                Some(_) => lang.pick(
                    "Die Blockliste der Version passt nicht zu ihrer Größe",
                    "The version's chunk list does not match its size",
                ),
                None => lang.pick(
                    "Version auf dem Server nicht (mehr) gefunden",
                    "Version not found on the server (any more)",
                ),
            };
            t.error(&dest, &format!("{problem} ({})", version.id), &out, lang);
            progress.add_done(1, version.size);
        }

        let done: Vec<(PathBuf, u64)> = jobs
            .iter()
            .map(|j| (j.dest.clone(), j.version.size))
            .collect();
        let outcomes = restorer.run_window(jobs).await?;
        for ((dest, size), outcome) in done.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => {
                    t.restored += 1;
                    t.bytes += size;
                }
                Err(e) => t.error(&dest, &e, &out, lang),
            }
        }
    }

    for (dest, version) in &links {
        match restore_link(version, dest, args.overwrite, lang) {
            Ok(Done::Restored) => t.restored += 1,
            Ok(done) => t.count(done, dest, &out, lang),
            Err(e) => t.error(dest, &format!("{e:#}"), &out, lang),
        }
    }
    progress.finish();

    if args.json {
        let summary = Summary {
            files_restored: t.restored,
            bytes_restored: t.bytes,
            up_to_date: t.up_to_date,
            deleted: t.deleted,
            conflicts: t.conflicts,
            errors: t.errors,
            pipeline: restorer.stats(),
            duration_s: started.elapsed().as_secs_f64(),
        };
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        match lang {
            Lang::De => println!(
                "Wiederhergestellt: {} Dateien ({}); bereits aktuell: {}; zu diesem Zeitpunkt \
                 gelöscht: {}; Konflikte: {}; Fehler: {}",
                t.restored,
                human_bytes(t.bytes),
                t.up_to_date,
                t.deleted,
                t.conflicts,
                t.errors
            ),
            Lang::En => println!(
                "Restored: {} files ({}); already up to date: {}; deleted at that time: {}; \
                 conflicts: {}; errors: {}",
                t.restored,
                human_bytes(t.bytes),
                t.up_to_date,
                t.deleted,
                t.conflicts,
                t.errors
            ),
        }
    }
    Ok(if t.conflicts > 0 || t.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `restore --json`: the counts of the text summary and what the pipeline fetched.
#[derive(Serialize)]
struct Summary {
    files_restored: u64,
    bytes_restored: u64,
    up_to_date: u64,
    deleted: u64,
    conflicts: u64,
    errors: u64,
    #[serde(flatten)]
    pipeline: StatsSnapshot,
    duration_s: f64,
}

/// Where messages go: per-file notes to stdout (stderr in `--json` mode), errors to stderr, both
/// without tearing the progress bar.
struct Out {
    progress: Progress,
    json: bool,
}

impl Out {
    fn info(&self, line: &str) {
        if self.json {
            self.progress.eprintln(line);
        } else {
            self.progress.println(line);
        }
    }

    fn error(&self, line: &str) {
        self.progress.eprintln(line);
    }
}

impl Tally {
    /// Counts (and reports) a file that needed no restore or could not be restored.
    fn count(&mut self, done: Done, dest: &Path, out: &Out, lang: Lang) {
        match done {
            Done::Restored => self.restored += 1,
            Done::UpToDate => {
                self.up_to_date += 1;
                out.info(&format!(
                    "{}: {}",
                    lang.pick("Bereits aktuell", "Already up to date"),
                    dest.display()
                ));
            }
            Done::Conflict => {
                self.conflicts += 1;
                out.error(&match lang {
                    Lang::De => format!(
                        "Bestehende Datei wird nicht überschrieben: {} (mit --overwrite \
                         ersetzen)",
                        dest.display()
                    ),
                    Lang::En => format!(
                        "Existing file is not overwritten: {} (replace with --overwrite)",
                        dest.display()
                    ),
                });
            }
        }
    }

    fn error(&mut self, dest: &Path, e: &str, out: &Out, lang: Lang) {
        self.errors += 1;
        out.error(&format!(
            "{}: {}: {e}",
            lang.pick("Fehler", "Error"),
            dest.display()
        ));
    }
}

/// Whether a manifest describes the listed version: same size, chunk lengths that add up to it,
/// none longer than any chunk can be.
fn manifest_fits(m: &VersionManifest, v: &VersionInfo) -> bool {
    m.size == v.size
        && m.chunks.iter().all(|c| c.len <= MAX_CHUNK_SIZE)
        && m.chunks.iter().map(|c| u64::from(c.len)).sum::<u64>() == v.size
}

/// What to do for one regular file before any chunk is fetched.
enum Prepared {
    /// Nothing to fetch (up to date, or a conflict).
    Done(Done),
    /// Restore it through this temp path (its folder exists).
    Go(PathBuf),
}

fn prepare(
    dest: &Path,
    version: &VersionInfo,
    overwrite: bool,
    lang: Lang,
) -> anyhow::Result<Prepared> {
    let expected = version
        .hash
        .ok_or_else(|| anyhow!("version {} has no hash", version.id))?;
    if let Some(done) = existing(dest, overwrite, lang, |meta| {
        Ok(meta.is_file() && meta.len() == version.size && hash_file(dest)? == expected)
    })? {
        return Ok(Prepared::Done(done));
    }
    let (_, tmp) = temp_beside(dest)?;
    Ok(Prepared::Go(tmp))
}

enum Done {
    Restored,
    UpToDate,
    Conflict,
}

/// The blake3 of a local file, streamed.
fn hash_file(path: &Path) -> std::io::Result<ChunkId> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
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
/// own mtime is not set: std has no call for that.
fn restore_link(
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
    platform::create_symlink(&target, &tmp, target_is_dir).with_context(|| {
        format!(
            "{} {}",
            lang.pick(
                "Symbolische Verknüpfung kann nicht angelegt werden (unter Windows sind dafür das \
                 Recht „Symbolische Verknüpfungen erstellen“ oder der Entwicklermodus nötig):",
                "Cannot create the symbolic link (on Windows this needs the \"Create symbolic \
                 links\" right or developer mode):"
            ),
            dest.display()
        )
    })?;
    let mut guard = TempGuard(Some(tmp.clone()));
    std::fs::rename(&tmp, dest)?;
    guard.0 = None;
    Ok(Done::Restored)
}

/// What to do about whatever is at `dest` already: `Some(UpToDate)` when `same` says it is the
/// version, `Some(Conflict)` when it differs and `overwrite` is off, `None` to go ahead (nothing
/// there, or a file or link to replace). A folder in the way is an error.
fn existing(
    dest: &Path,
    overwrite: bool,
    lang: Lang,
    same: impl FnOnce(&std::fs::Metadata) -> anyhow::Result<bool>,
) -> anyhow::Result<Option<Done>> {
    let Ok(meta) = std::fs::symlink_metadata(dest) else {
        return Ok(None);
    };
    if same(&meta)? {
        return Ok(Some(Done::UpToDate));
    }
    if !overwrite {
        return Ok(Some(Done::Conflict));
    }
    if meta.is_dir() {
        bail!(
            "{}",
            lang.pick("An der Stelle liegt ein Ordner", "A folder is in the way")
        );
    }
    Ok(None)
}

/// The destination's folder (created if needed) and a temp path beside `dest` in it, so the final
/// rename stays within one file system.
fn temp_beside(dest: &Path) -> anyhow::Result<(&Path, PathBuf)> {
    let dir = dest.parent().ok_or_else(|| anyhow!("no parent folder"))?;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let mut tmp_name = OsString::from(".asgard-restore-");
    tmp_name.push(dest.file_name().unwrap_or_default());
    Ok((dir, dir.join(tmp_name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(s: &str) -> RawPath {
        RawPath::from(s)
    }

    #[test]
    fn folder_to_target_keeps_folder_name() {
        let root = rp("/home/a/docs");
        let file = rp("/home/a/docs/sub/x.txt");
        assert_eq!(
            destination(&root, &file, Some(Path::new("/tmp/r"))).unwrap(),
            PathBuf::from("/tmp/r/docs/sub/x.txt")
        );
        assert_eq!(
            destination(&root, &file, None).unwrap(),
            PathBuf::from("/home/a/docs/sub/x.txt")
        );
    }

    #[test]
    fn single_file() {
        let f = rp("/home/a/docs/x.txt");
        assert_eq!(
            destination(&f, &f, Some(Path::new("/tmp/r"))).unwrap(),
            PathBuf::from("/tmp/r/x.txt")
        );
        assert_eq!(
            destination(&f, &f, None).unwrap(),
            PathBuf::from("/home/a/docs/x.txt")
        );
    }

    #[test]
    fn windows_paths() {
        let root = rp(r"C:\Users\Bob\Documents");
        let file = rp(r"C:\Users\Bob\Documents\Steuer\2025.pdf");
        let to = Path::new("/tmp/r");
        assert_eq!(
            destination(&root, &file, Some(to)).unwrap(),
            to.join("Documents").join("Steuer").join("2025.pdf")
        );
        // Windows paths compare case-insensitively.
        let lower = rp(r"c:\users\bob\documents");
        assert!(destination(&lower, &file, Some(to)).is_ok());
        let single = rp(r"C:\Users\Bob\Desktop\a.txt");
        assert_eq!(
            destination(&single, &single, Some(to)).unwrap(),
            to.join("a.txt")
        );
        let evil = rp(r"C:\Users\Bob\Documents\..\..\Windows\evil.dll");
        assert!(destination(&root, &evil, Some(to)).is_err());
    }

    #[test]
    fn rejects_traversal_and_outsiders() {
        let root = rp("/home/a");
        let to = Some(Path::new("/tmp/r"));
        assert!(destination(&root, &rp("/home/a/../../etc/passwd"), to).is_err());
        assert!(destination(&root, &rp("/home/a/./x"), to).is_err());
        assert!(destination(&root, &rp("/home/a/../x"), None).is_err());
        assert!(destination(&root, &rp("/home/ab/x"), to).is_err());
        assert!(destination(&root, &rp("/etc/passwd"), None).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_map_exactly() {
        use std::os::unix::ffi::OsStrExt;
        let root = RawPath(b"/d".to_vec());
        let file = RawPath(b"/d/caf\xe9.txt".to_vec());
        let dest = destination(&root, &file, Some(Path::new("/t"))).unwrap();
        assert_eq!(dest.as_os_str().as_bytes(), b"/t/d/caf\xe9.txt");
    }

    #[test]
    fn hashes_files_like_blake3() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(hash_file(&p).unwrap(), ChunkId::of(b"hello"));
    }
}
