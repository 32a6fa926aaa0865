//! The real `asgard-agent`: one user on one device with its own state dir, run as a process per
//! command against a [`Server`], in German and in UTC.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use crate::{Server, agent_bin, text};

/// One user on one device: an agent with its own state dir.
pub struct Agent {
    pub user: String,
    pub device: String,
    pub state: TempDir,
    pub server: String,
}

impl Agent {
    pub fn new(user: &str, server: &Server) -> Agent {
        Agent {
            user: user.into(),
            device: "testhost".into(),
            state: tempfile::tempdir().unwrap(),
            server: server.url.clone(),
        }
    }

    /// The agent with `--server`, `--state-dir`, user and device set, and none of the caller's
    /// `ASGARD_*` settings.
    pub fn command(&self) -> Command {
        let mut c = Command::new(agent_bin());
        c.arg("--server")
            .arg(&self.server)
            .arg("--state-dir")
            .arg(self.state.path())
            .env("USER", &self.user)
            .env("USERNAME", &self.user)
            .env("ASGARD_DEVICE", &self.device)
            .env_remove("ASGARD_CONFIG")
            .env_remove("ASGARD_STATE_DIR")
            .env_remove("ASGARD_SERVER")
            .env("LANG", "de_DE.UTF-8")
            .env("TZ", "UTC");
        c
    }

    /// Runs the agent and returns its output, whatever the exit code.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command().args(args).output().unwrap()
    }

    /// Runs the agent and asserts exit code 0.
    pub fn ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run(args);
        assert_success(&out);
        out
    }

    /// `backup --json PATH` and its summary; asserts exit code 0.
    pub fn backup(&self, path: &Path) -> Value {
        let out = self.ok([OsStr::new("backup"), OsStr::new("--json"), path.as_os_str()]);
        json_outcome(out, "backup").1
    }

    /// `backup --json PATHS...`, whatever the exit code: (exit code, summary, stderr).
    pub fn backup_any(&self, paths: &[&Path]) -> (i32, Value, String) {
        let mut args: Vec<OsString> = vec!["backup".into(), "--json".into()];
        args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
        json_outcome(self.run(args), "backup")
    }

    /// `restore PATH --to TO EXTRA...`, whatever the exit code.
    pub fn restore_to(&self, path: &Path, to: &Path, extra: &[&str]) -> Output {
        let mut args: Vec<&OsStr> = vec!["restore".as_ref(), path.as_os_str()];
        args.extend(["--to".as_ref(), to.as_os_str()]);
        args.extend(extra.iter().map(OsStr::new));
        self.run(args)
    }

    /// `restore --json PATH --to TO EXTRA...`, whatever the exit code: (exit code, summary,
    /// stderr).
    pub fn restore_json(&self, path: &Path, to: &Path, extra: &[&str]) -> (i32, Value, String) {
        let mut extra = extra.to_vec();
        extra.insert(0, "--json");
        json_outcome(self.restore_to(path, to, &extra), "restore")
    }

    /// `list --json [PATH]`.
    pub fn list(&self, path: Option<&Path>) -> Vec<Value> {
        let mut args = vec![OsString::from("list"), OsString::from("--json")];
        if let Some(p) = path {
            args.push(p.as_os_str().to_owned());
        }
        let out = self.ok(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "list --json printed no JSON array ({e}): {}",
                text(&out.stdout)
            )
        })
    }

    /// Logs this agent in as a further device of its user (pending) and has `approver`, an
    /// active device of the same user, approve it with the code it shows; then logs in again.
    pub fn join(&self, approver: &Agent) {
        let out = self.ok(["login"]);
        let shown = text(&out.stdout);
        let code = approval_code(&shown).unwrap_or_else(|| panic!("no approval code in {shown}"));
        approver.ok(["device", "approve", &code]);
        self.ok(["login"]);
    }

    /// The device token the agent keeps in its state dir.
    pub fn token(&self) -> String {
        let s: Value =
            serde_json::from_slice(&std::fs::read(self.state.path().join("state.json")).unwrap())
                .unwrap();
        s["token"].as_str().expect("token in state.json").to_owned()
    }
}

#[cfg(unix)]
impl Agent {
    /// Like [`Agent::command`], but the agent runs as user and group 65534 (nobody) when the tests
    /// run as root (`setpriv` from util-linux), so that file permissions apply to it. The state dir
    /// must be writable for that user. Not as root, the agent runs as the current user. The binary
    /// is copied into the state dir first: the build folder may lie where nobody cannot go.
    pub fn unprivileged_command(&self) -> Command {
        let inner = self.command();
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let mut c = if as_root {
            use std::os::unix::fs::PermissionsExt;
            let bin = self.state.path().join("asgard-agent-copy");
            if !bin.exists() {
                std::fs::copy(inner.get_program(), &bin).unwrap();
                std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin);
            c
        } else {
            Command::new(inner.get_program())
        };
        c.args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        // No config file of the real user's home is looked at.
        c.env("HOME", self.state.path())
            .env_remove("XDG_CONFIG_HOME");
        c
    }
}

/// The first approval code (`K7MQ-4XTD`: two groups of four letters and digits) in `text`.
pub fn approval_code(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ')' || c == '(')
        .find(|w| {
            let b = w.as_bytes();
            b.len() == 9
                && b[4] == b'-'
                && b.iter()
                    .enumerate()
                    .all(|(i, c)| i == 4 || c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .map(str::to_owned)
}

/// Asserts that a run of the agent exited with code 0, showing its output when not.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "agent failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The outcome of a `--json` run of `command` (`backup`, `restore`), whatever the exit code:
/// (exit code, the JSON it printed, stderr). Panics when it printed no JSON.
pub fn json_outcome(out: Output, command: &str) -> (i32, Value, String) {
    let stderr = text(&out.stderr);
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{command} --json printed no JSON ({e}): {}\nstderr: {stderr}",
            text(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), summary, stderr)
}
