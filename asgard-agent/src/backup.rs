//! `backup`: wires the stages together.
//!
//! scan ([`crate::scan`]) → files cache ([`crate::cache`]) → read and chunk → upload stage
//! ([`crate::upload::Uploader`]: check, upload, commit in batches) → deletion markers.
//!
//! The scan's sink runs on the scanner's threads: it skips a file whose metadata matches the files
//! cache without opening it, otherwise reads and chunks it (bounded memory: one chunk at a time) and
//! sends chunks, then the file's entry, through a bounded channel to the async upload stage. A file
//! whose size, mtime or change time moves while it is read is read again once, then skipped with a
//! warning: a torn version is never committed.
//!
//! Deletions are decided after the scan, against the server's list of this device's paths under
//! each root (not against the files cache): the server knows what it holds even when the cache is
//! new, lost or from an older install, so a file deleted while the cache was gone still gets its
//! marker. A path gets a marker only when its root was scanned completely: never below a folder or
//! root that could not be read, never for a file that was seen but could not be read or was skipped.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use asgard_core::protocol::{ChunkRef, CommitEntry, FileMeta, ListQuery, RunSummary, symlink_hash};
use asgard_core::{ChunkId, ChunkParams, Lang, RawPath};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cache::{self, CacheReader, Facts, FilesCache, Kind};
use crate::list::{fetch_all, prefix_hex};
use crate::platform;
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::scan::{self, ScanEvent};
use crate::session::{self, Ctx};
use crate::timefmt::{human_bytes, seconds};
use crate::upload::{CacheNote, Uploader};

/// Exit code: done, but some files could not be read.
pub const EXIT_UNREADABLE: u8 = 3;

enum Msg {
    Chunk(ChunkId, Vec<u8>),
    Entry(CommitEntry, Option<CacheNote>),
}

/// What the reader saw.
#[derive(Debug, Default)]
struct ScanReport {
    files_seen: u64,
    files_skipped: u64,
    /// Matched the files cache: not opened.
    files_cached: u64,
    bytes_read: u64,
    /// Roots that do not exist or cannot be read: the run fails.
    root_errors: Vec<String>,
    /// Roots (as given) that could not be scanned: no deletion is decided below them.
    failed_roots: Vec<PathBuf>,
    /// Folders below a root that could not be read: no deletion below them either.
    unreadable_dirs: Vec<RawPath>,
    /// Files and folders that could not be read: the run ends with exit code 3.
    unreadable: Vec<String>,
    /// Other warnings (changed while reading, skipped special files).
    warnings: Vec<String>,
    /// Every path the scan reported (read, cached, skipped or unreadable): not deleted.
    seen: HashSet<RawPath>,
}

/// `backup --json`: the run's summary (as sent to the server) and its errors.
#[derive(Serialize)]
struct JsonSummary<'a> {
    #[serde(flatten)]
    summary: &'a RunSummary,
    errors: &'a [String],
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
    let (tx, mut rx) = mpsc::channel::<Msg>(16);
    let scan_roots = absolute.clone();
    let reader_progress = progress.clone();
    let reader = std::thread::spawn(move || {
        let stage = ReadStage {
            tx,
            lang,
            run_start_ns,
            cache: cache_reader,
            roots: scan_roots.clone(),
            sent: Mutex::new(HashSet::new()),
            report: Mutex::new(ScanReport::default()),
            progress: reader_progress,
        };
        scan::scan(&scan_roots, &rules, &|e| stage.on_event(e));
        stage.report.into_inner().unwrap_or_else(|p| p.into_inner())
    });

    let mut uploader = Uploader::new(
        &session.client,
        ctx.config.compression_level,
        cache.as_ref(),
    );
    let upload_result = async {
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Chunk(id, data) => uploader.add_chunk(id, data).await?,
                Msg::Entry(entry, note) => uploader.add_entry(entry, note).await?,
            }
        }
        anyhow::Ok(())
    }
    .await;
    // On an upload error the receiver goes away and the reader stops at its next send.
    drop(rx);
    let scanned = tokio::task::spawn_blocking(move || reader.join())
        .await?
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
    upload_result?;
    report.files_seen = scanned.files_seen;
    report.files_skipped = scanned.files_skipped;
    report.files_cached = scanned.files_cached;
    report.bytes_read = scanned.bytes_read;
    report.root_errors.extend(scanned.root_errors);
    report.failed_roots = scanned.failed_roots;
    report.unreadable_dirs = scanned.unreadable_dirs;
    report.unreadable.extend(scanned.unreadable);
    report.warnings.extend(scanned.warnings);
    report.seen = scanned.seen;

    for root in &absolute {
        if report.failed_roots.contains(root) {
            continue;
        }
        for path in vanished(&session.client, root, &report).await? {
            uploader
                .add_entry(CommitEntry::Deleted { path }, None)
                .await?;
        }
    }
    uploader.finish().await?;
    if let Some(e) = &uploader.cache_error {
        warn_cache(lang, e);
    }

    let s = uploader.stats;
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
    let mut errors = report.root_errors.clone();
    errors.extend(report.unreadable.iter().cloned());
    errors.extend(report.warnings.iter().cloned());
    log.record(summary, &errors);
    if json {
        let out = JsonSummary {
            summary: &summary,
            errors: &errors,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let rows: [(&str, &str, String); 10] = [
            (
                "Dateien gesehen",
                "files seen",
                report.files_seen.to_string(),
            ),
            ("neu", "new", s.files_new.to_string()),
            ("geändert", "changed", s.files_changed.to_string()),
            ("unverändert", "unchanged", files_unchanged.to_string()),
            ("gelöscht", "deleted", s.files_deleted.to_string()),
            ("übersprungen", "skipped", report.files_skipped.to_string()),
            ("gelesen", "read", human_bytes(report.bytes_read)),
            ("gesendet", "sent", human_bytes(s.bytes_sent)),
            ("neu gespeichert", "newly stored", human_bytes(s.bytes_new)),
            ("Dauer", "duration", format!("{} s", seconds(duration))),
        ];
        println!(
            "{}",
            lang.pick("Sicherung abgeschlossen:", "Backup finished:")
        );
        for (de, en, value) in rows {
            println!("  {:<18} {value}", format!("{}:", lang.pick(de, en)));
        }
        if !report.unreadable.is_empty() {
            println!(
                "{}",
                lang.pick(
                    "Nicht lesbar (nicht gesichert):",
                    "Unreadable (not backed up):"
                )
            );
            for u in &report.unreadable {
                println!("  {u}");
            }
        }
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
            let more = if login.reread_truncated {
                lang.pick(
                    " (weitere folgen in späteren Läufen)",
                    " (more in later runs)",
                )
            } else {
                ""
            };
            note(match lang {
                Lang::De => format!(
                    "Hinweis: Der Server hat beschädigte Daten gefunden; {} Datei(en) werden neu \
                     gelesen, um sie zu reparieren{more}.",
                    login.reread.len()
                ),
                Lang::En => format!(
                    "Note: the server found damaged data; {} file(s) are read again to repair \
                     it{more}.",
                    login.reread.len()
                ),
            });
            true
        }
        Err(e) => {
            warn_cache(lang, &e.to_string());
            false
        }
    }
}

fn warn_cache(lang: Lang, e: &str) {
    eprintln!(
        "{}: {e}",
        lang.pick(
            "Warnung: Dateicache nicht nutzbar, alle Dateien werden gelesen",
            "Warning: files cache unusable, every file is read"
        )
    );
}

/// The paths under `root` whose newest version on the server is not a deletion marker and that
/// this run's scan neither saw nor could have missed for a reason other than deletion.
async fn vanished(
    client: &crate::client::Client,
    root: &Path,
    report: &ScanReport,
) -> anyhow::Result<Vec<RawPath>> {
    let root = RawPath::from_path(root);
    let query = ListQuery {
        prefix_hex: Some(prefix_hex(&root)),
        ..ListQuery::default()
    };
    let files = fetch_all(client, query).await?;
    Ok(files
        .into_iter()
        .filter(|f| f.path.is_within(&root))
        .filter(|f| {
            f.versions
                .iter()
                .max_by_key(|v| (v.time_us, v.id))
                .is_some_and(|v| !v.deleted)
        })
        .map(|f| f.path)
        .filter(|p| !report.seen.contains(p))
        .filter(|p| !report.unreadable_dirs.iter().any(|d| p.is_within(d)))
        .collect())
}

/// The scan's sink: cache lookup, reading and chunking. Called from the scanner's threads.
struct ReadStage {
    tx: mpsc::Sender<Msg>,
    lang: Lang,
    run_start_ns: i64,
    cache: Option<CacheReader>,
    roots: Vec<PathBuf>,
    /// Chunks already sent in this run.
    sent: Mutex<HashSet<ChunkId>>,
    report: Mutex<ScanReport>,
    /// The progress bar (drawn only on a terminal); warnings go through it so they do not tear it.
    progress: Progress,
}

impl ReadStage {
    /// A warning: into the run's log and on stderr (without tearing the progress bar).
    fn warn(&self, line: String) {
        tracing::warn!("{line}");
        self.progress.eprintln(&line);
    }

    fn report(&self) -> std::sync::MutexGuard<'_, ScanReport> {
        self.report.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles one event; false when the scan must stop (the upload stage is gone).
    fn on_event(&self, event: ScanEvent) -> bool {
        let lang = self.lang;
        match event {
            ScanEvent::File { path, meta } => {
                self.progress.add_total(1, meta.len());
                let go_on = self.file(&path, &meta);
                self.progress.add_done(1, meta.len());
                go_on
            }
            ScanEvent::Symlink { path, meta } => self.symlink(&path, &meta),
            ScanEvent::Skipped { path, reason } => {
                self.warn(format!(
                    "{} ({reason}): {}",
                    lang.pick(
                        "Hinweis: übersprungen, keine normale Datei",
                        "Note: skipped, not a regular file"
                    ),
                    path.display()
                ));
                let mut r = self.report();
                r.files_skipped += 1;
                r.seen.insert(RawPath::from_path(&path));
                true
            }
            ScanEvent::Unreadable {
                path,
                error,
                missing,
            } => {
                let mut r = self.report();
                if self.roots.contains(&path) {
                    let msg = match (lang, missing) {
                        (Lang::De, true) => format!(
                            "Zu sichernder Pfad nicht gefunden (nichts als gelöscht markiert): {}",
                            path.display()
                        ),
                        (Lang::En, true) => format!(
                            "Path to back up not found (nothing marked deleted): {}",
                            path.display()
                        ),
                        (Lang::De, false) => format!(
                            "Zu sichernder Pfad nicht lesbar (nichts als gelöscht markiert): {} \
                             ({error})",
                            path.display()
                        ),
                        (Lang::En, false) => format!(
                            "Path to back up cannot be read (nothing marked deleted): {} ({error})",
                            path.display()
                        ),
                    };
                    r.root_errors.push(msg);
                    r.failed_roots.push(path);
                } else {
                    self.warn(format!(
                        "{}: {error}",
                        lang.pick(
                            "Warnung: Ordner kann nicht gelesen werden",
                            "Warning: cannot read folder"
                        )
                    ));
                    r.unreadable.push(format!("{} ({error})", path.display()));
                    r.unreadable_dirs.push(RawPath::from_path(&path));
                }
                true
            }
        }
    }

    fn symlink(&self, path: &Path, meta: &Metadata) -> bool {
        let raw = RawPath::from_path(path);
        let facts = Facts::of(Kind::Symlink, meta);
        {
            let mut r = self.report();
            r.files_seen += 1;
            r.seen.insert(raw.clone());
        }
        if self.cached(&raw, &facts) {
            return true;
        }
        let target = match std::fs::read_link(path) {
            Ok(t) => RawPath::from_path(&t),
            Err(e) => return self.unreadable(path, &raw, &e),
        };
        let note = self.note(facts, symlink_hash(&target));
        let entry = CommitEntry::Symlink {
            path: raw,
            target,
            mtime_ns: facts.mtime_ns,
        };
        self.tx.blocking_send(Msg::Entry(entry, note)).is_ok()
    }

    fn file(&self, path: &Path, meta: &Metadata) -> bool {
        let raw = RawPath::from_path(path);
        {
            let mut r = self.report();
            r.files_seen += 1;
            r.seen.insert(raw.clone());
        }
        if self.cached(&raw, &Facts::of(Kind::File, meta)) {
            return true;
        }
        for attempt in 0..2 {
            match self.read(path) {
                Ok(ReadOutcome::Done(meta, facts)) => {
                    let note = self.note(facts, meta.hash);
                    let msg = Msg::Entry(CommitEntry::File { path: raw, meta }, note);
                    return self.tx.blocking_send(msg).is_ok();
                }
                Ok(ReadOutcome::Stopped) => return false,
                Ok(ReadOutcome::Changed) if attempt == 0 => continue,
                Ok(ReadOutcome::Changed) => {
                    let msg = format!(
                        "{}: {}",
                        self.lang.pick(
                            "Datei ändert sich beim Lesen, übersprungen",
                            "File changes while being read, skipped"
                        ),
                        path.display()
                    );
                    self.warn(format!("{}: {msg}", self.lang.pick("Warnung", "Warning")));
                    let mut r = self.report();
                    r.files_skipped += 1;
                    r.warnings.push(msg);
                    return true;
                }
                // Deleted since the walk saw it: a deletion, not an unreadable file.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut r = self.report();
                    r.files_seen -= 1;
                    r.seen.remove(&raw);
                    return true;
                }
                Err(e) => return self.unreadable(path, &raw, &e),
            }
        }
        true
    }

    fn unreadable(&self, path: &Path, raw: &RawPath, e: &std::io::Error) -> bool {
        self.warn(format!(
            "{} {} ({e})",
            self.lang.pick(
                "Warnung: Datei kann nicht gelesen werden:",
                "Warning: cannot read file:"
            ),
            path.display()
        ));
        let mut r = self.report();
        r.files_skipped += 1;
        r.unreadable.push(format!("{raw} ({e})"));
        true
    }

    /// True (and counted) when the cache says the server has exactly this file already.
    fn cached(&self, path: &RawPath, facts: &Facts) -> bool {
        let hit = self
            .cache
            .as_ref()
            .is_some_and(|c| c.matching(path, facts).is_some());
        if hit {
            self.report().files_cached += 1;
        }
        hit
    }

    /// What to record in the cache after the commit, if the file's times are settled.
    fn note(&self, facts: Facts, hash: ChunkId) -> Option<CacheNote> {
        facts
            .settled(self.run_start_ns)
            .then_some(CacheNote { facts, hash })
    }

    /// Reads one file into chunks (sent on the channel as they come) and its [`FileMeta`].
    fn read(&self, path: &Path) -> std::io::Result<ReadOutcome> {
        read_file(path, &self.tx, &self.sent, |n| {
            self.report().bytes_read += n
        })
    }
}

enum ReadOutcome {
    /// The content and the facts of the file as it was read.
    Done(FileMeta, Facts),
    Changed,
    /// The receiver is gone: stop the scan.
    Stopped,
}

fn read_file(
    path: &Path,
    tx: &mpsc::Sender<Msg>,
    sent: &Mutex<HashSet<ChunkId>>,
    count_read: impl Fn(u64),
) -> std::io::Result<ReadOutcome> {
    let file = File::open(path)?;
    let before = file.metadata()?;
    let params = ChunkParams::default();
    let mut hasher = blake3::Hasher::new();
    let mut chunks = Vec::new();
    let mut size = 0u64;
    for chunk in params.stream(&file) {
        let data = chunk?;
        let id = ChunkId::of(&data);
        hasher.update(&data);
        size += data.len() as u64;
        count_read(data.len() as u64);
        chunks.push(ChunkRef {
            id,
            len: data.len() as u32,
        });
        let new = sent.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
        if new && tx.blocking_send(Msg::Chunk(id, data)).is_err() {
            return Ok(ReadOutcome::Stopped);
        }
    }
    // The same open file, so a rename over the path during the read does not count as a change.
    let after = file.metadata()?;
    let facts = Facts::of(Kind::File, &before);
    if size != before.len() || Facts::of(Kind::File, &after) != facts {
        return Ok(ReadOutcome::Changed);
    }
    Ok(ReadOutcome::Done(
        FileMeta {
            size,
            mtime_ns: facts.mtime_ns,
            mode: facts.mode,
            attributes: facts.attributes,
            hash: hasher.finalize().into(),
            params,
            chunks,
        },
        facts,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_file_into_chunks_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        std::fs::write(&path, &data).unwrap();
        let (tx, mut rx) = mpsc::channel(1024);
        let sent = Mutex::new(HashSet::new());
        let read = Mutex::new(0);
        let ReadOutcome::Done(meta, facts) =
            read_file(&path, &tx, &sent, |n| *read.lock().unwrap() += n).unwrap()
        else {
            panic!("file not read");
        };
        assert_eq!(meta.size, data.len() as u64);
        assert_eq!(facts.size, meta.size);
        assert_eq!(*read.lock().unwrap(), data.len() as u64);
        assert!(meta.lengths_add_up());
        assert_eq!(meta.hash, ChunkId::of(&data));
        let mut got = Vec::new();
        while let Ok(Msg::Chunk(_, d)) = rx.try_recv() {
            got.extend(d);
        }
        // Every distinct chunk was sent once; this data has no repeats, so they add up.
        assert_eq!(got, data);
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
        assert!(notes.lock().unwrap()[0].contains("1 Datei(en) werden neu gelesen"));
    }

    /// Windows: a file another process holds open without sharing cannot be read; the read path
    /// reports the error (the stage counts it as unreadable, exit code 3) instead of failing.
    #[cfg(windows)]
    #[test]
    fn file_locked_by_another_process_is_an_error_not_a_crash() {
        use std::os::windows::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gesperrt.docx");
        std::fs::write(&path, b"locked content").unwrap();
        let holder = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .share_mode(0)
            .open(&path)
            .unwrap();
        let (tx, _rx) = mpsc::channel(1024);
        let sent = Mutex::new(HashSet::new());
        assert!(read_file(&path, &tx, &sent, |_| {}).is_err());
        drop(holder);
        assert!(matches!(
            read_file(&path, &tx, &sent, |_| {}),
            Ok(ReadOutcome::Done(..))
        ));
    }
}
