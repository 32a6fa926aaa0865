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
    let users = stdout_ok(&["user", "list"]);
    assert!(
        users.starts_with("ida\t1 Gerät(e)\t2 Versionen\t")
            && users.ends_with("\tkeep_versions 4 (Standard)\n"),
        "{users}"
    );
    stdout_ok(&["user", "set-keep", "ida", "2"]);
    assert!(
        stdout_ok(&["user", "list"]).ends_with("\tkeep_versions 2\n"),
        "own keep_versions shown"
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
    assert!(stdout_ok(&["device", "list"]).starts_with("ida\ttesthost\tzurückgesetzt\t"));
    let out = agent.run(["list"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}

/// Acceptance 4 of issue 13: each new account command, run while the server is up, changes what
/// the server does next: disable/enable a user, revoke a device and give it a new token, the
/// registration mode at run time, deleting a user (whose unique chunks the next GC passes free),
/// and the reports (`overview`, `runs`, `user list`) see it.
#[test]
fn console_commands_change_what_the_running_server_does_next() {
    let server = Server::start();
    let data_dir = server.data_dir();
    let admin = |args: &[&str]| -> Output {
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.push("--data-dir".into());
        all.push(data_dir.clone().into());
        server_admin(&all)
    };
    let ok = |args: &[&str]| -> String {
        let out = admin(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    let refused = |agent: &Agent, wanted: &str| {
        let out = agent.run(["list"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(wanted), "{wanted:?} not in: {err}");
    };

    let work = tempfile::tempdir().unwrap();
    let shared = random_bytes(30_000, 1);
    let anna_dir = work.path().join("anna");
    std::fs::create_dir_all(&anna_dir).unwrap();
    std::fs::write(anna_dir.join("gemeinsam.bin"), &shared).unwrap();
    let bert_dir = work.path().join("bert");
    std::fs::create_dir_all(&bert_dir).unwrap();
    std::fs::write(bert_dir.join("gemeinsam.bin"), &shared).unwrap();
    std::fs::write(bert_dir.join("nur-bert.bin"), random_bytes(30_000, 2)).unwrap();
    let anna = Agent::new("anna", &server);
    let bert = Agent::new("bert", &server);
    anna.backup(&anna_dir);
    bert.backup(&bert_dir);

    // The users page's figures: bert alone holds his own file's chunk.
    let users = json(&["user", "list"]);
    let row = |name: &str| {
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("bert")["versions"], 3, "{users}");
    assert_eq!(row("bert")["logical_bytes"], 60_000, "{users}");
    assert!(num(&row("bert"), "unique_stored_bytes") > 0, "{users}");
    assert_eq!(
        row("anna")["unique_stored_bytes"],
        0,
        "shared with bert: {users}"
    );

    // Disabled: refused with the German message; enabled: works again.
    ok(&["user", "disable", "anna"]);
    refused(&anna, "Benutzerkonto auf dem Server gesperrt");
    assert!(json(&["user", "list"])["users"][0]["disabled_since_us"].is_i64());
    bert.ok(["list"]);
    ok(&["user", "enable", "anna"]);
    anna.ok(["list"]);

    // Revoked: refused, and told so; the device list says so too.
    ok(&["device", "revoke", "anna", "testhost"]);
    refused(&anna, "Zugang dieses Geräts zum Server widerrufen");
    let devices = json(&["device", "list"]);
    let state = |d: &serde_json::Value, user: &str| {
        d.as_array()
            .unwrap()
            .iter()
            .find(|x| x["user"] == user)
            .unwrap()["token_state"]
            .clone()
    };
    assert_eq!(state(&devices, "anna"), "revoked", "{devices}");
    assert_eq!(state(&devices, "bert"), "active", "{devices}");
    // Last address and time of the last authenticated request are recorded.
    let bert_row = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["user"] == "bert")
        .unwrap();
    assert_eq!(bert_row["last_addr"], "127.0.0.1", "{devices}");

    // A new token: the old one stays refused, the new one works.
    let old = anna.token();
    let change = json(&["device", "token", "anna", "testhost"]);
    let new = change["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    refused(&anna, "widerrufen");
    anna.ok(["login", "--token", &new]);
    assert_eq!(anna.token(), new);
    anna.backup(&anna_dir);

    // Registration at run time: approve makes a new user's first device wait, closed refuses
    // it, and a reset brings back the file's open registration.
    ok(&["registration", "set", "approve"]);
    assert_eq!(json(&["registration", "show"])["source"], "database");
    let carl = Agent::new("carl", &server);
    let out = carl.run(["login"]);
    assert!(
        text(&out.stdout).contains("wartet auf die Freigabe"),
        "{}",
        text(&out.stdout)
    );
    ok(&["registration", "set", "closed"]);
    let dora = Agent::new("dora", &server);
    let out = dora.run(["login"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("keine neuen Geräte"),
        "{}",
        text(&out.stderr)
    );
    let out = admin(&["registration", "set", "open", "--enrollment-key", "kurz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("zu kurz"),
        "{}",
        text(&out.stderr)
    );
    ok(&["registration", "set", "--reset"]);
    dora.ok(["login"]);
    assert_eq!(json(&["registration", "show"])["source"], "config");

    // The overview and the runs see every device and its runs.
    let overview = json(&["overview"]);
    assert_eq!(overview["users"], 4, "{overview}");
    assert_eq!(overview["pending"][0]["user"], "carl", "{overview}");
    assert_eq!(overview["states"]["ok"], 2, "{overview}");
    assert!(num(&overview["space"], "total_bytes") > 0, "{overview}");
    let runs = json(&["runs", "--user", "anna"]);
    assert_eq!(runs["total"], 2, "{runs}");
    assert!(
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["user"] == "anna" && r["state"] == "ok"),
        "{runs}"
    );
    assert!(ok(&["overview"]).contains("Letzte Sicherung: ok 2"));

    // Delete: a wrong confirmation changes nothing; then bert and his files are gone, and two
    // GC passes free exactly his own chunk (the shared one is anna's too).
    let out = admin(&["user", "delete", "bert", "--confirm", "bernd"]);
    assert_eq!(out.status.code(), Some(1));
    bert.ok(["list"]);
    let deleted = json(&["user", "delete", "bert", "--confirm", "bert"]);
    assert_eq!(deleted["deleted"]["versions"], 3, "{deleted}");
    refused(&bert, "Anmeldung abgelehnt");
    let new_bert = Agent::new("bert", &server);
    assert!(
        new_bert.list(None).is_empty(),
        "a new bert sees nothing of the old"
    );
    let d = data_dir.to_str().unwrap();
    let gc = |_: u8| -> serde_json::Value {
        let out = server_admin(["gc", "--grace", "0s", "--json", "--data-dir", d]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = gc(1);
    assert_eq!(first["candidates_marked"], 1, "{first}");
    let second = gc(2);
    assert_eq!(second["chunks_freed"], 1, "{second}");
    let restore = tempfile::tempdir().unwrap();
    let out = anna.restore_to(&anna_dir.join("gemeinsam.bin"), restore.path(), &[]);
    assert_success(&out);
}

/// `device refuse` on a running server: a further device of an existing user waits for approval,
/// the admin refuses it, and its agent is told so in German at its next request (the pending
/// token is dead, the user's active device is untouched). The agent forgets the dead token, so
/// its next login is a new registration, which waits again. Refusing an active device or an
/// unknown one changes nothing and says why.
#[test]
fn a_refused_registration_is_gone_and_its_agent_is_told_why() {
    let server = Server::start();
    let data_dir = server.data_dir();
    let admin = |args: &[&str]| -> Output {
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.push("--data-dir".into());
        all.push(data_dir.clone().into());
        server_admin(&all)
    };
    let ok = |args: &[&str]| -> String {
        let out = admin(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("Brief.txt"), b"Liebe Oma").unwrap();
    let pc = Agent::new("ida", &server);
    pc.backup(work.path());
    let mut laptop = Agent::new("ida", &server);
    laptop.device = "laptop".into();
    let out = laptop.run(["login"]);
    assert!(
        text(&out.stdout).contains("Freigabe"),
        "{}",
        text(&out.stdout)
    );
    assert!(ok(&["device", "list"]).contains("ida\tlaptop\twartet auf Freigabe\t"));

    // An active device is not refused (revoke is for that), an unknown one is not found.
    for (device, words) in [
        ("testhost", "wartet keine Registrierung"),
        ("toaster", "wartet keine"),
    ] {
        let out = admin(&["device", "refuse", "ida", device]);
        assert_eq!(out.status.code(), Some(1), "{device}");
        assert!(text(&out.stderr).contains(words), "{}", text(&out.stderr));
    }
    pc.ok(["list"]);

    assert_eq!(
        ok(&["device", "refuse", "ida", "laptop"]),
        "Die Registrierung von Gerät „laptop“ (Benutzer „ida“) ist abgelehnt: Ihr Token gilt \
         nicht mehr, das wartende Gerät erfährt es bei seiner nächsten Anfrage.\n"
    );
    let devices = ok(&["device", "list"]);
    assert!(!devices.contains("laptop"), "{devices}");
    let out = laptop.run(["backup".as_ref(), work.path().as_os_str()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Der Administrator hat die Registrierung dieses Geräts abgelehnt"),
        "{err}"
    );
    // Approving it now finds nothing; the user's own device still works.
    assert_eq!(
        admin(&["device", "approve", "ida", "laptop"]).status.code(),
        Some(1)
    );
    pc.ok(["list"]);

    // The dead token is forgotten: the next login is a new registration that waits again.
    let out = laptop.run(["login"]);
    assert!(
        out.status.success() && text(&out.stdout).contains("Freigabe"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(ok(&["device", "list"]).contains("ida\tlaptop\twartet auf Freigabe\t"));
    ok(&["device", "approve", "ida", "laptop"]);
    laptop.backup(work.path());
}
