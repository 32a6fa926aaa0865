//! # asgard-agent
//!
//! The AsgardBackup client: registers the device with the server, backs up the user's folders
//! (scan → read, chunk, hash → check → compress → upload → commit, see `backup::pipeline`) and
//! restores files exactly. The binary (`main.rs`) only parses the command line and calls into
//! these modules.
//!
//! ## Module map, top down
//!
//! Commands (one per subcommand; each resolves a [`Ctx`] into a session and runs):
//! - `session`: the resolved settings ([`Ctx`]), the state file, the pinned client and the login.
//! - `backup`: wires a backup run: plan, scan, files cache, the pipeline, deletion markers, the
//!   summary; `backup::pipeline` holds the stages (reader → checker → compressor → sender →
//!   committer) with the bounded-memory and no-deadlock argument.
//! - `restore`: a restore as stages: `plan` (what and where, safety checks), `window` (many files
//!   at once), `fetch` (requests, verify), `write` (temp files, holes, hashing), `finish` (check,
//!   sync, rename, links, summary).
//! - `list`: the backed-up paths and their versions; the paged listing the others use.
//! - `plan`: what a backup would save and why not, built from the config.
//! - `schedule`: systemd timer, crontab line or Windows task that runs `backup` regularly.
//!
//! Presentation:
//! - `present`: every message with arguments and every summary, rendered from data in the
//!   language passed per call.
//! - `progress`: the progress bar (files and bytes done of what the scan found so far).
//! - `timefmt`: local times and `--at` parsing (what needs the `time` crate).
//!
//! Parts the commands stand on:
//! - `scan`: the parallel walk of the roots with the exclusion rules and `.asgardignore`.
//! - `cache`: the files cache (what the server holds already, so unchanged files are not read).
//! - `fsmeta`: an entry's metadata beyond content and mode (owner, extended attributes and ACLs,
//!   hard-link groups, Windows creation time), with `owners` for the names.
//! - `client`: HTTPS to the API, certificate pinning, multipart uploads.
//! - `runlog`: the log file of a run and the run report to the server.
//! - `runlock`: one agent run at a time per state folder.
//! - `config`: the YAML config file, its defaults and errors.
//! - `state`: the state file (server, token, fingerprint).
//! - `platform`: the little that differs between Linux and Windows.
//!
//! Modules depend only downwards in this list (commands on presentation on the parts; `present`
//! reads the error types of `config` and `runlock`); there are no import cycles.
//!
//! ## The facade
//!
//! Everything is `pub(crate)` except what the binary and the benches use, re-exported here:
//! the binary's setup (config, state folder, lock, log, local offset) and one entry per command;
//! [`pipeline`] for `bench/benches/pipeline.rs`, which drives the backup stages with the server
//! replaced by a sink.

mod backup;
mod cache;
mod client;
mod config;
mod fsmeta;
mod list;
mod owners;
mod plan;
mod platform;
mod present;
mod progress;
mod restore;
mod runlock;
mod runlog;
mod scan;
mod schedule;
mod session;
mod state;
mod timefmt;
// Issue 14 (uauth): `asgard-agent web`.
mod web;

/// Entry points of the fuzz targets in `fuzz/` (see `docs/FUZZING.md`); not an API.
#[doc(hidden)]
pub mod fuzzing;

// The binary's setup, before a command runs.
pub use config::{Config, ConfigError};
pub use platform::{WINDOWS, default_state_dir, real_env};
pub use present::errors::Describe;
pub use present::help::{
    AGENT as HELP_EN, english_text as help_text, keys as help_keys, localize as localize_help,
};
pub use runlock::{LockError, RunLock, acquire as lock_state_dir};
pub use runlog::RunLog;
pub use session::Ctx;
pub use timefmt::local_offset;

/// One entry per command of the binary.
pub mod commands {
    pub use crate::backup::run as backup;
    pub use crate::list::{ListArgs, run as list};
    pub use crate::plan::{JSON_HELP as PLAN_JSON_HELP, run as plan};
    pub use crate::restore::{RestoreArgs, run as restore};
    pub use crate::schedule::{Action, Every, ScheduleArgs, run as schedule};
    pub use crate::session::{approve_device, login};
    pub use crate::web::{WebArgs, run as web};
}

/// The backup pipeline without the server, for the benches: the reader fed by the scanner, the
/// stages after it, and the [`Remote`](pipeline::Remote) a sink stands in for.
pub mod pipeline {
    pub use crate::backup::pipeline::compressor::encode_with;
    pub use crate::backup::pipeline::{
        ITEM_CHANNEL, Item, MemoryBudget, Reader, Remote, Settings, run,
    };
    pub use crate::progress::Progress;
    pub use crate::scan::{ScanRules, scan};

    // Types in the signatures above; the benches pass them through without looking inside.
    pub use crate::backup::pipeline::compressor::Contexts;
    pub use crate::backup::pipeline::{CacheNote, Permit, ScanReport, UploadStats};
    pub use crate::cache::{CacheReader, FilesCache};
    pub use crate::scan::ScanEvent;
}
