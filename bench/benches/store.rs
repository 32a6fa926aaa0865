//! Chunk store throughput: `ASGARD_BENCH_STORE_CHUNKS` chunks (default 100,000) of 4 KiB, put in
//! batches of 1,000 (`put_many`, as the upload handler does), then read back, into the packed
//! store (segments) and into the per-file store. Prints chunks per second and MB/s of each phase;
//! not a timed test. A plain `harness = false` bench: criterion's repetitions would write the
//! store again and again. The stores live below `ASGARD_BENCH_DIR` (default: the temp folder), so
//! the figures are those of that file system and its fsync.

use std::path::Path;
use std::time::Instant;

use asgard_core::ChunkId;
use asgard_server::store::{ChunkStore, LocalStore, PackedOptions, PackedStore};

const CHUNK: usize = 4096;
const BATCH: usize = 1000;

/// The `i`th chunk in its stored form (raw: header byte + content).
fn chunk(i: u64) -> (ChunkId, Vec<u8>) {
    let mut plain = vec![0u8; CHUNK];
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in plain.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    (ChunkId::of(&plain), asgard_core::stored::encode_raw(&plain))
}

fn rate(what: &str, n: u64, bytes: u64, secs: f64) {
    println!(
        "  {what:<28} {secs:>8.2} s  {:>10.0} chunks/s  {:>8.1} MB/s",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

fn run(name: &str, store: &dyn ChunkStore, chunks: &[(ChunkId, Vec<u8>)]) {
    println!("{name}:");
    let bytes: u64 = chunks.iter().map(|(_, b)| b.len() as u64).sum();
    let n = chunks.len() as u64;
    let t = Instant::now();
    for batch in chunks.chunks(BATCH) {
        let refs: Vec<(ChunkId, &[u8])> = batch.iter().map(|(id, b)| (*id, &b[..])).collect();
        let written = store.put_many(&refs).unwrap();
        assert!(written.iter().all(|&w| w));
    }
    rate(
        "put_many (batches of 1000)",
        n,
        bytes,
        t.elapsed().as_secs_f64(),
    );
    let t = Instant::now();
    for (id, b) in chunks {
        assert_eq!(&store.get(id).unwrap(), b);
    }
    rate("get (warm cache)", n, bytes, t.elapsed().as_secs_f64());
    let t = Instant::now();
    let listed = store.list().unwrap().count();
    assert_eq!(listed, chunks.len());
    rate("list", n, 0, t.elapsed().as_secs_f64());
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let n: u64 = std::env::var("ASGARD_BENCH_STORE_CHUNKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let base = std::env::var_os("ASGARD_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!("{n} chunks of {CHUNK} bytes below {}", base.display());
    let chunks: Vec<(ChunkId, Vec<u8>)> = (0..n).map(chunk).collect();

    let dir = tempfile::tempdir_in(&base).unwrap();
    let packed = PackedStore::open(&dir.path().join("chunks"), PackedOptions::default()).unwrap();
    run("packed store (64 MiB segments)", &packed, &chunks);
    drop(packed);
    let t = Instant::now();
    let packed = PackedStore::open(&dir.path().join("chunks"), PackedOptions::default()).unwrap();
    println!("  reopen: {:.3} s", t.elapsed().as_secs_f64());
    compact(&packed, &chunks);
    drop(packed);
    drop(dir);

    let dir = tempfile::tempdir_in(&base).unwrap();
    let local = LocalStore::open(&dir.path().join("chunks")).unwrap();
    run("per-file store", &local, &chunks);
    drop(local);
    remove(dir.path());
}

/// Deletes three of four chunks and compacts.
fn compact(store: &PackedStore, chunks: &[(ChunkId, Vec<u8>)]) {
    let dead: Vec<ChunkId> = chunks
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 != 0)
        .map(|(_, (id, _))| *id)
        .collect();
    let t = Instant::now();
    for batch in dead.chunks(10_000) {
        store.delete_many(batch).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!("  delete_many 3/4 of them: {secs:.2} s");
    let t = Instant::now();
    let r = store.compact(50).unwrap();
    println!(
        "  compact: {:.2} s, {} segments, {} bytes reclaimed",
        t.elapsed().as_secs_f64(),
        r.segments_compacted,
        r.bytes_reclaimed
    );
}

fn remove(dir: &Path) {
    let t = Instant::now();
    let _ = std::fs::remove_dir_all(dir);
    println!(
        "  (removing the per-file store took {:.2} s)",
        t.elapsed().as_secs_f64()
    );
}
