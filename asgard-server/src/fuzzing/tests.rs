use super::*;

fn run(target: &str, bytes: &[u8]) -> Result<(), String> {
    match target {
        "protocol" => protocol(bytes),
        "query" => query(bytes),
        "upload_multipart" => upload_multipart(bytes),
        "stored_chunk" => stored_chunk(bytes),
        "db_records" => db_records(bytes),
        "segment_records" => segment_records(bytes),
        "config_yaml" => {
            let (_, text) = bytes.split_first().ok_or("empty")?;
            config_yaml(std::str::from_utf8(text).map_err(|e| e.to_string())?)
        }
        other => panic!("no target {other}"),
    }
}

#[test]
fn every_seed_goes_the_whole_way_through_its_target() {
    let all = seeds();
    for target in [
        "protocol",
        "query",
        "upload_multipart",
        "stored_chunk",
        "db_records",
        "segment_records",
        "config_yaml",
    ] {
        assert!(
            all.iter().any(|s| s.target == target),
            "no seed for {target}"
        );
    }
    for s in &all {
        run(s.target, &s.bytes).unwrap_or_else(|e| panic!("{}/{}: {e}", s.target, s.name));
    }
    let (n, damaged) = {
        let s = all.iter().find(|s| s.name == "segment").unwrap();
        scan_segment(&s.bytes[1..], s.bytes.len() as u64 - 1).unwrap()
    };
    assert_eq!((n, damaged), (3, false));
    let s = all.iter().find(|s| s.name == "leftovers").unwrap();
    assert_eq!(
        scan_segment(&s.bytes[1..], s.bytes.len() as u64 - 2).unwrap(),
        (2, true)
    );
    let s = all.iter().find(|s| s.name == "leftover-header").unwrap();
    assert_eq!(
        scan_segment(&s.bytes[1..], s.bytes.len() as u64 - 31).unwrap(),
        (2, false)
    );
    let parts = upload_multipart(&all.iter().find(|s| s.name == "small-pieces").unwrap().bytes);
    assert_eq!(parts, Ok(()));
}

/// The committed corpus holds every seed (`ASGARD_FUZZ_SEEDS=<fuzz/corpus>` writes them).
#[test]
fn the_committed_corpus_holds_the_seeds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    if let Some(dir) = std::env::var_os("ASGARD_FUZZ_SEEDS") {
        for s in seeds() {
            let d = Path::new(&dir).join(s.target);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("seed-{}", s.name)), &s.bytes).unwrap();
        }
    }
    for s in seeds() {
        let path = corpus.join(s.target).join(format!("seed-{}", s.name));
        let on_disk = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            on_disk == s.bytes,
            "{} differs from its encoder",
            path.display()
        );
    }
}

#[test]
fn hostile_inputs_are_refused_without_a_panic() {
    assert!(protocol(b"").is_err());
    assert!(protocol(b"\x00{\"user\":").is_err());
    assert!(protocol(b"\x02{\"chunks\":[\"zz\"]}").is_err());
    assert!(query(b"\x00limit=-1").is_err());
    assert!(
        query(b"\x00prefix_hex=zz").is_ok(),
        "decodes; the handler refuses it"
    );
    assert!(upload_multipart(b"\x05hello\x00--x\r\n").is_err());
    let mut chunk = vec![0u8];
    chunk.extend_from_slice(&ChunkId::of(b"abc").0);
    chunk.extend_from_slice(b"\x00abd");
    assert!(stored_chunk(&chunk).is_err(), "hash mismatch");
    assert!(db_records(&[6, 0xff, 0xff, 0xff]).is_err());
    let mut seg = vec![0u8];
    seg.extend_from_slice(SEGMENT_MAGIC);
    seg.extend_from_slice(&record_header(&ChunkId::of(b"x"), u32::MAX));
    assert_eq!(scan_segment(&seg[1..], seg.len() as u64 - 1), Ok((0, true)));
    assert!(config_yaml("keep_versions: 0\n").is_err());
    assert!(config_yaml("gc_interval: 99999999999999999999d\n").is_err());
}
