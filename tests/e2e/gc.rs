//! Retention and garbage collection end to end: the `gc` and `user` commands of the server, and a
//! stress test of several agents backing up while the server's own GC runs in a tight loop with a
//! zero grace period.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use asgard_e2e::*;

fn gc_json(data_dir: &str, extra: &[&str]) -> Value {
    let mut args = vec!["gc", "--data-dir", data_dir, "--json"];
    args.extend_from_slice(extra);
    let out = server_admin(&args);
    assert!(out.status.success(), "gc failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

/// Reads the server's stderr so that its log can never fill the pipe; keeps the last 100,000 lines.
fn drain_stderr(server: &mut Server) -> Arc<Mutex<Vec<String>>> {
    let tail = Arc::new(Mutex::new(Vec::new()));
    if let Some(err) = server.child.as_mut().and_then(|c| c.stderr.take()) {
        let t = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut t = t.lock().unwrap();
                t.push(line);
                if t.len() > 100_000 {
                    t.remove(0);
                }
            }
        });
    }
    tail
}

fn restore_version(agent: &Agent, file: &Path, id: u64, to: &Path) -> Vec<u8> {
    try_restore(agent, file, id, to).unwrap_or_else(|e| panic!("{e}"))
}

/// Restores one version into `to`; the agent's output when it fails.
fn try_restore(agent: &Agent, file: &Path, id: u64, to: &Path) -> Result<Vec<u8>, String> {
    let id = id.to_string();
    let out = agent.restore_to(file, to, &["--version", &id]);
    if !out.status.success() {
        return Err(format!(
            "restore of version {id} of {} failed:\n{}{}",
            file.display(),
            text(&out.stdout),
            text(&out.stderr)
        ));
    }
    Ok(std::fs::read(to.join(file.file_name().unwrap())).unwrap())
}

/// `gc` runs through a running server (dry run); offline, `user set-keep` lowers one
/// user's retention, two `gc --grace 0s` passes prune and then free exactly the released chunks,
/// and what is left restores.
#[test]
fn gc_and_user_commands_prune_and_free_offline() {
    let mut server = Server::start();
    let anna = Agent::new("anna", &server);
    let bert = Agent::new("bert", &server);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("a");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("f.bin");
    // Small random files: one chunk each, nothing shared.
    let contents: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(20_000, 100 + i)).collect();
    for c in &contents {
        std::fs::write(&f, c).unwrap();
        anna.backup(&dir);
    }
    let bert_dir = work.path().join("b");
    std::fs::create_dir_all(&bert_dir).unwrap();
    std::fs::write(bert_dir.join("g.bin"), &contents[0]).unwrap();
    std::fs::write(bert_dir.join("h.bin"), random_bytes(20_000, 7)).unwrap();
    bert.backup(&bert_dir);
    let d = server.data_dir();
    let d = d.to_str().unwrap().to_owned();

    // Beside a running server, gc runs through the server's admin channel.
    let online = server_admin(["gc", "--dry-run", "--json", "--data-dir", &d]);
    assert!(online.status.success(), "{}", text(&online.stderr));
    let report: serde_json::Value = serde_json::from_slice(&online.stdout).unwrap();
    assert_eq!(report["dry_run"], true, "{report}");
    assert_eq!(report["chunks_freed"], 0, "{report}");

    server.stop();
    let (_, files_before) = server.store_usage();
    assert_eq!(files_before, 5);
    let out = server_admin(["user", "set-keep", "anna", "1", "--data-dir", &d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server_admin(["user", "list", "--data-dir", &d]);
    let list = text(&out.stdout);
    assert!(
        list.lines()
            .any(|l| l.starts_with("anna\t") && l.ends_with("keep_versions 1")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("bert\t") && l.contains("keep_versions 4 (Standard)")),
        "{list}"
    );
    let out = server_admin(["user", "set-keep", "niemand", "2", "--data-dir", &d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("niemand"));

    let dry = gc_json(&d, &["--dry-run", "--grace", "0s"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["versions_pruned"], 3);
    let first = gc_json(&d, &["--grace", "0s"]);
    assert_eq!(first["versions_pruned"], 3, "{first}");
    // contents[0] is still bert's: two of anna's three old chunks are released.
    assert_eq!(first["candidates_marked"], 2, "{first}");
    assert_eq!(first["chunks_freed"], 0, "{first}");
    let second = gc_json(&d, &["--grace", "0s"]);
    assert_eq!(second["chunks_freed"], 2, "{second}");
    assert_eq!(server.store_usage().1, files_before - 2);
    let third = gc_json(&d, &["--grace", "0s"]);
    assert_eq!(third["chunks_freed"], 0, "{third}");
    let human = server_admin(["gc", "--data-dir", &d]);
    assert!(
        text(&human.stdout).contains("Chunks freigegeben: 0"),
        "{}",
        text(&human.stdout)
    );
    let out = server_admin(["user", "clear-keep", "anna", "--data-dir", &d]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    server.restart_stopped();
    let list = anna.list(Some(&f));
    let vs = list[0]["versions"].as_array().unwrap();
    assert_eq!(vs.len(), 1, "{vs:#?}");
    let to = work.path().join("r1");
    let id = vs[0]["id"].as_u64().unwrap();
    assert!(restore_version(&anna, &f, id, &to) == contents[3]);
    let g = bert_dir.join("g.bin");
    let gid = bert.list(Some(&g))[0]["versions"][0]["id"]
        .as_u64()
        .unwrap();
    assert!(restore_version(&bert, &g, gid, &work.path().join("r2")) == contents[0]);
}

/// What one agent of the stress test did.
#[derive(Default)]
struct Log {
    /// Every content written, by hash: its length and seed for [`random_bytes`].
    contents: HashMap<String, (usize, u64)>,
    /// Every hash ever written to a path (file name).
    written: HashMap<String, HashSet<String>>,
    /// The tree (name → hash) at the last successful backup.
    last_ok: Option<BTreeMap<String, String>>,
    backups_ok: u32,
    /// Failed backups: each must be a refused commit (`missing_chunks`), nothing else.
    refused: u32,
}

/// Acceptance 2: four agents (three users, one of them with two devices) back up changing trees in
/// a loop for a bounded time — files rewritten with content shared across agents or new, added and
/// deleted — while the server's own GC runs every 100 ms with a grace period of zero and
/// `keep_versions: 2`, so chunks are released, marked and removed all the time while backups
/// reuse them. Afterwards every retained version of every agent restores identical to what was
/// written, every listed version's content is one written to that path, and the newest versions
/// match the last successful backup. A backup may be refused with `missing_chunks` when the GC
/// removed a chunk between `check` and `commit` (with a zero grace no lease protects it); any
/// other failure fails the test. Runtime: about 20 s of load plus the restores (~40 s on 2 cores).
#[test]
fn backups_while_gc_runs_with_zero_grace_lose_nothing() {
    let mut server =
        Server::start_keeping_log(Some("keep_versions: 1\ngc_grace: 0s\ngc_interval: 5ms\n"));
    let server_log = drain_stderr(&mut server);
    let mut agents = [
        Agent::new("anna", &server),
        Agent::new("anna", &server),
        Agent::new("bert", &server),
        Agent::new("carl", &server),
    ];
    agents[1].device = "zweitgeraet".into();
    // anna's second device is approved by her first.
    agents[0].ok(["login"]);
    agents[1].join(&agents[0]);
    // A pool of contents every agent draws from (dedupe across users and devices); ~3 chunks each.
    let pool: Vec<(usize, u64)> = (0..40).map(|i| (250_000, 5000 + i)).collect();
    let load = Duration::from_secs(20);
    let start = Instant::now();
    let work = tempfile::tempdir().unwrap();

    let logs: Vec<Log> = std::thread::scope(|s| {
        let handles: Vec<_> = agents
            .iter()
            .enumerate()
            .map(|(n, agent)| {
                let pool = &pool;
                let root = work.path().join(format!("agent{n}"));
                s.spawn(move || stress_agent(agent, &root, pool, n as u64, start + load))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let full_log = || server_log.lock().unwrap().join("\n");
    let tail = || {
        let t = full_log();
        let start = t.len().saturating_sub(6000);
        t[t.ceil_char_boundary(start)..].to_owned()
    };
    for (n, log) in logs.iter().enumerate() {
        eprintln!(
            "agent {n}: {} backups ok, {} refused with missing_chunks",
            log.backups_ok, log.refused
        );
        assert!(
            log.backups_ok >= 3,
            "agent {n} made too little progress\n{}",
            tail()
        );
    }
    let log = full_log();
    assert!(
        log.contains("garbage collection pass done"),
        "the GC loop ran and freed chunks:\n{}",
        tail()
    );
    // The server notices a version referencing a chunk the index lacks when it counts the
    // reference (at commit, or when retention drops it later): such a version is a lost chunk even
    // if it is pruned before the end. A correct run logs no error at all.
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR"))
        .take(5)
        .collect();
    assert!(
        errors.is_empty(),
        "the server logged errors:\n{}",
        errors.join("\n")
    );

    for (n, (agent, log)) in agents.iter().zip(&logs).enumerate() {
        let root = work.path().join(format!("agent{n}"));
        let last = log.last_ok.as_ref().expect("a successful final backup");
        let list = agent.list(Some(&root));
        let mut seen = HashSet::new();
        for e in &list {
            // Folders are entries too (issue 12); this test is about the files' content.
            if e["versions"][0]["kind"] == "dir" {
                continue;
            }
            let path = PathBuf::from(e["path"].as_str().unwrap());
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            seen.insert(name.clone());
            let versions = e["versions"].as_array().unwrap();
            let content: Vec<&Value> = versions.iter().filter(|v| v["deleted"] != true).collect();
            // keep_versions 1 counts content versions; a rewrite with the same content is a
            // metadata-only version on top (issue 12), which retention does not charge.
            let heads = content.iter().filter(|v| v["meta_only"] != true).count();
            assert!(heads <= 1, "keep_versions 1: {versions:#?}");
            // Newest first: the newest version is what the last successful backup saw.
            match last.get(&name) {
                Some(h) => assert_eq!(versions[0]["hash"].as_str(), Some(h.as_str()), "{name}"),
                None => assert_eq!(versions[0]["deleted"], true, "{name} was deleted"),
            }
            for v in content {
                let hash = v["hash"].as_str().unwrap();
                assert!(
                    log.written[&name].contains(hash),
                    "agent {n}: {name} has a version never written there"
                );
                let to = work
                    .path()
                    .join(format!("r{n}-{}", v["id"].as_u64().unwrap()));
                let got = try_restore(agent, &path, v["id"].as_u64().unwrap(), &to)
                    .unwrap_or_else(|e| panic!("agent {n}: {e}\nserver log:\n{}", tail()));
                let (len, seed) = log.contents[hash];
                assert!(
                    got == random_bytes(len, seed),
                    "agent {n}: {name} restores different bytes"
                );
            }
        }
        for name in last.keys() {
            assert!(seen.contains(name), "agent {n}: {name} is not listed");
        }
    }

    // And verify, through the running server, finds every referenced chunk present and intact.
    let d = server.data_dir();
    let out = server_admin(["verify", "--data-dir", d.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify after the stress test:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// One agent's loop: change the tree, back it up, record what a successful backup saw. Ends with
/// backups until one succeeds.
///
/// Each change rewrites three 3 MB filler files with new bytes, so that a backup flushes and
/// commits in several batches (the agent flushes every 8 MB), and *moves* a content from one file
/// to another: the commit of one batch releases the moved content's chunks (keep_versions 1), and
/// the `check` of a later batch finds them present but unreferenced, while the GC loop is after
/// them. Content drawn from a pool shared by all agents makes dedupe across users matter.
fn stress_agent(agent: &Agent, root: &Path, pool: &[(usize, u64)], n: u64, until: Instant) -> Log {
    let mut rng = Rng::new(0x5DEE_CE66_D1CE_4E5B ^ (n + 1).wrapping_mul(0x9E37_79B9));
    let mut log = Log::default();
    std::fs::create_dir_all(root).unwrap();
    let mut next_file = 0u32;
    let mut fresh = 0u64;
    let put = |log: &mut Log, name: &str, (len, seed): (usize, u64)| {
        let data = random_bytes(len, seed);
        let hash = hash_hex(&data);
        std::fs::write(root.join(name), &data).unwrap();
        log.written
            .entry(name.to_owned())
            .or_default()
            .insert(hash.clone());
        log.contents.insert(hash, (len, seed));
    };
    let mut new_content = |rng: &mut Rng, big: bool| {
        if !big && rng.range(0, 10) < 6 {
            pool[rng.range(0, pool.len() as u64) as usize]
        } else {
            fresh += 1;
            let len = if big {
                3 << 20
            } else {
                150_000 + rng.range(0, 100_000) as usize
            };
            (len, 1_000_000 * (n + 1) + fresh)
        }
    };
    for _ in 0..6 {
        let name = format!("f{next_file}.bin");
        next_file += 1;
        let c = new_content(&mut rng, false);
        put(&mut log, &name, c);
    }
    let tree = |root: &Path| -> BTreeMap<String, String> {
        std::fs::read_dir(root)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let data = std::fs::read(e.path()).unwrap();
                (e.file_name().to_str().unwrap().to_owned(), hash_hex(&data))
            })
            .collect()
    };
    let mut tries_after_deadline = 0;
    let mut attempts = 0u32;
    loop {
        let out = agent.run(["backup".as_ref(), "--json".as_ref(), root.as_os_str()]);
        let failed = !out.status.success();
        if failed {
            let err = text(&out.stderr);
            assert!(
                err.contains("Dem Server fehlen Datenblöcke"),
                "agent {n}: a backup failed for another reason than a refused commit:\n{err}"
            );
            log.refused += 1;
        } else {
            log.backups_ok += 1;
            log.last_ok = Some(tree(root));
        }
        // The load runs for a fixed time, but on a busy machine each agent goes on until it has
        // made its three successful backups (bounded by the attempt count below), so progress
        // is asserted by count, not by wall-clock time.
        attempts += 1;
        assert!(
            attempts < 400,
            "agent {n}: only {} backups succeeded in {attempts} attempts",
            log.backups_ok
        );
        if Instant::now() >= until && log.backups_ok >= 3 {
            if !failed {
                return log;
            }
            tries_after_deadline += 1;
            assert!(
                tries_after_deadline < 20,
                "agent {n}: no backup succeeds any more"
            );
            continue;
        }
        for k in 0..3 {
            let c = new_content(&mut rng, true);
            put(&mut log, &format!("fill{k}.bin"), c);
        }
        let current = tree(root);
        let mut names: Vec<String> = current
            .keys()
            .filter(|k| !k.starts_with("fill"))
            .cloned()
            .collect();
        // Move a content from one file to another; the source gets new content.
        let from = names[rng.range(0, names.len() as u64) as usize].clone();
        let to = names[rng.range(0, names.len() as u64) as usize].clone();
        if from != to {
            let moved = log.contents[&current[&from]];
            put(&mut log, &to, moved);
            let c = new_content(&mut rng, false);
            put(&mut log, &from, c);
        }
        if rng.range(0, 10) < 3 {
            let name = format!("f{next_file}.bin");
            next_file += 1;
            let c = new_content(&mut rng, false);
            put(&mut log, &name, c);
            names.push(name);
        }
        if names.len() > 4 && rng.range(0, 10) < 3 {
            let name = names.remove(rng.range(0, names.len() as u64) as usize);
            std::fs::remove_file(root.join(name)).unwrap();
        }
    }
}
