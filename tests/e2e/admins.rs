//! Admin accounts of the web console (issue 13) on the command line: `admin create`, `passwd`,
//! `list`, `token`, `totp` and `delete` work through the running server's admin channel and on a
//! stopped data directory alike; a weak password is refused in German with a failing exit code;
//! the server says at start-up how to create the first admin.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use asgard_e2e::*;
use serde_json::Value;

const PW: &str = "Donnerkeil-2024!";

fn args(data_dir: &Path, args: &[&str]) -> Vec<OsString> {
    let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
    all.push("--data-dir".into());
    all.push(data_dir.into());
    all
}

/// `asgard-server ARGS --data-dir DIR` with `stdin` on its standard input.
fn admin_with_stdin(data_dir: &Path, a: &[&str], stdin: &str) -> Output {
    let mut child = server_admin_command(args(data_dir, a))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {} {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn list_json(data_dir: &Path) -> Value {
    let out = ok(
        server_admin(args(data_dir, &["admin", "list", "--json"])),
        "admin list",
    );
    serde_json::from_str(&out).unwrap()
}

/// The whole life of an admin account on one data directory (running server or not).
fn admin_lifecycle(data_dir: &Path) {
    // A weak password: refused in German, exit code not 0, nothing made.
    let out = admin_with_stdin(
        data_dir,
        &["admin", "create", "root", "--password-stdin"],
        "kurz\n",
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("Das Passwort ist zu kurz: mindestens 12 Zeichen."),
        "{}",
        text(&out.stderr)
    );
    let out = admin_with_stdin(
        data_dir,
        &["admin", "create", "root", "--password-stdin"],
        "root\n",
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "a password of the name is refused too"
    );
    assert_eq!(list_json(data_dir)["admins"], Value::Array(vec![]));

    let out = admin_with_stdin(
        data_dir,
        &["admin", "create", "Root", "--password-stdin"],
        &format!("{PW}\n"),
    );
    let created = ok(out, "admin create");
    assert!(created.contains("Admin „root“ angelegt"), "{created}");
    // The same name again is refused.
    let out = admin_with_stdin(
        data_dir,
        &["admin", "create", "root", "--password-stdin"],
        &format!("{PW}\n"),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("gibt es schon"),
        "{}",
        text(&out.stderr)
    );

    let listed = ok(
        server_admin(args(data_dir, &["admin", "list"])),
        "admin list",
    );
    assert!(
        listed.starts_with("root\tangelegt ") && listed.contains("TOTP aus\t0 API-Token"),
        "{listed}"
    );

    // A token is printed once; the list counts it, never shows it.
    let out = ok(
        server_admin(args(data_dir, &["admin", "token", "root", "--json"])),
        "admin token",
    );
    let token = serde_json::from_str::<Value>(&out).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        token.starts_with("asgadm_") && token.len() == 7 + 64,
        "{token}"
    );
    let list = list_json(data_dir);
    assert_eq!(list["admins"][0]["name"], "root");
    assert_eq!(list["admins"][0]["tokens"], 1);
    assert!(!list.to_string().contains(&token));

    // TOTP: the otpauth URI, a QR code and ten recovery codes.
    let totp = ok(
        server_admin(args(data_dir, &["admin", "totp", "root"])),
        "admin totp",
    );
    assert!(
        totp.contains("otpauth://totp/AsgardBackup:root?secret="),
        "{totp}"
    );
    assert!(totp.contains('▀') || totp.contains('▄'), "{totp}");
    assert_eq!(list_json(data_dir)["admins"][0]["totp"], true);
    ok(
        server_admin(args(data_dir, &["admin", "totp", "root", "--off"])),
        "admin totp --off",
    );
    assert_eq!(list_json(data_dir)["admins"][0]["totp"], false);

    let out = admin_with_stdin(
        data_dir,
        &["admin", "passwd", "root", "--password-stdin"],
        "Ein-neues-Passwort\n",
    );
    assert!(ok(out, "admin passwd").contains("Passwort von Admin „root“ geändert"));
    let out = admin_with_stdin(
        data_dir,
        &["admin", "passwd", "niemand", "--password-stdin"],
        &format!("{PW}\n"),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("Admin „niemand“ nicht gefunden"));

    // Delete: the admin and its token are gone; a new admin of that name starts without tokens.
    assert!(
        ok(
            server_admin(args(data_dir, &["admin", "delete", "root"])),
            "admin delete"
        )
        .contains("gelöscht")
    );
    assert_eq!(list_json(data_dir)["admins"], Value::Array(vec![]));
    let out = server_admin(args(data_dir, &["admin", "delete", "root"]));
    assert_ne!(out.status.code(), Some(0));
    ok(
        admin_with_stdin(
            data_dir,
            &["admin", "create", "root", "--password-stdin"],
            &format!("{PW}\n"),
        ),
        "admin create again",
    );
    assert_eq!(list_json(data_dir)["admins"][0]["tokens"], 0);
    ok(
        server_admin(args(data_dir, &["admin", "delete", "root"])),
        "delete",
    );
}

#[test]
fn admin_accounts_are_managed_while_the_server_runs_and_while_it_is_stopped() {
    let mut server = Server::start_keeping_log(None);
    let data_dir = server.data_dir();
    // The start-up log says how to make the first admin.
    let stderr = server.child.as_mut().unwrap().stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut hint = false;
    while Instant::now() < deadline && !hint {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            hint = line.contains("asgard-server admin create NAME");
        }
    }
    assert!(hint, "no start-up hint about the first admin");
    std::thread::spawn(move || for _ in rx {});

    admin_lifecycle(&data_dir);
    // The server ran all of it and still serves.
    assert!(server.child.as_mut().unwrap().try_wait().unwrap().is_none());
    let (status, _) = Api::new(&server).get("/healthz", None);
    assert_eq!(status, 200);

    server.stop();
    admin_lifecycle(&data_dir);
    // An admin made while the server was stopped is there when it starts again.
    ok(
        admin_with_stdin(
            &data_dir,
            &["admin", "create", "anna", "--password-stdin"],
            &format!("{PW}\n"),
        ),
        "create while stopped",
    );
    server.restart_stopped();
    assert_eq!(list_json(&data_dir)["admins"][0]["name"], "anna");
}
