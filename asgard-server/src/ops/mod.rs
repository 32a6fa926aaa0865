//! # Operations: every admin task, where it runs, when it runs, and who hears about it
//!
//! Everything an admin (or the server on its own) does to the installation is a [`Task`]: the
//! maintenance jobs (`gc`, `verify`, `db-backup`, `stats`, `locate`) and the account commands
//! (`device list/approve/reset/revoke/token`, `user list/set-keep/clear-keep/disable/enable/
//! delete`, `registration show/set`) and the admin console's reports (`overview`, `runs`). The
//! console's pages, its JSON twin and the CLI all call [`run`]; the console's maintenance jobs
//! run in the background through [`jobs::JobBoard`]. One function, [`run`], carries a task out on an open database
//! and store and returns a [`Report`]: data, never text. Text is made from it by
//! `crate::present` in the language of whoever asked.
//!
//! ## Where a task runs
//! In the server ([`Resources::run`], for the scheduler and for commands that arrive over the
//! admin channel) or in the command's own process on a stopped data directory: see
//! [`crate::control`].
//!
//! ## When it runs
//! `serve` runs gc, verify and db-backup periodically through one [`schedule::Scheduler`], which
//! stops its jobs cleanly when the server stops.
//!
//! ## Who hears about it
//! Every run inside the server (scheduled or asked for over the channel) is published on the
//! server's [`events::EventBus`]: the log is one subscriber today; the admin console and the
//! notifications subscribe tomorrow.
//!
//! Adding a task: one [`Task`] variant (its options as fields), one arm in [`run`], its report
//! type in [`Report`] and its text in `crate::present`; the command line maps its subcommand
//! to the variant.

pub(crate) mod accounts;
pub(crate) mod admins;
pub(crate) mod audit;
pub(crate) mod dbbackup;
pub(crate) mod events;
pub mod gc;
pub(crate) mod jobs;
pub(crate) mod locate;
pub(crate) mod overview;
pub(crate) mod registration;
pub(crate) mod runlist;
pub(crate) mod runner;
pub(crate) mod schedule;
pub(crate) mod users;
// Issue 14 (uauth): restore links made by an admin.
pub(crate) mod userlink;
pub mod verify;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Config, HumanDuration};
use crate::db::{Db, DbError, FullStats};
use crate::store::{ChunkStore, StoreError};

pub(crate) use accounts::{DeviceChange, DeviceInfo, KeepChange, TokenState, UserList};
pub(crate) use admins::{AdminChange, AdminList, Password};
pub(crate) use locate::LocateReport;
pub(crate) use overview::{DeviceRunState, OverviewReport};
pub(crate) use registration::RegistrationReport;
pub(crate) use runlist::{RunFilter, RunListReport, RunState};
pub(crate) use runner::Resources;
pub(crate) use users::UserChange;

/// Version of the admin channel protocol; a request with another version is refused.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// The admin socket's file name in the data directory.
pub(crate) const SOCKET_NAME: &str = "admin.sock";

/// A task with its options. This is the wire form of a request too (new variants are additions
/// to protocol version 1: an older server answers them with an error naming the task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum Task {
    /// The statistics ([`FullStats`]).
    Stats,
    /// A consistent copy of the metadata database. `to`: an absolute file or directory path;
    /// `None` = `<data_dir>/db-backups/asgard-YYYYMMDD-HHMMSS.redb` with rotation.
    DbBackup { to: Option<PathBuf> },
    /// Re-read chunks and check references ([`verify`]): all chunks, a sample of
    /// `sample_percent`, or those of one user. Exit code 1 when it found damage.
    Verify {
        sample_percent: Option<f64>,
        user: Option<String>,
    },
    /// A garbage collection pass ([`gc`]); `grace` overrides `gc_grace` of the config.
    Gc {
        dry_run: bool,
        grace: Option<HumanDuration>,
    },
    /// Where chunks are stored (file, offset, length): the given ids (hex), or every chunk when
    /// `ids` is empty. Exit code 1 when a given id is not in the store.
    Locate { ids: Vec<String> },
    /// Every device of every user.
    DeviceList,
    /// Approve a pending device (a new one, or a new registration under an existing name).
    DeviceApprove { user: String, device: String },
    /// Revoke a device's token and print a one-time code with which it logs in again
    /// (`asgard-agent login --code`); its files stay.
    DeviceReset { user: String, device: String },
    /// Every user with their device count and own `keep_versions`.
    UserList,
    /// A user's own `keep_versions`; `None` removes it (the configuration applies again).
    UserSetKeep { user: String, versions: Option<u32> },
    /// What the admin console's first page shows ([`OverviewReport`]).
    Overview,
    /// Disable a user: every device token of theirs is refused (`user_disabled`).
    UserDisable { user: String },
    /// Enable a disabled user again.
    UserEnable { user: String },
    /// Delete a user with all their devices, tokens, paths, versions, runs and registrations;
    /// chunks nobody else references go with the next GC passes.
    UserDelete { user: String },
    /// Revoke a device's access: its token is refused (`token_revoked`) from the next request
    /// on, and no code is made (see `device reset` for that).
    DeviceRevoke { user: String, device: String },
    /// Give a device a new token (shown once); the old one is refused from then on.
    DeviceToken { user: String, device: String },
    /// The registration mode and whether an enrollment key is needed, and where they come from.
    RegistrationShow,
    /// Set the registration mode and/or enrollment key at run time (kept in the database, wins
    /// over the configuration file); `reset` forgets them (the file applies again).
    RegistrationSet {
        #[serde(default)]
        mode: Option<crate::config::Registration>,
        /// A new enrollment key (at least [`registration::MIN_KEY_LEN`] characters).
        #[serde(default)]
        enrollment_key: Option<String>,
        /// No key needed any more.
        #[serde(default)]
        clear_enrollment_key: bool,
        /// Forget the run-time setting (the others must be unset).
        #[serde(default)]
        reset: bool,
    },
    /// The run reports of the agents, newest first, filtered by user, device and state, paged
    /// (`offset` runs skipped, at most `limit` shown; see [`runlist::MAX_LIMIT`]).
    RunList {
        #[serde(default)]
        user: Option<String>,
        #[serde(default)]
        device: Option<String>,
        #[serde(default)]
        state: Option<runlist::RunState>,
        #[serde(default)]
        offset: u64,
        #[serde(default = "runlist::default_limit")]
        limit: u32,
    },
    /// A new admin account of the web console.
    AdminCreate { admin: String, password: Password },
    /// A new password for an admin (its sessions end).
    AdminPasswd { admin: String, password: Password },
    /// Every admin account.
    AdminList,
    /// Delete an admin with its API tokens and sessions.
    AdminDelete { admin: String },
    /// Turn an admin's TOTP second factor on (new secret and recovery codes) or `off`.
    AdminTotp { admin: String, off: bool },
    /// A new API token for an admin (shown once).
    AdminToken { admin: String },
    /// Issue 14: a one-time restore link for a user (shown once); `by`: the admin who asked
    /// (the console), `None` on the command line.
    UserLink {
        user: String,
        #[serde(default)]
        by: Option<String>,
    },
}

impl Task {
    /// Whether the task reads or writes the chunk store (an in-process run of one that does not
    /// need not open it: opening repairs and imports, which takes time on a large store).
    pub(crate) fn needs_store(&self) -> bool {
        matches!(
            self,
            Task::Verify { .. } | Task::Gc { .. } | Task::Locate { .. }
        )
    }

    /// A short stable name for logs and events (`gc`, `device-approve`, ...).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Task::Stats => "stats",
            Task::DbBackup { .. } => "db-backup",
            Task::Verify { .. } => "verify",
            Task::Gc { .. } => "gc",
            Task::Locate { .. } => "locate",
            Task::DeviceList => "device-list",
            Task::DeviceApprove { .. } => "device-approve",
            Task::DeviceReset { .. } => "device-reset",
            Task::UserList => "user-list",
            Task::UserSetKeep { .. } => "user-set-keep",
            Task::Overview => "overview",
            Task::UserDisable { .. } => "user-disable",
            Task::UserEnable { .. } => "user-enable",
            Task::UserDelete { .. } => "user-delete",
            Task::DeviceRevoke { .. } => "device-revoke",
            Task::DeviceToken { .. } => "device-token",
            Task::RegistrationShow => "registration-show",
            Task::RegistrationSet { .. } => "registration-set",
            Task::RunList { .. } => "run-list",
            Task::AdminCreate { .. } => "admin-create",
            Task::AdminPasswd { .. } => "admin-passwd",
            Task::AdminList => "admin-list",
            Task::AdminDelete { .. } => "admin-delete",
            Task::AdminTotp { .. } => "admin-totp",
            Task::AdminToken { .. } => "admin-token",
            Task::UserLink { .. } => "user-link",
        }
    }
}

/// What a task produced: one report type per task, all of them data that serializes (the JSON
/// of `--json` is the inner report).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Report {
    Stats(FullStats),
    DbBackup(dbbackup::BackupReport),
    Verify(Box<verify::VerifyReport>),
    Gc(gc::GcReport),
    Locate(LocateReport),
    Devices(Vec<DeviceInfo>),
    DeviceChanged(DeviceChange),
    Users(UserList),
    KeepChanged(KeepChange),
    Overview(Box<OverviewReport>),
    UserChanged(UserChange),
    Registration(RegistrationReport),
    Runs(RunListReport),
    Admins(AdminList),
    AdminChanged(AdminChange),
    /// Issue 14.
    UserLink(userlink::LinkReport),
}

impl Report {
    /// The command's exit code: 0 = all well; 1 = verify found damage, or locate missed an id.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Report::Verify(r) if !r.clean() => 1,
            Report::Locate(r) => u8::from(!r.missing.is_empty()),
            _ => 0,
        }
    }
}

/// A step of a running task worth telling the person who waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Step {
    BackingUpDatabase,
    Verifying,
    CollectingGarbage,
    DeletingUser,
}

/// Why a task could not be carried out. The variants a person can act on name the object; the
/// text is made by `crate::present::ops_error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpsError {
    #[error("device {device} of user {user} not found")]
    DeviceNotFound { user: String, device: String },
    #[error("user {user} not found")]
    UserNotFound { user: String },
    #[error("invalid chunk id {0}")]
    BadChunkId(String),
    #[error("the target path must be absolute: {0}")]
    RelativePath(PathBuf),
    #[error("keep_versions must be at least 1")]
    BadKeep,
    /// An enrollment key shorter than [`registration::MIN_KEY_LEN`].
    #[error("the enrollment key is too short")]
    ShortKey,
    /// `registration set` with nothing to set, or `reset` together with something to set.
    #[error("registration set: nothing or contradictory to set")]
    BadRegistrationChange,
    #[error("admin {name} not found")]
    AdminNotFound { name: String },
    #[error("admin {name} exists already")]
    AdminExists { name: String },
    #[error("bad admin name {name}: {reason}")]
    BadAdminName {
        name: String,
        reason: crate::db::BadAdminName,
    },
    #[error(transparent)]
    WeakPassword(#[from] crate::service::webauth::password::WeakPassword),
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    #[error(transparent)]
    Gc(#[from] gc::GcError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (I/O with its context); shown as it is.
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// What a task may use: the open database and store of whoever runs it.
pub(crate) struct TaskContext<'a> {
    pub db: &'a Db,
    /// `None` when the runner did not open it ([`Task::needs_store`] is false).
    pub store: Option<&'a dyn ChunkStore>,
    pub config: &'a Config,
    pub now_us: i64,
}

impl TaskContext<'_> {
    fn store(&self) -> anyhow::Result<&dyn ChunkStore> {
        self.store
            .ok_or_else(|| anyhow::anyhow!("chunk store not opened for this task"))
    }
}

/// Runs one task. `step` hears of the steps of a long task while it runs.
///
/// # Errors
/// [`OpsError`]: the task did not run or did not finish; what it did before stays consistent.
pub(crate) fn run(
    task: &Task,
    ctx: &TaskContext<'_>,
    step: &mut dyn FnMut(Step),
) -> Result<Report, OpsError> {
    Ok(match task {
        Task::Stats => Report::Stats(ctx.db.full_stats()?),
        Task::DbBackup { to } => {
            if let Some(p) = to
                && !p.is_absolute()
            {
                return Err(OpsError::RelativePath(p.clone()));
            }
            step(Step::BackingUpDatabase);
            Report::DbBackup(dbbackup::backup(
                ctx.db,
                &ctx.config.data_dir,
                to.as_deref(),
                ctx.config.db_backup_keep,
                ctx.now_us,
            )?)
        }
        Task::Verify {
            sample_percent,
            user,
        } => {
            step(Step::Verifying);
            let opts = verify::VerifyOptions {
                sample_percent: *sample_percent,
                user: user.clone(),
                ..verify::VerifyOptions::default()
            };
            Report::Verify(Box::new(verify::run(
                ctx.db,
                ctx.store()?,
                &opts,
                ctx.now_us,
            )?))
        }
        Task::Gc { dry_run, grace } => {
            let mut opts = gc::GcOptions::from_config(ctx.config);
            opts.dry_run = *dry_run;
            if let Some(g) = grace {
                opts.grace = g.0;
            }
            step(Step::CollectingGarbage);
            Report::Gc(gc::run(ctx.db, ctx.store()?, &opts, ctx.now_us)?)
        }
        Task::Locate { ids } => Report::Locate(locate::locate(ctx.store()?, ids)?),
        Task::DeviceList => Report::Devices(accounts::devices(ctx.db)?),
        Task::DeviceApprove { user, device } => {
            Report::DeviceChanged(accounts::approve(ctx.db, user, device)?)
        }
        Task::DeviceReset { user, device } => {
            Report::DeviceChanged(accounts::reset(ctx.db, ctx.config, user, device)?)
        }
        Task::UserList => Report::Users(accounts::users(ctx.db, ctx.config)?),
        Task::UserSetKeep { user, versions } => {
            Report::KeepChanged(accounts::set_keep(ctx.db, ctx.config, user, *versions)?)
        }
        Task::Overview => Report::Overview(Box::new(overview::overview(
            ctx.db, ctx.config, ctx.now_us,
        )?)),
        Task::UserDisable { user } => {
            Report::UserChanged(users::set_disabled(ctx.db, user, true, ctx.now_us)?)
        }
        Task::UserEnable { user } => {
            Report::UserChanged(users::set_disabled(ctx.db, user, false, ctx.now_us)?)
        }
        Task::UserDelete { user } => {
            step(Step::DeletingUser);
            Report::UserChanged(users::delete(ctx.db, user, ctx.now_us)?)
        }
        Task::DeviceRevoke { user, device } => {
            Report::DeviceChanged(accounts::revoke(ctx.db, user, device, ctx.now_us)?)
        }
        Task::DeviceToken { user, device } => {
            Report::DeviceChanged(accounts::new_token(ctx.db, user, device, ctx.now_us)?)
        }
        Task::RegistrationShow => Report::Registration(registration::show(ctx.db, ctx.config)?),
        Task::RegistrationSet {
            mode,
            enrollment_key,
            clear_enrollment_key,
            reset,
        } => Report::Registration(registration::set(
            ctx.db,
            ctx.config,
            &registration::Change {
                mode: *mode,
                enrollment_key: enrollment_key.as_deref(),
                clear_enrollment_key: *clear_enrollment_key,
                reset: *reset,
            },
            ctx.now_us,
        )?),
        Task::RunList {
            user,
            device,
            state,
            offset,
            limit,
        } => Report::Runs(runlist::list(
            ctx.db,
            ctx.config,
            &RunFilter {
                user: user.clone(),
                device: device.clone(),
                state: *state,
                offset: *offset,
                limit: *limit,
            },
            ctx.now_us,
        )?),
        Task::AdminCreate { admin, password } => {
            Report::AdminChanged(admins::create(ctx.db, admin, password, ctx.now_us)?)
        }
        Task::AdminPasswd { admin, password } => {
            Report::AdminChanged(admins::passwd(ctx.db, admin, password, ctx.now_us)?)
        }
        Task::AdminList => Report::Admins(admins::list(ctx.db)?),
        Task::AdminDelete { admin } => {
            Report::AdminChanged(admins::delete(ctx.db, admin, ctx.now_us)?)
        }
        Task::AdminTotp { admin, off } => {
            Report::AdminChanged(admins::set_totp(ctx.db, admin, *off, ctx.now_us)?)
        }
        Task::AdminToken { admin } => {
            Report::AdminChanged(admins::token(ctx.db, admin, ctx.now_us)?)
        }
        Task::UserLink { user, by } => Report::UserLink(userlink::make(
            ctx.db,
            ctx.config,
            user,
            by.as_deref(),
            ctx.now_us,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgard_core::Lang;

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
        let approve = Task::DeviceApprove {
            user: "anna".into(),
            device: "laptop".into(),
        };
        let text = serde_json::to_string(&approve).unwrap();
        assert_eq!(
            text,
            r#"{"name":"device-approve","user":"anna","device":"laptop"}"#
        );
        assert_eq!(approve.name(), "device-approve");
        assert!(
            !approve.needs_store()
                && Task::Gc {
                    dry_run: true,
                    grace: None
                }
                .needs_store()
        );
    }

    #[test]
    fn in_process_run_needs_the_data_dir_and_takes_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("nope"),
            ..Config::default()
        };
        let err =
            crate::control::execute(&config, &Task::Stats, Lang::De, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("existiert nicht"), "{err}");

        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let out = crate::control::execute(&config, &Task::Stats, Lang::De, &mut |_| {}).unwrap();
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
