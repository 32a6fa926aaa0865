//! The writer: batches of records into segments.
//!
//! On a medium that can append (local files), a few **writer slots** each own an open segment. A
//! batch takes a free slot, appends all its records with one positional write, syncs once (the
//! folder too when the segment is new), then commits all locations and the segment's new
//! committed length in one index transaction. Concurrent uploads thus write and sync in
//! parallel; redb serialises only the short index commits. A slot starts a new segment when the next batch
//! would pass the target size; the old one is then **sealed** (never written again, and from then
//! on a candidate for compaction).
//!
//! On a medium without appends (object stores), a batch becomes its own **pack**: a new segment
//! object, written whole and at once in the same format (magic, then records), followed by the
//! same index transaction. A pack is sealed from birth.
//!
//! Either way nothing is acknowledged before it is durable, and the bytes of a batch whose index
//! commit never happened are past a committed length or in an object without a row: `open`
//! removes them (see `recover.rs`).

use std::io::ErrorKind;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use asgard_core::ChunkId;

use super::format::{SEG_HEADER, SEGMENT_MAGIC, record_header, record_len, segment_key};
use super::index::{Loc, Mode};
use super::{PackedStore, lock};
use crate::store::StoreError;
use crate::store::medium::Appender;

/// A segment open for appending, owned by one writer slot (or by a compaction).
#[derive(Debug)]
pub(crate) struct OpenSegment {
    pub id: u64,
    pub file: Box<dyn Appender>,
    /// The committed length: every byte before it is described by the index.
    pub len: u64,
}

impl PackedStore {
    /// Takes a writer slot: a free one if any, else waits for one (round robin).
    fn writer(&self) -> MutexGuard<'_, Option<OpenSegment>> {
        let n = self.writers.len();
        let start = self.next_writer.fetch_add(1, Ordering::Relaxed) % n;
        for k in 0..n {
            if let Ok(g) = self.writers[(start + k) % n].try_lock() {
                return g;
            }
        }
        lock(&self.writers[start])
    }

    /// Creates a new segment object holding only the magic (not yet durable) and registers it as
    /// open. It has no index row until its first batch commits. Needs the append capability.
    pub(crate) fn new_segment(&self) -> Result<OpenSegment, StoreError> {
        let append = self
            .medium
            .append()
            .expect("appending needs the append capability");
        let id = self.next_segment.fetch_add(1, Ordering::SeqCst);
        let mut file = append.create(&segment_key(id))?;
        file.write_at(0, SEGMENT_MAGIC)?;
        lock(&self.open_segments).insert(id);
        Ok(OpenSegment {
            id,
            file,
            len: SEG_HEADER,
        })
    }

    /// Seals a segment: it is never written again and may be compacted.
    pub(crate) fn seal(&self, seg: Option<OpenSegment>) {
        if let Some(s) = seg {
            lock(&self.open_segments).remove(&s.id);
        }
    }

    /// Appends `items` (id, stored bytes, time stored) as one batch; see the module docs.
    /// Returns per item whether this call stored it.
    pub(crate) fn append(
        &self,
        items: &[(ChunkId, &[u8], i64)],
        mode: Mode,
    ) -> Result<Vec<bool>, StoreError> {
        let mut result = vec![false; items.len()];
        // Which items to write: for a put, those the index lacks, each id once.
        let ids: Vec<ChunkId> = items.iter().map(|(id, _, _)| *id).collect();
        let todo = self.index.to_write(&ids, mode)?;
        if todo.is_empty() {
            return Ok(result);
        }
        for &i in &todo {
            if u32::try_from(items[i].1.len()).is_err() {
                return Err(StoreError::io(
                    self.medium.describe("packs").as_str(),
                    std::io::Error::new(ErrorKind::InvalidInput, "chunk larger than 4 GiB"),
                ));
            }
        }
        let stored = if self.medium.append().is_some() {
            self.append_to_slot(items, &todo, mode)?
        } else {
            self.write_pack(items, &todo, mode)?
        };
        for i in stored {
            result[i] = true;
        }
        Ok(result)
    }

    /// The append path: the batch goes to the end of a writer slot's segment.
    fn append_to_slot(
        &self,
        items: &[(ChunkId, &[u8], i64)],
        todo: &[usize],
        mode: Mode,
    ) -> Result<Vec<usize>, StoreError> {
        let batch_len: u64 = todo
            .iter()
            .map(|&i| record_len(items[i].1.len() as u32))
            .sum();
        let mut slot = self.writer();
        let full = slot
            .as_ref()
            .is_some_and(|s| s.len > SEG_HEADER && s.len + batch_len > self.opts.segment_size);
        if full {
            self.seal(slot.take());
        }
        if slot.is_none() {
            *slot = Some(self.new_segment()?);
        }
        let seg = slot.as_mut().expect("a segment");
        let outcome = (|| {
            let (buf, records) = encode(seg.len, b"", items, todo);
            seg.file.write_at(seg.len, &buf)?;
            seg.file.sync()?;
            let new_len = seg.len + buf.len() as u64;
            drop(buf);
            let stored = self.commit(seg.id, new_len, items, todo, &records, mode)?;
            seg.len = new_len;
            Ok(stored)
        })();
        if outcome.is_err() {
            // The segment's tail past its committed length is unknown now: write no more to it
            // (the tail is truncated at the next open).
            self.seal(slot.take());
        }
        outcome
    }

    /// The path without appends: the batch becomes its own pack object.
    fn write_pack(
        &self,
        items: &[(ChunkId, &[u8], i64)],
        todo: &[usize],
        mode: Mode,
    ) -> Result<Vec<usize>, StoreError> {
        let id = self.next_segment.fetch_add(1, Ordering::SeqCst);
        let key = segment_key(id);
        let (buf, records) = encode(0, SEGMENT_MAGIC, items, todo);
        self.medium.put(&key, &buf)?;
        let len = buf.len() as u64;
        drop(buf);
        let outcome = self.commit(id, len, items, todo, &records, mode);
        if outcome.is_err() {
            // No row points at it; `open` would remove it too.
            let _ = self.medium.delete(&key);
        }
        outcome
    }

    /// Commits the records of `todo` (at `records`) into segment `seg`, now `new_len` bytes long.
    /// Returns the indices that the index now points at.
    fn commit(
        &self,
        seg: u64,
        new_len: u64,
        items: &[(ChunkId, &[u8], i64)],
        todo: &[usize],
        records: &[Loc],
        mode: Mode,
    ) -> Result<Vec<usize>, StoreError> {
        let ids: Vec<ChunkId> = todo.iter().map(|&i| items[i].0).collect();
        let stored = self.index.commit_batch(seg, new_len, records, &ids, mode)?;
        Ok(todo
            .iter()
            .zip(stored)
            .filter(|(_, s)| *s)
            .map(|(&i, _)| i)
            .collect())
    }
}

/// `prefix`, then the records of `todo`, as bytes to write at offset `base`; and the records'
/// locations (segment left 0).
fn encode(
    base: u64,
    prefix: &[u8],
    items: &[(ChunkId, &[u8], i64)],
    todo: &[usize],
) -> (Vec<u8>, Vec<Loc>) {
    let mut buf = Vec::with_capacity(
        prefix.len()
            + todo
                .iter()
                .map(|&i| record_len(items[i].1.len() as u32) as usize)
                .sum::<usize>(),
    );
    buf.extend_from_slice(prefix);
    let mut records = Vec::with_capacity(todo.len());
    for &i in todo {
        let (id, bytes, at) = items[i];
        let len = bytes.len() as u32;
        buf.extend_from_slice(&record_header(&id, len));
        records.push((0, base + buf.len() as u64, len, at));
        buf.extend_from_slice(bytes);
    }
    (buf, records)
}
