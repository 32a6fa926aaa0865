//! The record of a run: a log file in the state folder and a report to the server.
//!
//! Every backup writes `logs/backup-YYYYMMDD-HHMMSS.log` (local time) through `tracing`: start,
//! roots, warnings and errors, summary. Any `tracing` event of the run, from any module or thread,
//! lands there; the console output stays as it is. The newest [`KEEP_LOGS`] files are kept.
//!
//! At the end the run's [`RunReport`] goes to the server (`POST /api/runs`), failed runs included,
//! provided the run got as far as a working connection: a run that could not reach the server
//! has nobody to tell, and says so in its log.
//!
//! The backup code talks to a [`RunLog`] in three places: [`RunLog::attach_client`] once logged
//! in, [`RunLog::record`] with the counters and errors at the end, and the caller's
//! [`RunLog::finish`] with the exit code.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use asgard_core::Lang;
use asgard_core::protocol::{MAX_RUN_ERRORS, MAX_RUN_TEXT, RunReport, RunSummary};
use time::{OffsetDateTime, UtcOffset};

use crate::client::Client;
use crate::platform;

/// Log files kept in `logs/`.
pub(crate) const KEEP_LOGS: usize = 30;
/// The folder in the state folder.
pub(crate) const LOG_DIR: &str = "logs";

#[derive(Default)]
struct Outcome {
    summary: RunSummary,
    errors: Vec<String>,
}

pub struct RunLog {
    /// The log file (the tests read it).
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests"))]
    pub(crate) path: PathBuf,
    kind: &'static str,
    started: SystemTime,
    started_at: Instant,
    client: Mutex<Option<Client>>,
    outcome: Mutex<Option<Outcome>>,
}

/// The log file name for a run of `kind` that started at `local`.
pub(crate) fn file_name(kind: &str, local: OffsetDateTime) -> String {
    format!(
        "{kind}-{:04}{:02}{:02}-{:02}{:02}{:02}.log",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    )
}

/// Of the log files named in `names` (any order), the ones to delete so that `keep` remain: the
/// oldest by name (names sort by time). Other files are left alone.
pub(crate) fn to_prune(kind: &str, names: &[String], keep: usize) -> Vec<String> {
    let prefix = format!("{kind}-");
    let mut logs: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with(&prefix) && n.ends_with(".log"))
        .collect();
    logs.sort();
    let excess = logs.len().saturating_sub(keep);
    logs[..excess].iter().map(|n| (*n).clone()).collect()
}

/// The errors as a report carries them: the first [`MAX_RUN_ERRORS`], each cut to
/// [`MAX_RUN_TEXT`] bytes (at a character boundary).
pub(crate) fn report_errors(errors: &[String]) -> Vec<String> {
    errors
        .iter()
        .take(MAX_RUN_ERRORS)
        .map(|e| {
            if e.len() <= MAX_RUN_TEXT {
                return e.clone();
            }
            let mut end = MAX_RUN_TEXT - 3;
            while !e.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", &e[..end])
        })
        .collect()
}

/// The exit code as a number (the codes the agent uses; anything else counts as 1).
pub(crate) fn exit_code_number(code: ExitCode) -> u8 {
    [0u8, 2, 3]
        .into_iter()
        .find(|n| code == ExitCode::from(*n))
        .unwrap_or(1)
}

fn micros(t: SystemTime) -> i64 {
    platform::system_time_to_ns(t) / 1000
}

impl RunLog {
    /// Creates the log file for a run of `kind` in `<state_dir>/logs`, removes old ones and sends
    /// this process's `tracing` events into it.
    pub fn start(state_dir: &Path, kind: &'static str, offset: UtcOffset) -> std::io::Result<Self> {
        let dir = state_dir.join(LOG_DIR);
        std::fs::create_dir_all(&dir)?;
        let base = file_name(kind, OffsetDateTime::now_utc().to_offset(offset));
        // Two runs in the same second (a quick retry) get `-1`, `-2`, ... instead of sharing a file.
        let (path, file) = (0..100)
            .find_map(|n| {
                let name = match n {
                    0 => base.clone(),
                    n => base.replace(".log", &format!("-{n}.log")),
                };
                let path = dir.join(name);
                File::create_new(&path).ok().map(|f| (path, f))
            })
            .ok_or_else(|| std::io::Error::other("no free log file name"))?;
        prune(&dir, kind);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Arc::new(file))
            .with_ansi(false)
            .with_target(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        // Once per process; a second run in the same process (tests) keeps the first file.
        let _ = tracing::subscriber::set_global_default(subscriber);
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            pid = std::process::id(),
            "{kind} started"
        );
        Ok(RunLog {
            path,
            kind,
            started: SystemTime::now(),
            started_at: Instant::now(),
            client: Mutex::new(None),
            outcome: Mutex::new(None),
        })
    }

    /// The logged-in client to send the report with.
    pub(crate) fn attach_client(&self, client: &Client) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client.clone());
    }

    /// The run's counters and every error or warning; written to the log at once.
    pub(crate) fn record(&self, summary: RunSummary, errors: &[String]) {
        for e in errors {
            tracing::warn!("{e}");
        }
        tracing::info!(
            files_seen = summary.files_seen,
            files_new = summary.files_new,
            files_changed = summary.files_changed,
            files_unchanged = summary.files_unchanged,
            files_deleted = summary.files_deleted,
            files_skipped = summary.files_skipped,
            bytes_read = summary.bytes_read,
            bytes_sent = summary.bytes_sent,
            bytes_new = summary.bytes_new,
            versions_created = summary.versions_created,
            duration_s = summary.duration_s,
            "summary"
        );
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(Outcome {
            summary,
            errors: errors.to_vec(),
        });
    }

    /// The report for a run that ends with `code` (and `failure`, if it ended with an error).
    pub(crate) fn report(&self, code: u8, failure: Option<&str>) -> RunReport {
        let recorded = self
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // A run that failed before its summary still reports how long it took.
        let outcome = recorded.unwrap_or_else(|| Outcome {
            summary: RunSummary {
                duration_s: self.started_at.elapsed().as_secs_f64(),
                ..RunSummary::default()
            },
            errors: Vec::new(),
        });
        let summary = outcome.summary;
        let mut errors = Vec::new();
        errors.extend(failure.map(str::to_owned));
        errors.extend(outcome.errors);
        RunReport {
            started_us: micros(self.started),
            finished_us: micros(SystemTime::now()),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            exit_code: code,
            summary,
            errors: report_errors(&errors),
        }
    }

    /// Ends the run: logs how it ended and sends the report to the server if the run had a
    /// connection. A report that cannot be sent is a warning, never a failure of the run.
    pub async fn finish(&self, result: &anyhow::Result<ExitCode>, lang: Lang) {
        let (code, failure) = match result {
            Ok(c) => (exit_code_number(*c), None),
            Err(e) => (1, Some(format!("{e:#}"))),
        };
        if let Some(f) = &failure {
            tracing::error!("{f}");
        }
        let report = self.report(code, failure.as_deref());
        tracing::info!(exit_code = code, "{} finished", self.kind);
        let client = self
            .client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match client {
            Some(c) => match c.report_run(&report).await {
                Ok(a) => tracing::info!(run_id = a.id, "run report sent"),
                Err(e) => {
                    tracing::warn!("run report not sent: {e:#}");
                    eprintln!(
                        "{}: {e:#}",
                        lang.pick(
                            "Warnung: Laufbericht nicht an den Server gesendet",
                            "Warning: run report not sent to the server"
                        )
                    );
                }
            },
            None => tracing::warn!("run report not sent: no connection to the server"),
        }
    }
}

/// Removes old log files; a file that cannot be removed stays (the next run tries again).
fn prune(dir: &Path, kind: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    for name in to_prune(kind, &names, KEEP_LOGS) {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn file_names_sort_by_time() {
        let a = file_name("backup", datetime!(2026-03-04 05:06:07 +1));
        assert_eq!(a, "backup-20260304-050607.log");
        let b = file_name("backup", datetime!(2026-11-30 23:59:59 UTC));
        assert!(a < b);
    }

    #[test]
    fn prune_keeps_the_newest_of_its_kind() {
        let mut names: Vec<String> = (1..=35)
            .map(|d| format!("backup-202601{d:02}-120000.log"))
            .collect();
        names.push("notes.txt".into());
        names.push("restore-20200101-000000.log".into());
        names.reverse();
        let gone = to_prune("backup", &names, 30);
        assert_eq!(gone.len(), 5);
        assert!(gone.contains(&"backup-20260101-120000.log".to_owned()));
        assert!(gone.contains(&"backup-20260105-120000.log".to_owned()));
        assert!(!gone.contains(&"backup-20260106-120000.log".to_owned()));
        assert!(to_prune("backup", &names[..3], 30).is_empty());
    }

    #[test]
    fn report_errors_are_bounded() {
        let many: Vec<String> = (0..150).map(|i| format!("e{i}")).collect();
        assert_eq!(report_errors(&many).len(), MAX_RUN_ERRORS);
        let long = vec!["ä".repeat(MAX_RUN_TEXT)];
        let cut = &report_errors(&long)[0];
        assert!(cut.len() <= MAX_RUN_TEXT && cut.ends_with("..."));
    }

    #[test]
    fn exit_codes_map_back_to_numbers() {
        assert_eq!(exit_code_number(ExitCode::SUCCESS), 0);
        assert_eq!(exit_code_number(ExitCode::from(3)), 3);
        assert_eq!(exit_code_number(ExitCode::from(1)), 1);
        assert_eq!(exit_code_number(ExitCode::from(42)), 1);
    }

    #[test]
    fn log_file_gets_the_summary_and_report_carries_counters() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunLog::start(dir.path(), "backup", UtcOffset::UTC).unwrap();
        assert!(run.path.starts_with(dir.path().join(LOG_DIR)));
        // A second run within the same second gets its own file.
        let second = RunLog::start(dir.path(), "backup", UtcOffset::UTC).unwrap();
        assert_ne!(run.path, second.path);
        let summary = RunSummary {
            files_seen: 7,
            bytes_read: 1234,
            duration_s: 0.5,
            ..RunSummary::default()
        };
        run.record(summary, &["unlesbar: /x".to_owned()]);
        let r = run.report(3, None);
        assert_eq!(r.exit_code, 3);
        assert_eq!(r.summary, summary);
        assert_eq!(r.errors, vec!["unlesbar: /x".to_owned()]);
        assert!(r.finished_us >= r.started_us);
        // The global subscriber belongs to whichever test got there first; only check this
        // run's file when it is the one being written.
        let text = std::fs::read_to_string(&run.path).unwrap();
        if !text.is_empty() {
            assert!(text.contains("files_seen=7"), "{text}");
            assert!(text.contains("unlesbar: /x"), "{text}");
        }
        let failed = second.report(1, Some("Server weg"));
        assert_eq!(failed.errors, vec!["Server weg".to_owned()]);
        assert!(failed.summary.duration_s > 0.0);
    }
}
