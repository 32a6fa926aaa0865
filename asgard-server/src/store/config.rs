//! The `store:` section of the server configuration, and [`open`], which builds the chunk store
//! it describes. (It lives here, not in `config.rs`, so that the configuration depends on the
//! store and not the other way round.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ChunkStore, PackedOptions, PackedStore, StoreError};

/// Which backend keeps the chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Segments on the local file system (default).
    #[default]
    Local,
}

/// The chunk store: `store:` in the configuration file. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The backend. Default `local`.
    pub kind: StoreKind,
    /// The folder of a `local` store (segments in `packs/`, the index `index.redb`). Default
    /// `<data_dir>/chunks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Target size of a segment in bytes (chunks are packed into append-only segments). Default
    /// 64 MiB (67108864), at least 4096.
    pub segment_size: u64,
    /// A sealed segment whose live share (bytes of chunks still stored) falls below this many
    /// percent is compacted by the garbage collection. Default 50; 0 turns compaction off.
    pub compact_below_percent: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Local,
            path: None,
            segment_size: 64 << 20,
            compact_below_percent: 50,
        }
    }
}

impl StoreConfig {
    /// The tuning of the packed store.
    pub fn packed_options(&self) -> PackedOptions {
        PackedOptions {
            segment_size: self.segment_size,
            ..PackedOptions::default()
        }
    }

    /// The folder of a `local` store: `path`, else `<data_dir>/chunks`.
    pub fn local_path(&self, data_dir: &Path) -> PathBuf {
        self.path.clone().unwrap_or_else(|| data_dir.join("chunks"))
    }
}

/// Opens the packed store the configuration describes (the caller holds the data directory
/// lock): crash repair and the import of per-file chunks happen here.
///
/// # Errors
/// [`StoreError`] when the store cannot be opened or repaired.
pub fn open_packed(config: &StoreConfig, data_dir: &Path) -> Result<PackedStore, StoreError> {
    match config.kind {
        StoreKind::Local => {
            PackedStore::open(&config.local_path(data_dir), config.packed_options())
        }
    }
}

/// Opens the chunk store the configuration describes; see [`open_packed`].
///
/// # Errors
/// [`StoreError`] when the store cannot be opened or repaired.
pub fn open(config: &StoreConfig, data_dir: &Path) -> Result<Arc<dyn ChunkStore>, StoreError> {
    Ok(Arc::new(open_packed(config, data_dir)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgard_core::ChunkId;

    /// `local` keeps its segments below `<data_dir>/chunks` unless a path is given.
    #[test]
    fn open_chooses_the_local_folder() {
        let dir = tempfile::tempdir().unwrap();
        let id = ChunkId::of(b"x");
        let s = open(&StoreConfig::default(), dir.path()).unwrap();
        s.put(&id, b"\x00x").unwrap();
        let at = s.locate(&id).unwrap().unwrap();
        assert!(
            at.path
                .as_str()
                .starts_with(&dir.path().join("chunks/packs/").display().to_string())
        );
        drop(s);
        let config = StoreConfig {
            path: Some(dir.path().join("elsewhere")),
            ..StoreConfig::default()
        };
        let s = open(&config, dir.path()).unwrap();
        assert!(!s.exists(&id).unwrap());
        s.put(&id, b"\x00x").unwrap();
        assert!(dir.path().join("elsewhere/index.redb").is_file());
    }
}
