//! The index of a packed store (`index.redb`): where each chunk's record is, and per segment its
//! committed length and live bytes. Every transaction of the packed store is here.
//!
//! The accounting invariant: a segment's live bytes are the sum of `record_len` over the
//! locations that point into it. Every transaction keeps it (a put adds, a delete or a replace
//! lowers the old segment, a compaction moves a segment's live bytes as a whole or not at all).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use asgard_core::ChunkId;
use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};

use super::format::record_len;
use crate::store::StoreError;

/// chunk id → (segment, offset of the stored bytes, stored length, time stored in µs).
pub(crate) const LOCATIONS: TableDefinition<&[u8; 32], (u64, u64, u32, i64)> =
    TableDefinition::new("locations");
/// segment id → (committed length, live bytes).
pub(crate) const SEGMENTS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("segments");

/// A chunk's location: segment, offset of the stored bytes, stored length, time stored (µs).
pub(crate) type Loc = (u64, u64, u32, i64);

/// How a batch treats ids the index has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Skip them (put, import).
    Put,
    /// Move their location to the new bytes (replace).
    Replace,
}

/// A record a compaction copied: the chunk, its old and new offset, its length and time stored.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Moved {
    pub id: ChunkId,
    pub old_offset: u64,
    pub new_offset: u64,
    pub len: u32,
    pub at: i64,
}

/// The redb index of a packed store.
pub(crate) struct Index {
    db: Database,
    path: PathBuf,
}

fn db_err(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    StoreError::io(path, std::io::Error::other(e.to_string()))
}

/// Lowers the live bytes of `seg` by `by` in the open transaction; `current`/`current_live` is a
/// segment whose row the caller writes itself (its running live count is lowered instead).
fn lower_live(
    segs: &mut redb::Table<u64, (u64, u64)>,
    seg: u64,
    by: u64,
    current: u64,
    current_live: &mut u64,
) -> Result<(), redb::StorageError> {
    if seg == current {
        *current_live = current_live.saturating_sub(by);
        return Ok(());
    }
    let row = segs.get(seg)?.map(|g| g.value());
    if let Some((committed, live)) = row {
        segs.insert(seg, (committed, live.saturating_sub(by)))?;
    }
    Ok(())
}

impl Index {
    /// Opens (creating if needed) the index at `path` with both tables.
    ///
    /// # Errors
    /// [`StoreError::Io`] when redb cannot open or initialise the file.
    pub(crate) fn open(path: &Path) -> Result<Index, StoreError> {
        let db = Database::create(path).map_err(|e| db_err(path, e))?;
        let txn = db.begin_write().map_err(|e| db_err(path, e))?;
        txn.open_table(LOCATIONS).map_err(|e| db_err(path, e))?;
        txn.open_table(SEGMENTS).map_err(|e| db_err(path, e))?;
        txn.commit().map_err(|e| db_err(path, e))?;
        Ok(Index {
            db,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        db_err(&self.path, e)
    }

    /// The location of `id`, if stored.
    pub(crate) fn location(&self, id: &ChunkId) -> Result<Option<Loc>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(LOCATIONS).map_err(|e| self.err(e))?;
        Ok(t.get(&id.0).map_err(|e| self.err(e))?.map(|g| g.value()))
    }

    /// Whether each of `ids` is stored, in one read transaction.
    pub(crate) fn exists_many(&self, ids: &[ChunkId]) -> Result<Vec<bool>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(LOCATIONS).map_err(|e| self.err(e))?;
        ids.iter()
            .map(|id| Ok(t.get(&id.0).map_err(|e| self.err(e))?.is_some()))
            .collect()
    }

    /// Every segment row: (id, committed length, live bytes).
    pub(crate) fn segments(&self) -> Result<Vec<(u64, u64, u64)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(SEGMENTS).map_err(|e| self.err(e))?;
        let mut rows = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let (committed, live) = v.value();
            rows.push((k.value(), committed, live));
        }
        Ok(rows)
    }

    /// The positions of `ids` a batch writes: each id once, and for [`Mode::Put`] only ids the
    /// index lacks.
    pub(crate) fn to_write(&self, ids: &[ChunkId], mode: Mode) -> Result<Vec<usize>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(LOCATIONS).map_err(|e| self.err(e))?;
        let mut seen = HashSet::new();
        let mut todo = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if !seen.insert(*id) {
                continue;
            }
            if mode == Mode::Put && t.get(&id.0).map_err(|e| self.err(e))?.is_some() {
                continue;
            }
            todo.push(i);
        }
        Ok(todo)
    }

    /// Commits a batch written (durably) into segment `seg`, which is now `new_len` bytes long:
    /// points each record's chunk at it, unless for [`Mode::Put`] a concurrent batch stored the
    /// chunk meanwhile (its bytes here are then dead). Returns per record whether it now counts.
    pub(crate) fn commit_batch(
        &self,
        seg: u64,
        new_len: u64,
        records: &[Loc],
        ids: &[ChunkId],
        mode: Mode,
    ) -> Result<Vec<bool>, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut stored = Vec::with_capacity(records.len());
        {
            let mut locs = txn.open_table(LOCATIONS).map_err(|e| self.err(e))?;
            let mut segs = txn.open_table(SEGMENTS).map_err(|e| self.err(e))?;
            // Deletions lower the row's live bytes meanwhile: start from the row, not a copy.
            let mut live = segs
                .get(seg)
                .map_err(|e| self.err(e))?
                .map_or(0, |g| g.value().1);
            for (id, &(_, offset, len, at)) in ids.iter().zip(records) {
                let old = locs.get(&id.0).map_err(|e| self.err(e))?.map(|g| g.value());
                if let Some((old_seg, _, old_len, _)) = old {
                    if mode == Mode::Put {
                        // Stored by a concurrent batch meanwhile: ours are dead bytes.
                        stored.push(false);
                        continue;
                    }
                    lower_live(&mut segs, old_seg, record_len(old_len), seg, &mut live)
                        .map_err(|e| self.err(e))?;
                }
                locs.insert(&id.0, (seg, offset, len, at))
                    .map_err(|e| self.err(e))?;
                live += record_len(len);
                stored.push(true);
            }
            segs.insert(seg, (new_len, live)).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(stored)
    }

    /// Removes the locations of `ids`; returns how many there were.
    pub(crate) fn delete_many(&self, ids: &[ChunkId]) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut removed = 0;
        {
            let mut locs = txn.open_table(LOCATIONS).map_err(|e| self.err(e))?;
            let mut segs = txn.open_table(SEGMENTS).map_err(|e| self.err(e))?;
            for id in ids {
                let old = locs
                    .remove(&id.0)
                    .map_err(|e| self.err(e))?
                    .map(|g| g.value());
                if let Some((seg, _, len, _)) = old {
                    let mut unused = 0;
                    lower_live(&mut segs, seg, record_len(len), u64::MAX, &mut unused)
                        .map_err(|e| self.err(e))?;
                    removed += 1;
                }
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(removed)
    }

    /// Up to `n` stored ids after `after` (key order), from one read transaction.
    pub(crate) fn ids_after(
        &self,
        after: Option<&[u8; 32]>,
        n: usize,
    ) -> Result<Vec<ChunkId>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(LOCATIONS).map_err(|e| self.err(e))?;
        let range = match after {
            Some(k) => {
                t.range::<&[u8; 32]>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
            }
            None => t.range::<&[u8; 32]>(..),
        }
        .map_err(|e| self.err(e))?;
        let mut ids = Vec::new();
        for row in range.take(n) {
            let (k, _) = row.map_err(|e| self.err(e))?;
            ids.push(ChunkId(*k.value()));
        }
        Ok(ids)
    }

    /// A read snapshot of the locations (a compaction copies what it points at).
    pub(crate) fn snapshot(&self) -> Result<Snapshot<'_>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(LOCATIONS).map_err(|e| self.err(e))?;
        Ok(Snapshot { index: self, table })
    }

    /// Commits a compaction of the segments in `inputs`, whose records in `moved` were copied
    /// (durably) into the segment `out` (id, new committed length). Per input segment, in one
    /// transaction: only the locations that *still* point at the old record move (a chunk deleted
    /// or replaced meanwhile is not resurrected), and only when the segment's live bytes drop to
    /// exactly zero by that; then its row goes. An input whose accounting does not add up (or
    /// whose row is gone) keeps its row and locations; its copies are dead bytes in `out`.
    ///
    /// Returns per input whether it was compacted; when none was, nothing is committed.
    pub(crate) fn commit_compaction(
        &self,
        inputs: &[(u64, Vec<Moved>)],
        out: Option<(u64, u64)>,
    ) -> Result<Vec<bool>, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut accepted = Vec::with_capacity(inputs.len());
        {
            let mut locs = txn.open_table(LOCATIONS).map_err(|e| self.err(e))?;
            let mut segs = txn.open_table(SEGMENTS).map_err(|e| self.err(e))?;
            let mut out_moved_live = 0u64;
            for (seg, moved) in inputs {
                let Some((_, old_live)) =
                    segs.get(*seg).map_err(|e| self.err(e))?.map(|g| g.value())
                else {
                    accepted.push(false);
                    continue;
                };
                let mut still = Vec::with_capacity(moved.len());
                let mut moved_live = 0u64;
                for m in moved {
                    let points = locs
                        .get(&m.id.0)
                        .map_err(|e| self.err(e))?
                        .map(|g| g.value())
                        .is_some_and(|(s, off, _, _)| s == *seg && off == m.old_offset);
                    if points {
                        still.push(m);
                        moved_live += record_len(m.len);
                    }
                }
                if old_live != moved_live {
                    tracing::warn!(
                        segment = seg,
                        old_live,
                        moved_live,
                        "segment accounting does not add up: segment not compacted"
                    );
                    accepted.push(false);
                    continue;
                }
                let out_id = out.map(|o| o.0);
                for m in still {
                    let out_id = out_id.expect("an output segment when records were copied");
                    locs.insert(&m.id.0, (out_id, m.new_offset, m.len, m.at))
                        .map_err(|e| self.err(e))?;
                }
                segs.remove(*seg).map_err(|e| self.err(e))?;
                out_moved_live += moved_live;
                accepted.push(true);
            }
            if !accepted.contains(&true) {
                drop(locs);
                drop(segs);
                txn.abort().map_err(|e| self.err(e))?;
                return Ok(accepted);
            }
            if let Some((out_id, out_len)) = out {
                let out_live = segs
                    .get(out_id)
                    .map_err(|e| self.err(e))?
                    .map_or(0, |g| g.value().1);
                segs.insert(out_id, (out_len, out_live + out_moved_live))
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(accepted)
    }

    /// Direct access for tests.
    #[cfg(test)]
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }
}

/// A read snapshot of the locations table.
pub(crate) struct Snapshot<'a> {
    index: &'a Index,
    table: ReadOnlyTable<&'static [u8; 32], (u64, u64, u32, i64)>,
}

impl Snapshot<'_> {
    /// The location of `id` in this snapshot.
    pub(crate) fn get(&self, id: &ChunkId) -> Result<Option<Loc>, StoreError> {
        Ok(self
            .table
            .get(&id.0)
            .map_err(|e| self.index.err(e))?
            .map(|g| g.value()))
    }
}
