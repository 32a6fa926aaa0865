//! What the last verify found wrong, for the admin console: the bad chunks' ids (the first
//! [`DAMAGE_LISTED`], with the total) and the affected versions counted per user and device:
//! never a path (the console shows no file names). Kept in the meta table after every run, so
//! the *Wartung* page shows it after a restart or a scheduled run too.

use asgard_core::ChunkId;
use serde::{Deserialize, Serialize};

use super::VerifyReport;
use crate::db::{Db, DbError};

/// The bad chunks listed at most.
pub const DAMAGE_LISTED: usize = 100;

/// `META_JSON` key of the last run's [`DamageList`].
pub(super) const META_LAST_VERIFY_DAMAGE: &str = "last_verify_damage";

/// How a chunk is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadKind {
    /// Its stored bytes do not decode or do not hash to its id.
    Damaged,
    /// The store lacks it.
    Missing,
    /// Retained versions referenced it but the index lacked it.
    Unindexed,
}

/// One bad chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadChunk {
    pub id: ChunkId,
    pub kind: BadKind,
}

/// The affected versions of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDamage {
    pub user: String,
    pub device: String,
    pub versions: u64,
}

/// What the last verify found (empty when it found nothing, or never ran).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DamageList {
    /// When that run started (µs); 0: no run recorded.
    pub started_us: i64,
    pub sample_percent: Option<f64>,
    /// The first [`DAMAGE_LISTED`] bad chunks: damaged, then missing, then unindexed.
    pub chunks: Vec<BadChunk>,
    /// Bad chunks the run found, in all.
    pub chunks_total: u64,
    /// Versions that reference a bad chunk, in all.
    pub affected_versions: u64,
    /// Those versions per user and device (exact counts), by user and device.
    pub devices: Vec<DeviceDamage>,
}

impl DamageList {
    /// The list of a finished run.
    pub fn of(r: &VerifyReport) -> DamageList {
        let kinds = r
            .damaged
            .iter()
            .map(|d| (d.id, BadKind::Damaged))
            .chain(r.missing.iter().map(|id| (*id, BadKind::Missing)))
            .chain(r.unindexed.iter().map(|id| (*id, BadKind::Unindexed)));
        DamageList {
            started_us: r.started_us,
            sample_percent: r.sample_percent,
            chunks: kinds
                .take(DAMAGE_LISTED)
                .map(|(id, kind)| BadChunk { id, kind })
                .collect(),
            chunks_total: r.damaged_count + r.missing_count + r.unindexed_count,
            affected_versions: r.affected_versions_count,
            devices: r.affected_by_device.clone(),
        }
    }

    /// Whether the run found anything wrong.
    pub fn is_empty(&self) -> bool {
        self.chunks_total == 0 && self.affected_versions == 0
    }

    /// Keeps it as the last run's list.
    ///
    /// # Errors
    /// The database's.
    pub fn save(&self, db: &Db) -> Result<(), DbError> {
        db.set_meta_json(META_LAST_VERIFY_DAMAGE, self)
    }

    /// The last run's list (empty when none was kept).
    ///
    /// # Errors
    /// The database's.
    pub fn last(db: &Db) -> Result<DamageList, DbError> {
        Ok(db
            .get_meta_json(META_LAST_VERIFY_DAMAGE)?
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::AffectedVersion;

    #[test]
    fn the_list_is_cut_at_100_keeps_the_totals_and_has_no_path() {
        let ids: Vec<ChunkId> = (0..150u32).map(|i| ChunkId::of(&i.to_le_bytes())).collect();
        let report = VerifyReport {
            missing: ids[1..].to_vec(),
            missing_count: 149,
            damaged: vec![super::super::DamagedChunk {
                id: ids[0],
                reason: "kaputt".into(),
            }],
            damaged_count: 1,
            affected_versions: vec![AffectedVersion {
                user: "anna".into(),
                device: "pc".into(),
                path: asgard_core::RawPath(b"/home/anna/geheim.txt".to_vec()),
                version_id: 7,
                chunks: vec![ids[0]],
            }],
            affected_versions_count: 1,
            affected_by_device: vec![DeviceDamage {
                user: "anna".into(),
                device: "pc".into(),
                versions: 1,
            }],
            ..VerifyReport::default()
        };
        let list = DamageList::of(&report);
        assert_eq!(list.chunks.len(), DAMAGE_LISTED);
        assert_eq!(list.chunks_total, 150);
        assert_eq!(list.chunks[0].kind, BadKind::Damaged);
        assert_eq!(list.chunks[1].kind, BadKind::Missing);
        assert_eq!(list.affected_versions, 1);
        let json = serde_json::to_string(&list).unwrap();
        assert!(
            !json.contains("geheim") && !json.contains("kaputt"),
            "{json}"
        );
        let console = serde_json::to_string(&report.without_paths()).unwrap();
        assert!(!console.contains("geheim"), "{console}");
        assert!(console.contains("\"paths_withheld\":true"), "{console}");
        assert!(DamageList::default().is_empty());
    }
}
