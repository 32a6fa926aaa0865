//! Maintenance over a large chunk index: a GC pass that marks and a second pass that deletes, on
//! `ASGARD_BENCH_CHUNKS` index entries (default 1,000,000), half of them referenced by versions.
//! Prints entries per second and the peak resident memory (`VmHWM`) of each phase; not a timed
//! test. A plain `harness = false` bench: criterion's repetitions would rebuild the index each time.
//!
//! [`build_index`] is the shared setup: other maintenance benches (verify) start from the same
//! index.

use std::time::Instant;

use asgard_core::protocol::{ChunkRef, CommitEntry, FileMeta};
use asgard_core::{ChunkParams, RawPath};
use asgard_server::db::{Auth, Db, UploadedChunk};
use asgard_server::gc::{self, GcOptions};
use asgard_server::service::ingest;

mod common;
use common::{IndexOnlyStore, T0, chunk_id};

const HOUR: i64 = 3_600_000_000;

/// A database in `dir` with `n` chunk index entries owned by one user; the even-numbered ones are
/// referenced by file versions (100 chunks each), the odd ones by none. Returns the database and
/// the owning device.
pub fn build_index(dir: &std::path::Path, n: u64) -> (Db, Auth) {
    let (db, auth) = common::open_db(dir);
    let store = IndexOnlyStore;
    for start in (0..n).step_by(10_000) {
        let list: Vec<UploadedChunk> = (start..(start + 10_000).min(n))
            .map(|i| UploadedChunk {
                id: chunk_id(i),
                stored_len: 65_536,
                plain_len: 131_072,
            })
            .collect();
        ingest::record_verified(&db, &store, auth.user_id, &list, &[], T0).unwrap();
    }
    let referenced: Vec<u64> = (0..n).step_by(2).collect();
    for (f, files) in referenced
        .chunks(100)
        .collect::<Vec<_>>()
        .chunks(100)
        .enumerate()
    {
        let entries: Vec<CommitEntry> = files
            .iter()
            .enumerate()
            .map(|(k, ids)| CommitEntry::File {
                path: RawPath::from(format!("/data/{f}/{k}").as_str()),
                meta: FileMeta {
                    size: ids.len() as u64 * 131_072,
                    mtime_ns: 0,
                    mode: 0o644,
                    attributes: 0,
                    ext: Default::default(),
                    hash: chunk_id(u64::MAX - (f * 100 + k) as u64),
                    params: ChunkParams::default(),
                    chunks: ids
                        .iter()
                        .map(|&i| ChunkRef {
                            id: chunk_id(i),
                            len: 131_072,
                        })
                        .collect(),
                },
            })
            .collect();
        db.commit(auth.user_id, auth.device_id, &entries, 4, T0)
            .unwrap();
    }
    (db, auth)
}

/// A memory figure of `/proc/self/status` in MiB (`VmHWM`: peak resident, `VmRSS`: resident now;
/// Linux only).
fn status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak-memory mark, so that each phase reports its own peak (Linux ≥ 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mib_text(key: &str) -> String {
    status_mib(key).map_or("n/a".into(), |m| format!("{m:.0} MiB"))
}

/// Set (to a data folder) in the child process that runs the passes on an index built before.
const CHILD_ENV: &str = "ASGARD_BENCH_GC_INDEX";

fn main() {
    // `cargo bench` passes criterion-style options (and `--bench`); this bench has none.
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        run_passes(std::path::Path::new(&dir));
        return;
    }
    let n: u64 = std::env::var("ASGARD_BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let (db, _auth) = build_index(dir.path(), n);
    drop(db);
    println!(
        "maintenance: built an index of {n} chunks ({} referenced) in {:.1} s, peak RSS {}",
        n.div_ceil(2),
        t.elapsed().as_secs_f64(),
        mib_text("VmHWM:")
    );
    // The passes run in a fresh process, so that its peak memory is theirs alone (the allocator
    // of this one keeps what building the index took).
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, dir.path())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Two GC passes over the index in `dir`: the first marks the unreferenced half, the second
/// deletes it.
fn run_passes(dir: &std::path::Path) {
    let db = Db::open(&dir.join("asgard.redb")).unwrap();
    let opts = GcOptions {
        grace: std::time::Duration::from_secs(3600),
        dry_run: false,
        keep_versions: 4,
        deleted_keep_days: 90,
        batch: gc::DEFAULT_BATCH,
        compact_below_percent: 0,
    };
    let store = IndexOnlyStore;
    let mut expect_half = None;
    for (phase, now) in [("mark", T0 + 2 * HOUR), ("delete", T0 + 3 * HOUR)] {
        reset_peak_rss();
        let before = mib_text("VmRSS:");
        let t = Instant::now();
        let r = gc::run(&db, &store, &opts, now).unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "maintenance/gc_{phase}: {} entries in {secs:.2} s = {:.0} entries/s; marked {}, freed {}; RSS before {before}, peak {}",
            r.chunks_scanned,
            r.chunks_scanned as f64 / secs,
            r.candidates_marked,
            r.chunks_freed,
            mib_text("VmHWM:")
        );
        let half = *expect_half.get_or_insert(r.chunks_scanned / 2);
        assert_eq!(
            r.candidates_marked + r.chunks_freed,
            half,
            "the odd half is marked, then freed"
        );
    }
}
