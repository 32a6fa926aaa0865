use super::*;
use crate::db::{Auth, UploadedChunk};
use crate::store::LocalStore;
use crate::testutil;
use asgard_core::RawPath;

struct Env {
    _dir: tempfile::TempDir,
    db: Db,
    store: LocalStore,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
    let store = LocalStore::open(&dir.path().join("chunks")).unwrap();
    Env {
        _dir: dir,
        db,
        store,
    }
}

impl Env {
    fn register(&self, user: &str) -> Auth {
        testutil::register_at(&self.db, user, "pc", 1).1
    }

    /// Uploads the chunks (store + index) as `a` would, without healing.
    fn upload(&self, a: &Auth, parts: &[&[u8]]) {
        let mut list = Vec::new();
        for p in parts {
            let id = ChunkId::of(p);
            let stored = stored::encode(p, 3);
            self.store.put(&id, &stored).unwrap();
            list.push(UploadedChunk {
                id,
                stored_len: stored.len() as u64,
                plain_len: p.len() as u32,
            });
        }
        crate::service::ingest::record_verified(&self.db, &self.store, a.user_id, &list, &[], 1)
            .unwrap();
    }

    /// Uploads and commits one file of these parts; returns the version id.
    fn file(&self, a: &Auth, path: &str, parts: &[&[u8]]) -> u64 {
        self.upload(a, parts);
        let entry = testutil::file(path, parts);
        let r = self
            .db
            .commit(a.user_id, a.device_id, &[entry], 4, 2)
            .unwrap();
        r.results[0].version_id.unwrap()
    }

    fn verify(&self, opts: VerifyOptions) -> VerifyReport {
        run(&self.db, &self.store, &opts, 100).unwrap()
    }

    fn chunk_file(&self, data: &[u8]) -> std::path::PathBuf {
        self.store.path_of(&ChunkId::of(data))
    }

    fn flip_byte(&self, data: &[u8]) {
        let path = self.chunk_file(data);
        let mut b = std::fs::read(&path).unwrap();
        let i = b.len() / 2;
        b[i] ^= 0x55;
        std::fs::write(&path, b).unwrap();
    }

    fn bad(&self, data: &[u8]) -> bool {
        self.db
            .chunk_record(&ChunkId::of(data))
            .unwrap()
            .unwrap()
            .bad_since_us
            .is_some()
    }
}

fn opts() -> VerifyOptions {
    VerifyOptions {
        batch: 3,
        ..VerifyOptions::default()
    }
}

/// Distinct pseudo-random chunk contents.
fn data(n: u32) -> Vec<u8> {
    asgard_core::testdata::random_bytes(200, u64::from(n))
}

#[test]
fn clean_store_verifies_clean_in_small_batches() {
    let e = env();
    let a = e.register("anna");
    let parts: Vec<Vec<u8>> = (0..10).map(data).collect();
    for (i, p) in parts.iter().enumerate() {
        e.file(&a, &format!("/f{i}"), &[p, &parts[(i + 1) % 10]]);
    }
    let r = e.verify(opts());
    assert!(r.clean(), "{r:?}");
    assert_eq!(r.chunks_in_scope, 10);
    assert_eq!(r.chunks_checked, 10);
    assert_eq!(r.versions_checked, 10);
    assert_eq!(r.references_checked, 20);
    let last = e.db.last_verify().unwrap().unwrap();
    assert_eq!(last.chunks_checked, 10);
    assert_eq!(last.bad_chunks, 0);
    assert_eq!(last.sample_basis_points, 10_000);
}

/// A flipped byte is "damaged", a deleted file "missing"; both are marked bad, the versions
/// that use them are listed (with user, device, path and id), and a second run lists them
/// again (already marked) until they are healed.
#[test]
fn missing_and_damaged_are_told_apart_and_listed_until_healed() {
    let e = env();
    let a = e.register("anna");
    let (x, y, z) = (data(1), data(2), data(3));
    let vx = e.file(&a, "/home/anna/x.txt", &[&x, &z]);
    let vy = e.file(&a, "/home/anna/y.txt", &[&y]);
    e.file(&a, "/home/anna/z.txt", &[&z]);
    e.flip_byte(&x);
    std::fs::remove_file(e.chunk_file(&y)).unwrap();

    for round in 0..2 {
        let r = e.verify(opts());
        assert!(!r.clean());
        assert_eq!(r.damaged.len(), 1, "round {round}: {r:?}");
        assert_eq!(r.damaged[0].id, ChunkId::of(&x));
        assert_eq!(r.missing, vec![ChunkId::of(&y)]);
        assert_eq!(r.bad_chunks, 2);
        let mut listed: Vec<(u64, String)> = r
            .affected_versions
            .iter()
            .map(|v| (v.version_id, v.path.to_string()))
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            vec![
                (vx, "/home/anna/x.txt".to_owned()),
                (vy, "/home/anna/y.txt".to_owned())
            ]
        );
        assert!(
            r.affected_versions
                .iter()
                .all(|v| v.user == "anna" && v.device == "pc")
        );
        assert!(e.bad(&x) && e.bad(&y) && !e.bad(&z));
    }
    assert_eq!(e.db.last_verify().unwrap().unwrap().bad_chunks, 2);

    // Heal x through the upload path; y stays bad.
    let stored_x = stored::encode(&x, 3);
    e.store.replace(&ChunkId::of(&x), &stored_x).unwrap();
    let up = UploadedChunk {
        id: ChunkId::of(&x),
        stored_len: stored_x.len() as u64,
        plain_len: x.len() as u32,
    };
    crate::service::ingest::record_verified(&e.db, &e.store, a.user_id, &[up], &[up.id], 5)
        .unwrap();
    assert!(!e.bad(&x));
    let r = e.verify(opts());
    assert_eq!(r.bad_chunks, 1);
    assert!(r.damaged.is_empty());
    assert_eq!(r.affected_versions.len(), 1);
    assert_eq!(r.affected_versions[0].version_id, vy);
}

/// A bad chunk whose bytes are fine again (the file was put back) loses its mark.
#[test]
fn a_mark_is_cleared_when_the_bytes_verify_again() {
    let e = env();
    let a = e.register("anna");
    let x = data(7);
    e.file(&a, "/x", &[&x]);
    let saved = std::fs::read(e.chunk_file(&x)).unwrap();
    std::fs::remove_file(e.chunk_file(&x)).unwrap();
    assert!(!e.verify(opts()).clean());
    std::fs::write(e.chunk_file(&x), saved).unwrap();
    let r = e.verify(opts());
    assert!(r.clean(), "{r:?}");
    assert_eq!(r.marks_cleared, 1);
    assert!(!e.bad(&x));
}

/// A lost chunk that no retained version references is reported and marked, but nothing
/// committed is lost: the run counts as clean.
#[test]
fn damage_to_an_unreferenced_chunk_does_not_fail_the_run() {
    let e = env();
    let a = e.register("anna");
    let orphan = data(8);
    e.upload(&a, &[&orphan]);
    e.file(&a, "/kept", &[&data(9)]);
    std::fs::remove_file(e.chunk_file(&orphan)).unwrap();
    let r = e.verify(opts());
    assert_eq!(r.missing, vec![ChunkId::of(&orphan)]);
    assert_eq!((r.bad_chunks, r.unreferenced_bad), (1, 1));
    assert!(r.clean(), "{r:?}");
    assert!(
        e.bad(&orphan),
        "check asks for it should anyone need it again"
    );
}

#[test]
fn sample_covers_about_the_percentage() {
    let n = 20_000u32;
    let ids: Vec<ChunkId> = (0..n).map(|i| ChunkId::of(&i.to_le_bytes())).collect();
    for (pct, seed) in [(5.0, 1u64), (10.0, 2), (50.0, 3)] {
        let taken = ids.iter().filter(|id| in_sample(id, pct, seed)).count() as f64;
        let share = taken / f64::from(n) * 100.0;
        assert!((share - pct).abs() < pct * 0.15 + 0.3, "{pct} %: {share} %");
    }
    assert!(ids.iter().all(|id| in_sample(id, 100.0, 9)));
    // Another seed picks another sample.
    let both = ids
        .iter()
        .filter(|id| in_sample(id, 10.0, 1) && in_sample(id, 10.0, 2))
        .count();
    assert!(
        both < 400,
        "samples of two seeds overlap by {both} of ~2000"
    );

    // The run reads about that share of the index, and every bad chunk on top.
    let e = env();
    let u = e.register("anna");
    let parts: Vec<Vec<u8>> = (0..600).map(data).collect();
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    e.upload(&u, &refs);
    let r = e.verify(VerifyOptions {
        sample_percent: Some(20.0),
        seed: Some(42),
        batch: 50,
        ..VerifyOptions::default()
    });
    assert_eq!(r.chunks_in_scope, 600);
    assert!(
        (80..=160).contains(&r.chunks_checked),
        "{}",
        r.chunks_checked
    );
    assert_eq!(
        e.db.last_verify().unwrap().unwrap().sample_basis_points,
        2000
    );
}

/// A chunk marked bad is read in every run, sampled or not.
#[test]
fn bad_chunks_are_read_whatever_the_sample() {
    let e = env();
    let a = e.register("anna");
    let parts: Vec<Vec<u8>> = (0..50).map(data).collect();
    for (i, p) in parts.iter().enumerate() {
        e.file(&a, &format!("/f{i}"), &[p]);
    }
    let seed = 5;
    let outside = parts
        .iter()
        .find(|p| !in_sample(&ChunkId::of(p), 1.0, seed))
        .unwrap();
    std::fs::remove_file(e.chunk_file(outside)).unwrap();
    assert!(e.verify(opts()).bad_chunks == 1);
    let r = e.verify(VerifyOptions {
        sample_percent: Some(1.0),
        seed: Some(seed),
        ..opts()
    });
    assert_eq!(r.missing, vec![ChunkId::of(outside)]);
    assert_eq!(r.affected_versions_count, 1);
}

/// `--user` reads only that user's chunks and versions.
#[test]
fn user_limits_the_scope() {
    let e = env();
    let a = e.register("anna");
    let b = e.register("bert");
    let (shared, only_a, only_b) = (data(1), data(2), data(3));
    e.file(&a, "/a1", &[&shared, &only_a]);
    e.file(&b, "/b1", &[&shared]);
    e.file(&b, "/b2", &[&only_b]);
    e.flip_byte(&only_b);

    let ra = e.verify(VerifyOptions {
        user: Some("anna".into()),
        ..opts()
    });
    assert!(ra.clean(), "{ra:?}");
    assert_eq!(ra.chunks_in_scope, 2);
    assert_eq!(ra.versions_checked, 1);
    assert!(!e.bad(&only_b), "anna's run does not look at bert's chunk");

    let rb = e.verify(VerifyOptions {
        user: Some("bert".into()),
        ..opts()
    });
    assert_eq!(rb.chunks_in_scope, 2);
    assert_eq!(rb.versions_checked, 2);
    assert_eq!(rb.damaged.len(), 1);
    assert_eq!(rb.affected_versions.len(), 1);
    assert_eq!(rb.affected_versions[0].user, "bert");
    assert_eq!(rb.affected_versions[0].path, RawPath::from("/b2"));
    assert_eq!(e.db.last_verify().unwrap().unwrap().user_id, b.user_id);

    assert!(matches!(
        run(
            &e.db,
            &e.store,
            &VerifyOptions {
                user: Some("nobody".into()),
                ..opts()
            },
            1
        ),
        Err(VerifyError::UnknownUser(_))
    ));
}

/// A reference to a chunk the index lacks is reported and recorded again as a bad chunk whose
/// refcount counts every reference, so that it heals like any other and GC keeps it.
#[test]
fn a_reference_missing_from_the_index_is_recorded_as_bad() {
    let e = env();
    let a = e.register("anna");
    let x = data(9);
    let v1 = e.file(&a, "/one", &[&x, &x]);
    let v2 = e.file(&a, "/two", &[&x]);
    e.db.remove_chunk_record_for_tests(&ChunkId::of(&x));
    std::fs::remove_file(e.chunk_file(&x)).unwrap();
    let r = e.verify(VerifyOptions { batch: 1, ..opts() });
    assert_eq!(r.unindexed, vec![ChunkId::of(&x)]);
    assert_eq!(r.bad_chunks, 1);
    let mut ids: Vec<u64> = r.affected_versions.iter().map(|v| v.version_id).collect();
    ids.sort();
    assert_eq!(ids, vec![v1, v2]);
    let rec = e.db.chunk_record(&ChunkId::of(&x)).unwrap().unwrap();
    assert_eq!(rec.refcount, 3);
    assert!(rec.bad_since_us.is_some());
    // The next run sees an indexed, missing chunk.
    let r = e.verify(opts());
    assert_eq!(r.missing, vec![ChunkId::of(&x)]);
    assert!(r.unindexed.is_empty());
    assert_eq!(
        e.db.chunk_record(&ChunkId::of(&x))
            .unwrap()
            .unwrap()
            .refcount,
        3
    );
}

#[test]
fn a_second_run_at_once_is_refused() {
    let e = env();
    let guard = RunGuard::take(&e.db).unwrap();
    let other = env();
    run(&other.db, &other.store, &opts(), 1).expect("another database is not blocked");
    assert!(matches!(
        run(&e.db, &e.store, &opts(), 1),
        Err(VerifyError::AlreadyRunning)
    ));
    drop(guard);
    run(&e.db, &e.store, &opts(), 1).unwrap();
}

#[test]
fn report_text_is_german_and_names_the_versions() {
    let e = env();
    let a = e.register("anna");
    let x = data(4);
    e.file(&a, "/home/anna/Brief.txt", &[&x]);
    std::fs::remove_file(e.chunk_file(&x)).unwrap();
    let text = crate::present::reports::verify_report(&e.verify(opts()), asgard_core::Lang::De);
    assert!(text.contains("Fehlender Chunk"), "{text}");
    assert!(text.contains("anna\tpc\t"), "{text}");
    assert!(text.contains("/home/anna/Brief.txt"), "{text}");
    assert!(text.contains("Schäden gefunden"), "{text}");
}
