//! GC and retention against a real [`Db`] and [`PackedStore`] (small segments, so that compaction
//! has work), with injected times.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use asgard_core::protocol::CommitEntry;
use asgard_core::{ChunkId, RawPath};

use super::*;
use crate::db::{Auth, UploadedChunk};
use crate::store::{PackedOptions, PackedStore};
use crate::testutil;

const SEC: i64 = 1_000_000;
const HOUR: i64 = 3600 * SEC;
const DAY: i64 = 24 * HOUR;
/// The injected "now" of every test starts here (2023-11-14).
const T0: i64 = 1_700_000_000 * SEC;

struct Fx {
    _dir: tempfile::TempDir,
    db: Db,
    store: PackedStore,
}

fn plain(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
        let store = PackedStore::open(
            &dir.path().join("chunks"),
            PackedOptions {
                segment_size: 4096,
                writers: 2,
            },
        )
        .unwrap();
        Fx {
            _dir: dir,
            db,
            store,
        }
    }

    fn user(&self, user: &str, device: &str) -> Auth {
        testutil::register_at(&self.db, user, device, T0).1
    }

    /// What the upload handler does: put the files, then record them.
    fn upload(&self, a: &Auth, pieces: &[&[u8]], now: i64) {
        testutil::upload_to(&self.db, &self.store, a, pieces, now);
    }

    fn commit(
        &self,
        a: &Auth,
        path: &str,
        pieces: &[&[u8]],
        keep: u32,
        now: i64,
    ) -> Result<u64, DbError> {
        let entry = testutil::file(path, pieces);
        let r = self
            .db
            .commit(a.user_id, a.device_id, &[entry], keep, now)?;
        Ok(r.results[0].version_id.unwrap())
    }

    fn delete(&self, a: &Auth, path: &str, now: i64) {
        let entry = CommitEntry::Deleted {
            path: RawPath::from(path),
        };
        self.db
            .commit(a.user_id, a.device_id, &[entry], 4, now)
            .unwrap();
    }

    fn gc_with(&self, opts: &GcOptions, now: i64) -> GcReport {
        run(&self.db, &self.store, opts, now).unwrap()
    }

    fn gc(&self, grace_s: u64, now: i64) -> GcReport {
        self.gc_with(&opts(grace_s), now)
    }

    fn indexed(&self, data: &[u8]) -> bool {
        self.db.chunk_record(&ChunkId::of(data)).unwrap().is_some()
    }

    fn stored(&self, data: &[u8]) -> bool {
        self.store.exists(&ChunkId::of(data)).unwrap()
    }

    /// Restores a version from the store alone (each chunk verified), as the restore handler does.
    fn restore(&self, a: &Auth, version_id: u64) -> Vec<u8> {
        let (_, rec) = self
            .db
            .find_version(a.user_id, a.device_id, Some(version_id), None, None, None)
            .unwrap();
        let mut out = Vec::new();
        for (id, _) in &rec.chunks {
            let id = ChunkId(*id);
            let bytes = self.store.get(&id).unwrap();
            out.extend(asgard_core::stored::decode_verified(&bytes, &id, 1 << 21).unwrap());
        }
        assert_eq!(ChunkId::of(&out).0, rec.hash.unwrap());
        out
    }
}

fn opts(grace_s: u64) -> GcOptions {
    GcOptions {
        grace: Duration::from_secs(grace_s),
        dry_run: false,
        keep_versions: 4,
        deleted_keep_days: 90,
        batch: DEFAULT_BATCH,
        compact_below_percent: 50,
    }
}

#[test]
fn two_phases_mark_then_delete_and_a_new_reference_saves_a_candidate() {
    let fx = Fx::new();
    let a = fx.user("anna", "laptop");
    fx.upload(&a, &[b"old", b"keep", b"saved"], T0);
    fx.commit(&a, "/f", &[b"old", b"keep"], 1, T0).unwrap();
    fx.commit(&a, "/g", &[b"saved"], 1, T0).unwrap();
    // keep 1: the next version of /f drops the first and releases "old".
    fx.commit(&a, "/f", &[b"keep"], 1, T0 + SEC).unwrap();
    fx.commit(&a, "/g", &[b"keep"], 1, T0 + SEC).unwrap();

    // Within the grace period of the uploads nothing is even marked.
    let r = fx.gc(3600, T0 + 10 * SEC);
    assert_eq!((r.candidates_marked, r.chunks_freed), (0, 0));

    // Phase one marks, and deletes nothing.
    let t1 = T0 + 2 * HOUR;
    let r = fx.gc(3600, t1);
    assert_eq!((r.candidates_marked, r.chunks_freed), (2, 0));
    assert_eq!(
        fx.db
            .chunk_record(&ChunkId::of(b"old"))
            .unwrap()
            .unwrap()
            .gc_candidate_since_us,
        Some(t1)
    );
    assert!(fx.indexed(b"old") && fx.stored(b"old"));
    // The same pass time again (a pass never deletes what it marked itself).
    assert_eq!(fx.gc(3600, t1).chunks_freed, 0);

    // "saved" is referenced again between the passes: the candidate is saved.
    fx.commit(&a, "/g", &[b"saved"], 1, t1 + SEC).unwrap();

    let r = fx.gc(3600, t1 + 2 * SEC);
    assert_eq!(r.chunks_freed, 1, "{r:?}");
    assert_eq!(r.bytes_freed, 4, "one header byte + 3");
    assert!(!fx.indexed(b"old") && !fx.stored(b"old"));
    assert!(fx.indexed(b"saved") && fx.stored(b"saved"));
    assert!(fx.indexed(b"keep") && fx.stored(b"keep"));
    // The ownership row went with the index entry: check asks for an upload again.
    assert_eq!(
        fx.db
            .check(a.user_id, &[ChunkId::of(b"old")], t1 + 3 * SEC)
            .unwrap(),
        vec![ChunkId::of(b"old")]
    );
    assert_eq!(fx.db.stats().unwrap().stored_bytes, 5 + 6);
    assert_eq!(last_report(&fx.db).unwrap().unwrap().chunks_freed, 1);
}

#[test]
fn with_zero_grace_a_released_chunk_is_gone_after_two_passes() {
    let fx = Fx::new();
    let a = fx.user("anna", "laptop");
    fx.upload(&a, &[b"one", b"two"], T0);
    fx.commit(&a, "/f", &[b"one"], 1, T0).unwrap();
    fx.commit(&a, "/f", &[b"two"], 1, T0 + 1).unwrap();
    assert_eq!(fx.gc(0, T0 + 2).candidates_marked, 1);
    assert_eq!(fx.gc(0, T0 + 3).chunks_freed, 1);
    assert!(!fx.stored(b"one") && fx.stored(b"two"));
}

#[test]
fn dry_run_changes_nothing() {
    let fx = Fx::new();
    let a = fx.user("anna", "laptop");
    fx.upload(&a, &[b"a", b"b", b"c", b"d"], T0);
    for (i, p) in [b"a", b"b", b"c"].iter().enumerate() {
        fx.commit(&a, "/f", &[*p], 4, T0 + i as i64).unwrap();
    }
    fx.commit(&a, "/gone", &[b"d"], 4, T0).unwrap();
    fx.delete(&a, "/gone", T0 + 10);
    fx.gc(0, T0 + HOUR); // marks nothing yet: everything is referenced
    let snapshot = |fx: &Fx| {
        let recs: Vec<_> = [b"a", b"b", b"c", b"d"]
            .iter()
            .map(|p| {
                fx.db
                    .chunk_record(&ChunkId::of(*p))
                    .unwrap()
                    .map(|r| (r.refcount, r.gc_candidate_since_us))
            })
            .collect();
        (
            recs,
            fx.db.stats().unwrap().versions,
            fx.store.list().unwrap().count(),
        )
    };
    let before = snapshot(&fx);
    let last_before = last_report(&fx.db).unwrap();
    let mut o = opts(0);
    o.keep_versions = 1;
    o.dry_run = true;
    let now = T0 + 100 * DAY;
    let r = fx.gc_with(&o, now);
    assert!(r.dry_run);
    // Would drop 2 old versions of /f and both versions of /gone.
    assert_eq!(r.versions_pruned, 4, "{r:?}");
    assert_eq!(snapshot(&fx), before);
    assert_eq!(last_report(&fx.db).unwrap(), last_before);

    // The real pass does what the dry run announced (prune), and a dry run of the next phase
    // announces the candidates it would mark.
    o.dry_run = false;
    assert_eq!(fx.gc_with(&o, now).versions_pruned, 4);
    o.dry_run = true;
    let r = fx.gc_with(&o, now + 1);
    assert_eq!(r.chunks_freed, 3, "{r:?}");
    o.dry_run = false;
    assert_eq!(fx.gc_with(&o, now + 2).chunks_freed, 3);
}

#[test]
fn old_orphan_files_are_removed_young_ones_and_indexed_ones_stay() {
    let fx = Fx::new();
    let a = fx.user("anna", "laptop");
    fx.upload(&a, &[b"indexed"], T0);
    fx.commit(&a, "/f", &[b"indexed"], 4, T0).unwrap();
    let orphan = ChunkId::of(b"orphan");
    fx.store
        .put(&orphan, &asgard_core::stored::encode_raw(b"orphan"))
        .unwrap();
    let written = fx.store.stored_at_us(&orphan).unwrap().unwrap();

    // Younger than ORPHAN_MIN_AGE: perhaps an upload in flight. Even with grace 0 it stays.
    let r = fx.gc(0, written + 10 * SEC);
    assert_eq!(r.orphans_removed, 0);
    assert!(fx.stored(b"orphan"));

    let r = fx.gc(0, written + 2 * HOUR);
    assert_eq!(r.orphans_removed, 1);
    assert!(!fx.stored(b"orphan"));
    assert!(fx.stored(b"indexed"));
}

#[test]
fn the_chunk_walk_reads_in_bounded_batches() {
    let fx = Fx::new();
    let a = fx.user("anna", "laptop");
    let pieces: Vec<Vec<u8>> = (0..10).map(|i| format!("piece {i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
    fx.upload(&a, &refs, T0);
    fx.commit(&a, "/keep", &refs[..4], 4, T0).unwrap();
    let mut o = opts(0);
    o.batch = 3;
    let r = fx.gc_with(&o, T0 + 1);
    assert_eq!(r.chunks_scanned, 10);
    assert_eq!(r.chunk_batches, 4, "3 + 3 + 3 + 1");
    assert_eq!(r.candidates_marked, 6);
    let r = fx.gc_with(&o, T0 + 2);
    assert_eq!(r.chunks_freed, 6);
    for (i, p) in refs.iter().enumerate() {
        assert_eq!(fx.stored(p), i < 4, "piece {i}");
    }
}

#[test]
fn deleted_paths_keep_their_versions_for_deleted_keep_days() {
    let fx = Fx::new();
    let a = fx.user("anna", "laptop");
    fx.upload(&a, &[b"v1", b"v2", b"other"], T0);
    let v1 = fx.commit(&a, "/old", &[b"v1"], 4, T0).unwrap();
    fx.commit(&a, "/old", &[b"v2"], 4, T0 + SEC).unwrap();
    fx.commit(&a, "/other", &[b"other"], 4, T0).unwrap();
    let deleted_at = T0 + DAY;
    fx.delete(&a, "/old", deleted_at);

    // 89 days later: all three versions (two content, one marker) are still there.
    let r = fx.gc(0, deleted_at + 89 * DAY);
    assert_eq!(r.versions_pruned, 0);
    assert_eq!(fx.restore(&a, v1), b"v1");

    // A day after the 90 days: every version goes, and then the chunks.
    let t = deleted_at + 90 * DAY + SEC;
    let r = fx.gc(0, t);
    assert_eq!((r.versions_pruned, r.paths_removed), (3, 1), "{r:?}");
    assert!(matches!(
        fx.db
            .find_version(a.user_id, a.device_id, Some(v1), None, None, None),
        Err(DbError::NotFound)
    ));
    assert_eq!(fx.gc(0, t + 1).chunks_freed, 2);
    assert!(!fx.stored(b"v1") && !fx.stored(b"v2") && fx.stored(b"other"));

    // A path deleted and then created again is not a deleted path.
    fx.upload(&a, &[b"back"], t + 2);
    fx.commit(&a, "/other", &[b"back"], 4, t + 2).unwrap();
    fx.delete(&a, "/other", t + 3);
    fx.commit(&a, "/other", &[b"back"], 4, t + 4).unwrap();
    let r = fx.gc(0, t + 200 * DAY);
    assert_eq!(
        r.versions_pruned, 0,
        "the marker between two contents is history"
    );
}

#[test]
fn a_users_own_keep_versions_applies_at_commit_and_in_gc() {
    let fx = Fx::new();
    let anna = fx.user("anna", "laptop");
    let bert = fx.user("bert", "pc");
    let contents: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("version {i}").into_bytes())
        .collect();
    for (who, prefix) in [(&anna, "a"), (&bert, "b")] {
        for (i, c) in contents.iter().enumerate() {
            fx.upload(who, &[c], T0);
            fx.commit(who, &format!("/{prefix}"), &[c], 4, T0 + i as i64)
                .unwrap();
        }
    }
    let count = |a: &Auth, path: &str| {
        let p = crate::db::ListParams {
            devices: crate::db::DeviceSel::All,
            prefix: Some(RawPath::from(path)),
            at_us: None,
            after: None,
            limit: 10,
        };
        fx.db.list(a.user_id, &p).unwrap().0[0].versions.len()
    };
    assert_eq!((count(&anna, "/a"), count(&bert, "/b")), (4, 4));

    assert!(matches!(
        fx.db.set_keep_override("nobody", Some(2)),
        Err(DbError::NotFound)
    ));
    fx.db.set_keep_override("anna", Some(2)).unwrap();
    let users = fx.db.list_users().unwrap();
    assert_eq!(users[0].keep_versions, Some(2));
    assert_eq!(users[1].keep_versions, None);

    // The GC applies it to every path of anna, and only of anna.
    let r = fx.gc(0, T0 + HOUR);
    assert_eq!(r.versions_pruned, 2);
    assert_eq!((count(&anna, "/a"), count(&bert, "/b")), (2, 4));

    // Commit applies it too, even above the configured value.
    fx.db.set_keep_override("bert", Some(6)).unwrap();
    for (i, c) in [b"x1", b"x2", b"x3"].iter().enumerate() {
        fx.upload(&bert, &[*c], T0 + HOUR);
        fx.upload(&anna, &[*c], T0 + HOUR);
        fx.commit(&bert, "/b", &[*c], 4, T0 + HOUR + i as i64)
            .unwrap();
        fx.commit(&anna, "/a", &[*c], 4, T0 + HOUR + i as i64)
            .unwrap();
    }
    assert_eq!((count(&anna, "/a"), count(&bert, "/b")), (2, 6));
    fx.db.set_keep_override("bert", None).unwrap();
    assert_eq!(fx.gc(0, T0 + 2 * HOUR).versions_pruned, 2);
    assert_eq!(count(&bert, "/b"), 4);
}

/// The interleaving the lease exists for: `check` tells an agent it need not upload a chunk that
/// no version references; GC passes run before the agent commits.
#[test]
fn a_check_lease_protects_a_chunk_until_the_commit() {
    let fx = Fx::new();
    let a = fx.user("anna", "laptop");
    fx.upload(&a, &[b"reused", b"other"], T0);
    fx.commit(&a, "/f", &[b"reused"], 1, T0).unwrap();
    fx.commit(&a, "/f", &[b"other"], 1, T0 + 1).unwrap(); // "reused" is unreferenced now
    let id = ChunkId::of(b"reused");
    let later = T0 + 10 * DAY;
    fx.gc(3600, later); // marked

    // The agent's check at `later + 1s`: present (and leased, the mark cleared).
    assert!(
        fx.db
            .check(a.user_id, &[id], later + SEC)
            .unwrap()
            .is_empty()
    );
    // Two GC passes with the default grace before the agent commits: the lease protects it.
    fx.gc(3600, later + 2 * SEC);
    let r = fx.gc(3600, later + 3 * SEC);
    assert_eq!(r.chunks_freed, 0);
    let v = fx
        .commit(&a, "/g", &[b"reused"], 1, later + 4 * SEC)
        .unwrap();
    assert_eq!(fx.restore(&a, v), b"reused");
}

/// The same interleaving without a lease young enough (here a grace of 0): the chunk goes, and the
/// commit that relied on the check is refused instead of referencing a missing chunk.
#[test]
fn without_a_lease_the_commit_is_refused_never_dangling() {
    let fx = Fx::new();
    let a = fx.user("anna", "laptop");
    fx.upload(&a, &[b"reused", b"other"], T0);
    fx.commit(&a, "/f", &[b"reused"], 1, T0).unwrap();
    fx.commit(&a, "/f", &[b"other"], 1, T0 + 1).unwrap();
    let id = ChunkId::of(b"reused");
    let later = T0 + 10 * DAY;
    assert!(fx.db.check(a.user_id, &[id], later).unwrap().is_empty());
    fx.gc(0, later + SEC);
    assert_eq!(fx.gc(0, later + 2 * SEC).chunks_freed, 1);
    match fx.commit(&a, "/g", &[b"reused"], 1, later + 3 * SEC) {
        Err(DbError::MissingChunks(m)) => assert_eq!(m, vec![id]),
        other => panic!("commit must be refused: {other:?}"),
    }
}

/// An upload handler skips writing a chunk the index knows; if the GC removes it before the
/// upload is recorded, the record must not bring back an index entry without a file.
#[test]
fn an_upload_racing_the_gc_never_records_a_vanished_chunk() {
    let fx = Fx::new();
    let anna = fx.user("anna", "laptop");
    let bert = fx.user("bert", "pc");
    fx.upload(&anna, &[b"shared"], T0);
    let id = ChunkId::of(b"shared");
    // Bert's upload: the index knows the chunk, so the handler does not write it...
    assert!(fx.db.chunk_known(&id).unwrap());
    // ...meanwhile two GC passes remove it (never referenced, lease long gone)...
    fx.gc(0, T0 + DAY);
    assert_eq!(fx.gc(0, T0 + DAY + 1).chunks_freed, 1);
    // ...then the handler records what it verified.
    let chunk = UploadedChunk {
        id,
        stored_len: 7,
        plain_len: 6,
    };
    assert_eq!(
        crate::service::ingest::record_verified(
            &fx.db,
            &fx.store,
            bert.user_id,
            &[chunk],
            &[],
            T0 + DAY + 2
        )
        .unwrap(),
        0
    );
    assert!(fx.db.chunk_record(&id).unwrap().is_none());
    assert!(matches!(
        fx.commit(&bert, "/f", &[b"shared"], 4, T0 + DAY + 3),
        Err(DbError::MissingChunks(_))
    ));
}

#[test]
fn a_second_pass_at_the_same_time_is_refused() {
    let fx = Fx::new();
    let _g = fx.db.gc_running.lock().unwrap();
    assert!(matches!(
        run(&fx.db, &fx.store, &opts(0), T0),
        Err(GcError::AlreadyRunning)
    ));
}

/// Acceptance 1: commits with shared and unique chunks, retention lowered (globally and for one
/// user) and deleted paths past `deleted_keep_days`; GC then frees exactly the chunks that no
/// retained version uses (counted against a model of the rules computed here), and every retained
/// version restores identical.
#[test]
fn prune_and_gc_free_exactly_the_chunks_no_retained_version_uses() {
    let fx = Fx::new();
    let anna_laptop = fx.user("anna", "laptop");
    let anna_pc = fx.user("anna", "pc");
    let bert = fx.user("bert", "laptop");
    let devices = [&anna_laptop, &anna_pc, &bert];

    // Pieces: a few shared by everyone, many unique ones.
    let shared: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("shared block {i}").repeat(50).into_bytes())
        .collect();
    let unique = |tag: &str, i: usize| format!("{tag} unique {i}").repeat(20 + i).into_bytes();

    /// One committed version in the model.
    #[derive(Clone)]
    struct MV {
        id: u64,
        pieces: Vec<Vec<u8>>,
        deleted: bool,
        time: i64,
    }
    // (device index, path) → versions oldest first
    let mut model: BTreeMap<(usize, String), Vec<MV>> = BTreeMap::new();
    let mut uploaded: BTreeSet<Vec<u8>> = BTreeSet::new();
    let commit_keep = 4; // the configured keep_versions at commit time
    let mut t = T0;
    let mut commit = |dev: usize,
                      path: &str,
                      pieces: Vec<Vec<u8>>,
                      model: &mut BTreeMap<(usize, String), Vec<MV>>| {
        t += SEC;
        let a = devices[dev];
        let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
        fx.upload(a, &refs, t);
        uploaded.extend(pieces.iter().cloned());
        let id = fx.commit(a, path, &refs, commit_keep, t).unwrap();
        let vs = model.entry((dev, path.to_owned())).or_default();
        vs.push(MV {
            id,
            pieces,
            deleted: false,
            time: t,
        });
        // Commit-time retention (content versions beyond commit_keep, then leading markers).
        let content = vs.iter().filter(|v| !v.deleted).count();
        if content > commit_keep as usize {
            let pos = vs.iter().position(|v| !v.deleted).unwrap();
            vs.remove(pos);
            while vs.first().is_some_and(|v| v.deleted) {
                vs.remove(0);
            }
        }
    };
    for round in 0..6 {
        // anna/laptop: a report rewritten every round (shared block + a unique one).
        commit(
            0,
            "/docs/report",
            vec![shared[0].clone(), unique("report", round)],
            &mut model,
        );
        // bert: a file that shares anna's unique report pieces of even rounds.
        if round % 2 == 0 {
            commit(
                2,
                "/x/copy",
                vec![unique("report", round), shared[1].clone()],
                &mut model,
            );
        }
    }
    commit(
        1,
        "/pc/notes",
        vec![shared[2].clone(), unique("notes", 0)],
        &mut model,
    );
    commit(
        1,
        "/pc/notes",
        vec![shared[2].clone(), unique("notes", 1)],
        &mut model,
    );
    commit(1, "/pc/recent", vec![unique("recent", 0)], &mut model);
    commit(
        2,
        "/x/lonely",
        vec![unique("lonely", 0), unique("lonely", 1)],
        &mut model,
    );

    // Deletions: /pc/notes long ago, /pc/recent lately, /x/lonely long ago.
    let delete =
        |dev: usize, path: &str, at: i64, model: &mut BTreeMap<(usize, String), Vec<MV>>| {
            fx.delete(devices[dev], path, at);
            model.get_mut(&(dev, path.to_owned())).unwrap().push(MV {
                id: 0,
                pieces: vec![],
                deleted: true,
                time: at,
            });
        };
    delete(1, "/pc/notes", T0 + DAY, &mut model);
    delete(2, "/x/lonely", T0 + DAY, &mut model);
    let gc_time = T0 + 100 * DAY;
    delete(1, "/pc/recent", gc_time - 5 * DAY, &mut model);

    // Retention lowered: anna keeps 2, everyone else the (now) configured 3.
    fx.db.set_keep_override("anna", Some(2)).unwrap();
    let keep_of = |dev: usize| if dev < 2 { 2 } else { 3 };
    let mut retained: BTreeMap<(usize, String), Vec<MV>> = BTreeMap::new();
    for ((dev, path), vs) in &model {
        let newest = vs.last().unwrap();
        if newest.deleted && newest.time + 90 * DAY <= gc_time {
            continue;
        }
        let content = vs.iter().filter(|v| !v.deleted).count();
        let mut excess = content.saturating_sub(keep_of(*dev));
        let mut kept = Vec::new();
        let mut content_kept = false;
        for v in vs {
            let drop = if v.deleted {
                !content_kept
            } else if excess > 0 {
                excess -= 1;
                true
            } else {
                content_kept = true;
                false
            };
            if !drop {
                kept.push(v.clone());
            }
        }
        retained.insert((*dev, path.clone()), kept);
    }
    let used: BTreeSet<Vec<u8>> = retained
        .values()
        .flatten()
        .flat_map(|v| v.pieces.iter().cloned())
        .collect();
    let expect_freed: BTreeSet<&Vec<u8>> = uploaded.difference(&used).collect();
    assert_eq!(
        expect_freed.len(),
        7,
        "the scenario frees a fair number of chunks"
    );
    assert!(used.contains(&shared[0]) && used.contains(&unique("report", 2)));
    let expect_bytes: u64 = expect_freed.iter().map(|p| p.len() as u64 + 1).sum();

    let mut o = opts(3600);
    o.keep_versions = 3;
    let r1 = fx.gc_with(&o, gc_time);
    let r2 = fx.gc_with(&o, gc_time + SEC);
    assert_eq!(r1.chunks_freed, 0, "phase one only marks");
    assert_eq!(r1.candidates_marked as usize, expect_freed.len());
    assert_eq!(
        r2.chunks_freed as usize,
        expect_freed.len(),
        "{r1:?}\n{r2:?}"
    );
    assert_eq!(r2.bytes_freed, expect_bytes);
    let expect_pruned: usize = model.values().map(Vec::len).sum::<usize>()
        - retained.values().map(Vec::len).sum::<usize>();
    assert_eq!(r1.versions_pruned as usize, expect_pruned);

    // Exactly the used chunks remain, in the index and in the store.
    let in_store: BTreeSet<ChunkId> = fx.store.list().unwrap().map(Result::unwrap).collect();
    let want: BTreeSet<ChunkId> = used.iter().map(|p| ChunkId::of(p)).collect();
    assert_eq!(in_store, want);
    for p in &uploaded {
        assert_eq!(fx.indexed(p), used.contains(p));
    }

    // Every retained version is listed and restores identical; nothing else is listed.
    let mut listed: HashMap<(u64, String), Vec<u64>> = HashMap::new();
    for a in [&anna_laptop, &bert] {
        let p = crate::db::ListParams {
            devices: crate::db::DeviceSel::All,
            prefix: None,
            at_us: None,
            after: None,
            limit: 100,
        };
        for f in fx.db.list(a.user_id, &p).unwrap().0 {
            let mut ids: Vec<u64> = f.versions.iter().map(|v| v.id).collect();
            ids.reverse();
            listed.insert((a.user_id, f.path.lossy()), ids);
        }
    }
    assert_eq!(listed.len(), retained.len());
    for ((dev, path), vs) in &retained {
        let a = devices[*dev];
        let ids = &listed[&(a.user_id, path.clone())];
        assert_eq!(ids.len(), vs.len(), "{path}");
        for (v, id) in vs.iter().zip(ids) {
            if v.deleted {
                continue;
            }
            assert_eq!(v.id, *id, "{path}");
            assert_eq!(
                fx.restore(a, v.id),
                plain(&v.pieces.iter().map(|p| p.as_slice()).collect::<Vec<_>>())
            );
        }
    }
}

/// Random single-threaded interleavings of uploads, commits (with retention), deletions, checks
/// and GC passes with a zero grace: after every step each stored refcount equals the references
/// of the retained versions, and every referenced chunk is in the index and the store.
#[test]
fn refcounts_match_the_retained_versions_under_random_interleavings() {
    let fx = Fx::new();
    let users = [
        fx.user("anna", "a"),
        fx.user("anna", "b"),
        fx.user("bert", "c"),
    ];
    let pool: Vec<Vec<u8>> = (0..12).map(|i| format!("piece {i}").into_bytes()).collect();
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut t = T0;
    for step in 0..600 {
        t += SEC;
        let a = &users[next(3) as usize];
        let path = format!("/p{}", next(4));
        match next(6) {
            0 | 1 => {
                let pieces: Vec<&[u8]> = (0..1 + next(3))
                    .map(|_| pool[next(12) as usize].as_slice())
                    .collect();
                let missing = fx
                    .db
                    .check(
                        a.user_id,
                        &pieces.iter().map(|p| ChunkId::of(p)).collect::<Vec<_>>(),
                        t,
                    )
                    .unwrap();
                let up: Vec<&[u8]> = pieces
                    .iter()
                    .copied()
                    .filter(|p| missing.contains(&ChunkId::of(p)))
                    .collect();
                fx.upload(a, &up, t);
                if next(2) == 0 {
                    fx.gc(0, t);
                    t += 1;
                }
                match fx.commit(a, &path, &pieces, 1 + next(2) as u32, t) {
                    Ok(_) | Err(DbError::MissingChunks(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            2 => fx.delete(a, &path, t),
            _ => {
                fx.gc(0, t);
            }
        }
        // The model: references of every retained version.
        let mut refs: HashMap<ChunkId, u64> = HashMap::new();
        for u in &users {
            let p = crate::db::ListParams {
                devices: crate::db::DeviceSel::Id(u.device_id),
                prefix: None,
                at_us: None,
                after: None,
                limit: 100,
            };
            for f in fx.db.list(u.user_id, &p).unwrap().0 {
                for v in f.versions.iter().filter(|v| !v.deleted) {
                    let (_, rec) = fx
                        .db
                        .find_version(u.user_id, u.device_id, Some(v.id), None, None, None)
                        .unwrap();
                    for (c, _) in rec.chunks {
                        *refs.entry(ChunkId(c)).or_default() += 1;
                    }
                }
            }
        }
        for p in &pool {
            let id = ChunkId::of(p);
            let want = refs.get(&id).copied().unwrap_or(0);
            let got = fx.db.chunk_record(&id).unwrap().map_or(0, |r| r.refcount);
            assert_eq!(
                got,
                want,
                "step {step}: refcount of {:?}",
                String::from_utf8_lossy(p)
            );
            if want > 0 {
                assert!(fx.stored(p), "step {step}: referenced chunk missing");
            }
        }
    }
}
