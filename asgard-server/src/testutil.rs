//! Helpers shared by the server's unit tests: a temporary database (and store), registered
//! devices, uploads, file entries and commits. Every test builds its own world in a temp dir.

use std::collections::HashSet;
use std::sync::Arc;

use asgard_core::protocol::{ChunkRef, CommitEntry, CommitResponse, FileMeta, LoginRequest};
use asgard_core::{ChunkId, ChunkParams, RawPath};

use crate::config::Registration;
use crate::db::{Auth, Db, LoginPolicy, UploadedChunk, hash_token, now_us};
use crate::store::{ChunkStore, LocalStore};

/// A new database in a temp dir (dropped with the dir).
pub(crate) fn open_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
    (dir, db)
}

/// A database and a [`LocalStore`] in one temp dir (`asgard.redb`, `chunks/`), shared as the
/// server shares them.
pub(crate) struct TempServer {
    pub dir: tempfile::TempDir,
    pub db: Arc<Db>,
    pub store: Arc<LocalStore>,
}

impl TempServer {
    pub(crate) fn new() -> TempServer {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("asgard.redb")).unwrap());
        let store = Arc::new(LocalStore::open(&dir.path().join("chunks")).unwrap());
        TempServer { dir, db, store }
    }
}

/// The login request of an agent of protocol version 1.
pub(crate) fn login_request(user: &str, device: &str) -> LoginRequest {
    LoginRequest {
        protocol_version: 1,
        user: user.into(),
        device: device.into(),
        os: "linux".into(),
        os_version: "6".into(),
        agent_version: "0.1".into(),
        enrollment_key: None,
        code: None,
    }
}

/// Anyone may register.
pub(crate) const OPEN: LoginPolicy<'static> = LoginPolicy {
    registration: Registration::Open,
    enrollment_key: None,
};

/// Registers `user`/`device` (open registration) at time `now`, with the admin's approval when
/// the user has a device already; returns its token and identity.
pub(crate) fn register_at(db: &Db, user: &str, device: &str, now: i64) -> (String, Auth) {
    let out = db
        .login(&login_request(user, device), None, OPEN, now)
        .unwrap();
    let token = out.token.unwrap();
    if out.status == asgard_core::protocol::DeviceStatus::Pending {
        db.approve_device(user, device).unwrap();
    }
    let auth = db.authenticate(&hash_token(&token)).unwrap();
    (token, auth)
}

/// [`register_at`] now.
pub(crate) fn register(db: &Db, user: &str, device: &str) -> (String, Auth) {
    register_at(db, user, device, now_us())
}

/// The upload records of `data` as the index-only tests use them: each chunk's stored length is
/// its plain length + 1.
pub(crate) fn uploaded(data: &[&[u8]]) -> Vec<UploadedChunk> {
    data.iter()
        .map(|d| UploadedChunk {
            id: ChunkId::of(d),
            stored_len: d.len() as u64 + 1,
            plain_len: d.len() as u32,
        })
        .collect()
}

/// Records `list` in the index as if the store held every chunk of it (tests of the index alone).
pub(crate) fn record_present(db: &Db, user_id: u64, list: &[UploadedChunk], now: i64) -> u32 {
    let fence = db.upload_fence();
    let in_store: HashSet<ChunkId> = list.iter().map(|c| c.id).collect();
    db.record_upload(&fence, user_id, list, now, &in_store)
        .unwrap()
}

/// Records chunks of `data` for `a` (index only, see [`uploaded`]); returns their ids.
pub(crate) fn upload(db: &Db, a: &Auth, data: &[&[u8]]) -> Vec<ChunkId> {
    let list = uploaded(data);
    record_present(db, a.user_id, &list, now_us());
    list.iter().map(|c| c.id).collect()
}

/// What the upload handler does with verified parts, without the verification: puts each piece
/// (raw stored form) into `store` and records it with the store's presence answer, at `now`.
/// (The GC tests upload this way.)
pub(crate) fn upload_to(db: &Db, store: &dyn ChunkStore, a: &Auth, pieces: &[&[u8]], now: i64) {
    let mut list = Vec::new();
    for p in pieces {
        let id = ChunkId::of(p);
        let stored = asgard_core::stored::encode_raw(p);
        store.put(&id, &stored).unwrap();
        list.push(UploadedChunk {
            id,
            stored_len: stored.len() as u64,
            plain_len: p.len() as u32,
        });
    }
    crate::service::ingest::record_verified(db, store, a.user_id, &list, &[], now).unwrap();
}

/// A file entry of the concatenated `parts`, one chunk per part.
pub(crate) fn file(path: &str, parts: &[&[u8]]) -> CommitEntry {
    let all: Vec<u8> = parts.concat();
    CommitEntry::File {
        path: RawPath::from(path),
        meta: FileMeta {
            size: all.len() as u64,
            mtime_ns: 1,
            mode: 0o644,
            attributes: 0,
            ext: Default::default(),
            hash: ChunkId::of(&all),
            params: ChunkParams::default(),
            chunks: parts
                .iter()
                .map(|p| ChunkRef {
                    id: ChunkId::of(p),
                    len: p.len() as u32,
                })
                .collect(),
        },
    }
}

/// Commits `entries` for `a` now; panics on an error.
pub(crate) fn commit(db: &Db, a: &Auth, entries: &[CommitEntry], keep: u32) -> CommitResponse {
    db.commit(a.user_id, a.device_id, entries, keep, now_us())
        .unwrap()
}
