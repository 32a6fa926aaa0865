//! The files cache: what the agent knows the server already holds, so that an unchanged file is
//! not even opened (and an unchanged link or folder not sent again).
//!
//! One redb file per (server URL, user, device) under `<state dir>/files-cache/`, keyed by the
//! path's bytes. An entry says: "this path, a file, link or folder with exactly this size, mtime,
//! change time, inode, mode and attributes, has content `hash` (a link: its target's hash; a
//! folder: none), and version `version_id` with that content and that metadata is committed".
//! A scanned entry whose facts equal its entry is counted unchanged without being read.
//!
//! The metadata beyond these facts (owner, extended attributes and ACLs, the link count behind a
//! hard-link group) is not compared on its own: every change of it (chown, chmod, setfattr,
//! setfacl, link, unlink) moves the change time, so the entry no longer matches and the path is
//! read and sent again. (A renamed owner *name* with the same number does not; the next change
//! records it.) Format 1 entries, written before metadata was recorded, do not promise it: they
//! are misses, so the first run of this version sends every path once with its metadata.
//!
//! Two rules keep that statement true:
//! - entries are written only after the commit containing the file succeeded, so a crash or a
//!   failed commit can only leave entries missing (the file is read again), never wrong;
//! - a file whose mtime or change time is not at least [`SAFETY_MARGIN_NS`] older than the start of
//!   the run is never recorded. A file may be written again after we read it within the same
//!   timestamp tick (1 s on ext3 and HFS+, 2 s for FAT mtimes, and the kernel stamps files from a
//!   coarse clock that lags the real one by up to a timer tick); its metadata would then look
//!   unchanged although the content is not what we read. Everything written after the run started
//!   gets a timestamp of at least `start - margin`, so it can never match an entry that we only
//!   wrote for files stamped before `start - margin`. Two seconds covers the coarsest common
//!   granularity (FAT); the price is that files changed in the last two seconds before a run are
//!   read again next time.
//!
//! A new registration (new token) deletes the namespace's file: the server it talks to may not
//! have what the old entries promise. Likewise, the paths the server names at login as referencing
//! chunks it found damaged or missing are [forgotten](FilesCache::forget) before the scan, so that
//! those files are read and their chunks offered again although their metadata is unchanged.

use std::path::{Path, PathBuf};

use asgard_core::{ChunkId, RawPath};
use redb::{Database, ReadableDatabase, TableDefinition};

use crate::platform;

/// path bytes → encoded [`CacheEntry`]
const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");

/// Files changed less than this long before the run started are not recorded (see module docs).
pub(crate) const SAFETY_MARGIN_NS: i64 = 2_000_000_000;

/// redb's page cache for the files cache (lookups mostly walk the tree in order).
const CACHE_MEMORY: usize = 4 * 1024 * 1024;

/// Format byte of an encoded entry; an entry of another format is a miss. 2: the version also
/// holds the entry's metadata (issue 12), and folders are cached.
const FORMAT: u8 = 2;
const ENCODED_LEN: usize = 2 + 8 * 4 + 4 * 2 + 32 + 8;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    #[error("files cache {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("files cache {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    #[error("files cache: {0}")]
    Storage(#[from] redb::Error),
}

macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for CacheError {
            fn from(e: $t) -> Self {
                CacheError::Storage(e.into())
            }
        }
    )*};
}
storage_errors!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Whether a cache entry describes a regular file, a symbolic link or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File = 1,
    Symlink = 2,
    Dir = 3,
}

/// The content hash recorded for a folder (it has none).
pub(crate) const NO_CONTENT: ChunkId = ChunkId([0; 32]);

/// The metadata of a file that the cache compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    pub(crate) ctime_ns: i64,
    pub(crate) inode: u64,
    pub(crate) mode: u32,
    pub(crate) attributes: u32,
}

impl Facts {
    /// The facts of `meta` (from `symlink_metadata`).
    pub(crate) fn of(kind: Kind, meta: &std::fs::Metadata) -> Facts {
        Facts {
            kind,
            size: meta.len(),
            mtime_ns: platform::mtime_ns(meta),
            ctime_ns: platform::change_time_ns(meta),
            inode: platform::inode(meta),
            mode: platform::mode(meta),
            attributes: platform::attributes(meta),
        }
    }

    /// Whether these facts may be recorded by a run that started at `run_start_ns`.
    pub(crate) fn settled(&self, run_start_ns: i64) -> bool {
        let limit = run_start_ns.saturating_sub(SAFETY_MARGIN_NS);
        self.mtime_ns < limit && self.ctime_ns < limit
    }
}

/// One cached file: its facts, content hash and the committed version with that content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheEntry {
    pub(crate) facts: Facts,
    pub(crate) hash: ChunkId,
    pub(crate) version_id: u64,
}

impl CacheEntry {
    fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        let f = &self.facts;
        let mut w = Writer(&mut out, 0);
        w.put(&[FORMAT, f.kind as u8]);
        w.put(&f.size.to_le_bytes());
        w.put(&f.mtime_ns.to_le_bytes());
        w.put(&f.ctime_ns.to_le_bytes());
        w.put(&f.inode.to_le_bytes());
        w.put(&f.mode.to_le_bytes());
        w.put(&f.attributes.to_le_bytes());
        w.put(&self.hash.0);
        w.put(&self.version_id.to_le_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<CacheEntry> {
        if b.len() != ENCODED_LEN || b[0] != FORMAT {
            return None;
        }
        let kind = match b[1] {
            1 => Kind::File,
            2 => Kind::Symlink,
            3 => Kind::Dir,
            _ => return None,
        };
        let mut r = Reader(&b[2..]);
        let facts = Facts {
            kind,
            size: u64::from_le_bytes(r.take()),
            mtime_ns: i64::from_le_bytes(r.take()),
            ctime_ns: i64::from_le_bytes(r.take()),
            inode: u64::from_le_bytes(r.take()),
            mode: u32::from_le_bytes(r.take()),
            attributes: u32::from_le_bytes(r.take()),
        };
        let hash = ChunkId(r.take());
        let version_id = u64::from_le_bytes(r.take());
        Some(CacheEntry {
            facts,
            hash,
            version_id,
        })
    }
}

struct Writer<'a>(&'a mut [u8], usize);

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.0[self.1..self.1 + b.len()].copy_from_slice(b);
        self.1 += b.len();
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().expect("split_at gives N bytes")
    }
}

/// A change to write after a successful commit.
#[derive(Debug, Clone)]
pub(crate) enum Update {
    Put(RawPath, CacheEntry),
    Remove(RawPath),
}

/// The files cache of one (server, user, device).
pub struct FilesCache {
    db: Database,
}

/// The cache file for a namespace: a hash of (server URL, user, device), so that no name leaks
/// into a file name and another registration never sees these entries.
pub(crate) fn cache_path(state_dir: &Path, server_url: &str, user: &str, device: &str) -> PathBuf {
    let mut h = blake3::Hasher::new();
    for part in [server_url, user, device] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let hex = h.finalize().to_hex();
    state_dir
        .join("files-cache")
        .join(format!("{}.redb", &hex[..32]))
}

impl FilesCache {
    /// Opens (or creates) the cache at `path`. With `fresh`, any old content is discarded first.
    pub(crate) fn open(path: &Path, fresh: bool) -> Result<FilesCache, CacheError> {
        let io = |source| CacheError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        if fresh {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                _ => {}
            }
        }
        // redb would cache up to 1 GiB of pages; the agent's memory must not grow with the tree.
        let db = Database::builder()
            .set_cache_size(CACHE_MEMORY)
            .create(path)
            .map_err(|source| CacheError::Open {
                path: path.to_owned(),
                source,
            })?;
        let txn = db.begin_write()?;
        txn.open_table(FILES)?;
        txn.commit()?;
        Ok(FilesCache { db })
    }

    /// A consistent view for the lookups of one scan.
    pub(crate) fn reader(&self) -> Result<CacheReader, CacheError> {
        let txn = self.db.begin_read()?;
        Ok(CacheReader {
            table: txn.open_table(FILES)?,
        })
    }

    /// Applies updates in one transaction.
    pub(crate) fn apply(&self, updates: &[Update]) -> Result<(), CacheError> {
        if updates.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(FILES)?;
            for u in updates {
                match u {
                    Update::Put(path, entry) => {
                        t.insert(path.0.as_slice(), entry.encode().as_slice())?;
                    }
                    Update::Remove(path) => {
                        t.remove(path.0.as_slice())?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

impl FilesCache {
    /// Drops the entries of `paths` (those present), in one transaction, so that the next scan
    /// reads these files again. Returns how many entries were dropped.
    pub(crate) fn forget(&self, paths: &[RawPath]) -> Result<usize, CacheError> {
        if paths.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write()?;
        let mut dropped = 0;
        {
            let mut t = txn.open_table(FILES)?;
            for p in paths {
                if t.remove(p.0.as_slice())?.is_some() {
                    dropped += 1;
                }
            }
        }
        txn.commit()?;
        Ok(dropped)
    }
}

/// Lookups against one snapshot of the cache; usable from several scan threads.
pub struct CacheReader {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl CacheReader {
    /// The entry of `path` if its facts equal `facts`. A read error counts as a miss (the file is
    /// then simply read).
    pub(crate) fn matching(&self, path: &RawPath, facts: &Facts) -> Option<CacheEntry> {
        let guard = self.table.get(path.0.as_slice()).ok()??;
        CacheEntry::decode(guard.value()).filter(|e| e.facts == *facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(mtime_ns: i64) -> Facts {
        Facts {
            kind: Kind::File,
            size: 10,
            mtime_ns,
            ctime_ns: mtime_ns,
            inode: 42,
            mode: 0o644,
            attributes: 0,
        }
    }

    fn entry(mtime_ns: i64) -> CacheEntry {
        CacheEntry {
            facts: facts(mtime_ns),
            hash: ChunkId::of(b"x"),
            version_id: 7,
        }
    }

    #[test]
    fn encoding_round_trip() {
        let e = entry(-5);
        assert_eq!(CacheEntry::decode(&e.encode()), Some(e));
        let mut bad = e.encode();
        bad[0] = 99;
        assert_eq!(CacheEntry::decode(&bad), None);
        assert_eq!(CacheEntry::decode(&bad[..10]), None);
        let mut folder = entry(3);
        folder.facts.kind = Kind::Dir;
        folder.hash = NO_CONTENT;
        assert_eq!(CacheEntry::decode(&folder.encode()), Some(folder));
    }

    /// Entries written before metadata was recorded (format 1) promise no metadata: they are
    /// misses, so each path is sent once more, with its owner and attributes.
    #[test]
    fn format_1_entries_are_misses() {
        let mut old = entry(7).encode();
        assert_eq!(old[0], FORMAT);
        old[0] = 1;
        assert_eq!(CacheEntry::decode(&old), None);
    }

    #[test]
    fn lookup_matches_only_identical_facts() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), "https://s", "u", "d");
        let cache = FilesCache::open(&path, false).unwrap();
        let p = RawPath::from("/a/b");
        cache.apply(&[Update::Put(p.clone(), entry(100))]).unwrap();
        let r = cache.reader().unwrap();
        assert_eq!(r.matching(&p, &facts(100)), Some(entry(100)));
        assert_eq!(r.matching(&p, &facts(101)), None);
        let mut other_inode = facts(100);
        other_inode.inode = 43;
        assert_eq!(r.matching(&p, &other_inode), None);
        let mut link = facts(100);
        link.kind = Kind::Symlink;
        assert_eq!(r.matching(&p, &link), None);
        assert_eq!(r.matching(&RawPath::from("/a/c"), &facts(100)), None);
        drop(r);
        cache.apply(&[Update::Remove(p.clone())]).unwrap();
        assert_eq!(cache.reader().unwrap().matching(&p, &facts(100)), None);
    }

    #[test]
    fn namespaces_and_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let a = cache_path(dir.path(), "https://s", "u", "d");
        assert_ne!(a, cache_path(dir.path(), "https://s", "u", "e"));
        assert_ne!(a, cache_path(dir.path(), "https://t", "u", "d"));
        // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            cache_path(dir.path(), "s", "ab", "c"),
            cache_path(dir.path(), "s", "a", "bc")
        );
        let p = RawPath::from("/x");
        {
            let c = FilesCache::open(&a, false).unwrap();
            c.apply(&[Update::Put(p.clone(), entry(1))]).unwrap();
        }
        {
            let c = FilesCache::open(&a, false).unwrap();
            assert!(c.reader().unwrap().matching(&p, &facts(1)).is_some());
        }
        let c = FilesCache::open(&a, true).unwrap();
        assert!(c.reader().unwrap().matching(&p, &facts(1)).is_none());
    }

    #[test]
    fn only_settled_files_are_recorded() {
        let start = 1_000_000_000_000;
        assert!(facts(start - SAFETY_MARGIN_NS - 1).settled(start));
        assert!(!facts(start - SAFETY_MARGIN_NS).settled(start));
        assert!(!facts(start + 5).settled(start));
        let mut f = facts(0);
        f.ctime_ns = start;
        assert!(!f.settled(start), "a fresh ctime is not settled");
    }

    /// Paths the server names at login as referencing bad chunks lose their entries, so that an
    /// unchanged file is read again; other entries stay.
    #[test]
    fn forget_drops_only_the_named_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FilesCache::open(&cache_path(dir.path(), "s", "u", "d"), false).unwrap();
        let (a, b) = (RawPath::from("/a"), RawPath::from("/b"));
        cache
            .apply(&[
                Update::Put(a.clone(), entry(1)),
                Update::Put(b.clone(), entry(1)),
            ])
            .unwrap();
        let n = cache
            .forget(&[a.clone(), RawPath::from("/not-cached")])
            .unwrap();
        assert_eq!(n, 1);
        let r = cache.reader().unwrap();
        assert_eq!(r.matching(&a, &facts(1)), None, "named path is read again");
        assert!(r.matching(&b, &facts(1)).is_some(), "other entries stay");
        assert_eq!(cache.forget(&[]).unwrap(), 0);
    }

    #[test]
    fn reader_is_shareable_between_threads() {
        fn sync<T: Sync + Send>() {}
        sync::<CacheReader>();
    }
}
