//! The read service against a real database and store, without HTTP.

use std::sync::Arc;

use asgard_core::protocol::RestoreRequest;
use asgard_core::{ChunkId, RawPath, stored};

use super::*;
use crate::db::DbError;
use crate::service::ingest;
use crate::testutil::{TempServer, file, register};

#[test]
fn ranges() {
    use RangeSpec::*;
    let p = |h: &str, size| parse_range(Some(h), size);
    assert_eq!(parse_range(None, 10), Full);
    assert_eq!(p("bytes=0-4", 10), Part { start: 0, end: 4 });
    assert_eq!(p("bytes=5-", 10), Part { start: 5, end: 9 });
    assert_eq!(p("bytes=-3", 10), Part { start: 7, end: 9 });
    assert_eq!(p("bytes=-30", 10), Part { start: 0, end: 9 });
    assert_eq!(p("bytes=8-100", 10), Part { start: 8, end: 9 });
    assert_eq!(p("bytes=10-", 10), Unsatisfiable);
    assert_eq!(p("bytes=10-12", 10), Unsatisfiable);
    assert_eq!(p("bytes=-0", 10), Unsatisfiable);
    assert_eq!(p("bytes=0-", 0), Unsatisfiable);
    assert_eq!(p("bytes=5-2", 10), Full);
    assert_eq!(p("bytes=0-1,4-5", 10), Full);
    assert_eq!(p("items=0-1", 10), Full);
    assert_eq!(p("bytes=a-b", 10), Full);
}

const A: &[u8] = b"hello ";
const B: &[u8] = b"world, again";

/// A server where anna has backed up `/x` = A + B (two chunks); returns it with her ids and the
/// version id.
fn backed_up() -> (TempServer, crate::db::Auth, u64) {
    let s = TempServer::new();
    let (_, a) = register(&s.db, "anna", "pc");
    let parts: Vec<(ChunkId, Vec<u8>)> = [A, B]
        .iter()
        .map(|d| (ChunkId::of(d), stored::encode(d, 3)))
        .collect();
    ingest::upload(
        &s.db,
        &*s.store,
        a.user_id,
        &parts,
        &ingest::PutCost::default(),
    )
    .unwrap();
    let r = ingest::commit(&s.db, a.user_id, a.device_id, &[file("/x", &[A, B])], 4, 1).unwrap();
    let id = r.results[0].version_id.unwrap();
    (s, a, id)
}

fn by_path(path: &str) -> RestoreRequest {
    RestoreRequest {
        path: Some(RawPath::from(path)),
        ..RestoreRequest::default()
    }
}

fn read_all(p: PlainStream) -> Vec<u8> {
    p.map(|piece| piece.unwrap()).collect::<Vec<_>>().concat()
}

#[test]
fn a_version_is_read_whole_or_as_a_range_across_chunks() {
    let (s, a, vid) = backed_up();
    let all = [A, B].concat();
    let store: Arc<dyn ChunkStore> = s.store.clone();
    let whole = restore(
        &s.db,
        store.clone(),
        a.user_id,
        a.device_id,
        &by_path("/x"),
        None,
    )
    .unwrap();
    assert_eq!((whole.version_id, whole.partial), (vid, false));
    assert_eq!(whole.hash, Some(ChunkId::of(&all)));
    assert_eq!(read_all(whole), all);

    let range = Some("bytes=3-8");
    let part = restore(
        &s.db,
        store.clone(),
        a.user_id,
        a.device_id,
        &by_path("/x"),
        range,
    )
    .unwrap();
    assert_eq!((part.start, part.end, part.partial), (3, 9, true));
    assert_eq!(read_all(part), all[3..=8]);

    let far = restore(
        &s.db,
        store.clone(),
        a.user_id,
        0,
        &by_path("/x"),
        Some("bytes=999-"),
    );
    assert!(
        matches!(far, Err(ServiceError::Db(DbError::NotFound))),
        "another device"
    );
    let far = restore(
        &s.db,
        store.clone(),
        a.user_id,
        a.device_id,
        &by_path("/x"),
        Some("bytes=999-"),
    );
    assert!(matches!(far, Err(ServiceError::RangeNotSatisfiable(18))));
    let none = restore(
        &s.db,
        store.clone(),
        a.user_id,
        a.device_id,
        &RestoreRequest::default(),
        None,
    );
    assert!(matches!(none, Err(ServiceError::BadRequest(_))));

    // Another user's version is not found.
    let (_, b) = register(&s.db, "bert", "pc");
    let by_id = RestoreRequest {
        version_id: Some(vid),
        ..RestoreRequest::default()
    };
    let theirs = restore(&s.db, store, b.user_id, b.device_id, &by_id, None);
    assert!(matches!(theirs, Err(ServiceError::Db(DbError::NotFound))));
}

/// A stored chunk that no longer verifies ends the stream with an error after the good pieces: the
/// reader gets a short answer, never wrong bytes.
#[test]
fn a_damaged_chunk_ends_the_stream() {
    let (s, a, _) = backed_up();
    s.store
        .replace(&ChunkId::of(B), &stored::encode_raw(b"rotten"))
        .unwrap();
    let mut p = restore(
        &s.db,
        s.store.clone(),
        a.user_id,
        a.device_id,
        &by_path("/x"),
        None,
    )
    .unwrap();
    assert_eq!(p.next().unwrap().unwrap(), A);
    assert!(matches!(p.next(), Some(Err(ServiceError::Damaged { .. }))));
    assert!(p.next().is_none() && p.is_done());
}

#[test]
fn manifests_and_fetch_answer_only_the_users_own() {
    let (s, a, vid) = backed_up();
    let (_, b) = register(&s.db, "bert", "pc");
    let m = manifests(&s.db, a.user_id, &[vid, 999]).unwrap();
    assert_eq!(m.versions.len(), 1);
    assert_eq!(m.versions[0].chunks.len(), 2);
    assert_eq!(m.missing, vec![999]);
    assert_eq!(
        manifests(&s.db, b.user_id, &[vid]).unwrap().missing,
        vec![vid]
    );

    let ids = vec![ChunkId::of(A), ChunkId::of(B)];
    let served = chunks_served();
    let mut groups = fetch(&s.db, s.store.clone(), a.user_id, ids.clone()).unwrap();
    let frames = groups.next().unwrap();
    assert!(groups.is_done() && groups.next().is_none());
    let stored_a = s.store.get(&ids[0]).unwrap();
    assert!(frames.windows(stored_a.len()).any(|w| w == stored_a));
    assert!(chunks_served() >= served + 2);
    assert!(matches!(
        fetch(&s.db, s.store.clone(), b.user_id, ids.clone()),
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        stored_chunk(&s.db, &*s.store, b.user_id, &ids[0]),
        Err(ServiceError::NotFound)
    ));
    assert_eq!(
        stored_chunk(&s.db, &*s.store, a.user_id, &ids[0]).unwrap(),
        stored_a
    );
}
