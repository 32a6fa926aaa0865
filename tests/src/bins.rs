//! Where the binaries under test are. `CARGO_BIN_EXE_*` is set only for the tests of the package
//! that owns a binary, so this crate finds them in the target folder its own test executable was
//! built into: `cargo test --workspace` builds both binaries there (the server's and the agent's
//! `tests/cli.rs` make cargo build them); `cargo test -p asgard-e2e` alone does not.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The folder cargo put this build's binaries in: `target/<profile>`, also below a
/// `CARGO_TARGET_DIR` or, with `--target`, `target/<triple>/<profile>`. The test executable lives
/// in its `deps/` subfolder.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    profile_dir_of(&exe)
}

/// `target/<profile>/deps/e2e-<hash>` → `target/<profile>`; an executable outside a `deps` folder
/// (copied elsewhere by a test runner) looks next to itself.
fn profile_dir_of(exe: &Path) -> PathBuf {
    let dir = exe.parent().expect("the test executable is in a folder");
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A binary of the workspace in [`build_dir`]; panics with what to build when it is missing.
fn workspace_bin(name: &str) -> PathBuf {
    let p = build_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.exists(),
        "{} is missing: build the binaries first with `cargo build -p asgard-server -p asgard-agent` \
         (the README's `cargo test --workspace` builds them itself)",
        p.display()
    );
    p
}

/// The agent binary under test (absolute).
pub fn agent_bin() -> PathBuf {
    workspace_bin("asgard-agent")
}

/// The server binary under test (absolute).
pub fn server_bin() -> PathBuf {
    workspace_bin("asgard-server")
}

/// The Windows agent for the Wine smoke test, if it was built (`.ci/run` builds it with
/// `cargo build -p asgard-agent --target x86_64-pc-windows-gnu`): `ASGARD_WINDOWS_AGENT`, else
/// `target/x86_64-pc-windows-gnu/debug/asgard-agent.exe` beside this build.
pub fn windows_agent() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ASGARD_WINDOWS_AGENT") {
        return Some(PathBuf::from(p));
    }
    windows_agent_candidates(&build_dir())
        .into_iter()
        .find(|p| p.exists())
}

/// Where the Windows agent would be for a build in `build`: target/debug →
/// target/x86_64-pc-windows-gnu/debug/asgard-agent.exe; a build with a `--target` of its own
/// (target/<triple>/debug) has it one level further up.
fn windows_agent_candidates(build: &Path) -> Vec<PathBuf> {
    const EXE: &str = "x86_64-pc-windows-gnu/debug/asgard-agent.exe";
    let Some(target) = build.parent() else {
        return Vec::new();
    };
    [Some(target), target.parent()]
        .into_iter()
        .flatten()
        .map(|t| t.join(EXE))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_are_found_beside_the_deps_folder() {
        let t = Path::new("/w/target");
        assert_eq!(
            profile_dir_of(&t.join("debug/deps/e2e-0123abcd")),
            t.join("debug")
        );
        assert_eq!(
            profile_dir_of(&t.join("x86_64-unknown-linux-gnu/release/deps/e2e-0123abcd")),
            t.join("x86_64-unknown-linux-gnu/release")
        );
        assert_eq!(
            profile_dir_of(Path::new("/opt/run/e2e")),
            Path::new("/opt/run")
        );
    }

    #[test]
    fn windows_agent_is_looked_for_beside_the_build() {
        let t = Path::new("/w/target");
        let exe = "x86_64-pc-windows-gnu/debug/asgard-agent.exe";
        assert_eq!(windows_agent_candidates(&t.join("debug"))[0], t.join(exe));
        assert!(
            windows_agent_candidates(&t.join("x86_64-unknown-linux-gnu/debug"))
                .contains(&t.join(exe))
        );
    }
}
