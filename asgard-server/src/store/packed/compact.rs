//! Compaction: giving back the space of deleted chunks.
//!
//! A sealed segment whose live share falls below a threshold is compacted: its records are read
//! front to back ([`Records`]) and those the index (a snapshot) still points at are copied to an
//! output segment, which is made durable. One index transaction then moves only the locations
//! that *still* point at the old record (a chunk deleted or replaced meanwhile is not
//! resurrected), checks that the old segment's live bytes drop to exactly zero (otherwise nothing
//! of it is moved and the segment stays), and drops the old segment's row
//! ([`Index::commit_compaction`]). Only then is the old object removed. A reader that looked up
//! the old location before and finds the object gone looks the chunk up again.
//!
//! With appends, the output is an open segment that takes the live records of one input after
//! another, synced and committed per input. Without appends, the live records of as many inputs
//! as fit into one segment are gathered in memory and written as one new pack object, then
//! committed in one transaction (per input as above).

use std::sync::atomic::Ordering;

use super::format::{Records, SEG_HEADER, SEGMENT_MAGIC, Step, segment_key};
use super::index::{Moved, Snapshot};
use super::writer::OpenSegment;
use super::{PackedStore, lock};
use crate::store::medium::Appender;
use crate::store::{CompactReport, StoreError};

/// Bytes a compaction buffers before it writes them to an appendable output.
const COPY_BUFFER: usize = 1 << 20;

/// The output of a compaction being filled: bytes from offset `base` on.
struct Output<'a> {
    base: u64,
    buf: Vec<u8>,
    /// Where full buffers go (with appends); `None`: everything stays in memory (a pack).
    sink: Option<&'a mut dyn Appender>,
}

impl Output<'_> {
    /// The offset of the next byte.
    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Adds a record; returns the offset of its stored bytes.
    fn push(&mut self, header: &[u8], data: &[u8]) -> Result<u64, StoreError> {
        self.buf.extend_from_slice(header);
        let offset = self.end();
        self.buf.extend_from_slice(data);
        if self.buf.len() >= COPY_BUFFER && self.sink.is_some() {
            self.flush()?;
        }
        Ok(offset)
    }

    /// Forgets everything from offset `to` on (later records overwrite it).
    fn rewind(&mut self, to: u64) {
        if to >= self.base {
            self.buf.truncate((to - self.base) as usize);
        } else {
            self.buf.clear();
            self.base = to;
        }
    }

    /// Writes the buffer to the sink, if there is one.
    fn flush(&mut self) -> Result<(), StoreError> {
        if let Some(sink) = self.sink.as_mut() {
            sink.write_at(self.base, &self.buf)?;
            self.base += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

/// A compaction candidate: segment id, committed length, live bytes.
type Candidate = (u64, u64, u64);

impl PackedStore {
    /// Compacts sealed segments whose live share is below `below_percent` (see the module docs).
    /// `between` runs after the live records are copied and durable, before the index
    /// transaction that moves them (tests use it to race deletions and replacements).
    ///
    /// # Errors
    /// [`StoreError`] from the medium or the index; whatever was committed before stays
    /// consistent.
    pub fn compact_with(
        &self,
        below_percent: u32,
        between: &mut dyn FnMut(),
    ) -> Result<CompactReport, StoreError> {
        let _running = lock(&self.compacting);
        let mut report = CompactReport::default();
        let rows = self.index.segments()?;
        let open = lock(&self.open_segments).clone();
        let below = u128::from(below_percent.min(100));
        let candidates: Vec<Candidate> = rows
            .into_iter()
            .filter(|(id, committed, live)| {
                let total = u128::from(committed.saturating_sub(SEG_HEADER));
                !open.contains(id) && u128::from(*live) * 100 < total * below
            })
            .collect();
        if self.medium.append().is_some() {
            let mut out: Option<OpenSegment> = None;
            let result = (|| {
                for c in candidates {
                    self.compact_appending(c, &mut out, &mut *between, &mut report)?;
                }
                Ok(())
            })();
            self.seal(out);
            result.map(|()| report)
        } else {
            let mut group: Vec<Candidate> = Vec::new();
            let mut group_live = 0u64;
            for c in candidates {
                if !group.is_empty() && group_live + c.2 > self.opts.segment_size {
                    self.compact_into_pack(&group, &mut *between, &mut report)?;
                    group.clear();
                    group_live = 0;
                }
                group_live += c.2;
                group.push(c);
            }
            if !group.is_empty() {
                self.compact_into_pack(&group, between, &mut report)?;
            }
            Ok(report)
        }
    }

    /// Copies the records of segment `seg` that `snap` points at into `out`; returns them and
    /// the bytes copied, or `None` (with `out` as before) when a damaged record stops the walk.
    fn copy_live(
        &self,
        seg: u64,
        committed: u64,
        snap: &Snapshot<'_>,
        out: &mut Output<'_>,
    ) -> Result<Option<(Vec<Moved>, u64)>, StoreError> {
        let key = segment_key(seg);
        let start = out.end();
        let mut records = Records::new(&*self.medium, &key, committed);
        let mut moved = Vec::new();
        loop {
            match records.next()? {
                Step::End => break,
                Step::Damaged { offset } => {
                    tracing::warn!(path = %self.medium.describe(&key), offset, "damaged record header: segment not compacted");
                    out.rewind(start);
                    return Ok(None);
                }
                Step::Record(r) => {
                    let len = r.data.len() as u32;
                    if let Some((s, off, l, at)) = snap.get(&r.id)?
                        && s == seg
                        && off == r.offset
                        && l == len
                    {
                        let new_offset = out.push(&r.header, r.data)?;
                        moved.push(Moved {
                            id: r.id,
                            old_offset: r.offset,
                            new_offset,
                            len,
                            at,
                        });
                    }
                }
            }
        }
        Ok(Some((moved, out.end() - start)))
    }

    /// Compacts one segment into the open output segment `out` (with appends).
    fn compact_appending(
        &self,
        (id, committed, live): Candidate,
        out: &mut Option<OpenSegment>,
        between: &mut dyn FnMut(),
        report: &mut CompactReport,
    ) -> Result<(), StoreError> {
        let mut moved = Vec::new();
        let mut copied = 0u64;
        if live > 0 {
            let fits = out
                .as_ref()
                .is_some_and(|o| o.len == SEG_HEADER || o.len + live <= self.opts.segment_size);
            if !fits {
                self.seal(out.take());
            }
            if out.is_none() {
                *out = Some(self.new_segment()?);
            }
            let o = out.as_mut().expect("an output segment");
            let snap = self.index.snapshot()?;
            let mut output = Output {
                base: o.len,
                buf: Vec::new(),
                sink: Some(&mut *o.file),
            };
            let Some((m, c)) = self.copy_live(id, committed, &snap, &mut output)? else {
                return Ok(());
            };
            output.flush()?;
            drop(output);
            drop(snap);
            o.file.sync()?;
            (moved, copied) = (m, c);
        }
        between();

        let out_row = match out.as_ref() {
            Some(o) if !moved.is_empty() => Some((o.id, o.len + copied)),
            _ => None,
        };
        if !self.index.commit_compaction(&[(id, moved)], out_row)?[0] {
            return Ok(());
        }
        if let (Some(o), Some((_, len))) = (out.as_mut(), out_row) {
            o.len = len;
        }
        // From here on nothing points into the old segment: a crash leaves an object `open`
        // removes.
        self.remove_segment(id)?;
        report.segments_compacted += 1;
        report.bytes_reclaimed += committed.saturating_sub(copied);
        tracing::debug!(segment = id, copied, "segment compacted");
        Ok(())
    }

    /// Compacts a group of segments into one new pack object (without appends).
    fn compact_into_pack(
        &self,
        group: &[Candidate],
        between: &mut dyn FnMut(),
        report: &mut CompactReport,
    ) -> Result<(), StoreError> {
        let snap = self.index.snapshot()?;
        let mut output = Output {
            base: 0,
            buf: SEGMENT_MAGIC.to_vec(),
            sink: None,
        };
        let mut inputs = Vec::new();
        let mut copied = Vec::new();
        for &(id, committed, live) in group {
            if live == 0 {
                inputs.push((id, Vec::new()));
                copied.push((committed, 0));
            } else if let Some((m, c)) = self.copy_live(id, committed, &snap, &mut output)? {
                inputs.push((id, m));
                copied.push((committed, c));
            }
        }
        drop(snap);
        let out = if inputs.iter().any(|(_, m)| !m.is_empty()) {
            let out_id = self.next_segment.fetch_add(1, Ordering::SeqCst);
            self.medium.put(&segment_key(out_id), &output.buf)?;
            Some((out_id, output.end()))
        } else {
            None
        };
        drop(output);
        between();
        let accepted = match self.index.commit_compaction(&inputs, out) {
            Ok(a) => a,
            Err(e) => {
                if let Some((out_id, _)) = out {
                    let _ = self.medium.delete(&segment_key(out_id));
                }
                return Err(e);
            }
        };
        if let Some((out_id, _)) = out
            && !accepted.contains(&true)
        {
            self.medium.delete(&segment_key(out_id))?;
        }
        for (((id, _), ok), (committed, c)) in inputs.iter().zip(accepted).zip(copied) {
            if ok {
                self.remove_segment(*id)?;
                report.segments_compacted += 1;
                report.bytes_reclaimed += committed.saturating_sub(c);
                tracing::debug!(segment = id, copied = c, "segment compacted");
            }
        }
        Ok(())
    }

    /// Removes segment `id`, which the index no longer knows.
    pub(crate) fn remove_segment(&self, id: u64) -> Result<(), StoreError> {
        self.medium.delete(&segment_key(id))?;
        Ok(())
    }
}
