//! # asgard-server
//!
//! The AsgardBackup server as a library, so that its parts can be tested and reused (the binary in
//! `main.rs` only parses the command line and wires them together):
//!
//! - [`config`]: the YAML configuration;
//! - [`lock`]: one process per data directory;
//! - [`db`]: the redb metadata and every transaction of the API;
//! - [`store`]: the [`store::ChunkStore`] trait and its backends;
//! - [`gc`]: retention pruning and garbage collection of unreferenced chunks;
//! - [`service`]: what the handlers (and later the web pages) do, without HTTP: the ingest of
//!   uploads and commits, and the reads of restore;
//! - [`api`]: the actix-web handlers;
//! - [`tls`]: the certificate and its fingerprint;
//! - [`maintenance`]: the admin tasks (stats, db-backup, ...) and the admin channel that runs them
//!   inside a running server;
//! - [`timefmt`]: UTC times as text;
//! - [`verify`]: re-reading chunks and checking references; the bad marks that healing clears.

pub mod api;
pub mod config;
pub mod db;
pub mod gc;
pub mod lock;
pub mod maintenance;
pub mod service;
pub mod store;
pub mod timefmt;
pub mod tls;
pub mod verify;

#[cfg(test)]
pub(crate) mod testutil;
