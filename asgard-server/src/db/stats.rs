//! The statistics of `asgard-server stats`, `/metrics` and (later) the admin pages, and the JSON
//! blobs (last GC, last verify) that tools leave for them.
//!
//! Everything is computed from one read transaction, so the figures fit together. Logical and
//! plain bytes are summed by streaming over the version and chunk tables: memory stays constant
//! whatever their size, and nothing has to be kept in step with every path that adds or drops
//! versions or chunks (commit, retention, GC, verify). Counters updated in every write
//! transaction would make a call O(1), but each writer would have to remember them forever, and a
//! drifted counter is silently wrong; a scan costs about a second per few million rows, which is
//! fine for an admin command and a metrics scrape, and it never blocks writers (redb readers see a
//! snapshot).

use redb::{ReadableTable, ReadableTableMetadata};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    CHUNKS, ChunkRec, DEVICES, Db, DbError, META, META_JSON, META_LAST_GC, META_LAST_VERIFY,
    Result, STORED_BYTES, USERS, VERSIONS, dec,
};

/// Gauges for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub users: u64,
    pub devices: u64,
    pub versions: u64,
    pub chunks: u64,
    pub stored_bytes: u64,
}

/// The figures of `stats --json`; the JSON keys are part of the interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FullStats {
    pub users: u64,
    pub devices: u64,
    /// Retained versions, deletion markers included.
    pub versions: u64,
    /// Chunks in the index (referenced or not yet collected).
    pub chunks: u64,
    /// Sum of the sizes of all retained versions: what the users would have to store without
    /// dedupe.
    pub logical_bytes: u64,
    /// Stored (compressed) bytes of every chunk in the index: what the chunk store holds.
    pub stored_bytes: u64,
    /// Plaintext bytes of the distinct chunks that retained versions reference.
    pub plain_bytes: u64,
    /// `logical_bytes / plain_bytes`; `None` when nothing is referenced.
    pub dedupe_ratio: Option<f64>,
    /// Plaintext / stored bytes of the referenced chunks; `None` when nothing is referenced.
    pub compression_ratio: Option<f64>,
    /// Chunks that verify found damaged or missing and no upload has healed yet.
    pub bad_chunks: u64,
    /// The last GC report as its tool wrote it (meta key `last_gc`), if any.
    pub last_gc: Option<serde_json::Value>,
    /// The last verify report (meta key `last_verify`), if any.
    pub last_verify: Option<serde_json::Value>,
}

/// The leading fields of a postcard-encoded [`super::VersionRec`] (of any of its shapes): the
/// scan decodes only up to `size` and skips the chunk list.
#[derive(Deserialize)]
struct VersionHead<'a> {
    _user_id: u64,
    _device_id: u64,
    #[serde(borrow)]
    _path: &'a [u8],
    _time_us: i64,
    _deleted: bool,
    size: u64,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Db {
    /// Gauges for `/metrics`.
    pub fn stats(&self) -> Result<Stats> {
        let txn = self.read()?;
        Ok(Stats {
            users: txn.open_table(USERS)?.len()?,
            devices: txn.open_table(DEVICES)?.len()?,
            versions: txn.open_table(VERSIONS)?.len()?,
            chunks: txn.open_table(CHUNKS)?.len()?,
            stored_bytes: txn
                .open_table(META)?
                .get(STORED_BYTES)?
                .map(|g| g.value())
                .unwrap_or(0),
        })
    }

    /// Stores `value` as JSON under `key` in the blob table (its own write transaction). Keys in
    /// use: [`META_LAST_GC`], [`META_LAST_VERIFY`].
    pub fn set_meta_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| DbError::Json(e.to_string()))?;
        let txn = self.write()?;
        txn.open_table(META_JSON)?.insert(key, text.as_str())?;
        txn.commit()?;
        Ok(())
    }

    /// The JSON blob stored under `key`, decoded as `T`; `None` when the key was never written.
    pub fn get_meta_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let txn = self.read()?;
        let table = txn.open_table(META_JSON)?;
        let Some(g) = table.get(key)? else {
            return Ok(None);
        };
        serde_json::from_str(g.value())
            .map(Some)
            .map_err(|e| DbError::Json(format!("{key}: {e}")))
    }

    /// Every figure of [`FullStats`], from one snapshot, streaming (constant memory).
    pub fn full_stats(&self) -> Result<FullStats> {
        let txn = self.read()?;
        let mut s = FullStats {
            users: txn.open_table(USERS)?.len()?,
            devices: txn.open_table(DEVICES)?.len()?,
            ..FullStats::default()
        };
        let versions = txn.open_table(VERSIONS)?;
        s.versions = versions.len()?;
        for row in versions.iter()? {
            let (_, v) = row?;
            let (head, _) = postcard::take_from_bytes::<VersionHead>(v.value())?;
            s.logical_bytes += head.size;
        }
        let chunks = txn.open_table(CHUNKS)?;
        s.chunks = chunks.len()?;
        let mut referenced_stored = 0u64;
        for row in chunks.iter()? {
            let (_, v) = row?;
            let rec: ChunkRec = dec(v.value())?;
            s.stored_bytes += rec.stored_len;
            if rec.refcount > 0 {
                s.plain_bytes += u64::from(rec.plain_len);
                referenced_stored += rec.stored_len;
            }
            if rec.bad_since_us.is_some() {
                s.bad_chunks += 1;
            }
        }
        s.dedupe_ratio = ratio(s.logical_bytes, s.plain_bytes);
        s.compression_ratio = ratio(s.plain_bytes, referenced_stored);
        let blobs = txn.open_table(META_JSON)?;
        let blob = |key: &str| -> Result<Option<serde_json::Value>> {
            match blobs.get(key)? {
                // A blob that is not JSON (it never should be) is shown as its text.
                Some(g) => {
                    Ok(Some(serde_json::from_str(g.value()).unwrap_or_else(|_| {
                        serde_json::Value::String(g.value().to_owned())
                    })))
                }
                None => Ok(None),
            }
        };
        s.last_gc = blob(META_LAST_GC)?;
        s.last_verify = blob(META_LAST_VERIFY)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{commit, file, register, upload};

    #[test]
    fn figures_count_retained_versions_and_distinct_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
        let s = db.full_stats().unwrap();
        assert_eq!(s, FullStats::default());

        let (_, a) = register(&db, "anna", "laptop");
        let (_, b) = register(&db, "bert", "pc");
        // The test upload helper stores every chunk as its length + 1.
        upload(&db, &a, &[b"aaaa", b"bbbbbb"]);
        upload(&db, &b, &[b"aaaa"]);
        commit(&db, &a, &[file("/x", &[b"aaaa", b"bbbbbb"])], 2);
        commit(&db, &a, &[file("/y", &[b"aaaa", b"aaaa"])], 2);
        commit(&db, &b, &[file("/z", &[b"aaaa"])], 2);
        // Retention 1 on a fourth version of /y drops the old one: logical bytes follow.
        upload(&db, &a, &[b"cc"]);
        commit(&db, &a, &[file("/y", &[b"cc"])], 1);
        // An uploaded, never referenced chunk counts as stored but not as plain.
        upload(&db, &a, &[b"unused!"]);

        let s = db.full_stats().unwrap();
        assert_eq!((s.users, s.devices, s.versions, s.chunks), (2, 2, 3, 4));
        assert_eq!(s.logical_bytes, 10 + 2 + 4);
        assert_eq!(s.plain_bytes, 4 + 6 + 2);
        assert_eq!(s.stored_bytes, 5 + 7 + 3 + 8);
        assert_eq!(s.dedupe_ratio, Some(16.0 / 12.0));
        assert_eq!(s.compression_ratio, Some(12.0 / 15.0));
        assert_eq!(s.bad_chunks, 0);
        assert_eq!(s.last_gc, None);

        // A chunk marked bad (as verify will) is counted.
        let txn = db.write().unwrap();
        {
            let mut chunks = txn.open_table(CHUNKS).unwrap();
            let id = asgard_core::ChunkId::of(b"aaaa").0;
            let mut rec: ChunkRec = dec(chunks.get(&id).unwrap().unwrap().value()).unwrap();
            rec.bad_since_us = Some(1);
            chunks
                .insert(&id, super::super::enc(&rec).unwrap().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(db.full_stats().unwrap().bad_chunks, 1);

        db.set_meta_json(META_LAST_VERIFY, &serde_json::json!({"damaged": 0}))
            .unwrap();
        let s = db.full_stats().unwrap();
        assert_eq!(s.last_verify, Some(serde_json::json!({"damaged": 0})));
        assert_eq!(
            db.get_meta_json::<serde_json::Value>(META_LAST_VERIFY)
                .unwrap(),
            s.last_verify
        );
        assert_eq!(db.get_meta_json::<u32>(META_LAST_GC).unwrap(), None);

        let json = serde_json::to_value(&s).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "bad_chunks",
                "chunks",
                "compression_ratio",
                "dedupe_ratio",
                "devices",
                "last_gc",
                "last_verify",
                "logical_bytes",
                "plain_bytes",
                "stored_bytes",
                "users",
                "versions"
            ]
        );
    }
}
