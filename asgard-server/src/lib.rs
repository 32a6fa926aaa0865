//! # asgard-server
//!
//! The AsgardBackup server as a library, so that its parts can be tested and reused (the binary in
//! `main.rs` only calls [`cli::main`]). The layers, top down (see `docs/ARCHITECTURE.md`):
//!
//! - [`cli`]: the command line; `serve` wires everything together;
//! - `api`: the actix-web handlers: parse, authorise, call one function below, answer;
//! - `control`: the admin's command interface: a task runs in-process on a stopped data
//!   directory or in the running server through the admin channel;
//! - `present`: reports and errors as text for people, in a language passed per call;
//! - [`service`]: what the handlers (and later the web pages) do, without HTTP: the ingest of
//!   uploads and commits, and the reads of restore;
//! - `ops`: every admin task (gc, verify, db-backup, stats, locate, devices, users), the
//!   periodic jobs and the event stream of their results;
//! - [`db`]: the redb metadata and every transaction;
//! - [`store`]: the [`store::ChunkStore`] trait and its backends;
//! - [`config`]: the YAML configuration; `lock`: one process per data directory; `tls`: the
//!   certificate and its fingerprint.

#![warn(unreachable_pub)]
// Public are the command line and what the benches drive (the metadata, the store, the service
// layer, gc and verify); everything else is the crate's own, and `unreachable_pub` keeps it so.

mod alloc;
pub mod cli;

pub mod config;
pub mod db;
pub mod service;
pub mod store;
pub use ops::{gc, verify};

/// Entry points of the fuzz targets in `fuzz/` (see `docs/FUZZING.md`); not an API.
#[doc(hidden)]
pub mod fuzzing;

mod api;
mod control;
mod lock;
mod ops;
mod present;
mod tls;
mod web;

#[cfg(test)]
pub(crate) mod testutil;
