use std::collections::HashSet;

use super::*;
use crate::config::Registration;
use crate::testutil::{
    OPEN, commit, file, login_request as req, open_db as open, register, upload,
};
use asgard_core::protocol::{CommitEntry, CommitOutcome, CommitResponse, DeviceStatus};
use asgard_core::{ChunkId, ChunkParams, RawPath};
use serde::Serialize;

fn refcount(db: &Db, data: &[u8]) -> u64 {
    db.chunk_record(&ChunkId::of(data))
        .unwrap()
        .unwrap()
        .refcount
}

#[test]
fn token_hashing() {
    let t = new_token();
    assert!(t.starts_with("asg_") && t.len() == 68, "{t}");
    assert_ne!(t, new_token());
    assert_eq!(hash_token(&t), hash_token(&t));
    assert_ne!(hash_token(&t), hash_token(&new_token()));
    assert_eq!(hash_token("x"), *blake3::hash(b"x").as_bytes());
    assert!(secrets_equal("k", "k") && !secrets_equal("k", "K"));
}

/// The login cases of a token, an unknown token and another device's token; a registration
/// in the modes `closed` and `approve`. (Further devices, codes and names: `enroll/tests.rs`.)
#[test]
fn login_flows() {
    let (_d, db) = open();
    let (token, auth) = register(&db, "anna", "laptop");
    assert_eq!(auth.status, DeviceStatus::Active);
    let ok = db
        .login(&req("anna", "laptop"), Some(hash_token(&token)), OPEN, 0)
        .unwrap();
    assert_eq!(ok.token, None);
    assert_eq!(ok.status, DeviceStatus::Active);
    let wrong = db.login(&req("anna", "laptop"), Some(hash_token("asg_x")), OPEN, 0);
    assert!(matches!(wrong, Err(DbError::Unauthorized)));
    // A valid token of another device is not valid for this one.
    let (token2, _) = register(&db, "anna", "desktop");
    let other = db.login(&req("anna", "laptop"), Some(hash_token(&token2)), OPEN, 0);
    assert!(matches!(other, Err(DbError::Unauthorized)));

    let closed = LoginPolicy {
        registration: Registration::Closed,
        enrollment_key: None,
    };
    assert!(matches!(
        db.login(&req("bob", "pc"), None, closed, 0),
        Err(DbError::RegistrationClosed)
    ));
    let key = hash_token("geheim");
    let approve = LoginPolicy {
        registration: Registration::Approve,
        enrollment_key: Some(&key),
    };
    assert!(matches!(
        db.login(&req("bob", "pc"), None, approve, 0),
        Err(DbError::EnrollmentKey)
    ));
    let mut r = req("bob", "pc");
    r.enrollment_key = Some("geheim".into());
    let out = db.login(&r, None, approve, 0).unwrap();
    assert_eq!(out.status, DeviceStatus::Pending);
    let hash = hash_token(&out.token.unwrap());
    assert_eq!(
        db.authenticate(&hash).unwrap().status,
        DeviceStatus::Pending
    );
    db.approve_device("bob", "pc").unwrap();
    assert_eq!(db.authenticate(&hash).unwrap().status, DeviceStatus::Active);
    assert_eq!(db.list_devices().unwrap().len(), 3);
    assert_eq!(db.stats().unwrap().users, 2);
}

#[test]
fn check_answers_per_user() {
    let (_d, db) = open();
    let (_, a) = register(&db, "a", "d");
    let (_, b) = register(&db, "b", "d");
    let ids = upload(&db, &a, &[b"secret"]);
    let other = ChunkId::of(b"other");
    assert!(
        db.check(a.user_id, &[ids[0], ids[0]], now_us())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.check(b.user_id, &[ids[0], other, ids[0]], now_us())
            .unwrap(),
        vec![ids[0], other]
    );
}

#[test]
fn missing_chunk_refuses_commit_and_writes_nothing() {
    let (_d, db) = open();
    let (_, a) = register(&db, "a", "d");
    let (_, b) = register(&db, "b", "d");
    upload(&db, &a, &[b"one"]);
    upload(&db, &b, &[b"foreign"]);
    // "two" was never uploaded; "foreign" belongs to another user.
    let entries = [
        file("/x", &[b"one"]),
        file("/y", &[b"two", b"foreign", b"two"]),
    ];
    match db.commit(a.user_id, a.device_id, &entries, 4, now_us()) {
        Err(DbError::MissingChunks(m)) => {
            assert_eq!(m, vec![ChunkId::of(b"two"), ChunkId::of(b"foreign")])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.stats().unwrap().versions, 0);
    assert_eq!(refcount(&db, b"one"), 0);
    let p = ListParams {
        devices: DeviceSel::All,
        prefix: None,
        at_us: None,
        after: None,
        limit: 100,
    };
    assert!(db.list(a.user_id, &p).unwrap().0.is_empty());
}

#[test]
fn retention_keeps_newest_and_adjusts_refcounts() {
    let (_d, db) = open();
    let (_, a) = register(&db, "a", "d");
    let contents: Vec<Vec<u8>> = (0..6)
        .map(|i| format!("content {i}").into_bytes())
        .collect();
    let mut ids = Vec::new();
    let mut pruned = 0;
    for c in &contents {
        upload(&db, &a, &[b"shared", c]);
        let r = commit(&db, &a, &[file("/f", &[b"shared", c, b"shared"])], 4);
        ids.push(r.results[0].version_id.unwrap());
        pruned += r.pruned_versions;
    }
    assert_eq!(pruned, 2);
    assert_eq!(refcount(&db, b"content 0"), 0);
    assert_eq!(refcount(&db, b"content 1"), 0);
    for c in &contents[2..] {
        assert_eq!(refcount(&db, c), 1);
    }
    // Two occurrences per retained version.
    assert_eq!(refcount(&db, b"shared"), 8);
    let p = ListParams {
        devices: DeviceSel::Id(a.device_id),
        prefix: None,
        at_us: None,
        after: None,
        limit: 10,
    };
    let (files, _) = db.list(a.user_id, &p).unwrap();
    let listed: Vec<u64> = files[0].versions.iter().map(|v| v.id).collect();
    assert_eq!(listed, ids[2..].iter().rev().copied().collect::<Vec<_>>());
    assert!(matches!(
        db.find_version(a.user_id, a.device_id, Some(ids[0]), None, None, None),
        Err(DbError::NotFound)
    ));
}

#[test]
fn unchanged_content_makes_no_version() {
    let (_d, db) = open();
    let (_, a) = register(&db, "a", "d");
    upload(&db, &a, &[b"x"]);
    let r1 = commit(&db, &a, &[file("/f", &[b"x"])], 4);
    assert_eq!(r1.results[0].outcome, CommitOutcome::New);
    let r2 = commit(&db, &a, &[file("/f", &[b"x"])], 4);
    assert_eq!(r2.results[0].outcome, CommitOutcome::Unchanged);
    assert_eq!(r2.results[0].version_id, r1.results[0].version_id);
    assert_eq!(db.stats().unwrap().versions, 1);
    assert_eq!(refcount(&db, b"x"), 1);
}

#[test]
fn deletion_markers() {
    let (_d, db) = open();
    let (_, a) = register(&db, "a", "d");
    upload(&db, &a, &[b"v1", b"v2"]);
    let gone = CommitEntry::Deleted {
        path: RawPath::from("/f"),
    };
    let r = commit(&db, &a, std::slice::from_ref(&gone), 1);
    assert_eq!(r.results[0].outcome, CommitOutcome::AlreadyDeleted);
    assert_eq!(r.results[0].version_id, None);
    let v1 = commit(&db, &a, &[file("/f", &[b"v1"])], 1).results[0];
    let t_before_delete = db
        .find_version(a.user_id, a.device_id, v1.version_id, None, None, None)
        .unwrap()
        .1
        .time_us;
    let del = commit(&db, &a, std::slice::from_ref(&gone), 1).results[0];
    assert_eq!(del.outcome, CommitOutcome::Deleted);
    let again = commit(&db, &a, std::slice::from_ref(&gone), 1).results[0];
    assert_eq!(again.outcome, CommitOutcome::AlreadyDeleted);
    assert_eq!(again.version_id, del.version_id);
    assert!(matches!(
        db.find_version(
            a.user_id,
            a.device_id,
            None,
            None,
            Some(&RawPath::from("/f")),
            None
        ),
        Err(DbError::Deleted)
    ));
    let (id, _) = db
        .find_version(
            a.user_id,
            a.device_id,
            None,
            None,
            Some(&RawPath::from("/f")),
            Some(t_before_delete),
        )
        .unwrap();
    assert_eq!(Some(id), v1.version_id);
    // Same content after a deletion is a new version, not "unchanged".
    let back = commit(&db, &a, &[file("/f", &[b"v1"])], 1);
    assert_eq!(back.results[0].outcome, CommitOutcome::New);
    // keep = 1: the old content version and the marker before the retained one both go.
    assert_eq!(back.pruned_versions, 2);
    assert_eq!(refcount(&db, b"v1"), 1);
    let changed = commit(&db, &a, &[file("/f", &[b"v2"])], 1);
    assert_eq!(changed.results[0].outcome, CommitOutcome::Changed);
    assert_eq!(db.stats().unwrap().versions, 1);
}

#[test]
fn list_pages_prefix_and_time() {
    let (_d, db) = open();
    let (_, a) = register(&db, "a", "d1");
    let (_, a2) = register(&db, "a", "d2");
    upload(&db, &a, &[b"x"]);
    let names = ["/home/a/1", "/home/a/2", "/home/b/3", "/home/a/4"];
    for n in names {
        commit(&db, &a, &[file(n, &[b"x"])], 4);
    }
    let t = db
        .list(
            a.user_id,
            &ListParams {
                devices: DeviceSel::All,
                prefix: None,
                at_us: None,
                after: None,
                limit: 100,
            },
        )
        .unwrap()
        .0
        .iter()
        .map(|f| f.versions[0].time_us)
        .max()
        .unwrap();
    commit(&db, &a2, &[file("/home/a/5", &[b"x"])], 4);
    let mut p = ListParams {
        devices: DeviceSel::All,
        prefix: Some(RawPath::from("/home/a")),
        at_us: None,
        after: None,
        limit: 2,
    };
    let mut seen = Vec::new();
    loop {
        let (files, cursor) = db.list(a.user_id, &p).unwrap();
        assert!(files.len() <= 2);
        seen.extend(files.iter().map(|f| (f.device.clone(), f.path.lossy())));
        match cursor {
            Some(c) => p.after = Some(decode_cursor(&c).unwrap()),
            None => break,
        }
    }
    let want: Vec<(String, String)> = [
        ("d1", "/home/a/1"),
        ("d1", "/home/a/2"),
        ("d1", "/home/a/4"),
        ("d2", "/home/a/5"),
    ]
    .iter()
    .map(|(d, n)| (d.to_string(), n.to_string()))
    .collect();
    assert_eq!(seen, want);
    p.after = None;
    p.limit = 100;
    p.at_us = Some(t);
    assert_eq!(db.list(a.user_id, &p).unwrap().0.len(), 3);
    p.devices = DeviceSel::Named("nope".into());
    assert!(matches!(
        db.list(a.user_id, &p),
        Err(DbError::UnknownDevice { .. })
    ));
}

fn symlink(path: &str, target: &str) -> CommitEntry {
    CommitEntry::Symlink {
        path: RawPath::from(path),
        target: RawPath::from(target),
        mtime_ns: 7,
        meta: Default::default(),
    }
}

#[test]
fn symlink_versions_are_kept_compared_and_listed() {
    let (_d, db) = open();
    let (_, a) = register(&db, "alice", "pc");
    let outcome = |r: &CommitResponse| r.results[0].outcome;
    assert_eq!(
        outcome(&commit(&db, &a, &[symlink("/l", "t1")], 4)),
        CommitOutcome::New
    );
    assert_eq!(
        outcome(&commit(&db, &a, &[symlink("/l", "t1")], 4)),
        CommitOutcome::Unchanged
    );
    assert_eq!(
        outcome(&commit(&db, &a, &[symlink("/l", "t2")], 4)),
        CommitOutcome::Changed
    );
    // A file whose content equals the target bytes is still a change of kind.
    upload(&db, &a, &[b"t2"]);
    assert_eq!(
        outcome(&commit(&db, &a, &[file("/l", &[b"t2"])], 4)),
        CommitOutcome::Changed
    );
    let (files, _) = db
        .list(
            a.user_id,
            &ListParams {
                devices: DeviceSel::Id(a.device_id),
                prefix: None,
                at_us: None,
                after: None,
                limit: 10,
            },
        )
        .unwrap();
    let v = &files[0].versions;
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].kind, asgard_core::protocol::VersionKind::File);
    assert_eq!(v[1].kind, asgard_core::protocol::VersionKind::Symlink);
    assert_eq!(v[1].symlink_target, Some(RawPath::from("t2")));
    assert_eq!(v[2].symlink_target, Some(RawPath::from("t1")));
}

#[test]
fn version_records_from_before_symlinks_still_decode() {
    #[derive(Serialize)]
    struct Old {
        user_id: u64,
        device_id: u64,
        path: Vec<u8>,
        time_us: i64,
        deleted: bool,
        size: u64,
        mtime_ns: i64,
        mode: u32,
        attributes: u32,
        hash: Option<[u8; 32]>,
        params: ChunkParams,
        chunks: Vec<([u8; 32], u32)>,
    }
    let old = Old {
        user_id: 1,
        device_id: 2,
        path: b"/a".to_vec(),
        time_us: 3,
        deleted: false,
        size: 3,
        mtime_ns: 4,
        mode: 0o644,
        attributes: 0,
        hash: Some([9; 32]),
        params: ChunkParams::default(),
        chunks: vec![([9; 32], 3)],
    };
    let rec = VersionRec::decode(&postcard::to_stdvec(&old).unwrap()).unwrap();
    assert_eq!(rec.path, b"/a");
    assert_eq!(rec.chunks, vec![([9; 32], 3)]);
    assert_eq!(rec.symlink_target, None);
    let mut new = rec.clone();
    new.symlink_target = Some(b"x".to_vec());
    assert_eq!(VersionRec::decode(&enc(&new).unwrap()).unwrap(), new);
}

fn mark_bad(db: &Db, data: &[u8]) {
    let (marked, _) = db
        .set_bad_marks(&[ChunkId::of(data)], &[], &|_| true, now_us())
        .unwrap();
    assert_eq!(marked, vec![ChunkId::of(data)]);
}

/// A chunk verify marked bad is "missing" for every user who owns it (so their agents upload it
/// again), and a commit referencing it is refused until it is healed.
#[test]
fn check_reports_bad_chunks_as_missing_for_every_owner() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    let (_, b) = register(&db, "bert", "pc");
    let ids = upload(&db, &a, &[b"shared", b"fine"]);
    upload(&db, &b, &[b"shared"]);
    commit(&db, &a, &[file("/f", &[b"shared", b"fine"])], 4);
    assert!(db.check(a.user_id, &ids, now_us()).unwrap().is_empty());

    mark_bad(&db, b"shared");
    assert_eq!(db.check(a.user_id, &ids, now_us()).unwrap(), vec![ids[0]]);
    assert_eq!(
        db.check(b.user_id, &ids[..1], now_us()).unwrap(),
        vec![ids[0]]
    );
    match db.commit(
        a.user_id,
        a.device_id,
        &[file("/g", &[b"shared"])],
        4,
        now_us(),
    ) {
        Err(DbError::MissingChunks(m)) => assert_eq!(m, vec![ids[0]]),
        other => panic!("commit on a bad chunk: {other:?}"),
    }

    // A plain re-upload (bytes not rewritten) does not clear the mark; a healing one does, for
    // everyone, and takes the new stored length.
    upload(&db, &b, &[b"shared"]);
    assert!(
        db.chunk_record(&ids[0])
            .unwrap()
            .unwrap()
            .bad_since_us
            .is_some()
    );
    let before = db.stats().unwrap().stored_bytes;
    let healed = UploadedChunk {
        id: ids[0],
        stored_len: 100,
        plain_len: 6,
    };
    // The chunk is in the index: the store's presence answer is not asked for.
    let fence = db.upload_fence();
    db.record_upload_healing(
        &fence,
        b.user_id,
        &[healed],
        &[ids[0]],
        now_us(),
        &HashSet::new(),
    )
    .unwrap();
    drop(fence);
    let rec = db.chunk_record(&ids[0]).unwrap().unwrap();
    assert_eq!((rec.bad_since_us, rec.stored_len), (None, 100));
    assert_eq!(db.stats().unwrap().stored_bytes, before - 7 + 100);
    assert!(db.check(a.user_id, &ids, now_us()).unwrap().is_empty());
    commit(&db, &a, &[file("/g", &[b"shared"])], 4);
}

/// Login's re-read list: the device's paths whose retained versions reference a bad chunk, capped,
/// and entries that healed or belong to other devices are not handed out.
#[test]
fn reread_paths_name_the_devices_files_on_bad_chunks() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    let (_, a2) = register(&db, "anna", "laptop");
    upload(&db, &a, &[b"bad", b"ok", b"bad2"]);
    upload(&db, &a2, &[b"bad"]);
    commit(
        &db,
        &a,
        &[
            file("/a", &[b"bad"]),
            file("/b", &[b"ok"]),
            file("/c", &[b"ok", b"bad2"]),
        ],
        4,
    );
    commit(&db, &a2, &[file("/a", &[b"bad"])], 4);
    mark_bad(&db, b"bad");
    mark_bad(&db, b"bad2");
    assert_eq!(
        db.reread_paths(a.user_id, a.device_id, 10).unwrap().0,
        vec![]
    );
    db.record_reread(&[
        (a.user_id, a.device_id, RawPath::from("/a")),
        (a.user_id, a.device_id, RawPath::from("/b")),
        (a.user_id, a.device_id, RawPath::from("/c")),
        (a2.user_id, a2.device_id, RawPath::from("/a")),
    ])
    .unwrap();
    let (paths, more) = db.reread_paths(a.user_id, a.device_id, 10).unwrap();
    assert_eq!(paths, vec![RawPath::from("/a"), RawPath::from("/c")]);
    assert!(!more);
    let (paths, more) = db.reread_paths(a.user_id, a.device_id, 1).unwrap();
    assert_eq!((paths.len(), more), (1, true));

    // Healing "bad" takes /a off both devices' lists.
    let healed = UploadedChunk {
        id: ChunkId::of(b"bad"),
        stored_len: 4,
        plain_len: 3,
    };
    let fence = db.upload_fence();
    db.record_upload_healing(
        &fence,
        a.user_id,
        &[healed],
        &[healed.id],
        now_us(),
        &HashSet::new(),
    )
    .unwrap();
    drop(fence);
    assert_eq!(
        db.reread_paths(a.user_id, a.device_id, 10).unwrap().0,
        vec![RawPath::from("/c")]
    );
    assert_eq!(
        db.reread_paths(a2.user_id, a2.device_id, 10).unwrap().0,
        vec![]
    );
}

/// A chunk sent twice in one upload request is recorded once: one new chunk, its stored bytes
/// counted once (the records are written in key order after one lookup of all of them).
#[test]
fn a_chunk_sent_twice_in_one_request_counts_once() {
    let (_dir, db) = open();
    let (_, a) = register(&db, "ute", "pc");
    let data: &[u8] = b"twice in one request";
    let c = UploadedChunk {
        id: ChunkId::of(data),
        stored_len: data.len() as u64 + 1,
        plain_len: data.len() as u32,
    };
    // The store holds it (the upload put it before the record).
    let in_store = HashSet::from([c.id]);
    let new = db
        .record_upload(&db.upload_fence(), a.user_id, &[c, c], now_us(), &in_store)
        .unwrap();
    assert_eq!(new, 1);
    let s = db.stats().unwrap();
    assert_eq!((s.chunks, s.stored_bytes), (1, c.stored_len));
}

/// The record adds a chunk the index lacks only if the caller's store lookup found it: a chunk
/// the GC removed after the upload skipped or wrote it is left out, and its commit is refused.
#[test]
fn a_chunk_the_index_lacks_is_recorded_only_if_the_store_has_it() {
    let (_dir, db) = open();
    let (_, a) = register(&db, "ute", "pc");
    let list = crate::testutil::uploaded(&[b"kept", b"vanished"]);
    let in_store = HashSet::from([list[0].id]);
    let new = db
        .record_upload(&db.upload_fence(), a.user_id, &list, now_us(), &in_store)
        .unwrap();
    assert_eq!(new, 1);
    assert!(db.chunk_record(&list[0].id).unwrap().is_some());
    assert!(db.chunk_record(&list[1].id).unwrap().is_none());
    assert_eq!(db.stats().unwrap().stored_bytes, list[0].stored_len);
    // A chunk the index knows needs no word from the store (its lease is renewed).
    let again = db
        .record_upload(
            &db.upload_fence(),
            a.user_id,
            &list[..1],
            now_us(),
            &HashSet::new(),
        )
        .unwrap();
    assert_eq!(again, 0);
    assert!(matches!(
        db.commit(
            a.user_id,
            a.device_id,
            &[file("/f", &[b"vanished"])],
            4,
            now_us()
        ),
        Err(DbError::MissingChunks(_))
    ));
}

// ---- issue 12: record shapes, schema version, folders, metadata-only versions, retention ----

use asgard_core::meta::{Blob, EntryMeta, Xattr};
use asgard_core::protocol::VersionKind;

fn dir(path: &str, mode: u32, mtime_ns: i64) -> CommitEntry {
    CommitEntry::Dir {
        path: RawPath::from(path),
        mtime_ns,
        mode,
        attributes: 0,
        meta: EntryMeta::default(),
    }
}

fn owned(uid: u32, owner: &str) -> EntryMeta {
    EntryMeta {
        uid: Some(uid),
        gid: Some(100),
        owner: Some(owner.into()),
        group: Some("users".into()),
        xattrs: vec![Xattr {
            name: Blob(b"user.k".to_vec()),
            value: Blob(b"\x00v".to_vec()),
        }],
        hardlink: Some(9),
        btime_ns: Some(-3),
    }
}

/// `file` with its mode, mtime and metadata set.
fn file_with(path: &str, parts: &[&[u8]], mode: u32, mtime_ns: i64, ext: EntryMeta) -> CommitEntry {
    let mut e = file(path, parts);
    if let CommitEntry::File { meta, .. } = &mut e {
        meta.mode = mode;
        meta.mtime_ns = mtime_ns;
        meta.ext = ext;
    }
    e
}

fn all_versions(db: &Db, a: &Auth, at_us: Option<i64>) -> Vec<asgard_core::protocol::FileEntry> {
    db.list(
        a.user_id,
        &ListParams {
            devices: DeviceSel::Id(a.device_id),
            prefix: None,
            at_us,
            after: None,
            limit: 100,
        },
    )
    .unwrap()
    .0
}

fn sample_rec() -> VersionRec {
    VersionRec {
        user_id: 1,
        device_id: 2,
        path: b"/a".to_vec(),
        time_us: 3,
        deleted: false,
        size: 3,
        mtime_ns: 4,
        mode: 0o644,
        attributes: 0,
        hash: Some([9; 32]),
        params: ChunkParams::default(),
        chunks: vec![([9; 32], 3)],
        symlink_target: None,
        ext: RecExt::new(RecKind::File, false, StoredMeta::default()),
    }
}

/// A record of schema version 1 with a link target (shape V2, written by hand): it reads as a
/// link with unknown metadata, and is not metadata-only.
#[test]
fn version_records_from_schema_1_still_decode() {
    #[derive(Serialize)]
    struct V2 {
        user_id: u64,
        device_id: u64,
        path: Vec<u8>,
        time_us: i64,
        deleted: bool,
        size: u64,
        mtime_ns: i64,
        mode: u32,
        attributes: u32,
        hash: Option<[u8; 32]>,
        params: ChunkParams,
        chunks: Vec<([u8; 32], u32)>,
        symlink_target: Option<Vec<u8>>,
    }
    let bytes = postcard::to_stdvec(&V2 {
        user_id: 1,
        device_id: 2,
        path: b"/l".to_vec(),
        time_us: 3,
        deleted: false,
        size: 0,
        mtime_ns: 4,
        mode: 0,
        attributes: 0,
        hash: Some([8; 32]),
        params: ChunkParams::default(),
        chunks: vec![],
        symlink_target: Some(b"../t".to_vec()),
    })
    .unwrap();
    let rec = VersionRec::decode(&bytes).unwrap();
    assert_eq!(rec.symlink_target.as_deref(), Some(&b"../t"[..]));
    assert_eq!(rec.kind(), RecKind::Symlink);
    assert!(!rec.meta_only() && *rec.meta() == StoredMeta::default());
    let info = rec.info(5);
    assert_eq!(info.kind, VersionKind::Symlink);
    assert!(info.meta.is_empty() && !info.meta_only);
    // Written again it takes the new shape, which reads back equal.
    assert_eq!(VersionRec::decode(&enc(&rec).unwrap()).unwrap(), rec);
    // A record of the new shape cut inside its tail, or with a byte too many, is refused (not
    // read as an older shape without the tail).
    let mut file = sample_rec();
    file.ext = RecExt::new(RecKind::Dir, true, StoredMeta::from(&owned(7, "x")));
    let full = enc(&file).unwrap();
    assert_eq!(VersionRec::decode(&full).unwrap(), file);
    let tail = enc(&file.ext).unwrap().len();
    for cut in 1..tail {
        assert!(
            VersionRec::decode(&full[..full.len() - cut]).is_err(),
            "{cut}"
        );
    }
    assert!(VersionRec::decode(&[full.as_slice(), &[0]].concat()).is_err());
    // Cut exactly before the tail, it is a record of shape V2.
    let v2 = VersionRec::decode(&full[..full.len() - tail]).unwrap();
    assert_eq!((v2.kind(), v2.meta_only()), (RecKind::File, false));
}

#[test]
fn new_version_records_round_trip_with_every_field() {
    let mut rec = sample_rec();
    rec.ext = RecExt::new(RecKind::File, true, StoredMeta::from(&owned(1000, "anna")));
    let bytes = enc(&rec).unwrap();
    let back = VersionRec::decode(&bytes).unwrap();
    assert_eq!(back, rec);
    let info = back.info(1);
    assert_eq!(info.meta, owned(1000, "anna"));
    assert!(info.meta_only);
    assert_eq!(info.kind, VersionKind::File);
    // The statistics' prefix decode still finds the size.
    assert_eq!(
        db_stats_head_size(&bytes),
        rec.size,
        "stats.rs decodes the leading fields"
    );
    // The extension's first byte is its format version (postcard's variant index).
    let tail = enc(&rec.ext).unwrap();
    assert_eq!(tail[0], 0);
    assert!(bytes.ends_with(&tail));
}

fn db_stats_head_size(bytes: &[u8]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Head {
        _u: u64,
        _d: u64,
        _p: Vec<u8>,
        _t: i64,
        _del: bool,
        size: u64,
    }
    postcard::take_from_bytes::<Head>(bytes).unwrap().0.size
}

#[test]
fn schema_version_is_written_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asgard.redb");
    let read_version = |path: &std::path::Path| {
        let db = redb::Database::create(path).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        meta.get(SCHEMA_VERSION).unwrap().map(|g| g.value())
    };
    drop(Db::open(&path).unwrap());
    assert_eq!(read_version(&path), Some(CURRENT_SCHEMA_VERSION));

    // A database of schema 1 (no key) is upgraded on open.
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .remove(SCHEMA_VERSION)
            .unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(read_version(&path), None);
    drop(Db::open(&path).unwrap());
    assert_eq!(read_version(&path), Some(CURRENT_SCHEMA_VERSION));
    assert!(check_database(&path).is_ok());

    // One from a newer server is refused, by open and by the check of `db-restore`, and left as
    // it is.
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION, CURRENT_SCHEMA_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    match Db::open(&path) {
        Err(DbError::SchemaTooNew { found, known }) => {
            assert_eq!(
                (found, known),
                (CURRENT_SCHEMA_VERSION + 1, CURRENT_SCHEMA_VERSION)
            )
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
    assert!(matches!(
        check_database(&path),
        Err(DbError::SchemaTooNew { .. })
    ));
    assert_eq!(read_version(&path), Some(CURRENT_SCHEMA_VERSION + 1));
}

#[test]
fn folders_are_versions_with_markers_and_a_point_in_time() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    let r = commit(&db, &a, &[dir("/d", 0o40750, 5)], 4).results[0];
    assert_eq!((r.outcome, r.meta_only), (CommitOutcome::New, false));
    let first = r.version_id.unwrap();
    // The same folder again: unchanged.
    let again = commit(&db, &a, &[dir("/d", 0o40750, 5)], 4).results[0];
    assert_eq!(again.outcome, CommitOutcome::Unchanged);
    assert_eq!(again.version_id, Some(first));
    let (_, rec) = db
        .find_version(a.user_id, a.device_id, Some(first), None, None, None)
        .unwrap();
    assert!(rec.is_dir() && !rec.has_content());
    assert_eq!((rec.size, rec.hash, rec.chunks.len()), (0, None, 0));
    let t_live = rec.time_us;

    // A chmod of the folder is a metadata-only version.
    let chmod = commit(&db, &a, &[dir("/d", 0o40700, 5)], 4).results[0];
    assert_eq!(
        (chmod.outcome, chmod.meta_only),
        (CommitOutcome::Changed, true)
    );

    let gone = CommitEntry::Deleted {
        path: RawPath::from("/d"),
    };
    let del = commit(&db, &a, &[gone], 4).results[0];
    assert_eq!(del.outcome, CommitOutcome::Deleted);

    let files = all_versions(&db, &a, None);
    let v = &files[0].versions;
    assert_eq!(v.len(), 3);
    // The marker remembers that a folder was deleted.
    assert!(v[0].deleted);
    assert_eq!(v[0].kind, VersionKind::Dir);
    assert_eq!(
        (v[1].kind, v[1].mode, v[1].meta_only),
        (VersionKind::Dir, 0o40700, true)
    );
    assert_eq!(
        (v[2].kind, v[2].mode, v[2].meta_only),
        (VersionKind::Dir, 0o40750, false)
    );
    assert_eq!(v[2].hash, None);

    // At the time of the first version the folder is there, as it was.
    let then = all_versions(&db, &a, Some(t_live));
    assert_eq!(then[0].versions.len(), 1);
    assert_eq!(then[0].versions[0].id, first);
    assert!(!then[0].versions[0].deleted);
    let (id, _) = db
        .find_version(
            a.user_id,
            a.device_id,
            None,
            None,
            Some(&RawPath::from("/d")),
            Some(t_live),
        )
        .unwrap();
    assert_eq!(id, first);
    assert!(matches!(
        db.find_version(
            a.user_id,
            a.device_id,
            None,
            None,
            Some(&RawPath::from("/d")),
            None
        ),
        Err(DbError::Deleted)
    ));
    // Back after the deletion: a new (content) version.
    let back = commit(&db, &a, &[dir("/d", 0o40700, 5)], 4).results[0];
    assert_eq!((back.outcome, back.meta_only), (CommitOutcome::New, false));
    // A file where the folder was is a change of content, not of metadata.
    upload(&db, &a, &[b"x"]);
    let f = commit(&db, &a, &[file("/d", &[b"x"])], 4).results[0];
    assert_eq!((f.outcome, f.meta_only), (CommitOutcome::Changed, false));
    // Stats count folders as versions of no bytes.
    let s = db.full_stats().unwrap();
    assert_eq!((s.versions, s.logical_bytes), (5, 1));
}

#[test]
fn metadata_changes_are_metadata_only_versions_that_hold_their_chunks() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    upload(&db, &a, &[b"inhalt"]);
    let base = || file_with("/f", &[b"inhalt"], 0o100644, 10, EntryMeta::default());
    let r = commit(&db, &a, &[base()], 4).results[0];
    assert_eq!((r.outcome, r.meta_only), (CommitOutcome::New, false));
    assert_eq!(refcount(&db, b"inhalt"), 1);
    // Equal content, equal metadata: unchanged (an old agent sends no EntryMeta and sees no
    // churn against a record without one).
    let same = commit(&db, &a, &[base()], 4).results[0];
    assert_eq!(
        (same.outcome, same.version_id),
        (CommitOutcome::Unchanged, r.version_id)
    );

    let changes = [
        file_with("/f", &[b"inhalt"], 0o100600, 10, EntryMeta::default()),
        file_with("/f", &[b"inhalt"], 0o100600, 11, EntryMeta::default()),
        file_with("/f", &[b"inhalt"], 0o100600, 11, owned(1000, "anna")),
        file_with("/f", &[b"inhalt"], 0o100600, 11, owned(1001, "anna")),
    ];
    for (i, e) in changes.iter().enumerate() {
        let r = commit(&db, &a, std::slice::from_ref(e), 4).results[0];
        assert_eq!(
            (r.outcome, r.meta_only),
            (CommitOutcome::Changed, true),
            "change {i}"
        );
        // Sent again: unchanged.
        let r2 = commit(&db, &a, std::slice::from_ref(e), 4).results[0];
        assert_eq!(r2.outcome, CommitOutcome::Unchanged, "change {i}");
    }
    // Each metadata-only version references the chunks: 1 + 4 references.
    assert_eq!(refcount(&db, b"inhalt"), 5);
    let v = &all_versions(&db, &a, None)[0].versions;
    assert_eq!(v.len(), 5);
    assert_eq!(v[0].meta, owned(1001, "anna"));
    assert!(v[..4].iter().all(|v| v.meta_only) && !v[4].meta_only);
    // A metadata-only version restores like any other: its chunks are in the manifest.
    let (_, rec) = db
        .find_version(a.user_id, a.device_id, Some(v[0].id), None, None, None)
        .unwrap();
    assert!(rec.has_content() && rec.meta_only());
    assert_eq!(rec.chunks, vec![(ChunkId::of(b"inhalt").0, 6)]);
    // New content after metadata-only versions: a content version.
    upload(&db, &a, &[b"neu"]);
    let r = commit(
        &db,
        &a,
        &[file_with(
            "/f",
            &[b"neu"],
            0o100600,
            11,
            owned(1001, "anna"),
        )],
        4,
    )
    .results[0];
    assert_eq!((r.outcome, r.meta_only), (CommitOutcome::Changed, false));

    // A link: same target, other mtime or owner: metadata-only; other target: content.
    let link = |target: &str, mtime_ns, meta| CommitEntry::Symlink {
        path: RawPath::from("/l"),
        target: RawPath::from(target),
        mtime_ns,
        meta,
    };
    assert_eq!(
        commit(&db, &a, &[link("t", 1, EntryMeta::default())], 4).results[0].outcome,
        CommitOutcome::New
    );
    let r = commit(&db, &a, &[link("t", 1, owned(5, "e"))], 4).results[0];
    assert_eq!((r.outcome, r.meta_only), (CommitOutcome::Changed, true));
    let r = commit(&db, &a, &[link("u", 1, owned(5, "e"))], 4).results[0];
    assert_eq!((r.outcome, r.meta_only), (CommitOutcome::Changed, false));
}

/// Acceptance 3 of issue 12: a chmod after four content versions keeps all four.
#[test]
fn a_chmod_after_four_content_versions_keeps_all_four() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    let contents: Vec<Vec<u8>> = (0..4).map(|i| format!("v{i}").into_bytes()).collect();
    for c in &contents {
        upload(&db, &a, &[c]);
        let r = commit(
            &db,
            &a,
            &[file_with("/f", &[c], 0o100644, 1, EntryMeta::default())],
            4,
        );
        assert_eq!(r.pruned_versions, 0);
    }
    let r = commit(
        &db,
        &a,
        &[file_with(
            "/f",
            &[&contents[3]],
            0o100600,
            1,
            EntryMeta::default(),
        )],
        4,
    );
    assert_eq!((r.results[0].meta_only, r.pruned_versions), (true, 0));
    let v = &all_versions(&db, &a, None)[0].versions;
    assert_eq!(v.len(), 5);
    assert_eq!(v.iter().filter(|v| !v.meta_only).count(), 4);
    assert_eq!(v[0].mode, 0o100600);
    for c in &contents {
        assert_eq!(refcount(&db, c), 1 + u64::from(c == &contents[3]));
    }

    // Many chmods stay bounded: the newest group keeps its head and 4 metadata-only versions.
    for i in 0..10u32 {
        commit(
            &db,
            &a,
            &[file_with(
                "/f",
                &[&contents[3]],
                0o100000 | i,
                1,
                EntryMeta::default(),
            )],
            4,
        );
    }
    let v = &all_versions(&db, &a, None)[0].versions;
    assert_eq!(v.len(), 4 + 4);
    assert_eq!(v.iter().filter(|v| !v.meta_only).count(), 4);
    assert_eq!(v[0].mode, 0o100011);
    assert_eq!(refcount(&db, &contents[3]), 5);
    // A fifth content version drops the oldest group.
    upload(&db, &a, &[b"v4"]);
    let r = commit(
        &db,
        &a,
        &[file_with("/f", &[b"v4"], 0o100644, 1, EntryMeta::default())],
        4,
    );
    assert_eq!(r.pruned_versions, 1);
    assert_eq!(refcount(&db, &contents[0]), 0);
}

/// The same history committed with `keep` 3, and committed with a large `keep` and then pruned
/// by the GC's pass with 3, leaves the same versions (and the same chunk references).
#[test]
fn gc_pruning_pass_agrees_with_commit_retention() {
    let history: Vec<CommitEntry> = {
        let mut h = Vec::new();
        for c in 0..5u32 {
            let content = format!("c{c}");
            for m in 0..(c + 2) {
                let parts: &[&[u8]] = &[content.as_bytes()];
                h.push(file_with(
                    "/f",
                    parts,
                    0o100600 + m,
                    1,
                    EntryMeta::default(),
                ));
                h.push(dir("/d", 0o40700 + m, i64::from(c)));
            }
            if c == 2 {
                h.push(CommitEntry::Deleted {
                    path: RawPath::from("/d"),
                });
            }
        }
        h
    };
    /// Per path: (mode, metadata-only, deleted) of each version, newest first.
    type Snapshot = Vec<(String, Vec<(u32, bool, bool)>)>;
    let snapshot = |db: &Db, a: &Auth| -> Snapshot {
        all_versions(db, a, None)
            .into_iter()
            .map(|f| {
                let v = f
                    .versions
                    .iter()
                    .map(|v| (v.mode, v.meta_only, v.deleted))
                    .collect();
                (f.path.to_string(), v)
            })
            .collect()
    };
    let run = |keep: u32| {
        let (d, db) = open();
        let (_, a) = register(&db, "anna", "pc");
        for c in 0..5 {
            upload(&db, &a, &[format!("c{c}").as_bytes()]);
        }
        for e in &history {
            commit(&db, &a, std::slice::from_ref(e), keep);
        }
        (d, db, a)
    };
    let (_d1, by_commit, a1) = run(3);
    let (_d2, by_gc, a2) = run(100);
    assert_ne!(snapshot(&by_commit, &a1), snapshot(&by_gc, &a2));
    let rules = RetentionRules {
        keep_versions: 3,
        deleted_keep_us: i64::MAX / 2,
        now_us: now_us(),
    };
    let batch = by_gc.prune_scan(None, 100, rules).unwrap();
    assert_eq!(batch.prune.len(), 2);
    let (dropped, removed) = by_gc.prune_paths(&batch.prune, rules).unwrap();
    assert_eq!((dropped, removed), (batch.versions, 0));
    assert_eq!(snapshot(&by_commit, &a1), snapshot(&by_gc, &a2));
    for c in 0..5 {
        let data = format!("c{c}");
        assert_eq!(
            refcount(&by_commit, data.as_bytes()),
            refcount(&by_gc, data.as_bytes()),
            "{data}"
        );
    }
    // And the result is bounded: 3 groups of /f with at most 3 metadata-only versions each; /d
    // has two groups (its content changes only where it was deleted), the marker between them.
    let d = &snapshot(&by_commit, &a1)[0];
    assert_eq!(d.0, "/d");
    assert_eq!(d.1.iter().filter(|v| !v.1 && !v.2).count(), 2);
    assert_eq!(d.1.len(), 4 + 1 + 4);
    let f = &snapshot(&by_commit, &a1)[1];
    assert_eq!(f.0, "/f");
    assert_eq!(f.1.iter().filter(|v| !v.1).count(), 3);
    assert_eq!(f.1.len(), 3 + 3 + 3 + 3);
}
