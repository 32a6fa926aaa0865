//! The backup pipeline (issue 5, acceptance 2): memory stays bounded by the configured budget,
//! not by the size of a file or of the tree, and what was backed up restores byte for byte.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use asgard_e2e::{Agent, Server, file_hash, num};

const MIB: u64 = 1024 * 1024;
/// The big file: mostly incompressible, every eighth MiB compressible text.
const BIG: u64 = 2048 * MIB;
const SMALL_FILES: usize = 50_000;
const SMALL_DIRS: usize = 100;
/// The agent's budget for buffered file data in this test.
const MEMORY_MIB: u64 = 16;
/// The bound the agent's peak RSS must stay under (generous: budget, chunker and compressor
/// buffers, TLS, runtime, the run's sets of paths and chunk ids for 50,000 files).
const RSS_BOUND: u64 = 200 * MIB;

/// The i-th MiB of the big file: blake3 output (fast, incompressible) or text that zstd shrinks.
fn big_piece(i: u64, out: &mut [u8]) {
    if i % 8 == 7 {
        let line = format!("Zeile {i}: Sicherung der Daten mit Prüfsumme und Kompression.\n");
        for (o, b) in out.iter_mut().zip(line.bytes().cycle()) {
            *o = b;
        }
    } else {
        let mut h = blake3::Hasher::new();
        h.update(&i.to_le_bytes());
        h.finalize_xof().fill(out);
    }
}

/// Small file `n`: a few hundred bytes of text, different for every file.
fn small_content(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for k in 0..(2 + n % 20) {
        s.push_str(&format!(
            "Datei {n}, Absatz {k}: kleine Dateien teilen sich Anfragen.\n"
        ));
    }
    s.into_bytes()
}

fn small_path(root: &Path, n: usize) -> std::path::PathBuf {
    root.join("small")
        .join(format!("d{:03}", n % SMALL_DIRS))
        .join(format!("f{n:05}.txt"))
}

/// Acceptance 2: a 2 GiB file and 50,000 small files in one run, with `memory_mib: 16`: the
/// agent's peak RSS (its own `VmHWM`, from `backup --json`) stays under 200 MiB, the random part
/// is uploaded without being inflated, the text is compressed, and a restored sample is identical.
#[test]
fn big_file_and_many_small_files_stay_within_the_memory_bound() {
    let t0 = std::time::Instant::now();
    let server = Server::start();
    let agent = Agent::new("pipeline", &server);
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().join("daten");

    let mut expected_big = blake3::Hasher::new();
    std::fs::create_dir_all(&root).unwrap();
    {
        let mut f = std::io::BufWriter::with_capacity(
            MIB as usize,
            std::fs::File::create(root.join("big.bin")).unwrap(),
        );
        let mut piece = vec![0u8; MIB as usize];
        for i in 0..BIG / MIB {
            big_piece(i, &mut piece);
            expected_big.update(&piece);
            f.write_all(&piece).unwrap();
        }
        f.flush().unwrap();
    }
    let mut small_bytes = 0u64;
    for d in 0..SMALL_DIRS {
        std::fs::create_dir_all(root.join("small").join(format!("d{d:03}"))).unwrap();
    }
    for i in 0..SMALL_FILES {
        let c = small_content(i);
        small_bytes += c.len() as u64;
        std::fs::write(small_path(&root, i), c).unwrap();
    }

    eprintln!("tree written in {:?}", t0.elapsed());
    let t1 = std::time::Instant::now();
    let config = tree.path().join("agent.yaml");
    std::fs::write(&config, format!("memory_mib: {MEMORY_MIB}\n")).unwrap();
    let out = agent.ok([
        "--config".as_ref(),
        config.as_os_str(),
        "backup".as_ref(),
        "--json".as_ref(),
        root.as_os_str(),
    ]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("backup in {:?}: {summary}", t1.elapsed());
    let t2 = std::time::Instant::now();
    assert_eq!(
        num(&summary, "files_new"),
        SMALL_FILES as u64 + 1,
        "{summary}"
    );
    assert_eq!(num(&summary, "bytes_read"), BIG + small_bytes, "{summary}");
    let peak = num(&summary, "peak_rss_bytes");
    assert!(
        peak < RSS_BOUND,
        "agent peak RSS {} MiB is over the bound of {} MiB: {summary}",
        peak / MIB,
        RSS_BOUND / MIB
    );
    // The incompressible 7/8 go up raw (not inflated), the text shrinks.
    let sent = num(&summary, "bytes_sent");
    let random = BIG / 8 * 7;
    assert!(sent > random, "{summary}");
    assert!(sent < random + (BIG / 8 + small_bytes) / 2, "{summary}");

    // The big file and a folder of small files restore exactly.
    let to = tempfile::tempdir().unwrap();
    agent.ok([
        "restore".as_ref(),
        root.join("big.bin").as_os_str(),
        "--to".as_ref(),
        to.path().as_os_str(),
    ]);
    assert_eq!(
        file_hash(&to.path().join("big.bin")),
        expected_big.finalize()
    );
    std::fs::remove_file(to.path().join("big.bin")).unwrap();
    let sample = root.join("small").join("d042");
    agent.ok([
        "restore".as_ref(),
        sample.as_os_str(),
        "--to".as_ref(),
        to.path().as_os_str(),
    ]);
    let mut checked = 0;
    for i in (42..SMALL_FILES).step_by(SMALL_DIRS) {
        let name = format!("f{i:05}.txt");
        assert_eq!(
            std::fs::read(to.path().join("d042").join(&name)).unwrap(),
            small_content(i),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, SMALL_FILES / SMALL_DIRS);
    eprintln!("restores checked in {:?}", t2.elapsed());
}
