//! Support code for the end-to-end tests (the `e2e` test binary of this crate): start the real
//! `asgard-server` binary on 127.0.0.1 with an ephemeral port and a temp data dir, run the real
//! `asgard-agent` binary against it over HTTPS, ask the server directly, and look into and damage
//! its chunk store. Every test works in temp folders, never in the working directory.
//!
//! - [`bins`]: where the binaries are (the target folder of the test executable);
//! - [`server`]: [`Server`] (start, stop with SIGTERM, kill, restart on the same port), the admin
//!   commands, `/metrics`;
//! - [`agent`]: [`Agent`] (one user on one device) and the outcome of its `--json` runs;
//! - [`api`]: [`Api`], hand-made requests;
//! - [`raw`]: raw HTTP/1.x over TLS, byte for byte (hostile requests), and a server whose log is
//!   kept;
//! - [`store`]: locate, damage and lose chunks;
//! - [`files`]: trees on disk, mtimes, comparing a restored tree;
//! - [`listing`]: reading `list --json`;
//! - [`browser`]: a real headless Chromium over WebDriver ([`Browser`]): pages, forms, visible
//!   text, screenshots, and a failure on any console error;
//! - [`console`]: an admin made on the CLI ([`AdminAccount`]) who logs in in the browser;
//! - [`userweb`]: the end user's pages over HTTP ([`UserWeb`]) and a user session by the link
//!   of `asgard-agent web`.
//!
//! Test data comes from the one generator of `asgard_core::testdata`, re-exported here.

pub mod agent;
pub mod api;
pub mod bins;
pub mod browser;
pub mod console;
pub mod files;
pub mod listing;
pub mod raw;
pub mod server;
pub mod store;
// Issue 14 (uauth): the end user's pages.
pub mod userweb;

pub use agent::{Agent, approval_code, assert_success, json_outcome};
pub use api::{Api, FullAnswer, multipart};
pub use asgard_core::testdata::{Rng, random_bytes};
pub use bins::{agent_bin, build_dir, server_bin, windows_agent};
pub use browser::{Browser, tid};
pub use console::AdminAccount;
pub use files::{Snapshot, assert_same_tree, file_hash, set_mtime, settle, snapshot};
pub use listing::{entry, newest, retained_versions, versions};
pub use server::{
    METRICS_TOKEN, Server, server_admin, server_admin_command, server_admin_ok, spawn_server,
};
pub use store::{assert_store_sound, chunk_location, chunk_locations, damage_chunk, lose_chunk};
pub use userweb::{Page, UserWeb};

use serde_json::Value;

/// Bytes a process printed, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A number of a JSON summary or report; panics naming the key when it is not there.
pub fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

/// The content hash (a chunk id) of `data`, in hex: what `list --json` shows as a version's hash.
pub fn hash_hex(data: &[u8]) -> String {
    asgard_core::ChunkId::of(data).to_hex()
}
