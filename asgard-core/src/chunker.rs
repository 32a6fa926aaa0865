//! Content-defined chunking with FastCDC (v2020).
//!
//! Boundaries depend only on the content around them, so an insert near the start of a file moves
//! the boundaries near the insert and leaves the rest of the chunks (and their ids) unchanged: that is
//! what makes dedupe work across versions. The parameters are recorded with every file version, so a
//! later change of the defaults never breaks old versions.

use std::io::{self, Read};

use fastcdc::v2020;
use serde::{Deserialize, Serialize};

/// FastCDC size parameters in bytes. A file smaller than `min` is one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkParams {
    /// Smallest chunk (except the last one of a file).
    pub min: u32,
    /// Target average chunk size.
    pub avg: u32,
    /// Largest chunk; also the bound for a chunk's plaintext on the server.
    pub max: u32,
}

impl Default for ChunkParams {
    fn default() -> Self {
        ChunkParams {
            min: 32 * 1024,
            avg: 128 * 1024,
            max: 1024 * 1024,
        }
    }
}

/// Chunk parameters outside FastCDC's ranges or out of order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunk parameters min={min} avg={avg} max={max}")]
pub struct InvalidParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

/// The largest chunk any version may declare; the server's decoding bound.
pub const MAX_CHUNK_SIZE: u32 = v2020::MAXIMUM_MAX as u32;

impl ChunkParams {
    /// Checks the ranges FastCDC accepts and `min <= avg <= max`.
    pub fn validate(&self) -> Result<(), InvalidParams> {
        let (min, avg, max) = (self.min as usize, self.avg as usize, self.max as usize);
        let ok = (v2020::MINIMUM_MIN..=v2020::MINIMUM_MAX).contains(&min)
            && (v2020::AVERAGE_MIN..=v2020::AVERAGE_MAX).contains(&avg)
            && (v2020::MAXIMUM_MIN..=v2020::MAXIMUM_MAX).contains(&max)
            && min <= avg
            && avg <= max;
        if ok {
            Ok(())
        } else {
            Err(InvalidParams {
                min: self.min,
                avg: self.avg,
                max: self.max,
            })
        }
    }

    /// The chunk boundaries of an in-memory buffer, as `(offset, length)` pairs.
    pub fn cut(&self, data: &[u8]) -> Vec<(usize, usize)> {
        if data.is_empty() {
            return Vec::new();
        }
        v2020::FastCDC::new(
            data,
            self.min as usize,
            self.avg as usize,
            self.max as usize,
        )
        .map(|c| (c.offset, c.length))
        .collect()
    }

    /// A streaming chunker over `source`. Memory use is bounded by about `2 * max` bytes.
    pub fn stream<R: Read>(&self, source: R) -> StreamChunker<R> {
        StreamChunker {
            inner: v2020::StreamCDC::new(
                source,
                self.min as usize,
                self.avg as usize,
                self.max as usize,
            ),
        }
    }
}

/// Iterator over the chunks of a reader; yields each chunk's bytes.
pub struct StreamChunker<R: Read> {
    inner: v2020::StreamCDC<R>,
}

impl<R: Read> Iterator for StreamChunker<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.inner.next()? {
            Ok(c) => Some(Ok(c.data)),
            Err(v2020::Error::Empty) => None,
            Err(v2020::Error::IoError(e)) => Some(Err(e)),
            Err(v2020::Error::Other(msg)) => Some(Err(io::Error::other(msg))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> ChunkParams {
        ChunkParams {
            min: 256,
            avg: 1024,
            max: 4096,
        }
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn default_params_are_valid() {
        ChunkParams::default().validate().unwrap();
        assert!(
            ChunkParams {
                min: 10,
                avg: 5,
                max: 1
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn small_file_is_one_chunk() {
        let data = pseudo_random(1000, 7);
        let chunks: Vec<_> = ChunkParams::default()
            .stream(&data[..])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(chunks, vec![data]);
    }

    #[test]
    fn empty_input_has_no_chunks() {
        assert_eq!(ChunkParams::default().stream(&b""[..]).count(), 0);
        assert!(ChunkParams::default().cut(b"").is_empty());
    }

    proptest! {
        #[test]
        fn pieces_concatenate_and_respect_bounds(len in 0usize..60_000, seed in any::<u64>()) {
            let p = small();
            let data = pseudo_random(len, seed);
            let chunks: Vec<Vec<u8>> = p.stream(&data[..]).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(chunks.concat(), data.clone());
            for (i, c) in chunks.iter().enumerate() {
                prop_assert!(c.len() <= p.max as usize);
                if i + 1 < chunks.len() {
                    prop_assert!(c.len() >= p.min as usize);
                }
            }
            // The streaming and the in-memory chunker agree.
            let lens: Vec<usize> = p.cut(&data).into_iter().map(|(_, l)| l).collect();
            prop_assert_eq!(lens, chunks.iter().map(Vec::len).collect::<Vec<_>>());
        }

        #[test]
        fn insert_moves_boundaries_only_locally(seed in any::<u64>(), at in 0usize..1000, ins in 1usize..64) {
            let p = small();
            let data = pseudo_random(64_000, seed);
            let mut changed = data.clone();
            changed.splice(at..at, std::iter::repeat_n(0xAB, ins));
            let ids = |d: &[u8]| -> Vec<Vec<u8>> {
                p.cut(d).into_iter().map(|(o, l)| d[o..o + l].to_vec()).collect()
            };
            let before = ids(&data);
            let after = ids(&changed);
            // The boundaries resynchronise after the insert: the tail of the chunk list is shared.
            // (Normalised chunking may take a few chunks to fall back into step.)
            let common_tail = before.iter().rev().zip(after.iter().rev()).take_while(|(a, b)| a == b).count();
            prop_assert!(common_tail * 4 >= after.len() * 3, "common tail {} of {}", common_tail, after.len());
        }
    }
}
