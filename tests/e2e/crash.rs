//! Crash safety and metadata backup (issue 4, acceptance 3 and 5): the server killed with SIGKILL
//! at random points of uploads and commits loses nothing it acknowledged; a `db-backup` taken
//! during a running backup holds every version committed before it started.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use asgard_e2e::*;

/// Writes `data` to `path` and remembers its hash among the contents the test ever wrote.
fn write(path: &Path, data: &[u8], written: &mut HashSet<String>) {
    std::fs::write(path, data).unwrap();
    written.insert(hash_hex(data));
}

/// Changes the tree for the next round: rewrites three big files, edits one in place, rewrites a
/// dozen small files, and now and then deletes a big file. Every content written is added to
/// `written`.
fn mutate(root: &Path, rng: &mut Rng, written: &mut HashSet<String>) {
    let big = |i: u64| root.join(format!("gross-{i}.bin"));
    for _ in 0..3 {
        let i = rng.range(0, 6);
        let len = rng.range(2 << 20, 4 << 20) as usize;
        write(&big(i), &random_bytes(len, rng.next_u64()), written);
    }
    // An in-place edit: most chunks stay, one changes (dedupe within the same path).
    let i = rng.range(0, 6);
    if let Ok(mut data) = std::fs::read(big(i)) {
        let at = rng.range(0, data.len() as u64) as usize;
        let end = (at + 4096).min(data.len());
        data[at..end].copy_from_slice(&random_bytes(end - at, rng.next_u64()));
        write(&big(i), &data, written);
    }
    let small = root.join("klein");
    for _ in 0..12 {
        let i = rng.range(0, 200);
        let len = rng.range(100, 20_000) as usize;
        write(
            &small.join(format!("datei-{i}.txt")),
            &random_bytes(len, rng.next_u64()),
            written,
        );
    }
    if rng.range(0, 4) == 0 {
        let _ = std::fs::remove_file(big(rng.range(0, 6)));
    }
}

/// The newest version's hash of every file whose newest version is not a deletion marker
/// (folders, entries since issue 12, have no content hash).
fn newest_of(list: &[Value]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|e| {
            let v = &e["versions"][0];
            (v["deleted"].as_bool() != Some(true) && v["kind"] != "dir").then(|| {
                (
                    e["path"].as_str().unwrap().to_owned(),
                    v["hash"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect()
}

/// Files in the chunk store's temp folder.
fn temp_files(server: &Server) -> Vec<PathBuf> {
    match std::fs::read_dir(server.data_dir().join("chunks/tmp")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Acceptance 3: the server is killed with SIGKILL at random moments (30–400 ms into a run) while
/// an agent uploads and commits a changing tree, until 20 kills have interrupted a running backup,
/// and started again on the same port each time; the agent is run again until it succeeds. Afterwards every version that was acknowledged (listed after an agent run
/// that exited 0) is still there and restores identical, and the server's temp files of
/// interrupted chunk writes are gone after each start.
///
/// The seed of the kill delays and tree changes is printed on failure; `ASGARD_CRASH_SEED=<n>`
/// repeats a run. Runtime: about 50 s on 2 busy cores (about 25 rounds, 380 versions to restore).
#[test]
fn server_killed_during_uploads_and_commits_loses_nothing_acknowledged() {
    const KILLS: usize = 20;
    let seed: u64 = std::env::var("ASGARD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_240_404);
    let why = format!("(seed {seed}; repeat with ASGARD_CRASH_SEED={seed})");
    let mut rng = Rng::new(seed);
    // No version is ever pruned, so every acknowledged one must still be there at the end.
    let mut server = Server::start_with_config(Some("keep_versions: 1000\n"));
    let agent = Agent::new("absturz", &server);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("daten");
    std::fs::create_dir_all(root.join("klein")).unwrap();
    let mut written = HashSet::new();
    for i in 0..6 {
        let data = random_bytes(3 << 20, rng.next_u64());
        write(&root.join(format!("gross-{i}.bin")), &data, &mut written);
    }
    agent.backup(&root);
    let mut acknowledged = retained_versions(&agent.list(None));

    // Kills that find the agent already done do not count: the rounds go on until KILLS of them
    // interrupted a running backup (a kill during its uploads or commits).
    let mut interrupted = 0;
    let mut round = 0;
    while interrupted < KILLS {
        round += 1;
        assert!(
            round <= 5 * KILLS,
            "only {interrupted} of {} kills interrupted a backup {why}",
            round - 1
        );
        mutate(&root, &mut rng, &mut written);
        let mut run = agent
            .command()
            .arg("backup")
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.range(30, 400)));
        let mut child = server.child.take().expect("server runs");
        child.kill().unwrap();
        child.wait().unwrap();
        let status = run.wait().unwrap();
        if !status.success() {
            interrupted += 1;
        }

        server.restart_stopped();
        let leftovers = temp_files(&server);
        assert!(
            leftovers.is_empty(),
            "round {round}: temp files survived the restart: {leftovers:?} {why}"
        );
        // The agent tries again until a run succeeds (the first retry should).
        let mut tries = 0;
        loop {
            let out = agent.run(["backup".as_ref(), root.as_os_str()]);
            if out.status.success() {
                break;
            }
            tries += 1;
            assert!(
                tries < 3,
                "round {round}: the agent fails against the restarted server: {} {why}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let list = agent.list(None);
        // After a run that exited 0, the server's newest version of every file is its content,
        // including what a run that ended just before the kill acknowledged (the agent's files
        // cache would not send a lost one again).
        let newest = newest_of(&list);
        for (p, (data, _)) in snapshot(&root) {
            let path = root.join(&p).to_str().unwrap().to_owned();
            assert_eq!(
                newest.get(&path),
                Some(&hash_hex(&data)),
                "round {round}: the newest version of {path} is not its content {why}"
            );
        }
        let now = retained_versions(&list);
        for (id, v) in &acknowledged {
            assert_eq!(
                now.get(id),
                Some(v),
                "round {round}: acknowledged version {id} of {} was lost {why}",
                v.0
            );
        }
        acknowledged = now;
    }
    eprintln!("crash test: {round} rounds, {interrupted} interrupted backups {why}");
    let retained = assert_store_sound(&server, &agent, &format!("after the crashes {why}"));
    for (id, (path, hash)) in &acknowledged {
        assert_eq!(
            retained.get(id),
            Some(&(path.clone(), hash.clone())),
            "acknowledged version {id} {why}"
        );
        assert!(
            written.contains(hash),
            "version {id} of {path} holds content the test never wrote {why}"
        );
    }
    // The last acknowledged state is the tree as it is now.
    let latest = work.path().join("latest");
    agent.ok([
        "restore".as_ref(),
        root.as_os_str(),
        "--to".as_ref(),
        latest.as_os_str(),
    ]);
    let want = snapshot(&root);
    let got = snapshot(&latest.join("daten"));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{why}"
    );
    for (p, (data, _)) in &want {
        assert!(got[p].0 == *data, "{} differs {why}", p.display());
    }
}

/// Hard-links every file below `from` into the same place below `to` (the chunk store).
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            link_tree(&e.path(), &target);
        } else {
            std::fs::hard_link(e.path(), &target).unwrap();
        }
    }
}

/// Acceptance 5: a `db-backup` taken while a backup of 240 MiB runs (through the admin socket, as
/// the server holds the lock) is a valid database with every version committed before it started:
/// restored into a fresh data dir with the chunks, a server on it lists all of them, nothing that
/// the live server does not have, and restores them identical. Runtime: about 15–25 s.
#[test]
fn db_backup_during_a_running_backup_holds_every_version_committed_before() {
    let mut server = Server::start_with_config(Some("db_backup_interval: 0s\n"));
    let agent = Agent::new("sicherung", &server);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("daten");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..120u64 {
        std::fs::write(
            root.join(format!("teil-{i:03}.bin")),
            random_bytes(2 << 20, 5000 + i),
        )
        .unwrap();
    }
    // Log in first; while the backup runs, the test lists through the API, not with a second agent
    // process (two agent processes at once race on the agent's state file).
    agent.ok(["login"]);
    let api = Api::new(&server);
    let token = agent.token();
    let api_list = || -> Vec<Value> {
        let (status, body) = api.get("/api/list?limit=5000", Some(&token));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let page: Value = serde_json::from_slice(&body).unwrap();
        assert!(page.get("next_cursor").is_none(), "one page holds all");
        page["files"].as_array().unwrap().clone()
    };
    let mut run = agent
        .command()
        .arg("backup")
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let before = loop {
        let list = api_list();
        if !list.is_empty() {
            break list;
        }
        if let Some(st) = run.try_wait().unwrap() {
            let out = run.wait_with_output().unwrap();
            panic!(
                "the backup ended ({st}) before any version was listed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let copy = work.path().join("metadaten.redb");
    let out = server_admin_ok([
        "db-backup".as_ref(),
        "--json".as_ref(),
        "--to".as_ref(),
        copy.as_os_str(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
    ] as [&std::ffi::OsStr; 6]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["path"], copy.to_str().unwrap());
    assert!(
        run.try_wait().unwrap().is_none(),
        "the backup was no longer running when db-backup ended; the test would prove little"
    );
    let status = run.wait().unwrap();
    assert!(status.success());
    let live = retained_versions(&agent.list(None));
    let before = retained_versions(&before);
    assert!(
        live.len() > before.len(),
        "versions were committed after the copy"
    );
    server.stop();

    // A fresh data dir: the copy of the database, the chunks and the certificate (the agent has
    // pinned it), on the same port (the agent knows the server by its address).
    let fresh = tempfile::tempdir().unwrap();
    let data = fresh.path().join("data");
    link_tree(&server.data_dir().join("chunks"), &data.join("chunks"));
    link_tree(&server.data_dir().join("tls"), &data.join("tls"));
    server_admin_ok([
        "db-restore".as_ref(),
        "--from".as_ref(),
        copy.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ] as [&std::ffi::OsStr; 5]);
    let (child, url) = spawn_server(&data, None, server.addr()).expect("server on the copy");
    let restored_server = Server {
        child: Some(child),
        data: fresh,
        url,
        config: None,
    };
    let restored = retained_versions(&agent.list(None));
    for (id, v) in &before {
        assert_eq!(
            restored.get(id),
            Some(v),
            "version {id} committed before db-backup"
        );
    }
    for (id, v) in &restored {
        assert_eq!(
            live.get(id),
            Some(v),
            "version {id} of the copy is not live"
        );
    }
    // Every file the copy knows restores identical to the original.
    let out = work.path().join("zurueck");
    agent.ok([
        "restore".as_ref(),
        root.as_os_str(),
        "--to".as_ref(),
        out.as_os_str(),
    ]);
    let got = snapshot(&out.join("daten"));
    assert_eq!(got.len(), restored.len());
    for (p, (data, _)) in &got {
        assert!(
            std::fs::read(root.join(p)).unwrap() == *data,
            "{} differs",
            p.display()
        );
    }
    drop(restored_server);
}
