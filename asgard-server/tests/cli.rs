//! The server's command line, run as the real binary: configuration errors, the fingerprint, the
//! device commands and the data-dir lock. (Being an integration test of this package, it also makes
//! `cargo test --workspace` build the `asgard-server` binary that the end-to-end tests of `asgard-e2e`
//! start.)

use std::path::Path;
use std::process::{Command, Output};

fn server(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asgard-server"))
        .args(args)
        .current_dir(cwd)
        .env("LANG", "de_DE.UTF-8")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_config_key_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.yaml");
    std::fs::write(&cfg, "keep_version: 3\n").unwrap();
    let out = server(&["serve", "--config", cfg.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("keep_version"), "{err}");
    assert!(err.contains("server.yaml"), "{err}");
    assert!(err.starts_with("Fehler"), "{err}");
    assert!(!dir.path().join("asgard-data").exists(), "nothing created");
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = server(&["serve", "--config", "gibt-es-nicht.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("gibt-es-nicht.yaml"));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(server(&["frobnicate"], dir.path()).status.code(), Some(2));
    assert_eq!(
        server(&["device", "approve"], dir.path()).status.code(),
        Some(2)
    );
}

#[test]
fn fingerprint_is_stable_and_device_commands_work_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let first = server(&["fingerprint", "--data-dir", d], dir.path());
    assert!(first.status.success(), "{}", stderr(&first));
    let fp = String::from_utf8(first.stdout).unwrap();
    let hex: String = fp.trim().chars().filter(|c| *c != ':').collect();
    assert_eq!(hex.len(), 64, "{fp}");
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
    let again = server(&["fingerprint", "--data-dir", d], dir.path());
    assert_eq!(String::from_utf8(again.stdout).unwrap(), fp);

    let list = server(&["device", "list", "--data-dir", d], dir.path());
    assert!(list.status.success(), "{}", stderr(&list));
    let approve = server(
        &["device", "approve", "niemand", "nirgends", "--data-dir", d],
        dir.path(),
    );
    assert_eq!(approve.status.code(), Some(1));
    assert!(stderr(&approve).contains("niemand"), "{}", stderr(&approve));
}

/// A `serve` process on 127.0.0.1 (any port) for the maintenance commands; killed when dropped.
struct Running {
    child: std::process::Child,
}

impl Running {
    fn start(data: &Path, cwd: &Path) -> Running {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_asgard-server"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .current_dir(cwd)
            .env("LANG", "de_DE.UTF-8")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        assert!(
            lines.any(|l| l.unwrap().contains("https://")),
            "server did not start"
        );
        // Keep reading stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Running { child }
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stats_json(d: &str, cwd: &Path) -> serde_json::Value {
    let out = server(&["stats", "--json", "--data-dir", d], cwd);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The maintenance commands give the same answers with the server stopped (in-process, under the
/// lock) and running (through its admin socket, while it holds the lock); db-restore refuses to
/// run under a running server; the socket is private and goes away with the server.
#[test]
fn maintenance_commands_work_with_the_server_stopped_and_running() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let missing = server(&["stats", "--data-dir", d], dir.path());
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("existiert nicht"),
        "{}",
        stderr(&missing)
    );

    std::fs::create_dir_all(&data).unwrap();
    let offline = stats_json(d, dir.path());
    for key in [
        "users",
        "devices",
        "versions",
        "chunks",
        "logical_bytes",
        "stored_bytes",
        "plain_bytes",
        "dedupe_ratio",
        "compression_ratio",
        "bad_chunks",
        "last_gc",
        "last_verify",
    ] {
        assert!(offline.get(key).is_some(), "{key} missing in {offline}");
    }
    let text = server(&["stats", "--data-dir", d], dir.path());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("Benutzer:") && text.contains("Dedupe-Faktor:"),
        "{text}"
    );

    let offline_copy = dir.path().join("offline.redb");
    let out = server(
        &["db-backup", "--to", "offline.redb", "--data-dir", d],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(offline_copy.is_file());

    let running = Running::start(&data, dir.path());
    let sock = data.join("admin.sock");
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The lock is the server's now: these answers can only have come through the socket.
    assert_eq!(stats_json(d, dir.path()), offline);
    let out = server(
        &[
            "db-backup",
            "--to",
            "online.redb",
            "--json",
            "--data-dir",
            d,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Sichere die Metadaten-Datenbank"),
        "progress lines are streamed: {}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // A relative --to is relative to the caller's folder, not the server's.
    let online_copy = dir.path().join("online.redb");
    assert_eq!(report["path"], online_copy.to_str().unwrap());
    assert!(online_copy.is_file());
    // Into the data dir's rotation folder (the server made one at start already).
    let out = server(&["db-backup", "--data-dir", d], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let auto: Vec<_> = std::fs::read_dir(data.join("db-backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(auto.len(), 2, "{auto:?}");
    assert!(
        auto.iter()
            .all(|n| n.starts_with("asgard-") && n.ends_with(".redb"))
    );

    let refused = server(
        &["db-restore", "--from", "online.redb", "--data-dir", d],
        dir.path(),
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("Server läuft noch"),
        "{}",
        stderr(&refused)
    );

    running.stop();
    assert!(!sock.exists(), "admin socket removed at shutdown");
    assert_eq!(stats_json(d, dir.path()), offline);

    let restored = server(
        &["db-restore", "--from", "online.redb", "--data-dir", d],
        dir.path(),
    );
    assert!(restored.status.success(), "{}", stderr(&restored));
    let kept: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("asgard.redb.before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let bad = dir.path().join("bad.redb");
    std::fs::write(&bad, b"kaputt").unwrap();
    let refused = server(
        &[
            "db-restore",
            "--from",
            bad.to_str().unwrap(),
            "--data-dir",
            d,
        ],
        dir.path(),
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("Keine gültige"),
        "{}",
        stderr(&refused)
    );
    // The server starts on the restored database.
    let running = Running::start(&data, dir.path());
    assert_eq!(stats_json(d, dir.path()), offline);
    running.stop();
}

/// A server killed with SIGKILL leaves its socket behind; the next server replaces it, and a
/// command meanwhile (lock free again) runs in-process instead of talking to the dead socket.
#[test]
fn stale_admin_socket_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let mut running = Running::start(&data, dir.path());
    running.child.kill().unwrap();
    running.child.wait().unwrap();
    drop(running);
    assert!(data.join("admin.sock").exists());
    stats_json(d, dir.path());
    let running = Running::start(&data, dir.path());
    stats_json(d, dir.path());
    running.stop();
}

/// The account commands reach a running server through its admin channel (they used to fail
/// with "Datenverzeichnis wird bereits benutzt"), with the same answers as on a stopped one.
#[test]
fn account_commands_work_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let running = Running::start(&data, dir.path());
    for args in [
        &["user", "list", "--data-dir", d][..],
        &["device", "list", "--data-dir", d][..],
    ] {
        let out = server(args, dir.path());
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text == "Keine Benutzer.\n" || text == "Keine Geräte registriert.\n",
            "{text}"
        );
    }
    let approve = server(
        &["device", "approve", "niemand", "nirgends", "--data-dir", d],
        dir.path(),
    );
    assert_eq!(approve.status.code(), Some(1));
    let err = stderr(&approve);
    assert!(
        err.contains("Gerät „nirgends“ von Benutzer „niemand“ nicht gefunden."),
        "{err}"
    );
    assert!(!err.contains("bereits"), "{err}");
    let keep = server(
        &["user", "set-keep", "niemand", "3", "--data-dir", d],
        dir.path(),
    );
    assert_eq!(keep.status.code(), Some(1));
    assert!(stderr(&keep).contains("Benutzer „niemand“ nicht gefunden."));
    running.stop();
}

/// Regression: the address was announced before the server's SIGINT/SIGTERM handlers were in
/// place, so a SIGTERM right after the announcement killed the server instead of stopping it
/// (30 of 30 times in a loop). Each start here is stopped at once and must exit cleanly.
#[test]
fn sigterm_right_after_the_announcement_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for _ in 0..5 {
        Running::start(&data, dir.path()).stop();
    }
}
