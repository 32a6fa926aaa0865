//! # asgard-agent
//!
//! The AsgardBackup client: registers the device with the server, backs up the user's folders
//! (scan → chunk → check → upload → commit) and restores files exactly. The binary (`main.rs`)
//! only parses the command line and calls into these modules.

pub mod backup;
pub mod cache;
pub mod client;
pub mod config;
pub mod list;
pub mod platform;
pub mod restore;
pub mod scan;
pub mod session;
pub mod state;
pub mod timefmt;
pub mod upload;
