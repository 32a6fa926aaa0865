//! The metadata database (redb, `<data_dir>/asgard.redb`): every table definition, and the
//! transactional logic of login, check, upload records, commit, list and restore lookup.
//!
//! Values are postcard-encoded structs. Every multi-step change happens in one write transaction,
//! so a crash or an error leaves either all of it or none of it.
//!
//! This file holds every table definition, the records, login/auth, check, upload records and the
//! admin commands; `versions.rs` holds commit (with retention, and the GC's pruning), list and the
//! restore lookup; `gc.rs` the garbage collector's transactions on the chunk index (the algorithm
//! and its reasoning are in `crate::gc`); `runs.rs` the run reports of the agents; `stats.rs` the
//! statistics; `backup.rs` the consistent copy of the whole database (`db-backup`) and the check of
//! a copy before `db-restore`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use asgard_core::protocol::{DeviceStatus, LoginRequest, VersionInfo, VersionKind};
use asgard_core::{ChunkId, ChunkParams, RawPath};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Registration;
use crate::store::{ChunkStore, StoreError};

/// user name → [`UserRec`]
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// (user id, device name) → [`DeviceRec`]
const DEVICES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("devices");
/// blake3(token) → (user id, device id)
const TOKENS: TableDefinition<&[u8; 32], (u64, u64)> = TableDefinition::new("tokens");
/// chunk id → [`ChunkRec`]
const CHUNKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("chunks");
/// (user id, chunk id) → (): the chunks a user uploaded or owns.
const USER_CHUNKS: TableDefinition<(u64, &[u8; 32]), ()> = TableDefinition::new("user_chunks");
/// (user id, device id, path bytes) → [`PathRec`]
const PATHS: TableDefinition<(u64, u64, &[u8]), &[u8]> = TableDefinition::new("paths");
/// version id → [`VersionRec`]
const VERSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("versions");
/// (user id, device id, run id) → [`RunRec`]: the last [`KEEP_RUNS`] run reports per device.
/// Run ids grow with time, so a device's newest run is the last key of its range.
const RUNS: TableDefinition<(u64, u64, u64), &[u8]> = TableDefinition::new("runs");
/// user id → the user's own `keep_versions` (set by the admin; absent = the configured default).
const KEEP_OVERRIDES: TableDefinition<u64, u32> = TableDefinition::new("keep_overrides");
/// (user id, device id, path bytes) → (): paths whose retained versions referenced a bad chunk
/// when verify last looked. Login hands them to the agent so that it re-reads those files; entries
/// that no longer reference a bad chunk are dropped then (see `integrity.rs`).
const REREAD: TableDefinition<(u64, u64, &[u8]), ()> = TableDefinition::new("reread");
/// counters: `next_user_id`, `next_device_id`, `next_version_id`, `next_run_id`, `last_time_us`,
/// `stored_bytes`; the last verify result under `last_verify_*` (see [`VerifySummary`])
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// JSON blobs by key, for results that tools write and the statistics read (see [`META_LAST_GC`],
/// [`META_LAST_VERIFY`]). Separate from [`META`], whose values are counters.
const META_JSON: TableDefinition<&str, &str> = TableDefinition::new("meta_json");

/// [`META_JSON`] key of the last GC result (the GC report as JSON; written by the GC when it ends).
pub const META_LAST_GC: &str = "last_gc";
/// [`META_JSON`] key of the last verify result (the verify report as JSON).
pub const META_LAST_VERIFY: &str = "last_verify";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRec {
    pub id: u64,
    pub created_us: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRec {
    pub id: u64,
    /// `None` after an admin reset: the device may register again.
    pub token_hash: Option<[u8; 32]>,
    pub status: DeviceStatus,
    pub os: String,
    pub os_version: String,
    pub agent_version: String,
    pub created_us: i64,
    pub last_seen_us: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ChunkRec {
    pub stored_len: u64,
    pub plain_len: u32,
    /// Occurrences in retained versions.
    pub refcount: u64,
    /// The lease: the last time an upload or a `check` answer ("you need not upload this") vouched
    /// for this chunk. GC leaves a chunk alone while this is younger than the grace period.
    pub last_touched_us: i64,
    /// GC phase one: when a pass found the chunk unreferenced and unleased. A later pass deletes it
    /// only if it is still so; any new reference or lease clears the mark.
    pub gc_candidate_since_us: Option<i64>,
    /// Verify found the stored chunk damaged or missing: `check` asks its owners to upload it again,
    /// and a verified upload heals it (and clears this).
    pub bad_since_us: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PathRec {
    /// Version ids, oldest first.
    pub versions: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRec {
    pub user_id: u64,
    pub device_id: u64,
    pub path: Vec<u8>,
    pub time_us: i64,
    pub deleted: bool,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    pub attributes: u32,
    pub hash: Option<[u8; 32]>,
    pub params: ChunkParams,
    pub chunks: Vec<([u8; 32], u32)>,
    /// `Some(target)` for a symbolic link (size 0, no chunks, hash = blake3 of the target).
    pub symlink_target: Option<Vec<u8>>,
}

/// A [`VersionRec`] as written before symlink versions existed (no `symlink_target`). Postcard
/// records have no field names, so old records are recognised by failing to decode as the new
/// shape (they end where the new field would start) and are read with this one.
#[derive(Deserialize)]
struct VersionRecV1 {
    user_id: u64,
    device_id: u64,
    path: Vec<u8>,
    time_us: i64,
    deleted: bool,
    size: u64,
    mtime_ns: i64,
    mode: u32,
    attributes: u32,
    hash: Option<[u8; 32]>,
    params: ChunkParams,
    chunks: Vec<([u8; 32], u32)>,
}

impl VersionRec {
    pub fn info(&self, id: u64) -> VersionInfo {
        VersionInfo {
            id,
            time_us: self.time_us,
            size: self.size,
            mtime_ns: self.mtime_ns,
            mode: self.mode,
            attributes: self.attributes,
            hash: self.hash.map(ChunkId),
            deleted: self.deleted,
            kind: if self.symlink_target.is_some() {
                VersionKind::Symlink
            } else {
                VersionKind::File
            },
            symlink_target: self.symlink_target.clone().map(RawPath),
        }
    }

    /// Decodes a stored version, also in the shape written before symlink versions existed.
    pub fn decode(bytes: &[u8]) -> Result<VersionRec> {
        match postcard::from_bytes::<VersionRec>(bytes) {
            Ok(v) => Ok(v),
            Err(new_err) => {
                let v: VersionRecV1 = postcard::from_bytes(bytes).map_err(|_| new_err)?;
                Ok(VersionRec {
                    user_id: v.user_id,
                    device_id: v.device_id,
                    path: v.path,
                    time_us: v.time_us,
                    deleted: v.deleted,
                    size: v.size,
                    mtime_ns: v.mtime_ns,
                    mode: v.mode,
                    attributes: v.attributes,
                    hash: v.hash,
                    params: v.params,
                    chunks: v.chunks,
                    symlink_target: None,
                })
            }
        }
    }
}

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
    #[error("unknown or revoked device token")]
    Unauthorized,
    #[error("device {user}/{device} is already registered")]
    DeviceExists { user: String, device: String },
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
    #[error("the file was deleted at that time")]
    Deleted,
    /// The chunk store failed while a transaction needed it (an upload record checks presence).
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// The stored form of a device token: its blake3 hash.
pub fn hash_token(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// A new device token: `asg_` and 64 hex digits of 32 random bytes.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("operating system random source");
    format!("asg_{}", asgard_core::id::to_hex(&bytes))
}

/// Constant-time equality of two secrets (compares their blake3 hashes; blake3's `Hash` compares
/// in constant time).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    blake3::hash(a.as_bytes()) == blake3::hash(b.as_bytes())
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// An authenticated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub user_id: u64,
    pub device_id: u64,
    pub device: String,
    pub status: DeviceStatus,
}

/// Registration rules for `login`.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy<'a> {
    pub registration: Registration,
    pub enrollment_key: Option<&'a str>,
}

/// What `login` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    /// The new token, when one was issued.
    pub token: Option<String>,
    pub status: DeviceStatus,
}

/// Which devices `list` covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSel {
    Id(u64),
    Named(String),
    All,
}

/// A `list` request after validation.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub devices: DeviceSel,
    pub prefix: Option<RawPath>,
    pub at_us: Option<i64>,
    /// Continue after this (device id, path).
    pub after: Option<(u64, Vec<u8>)>,
    pub limit: usize,
}

/// One row of `device list`.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub user: String,
    pub device: String,
    pub rec: DeviceRec,
}

/// Gauges for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub users: u64,
    pub devices: u64,
    pub versions: u64,
    pub chunks: u64,
    pub stored_bytes: u64,
}

/// A chunk verified by an upload, to be recorded.
#[derive(Debug, Clone, Copy)]
pub struct UploadedChunk {
    pub id: ChunkId,
    pub stored_len: u64,
    pub plain_len: u32,
}

/// The cursor text of `list`: hex of the device id (8 bytes, big endian) and the path bytes.
pub fn encode_cursor(device_id: u64, path: &[u8]) -> String {
    let mut b = device_id.to_be_bytes().to_vec();
    b.extend_from_slice(path);
    asgard_core::id::to_hex(&b)
}

pub fn decode_cursor(text: &str) -> Option<(u64, Vec<u8>)> {
    let b = asgard_core::id::from_hex(text)?;
    if b.len() < 8 {
        return None;
    }
    let (id, path) = b.split_at(8);
    Some((u64::from_be_bytes(id.try_into().ok()?), path.to_vec()))
}

/// The metadata database.
pub struct Db {
    db: Database,
    /// Orders the deletion of chunk files against upload records: the GC holds it exclusively from
    /// the transaction that removes index entries until the files are deleted (and while it deletes
    /// orphan files); [`Db::record_upload`] holds it shared. So an upload that finds no index entry
    /// for a chunk can trust a presence check of the file: no deletion is half done. One process
    /// owns a data directory (the lock file), so an in-process lock is enough.
    pub(crate) deletion_fence: RwLock<()>,
    /// At most one GC pass at a time (the periodic one and one on demand).
    pub(crate) gc_running: Mutex<()>,
}

/// A user and their own retention setting, for `user list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub id: u64,
    pub devices: u64,
    /// `None`: the configured `keep_versions` applies.
    pub keep_versions: Option<u32>,
}

fn next_id(meta: &mut redb::Table<&str, u64>, key: &str) -> Result<u64> {
    let id = meta.get(key)?.map(|g| g.value()).unwrap_or(1);
    meta.insert(key, id + 1)?;
    Ok(id)
}

/// Whether the index has `id` and it is not marked bad: what `check` and `commit` require.
fn chunk_usable(
    t: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    id: &ChunkId,
) -> Result<bool> {
    Ok(match t.get(&id.0)? {
        Some(g) => dec::<ChunkRec>(g.value())?.bad_since_us.is_none(),
        None => false,
    })
}

/// The user's devices as (name, record), in name order.
fn user_devices(
    t: &impl ReadableTable<(u64, &'static str), &'static [u8]>,
    user_id: u64,
) -> Result<Vec<(String, DeviceRec)>> {
    let mut out = Vec::new();
    for row in t.range((user_id, "")..(user_id + 1, ""))? {
        let (k, v) = row?;
        out.push((k.value().1.to_owned(), dec(v.value())?));
    }
    Ok(out)
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
        txn.open_table(USERS)?;
        txn.open_table(DEVICES)?;
        txn.open_table(TOKENS)?;
        txn.open_table(CHUNKS)?;
        txn.open_table(USER_CHUNKS)?;
        txn.open_table(PATHS)?;
        txn.open_table(VERSIONS)?;
        txn.open_table(RUNS)?;
        txn.open_table(KEEP_OVERRIDES)?;
        txn.open_table(REREAD)?;
        txn.open_table(META)?;
        txn.open_table(META_JSON)?;
        txn.commit()?;
        Ok(Db {
            db,
            deletion_fence: RwLock::new(()),
            gc_running: Mutex::new(()),
        })
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

    /// Registers or authenticates a device (see the protocol docs for every case).
    pub fn login(
        &self,
        req: &LoginRequest,
        bearer: Option<[u8; 32]>,
        policy: LoginPolicy<'_>,
        now: i64,
    ) -> Result<LoginOutcome> {
        let txn = self.write()?;
        let outcome = {
            let mut users = txn.open_table(USERS)?;
            let mut devices = txn.open_table(DEVICES)?;
            let mut tokens = txn.open_table(TOKENS)?;
            let mut meta = txn.open_table(META)?;
            let user: Option<UserRec> = users
                .get(req.user.as_str())?
                .map(|g| dec(g.value()))
                .transpose()?;
            let device: Option<DeviceRec> = match &user {
                Some(u) => devices
                    .get((u.id, req.device.as_str()))?
                    .map(|g| dec(g.value()))
                    .transpose()?,
                None => None,
            };
            let touch = |mut d: DeviceRec| {
                d.os = req.os.clone();
                d.os_version = req.os_version.clone();
                d.agent_version = req.agent_version.clone();
                d.last_seen_us = now;
                d
            };

            if let Some(hash) = bearer {
                let owner = tokens.get(&hash)?.map(|g| g.value());
                let (Some(user), Some(device)) = (user, device) else {
                    return Err(DbError::Unauthorized);
                };
                if owner != Some((user.id, device.id)) || device.token_hash != Some(hash) {
                    return Err(DbError::Unauthorized);
                }
                let status = device.status;
                devices.insert(
                    (user.id, req.device.as_str()),
                    enc(&touch(device))?.as_slice(),
                )?;
                LoginOutcome {
                    token: None,
                    status,
                }
            } else {
                if let Some(d) = &device
                    && d.token_hash.is_some()
                {
                    return Err(DbError::DeviceExists {
                        user: req.user.clone(),
                        device: req.device.clone(),
                    });
                }
                if let Some(key) = policy.enrollment_key
                    && !secrets_equal(key, req.enrollment_key.as_deref().unwrap_or(""))
                {
                    return Err(DbError::EnrollmentKey);
                }
                let token = new_token();
                let hash = hash_token(&token);
                let user = match user {
                    Some(u) => u,
                    None => {
                        if policy.registration == Registration::Closed {
                            return Err(DbError::RegistrationClosed);
                        }
                        let u = UserRec {
                            id: next_id(&mut meta, "next_user_id")?,
                            created_us: now,
                        };
                        users.insert(req.user.as_str(), enc(&u)?.as_slice())?;
                        u
                    }
                };
                let device = match device {
                    // A device reset by the admin registers again and keeps its files and status.
                    Some(d) => d,
                    None => {
                        let status = match policy.registration {
                            Registration::Open => DeviceStatus::Active,
                            Registration::Approve => DeviceStatus::Pending,
                            Registration::Closed => return Err(DbError::RegistrationClosed),
                        };
                        DeviceRec {
                            id: next_id(&mut meta, "next_device_id")?,
                            token_hash: None,
                            status,
                            os: String::new(),
                            os_version: String::new(),
                            agent_version: String::new(),
                            created_us: now,
                            last_seen_us: now,
                        }
                    }
                };
                let mut device = touch(device);
                device.token_hash = Some(hash);
                tokens.insert(&hash, (user.id, device.id))?;
                let status = device.status;
                devices.insert((user.id, req.device.as_str()), enc(&device)?.as_slice())?;
                LoginOutcome {
                    token: Some(token),
                    status,
                }
            }
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// The device of a token hash.
    pub fn authenticate(&self, hash: &[u8; 32]) -> Result<Auth> {
        let txn = self.read()?;
        let Some((user_id, device_id)) = txn.open_table(TOKENS)?.get(hash)?.map(|g| g.value())
        else {
            return Err(DbError::Unauthorized);
        };
        let devices = txn.open_table(DEVICES)?;
        user_devices(&devices, user_id)?
            .into_iter()
            .find(|(_, d)| d.id == device_id && d.token_hash.as_ref() == Some(hash))
            .map(|(name, d)| Auth {
                user_id,
                device_id,
                device: name,
                status: d.status,
            })
            .ok_or(DbError::Unauthorized)
    }

    /// The distinct ids (in request order) that this user does not own or that the store lacks.
    /// Answers only from the user's own chunks, so it reveals nothing about other users. A chunk
    /// that verify marked bad counts as lacking for every owner, so that whoever still has the
    /// bytes uploads them again and heals it.
    ///
    /// Every chunk answered "not missing" gets a lease (`last_touched_us = now`, GC candidate mark
    /// cleared) in the same transaction: the agent will commit versions referencing it without
    /// uploading it, so GC must leave it alone for the grace period (see `crate::gc`).
    pub fn check(&self, user_id: u64, ids: &[ChunkId], now: i64) -> Result<Vec<ChunkId>> {
        // Most answers change nothing (a first backup: every chunk is missing): those come from a
        // read transaction, and only chunks whose lease must be renewed take a write transaction.
        let (missing, to_lease) = {
            let txn = self.read()?;
            check_in(
                &txn.open_table(USER_CHUNKS)?,
                &txn.open_table(CHUNKS)?,
                user_id,
                ids,
                now,
            )?
        };
        if to_lease.is_empty() {
            return Ok(missing);
        }
        let txn = self.write()?;
        let missing = {
            let mut chunks = txn.open_table(CHUNKS)?;
            // Read again inside the write transaction: the index may have changed in between.
            let (missing, to_lease) =
                check_in(&txn.open_table(USER_CHUNKS)?, &chunks, user_id, ids, now)?;
            for (id, rec) in to_lease {
                let leased = ChunkRec {
                    last_touched_us: rec.last_touched_us.max(now),
                    gc_candidate_since_us: None,
                    ..rec
                };
                chunks.insert(&id.0, enc(&leased)?.as_slice())?;
            }
            missing
        };
        txn.commit()?;
        Ok(missing)
    }

    /// Whether the chunk index knows `id` (from any user).
    pub fn chunk_known(&self, id: &ChunkId) -> Result<bool> {
        Ok(self.read()?.open_table(CHUNKS)?.get(&id.0)?.is_some())
    }

    /// Whether `user_id` owns `id` and the index has it.
    pub fn owns_chunk(&self, user_id: u64, id: &ChunkId) -> Result<bool> {
        let txn = self.read()?;
        Ok(txn
            .open_table(USER_CHUNKS)?
            .get((user_id, &id.0))?
            .is_some()
            && txn.open_table(CHUNKS)?.get(&id.0)?.is_some())
    }

    /// Records the verified chunks of one upload request, all in one transaction, each with a
    /// fresh lease. Returns the number of chunks the index did not have before.
    pub fn record_upload(
        &self,
        user_id: u64,
        list: &[UploadedChunk],
        now: i64,
        store: &dyn ChunkStore,
    ) -> Result<u32> {
        self.record_upload_healing(user_id, list, &[], now, store)
    }

    /// [`Db::record_upload`], where the chunks in `healed` were bad and this request replaced
    /// their stored bytes (`ChunkStore::replace`) before calling: their bad mark is cleared and
    /// their stored length updated. A bad chunk that this request did not rewrite keeps its mark.
    ///
    /// A chunk the index lacks is recorded only if `store` has its file *now*: the upload handler
    /// may have skipped writing a chunk the index knew, or written one that the GC then swept as an
    /// orphan, and the GC may have removed it in between. Under the shared deletion fence no
    /// deletion is half done, so the presence check is reliable. A chunk that is gone is left out
    /// (logged); a commit referencing it is then refused with `missing_chunks`, never accepted.
    pub fn record_upload_healing(
        &self,
        user_id: u64,
        list: &[UploadedChunk],
        healed: &[ChunkId],
        now: i64,
        store: &dyn ChunkStore,
    ) -> Result<u32> {
        let _fence = self
            .deletion_fence
            .read()
            .unwrap_or_else(|e| e.into_inner());
        // Without a sync of its own: the chunks' bytes are durable in the store already, and a
        // version can only reference them through `commit`, whose durable transaction persists
        // this one with it (redb makes every earlier non-durable commit durable with the next
        // durable one). A crash before that loses only these records: the chunks are then
        // unindexed store entries, re-uploaded (not re-written) by the next run or swept as
        // orphans, and `commit` refuses to reference them meanwhile.
        let txn = self.write_unsynced()?;
        let mut new = 0;
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            let mut owned = txn.open_table(USER_CHUNKS)?;
            let mut meta = txn.open_table(META)?;
            let mut added_bytes = 0u64;
            let mut removed_bytes = 0u64;
            // In key order: neighbouring keys share B-tree pages, so fewer pages are touched.
            let mut list: Vec<&UploadedChunk> = list.iter().collect();
            list.sort_unstable_by_key(|c| c.id.0);
            // A chunk sent twice in one request is recorded (and counted) once.
            list.dedup_by_key(|c| c.id);
            let mut known = Vec::with_capacity(list.len());
            for c in &list {
                known.push(
                    chunks
                        .get(&c.id.0)?
                        .map(|g| dec::<ChunkRec>(g.value()))
                        .transpose()?,
                );
            }
            // One store lookup for all chunks the index does not know yet.
            let unknown: Vec<ChunkId> = list
                .iter()
                .zip(&known)
                .filter(|(_, k)| k.is_none())
                .map(|(c, _)| c.id)
                .collect();
            let mut in_store = store.exists_many(&unknown)?.into_iter();
            for (c, known) in list.into_iter().zip(known) {
                let rec = match known {
                    Some(r) => {
                        let mut r = ChunkRec {
                            last_touched_us: now,
                            gc_candidate_since_us: None,
                            ..r
                        };
                        if r.bad_since_us.is_some() && healed.contains(&c.id) {
                            tracing::info!(chunk = %c.id, "bad chunk healed by an upload");
                            r.bad_since_us = None;
                            removed_bytes += r.stored_len;
                            added_bytes += c.stored_len;
                            r.stored_len = c.stored_len;
                            r.plain_len = c.plain_len;
                        }
                        r
                    }
                    None if !in_store.next().unwrap_or(false) => {
                        tracing::warn!(chunk = %c.id, "uploaded chunk vanished before it was recorded (removed by GC); not recorded");
                        continue;
                    }
                    None => {
                        new += 1;
                        added_bytes += c.stored_len;
                        ChunkRec {
                            stored_len: c.stored_len,
                            plain_len: c.plain_len,
                            refcount: 0,
                            last_touched_us: now,
                            gc_candidate_since_us: None,
                            bad_since_us: None,
                        }
                    }
                };
                chunks.insert(&c.id.0, enc(&rec)?.as_slice())?;
                owned.insert((user_id, &c.id.0), ())?;
            }
            let total = meta.get("stored_bytes")?.map(|g| g.value()).unwrap_or(0);
            meta.insert(
                "stored_bytes",
                (total + added_bytes).saturating_sub(removed_bytes),
            )?;
        }
        txn.commit()?;
        Ok(new)
    }

    /// Every device of every user, for `device list`.
    pub fn list_devices(&self) -> Result<Vec<DeviceRow>> {
        let txn = self.read()?;
        let mut names = std::collections::HashMap::new();
        for row in txn.open_table(USERS)?.iter()? {
            let (k, v) = row?;
            names.insert(dec::<UserRec>(v.value())?.id, k.value().to_owned());
        }
        let mut out = Vec::new();
        for row in txn.open_table(DEVICES)?.iter()? {
            let (k, v) = row?;
            let (user_id, device) = k.value();
            out.push(DeviceRow {
                user: names.get(&user_id).cloned().unwrap_or_default(),
                device: device.to_owned(),
                rec: dec(v.value())?,
            });
        }
        out.sort_by(|a, b| (&a.user, &a.device).cmp(&(&b.user, &b.device)));
        Ok(out)
    }

    /// Changes one device in a write transaction; `NotFound` when user or device is unknown.
    fn update_device(
        &self,
        user: &str,
        device: &str,
        f: impl FnOnce(&mut DeviceRec, &mut redb::Table<&[u8; 32], (u64, u64)>) -> Result<()>,
    ) -> Result<DeviceRec> {
        let txn = self.write()?;
        let rec = {
            let users = txn.open_table(USERS)?;
            let mut devices = txn.open_table(DEVICES)?;
            let mut tokens = txn.open_table(TOKENS)?;
            let user_id = users
                .get(user)?
                .map(|g| dec::<UserRec>(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?
                .id;
            let mut rec: DeviceRec = devices
                .get((user_id, device))?
                .map(|g| dec(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?;
            f(&mut rec, &mut tokens)?;
            devices.insert((user_id, device), enc(&rec)?.as_slice())?;
            rec
        };
        txn.commit()?;
        Ok(rec)
    }

    /// pending → active.
    pub fn approve_device(&self, user: &str, device: &str) -> Result<DeviceRec> {
        self.update_device(user, device, |rec, _| {
            rec.status = DeviceStatus::Active;
            Ok(())
        })
    }

    /// Revokes the device's token so that the device can register again; its files stay.
    pub fn reset_device(&self, user: &str, device: &str) -> Result<DeviceRec> {
        self.update_device(user, device, |rec, tokens| {
            if let Some(hash) = rec.token_hash.take() {
                tokens.remove(&hash)?;
            }
            Ok(())
        })
    }

    /// Sets (`Some`) or clears (`None`) a user's own `keep_versions`; `NotFound` for an unknown
    /// user. It applies from the next commit of each path and to every path at the next GC pass.
    pub fn set_keep_override(&self, user: &str, keep: Option<u32>) -> Result<()> {
        let txn = self.write()?;
        {
            let users = txn.open_table(USERS)?;
            let user_id = users
                .get(user)?
                .map(|g| dec::<UserRec>(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?
                .id;
            let mut keeps = txn.open_table(KEEP_OVERRIDES)?;
            match keep {
                Some(k) => keeps.insert(user_id, k.max(1))?,
                None => keeps.remove(user_id)?,
            };
        }
        txn.commit()?;
        Ok(())
    }

    /// Every user with their device count and own `keep_versions`, by name.
    pub fn list_users(&self) -> Result<Vec<UserRow>> {
        let txn = self.read()?;
        let keeps = txn.open_table(KEEP_OVERRIDES)?;
        let devices = txn.open_table(DEVICES)?;
        let mut out = Vec::new();
        for row in txn.open_table(USERS)?.iter()? {
            let (k, v) = row?;
            let id = dec::<UserRec>(v.value())?.id;
            out.push(UserRow {
                name: k.value().to_owned(),
                id,
                devices: devices.range((id, "")..(id + 1, ""))?.count() as u64,
                keep_versions: keeps.get(id)?.map(|g| g.value()),
            });
        }
        Ok(out)
    }

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
                .get("stored_bytes")?
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

    /// The index records of `ids`, in order, from one read transaction (the upload handler).
    pub fn chunk_records(&self, ids: &[ChunkId]) -> Result<Vec<Option<ChunkRec>>> {
        let txn = self.read()?;
        let t = txn.open_table(CHUNKS)?;
        ids.iter()
            .map(|id| t.get(&id.0)?.map(|g| dec(g.value())).transpose())
            .collect()
    }

    /// The index record of a chunk (tests, verify).
    pub fn chunk_record(&self, id: &ChunkId) -> Result<Option<ChunkRec>> {
        self.read()?
            .open_table(CHUNKS)?
            .get(&id.0)?
            .map(|g| dec(g.value()))
            .transpose()
    }
}

#[cfg(test)]
mod tests;

mod backup;
mod gc;
mod integrity;
mod restore;
mod runs;
mod stats;
mod versions;

pub use backup::{BackupSummary, check_database};
pub use gc::{ChunkBatch, ChunkVerdict, chunk_verdict};
pub use integrity::{
    AffectedVersion, BadRef, ChunkBatchItem, VerifySummary, VersionBatch, VersionIssue,
};
pub use stats::FullStats;
pub use versions::{PathBatch, PathKey, RetentionRules};

pub use runs::{DeviceLastRun, KEEP_RUNS, RunRec};

/// The ids to upload, and the present chunks whose lease must be renewed (with their records).
type CheckAnswer = (Vec<ChunkId>, Vec<(ChunkId, ChunkRec)>);

/// The reading part of [`Db::check`].
fn check_in(
    owned: &impl ReadableTable<(u64, &'static [u8; 32]), ()>,
    chunks: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    user_id: u64,
    ids: &[ChunkId],
    now: i64,
) -> Result<CheckAnswer> {
    let mut missing = Vec::new();
    let mut to_lease = Vec::new();
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(*id) {
            continue;
        }
        if owned.get((user_id, &id.0))?.is_none() {
            missing.push(*id);
            continue;
        }
        match chunks.get(&id.0)?.map(|g| dec::<ChunkRec>(g.value())) {
            None => missing.push(*id),
            Some(rec) => {
                let rec = rec?;
                if rec.bad_since_us.is_some() {
                    missing.push(*id);
                } else if rec.last_touched_us < now || rec.gc_candidate_since_us.is_some() {
                    to_lease.push((*id, rec));
                }
            }
        }
    }
    Ok((missing, to_lease))
}
