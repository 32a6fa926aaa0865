//! # Control: the admin's command interface
//!
//! An admin command (`asgard-server gc`, `device approve`, ...) becomes an [`ops::Task`]. It runs
//! in exactly one of two places, because one process owns a data directory (its lock file):
//!
//! - **in-process**: the data directory lock is free, so [`execute`] takes it, opens the database
//!   (and the chunk store, for the tasks that need it) itself, runs the task and lets go;
//! - **in the running server**: the lock is held, so [`execute`] connects to the server's admin
//!   channel ([`channel`], the Unix socket `<data_dir>/admin.sock`, mode 0600: only the server's
//!   own user and root may connect), and the server runs the task on its open database and store
//!   ([`ops::runner::Resources::run`], which also publishes the result as an event).
//!
//! Either way the caller gets an [`Outcome`]: the report as JSON (`--json`), as text in the
//! caller's language (made by [`crate::present`]), and the exit code. The admin never has to stop
//! the service, for maintenance or for accounts.

pub(crate) mod channel;

use std::sync::Arc;

use anyhow::{anyhow, bail};
use asgard_core::Lang;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::db::Db;
use crate::ops::{self, PROTOCOL_VERSION, Report, SOCKET_NAME, Task, TaskContext};
use crate::present;
use crate::store::ChunkStore;

pub(crate) use channel::Request;

/// What a task produced, for the command that asked: the report as JSON (`--json`), as text for
/// people in the caller's language, and the exit code. The final line of the admin channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Outcome {
    /// The machine-readable result (`--json`).
    pub result: serde_json::Value,
    /// The result for people, in the requested language.
    pub text: String,
    /// The command's exit code (0 = all well; e.g. verify uses 1 for "found damage").
    pub exit_code: u8,
}

impl Outcome {
    /// The outcome of `report`, its text in `lang`.
    pub(crate) fn of(report: &Report, lang: Lang) -> anyhow::Result<Outcome> {
        Ok(Outcome {
            result: serde_json::to_value(report)?,
            text: present::report(report, lang),
            exit_code: report.exit_code(),
        })
    }
}

/// Runs `task` for the data directory of `config`: in-process when its lock is free, else through
/// the running server's admin channel. `progress` receives progress lines (in `lang`).
///
/// # Errors
/// The data directory is missing or cannot be used, the server does not answer, or the task
/// failed; the message is in `lang`.
pub(crate) fn execute(
    config: &Config,
    task: &Task,
    lang: Lang,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Outcome> {
    let dir = &config.data_dir;
    if !dir.is_dir() {
        bail!("{}", present::messages::data_dir_missing(dir, lang));
    }
    match crate::lock::try_acquire(dir, lang)? {
        Some(lock) => {
            let db = open_db(config, lang)?;
            let store = if task.needs_store() {
                Some(open_store(config, lang)?)
            } else {
                None
            };
            let ctx = TaskContext {
                db: &db,
                store: store.as_deref(),
                config,
                now_us: crate::db::now_us(),
            };
            let result = ops::run(task, &ctx, &mut |s| progress(present::step(s, lang)));
            if let Ok(report) = &result {
                ops::audit::record(&db, &ops::audit::Actor::cli(), task, report);
            }
            drop(store);
            drop(db);
            drop(lock);
            let report = result.map_err(|e| anyhow!("{}", present::ops_error(&e, lang)))?;
            Outcome::of(&report, lang)
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

/// Opens the metadata database of the configured data directory (the caller holds the lock).
pub(crate) fn open_db(config: &Config, lang: Lang) -> anyhow::Result<Db> {
    let path = config.data_dir.join("asgard.redb");
    Db::open(&path).map_err(|e| match e {
        crate::db::DbError::SchemaTooNew { found, known } => anyhow!(
            "{}",
            present::messages::db_schema_too_new(&path, found, known, lang)
        ),
        e => anyhow::Error::new(e).context(present::messages::cannot_open_db(&path, lang)),
    })
}

/// Opens the chunk store of the configuration (`store:`; by default the packed store in
/// `<data_dir>/chunks`). The caller holds the lock: crash repair and the import of per-file chunks
/// happen here.
pub(crate) fn open_store(config: &Config, lang: Lang) -> anyhow::Result<Arc<dyn ChunkStore>> {
    crate::store::open(&config.store, &config.data_dir).map_err(|e| {
        let place = config.store.local_path(&config.data_dir);
        anyhow!(
            "{}: {e}",
            present::messages::cannot_open_store(&place, lang)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_lives_where_the_configuration_says() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        config.store.path = Some(elsewhere.clone());
        let data = b"Donnerkeil".to_vec();
        let id = asgard_core::ChunkId::of(&data);
        let stored = asgard_core::stored::encode_raw(&data);
        open_store(&config, Lang::De)
            .unwrap()
            .put(&id, &stored)
            .unwrap();
        assert!(!config.data_dir.join("chunks").exists());
        // `locate` through the runner opens the same store and finds the chunk there.
        let out = execute(
            &config,
            &Task::Locate {
                ids: vec![id.to_hex()],
            },
            Lang::De,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(out.exit_code, 0, "{}", out.text);
        let path = out.result["chunks"][0]["path"].as_str().unwrap();
        assert!(path.starts_with(elsewhere.to_str().unwrap()), "{path}");
    }

    /// A database of a newer schema is refused with a message in the configured language that
    /// says what to do, and is left as it was.
    #[test]
    fn a_database_of_a_newer_server_is_refused_in_plain_words() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        drop(open_db(&config, Lang::De).unwrap());
        let path = config.data_dir.join("asgard.redb");
        let newer = crate::db::mark_schema_newer(&path);
        let de = format!("{:#}", open_db(&config, Lang::De).err().unwrap());
        assert!(
            de.contains(&format!("Schema-Version {newer}")) && de.contains("neueren"),
            "{de}"
        );
        let en = format!("{:#}", open_db(&config, Lang::En).err().unwrap());
        assert!(
            en.contains("written by a newer AsgardBackup version"),
            "{en}"
        );
        assert!(en.contains(path.to_str().unwrap()), "{en}");
    }
}
