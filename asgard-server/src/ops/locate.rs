//! Where chunks are stored, for admins and tests (`asgard-server locate`).

use asgard_core::ChunkId;
use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::store::{ChunkLocation, ChunkStore};

/// One chunk of a [`LocateReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Located {
    pub id: String,
    #[serde(flatten)]
    pub location: ChunkLocation,
}

/// The result of [`locate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LocateReport {
    pub count: u64,
    pub chunks: Vec<Located>,
    /// Given ids the store does not have.
    pub missing: Vec<String>,
}

/// The locations of `ids` (hex), or of every chunk when `ids` is empty.
///
/// # Errors
/// [`OpsError::BadChunkId`] for an id that is not 64 hex digits (before any lookup); store errors.
pub(crate) fn locate(store: &dyn ChunkStore, ids: &[String]) -> Result<LocateReport, OpsError> {
    let mut wanted = Vec::new();
    for hex in ids {
        let id: ChunkId = hex.parse().map_err(|_| OpsError::BadChunkId(hex.clone()))?;
        wanted.push(id);
    }
    if wanted.is_empty() {
        for id in store.list()? {
            wanted.push(id?);
        }
    }
    let mut report = LocateReport::default();
    for id in wanted {
        match store.locate(&id)? {
            Some(location) => report.chunks.push(Located {
                id: id.to_hex(),
                location,
            }),
            None => report.missing.push(id.to_hex()),
        }
    }
    report.count = report.chunks.len() as u64;
    Ok(report)
}
