use super::*;
use asgard_core::testdata::random_bytes as pseudo_random;

fn no_ext(_: &File, _: &Metadata) -> fsmeta::Read {
    fsmeta::Read::default()
}

fn read_all(path: &Path) -> (FileMeta, Facts, Vec<(ChunkId, Vec<u8>)>) {
    let mut got = Vec::new();
    let ReadOutcome::Done(meta, facts, _) = read_file(path, no_ext, |id, d| {
        got.push((id, d));
        true
    })
    .unwrap() else {
        panic!("file not read");
    };
    (meta, facts, got)
}

#[test]
fn reads_file_into_chunks_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    // One below a chunk's maximum (read in one piece) and one above (streamed).
    for len in [300_000, 3_000_000] {
        let path = dir.path().join("f.bin");
        let data = pseudo_random(len, 0x9E37_79B9_7F4A_7C15);
        std::fs::write(&path, &data).unwrap();
        let (meta, facts, got) = read_all(&path);
        assert_eq!(meta.size, data.len() as u64);
        assert_eq!(facts.size, meta.size);
        assert!(meta.lengths_add_up());
        assert_eq!(meta.hash, ChunkId::of(&data));
        let joined: Vec<u8> = got.iter().flat_map(|(_, d)| d.clone()).collect();
        assert_eq!(joined, data);
        for ((id, d), r) in got.iter().zip(&meta.chunks) {
            assert_eq!(*id, ChunkId::of(d));
            assert_eq!(r.id, *id);
        }
    }
}

/// A small file read in one piece is cut exactly as the streaming chunker would cut it (the
/// same content must give the same chunks, or dedupe breaks).
#[test]
fn whole_file_cut_equals_streaming_cut() {
    let params = ChunkParams::default();
    for len in [0, 10, 40_000, 700_000, params.max as usize] {
        let data = pseudo_random(len, len as u64 + 5);
        let streamed: Vec<Vec<u8>> = params
            .stream(&data[..])
            .collect::<std::io::Result<_>>()
            .unwrap();
        let cut: Vec<Vec<u8>> = params
            .cut(&data)
            .into_iter()
            .map(|(o, l)| data[o..o + l].to_vec())
            .collect();
        assert_eq!(streamed, cut, "len {len}");
    }
}

#[test]
fn stops_when_the_sink_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::fs::write(&path, pseudo_random(3_000_000, 9)).unwrap();
    let mut calls = 0;
    let out = read_file(&path, no_ext, |_, _| {
        calls += 1;
        false
    })
    .unwrap();
    assert!(matches!(out, ReadOutcome::Stopped));
    assert_eq!(calls, 1);
}

/// Windows: a file another process holds open without sharing cannot be read; the read path
/// reports the error (the stage counts it as unreadable, exit code 3) instead of failing.
#[cfg(windows)]
#[test]
fn file_locked_by_another_process_is_an_error_not_a_crash() {
    use std::os::windows::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gesperrt.docx");
    std::fs::write(&path, b"locked content").unwrap();
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(0)
        .open(&path)
        .unwrap();
    assert!(read_file(&path, no_ext, |_, _| true).is_err());
    drop(holder);
    assert!(matches!(
        read_file(&path, no_ext, |_, _| true),
        Ok(ReadOutcome::Done(..))
    ));
}

#[test]
fn path_set_knows_what_was_inserted_and_forgets_what_was_removed() {
    let mut set = PathSet::default();
    let paths: Vec<RawPath> = (0..10_000)
        .map(|i| RawPath::from(format!("/home/anna/Dokumente/datei{i}.txt").as_str()))
        .collect();
    for p in paths.iter().step_by(2) {
        set.insert(p);
    }
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(set.contains(p), i % 2 == 0, "{p:?}");
    }
    set.remove(&paths[0]);
    assert!(!set.contains(&paths[0]));
    assert!(set.contains(&paths[2]));
    // Bytes, not text: paths that differ only in an invalid byte are different paths.
    set.insert(&RawPath(b"/tmp/a\xff".to_vec()));
    assert!(!set.contains(&RawPath(b"/tmp/a\xfe".to_vec())));
}
