//! # Chunk stores
//!
//! A [`ChunkStore`] keeps the stored form of chunks (see [`asgard_core::stored`]) under their
//! [`ChunkId`]. It knows nothing of users, versions or refcounts: those live in redb (`db.rs`), and
//! the store is only ever asked about bytes.
//!
//! ## Guarantees the rest of the server builds on
//!
//! - **Durable on return.** When [`ChunkStore::put`] returns `Ok`, the chunk survives a crash or a
//!   power cut. The upload handler records a chunk in redb only after its `put` returned, so redb
//!   never references a chunk that a crash could take away (invariant 1: nothing committed is lost).
//! - **Never overwrites.** A chunk's bytes, once stored, are not replaced by a later `put` of the
//!   same id. Stored bytes are verified against their id before `put` (invariant 3), so two writers
//!   of one id hold the same plaintext; a backend may still let the first writer win silently.
//! - **Batches are durable as a whole.** [`ChunkStore::put_many`] returns once every chunk of the
//!   batch is durable; a backend groups the syncs of a batch (the packed store: one `fdatasync`
//!   and one index commit per batch), but acknowledges nothing earlier.
//! - **Except to heal.** [`ChunkStore::replace`] is the one way to overwrite: the upload handler
//!   calls it only for a chunk that verify marked bad (damaged or missing bytes) and only with
//!   bytes it has just verified against the id. The old bytes stay readable until the new ones are
//!   durable and swap in atomically (per-file store: temp file, fsync, rename over, directory
//!   fsync; packed store: append, sync, then one index commit moves the location), so a crash
//!   during a heal leaves the old (bad) bytes or the new (good) ones, never a torn mix, and the
//!   chunk simply stays marked bad until a heal completes.
//! - **Crash leftovers are harmless.** A crash during `put` leaves at most a temporary object that
//!   is invisible to `get`/`exists`/`list` and cleaned up when the store is opened again. A chunk
//!   written by a request that then failed (or a crash before the redb commit) is simply
//!   unreferenced: it is in the store but not in redb, and a later upload of the same id reuses it.
//! - **Deletion is the GC's business.** Only the garbage collector calls [`ChunkStore::delete`], and
//!   only for chunks that redb no longer references. A packed backend may make deletion logical
//!   until compaction; callers must not assume space is freed at once.
//!
//! ## Backends
//!
//! - [`PackedStore`] (`packed/`): chunks appended to segments on a [`medium`] (local files today,
//!   an object store later), located through its own redb index; what `serve` and the
//!   maintenance commands use. [`open`] builds it from the `store:` section of the configuration.
//! - [`LocalStore`] (`local.rs`): one file per chunk, the layout of earlier versions; kept to read
//!   (and import) such data directories, and as a reference backend in tests and benches.
//!
//! ## Errors
//!
//! [`StoreError`] says whether retrying may help ([`StoreError::is_temporary`]): a wrapper that
//! retries, or an API answer "try again later", decides by that alone.
//!
//! Every backend must pass [`conformance::run_all`] (test builds only).
//!
//! All methods are synchronous and may block on I/O: async code calls them through
//! `actix_web::web::block`.

mod config;
pub mod local;
pub(crate) mod medium;
pub mod packed;

use std::io::ErrorKind;
use std::path::PathBuf;

use asgard_core::ChunkId;
use serde::{Deserialize, Serialize};

pub use config::{StoreConfig, StoreKind, open, open_packed};
pub use local::LocalStore;
pub use packed::{PackedOptions, PackedStore};

/// Where a chunk's stored bytes are (for admins and tests): `len` bytes at `offset` of the object
/// `path` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkLocation {
    /// The object holding the bytes, as its medium shows it (the field keeps the name `path`,
    /// which the output of `asgard-server locate` uses).
    pub path: ObjectName,
    pub offset: u64,
    pub len: u64,
}

/// How people see an object of a store: the full path of a file for local media (exactly what
/// `Path::display` shows), a URL for object stores. Serialized as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectName(String);

impl ObjectName {
    pub fn new(name: impl Into<String>) -> Self {
        ObjectName(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name for `format!` (the spelling `Path::display` callers are used to).
    pub fn display(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactReport {
    /// Segments whose live chunks were moved and whose file was removed.
    pub segments_compacted: u64,
    /// Bytes of disk space given back (removed files minus the bytes copied out of them).
    pub bytes_reclaimed: u64,
}

/// Why a store operation failed. Every variant names the chunk or path involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The chunk is not in the store. Permanent for this id.
    #[error("chunk {id} is not in the store")]
    NotFound { id: ChunkId },
    /// An I/O error on a file or object; may be temporary (full disk, network file system hiccup):
    /// [`StoreError::is_temporary`] tells by its kind.
    #[error("chunk store I/O error at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An error of a remote backend (an object store), classified by the backend: `temporary`
    /// when the same call may succeed later (timeouts, throttling, unavailable service), else
    /// permanent (denied access, a missing bucket, a refused request).
    #[error("chunk store backend error at {object} ({}): {source}", if *temporary { "temporary" } else { "permanent" })]
    Backend {
        object: String,
        temporary: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether retrying the same call may succeed without anyone changing anything but time:
    /// `true` for interrupted, timed-out, busy or disconnected I/O, a full disk or quota (space
    /// comes back when the GC or an admin frees it) and temporary backend errors; `false` for an
    /// absent chunk, every other I/O error (denied access, damaged files, invalid input) and
    /// permanent backend errors.
    pub fn is_temporary(&self) -> bool {
        match self {
            StoreError::NotFound { .. } => false,
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                ErrorKind::Interrupted
                    | ErrorKind::WouldBlock
                    | ErrorKind::TimedOut
                    | ErrorKind::ResourceBusy
                    | ErrorKind::StorageFull
                    | ErrorKind::QuotaExceeded
                    | ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::NotConnected
                    | ErrorKind::BrokenPipe
                    | ErrorKind::NetworkDown
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::HostUnreachable
                    | ErrorKind::StaleNetworkFileHandle
            ),
            StoreError::Backend { temporary, .. } => *temporary,
        }
    }
}

/// An iterator over the ids in a store.
pub type IdIter<'a> = Box<dyn Iterator<Item = Result<ChunkId, StoreError>> + Send + 'a>;

/// A place to keep stored chunks by id. See the module docs for the guarantees as a whole.
pub trait ChunkStore: Send + Sync {
    /// Stores `stored` under `id` unless the id is present already.
    ///
    /// Returns `true` when this call wrote the chunk, `false` when the store had it (its bytes are
    /// left alone). When this returns `Ok`, the chunk is durable.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the bytes could not be made durable; the chunk is then absent or
    /// present with complete bytes, never partial.
    fn put(&self, id: &ChunkId, stored: &[u8]) -> Result<bool, StoreError>;

    /// [`ChunkStore::put`] for a batch: returns per chunk whether this call wrote it. When this
    /// returns `Ok`, every chunk of the batch is durable; a backend makes the whole batch durable
    /// at once (one sync) where it can. An id twice in the batch is written at most once.
    ///
    /// # Errors
    /// [`StoreError::Io`]; chunks of the batch are then each absent or complete, and none of them
    /// may be counted as stored.
    fn put_many(&self, chunks: &[(ChunkId, &[u8])]) -> Result<Vec<bool>, StoreError> {
        chunks
            .iter()
            .map(|(id, bytes)| self.put(id, bytes))
            .collect()
    }

    /// Stores `stored` under `id` whether or not the id is present, replacing the old bytes: the
    /// healing path for a chunk that verify found damaged or missing. Callers pass only bytes they
    /// verified against `id`.
    ///
    /// Readers see the old bytes or the new ones, never a mix; when this returns `Ok` the new
    /// bytes are durable.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the new bytes could not be made durable; the chunk then holds its
    /// old bytes (or is absent, if it was) or the complete new ones.
    fn replace(&self, id: &ChunkId, stored: &[u8]) -> Result<(), StoreError>;

    /// The stored bytes of `id`, exactly as they were `put`. The caller verifies them (decode +
    /// hash) before trusting them.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the chunk is absent; [`StoreError::Io`] otherwise.
    fn get(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError>;

    /// Whether `id` is present (a completed `put`, not deleted since).
    ///
    /// # Errors
    /// [`StoreError::Io`] when presence could not be determined.
    fn exists(&self, id: &ChunkId) -> Result<bool, StoreError>;

    /// [`Self::exists`] for many ids at once, in their order (one index read for backends that
    /// have an index).
    ///
    /// # Errors
    /// [`StoreError::Io`] when presence could not be determined.
    fn exists_many(&self, ids: &[ChunkId]) -> Result<Vec<bool>, StoreError> {
        ids.iter().map(|id| self.exists(id)).collect()
    }

    /// Removes `id`; returns whether it was present. Deleting an absent chunk is not an error.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the removal failed; the chunk may then still be present.
    fn delete(&self, id: &ChunkId) -> Result<bool, StoreError>;

    /// [`ChunkStore::delete`] for a batch; returns how many were present.
    ///
    /// # Errors
    /// [`StoreError::Io`]; some of the chunks may then still be present.
    fn delete_many(&self, ids: &[ChunkId]) -> Result<u64, StoreError> {
        let mut n = 0;
        for id in ids {
            n += u64::from(self.delete(id)?);
        }
        Ok(n)
    }

    /// When `id` was stored, in µs since the Unix epoch (a file's modification time), or `None`
    /// when it is absent. The GC leaves young files without an index entry alone: an upload
    /// writes its chunks before it records them.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the time could not be read.
    fn stored_at_us(&self, id: &ChunkId) -> Result<Option<i64>, StoreError>;

    /// Every id in the store, in no particular order. Chunks put or deleted while the listing runs
    /// may or may not appear; everything present before and after the listing does appear.
    ///
    /// # Errors
    /// [`StoreError::Io`] for the listing itself or per item.
    fn list(&self) -> Result<IdIter<'_>, StoreError>;

    /// Makes every earlier `put` and `delete` durable. Backends whose `put` is durable on return
    /// (like [`LocalStore`]) do nothing here.
    ///
    /// # Errors
    /// [`StoreError::Io`] when durability could not be reached.
    fn flush(&self) -> Result<(), StoreError>;

    /// Gives back the space of deleted chunks where deletion was logical: rewrites containers
    /// whose live share fell below `below_percent`. Every present chunk stays readable with its
    /// exact bytes throughout. Backends that free space at once do nothing.
    ///
    /// # Errors
    /// [`StoreError::Io`]; whatever was compacted before stays consistent.
    fn compact(&self, below_percent: u32) -> Result<CompactReport, StoreError> {
        let _ = below_percent;
        Ok(CompactReport::default())
    }

    /// Where the stored bytes of `id` are (the object holding them, offset and length), or
    /// `None` when absent (admins and tests).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the location could not be read.
    fn locate(&self, id: &ChunkId) -> Result<Option<ChunkLocation>, StoreError> {
        let _ = id;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Retrying helps for interruptions, timeouts, lost connections and a full disk; not for an
    /// absent chunk, denied access or damaged data. Backends say it themselves.
    #[test]
    fn errors_say_whether_they_are_temporary() {
        let io = |kind| StoreError::io("/x", std::io::Error::from(kind));
        for kind in [
            ErrorKind::Interrupted,
            ErrorKind::TimedOut,
            ErrorKind::StorageFull,
            ErrorKind::ConnectionReset,
        ] {
            assert!(io(kind).is_temporary(), "{kind:?}");
        }
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::InvalidData,
            ErrorKind::NotFound,
            ErrorKind::Other,
        ] {
            assert!(!io(kind).is_temporary(), "{kind:?}");
        }
        let id = ChunkId::of(b"x");
        assert!(!StoreError::NotFound { id }.is_temporary());
        for temporary in [true, false] {
            let e = StoreError::Backend {
                object: "s3://bucket/packs/1.seg".into(),
                temporary,
                source: "503 Slow Down".into(),
            };
            assert_eq!(e.is_temporary(), temporary);
            assert!(e.to_string().contains("s3://bucket/packs/1.seg"), "{e}");
        }
    }
}

/// The shared test suite every backend must pass: call [`run_all`] with a factory of empty stores.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    /// Runs every conformance test; `fresh` must return a new, empty store each time.
    pub(crate) fn run_all(fresh: &dyn Fn() -> Box<dyn ChunkStore>) {
        put_then_get(&*fresh());
        never_overwrites(&*fresh());
        replace_heals(&*fresh());
        not_found(&*fresh());
        delete_removes(&*fresh());
        list_returns_all(&*fresh());
        stored_at_is_the_put_time(&*fresh());
        empty_and_large_bodies(&*fresh());
        put_many_stores_a_batch(&*fresh());
        compaction_keeps_every_live_chunk(&*fresh());
    }

    fn chunk(n: u32) -> (ChunkId, Vec<u8>) {
        let plain = format!("chunk number {n}").into_bytes();
        (ChunkId::of(&plain), asgard_core::stored::encode_raw(&plain))
    }

    fn put_then_get(s: &dyn ChunkStore) {
        let (id, bytes) = chunk(1);
        assert!(!s.exists(&id).unwrap());
        assert!(s.put(&id, &bytes).unwrap(), "first put writes");
        assert!(s.exists(&id).unwrap());
        let absent = chunk(2).0;
        assert_eq!(s.exists_many(&[absent, id]).unwrap(), [false, true]);
        assert!(s.exists_many(&[]).unwrap().is_empty());
        assert_eq!(s.get(&id).unwrap(), bytes);
        s.flush().unwrap();
        assert_eq!(s.get(&id).unwrap(), bytes);
    }

    fn never_overwrites(s: &dyn ChunkStore) {
        let (id, bytes) = chunk(2);
        assert!(s.put(&id, &bytes).unwrap());
        assert!(
            !s.put(&id, b"other bytes").unwrap(),
            "second put reports present"
        );
        assert_eq!(s.get(&id).unwrap(), bytes, "first bytes stay");
    }

    /// `replace` overwrites damaged bytes and recreates a lost chunk; a later `put` still does not
    /// overwrite, and no temporary object shows up in `list`.
    fn replace_heals(s: &dyn ChunkStore) {
        let (id, bytes) = chunk(5);
        assert!(s.put(&id, b"damaged bytes").unwrap());
        s.replace(&id, &bytes).unwrap();
        assert_eq!(s.get(&id).unwrap(), bytes, "replace swaps in the new bytes");
        assert!(!s.put(&id, b"other").unwrap());
        assert_eq!(s.get(&id).unwrap(), bytes);

        let (lost, lost_bytes) = chunk(6);
        s.put(&lost, &lost_bytes).unwrap();
        s.delete(&lost).unwrap();
        s.replace(&lost, &lost_bytes).unwrap();
        assert!(s.exists(&lost).unwrap());
        assert_eq!(
            s.get(&lost).unwrap(),
            lost_bytes,
            "replace recreates a lost chunk"
        );
        s.flush().unwrap();
        let mut listed: Vec<ChunkId> = s.list().unwrap().map(|r| r.unwrap()).collect();
        listed.sort();
        let mut want = vec![id, lost];
        want.sort();
        assert_eq!(listed, want);
    }

    fn not_found(s: &dyn ChunkStore) {
        let (id, _) = chunk(3);
        assert!(matches!(s.get(&id), Err(StoreError::NotFound { id: i }) if i == id));
        assert!(!s.exists(&id).unwrap());
        assert!(!s.delete(&id).unwrap());
    }

    fn delete_removes(s: &dyn ChunkStore) {
        let (id, bytes) = chunk(4);
        s.put(&id, &bytes).unwrap();
        assert!(s.delete(&id).unwrap());
        assert!(!s.exists(&id).unwrap());
        assert!(matches!(s.get(&id), Err(StoreError::NotFound { .. })));
        assert!(
            s.put(&id, &bytes).unwrap(),
            "a deleted chunk can be put again"
        );
        assert_eq!(s.get(&id).unwrap(), bytes);
    }

    fn stored_at_is_the_put_time(s: &dyn ChunkStore) {
        let (id, bytes) = chunk(5);
        assert_eq!(s.stored_at_us(&id).unwrap(), None);
        let before = crate::db::now_us();
        s.put(&id, &bytes).unwrap();
        let at = s.stored_at_us(&id).unwrap().expect("present");
        // File systems may round times down to their tick; allow two seconds.
        assert!(
            at >= before - 2_000_000 && at <= crate::db::now_us() + 2_000_000,
            "{at} vs {before}"
        );
        s.delete(&id).unwrap();
        assert_eq!(s.stored_at_us(&id).unwrap(), None);
    }

    fn list_returns_all(s: &dyn ChunkStore) {
        assert_eq!(s.list().unwrap().count(), 0);
        let mut ids: Vec<ChunkId> = (10..40)
            .map(|n| {
                let (id, b) = chunk(n);
                s.put(&id, &b).unwrap();
                id
            })
            .collect();
        let (gone, _) = chunk(10);
        s.delete(&gone).unwrap();
        ids.retain(|i| *i != gone);
        let mut listed: Vec<ChunkId> = s.list().unwrap().map(|r| r.unwrap()).collect();
        ids.sort();
        listed.sort();
        assert_eq!(listed, ids);
    }

    /// A batch reports per chunk whether it wrote it: not for ids present before or twice in the
    /// batch; every chunk reads back exactly.
    fn put_many_stores_a_batch(s: &dyn ChunkStore) {
        let (old, old_bytes) = chunk(100);
        assert!(s.put(&old, &old_bytes).unwrap());
        let batch: Vec<(ChunkId, Vec<u8>)> = (101..140).map(chunk).collect();
        let mut refs: Vec<(ChunkId, &[u8])> = batch.iter().map(|(i, b)| (*i, &b[..])).collect();
        refs.push((old, b"other bytes"));
        refs.push((batch[0].0, &batch[0].1));
        let written = s.put_many(&refs).unwrap();
        assert_eq!(written.len(), refs.len());
        assert!(written[..batch.len()].iter().all(|&w| w), "{written:?}");
        assert!(!written[batch.len()], "present before: not written");
        assert!(
            !written[batch.len() + 1],
            "twice in the batch: written once"
        );
        assert!(s.put_many(&[]).unwrap().is_empty());
        s.flush().unwrap();
        for (id, bytes) in &batch {
            assert_eq!(&s.get(id).unwrap(), bytes);
        }
        assert_eq!(s.get(&old).unwrap(), old_bytes);
        assert_eq!(s.list().unwrap().count(), batch.len() + 1);
    }

    /// After most chunks are deleted, compaction (whatever it does for the backend) keeps every
    /// present chunk readable with its exact bytes, and deleted ones stay deleted; stores and
    /// deletions work on afterwards.
    fn compaction_keeps_every_live_chunk(s: &dyn ChunkStore) {
        let all: Vec<(ChunkId, Vec<u8>)> = (200..400)
            .map(|n| {
                let plain = format!("compaction chunk {n} ").repeat(40).into_bytes();
                (ChunkId::of(&plain), asgard_core::stored::encode_raw(&plain))
            })
            .collect();
        for group in all.chunks(10) {
            let refs: Vec<(ChunkId, &[u8])> = group.iter().map(|(i, b)| (*i, &b[..])).collect();
            s.put_many(&refs).unwrap();
        }
        let dead: Vec<ChunkId> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 5 != 0)
            .map(|(_, (id, _))| *id)
            .collect();
        assert_eq!(s.delete_many(&dead).unwrap(), dead.len() as u64);
        let live: Vec<&(ChunkId, Vec<u8>)> = all.iter().step_by(5).collect();
        for _ in 0..2 {
            s.compact(50).unwrap();
            for (id, bytes) in &live {
                assert_eq!(&s.get(id).unwrap(), bytes);
            }
            for id in &dead {
                assert!(!s.exists(id).unwrap());
            }
        }
        let (id, bytes) = chunk(401);
        assert!(s.put(&id, &bytes).unwrap());
        assert!(s.delete(&live[0].0).unwrap());
        s.compact(100).unwrap();
        assert_eq!(s.get(&id).unwrap(), bytes);
        assert!(!s.exists(&live[0].0).unwrap());
        for (id, bytes) in &live[1..] {
            assert_eq!(&s.get(id).unwrap(), bytes);
        }
        assert_eq!(s.list().unwrap().count(), live.len());
    }

    fn empty_and_large_bodies(s: &dyn ChunkStore) {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let id = ChunkId::of(&big);
        let stored = asgard_core::stored::encode_raw(&big);
        assert!(s.put(&id, &stored).unwrap());
        assert_eq!(s.get(&id).unwrap(), stored);
        let empty = ChunkId::of(b"");
        assert!(
            s.put(&empty, &asgard_core::stored::encode_raw(b""))
                .unwrap()
        );
        assert_eq!(s.get(&empty).unwrap(), vec![0u8]);
    }
}
