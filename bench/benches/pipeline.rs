//! The whole in-process agent pipeline: scan → read → FastCDC → blake3 → check → zstd (with the
//! sampled skip) → upload → commit, over a generated tree, with the network replaced by a sink
//! (every chunk is "missing", uploads are dropped, every commit succeeds). Also the compression
//! decision alone: the sampled skip against a full zstd pass, on random and on text chunks.
//!
//! `ASGARD_BENCH_TREE_MIB` sets the tree size (default 256 MiB).

use std::hint::black_box;
use std::path::Path;

use asgard_agent::pipeline::{
    self, Item, MemoryBudget, Progress, Reader, Remote, ScanRules, Settings, encode_with,
};
use asgard_core::protocol::{
    CommitOutcome, CommitRequest, CommitResponse, CommitResult, UploadResponse,
};
use asgard_core::{ChunkId, Lang, stored};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::mpsc;

/// The server replaced by a sink.
struct Sink;

impl Remote for Sink {
    async fn check(&self, ids: Vec<ChunkId>) -> anyhow::Result<Vec<ChunkId>> {
        Ok(ids)
    }
    async fn upload(&self, chunks: Vec<(ChunkId, Vec<u8>)>) -> anyhow::Result<UploadResponse> {
        Ok(UploadResponse {
            received: chunks.len() as u32,
            new_chunks: chunks.len() as u32,
            new_bytes: chunks.iter().map(|(_, s)| s.len() as u64).sum(),
        })
    }
    async fn commit(&self, req: &CommitRequest) -> anyhow::Result<CommitResponse> {
        Ok(CommitResponse {
            results: req
                .entries
                .iter()
                .map(|_| CommitResult {
                    meta_only: false,
                    outcome: CommitOutcome::New,
                    version_id: Some(1),
                })
                .collect(),
            pruned_versions: 0,
        })
    }
    fn lang(&self) -> Lang {
        Lang::En
    }
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.finalize_xof().fill(&mut out);
    out
}

fn text(len: usize, seed: u64) -> Vec<u8> {
    let mut s = String::new();
    let mut i = seed;
    while s.len() < len {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(&format!(
            "fn stage_{}(input: &[u8]) -> usize {{ input.len() * {} }}\n",
            i >> 50,
            i % 97
        ));
    }
    s.truncate(len);
    s.into_bytes()
}

/// A tree of `mib` MiB: half in 8 large files (3/4 random, 1/4 text), half in small text files of
/// 1–16 KiB. Returns its size in bytes.
fn make_tree(root: &Path, mib: usize) -> u64 {
    let mut total = 0u64;
    let large = mib / 2 / 8;
    for f in 0..8u64 {
        let data = if f % 4 == 3 {
            text(large << 20, f)
        } else {
            random(large << 20, f)
        };
        total += data.len() as u64;
        std::fs::write(root.join(format!("large{f}.bin")), data).unwrap();
    }
    let mut n = 0u64;
    let budget = (mib as u64 / 2) << 20;
    let mut small = 0u64;
    while small < budget {
        let dir = root.join(format!("d{:03}", n % 64));
        std::fs::create_dir_all(&dir).unwrap();
        let data = text(1024 + (n as usize * 7919) % (15 * 1024), n);
        small += data.len() as u64;
        std::fs::write(dir.join(format!("s{n}.rs")), data).unwrap();
        n += 1;
    }
    total + small
}

/// One backup of `root` through the pipeline into the sink; returns the bytes read.
fn backup(rt: &tokio::runtime::Runtime, root: &Path, level: i32) -> u64 {
    let budget = MemoryBudget::new(32 << 20);
    let settings = Settings::for_budget(level, budget.limit());
    let (tx, rx) = mpsc::channel::<Item>(pipeline::ITEM_CHANNEL);
    let reader = Reader::new(
        tx,
        budget.clone(),
        Lang::En,
        0,
        None,
        vec![root.to_owned()],
        Progress::hidden(),
    );
    let roots = vec![root.to_owned()];
    let scan = std::thread::spawn(move || {
        pipeline::scan(&roots, &ScanRules::default(), &|e| reader.on_event(e));
        reader.into_report()
    });
    let (stats, _) = rt
        .block_on(pipeline::run(&Sink, None, settings, &budget, rx))
        .unwrap();
    let report = scan.join().unwrap();
    assert!(stats.files_new > 0);
    report.bytes_read
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("compress_decision");
    let chunk_random = random(128 * 1024, 1);
    let chunk_text = text(128 * 1024, 2);
    g.throughput(Throughput::Bytes(chunk_random.len() as u64));
    for (name, chunk) in [("random", &chunk_random), ("text", &chunk_text)] {
        // What a compressor worker does: sample, then (if it pays) a full pass, contexts kept.
        let mut contexts = None;
        g.bench_function(format!("{name}_128k_sampled"), |b| {
            b.iter(|| black_box(encode_with(&mut contexts, chunk, 3)))
        });
        // Always a full pass, context kept.
        let mut ctx = zstd::bulk::Compressor::new(3).unwrap();
        g.bench_function(format!("{name}_128k_full_pass"), |b| {
            b.iter(|| black_box(ctx.compress(chunk).unwrap()))
        });
        // The agent before the pipeline: a full pass with a fresh context per chunk.
        g.bench_function(format!("{name}_128k_full_pass_fresh_context"), |b| {
            b.iter(|| black_box(stored::encode(chunk, 3)))
        });
    }
    g.finish();

    let mib: usize = std::env::var("ASGARD_BENCH_TREE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = tempfile::tempdir().unwrap();
    let size = make_tree(dir.path(), mib);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("agent_pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(size));
    g.bench_function(format!("tree_{mib}mib_zstd3_sink"), |b| {
        b.iter(|| assert_eq!(backup(&rt, dir.path(), 3), size))
    });
    g.bench_function(format!("tree_{mib}mib_raw_sink"), |b| {
        b.iter(|| assert_eq!(backup(&rt, dir.path(), 0), size))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
