//! # asgard-agent
//!
//! The AsgardBackup client: registers the device with the server, backs up the user's folders
//! (scan → read, chunk, hash → check → compress → upload → commit, see [`backup::pipeline`]) and restores files exactly. The binary (`main.rs`)
//! only parses the command line and calls into these modules.

pub mod backup;
pub mod cache;
pub mod client;
pub mod config;
pub mod list;
pub mod plan;
pub mod platform;
pub(crate) mod present;
pub mod progress;
pub mod restore;
pub mod runlock;
pub mod runlog;
pub mod scan;
pub mod schedule;
pub mod session;
pub mod state;
pub mod timefmt;
