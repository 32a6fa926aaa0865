//! `backup`: wires the stages together.
//!
//! A reader thread walks the roots, reads and chunks each regular file (bounded memory: one chunk
//! at a time) and sends chunks, then the file's entry, through a bounded channel to the async
//! upload stage ([`crate::upload::Uploader`]). A file whose size or mtime changes while it is read
//! is read again once, then skipped with a warning: a torn version is never committed.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use asgard_core::protocol::{ChunkRef, CommitEntry, FileMeta, RunSummary};
use asgard_core::{ChunkId, ChunkParams, Lang, RawPath};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::platform;
use crate::progress::Progress;
use crate::runlog::RunLog;
use crate::session::{self, Ctx};
use crate::timefmt::{human_bytes, seconds};
use crate::upload::Uploader;

/// Exit code: done, but some files could not be read.
pub const EXIT_UNREADABLE: u8 = 3;

enum Msg {
    Chunk(ChunkId, Vec<u8>),
    File(RawPath, Box<FileMeta>),
}

/// What the reader saw.
#[derive(Debug, Default)]
struct ScanReport {
    files_seen: u64,
    files_skipped: u64,
    bytes_read: u64,
    /// Roots that do not exist or cannot be read: the run fails.
    root_errors: Vec<String>,
    /// Files that could not be read: the run ends with exit code 3.
    unreadable: Vec<String>,
    /// Other warnings (changed while reading).
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct JsonSummary {
    files_seen: u64,
    files_new: u64,
    files_changed: u64,
    files_unchanged: u64,
    files_deleted: u64,
    files_skipped: u64,
    bytes_read: u64,
    bytes_sent: u64,
    bytes_new: u64,
    versions_created: u64,
    duration_s: f64,
    errors: Vec<String>,
}

pub async fn run(
    ctx: &Ctx,
    paths: Vec<PathBuf>,
    json: bool,
    log: &RunLog,
) -> anyhow::Result<ExitCode> {
    let lang = ctx.lang;
    let started = Instant::now();
    let session = session::connect(ctx).await?;
    log.attach_client(&session.client);
    if !session::is_active(&session.login) {
        eprintln!("{}", session::pending_message(lang, &session.login));
        return Ok(ExitCode::from(1));
    }
    let roots: Vec<PathBuf> = if paths.is_empty() {
        ctx.config.user_folders(platform::real_env)
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

    tracing::info!(roots = ?absolute, "backup roots");
    let progress = Progress::for_run(json, lang);
    let (tx, mut rx) = mpsc::channel::<Msg>(16);
    let reader_progress = progress.clone();
    let reader = std::thread::spawn(move || {
        let mut r = ScanReport::default();
        scan(&absolute, &tx, lang, &mut r, &reader_progress);
        r
    });

    let mut uploader = Uploader::new(&session.client, ctx.config.compression_level);
    let upload_result = async {
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Chunk(id, data) => uploader.add_chunk(id, data).await?,
                Msg::File(path, meta) => {
                    uploader
                        .add_entry(CommitEntry::File { path, meta: *meta })
                        .await?
                }
            }
        }
        uploader.finish().await
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
    report.bytes_read = scanned.bytes_read;
    report.root_errors.extend(scanned.root_errors);
    report.unreadable.extend(scanned.unreadable);
    report.warnings.extend(scanned.warnings);

    let s = uploader.stats;
    let duration = started.elapsed();
    progress.finish();
    let mut errors = report.root_errors.clone();
    errors.extend(report.unreadable.iter().cloned());
    errors.extend(report.warnings.iter().cloned());
    log.record(
        RunSummary {
            files_seen: report.files_seen,
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unchanged: s.files_unchanged,
            files_deleted: 0,
            files_skipped: report.files_skipped,
            bytes_read: report.bytes_read,
            bytes_sent: s.bytes_sent,
            bytes_new: s.bytes_new,
            versions_created: s.versions_created,
            duration_s: duration.as_secs_f64(),
        },
        &errors,
    );
    if json {
        let summary = JsonSummary {
            files_seen: report.files_seen,
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unchanged: s.files_unchanged,
            files_deleted: 0,
            files_skipped: report.files_skipped,
            bytes_read: report.bytes_read,
            bytes_sent: s.bytes_sent,
            bytes_new: s.bytes_new,
            versions_created: s.versions_created,
            duration_s: duration.as_secs_f64(),
            errors,
        };
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let rows: [(&str, &str, String); 9] = [
            (
                "Dateien gesehen",
                "files seen",
                report.files_seen.to_string(),
            ),
            ("neu", "new", s.files_new.to_string()),
            ("geändert", "changed", s.files_changed.to_string()),
            ("unverändert", "unchanged", s.files_unchanged.to_string()),
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
                    "Nicht lesbare Dateien (nicht gesichert):",
                    "Unreadable files (not backed up):"
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

/// Walks every root and feeds the channel. Returns early when the receiver is gone.
fn scan(
    roots: &[PathBuf],
    tx: &mpsc::Sender<Msg>,
    lang: Lang,
    r: &mut ScanReport,
    progress: &Progress,
) {
    let mut sent: HashSet<ChunkId> = HashSet::new();
    for root in roots {
        if let Err(e) = check_root(root) {
            let missing = e.kind() == std::io::ErrorKind::NotFound;
            let msg = match (lang, missing) {
                (Lang::De, true) => {
                    format!("Zu sichernder Pfad nicht gefunden: {}", root.display())
                }
                (Lang::En, true) => format!("Path to back up not found: {}", root.display()),
                (Lang::De, false) => {
                    format!("Zu sichernder Pfad nicht lesbar: {} ({e})", root.display())
                }
                (Lang::En, false) => {
                    format!("Path to back up cannot be read: {} ({e})", root.display())
                }
            };
            r.root_errors.push(msg);
            continue;
        }
        let walker = ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .hidden(false)
            .follow_links(false)
            .parents(false)
            .build();
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let msg = e.to_string();
                    eprintln!(
                        "{}: {msg}",
                        lang.pick(
                            "Warnung: Eintrag kann nicht gelesen werden",
                            "Warning: cannot read entry"
                        )
                    );
                    r.unreadable.push(msg);
                    continue;
                }
            };
            let Some(ft) = entry.file_type() else {
                continue;
            };
            if ft.is_dir() {
                continue;
            }
            let path = entry.path();
            if !ft.is_file() {
                r.files_skipped += 1;
                eprintln!(
                    "{}: {}",
                    lang.pick(
                        "Hinweis: übersprungen (keine normale Datei)",
                        "Note: skipped (not a regular file)"
                    ),
                    path.display()
                );
                continue;
            }
            r.files_seen += 1;
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            progress.add_total(1, size);
            if !back_up_file(path, tx, &mut sent, lang, r) {
                return;
            }
            progress.add_done(1, size);
        }
    }
}

/// A root must exist and be readable (a missing root is never read as "everything deleted").
fn check_root(root: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(root)?;
    if meta.is_dir() {
        std::fs::read_dir(root)?;
    } else {
        File::open(root)?;
    }
    Ok(())
}

enum ReadOutcome {
    Done(FileMeta),
    Changed,
    /// The receiver is gone: stop the scan.
    Stopped,
}

/// Reads one file (twice at most); returns false when the scan must stop.
fn back_up_file(
    path: &Path,
    tx: &mpsc::Sender<Msg>,
    sent: &mut HashSet<ChunkId>,
    lang: Lang,
    r: &mut ScanReport,
) -> bool {
    for attempt in 0..2 {
        match read_file(path, tx, sent, &mut r.bytes_read) {
            Ok(ReadOutcome::Done(meta)) => {
                let msg = Msg::File(RawPath::from_path(path), Box::new(meta));
                return tx.blocking_send(msg).is_ok();
            }
            Ok(ReadOutcome::Stopped) => return false,
            Ok(ReadOutcome::Changed) if attempt == 0 => continue,
            Ok(ReadOutcome::Changed) => {
                let msg = format!(
                    "{}: {}",
                    lang.pick(
                        "Datei ändert sich beim Lesen, übersprungen",
                        "File changes while being read, skipped"
                    ),
                    path.display()
                );
                eprintln!("{}: {msg}", lang.pick("Warnung", "Warning"));
                r.files_skipped += 1;
                r.warnings.push(msg);
                return true;
            }
            Err(e) => {
                eprintln!(
                    "{} {} ({e})",
                    lang.pick(
                        "Warnung: Datei kann nicht gelesen werden:",
                        "Warning: cannot read file:"
                    ),
                    path.display()
                );
                r.files_skipped += 1;
                r.unreadable.push(format!("{} ({e})", path.display()));
                return true;
            }
        }
    }
    true
}

fn read_file(
    path: &Path,
    tx: &mpsc::Sender<Msg>,
    sent: &mut HashSet<ChunkId>,
    bytes_read: &mut u64,
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
        *bytes_read += data.len() as u64;
        chunks.push(ChunkRef {
            id,
            len: data.len() as u32,
        });
        if sent.insert(id) && tx.blocking_send(Msg::Chunk(id, data)).is_err() {
            return Ok(ReadOutcome::Stopped);
        }
    }
    let after = std::fs::metadata(path)?;
    let mtime_ns = platform::mtime_ns(&before);
    if size != before.len() || after.len() != before.len() || platform::mtime_ns(&after) != mtime_ns
    {
        return Ok(ReadOutcome::Changed);
    }
    Ok(ReadOutcome::Done(FileMeta {
        size,
        mtime_ns,
        mode: platform::mode(&before),
        attributes: platform::attributes(&before),
        hash: hasher.finalize().into(),
        params,
        chunks,
    }))
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
        let mut sent = HashSet::new();
        let mut read = 0;
        let ReadOutcome::Done(meta) = read_file(&path, &tx, &mut sent, &mut read).unwrap() else {
            panic!("file not read");
        };
        assert_eq!(meta.size, data.len() as u64);
        assert_eq!(read, data.len() as u64);
        assert!(meta.lengths_add_up());
        assert_eq!(meta.hash, ChunkId::of(&data));
        let mut got = Vec::new();
        while let Ok(Msg::Chunk(_, d)) = rx.try_recv() {
            got.extend(d);
        }
        // Every distinct chunk was sent once; this data has no repeats, so they add up.
        assert_eq!(got, data);
    }

    /// Windows: a file another process holds open without sharing cannot be read; the reader
    /// reports it as unreadable (exit code 3 later) and goes on.
    #[cfg(windows)]
    #[test]
    fn file_locked_by_another_process_is_reported_unreadable() {
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
        let mut sent = HashSet::new();
        let mut r = ScanReport::default();
        assert!(back_up_file(&path, &tx, &mut sent, Lang::De, &mut r));
        assert_eq!(r.files_skipped, 1);
        assert_eq!(r.unreadable.len(), 1, "{:?}", r.unreadable);
        assert!(r.unreadable[0].contains("gesperrt.docx"));
        drop(holder);
        let mut r = ScanReport::default();
        assert!(back_up_file(&path, &tx, &mut sent, Lang::De, &mut r));
        assert!(r.unreadable.is_empty() && r.files_skipped == 0);
    }

    #[test]
    fn missing_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_root(&dir.path().join("nope")).is_err());
        assert!(check_root(dir.path()).is_ok());
    }
}
