//! The metadata database (redb, `<data_dir>/asgard.redb`): every transaction of the API, the GC,
//! verify and the admin commands.
//!
//! Values are postcard-encoded structs. Every multi-step change happens in one write transaction,
//! so a crash or an error leaves either all of it or none of it.
//!
//! This file holds [`Db`] (open, the transaction helpers, the deletion fence) and [`DbError`]; the
//! rest is one module per subject: `schema.rs` every table, meta key and stored record;
//! `auth.rs` users, devices, tokens, login and retention per user; `enroll.rs` pending
//! registrations, approval and re-enrollment codes, the name migration;
//! `chunks.rs` check, upload records, chunk records and ownership; `versions.rs` commit, list,
//! point-in-time reads and the batched reads of restore; `gc.rs` the garbage collector's
//! transactions (pruning and the chunk index; the algorithm and its reasoning are in `crate::ops::gc`);
//! `integrity.rs` the metadata side of verify and healing; `runs.rs` the run reports of the agents;
//! `idsecret.rs` the key of the API's opaque ids;
//! `admin.rs` the admin console's account actions (disable, delete, revoke, new token, last
//! seen, registration at run time); `usage.rs` the figures per user;
//! `stats.rs` the statistics; `admins.rs`, `sessions.rs` and `audit.rs` the admin accounts, the
//! browser sessions and the audit log of the admin console; `backup.rs` the consistent copy of the whole database (`db-backup`)
//! and the check of a copy before `db-restore`.

use std::path::Path;
use std::sync::{Mutex, RwLock};

use asgard_core::ChunkId;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod admin;
mod admins;
mod audit;
mod auth;
mod backup;
// ubrowse: the reads of the user's file browser.
mod browse;
mod chunks;
mod enroll;
mod gc;
mod idsecret;
mod integrity;
mod refuse;
mod retention;
mod runs;
mod schema;
mod sessions;
mod stats;
mod usage;
// udown (issue 14)
mod userdown;
mod userweb;
mod versions;

#[cfg(test)]
mod tests;

pub use admin::{DELETE_BATCH, DeletedUser, DeviceFull, RegistrationSetting};
pub use admins::{ADMIN_NAME_MAX, AdminRec, AdminRow, BadAdminName, TotpRec, admin_name};
pub use audit::{AUDIT_KEEP, AUDIT_TEXT_MAX, AuditAction, AuditDetail, AuditRec};
pub use auth::{
    Auth, DeviceRow, LoginOutcome, LoginPolicy, UserRow, hash_token, new_token, secrets_equal,
};
pub use backup::{BackupSummary, check_database};
// ubrowse
pub use browse::{Child, ChildPage, Findings, Found, IMPLICIT_PROBE, ScanBounds, VersionSummary};
pub use chunks::{UploadFence, UploadedChunk};
pub use enroll::{APPROVAL_CODE_VALID_US, NewPending, PENDING_PER_USER, PendingRow, ResetOutcome};
pub use gc::{ChunkBatch, ChunkVerdict, PathBatch, PathKey, RetentionRules, chunk_verdict};
pub use integrity::{
    AffectedVersion, BadRef, ChunkBatchItem, VerifySummary, VersionBatch, VersionIssue,
};
pub use runs::{DeviceLastRun, KEEP_RUNS, RunRec, RunRow, RunScope};
pub use schema::{
    CURRENT_SCHEMA_VERSION, ChunkRec, DeviceRec, ExtV1, META_LAST_GC, META_LAST_VERIFY,
    META_REGISTRATION, PathRec, PendingRec, RecExt, RecKind, ReenrollRec, SeenRec, StoredMeta,
    UserRec, VersionRec,
};
pub use sessions::{SessionLimits, SessionOrigin, SessionRec, Stage, Subject, TOUCH_EVERY_US};
pub use stats::{FullStats, Stats};
pub use usage::UserUsage;
pub use userweb::{LinkCreator, LinkRec, LinkTake, UserDevice};
pub use versions::{DeviceSel, ListParams, decode_cursor, encode_cursor};

use auth::user_devices;
use chunks::{adjust_refcount, chunk_usable};
use schema::*;

/// Why a database operation failed. The API maps each variant to a status code.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// redb failed (I/O, corruption); usually permanent until an admin looks.
    #[error("database error: {0}")]
    Storage(#[from] redb::Error),
    #[error("database record cannot be decoded: {0}")]
    Encoding(#[from] postcard::Error),
    /// A JSON blob of the [`META_JSON`] table cannot be encoded or decoded.
    #[error("JSON record: {0}")]
    Json(String),
    /// The database lacks a table or has one this server does not know (a wrong file, or one
    /// from another version).
    #[error("unexpected database layout: {0}")]
    Schema(String),
    /// The database was written by a newer server (its schema version is higher than this
    /// build's): opening it could misread its records. Permanent: run the newer server.
    #[error(
        "the database has schema version {found}, this server knows up to {known}: it was written by a newer AsgardBackup server"
    )]
    SchemaTooNew { found: u64, known: u64 },
    #[error("unknown or revoked device token")]
    Unauthorized,
    /// The token was revoked or replaced by the admin (`device revoke`, `device token`).
    #[error("the device token was revoked by the admin")]
    TokenRevoked,
    /// The token's user was disabled by the admin (`user disable`).
    #[error("the user is disabled")]
    UserDisabled,
    /// The admin refused the registration of this token (`device refuse`).
    #[error("the admin refused this registration")]
    RegistrationRefused,
    /// The token of a pending registration: valid for `login` only.
    #[error("device not approved yet")]
    Pending,
    /// A user or device name that has no normal form (`asgard_core::names`).
    #[error("bad name: {0}")]
    BadName(String),
    /// A new user whose name looks like an existing user's (same confusable skeleton).
    #[error("user name {name} is confusable with an existing user")]
    ConfusableName { name: String },
    /// The user has `devices_per_user` devices already.
    #[error("the user has {limit} devices already")]
    TooManyDevices { limit: usize },
    #[error("wrong enrollment key")]
    EnrollmentKey,
    #[error("registration is closed")]
    RegistrationClosed,
    #[error("unknown device {device}")]
    UnknownDevice { device: String },
    #[error("{} chunks are missing", .0.len())]
    MissingChunks(Vec<ChunkId>),
    #[error("not found")]
    NotFound,
    /// `admin create` with a name an admin has already.
    #[error("admin {name} exists already")]
    AdminExists { name: String },
    #[error("the file was deleted at that time")]
    Deleted,
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Storage(e.into())
            }
        }
    )*};
}
redb_errors!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

type Result<T, E = DbError> = std::result::Result<T, E>;

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    Ok(postcard::to_stdvec(v)?)
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    Ok(postcard::from_bytes(b)?)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The metadata database.
pub struct Db {
    db: Database,
    /// Orders the deletion of chunk files against upload records: the GC holds it exclusively from
    /// the transaction that removes index entries until the files are deleted (and while it deletes
    /// orphan files); an upload holds it shared ([`Db::upload_fence`]) from the store's presence
    /// check to the end of [`Db::record_upload`]. So an upload that finds no index entry for a
    /// chunk can trust that presence check: no deletion is half done. One process owns a data
    /// directory (the lock file), so an in-process lock is enough.
    pub(crate) deletion_fence: RwLock<()>,
    /// At most one GC pass at a time (the periodic one and one on demand).
    pub(crate) gc_running: Mutex<()>,
    /// The key of the opaque ids of the API (see `idsecret.rs`), read or created at open.
    id_secret: [u8; 32],
}

/// The schema version a database records ([`SCHEMA_VERSION`]; absent = 1).
fn schema_version(meta: &impl ReadableTable<&'static str, u64>) -> Result<u64> {
    Ok(meta.get(SCHEMA_VERSION)?.map_or(1, |g| g.value()))
}

/// Refuses a database of a newer schema and records the current one in an older (or new) one.
/// Every record of an older schema reads as it is (see `schema.rs`), so the upgrade rewrites
/// nothing else; what it marks is that records of the new shape may follow, which an older server
/// must not open.
fn schema_upgrade(txn: &WriteTransaction) -> Result<()> {
    let mut meta = txn.open_table(META)?;
    let found = schema_version(&meta)?;
    if found > CURRENT_SCHEMA_VERSION {
        return Err(DbError::SchemaTooNew {
            found,
            known: CURRENT_SCHEMA_VERSION,
        });
    }
    if found < CURRENT_SCHEMA_VERSION {
        // A new database has no versions yet: only an existing one is worth a line in the log.
        if !redb::ReadableTableMetadata::is_empty(&txn.open_table(VERSIONS)?)? {
            tracing::info!(
                from = found,
                to = CURRENT_SCHEMA_VERSION,
                "database schema upgraded"
            );
        }
        meta.insert(SCHEMA_VERSION, CURRENT_SCHEMA_VERSION)?;
    }
    Ok(())
}

fn next_id(meta: &mut redb::Table<&str, u64>, key: &str) -> Result<u64> {
    let id = meta.get(key)?.map(|g| g.value()).unwrap_or(1);
    meta.insert(key, id + 1)?;
    Ok(id)
}

impl Drop for Db {
    /// One durable commit on the way out, so that unsynced commits (see [`Db::write_unsynced`])
    /// survive a clean stop.
    fn drop(&mut self) {
        let result = self.db.begin_write().map(|txn| txn.commit());
        if !matches!(result, Ok(Ok(()))) {
            tracing::warn!("final durable commit of the database failed");
        }
    }
}

impl Db {
    /// Opens (or creates) the database and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Db> {
        let db = Database::create(path)?;
        // redb syncs the file on every commit, but a new file's name is only durable once its
        // folder is synced too.
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| DbError::Storage(redb::Error::Io(e)))?;
        }
        let txn = db.begin_write()?;
        macro_rules! create {
            ($t:ident) => {
                txn.open_table($t)?;
            };
        }
        for_each_table!(create);
        schema_upgrade(&txn)?;
        enroll::migrate_names(&txn)?;
        let id_secret = idsecret::ensure(&txn)?;
        txn.commit()?;
        Ok(Db {
            db,
            deletion_fence: RwLock::new(()),
            gc_running: Mutex::new(()),
            id_secret,
        })
    }

    /// The installation's secret for the API's opaque ids (see `idsecret.rs`).
    pub fn id_secret(&self) -> [u8; 32] {
        self.id_secret
    }

    fn read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    fn write(&self) -> Result<WriteTransaction> {
        Ok(self.db.begin_write()?)
    }

    /// A write transaction whose commit does not sync: it becomes durable with the next durable
    /// commit (any other transaction, or the one [`Drop`] makes). Only for records whose loss in
    /// a crash is harmless (see [`Db::record_upload_healing`]).
    fn write_unsynced(&self) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| DbError::Storage(redb::Error::from(e)))?;
        Ok(txn)
    }
}

/// Test helper: marks the database at `path` as written by a newer server (one schema version
/// above this one's), through the on-disk contract (the counter table `meta`, key
/// `schema_version`); returns that version.
#[cfg(test)]
pub(crate) fn mark_schema_newer(path: &std::path::Path) -> u64 {
    let newer = CURRENT_SCHEMA_VERSION + 1;
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(meta)
        .unwrap()
        .insert("schema_version", newer)
        .unwrap();
    txn.commit().unwrap();
    newer
}
