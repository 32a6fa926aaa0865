//! The metadata database (redb, `<data_dir>/asgard.redb`): every table definition, and the
//! transactional logic of login, check, upload records, commit, list and restore lookup.
//!
//! Values are postcard-encoded structs. Every multi-step change happens in one write transaction,
//! so a crash or an error leaves either all of it or none of it.

use std::collections::HashSet;
use std::path::Path;

use asgard_core::protocol::{
    CommitEntry, CommitOutcome, CommitResponse, CommitResult, DeviceStatus, FileEntry,
    LoginRequest, VersionInfo,
};
use asgard_core::{ChunkId, ChunkParams, RawPath};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Registration;

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
/// counters: `next_user_id`, `next_device_id`, `next_version_id`, `last_time_us`, `stored_bytes`
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

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
    pub last_touched_us: i64,
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
}

fn next_id(meta: &mut redb::Table<&str, u64>, key: &str) -> Result<u64> {
    let id = meta.get(key)?.map(|g| g.value()).unwrap_or(1);
    meta.insert(key, id + 1)?;
    Ok(id)
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

impl Db {
    /// Opens (or creates) the database and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Db> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(USERS)?;
        txn.open_table(DEVICES)?;
        txn.open_table(TOKENS)?;
        txn.open_table(CHUNKS)?;
        txn.open_table(USER_CHUNKS)?;
        txn.open_table(PATHS)?;
        txn.open_table(VERSIONS)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(Db { db })
    }

    fn read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    fn write(&self) -> Result<WriteTransaction> {
        Ok(self.db.begin_write()?)
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
    /// Answers only from the user's own chunks, so it reveals nothing about other users.
    pub fn check(&self, user_id: u64, ids: &[ChunkId]) -> Result<Vec<ChunkId>> {
        let txn = self.read()?;
        let owned = txn.open_table(USER_CHUNKS)?;
        let chunks = txn.open_table(CHUNKS)?;
        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        for id in ids {
            if !seen.insert(*id) {
                continue;
            }
            if owned.get((user_id, &id.0))?.is_none() || chunks.get(&id.0)?.is_none() {
                missing.push(*id);
            }
        }
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

    /// Records the verified chunks of one upload request, all in one transaction. Returns the
    /// number of chunks the index did not have before.
    pub fn record_upload(&self, user_id: u64, list: &[UploadedChunk], now: i64) -> Result<u32> {
        let txn = self.write()?;
        let mut new = 0;
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            let mut owned = txn.open_table(USER_CHUNKS)?;
            let mut meta = txn.open_table(META)?;
            let mut added_bytes = 0u64;
            for c in list {
                let rec = match chunks.get(&c.id.0)?.map(|g| dec::<ChunkRec>(g.value())) {
                    Some(r) => ChunkRec {
                        last_touched_us: now,
                        ..r?
                    },
                    None => {
                        new += 1;
                        added_bytes += c.stored_len;
                        ChunkRec {
                            stored_len: c.stored_len,
                            plain_len: c.plain_len,
                            refcount: 0,
                            last_touched_us: now,
                        }
                    }
                };
                chunks.insert(&c.id.0, enc(&rec)?.as_slice())?;
                owned.insert((user_id, &c.id.0), ())?;
            }
            let total = meta.get("stored_bytes")?.map(|g| g.value()).unwrap_or(0);
            meta.insert("stored_bytes", total + added_bytes)?;
        }
        txn.commit()?;
        Ok(new)
    }

    /// Commits versions for one device, all or nothing. See [`CommitOutcome`] for the outcomes;
    /// retention keeps at most `keep` content versions per path.
    pub fn commit(
        &self,
        user_id: u64,
        device_id: u64,
        entries: &[CommitEntry],
        keep: u32,
        now: i64,
    ) -> Result<CommitResponse> {
        let txn = self.write()?;
        let response = {
            let mut chunks = txn.open_table(CHUNKS)?;
            let owned = txn.open_table(USER_CHUNKS)?;
            let mut paths = txn.open_table(PATHS)?;
            let mut versions = txn.open_table(VERSIONS)?;
            let mut meta = txn.open_table(META)?;

            // Presence and ownership are checked inside the transaction that adds the references.
            let mut seen = HashSet::new();
            let mut missing = Vec::new();
            for e in entries {
                if let CommitEntry::File { meta: m, .. } = e {
                    for c in &m.chunks {
                        if seen.insert(c.id)
                            && (owned.get((user_id, &c.id.0))?.is_none()
                                || chunks.get(&c.id.0)?.is_none())
                        {
                            missing.push(c.id);
                        }
                    }
                }
            }
            if !missing.is_empty() {
                return Err(DbError::MissingChunks(missing));
            }

            let last = meta.get("last_time_us")?.map(|g| g.value() as i64);
            let time_us = last.map_or(now, |l| now.max(l + 1));
            meta.insert("last_time_us", time_us as u64)?;

            let mut results = Vec::with_capacity(entries.len());
            let mut pruned = 0u32;
            for e in entries {
                let key_path = e.path().0.as_slice();
                let mut prec: PathRec = paths
                    .get((user_id, device_id, key_path))?
                    .map(|g| dec(g.value()))
                    .transpose()?
                    .unwrap_or_default();
                let newest: Option<(u64, VersionRec)> = match prec.versions.last() {
                    Some(&id) => versions
                        .get(id)?
                        .map(|g| dec(g.value()).map(|v| (id, v)))
                        .transpose()?,
                    None => None,
                };
                let result = match e {
                    CommitEntry::File { path, meta: m } => {
                        if let Some((id, v)) = &newest
                            && !v.deleted
                            && v.hash == Some(m.hash.0)
                            && v.size == m.size
                        {
                            results.push(CommitResult {
                                outcome: CommitOutcome::Unchanged,
                                version_id: Some(*id),
                            });
                            continue;
                        }
                        let outcome = match &newest {
                            Some((_, v)) if !v.deleted => CommitOutcome::Changed,
                            _ => CommitOutcome::New,
                        };
                        let rec = VersionRec {
                            user_id,
                            device_id,
                            path: path.0.clone(),
                            time_us,
                            deleted: false,
                            size: m.size,
                            mtime_ns: m.mtime_ns,
                            mode: m.mode,
                            attributes: m.attributes,
                            hash: Some(m.hash.0),
                            params: m.params,
                            chunks: m.chunks.iter().map(|c| (c.id.0, c.len)).collect(),
                        };
                        for (id, _) in &rec.chunks {
                            adjust_refcount(&mut chunks, id, 1)?;
                        }
                        let id = next_id(&mut meta, "next_version_id")?;
                        versions.insert(id, enc(&rec)?.as_slice())?;
                        prec.versions.push(id);
                        pruned += apply_retention(&mut prec, &mut versions, &mut chunks, keep)?;
                        CommitResult {
                            outcome,
                            version_id: Some(id),
                        }
                    }
                    CommitEntry::Deleted { path } => match &newest {
                        Some((_, v)) if !v.deleted => {
                            let rec = VersionRec {
                                user_id,
                                device_id,
                                path: path.0.clone(),
                                time_us,
                                deleted: true,
                                size: 0,
                                mtime_ns: v.mtime_ns,
                                mode: v.mode,
                                attributes: v.attributes,
                                hash: None,
                                params: v.params,
                                chunks: Vec::new(),
                            };
                            let id = next_id(&mut meta, "next_version_id")?;
                            versions.insert(id, enc(&rec)?.as_slice())?;
                            prec.versions.push(id);
                            CommitResult {
                                outcome: CommitOutcome::Deleted,
                                version_id: Some(id),
                            }
                        }
                        _ => {
                            results.push(CommitResult {
                                outcome: CommitOutcome::AlreadyDeleted,
                                version_id: newest.as_ref().map(|(id, _)| *id),
                            });
                            continue;
                        }
                    },
                };
                paths.insert((user_id, device_id, key_path), enc(&prec)?.as_slice())?;
                results.push(result);
            }
            CommitResponse {
                results,
                pruned_versions: pruned,
            }
        };
        txn.commit()?;
        Ok(response)
    }

    /// Resolves the device names of a user: (id, name) sorted by id.
    fn select_devices(
        txn: &ReadTransaction,
        user_id: u64,
        sel: &DeviceSel,
    ) -> Result<Vec<(u64, String)>> {
        let devices = txn.open_table(DEVICES)?;
        let all = user_devices(&devices, user_id)?;
        let mut out: Vec<(u64, String)> = match sel {
            DeviceSel::All => all.into_iter().map(|(n, d)| (d.id, n)).collect(),
            DeviceSel::Id(id) => all
                .into_iter()
                .filter(|(_, d)| d.id == *id)
                .map(|(n, d)| (d.id, n))
                .collect(),
            DeviceSel::Named(name) => {
                let found: Vec<_> = all
                    .into_iter()
                    .filter(|(n, _)| n == name)
                    .map(|(n, d)| (d.id, n))
                    .collect();
                if found.is_empty() {
                    return Err(DbError::UnknownDevice {
                        device: name.clone(),
                    });
                }
                found
            }
        };
        out.sort();
        Ok(out)
    }

    /// One page of paths and their versions (newest first).
    pub fn list(&self, user_id: u64, p: &ListParams) -> Result<(Vec<FileEntry>, Option<String>)> {
        let txn = self.read()?;
        let devices = Self::select_devices(&txn, user_id, &p.devices)?;
        let paths = txn.open_table(PATHS)?;
        let versions = txn.open_table(VERSIONS)?;
        let mut files = Vec::new();
        let mut last_key = None;
        for (device_id, device_name) in devices {
            let start: (u64, u64, &[u8]) = match &p.after {
                Some((d, _)) if *d > device_id => continue,
                Some((d, path)) if *d == device_id => (user_id, device_id, path.as_slice()),
                _ => (user_id, device_id, &[]),
            };
            let lower = match &p.after {
                Some((d, _)) if *d == device_id => std::ops::Bound::Excluded(start),
                _ => std::ops::Bound::Included(start),
            };
            let upper = std::ops::Bound::Excluded((user_id, device_id + 1, &[][..]));
            for row in paths.range::<(u64, u64, &[u8])>((lower, upper))? {
                let (k, v) = row?;
                let path = RawPath(k.value().2.to_vec());
                if let Some(prefix) = &p.prefix
                    && !path.is_within(prefix)
                {
                    continue;
                }
                let prec: PathRec = dec(v.value())?;
                let mut infos = Vec::new();
                for &id in prec.versions.iter().rev() {
                    let Some(g) = versions.get(id)? else { continue };
                    let rec: VersionRec = dec(g.value())?;
                    if p.at_us.is_none_or(|at| rec.time_us <= at) {
                        infos.push(rec.info(id));
                    }
                }
                if infos.is_empty() {
                    continue;
                }
                if files.len() == p.limit {
                    // One more match exists: the page ends after the last entry taken.
                    let cursor = last_key.map(|(d, path): (u64, Vec<u8>)| encode_cursor(d, &path));
                    return Ok((files, cursor));
                }
                last_key = Some((device_id, path.0.clone()));
                files.push(FileEntry {
                    path,
                    device: device_name.clone(),
                    versions: infos,
                });
            }
        }
        Ok((files, None))
    }
}

impl Db {
    /// The version to restore: by id (must belong to the user), or the newest of a path (at or
    /// before `at_us` when given) on `device` (the calling device when `None`).
    pub fn find_version(
        &self,
        user_id: u64,
        calling_device: u64,
        version_id: Option<u64>,
        device: Option<&str>,
        path: Option<&RawPath>,
        at_us: Option<i64>,
    ) -> Result<(u64, VersionRec)> {
        let txn = self.read()?;
        let versions = txn.open_table(VERSIONS)?;
        let (id, rec) = if let Some(id) = version_id {
            let rec: VersionRec = versions
                .get(id)?
                .map(|g| dec(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?;
            // Another user's version is reported exactly like a missing one.
            if rec.user_id != user_id {
                return Err(DbError::NotFound);
            }
            (id, rec)
        } else {
            let path = path.ok_or(DbError::NotFound)?;
            let sel = match device {
                Some(name) => DeviceSel::Named(name.to_owned()),
                None => DeviceSel::Id(calling_device),
            };
            let (device_id, _) = Self::select_devices(&txn, user_id, &sel)?
                .into_iter()
                .next()
                .ok_or(DbError::NotFound)?;
            let prec: PathRec = txn
                .open_table(PATHS)?
                .get((user_id, device_id, path.0.as_slice()))?
                .map(|g| dec(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?;
            let mut found = None;
            for &id in prec.versions.iter().rev() {
                let Some(g) = versions.get(id)? else { continue };
                let rec: VersionRec = dec(g.value())?;
                if at_us.is_none_or(|at| rec.time_us <= at) {
                    found = Some((id, rec));
                    break;
                }
            }
            found.ok_or(DbError::NotFound)?
        };
        if rec.deleted {
            return Err(DbError::Deleted);
        }
        Ok((id, rec))
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

    /// The index record of a chunk (tests, verify).
    pub fn chunk_record(&self, id: &ChunkId) -> Result<Option<ChunkRec>> {
        self.read()?
            .open_table(CHUNKS)?
            .get(&id.0)?
            .map(|g| dec(g.value()))
            .transpose()
    }
}

/// Adds `delta` to a chunk's refcount. A chunk missing from the index or a count going below zero
/// is a bug elsewhere: logged, never fatal for the commit.
fn adjust_refcount(
    chunks: &mut redb::Table<&[u8; 32], &[u8]>,
    id: &[u8; 32],
    delta: i64,
) -> Result<()> {
    let Some(mut rec) = chunks
        .get(id)?
        .map(|g| dec::<ChunkRec>(g.value()))
        .transpose()?
    else {
        tracing::error!(chunk = %ChunkId(*id), "refcount change for a chunk missing from the index");
        return Ok(());
    };
    rec.refcount = match rec.refcount.checked_add_signed(delta) {
        Some(v) => v,
        None => {
            tracing::error!(chunk = %ChunkId(*id), "refcount would go below zero");
            0
        }
    };
    chunks.insert(id, enc(&rec)?.as_slice())?;
    Ok(())
}

/// Keeps at most `keep` content versions of a path: drops the oldest content versions (and their
/// chunk references) and then every deletion marker older than the oldest retained content version.
/// Returns the number of versions dropped.
fn apply_retention(
    prec: &mut PathRec,
    versions: &mut redb::Table<u64, &[u8]>,
    chunks: &mut redb::Table<&[u8; 32], &[u8]>,
    keep: u32,
) -> Result<u32> {
    let mut recs = Vec::with_capacity(prec.versions.len());
    for &id in &prec.versions {
        if let Some(g) = versions.get(id)? {
            recs.push((id, dec::<VersionRec>(g.value())?));
        }
    }
    let content = recs.iter().filter(|(_, v)| !v.deleted).count();
    let mut excess = content.saturating_sub(keep as usize);
    let mut kept = Vec::with_capacity(recs.len());
    let mut pruned = 0;
    let mut content_kept = false;
    for (id, v) in recs {
        let drop = if v.deleted {
            !content_kept
        } else if excess > 0 {
            excess -= 1;
            true
        } else {
            content_kept = true;
            false
        };
        if drop {
            for (chunk, _) in &v.chunks {
                adjust_refcount(chunks, chunk, -1)?;
            }
            versions.remove(id)?;
            pruned += 1;
        } else {
            kept.push(id);
        }
    }
    prec.versions = kept;
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgard_core::protocol::{ChunkRef, FileMeta};

    fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
        (dir, db)
    }

    fn req(user: &str, device: &str) -> LoginRequest {
        LoginRequest {
            protocol_version: 1,
            user: user.into(),
            device: device.into(),
            os: "linux".into(),
            os_version: "6".into(),
            agent_version: "0.1".into(),
            enrollment_key: None,
        }
    }

    const OPEN: LoginPolicy<'static> = LoginPolicy {
        registration: Registration::Open,
        enrollment_key: None,
    };

    fn register(db: &Db, user: &str, device: &str) -> (String, Auth) {
        let out = db.login(&req(user, device), None, OPEN, now_us()).unwrap();
        let token = out.token.unwrap();
        let auth = db.authenticate(&hash_token(&token)).unwrap();
        (token, auth)
    }

    fn upload(db: &Db, a: &Auth, data: &[&[u8]]) -> Vec<ChunkId> {
        let list: Vec<UploadedChunk> = data
            .iter()
            .map(|d| UploadedChunk {
                id: ChunkId::of(d),
                stored_len: d.len() as u64 + 1,
                plain_len: d.len() as u32,
            })
            .collect();
        db.record_upload(a.user_id, &list, now_us()).unwrap();
        list.iter().map(|c| c.id).collect()
    }

    fn file(path: &str, parts: &[&[u8]]) -> CommitEntry {
        let all: Vec<u8> = parts.concat();
        CommitEntry::File {
            path: RawPath::from(path),
            meta: FileMeta {
                size: all.len() as u64,
                mtime_ns: 1,
                mode: 0o644,
                attributes: 0,
                hash: ChunkId::of(&all),
                params: ChunkParams::default(),
                chunks: parts
                    .iter()
                    .map(|p| ChunkRef {
                        id: ChunkId::of(p),
                        len: p.len() as u32,
                    })
                    .collect(),
            },
        }
    }

    fn commit(db: &Db, a: &Auth, entries: &[CommitEntry], keep: u32) -> CommitResponse {
        db.commit(a.user_id, a.device_id, entries, keep, now_us())
            .unwrap()
    }

    fn refcount(db: &Db, data: &[u8]) -> u64 {
        db.chunk_record(&ChunkId::of(data))
            .unwrap()
            .unwrap()
            .refcount
    }

    #[test]
    fn token_hashing() {
        let t = new_token();
        assert!(t.starts_with("asg_") && t.len() == 68, "{t}");
        assert_ne!(t, new_token());
        assert_eq!(hash_token(&t), hash_token(&t));
        assert_ne!(hash_token(&t), hash_token(&new_token()));
        assert_eq!(hash_token("x"), *blake3::hash(b"x").as_bytes());
        assert!(secrets_equal("k", "k") && !secrets_equal("k", "K"));
    }

    #[test]
    fn login_flows() {
        let (_d, db) = open();
        let (token, auth) = register(&db, "anna", "laptop");
        assert_eq!(auth.status, DeviceStatus::Active);
        let again = db.login(&req("anna", "laptop"), None, OPEN, 0);
        assert!(matches!(again, Err(DbError::DeviceExists { .. })));
        let ok = db
            .login(&req("anna", "laptop"), Some(hash_token(&token)), OPEN, 0)
            .unwrap();
        assert_eq!(ok.token, None);
        let wrong = db.login(&req("anna", "laptop"), Some(hash_token("asg_x")), OPEN, 0);
        assert!(matches!(wrong, Err(DbError::Unauthorized)));
        // A valid token of another device is not valid for this one.
        let (token2, _) = register(&db, "anna", "desktop");
        let other = db.login(&req("anna", "laptop"), Some(hash_token(&token2)), OPEN, 0);
        assert!(matches!(other, Err(DbError::Unauthorized)));

        db.reset_device("anna", "laptop").unwrap();
        assert!(matches!(
            db.authenticate(&hash_token(&token)),
            Err(DbError::Unauthorized)
        ));
        let (new, auth2) = register(&db, "anna", "laptop");
        assert_ne!(new, token);
        assert_eq!(auth2.device_id, auth.device_id, "same device, files kept");

        let closed = LoginPolicy {
            registration: Registration::Closed,
            enrollment_key: None,
        };
        assert!(matches!(
            db.login(&req("bob", "pc"), None, closed, 0),
            Err(DbError::RegistrationClosed)
        ));
        let approve = LoginPolicy {
            registration: Registration::Approve,
            enrollment_key: Some("geheim"),
        };
        assert!(matches!(
            db.login(&req("bob", "pc"), None, approve, 0),
            Err(DbError::EnrollmentKey)
        ));
        let mut r = req("bob", "pc");
        r.enrollment_key = Some("geheim".into());
        let out = db.login(&r, None, approve, 0).unwrap();
        assert_eq!(out.status, DeviceStatus::Pending);
        let hash = hash_token(&out.token.unwrap());
        assert_eq!(
            db.authenticate(&hash).unwrap().status,
            DeviceStatus::Pending
        );
        db.approve_device("bob", "pc").unwrap();
        assert_eq!(db.authenticate(&hash).unwrap().status, DeviceStatus::Active);
        assert_eq!(db.list_devices().unwrap().len(), 3);
        assert_eq!(db.stats().unwrap().users, 2);
    }

    #[test]
    fn check_answers_per_user() {
        let (_d, db) = open();
        let (_, a) = register(&db, "a", "d");
        let (_, b) = register(&db, "b", "d");
        let ids = upload(&db, &a, &[b"secret"]);
        let other = ChunkId::of(b"other");
        assert!(db.check(a.user_id, &[ids[0], ids[0]]).unwrap().is_empty());
        assert_eq!(
            db.check(b.user_id, &[ids[0], other, ids[0]]).unwrap(),
            vec![ids[0], other]
        );
    }

    #[test]
    fn missing_chunk_refuses_commit_and_writes_nothing() {
        let (_d, db) = open();
        let (_, a) = register(&db, "a", "d");
        let (_, b) = register(&db, "b", "d");
        upload(&db, &a, &[b"one"]);
        upload(&db, &b, &[b"foreign"]);
        // "two" was never uploaded; "foreign" belongs to another user.
        let entries = [
            file("/x", &[b"one"]),
            file("/y", &[b"two", b"foreign", b"two"]),
        ];
        match db.commit(a.user_id, a.device_id, &entries, 4, now_us()) {
            Err(DbError::MissingChunks(m)) => {
                assert_eq!(m, vec![ChunkId::of(b"two"), ChunkId::of(b"foreign")])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(db.stats().unwrap().versions, 0);
        assert_eq!(refcount(&db, b"one"), 0);
        let p = ListParams {
            devices: DeviceSel::All,
            prefix: None,
            at_us: None,
            after: None,
            limit: 100,
        };
        assert!(db.list(a.user_id, &p).unwrap().0.is_empty());
    }

    #[test]
    fn retention_keeps_newest_and_adjusts_refcounts() {
        let (_d, db) = open();
        let (_, a) = register(&db, "a", "d");
        let contents: Vec<Vec<u8>> = (0..6)
            .map(|i| format!("content {i}").into_bytes())
            .collect();
        let mut ids = Vec::new();
        let mut pruned = 0;
        for c in &contents {
            upload(&db, &a, &[b"shared", c]);
            let r = commit(&db, &a, &[file("/f", &[b"shared", c, b"shared"])], 4);
            ids.push(r.results[0].version_id.unwrap());
            pruned += r.pruned_versions;
        }
        assert_eq!(pruned, 2);
        assert_eq!(refcount(&db, b"content 0"), 0);
        assert_eq!(refcount(&db, b"content 1"), 0);
        for c in &contents[2..] {
            assert_eq!(refcount(&db, c), 1);
        }
        // Two occurrences per retained version.
        assert_eq!(refcount(&db, b"shared"), 8);
        let p = ListParams {
            devices: DeviceSel::Id(a.device_id),
            prefix: None,
            at_us: None,
            after: None,
            limit: 10,
        };
        let (files, _) = db.list(a.user_id, &p).unwrap();
        let listed: Vec<u64> = files[0].versions.iter().map(|v| v.id).collect();
        assert_eq!(listed, ids[2..].iter().rev().copied().collect::<Vec<_>>());
        assert!(matches!(
            db.find_version(a.user_id, a.device_id, Some(ids[0]), None, None, None),
            Err(DbError::NotFound)
        ));
    }

    #[test]
    fn unchanged_content_makes_no_version() {
        let (_d, db) = open();
        let (_, a) = register(&db, "a", "d");
        upload(&db, &a, &[b"x"]);
        let r1 = commit(&db, &a, &[file("/f", &[b"x"])], 4);
        assert_eq!(r1.results[0].outcome, CommitOutcome::New);
        let r2 = commit(&db, &a, &[file("/f", &[b"x"])], 4);
        assert_eq!(r2.results[0].outcome, CommitOutcome::Unchanged);
        assert_eq!(r2.results[0].version_id, r1.results[0].version_id);
        assert_eq!(db.stats().unwrap().versions, 1);
        assert_eq!(refcount(&db, b"x"), 1);
    }

    #[test]
    fn deletion_markers() {
        let (_d, db) = open();
        let (_, a) = register(&db, "a", "d");
        upload(&db, &a, &[b"v1", b"v2"]);
        let gone = CommitEntry::Deleted {
            path: RawPath::from("/f"),
        };
        let r = commit(&db, &a, std::slice::from_ref(&gone), 1);
        assert_eq!(r.results[0].outcome, CommitOutcome::AlreadyDeleted);
        assert_eq!(r.results[0].version_id, None);
        let v1 = commit(&db, &a, &[file("/f", &[b"v1"])], 1).results[0];
        let t_before_delete = db
            .find_version(a.user_id, a.device_id, v1.version_id, None, None, None)
            .unwrap()
            .1
            .time_us;
        let del = commit(&db, &a, std::slice::from_ref(&gone), 1).results[0];
        assert_eq!(del.outcome, CommitOutcome::Deleted);
        let again = commit(&db, &a, std::slice::from_ref(&gone), 1).results[0];
        assert_eq!(again.outcome, CommitOutcome::AlreadyDeleted);
        assert_eq!(again.version_id, del.version_id);
        assert!(matches!(
            db.find_version(
                a.user_id,
                a.device_id,
                None,
                None,
                Some(&RawPath::from("/f")),
                None
            ),
            Err(DbError::Deleted)
        ));
        let (id, _) = db
            .find_version(
                a.user_id,
                a.device_id,
                None,
                None,
                Some(&RawPath::from("/f")),
                Some(t_before_delete),
            )
            .unwrap();
        assert_eq!(Some(id), v1.version_id);
        // Same content after a deletion is a new version, not "unchanged".
        let back = commit(&db, &a, &[file("/f", &[b"v1"])], 1);
        assert_eq!(back.results[0].outcome, CommitOutcome::New);
        // keep = 1: the old content version and the marker before the retained one both go.
        assert_eq!(back.pruned_versions, 2);
        assert_eq!(refcount(&db, b"v1"), 1);
        let changed = commit(&db, &a, &[file("/f", &[b"v2"])], 1);
        assert_eq!(changed.results[0].outcome, CommitOutcome::Changed);
        assert_eq!(db.stats().unwrap().versions, 1);
    }

    #[test]
    fn list_pages_prefix_and_time() {
        let (_d, db) = open();
        let (_, a) = register(&db, "a", "d1");
        let (_, a2) = register(&db, "a", "d2");
        upload(&db, &a, &[b"x"]);
        let names = ["/home/a/1", "/home/a/2", "/home/b/3", "/home/a/4"];
        for n in names {
            commit(&db, &a, &[file(n, &[b"x"])], 4);
        }
        let t = db
            .list(
                a.user_id,
                &ListParams {
                    devices: DeviceSel::All,
                    prefix: None,
                    at_us: None,
                    after: None,
                    limit: 100,
                },
            )
            .unwrap()
            .0
            .iter()
            .map(|f| f.versions[0].time_us)
            .max()
            .unwrap();
        commit(&db, &a2, &[file("/home/a/5", &[b"x"])], 4);
        let mut p = ListParams {
            devices: DeviceSel::All,
            prefix: Some(RawPath::from("/home/a")),
            at_us: None,
            after: None,
            limit: 2,
        };
        let mut seen = Vec::new();
        loop {
            let (files, cursor) = db.list(a.user_id, &p).unwrap();
            assert!(files.len() <= 2);
            seen.extend(files.iter().map(|f| (f.device.clone(), f.path.lossy())));
            match cursor {
                Some(c) => p.after = Some(decode_cursor(&c).unwrap()),
                None => break,
            }
        }
        let want: Vec<(String, String)> = [
            ("d1", "/home/a/1"),
            ("d1", "/home/a/2"),
            ("d1", "/home/a/4"),
            ("d2", "/home/a/5"),
        ]
        .iter()
        .map(|(d, n)| (d.to_string(), n.to_string()))
        .collect();
        assert_eq!(seen, want);
        p.after = None;
        p.limit = 100;
        p.at_us = Some(t);
        assert_eq!(db.list(a.user_id, &p).unwrap().0.len(), 3);
        p.devices = DeviceSel::Named("nope".into());
        assert!(matches!(
            db.list(a.user_id, &p),
            Err(DbError::UnknownDevice { .. })
        ));
    }
}
