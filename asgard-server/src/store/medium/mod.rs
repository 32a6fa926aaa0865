//! # Media: where a packed store keeps its bytes
//!
//! A [`Medium`] holds **objects**: byte strings under a `/`-separated **key** (`packs/00…01.seg`).
//! It is the seam between the packed store's logic (format, index, writer, compaction, recovery,
//! import) and the place the bytes live, so that the same logic runs over local files today and
//! over an object store (S3-compatible services) later. The trait asks for what every object store
//! offers: write a whole object, read a byte range, delete, list with sizes. There is no rename,
//! no conditional write and no versioning.
//!
//! **Appending** is an optional capability ([`Medium::append`]): local files can append a batch
//! with one positional write and one `fdatasync`, which is what makes small batches cheap on a
//! disk. An object store cannot; the packed store then writes every batch as its own immutable
//! pack object in the same self-describing segment format (see `packed/writer.rs`).
//!
//! Media know nothing of chunks: errors name the object, and "absent" is an answer
//! ([`Read::Missing`], `delete` returning `false`), not an error. Cross-cutting concerns (retries,
//! metrics, fault injection) belong in wrapper types that implement this same trait.
//!
//! - [`LocalMedium`] (`local.rs`): files below a root folder, with appends.

pub(crate) mod local;

use std::fmt;

use super::{ObjectName, StoreError};

pub(crate) use local::LocalMedium;

/// One object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectMeta {
    /// The object's key, as given to [`Medium::put`] or [`Append::create`].
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, in µs since the Unix epoch (a file's modification time).
    pub modified_us: i64,
}

/// The answer to [`Medium::read_at`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// Exactly the bytes asked for.
    Bytes(Vec<u8>),
    /// The object does not exist (never written, or deleted).
    Missing,
    /// The object exists but ends before the end of the range.
    Short,
}

/// A listing: objects in no particular order, errors per item.
pub(crate) type ObjectIter<'a> =
    Box<dyn Iterator<Item = Result<ObjectMeta, StoreError>> + Send + 'a>;

/// A place that keeps objects by key. Every method may block on I/O.
pub(crate) trait Medium: Send + Sync + fmt::Debug {
    /// Writes `bytes` as the whole object `key`, replacing an object of that key.
    ///
    /// When this returns `Ok`, the object exists with exactly `bytes` and survives a crash or a
    /// power cut (its key included). A crash or an error before that may leave the object absent,
    /// complete, or (on media without atomic puts, like local files) partial: callers trust an
    /// object only after its `put` returned, and treat objects they never recorded as garbage.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] when the object could not be made durable.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// The `len` bytes at `offset` of object `key`. Bytes an appender wrote are readable once its
    /// write returned (durable or not); a whole object once its `put` returned.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`] when the read failed; an absent object or a
    /// range past its end is an answer ([`Read::Missing`], [`Read::Short`]), not an error.
    fn read_at(&self, key: &str, offset: u64, len: u64) -> Result<Read, StoreError>;

    /// Removes object `key`; returns whether it existed. When this returns `Ok`, the removal
    /// survives a crash. Reads that started before may still see the old bytes.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`]; the object may then still exist.
    fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// [`Self::delete`] without the durability: the removal may be undone by a crash (the
    /// object then comes back whole). For objects whose removal a caller redoes after a crash
    /// anyway; media whose deletes cost nothing extra delete.
    ///
    /// # Errors
    /// As [`Self::delete`].
    fn discard(&self, key: &str) -> Result<bool, StoreError> {
        self.delete(key)
    }

    /// Every object whose key starts with `prefix`, with its size and time written. Objects put
    /// or deleted while the listing runs may or may not appear; everything present before and
    /// after it does appear. Deleting objects already listed while the listing runs is allowed.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`], for the listing itself or per item.
    fn list(&self, prefix: &str) -> Result<ObjectIter<'_>, StoreError>;

    /// How people see the object `key` (`asgard-server locate`, log lines): the full path of the
    /// file for local media, a URL for object stores.
    fn describe(&self, key: &str) -> ObjectName;

    /// The append capability, when the medium has one (local files do, object stores do not).
    fn append(&self) -> Option<&dyn Append> {
        None
    }

    /// Removes what the medium keeps besides objects below `prefix` once it is empty (the empty
    /// folders of local media), best effort; media without such things do nothing.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the result could not be made durable.
    fn tidy(&self, prefix: &str) -> Result<(), StoreError> {
        let _ = prefix;
        Ok(())
    }
}

/// Growing objects in place: the optional capability of [`Medium::append`].
pub(crate) trait Append: Send + Sync {
    /// Creates the new, empty object `key` for appending; fails when it exists. Nothing is
    /// durable (not even the key) before the first [`Appender::sync`].
    ///
    /// # Errors
    /// [`StoreError::Io`] when the object could not be created or exists already.
    fn create(&self, key: &str) -> Result<Box<dyn Appender>, StoreError>;

    /// Cuts object `key` down to `len` bytes, durably (the crash repair of an unacknowledged
    /// tail).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the object could not be cut or synced.
    fn truncate(&self, key: &str, len: u64) -> Result<(), StoreError>;
}

/// An object open for appending, owned by one writer.
pub(crate) trait Appender: Send + fmt::Debug {
    /// Writes `bytes` at `offset` (the caller's end of the object). Readable at once; durable
    /// only after [`Self::sync`].
    ///
    /// # Errors
    /// [`StoreError::Io`]; the bytes at and after `offset` are then unknown.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), StoreError>;

    /// Makes every byte written so far durable, and the first time also the object's key. When
    /// this returns `Ok`, a crash keeps those bytes.
    ///
    /// # Errors
    /// [`StoreError::Io`] when durability could not be reached.
    fn sync(&mut self) -> Result<(), StoreError>;
}

/// A medium that hides the append capability of another one: the packed store then writes each
/// batch as a whole pack object, as it will on an object store. Tests only.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct WholeObjectsOnly<M>(pub M);

#[cfg(test)]
impl<M: Medium> Medium for WholeObjectsOnly<M> {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.0.put(key, bytes)
    }
    fn read_at(&self, key: &str, offset: u64, len: u64) -> Result<Read, StoreError> {
        self.0.read_at(key, offset, len)
    }
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.0.delete(key)
    }
    fn discard(&self, key: &str) -> Result<bool, StoreError> {
        self.0.discard(key)
    }
    fn list(&self, prefix: &str) -> Result<ObjectIter<'_>, StoreError> {
        self.0.list(prefix)
    }
    fn describe(&self, key: &str) -> ObjectName {
        self.0.describe(key)
    }
    fn tidy(&self, prefix: &str) -> Result<(), StoreError> {
        self.0.tidy(prefix)
    }
}

/// The shared test suite every medium must pass: call [`run_all`] with a factory of empty media.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    /// Runs every conformance test; `fresh` must return a new, empty medium each time.
    pub(crate) fn run_all(fresh: &dyn Fn() -> Box<dyn Medium>) {
        put_then_read_ranges(&*fresh());
        missing_and_short_reads(&*fresh());
        put_replaces_and_delete_reports(&*fresh());
        list_by_prefix_with_sizes(&*fresh());
        appends_are_readable_and_truncate(&*fresh());
    }

    fn keys(m: &dyn Medium, prefix: &str) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = m
            .list(prefix)
            .unwrap()
            .map(|o| {
                let o = o.unwrap();
                (o.key, o.size)
            })
            .collect();
        v.sort();
        v
    }

    fn put_then_read_ranges(m: &dyn Medium) {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        m.put("packs/a.seg", &bytes).unwrap();
        assert_eq!(
            m.read_at("packs/a.seg", 0, 10_000).unwrap(),
            Read::Bytes(bytes.clone())
        );
        assert_eq!(
            m.read_at("packs/a.seg", 1234, 100).unwrap(),
            Read::Bytes(bytes[1234..1334].to_vec())
        );
        assert_eq!(
            m.read_at("packs/a.seg", 10_000, 0).unwrap(),
            Read::Bytes(Vec::new())
        );
        m.put("empty", b"").unwrap();
        assert_eq!(m.read_at("empty", 0, 0).unwrap(), Read::Bytes(Vec::new()));
        assert!(!m.describe("packs/a.seg").as_str().is_empty());
    }

    fn missing_and_short_reads(m: &dyn Medium) {
        assert_eq!(m.read_at("nope", 0, 1).unwrap(), Read::Missing);
        assert_eq!(m.read_at("deep/er/nope", 0, 1).unwrap(), Read::Missing);
        m.put("k", b"12345").unwrap();
        assert_eq!(m.read_at("k", 3, 5).unwrap(), Read::Short);
        assert_eq!(m.read_at("k", 9, 1).unwrap(), Read::Short);
    }

    fn put_replaces_and_delete_reports(m: &dyn Medium) {
        m.put("a/b/c", b"first").unwrap();
        m.put("a/b/c", b"2nd").unwrap();
        assert_eq!(
            m.read_at("a/b/c", 0, 3).unwrap(),
            Read::Bytes(b"2nd".to_vec())
        );
        assert_eq!(m.read_at("a/b/c", 0, 5).unwrap(), Read::Short);
        assert!(m.delete("a/b/c").unwrap());
        assert!(!m.delete("a/b/c").unwrap(), "deleting an absent object");
        m.put("a/b/d", b"d").unwrap();
        assert!(m.discard("a/b/d").unwrap());
        assert!(!m.discard("a/b/d").unwrap());
        assert_eq!(m.read_at("a/b/d", 0, 1).unwrap(), Read::Missing);
        assert_eq!(m.read_at("a/b/c", 0, 1).unwrap(), Read::Missing);
        m.put("a/b/c", b"again").unwrap();
        assert_eq!(
            m.read_at("a/b/c", 0, 5).unwrap(),
            Read::Bytes(b"again".to_vec())
        );
        m.delete("a/b/c").unwrap();
        m.tidy("").unwrap();
        assert!(keys(m, "").is_empty());
    }

    fn list_by_prefix_with_sizes(m: &dyn Medium) {
        assert!(keys(m, "").is_empty());
        assert!(keys(m, "packs/").is_empty());
        let before = crate::db::now_us();
        m.put("packs/1.seg", b"one").unwrap();
        m.put("packs/2.seg", b"twotwo").unwrap();
        m.put("ab/cd/x", b"x").unwrap();
        assert_eq!(
            keys(m, "packs/"),
            [("packs/1.seg".to_owned(), 3), ("packs/2.seg".to_owned(), 6)]
        );
        assert_eq!(keys(m, "ab/"), [("ab/cd/x".to_owned(), 1)]);
        assert_eq!(keys(m, "").len(), 3);
        let o = m.list("ab/").unwrap().next().unwrap().unwrap();
        // File systems may round times down to their tick; allow two seconds.
        assert!(o.modified_us >= before - 2_000_000, "{o:?}");
        // Deleting listed objects while listing.
        for o in m.list("packs/").unwrap() {
            assert!(m.delete(&o.unwrap().key).unwrap());
        }
        assert!(keys(m, "packs/").is_empty());
    }

    fn appends_are_readable_and_truncate(m: &dyn Medium) {
        let Some(a) = m.append() else {
            return;
        };
        let mut w = a.create("packs/w.seg").unwrap();
        assert!(a.create("packs/w.seg").is_err(), "create never overwrites");
        w.write_at(0, b"head").unwrap();
        w.write_at(4, b"-body").unwrap();
        assert_eq!(
            m.read_at("packs/w.seg", 0, 9).unwrap(),
            Read::Bytes(b"head-body".to_vec())
        );
        w.sync().unwrap();
        w.write_at(9, b"-tail").unwrap();
        w.sync().unwrap();
        assert_eq!(keys(m, "packs/"), [("packs/w.seg".to_owned(), 14)]);
        drop(w);
        a.truncate("packs/w.seg", 9).unwrap();
        assert_eq!(m.read_at("packs/w.seg", 0, 10).unwrap(), Read::Short);
        assert_eq!(keys(m, "packs/"), [("packs/w.seg".to_owned(), 9)]);
    }
}
