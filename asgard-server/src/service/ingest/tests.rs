//! The ingest service against a real database and store, without HTTP.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::protocol::{ChunkRef, CommitEntry, FileMeta, UploadResponse};
use asgard_core::{ChunkId, ChunkParams, RawPath, stored};

use super::*;
use crate::db::{Db, DbError};
use crate::store::{IdIter, LocalStore, StoreError};
use crate::testutil::{TempServer, file, register};

fn entry(size: u64, lens: &[u32], hash: ChunkId) -> CommitEntry {
    CommitEntry::File {
        path: RawPath::from("/f"),
        meta: FileMeta {
            size,
            mtime_ns: 0,
            mode: 0,
            attributes: 0,
            ext: Default::default(),
            hash,
            params: ChunkParams::default(),
            chunks: lens
                .iter()
                .map(|&len| ChunkRef {
                    id: ChunkId::of(b"c"),
                    len,
                })
                .collect(),
        },
    }
}

#[test]
fn entries_are_validated() {
    let h = ChunkId::of(b"x");
    assert!(validate_entry(&entry(3, &[1, 2], h)).is_ok());
    assert!(validate_entry(&entry(4, &[1, 2], h)).is_err());
    assert!(validate_entry(&entry(0, &[], ChunkId::of(b""))).is_ok());
    assert!(validate_entry(&entry(0, &[], h)).is_err());
    let big = MAX_CHUNK_SIZE + 1;
    assert!(validate_entry(&entry(u64::from(big), &[big], h)).is_err());
    assert!(
        validate_entry(&CommitEntry::Deleted {
            path: RawPath(b"/a\0b".to_vec())
        })
        .is_err()
    );
    assert!(
        validate_entry(&CommitEntry::Deleted {
            path: RawPath::default()
        })
        .is_err()
    );
}

fn part(data: &[u8]) -> (ChunkId, Vec<u8>) {
    (ChunkId::of(data), stored::encode(data, 3))
}

/// [`super::upload`] with a fresh cost model, without the pad.
fn upload(
    db: &Db,
    store: &dyn ChunkStore,
    user_id: u64,
    parts: &[(ChunkId, Vec<u8>)],
) -> Result<UploadResponse> {
    super::upload(db, store, user_id, parts, &PutCost::default()).map(|(r, _)| r)
}

#[test]
fn a_bad_part_stores_nothing_and_records_nothing() {
    let s = TempServer::new();
    let (_, a) = register(&s.db, "anna", "pc");
    let good = part(b"good bytes");
    let forged = (ChunkId::of(b"claimed"), stored::encode(b"forged", 3));
    let err = upload(&s.db, &*s.store, a.user_id, &[good.clone(), forged.clone()]).unwrap_err();
    assert!(
        matches!(err, ServiceError::ChunkHashMismatch(id) if id == forged.0),
        "{err:?}"
    );
    assert!(
        !s.store.exists(&good.0).unwrap(),
        "the good part was not stored"
    );
    assert_eq!(s.db.stats().unwrap().chunks, 0);

    let garbage = (ChunkId::of(b"x"), b"not a stored chunk".to_vec());
    assert!(matches!(
        upload(&s.db, &*s.store, a.user_id, &[garbage]),
        Err(ServiceError::ChunkCorrupt(..))
    ));
    assert_eq!(s.db.stats().unwrap().chunks, 0);
}

#[test]
fn an_upload_dedupes_known_chunks_and_heals_bad_ones() {
    let s = TempServer::new();
    let (_, a) = register(&s.db, "anna", "pc");
    let (_, b) = register(&s.db, "bert", "pc");
    let p = part(b"the same bytes for both");
    let first = upload(&s.db, &*s.store, a.user_id, std::slice::from_ref(&p)).unwrap();
    assert_eq!((first.received, first.new_chunks), (1, 1));
    // Another user's upload of the same chunk writes nothing but makes bert an owner; to bert
    // it is new (counted once), as if nobody had it.
    let bytes_before = s.db.stats().unwrap().stored_bytes;
    let again = upload(&s.db, &*s.store, b.user_id, &[p.clone(), p.clone()]).unwrap();
    assert_eq!(
        (again.received, again.new_chunks, again.new_bytes),
        (2, 1, p.1.len() as u64)
    );
    assert_eq!(again.new_bytes, first.new_bytes);
    assert!(s.db.owns_chunk(b.user_id, &p.0).unwrap());
    assert_eq!(s.db.stats().unwrap().stored_bytes, bytes_before);
    // Sent again by bert, it is no longer new to him.
    let third = upload(&s.db, &*s.store, b.user_id, std::slice::from_ref(&p)).unwrap();
    assert_eq!(
        (third.received, third.new_chunks, third.new_bytes),
        (1, 0, 0)
    );

    // Verify found it damaged: the next upload of it rewrites the bytes and clears the mark.
    s.db.set_bad_marks(&[p.0], &[], &|_| true, crate::db::now_us())
        .unwrap();
    s.store.replace(&p.0, b"rotten").unwrap();
    let heal = upload(&s.db, &*s.store, b.user_id, std::slice::from_ref(&p)).unwrap();
    assert_eq!((heal.new_chunks, heal.new_bytes), (1, p.1.len() as u64));
    assert_eq!(s.store.get(&p.0).unwrap(), p.1);
    assert!(
        s.db.chunk_record(&p.0)
            .unwrap()
            .unwrap()
            .bad_since_us
            .is_none()
    );
}

/// The record of a chunk that the store lost in the meantime (the GC swept it) is left out, and
/// the commit that would reference it is refused, never accepted.
#[test]
fn a_chunk_the_store_lacks_is_not_recorded() {
    let s = TempServer::new();
    let (_, a) = register(&s.db, "anna", "pc");
    let gone = UploadedChunk {
        id: ChunkId::of(b"never stored"),
        stored_len: 13,
        plain_len: 12,
    };
    let new = record_verified(&s.db, &*s.store, a.user_id, &[gone], &[], 1).unwrap();
    assert_eq!(new, 0);
    assert!(s.db.chunk_record(&gone.id).unwrap().is_none());
    assert!(matches!(
        commit(
            &s.db,
            a.user_id,
            a.device_id,
            &[file("/f", &[b"never stored"])],
            4,
            2
        ),
        Err(ServiceError::Db(DbError::MissingChunks(_)))
    ));
}

/// What a [`Probe`] saw each time the store was asked which chunks it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// The deletion fence was held (the GC could not have taken it).
    fence_held: bool,
    /// Another thread could open and commit a write transaction meanwhile: the caller held no
    /// write transaction of the database.
    writer_free: bool,
}

/// A store that records, whenever `exists_many` is called, whether the deletion fence is held and
/// whether the database's one writer is free.
struct Probe {
    inner: LocalStore,
    db: Arc<Db>,
    seen: Mutex<Vec<Seen>>,
}

impl ChunkStore for Probe {
    fn put(&self, id: &ChunkId, stored: &[u8]) -> Result<bool, StoreError> {
        self.inner.put(id, stored)
    }
    fn replace(&self, id: &ChunkId, stored: &[u8]) -> Result<(), StoreError> {
        self.inner.replace(id, stored)
    }
    fn get(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
        self.inner.get(id)
    }
    fn exists(&self, id: &ChunkId) -> Result<bool, StoreError> {
        self.inner.exists(id)
    }
    fn exists_many(&self, ids: &[ChunkId]) -> Result<Vec<bool>, StoreError> {
        let fence_held = self.db.deletion_fence.try_write().is_err();
        // A write transaction on another thread: it commits at once if this thread holds none,
        // and waits (until after the timeout) if it does.
        let (tx, rx) = mpsc::channel();
        let db = self.db.clone();
        std::thread::spawn(move || {
            db.set_meta_json("probe", &1).unwrap();
            let _ = tx.send(());
        });
        let writer_free = rx.recv_timeout(Duration::from_secs(5)).is_ok();
        self.seen.lock().unwrap().push(Seen {
            fence_held,
            writer_free,
        });
        self.inner.exists_many(ids)
    }
    fn delete(&self, id: &ChunkId) -> Result<bool, StoreError> {
        self.inner.delete(id)
    }
    fn stored_at_us(&self, id: &ChunkId) -> Result<Option<i64>, StoreError> {
        self.inner.stored_at_us(id)
    }
    fn list(&self) -> Result<IdIter<'_>, StoreError> {
        self.inner.list()
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}

/// The store is asked about the chunks the index lacks while the upload holds the deletion fence
/// and before its write transaction (on an object store the lookup is network round trips, which
/// must not hold redb's one writer).
#[test]
fn the_store_is_asked_under_the_fence_and_outside_the_write_transaction() {
    let s = TempServer::new();
    let (_, a) = register(&s.db, "anna", "pc");
    let probe = Probe {
        inner: LocalStore::open(&s.dir.path().join("probe")).unwrap(),
        db: s.db.clone(),
        seen: Mutex::new(Vec::new()),
    };
    let r = upload(&s.db, &probe, a.user_id, &[part(b"one"), part(b"two")]).unwrap();
    assert_eq!(r.new_chunks, 2);
    assert_eq!(
        *probe.seen.lock().unwrap(),
        vec![Seen {
            fence_held: true,
            writer_free: true
        }]
    );
    assert!(s.db.chunk_record(&ChunkId::of(b"one")).unwrap().is_some());
    // Chunks the index knows are not looked up at all.
    upload(&s.db, &probe, a.user_id, &[part(b"one")]).unwrap();
    assert_eq!(probe.seen.lock().unwrap().len(), 1);
}

/// A chunk new to this user that the store has for someone else waits what writing it would
/// have cost; a chunk the user sends again (already theirs) does not wait.
#[test]
fn dedupe_against_another_user_waits_like_a_write() {
    let s = TempServer::new();
    let (_, a) = register(&s.db, "anna", "pc");
    let (_, b) = register(&s.db, "bert", "pc");
    let cost = PutCost::default();
    cost.observe(1000, Duration::from_millis(40));
    let p = part(b"shared content");
    let (_, pad) =
        super::upload(&s.db, &*s.store, a.user_id, std::slice::from_ref(&p), &cost).unwrap();
    assert!(pad.is_zero(), "written, not padded");
    let (r, pad) =
        super::upload(&s.db, &*s.store, b.user_id, std::slice::from_ref(&p), &cost).unwrap();
    assert_eq!(r.new_chunks, 1);
    assert!(pad >= Duration::from_millis(10), "{pad:?}");
    let (r, pad) =
        super::upload(&s.db, &*s.store, b.user_id, std::slice::from_ref(&p), &cost).unwrap();
    assert_eq!(r.new_chunks, 0);
    assert!(pad.is_zero(), "bert's own chunk: {pad:?}");
}

/// A streamed upload whose later slice holds a bad part records nothing, not even the good
/// slices before it.
#[test]
fn a_bad_part_in_a_later_slice_records_nothing() {
    let s = TempServer::new();
    let (_, a) = register(&s.db, "anna", "pc");
    let cost = PutCost::default();
    let mut up = Upload::new(a.user_id);
    up.add_slice(&s.db, &*s.store, &[part(b"first slice")], &cost)
        .unwrap();
    let forged = (ChunkId::of(b"claimed"), stored::encode(b"forged", 3));
    assert!(matches!(
        up.add_slice(&s.db, &*s.store, &[part(b"second"), forged], &cost),
        Err(ServiceError::ChunkHashMismatch(_))
    ));
    drop(up);
    assert_eq!(s.db.stats().unwrap().chunks, 0);
    assert!(!s.store.exists(&ChunkId::of(b"second")).unwrap());
    // The orphan of the first slice is recorded (not written again) by the next upload of it.
    let r = upload(&s.db, &*s.store, a.user_id, &[part(b"first slice")]).unwrap();
    assert_eq!(r.new_chunks, 1);
    assert_eq!(s.db.stats().unwrap().chunks, 1);
}
