//! The [`Sender`]: packs encoded chunks, whichever files they come from, into multipart upload
//! requests of up to `request_bytes` and keeps up to `in_flight` of them running at once on the
//! client's connections. When a request is answered, its chunks are acknowledged to the committer
//! and their memory goes back to the budget.

use std::time::Duration;

use asgard_core::ChunkId;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::checker::gone;
use super::committer::ToCommit;
use super::{Batch, Permit, Remote};

/// How long a partial request waits for more chunks.
pub(crate) const UPLOAD_LINGER: Duration = Duration::from_millis(50);
/// Chunks per request at most (many tiny chunks make a request of many parts).
pub(crate) const UPLOAD_CHUNKS: usize = 2000;

/// A chunk in stored form, ready to upload.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) index: u64,
    pub(crate) id: ChunkId,
    pub(crate) stored: Vec<u8>,
    pub(crate) permit: Permit,
}

/// What the uploads did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SendStats {
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_new: u64,
    pub(crate) chunks_uploaded: u64,
}

pub(crate) struct Sender<'a, R> {
    remote: &'a R,
    request_bytes: usize,
    in_flight: usize,
    input: mpsc::Receiver<Encoded>,
    to_commit: mpsc::Sender<ToCommit>,
}

impl<'a, R: Remote> Sender<'a, R> {
    pub(crate) fn new(
        remote: &'a R,
        request_bytes: usize,
        in_flight: usize,
        input: mpsc::Receiver<Encoded>,
        to_commit: mpsc::Sender<ToCommit>,
    ) -> Self {
        Sender {
            remote,
            request_bytes: request_bytes.max(1),
            in_flight: in_flight.max(1),
            input,
            to_commit,
        }
    }

    pub(crate) async fn run(self) -> anyhow::Result<SendStats> {
        let Sender {
            remote,
            request_bytes,
            in_flight: max_in_flight,
            mut input,
            to_commit,
        } = self;
        let mut stats = SendStats::default();
        let mut batch: Batch<Encoded> = Batch::new(UPLOAD_CHUNKS, request_bytes, UPLOAD_LINGER);
        // A chunk that did not fit into the batch waits here for the next one.
        let mut held: Option<Encoded> = None;
        let mut in_flight = FuturesUnordered::new();
        let mut closed = false;
        loop {
            let slot_free = in_flight.len() < max_in_flight;
            if slot_free && (batch.ready(closed) || (held.is_some() && !batch.is_empty())) {
                let chunks = batch.take();
                let bytes: usize = chunks.iter().map(|c| c.stored.len()).sum();
                let mut parts = Vec::with_capacity(chunks.len());
                let mut acks = Vec::with_capacity(chunks.len());
                for c in chunks {
                    parts.push((c.id, c.stored));
                    acks.push((c.index, c.permit));
                }
                let request = remote.upload(parts);
                in_flight.push(async move { (request.await, acks, bytes) });
                if let Some(c) = held.take() {
                    let len = c.stored.len();
                    batch.push(c, len);
                }
                continue;
            }
            if closed && batch.is_empty() && held.is_none() && in_flight.is_empty() {
                return Ok(stats);
            }
            let deadline = batch.deadline();
            tokio::select! {
                chunk = input.recv(), if !closed && held.is_none() && !batch.is_full() => match chunk {
                    None => closed = true,
                    Some(c) => {
                        let len = c.stored.len();
                        if batch.would_overflow(len) {
                            held = Some(c);
                        } else {
                            batch.push(c, len);
                        }
                    }
                },
                Some((answer, acks, bytes)) = in_flight.next(), if !in_flight.is_empty() => {
                    let answer = answer?;
                    stats.bytes_sent += bytes as u64;
                    stats.bytes_new += answer.new_bytes;
                    stats.chunks_uploaded += acks.len() as u64;
                    // The permits go back to the budget here, once the server has the chunks.
                    let (indices, _permits): (Vec<u64>, Vec<Permit>) = acks.into_iter().unzip();
                    to_commit.send(ToCommit::Acked(indices)).await.map_err(gone)?;
                },
                () = tokio::time::sleep_until(deadline), if slot_free && !batch.is_empty() => {},
            }
        }
    }
}
