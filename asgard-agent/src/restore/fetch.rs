//! Fetching chunks: requests of about [`REQUEST_BYTES`] in file order, every frame verified
//! (bounded decode + blake3 against its id) before a byte of it reaches a file.
//!
//! A request holds the frames of one network read being verified and written (one job on the
//! blocking pool) and those of the next read being received. Whatever an answer lacks (a missing frame, a
//! damaged chunk, a broken connection) fails the places of those chunks, never more.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use asgard_core::ChunkId;
use asgard_core::frames::{Frame, FrameDecoder};
use asgard_core::protocol::MAX_FETCH_IDS;
use serde::Serialize;

use crate::client::Client;

/// Plaintext bytes asked for in one fetch request (the last chunk may overshoot).
pub(crate) const REQUEST_BYTES: u64 = 8 << 20;

/// What the restore pipeline did, for the summary.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Fetch requests sent.
    pub(crate) requests: AtomicU64,
    /// Chunks received from the server (and verified).
    pub(crate) chunks_fetched: AtomicU64,
    /// Stored (compressed) bytes of those chunks.
    pub(crate) bytes_fetched: AtomicU64,
    /// Distinct all-zero chunks that were neither fetched nor written.
    pub(crate) chunks_zero: AtomicU64,
    /// Chunks read back from files restored earlier in this run instead of being fetched.
    pub(crate) chunks_copied: AtomicU64,
    /// Places filled from a chunk obtained for another place (dedupe within a window).
    pub(crate) chunks_shared: AtomicU64,
}

/// The counters as plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct StatsSnapshot {
    pub(crate) requests: u64,
    pub(crate) chunks_fetched: u64,
    pub(crate) bytes_fetched: u64,
    pub(crate) chunks_zero: u64,
    pub(crate) chunks_copied: u64,
    pub(crate) chunks_shared: u64,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: l(&self.requests),
            chunks_fetched: l(&self.chunks_fetched),
            bytes_fetched: l(&self.bytes_fetched),
            chunks_zero: l(&self.chunks_zero),
            chunks_copied: l(&self.chunks_copied),
            chunks_shared: l(&self.chunks_shared),
        }
    }
}

/// Why a chunk did not arrive in usable form.
pub(crate) enum ChunkFailure {
    /// Not received (missing on the server, wrong length, the request failed): the reason.
    NotReceived(String),
    /// Received but it does not decode to its id: the decoder's error.
    Damaged(String),
}

/// Where fetched chunks go: the places of a window.
pub(crate) trait Places: Send + Sync + 'static {
    /// The plaintext length of a chunk the window needs; `None` for one it does not know.
    fn chunk_len(&self, id: &ChunkId) -> Option<u32>;
    /// A verified chunk, to be written to every place that needs it.
    fn deliver(&self, id: &ChunkId, plain: &[u8]);
    /// A chunk that cannot be had: its places fail.
    fn fail(&self, id: &ChunkId, why: ChunkFailure);
}

/// Splits ids (in order) into requests of about [`REQUEST_BYTES`] and at most [`MAX_FETCH_IDS`].
pub(crate) fn batches(ids: &[ChunkId], len: impl Fn(&ChunkId) -> u64) -> Vec<Vec<ChunkId>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0u64;
    for id in ids {
        cur.push(*id);
        bytes += len(id);
        if bytes >= REQUEST_BYTES || cur.len() >= MAX_FETCH_IDS {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One fetch request. The frames that arrive together are verified and written as one job on the
/// blocking pool while the next frames are read from the network; at most one such job per
/// request runs at a time, so a request holds the frames of one network read being processed and
/// those of the next being received. Whatever the answer lacks fails its files.
pub(crate) async fn fetch_batch<P: Places>(
    client: &Client,
    batch: Vec<ChunkId>,
    w: &Arc<P>,
    stats: &Arc<Stats>,
) {
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let mut done = 0usize;
    let mut working: Option<tokio::task::JoinHandle<()>> = None;
    let result: anyhow::Result<()> = async {
        let mut resp = client.fetch(batch.clone()).await?;
        let mut decoder = FrameDecoder::default();
        while let Some(piece) = resp.chunk().await? {
            decoder.push(&piece);
            let mut frames = Vec::new();
            while let Some(frame) = decoder.next_frame()? {
                let Some(want) = batch.get(done) else {
                    anyhow::bail!("the server sent more chunks than requested");
                };
                if frame.id() != want {
                    anyhow::bail!("the server sent chunk {} instead of {want}", frame.id());
                }
                done += 1;
                frames.push(frame);
            }
            if frames.is_empty() {
                continue;
            }
            if let Some(job) = working.take() {
                job.await?;
            }
            let (w, stats) = (w.clone(), stats.clone());
            working = Some(tokio::task::spawn_blocking(move || {
                for frame in frames {
                    handle_frame(&*w, frame, &stats);
                }
            }));
        }
        decoder.finish()?;
        if done < batch.len() {
            anyhow::bail!("the answer ended after {done} of {} chunks", batch.len());
        }
        Ok(())
    }
    .await;
    // The frames handed over are written (or failed) before the request counts as done.
    let finished = match working.take() {
        Some(job) => job.await.map_err(anyhow::Error::from),
        None => Ok(()),
    };
    if let Err(e) = result.and(finished) {
        let rest: Vec<ChunkId> = batch[done.min(batch.len())..].to_vec();
        let w = w.clone();
        let text = format!("{e:#}");
        let _ = tokio::task::spawn_blocking(move || {
            for id in &rest {
                w.fail(id, ChunkFailure::NotReceived(text.clone()));
            }
        })
        .await;
    }
}

/// One received frame: a chunk to verify and write, or one the server does not have.
fn handle_frame<P: Places>(w: &P, frame: Frame, stats: &Stats) {
    match frame {
        Frame::Data { id, stored } => {
            stats
                .bytes_fetched
                .fetch_add(stored.len() as u64, Ordering::Relaxed);
            deliver_stored(w, &id, &stored, stats);
        }
        Frame::Missing { id, reason } => {
            w.fail(&id, ChunkFailure::NotReceived(reason));
        }
    }
}

/// Decodes and verifies a fetched chunk, then hands it to its places.
fn deliver_stored<P: Places>(w: &P, id: &ChunkId, stored: &[u8], stats: &Stats) {
    let Some(len) = w.chunk_len(id) else { return };
    match asgard_core::stored::decode_verified(stored, id, len as usize) {
        Ok(plain) if plain.len() == len as usize => {
            stats.chunks_fetched.fetch_add(1, Ordering::Relaxed);
            w.deliver(id, &plain);
        }
        Ok(plain) => {
            let reason = format!("{} bytes instead of {}", plain.len(), len);
            w.fail(id, ChunkFailure::NotReceived(reason));
        }
        Err(e) => w.fail(id, ChunkFailure::Damaged(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_follow_bytes_and_count() {
        let ids: Vec<ChunkId> = (0..10u8).map(|i| ChunkId([i; 32])).collect();
        let b = batches(&ids, |_| REQUEST_BYTES / 3 + 1);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
        let many: Vec<ChunkId> = (0..(MAX_FETCH_IDS + 5) as u32)
            .map(|i| {
                let mut a = [0u8; 32];
                a[..4].copy_from_slice(&i.to_le_bytes());
                ChunkId(a)
            })
            .collect();
        let b = batches(&many, |_| 1);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_FETCH_IDS, 5]
        );
        assert!(batches(&[], |_| 1).is_empty());
    }
}
