//! Enrollment as a stranger and as the owner would try it (issue 11, findings 1, 4 and 6): a
//! token-less login as an existing user gets a pending device that reads nothing; the user's
//! active device or the admin approves it; `device reset` gives a one-time code instead of a
//! first-come slot; the server's identity is its certificate, not its URL; names that only look
//! different are one user, names that only look alike are refused; `serve` warns when anyone may
//! register.

use std::ffi::OsString;
use std::io::Read;
use std::process::Output;

use asgard_e2e::*;
use serde_json::{Value, json};

const SECRET: &[u8] = b"Tresor-PIN: 7391 - nur fuer alice";

fn login_body(user: &str, device: &str) -> Value {
    json!({ "protocol_version": asgard_core::protocol::PROTOCOL_VERSION, "user": user,
            "device": device, "os": "linux", "os_version": "t", "agent_version": "t" })
}

/// An admin command on the running server's data dir (through its admin channel).
fn admin(server: &Server, args: &[&str]) -> Output {
    let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
    all.push("--data-dir".into());
    all.push(server.data_dir().into());
    server_admin(&all)
}

/// alice with one active device that backed up [`SECRET`]; returns the agent, the version id and
/// the chunk id of the secret file.
fn alice_with_a_secret(server: &Server, work: &std::path::Path) -> (Agent, u64, String) {
    let alice = Agent::new("alice", server);
    let file = work.join("tresor.txt");
    std::fs::write(&file, SECRET).unwrap();
    alice.backup(&file);
    let list = alice.list(None);
    let id = newest(entry(&list, &file))["id"].as_u64().unwrap();
    (alice, id, hash_hex(SECRET))
}

/// Every reading and writing endpoint with `token`: none answers 2xx, none carries a byte of
/// the secret, its id or the file name.
fn reads_nothing(api: &Api, token: &str, version: u64, chunk: &str) {
    let calls: Vec<(&str, (u16, Vec<u8>))> = vec![
        ("list", api.get("/api/list?all_devices=true", Some(token))),
        (
            "list device",
            api.get("/api/list?device=testhost", Some(token)),
        ),
        (
            "restore",
            api.post_json_bytes(
                "/api/restore",
                Some(token),
                &json!({ "version_id": version }),
            ),
        ),
        (
            "manifest",
            api.post_json_bytes(
                "/api/manifest",
                Some(token),
                &json!({ "version_ids": [version] }),
            ),
        ),
        (
            "fetch",
            api.post_json_bytes("/api/fetch", Some(token), &json!({ "chunks": [chunk] })),
        ),
        (
            "chunk",
            api.get(&format!("/api/chunks/{chunk}"), Some(token)),
        ),
        ("runs", api.get("/api/runs", Some(token))),
        (
            "check",
            api.post_json_bytes("/api/check", Some(token), &json!({ "chunks": [chunk] })),
        ),
        (
            "approve",
            api.post_json_bytes(
                "/api/devices/approve",
                Some(token),
                &json!({ "code": "AAAA-AAAA" }),
            ),
        ),
    ];
    for (what, (status, body)) in calls {
        assert!(
            status == 401 || status == 403,
            "{what}: {status} {}",
            text(&body)
        );
        let body = text(&body);
        for leak in [std::str::from_utf8(SECRET).unwrap(), chunk, "tresor"] {
            assert!(!body.contains(leak), "{what} leaks {leak}: {body}");
        }
    }
}

/// Regression for finding 1: a stranger's token-less login as alice with a new device name got
/// an active token and with it all of alice's files.
#[test]
fn stranger_registering_as_alice_gets_a_pending_device_that_reads_nothing() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let (alice, version, chunk) = alice_with_a_secret(&server, work.path());
    let api = Api::new(&server);
    for (user, device) in [
        ("alice", "evil"),
        ("ALICE", "evil2"),
        (" alice ", "testhost"),
    ] {
        let (st, body) = api.post_json("/api/login", None, &login_body(user, device));
        assert_eq!(st, 200, "{body}");
        assert_eq!(body["status"], "pending", "{body}");
        assert_eq!(body["user"], "alice");
        assert!(
            approval_code(body["approval_code"].as_str().unwrap()).is_some(),
            "{body}"
        );
        let token = body["token"].as_str().unwrap().to_owned();
        reads_nothing(&api, &token, version, &chunk);
        // The pending device cannot approve itself with its own code.
        let (st, _) = api.post_json(
            "/api/devices/approve",
            Some(&token),
            &json!({ "code": body["approval_code"] }),
        );
        assert_eq!(st, 403);
    }
    // An unknown token and the token of another device get the same answer.
    let bob = Agent::new("bob", &server);
    bob.ok(["login"]);
    let with = |token: &str| {
        api.post_json_bytes("/api/login", Some(token), &login_body("alice", "testhost"))
    };
    let unknown = with("asg_0000");
    let other = with(&bob.token());
    assert_eq!(unknown.0, 401);
    assert_eq!(unknown, other);
    // alice is not disturbed: her device still reads its file.
    let (st, body) = api.post_json_bytes(
        "/api/restore",
        Some(&alice.token()),
        &json!({ "version_id": version }),
    );
    assert_eq!((st, body.as_slice()), (200, SECRET));
}

/// alice's new laptop waits; her active device approves it with the code the laptop shows (a
/// wrong code and a used code are refused); then the laptop sees her files.
#[test]
fn alice_approves_her_new_device_with_the_code_it_shows() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let (alice, _, _) = alice_with_a_secret(&server, work.path());
    let laptop = Agent {
        device: "laptop".into(),
        ..Agent::new("alice", &server)
    };
    let out = laptop.ok(["login"]);
    let shown = text(&out.stdout);
    assert!(shown.contains("wartet auf Freigabe"), "{shown}");
    assert!(shown.contains("asgard-agent device approve"), "{shown}");
    let code = approval_code(&shown).unwrap();
    let out = laptop.run(["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Freigabe"),
        "{}",
        text(&out.stderr)
    );

    let out = alice.run(["device", "approve", "AAAA-AAAA"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Freigabe-Code"),
        "{}",
        text(&out.stderr)
    );
    let out = alice.run(["device", "approve", "kein code"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("kein gültiger Code"),
        "{}",
        text(&out.stderr)
    );

    // Typed in lower case without the dash.
    let out = alice.ok(["device", "approve", &code.replace('-', "").to_lowercase()]);
    assert!(
        text(&out.stdout).contains("laptop"),
        "{}",
        text(&out.stdout)
    );
    let out = alice.run(["device", "approve", &code]);
    assert_eq!(out.status.code(), Some(1), "a used code is gone");

    let out = laptop.ok(["list", "--json", "--all-devices"]);
    let seen: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["device"], "testhost");
}

#[test]
fn admin_approves_a_pending_device() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let (_alice, _, _) = alice_with_a_secret(&server, work.path());
    let laptop = Agent {
        device: "Laptop".into(),
        ..Agent::new("alice", &server)
    };
    laptop.ok(["login"]);
    let list = text(&admin(&server, &["device", "list"]).stdout);
    assert!(list.contains("laptop"), "{list}");
    let out = admin(&server, &["device", "approve", "Alice", "LAPTOP"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = laptop.ok(["list", "--json", "--all-devices"]);
    let seen: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen.len(), 1);
}

/// Regression for finding 4: after `device reset` the next token-less login for that user and
/// device got the device and all its files, and the real agent was refused.
#[test]
fn reset_device_comes_back_only_with_the_admins_code() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let (alice, version, chunk) = alice_with_a_secret(&server, work.path());
    let out = admin(&server, &["device", "reset", "alice", "testhost"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("Einmal-Code"), "{shown}");
    let code = approval_code(&shown).unwrap_or_else(|| panic!("no code in {shown}"));
    let old_token = alice.token();
    assert_eq!(alice.run(["list"]).status.code(), Some(1));

    // The stranger who asks first gets a pending registration and nothing else.
    let api = Api::new(&server);
    let (st, body) = api.post_json("/api/login", None, &login_body("alice", "testhost"));
    assert_eq!((st, &body["status"]), (200, &json!("pending")), "{body}");
    reads_nothing(&api, body["token"].as_str().unwrap(), version, &chunk);
    // A wrong code, and the right code for another device, are refused like an unknown token.
    let mut wrong = login_body("alice", "testhost");
    wrong["code"] = json!("AAAA-AAAA");
    let refused = api.post_json_bytes("/api/login", None, &wrong);
    let mut elsewhere = login_body("alice", "anderes");
    elsewhere["code"] = json!(code);
    assert_eq!(api.post_json_bytes("/api/login", None, &elsewhere), refused);
    assert_eq!(refused.0, 401);
    let out = alice.run(["login", "--code", "AAAA-AAAA"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        alice.token(),
        old_token,
        "a refused code login keeps the state"
    );

    // The real agent with the code: the same device, all its files.
    let out = alice.ok(["login", "--code", &code.to_lowercase()]);
    assert!(text(&out.stdout).contains("alice"), "{}", text(&out.stdout));
    assert_ne!(alice.token(), old_token);
    let list = alice.list(None);
    assert_eq!(list.len(), 1);
    assert_eq!(newest(&list[0])["id"].as_u64(), Some(version));
    // Used once: a second agent with the same code is refused.
    let twin = Agent::new("alice", &server);
    let out = twin.run(["login", "--code", &code]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("abgelehnt"),
        "{}",
        text(&out.stderr)
    );
}

/// Finding 6: the same server under another name (`localhost` for `127.0.0.1`) keeps the token.
#[test]
fn changed_url_with_the_pinned_certificate_keeps_the_token() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let (mut alice, _, _) = alice_with_a_secret(&server, work.path());
    let token = alice.token();
    alice.server = server.url.replace("127.0.0.1", "localhost");
    assert_ne!(alice.server, server.url);
    let out = alice.ok(["list", "--json"]);
    assert!(
        text(&out.stderr).contains("Server-Adresse hat sich geändert"),
        "{}",
        text(&out.stderr)
    );
    let seen: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(alice.token(), token);
}

/// A changed certificate stays a hard error, under the old URL and a new one, and the token is
/// kept for when the admin puts the old certificate back.
#[test]
fn changed_certificate_is_refused_without_losing_the_token() {
    let mut server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let (mut alice, _, _) = alice_with_a_secret(&server, work.path());
    let token = alice.token();
    let tls = server.data_dir().join("tls");
    let saved = work.path().join("tls-saved");
    server.stop();
    std::fs::rename(&tls, &saved).unwrap();
    server.restart_stopped();
    for url in [
        server.url.clone(),
        server.url.replace("127.0.0.1", "localhost"),
    ] {
        alice.server = url;
        let out = alice.run(["list"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("Fingerabdruck"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(alice.token(), token);
    }
    server.stop();
    std::fs::remove_dir_all(&tls).unwrap();
    std::fs::rename(&saved, &tls).unwrap();
    server.restart_stopped();
    alice.server = server.url.clone();
    assert_eq!(alice.list(None).len(), 1, "the kept token works again");
}

#[test]
fn case_variants_are_one_user_and_look_alikes_are_refused() {
    let server = Server::start();
    let alice = Agent::new("alice", &server);
    alice.ok(["login"]);
    let upper = Agent {
        device: "zweiter".into(),
        ..Agent::new("ALICE", &server)
    };
    let out = upper.ok(["login"]);
    assert!(
        text(&out.stdout).contains("wartet auf Freigabe"),
        "{}",
        text(&out.stdout)
    );
    for look_alike in ["\u{430}lice", "ali\u{441}e"] {
        let out = Agent::new(look_alike, &server).run(["login"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("zum Verwechseln ähnlich"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = Agent::new("ali\u{200B}ce", &server).run(["login"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nicht möglich"),
        "{}",
        text(&out.stderr)
    );
    // The server refuses such a name from any client, too.
    let (st, body) =
        Api::new(&server).post_json("/api/login", None, &login_body("al\u{202E}ice", "x"));
    assert_eq!(st, 400, "{body}");
    let users = text(&admin(&server, &["user", "list"]).stdout);
    assert_eq!(users.matches("alice").count(), 1, "{users}");
}

/// `serve` warns in German when anybody who reaches it may register (open, no key, not only
/// loopback), and not otherwise.
#[test]
fn serve_warns_when_open_registration_listens_beyond_loopback() {
    let stderr_of = |yaml: &str, listen: &str| {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("server.yaml");
        std::fs::write(&config, yaml).unwrap();
        let (mut child, _) = spawn_server(&dir.path().join("data"), Some(&config), listen).unwrap();
        child.kill().unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        child.wait().unwrap();
        err
    };
    let err = stderr_of("language: de\n", "0.0.0.0:0");
    assert!(
        err.contains("WARNUNG") && err.contains("enrollment_key"),
        "{err}"
    );
    let err = stderr_of("language: de\n", "127.0.0.1:0");
    assert!(!err.contains("WARNUNG"), "{err}");
    let err = stderr_of("language: de\nenrollment_key: \"k\"\n", "0.0.0.0:0");
    assert!(!err.contains("WARNUNG"), "{err}");
}
