//! Chunking, hashing and chunk encoding throughput.

use asgard_core::{ChunkParams, stored};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn data(len: usize) -> Vec<u8> {
    // Text-like, partly repetitive data: compressible but not trivially so.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 3 == 0 {
                b'a' + (x % 26) as u8
            } else {
                (x >> 32) as u8 % 64 + 32
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let buf = data(16 << 20);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("fastcdc_default", |b| {
        b.iter(|| black_box(ChunkParams::default().cut(&buf)).len())
    });
    g.bench_function("blake3", |b| b.iter(|| black_box(blake3::hash(&buf))));
    let chunk = &buf[..128 * 1024];
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("zstd3_encode_128k", |b| {
        b.iter(|| black_box(stored::encode(chunk, 3)))
    });
    let enc = stored::encode(chunk, 3);
    g.bench_function("zstd3_decode_128k", |b| {
        b.iter(|| black_box(stored::decode(&enc, chunk.len()).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
