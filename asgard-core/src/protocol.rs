//! Every type that crosses the wire between agent and server (JSON bodies unless noted).
//!
//! | endpoint | request | answer |
//! | --- | --- | --- |
//! | `POST /api/login` | [`LoginRequest`] (+ `Authorization: Bearer` when the device has a token) | [`LoginResponse`] |
//! | `POST /api/devices/approve` | [`ApproveRequest`] | [`ApproveResponse`] |
//! | `POST /api/check` | [`CheckRequest`] | [`CheckResponse`] |
//! | `POST /api/upload` | `multipart/form-data`, one part per chunk: name = chunk id (hex), body = [`crate::stored`] form | [`UploadResponse`] |
//! | `POST /api/commit` | [`CommitRequest`]: entries of kind `file`, `symlink`, `dir` or `deleted` ([`CommitEntry`]) | [`CommitResponse`], or 409 [`ErrorBody`] with `missing` |
//! | `GET /api/list` | query [`ListQuery`] | [`ListResponse`]; each version has a `kind` (`file`, `symlink` with `symlink_target`, or `dir`) and its [`EntryMeta`] |
//! | `POST /api/restore` | [`RestoreRequest`] | the plaintext (`application/octet-stream`, `Range` supported); 400 for a symlink or folder version (all they hold is in the listing) |
//! | `GET /api/chunks/{id}` | – | one chunk in stored form |
//! | `POST /api/manifest` | [`ManifestRequest`] | [`ManifestResponse`]: the chunk lists of the caller's own versions |
//! | `POST /api/fetch` | [`FetchRequest`] | `application/octet-stream`: one frame per requested chunk, in order (format in [`crate::frames`]); 404 if the user may not read one of them |
//! | `POST /api/runs` | [`RunReport`] | [`RunAccepted`] |
//! | `GET /api/runs` | query [`RunsQuery`] | [`RunList`] (the calling device's runs, newest first) |
//!
//! Every error is an [`ErrorBody`] with a stable machine `code` and a human message.
//! Times are microseconds since the Unix epoch (UTC) on the wire; file mtimes are nanoseconds.

use serde::{Deserialize, Serialize};

pub use crate::meta::{Blob, EntryMeta, Xattr};
use crate::{ChunkId, ChunkParams, RawPath};

/// The protocol version this build speaks. Version 2 (issue 12) added folder entries
/// ([`CommitEntry::Dir`]), [`EntryMeta`] on every entry and version, metadata-only versions
/// ([`VersionInfo::meta_only`]). A server accepts every version from [`MIN_PROTOCOL_VERSION`] to
/// its own (new fields are optional in JSON, so an older agent's requests read unchanged) and
/// refuses a newer one; an agent refuses a server that answers with an older one when it needs
/// the newer fields.
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest protocol version a server of this build accepts.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// At most this many ids in one `check` request.
pub const MAX_CHECK_IDS: usize = 10_000;
/// At most this many paths in [`LoginResponse::reread`].
pub const MAX_REREAD_PATHS: usize = 10_000;
/// At most this many entries in one `commit` request.
pub const MAX_COMMIT_ENTRIES: usize = 2_000;
/// Header with the version id of a restore answer.
pub const HEADER_VERSION_ID: &str = "x-asgard-version";
/// Header with the whole-file blake3 of a restore answer.
pub const HEADER_FILE_HASH: &str = "x-asgard-hash";

/// `POST /api/login`: register a device (first contact) or authenticate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub protocol_version: u32,
    /// The logged-in user (`USER` / `USERNAME`).
    pub user: String,
    /// The device name (hostname).
    pub device: String,
    /// `linux`, `windows`, ...
    pub os: String,
    pub os_version: String,
    pub agent_version: String,
    /// Required when the server has an enrollment key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_key: Option<String>,
    /// The one-time re-enrollment code the admin handed out after `device reset`: with it, a
    /// login without a token gets the device (and its files) back. Absent from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Whether a device may back up yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Active,
    /// Registered, waiting for an admin or an active device of the same user to approve it.
    Pending,
}

/// Answer to a login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub user: String,
    pub device: String,
    /// The device token, only in the answer that registered the device: it is shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub status: DeviceStatus,
    pub server_version: String,
    pub keep_versions: u32,
    /// Paths of this device whose retained versions reference a chunk that the server's verify
    /// found damaged or missing. The agent re-reads them in this run even when its files cache
    /// says they are unchanged: `check` then asks for the bad chunks, and the upload heals them.
    /// At most [`MAX_REREAD_PATHS`]; the rest follow in later runs as these heal. Absent from
    /// older servers (empty), ignored by older agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reread: Vec<RawPath>,
    /// More paths need re-reading than `reread` holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reread_truncated: bool,
    /// For a pending further device of a user: the short code (`K7MQ-4XTD`) that an active device
    /// of the same user confirms with `asgard-agent device approve CODE`. Sent when the
    /// registration is made and again when the previous code expired; ignored by older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_code: Option<String>,
    /// Until when (µs since the epoch) `approval_code` is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires_us: Option<i64>,
}

/// `POST /api/devices/approve` (an active device): confirm a pending device of the same user by
/// the code it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveRequest {
    pub code: String,
}

/// Answer to an approval: the device that is active now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveResponse {
    pub device: String,
}

/// `POST /api/check`: which of these chunks must this user upload?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRequest {
    pub chunks: Vec<ChunkId>,
}

/// The chunks of the request that the user does not own yet, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResponse {
    pub missing: Vec<ChunkId>,
}

/// Answer to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UploadResponse {
    /// Chunks received and verified.
    pub received: u32,
    /// Chunks the store did not have before (the others were verified and only recorded).
    pub new_chunks: u32,
    /// Stored bytes that the new chunks added to the store.
    pub new_bytes: u64,
}

/// One chunk of a file version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub id: ChunkId,
    /// Plaintext length.
    pub len: u32,
}

/// A file's content and metadata at backup time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Unix mode bits (0 where unknown).
    #[serde(default)]
    pub mode: u32,
    /// Windows file attributes (0 where unknown).
    #[serde(default)]
    pub attributes: u32,
    /// blake3 of the whole content.
    pub hash: ChunkId,
    /// The parameters the file was cut with.
    pub params: ChunkParams,
    /// The chunks in order; their lengths add up to `size`.
    pub chunks: Vec<ChunkRef>,
    /// Owner, extended attributes, hard-link group, creation time (protocol 2; absent: unknown).
    #[serde(default, skip_serializing_if = "EntryMeta::is_empty")]
    pub ext: EntryMeta,
}

impl FileMeta {
    /// The sum of the chunk lengths equals the size.
    pub fn lengths_add_up(&self) -> bool {
        self.chunks.iter().map(|c| u64::from(c.len)).sum::<u64>() == self.size
    }
}

/// One entry of a commit: a new file version, a symbolic link, a folder, or a deletion marker.
///
/// An entry whose content (hash and size, the link target; a folder has none) equals the newest
/// version's but whose metadata (mtime, mode, attributes, [`EntryMeta`]) differs is stored as a
/// metadata-only version: it does not count against `keep_versions` (see the server's retention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommitEntry {
    File {
        path: RawPath,
        meta: FileMeta,
    },
    /// A symbolic link, stored as its target (never followed). The target is kept byte for byte,
    /// relative or absolute, exactly as the link holds it.
    Symlink {
        path: RawPath,
        target: RawPath,
        /// The link's own modification time, nanoseconds since the Unix epoch.
        mtime_ns: i64,
        /// The link's owner (protocol 2; absent: unknown).
        #[serde(default, skip_serializing_if = "EntryMeta::is_empty")]
        meta: EntryMeta,
    },
    /// A folder (protocol 2): recorded so that empty folders come back and each folder gets its
    /// mode, owner, times and attributes back after its contents are restored.
    Dir {
        path: RawPath,
        /// Nanoseconds since the Unix epoch.
        mtime_ns: i64,
        /// Unix mode bits, setuid/setgid/sticky included (0 where unknown).
        #[serde(default)]
        mode: u32,
        /// Windows file attributes (0 where unknown).
        #[serde(default)]
        attributes: u32,
        #[serde(default, skip_serializing_if = "EntryMeta::is_empty")]
        meta: EntryMeta,
    },
    /// A deletion marker: the path (file, link or folder) is gone.
    Deleted {
        path: RawPath,
    },
}

impl CommitEntry {
    pub fn path(&self) -> &RawPath {
        match self {
            CommitEntry::File { path, .. }
            | CommitEntry::Symlink { path, .. }
            | CommitEntry::Dir { path, .. }
            | CommitEntry::Deleted { path } => path,
        }
    }
}

/// The content hash recorded for a symbolic link: blake3 of its target bytes. A link whose target
/// is unchanged is a version whose hash is unchanged.
pub fn symlink_hash(target: &RawPath) -> ChunkId {
    ChunkId::of(&target.0)
}

/// `POST /api/commit`: versions for the calling device. All or nothing: if any referenced chunk is
/// missing, nothing is committed and the answer (409) lists the missing ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRequest {
    pub entries: Vec<CommitEntry>,
}

/// What a commit entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitOutcome {
    /// The first version of a path that had none (or only a deletion marker) was stored.
    New,
    /// A new version of a path with a retained version was stored.
    Changed,
    /// The content equals the newest version: no new version.
    Unchanged,
    /// A deletion marker was stored.
    Deleted,
    /// The path was already marked deleted (or never existed): nothing changed.
    AlreadyDeleted,
}

/// Result for one commit entry, in request order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResult {
    /// A metadata-only version (see [`CommitEntry`]) is reported as `changed` with `meta_only`.
    pub outcome: CommitOutcome,
    /// The new version changed only metadata (protocol 2; absent = false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub meta_only: bool,
    /// The version this path now has as newest (the new one, or the unchanged one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResponse {
    pub results: Vec<CommitResult>,
    /// Versions dropped by retention in this commit.
    pub pruned_versions: u32,
}

/// The most paths one `list` page holds.
pub const MAX_LIST_LIMIT: u32 = 5000;

/// `GET /api/list` query.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListQuery {
    /// Device name; the calling device when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// List the paths of every device of the user (overrides `device`).
    #[serde(default)]
    pub all_devices: bool,
    /// Only the path itself and paths below it (hex of the [`RawPath`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_hex: Option<String>,
    /// Only versions committed at or before this time (µs since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_us: Option<i64>,
    /// Continue after this cursor (from the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Paths per page (server default 1000, at most [`MAX_LIST_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// What a version holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionKind {
    /// A regular file's content (also the kind of a deletion marker of a file).
    #[default]
    File,
    /// A symbolic link: see `symlink_target`.
    Symlink,
    /// A folder (protocol 2).
    Dir,
}

/// One retained version of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub id: u64,
    /// Server time of the commit, µs since epoch.
    pub time_us: i64,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    pub attributes: u32,
    /// Whole-file blake3; absent for a deletion marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<ChunkId>,
    pub deleted: bool,
    /// `file` (the default, also for old servers that do not send it) or `symlink`.
    #[serde(default)]
    pub kind: VersionKind,
    /// The link target of a `symlink` version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<RawPath>,
    /// Owner, extended attributes, hard-link group, creation time (protocol 2; absent: unknown,
    /// as for every version committed before them).
    #[serde(default, skip_serializing_if = "EntryMeta::is_empty")]
    pub meta: EntryMeta,
    /// This version changed only metadata: its content equals the version before it, and it does
    /// not count against `keep_versions` (protocol 2; absent = false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub meta_only: bool,
}

/// A path and its retained versions, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: RawPath,
    pub device: String,
    pub versions: Vec<VersionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResponse {
    pub files: Vec<FileEntry>,
    /// Present when more paths follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /api/restore`: one version, by id or by (device, path, time).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RestoreRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<RawPath>,
    /// The newest version at or before this time (µs); the newest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_us: Option<i64>,
}

/// At most this many version ids in one [`ManifestRequest`].
pub const MAX_MANIFEST_IDS: usize = 1_000;
/// At most this many chunk ids in one [`FetchRequest`].
pub const MAX_FETCH_IDS: usize = 4_096;

/// `POST /api/manifest`: the chunk lists of these versions (of the calling user, any device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRequest {
    pub version_ids: Vec<u64>,
}

/// The content of one file version: its chunks in order (their lengths add up to `size`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionManifest {
    pub id: u64,
    pub size: u64,
    /// The parameters the file was cut with.
    pub params: ChunkParams,
    pub chunks: Vec<ChunkRef>,
}

/// Answer to a manifest request, in request order. Ids that are not the user's, no longer
/// retained, deletion markers or symbolic links are listed in `missing` (another user's version
/// looks exactly like one that does not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestResponse {
    pub versions: Vec<VersionManifest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<u64>,
}

/// `POST /api/fetch`: these chunks in stored form (at most [`MAX_FETCH_IDS`]), each of which a
/// retained version of the user references (the rule of `GET /api/chunks/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    pub chunks: Vec<ChunkId>,
}

/// At most this many error strings in one [`RunReport`].
pub const MAX_RUN_ERRORS: usize = 100;
/// At most this many bytes in one error string of a [`RunReport`] (and in `agent_version`).
pub const MAX_RUN_TEXT: usize = 2_000;

/// The counters of one backup run: what `backup --json` prints and what a [`RunReport`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RunSummary {
    /// Regular files found in the roots.
    pub files_seen: u64,
    /// Paths that got their first version.
    pub files_new: u64,
    /// Paths that got a new version.
    pub files_changed: u64,
    /// Files whose content equals their newest version.
    pub files_unchanged: u64,
    /// Deletion markers committed.
    pub files_deleted: u64,
    /// Files not backed up (unreadable, not regular, changing while read).
    pub files_skipped: u64,
    /// File content read from disk.
    pub bytes_read: u64,
    /// Stored (compressed) chunk bytes uploaded.
    pub bytes_sent: u64,
    /// Stored bytes the server had to add.
    pub bytes_new: u64,
    pub versions_created: u64,
    pub duration_s: f64,
}

/// `POST /api/runs`: how one agent run went. Sent at the end of every run, failed runs included,
/// so the server knows when a device last backed up and what went wrong.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunReport {
    /// Agent clock, µs since epoch (the server also records its own receive time).
    pub started_us: i64,
    pub finished_us: i64,
    pub agent_version: String,
    /// The agent's exit code: 0 done, 1 failed, 3 done but some files could not be read.
    pub exit_code: u8,
    #[serde(flatten)]
    pub summary: RunSummary,
    /// The first [`MAX_RUN_ERRORS`] errors and warnings, each at most [`MAX_RUN_TEXT`] bytes.
    #[serde(default)]
    pub errors: Vec<String>,
}

/// Answer to `POST /api/runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAccepted {
    /// The server's id of the stored run.
    pub id: u64,
}

/// `GET /api/runs` query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunsQuery {
    /// At most this many runs (server default and maximum: all it keeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One stored run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: u64,
    /// Server time the report arrived, µs since epoch.
    pub received_us: i64,
    pub report: RunReport,
}

/// Answer to `GET /api/runs`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunList {
    pub runs: Vec<RunInfo>,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `unauthorized`, `missing_chunks`, `device_exists`.
    pub code: String,
    /// Human-readable message in the server's language.
    pub message: String,
    /// For `missing_chunks`: the ids the server lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<ChunkId>,
}

// --- Issue 14 (uauth): the way into the browser for end users -------------------------------

/// Answer of `POST /api/web-link`: a one-time login link of the calling device's user, valid
/// for 10 minutes. `path` is `/link/` and the secret; the agent joins it to its own server URL,
/// unless the server has a configured public URL (`url`, the whole link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebLinkResponse {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub expires_us: i64,
}

/// Body of `POST /api/web-password`: the user's new web password (for `/login`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebPasswordRequest {
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `reread` is optional both ways: an old server's answer (without it) reads as "nothing to
    /// re-read", and an answer without paths looks exactly like an old one to an old agent.
    #[test]
    fn login_response_reread_is_compatible_with_old_peers() {
        let old = r#"{"user":"u","device":"d","status":"active","server_version":"0.1.0","keep_versions":4}"#;
        let r: LoginResponse = serde_json::from_str(old).unwrap();
        assert!(r.reread.is_empty() && !r.reread_truncated);
        assert_eq!(serde_json::to_string(&r).unwrap(), old);
        let r = LoginResponse {
            reread: vec![RawPath::from("/a")],
            ..r
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""reread":["/a"]"#), "{json}");
        assert_eq!(serde_json::from_str::<LoginResponse>(&json).unwrap(), r);
    }

    /// An old agent's login (no `code`) still reads, and an answer without an approval code looks
    /// exactly like an old one; a new agent's request without a code looks like an old one.
    #[test]
    fn login_enrollment_fields_are_compatible_with_old_peers() {
        let old = r#"{"protocol_version":1,"user":"u","device":"d","os":"linux","os_version":"6","agent_version":"0.1"}"#;
        let r: LoginRequest = serde_json::from_str(old).unwrap();
        assert_eq!(r.code, None);
        assert_eq!(serde_json::to_string(&r).unwrap(), old);
        let answer = r#"{"user":"u","device":"d","status":"pending","server_version":"0.1.0","keep_versions":4}"#;
        let a: LoginResponse = serde_json::from_str(answer).unwrap();
        assert_eq!(
            (a.approval_code.as_deref(), a.approval_expires_us),
            (None, None)
        );
        assert_eq!(serde_json::to_string(&a).unwrap(), answer);
        let with = LoginResponse {
            approval_code: Some("K7MQ-4XTD".into()),
            approval_expires_us: Some(5),
            ..a
        };
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains(r#""approval_code":"K7MQ-4XTD""#), "{json}");
        assert_eq!(serde_json::from_str::<LoginResponse>(&json).unwrap(), with);
    }

    #[test]
    fn commit_entry_json_shape() {
        let e = CommitEntry::Deleted {
            path: RawPath::from("/a"),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"deleted","path":"/a"}"#
        );
        let meta = FileMeta {
            size: 3,
            mtime_ns: 1,
            mode: 0o644,
            attributes: 0,
            hash: ChunkId::of(b"abc"),
            params: ChunkParams::default(),
            chunks: vec![ChunkRef {
                id: ChunkId::of(b"abc"),
                len: 3,
            }],
            ext: EntryMeta::default(),
        };
        // Without metadata, a file entry looks exactly like protocol 1's.
        assert!(!serde_json::to_string(&meta).unwrap().contains("ext"));
        assert!(meta.lengths_add_up());
        let e = CommitEntry::File {
            path: RawPath(b"/caf\xe9".to_vec()),
            meta,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<CommitEntry>(&json).unwrap(), e);
        let e = CommitEntry::Symlink {
            path: RawPath::from("/l"),
            target: RawPath::from("../t"),
            mtime_ns: 5,
            meta: EntryMeta::default(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"symlink","path":"/l","target":"../t","mtime_ns":5}"#
        );
        let e = CommitEntry::Dir {
            path: RawPath::from("/d"),
            mtime_ns: 7,
            mode: 0o40750,
            attributes: 0,
            meta: EntryMeta {
                uid: Some(0),
                owner: Some("root".into()),
                ..EntryMeta::default()
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"dir","path":"/d","mtime_ns":7,"mode":16872,"attributes":0,"meta":{"uid":0,"owner":"root"}}"#
        );
        assert_eq!(serde_json::from_str::<CommitEntry>(&json).unwrap(), e);
    }

    /// A protocol-1 commit result and version still read; a metadata-only flag that is false is
    /// not sent.
    #[test]
    fn protocol_1_results_and_versions_read() {
        let r: CommitResult =
            serde_json::from_str(r#"{"outcome":"changed","version_id":3}"#).unwrap();
        assert!(!r.meta_only);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"outcome":"changed","version_id":3}"#
        );
        let v: VersionInfo = serde_json::from_str(
            r#"{"id":1,"time_us":2,"size":0,"mtime_ns":0,"mode":0,"attributes":0,"deleted":false,"kind":"symlink","symlink_target":"x"}"#,
        )
        .unwrap();
        assert!(v.meta.is_empty() && !v.meta_only);
    }

    #[test]
    fn version_kind_defaults_to_file() {
        let json =
            r#"{"id":1,"time_us":2,"size":0,"mtime_ns":0,"mode":0,"attributes":0,"deleted":false}"#;
        let v: VersionInfo = serde_json::from_str(json).unwrap();
        assert_eq!(v.kind, VersionKind::File);
        assert_eq!(v.symlink_target, None);
    }

    #[test]
    fn run_report_is_flat_json_and_round_trips() {
        let r = RunReport {
            started_us: 1,
            finished_us: 2,
            agent_version: "0.1.0".into(),
            exit_code: 3,
            summary: RunSummary {
                files_seen: 10,
                bytes_read: 99,
                duration_s: 1.5,
                ..RunSummary::default()
            },
            errors: vec!["x".into()],
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["files_seen"], 10);
        assert_eq!(v["bytes_read"], 99);
        assert_eq!(v["exit_code"], 3);
        assert_eq!(serde_json::from_value::<RunReport>(v).unwrap(), r);
    }
}
