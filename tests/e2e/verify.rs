//! Integrity: `asgard-server verify` finds damaged and missing chunks and the file versions they
//! affect; the next backup of an agent that still has the data heals them, although its files
//! cache says the files are unchanged.

use asgard_core::ChunkId;
use asgard_e2e::*;
use serde_json::Value;

/// `verify --json` on a stopped server's data dir: (exit code, report).
fn verify_json(server: &Server) -> (i32, Value) {
    let out = server_admin([
        "verify".as_ref(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
        "--json".as_ref(),
    ]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json printed no JSON ({e}):\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().or(v["id"].as_str()).unwrap().to_owned())
        .collect()
}

/// Acceptance 4: flip a byte in one stored chunk and delete another; `verify` reports both with
/// the affected versions and exits with 1; the next backup from the agent, whose files cache
/// claims every file unchanged, heals both because the login names the affected files; `verify`
/// is then clean and every file restores identical. About 5 s (one settle pause of 2.5 s, four
/// server starts).
#[test]
fn verify_reports_damage_and_the_next_backup_heals_it() {
    let mut server = Server::start();
    let agent = Agent::new("vera", &server);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("daten");
    std::fs::create_dir_all(root.join("unter")).unwrap();
    // Small files are one chunk each, whose id is the blake3 of the whole content.
    let flipped = random_bytes(6000, 11);
    let deleted = random_bytes(7000, 12);
    std::fs::write(root.join("flip.bin"), &flipped).unwrap();
    std::fs::write(root.join("unter/weg.bin"), &deleted).unwrap();
    std::fs::write(root.join("gross.bin"), random_bytes(3 << 20, 13)).unwrap();
    std::fs::write(root.join("notiz.txt"), "Grüße\n".repeat(300)).unwrap();
    let mut t = 1_600_000_000;
    for (p, _) in snapshot(&root) {
        set_mtime(&root.join(p), t);
        t += 60;
    }
    // The files cache records only files whose change time is safely older than the run.
    settle();
    let before = snapshot(&root);
    agent.backup(&root);
    let again = agent.backup(&root);
    assert_eq!(
        again["bytes_read"], 0,
        "the files cache covers every file: {again}"
    );

    server.stop();
    let flip_hex = ChunkId::of(&flipped).to_hex();
    let gone_hex = ChunkId::of(&deleted).to_hex();
    damage_chunk(&server.data_dir(), &flip_hex);
    lose_chunk(&server.data_dir(), &gone_hex);

    let (code, report) = verify_json(&server);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        ids(&report["damaged"]),
        vec![flip_hex.clone()],
        "{report:#}"
    );
    assert_eq!(
        ids(&report["missing"]),
        vec![gone_hex.clone()],
        "{report:#}"
    );
    let mut affected: Vec<(String, String, String)> = report["affected_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert!(v["version_id"].as_u64().is_some(), "{v}");
            (
                v["user"].as_str().unwrap().to_owned(),
                v["device"].as_str().unwrap().to_owned(),
                v["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    affected.sort();
    let path_of = |rel: &str| root.join(rel).to_str().unwrap().to_owned();
    assert_eq!(
        affected,
        vec![
            ("vera".into(), "testhost".into(), path_of("flip.bin")),
            ("vera".into(), "testhost".into(), path_of("unter/weg.bin")),
        ]
    );

    // The text report is German and lists the versions too; an earlier run's marks are reported
    // again.
    let out = server_admin([
        "verify".as_ref(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Beschädigter Chunk") && text.contains("Fehlender Chunk"),
        "{text}"
    );
    assert!(text.contains(&path_of("unter/weg.bin")), "{text}");
    // `stats` shows the bad chunks and the last verify result.
    let out = server_admin([
        "stats".as_ref(),
        "--json".as_ref(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["bad_chunks"], 2, "{stats}");
    assert_eq!(stats["last_verify"]["bad_chunks"], 2, "{stats}");

    server.restart_stopped();
    // While the server runs, verify goes through the server's admin channel: same findings.
    let out = server_admin([
        "verify".as_ref(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&path_of("unter/weg.bin")), "{text}");

    let heal = agent.backup(&root);
    let small = (flipped.len() + deleted.len()) as u64;
    assert_eq!(
        heal["bytes_read"], small,
        "only the named files are read again: {heal}"
    );
    assert!(heal["bytes_sent"].as_u64().unwrap() > 0, "{heal}");
    assert_eq!(heal["versions_created"], 0, "{heal}");

    server.stop();
    let (code, report) = verify_json(&server);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["bad_chunks"], 0);
    assert!(report["affected_versions"].as_array().unwrap().is_empty());
    let (file, offset, len) = chunk_location(&server.data_dir(), &flip_hex);
    let segment = std::fs::read(file).unwrap();
    assert_eq!(
        segment[offset as usize + 1..(offset + len) as usize],
        flipped[..],
        "healed bytes are stored raw or compressed; this random content is raw"
    );

    server.restart_stopped();
    let out = work.path().join("zurueck");
    agent.ok([
        "restore".as_ref(),
        root.as_os_str(),
        "--to".as_ref(),
        out.as_os_str(),
    ]);
    assert_same_tree(&before, &out.join("daten"));
}
