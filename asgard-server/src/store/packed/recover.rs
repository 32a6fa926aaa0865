//! Crash repair at open: what [`PackedStore::open`](super::PackedStore) does about what a crash
//! left behind.
//!
//! - **During a batch, before its index commit**: bytes past the segment's committed length, or a
//!   whole new segment (or pack) without an index row. Nothing was acknowledged. Segments are cut
//!   to their committed length (on media that append) and segment objects the index does not
//!   know are removed.
//! - **After a compaction's index commit, before the old segment is removed**: the old segment
//!   has no row any more, so it is removed; every location already points at the output.
//! - **During a compaction's copy**: output bytes past its committed length (cut off) or an
//!   output without a row (removed); the old segment is untouched.
//! - **A segment shorter than its committed length** (lost by the disk, not by us): logged; the
//!   chunks in the lost part read as missing, and `verify` reports them.
//!
//! Segment ids continue after the largest one seen (in the index or on the medium), so an id is
//! never handed out again while an object of that id may still exist.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::PackedStore;
use super::format::{PACKS, parse_segment_key, segment_key};
use crate::store::StoreError;

impl PackedStore {
    /// Crash repair at open (see the module docs).
    pub(crate) fn recover(&self) -> Result<(), StoreError> {
        let rows: HashMap<u64, u64> = self
            .index
            .segments()?
            .into_iter()
            .map(|(id, committed, _)| (id, committed))
            .collect();
        let mut max_id = rows.keys().copied().max().unwrap_or(0);
        let mut sizes: HashMap<u64, u64> = HashMap::new();
        for meta in self.medium.list(PACKS)? {
            let meta = meta?;
            let Some(id) = parse_segment_key(&meta.key) else {
                tracing::warn!(path = %self.medium.describe(&meta.key), "unexpected file in the segment folder");
                continue;
            };
            max_id = max_id.max(id);
            if rows.contains_key(&id) {
                sizes.insert(id, meta.size);
            } else {
                self.medium.delete(&meta.key)?;
                tracing::info!(path = %self.medium.describe(&meta.key), "removed a segment the index does not reference (left by a crash)");
            }
        }
        for (&id, &committed) in &rows {
            let key = segment_key(id);
            let path = self.medium.describe(&key);
            match sizes.get(&id) {
                Some(&len) if len > committed => match self.medium.append() {
                    Some(append) => {
                        append.truncate(&key, committed)?;
                        tracing::info!(%path, from = len, to = committed, "truncated the unacknowledged tail of a segment (left by a crash)");
                    }
                    // Whole objects have no unacknowledged tail; the bytes past the committed
                    // length are never read.
                    None => {
                        tracing::warn!(%path, len, committed, "segment is longer than its committed length");
                    }
                },
                Some(&len) if len < committed => {
                    tracing::error!(%path, len, committed, "segment is shorter than its committed length: chunks in the lost part are missing (run verify)");
                }
                Some(_) => {}
                None => {
                    tracing::error!(%path, "segment file is missing: its chunks are missing (run verify)");
                }
            }
        }
        self.next_segment.store(max_id + 1, Ordering::SeqCst);
        Ok(())
    }
}
