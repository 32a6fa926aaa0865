//! The stored (and uploaded) form of a chunk: one header byte, then the body.
//!
//! | header | body |
//! | --- | --- |
//! | `0` | the plaintext itself (compression did not pay) |
//! | `1` | one zstd frame of the plaintext |
//!
//! The decoder is the server's first line of defence against client bytes: it never produces more
//! than a caller-given bound, and [`decode_verified`] checks the plaintext's blake3 against the id
//! the client claimed.

use std::cell::RefCell;

use crate::id::ChunkId;

thread_local! {
    /// A reused zstd decompression context (see [`decode`]).
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

const RAW: u8 = 0;
const ZSTD: u8 = 1;
/// The header byte of a raw stored chunk.
pub const FORMAT_RAW: u8 = RAW;
/// The header byte of a zstd-compressed stored chunk (one frame follows).
pub const FORMAT_ZSTD: u8 = ZSTD;

/// Why stored bytes could not be turned back into a chunk.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("stored chunk is empty (no header byte)")]
    Empty,
    #[error("stored chunk has unknown format byte {0}")]
    UnknownFormat(u8),
    #[error("stored chunk decodes to more than {bound} bytes")]
    TooLarge { bound: usize },
    #[error("stored chunk is not a valid zstd frame: {0}")]
    Corrupt(String),
    #[error("chunk content does not match its id {claimed} (actual {actual})")]
    HashMismatch { claimed: ChunkId, actual: ChunkId },
}

/// Encodes a chunk, compressed with zstd at `level` when that makes it smaller, raw otherwise.
/// A level of 0 or below stores every chunk raw.
pub fn encode(plain: &[u8], level: i32) -> Vec<u8> {
    if level > 0
        && let Ok(compressed) = zstd::bulk::compress(plain, level)
        && compressed.len() < plain.len()
    {
        let mut out = Vec::with_capacity(compressed.len() + 1);
        out.push(ZSTD);
        out.extend_from_slice(&compressed);
        return out;
    }
    encode_raw(plain)
}

/// Encodes a chunk without compression.
pub fn encode_raw(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() + 1);
    out.push(RAW);
    out.extend_from_slice(plain);
    out
}

/// Decodes stored bytes into the plaintext, refusing to produce more than `bound` bytes.
pub fn decode(stored: &[u8], bound: usize) -> Result<Vec<u8>, DecodeError> {
    let (&header, body) = stored.split_first().ok_or(DecodeError::Empty)?;
    match header {
        RAW if body.len() > bound => Err(DecodeError::TooLarge { bound }),
        RAW => Ok(body.to_vec()),
        ZSTD => {
            // The frame header may announce a content size; refuse early when it is over the bound.
            if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(body)
                && size > bound as u64
            {
                return Err(DecodeError::TooLarge { bound });
            }
            // Allocate what the frame announces (the agent's encoder always writes the content
            // size), not the bound: a 16 MiB buffer per small chunk costs an mmap and page
            // faults each time. A frame without a size gets the bound.
            let announced = match zstd::zstd_safe::get_frame_content_size(body) {
                Ok(Some(size)) => Some(size as usize),
                _ => None,
            };
            let capacity = announced.unwrap_or(bound);
            // One decompression context per thread: creating one per chunk is a measurable part
            // of the server's upload path.
            DECOMPRESSOR
                .with(|cell| {
                    let mut slot = cell.borrow_mut();
                    if slot.is_none() {
                        *slot = Some(zstd::bulk::Decompressor::new()?);
                    }
                    let d = slot.as_mut().expect("set above");
                    d.decompress(body, capacity)
                })
                .map_err(|e| {
                    if !e.to_string().contains("Destination buffer is too small") {
                        DecodeError::Corrupt(e.to_string())
                    } else if announced.is_some() {
                        DecodeError::Corrupt("frame is larger than its header says".into())
                    } else {
                        DecodeError::TooLarge { bound }
                    }
                })
                .and_then(|plain| match announced {
                    Some(size) if plain.len() != size => Err(DecodeError::Corrupt(
                        "frame is shorter than its header says".into(),
                    )),
                    _ => Ok(plain),
                })
        }
        other => Err(DecodeError::UnknownFormat(other)),
    }
}

/// Decodes and checks that the plaintext hashes to `claimed`.
pub fn decode_verified(
    stored: &[u8],
    claimed: &ChunkId,
    bound: usize,
) -> Result<Vec<u8>, DecodeError> {
    let plain = decode(stored, bound)?;
    let actual = ChunkId::of(&plain);
    if &actual != claimed {
        return Err(DecodeError::HashMismatch {
            claimed: *claimed,
            actual,
        });
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compressible_data_is_compressed() {
        let plain = vec![b'a'; 100_000];
        let stored = encode(&plain, 3);
        assert_eq!(stored[0], ZSTD);
        assert!(stored.len() < 1000);
        assert_eq!(decode(&stored, plain.len()).unwrap(), plain);
    }

    #[test]
    fn a_frame_must_match_its_announced_size() {
        let plain = vec![b'x'; 10_000];
        let stored = encode(&plain, 3);
        assert_eq!(stored[0], ZSTD);
        // The reused context decodes many frames in a row.
        for _ in 0..3 {
            assert_eq!(decode(&stored, plain.len()).unwrap(), plain);
        }
        // A frame without a content size gets the bound as its buffer.
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        c.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(false))
            .unwrap();
        let mut unsized_frame = vec![ZSTD];
        unsized_frame.extend(c.compress(&plain).unwrap());
        assert_eq!(decode(&unsized_frame, plain.len()).unwrap(), plain);
        assert!(matches!(
            decode(&unsized_frame, plain.len() - 1),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn incompressible_data_is_raw() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let plain: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let stored = encode(&plain, 3);
        assert_eq!(stored[0], RAW);
        assert_eq!(decode(&stored, plain.len()).unwrap(), plain);
    }

    #[test]
    fn decode_respects_bound() {
        let stored = encode(&vec![0u8; 1 << 20], 3);
        assert!(matches!(
            decode(&stored, 1000),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decode(&encode_raw(&[1; 2000]), 1000),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn rejects_garbage_and_wrong_hash() {
        assert!(matches!(decode(&[], 10), Err(DecodeError::Empty)));
        assert!(matches!(
            decode(&[7, 1, 2], 10),
            Err(DecodeError::UnknownFormat(7))
        ));
        assert!(matches!(
            decode(&[ZSTD, 1, 2, 3], 10),
            Err(DecodeError::Corrupt(_))
        ));
        let stored = encode(b"hello", 3);
        assert!(matches!(
            decode_verified(&stored, &ChunkId::of(b"other"), 100),
            Err(DecodeError::HashMismatch { .. })
        ));
        assert_eq!(
            decode_verified(&stored, &ChunkId::of(b"hello"), 100).unwrap(),
            b"hello"
        );
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000), level in -1i32..6) {
            let stored = encode(&data, level);
            prop_assert_eq!(decode_verified(&stored, &ChunkId::of(&data), data.len()).unwrap(), data);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&data, 1000);
        }
    }
}
