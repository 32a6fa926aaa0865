//! Import of the per-file layout.
//!
//! Data directories of earlier versions hold one object per chunk, `ab/cd/<64 hex>` (see
//! [`LocalStore`](crate::store::LocalStore)), on the same medium as the segments. `open` imports
//! them: batches of them are appended like a put (keeping their modification time as the time
//! stored, which the GC's orphan sweep relies on), and an object is removed only after the index
//! commit of its batch. A crash anywhere leaves every chunk either in the index or still an
//! object (or both: the next import skips it and removes the object). Temporary files of that
//! layout (`tmp/`) are removed, and so are the folders the import leaves empty.

use asgard_core::ChunkId;

use super::PackedStore;
use super::index::Mode;
use crate::store::StoreError;
use crate::store::medium::{ObjectMeta, Read};

/// Legacy chunk objects imported per batch.
const IMPORT_BATCH: usize = 1000;
const IMPORT_BATCH_BYTES: usize = 64 << 20;

/// A chunk of the per-file layout: id, stored bytes, time stored, key.
type Legacy = (ChunkId, Vec<u8>, i64, String);

/// The chunk id of a key of the per-file layout (`ab/cd/<hex of the id>`), or `None`.
fn legacy_id(key: &str) -> Option<ChunkId> {
    let mut parts = key.split('/');
    let (l1, l2, name) = (parts.next()?, parts.next()?, parts.next()?);
    let hex2 = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if parts.next().is_some() || !hex2(l1) || !hex2(l2) {
        return None;
    }
    name.parse().ok()
}

impl PackedStore {
    /// Imports chunk objects of the per-file layout (see the module docs); idempotent.
    pub(crate) fn import_legacy(&self) -> Result<(), StoreError> {
        let mut done = 0usize;
        let mut found = false;
        let mut batch: Vec<Legacy> = Vec::new();
        let mut batch_bytes = 0usize;
        // One first-level folder at a time, so the keys are never all in memory; removing
        // imported objects while listing is allowed.
        for l1 in 0..=255u8 {
            let prefix = format!("{l1:02x}/");
            for meta in self.medium.list(&prefix)? {
                let ObjectMeta {
                    key,
                    size,
                    modified_us,
                } = meta?;
                let Some(id) = legacy_id(&key) else {
                    continue;
                };
                if !found {
                    found = true;
                    tracing::info!("importing chunk files of the per-file layout into segments");
                }
                match self.medium.read_at(&key, 0, size)? {
                    Read::Bytes(bytes) => {
                        batch_bytes += bytes.len();
                        batch.push((id, bytes, modified_us, key));
                    }
                    Read::Missing | Read::Short => continue,
                }
                if batch.len() >= IMPORT_BATCH || batch_bytes >= IMPORT_BATCH_BYTES {
                    done += self.import_batch(&mut batch)?;
                    tracing::info!(done, "imported chunk files");
                    batch_bytes = 0;
                }
            }
        }
        if !batch.is_empty() {
            done += self.import_batch(&mut batch)?;
            tracing::info!(done, "imported chunk files");
        }
        if !found {
            return Ok(());
        }
        // Temp files of the per-file layout, then the folders left empty.
        for meta in self.medium.list("tmp/")? {
            let key = meta?.key;
            match self.medium.delete(&key) {
                Ok(_) => {
                    tracing::info!(path = %self.medium.describe(&key), "removed leftover temp file")
                }
                Err(e) => {
                    tracing::warn!(path = %self.medium.describe(&key), error = %e, "cannot remove temp file")
                }
            }
        }
        self.medium.tidy("")?;
        tracing::info!(chunks = done, "import of the per-file layout done");
        Ok(())
    }

    /// Appends a batch of legacy chunks, then removes their objects; empties `batch`.
    fn import_batch(&self, batch: &mut Vec<Legacy>) -> Result<usize, StoreError> {
        let items: Vec<(ChunkId, &[u8], i64)> = batch
            .iter()
            .map(|(id, b, at, _)| (*id, &b[..], *at))
            .collect();
        self.append(&items, Mode::Put)?;
        // In the index now (or before): the objects may go. A removal lost in a crash is redone
        // by the next import, so it need not be durable.
        for (_, _, _, key) in batch.iter() {
            self.medium.discard(key)?;
        }
        let n = batch.len();
        batch.clear();
        Ok(n)
    }
}
