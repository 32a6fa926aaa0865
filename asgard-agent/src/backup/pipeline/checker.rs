//! The [`Checker`]: numbers the chunks in arrival order and asks the server in batches which ones
//! it lacks; forwards the missing ones to the compressor and acknowledges the others (a "present"
//! answer is a lease on the chunk) to the committer, which also gets every entry, tagged with the
//! number of chunks before it.

use std::collections::HashSet;
use std::time::Duration;

use asgard_core::ChunkId;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::committer::ToCommit;
use super::{Batch, Item, Permit, Remote};

/// Ids per `check` request (the protocol allows [`asgard_core::protocol::MAX_CHECK_IDS`]).
pub(crate) const CHECK_IDS: usize = 4096;
/// How long a partial batch waits for more chunks.
pub(crate) const CHECK_LINGER: Duration = Duration::from_millis(5);

/// A chunk on its way to the server, with its number in this run.
#[derive(Debug)]
pub(crate) struct Numbered {
    pub(crate) index: u64,
    pub(crate) id: ChunkId,
    pub(crate) data: Vec<u8>,
    pub(crate) permit: Permit,
}

pub(crate) struct Checker<'a, R> {
    remote: &'a R,
    in_flight: usize,
    input: mpsc::Receiver<Item>,
    to_compress: mpsc::Sender<Numbered>,
    to_commit: mpsc::Sender<ToCommit>,
}

/// The stage after this one is gone: it failed, and its error is the one the run reports.
pub(super) fn gone<T>(_: T) -> anyhow::Error {
    anyhow::anyhow!("backup pipeline stage stopped")
}

impl<'a, R: Remote> Checker<'a, R> {
    pub(crate) fn new(
        remote: &'a R,
        in_flight: usize,
        input: mpsc::Receiver<Item>,
        to_compress: mpsc::Sender<Numbered>,
        to_commit: mpsc::Sender<ToCommit>,
    ) -> Self {
        Checker {
            remote,
            in_flight: in_flight.max(1),
            input,
            to_compress,
            to_commit,
        }
    }

    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let Checker {
            remote,
            in_flight: max_in_flight,
            mut input,
            to_compress,
            to_commit,
        } = self;
        let mut batch: Batch<Numbered> = Batch::new(CHECK_IDS, usize::MAX, CHECK_LINGER);
        let mut in_flight = FuturesUnordered::new();
        let mut next = 0u64;
        let mut closed = false;
        loop {
            let slot_free = in_flight.len() < max_in_flight;
            if slot_free && batch.ready(closed) {
                let chunks = batch.take();
                let ids: Vec<ChunkId> = chunks.iter().map(|c| c.id).collect();
                let request = remote.check(ids);
                in_flight.push(async move { (request.await, chunks) });
                continue;
            }
            if closed && batch.is_empty() && in_flight.is_empty() {
                return Ok(());
            }
            let deadline = batch.deadline();
            tokio::select! {
                item = input.recv(), if !closed && !batch.is_full() => match item {
                    None => closed = true,
                    Some(Item::Chunk { id, data, permit }) => {
                        batch.push(Numbered { index: next, id, data, permit }, 0);
                        next += 1;
                    }
                    Some(Item::Entry { entry, note, permit, folder }) => {
                        let entry = ToCommit::Entry { after: next, entry, note, permit, folder };
                        to_commit.send(entry).await.map_err(gone)?;
                    }
                },
                Some((answer, chunks)) = in_flight.next(), if !in_flight.is_empty() => {
                    let missing: HashSet<ChunkId> = answer?.into_iter().collect();
                    let mut present = Vec::new();
                    for c in chunks {
                        if missing.contains(&c.id) {
                            to_compress.send(c).await.map_err(gone)?;
                        } else {
                            present.push(c.index);
                        }
                    }
                    if !present.is_empty() {
                        to_commit.send(ToCommit::Acked(present)).await.map_err(gone)?;
                    }
                },
                () = tokio::time::sleep_until(deadline), if slot_free && !batch.is_empty() => {},
            }
        }
    }
}
