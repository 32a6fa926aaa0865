//! The allocator's one setting: a fixed mmap threshold for glibc's malloc.
//!
//! glibc serves an allocation above its mmap threshold (128 KiB at start) with its own mapping,
//! given back to the system when freed, but it *raises* the threshold to the size of each such
//! block that is freed (up to 32 MiB). After the first upload, the chunk buffers of later
//! uploads (up to 1 MiB each) therefore come from the per-thread arenas, and what they free
//! there stays resident: with a 16 MiB upload budget, 16 concurrent uploads of 8 MiB took the
//! server to 112–149 MiB (the bodies together: 128 MiB), so the budget (issue 11, see
//! `api/budget.rs`) no longer bounded the memory. A fixed threshold (256 KiB) turns the dynamic
//! rule off: the same run peaks at 55–58 MiB.
//!
//! The threshold can only be set before `malloc` runs for the first time (`mallopt` is not
//! reachable without `unsafe`), so the binary starts itself once more with the glibc tunable in
//! its environment ([`tune`], called by `serve` only: the admin commands are short-lived). Elsewhere (another C library) the variable is ignored.

/// The glibc tunable the server runs with.
const TUNABLE: &str = "glibc.malloc.mmap_threshold=262144";

/// Marks the second start, so that a failed tunable never becomes a loop.
const MARK: &str = "ASGARD_MALLOC_TUNED";

/// Replaces the process with itself, same arguments, with [`TUNABLE`] in `GLIBC_TUNABLES`,
/// unless that was done already or the environment sets an mmap threshold of its own. Returns
/// (and the server runs untuned) only when that cannot be done.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn tune() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(MARK).is_some() {
        return;
    }
    let tunables = match std::env::var("GLIBC_TUNABLES") {
        Ok(t) if t.contains("glibc.malloc.mmap_threshold") => return,
        Ok(t) if !t.is_empty() => format!("{t}:{TUNABLE}"),
        _ => TUNABLE.to_owned(),
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // `exec` returns only when it failed; then the server runs as it is.
    let _ = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .env(MARK, "1")
        .exec();
}

/// Nothing to tune on other systems.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn tune() {}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// The tunable's name is one glibc knows (a typo would be ignored silently).
    #[test]
    fn the_tunable_is_a_known_glibc_malloc_setting() {
        assert!(super::TUNABLE.starts_with("glibc.malloc.mmap_threshold="));
    }
}
