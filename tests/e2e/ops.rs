//! Running unattended: the schedule (systemd units in a test home), the run lock, the progress bar
//! on a terminal only, and the log file plus run report of every backup.

use std::path::{Path, PathBuf};
use std::process::Command;

use asgard_e2e::*;
use serde_json::Value;

/// `key=value` lines of one `[section]` of a unit file.
fn unit_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            current = line.to_owned();
        } else if current == format!("[{section}]")
            && !line.starts_with('#')
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn value<'a>(keys: &'a [(String, String)], key: &str) -> Option<&'a str> {
    keys.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn systemd_analyze_available() -> bool {
    Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Acceptance 6: `schedule install` writes a valid timer and service into the test home (checked
/// by `systemd-analyze verify` where it exists, and always by parsing); `schedule status` reads
/// it back; `schedule remove` removes it. `ASGARD_SYSTEMD_DIR` forces the systemd path whether or
/// not systemd runs here; `ASGARD_SYSTEMCTL` points at a program that does not exist, so the
/// "could not activate" path runs and nothing touches the real user manager.
#[test]
fn schedule_install_writes_valid_units_and_remove_removes_them() {
    let server = Server::start();
    let agent = Agent::new("sched", &server);
    let home = tempfile::tempdir().unwrap();
    let config_home = home.path().join(".config");
    let unit_dir = config_home.join("systemd").join("user");
    let run = |args: &[&str]| {
        let out = agent
            .command()
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", &config_home)
            .env("ASGARD_SYSTEMD_DIR", &unit_dir)
            .env("ASGARD_SYSTEMCTL", home.path().join("no-systemctl"))
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?} failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };

    let stdout = run(&["schedule", "install", "--every", "15m"]);
    let service = unit_dir.join("asgard-backup.service");
    let timer = unit_dir.join("asgard-backup.timer");
    let wants = unit_dir.join("timers.target.wants/asgard-backup.timer");
    assert!(service.is_file() && timer.is_file(), "{stdout}");
    assert!(
        stdout.contains("systemctl --user daemon-reload"),
        "no hint on how to activate: {stdout}"
    );
    assert_eq!(std::fs::read_link(&wants).unwrap(), timer);

    let service_text = std::fs::read_to_string(&service).unwrap();
    let timer_text = std::fs::read_to_string(&timer).unwrap();
    assert!(value(&unit_section(&service_text, "Unit"), "Description").is_some());
    let svc = unit_section(&service_text, "Service");
    assert_eq!(value(&svc, "Type"), Some("oneshot"));
    let exec = value(&svc, "ExecStart").expect("ExecStart");
    let agent_path = agent_bin();
    assert!(agent_path.is_absolute());
    assert!(
        exec.starts_with(agent_path.to_str().unwrap()),
        "ExecStart does not start with the agent's absolute path: {exec}"
    );
    assert!(exec.contains(&format!("--server {}", server.url)), "{exec}");
    assert!(
        exec.contains(&format!("--state-dir {}", agent.state.path().display())),
        "{exec}"
    );
    assert!(exec.ends_with(" backup"), "{exec}");
    let tim = unit_section(&timer_text, "Timer");
    assert!(
        value(&tim, "OnCalendar").is_some() || value(&tim, "OnUnitActiveSec").is_some(),
        "{timer_text}"
    );
    assert_eq!(value(&tim, "Persistent"), Some("true"));
    assert_eq!(
        value(&unit_section(&timer_text, "Install"), "WantedBy"),
        Some("timers.target")
    );

    if systemd_analyze_available() {
        // System mode: `--user` needs a running user manager; the unit syntax is the same.
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&timer)
            .arg(&service)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-analyze verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("systemd-analyze not found: the unit files were checked by parsing only");
    }

    let status = run(&["schedule", "status"]);
    assert!(status.contains("15m"), "{status}");

    // Installing again with another interval replaces the units.
    run(&["schedule", "install", "--every", "6h"]);
    assert!(
        std::fs::read_to_string(&timer)
            .unwrap()
            .contains("X-AsgardEvery=6h")
    );

    let removed = run(&["schedule", "remove"]);
    assert!(removed.contains("entfernt"), "{removed}");
    assert!(!service.exists() && !timer.exists());
    assert!(std::fs::symlink_metadata(&wants).is_err());
    let status = run(&["schedule", "status"]);
    assert!(status.contains("Kein Zeitplan"), "{status}");

    // A bad interval is a usage error.
    let out = agent
        .command()
        .env("ASGARD_SYSTEMD_DIR", &unit_dir)
        .args(["schedule", "install", "--every", "45m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!timer.exists());
}

/// A second run while one holds the state folder's lock exits at once with code 1 and says why;
/// once the lock is free the same backup works.
#[test]
fn second_run_exits_at_once_while_the_lock_is_held() {
    let server = Server::start();
    let agent = Agent::new("lock", &server);
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("a.txt"), b"inhalt").unwrap();
    agent.ok(["login"]);

    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(agent.state.path().join("agent.lock"))
        .unwrap();
    lock.try_lock().expect("test takes the lock");
    let out = agent.run([
        std::ffi::OsStr::new("backup"),
        std::ffi::OsStr::new("--json"),
        data.path().as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("anderer Lauf des Agenten"), "{stderr}");
    assert!(out.stdout.is_empty(), "the locked run printed a summary");
    // Nothing was backed up and no run was started.
    let api = Api::new(&server);
    let (status, body) = api.get("/api/runs", Some(&agent.token()));
    assert_eq!(status, 200);
    let runs: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0);
    assert!(agent.list(None).is_empty());
    // `login` writes the state as well and is refused too.
    assert_eq!(agent.run(["login"]).status.code(), Some(1));

    drop(lock);
    let summary = agent.backup(data.path());
    assert_eq!(summary["files_new"], 1);
}

fn log_files(state: &Path) -> Vec<PathBuf> {
    let dir = state.join("logs");
    let mut v: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Every backup writes a log file with its summary and reports the run to the server; `GET
/// /api/runs` shows the device's runs newest first with the counters of `--json`. A failed run
/// (missing root, exit 1) is reported too.
#[test]
fn backup_writes_a_log_and_reports_the_run() {
    let server = Server::start();
    let agent = Agent::new("runs", &server);
    let data = tempfile::tempdir().unwrap();
    for i in 0..5u64 {
        std::fs::write(
            data.path().join(format!("f{i}.bin")),
            random_bytes(50_000 + i as usize * 1000, i),
        )
        .unwrap();
    }
    let first = agent.backup(data.path());
    assert_eq!(first["files_new"], 5);

    let logs = log_files(agent.state.path());
    assert_eq!(logs.len(), 1, "{logs:?}");
    let name = logs[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("backup-") && name.ends_with(".log") && name.len() >= 26,
        "{name}"
    );
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    for needle in [
        "backup started",
        "backup roots",
        "summary",
        "files_seen=5",
        "files_new=5",
        &format!("bytes_read={}", first["bytes_read"]),
        "backup finished",
        "exit_code=0",
        "run report sent",
    ] {
        assert!(text.contains(needle), "log lacks {needle:?}:\n{text}");
    }

    let api = Api::new(&server);
    let token = agent.token();
    let runs = |api: &Api| -> Vec<Value> {
        let (status, body) = api.get("/api/runs", Some(&token));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        v["runs"].as_array().unwrap().clone()
    };
    let list = runs(&api);
    assert_eq!(list.len(), 1);
    let r = &list[0]["report"];
    for key in [
        "files_seen",
        "files_new",
        "files_changed",
        "files_unchanged",
        "files_skipped",
        "bytes_read",
        "bytes_sent",
        "bytes_new",
        "versions_created",
    ] {
        assert_eq!(r[key], first[key], "{key}: report {r} vs summary {first}");
    }
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["agent_version"], env!("CARGO_PKG_VERSION"));
    assert!(r["files_seen"].as_u64() == Some(5) && r["bytes_read"].as_u64().unwrap() > 250_000);
    assert!(r["finished_us"].as_i64() >= r["started_us"].as_i64());

    // A second, unchanged run: newest first.
    let second = agent.backup(data.path());
    let list = runs(&api);
    assert_eq!(list.len(), 2);
    // Run ids are opaque: the order shows in the receive times.
    assert!(list[0]["received_us"].as_i64() > list[1]["received_us"].as_i64());
    assert_eq!(list[0]["report"]["files_new"], second["files_new"]);
    assert_eq!(list[0]["report"]["files_new"], 0);

    // A failed run (the root is missing) sends its report too, with exit code 1 and the reason.
    let missing = data.path().join("gibt-es-nicht");
    let out = agent.run([std::ffi::OsStr::new("backup"), missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let list = runs(&api);
    assert_eq!(list.len(), 3);
    let failed = &list[0]["report"];
    assert_eq!(failed["exit_code"], 1);
    let errors = failed["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("gibt-es-nicht")),
        "{failed}"
    );
    assert_eq!(log_files(agent.state.path()).len(), 3);
}

/// On a terminal the backup draws a progress bar (files, bytes, rate, ETA); into a pipe it draws
/// none. The terminal is a pseudo-terminal from `script` (util-linux); skipped where it is missing.
#[cfg(unix)]
#[test]
fn progress_bar_only_on_a_terminal() {
    let server = Server::start();
    let agent = Agent::new("progress", &server);
    let data = tempfile::tempdir().unwrap();
    for i in 0..20u64 {
        std::fs::write(
            data.path().join(format!("f{i}.bin")),
            random_bytes(400_000, i),
        )
        .unwrap();
    }
    agent.ok(["login"]);

    // Into a pipe: no bar.
    let out = agent.ok([std::ffi::OsStr::new("backup"), data.path().as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Dateien 0/"),
        "bar drawn into a pipe: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in a pipe: {stderr}"
    );

    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("`script` not found: terminal part skipped");
        return;
    }
    std::fs::write(data.path().join("new.bin"), random_bytes(3 << 20, 99)).unwrap();
    let cmd = format!(
        "'{}' --server '{}' --state-dir '{}' backup '{}'",
        agent_bin().display(),
        agent.server,
        agent.state.path().display(),
        data.path().display()
    );
    let mut script = Command::new("script");
    script.args(["-q", "-e", "-c", &cmd, "/dev/null"]);
    for (k, v) in agent.command().get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let out = script.env("TERM", "xterm").output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "backup in a terminal failed: {screen}"
    );
    assert!(screen.contains("Sicherung abgeschlossen"), "{screen}");
    assert!(
        // (The remaining time appears only after 2 s, so a short run shows none.)
        screen.contains("Dateien ") && screen.contains("B/s"),
        "no progress bar on the terminal: {screen}"
    );
}
