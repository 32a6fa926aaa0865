//! The [`Compressor`]: encodes the missing chunks into their stored form on one worker thread per
//! core and hands them to the sender in the order they finish.
//!
//! **Compression that pays**: already-compressed data (media, archives, encrypted files) does not
//! shrink, and a full zstd pass over it costs as much as one over text. [`encode`] therefore first
//! compresses a small sample of the chunk (a few pieces spread over it) at the fastest level; when
//! the sample does not shrink by [`MIN_SAVING`], the chunk is stored raw without a full pass.
//! Otherwise the whole chunk is compressed at the configured level, and stored raw anyway if that
//! did not make it smaller. Each worker thread keeps its zstd contexts for the whole run.

use std::io::Cursor;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::checker::Numbered;
use super::sender::Encoded;

/// Chunks shorter than this are compressed without a sample (the sample would be the chunk).
pub(crate) const SAMPLE_FROM: usize = 16 * 1024;
/// Pieces in a sample, and the length of each.
pub(crate) const SAMPLE_PIECES: usize = 4;
pub(crate) const SAMPLE_PIECE: usize = 1024;
/// The sample must shrink by at least this share (1/16 ≈ 6 %) for the chunk to be compressed.
pub(crate) const MIN_SAVING: usize = 16;

pub(crate) struct Compressor {
    level: i32,
    jobs: usize,
    input: mpsc::Receiver<Numbered>,
    output: mpsc::Sender<Encoded>,
}

impl Compressor {
    pub(crate) fn new(
        level: i32,
        jobs: usize,
        input: mpsc::Receiver<Numbered>,
        output: mpsc::Sender<Encoded>,
    ) -> Self {
        Compressor {
            level,
            jobs: jobs.max(1),
            input,
            output,
        }
    }

    /// Runs `jobs` worker threads (each keeps its zstd contexts, so their memory is bounded by
    /// the number of jobs, not by how many pool threads ever compressed) until the input closes.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let Compressor {
            level,
            jobs,
            input,
            output,
        } = self;
        let input = Mutex::new(input);
        tokio::task::spawn_blocking(move || {
            std::thread::scope(|s| {
                for _ in 0..jobs {
                    s.spawn(|| {
                        let mut contexts = None;
                        loop {
                            // One worker waits on the channel at a time; the others on the lock.
                            let next = input
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .blocking_recv();
                            let Some(c) = next else { return };
                            let stored = encode_with(&mut contexts, &c.data, level);
                            drop(c.data);
                            // The plaintext is gone: the chunk now holds its stored bytes.
                            let mut permit = c.permit;
                            permit.shrink_to(stored.len());
                            let done = Encoded {
                                index: c.index,
                                id: c.id,
                                stored,
                                permit,
                            };
                            if output.blocking_send(done).is_err() {
                                return;
                            }
                        }
                    });
                }
            })
        })
        .await?;
        // A worker stops early only when the sender is gone: the run fails with its error.
        Ok(())
    }
}

/// A worker's zstd contexts: one at the configured level, one for samples.
pub struct Contexts {
    level: i32,
    full: zstd::bulk::Compressor<'static>,
    sample: zstd::bulk::Compressor<'static>,
}

/// Whether a sample of `plain` shrinks enough at zstd's fastest level to be worth a full pass.
pub(crate) fn sample_pays(plain: &[u8], sample_ctx: &mut zstd::bulk::Compressor<'_>) -> bool {
    if plain.len() < SAMPLE_FROM {
        return true;
    }
    let step = plain.len() / SAMPLE_PIECES;
    let mut sample = Vec::with_capacity(SAMPLE_PIECES * SAMPLE_PIECE);
    for i in 0..SAMPLE_PIECES {
        sample.extend_from_slice(&plain[i * step..i * step + SAMPLE_PIECE]);
    }
    match sample_ctx.compress(&sample) {
        Ok(c) => c.len() + sample.len() / MIN_SAVING <= sample.len(),
        Err(_) => true,
    }
}

/// The stored form of `plain` (see the module docs): zstd at `level` when it pays, raw otherwise.
/// (Fresh zstd contexts per call; the workers keep theirs, see [`encode_with`].)
#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "the one-shot form the tests and the module docs use"
    )
)]
pub(crate) fn encode(plain: &[u8], level: i32) -> Vec<u8> {
    encode_with(&mut None, plain, level)
}

/// `encode` with the caller's zstd contexts (created on first use).
pub fn encode_with(contexts: &mut Option<Contexts>, plain: &[u8], level: i32) -> Vec<u8> {
    if level <= 0 {
        return asgard_core::stored::encode_raw(plain);
    }
    if contexts.as_ref().is_none_or(|c| c.level != level) {
        match (
            zstd::bulk::Compressor::new(level),
            zstd::bulk::Compressor::new(1),
        ) {
            (Ok(full), Ok(sample)) => {
                *contexts = Some(Contexts {
                    level,
                    full,
                    sample,
                })
            }
            _ => return asgard_core::stored::encode(plain, level),
        }
    }
    let Some(ctx) = contexts.as_mut() else {
        return asgard_core::stored::encode(plain, level);
    };
    if !sample_pays(plain, &mut ctx.sample) {
        return asgard_core::stored::encode_raw(plain);
    }
    // The frame goes right behind the header byte; a frame that is not smaller than the
    // plaintext is dropped for the raw form.
    let mut out = Vec::with_capacity(1 + zstd::zstd_safe::compress_bound(plain.len()));
    out.push(asgard_core::stored::FORMAT_ZSTD);
    let mut cursor = Cursor::new(out);
    cursor.set_position(1);
    match ctx.full.compress_to_buffer(plain, &mut cursor) {
        Ok(n) if n < plain.len() => cursor.into_inner(),
        _ => asgard_core::stored::encode_raw(plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgard_core::ChunkId;
    use asgard_core::testdata::random_bytes as pseudo_random;

    fn text(len: usize) -> Vec<u8> {
        let words = [
            "Sicherung ",
            "chunk ",
            "der ",
            "Server ",
            "prüft ",
            "jeden ",
            "Block\n",
        ];
        let mut out = Vec::new();
        let mut i = 7usize;
        while out.len() < len {
            i = i.wrapping_mul(31).wrapping_add(17) % 1009;
            out.extend_from_slice(words[i % words.len()].as_bytes());
        }
        out.truncate(len);
        out
    }

    #[test]
    fn random_data_is_stored_raw_text_compressed_and_both_decode() {
        let r = pseudo_random(200_000, 3);
        let stored = encode(&r, 3);
        assert_eq!(stored[0], asgard_core::stored::FORMAT_RAW);
        let mut ctx = zstd::bulk::Compressor::new(1).unwrap();
        assert!(
            !sample_pays(&r, &mut ctx),
            "random data must fail the sample"
        );
        let t = text(200_000);
        let stored = encode(&t, 3);
        assert_eq!(stored[0], asgard_core::stored::FORMAT_ZSTD);
        assert!(stored.len() < t.len() / 2);
        for plain in [r, t, text(100), Vec::new()] {
            let stored = encode(&plain, 3);
            let back =
                asgard_core::stored::decode_verified(&stored, &ChunkId::of(&plain), plain.len())
                    .unwrap();
            assert_eq!(back, plain);
        }
    }

    #[test]
    fn level_zero_is_raw_and_level_changes_take_effect() {
        let t = text(50_000);
        assert_eq!(encode(&t, 0)[0], asgard_core::stored::FORMAT_RAW);
        let fast = encode(&t, 1);
        let strong = encode(&t, 19);
        assert_eq!(fast[0], asgard_core::stored::FORMAT_ZSTD);
        assert!(strong.len() <= fast.len());
    }

    /// A compressed chunk holds only its stored bytes of the budget from then on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_compressed_chunk_gives_back_its_plaintext_bytes() {
        let budget = super::super::MemoryBudget::new(1 << 20);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (out_tx, mut out_rx) = tokio::sync::mpsc::channel(4);
        let stage = tokio::spawn(Compressor::new(3, 2, rx, out_tx).run());
        let data = text(300_000);
        let permit = budget.acquire(data.len()).unwrap();
        tx.send(super::super::checker::Numbered {
            index: 0,
            id: ChunkId::of(&data),
            data,
            permit,
        })
        .await
        .unwrap();
        drop(tx);
        let done = out_rx.recv().await.unwrap();
        assert!(done.stored.len() < 300_000 / 2);
        assert_eq!(done.permit.bytes(), done.stored.len());
        assert_eq!(budget.used(), done.stored.len());
        drop(done);
        assert_eq!(budget.used(), 0);
        stage.await.unwrap().unwrap();
    }
}
