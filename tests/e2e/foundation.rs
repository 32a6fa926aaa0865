//! The foundation: backup, list and restore end to end, dedupe, isolation, versions, restart, pinning,
//! registration policies, the README's quick start and the Windows agent under Wine.

use std::path::{Path, PathBuf};

use asgard_core::{ChunkId, ChunkParams, stored};
use asgard_e2e::*;
use serde_json::{Value, json};

/// Builds the tree of acceptance point 1 under `root` (with a non-UTF-8 name on Unix).
fn build_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::create_dir_all(root.join("Ordner mit Leerzeichen")).unwrap();
    std::fs::write(root.join("empty.txt"), b"").unwrap();
    std::fs::write(root.join("big.bin"), random_bytes(20 << 20, 1)).unwrap();
    std::fs::write(root.join("a/b/c/deep.txt"), b"deep inside\n").unwrap();
    std::fs::write(root.join("a/notes.md"), b"# Notizen\n".repeat(1000)).unwrap();
    std::fs::write(
        root.join("Ordner mit Leerzeichen/Grüße aus Köln.txt"),
        "Schöne Grüße, Äpfel & Öl\n".repeat(50),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9-latin1.txt");
        std::fs::write(root.join(name), b"not utf-8 name").unwrap();
    }
    let mut t = 1_600_000_000;
    for (p, _) in snapshot(root) {
        set_mtime(&root.join(p), t);
        t += 3600;
    }
}

/// Acceptance 1: back up a tree, change some files, back up again; list shows two versions of the
/// changed files and one of the others; restore by --version and by --at is byte-identical.
#[test]
fn backup_change_list_and_restore_by_version_and_time() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("daten");
    build_tree(&root);
    let first = snapshot(&root);

    let s1 = agent.backup(&root);
    assert_eq!(s1["files_seen"], first.len());
    assert_eq!(s1["files_new"], first.len());

    // Change two files (one of them the big one, in the middle) and keep the rest.
    let mut big = std::fs::read(root.join("big.bin")).unwrap();
    big[10 << 20] ^= 0xFF;
    std::fs::write(root.join("big.bin"), &big).unwrap();
    set_mtime(&root.join("big.bin"), 1_700_000_000);
    let deep = root.join("a/b/c/deep.txt");
    std::fs::write(&deep, b"deep inside, changed\n").unwrap();
    set_mtime(&deep, 1_700_000_100);
    let second = snapshot(&root);

    let s2 = agent.backup(&root);
    assert_eq!(s2["files_changed"], 2, "{s2}");
    assert_eq!(s2["files_new"], 0, "{s2}");
    // Only the changed chunk of the 20 MiB file travels, not the whole file.
    assert!(s2["bytes_sent"].as_u64().unwrap() < 4 << 20, "{s2}");

    let list = agent.list(Some(&root));
    // Folders are entries too (issue 12); `first` holds the files.
    let files = list.iter().filter(|e| newest(e)["kind"] != "dir");
    assert_eq!(files.count(), first.len());
    for e in &list {
        assert_eq!(e["device"], "testhost");
    }
    let big_e = entry(&list, &root.join("big.bin"));
    let deep_e = entry(&list, &deep);
    assert_eq!(versions(big_e).len(), 2);
    assert_eq!(versions(deep_e).len(), 2);
    assert_eq!(versions(entry(&list, &root.join("a/notes.md"))).len(), 1);
    assert_eq!(versions(entry(&list, &root.join("empty.txt"))).len(), 1);
    // Newest first, with the hashes of the contents.
    assert_eq!(versions(big_e)[0]["hash"], hash_hex(&big));
    assert_eq!(versions(deep_e)[1]["hash"], hash_hex(b"deep inside\n"));
    assert_eq!(versions(deep_e)[0]["size"], 21);
    #[cfg(unix)]
    {
        let non_utf8 = list
            .iter()
            .find(|e| e["path"].is_object())
            .expect("the non-UTF-8 name is listed as {\"hex\": ...}");
        assert!(
            non_utf8["path"]["hex"]
                .as_str()
                .unwrap()
                .ends_with("e92d6c6174696e312e747874")
        );
    }

    // Restore the old version of the big file by id.
    let old_id = versions(big_e)[1]["id"].as_u64().unwrap();
    let out = work.path().join("by-version");
    agent.ok([
        "restore".as_ref(),
        root.join("big.bin").as_os_str(),
        "--version".as_ref(),
        old_id.to_string().as_ref(),
        "--to".as_ref(),
        out.as_os_str(),
    ]);
    let (data, mtime) = &first[Path::new("big.bin")];
    assert!(std::fs::read(out.join("big.bin")).unwrap() == *data);
    assert_eq!(
        std::fs::metadata(out.join("big.bin"))
            .unwrap()
            .modified()
            .unwrap(),
        *mtime
    );

    // Restore the whole folder as it was after the first backup, by time.
    // The end of the first run: its versions are committed in batches, so take the newest of them.
    let t1 = list
        .iter()
        .map(|e| versions(e).last().unwrap())
        .max_by_key(|v| v["time"].as_str().unwrap().to_owned())
        .unwrap()["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let at_first = work.path().join("at-first");
    agent.ok([
        "restore".as_ref(),
        root.as_os_str(),
        "--at".as_ref(),
        t1.as_ref(),
        "--to".as_ref(),
        at_first.as_os_str(),
    ]);
    assert_same_tree(&first, &at_first.join("daten"));

    // And as it is now.
    let latest = work.path().join("latest");
    agent.ok([
        "restore".as_ref(),
        root.as_os_str(),
        "--to".as_ref(),
        latest.as_os_str(),
    ]);
    assert_same_tree(&second, &latest.join("daten"));

    // In place: a changed local file is never overwritten without --overwrite.
    std::fs::write(&deep, b"local edit").unwrap();
    let r = agent.run(["restore".as_ref(), deep.as_os_str()]);
    assert!(!r.status.success());
    assert_eq!(std::fs::read(&deep).unwrap(), b"local edit");
    agent.ok(["restore".as_ref(), deep.as_os_str(), "--overwrite".as_ref()]);
    assert_eq!(std::fs::read(&deep).unwrap(), b"deep inside, changed\n");
}

/// Acceptance 2: six changes of one file with keep_versions 4 leave the newest four, restorable.
#[test]
fn keep_versions_retains_the_newest_four() {
    let server = Server::start_with_config(Some("keep_versions: 4\n"));
    let agent = Agent::new("carol", &server);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("doc");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bericht.txt");
    let contents: Vec<Vec<u8>> = (0..6)
        .map(|i| format!("Fassung {i}\n").repeat(100 + i).into_bytes())
        .collect();
    for (i, c) in contents.iter().enumerate() {
        std::fs::write(&file, c).unwrap();
        set_mtime(&file, 1_650_000_000 + i as u64 * 60);
        agent.backup(&dir);
    }
    let list = agent.list(Some(&file));
    let vs = versions(entry(&list, &file));
    assert_eq!(vs.len(), 4, "{vs:#?}");
    for (v, c) in vs.iter().zip(contents.iter().rev()) {
        assert_eq!(v["hash"], hash_hex(c));
        let out = work.path().join(format!("v{}", v["id"]));
        agent.ok([
            "restore".as_ref(),
            file.as_os_str(),
            "--version".as_ref(),
            v["id"].to_string().as_ref(),
            "--to".as_ref(),
            out.as_os_str(),
        ]);
        assert!(std::fs::read(out.join("bericht.txt")).unwrap() == *c);
    }
}

fn chunk_ids(data: &[u8]) -> Vec<ChunkId> {
    ChunkParams::default()
        .cut(data)
        .into_iter()
        .map(|(o, l)| ChunkId::of(&data[o..o + l]))
        .collect()
}

/// A hand-made commit body: one file at `path` made of the single chunk `id`.
fn one_chunk_commit(path: &str, id: ChunkId, len: u32) -> Value {
    json!({ "entries": [{
        "kind": "file", "path": path,
        "meta": { "size": len, "mtime_ns": 0, "mode": 0o644, "attributes": 0,
                  "hash": id, "params": ChunkParams::default(),
                  "chunks": [{ "id": id, "len": len }] } }] })
}

/// Acceptance 3: the same 20 MiB file from two users is stored once; check still asks the second
/// user for it; neither user can list or restore the other's files.
#[test]
fn two_users_share_storage_but_not_data() {
    let server = Server::start();
    let api = Api::new(&server);
    let alice = Agent::new("alice", &server);
    let bob = Agent::new("bob", &server);
    let work = tempfile::tempdir().unwrap();
    let data = random_bytes(20 << 20, 42);
    let a_dir = work.path().join("alice");
    let b_dir = work.path().join("bob");
    for d in [&a_dir, &b_dir] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("film.bin"), &data).unwrap();
    }
    std::fs::write(a_dir.join("geheim.txt"), b"alice's secret").unwrap();

    alice.backup(&a_dir);
    let (bytes_after_alice, files_after_alice) = server.store_usage();
    assert!(bytes_after_alice >= 20 << 20);

    // Bob is registered but owns nothing: check asks him for every chunk, although the store has them.
    bob.ok(["login"]);
    let ids = chunk_ids(&data);
    let (st, resp) = api.post_json("/api/check", Some(&bob.token()), &json!({ "chunks": ids }));
    assert_eq!(st, 200);
    assert_eq!(resp["missing"].as_array().unwrap().len(), ids.len());

    let s = bob.backup(&b_dir);
    assert!(
        s["bytes_sent"].as_u64().unwrap() >= 20 << 20,
        "bob uploads to prove possession: {s}"
    );
    // New to bob, whoever else stores it (no existence oracle): the store itself did not grow.
    assert_eq!(s["bytes_new"], s["bytes_sent"], "{s}");
    assert_eq!(server.store_usage(), (bytes_after_alice, files_after_alice));

    // Isolation: bob sees nothing of alice's, by listing or by version id or by chunk id.
    assert!(bob.list(Some(&a_dir)).is_empty());
    let a_list = alice.list(Some(&a_dir));
    let secret = entry(&a_list, &a_dir.join("geheim.txt"));
    let secret_id = versions(secret)[0]["id"].as_u64().unwrap();
    let (st, _) = api.post_json(
        "/api/restore",
        Some(&bob.token()),
        &json!({ "version_id": secret_id }),
    );
    assert_eq!(st, 404);
    let (st, _) = api.post_json(
        "/api/restore",
        Some(&bob.token()),
        &json!({ "path": a_dir.join("geheim.txt").to_str().unwrap() }),
    );
    assert_eq!(st, 404);
    // Knowing the hash of alice's chunk does not let bob reference it in a version of his own.
    let secret_hash = ChunkId::of(b"alice's secret");
    let steal = one_chunk_commit("/tmp/stolen.txt", secret_hash, 14);
    let (st, body) = api.post_json("/api/commit", Some(&bob.token()), &steal);
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["missing"], json!([secret_hash]));
    let secret_chunk = secret_hash.to_hex();
    let (st, _) = api.get(&format!("/api/chunks/{secret_chunk}"), Some(&bob.token()));
    assert_eq!(st, 404);
    let (st, body) = api.get(&format!("/api/chunks/{secret_chunk}"), Some(&alice.token()));
    assert_eq!(st, 200);
    assert_eq!(stored::decode(&body, 1 << 20).unwrap(), b"alice's secret");
    let out = bob.run([
        "restore".as_ref(),
        a_dir.join("geheim.txt").as_os_str(),
        "--to".as_ref(),
        work.path().join("stolen").as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(!work.path().join("stolen/geheim.txt").exists());
}

/// Acceptance 4: bad uploads, missing chunks, wrong tokens and double registration are refused.
#[test]
fn server_refuses_bad_input() {
    let server = Server::start();
    let api = Api::new(&server);
    let agent = Agent::new("dave", &server);
    agent.ok(["login"]);
    let token = agent.token();
    let before = server.store_usage();

    // Bytes that do not match the claimed id.
    let claimed = ChunkId::of(b"the real content");
    let (st, body) = api.upload(
        &token,
        vec![(claimed.to_hex(), stored::encode(b"forged content", 3))],
    );
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["code"], "chunk_hash_mismatch");
    assert_eq!(
        server.store_usage(),
        before,
        "a forged chunk must not be stored"
    );
    let (_, resp) = api.post_json("/api/check", Some(&token), &json!({ "chunks": [claimed] }));
    assert_eq!(resp["missing"], json!([claimed]));
    // A correct upload of the same id is accepted.
    let (st, body) = api.upload(
        &token,
        vec![(claimed.to_hex(), stored::encode(b"the real content", 3))],
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["new_chunks"], 1);

    // A commit that references an absent chunk is refused with that id.
    let absent = ChunkId::of(b"never uploaded");
    let commit = one_chunk_commit("/x/y.txt", absent, 14);
    let (st, body) = api.post_json("/api/commit", Some(&token), &commit);
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["code"], "missing_chunks");
    assert_eq!(body["missing"], json!([absent]));
    assert!(agent.list(None).is_empty(), "nothing was committed");

    // Wrong or missing token.
    let (st, _) = api.post_json("/api/check", Some("asg_wrong"), &json!({ "chunks": [] }));
    assert_eq!(st, 401);
    let (st, _) = api.get("/api/list", None);
    assert_eq!(st, 401);

    // Registering the same user and device again without its token.
    let login = json!({ "protocol_version": asgard_core::protocol::PROTOCOL_VERSION, "user": "dave",
        "device": "testhost", "os": "linux", "os_version": "test", "agent_version": "test" });
    // It gets a pending registration that reads nothing (see `enroll.rs`), and dave's token
    // stays valid.
    let (st, body) = api.post_json("/api/login", None, &login);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["status"], "pending");
    let twin = Agent::new("dave", &server);
    let out = twin.ok(["login"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("wartet auf Freigabe"), "{shown}");
    assert!(agent.list(None).is_empty());
}

/// Acceptance 5: a restart between backup and restore loses nothing; a second server on the same
/// data dir refuses to start.
#[test]
fn restart_loses_nothing_and_data_dir_is_locked() {
    let mut server = Server::start();
    let agent = Agent::new("erin", &server);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("src");
    build_tree(&root);
    let before = snapshot(&root);
    agent.backup(&root);

    match spawn_server(&server.data_dir(), None, "127.0.0.1:0") {
        Ok((mut child, url)) => {
            let _ = child.kill();
            panic!("a second server started on the same data dir: {url}");
        }
        Err(stderr) => assert!(stderr.contains("bereits"), "{stderr}"),
    }

    server.restart();
    let out = work.path().join("out");
    agent.ok([
        "restore".as_ref(),
        root.as_os_str(),
        "--to".as_ref(),
        out.as_os_str(),
    ]);
    assert_same_tree(&before, &out.join("src"));
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The two quick-start commands of the README, in order: run the server, run the tests.
const README_SERVER_COMMAND: &str = "cargo run --release -p asgard-server -- serve";
const README_TEST_COMMAND: &str = "cargo test --workspace";

/// Acceptance 6: the README's quick start is what CI runs, and the server runs on its embedded
/// defaults with no config at all (./asgard-data, port 8443, self-signed certificate).
#[test]
fn readme_quick_start_works_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("## Schnellstart")
        .expect("README has a Schnellstart section");
    let quick = &readme[start..];
    let server_at = quick
        .find(README_SERVER_COMMAND)
        .expect("server command in quick start");
    let test_at = quick
        .find(README_TEST_COMMAND)
        .expect("test command in quick start");
    assert!(server_at < test_at);
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == README_TEST_COMMAND),
        ".ci/run runs the README's test command"
    );

    // `serve` with no options, in an empty folder: the embedded defaults.
    let cwd = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(server_bin())
        .arg("serve")
        .current_dir(cwd.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(2)
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines[0].contains("https://0.0.0.0:8443"), "{lines:?}");
    assert!(lines[1].contains("SHA-256"), "{lines:?}");
    let data = cwd.path().join("asgard-data");
    assert!(data.join("asgard.redb").exists());
    assert!(data.join("tls/cert.pem").exists());
    // `fingerprint` prints the same fingerprint again.
    let fp = std::process::Command::new(server_bin())
        .arg("fingerprint")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(fp.status.success());
    let fp = String::from_utf8(fp.stdout).unwrap();
    assert!(
        !fp.trim().is_empty() && lines[1].contains(fp.trim()),
        "{fp} vs {lines:?}"
    );
}

/// A Linux path as Wine shows it to a Windows program (drive Z: is the Unix root).
fn wine_path(p: &Path) -> String {
    format!("Z:{}", p.to_str().unwrap().replace('/', "\\"))
}

/// The Windows agent and Wine to run it (see `.ci/run`).
struct Wine {
    exe: PathBuf,
    wine: std::ffi::OsString,
    prefix: std::ffi::OsString,
}

impl Wine {
    /// `None` (the test is skipped) where no Windows agent is built; CI must build it.
    fn find() -> Option<Wine> {
        let Some(exe) = windows_agent() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must build the Windows agent before the tests (see .ci/run)"
            );
            eprintln!(
                "skipped: no Windows agent built (cargo build -p asgard-agent --target x86_64-pc-windows-gnu)"
            );
            return None;
        };
        Some(Wine {
            exe,
            wine: std::env::var_os("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER")
                .unwrap_or_else(|| "/usr/lib/wine/wine64".into()),
            prefix: std::env::var_os("WINEPREFIX")
                .unwrap_or_else(|| "/var/tmp/asgard-wineprefix".into()),
        })
    }

    /// Runs the agent as device `winbox` of user `winuser` with its state in `state`; it must
    /// succeed.
    fn agent(&self, server: &Server, state: &Path, args: &[String]) -> std::process::Output {
        let out = std::process::Command::new(&self.wine)
            .arg(&self.exe)
            .args(["--server", &server.url, "--state-dir", &wine_path(state)])
            .args(args)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            // Wine derives the Windows USERNAME from the Unix USER variable.
            .env("USER", "winuser")
            .env("USERNAME", "winuser")
            .env("ASGARD_DEVICE", "winbox")
            .env_remove("ASGARD_STATE_DIR")
            .env_remove("ASGARD_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wine agent {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// Acceptance 7: the Windows agent, under Wine, backs up and restores a small folder against the
/// Linux server, and takes the user from USERNAME.
#[test]
fn windows_agent_under_wine_backs_up_and_restores() {
    let Some(wine) = Wine::find() else { return };
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("Dokumente");
    std::fs::create_dir_all(src.join("Unterordner")).unwrap();
    std::fs::write(
        src.join("Brief an Jürgen.txt"),
        "Hallo Jürgen!\r\n".repeat(20),
    )
    .unwrap();
    std::fs::write(src.join("Unterordner/daten.bin"), random_bytes(300_000, 7)).unwrap();
    std::fs::write(src.join("leer.txt"), b"").unwrap();
    // Whole seconds: Windows keeps file times in 100 ns ticks.
    for (i, p) in snapshot(&src).keys().enumerate() {
        set_mtime(&src.join(p), 1_600_000_000 + i as u64 * 77);
    }
    let before = snapshot(&src);
    let state = work.path().join("state");
    let run = |args: &[String]| wine.agent(&server, &state, args);
    let out = run(&["backup".into(), "--json".into(), wine_path(&src)]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files_new"], 3, "{summary}");

    let out = run(&["list".into(), "--json".into(), wine_path(&src)]);
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    // Three files and, as entries of their own (issue 12), the two folders.
    let files = |l: &[Value]| l.iter().filter(|e| newest(e)["kind"] != "dir").count();
    assert_eq!((files(&list), list.len()), (3, 5), "{list:#?}");
    let want = format!("{}\\Unterordner\\daten.bin", wine_path(&src));
    assert!(
        list.iter()
            .any(|e| e["path"].as_str().map(|p| p.eq_ignore_ascii_case(&want)) == Some(true)),
        "{want} in {list:#?}"
    );
    assert!(list.iter().all(|e| e["device"] == "winbox"));
    // Issue 12: the owner's account is recorded for the record, for files and folders alike
    // (here the one Wine user, as `DOMAIN\name`), and no Unix numbers.
    let owner = newest(&list[0])["owner"].clone();
    let name = owner
        .as_str()
        .unwrap_or_else(|| panic!("an owner in {list:#?}"));
    // Wine's one user is named after the USERNAME the agent runs with, in the machine's domain.
    let (domain, account) = name.rsplit_once('\\').unwrap_or_else(|| panic!("{name:?}"));
    assert!(!domain.is_empty(), "{name:?}");
    assert!(account.eq_ignore_ascii_case("winuser"), "{name:?}");
    for e in &list {
        assert_eq!(newest(e)["owner"], owner, "{e:#}");
        assert!(newest(e).get("uid").is_none(), "{e:#}");
    }

    // The server registered the user the agent took from USERNAME.
    let linux = Agent {
        device: "linuxbox".into(),
        ..Agent::new("winuser", &server)
    };
    // A further device of winuser: the admin approves it.
    linux.ok(["login"]);
    let data_dir = server.data_dir();
    server_admin_ok([
        "device".as_ref(),
        "approve".as_ref(),
        "winuser".as_ref(),
        "linuxbox".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ]);
    let out = linux.ok(["list", "--json", "--device", "winbox"]);
    let seen: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (files(&seen), seen.len()),
        (3, 5),
        "winuser's files are listed for winuser's other device"
    );
    assert!(
        seen.iter().all(|e| newest(e)["owner"] == owner),
        "{seen:#?}"
    );

    let dest = work.path().join("zurück");
    run(&[
        "restore".into(),
        wine_path(&src),
        "--to".into(),
        wine_path(&dest),
    ]);
    assert_same_tree(&before, &dest.join("Dokumente"));
}

/// Windows attribute bits as Wine keeps them for a Linux file: hidden and system in the
/// `user.DOSATTRIB` extended attribute ("0x6"), read-only in the missing write bits.
#[cfg(target_os = "linux")]
mod dos {
    use std::path::Path;

    pub const HIDDEN: u32 = 0x2;
    pub const SYSTEM: u32 = 0x4;
    const NAME: &str = "user.DOSATTRIB";

    /// The hidden and system bits Wine sees on `p` (none without the attribute).
    pub fn get(p: &Path) -> u32 {
        let mut buf = [0u8; 256];
        let n = match rustix::fs::getxattr(p, NAME, &mut buf[..]) {
            Ok(n) => n,
            Err(rustix::io::Errno::NODATA) => return 0,
            Err(e) => panic!("{}: {e}", p.display()),
        };
        let text = std::str::from_utf8(&buf[..n])
            .unwrap()
            .trim_end_matches('\0');
        let hex = text
            .strip_prefix("0x")
            .unwrap_or_else(|| panic!("{text:?}"));
        u32::from_str_radix(hex, 16).unwrap() & (HIDDEN | SYSTEM)
    }

    pub fn set(p: &Path, bits: u32) {
        let value = format!("0x{bits:x}");
        rustix::fs::setxattr(p, NAME, value.as_bytes(), rustix::fs::XattrFlags::empty())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

/// Issue 12: the Windows agent (under Wine) gives folders and files their hidden and system
/// attributes back, and files their read-only attribute; folders and files without them come
/// back without them. The bits are read back from the Linux side where Wine keeps them, so the
/// test sees what a Windows program would see.
#[cfg(target_os = "linux")]
#[test]
fn windows_agent_under_wine_restores_hidden_system_and_read_only() {
    use dos::{HIDDEN, SYSTEM};
    use std::os::unix::fs::PermissionsExt;
    let Some(wine) = Wine::find() else { return };
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("Attribute");
    let secret = src.join("Versteckt");
    std::fs::create_dir_all(secret.join("Unten")).unwrap();
    std::fs::create_dir_all(src.join("Sichtbar")).unwrap();
    std::fs::write(secret.join("notiz.txt"), b"geheim").unwrap();
    std::fs::write(src.join("Sichtbar/frei.txt"), b"frei").unwrap();
    std::fs::write(src.join("system.dat"), b"sys").unwrap();
    dos::set(&secret, HIDDEN | SYSTEM);
    dos::set(&secret.join("notiz.txt"), HIDDEN);
    dos::set(&src.join("system.dat"), SYSTEM);
    std::fs::set_permissions(
        secret.join("notiz.txt"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    let state = work.path().join("state");
    wine.agent(&server, &state, &["backup".into(), wine_path(&src)]);
    let dest = work.path().join("zurück");
    wine.agent(
        &server,
        &state,
        &[
            "restore".into(),
            wine_path(&src),
            "--to".into(),
            wine_path(&dest),
        ],
    );
    let back = dest.join("Attribute");
    assert_eq!(
        std::fs::read(back.join("Versteckt/notiz.txt")).unwrap(),
        b"geheim"
    );
    for (rel, want) in [
        ("Versteckt", HIDDEN | SYSTEM),
        ("Versteckt/Unten", 0),
        ("Sichtbar", 0),
        ("Sichtbar/frei.txt", 0),
        ("Versteckt/notiz.txt", HIDDEN),
        ("system.dat", SYSTEM),
    ] {
        assert_eq!(dos::get(&back.join(rel)), want, "{rel}");
    }
    let mode = |rel: &str| {
        std::fs::metadata(back.join(rel))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode("Versteckt/notiz.txt") & 0o222, 0, "read-only");
    assert_ne!(mode("Sichtbar/frei.txt") & 0o200, 0, "writable");

    // Only the attributes changed since: a restore to the same place finds the content up to
    // date and gives the attributes back.
    dos::set(&back.join("Versteckt"), 0);
    dos::set(&back.join("system.dat"), 0);
    wine.agent(
        &server,
        &state,
        &[
            "restore".into(),
            wine_path(&src),
            "--to".into(),
            wine_path(&dest),
        ],
    );
    assert_eq!(dos::get(&back.join("Versteckt")), HIDDEN | SYSTEM);
    assert_eq!(dos::get(&back.join("system.dat")), SYSTEM);
}

/// Registration policies: with `approve` a new device waits for the admin (`device approve`), and an
/// enrollment key is required from every new device.
#[test]
fn approval_and_enrollment_key_gate_new_devices() {
    let mut server = Server::start_with_config(Some(
        "registration: approve\nenrollment_key: \"Donnerkeil\"\n",
    ));
    let agent = Agent::new("frida", &server);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f.txt"), b"hallo").unwrap();

    // Without the key: refused, nothing registered.
    let out = agent.run(["login"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Registrierungsschlüssel"));

    // With the key: registered, but pending until approved.
    let cfg = work.path().join("agent.yaml");
    std::fs::write(&cfg, "enrollment_key: \"Donnerkeil\"\n").unwrap();
    let with_key = |args: &[&str]| {
        let mut c = agent.command();
        c.arg("--config").arg(&cfg).args(args);
        c.output().unwrap()
    };
    let out = with_key(&["backup", work.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Freigabe"));

    // The admin approves, here on the stopped server (in-process; `accounts.rs` does it on a
    // running one).
    server.stop();
    server_admin_ok([
        "device".as_ref(),
        "approve".as_ref(),
        "frida".as_ref(),
        "testhost".as_ref(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
    ] as [&std::ffi::OsStr; 6]);
    server.restart_stopped();
    let out = with_key(&["backup", "--json", work.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = agent.list(None);
    assert_eq!(
        list.iter().filter(|e| newest(e)["kind"] != "dir").count(),
        2,
        "agent.yaml and f.txt are backed up"
    );
}

/// The agent pins the server certificate: trusted on first use and remembered; a different
/// certificate later is a hard error, and so is one that differs from `server.fingerprint`.
#[test]
fn changed_server_certificate_is_refused() {
    let mut server = Server::start();
    let agent = Agent::new("gerd", &server);
    let out = agent.ok(["login"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ersten Kontakt vertraut"));
    let out = agent.ok(["login"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("ersten Kontakt vertraut"));

    // Same server and port, new certificate.
    server.stop();
    std::fs::remove_dir_all(server.data_dir().join("tls")).unwrap();
    server.restart_stopped();
    let out = agent.run(["login"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hat sich geändert"), "{err}");

    // A configured pin that does not match refuses a fresh agent too.
    let fresh = Agent::new("hanna", &server);
    let cfg = fresh.state.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!("server:\n  fingerprint: \"{}\"\n", "AB:".repeat(31) + "AB"),
    )
    .unwrap();
    let out = fresh
        .command()
        .arg("--config")
        .arg(&cfg)
        .arg("login")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hat sich geändert"));
}
