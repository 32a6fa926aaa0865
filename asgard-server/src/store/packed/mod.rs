//! # The packed store: chunks appended to segments, located through a redb index
//!
//! One file per chunk costs a create, an fsync, a rename and a directory fsync per chunk; for
//! 100,000 small chunks that alone takes seconds. The packed store appends chunks to a few large
//! **segments** below `packs/` of its [`Medium`] and keeps where each chunk lives in its own redb
//! file, `index.redb`. A batch of chunks costs one write, one sync and one index commit. On an
//! object store (a medium without appends) a batch is one immutable pack object instead: the
//! packing is what makes an object store affordable (few, large objects; ranged reads).
//!
//! ## Layout
//!
//! - `format.rs`: the segment format. A segment `packs/<id as 16 hex digits>.seg` starts with the
//!   8 bytes [`SEGMENT_MAGIC`], followed by records, each a 40-byte header (`RECORD_MAGIC`, the
//!   32-byte chunk id, the stored length as u32 little endian) and then the stored bytes. A
//!   segment is thus self-describing: compaction reads it front to back, and the index could be
//!   rebuilt from the segments. `get` checks the header in front of the bytes it returns, so a
//!   stale or wrong location can never hand out another chunk's bytes. Segment ids are never
//!   reused within a process, nor while an object of that id may exist.
//! - `index.rs`: the index (`index.redb`, owned by the store, not the metadata database), two
//!   tables: `locations` (chunk id → segment, offset of the bytes, length, time stored) and
//!   `segments` (segment id → committed length, live bytes = headers and bytes of the records
//!   the index still points at). It is a separate file on purpose: it describes the segments of
//!   this store, so it must not travel with `db-backup`/`db-restore` of the metadata (a restored
//!   older metadata database would otherwise point at segments that compaction has since
//!   removed), and it keeps the [`ChunkStore`] trait free of the metadata schema. It is a local
//!   file whatever the medium.
//! - `writer.rs`: writer slots and batches; `compact.rs`: compaction; `recover.rs`: what `open`
//!   repairs after a crash; `import.rs`: the import of the per-file layout. Each file's essay
//!   says what a crash during its steps leaves behind.
//!
//! ## Rules every part keeps
//!
//! - Nothing is acknowledged before it is durable: bytes are synced (or put whole) before the
//!   index transaction that points at them, and the call returns after that commit.
//! - Deletion is logical: the location goes and the segment's live bytes drop. `replace` writes
//!   the new bytes like a put and moves the location in its index transaction.
//! - Objects are removed only once the index no longer points into them; whatever a crash leaves
//!   on the medium without an index row is removed at the next `open`.

mod compact;
pub(crate) mod format;
mod import;
mod index;
mod recover;
mod writer;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};

use asgard_core::ChunkId;

pub use format::{RECORD_HEADER, RECORD_MAGIC, SEGMENT_MAGIC};
use format::{SEG_HEADER, parse_header, record_len, segment_key};
use index::{Index, Mode};
use writer::OpenSegment;

use super::medium::{LocalMedium, Medium, Read};
use super::{ChunkLocation, ChunkStore, CompactReport, IdIter, StoreError};

/// Tuning of a [`PackedStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedOptions {
    /// A writer starts a new segment when the next batch would make its segment larger than this
    /// (a single larger batch still goes into one segment).
    pub segment_size: u64,
    /// Segments open for writing at the same time: concurrent batches up to this number write
    /// and sync in parallel.
    pub writers: usize,
}

impl Default for PackedOptions {
    fn default() -> Self {
        PackedOptions {
            segment_size: 64 << 20,
            writers: 4,
        }
    }
}

/// Chunks packed into segments; see the module docs.
pub struct PackedStore {
    medium: Arc<dyn Medium>,
    index: Index,
    opts: PackedOptions,
    next_segment: AtomicU64,
    writers: Vec<Mutex<Option<OpenSegment>>>,
    next_writer: AtomicUsize,
    /// Segments being appended to (writer slots, a compaction's output): never compacted.
    open_segments: Mutex<HashSet<u64>>,
    compacting: Mutex<()>,
}

impl std::fmt::Debug for PackedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedStore")
            .field("medium", &self.medium)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl PackedStore {
    /// Opens (creating if needed) the store in the folder `root` (`<data_dir>/chunks`): segments
    /// as files below `root/packs/`, the index in `root/index.redb`. Repairs what a crash left
    /// (see `recover.rs`) and imports chunk files of the per-file layout. The caller holds the
    /// data directory lock: no other process uses the store.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the folders, the index or a repair step fail.
    pub fn open(root: &Path, opts: PackedOptions) -> Result<PackedStore, StoreError> {
        let medium = LocalMedium::open(root)?;
        PackedStore::on_medium(Arc::new(medium), &root.join("index.redb"), opts)
    }

    /// Opens the store on `medium` with its index in the local file `index_path`; as
    /// [`Self::open`] otherwise.
    ///
    /// # Errors
    /// [`StoreError`] when the index, the medium or a repair step fail.
    pub(crate) fn on_medium(
        medium: Arc<dyn Medium>,
        index_path: &Path,
        opts: PackedOptions,
    ) -> Result<PackedStore, StoreError> {
        let index = Index::open(index_path)?;
        let store = PackedStore {
            medium,
            index,
            opts: PackedOptions {
                segment_size: opts.segment_size.max(SEG_HEADER + 1),
                writers: opts.writers.max(1),
            },
            next_segment: AtomicU64::new(1),
            writers: (0..opts.writers.max(1)).map(|_| Mutex::new(None)).collect(),
            next_writer: AtomicUsize::new(0),
            open_segments: Mutex::new(HashSet::new()),
            compacting: Mutex::new(()),
        };
        store.recover()?;
        store.import_legacy()?;
        Ok(store)
    }
}

impl ChunkStore for PackedStore {
    fn put(&self, id: &ChunkId, stored: &[u8]) -> Result<bool, StoreError> {
        Ok(self.put_many(&[(*id, stored)])?[0])
    }

    fn put_many(&self, chunks: &[(ChunkId, &[u8])]) -> Result<Vec<bool>, StoreError> {
        let at = now_us();
        let items: Vec<(ChunkId, &[u8], i64)> =
            chunks.iter().map(|(id, b)| (*id, *b, at)).collect();
        self.append(&items, Mode::Put)
    }

    fn replace(&self, id: &ChunkId, stored: &[u8]) -> Result<(), StoreError> {
        self.append(&[(*id, stored, now_us())], Mode::Replace)?;
        Ok(())
    }

    fn get(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
        // A compaction may remove the segment between the lookup and the read: look again.
        for _ in 0..4 {
            let Some((seg, offset, len, _)) = self.index.location(id)? else {
                return Err(StoreError::NotFound { id: *id });
            };
            let key = segment_key(seg);
            let mut buf = match self.medium.read_at(
                &key,
                offset - RECORD_HEADER,
                record_len(len),
            )? {
                Read::Bytes(b) => b,
                Read::Missing => {
                    if self.index.location(id)?.is_some_and(|l| l.0 == seg) {
                        // The index points at a segment that is gone: the chunk is missing.
                        return Err(StoreError::NotFound { id: *id });
                    }
                    continue;
                }
                Read::Short => {
                    tracing::warn!(chunk = %id, path = %self.medium.describe(&key), "segment ends before the chunk");
                    return Err(StoreError::NotFound { id: *id });
                }
            };
            if parse_header(&buf) != Some((*id, len)) {
                tracing::warn!(chunk = %id, path = %self.medium.describe(&key), offset, "the record header does not name the chunk");
                return Err(StoreError::NotFound { id: *id });
            }
            buf.drain(..RECORD_HEADER as usize);
            return Ok(buf);
        }
        Err(StoreError::io(
            self.medium.describe("packs").as_str(),
            std::io::Error::other(format!("chunk {id} kept moving while being read")),
        ))
    }

    fn exists(&self, id: &ChunkId) -> Result<bool, StoreError> {
        Ok(self.index.location(id)?.is_some())
    }

    fn exists_many(&self, ids: &[ChunkId]) -> Result<Vec<bool>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.index.exists_many(ids)
    }

    fn delete(&self, id: &ChunkId) -> Result<bool, StoreError> {
        Ok(self.delete_many(std::slice::from_ref(id))? > 0)
    }

    fn delete_many(&self, ids: &[ChunkId]) -> Result<u64, StoreError> {
        self.index.delete_many(ids)
    }

    fn stored_at_us(&self, id: &ChunkId) -> Result<Option<i64>, StoreError> {
        Ok(self.index.location(id)?.map(|l| l.3))
    }

    fn list(&self) -> Result<IdIter<'_>, StoreError> {
        // Key-range batches, each from its own read transaction (never the whole index at once).
        const BATCH: usize = 10_000;
        let mut after: Option<[u8; 32]> = None;
        let mut pending: std::vec::IntoIter<ChunkId> = Vec::new().into_iter();
        let mut finished = false;
        Ok(Box::new(std::iter::from_fn(move || {
            loop {
                if let Some(id) = pending.next() {
                    return Some(Ok(id));
                }
                if finished {
                    return None;
                }
                match self.index.ids_after(after.as_ref(), BATCH) {
                    Ok(ids) => {
                        if ids.len() < BATCH {
                            finished = true;
                        }
                        after = ids.last().map(|id| id.0);
                        pending = ids.into_iter();
                    }
                    Err(e) => {
                        finished = true;
                        return Some(Err(e));
                    }
                }
            }
        })))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn compact(&self, below_percent: u32) -> Result<CompactReport, StoreError> {
        self.compact_with(below_percent, &mut || {})
    }

    fn locate(&self, id: &ChunkId) -> Result<Option<ChunkLocation>, StoreError> {
        Ok(self
            .index
            .location(id)?
            .map(|(seg, offset, len, _)| ChunkLocation {
                path: self.medium.describe(&segment_key(seg)),
                offset,
                len: u64::from(len),
            }))
    }
}

#[cfg(test)]
mod tests;
