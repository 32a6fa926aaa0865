//! The local medium: every object is a file below a root folder (`<root>/<key>`), and objects can
//! be appended to (one positional write and one `fdatasync` per batch).
//!
//! Durability follows the usual file system rules: a file's data is durable after its
//! `fdatasync`, its name only after the folder holding it is synced, and a new folder only after
//! its parent is synced. Read handles are cached (at most [`HANDLE_CACHE`]), because opening a
//! file per read would cost more than the read itself.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Append, Appender, Medium, ObjectIter, ObjectMeta, Read};
use crate::store::{ObjectName, StoreError};

/// Open read handles kept, at most this many.
const HANDLE_CACHE: usize = 256;

/// Files below a root folder.
#[derive(Debug)]
pub(crate) struct LocalMedium {
    root: PathBuf,
    handles: Mutex<Handles>,
}

#[derive(Debug, Default)]
struct Handles {
    files: HashMap<String, Arc<File>>,
    /// Bumped by every delete: a handle opened before a delete is not cached (it may be the
    /// removed file), so no reader is ever served a removed file from the cache.
    deletes: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// fsync a directory, so that a new, renamed or removed entry in it survives a power cut. A
/// file's own fsync does not persist its name in the parent directory.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

fn mtime_us(m: &fs::Metadata) -> i64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64)
}

impl LocalMedium {
    /// Opens (creating if needed) the medium at `root`. The root folder is made durable in its
    /// parent before anything below it counts.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the folder cannot be created or synced.
    pub(crate) fn open(root: &Path) -> Result<LocalMedium, StoreError> {
        fs::create_dir_all(root).map_err(|e| StoreError::io(root, e))?;
        sync_dir(root)?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(LocalMedium {
            root: root.to_path_buf(),
            handles: Mutex::new(Handles::default()),
        })
    }

    /// The file of object `key`.
    pub(crate) fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Creates the folders between the root and `path` that are missing, each made durable in
    /// its parent.
    fn ensure_parents(&self, path: &Path) -> Result<(), StoreError> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        if parent == self.root || parent.is_dir() {
            return Ok(());
        }
        self.ensure_parents(parent)?;
        match fs::create_dir(parent) {
            Ok(()) => sync_dir(parent.parent().unwrap_or(parent)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StoreError::io(parent, e)),
        }
    }

    /// A read handle of `key`; `NotFound` when there is no such file.
    fn handle(&self, key: &str) -> std::io::Result<Arc<File>> {
        let deletes = {
            let h = lock(&self.handles);
            if let Some(f) = h.files.get(key) {
                return Ok(f.clone());
            }
            h.deletes
        };
        let f = Arc::new(File::open(self.path(key))?);
        let mut h = lock(&self.handles);
        if h.deletes == deletes {
            if h.files.len() >= HANDLE_CACHE {
                h.files.clear();
            }
            h.files.insert(key.to_owned(), f.clone());
        }
        Ok(f)
    }
}

impl Medium for LocalMedium {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key);
        self.ensure_parents(&path)?;
        File::create(&path)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_data()
            })
            .map_err(|e| StoreError::io(&path, e))?;
        sync_dir(path.parent().unwrap_or(&self.root))
    }

    fn read_at(&self, key: &str, offset: u64, len: u64) -> Result<Read, StoreError> {
        let file = match self.handle(key) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Read::Missing),
            Err(e) => return Err(StoreError::io(self.path(key), e)),
        };
        let len = usize::try_from(len).map_err(|_| {
            StoreError::io(self.path(key), std::io::Error::other("range too large"))
        })?;
        let mut buf = vec![0u8; len];
        match file.read_exact_at(&mut buf, offset) {
            Ok(()) => Ok(Read::Bytes(buf)),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(Read::Short),
            Err(e) => Err(StoreError::io(self.path(key), e)),
        }
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let existed = self.discard(key)?;
        if existed {
            // The removal is durable only once the folder that held the name is synced.
            sync_dir(self.path(key).parent().unwrap_or(&self.root))?;
        }
        Ok(existed)
    }

    fn discard(&self, key: &str) -> Result<bool, StoreError> {
        {
            let mut h = lock(&self.handles);
            h.deletes += 1;
            h.files.remove(key);
        }
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<ObjectIter<'_>, StoreError> {
        // Start in the deepest folder the prefix names; read one folder at a time.
        let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let prefix = prefix.to_owned();
        let mut dirs = vec![(self.root.join(folder), folder.to_owned())];
        let mut pending: std::vec::IntoIter<Result<ObjectMeta, StoreError>> =
            Vec::new().into_iter();
        Ok(Box::new(std::iter::from_fn(move || {
            loop {
                if let Some(item) = pending.next() {
                    return Some(item);
                }
                let (dir, key_dir) = dirs.pop()?;
                let rd = match fs::read_dir(&dir) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Some(Err(StoreError::io(&dir, e))),
                };
                let mut items = Vec::new();
                for entry in rd {
                    let entry = match entry {
                        Ok(e) => e,
                        Err(e) => {
                            items.push(Err(StoreError::io(&dir, e)));
                            continue;
                        }
                    };
                    let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                        continue;
                    };
                    let key = if key_dir.is_empty() {
                        name
                    } else {
                        format!("{key_dir}/{name}")
                    };
                    let kind = match entry.file_type() {
                        Ok(k) => k,
                        Err(e) => {
                            items.push(Err(StoreError::io(entry.path(), e)));
                            continue;
                        }
                    };
                    if kind.is_dir() {
                        if key.starts_with(&prefix) || prefix.starts_with(&format!("{key}/")) {
                            dirs.push((entry.path(), key));
                        }
                    } else if kind.is_file() && key.starts_with(&prefix) {
                        match entry.metadata() {
                            Ok(m) => items.push(Ok(ObjectMeta {
                                key,
                                size: m.len(),
                                modified_us: mtime_us(&m),
                            })),
                            // Removed since the folder was read.
                            Err(e) if e.kind() == ErrorKind::NotFound => {}
                            Err(e) => items.push(Err(StoreError::io(entry.path(), e))),
                        }
                    }
                }
                pending = items.into_iter();
            }
        })))
    }

    fn describe(&self, key: &str) -> ObjectName {
        ObjectName::new(self.path(key).display().to_string())
    }

    fn append(&self) -> Option<&dyn Append> {
        Some(self)
    }

    fn tidy(&self, prefix: &str) -> Result<(), StoreError> {
        fn remove_empty(dir: &Path) {
            if let Ok(rd) = fs::read_dir(dir) {
                for e in rd.filter_map(Result::ok) {
                    if e.file_type().is_ok_and(|k| k.is_dir()) {
                        remove_empty(&e.path());
                        let _ = fs::remove_dir(e.path());
                    }
                }
            }
        }
        let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let dir = self.root.join(folder);
        remove_empty(&dir);
        if dir != self.root {
            let _ = fs::remove_dir(&dir);
        }
        sync_dir(&self.root)
    }
}

impl Append for LocalMedium {
    fn create(&self, key: &str) -> Result<Box<dyn Appender>, StoreError> {
        let path = self.path(key);
        self.ensure_parents(&path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(Box::new(LocalAppender {
            file,
            path,
            name_durable: false,
        }))
    }

    fn truncate(&self, key: &str, len: u64) -> Result<(), StoreError> {
        let path = self.path(key);
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        f.set_len(len)
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::io(&path, e))
    }
}

/// A file open for appending.
#[derive(Debug)]
struct LocalAppender {
    file: File,
    path: PathBuf,
    /// Whether the folder holding the new file was synced since it was created.
    name_durable: bool,
}

impl Appender for LocalAppender {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all_at(bytes, offset)
            .map_err(|e| StoreError::io(&self.path, e))
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.file
            .sync_data()
            .map_err(|e| StoreError::io(&self.path, e))?;
        if !self.name_durable {
            // The new file's name must be durable before anything points into it.
            sync_dir(self.path.parent().expect("an object file has a folder"))?;
            self.name_durable = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dirs = Mutex::new(Vec::new());
        super::super::conformance::run_all(&|| {
            let dir = tempfile::tempdir().unwrap();
            let m = LocalMedium::open(&dir.path().join("chunks")).unwrap();
            lock(&dirs).push(dir);
            Box::new(m)
        });
    }

    #[test]
    fn conformance_without_appends() {
        let dirs = Mutex::new(Vec::new());
        super::super::conformance::run_all(&|| {
            let dir = tempfile::tempdir().unwrap();
            let m = LocalMedium::open(&dir.path().join("chunks")).unwrap();
            lock(&dirs).push(dir);
            Box::new(super::super::WholeObjectsOnly(m))
        });
    }

    /// Objects are plain files below the root, shown by their full path; `tidy` removes the
    /// folders that deletes left empty.
    #[test]
    fn objects_are_files_and_tidy_removes_empty_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("chunks");
        let m = LocalMedium::open(&root).unwrap();
        m.put("ab/cd/xyz", b"bytes").unwrap();
        assert_eq!(fs::read(root.join("ab/cd/xyz")).unwrap(), b"bytes");
        assert_eq!(
            m.describe("ab/cd/xyz").as_str(),
            root.join("ab/cd/xyz").display().to_string()
        );
        m.delete("ab/cd/xyz").unwrap();
        m.tidy("").unwrap();
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
    }
}
