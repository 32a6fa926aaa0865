//! Chunk-size study: chunks trees with several FastCDC min/avg/max settings and reports what each
//! would store and index.
//!
//! ```text
//! chunkstudy [--params MIN/AVG/MAX,...] [--level N] [--threads N] TREE...
//! ```
//!
//! The trees (folders, or single files such as uncompressed release tarballs) are read in the
//! given order as consecutive backups of one data set (for instance the releases of a project,
//! oldest first). For each setting it prints: the distinct chunk bytes after
//! dedupe across all trees, the same after zstd (per chunk, through `stored::encode`, as the agent
//! uploads them), the number of distinct chunks and of chunk references, an estimate of the
//! metadata they cost, and the chunking throughput (FastCDC alone, one thread, data in memory).
//! Sizes are written as bytes or with a K/M suffix (KiB/MiB). Files are read whole; symlinks and
//! special files are skipped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use asgard_core::{ChunkParams, stored};

/// Index cost of one distinct chunk on the server: the `chunks` entry (32-byte id key, a value of
/// stored/plain length, times and flags) and the owner's `user_chunks` entry (8 + 32 bytes), with
/// the B-tree's overhead: about 130 bytes.
const INDEX_BYTES_PER_CHUNK: u64 = 130;
/// One chunk reference in a file version: the 32-byte id and a varint length, about 36 bytes.
const BYTES_PER_REF: u64 = 36;

const DEFAULT_PARAMS: &str = "16K/64K/256K,32K/128K/1M,64K/256K/2M,256K/1M/4M,512K/2M/8M";

struct Outcome {
    params: ChunkParams,
    plain: u64,
    distinct: u64,
    compressed: u64,
    chunks: u64,
    refs: u64,
    cut_time: Duration,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut params = DEFAULT_PARAMS.to_owned();
    let mut level = 3;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut trees = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--params" => {
                params = args
                    .next()
                    .unwrap_or_else(|| usage("--params needs a value"))
            }
            "--level" => level = parse_num(&args.next().unwrap_or_default()) as i32,
            "--threads" => threads = parse_num(&args.next().unwrap_or_default()).max(1) as usize,
            "-h" | "--help" => usage(""),
            _ => trees.push(PathBuf::from(a)),
        }
    }
    if trees.is_empty() {
        usage("no trees given");
    }
    let settings: Vec<ChunkParams> = params.split(',').map(parse_params).collect();
    let files: Vec<Vec<PathBuf>> = trees.iter().map(|t| files_of(t)).collect();
    let total: u64 = files
        .iter()
        .flatten()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    eprintln!(
        "chunkstudy: {} trees, {} files, {:.1} MB; {} settings on {threads} threads",
        trees.len(),
        files.iter().map(Vec::len).sum::<usize>(),
        total as f64 / 1e6,
        settings.len()
    );

    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.min(settings.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(p) = settings.get(i) else { break };
                        done.push((i, study(*p, &files, level)));
                    }
                    done
                })
            })
            .collect();
        let mut all: Vec<(usize, Outcome)> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, o)| o).collect()
    });
    outcomes.sort_by_key(|o| o.params.avg);

    println!(
        "| min/avg/max | distinct chunk bytes | after zstd -{level} | chunks | references | metadata (est.) | stored + metadata | chunking (1 thread) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for o in &outcomes {
        let meta = o.chunks * INDEX_BYTES_PER_CHUNK + o.refs * BYTES_PER_REF;
        println!(
            "| {}/{}/{} | {:.1} MB ({:.0} % of {:.0} MB read) | {:.1} MB | {} | {} | {:.1} MB | {:.1} MB | {:.0} MB/s |",
            size_text(o.params.min),
            size_text(o.params.avg),
            size_text(o.params.max),
            o.distinct as f64 / 1e6,
            100.0 * o.distinct as f64 / o.plain.max(1) as f64,
            o.plain as f64 / 1e6,
            o.compressed as f64 / 1e6,
            o.chunks,
            o.refs,
            meta as f64 / 1e6,
            (o.compressed + meta) as f64 / 1e6,
            o.plain as f64 / 1e6 / o.cut_time.as_secs_f64().max(1e-9),
        );
    }
}

/// Chunks every file of every tree with `p`; dedupes by blake3 across all of them.
fn study(p: ChunkParams, trees: &[Vec<PathBuf>], level: i32) -> Outcome {
    let mut seen: HashSet<[u8; 32]> = HashSet::new();
    let mut o = Outcome {
        params: p,
        plain: 0,
        distinct: 0,
        compressed: 0,
        chunks: 0,
        refs: 0,
        cut_time: Duration::ZERO,
    };
    for files in trees {
        for f in files {
            let Ok(data) = std::fs::read(f) else { continue };
            o.plain += data.len() as u64;
            let t = Instant::now();
            let cuts = p.cut(&data);
            o.cut_time += t.elapsed();
            for (off, len) in cuts {
                let chunk = &data[off..off + len];
                o.refs += 1;
                if seen.insert(*blake3::hash(chunk).as_bytes()) {
                    o.chunks += 1;
                    o.distinct += len as u64;
                    o.compressed += stored::encode(chunk, level).len() as u64;
                }
            }
        }
    }
    o
}

/// The regular files below `root`, in sorted order (`root` itself when it is a file).
fn files_of(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if root.is_file() {
        out.push(root.to_path_buf());
        return out;
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries.into_iter().rev() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn parse_params(text: &str) -> ChunkParams {
    let parts: Vec<u32> = text.split('/').map(|s| parse_num(s) as u32).collect();
    let [min, avg, max] = parts[..] else {
        usage(&format!("chunk parameters are MIN/AVG/MAX, not {text}"))
    };
    let p = ChunkParams { min, avg, max };
    if let Err(e) = p.validate() {
        usage(&e.to_string());
    }
    p
}

fn parse_num(text: &str) -> u64 {
    let t = text.trim();
    let (digits, mul) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        _ => (t, 1),
    };
    digits
        .parse::<u64>()
        .map(|n| n * mul)
        .unwrap_or_else(|_| usage(&format!("not a number: {text:?}")))
}

fn size_text(n: u32) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}M", n >> 20)
    } else if n.is_multiple_of(1024) {
        format!("{}K", n >> 10)
    } else {
        n.to_string()
    }
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("chunkstudy: {err}");
    }
    eprintln!("usage: chunkstudy [--params MIN/AVG/MAX,...] [--level N] [--threads N] TREE...");
    eprintln!("default --params {DEFAULT_PARAMS}");
    std::process::exit(if err.is_empty() { 0 } else { 2 })
}
