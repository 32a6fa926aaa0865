//! The local file system backend: one file per chunk under `<data_dir>/chunks/ab/cd/<64 hex>`.
//!
//! Works unchanged on NFS or CephFS mounts: it needs only create, write, fsync, rename and readdir.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use asgard_core::ChunkId;

use super::{ChunkStore, IdIter, StoreError};

/// Chunks as files below a root folder.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl LocalStore {
    /// Opens (creating if needed) the store at `root` and removes temporary files that a crash
    /// during an earlier `put` left behind. Only one process may use a store: the caller holds the
    /// data directory lock, so nobody is writing temp files while we clean up.
    pub fn open(root: &Path) -> Result<LocalStore, StoreError> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        // The store's own folder must be durable in its parent before any chunk below it counts
        // as durable (a chunk's fsyncs reach only up to `root`).
        sync_dir(root)?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        for entry in fs::read_dir(&tmp).map_err(|e| StoreError::io(&tmp, e))? {
            let entry = entry.map_err(|e| StoreError::io(&tmp, e))?;
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "removed leftover temp file"),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove temp file")
                }
            }
        }
        Ok(LocalStore {
            root: root.to_path_buf(),
            tmp,
            counter: AtomicU64::new(0),
        })
    }

    /// The file of a chunk.
    pub fn path_of(&self, id: &ChunkId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// Writes the whole chunk under a temporary name in the same file system and fsyncs it, so
    /// that the rename in [`Self::rename_into_place`] can only ever expose complete, durable
    /// bytes. Creates the chunk's folders first.
    fn write_temp(
        &self,
        id: &ChunkId,
        target: &Path,
        stored: &[u8],
    ) -> Result<PathBuf, StoreError> {
        let level2 = target.parent().expect("chunk path has a parent");
        let level1 = level2.parent().expect("chunk path has a grandparent");
        ensure_dir(level1)?;
        ensure_dir(level2)?;
        let tmp = self.temp_path(id);
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(stored)?;
            f.sync_all()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io(&tmp, e));
        }
        Ok(tmp)
    }

    /// Renames the synced temp file to the chunk's name and makes the new name durable.
    fn rename_into_place(&self, tmp: &Path, target: &Path) -> Result<(), StoreError> {
        if let Err(e) = fs::rename(tmp, target) {
            let _ = fs::remove_file(tmp);
            return Err(StoreError::io(target, e));
        }
        // The rename is only durable once the directory holding the new name is synced.
        sync_dir(target.parent().expect("chunk path has a parent"))
    }

    fn temp_path(&self, id: &ChunkId) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.tmp
            .join(format!("{}.{}.{n}", id.to_hex(), std::process::id()))
    }
}

/// fsync a directory, so that a rename or a new entry in it survives a power cut. A file's own
/// fsync does not persist its name in the parent directory.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Creates `dir` (one level below an existing, synced parent) and syncs the parent if it was new.
fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(dir.parent().unwrap_or(dir)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::io(dir, e)),
    }
}

impl ChunkStore for LocalStore {
    fn put(&self, id: &ChunkId, stored: &[u8]) -> Result<bool, StoreError> {
        let target = self.path_of(id);
        if target.exists() {
            return Ok(false);
        }
        let tmp = self.write_temp(id, &target, stored)?;
        // Two concurrent puts of one id both reach this point with verified, equivalent bytes; the
        // re-check keeps the first writer's file in all but that narrow race, where the rename
        // swaps in equivalent bytes atomically (a reader sees one complete file or the other).
        if target.exists() {
            let _ = fs::remove_file(&tmp);
            return Ok(false);
        }
        self.rename_into_place(&tmp, &target)?;
        Ok(true)
    }

    fn replace(&self, id: &ChunkId, stored: &[u8]) -> Result<(), StoreError> {
        let target = self.path_of(id);
        let tmp = self.write_temp(id, &target, stored)?;
        // rename(2) replaces an existing target atomically: a reader opens the old file or the
        // new one, and a crash before the rename leaves the old bytes (the temp file is removed
        // at the next open).
        self.rename_into_place(&tmp, &target)
    }

    fn get(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(id);
        fs::read(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => StoreError::NotFound { id: *id },
            _ => StoreError::io(path, e),
        })
    }

    fn exists(&self, id: &ChunkId) -> Result<bool, StoreError> {
        let path = self.path_of(id);
        path.try_exists().map_err(|e| StoreError::io(path, e))
    }

    fn delete(&self, id: &ChunkId) -> Result<bool, StoreError> {
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(path.parent().expect("chunk path has a parent"))?;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    fn stored_at_us(&self, id: &ChunkId) -> Result<Option<i64>, StoreError> {
        let path = self.path_of(id);
        match fs::metadata(&path).and_then(|m| m.modified()) {
            Ok(t) => Ok(Some(
                t.duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as i64)
                    .unwrap_or(0),
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    fn list(&self) -> Result<IdIter<'_>, StoreError> {
        // Two levels of 256 folders each; read one leaf folder at a time.
        let mut dirs = Vec::new();
        for l1 in read_hex_dirs(&self.root)? {
            dirs.extend(read_hex_dirs(&l1)?);
        }
        let iter = dirs.into_iter().flat_map(|dir| {
            let entries: Vec<Result<ChunkId, StoreError>> = match fs::read_dir(&dir) {
                Ok(rd) => rd
                    .filter_map(|e| match e {
                        Ok(e) => e.file_name().to_str().and_then(|n| n.parse().ok()).map(Ok),
                        Err(err) => Some(Err(StoreError::io(&dir, err))),
                    })
                    .collect(),
                Err(err) => vec![Err(StoreError::io(&dir, err))],
            };
            entries
        });
        Ok(Box::new(iter))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn locate(&self, id: &ChunkId) -> Result<Option<super::ChunkLocation>, StoreError> {
        let path = self.path_of(id);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(super::ChunkLocation {
                path: super::ObjectName::new(path.display().to_string()),
                offset: 0,
                len: m.len(),
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }
}

/// The two-hex-digit subfolders of `dir` (skipping `tmp` and anything else).
fn read_hex_dirs(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dirs = std::sync::Mutex::new(Vec::new());
        super::super::conformance::run_all(&|| {
            let dir = tempfile::tempdir().unwrap();
            let store = LocalStore::open(&dir.path().join("chunks")).unwrap();
            dirs.lock().unwrap().push(dir);
            Box::new(store)
        });
    }

    #[test]
    fn layout_and_temp_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("chunks");
        let store = LocalStore::open(&root).unwrap();
        let id = ChunkId::of(b"x");
        store.put(&id, &[0, b'x']).unwrap();
        let hex = id.to_hex();
        assert!(root.join(&hex[..2]).join(&hex[2..4]).join(&hex).is_file());
        fs::write(root.join("tmp").join("leftover"), b"half").unwrap();
        drop(store);
        let store = LocalStore::open(&root).unwrap();
        assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        assert_eq!(store.list().unwrap().count(), 1);
    }
}
