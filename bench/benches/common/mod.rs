//! Setup shared by the benches over the server's metadata database (`mod common;` in each).

use asgard_core::ChunkId;
use asgard_core::protocol::LoginRequest;
use asgard_server::config::Registration;
use asgard_server::db::{Auth, Db, LoginPolicy, hash_token};
use asgard_server::store::{ChunkStore, IdIter, StoreError};

/// Microseconds of the index's timeline: everything is built at `T0`.
pub const T0: i64 = 1_700_000_000_000_000;

/// A store that claims to hold every chunk and whose deletes cost nothing, so that the figures
/// are those of the index work alone (a pass over real files adds one unlink per freed chunk).
pub struct IndexOnlyStore;

impl ChunkStore for IndexOnlyStore {
    fn put(&self, _: &ChunkId, _: &[u8]) -> Result<bool, StoreError> {
        Ok(false)
    }
    fn get(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
        Err(StoreError::NotFound { id: *id })
    }
    fn exists(&self, _: &ChunkId) -> Result<bool, StoreError> {
        Ok(true)
    }
    fn delete(&self, _: &ChunkId) -> Result<bool, StoreError> {
        Ok(true)
    }
    fn replace(&self, _: &ChunkId, _: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    fn stored_at_us(&self, _: &ChunkId) -> Result<Option<i64>, StoreError> {
        Ok(Some(0))
    }
    fn list(&self) -> Result<IdIter<'_>, StoreError> {
        Ok(Box::new(std::iter::empty()))
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The id of the `i`th synthetic chunk.
pub fn chunk_id(i: u64) -> ChunkId {
    ChunkId::of(&i.to_le_bytes())
}

/// A new database in `dir` with one registered device of user `bench`.
pub fn open_db(dir: &std::path::Path) -> (Db, Auth) {
    let db = Db::open(&dir.join("asgard.redb")).unwrap();
    let req = LoginRequest {
        protocol_version: 1,
        user: "bench".into(),
        device: "host".into(),
        os: "linux".into(),
        os_version: "6".into(),
        agent_version: "0".into(),
        enrollment_key: None,
        code: None,
    };
    let policy = LoginPolicy {
        registration: Registration::Open,
        enrollment_key: None,
    };
    let token = db.login(&req, None, policy, T0).unwrap().token.unwrap();
    let auth = db.authenticate(&hash_token(&token)).unwrap();
    (db, auth)
}
