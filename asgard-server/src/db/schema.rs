//! The on-disk layout of the metadata database, in one place: every redb table with what its key
//! and value are, the keys of the meta tables, and the stored records.
//!
//! Values are postcard-encoded structs. Postcard records have no field names, so a record's shape
//! can only grow at its end, and a reader of an old shape must be kept (see [`VersionRec::decode`]).
//! Since schema version 2 a version record ends in a *versioned* extension ([`RecExt`]): later
//! additions become a new variant of it (the postcard enum tag is the extension's format version)
//! instead of another guessed-at trailing field.
//!
//! The database records its schema version in [`META`] under [`SCHEMA_VERSION`] (absent = 1).
//! `Db::open` writes the current one when it upgrades a database and refuses one written by a
//! newer server ([`super::DbError::SchemaTooNew`]), which could hold records this build would
//! misread.
//! A new table must be added to `for_each_table!`, or `Db::open` does not create it and
//! `db-backup` refuses to run (it checks that it copies every table the database holds).

use asgard_core::meta::{Blob, EntryMeta, Xattr};
use asgard_core::protocol::{DeviceStatus, VersionInfo, VersionKind};
use asgard_core::{ChunkId, ChunkParams, RawPath};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use super::Result;

/// user name → [`UserRec`]
pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// (user id, device name) → [`DeviceRec`]
pub(super) const DEVICES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("devices");
/// blake3(token) → (user id, device id)
pub(super) const TOKENS: TableDefinition<&[u8; 32], (u64, u64)> = TableDefinition::new("tokens");
/// chunk id → [`ChunkRec`]
pub(super) const CHUNKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("chunks");
/// (user id, chunk id) → (): the chunks a user uploaded or owns.
pub(super) const USER_CHUNKS: TableDefinition<(u64, &[u8; 32]), ()> =
    TableDefinition::new("user_chunks");
/// (user id, device id, path bytes) → [`PathRec`]
pub(super) const PATHS: TableDefinition<(u64, u64, &[u8]), &[u8]> = TableDefinition::new("paths");
/// version id → [`VersionRec`]
pub(super) const VERSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("versions");
/// (user id, device id, run id) → [`super::RunRec`]: the last [`super::KEEP_RUNS`] run reports
/// per device. Run ids grow with time, so a device's newest run is the last key of its range.
pub(super) const RUNS: TableDefinition<(u64, u64, u64), &[u8]> = TableDefinition::new("runs");
/// user id → the user's own `keep_versions` (set by the admin; absent = the configured default).
pub(super) const KEEP_OVERRIDES: TableDefinition<u64, u32> = TableDefinition::new("keep_overrides");
/// (user id, device id, path bytes) → (): paths whose retained versions referenced a bad chunk
/// when verify last looked. Login hands them to the agent so that it re-reads those files; entries
/// that no longer reference a bad chunk are dropped then (see `integrity.rs`).
pub(super) const REREAD: TableDefinition<(u64, u64, &[u8]), ()> = TableDefinition::new("reread");
/// (user id, pending id) → [`PendingRec`]: registrations of a further device of an existing
/// user that wait for an active device of that user (by code) or an admin to approve them. At
/// most [`super::enroll::PENDING_PER_USER`] per user; pending ids grow, so the oldest comes first.
pub(super) const PENDING: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("pending");
/// blake3(token of a pending registration) → (user id, pending id).
pub(super) const PENDING_TOKENS: TableDefinition<&[u8; 32], (u64, u64)> =
    TableDefinition::new("pending_tokens");
/// (user id, device id) → [`ReenrollRec`]: the one-time code of a device after `device reset`.
pub(super) const REENROLL: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("reenroll");
/// confusable skeleton of a user name (`asgard_core::names::skeleton`) → user id: a new user
/// whose name looks like an existing one is refused.
pub(super) const SKELETONS: TableDefinition<&str, u64> = TableDefinition::new("skeletons");
/// counter name → value: the `NEXT_*_ID` counters, [`LAST_TIME_US`] and [`STORED_BYTES`]; also
/// the four words of the id secret (`idsecret.rs`).
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// key → JSON text, for results that tools write and the statistics read ([`META_LAST_GC`],
/// [`META_LAST_VERIFY`]). Separate from [`META`], whose values are counters.
pub(super) const META_JSON: TableDefinition<&str, &str> = TableDefinition::new("meta_json");

/// user id → since when (µs) the admin disabled the user: every device token of theirs is
/// refused (`user_disabled`) until `user enable` removes the row (issue 13).
pub(super) const DISABLED_USERS: TableDefinition<u64, i64> = TableDefinition::new("disabled_users");
/// blake3(a revoked device token) → (user id, device id, revoked at µs): `device revoke` and
/// `device token` keep the old token's hash here, so that the device hears `token_revoked`
/// instead of a bare "unauthorized". Rows go with the user (`user delete`).
pub(super) const REVOKED_TOKENS: TableDefinition<&[u8; 32], (u64, u64, i64)> =
    TableDefinition::new("revoked_tokens");
/// (user id, device id) → revoked at (µs): the device's access was revoked by the admin and no
/// new token or code was issued since (its token state `revoked`, told from `reset`).
pub(super) const REVOKED_DEVICES: TableDefinition<(u64, u64), i64> =
    TableDefinition::new("revoked_devices");
/// (user id, device id) → [`SeenRec`]: when and from which address a device last made an
/// authenticated request; written at most once a minute per device, without sync (a crash
/// loses at most the last minute of it, which is harmless).
pub(super) const DEVICE_SEEN: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("device_seen");
/// admin name (normal form, see `admins::admin_name`) → [`super::AdminRec`] (issue 13; the
/// records of the admin console's tables live in their modules: `admins.rs`, `sessions.rs`,
/// `audit.rs`, with the same growth rule as those here).
pub(super) const ADMINS: TableDefinition<&str, &[u8]> = TableDefinition::new("admins");
/// blake3(admin API token) → (admin id, created µs).
pub(super) const ADMIN_TOKENS: TableDefinition<&[u8; 32], (u64, i64)> =
    TableDefinition::new("admin_tokens");
/// blake3(session id) → [`super::SessionRec`]: the server-side browser sessions.
pub(super) const SESSIONS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("sessions");
/// audit id (grows with time) → [`super::AuditRec`]; the newest [`super::AUDIT_KEEP`] are kept.
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// blake3(one-time login link secret) → [`super::LinkRec`] (issue 14): the links of
/// `asgard-agent web` and of the admins' restore links; a used or expired one stays a day, so
/// that it is answered as gone rather than unknown, then the next link made sweeps it.
pub(super) const WEB_LINKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("web_links");

/// user id → the argon2id hash (PHC string) of the user's web password (issue 14; optional,
/// set with `asgard-agent web --set-password`).
pub(super) const WEB_PASSWORDS: TableDefinition<u64, &str> = TableDefinition::new("web_passwords");

/// Calls `$m!(TABLE)` for every table of the database, in a fixed order: `Db::open` creates them,
/// `db-backup` copies them and `db-restore` checks a copy against them.
macro_rules! for_each_table {
    ($m:ident) => {
        $m!(USERS);
        $m!(DEVICES);
        $m!(TOKENS);
        $m!(CHUNKS);
        $m!(USER_CHUNKS);
        $m!(PATHS);
        $m!(VERSIONS);
        $m!(RUNS);
        $m!(KEEP_OVERRIDES);
        $m!(REREAD);
        $m!(META);
        $m!(META_JSON);
        $m!(PENDING);
        $m!(PENDING_TOKENS);
        $m!(REENROLL);
        $m!(SKELETONS);
        $m!(DISABLED_USERS);
        $m!(REVOKED_TOKENS);
        $m!(REVOKED_DEVICES);
        $m!(DEVICE_SEEN);
        $m!(ADMINS);
        $m!(ADMIN_TOKENS);
        $m!(SESSIONS);
        $m!(AUDIT);
        $m!(WEB_LINKS);
        $m!(WEB_PASSWORDS);
    };
}
pub(super) use for_each_table;

/// [`META`]: the id the next user gets (ids start at 1).
pub(super) const NEXT_USER_ID: &str = "next_user_id";
/// [`META`]: the id the next device gets.
pub(super) const NEXT_DEVICE_ID: &str = "next_device_id";
/// [`META`]: the id the next pending registration gets.
pub(super) const NEXT_PENDING_ID: &str = "next_pending_id";
/// [`META`]: the id the next admin account gets.
pub(super) const NEXT_ADMIN_ID: &str = "next_admin_id";
/// [`META`]: the id the next audit entry gets.
pub(super) const NEXT_AUDIT_ID: &str = "next_audit_id";
/// [`META`]: 1 once user and device names were brought into normal form and [`SKELETONS`]
/// filled (see `enroll::migrate_names`).
pub(super) const NAMES_VERSION: &str = "names_version";
/// [`META`]: the id the next version gets.
pub(super) const NEXT_VERSION_ID: &str = "next_version_id";
/// [`META`]: the id the next run report gets.
pub(super) const NEXT_RUN_ID: &str = "next_run_id";
/// [`META`]: the time of the last commit (µs); commit times strictly increase even if the clock
/// goes back.
pub(super) const LAST_TIME_US: &str = "last_time_us";
/// [`META`]: the stored bytes of every chunk in the index, kept in step by upload records and GC.
pub(super) const STORED_BYTES: &str = "stored_bytes";

/// [`META`]: the schema version of the database (absent = 1, before issue 12). See the module docs.
pub(super) const SCHEMA_VERSION: &str = "schema_version";
/// The schema version this build writes and the newest it opens. 2: version records end in
/// [`RecExt`] (folders, metadata-only versions, [`EntryMeta`]).
pub const CURRENT_SCHEMA_VERSION: u64 = 2;

/// [`META_JSON`] key of the last GC result (the GC report as JSON; written by the GC when it ends).
pub const META_LAST_GC: &str = "last_gc";
/// [`META_JSON`] key of the last verify result (the verify report as JSON).
pub const META_LAST_VERIFY: &str = "last_verify";

/// [`META_JSON`] key of the registration setting made at run time (`registration set`): a
/// [`super::RegistrationSetting`] as JSON; absent = the configuration file's values apply.
pub const META_REGISTRATION: &str = "registration";

/// [`DEVICE_SEEN`] value. A record that does not decode (a newer shape) reads as absent: the
/// figure is informational.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenRec {
    pub last_seen_us: i64,
    /// The client address of that request (IP, no port).
    pub addr: String,
}

/// [`USERS`] value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRec {
    pub id: u64,
    pub created_us: i64,
}

/// [`DEVICES`] value.
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

/// [`PENDING`] value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRec {
    /// The device name it wants (new, or the name of an existing device it would take over).
    pub device: String,
    /// Its token: valid for `login` only (answering "pending") until it is approved.
    pub token_hash: [u8; 32],
    /// blake3 of the approval code (see `enroll::code_hash`).
    pub code_hash: [u8; 32],
    pub code_expires_us: i64,
    pub created_us: i64,
    pub os: String,
    pub os_version: String,
    pub agent_version: String,
}

/// [`REENROLL`] value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReenrollRec {
    /// blake3 of the re-enrollment code (see `enroll::code_hash`).
    pub code_hash: [u8; 32],
    pub expires_us: i64,
}

/// [`CHUNKS`] value.
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

/// [`PATHS`] value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PathRec {
    /// Version ids, oldest first.
    pub versions: Vec<u64>,
}

/// [`VERSIONS`] value. The statistics decode only its leading fields up to `size` (see
/// `stats.rs`): keep their order.
///
/// Three shapes exist on disk, told apart by where they end (see [`VersionRec::decode`]): V1
/// (up to `chunks`), V2 (plus `symlink_target`) and V3 (plus `ext`, schema version 2).
///
/// A folder version has size 0, no chunks and no hash (`hash: None`, like a deletion marker; it
/// is told from one by `deleted`). A symbolic link keeps its target in `symlink_target` (size 0,
/// no chunks, hash = blake3 of the target).
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
    /// `Some(target)` for a symbolic link.
    pub symlink_target: Option<Vec<u8>>,
    /// Kind, metadata-only flag and [`EntryMeta`] (schema version 2).
    pub ext: RecExt,
}

/// The versioned tail of a [`VersionRec`]. Postcard writes the variant index first, so a reader
/// knows the tail's format; a new format is a new variant (and a new schema version, so that an
/// older server refuses the database instead of failing on its records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecExt {
    V1(ExtV1),
}

/// [`RecExt`] format 1.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExtV1 {
    pub kind: RecKind,
    /// The version changed only metadata: its content equals the version before it (which is
    /// live), and retention does not count it as a content version (see `versions.rs`).
    pub meta_only: bool,
    pub meta: StoredMeta,
}

/// What a version (or, for a deletion marker, the path before it was deleted) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RecKind {
    #[default]
    File,
    Symlink,
    Dir,
}

/// [`EntryMeta`] as stored: the same fields without `skip_serializing_if` (which postcard, having
/// no field names, cannot read back), xattrs as plain byte pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoredMeta {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// (name, value), sorted by name as the commit bounds require.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub hardlink: Option<u64>,
    pub btime_ns: Option<i64>,
}

impl From<&EntryMeta> for StoredMeta {
    fn from(m: &EntryMeta) -> Self {
        StoredMeta {
            uid: m.uid,
            gid: m.gid,
            owner: m.owner.clone(),
            group: m.group.clone(),
            xattrs: m
                .xattrs
                .iter()
                .map(|x| (x.name.0.clone(), x.value.0.clone()))
                .collect(),
            hardlink: m.hardlink,
            btime_ns: m.btime_ns,
        }
    }
}

impl From<&StoredMeta> for EntryMeta {
    fn from(m: &StoredMeta) -> Self {
        EntryMeta {
            uid: m.uid,
            gid: m.gid,
            owner: m.owner.clone(),
            group: m.group.clone(),
            xattrs: m
                .xattrs
                .iter()
                .map(|(n, v)| Xattr {
                    name: Blob(n.clone()),
                    value: Blob(v.clone()),
                })
                .collect(),
            hardlink: m.hardlink,
            btime_ns: m.btime_ns,
        }
    }
}

impl RecExt {
    /// The tail of a version of `kind`.
    pub fn new(kind: RecKind, meta_only: bool, meta: StoredMeta) -> RecExt {
        RecExt::V1(ExtV1 {
            kind,
            meta_only,
            meta,
        })
    }

    /// What a record of the shapes before schema version 2 implies: a link if it has a target,
    /// else a file; content, metadata unknown.
    fn legacy(symlink: bool) -> RecExt {
        RecExt::new(
            if symlink {
                RecKind::Symlink
            } else {
                RecKind::File
            },
            false,
            StoredMeta::default(),
        )
    }
}

/// A [`VersionRec`] as written before folders and metadata (schema version 1): no `ext`.
#[derive(Deserialize)]
struct VersionRecV2 {
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
    symlink_target: Option<Vec<u8>>,
}

/// A [`VersionRec`] as written before symlink versions existed (no `symlink_target`).
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

impl From<VersionRecV1> for VersionRecV2 {
    fn from(v: VersionRecV1) -> Self {
        VersionRecV2 {
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
        }
    }
}

impl From<VersionRecV2> for VersionRec {
    fn from(v: VersionRecV2) -> Self {
        let ext = RecExt::legacy(v.symlink_target.is_some());
        VersionRec {
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
            symlink_target: v.symlink_target,
            ext,
        }
    }
}

impl VersionRec {
    fn ext_v1(&self) -> &ExtV1 {
        match &self.ext {
            RecExt::V1(e) => e,
        }
    }

    /// File, link or folder (for a deletion marker: what the path was before).
    pub fn kind(&self) -> RecKind {
        self.ext_v1().kind
    }

    /// A metadata-only version (see [`ExtV1::meta_only`]).
    pub fn meta_only(&self) -> bool {
        self.ext_v1().meta_only
    }

    /// Owner, xattrs, hard-link group, creation time (empty for versions from before them).
    pub fn meta(&self) -> &StoredMeta {
        &self.ext_v1().meta
    }

    /// A live folder version.
    pub fn is_dir(&self) -> bool {
        !self.deleted && self.kind() == RecKind::Dir
    }

    /// A version with content to read: not a marker, a link or a folder.
    pub fn has_content(&self) -> bool {
        !self.deleted && self.kind() == RecKind::File && self.symlink_target.is_none()
    }

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
            kind: match self.kind() {
                // A record of the old shapes, or a fuzzed one, may disagree with its target.
                _ if self.symlink_target.is_some() => VersionKind::Symlink,
                RecKind::Dir => VersionKind::Dir,
                RecKind::Symlink => VersionKind::Symlink,
                RecKind::File => VersionKind::File,
            },
            symlink_target: self.symlink_target.clone().map(RawPath),
            meta: self.meta().into(),
            meta_only: self.meta_only(),
        }
    }

    /// Decodes a stored version in any of its shapes. A shape with a field missing fails with an
    /// end-of-input error, so the newest shape is tried first and an older record (which ends
    /// where the newer field would start) is read with the shape before. Every shape must use up
    /// all the bytes: postcard itself ignores trailing bytes, so a newer record cut short inside
    /// its tail would otherwise read as an older shape, silently without its tail.
    pub fn decode(bytes: &[u8]) -> Result<VersionRec> {
        fn exact<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> postcard::Result<T> {
            match postcard::take_from_bytes::<T>(bytes)? {
                (v, []) => Ok(v),
                _ => Err(postcard::Error::DeserializeBadEncoding),
            }
        }
        let err = match exact::<VersionRec>(bytes) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if let Ok(v) = exact::<VersionRecV2>(bytes) {
            return Ok(v.into());
        }
        let v: VersionRecV1 = exact(bytes).map_err(|_| err)?;
        Ok(VersionRecV2::from(v).into())
    }
}
