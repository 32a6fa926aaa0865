//! The restore pipeline (issue 5): many files restored at once, each distinct chunk fetched once,
//! all-zero chunks not at all, and a damaged chunk failing only the files that need it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use asgard_core::ChunkId;
use serde_json::json;

use asgard_e2e::*;

/// The newest file versions (not links) under `root`: their ids.
fn file_version_ids(agent: &Agent, root: &Path) -> Vec<u64> {
    agent
        .list(Some(root))
        .iter()
        .filter_map(|e| {
            e["versions"]
                .as_array()
                .unwrap()
                .iter()
                // Newest first; ids are opaque and say nothing about the order.
                .find(|v| v["kind"] == "file" && v["deleted"] == false)
                .and_then(|v| v["id"].as_u64())
        })
        .collect()
}

/// Every chunk reference (id, len) of these versions, from `POST /api/manifest`.
fn chunk_refs(server: &Server, token: &str, ids: &[u64]) -> Vec<(ChunkId, u32)> {
    let api = Api::new(server);
    let (status, body) =
        api.post_json("/api/manifest", Some(token), &json!({ "version_ids": ids }));
    assert_eq!(status, 200, "{body}");
    assert!(body["missing"].is_null(), "{body}");
    let mut out = Vec::new();
    for v in body["versions"].as_array().unwrap() {
        for c in v["chunks"].as_array().unwrap() {
            out.push((
                c["id"].as_str().unwrap().parse().unwrap(),
                c["len"].as_u64().unwrap() as u32,
            ));
        }
    }
    out
}

fn is_zero_chunk(id: &ChunkId, len: u32) -> bool {
    *id == ChunkId::of(&vec![0u8; len as usize])
}

/// Every entry below `root`: relative path → file content and mtime, or link target.
fn tree(root: &Path) -> BTreeMap<PathBuf, (Option<Vec<u8>>, Option<PathBuf>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if md.is_dir() {
                stack.push(p);
            } else if md.is_symlink() {
                out.insert(rel, (None, Some(std::fs::read_link(&p).unwrap())));
            } else {
                out.insert(rel, (Some(std::fs::read(&p).unwrap()), None));
            }
        }
    }
    out
}

/// Temp files the restore left behind below `dir`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    tree(dir)
        .into_keys()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".asgard-restore-"))
        })
        .collect()
}

/// Acceptance of the restore pipeline: a tree of many small files, a few large ones, content
/// repeated across files and within a file, a sparse file, a non-UTF-8 name and symbolic links
/// comes back byte-identical (with mtimes); every distinct non-zero chunk is fetched exactly once
/// (agent summary and server counter agree), and no all-zero chunk is fetched at all.
#[test]
fn mixed_tree_restores_identical_fetching_each_chunk_once() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("daten");
    std::fs::create_dir_all(root.join("klein/tief")).unwrap();
    std::fs::create_dir_all(root.join("gross")).unwrap();
    // Many small files; every seventh has the content of the first (shared across files).
    let first = random_bytes(9_000, 1);
    for i in 0..400u64 {
        let sub = if i % 3 == 0 { "klein/tief" } else { "klein" };
        let content = if i % 7 == 0 {
            first.clone()
        } else {
            random_bytes((i as usize * 97) % 20_000, 100 + i)
        };
        std::fs::write(root.join(sub).join(format!("f{i:03}.txt")), content).unwrap();
    }
    std::fs::write(root.join("klein/leer"), b"").unwrap();
    // Large files: one, another that begins with it, one that repeats a block within itself.
    let big = random_bytes(6 << 20, 2);
    std::fs::write(root.join("gross/a.bin"), &big).unwrap();
    let mut longer = big.clone();
    longer.extend(random_bytes(1 << 20, 3));
    std::fs::write(root.join("gross/b.bin"), &longer).unwrap();
    let block = random_bytes(3 << 20, 4);
    let mut repeated = Vec::new();
    for _ in 0..3 {
        repeated.extend_from_slice(&block);
    }
    std::fs::write(root.join("gross/c.bin"), &repeated).unwrap();
    // Sparse: 40 MiB, data at a few places (it ends with data).
    let sparse = root.join("gross/disk.img");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&sparse).unwrap();
        f.set_len(40 << 20).unwrap();
        for (off, seed) in [(0u64, 5u64), (17 << 20, 6), ((40 << 20) - 5000, 7)] {
            f.seek(SeekFrom::Start(off)).unwrap();
            f.write_all(&random_bytes(5000, seed)).unwrap();
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9-\xff.bin");
        std::fs::write(root.join("klein").join(name), random_bytes(3000, 8)).unwrap();
        std::os::unix::fs::symlink("../klein/f001.txt", root.join("gross/link")).unwrap();
        std::os::unix::fs::symlink("nirgendwo", root.join("klein/dangling")).unwrap();
    }
    let mut t = 1_600_000_000;
    for p in snapshot(&root).keys() {
        set_mtime(&root.join(p), t);
        t += 61;
    }
    let before = snapshot(&root);
    let before_tree = tree(&root);
    agent.backup(&root);

    // What a restore must fetch: the distinct chunks that are not all zeros.
    let refs = chunk_refs(&server, &agent.token(), &file_version_ids(&agent, &root));
    let distinct: HashSet<(ChunkId, u32)> = refs.iter().copied().collect();
    let nonzero: HashSet<ChunkId> = distinct
        .iter()
        .filter(|(id, len)| !is_zero_chunk(id, *len))
        .map(|(id, _)| *id)
        .collect();
    let zero_refs = refs.iter().filter(|(i, l)| is_zero_chunk(i, *l)).count();
    assert!(
        zero_refs > 10,
        "the sparse file has zero chunks: {zero_refs}"
    );
    assert!(
        refs.len() > distinct.len() + zero_refs,
        "the tree shares chunks beyond the zero ones: {} refs, {} distinct",
        refs.len(),
        distinct.len()
    );

    let served_before = server.metric("asgard_chunks_served_total");
    let out = tempfile::tempdir().unwrap();
    let (code, summary, stderr) = agent.restore_json(&root, out.path(), &[]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    let restored = out.path().join("daten");
    assert_eq!(snapshot(&restored), before, "contents and mtimes");
    assert_eq!(tree(&restored), before_tree, "files and link targets");
    assert_eq!(num(&summary, "files_restored") as usize, before_tree.len());
    assert_eq!(num(&summary, "errors"), 0);
    assert_eq!(
        num(&summary, "chunks_fetched") as usize,
        nonzero.len(),
        "each distinct non-zero chunk once: {summary}"
    );
    assert_eq!(
        (server.metric("asgard_chunks_served_total") - served_before) as usize,
        nonzero.len(),
        "the server sent each distinct non-zero chunk once: {summary}"
    );
    assert!(num(&summary, "chunks_zero") >= 1, "{summary}");
    assert!(
        num(&summary, "requests") < nonzero.len() as u64 / 4,
        "small files share requests: {summary}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(restored.join("gross/disk.img")).unwrap();
        assert!(
            meta.blocks() * 512 < 8 << 20,
            "the sparse file comes back sparse: {} bytes allocated",
            meta.blocks() * 512
        );
    }
    assert!(leftovers(out.path()).is_empty());

    // In windows of 40 files: a chunk met again in a later window is copied from the file an
    // earlier window restored, not fetched again.
    let config = dir.path().join("agent.yaml");
    std::fs::write(&config, "restore:\n  window_files: 40\n").unwrap();
    let served_before = server.metric("asgard_chunks_served_total");
    let small = tempfile::tempdir().unwrap();
    let config_arg = config.to_str().unwrap();
    let (code, summary, stderr) =
        agent.restore_json(&root, small.path(), &["--config", config_arg]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    assert_eq!(tree(&small.path().join("daten")), before_tree);
    assert_eq!(snapshot(&small.path().join("daten")), before);
    assert_eq!(
        num(&summary, "chunks_fetched") as usize,
        nonzero.len(),
        "{summary}"
    );
    assert!(num(&summary, "chunks_copied") > 0, "{summary}");
    assert_eq!(
        (server.metric("asgard_chunks_served_total") - served_before) as usize,
        nonzero.len()
    );

    // Again into the same place: everything is up to date, nothing is fetched.
    let served_before = server.metric("asgard_chunks_served_total");
    let (code, summary, stderr) = agent.restore_json(&root, out.path(), &[]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    assert_eq!(num(&summary, "files_restored"), 0, "{summary}");
    assert_eq!(
        num(&summary, "up_to_date") as usize,
        before_tree.len(),
        "{summary}"
    );
    assert_eq!(num(&summary, "chunks_fetched"), 0, "{summary}");
    assert_eq!(server.metric("asgard_chunks_served_total"), served_before);
}

/// A chunk damaged in (or lost from) the server's store fails exactly the files that need it: they are reported,
/// the restore exits 1, an existing file at such a destination stays as it was, no temp file is
/// left behind, and every other file is restored.
#[test]
fn damaged_chunk_fails_only_its_files_and_replaces_nothing() {
    let mut server = Server::start();
    let agent = Agent::new("alice", &server);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("daten");
    std::fs::create_dir_all(&root).unwrap();
    let bad = random_bytes(40_000, 11);
    std::fs::write(root.join("kaputt1.bin"), &bad).unwrap();
    std::fs::write(root.join("kaputt2.bin"), &bad).unwrap();
    let gone = random_bytes(20_000, 12);
    std::fs::write(root.join("weg.bin"), &gone).unwrap();
    for i in 0..20u64 {
        std::fs::write(
            root.join(format!("gut{i:02}.bin")),
            random_bytes(30_000, 20 + i),
        )
        .unwrap();
    }
    std::fs::write(root.join("gross.bin"), random_bytes(3 << 20, 50)).unwrap();
    agent.backup(&root);

    server.stop();
    damage_chunk(&server.data_dir(), &ChunkId::of(&bad).to_hex());
    lose_chunk(&server.data_dir(), &ChunkId::of(&gone).to_hex());
    server.restart_stopped();

    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("daten");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("kaputt2.bin"), b"old content").unwrap();
    let (code, summary, stderr) = agent.restore_json(&root, out.path(), &["--overwrite"]);
    assert_eq!(code, 1, "{summary}\n{stderr}");
    assert_eq!(num(&summary, "errors"), 3, "{summary}\n{stderr}");
    assert_eq!(num(&summary, "files_restored"), 21, "{summary}\n{stderr}");
    assert!(stderr.contains("kaputt1.bin"), "{stderr}");
    assert!(stderr.contains("beschädigt"), "{stderr}");
    // A chunk the store lost arrives as a MISSING frame.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("weg.bin") && l.contains("nicht erhalten")),
        "{stderr}"
    );
    assert!(!target.join("kaputt1.bin").exists());
    assert!(!target.join("weg.bin").exists());
    assert_eq!(
        std::fs::read(target.join("kaputt2.bin")).unwrap(),
        b"old content"
    );
    assert!(
        leftovers(out.path()).is_empty(),
        "{:?}",
        leftovers(out.path())
    );
    for i in 0..20u64 {
        let name = format!("gut{i:02}.bin");
        assert_eq!(
            std::fs::read(target.join(&name)).unwrap(),
            std::fs::read(root.join(&name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(
        std::fs::read(target.join("gross.bin")).unwrap(),
        std::fs::read(root.join("gross.bin")).unwrap()
    );
}

/// The batched endpoints keep users apart and bound their input: another user's versions are
/// "missing" in a manifest, another user's chunk refuses the whole fetch (404), a fetch answers in
/// frames in request order, and oversized requests are refused.
#[test]
fn manifest_and_fetch_are_per_user_and_bounded() {
    let server = Server::start();
    let alice = Agent::new("alice", &server);
    let bob = Agent::new("bob", &server);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    std::fs::create_dir_all(&root).unwrap();
    let (x, y) = (random_bytes(5000, 1), random_bytes(7000, 2));
    std::fs::write(root.join("x"), &x).unwrap();
    std::fs::write(root.join("y"), &y).unwrap();
    alice.backup(&root);
    bob.ok(["login"]);
    let ids = file_version_ids(&alice, &root);
    let api = Api::new(&server);

    let (status, body) = api.post_json(
        "/api/manifest",
        Some(&bob.token()),
        &json!({ "version_ids": ids }),
    );
    assert_eq!(status, 200);
    assert_eq!(body["versions"], json!([]));
    assert_eq!(body["missing"].as_array().unwrap().len(), 2);

    let (xid, yid) = (ChunkId::of(&x), ChunkId::of(&y));
    let req = json!({ "chunks": [yid.to_hex(), xid.to_hex()] });
    let (status, _) = api.post_json_bytes("/api/fetch", Some(&bob.token()), &req);
    assert_eq!(status, 404);
    let (status, body) = api.post_json_bytes("/api/fetch", Some(&alice.token()), &req);
    assert_eq!(status, 200);
    let mut decoder = asgard_core::frames::FrameDecoder::default();
    decoder.push(&body);
    let mut got = Vec::new();
    while let Some(f) = decoder.next_frame().unwrap() {
        match f {
            asgard_core::frames::Frame::Data { id, stored } => {
                let plain = asgard_core::stored::decode_verified(&stored, &id, 1 << 20).unwrap();
                got.push((id, plain));
            }
            other => panic!("{other:?}"),
        }
    }
    decoder.finish().unwrap();
    assert_eq!(got, vec![(yid, y), (xid, x)]);

    let too_many: Vec<String> = (0..asgard_core::protocol::MAX_FETCH_IDS + 1)
        .map(|_| xid.to_hex())
        .collect();
    let (status, _) = api.post_json_bytes(
        "/api/fetch",
        Some(&alice.token()),
        &json!({ "chunks": too_many }),
    );
    assert_eq!(status, 400);
    let (status, _) = api.post_json(
        "/api/manifest",
        Some(&alice.token()),
        &json!({ "version_ids": vec![1; asgard_core::protocol::MAX_MANIFEST_IDS + 1] }),
    );
    assert_eq!(status, 400);
    let (status, _) = api.post_json("/api/fetch", None, &json!({ "chunks": [] }));
    assert_eq!(status, 401);
}
