//! Batched reads for the restore pipeline: the chunk lists of many versions and the ownership of
//! many chunks, each in one read transaction.

use asgard_core::ChunkId;

use super::{CHUNKS, Db, Result, USER_CHUNKS, VERSIONS, VersionRec};

impl Db {
    /// The records of `ids` that belong to `user_id`, in request order; `None` for an id that does
    /// not exist (any more) or belongs to another user, which look the same.
    pub fn user_versions(&self, user_id: u64, ids: &[u64]) -> Result<Vec<Option<VersionRec>>> {
        let txn = self.read()?;
        let versions = txn.open_table(VERSIONS)?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let rec = versions
                .get(id)?
                .map(|g| VersionRec::decode(g.value()))
                .transpose()?
                .filter(|r| r.user_id == user_id);
            out.push(rec);
        }
        Ok(out)
    }

    /// The first of `ids` that `user_id` may not read (see [`Db::owns_chunk`]), if any.
    pub fn first_unowned_chunk(&self, user_id: u64, ids: &[ChunkId]) -> Result<Option<ChunkId>> {
        let txn = self.read()?;
        let owned = txn.open_table(USER_CHUNKS)?;
        let chunks = txn.open_table(CHUNKS)?;
        for id in ids {
            if owned.get((user_id, &id.0))?.is_none() || chunks.get(&id.0)?.is_none() {
                return Ok(Some(*id));
            }
        }
        Ok(None)
    }
}
