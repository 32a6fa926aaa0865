//! The server's command line, run as the real binary: configuration errors, the fingerprint, the
//! device commands and the data-dir lock. (Being an integration test of this package, it also makes
//! `cargo test --workspace` build the `asgard-server` binary that the agent's end-to-end tests start.)

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
