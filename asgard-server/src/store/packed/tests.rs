//! The packed store: conformance, batches, compaction (also racing deletions and replacements),
//! crash repair at open, and the import of the per-file layout.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::format::{record_header, segment_name};
use super::index::{LOCATIONS, SEGMENTS};
use super::*;
use crate::store::LocalStore;
use crate::store::medium::WholeObjectsOnly;
use redb::{ReadableDatabase, ReadableTable};

fn small() -> PackedOptions {
    PackedOptions {
        segment_size: 4096,
        writers: 2,
    }
}

fn open(dir: &Path, opts: PackedOptions) -> PackedStore {
    PackedStore::open(&dir.join("chunks"), opts).unwrap()
}

/// The store over a local medium whose append capability is hidden: every batch is a pack.
fn open_without_appends(dir: &Path, opts: PackedOptions) -> PackedStore {
    let root = dir.join("chunks");
    let medium = WholeObjectsOnly(LocalMedium::open(&root).unwrap());
    PackedStore::on_medium(Arc::new(medium), &root.join("index.redb"), opts).unwrap()
}

/// The file of segment `id` below `dir`.
fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join("chunks/packs").join(segment_name(id))
}

fn chunk(n: u32, size: usize) -> (ChunkId, Vec<u8>) {
    let plain: Vec<u8> = format!("chunk {n} ")
        .bytes()
        .cycle()
        .take(size.max(8))
        .collect();
    (ChunkId::of(&plain), asgard_core::stored::encode_raw(&plain))
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("chunks/packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn committed(s: &PackedStore) -> HashMap<u64, (u64, u64)> {
    let txn = s.index.db().begin_read().unwrap();
    let t = txn.open_table(SEGMENTS).unwrap();
    t.iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.value(), v.value())
        })
        .collect()
}

#[test]
fn conformance_default_segments() {
    let dirs = Mutex::new(Vec::new());
    super::super::conformance::run_all(&|| {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), PackedOptions::default());
        lock(&dirs).push(dir);
        Box::new(store)
    });
}

#[test]
fn conformance_without_appends() {
    for opts in [PackedOptions::default(), small()] {
        let dirs = Mutex::new(Vec::new());
        super::super::conformance::run_all(&|| {
            let dir = tempfile::tempdir().unwrap();
            let store = open_without_appends(dir.path(), opts);
            lock(&dirs).push(dir);
            Box::new(store)
        });
    }
}

/// Without appends, each batch is its own pack object in the segment format; compaction merges
/// the live records of several packs into one new pack; the accounting holds and all of it
/// survives a reopen (with appends, as the same directory is a plain local store).
#[test]
fn without_appends_batches_are_packs_and_compaction_merges_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_without_appends(dir.path(), PackedOptions::default());
    let chunks: Vec<(ChunkId, Vec<u8>)> = (0..40).map(|n| chunk(n, 300)).collect();
    for group in chunks.chunks(4) {
        let refs: Vec<(ChunkId, &[u8])> = group.iter().map(|(i, b)| (*i, &b[..])).collect();
        s.put_many(&refs).unwrap();
    }
    assert_eq!(segment_files(dir.path()).len(), 10, "one pack per batch");
    let pack = fs::read(&segment_files(dir.path())[0]).unwrap();
    assert_eq!(&pack[..8], SEGMENT_MAGIC);
    assert_eq!(
        parse_header(&pack[8..48]),
        Some((chunks[0].0, chunks[0].1.len() as u32))
    );
    let dead: Vec<ChunkId> = chunks.iter().skip(1).step_by(2).map(|(i, _)| *i).collect();
    s.delete_many(&dead).unwrap();
    let r = s.compact(60).unwrap();
    assert_eq!(r.segments_compacted, 10, "{r:?}");
    assert_eq!(segment_files(dir.path()).len(), 1, "merged into one pack");
    check_accounting(&s);
    for (id, bytes) in chunks.iter().step_by(2) {
        assert_eq!(&s.get(id).unwrap(), bytes);
    }
    drop(s);
    for opener in [open as Opener, open_without_appends] {
        let s = opener(dir.path(), PackedOptions::default());
        for (id, bytes) in chunks.iter().step_by(2) {
            assert_eq!(&s.get(id).unwrap(), bytes);
        }
        assert_eq!(s.list().unwrap().count(), 20);
    }
}

/// A pack written whole whose index commit never happened (a crash) is removed at open.
#[test]
fn without_appends_open_removes_a_pack_without_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_without_appends(dir.path(), PackedOptions::default());
    let (id, bytes) = chunk(1, 100);
    s.put(&id, &bytes).unwrap();
    drop(s);
    let mut body = SEGMENT_MAGIC.to_vec();
    let (oid, obytes) = chunk(2, 100);
    body.extend_from_slice(&record_header(&oid, obytes.len() as u32));
    body.extend_from_slice(&obytes);
    let orphan = segment_path(dir.path(), 0x77);
    fs::write(&orphan, body).unwrap();
    let s = open_without_appends(dir.path(), PackedOptions::default());
    assert!(!orphan.exists());
    assert!(!s.exists(&oid).unwrap());
    assert_eq!(s.get(&id).unwrap(), bytes);
    s.put(&oid, &obytes).unwrap();
    assert!(s.index.location(&oid).unwrap().unwrap().0 > 0x77);
}

/// Every segment's live bytes are the sum of the records the index points into it.
fn check_accounting(s: &PackedStore) {
    let rows = committed(s);
    let txn = s.index.db().begin_read().unwrap();
    let locs = txn.open_table(LOCATIONS).unwrap();
    let mut live: HashMap<u64, u64> = HashMap::new();
    for row in locs.iter().unwrap() {
        let (seg, _, len, _) = row.unwrap().1.value();
        *live.entry(seg).or_default() += record_len(len);
    }
    for (seg, (_, l)) in rows {
        assert_eq!(live.get(&seg).copied().unwrap_or(0), l, "segment {seg}");
    }
}

#[test]
fn conformance_tiny_segments() {
    let dirs = Mutex::new(Vec::new());
    super::super::conformance::run_all(&|| {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), small());
        lock(&dirs).push(dir);
        Box::new(store)
    });
}

#[test]
fn a_batch_shares_one_segment_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), PackedOptions::default());
    let chunks: Vec<(ChunkId, Vec<u8>)> = (0..100).map(|n| chunk(n, 500)).collect();
    let refs: Vec<(ChunkId, &[u8])> = chunks.iter().map(|(i, b)| (*i, &b[..])).collect();
    assert!(s.put_many(&refs).unwrap().iter().all(|&w| w));
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "one segment for the batch"
    );
    drop(s);
    let s = open(dir.path(), PackedOptions::default());
    for (id, bytes) in &chunks {
        assert_eq!(&s.get(id).unwrap(), bytes);
    }
    // Records are self-describing: the header in front of each chunk names it.
    let loc = s.locate(&chunks[7].0).unwrap().unwrap();
    let file = fs::read(loc.path.as_str()).unwrap();
    let h = &file[(loc.offset - RECORD_HEADER) as usize..loc.offset as usize];
    assert_eq!(
        parse_header(h),
        Some((chunks[7].0, chunks[7].1.len() as u32))
    );
    assert_eq!(&file[..8], SEGMENT_MAGIC);
}

/// Deleting most chunks and compacting keeps every live chunk readable with its exact bytes,
/// gives the space back, and the result survives a reopen.
#[test]
fn compaction_keeps_live_chunks_and_reclaims_space() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), small());
    let chunks: Vec<(ChunkId, Vec<u8>)> = (0..60).map(|n| chunk(n, 300)).collect();
    for group in chunks.chunks(5) {
        let refs: Vec<(ChunkId, &[u8])> = group.iter().map(|(i, b)| (*i, &b[..])).collect();
        s.put_many(&refs).unwrap();
    }
    let before: u64 = segment_files(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    let (gone, kept): (Vec<_>, Vec<_>) = chunks.iter().enumerate().partition(|(i, _)| i % 4 != 0);
    let gone_ids: Vec<ChunkId> = gone.iter().map(|(_, (id, _))| *id).collect();
    assert_eq!(s.delete_many(&gone_ids).unwrap(), gone_ids.len() as u64);
    let r = s.compact(50).unwrap();
    assert!(r.segments_compacted > 0, "{r:?}");
    assert!(r.bytes_reclaimed > 0, "{r:?}");
    let after: u64 = segment_files(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert!(after < before, "{after} < {before}");
    let check = |s: &PackedStore| {
        for (_, (id, bytes)) in &kept {
            assert_eq!(&s.get(id).unwrap(), bytes);
        }
        for id in &gone_ids {
            assert!(!s.exists(id).unwrap());
        }
        let mut listed: Vec<ChunkId> = s.list().unwrap().map(Result::unwrap).collect();
        listed.sort();
        let mut want: Vec<ChunkId> = kept.iter().map(|(_, (id, _))| *id).collect();
        want.sort();
        assert_eq!(listed, want);
        // The accounting matches the locations.
        let rows = committed(s);
        let txn = s.index.db().begin_read().unwrap();
        let locs = txn.open_table(LOCATIONS).unwrap();
        let mut live: HashMap<u64, u64> = HashMap::new();
        for row in locs.iter().unwrap() {
            let (seg, _, len, _) = row.unwrap().1.value();
            *live.entry(seg).or_default() += record_len(len);
        }
        for (seg, (_, l)) in rows {
            assert_eq!(live.get(&seg).copied().unwrap_or(0), l, "segment {seg}");
        }
    };
    check(&s);
    drop(s);
    let s = open(dir.path(), small());
    check(&s);
}

/// A chunk deleted and a chunk replaced while its segment is being compacted (after the copy,
/// before the index transaction): the deleted one is not resurrected, the replaced one keeps its
/// new bytes, every other live chunk its old ones.
#[test]
fn compaction_racing_a_delete_and_a_replace_moves_only_what_still_points_at_the_old_segment() {
    race_a_delete_and_a_replace(open);
}

/// The same race when compaction writes a new pack object (no appends).
#[test]
fn compaction_into_a_pack_racing_a_delete_and_a_replace() {
    race_a_delete_and_a_replace(open_without_appends);
}

type Opener = fn(&Path, PackedOptions) -> PackedStore;

fn race_a_delete_and_a_replace(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), small());
    let chunks: Vec<(ChunkId, Vec<u8>)> = (0..8).map(|n| chunk(n, 400)).collect();
    let refs: Vec<(ChunkId, &[u8])> = chunks.iter().map(|(i, b)| (*i, &b[..])).collect();
    s.put_many(&refs).unwrap();
    // Seal that segment: a batch that does not fit starts a new one (in a slot it may share).
    for n in 100..110 {
        let (id, b) = chunk(n, 3000);
        s.put(&id, &b).unwrap();
    }
    let first_seg = s.index.location(&chunks[0].0).unwrap().unwrap().0;
    // Leave 3 of 8 live: below 50 %.
    let dead: Vec<ChunkId> = chunks[3..].iter().map(|(id, _)| *id).collect();
    s.delete_many(&dead).unwrap();
    let (deleted, replaced) = (chunks[0].0, chunks[1].0);
    let new_bytes = b"\x00new bytes of the healed chunk".to_vec();
    let mut raced = false;
    let r = s
        .compact_with(50, &mut || {
            if !raced {
                raced = true;
                assert!(s.delete(&deleted).unwrap());
                s.replace(&replaced, &new_bytes).unwrap();
            }
        })
        .unwrap();
    assert!(raced);
    assert!(r.segments_compacted >= 1, "{r:?}");
    assert!(
        !segment_path(dir.path(), first_seg).exists(),
        "old segment removed"
    );
    assert!(
        !s.exists(&deleted).unwrap(),
        "a deleted chunk stays deleted"
    );
    assert_eq!(s.get(&replaced).unwrap(), new_bytes);
    assert_eq!(s.get(&chunks[2].0).unwrap(), chunks[2].1);
    drop(s);
    let s = open(dir.path(), small());
    assert!(!s.exists(&deleted).unwrap());
    assert_eq!(s.get(&replaced).unwrap(), new_bytes);
    assert_eq!(s.get(&chunks[2].0).unwrap(), chunks[2].1);
}

/// Readers and writers running during compactions always get exact bytes.
#[test]
fn concurrent_puts_reads_and_compactions() {
    puts_reads_and_compactions(open);
}

/// The same with every batch and every compaction output a pack object (no appends).
#[test]
fn concurrent_puts_reads_and_compactions_without_appends() {
    puts_reads_and_compactions(open_without_appends);
}

fn puts_reads_and_compactions(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path(), small()));
    let base: Vec<(ChunkId, Vec<u8>)> = (0..200).map(|n| chunk(n, 200)).collect();
    for group in base.chunks(10) {
        let refs: Vec<(ChunkId, &[u8])> = group.iter().map(|(i, b)| (*i, &b[..])).collect();
        s.put_many(&refs).unwrap();
    }
    let dead: Vec<ChunkId> = base.iter().skip(1).step_by(2).map(|(i, _)| *i).collect();
    s.delete_many(&dead).unwrap();
    let live: Arc<Vec<(ChunkId, Vec<u8>)>> = Arc::new(base.into_iter().step_by(2).collect());
    std::thread::scope(|scope| {
        for t in 0..2u32 {
            let s = s.clone();
            scope.spawn(move || {
                for n in 0..30 {
                    let (id, b) = chunk(1000 + t * 100 + n, 300);
                    s.put(&id, &b).unwrap();
                    assert_eq!(s.get(&id).unwrap(), b);
                }
            });
        }
        let reader = {
            let s = s.clone();
            let live = live.clone();
            scope.spawn(move || {
                for _ in 0..5 {
                    for (id, b) in live.iter() {
                        assert_eq!(&s.get(id).unwrap(), b);
                    }
                }
            })
        };
        for _ in 0..5 {
            s.compact(60).unwrap();
        }
        reader.join().unwrap();
    });
    for (id, b) in live.iter() {
        assert_eq!(&s.get(id).unwrap(), b);
    }
}

/// A crash after a batch's write and sync but before its index commit leaves a tail past the
/// committed length: `open` cuts it off and every acknowledged chunk stays readable.
#[test]
fn open_truncates_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), PackedOptions::default());
    let chunks: Vec<(ChunkId, Vec<u8>)> = (0..10).map(|n| chunk(n, 100)).collect();
    let refs: Vec<(ChunkId, &[u8])> = chunks.iter().map(|(i, b)| (*i, &b[..])).collect();
    s.put_many(&refs).unwrap();
    let seg = s.index.location(&chunks[0].0).unwrap().unwrap().0;
    let (len, _) = committed(&s)[&seg];
    drop(s);
    let path = dir.path().join("chunks/packs").join(segment_name(seg));
    // The unacknowledged batch: a record header and half its bytes.
    let (tid, tbytes) = chunk(99, 100);
    let mut tail = record_header(&tid, tbytes.len() as u32).to_vec();
    tail.extend_from_slice(&tbytes[..50]);
    let f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all_at(&tail, len).unwrap();
    drop(f);
    assert!(fs::metadata(&path).unwrap().len() > len);
    let s = open(dir.path(), PackedOptions::default());
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        len,
        "the tail is cut off"
    );
    assert!(!s.exists(&tid).unwrap());
    for (id, bytes) in &chunks {
        assert_eq!(&s.get(id).unwrap(), bytes);
    }
    s.put(&tid, &tbytes).unwrap();
    assert_eq!(s.get(&tid).unwrap(), tbytes);
}

/// A segment file the index does not know (a new segment whose first batch never committed) is
/// removed at open, and its id is not handed out again before it is gone.
#[test]
fn open_removes_an_orphan_segment() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), PackedOptions::default());
    let (id, bytes) = chunk(1, 100);
    s.put(&id, &bytes).unwrap();
    drop(s);
    let orphan = dir.path().join("chunks/packs").join(segment_name(0xff));
    let mut body = SEGMENT_MAGIC.to_vec();
    let (oid, obytes) = chunk(2, 100);
    body.extend_from_slice(&record_header(&oid, obytes.len() as u32));
    body.extend_from_slice(&obytes);
    fs::write(&orphan, body).unwrap();
    let s = open(dir.path(), PackedOptions::default());
    assert!(!orphan.exists());
    assert!(!s.exists(&oid).unwrap());
    assert_eq!(s.list().unwrap().count(), 1);
    let (nid, nbytes) = chunk(3, 100);
    s.put(&nid, &nbytes).unwrap();
    assert!(s.index.location(&nid).unwrap().unwrap().0 > 0xff);
}

/// A crash between a compaction's index commit and the removal of the old file: the old file is
/// still there, the index no longer knows it; `open` removes it, nothing is lost.
#[test]
fn open_finishes_an_interrupted_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), small());
    let chunks: Vec<(ChunkId, Vec<u8>)> = (0..8).map(|n| chunk(n, 400)).collect();
    let refs: Vec<(ChunkId, &[u8])> = chunks.iter().map(|(i, b)| (*i, &b[..])).collect();
    s.put_many(&refs).unwrap();
    let (big, big_bytes) = chunk(50, 5000);
    s.put(&big, &big_bytes).unwrap();
    s.put(&chunk(51, 5000).0, &chunk(51, 5000).1).unwrap();
    let seg = s.index.location(&chunks[0].0).unwrap().unwrap().0;
    let old = segment_path(dir.path(), seg);
    let saved = fs::read(&old).unwrap();
    let dead: Vec<ChunkId> = chunks[2..].iter().map(|(id, _)| *id).collect();
    s.delete_many(&dead).unwrap();
    assert!(s.compact(50).unwrap().segments_compacted >= 1);
    assert!(!old.exists());
    drop(s);
    // As if the removal had not happened.
    fs::write(&old, saved).unwrap();
    let s = open(dir.path(), small());
    assert!(!old.exists(), "open removes the compacted segment");
    for (id, bytes) in &chunks[..2] {
        assert_eq!(&s.get(id).unwrap(), bytes);
    }
    assert_eq!(s.get(&big).unwrap(), big_bytes);
    for id in &dead {
        assert!(!s.exists(id).unwrap());
    }
}

/// Chunk files of the per-file layout are imported at open with their time stored, the files go,
/// and a second open (or one after an import cut off after its index commit) changes nothing.
#[test]
fn per_file_chunks_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("chunks");
    let legacy = LocalStore::open(&root).unwrap();
    let chunks: Vec<(ChunkId, Vec<u8>)> = (0..30).map(|n| chunk(n, 700)).collect();
    for (id, b) in &chunks {
        legacy.put(id, b).unwrap();
    }
    let times: HashMap<ChunkId, i64> = chunks
        .iter()
        .map(|(id, _)| (*id, legacy.stored_at_us(id).unwrap().unwrap()))
        .collect();
    let kept_path = legacy.path_of(&chunks[0].0);
    drop(legacy);
    let s = PackedStore::open(&root, small()).unwrap();
    for (id, b) in &chunks {
        assert_eq!(&s.get(id).unwrap(), b);
        assert_eq!(s.stored_at_us(id).unwrap(), Some(times[id]));
    }
    assert!(!kept_path.exists());
    let leftovers: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        leftovers.iter().all(|n| n == "packs" || n == "index.redb"),
        "{leftovers:?}"
    );
    drop(s);
    // An import cut off after its index commit: the file is still there; it is removed, the
    // chunk is not stored twice.
    let legacy = LocalStore::open(&root).unwrap();
    legacy.put(&chunks[0].0, &chunks[0].1).unwrap();
    drop(legacy);
    let s = PackedStore::open(&root, small()).unwrap();
    assert!(!kept_path.exists());
    assert_eq!(s.list().unwrap().count(), chunks.len());
    assert_eq!(s.get(&chunks[0].0).unwrap(), chunks[0].1);
    assert_eq!(
        s.stored_at_us(&chunks[0].0).unwrap(),
        Some(times[&chunks[0].0])
    );
}

/// A damaged record header reads as missing (the location does not name this chunk), a flipped
/// byte in the chunk's bytes is returned as stored (verify's decode finds it).
#[test]
fn damaged_headers_read_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), PackedOptions::default());
    let (a, ab) = chunk(1, 100);
    let (b, bb) = chunk(2, 100);
    s.put_many(&[(a, &ab[..]), (b, &bb[..])]).unwrap();
    let la = s.locate(&a).unwrap().unwrap();
    let f = OpenOptions::new()
        .write(true)
        .open(la.path.as_str())
        .unwrap();
    f.write_all_at(b"XXXX", la.offset - RECORD_HEADER).unwrap();
    let lb = s.locate(&b).unwrap().unwrap();
    f.write_all_at(&[bb[5] ^ 1], lb.offset + 5).unwrap();
    drop(f);
    assert!(matches!(s.get(&a), Err(StoreError::NotFound { .. })));
    let got = s.get(&b).unwrap();
    assert_ne!(got, bb);
    assert_eq!(got.len(), bb.len());
}
