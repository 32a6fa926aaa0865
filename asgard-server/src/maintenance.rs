//! # Maintenance tasks and where they run
//!
//! The admin commands `stats` and `db-backup` (and `gc`, `verify`) are [`Task`]s. One process owns
//! a data directory (its lock file), so a task runs in exactly one of two places:
//!
//! - **in-process**: the data directory lock is free, so the command takes it, opens the database
//!   and the chunk store itself, runs the task and lets go;
//! - **in the running server**: the lock is held, so the command connects to the server's admin
//!   channel, the Unix socket `<data_dir>/admin.sock` (mode 0600: only the server's own user and
//!   root may connect), and the server runs the task on its open database and store. The admin
//!   never has to stop the service for maintenance.
//!
//! Either way the same function, [`run_task`], does the work and returns an [`Outcome`]: a JSON
//! result (`--json`), a text for people in the caller's language, and the exit code.
//!
//! The channel speaks newline-delimited JSON (see [`channel`]): one [`Request`] line from the
//! client; then any number of [`Reply::Progress`] lines and exactly one final [`Reply::Done`] or
//! [`Reply::Error`] line from the server. A line that does not parse, a protocol version or task
//! the server does not know gets a [`Reply::Error`] naming the problem.
//!
//! Adding a task: one [`Task`] variant (its options as fields) and one arm in [`run_task`]; the
//! command line maps its subcommand to the variant.

pub mod channel;
pub mod dbbackup;

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use asgard_core::Lang;
use serde::{Deserialize, Serialize};

use crate::config::{Config, HumanDuration};
use crate::db::{Db, FullStats};
use crate::store::{ChunkStore, PackedStore};
use crate::{gc, verify};

pub use channel::{Reply, Request};

/// Version of the admin channel protocol; a request with another version is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// The admin socket's file name in the data directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// A maintenance task with its options. This is the wire form of a request too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Task {
    /// The statistics ([`FullStats`]).
    Stats,
    /// A consistent copy of the metadata database. `to`: an absolute file or directory path;
    /// `None` = `<data_dir>/db-backups/asgard-YYYYMMDD-HHMMSS.redb` with rotation.
    DbBackup { to: Option<PathBuf> },
    /// Re-read chunks and check references ([`crate::verify`]): all chunks, a sample of
    /// `sample_percent`, or those of one user. Exit code 1 when it found damage.
    Verify {
        sample_percent: Option<f64>,
        user: Option<String>,
    },
    /// A garbage collection pass ([`crate::gc`]); `grace` overrides `gc_grace` of the config.
    Gc {
        dry_run: bool,
        grace: Option<HumanDuration>,
    },
    /// Where chunks are stored (file, offset, length): the given ids (hex), or every chunk when
    /// `ids` is empty. Exit code 1 when a given id is not in the store.
    Locate { ids: Vec<String> },
}

/// One chunk of a [`Task::Locate`] result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Located {
    pub id: String,
    #[serde(flatten)]
    pub location: crate::store::ChunkLocation,
}

/// The result of [`Task::Locate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocateReport {
    pub count: u64,
    pub chunks: Vec<Located>,
    /// Given ids the store does not have.
    pub missing: Vec<String>,
}

/// What a task produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The machine-readable result (`--json`).
    pub result: serde_json::Value,
    /// The result for people, in the requested language.
    pub text: String,
    /// The command's exit code (0 = all well; e.g. verify uses 1 for "found damage").
    pub exit_code: u8,
}

impl Outcome {
    /// An outcome from a serializable report and its text.
    pub fn new<T: Serialize>(report: &T, text: String, exit_code: u8) -> anyhow::Result<Outcome> {
        Ok(Outcome {
            result: serde_json::to_value(report)?,
            text,
            exit_code,
        })
    }
}

/// What a task may use: the open database and store of whoever runs it.
pub struct TaskContext<'a> {
    pub db: &'a Db,
    pub store: &'a dyn ChunkStore,
    pub config: &'a Config,
    /// The language of the requesting command (not necessarily the server's).
    pub lang: Lang,
    pub now_us: i64,
}

/// Runs one task. `progress` receives lines for people while it runs (shown on stderr).
pub fn run_task(
    task: &Task,
    ctx: &TaskContext<'_>,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Outcome> {
    let lang = ctx.lang;
    match task {
        Task::Stats => {
            let stats = ctx.db.full_stats()?;
            Outcome::new(&stats, render_stats(&stats, lang), 0)
        }
        Task::DbBackup { to } => {
            if let Some(p) = to
                && !p.is_absolute()
            {
                bail!(
                    "{} {}",
                    lang.pick(
                        "Der Zielpfad muss absolut sein:",
                        "The target path must be absolute:"
                    ),
                    p.display()
                );
            }
            progress(lang.pick(
                "Sichere die Metadaten-Datenbank …",
                "Backing up the metadata database …",
            ));
            let report = dbbackup::backup(
                ctx.db,
                &ctx.config.data_dir,
                to.as_deref(),
                ctx.config.db_backup_keep,
                ctx.now_us,
            )?;
            let text = report.text(lang);
            Outcome::new(&report, text, 0)
        }
        Task::Verify {
            sample_percent,
            user,
        } => {
            progress(lang.pick("Prüfung der Chunks läuft …", "Verifying the chunks …"));
            let opts = verify::VerifyOptions {
                sample_percent: *sample_percent,
                user: user.clone(),
                lang,
                ..verify::VerifyOptions::default()
            };
            let report = verify::run(ctx.db, ctx.store, &opts, ctx.now_us)?;
            let code = if report.clean() { 0 } else { 1 };
            Outcome::new(&report, verify::render(&report, lang), code)
        }
        Task::Gc { dry_run, grace } => {
            let mut opts = gc::GcOptions::from_config(ctx.config);
            opts.dry_run = *dry_run;
            if let Some(g) = grace {
                opts.grace = g.0;
            }
            progress(lang.pick(
                "Speicherbereinigung läuft …",
                "Garbage collection running …",
            ));
            let report = gc::run(ctx.db, ctx.store, &opts, ctx.now_us)?;
            Outcome::new(&report, report.render(lang), 0)
        }
        Task::Locate { ids } => {
            let report = locate(ctx.store, ids, lang)?;
            let mut text = String::new();
            for c in &report.chunks {
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    c.id,
                    c.location.path.display(),
                    c.location.offset,
                    c.location.len
                ));
            }
            for m in &report.missing {
                text.push_str(&format!(
                    "{m}\t{}\n",
                    lang.pick("nicht im Speicher", "not in the store")
                ));
            }
            let code = u8::from(!report.missing.is_empty());
            Outcome::new(&report, text, code)
        }
    }
}

/// The locations of `ids` (hex), or of every chunk when `ids` is empty.
fn locate(store: &dyn ChunkStore, ids: &[String], lang: Lang) -> anyhow::Result<LocateReport> {
    let mut wanted = Vec::new();
    for hex in ids {
        let id: asgard_core::ChunkId = hex.parse().map_err(|_| {
            anyhow!(
                "{} {hex}",
                lang.pick("Ungültige Chunk-ID:", "Invalid chunk id:")
            )
        })?;
        wanted.push(id);
    }
    if wanted.is_empty() {
        for id in store.list()? {
            wanted.push(id?);
        }
    }
    let mut report = LocateReport::default();
    for id in wanted {
        match store.locate(&id)? {
            Some(location) => report.chunks.push(Located {
                id: id.to_hex(),
                location,
            }),
            None => report.missing.push(id.to_hex()),
        }
    }
    report.count = report.chunks.len() as u64;
    Ok(report)
}

/// The statistics as text.
pub fn render_stats(s: &FullStats, lang: Lang) -> String {
    let ratio = |r: Option<f64>| match r {
        Some(r) => number(r, lang),
        None => "–".to_owned(),
    };
    let blob = |b: &Option<serde_json::Value>| match b {
        Some(v) => v.to_string(),
        None => lang.pick("noch nie", "never").to_owned(),
    };
    let rows: [(&str, String); 12] = [
        (lang.pick("Benutzer", "Users"), s.users.to_string()),
        (lang.pick("Geräte", "Devices"), s.devices.to_string()),
        (lang.pick("Versionen", "Versions"), s.versions.to_string()),
        ("Chunks", s.chunks.to_string()),
        (
            lang.pick("Logische Größe", "Logical size"),
            bytes(s.logical_bytes, lang),
        ),
        (
            lang.pick("Gespeichert", "Stored"),
            bytes(s.stored_bytes, lang),
        ),
        (
            lang.pick("Eindeutige Daten", "Unique data"),
            bytes(s.plain_bytes, lang),
        ),
        (
            lang.pick("Dedupe-Faktor", "Dedupe ratio"),
            ratio(s.dedupe_ratio),
        ),
        (
            lang.pick("Kompressionsfaktor", "Compression ratio"),
            ratio(s.compression_ratio),
        ),
        (
            lang.pick("Beschädigte Chunks", "Bad chunks"),
            s.bad_chunks.to_string(),
        ),
        (lang.pick("Letzte GC", "Last GC"), blob(&s.last_gc)),
        (
            lang.pick("Letzte Prüfung", "Last verify"),
            blob(&s.last_verify),
        ),
    ];
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let pad = width - k.chars().count();
        out.push_str(&format!("{k}:{} {v}\n", " ".repeat(pad)));
    }
    out
}

/// A number with two decimals, with a decimal comma in German.
fn number(x: f64, lang: Lang) -> String {
    let t = format!("{x:.2}");
    match lang {
        Lang::De => t.replace('.', ","),
        Lang::En => t,
    }
}

/// Bytes for people: `1,50 GiB (1610612736 Bytes)`.
pub fn bytes(n: u64, lang: Lang) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let word = lang.pick("Bytes", "bytes");
    if n < 1024 {
        return format!("{n} {word}");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {} ({n} {word})", number(v, lang), UNITS[unit])
}

/// Runs `task` for the data directory of `config`: in-process when its lock is free, else through
/// the running server's admin channel. `progress` receives progress lines.
pub fn execute(
    config: &Config,
    task: &Task,
    lang: Lang,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Outcome> {
    let dir = &config.data_dir;
    if !dir.is_dir() {
        bail!(
            "{} {}",
            lang.pick(
                "Datenverzeichnis existiert nicht:",
                "Data directory does not exist:"
            ),
            dir.display()
        );
    }
    match crate::lock::try_acquire(dir, lang)? {
        Some(lock) => {
            let (db, store) = open_for_task(config, lang)?;
            let ctx = TaskContext {
                db: &db,
                store: &store,
                config,
                lang,
                now_us: crate::db::now_us(),
            };
            let outcome = run_task(task, &ctx, progress);
            drop(db);
            drop(lock);
            outcome
        }
        None => {
            let request = Request {
                version: PROTOCOL_VERSION,
                lang,
                task: task.clone(),
            };
            channel::call(&dir.join(SOCKET_NAME), &request, lang, progress)
        }
    }
}

/// Opens the database and the chunk store of the configured data directory (the caller holds the
/// lock).
pub fn open_for_task(config: &Config, lang: Lang) -> anyhow::Result<(Db, PackedStore)> {
    let data_dir = &config.data_dir;
    let path = data_dir.join("asgard.redb");
    let db = Db::open(&path).with_context(|| {
        format!(
            "{} {}",
            lang.pick(
                "Metadaten-Datenbank kann nicht geöffnet werden:",
                "Cannot open metadata database"
            ),
            path.display()
        )
    })?;
    let store = open_store(config, lang)?;
    Ok((db, store))
}

/// Opens the chunk store `<data_dir>/chunks` (the caller holds the lock): crash repair and the
/// import of per-file chunks happen here.
pub fn open_store(config: &Config, lang: Lang) -> anyhow::Result<PackedStore> {
    let chunks = config.data_dir.join("chunks");
    PackedStore::open(&chunks, config.packed_options()).map_err(|e| {
        anyhow!(
            "{} {}: {e}",
            lang.pick(
                "Chunk-Speicher kann nicht geöffnet werden:",
                "Cannot open chunk store"
            ),
            chunks.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_have_a_stable_wire_form() {
        let t = Task::DbBackup {
            to: Some(PathBuf::from("/x/y.redb")),
        };
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text, r#"{"name":"db-backup","to":"/x/y.redb"}"#);
        assert_eq!(serde_json::from_str::<Task>(&text).unwrap(), t);
        assert_eq!(
            serde_json::from_str::<Task>(r#"{"name":"stats"}"#).unwrap(),
            Task::Stats
        );
        let err = serde_json::from_str::<Task>(r#"{"name":"frobnicate"}"#).unwrap_err();
        assert!(err.to_string().contains("frobnicate"), "{err}");
        assert!(serde_json::from_str::<Task>(r#"{"name":"db-backup","too":"/x"}"#).is_err());
    }

    #[test]
    fn stats_text_is_german_by_default() {
        let s = FullStats {
            users: 2,
            logical_bytes: 3 << 30,
            plain_bytes: 1 << 30,
            dedupe_ratio: Some(3.0),
            ..FullStats::default()
        };
        let de = render_stats(&s, Lang::De);
        assert!(de.contains("Benutzer:"), "{de}");
        assert!(de.contains("3,00 GiB (3221225472 Bytes)"), "{de}");
        assert!(de.contains("Dedupe-Faktor:"), "{de}");
        assert!(de.contains("3,00\n"), "{de}");
        assert!(de.contains("noch nie"), "{de}");
        let en = render_stats(&s, Lang::En);
        assert!(en.contains("Users:") && en.contains("3.00 GiB"), "{en}");
        assert_eq!(bytes(5, Lang::De), "5 Bytes");
    }

    #[test]
    fn in_process_run_needs_the_data_dir_and_takes_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("nope"),
            ..Config::default()
        };
        let err = execute(&config, &Task::Stats, Lang::De, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("existiert nicht"), "{err}");

        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let out = execute(&config, &Task::Stats, Lang::De, &mut |_| {}).unwrap();
        assert_eq!(out.exit_code, 0);
        assert_eq!(out.result["users"], 0);
        assert!(out.result["dedupe_ratio"].is_null());
        // The lock was released again.
        assert!(
            crate::lock::try_acquire(dir.path(), Lang::De)
                .unwrap()
                .is_some()
        );
    }
}
