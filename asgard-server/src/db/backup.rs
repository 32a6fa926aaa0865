//! A consistent copy of the whole database while the server runs, and the check of such a copy
//! before it replaces the live database.
//!
//! redb has no backup call of its own, and a byte copy of `asgard.redb` taken while commits happen
//! may mix pages of different transactions. The copy is therefore built from **one read
//! transaction**: redb gives a reader a snapshot of the last commit before it began, which stays
//! unchanged however many writes commit meanwhile (MVCC; the pages it sees are not reused while it
//! lives). Every table is copied row by row from that snapshot into a new database file, so the copy
//! holds exactly the versions committed before the backup started, with their chunk records and
//! refcounts. Writes to the new file are batched in non-durable commits and made durable by one
//! final commit; the file only gets its final name after that (temp name, fsync, rename, directory
//! fsync), so a crash never leaves a half-written copy under a backup's name.

use std::fs::File;
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, Key, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, TableHandle, Value,
};

use super::schema::for_each_table;
use super::{ADMIN_TOKENS, ADMINS, AUDIT, SESSIONS};
// Issue 14 (uauth).
use super::{
    CHUNKS, DEVICES, Db, DbError, KEEP_OVERRIDES, META, META_JSON, PATHS, REREAD, RUNS, Result,
    TOKENS, USER_CHUNKS, USERS, VERSIONS,
};
use super::{CURRENT_SCHEMA_VERSION, PENDING, PENDING_TOKENS, REENROLL, SKELETONS};
use super::{DEVICE_SEEN, DISABLED_USERS, REVOKED_DEVICES, REVOKED_TOKENS};
use super::{WEB_LINKS, WEB_PASSWORDS};

/// Rows per (non-durable) write transaction of the copy: bounds the memory of one transaction.
const BATCH_ROWS: usize = 20_000;

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupSummary {
    pub path: PathBuf,
    pub tables: usize,
    pub rows: u64,
    pub bytes: u64,
}

/// Tables that every valid database has; `meta_json`, `keep_overrides` and `reread` are newer and
/// may be absent in an old backup (`Db::open` creates them).
const REQUIRED: &[&str] = &[
    "users",
    "devices",
    "tokens",
    "chunks",
    "user_chunks",
    "paths",
    "versions",
    "runs",
    "meta",
];

fn known_tables() -> Vec<&'static str> {
    let mut names = Vec::new();
    macro_rules! name {
        ($t:ident) => {
            names.push($t.name());
        };
    }
    for_each_table!(name);
    names
}

/// Copies one table from the snapshot `src` into `dst`, committing every [`BATCH_ROWS`] rows
/// without durability (the caller's last commit makes all of them durable). Returns the rows.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &Database,
    def: TableDefinition<K, V>,
) -> Result<u64> {
    let table = src.open_table(def)?;
    let mut rows = table.iter()?;
    let mut total = 0u64;
    loop {
        let mut txn = dst.begin_write()?;
        txn.set_durability(Durability::None)
            .map_err(|e| DbError::Storage(e.into()))?;
        let mut done = true;
        {
            let mut out = txn.open_table(def)?;
            for row in rows.by_ref() {
                let (k, v) = row?;
                out.insert(k.value(), v.value())?;
                total += 1;
                if total.is_multiple_of(BATCH_ROWS as u64) {
                    done = false;
                    break;
                }
            }
        }
        txn.commit()?;
        if done {
            return Ok(total);
        }
    }
}

fn io_err(path: &Path, e: std::io::Error) -> DbError {
    DbError::Storage(redb::Error::Io(std::io::Error::new(
        e.kind(),
        format!("{}: {e}", path.display()),
    )))
}

impl Db {
    /// Writes a consistent copy of the database (the state of the last commit before this call) to
    /// `dest`, which must not exist. See the module docs for why it is consistent.
    pub fn backup_to(&self, dest: &Path) -> Result<BackupSummary> {
        if dest.exists() {
            return Err(io_err(
                dest,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "file exists"),
            ));
        }
        let src = self.read()?;
        let known = known_tables();
        for t in src.list_tables()? {
            if !known.contains(&t.name()) {
                return Err(DbError::Json(format!(
                    "table {} is not covered by the backup",
                    t.name()
                )));
            }
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "asgard.redb".into());
        let tmp = dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let result = (|| {
            let dst = Database::create(&tmp)?;
            let mut rows = 0u64;
            macro_rules! copy {
                ($t:ident) => {
                    rows += copy_table(&src, &dst, $t)?;
                };
            }
            for_each_table!(copy);
            // The final commit is durable and so makes every earlier (non-durable) batch durable.
            let txn = dst.begin_write()?;
            txn.commit()?;
            drop(dst);
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_err(&tmp, e))?;
            Ok::<u64, DbError>(rows)
        })();
        let rows = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = std::fs::rename(&tmp, dest) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(dest, e));
        }
        if let Some(parent) = dest.parent() {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err(parent, e))?;
        }
        let bytes = std::fs::metadata(dest).map_err(|e| io_err(dest, e))?.len();
        Ok(BackupSummary {
            path: dest.to_path_buf(),
            tables: known.len(),
            rows,
            bytes,
        })
    }
}

/// Checks that `path` is a redb database this server can use: it opens (read-only, so it is not
/// changed), every required table exists with the expected key and value types, it holds no
/// unknown table, and its schema version is not newer than this build's. Returns the number of versions in it.
pub fn check_database(path: &Path) -> Result<u64> {
    let db = ReadOnlyDatabase::open(path)?;
    let txn = db.begin_read()?;
    let known = known_tables();
    let mut present = Vec::new();
    for t in txn.list_tables()? {
        if !known.contains(&t.name()) {
            return Err(DbError::Schema(format!("unknown table {}", t.name())));
        }
        present.push(t.name().to_owned());
    }
    for r in REQUIRED {
        if !present.iter().any(|p| p == r) {
            return Err(DbError::Schema(format!("table {r} is missing")));
        }
    }
    // Opening each present table with its definition checks key and value types.
    macro_rules! open {
        ($t:ident) => {
            if present.iter().any(|p| p == $t.name()) {
                txn.open_table($t)?;
            }
        };
    }
    for_each_table!(open);
    // A copy from a newer server could hold records this build misreads.
    if present.iter().any(|p| p == META.name()) {
        let found = super::schema_version(&txn.open_table(META)?)?;
        if found > CURRENT_SCHEMA_VERSION {
            return Err(DbError::SchemaTooNew {
                found,
                known: CURRENT_SCHEMA_VERSION,
            });
        }
    }
    Ok(redb::ReadableTableMetadata::len(
        &txn.open_table(VERSIONS)?,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{commit, file, register, upload};
    use redb::ReadableTableMetadata as _;

    #[test]
    fn backup_copies_every_table_and_checks_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
        let (_, a) = register(&db, "anna", "laptop");
        upload(&db, &a, &[b"eins", b"zwei"]);
        commit(&db, &a, &[file("/a", &[b"eins", b"zwei"])], 4);
        db.set_meta_json("last_gc", &serde_json::json!({"freed": 3}))
            .unwrap();

        let dest = dir.path().join("copy.redb");
        let summary = db.backup_to(&dest).unwrap();
        assert_eq!(summary.tables, known_tables().len());
        assert!(summary.rows > 5, "{summary:?}");
        assert_eq!(check_database(&dest).unwrap(), 1);
        assert!(db.backup_to(&dest).is_err(), "never overwrites");

        // Every table of the live database is in the copy with the same number of rows.
        let live = db.read().unwrap();
        let copy_db = ReadOnlyDatabase::open(&dest).unwrap();
        let copy = copy_db.begin_read().unwrap();
        let names: Vec<String> = live
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .collect();
        assert_eq!(names.len(), known_tables().len(), "{names:?}");
        macro_rules! same {
            ($t:ident) => {
                let a = live.open_table($t).unwrap().len().unwrap();
                let b = copy.open_table($t).unwrap().len().unwrap();
                assert_eq!(a, b, "{}", $t.name());
            };
        }
        for_each_table!(same);
        drop(copy);
        drop(copy_db);
        let reopened = Db::open(&dest).unwrap();
        let s = reopened.full_stats().unwrap();
        assert_eq!(s.versions, 1);
        assert_eq!(s.last_gc, Some(serde_json::json!({"freed": 3})));
    }

    #[test]
    fn backup_is_a_snapshot_of_one_moment() {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(Db::open(&dir.path().join("asgard.redb")).unwrap());
        let (_, a) = register(&db, "anna", "laptop");
        // Enough rows for several copy batches, so commits can land in between.
        let data: Vec<Vec<u8>> = (0..3 * BATCH_ROWS as u32)
            .map(|i| i.to_le_bytes().to_vec())
            .collect();
        let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
        upload(&db, &a, &refs);
        let writer = {
            let db = db.clone();
            let a = a.clone();
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    let part = i.to_le_bytes();
                    upload(&db, &a, &[&part]);
                    commit(&db, &a, &[file(&format!("/f{i}"), &[&part])], 4);
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        let dest = dir.path().join("copy.redb");
        db.backup_to(&dest).unwrap();
        writer.join().unwrap();
        // In the copy, every version's chunks are indexed with a refcount that counts them.
        let copy = Db::open(&dest).unwrap();
        let txn = copy.read().unwrap();
        let versions = txn.open_table(VERSIONS).unwrap();
        let chunks = txn.open_table(CHUNKS).unwrap();
        let mut refs = std::collections::HashMap::<[u8; 32], u64>::new();
        for row in versions.iter().unwrap() {
            let v = super::super::VersionRec::decode(row.unwrap().1.value()).unwrap();
            for (c, _) in v.chunks {
                *refs.entry(c).or_default() += 1;
            }
        }
        for (id, n) in refs {
            let rec: super::super::ChunkRec =
                super::super::dec(chunks.get(&id).unwrap().unwrap().value()).unwrap();
            assert_eq!(rec.refcount, n);
        }
    }

    #[test]
    fn garbage_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.redb");
        std::fs::write(&p, b"not a database at all").unwrap();
        assert!(check_database(&p).is_err());
        let empty = dir.path().join("empty.redb");
        drop(Database::create(&empty).unwrap());
        let err = check_database(&empty).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
