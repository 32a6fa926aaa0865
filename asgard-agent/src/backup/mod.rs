//! `backup`: wires the stages together.
//!
//! scan ([`crate::scan`]) → files cache ([`crate::cache`]) → the [`pipeline`] (read,
//! chunk, hash, check, compress, upload, commit; memory bounded by `memory_mib`) → deletion
//! markers, which go through the same pipeline once the scan is through.
//!
//! Deletions are decided after the scan, against the server's list of this device's paths under
//! each root (not against the files cache): the server knows what it holds even when the cache is
//! new, lost or from an older install, so a file deleted while the cache was gone still gets its
//! marker. A path gets a marker only when its root was scanned completely: never below a folder or
//! root that could not be read (nor for that folder itself), never for a file that was seen but
//! could not be read or was skipped. Folders are entries like files: a folder that vanished gets
//! its marker, as does everything that was in it.

pub(crate) mod pipeline;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use asgard_core::protocol::{CommitEntry, ListQuery, MAX_LIST_LIMIT, RunSummary, VersionKind};
use asgard_core::{Lang, RawPath};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cache::{self, FilesCache};
use crate::list::{for_each_page, prefix_hex};
use crate::platform;
use crate::present::backup as text;
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::scan;
use crate::session::{self, Ctx};

use pipeline::{Item, MemoryBudget, Reader, ScanReport, Settings};

/// Exit code: done, but some files could not be read.
pub(crate) const EXIT_UNREADABLE: u8 = 3;

/// `backup --json`: the run's summary (as sent to the server) and its errors.
#[derive(Serialize)]
struct JsonSummary<'a> {
    #[serde(flatten)]
    summary: &'a RunSummary,
    /// Folders are counted apart from files (the run report's stored form stays as it is).
    #[serde(flatten)]
    folders: text::FolderCounts,
    errors: &'a [String],
    /// The agent's peak resident memory (Linux: `VmHWM`); absent where it is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_rss_bytes: Option<u64>,
}

/// Backs up `paths` (or, without any, the roots of the backup plan); `system` selects the system
/// scope. The plan's exclusion rules apply to both.
pub async fn run(
    ctx: &Ctx,
    paths: Vec<PathBuf>,
    json: bool,
    system: bool,
    log: &RunLog,
) -> anyhow::Result<ExitCode> {
    let lang = ctx.lang;
    let started = Instant::now();
    let run_start_ns = platform::system_time_to_ns(SystemTime::now());
    let (plan, rules) = crate::plan::for_backup(
        &ctx.config,
        system,
        Some(&ctx.state_dir),
        &platform::real_env,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let session = session::connect(ctx).await?;
    log.attach_client(&session.client);
    if !session::is_active(&session.login) {
        eprintln!("{}", session::pending_message(lang, &session.login));
        return Ok(ExitCode::from(1));
    }
    let roots: Vec<PathBuf> = if paths.is_empty() {
        plan.scan_roots().iter().map(RawPath::to_path_buf).collect()
    } else {
        paths
    };
    let mut absolute = Vec::new();
    let mut report = ScanReport::default();
    for r in roots {
        match std::path::absolute(&r) {
            Ok(a) => absolute.push(a),
            Err(e) => report.root_errors.push(format!("{}: {e}", r.display())),
        }
    }
    if absolute.is_empty() && report.root_errors.is_empty() {
        anyhow::bail!(
            "{}",
            lang.pick(
                "Nichts zu sichern: kein Pfad angegeben und keine user_folders bekannt.",
                "Nothing to back up: no path given and no user_folders known."
            )
        );
    }

    let cache = open_cache(ctx, &session);
    // Without the re-read paths forgotten, the cache would skip files the server needs again.
    let cache_usable = cache
        .as_ref()
        .is_some_and(|c| forget_reread(c, &session.login, lang, &|l| eprintln!("{l}")));
    let cache_reader = cache
        .as_ref()
        .filter(|_| cache_usable)
        .and_then(|c| match c.reader() {
            Ok(r) => Some(r),
            Err(e) => {
                warn_cache(lang, &e.to_string());
                None
            }
        });

    tracing::info!(roots = ?absolute, "backup roots");
    let progress = Progress::for_run(json, lang);
    let budget = MemoryBudget::new(ctx.config.memory_bytes());
    let settings = Settings::for_budget(ctx.config.compression_level, budget.limit());
    let (tx, rx) = mpsc::channel::<Item>(pipeline::ITEM_CHANNEL);
    let reader = Reader::new(
        tx.clone(),
        budget.clone(),
        lang,
        run_start_ns,
        cache_reader,
        absolute.clone(),
        progress.clone(),
    );
    let scan_roots = absolute.clone();
    let reader = std::thread::spawn(move || {
        scan::scan(&scan_roots, &rules, &|e| reader.on_event(e));
        reader.into_report()
    });
    let stages = pipeline::run(&session.client, cache.as_ref(), settings, &budget, rx);
    // The scan, then the deletion markers; the input closes when this is done and the reader gone.
    let driver = async {
        // The server's listing of what is live under each root is fetched while the scan runs
        // (it only decides deletions once the scan is complete, below).
        let scan = async {
            tokio::task::spawn_blocking(move || reader.join())
                .await?
                .map_err(|_| anyhow::anyhow!("reader thread panicked"))
        };
        let listing = async {
            let mut live = Vec::with_capacity(absolute.len());
            for root in &absolute {
                live.push(live_paths(&session.client, root).await?);
            }
            anyhow::Ok(live)
        };
        let (scanned, live) = tokio::try_join!(scan, listing)?;
        let mut gone = Vec::new();
        for (root, live) in absolute.iter().zip(live) {
            if !scanned.failed_roots.contains(root) {
                gone.extend(vanished(live, &scanned));
            }
        }
        let budget = budget.clone();
        tokio::task::spawn_blocking(move || {
            for Live { path, folder } in gone {
                let entry = CommitEntry::Deleted { path };
                let Some(permit) = budget.acquire(pipeline::entry_cost(&entry)) else {
                    break;
                };
                let item = Item::Entry {
                    entry,
                    note: None,
                    permit,
                    folder,
                };
                if tx.blocking_send(item).is_err() {
                    break;
                }
            }
        })
        .await?;
        anyhow::Ok(scanned)
    };
    let result = tokio::try_join!(stages, driver);
    if result.is_err() {
        budget.close();
    }
    let ((s, cache_error), scanned) = result?;
    report.files_seen = scanned.files_seen;
    report.files_skipped = scanned.files_skipped;
    report.files_cached = scanned.files_cached;
    report.dirs_seen = scanned.dirs_seen;
    report.dirs_cached = scanned.dirs_cached;
    report.links_reused = scanned.links_reused;
    report.bytes_read = scanned.bytes_read;
    report.root_errors.extend(scanned.root_errors);
    report.failed_roots = scanned.failed_roots;
    report.unreadable_dirs = scanned.unreadable_dirs;
    report.unreadable.extend(scanned.unreadable);
    report.warnings.extend(scanned.warnings);
    report.seen = scanned.seen;
    if let Some(e) = &cache_error {
        warn_cache(lang, e);
    }
    let peak_rss_bytes = platform::peak_rss_bytes();
    tracing::info!(
        dirs_seen = report.dirs_seen,
        dirs_cached = report.dirs_cached,
        hard_links_reused = report.links_reused,
        "scan"
    );
    tracing::info!(
        peak_rss_bytes,
        budget_bytes = budget.limit(),
        budget_peak_bytes = budget.peak(),
        "memory"
    );

    let files_unchanged = s.files_unchanged + report.files_cached;
    let duration = started.elapsed();
    progress.finish();
    let summary = RunSummary {
        files_seen: report.files_seen,
        files_new: s.files_new,
        files_changed: s.files_changed,
        files_unchanged,
        files_deleted: s.files_deleted,
        files_skipped: report.files_skipped,
        bytes_read: report.bytes_read,
        bytes_sent: s.bytes_sent,
        bytes_new: s.bytes_new,
        versions_created: s.versions_created,
        duration_s: duration.as_secs_f64(),
    };
    let folders = text::FolderCounts {
        folders_seen: report.dirs_seen,
        folders_stored: s.dirs_stored,
        folders_deleted: s.dirs_deleted,
        files_metadata_only: s.files_meta_only,
    };
    let mut errors = report.root_errors.clone();
    errors.extend(report.unreadable.iter().cloned());
    errors.extend(report.warnings.iter().cloned());
    log.record(summary, &errors);
    if json {
        let out = JsonSummary {
            summary: &summary,
            folders,
            errors: &errors,
            peak_rss_bytes,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print!(
            "{}",
            text::summary(&summary, &folders, &report.unreadable, lang)
        );
    }
    for e in &report.root_errors {
        eprintln!("{}: {e}", lang.pick("Fehler", "Error"));
    }
    Ok(if !report.root_errors.is_empty() {
        ExitCode::from(1)
    } else if !report.unreadable.is_empty() {
        ExitCode::from(EXIT_UNREADABLE)
    } else {
        ExitCode::SUCCESS
    })
}

/// Opens this registration's files cache; without one the backup still works, it just reads every
/// file.
fn open_cache(ctx: &Ctx, session: &session::Session) -> Option<FilesCache> {
    let path = cache::cache_path(
        &ctx.state_dir,
        session.client.base_url(),
        &session.login.user,
        &session.login.device,
    );
    match FilesCache::open(&path, session.registered) {
        Ok(c) => Some(c),
        Err(e) => {
            warn_cache(ctx.lang, &e.to_string());
            None
        }
    }
}

/// Drops the files cache entries of the paths the server named at login (their versions
/// reference chunks the server found damaged or missing), so that the scan reads those files and
/// their chunks are offered again even though the files did not change. `note` receives the line
/// to show the user. False when the cache could not be changed: it must not be used in this run.
fn forget_reread(
    cache: &FilesCache,
    login: &asgard_core::protocol::LoginResponse,
    lang: Lang,
    note: &dyn Fn(String),
) -> bool {
    if login.reread.is_empty() {
        return true;
    }
    match cache.forget(&login.reread) {
        Ok(_) => {
            note(text::reread_note(
                login.reread.len(),
                login.reread_truncated,
                lang,
            ));
            true
        }
        Err(e) => {
            warn_cache(lang, &e.to_string());
            false
        }
    }
}

fn warn_cache(lang: Lang, e: &str) {
    eprintln!("{}", text::cache_unusable(e, lang));
}

/// A path whose newest version on the server is not a deletion marker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Live {
    path: RawPath,
    /// Its newest version is a folder's.
    folder: bool,
}

/// The paths under `root` whose newest version on the server is not a deletion marker (files,
/// links and folders, the root itself included), read in the largest pages the server gives (few
/// round trips); only the paths and whether they are folders are kept.
async fn live_paths(client: &crate::client::Client, root: &Path) -> anyhow::Result<Vec<Live>> {
    let root = RawPath::from_path(root);
    let query = ListQuery {
        prefix_hex: Some(prefix_hex(&root)),
        limit: Some(MAX_LIST_LIMIT),
        ..ListQuery::default()
    };
    let mut live = Vec::new();
    for_each_page(client, query, |files| {
        live.extend(files.into_iter().filter_map(|f| {
            let newest = f.versions.iter().max_by_key(|v| (v.time_us, v.id))?;
            (f.path.is_within(&root) && !newest.deleted).then(|| Live {
                folder: newest.kind == VersionKind::Dir,
                path: f.path,
            })
        }));
        Ok(())
    })
    .await?;
    Ok(live)
}

/// The live paths of a completely scanned root that the scan did not see: never a folder that
/// could not be read, nor anything below it.
fn vanished(live: Vec<Live>, report: &ScanReport) -> Vec<Live> {
    live.into_iter()
        .filter(|l| !report.seen.contains(&l.path))
        .filter(|l| !report.unreadable_dirs.iter().any(|d| l.path.is_within(d)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Facts, Kind};
    use asgard_core::ChunkId;
    use std::sync::Mutex;

    fn live(path: &str, folder: bool) -> Live {
        Live {
            path: RawPath::from(path),
            folder,
        }
    }

    /// A folder that vanished gets its marker like the files in it; an unreadable folder (seen,
    /// but its contents unknown) gets none, nor does anything below it, while a sibling whose
    /// name merely starts the same does.
    #[test]
    fn vanished_folders_get_markers_but_not_at_or_below_an_unreadable_one() {
        let mut report = ScanReport::default();
        for p in ["/r", "/r/kept", "/r/kept/f", "/r/locked"] {
            report.seen.insert(&RawPath::from(p));
        }
        report.unreadable_dirs.push(RawPath::from("/r/locked"));
        let listing = vec![
            live("/r", true),
            live("/r/kept", true),
            live("/r/kept/f", false),
            live("/r/gone", true),
            live("/r/gone/empty", true),
            live("/r/gone/f", false),
            live("/r/locked", true),
            live("/r/locked/sub", true),
            live("/r/locked/x", false),
            live("/r/locked-not", false),
        ];
        assert_eq!(
            vanished(listing, &report),
            [
                live("/r/gone", true),
                live("/r/gone/empty", true),
                live("/r/gone/f", false),
                live("/r/locked-not", false),
            ]
        );
    }

    /// The paths the server names at login lose their cache entries before the scan (so an
    /// unchanged file is read again); an answer without any leaves the cache alone.
    #[test]
    fn reread_paths_from_login_are_dropped_from_the_cache() {
        use crate::cache::{CacheEntry, Update};
        use asgard_core::protocol::{DeviceStatus, LoginResponse};
        let dir = tempfile::tempdir().unwrap();
        let cache = FilesCache::open(&cache::cache_path(dir.path(), "s", "u", "d"), false).unwrap();
        let facts = Facts {
            kind: Kind::File,
            size: 1,
            mtime_ns: 1,
            ctime_ns: 1,
            inode: 1,
            mode: 0o644,
            attributes: 0,
        };
        let entry = CacheEntry {
            facts,
            hash: ChunkId::of(b"x"),
            version_id: 1,
        };
        let (bad, good) = (
            RawPath::from("/home/u/bad.txt"),
            RawPath::from("/home/u/ok.txt"),
        );
        cache
            .apply(&[
                Update::Put(bad.clone(), entry),
                Update::Put(good.clone(), entry),
            ])
            .unwrap();
        let mut login = LoginResponse {
            user: "u".into(),
            device: "d".into(),
            token: None,
            status: DeviceStatus::Active,
            server_version: "t".into(),
            keep_versions: 4,
            reread: Vec::new(),
            reread_truncated: false,
            approval_code: None,
            approval_expires_us: None,
        };
        let notes = Mutex::new(Vec::new());
        let note = |l: String| notes.lock().unwrap().push(l);
        assert!(forget_reread(&cache, &login, Lang::De, &note));
        assert!(notes.lock().unwrap().is_empty());
        assert!(cache.reader().unwrap().matching(&bad, &facts).is_some());

        login.reread = vec![bad.clone()];
        assert!(forget_reread(&cache, &login, Lang::De, &note));
        let r = cache.reader().unwrap();
        assert_eq!(r.matching(&bad, &facts), None);
        assert!(r.matching(&good, &facts).is_some());
        assert!(notes.lock().unwrap()[0].contains("1 Datei wird neu gelesen"));
    }
}
