//! The chunk store seen from outside: where a chunk's bytes lie (`asgard-server locate`, also
//! while the server runs, through its admin socket), damage done to them on purpose, and the check
//! after a torture test that nothing was lost.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Agent, Api, Server, hash_hex, retained_versions, server_admin, text};

/// Where a chunk's stored bytes are: (file, offset, length), from `asgard-server locate`.
pub fn chunk_location(data_dir: &Path, hex: &str) -> (PathBuf, u64, u64) {
    let out = server_admin([
        "locate".as_ref(),
        "--json".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
        hex.as_ref(),
    ] as [&OsStr; 5]);
    assert!(out.status.success(), "locate {hex}: {}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["chunks"][0];
    (
        PathBuf::from(c["path"].as_str().unwrap()),
        c["offset"].as_u64().unwrap(),
        c["len"].as_u64().unwrap(),
    )
}

/// The ids (hex) of every chunk in the store, from `asgard-server locate` (also while the server
/// runs, through its admin socket).
pub fn chunk_locations(data_dir: &Path) -> Vec<String> {
    let out = server_admin([
        "locate".as_ref(),
        "--json".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ] as [&OsStr; 4]);
    assert!(out.status.success(), "locate: {}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Flips one bit in the middle of a chunk's stored bytes (the server must be stopped).
pub fn damage_chunk(data_dir: &Path, hex: &str) {
    let (path, offset, len) = chunk_location(data_dir, hex);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(offset + len / 2)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x01;
    f.seek(SeekFrom::Start(offset + len / 2)).unwrap();
    f.write_all(&b).unwrap();
}

/// Makes a chunk's bytes unfindable, as if lost: its record header in the segment no longer names
/// it, so the store reports it missing (the server must be stopped).
pub fn lose_chunk(data_dir: &Path, hex: &str) {
    let (path, offset, _) = chunk_location(data_dir, hex);
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // The 40-byte record header (magic, id, length) precedes the bytes; wipe its magic.
    f.seek(SeekFrom::Start(offset - 40)).unwrap();
    f.write_all(b"LOST").unwrap();
}

/// Checks that the store is sound (after crashes, kills, compaction): `asgard-server verify`
/// (through the running server's admin socket) finds nothing wrong, and every version the server
/// still retains for `agent` restores (`POST /api/restore` by version id, all through one
/// connection) to content whose hash is the one in its record. `why` is added to every failure
/// (the seed of the run). Returns the retained versions (id → (path, hash)).
pub fn assert_store_sound(
    server: &Server,
    agent: &Agent,
    why: &str,
) -> BTreeMap<u64, (String, String)> {
    assert!(server.child.is_some(), "the check needs a running server");
    let out = server_admin([
        "verify".as_ref(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
    ] as [&OsStr; 3]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify {why}:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let retained = retained_versions(&agent.list(None));
    let api = Api::new(server);
    let token = agent.token();
    for (id, (path, hash)) in &retained {
        let (status, data) = api.post_json_bytes(
            "/api/restore",
            Some(&token),
            &serde_json::json!({ "version_id": id }),
        );
        assert_eq!(status, 200, "version {id} of {path} {why}: {}", text(&data));
        assert_eq!(
            &hash_hex(&data),
            hash,
            "version {id} of {path} restores wrong bytes {why}"
        );
    }
    retained
}
