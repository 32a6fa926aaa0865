//! The chunks this run has sent, shared by the reader threads, so that each chunk goes out once.
//!
//! **Why a claim and not just a set**: the committer's guarantee rests on the channel order (an
//! entry is committed once every chunk that came *before it in the channel* is acknowledged, see
//! `pipeline::committer`). A reader that skips a chunk because another reader sent it must
//! therefore send its own entry only after that chunk is *in* the channel. Marking the chunk as
//! sent before it is queued broke that: the first reader marked it, then waited for budget (or
//! channel space); a second reader met the same chunk in another file, skipped it and queued its
//! entry, which then overtook the chunk and was committed while the server lacked the chunk; the
//! server refused that commit (`missing_chunks`) and the whole run failed.
//!
//! So a chunk is first *claimed* (by exactly one reader) and becomes *queued* only once that
//! reader's send into the channel returned. A reader that meets a claimed chunk waits until it
//! is queued. That wait is rare and short (two readers at the same chunk at the same moment; it
//! lasts at most as long as the first reader waits for budget) and only the reader meeting that
//! chunk waits, so readers are not serialised and every chunk is still sent once. If the claimer
//! gives up (the pipeline is gone), the claim is dropped and a waiter claims the chunk itself
//! (and finds the pipeline gone too).
//!
//! No deadlock: a claimer holds no budget while it waits for budget, and the stages after the
//! channel release budget without ever waiting for a reader; a reader holds at most one claim
//! (the chunk it is queuing) and never waits for another claim while holding one.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};

use asgard_core::ChunkId;

#[derive(Debug, Default)]
struct State {
    /// Chunks in the channel (or past it).
    queued: HashSet<ChunkId>,
    /// Chunks a reader is queuing right now: at most one per reader thread.
    claimed: HashSet<ChunkId>,
    /// Readers waiting for a claimed chunk (no wake-up call per chunk when there are none).
    waiting: usize,
}

/// The chunks of the run that are queued, or being queued by one reader.
#[derive(Debug, Default)]
pub(crate) struct SentChunks {
    state: Mutex<State>,
    settled: Condvar,
}

/// What a reader that met a chunk must do.
pub(crate) enum Claim<'a> {
    /// The chunk is in the channel: an entry queued from now on follows it there.
    Queued,
    /// Queue the chunk, then call [`Claimed::queued`].
    Mine(Claimed<'a>),
}

/// One reader's claim on a chunk. Dropped without [`Claimed::queued`], it is given up.
pub(crate) struct Claimed<'a> {
    set: &'a SentChunks,
    id: ChunkId,
    queued: bool,
}

impl SentChunks {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `id` for the caller, or tells it that the chunk is queued; waits while another
    /// reader is queuing it.
    pub(crate) fn claim(&self, id: ChunkId) -> Claim<'_> {
        let mut s = self.lock();
        loop {
            if s.queued.contains(&id) {
                return Claim::Queued;
            }
            if s.claimed.insert(id) {
                return Claim::Mine(Claimed {
                    set: self,
                    id,
                    queued: false,
                });
            }
            s.waiting += 1;
            s = self.settled.wait(s).unwrap_or_else(|p| p.into_inner());
            s.waiting -= 1;
        }
    }

    /// Whether a reader claimed or queued `id`.
    #[cfg(test)]
    pub(crate) fn met(&self, id: &ChunkId) -> bool {
        let s = self.lock();
        s.queued.contains(id) || s.claimed.contains(id)
    }

    /// Readers waiting for another one's claim now.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().waiting
    }
}

impl Claimed<'_> {
    /// The chunk is in the channel (call right after the send returned).
    pub(crate) fn queued(mut self) {
        self.queued = true;
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        let mut s = self.set.lock();
        s.claimed.remove(&self.id);
        if self.queued {
            s.queued.insert(self.id);
        }
        let wake = s.waiting > 0;
        drop(s);
        if wake {
            self.set.settled.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wait_for(what: impl Fn() -> bool) {
        // Polls a condition (never a fixed sleep standing in for one).
        while !what() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_chunk_is_claimed_once_and_queued_for_everyone_after() {
        let set = SentChunks::default();
        let id = ChunkId::of(b"a");
        let Claim::Mine(claim) = set.claim(id) else {
            panic!("the first reader must queue the chunk");
        };
        claim.queued();
        assert!(matches!(set.claim(id), Claim::Queued));
        let other = ChunkId::of(b"b");
        assert!(matches!(set.claim(other), Claim::Mine(_)));
    }

    #[test]
    fn a_reader_meeting_a_claimed_chunk_waits_until_it_is_queued() {
        let set = SentChunks::default();
        let id = ChunkId::of(b"a");
        let Claim::Mine(claim) = set.claim(id) else {
            panic!("the first reader must queue the chunk");
        };
        std::thread::scope(|s| {
            let second = s.spawn(|| matches!(set.claim(id), Claim::Queued));
            wait_for(|| set.waiting() == 1);
            assert!(!second.is_finished(), "it must wait for the claim");
            claim.queued();
            assert!(second.join().unwrap(), "it must skip the queued chunk");
        });
        assert_eq!(set.waiting(), 0);
    }

    #[test]
    fn a_claim_given_up_passes_to_a_waiting_reader() {
        let set = SentChunks::default();
        let id = ChunkId::of(b"a");
        let Claim::Mine(claim) = set.claim(id) else {
            panic!("the first reader must queue the chunk");
        };
        std::thread::scope(|s| {
            let second = s.spawn(|| match set.claim(id) {
                Claim::Mine(c) => {
                    c.queued();
                    true
                }
                Claim::Queued => false,
            });
            wait_for(|| set.waiting() == 1);
            drop(claim);
            assert!(second.join().unwrap(), "the waiter must queue it itself");
        });
        assert!(matches!(set.claim(id), Claim::Queued));
    }
}
