//! The agent's command line, run as the real binary with a clean environment: help and version,
//! usage errors, config errors that name the key and the file, and the errors of a run that lacks
//! a state folder or a server. Nothing here needs a server. (Being an integration test of this
//! package, it also makes `cargo test --workspace` build the `asgard-agent` binary that the
//! end-to-end tests of `asgard-e2e` start.)

use std::path::Path;
use std::process::{Command, Output};

/// The agent with nothing of the caller's environment (no real config, state folder or server),
/// in the language of `lang`, as user `anna`.
fn agent(lang: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_asgard-agent"));
    c.env_clear()
        .env("LANG", lang)
        .env("USER", "anna")
        .env("USERNAME", "anna")
        .env("TZ", "UTC");
    c
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config file `name` in `dir` holding `yaml`.
fn config(dir: &Path, name: &str, yaml: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn help_names_every_command_and_version_is_the_package_version() {
    let out = run(agent("de_DE.UTF-8").arg("--help"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let help = stdout(&out);
    assert!(
        help.starts_with("AsgardBackup-Agent: Dateien sichern und wiederherstellen"),
        "{help}"
    );
    for command in ["login", "backup", "plan", "list", "restore", "schedule"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} missing in help:\n{help}"
        );
    }
    for option in ["--config", "--server", "--state-dir"] {
        assert!(help.contains(option), "{option} missing in help:\n{help}");
    }

    let out = run(agent("de_DE.UTF-8").arg("--version"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).trim(),
        format!("asgard-agent {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    assert_eq!(
        run(agent("de_DE.UTF-8").arg("frobnicate")).status.code(),
        Some(2)
    );
    assert_eq!(run(&mut agent("de_DE.UTF-8")).status.code(), Some(2));
    let conflict = run(agent("de_DE.UTF-8").args([
        "--state-dir",
        state,
        "restore",
        "/x",
        "--version",
        "1",
        "--at",
        "2020-01-01",
    ]));
    assert_eq!(conflict.status.code(), Some(2));
    assert!(stderr(&conflict).contains("--at"), "{}", stderr(&conflict));
    let conflict = run(agent("de_DE.UTF-8").args([
        "--state-dir",
        state,
        "list",
        "--device",
        "pc1",
        "--all-devices",
    ]));
    assert_eq!(conflict.status.code(), Some(2));
    // Rejected before anything was written.
    assert!(!dir.path().join("state").exists());
}

#[test]
fn unknown_config_key_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "agent.yaml",
        "server:\n  url: https://h\nuser_foldrs: [/a]\n",
    );
    let out = run(agent("de_DE.UTF-8").arg("--config").arg(&cfg).arg("plan"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "Fehler: Fehler in der Konfigurationsdatei {}:",
            cfg.display()
        )),
        "{err}"
    );
    assert!(err.contains("user_foldrs"), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // The same file named by ASGARD_CONFIG, in English; a wrong key in a section too.
    let cfg = config(dir.path(), "nested.yaml", "server:\n  adress: x\n");
    let out = run(agent("en_US.UTF-8").env("ASGARD_CONFIG", &cfg).arg("plan"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("Error: error in config file {}:", cfg.display())),
        "{err}"
    );
    assert!(err.contains("adress"), "{err}");
}

#[test]
fn missing_config_file_is_an_error_in_german_and_english() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gibt-es-nicht.yaml");
    let out = run(agent("de_DE.UTF-8")
        .arg("--config")
        .arg(&missing)
        .arg("plan"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        format!(
            "Fehler: Konfigurationsdatei {} nicht gefunden",
            missing.display()
        )
    );
    let out = run(agent("en_US.UTF-8")
        .arg("--config")
        .arg(&missing)
        .arg("plan"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        format!("Error: config file {} not found", missing.display())
    );
}

#[test]
fn without_a_state_folder_or_a_server_login_fails_and_says_what_to_give() {
    // No HOME (nor LOCALAPPDATA): no state folder is known.
    let out = run(agent("de_DE.UTF-8").arg("login"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        "Fehler: Kein Ordner für den Zustand bekannt; bitte --state-dir angeben."
    );

    // A state folder but no server from the command line, the environment, the config or the
    // state of an earlier login.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = run(agent("de_DE.UTF-8")
        .arg("--state-dir")
        .arg(&state)
        .arg("login"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("Fehler: Kein Server angegeben. Bitte --server URL angeben"),
        "{err}"
    );

    // `language: en` in the config wins over a German LANG.
    let cfg = config(dir.path(), "agent.yaml", "language: en\n");
    let out = run(agent("de_DE.UTF-8")
        .arg("--config")
        .arg(&cfg)
        .arg("--state-dir")
        .arg(&state)
        .arg("login"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("Error: No server given."), "{err}");
}
