//! End-to-end tests: the real `asgard-server` binary on 127.0.0.1 (ephemeral port, temp data dir)
//! and the real `asgard-agent` binary against it over HTTPS. One test binary; one module per area.

mod common;
#[cfg(unix)]
mod crash;
mod foundation;
mod gc;
#[cfg(unix)]
mod incremental;
mod ops;
#[cfg(unix)]
mod packed;
// The agent reports its peak RSS on Linux only.
#[cfg(target_os = "linux")]
mod pipeline;
mod restorepipe;
mod scan;
mod verify;
