//! End-to-end tests: the real `asgard-server` binary on 127.0.0.1 (ephemeral port, temp data dir)
//! and the real `asgard-agent` binary against it over HTTPS. One test binary; one module per area;
//! the support code is the `asgard_e2e` library (`src/`).
//!
//! The binaries are taken from the target folder this test was built into: `cargo test --workspace`
//! builds them; `cargo test -p asgard-e2e` alone does not (`cargo build -p asgard-server -p
//! asgard-agent` first).

mod accounts;
mod admin_browser;
mod admin_http;
mod admins;
mod browser_harness;
#[cfg(target_os = "linux")]
mod budget;
#[cfg(unix)]
mod compat;
#[cfg(unix)]
mod crash;
mod enroll;
#[cfg(unix)]
mod escape;
// rsync, setfacl, setfattr and setpriv (Linux) judge the restore.
#[cfg(target_os = "linux")]
mod fidelity;
#[cfg(unix)]
mod folders;
mod foundation;
mod gc;
mod hostile;
#[cfg(unix)]
mod incremental;
mod isolation;
#[cfg(unix)]
mod listing_ux;
mod ops;
mod oracle;
#[cfg(unix)]
mod packed;
// The agent reports its peak RSS on Linux only.
#[cfg(target_os = "linux")]
mod pipeline;
mod records;
mod restorepipe;
mod scan;
// Issue 14 (uauth): the end user's way in.
mod user_browser;
mod user_http;
// ubrowse (non-UTF-8 names are built from bytes: Unix only)
#[cfg(unix)]
mod user_browse;
// udown (issue 14): downloads, previews and zips in the browser.
#[cfg(unix)]
mod user_download;
mod verify;
