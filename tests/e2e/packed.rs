//! The packed chunk store under crashes: the server is killed with SIGKILL while garbage
//! collection compacts its segments, again and again; afterwards `verify` is clean and every
//! retained version restores byte-identical.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use asgard_e2e::*;

/// Rewrites `n` of the small files with new random content.
fn mutate(root: &Path, rng: &mut Rng, n: usize) {
    for _ in 0..n {
        let i = rng.range(0, 80);
        let len = rng.range(2_000, 12_000) as usize;
        std::fs::write(
            root.join(format!("datei-{i}.txt")),
            random_bytes(len, rng.next_u64()),
        )
        .unwrap();
    }
}

/// Starts `asgard-server gc --json` on the server's data dir (through its admin socket).
fn gc(server: &Server) -> std::process::Child {
    server_admin_command(["gc", "--json", "--data-dir"])
        .arg(server.data_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Small segments and a high compaction threshold give every GC pass segments to compact;
/// `keep_versions: 2` with a quarter of the small files rewritten per round releases chunks all
/// the time. Each round backs up, starts `asgard-server gc` (through the admin socket, so the
/// server itself compacts) and kills the server 0–150 ms later (a shrinking window), until at least five kills cut a
/// pass off. Then two full passes, `verify` (clean), and every retained version restores exactly.
/// About 15 s.
#[test]
fn server_killed_during_compaction_loses_nothing() {
    let seed: u64 = std::env::var("ASGARD_PACKED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000_005);
    let why = format!("(seed {seed}; repeat with ASGARD_PACKED_SEED={seed})");
    let mut rng = Rng::new(seed);
    let mut server = Server::start_with_config(Some(
        "keep_versions: 2\nsegment_size: 65536\ncompact_below_percent: 90\ngc_grace: 0s\n",
    ));
    let agent = Agent::new("packer", &server);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("daten");
    std::fs::create_dir_all(&root).unwrap();
    mutate(&root, &mut rng, 200);
    agent.backup(&root);

    let mut interrupted = 0;
    let mut compacted = 0;
    let mut round = 0;
    // The kill comes 0..window ms after the pass starts; a pass that finished first narrows the
    // window, so the kills keep landing inside passes however fast this machine runs them.
    let mut window = 150;
    while interrupted < 5 {
        round += 1;
        assert!(round <= 60, "only {interrupted} kills cut a pass off {why}");
        mutate(&root, &mut rng, 20);
        agent.backup(&root);
        let pass = gc(&server);
        std::thread::sleep(Duration::from_millis(rng.range(0, window)));
        let mut child = server.child.take().expect("server runs");
        child.kill().unwrap();
        child.wait().unwrap();
        let out = pass.wait_with_output().unwrap();
        if out.status.success() {
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            compacted += report["segments_compacted"].as_u64().unwrap();
            window = (window * 2 / 3).max(5);
        } else {
            interrupted += 1;
        }
        server.restart_stopped();
    }
    for _ in 0..2 {
        let out = gc(&server).wait_with_output().unwrap();
        assert!(out.status.success(), "gc after the kills {why}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        compacted += report["segments_compacted"].as_u64().unwrap();
    }
    assert!(compacted > 0, "no pass compacted a segment {why}");
    eprintln!("{round} rounds, {interrupted} passes cut off, {compacted} segments compacted");

    let versions = assert_store_sound(&server, &agent, &format!("after {round} rounds {why}"));
    assert!(versions.len() >= 80, "{}", versions.len());
}
