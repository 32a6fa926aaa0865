//! The server's redb metadata writes in batches: the record of an upload of N chunks
//! (`ingest::record_verified`: the index lookup, then `Db::record_upload`) and `commit` of N file
//! entries per write transaction, for N = 1, 100 and 1000. Each transaction is durable (redb syncs
//! on commit), so the per-transaction cost shows what batching saves.

use std::cell::Cell;

use asgard_core::protocol::{ChunkRef, CommitEntry, FileMeta};
use asgard_core::{ChunkParams, RawPath};
use asgard_server::db::UploadedChunk;
use asgard_server::service::ingest;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

mod common;
use common::{IndexOnlyStore, T0, chunk_id, open_db};

const SIZES: [usize; 3] = [1, 100, 1000];

fn uploaded(range: std::ops::Range<u64>) -> Vec<UploadedChunk> {
    range
        .map(|i| UploadedChunk {
            id: chunk_id(i),
            stored_len: 40_000,
            plain_len: 131_072,
        })
        .collect()
}

fn record_upload(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (db, auth) = open_db(dir.path());
    let next = Cell::new(0u64);
    let mut g = c.benchmark_group("db_record_upload");
    // Every iteration is a durable transaction (a few ms): ten samples are plenty.
    g.sample_size(10);
    for n in SIZES {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                // New chunks every time: each transaction inserts n index entries.
                let start = next.get();
                next.set(start + n as u64);
                ingest::record_verified(
                    &db,
                    &IndexOnlyStore,
                    auth.user_id,
                    &uploaded(start..start + n as u64),
                    &[],
                    T0,
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

fn commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (db, auth) = open_db(dir.path());
    // The chunks the versions reference, owned by the user.
    const POOL: u64 = 4096;
    ingest::record_verified(
        &db,
        &IndexOnlyStore,
        auth.user_id,
        &uploaded(0..POOL),
        &[],
        T0,
    )
    .unwrap();
    let next = Cell::new(0u64);
    let mut g = c.benchmark_group("db_commit");
    g.sample_size(10);
    for n in SIZES {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                // n new paths per transaction, each a file of two chunks.
                let start = next.get();
                next.set(start + n as u64);
                let entries: Vec<CommitEntry> = (start..start + n as u64)
                    .map(|i| CommitEntry::File {
                        path: RawPath::from(format!("/data/{}/{i}.txt", i / 1000).as_str()),
                        meta: FileMeta {
                            size: 2 * 131_072,
                            mtime_ns: i as i64,
                            mode: 0o644,
                            attributes: 0,
                            ext: Default::default(),
                            hash: chunk_id(u64::MAX - i),
                            params: ChunkParams::default(),
                            chunks: [i % POOL, (i * 7 + 1) % POOL]
                                .iter()
                                .map(|&k| ChunkRef {
                                    id: chunk_id(k),
                                    len: 131_072,
                                })
                                .collect(),
                        },
                    })
                    .collect();
                db.commit(auth.user_id, auth.device_id, &entries, 4, T0)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, record_upload, commit);
criterion_main!(benches);
