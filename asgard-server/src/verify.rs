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

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::stored;
use asgard_core::{ChunkId, Lang};
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
    /// Print a progress line on stderr every this often.
    pub progress_every: Option<Duration>,
    /// Language of the progress lines.
    pub lang: Lang,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            sample_percent: None,
            user: None,
            seed: None,
            batch: 1000,
            progress_every: None,
            lang: Lang::default(),
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
}

impl VerifyReport {
    /// True when every retained version is intact: exit code 0. Damage to chunks that nothing
    /// references is reported but does not count.
    pub fn clean(&self) -> bool {
        self.bad_chunks == self.unreferenced_bad && self.affected_versions_count == 0
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
    let mut progress = Progress::new(opts);
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
        progress.chunks(&report);
    }

    // Walk 2: the references of the retained versions.
    let (users, devices) = db.names()?;
    // Chunks recreated in the index by this run: later references to them add to their refcount.
    let mut recreated: std::collections::HashSet<ChunkId> = std::collections::HashSet::new();
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
            push_capped(
                &mut report.affected_versions,
                AffectedVersion {
                    user: users.get(&issue.user_id).cloned().unwrap_or_default(),
                    device: devices
                        .get(&(issue.user_id, issue.device_id))
                        .cloned()
                        .unwrap_or_default(),
                    path: issue.path.clone(),
                    version_id: issue.version_id,
                    chunks: issue.refs.iter().map(|r| r.id).collect(),
                },
            );
            reread.push((issue.user_id, issue.device_id, issue.path));
        }
        db.restore_index_entries(&restore, now_us)?;
        db.record_reread(&reread)?;
        progress.versions(&report);
        if !more {
            break;
        }
    }
    // Bad chunks that this run did not find itself (marked earlier, outside the sample) were
    // re-read above, so `bad_chunks` counts every bad chunk in scope.

    report.duration_ms = started.elapsed().as_millis() as u64;
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

/// Progress lines on stderr for long runs.
struct Progress {
    every: Option<Duration>,
    last: Instant,
    lang: Lang,
}

impl Progress {
    fn new(opts: &VerifyOptions) -> Progress {
        Progress {
            every: opts.progress_every,
            last: Instant::now(),
            lang: opts.lang,
        }
    }

    fn due(&mut self) -> bool {
        match self.every {
            Some(every) if self.last.elapsed() >= every => {
                self.last = Instant::now();
                true
            }
            _ => false,
        }
    }

    fn chunks(&mut self, r: &VerifyReport) {
        if self.due() {
            eprintln!(
                "{}",
                match self.lang {
                    Lang::De => format!(
                        "verify: {} Chunks durchgesehen, {} gelesen, {} beschädigt, {} fehlen",
                        r.chunks_in_scope, r.chunks_checked, r.damaged_count, r.missing_count
                    ),
                    Lang::En => format!(
                        "verify: {} chunks looked at, {} read, {} damaged, {} missing",
                        r.chunks_in_scope, r.chunks_checked, r.damaged_count, r.missing_count
                    ),
                }
            );
        }
    }

    fn versions(&mut self, r: &VerifyReport) {
        if self.due() {
            eprintln!(
                "{}",
                match self.lang {
                    Lang::De => format!(
                        "verify: {} Versionen geprüft, {} betroffen",
                        r.versions_checked, r.affected_versions_count
                    ),
                    Lang::En => format!(
                        "verify: {} versions checked, {} affected",
                        r.versions_checked, r.affected_versions_count
                    ),
                }
            );
        }
    }
}

/// Starts the periodic verify of `serve`: every `every`, a run over a `percent` sample of all
/// chunks, reported in the log. The thread lives as long as the process.
pub fn spawn_periodic(
    db: Arc<Db>,
    store: Arc<dyn ChunkStore>,
    every: Duration,
    percent: u32,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("periodic-verify".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let opts = VerifyOptions {
                    sample_percent: Some(f64::from(percent)),
                    ..VerifyOptions::default()
                };
                match run(&db, &*store, &opts, crate::db::now_us()) {
                    Ok(r) if r.clean() => tracing::info!(
                        chunks_checked = r.chunks_checked,
                        duration_ms = r.duration_ms,
                        "periodic verify: all is well"
                    ),
                    Ok(r) => tracing::warn!(
                        damaged = r.damaged_count,
                        missing = r.missing_count,
                        unindexed = r.unindexed_count,
                        bad_chunks = r.bad_chunks,
                        affected_versions = r.affected_versions_count,
                        "periodic verify found damage; `asgard-server verify` lists the affected versions"
                    ),
                    Err(e) => tracing::warn!(error = %e, "periodic verify did not finish"),
                }
            }
        })
}

/// The report as text for the admin (German by default).
pub fn render(report: &VerifyReport, lang: Lang) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let scope = match (&report.user, report.sample_percent) {
        (Some(u), _) => match lang {
            Lang::De => format!("Benutzer {u}"),
            Lang::En => format!("user {u}"),
        },
        (None, _) => lang.pick("alle Benutzer", "all users").to_owned(),
    };
    let sample = match report.sample_percent {
        Some(p) => match lang {
            Lang::De => format!("Stichprobe {p} %"),
            Lang::En => format!("sample {p} %"),
        },
        None => lang.pick("alle Chunks", "every chunk").to_owned(),
    };
    let _ = writeln!(
        out,
        "{} ({scope}, {sample}):",
        lang.pick("Prüfung abgeschlossen", "Verify finished")
    );
    let rows: [(&str, &str, String); 7] = [
        (
            "Chunks im Umfang",
            "chunks in scope",
            report.chunks_in_scope.to_string(),
        ),
        (
            "Chunks gelesen",
            "chunks read",
            report.chunks_checked.to_string(),
        ),
        (
            "Versionen geprüft",
            "versions checked",
            report.versions_checked.to_string(),
        ),
        ("beschädigt", "damaged", report.damaged_count.to_string()),
        ("fehlend", "missing", report.missing_count.to_string()),
        (
            "nicht im Index",
            "not in the index",
            report.unindexed_count.to_string(),
        ),
        (
            "Dauer",
            "duration",
            format!("{:.1} s", report.duration_ms as f64 / 1000.0),
        ),
    ];
    for (de, en, v) in rows {
        let _ = writeln!(out, "  {:<20} {v}", format!("{}:", lang.pick(de, en)));
    }
    if report.unreferenced_bad > 0 {
        let _ = writeln!(
            out,
            "  {:<20} {}",
            lang.pick("davon unbenutzt:", "of these unused:"),
            report.unreferenced_bad
        );
    }
    if report.marks_cleared > 0 {
        let _ = writeln!(
            out,
            "  {:<20} {}",
            lang.pick("wieder in Ordnung:", "fine again:"),
            report.marks_cleared
        );
    }
    for d in &report.damaged {
        let _ = writeln!(
            out,
            "{} {} ({})",
            lang.pick("Beschädigter Chunk:", "Damaged chunk:"),
            d.id,
            d.reason
        );
    }
    for id in &report.missing {
        let _ = writeln!(
            out,
            "{} {id}",
            lang.pick("Fehlender Chunk:", "Missing chunk:")
        );
    }
    for id in &report.unindexed {
        let _ = writeln!(
            out,
            "{} {id}",
            lang.pick(
                "Chunk fehlte im Index (als beschädigt eingetragen):",
                "Chunk was missing from the index (recorded as bad):"
            )
        );
    }
    if report.affected_versions_count > 0 {
        let _ = writeln!(
            out,
            "{} ({}):",
            lang.pick(
                "Betroffene Dateiversionen (bis zur Reparatur durch die nächste Sicherung eines \
                 Agenten, der die Daten noch hat)",
                "Affected file versions (until the next backup of an agent that still has the \
                 data repairs them)"
            ),
            report.affected_versions_count
        );
        let _ = writeln!(
            out,
            "  {}",
            lang.pick(
                "Benutzer\tGerät\tVersion\tPfad",
                "user\tdevice\tversion\tpath"
            )
        );
        for v in &report.affected_versions {
            let _ = writeln!(
                out,
                "  {}\t{}\t{}\t{}",
                v.user, v.device, v.version_id, v.path
            );
        }
    }
    let cut = report.damaged.len() as u64 != report.damaged_count
        || report.missing.len() as u64 != report.missing_count
        || report.unindexed.len() as u64 != report.unindexed_count
        || report.affected_versions.len() as u64 != report.affected_versions_count;
    if cut {
        let _ = writeln!(
            out,
            "{}",
            match lang {
                Lang::De => format!("(Listen gekürzt auf je {LIST_CAP} Einträge)"),
                Lang::En => format!("(lists cut at {LIST_CAP} entries each)"),
            }
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if report.clean() {
            lang.pick("Ergebnis: alles in Ordnung.", "Result: all is well.")
        } else {
            lang.pick(
                "Ergebnis: Schäden gefunden. Betroffene Chunks sind markiert; Agenten laden sie \
                 bei der nächsten Sicherung erneut hoch.",
                "Result: damage found. Affected chunks are marked; agents upload them again at \
                 their next backup.",
            )
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Registration;
    use crate::db::{Auth, LoginPolicy, UploadedChunk, hash_token};
    use crate::store::LocalStore;
    use asgard_core::protocol::{ChunkRef, CommitEntry, FileMeta, LoginRequest};
    use asgard_core::{ChunkParams, RawPath};

    struct Env {
        _dir: tempfile::TempDir,
        db: Db,
        store: LocalStore,
    }

    fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("asgard.redb")).unwrap();
        let store = LocalStore::open(&dir.path().join("chunks")).unwrap();
        Env {
            _dir: dir,
            db,
            store,
        }
    }

    impl Env {
        fn register(&self, user: &str) -> Auth {
            let req = LoginRequest {
                protocol_version: 1,
                user: user.into(),
                device: "pc".into(),
                os: "linux".into(),
                os_version: "6".into(),
                agent_version: "t".into(),
                enrollment_key: None,
            };
            let policy = LoginPolicy {
                registration: Registration::Open,
                enrollment_key: None,
            };
            let out = self.db.login(&req, None, policy, 1).unwrap();
            self.db
                .authenticate(&hash_token(&out.token.unwrap()))
                .unwrap()
        }

        /// Uploads the chunks (store + index) as `a` would, without healing.
        fn upload(&self, a: &Auth, parts: &[&[u8]]) {
            let mut list = Vec::new();
            for p in parts {
                let id = ChunkId::of(p);
                let stored = stored::encode(p, 3);
                self.store.put(&id, &stored).unwrap();
                list.push(UploadedChunk {
                    id,
                    stored_len: stored.len() as u64,
                    plain_len: p.len() as u32,
                });
            }
            crate::service::ingest::record_verified(
                &self.db,
                &self.store,
                a.user_id,
                &list,
                &[],
                1,
            )
            .unwrap();
        }

        /// Uploads and commits one file of these parts; returns the version id.
        fn file(&self, a: &Auth, path: &str, parts: &[&[u8]]) -> u64 {
            self.upload(a, parts);
            let all = parts.concat();
            let entry = CommitEntry::File {
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
            };
            let r = self
                .db
                .commit(a.user_id, a.device_id, &[entry], 4, 2)
                .unwrap();
            r.results[0].version_id.unwrap()
        }

        fn verify(&self, opts: VerifyOptions) -> VerifyReport {
            run(&self.db, &self.store, &opts, 100).unwrap()
        }

        fn chunk_file(&self, data: &[u8]) -> std::path::PathBuf {
            self.store.path_of(&ChunkId::of(data))
        }

        fn flip_byte(&self, data: &[u8]) {
            let path = self.chunk_file(data);
            let mut b = std::fs::read(&path).unwrap();
            let i = b.len() / 2;
            b[i] ^= 0x55;
            std::fs::write(&path, b).unwrap();
        }

        fn bad(&self, data: &[u8]) -> bool {
            self.db
                .chunk_record(&ChunkId::of(data))
                .unwrap()
                .unwrap()
                .bad_since_us
                .is_some()
        }
    }

    fn opts() -> VerifyOptions {
        VerifyOptions {
            batch: 3,
            ..VerifyOptions::default()
        }
    }

    /// Distinct pseudo-random chunk contents.
    fn data(n: u32) -> Vec<u8> {
        let mut x = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn clean_store_verifies_clean_in_small_batches() {
        let e = env();
        let a = e.register("anna");
        let parts: Vec<Vec<u8>> = (0..10).map(data).collect();
        for (i, p) in parts.iter().enumerate() {
            e.file(&a, &format!("/f{i}"), &[p, &parts[(i + 1) % 10]]);
        }
        let r = e.verify(opts());
        assert!(r.clean(), "{r:?}");
        assert_eq!(r.chunks_in_scope, 10);
        assert_eq!(r.chunks_checked, 10);
        assert_eq!(r.versions_checked, 10);
        assert_eq!(r.references_checked, 20);
        let last = e.db.last_verify().unwrap().unwrap();
        assert_eq!(last.chunks_checked, 10);
        assert_eq!(last.bad_chunks, 0);
        assert_eq!(last.sample_basis_points, 10_000);
    }

    /// A flipped byte is "damaged", a deleted file "missing"; both are marked bad, the versions
    /// that use them are listed (with user, device, path and id), and a second run lists them
    /// again (already marked) until they are healed.
    #[test]
    fn missing_and_damaged_are_told_apart_and_listed_until_healed() {
        let e = env();
        let a = e.register("anna");
        let (x, y, z) = (data(1), data(2), data(3));
        let vx = e.file(&a, "/home/anna/x.txt", &[&x, &z]);
        let vy = e.file(&a, "/home/anna/y.txt", &[&y]);
        e.file(&a, "/home/anna/z.txt", &[&z]);
        e.flip_byte(&x);
        std::fs::remove_file(e.chunk_file(&y)).unwrap();

        for round in 0..2 {
            let r = e.verify(opts());
            assert!(!r.clean());
            assert_eq!(r.damaged.len(), 1, "round {round}: {r:?}");
            assert_eq!(r.damaged[0].id, ChunkId::of(&x));
            assert_eq!(r.missing, vec![ChunkId::of(&y)]);
            assert_eq!(r.bad_chunks, 2);
            let mut listed: Vec<(u64, String)> = r
                .affected_versions
                .iter()
                .map(|v| (v.version_id, v.path.to_string()))
                .collect();
            listed.sort();
            assert_eq!(
                listed,
                vec![
                    (vx, "/home/anna/x.txt".to_owned()),
                    (vy, "/home/anna/y.txt".to_owned())
                ]
            );
            assert!(
                r.affected_versions
                    .iter()
                    .all(|v| v.user == "anna" && v.device == "pc")
            );
            assert!(e.bad(&x) && e.bad(&y) && !e.bad(&z));
        }
        assert_eq!(e.db.last_verify().unwrap().unwrap().bad_chunks, 2);

        // Heal x through the upload path; y stays bad.
        let stored_x = stored::encode(&x, 3);
        e.store.replace(&ChunkId::of(&x), &stored_x).unwrap();
        let up = UploadedChunk {
            id: ChunkId::of(&x),
            stored_len: stored_x.len() as u64,
            plain_len: x.len() as u32,
        };
        crate::service::ingest::record_verified(&e.db, &e.store, a.user_id, &[up], &[up.id], 5)
            .unwrap();
        assert!(!e.bad(&x));
        let r = e.verify(opts());
        assert_eq!(r.bad_chunks, 1);
        assert!(r.damaged.is_empty());
        assert_eq!(r.affected_versions.len(), 1);
        assert_eq!(r.affected_versions[0].version_id, vy);
    }

    /// A bad chunk whose bytes are fine again (the file was put back) loses its mark.
    #[test]
    fn a_mark_is_cleared_when_the_bytes_verify_again() {
        let e = env();
        let a = e.register("anna");
        let x = data(7);
        e.file(&a, "/x", &[&x]);
        let saved = std::fs::read(e.chunk_file(&x)).unwrap();
        std::fs::remove_file(e.chunk_file(&x)).unwrap();
        assert!(!e.verify(opts()).clean());
        std::fs::write(e.chunk_file(&x), saved).unwrap();
        let r = e.verify(opts());
        assert!(r.clean(), "{r:?}");
        assert_eq!(r.marks_cleared, 1);
        assert!(!e.bad(&x));
    }

    /// A lost chunk that no retained version references is reported and marked, but nothing
    /// committed is lost: the run counts as clean.
    #[test]
    fn damage_to_an_unreferenced_chunk_does_not_fail_the_run() {
        let e = env();
        let a = e.register("anna");
        let orphan = data(8);
        e.upload(&a, &[&orphan]);
        e.file(&a, "/kept", &[&data(9)]);
        std::fs::remove_file(e.chunk_file(&orphan)).unwrap();
        let r = e.verify(opts());
        assert_eq!(r.missing, vec![ChunkId::of(&orphan)]);
        assert_eq!((r.bad_chunks, r.unreferenced_bad), (1, 1));
        assert!(r.clean(), "{r:?}");
        assert!(
            e.bad(&orphan),
            "check asks for it should anyone need it again"
        );
    }

    #[test]
    fn sample_covers_about_the_percentage() {
        let n = 20_000u32;
        let ids: Vec<ChunkId> = (0..n).map(|i| ChunkId::of(&i.to_le_bytes())).collect();
        for (pct, seed) in [(5.0, 1u64), (10.0, 2), (50.0, 3)] {
            let taken = ids.iter().filter(|id| in_sample(id, pct, seed)).count() as f64;
            let share = taken / f64::from(n) * 100.0;
            assert!((share - pct).abs() < pct * 0.15 + 0.3, "{pct} %: {share} %");
        }
        assert!(ids.iter().all(|id| in_sample(id, 100.0, 9)));
        // Another seed picks another sample.
        let both = ids
            .iter()
            .filter(|id| in_sample(id, 10.0, 1) && in_sample(id, 10.0, 2))
            .count();
        assert!(
            both < 400,
            "samples of two seeds overlap by {both} of ~2000"
        );

        // The run reads about that share of the index, and every bad chunk on top.
        let e = env();
        let u = e.register("anna");
        let parts: Vec<Vec<u8>> = (0..600).map(data).collect();
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        e.upload(&u, &refs);
        let r = e.verify(VerifyOptions {
            sample_percent: Some(20.0),
            seed: Some(42),
            batch: 50,
            ..VerifyOptions::default()
        });
        assert_eq!(r.chunks_in_scope, 600);
        assert!(
            (80..=160).contains(&r.chunks_checked),
            "{}",
            r.chunks_checked
        );
        assert_eq!(
            e.db.last_verify().unwrap().unwrap().sample_basis_points,
            2000
        );
    }

    /// A chunk marked bad is read in every run, sampled or not.
    #[test]
    fn bad_chunks_are_read_whatever_the_sample() {
        let e = env();
        let a = e.register("anna");
        let parts: Vec<Vec<u8>> = (0..50).map(data).collect();
        for (i, p) in parts.iter().enumerate() {
            e.file(&a, &format!("/f{i}"), &[p]);
        }
        let seed = 5;
        let outside = parts
            .iter()
            .find(|p| !in_sample(&ChunkId::of(p), 1.0, seed))
            .unwrap();
        std::fs::remove_file(e.chunk_file(outside)).unwrap();
        assert!(e.verify(opts()).bad_chunks == 1);
        let r = e.verify(VerifyOptions {
            sample_percent: Some(1.0),
            seed: Some(seed),
            ..opts()
        });
        assert_eq!(r.missing, vec![ChunkId::of(outside)]);
        assert_eq!(r.affected_versions_count, 1);
    }

    /// `--user` reads only that user's chunks and versions.
    #[test]
    fn user_limits_the_scope() {
        let e = env();
        let a = e.register("anna");
        let b = e.register("bert");
        let (shared, only_a, only_b) = (data(1), data(2), data(3));
        e.file(&a, "/a1", &[&shared, &only_a]);
        e.file(&b, "/b1", &[&shared]);
        e.file(&b, "/b2", &[&only_b]);
        e.flip_byte(&only_b);

        let ra = e.verify(VerifyOptions {
            user: Some("anna".into()),
            ..opts()
        });
        assert!(ra.clean(), "{ra:?}");
        assert_eq!(ra.chunks_in_scope, 2);
        assert_eq!(ra.versions_checked, 1);
        assert!(!e.bad(&only_b), "anna's run does not look at bert's chunk");

        let rb = e.verify(VerifyOptions {
            user: Some("bert".into()),
            ..opts()
        });
        assert_eq!(rb.chunks_in_scope, 2);
        assert_eq!(rb.versions_checked, 2);
        assert_eq!(rb.damaged.len(), 1);
        assert_eq!(rb.affected_versions.len(), 1);
        assert_eq!(rb.affected_versions[0].user, "bert");
        assert_eq!(rb.affected_versions[0].path, RawPath::from("/b2"));
        assert_eq!(e.db.last_verify().unwrap().unwrap().user_id, b.user_id);

        assert!(matches!(
            run(
                &e.db,
                &e.store,
                &VerifyOptions {
                    user: Some("nobody".into()),
                    ..opts()
                },
                1
            ),
            Err(VerifyError::UnknownUser(_))
        ));
    }

    /// A reference to a chunk the index lacks is reported and recorded again as a bad chunk whose
    /// refcount counts every reference, so that it heals like any other and GC keeps it.
    #[test]
    fn a_reference_missing_from_the_index_is_recorded_as_bad() {
        let e = env();
        let a = e.register("anna");
        let x = data(9);
        let v1 = e.file(&a, "/one", &[&x, &x]);
        let v2 = e.file(&a, "/two", &[&x]);
        e.db.remove_chunk_record_for_tests(&ChunkId::of(&x));
        std::fs::remove_file(e.chunk_file(&x)).unwrap();
        let r = e.verify(VerifyOptions { batch: 1, ..opts() });
        assert_eq!(r.unindexed, vec![ChunkId::of(&x)]);
        assert_eq!(r.bad_chunks, 1);
        let mut ids: Vec<u64> = r.affected_versions.iter().map(|v| v.version_id).collect();
        ids.sort();
        assert_eq!(ids, vec![v1, v2]);
        let rec = e.db.chunk_record(&ChunkId::of(&x)).unwrap().unwrap();
        assert_eq!(rec.refcount, 3);
        assert!(rec.bad_since_us.is_some());
        // The next run sees an indexed, missing chunk.
        let r = e.verify(opts());
        assert_eq!(r.missing, vec![ChunkId::of(&x)]);
        assert!(r.unindexed.is_empty());
        assert_eq!(
            e.db.chunk_record(&ChunkId::of(&x))
                .unwrap()
                .unwrap()
                .refcount,
            3
        );
    }

    #[test]
    fn a_second_run_at_once_is_refused() {
        let e = env();
        let guard = RunGuard::take(&e.db).unwrap();
        let other = env();
        run(&other.db, &other.store, &opts(), 1).expect("another database is not blocked");
        assert!(matches!(
            run(&e.db, &e.store, &opts(), 1),
            Err(VerifyError::AlreadyRunning)
        ));
        drop(guard);
        run(&e.db, &e.store, &opts(), 1).unwrap();
    }

    #[test]
    fn report_text_is_german_and_names_the_versions() {
        let e = env();
        let a = e.register("anna");
        let x = data(4);
        e.file(&a, "/home/anna/Brief.txt", &[&x]);
        std::fs::remove_file(e.chunk_file(&x)).unwrap();
        let text = render(&e.verify(opts()), Lang::De);
        assert!(text.contains("Fehlender Chunk"), "{text}");
        assert!(text.contains("anna\tpc\t"), "{text}");
        assert!(text.contains("/home/anna/Brief.txt"), "{text}");
        assert!(text.contains("Schäden gefunden"), "{text}");
    }
}
