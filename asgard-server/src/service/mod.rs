//! What the API does, without HTTP: the logic that the actix handlers in `crate::api` (and the
//! web pages to come) share. A handler parses the request, authorises the device, calls one
//! function here (through `api::blocking`, since everything here is synchronous and does I/O) and
//! turns the result or the [`ServiceError`] into an answer.
//!
//! - `login`: login, with the list of files an authenticated device must re-read;
//! - `bounds`: the configured limits, checked before anything else;
//! - [`ingest`]: `check`, the upload of chunks (verify, dedupe, heal, store, record) and `commit`;
//! - `read`: restore of one version as verified plaintext (with ranges), the manifests of many
//!   versions, chunks in stored form for `fetch`, and the `chunks_served` counter;
//! - `webauth`: the admin console's logins, second factor, sessions, API tokens and audit log.
//!
//! Nothing here knows actix-web; the database and the store are passed in.

pub mod bounds;
pub mod ingest;
pub(crate) mod login;
pub(crate) mod read;
pub(crate) mod webauth;
// udown: downloads in the browser (issue 14).
pub(crate) mod download;
pub mod zipstream;

use asgard_core::ChunkId;

use crate::db::DbError;
use crate::store::StoreError;

/// Why a service call failed. `crate::api` maps each variant to the status code and error code
/// the protocol defines; the request-caused ones are permanent (sending the same again fails the
/// same way), `Db`, `Store` and `Internal` are server-side and may be temporary.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The metadata database refused or failed (its own variants say which).
    #[error(transparent)]
    Db(#[from] DbError),
    /// The chunk store failed (I/O, network); details are for the server log.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request breaks a bound of the protocol or names nothing to act on.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// An uploaded chunk's content does not hash to its claimed id.
    #[error("chunk {0}: the content does not match the id")]
    ChunkHashMismatch(ChunkId),
    /// An uploaded chunk decodes to more than the largest chunk.
    #[error("chunk {0} is too large")]
    ChunkTooLarge(ChunkId),
    /// An uploaded chunk cannot be decoded.
    #[error("chunk {0} is corrupt: {1}")]
    ChunkCorrupt(ChunkId, String),
    /// The request is over one of the configured limits (the error names field, limit and size).
    #[error(transparent)]
    Limit(#[from] bounds::Exceeded),
    /// A commit entry is malformed (the text names the path and the fault).
    #[error("bad entry: {0}")]
    BadEntry(String),
    /// The version or chunk does not exist or belongs to another user (which look the same).
    #[error("not found")]
    NotFound,
    /// The requested range lies outside the file of this size.
    #[error("range not satisfiable (size {0})")]
    RangeNotSatisfiable(u64),
    /// A stored chunk does not decode or verify against its id: the store holds damaged bytes.
    #[error("stored chunk {id} is damaged: {detail}")]
    Damaged { id: ChunkId, detail: String },
    /// Any other server-side failure.
    #[error("{0}")]
    Internal(String),
}
