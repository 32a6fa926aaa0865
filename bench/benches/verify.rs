//! Verify over a large chunk index: entries per second and peak memory (not a timed test).
//!
//! Builds N chunks (`ASGARD_BENCH_CHUNKS`, default 1,000,000; 20,000 when `CI` is set so that
//! CI's short run stays well under a minute) as small real chunk files in a local store under
//! the temp folder, records them in the index and commits them as files of 10 chunks each, then
//! runs a full verify (every chunk read, decoded and hashed; every reference looked up) and a 5 %
//! sample. Prints entries per second and the peak resident memory of the verify alone: each run
//! happens in a child process of this binary (VmHWM from `/proc/self/status`), so the memory the
//! fixture builder used does not count.
//!
//! The fixture files are written without fsync (a bench need not survive a power cut); 1,000,000
//! of them take about 4 GB of disk (one block each).

use std::path::Path;
use std::time::Instant;

use asgard_core::protocol::{ChunkRef, CommitEntry, FileMeta, LoginRequest, MAX_COMMIT_ENTRIES};
use asgard_core::{ChunkId, ChunkParams, RawPath, stored};
use asgard_server::config::Registration;
use asgard_server::db::{Db, LoginPolicy, UploadedChunk, hash_token};
use asgard_server::service::ingest;
use asgard_server::store::LocalStore;
use asgard_server::verify::{self, VerifyOptions};

const CHUNKS_PER_FILE: usize = 10;

/// The number of chunks: the env var, else a default that depends on `CI`.
fn chunk_count(lookup: &dyn Fn(&str) -> Option<String>) -> usize {
    lookup("ASGARD_BENCH_CHUNKS")
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(if lookup("CI").is_some() {
            20_000
        } else {
            1_000_000
        })
}

/// The plaintext of chunk `i`: 64 distinct bytes.
fn chunk(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

/// A store and index of `n` chunks in `dir`, committed as files of [`CHUNKS_PER_FILE`] chunks
/// of one user. Memory stays bounded: one batch of records at a time.
fn build(dir: &Path, n: usize) -> (Db, LocalStore) {
    let db = Db::open(&dir.join("asgard.redb")).unwrap();
    let store = LocalStore::open(&dir.join("chunks")).unwrap();
    let req = LoginRequest {
        protocol_version: 1,
        user: "bench".into(),
        device: "host".into(),
        os: "linux".into(),
        os_version: "6".into(),
        agent_version: "bench".into(),
        enrollment_key: None,
        code: None,
    };
    let policy = LoginPolicy {
        registration: Registration::Open,
        enrollment_key: None,
    };
    let token = db.login(&req, None, policy, 1).unwrap().token.unwrap();
    let auth = db.authenticate(&hash_token(&token)).unwrap();

    let per_commit = MAX_COMMIT_ENTRIES;
    let batch = per_commit * CHUNKS_PER_FILE;
    let mut i = 0usize;
    while i < n {
        let end = (i + batch).min(n);
        let mut uploaded = Vec::with_capacity(end - i);
        let mut entries = Vec::with_capacity(per_commit);
        let mut refs = Vec::with_capacity(CHUNKS_PER_FILE);
        let mut whole = blake3::Hasher::new();
        let mut size = 0u64;
        for k in i..end {
            let plain = chunk(k as u64);
            let id = ChunkId::of(&plain);
            let bytes = stored::encode_raw(&plain);
            let path = store.path_of(&id);
            let parent = path.parent().unwrap();
            if !parent.is_dir() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(&path, &bytes).unwrap();
            uploaded.push(UploadedChunk {
                id,
                stored_len: bytes.len() as u64,
                plain_len: plain.len() as u32,
            });
            whole.update(&plain);
            size += plain.len() as u64;
            refs.push(ChunkRef {
                id,
                len: plain.len() as u32,
            });
            if refs.len() == CHUNKS_PER_FILE || k + 1 == end {
                entries.push(CommitEntry::File {
                    path: RawPath(format!("/data/dir{}/file{k}", k / 100_000).into_bytes()),
                    meta: FileMeta {
                        size,
                        mtime_ns: 1,
                        mode: 0o644,
                        attributes: 0,
                        ext: Default::default(),
                        hash: whole.finalize().into(),
                        params: ChunkParams::default(),
                        chunks: std::mem::take(&mut refs),
                    },
                });
                whole = blake3::Hasher::new();
                size = 0;
            }
        }
        ingest::record_verified(&db, &store, auth.user_id, &uploaded, &[], 2).unwrap();
        db.commit(auth.user_id, auth.device_id, &entries, 4, 3)
            .unwrap();
        i = end;
    }
    (db, store)
}

/// Peak resident set size in KiB (VmHWM).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Current resident set size in KiB (VmRSS).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One verify run in this (child) process on the fixture in `dir`.
fn run(dir: &Path, label: &str, sample: Option<f64>, n: usize) {
    let db = Db::open(&dir.join("asgard.redb")).unwrap();
    let store = LocalStore::open(&dir.join("chunks")).unwrap();
    let before = rss_kib();
    let start = Instant::now();
    let report = verify::run(
        &db,
        &store,
        &VerifyOptions {
            sample_percent: sample,
            seed: Some(7),
            ..VerifyOptions::default()
        },
        4,
    )
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(report.clean(), "the fixture is intact");
    assert_eq!(report.chunks_in_scope as usize, n);
    let mib = |k: Option<u64>| {
        k.map_or("unknown".to_owned(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        })
    };
    println!(
        "verify {label}: {} index entries ({} chunks read, {} versions, {} references) in {secs:.2} s = {:.0} entries/s, {:.0} chunks read/s; RSS after opening {}, peak RSS of the process {}",
        report.chunks_in_scope,
        report.chunks_checked,
        report.versions_checked,
        report.references_checked,
        report.chunks_in_scope as f64 / secs,
        report.chunks_checked as f64 / secs,
        mib(before),
        mib(peak_rss_kib()),
    );
}

/// Child mode: `ASGARD_BENCH_VERIFY_DIR` names the fixture, `ASGARD_BENCH_VERIFY_RUN` the run.
const DIR_VAR: &str = "ASGARD_BENCH_VERIFY_DIR";
const RUN_VAR: &str = "ASGARD_BENCH_VERIFY_RUN";

fn main() {
    // `cargo bench` passes criterion's options (e.g. `--measurement-time`); they do not apply.
    let n = chunk_count(&|k| std::env::var(k).ok());
    if let (Ok(dir), Ok(which)) = (std::env::var(DIR_VAR), std::env::var(RUN_VAR)) {
        match which.as_str() {
            "full" => run(Path::new(&dir), "full", None, n),
            _ => run(Path::new(&dir), "5% sample", Some(5.0), n),
        }
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("asgard-bench-verify")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    let start = Instant::now();
    drop(build(dir.path(), n));
    println!(
        "verify bench: built {n} chunks in {} files in {:.1} s",
        n.div_ceil(CHUNKS_PER_FILE),
        start.elapsed().as_secs_f64(),
    );
    for which in ["full", "sample"] {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .env(DIR_VAR, dir.path())
            .env(RUN_VAR, which)
            .env("ASGARD_BENCH_CHUNKS", n.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "verify run {which} failed");
    }
}
