//! Accounts on a running server: the `device` and `user` commands reach the server through its
//! admin channel, so the admin approves a waiting device, changes retention and resets a device
//! without stopping the service (issue 10; they used to fail with "Datenverzeichnis wird bereits
//! benutzt").

use std::ffi::OsString;
use std::process::Output;

use asgard_e2e::*;

#[test]
fn accounts_are_managed_while_the_server_runs() {
    let server = Server::start_with_config(Some("registration: approve\n"));
    let data_dir = server.data_dir();
    let admin = |args: &[&str]| -> Output {
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.push("--data-dir".into());
        all.push(data_dir.clone().into());
        server_admin(&all)
    };
    let stdout_ok = |args: &[&str]| -> String {
        let out = admin(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let agent = Agent::new("ida", &server);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("Brief.txt"), b"Liebe Oma").unwrap();

    // A new device waits for the admin.
    let out = agent.run(["backup".as_ref(), work.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Freigabe"),
        "{}",
        text(&out.stderr)
    );
    let devices = stdout_ok(&["device", "list"]);
    assert!(
        devices.starts_with("ida\ttesthost\twartet auf Freigabe\t"),
        "{devices}"
    );

    // Approved while the server runs, the device backs up at once.
    assert_eq!(
        stdout_ok(&["device", "approve", "ida", "testhost"]),
        "Gerät „testhost“ von Benutzer „ida“ ist freigegeben.\n"
    );
    agent.backup(work.path());
    // One file and its folder (folders are entries, issue 12).
    let list = agent.list(None);
    let kinds: Vec<&str> = list
        .iter()
        .map(|e| newest(e)["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["dir", "file"], "{list:?}");
    assert!(stdout_ok(&["device", "list"]).starts_with("ida\ttesthost\taktiv\t"));

    // Retention per user.
    assert_eq!(
        stdout_ok(&["user", "list"]),
        "ida\t1 Gerät(e)\tkeep_versions 4 (Standard)\n"
    );
    stdout_ok(&["user", "set-keep", "ida", "2"]);
    assert_eq!(
        stdout_ok(&["user", "list"]),
        "ida\t1 Gerät(e)\tkeep_versions 2\n"
    );
    stdout_ok(&["user", "clear-keep", "ida"]);
    assert!(stdout_ok(&["user", "list"]).contains("(Standard)"));

    // Unknown names are clear errors, not a refusal because the server runs.
    let out = admin(&["device", "approve", "ida", "toaster"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("„toaster“") && err.contains("nicht gefunden"),
        "{err}"
    );
    assert!(!err.contains("bereits"), "{err}");

    // A reset revokes the token at once: the agent is refused by the running server.
    stdout_ok(&["device", "reset", "ida", "testhost"]);
    assert!(stdout_ok(&["device", "list"]).contains("(zurückgesetzt)"));
    let out = agent.run(["list"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}
