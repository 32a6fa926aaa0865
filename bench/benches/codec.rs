//! blake3 over 1 KiB … 1 MiB, and zstd encode/decode of chunks through `asgard_core::stored` at
//! levels 1 and 3, on compressible text and on random bytes (which `stored::encode` keeps raw).

use asgard_core::stored;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// xorshift64: deterministic bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn random(len: usize) -> Vec<u8> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&r.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Source-code-like text: words of a small vocabulary, identifiers, numbers and line breaks. Zstd -3
/// shrinks it to roughly a third, like real source trees.
fn text(len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "fn", "let", "mut", "self", "return", "if", "else", "match", "struct", "impl", "for", "in",
        "while", "the", "value", "error", "result", "chunk", "file", "path", "server", "agent",
        "=", "+", "{", "}", "(", ")", ";", "->", "&", "::", "Ok", "Err", "None", "Some", "backup",
    ];
    let mut r = Rng(0x2545_F491_4F6C_DD1D);
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        let x = r.next();
        match x % 16 {
            0 => out.extend_from_slice(b"\n    "),
            1 => out.extend_from_slice(format!("{} ", x >> 40).as_bytes()),
            2 => out.extend_from_slice(format!("name_{:x} ", (x >> 20) % 4096).as_bytes()),
            _ => {
                out.extend_from_slice(WORDS[(x >> 8) as usize % WORDS.len()].as_bytes());
                out.push(b' ');
            }
        }
    }
    out.truncate(len);
    out
}

fn blake3_sizes(c: &mut Criterion) {
    let buf = random(1 << 20);
    let mut g = c.benchmark_group("blake3");
    for size in [1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let data = &buf[..size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(kib(size)), data, |b, d| {
            b.iter(|| black_box(blake3::hash(d)))
        });
    }
    g.finish();
}

fn zstd_chunks(c: &mut Criterion) {
    let mut g = c.benchmark_group("zstd");
    for (kind, data) in [("text", text(128 << 10)), ("random", random(128 << 10))] {
        for size in [8 << 10, 128 << 10] {
            let chunk = &data[..size];
            g.throughput(Throughput::Bytes(size as u64));
            for level in [1, 3] {
                let id = format!("{kind}_{}_l{level}", kib(size));
                g.bench_function(BenchmarkId::new("encode", &id), |b| {
                    b.iter(|| black_box(stored::encode(chunk, level)))
                });
                let enc = stored::encode(chunk, level);
                g.bench_function(BenchmarkId::new("decode", &id), |b| {
                    b.iter(|| black_box(stored::decode(&enc, size).unwrap()))
                });
            }
        }
    }
    g.finish();
}

fn kib(size: usize) -> String {
    if size >= 1 << 20 {
        format!("{}MiB", size >> 20)
    } else {
        format!("{}KiB", size >> 10)
    }
}

criterion_group!(benches, blake3_sizes, zstd_chunks);
criterion_main!(benches);
