//! The body of a `POST /api/fetch` answer: one frame per requested chunk, in request order.
//!
//! ```text
//! frame   = kind (1 byte) | chunk id (32 bytes) | length (u32, big-endian) | payload (length bytes)
//! kind 0  = DATA:    payload is the chunk in stored form (see crate::stored), at most
//!                    MAX_CHUNK_SIZE + 1 bytes
//! kind 1  = MISSING: payload is a short UTF-8 reason (at most 1024 bytes); the server could not
//!                    read the chunk from its store (the request itself was allowed)
//! ```
//!
//! The server streams the frames straight from its store, one chunk at a time, so neither side
//! holds more than a frame. The stored bytes are not checked by the server: the agent decodes every
//! DATA payload with a size bound and compares its blake3 with the id
//! ([`crate::stored::decode_verified`]). A body that ends early simply yields fewer frames; the
//! agent treats the chunks it did not get as failed.
//!
//! [`FrameDecoder`] reads untrusted bytes: it never panics, refuses unknown kinds and lengths over
//! its bound as soon as a frame header is complete, and buffers at most one frame plus the piece
//! last pushed.

use crate::ChunkId;
use crate::chunker::MAX_CHUNK_SIZE;

/// Bytes of a frame header: kind, id, length.
pub const FRAME_HEADER_LEN: usize = 1 + 32 + 4;
/// Kind byte of a frame that carries a chunk in stored form.
pub const KIND_DATA: u8 = 0;
/// Kind byte of a frame that says the chunk could not be read.
pub const KIND_MISSING: u8 = 1;
/// The largest DATA payload: a stored chunk is its plaintext (at most [`MAX_CHUNK_SIZE`]) plus the
/// one-byte header at worst.
pub const MAX_DATA_PAYLOAD: usize = MAX_CHUNK_SIZE as usize + 1;
/// The largest MISSING payload.
pub const MAX_REASON_LEN: usize = 1024;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The chunk in stored form (not yet decoded or verified).
    Data { id: ChunkId, stored: Vec<u8> },
    /// The server could not read the chunk.
    Missing { id: ChunkId, reason: String },
}

impl Frame {
    pub fn id(&self) -> &ChunkId {
        match self {
            Frame::Data { id, .. } | Frame::Missing { id, .. } => id,
        }
    }
}

/// Why a fetch body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("fetch frame for chunk {id} has unknown kind {kind}")]
    UnknownKind { id: ChunkId, kind: u8 },
    #[error("fetch frame for chunk {id} announces {len} bytes, more than the bound {bound}")]
    TooLong { id: ChunkId, len: u64, bound: usize },
    #[error("fetch body ends inside a frame ({buffered} bytes left over)")]
    Truncated { buffered: usize },
}

/// The header of a DATA frame for `stored` (the server sends it, then the stored bytes).
/// `None` when the payload exceeds what a u32 length can say.
pub fn data_header(id: &ChunkId, stored_len: usize) -> Option<[u8; FRAME_HEADER_LEN]> {
    header(KIND_DATA, id, stored_len)
}

/// A whole MISSING frame; the reason is cut to [`MAX_REASON_LEN`] bytes at a char boundary.
pub fn missing_frame(id: &ChunkId, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + reason.len());
    // The reason fits in a u32 by construction.
    out.extend_from_slice(&header(KIND_MISSING, id, reason.len()).unwrap_or([0; FRAME_HEADER_LEN]));
    out.extend_from_slice(reason);
    out
}

/// A whole DATA frame (tests and small answers; the server streams header and payload apart).
pub fn data_frame(id: &ChunkId, stored: &[u8]) -> Option<Vec<u8>> {
    let h = data_header(id, stored.len())?;
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + stored.len());
    out.extend_from_slice(&h);
    out.extend_from_slice(stored);
    Some(out)
}

fn header(kind: u8, id: &ChunkId, len: usize) -> Option<[u8; FRAME_HEADER_LEN]> {
    let len = u32::try_from(len).ok()?;
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[0] = kind;
    h[1..33].copy_from_slice(&id.0);
    h[33..].copy_from_slice(&len.to_be_bytes());
    Some(h)
}

/// Incremental decoder of a fetch body: [`push`](Self::push) each piece as it arrives, then take
/// frames with [`next_frame`](Self::next_frame) until it returns `Ok(None)`; at the end of the
/// body [`finish`](Self::finish) tells whether bytes of an incomplete frame were left over.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    max_data: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_DATA_PAYLOAD)
    }
}

impl FrameDecoder {
    /// A decoder that refuses DATA payloads longer than `max_data` bytes.
    pub fn new(max_data: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            pos: 0,
            max_data,
        }
    }

    /// Appends a piece of the body.
    pub fn push(&mut self, piece: &[u8]) {
        // Drop what was consumed before growing, so the buffer holds at most one frame + a piece.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(piece);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let rest = &self.buf[self.pos..];
        let Some(head) = rest.get(..FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        let kind = head[0];
        let mut idb = [0u8; 32];
        idb.copy_from_slice(&head[1..33]);
        let id = ChunkId(idb);
        let mut lenb = [0u8; 4];
        lenb.copy_from_slice(&head[33..FRAME_HEADER_LEN]);
        let len = u32::from_be_bytes(lenb) as u64;
        let bound = match kind {
            KIND_DATA => self.max_data,
            KIND_MISSING => MAX_REASON_LEN,
            _ => return Err(FrameError::UnknownKind { id, kind }),
        };
        if len > bound as u64 {
            return Err(FrameError::TooLong { id, len, bound });
        }
        let len = len as usize;
        let Some(payload) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
            return Ok(None);
        };
        let frame = if kind == KIND_DATA {
            Frame::Data {
                id,
                stored: payload.to_vec(),
            }
        } else {
            Frame::Missing {
                id,
                reason: String::from_utf8_lossy(payload).into_owned(),
            }
        };
        self.pos += FRAME_HEADER_LEN + len;
        Ok(Some(frame))
    }

    /// Checks that the body ended at a frame boundary.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            buffered => Err(FrameError::Truncated { buffered }),
        }
    }

    /// Bytes held (consumed ones included until the next push).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(body: &[u8], pieces: &[usize], max: usize) -> Result<Vec<Frame>, FrameError> {
        let mut d = FrameDecoder::new(max);
        let mut out = Vec::new();
        let mut rest = body;
        let mut i = 0;
        while !rest.is_empty() {
            let n = pieces
                .get(i)
                .copied()
                .unwrap_or(rest.len())
                .clamp(1, rest.len());
            i += 1;
            d.push(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = d.next_frame()? {
                out.push(f);
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn frames_round_trip_in_one_piece() {
        let a = ChunkId::of(b"a");
        let b = ChunkId::of(b"b");
        let mut body = data_frame(&a, b"\0abc").unwrap();
        body.extend(missing_frame(&b, "gone"));
        body.extend(data_frame(&b, b"").unwrap());
        let frames = decode_all(&body, &[], 100).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Data {
                    id: a,
                    stored: b"\0abc".to_vec()
                },
                Frame::Missing {
                    id: b,
                    reason: "gone".into()
                },
                Frame::Data {
                    id: b,
                    stored: vec![]
                },
            ]
        );
    }

    #[test]
    fn refuses_long_frames_before_buffering_them() {
        let id = ChunkId::of(b"x");
        let body = data_frame(&id, &[7; 200]).unwrap();
        let mut d = FrameDecoder::new(100);
        d.push(&body[..FRAME_HEADER_LEN]);
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::TooLong { len: 200, .. })
        ));
        let mut huge = header(KIND_MISSING, &id, 5000).unwrap().to_vec();
        huge.extend([b'x'; 10]);
        assert!(matches!(
            decode_all(&huge, &[], 100),
            Err(FrameError::TooLong { .. })
        ));
        let mut bad = data_frame(&id, b"ab").unwrap();
        bad[0] = 9;
        assert_eq!(
            decode_all(&bad, &[], 100),
            Err(FrameError::UnknownKind { id, kind: 9 })
        );
    }

    #[test]
    fn truncated_body_is_an_error_at_finish() {
        let body = data_frame(&ChunkId::of(b"x"), b"abcdef").unwrap();
        for cut in 1..body.len() {
            assert!(matches!(
                decode_all(&body[..cut], &[], 100),
                Err(FrameError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn reasons_are_cut_at_char_boundaries() {
        let long = "ä".repeat(MAX_REASON_LEN);
        let f = missing_frame(&ChunkId::of(b"x"), &long);
        match &decode_all(&f, &[], 10).unwrap()[0] {
            Frame::Missing { reason, .. } => {
                assert!(reason.len() <= MAX_REASON_LEN && reason.chars().all(|c| c == 'ä'));
            }
            other => panic!("{other:?}"),
        }
    }

    fn frame_strategy() -> impl Strategy<Value = Frame> {
        let id = proptest::array::uniform32(any::<u8>()).prop_map(ChunkId);
        prop_oneof![
            (id.clone(), proptest::collection::vec(any::<u8>(), 0..600))
                .prop_map(|(id, stored)| Frame::Data { id, stored }),
            (id, "[a-zä ]{0,40}").prop_map(|(id, reason)| Frame::Missing { id, reason }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip_in_any_pieces(
            frames in proptest::collection::vec(frame_strategy(), 0..8),
            pieces in proptest::collection::vec(1usize..300, 0..40),
        ) {
            let mut body = Vec::new();
            for f in &frames {
                match f {
                    Frame::Data { id, stored } => body.extend(data_frame(id, stored).unwrap()),
                    Frame::Missing { id, reason } => body.extend(missing_frame(id, reason)),
                }
            }
            prop_assert_eq!(decode_all(&body, &pieces, 600).unwrap(), frames);
        }

        #[test]
        fn garbage_never_panics_and_stays_bounded(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            pieces in proptest::collection::vec(1usize..100, 0..40),
        ) {
            let mut d = FrameDecoder::new(256);
            let mut rest = &data[..];
            let mut i = 0;
            'outer: while !rest.is_empty() {
                let n = pieces.get(i).copied().unwrap_or(64).clamp(1, rest.len());
                i += 1;
                d.push(&rest[..n]);
                rest = &rest[n..];
                // At most one incomplete frame (header + bound) plus the piece just pushed.
                prop_assert!(d.buffered() < FRAME_HEADER_LEN + MAX_REASON_LEN.max(256) + n);
                loop {
                    match d.next_frame() {
                        Ok(Some(Frame::Data { stored, .. })) => prop_assert!(stored.len() <= 256),
                        Ok(Some(Frame::Missing { reason, .. })) => {
                            prop_assert!(reason.len() <= 3 * MAX_REASON_LEN)
                        }
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
            let _ = d.finish();
        }
    }
}
