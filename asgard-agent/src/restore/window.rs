//! One window of files through the restore stages: temp files, the places of every chunk, chunks
//! obtained the cheapest way (zero, copied, fetched), each file checked and put in place as its
//! last piece arrives, then synced and renamed together.
//!
//! The [`Restorer`] keeps what later windows can reuse: the ids of all-zero chunks and where copies
//! of chunks already lie in restored files (at most [`COPY_SOURCES_MAX`] of them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use asgard_core::{ChunkId, Lang};
use futures_util::StreamExt;

use super::fetch::{self, ChunkFailure, Stats, StatsSnapshot};
use super::finish::{self, Outcome};
use super::handles::Target;
use super::meta::Applier;
use super::plan::Job;
use super::write::{self, HashState, Piece};
use crate::client::Client;
use crate::present::restore as text;
use crate::progress::Progress;

/// At most this many chunks of already restored files are remembered as copy sources.
pub(crate) const COPY_SOURCES_MAX: usize = 200_000;

/// Restores windows of files; keeps what later windows can reuse.
pub(crate) struct Restorer {
    client: Client,
    parallel: usize,
    lang: Lang,
    progress: Progress,
    stats: Arc<Stats>,
    /// The id of the all-zero chunk of each length seen so far.
    zero_ids: HashMap<u32, ChunkId>,
    /// Chunks in files restored by earlier windows: where a copy lies.
    copies: HashMap<ChunkId, (Arc<PathBuf>, u64)>,
    /// The target folder: copies are read back through its handles.
    target: Arc<Target>,
    /// Sets each file's metadata before it is made durable.
    meta: Arc<Applier>,
}

impl Restorer {
    pub(crate) fn new(
        client: Client,
        parallel: usize,
        lang: Lang,
        progress: Progress,
        target: Arc<Target>,
        meta: Arc<Applier>,
    ) -> Restorer {
        Restorer {
            target,
            meta,
            client,
            parallel: parallel.clamp(1, 32),
            lang,
            progress,
            stats: Arc::default(),
            zero_ids: HashMap::new(),
            copies: HashMap::new(),
        }
    }

    pub(crate) fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Fills one window of files: temp files, every chunk obtained and written, each file checked
    /// as its last piece arrives. [`Restorer::settle`] then puts them in place.
    pub(crate) async fn fill(&mut self, jobs: Vec<Job>) -> anyhow::Result<Filled> {
        let lang = self.lang;
        // 1. Slots and the places of every chunk.
        let mut places: HashMap<ChunkId, Places> = HashMap::new();
        let mut order: Vec<ChunkId> = Vec::new();
        let mut slots = Vec::with_capacity(jobs.len());
        // Temp files are created when their first piece arrives (or, for a file without any,
        // when it is finished), so each costs one open.
        for (i, job) in jobs.into_iter().enumerate() {
            let mut state = SlotState::default();
            let mut offset = 0u64;
            let params = job.manifest.params;
            for c in &job.manifest.chunks {
                let p = places.entry(c.id).or_insert_with(|| {
                    order.push(c.id);
                    Places {
                        len: c.len,
                        zero_candidate: false,
                        at: Vec::new(),
                    }
                });
                // A zero run is cut at the min or max size; a repeated chunk is worth the check
                // too. Other lengths are not hashed as zeros (that would cost a pass over the
                // data for nothing).
                p.zero_candidate |= c.len == params.max || c.len == params.min;
                p.at.push((i, offset));
                offset += u64::from(c.len);
            }
            state.remaining = job.manifest.chunks.len();
            slots.push(Slot {
                job,
                state: Mutex::new(state),
            });
        }
        for p in places.values_mut() {
            p.zero_candidate |= p.at.len() > 1;
            let extra = p.at.len().saturating_sub(1) as u64;
            self.stats.chunks_shared.fetch_add(extra, Ordering::Relaxed);
        }
        let window = Arc::new(Window {
            slots,
            places,
            lang,
            progress: self.progress.clone(),
            meta: self.meta.clone(),
        });

        // 2. Empty files, zero chunks and copies from earlier windows, on the blocking pool.
        let (zero_ids, copies) = (
            std::mem::take(&mut self.zero_ids),
            std::mem::take(&mut self.copies),
        );
        let (w, stats, target) = (window.clone(), self.stats.clone(), self.target.clone());
        let (to_fetch, zero_ids, copies) = tokio::task::spawn_blocking(move || {
            let mut zero_ids = zero_ids;
            for i in 0..w.slots.len() {
                let mut st = w.slots[i].lock();
                if st.remaining == 0 && st.outcome.is_none() {
                    w.finish(i, &mut st, None);
                }
            }
            let mut to_fetch = Vec::new();
            for id in order {
                let p = &w.places[&id];
                if p.zero_candidate {
                    let zero = *zero_ids
                        .entry(p.len)
                        .or_insert_with(|| write::zero_id(p.len));
                    if zero == id {
                        stats.chunks_zero.fetch_add(1, Ordering::Relaxed);
                        w.put(&id, Piece::Zero(p.len));
                        continue;
                    }
                }
                if let Some((path, offset)) = copies.get(&id)
                    && let Ok(plain) = read_copy(&target, path, *offset, p.len, &id)
                {
                    stats.chunks_copied.fetch_add(1, Ordering::Relaxed);
                    w.put(&id, Piece::Data(&plain));
                    continue;
                }
                to_fetch.push(id);
            }
            (to_fetch, zero_ids, copies)
        })
        .await?;
        self.zero_ids = zero_ids;
        self.copies = copies;

        // 3. Fetch the rest, a few requests at a time.
        let batches = fetch::batches(&to_fetch, |id| u64::from(window.places[id].len));
        let fetches = batches.into_iter().map(|batch| {
            let (client, w, stats) = (self.client.clone(), window.clone(), self.stats.clone());
            async move { fetch::fetch_batch(&client, batch, &w, &stats).await }
        });
        futures_util::stream::iter(fetches)
            .buffer_unordered(self.parallel)
            .collect::<Vec<()>>()
            .await;

        // The checked files become copy sources for the windows after this one: still at their
        // temp names while the window settles, at their destinations after (see [`read_copy`]).
        for slot in &window.slots {
            if !matches!(slot.lock().outcome, Some(Ok(()))) {
                continue;
            }
            let dest = Arc::new(slot.job.dest.clone());
            let mut offset = 0u64;
            for c in &slot.job.manifest.chunks {
                if self.copies.len() >= COPY_SOURCES_MAX {
                    break;
                }
                self.copies
                    .entry(c.id)
                    .or_insert_with(|| (dest.clone(), offset));
                offset += u64::from(c.len);
            }
        }
        Ok(Filled(window))
    }

    /// Settles a filled window on the blocking pool: loose ends, durability, renames, folder
    /// syncs ([`settle`]). The caller may fill the next window meanwhile.
    pub(crate) fn settle(&self, filled: Filled) -> tokio::task::JoinHandle<(Filled, Vec<Outcome>)> {
        let target = self.target.clone();
        tokio::task::spawn_blocking(move || {
            let outcomes = settle(&target, &filled.0);
            (filled, outcomes)
        })
    }
}

/// A window whose every place is delivered or failed: its files are checked (or failed) but not
/// yet durable or in place (on Linux; elsewhere each file was synced and renamed when it was
/// checked).
pub(crate) struct Filled(Arc<Window>);

impl Filled {
    /// The destinations and sizes of the window's files, in job order.
    pub(crate) fn files(&self) -> impl Iterator<Item = (&Path, u64)> {
        self.0
            .slots
            .iter()
            .map(|s| (s.job.dest.as_path(), s.job.version.size))
    }
}

/// Loose ends (a file whose places are not all in is an error: a bug, handled safely), then
/// durability and renames ([`finish::sync_and_rename`]), the folders noted for the sync of their
/// renames ([`Target::renamed_in`]). One outcome per job.
fn settle(target: &Target, w: &Window) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(w.slots.len());
    for (i, slot) in w.slots.iter().enumerate() {
        let mut st = slot.lock();
        if st.outcome.is_none() {
            st.error.get_or_insert_with(|| "incomplete".to_owned());
            st.remaining = 0;
            w.finish(i, &mut st, None);
        }
        outcomes.push(
            st.outcome
                .clone()
                .unwrap_or_else(|| Err("incomplete".into())),
        );
    }
    if finish::SYNC_PER_WINDOW {
        finish::sync_and_rename(w.slots.iter().map(|s| &s.job), &mut outcomes);
    }
    finish::sync_folders(target, w.slots.iter().map(|s| &s.job), &outcomes);
    outcomes
}

/// Reads a chunk back from a file an earlier window restored, through the target's handles (no
/// link followed), and checks it against its id: from its destination, or, while that window is
/// still settling, from its temp file (the check decides which one holds the chunk: with
/// `--overwrite` the destination may still hold the old file).
fn read_copy(
    target: &Target,
    dest: &Path,
    offset: u64,
    len: u32,
    id: &ChunkId,
) -> std::io::Result<Vec<u8>> {
    let place = target
        .existing(dest)
        .map_err(|_| std::io::Error::other("not reachable"))?;
    place
        .open_read()
        .and_then(|f| write::read_verified(&f, offset, len, id))
        .or_else(|_| write::read_verified(&place.open_temp()?, offset, len, id))
}

/// Where one distinct chunk goes.
struct Places {
    len: u32,
    zero_candidate: bool,
    /// (slot index, offset in that file).
    at: Vec<(usize, u64)>,
}

struct Slot {
    job: Job,
    state: Mutex<SlotState>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The temp file of a job: created at its final length the first time, opened after.
fn temp_file(job: &Job, st: &mut SlotState) -> std::io::Result<std::fs::File> {
    if st.created {
        return job.place.open_temp();
    }
    let file = write::create_temp(&job.place, job.version.size, job.version.attributes)?;
    st.created = true;
    Ok(file)
}

#[derive(Default)]
struct SlotState {
    /// Whether the temp file exists (it is created with the first piece).
    created: bool,
    /// Places of this file not yet delivered or failed.
    remaining: usize,
    /// The content hash so far.
    hash: HashState,
    /// The first thing that went wrong.
    error: Option<String>,
    outcome: Option<Outcome>,
}

struct Window {
    slots: Vec<Slot>,
    places: HashMap<ChunkId, Places>,
    lang: Lang,
    progress: Progress,
    meta: Arc<Applier>,
}

impl fetch::Places for Window {
    fn chunk_len(&self, id: &ChunkId) -> Option<u32> {
        self.places.get(id).map(|p| p.len)
    }

    fn deliver(&self, id: &ChunkId, plain: &[u8]) {
        self.put(id, Piece::Data(plain));
    }

    fn fail(&self, id: &ChunkId, why: ChunkFailure) {
        let reason = match why {
            ChunkFailure::NotReceived(reason) => text::chunk_not_received(id, &reason, self.lang),
            ChunkFailure::Damaged(e) => text::chunk_damaged(id, &e, self.lang),
        };
        self.fail_places(id, &reason);
    }
}

impl Window {
    /// Writes a chunk's content to every place that needs it.
    fn put(&self, id: &ChunkId, piece: Piece<'_>) {
        let Some(p) = self.places.get(id) else { return };
        for &(i, offset) in &p.at {
            let mut st = self.slots[i].lock();
            let job = &self.slots[i].job;
            let whole = (job.manifest.chunks.len() == 1).then_some(id);
            let mut file = None;
            if st.error.is_none() {
                match temp_file(job, &mut st)
                    .and_then(|f| write::put(&f, &mut st.hash, offset, piece, whole).map(|()| f))
                {
                    Ok(f) => file = Some(f),
                    Err(e) => st.error = Some(format!("{}: {e}", job.dest.display())),
                }
            }
            self.one_done(i, &mut st, file);
        }
    }

    /// Marks a chunk's places as failed.
    fn fail_places(&self, id: &ChunkId, reason: &str) {
        let Some(p) = self.places.get(id) else { return };
        for &(i, _) in &p.at {
            let mut st = self.slots[i].lock();
            st.error.get_or_insert_with(|| reason.to_owned());
            self.one_done(i, &mut st, None);
        }
    }

    /// One place of file `i` is done; `file` is its temp file if the place was written.
    fn one_done(&self, i: usize, st: &mut SlotState, file: Option<std::fs::File>) {
        st.remaining = st.remaining.saturating_sub(1);
        if st.remaining == 0 && st.outcome.is_none() {
            self.finish(i, st, file);
        }
    }

    /// The file's last place is in: check it and put it in place, or remove the temp file.
    /// `file` is its temp file when the caller has it open.
    fn finish(&self, i: usize, st: &mut SlotState, file: Option<std::fs::File>) {
        let job = &self.slots[i].job;
        let outcome = match st.error.take() {
            Some(e) => Err(e),
            None => match file.map_or_else(|| temp_file(job, st), Ok) {
                Ok(file) => finish::complete(job, file, &mut st.hash, &self.meta, self.lang)
                    .map_err(|e| format!("{e:#}")),
                Err(e) => Err(format!("{}: {e}", job.dest.display())),
            },
        };
        st.hash.clear();
        if outcome.is_err() {
            job.place.remove_temp();
        }
        self.progress.add_done(1, job.version.size);
        st.outcome = Some(outcome);
    }
}
