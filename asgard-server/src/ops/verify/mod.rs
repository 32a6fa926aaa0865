//! # Verify: re-read the stored chunks and check every reference
//!
//! Invariant 1 says every chunk referenced by a retained version is in the store and hashes to
//! its id. Disks rot, admins delete files and bugs happen, so verify checks it after the fact, in
//! two walks, each in bounded batches (one read transaction per batch, never the whole index or
//! all versions in memory):
//!
//! 1. **Chunks.** Walk the chunk index (or the chunks one user owns); for every chunk in the
//!    sample, and for every chunk already marked bad, read the stored bytes, decode them with the
//!    size bound and compare their blake3 with the id. A chunk whose bytes are absent is
//!    *missing*, one whose bytes fail is *damaged*; both get `bad_since_us`. A chunk marked bad
//!    whose bytes verify again (an admin put the file back, or a heal raced with the mark) loses
//!    the mark.
//! 2. **References.** Walk the retained versions (or one user's) and look every chunk reference
//!    up in the index. A reference to a chunk marked bad makes the version *affected*; one to a
//!    chunk the index lacks is recorded as a bad index entry again (with the counted refcount, so
//!    that GC keeps it), so that it heals like any other bad chunk. Affected paths are remembered
//!    for the agents' logins.
//!
//! Healing (not here): `check` reports a bad chunk as missing to each owner, the login answer
//! names the device's affected paths so that the agent re-reads them despite its files cache,
//! and the upload handler replaces the stored bytes of a bad chunk with verified ones and clears
//! the mark. Verify lists affected versions until that happened.
//!
//! Marks are set and cleared in a write transaction that reads the chunk once more, so a heal
//! racing with verify never leaves a good chunk marked (see [`Db::set_bad_marks`]). A crash in
//! the middle leaves the marks of the batches done so far, which are all true. Runs in one
//! process are serialised; a second run while one is going fails with
//! [`VerifyError::AlreadyRunning`].

mod damage;

pub use damage::{BadChunk, BadKind, DAMAGE_LISTED, DamageList, DeviceDamage};

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use asgard_core::ChunkId;
use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::stored;
use serde::Serialize;

use crate::db::{AffectedVersion, ChunkBatchItem, Db, DbError, VerifySummary, VersionBatch};
use crate::store::{ChunkStore, StoreError};

/// Lists in the report are cut at this length (the counts stay exact).
pub const LIST_CAP: usize = 10_000;

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Percentage of chunks whose bytes are read (0 < p ≤ 100); `None` reads every chunk. Chunks
    /// marked bad are always read.
    pub sample_percent: Option<f64>,
    /// Limit the run to the chunks one user owns and the versions of that user.
    pub user: Option<String>,
    /// Seed of the sample; `None` draws a random one, so each run reads another sample.
    pub seed: Option<u64>,
    /// Index entries (and versions or paths) per batch.
    pub batch: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            sample_percent: None,
            user: None,
            seed: None,
            batch: 1000,
        }
    }
}

/// Why verify could not run to its end. Damage found is not an error: it is in the report.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("unknown user {0}")]
    UnknownUser(String),
    #[error("a verify run is already in progress")]
    AlreadyRunning,
    #[error("sample percentage {0} is not between 0 (exclusive) and 100")]
    BadSample(f64),
}

/// A chunk whose stored bytes failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedChunk {
    pub id: ChunkId,
    pub reason: String,
}

/// The result of a run. Lists are cut at [`LIST_CAP`]; counts are exact.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub started_us: i64,
    pub duration_ms: u64,
    /// `None` = every chunk read.
    pub sample_percent: Option<f64>,
    pub user: Option<String>,
    /// Index entries looked at (all, or the user's).
    pub chunks_in_scope: u64,
    /// Chunks whose bytes were read and checked.
    pub chunks_checked: u64,
    pub bytes_checked: u64,
    pub versions_checked: u64,
    pub references_checked: u64,
    /// Chunks whose stored bytes do not decode or do not hash to their id.
    pub damaged: Vec<DamagedChunk>,
    pub damaged_count: u64,
    /// Chunks the index has but the store lacks.
    pub missing: Vec<ChunkId>,
    pub missing_count: u64,
    /// Chunks that retained versions reference but the index lacked (recorded again as bad).
    pub unindexed: Vec<ChunkId>,
    pub unindexed_count: u64,
    /// Bad marks cleared because the bytes verify again.
    pub marks_cleared: u64,
    /// Chunks in scope marked bad at the end of the run (damaged + missing + unindexed).
    pub bad_chunks: u64,
    /// Of those, chunks no retained version references (refcount 0): nothing committed is lost,
    /// GC removes them; they do not make the run fail.
    pub unreferenced_bad: u64,
    /// File versions that reference a bad chunk, until healed.
    pub affected_versions: Vec<AffectedVersion>,
    pub affected_versions_count: u64,
    /// The affected versions counted per user and device (exact, by user and device).
    pub affected_by_device: Vec<DeviceDamage>,
    /// The paths of [`VerifyReport::affected_versions`] were left out (the admin console's
    /// form, see [`VerifyReport::without_paths`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paths_withheld: bool,
}

impl VerifyReport {
    /// True when every retained version is intact: exit code 0. Damage to chunks that nothing
    /// references is reported but does not count.
    pub fn clean(&self) -> bool {
        self.bad_chunks == self.unreferenced_bad && self.affected_versions_count == 0
    }

    /// The report without file names, for the admin console (which shows none): the affected
    /// versions only as counts per user and device.
    pub fn without_paths(&self) -> VerifyReport {
        VerifyReport {
            affected_versions: Vec::new(),
            paths_withheld: true,
            ..self.clone()
        }
    }
}

/// The databases (by address) that a verify run is working on in this process.
static RUNNING: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// One run per database at a time: the periodic run of `serve` and one asked for by the admin
/// must not mark the same chunks twice or count references twice.
struct RunGuard(usize);

impl RunGuard {
    fn take(db: &Db) -> Result<RunGuard, VerifyError> {
        let key = std::ptr::from_ref(db) as usize;
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        if running.contains(&key) {
            return Err(VerifyError::AlreadyRunning);
        }
        running.push(key);
        Ok(RunGuard(key))
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k| *k != self.0);
    }
}

/// Whether the sample with `seed` and `percent` takes `id`. Ids are blake3 hashes, so their
/// first 8 bytes are uniform; XOR with the seed and a bijective mixer (the splitmix64 finaliser,
/// so that every seed bit moves every output bit) keep them uniform and pick another sample for
/// every seed.
pub fn in_sample(id: &ChunkId, percent: f64, seed: u64) -> bool {
    let mut x = u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes")) ^ seed;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let limit = (percent / 100.0 * 18_446_744_073_709_551_616.0) as u128;
    u128::from(x) < limit
}

/// What reading one chunk found.
enum ChunkState {
    Good(u64),
    Missing,
    Damaged(String),
}

fn read_chunk(store: &dyn ChunkStore, id: &ChunkId) -> ChunkState {
    match store.get(id) {
        Ok(bytes) => match stored::decode_verified(&bytes, id, MAX_CHUNK_SIZE as usize) {
            Ok(_) => ChunkState::Good(bytes.len() as u64),
            Err(e) => ChunkState::Damaged(e.to_string()),
        },
        Err(StoreError::NotFound { .. }) => ChunkState::Missing,
        Err(e) => ChunkState::Damaged(e.to_string()),
    }
}

fn push_capped<T>(list: &mut Vec<T>, item: T) {
    if list.len() < LIST_CAP {
        list.push(item);
    }
}

/// Runs verify over `db` and `store` (see the module docs) and records the result in the meta
/// table. `now_us` is the time stamped on new bad marks and the summary.
///
/// # Errors
/// [`VerifyError`] when the run could not finish (database errors, unknown user, another run in
/// progress); the marks set before stay (they are true).
pub fn run(
    db: &Db,
    store: &dyn ChunkStore,
    opts: &VerifyOptions,
    now_us: i64,
) -> Result<VerifyReport, VerifyError> {
    let _running = RunGuard::take(db)?;
    if let Some(p) = opts.sample_percent
        && !(p > 0.0 && p <= 100.0)
    {
        return Err(VerifyError::BadSample(p));
    }
    let started = Instant::now();
    let user_id = match &opts.user {
        Some(name) => Some(
            db.user_id(name)?
                .ok_or_else(|| VerifyError::UnknownUser(name.clone()))?,
        ),
        None => None,
    };
    let seed = opts.seed.unwrap_or_else(|| {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("operating system random source");
        u64::from_le_bytes(b)
    });
    let mut report = VerifyReport {
        started_us: now_us,
        sample_percent: opts.sample_percent,
        user: opts.user.clone(),
        ..VerifyReport::default()
    };
    let batch = opts.batch.max(1);

    // Walk 1: the chunks.
    let mut after = None;
    loop {
        let items: Vec<ChunkBatchItem> = match user_id {
            Some(u) => db.user_chunk_batch(u, after, batch)?,
            None => db.chunk_batch(after, batch)?,
        };
        let Some(last) = items.last() else { break };
        after = Some(last.id);
        let mut found_bad = Vec::new();
        let mut found_good = Vec::new();
        // Per entry of `found_bad`: the reason (None = missing) and whether it is referenced.
        let mut reasons = Vec::new();
        for item in &items {
            report.chunks_in_scope += 1;
            // An owned chunk the index lacks is found by the reference walk if referenced;
            // unreferenced, it is GC's business.
            let Some(rec) = item.rec else { continue };
            let marked = rec.bad_since_us.is_some();
            let sampled = opts
                .sample_percent
                .is_none_or(|p| in_sample(&item.id, p, seed));
            if !marked && !sampled {
                continue;
            }
            report.chunks_checked += 1;
            match read_chunk(store, &item.id) {
                ChunkState::Good(n) => {
                    report.bytes_checked += n;
                    if marked {
                        found_good.push(item.id);
                    }
                }
                ChunkState::Missing => {
                    found_bad.push(item.id);
                    reasons.push((None, rec.refcount > 0));
                }
                ChunkState::Damaged(why) => {
                    found_bad.push(item.id);
                    reasons.push((Some(why), rec.refcount > 0));
                }
            }
        }
        let (marked, cleared) = db.set_bad_marks(
            &found_bad,
            &found_good,
            &|id| !matches!(read_chunk(store, id), ChunkState::Good(_)),
            now_us,
        )?;
        report.marks_cleared += cleared.len() as u64;
        for (id, (reason, referenced)) in found_bad.iter().zip(reasons) {
            if !marked.contains(id) {
                continue;
            }
            report.bad_chunks += 1;
            if !referenced {
                report.unreferenced_bad += 1;
            }
            match reason {
                None => {
                    report.missing_count += 1;
                    push_capped(&mut report.missing, *id);
                }
                Some(reason) => {
                    report.damaged_count += 1;
                    push_capped(&mut report.damaged, DamagedChunk { id: *id, reason });
                }
            }
        }
    }

    // Walk 2: the references of the retained versions.
    let (users, devices) = db.names()?;
    // Chunks recreated in the index by this run: later references to them add to their refcount.
    let mut recreated: std::collections::HashSet<ChunkId> = std::collections::HashSet::new();
    let mut by_device: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut version_cursor = 0u64;
    let mut path_cursor: Option<(u64, Vec<u8>)> = None;
    loop {
        let (vb, more): (VersionBatch, bool) = match user_id {
            Some(u) => {
                let (vb, next) = db.user_version_batch(u, path_cursor.take(), batch)?;
                let more = next.is_some();
                path_cursor = next;
                (vb, more)
            }
            None => {
                let (vb, next) = db.version_batch(version_cursor, batch)?;
                let more = next.is_some();
                version_cursor = next.unwrap_or(version_cursor);
                (vb, more)
            }
        };
        report.versions_checked += vb.versions;
        report.references_checked += vb.references;
        let mut restore: Vec<(ChunkId, u32, u64)> = Vec::new();
        let mut reread = Vec::new();
        for issue in vb.issues {
            for r in &issue.refs {
                if r.unindexed || recreated.contains(&r.id) {
                    if let Some(e) = restore.iter_mut().find(|e| e.0 == r.id) {
                        e.2 += u64::from(r.occurrences);
                    } else {
                        restore.push((r.id, r.len, u64::from(r.occurrences)));
                    }
                    if recreated.insert(r.id) {
                        report.unindexed_count += 1;
                        report.bad_chunks += 1;
                        push_capped(&mut report.unindexed, r.id);
                    }
                }
            }
            report.affected_versions_count += 1;
            let user = users.get(&issue.user_id).cloned().unwrap_or_default();
            let device = devices
                .get(&(issue.user_id, issue.device_id))
                .cloned()
                .unwrap_or_default();
            *by_device.entry((user.clone(), device.clone())).or_default() += 1;
            push_capped(
                &mut report.affected_versions,
                AffectedVersion {
                    user,
                    device,
                    path: issue.path.clone(),
                    version_id: issue.version_id,
                    chunks: issue.refs.iter().map(|r| r.id).collect(),
                },
            );
            reread.push((issue.user_id, issue.device_id, issue.path));
        }
        db.restore_index_entries(&restore, now_us)?;
        db.record_reread(&reread)?;
        if !more {
            break;
        }
    }
    // Bad chunks that this run did not find itself (marked earlier, outside the sample) were
    // re-read above, so `bad_chunks` counts every bad chunk in scope.

    report.affected_by_device = by_device
        .into_iter()
        .map(|((user, device), versions)| DeviceDamage {
            user,
            device,
            versions,
        })
        .collect();
    report.duration_ms = started.elapsed().as_millis() as u64;
    DamageList::of(&report).save(db)?;
    db.save_verify_summary(&VerifySummary {
        finished_us: now_us + report.duration_ms as i64 * 1000,
        duration_ms: report.duration_ms,
        sample_basis_points: opts
            .sample_percent
            .map_or(10_000, |p| (p * 100.0).round() as u64),
        user_id: user_id.unwrap_or(0),
        chunks_checked: report.chunks_checked,
        damaged: report.damaged_count,
        missing: report.missing_count,
        unindexed: report.unindexed_count,
        bad_chunks: report.bad_chunks,
        affected_versions: report.affected_versions_count,
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests;
