//! The segment format: encoding of the segment magic and the 40-byte record header, segment keys,
//! and [`Records`], a decoder that walks a segment's records front to back.
//!
//! A segment is `SEGMENT_MAGIC` followed by records, each a header (`RECORD_MAGIC`, the 32-byte
//! chunk id, the stored length as u32 little endian) and then the stored bytes. The decoder reads
//! untrusted bytes: it never reads past the committed length it is given, never allocates for a
//! length that would pass it, and reports a damaged header instead of guessing.

use asgard_core::ChunkId;

use crate::store::StoreError;
use crate::store::medium::{Medium, Read};

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"ASGSEG\x00\x01";
/// The first bytes of every record header.
pub const RECORD_MAGIC: &[u8; 4] = b"ASGC";
/// Length of a record header: magic, chunk id, stored length (u32 LE).
pub const RECORD_HEADER: u64 = 4 + 32 + 4;
/// Length of the segment header (the magic).
pub(crate) const SEG_HEADER: u64 = SEGMENT_MAGIC.len() as u64;

/// The folder (key prefix) of the segments.
pub(crate) const PACKS: &str = "packs/";

/// Bytes the decoder reads at a time (one ranged read on an object store).
const BLOCK: u64 = 1 << 20;

/// Length of a record holding `stored_len` bytes.
pub(crate) fn record_len(stored_len: u32) -> u64 {
    RECORD_HEADER + u64::from(stored_len)
}

/// The header of a record holding `len` stored bytes of `id`.
pub(crate) fn record_header(id: &ChunkId, len: u32) -> [u8; RECORD_HEADER as usize] {
    let mut h = [0u8; RECORD_HEADER as usize];
    h[..4].copy_from_slice(RECORD_MAGIC);
    h[4..36].copy_from_slice(&id.0);
    h[36..].copy_from_slice(&len.to_le_bytes());
    h
}

/// The id and length of a record header, or `None` when it is not one.
pub(crate) fn parse_header(h: &[u8]) -> Option<(ChunkId, u32)> {
    if h.len() < RECORD_HEADER as usize || &h[..4] != RECORD_MAGIC {
        return None;
    }
    let id = ChunkId(h[4..36].try_into().ok()?);
    let len = u32::from_le_bytes(h[36..40].try_into().ok()?);
    Some((id, len))
}

/// The file name of segment `id`.
#[cfg(test)]
pub(crate) fn segment_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

/// The medium key of segment `id`: `packs/<id as 16 hex digits>.seg`.
pub(crate) fn segment_key(id: u64) -> String {
    format!("{PACKS}{id:016x}.seg")
}

/// The segment id of a key below [`PACKS`], or `None` when it names no segment.
pub(crate) fn parse_segment_key(key: &str) -> Option<u64> {
    let hex = key.strip_prefix(PACKS)?.strip_suffix(".seg")?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// One record as [`Records`] found it.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub id: ChunkId,
    /// Offset of the stored bytes in the segment (just past the header).
    pub offset: u64,
    /// The header as stored.
    pub header: [u8; RECORD_HEADER as usize],
    /// The stored bytes.
    pub data: &'a [u8],
}

/// What [`Records::next`] found.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    Record(Record<'a>),
    /// The walk reached the committed length, or the object ends before it.
    End,
    /// The bytes at `offset` are not a record that fits before the committed length (or the
    /// segment magic is wrong, at offset 0).
    Damaged {
        offset: u64,
    },
}

/// Walks the records of a segment up to its committed length, reading [`BLOCK`]s at a time.
pub(crate) struct Records<'m> {
    medium: &'m dyn Medium,
    key: &'m str,
    end: u64,
    /// Bytes `[buf_start, buf_start + buf.len())` of the object.
    buf: Vec<u8>,
    buf_start: u64,
    pos: u64,
}

impl<'m> Records<'m> {
    /// A walk over the first `committed` bytes of object `key`.
    pub(crate) fn new(medium: &'m dyn Medium, key: &'m str, committed: u64) -> Records<'m> {
        Records {
            medium,
            key,
            end: committed,
            buf: Vec::new(),
            buf_start: 0,
            pos: 0,
        }
    }

    /// Makes bytes `[pos, pos + n)` available in `buf`; `false` when the object ends first.
    fn fill(&mut self, n: u64) -> Result<bool, StoreError> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos + n <= buf_end {
            return Ok(true);
        }
        // Drop what was consumed, then read at least a block (never past the committed length).
        let consumed = (self.pos - self.buf_start) as usize;
        self.buf.drain(..consumed.min(self.buf.len()));
        self.buf_start = self.pos;
        let have = self.buf.len() as u64;
        let want = (n - have).max(BLOCK).min(self.end - (self.pos + have));
        if want < n - have {
            return Ok(false);
        }
        match self.medium.read_at(self.key, self.pos + have, want)? {
            Read::Bytes(b) => {
                self.buf.extend_from_slice(&b);
                Ok(true)
            }
            // The object ends before its committed length: as far as it goes, then.
            Read::Short | Read::Missing if want > n - have => {
                let short = n - have;
                match self.medium.read_at(self.key, self.pos + have, short)? {
                    Read::Bytes(b) => {
                        self.buf.extend_from_slice(&b);
                        Ok(true)
                    }
                    Read::Short | Read::Missing => Ok(false),
                }
            }
            Read::Short | Read::Missing => Ok(false),
        }
    }

    fn at(&self, len: u64) -> &[u8] {
        let from = (self.pos - self.buf_start) as usize;
        &self.buf[from..from + len as usize]
    }

    /// The next record.
    ///
    /// # Errors
    /// [`StoreError`] when the medium fails to read.
    pub(crate) fn next(&mut self) -> Result<Step<'_>, StoreError> {
        if self.pos == 0 {
            if !self.fill(SEG_HEADER)? {
                return Ok(Step::End);
            }
            if self.at(SEG_HEADER) != SEGMENT_MAGIC {
                return Ok(Step::Damaged { offset: 0 });
            }
            self.pos = SEG_HEADER;
        }
        if self.pos >= self.end || !self.fill(RECORD_HEADER)? {
            return Ok(Step::End);
        }
        let header: [u8; RECORD_HEADER as usize] = self
            .at(RECORD_HEADER)
            .try_into()
            .expect("a header's length");
        let Some((id, len)) = parse_header(&header) else {
            return Ok(Step::Damaged { offset: self.pos });
        };
        if self.pos + record_len(len) > self.end {
            return Ok(Step::Damaged { offset: self.pos });
        }
        if !self.fill(record_len(len))? {
            return Ok(Step::End);
        }
        let offset = self.pos + RECORD_HEADER;
        let from = (offset - self.buf_start) as usize;
        self.pos = offset + u64::from(len);
        Ok(Step::Record(Record {
            id,
            offset,
            header,
            data: &self.buf[from..from + len as usize],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::medium::LocalMedium;

    fn segment(records: &[(ChunkId, Vec<u8>)]) -> Vec<u8> {
        let mut s = SEGMENT_MAGIC.to_vec();
        for (id, b) in records {
            s.extend_from_slice(&record_header(id, b.len() as u32));
            s.extend_from_slice(b);
        }
        s
    }

    fn walk(m: &dyn Medium, key: &str, committed: u64) -> (Vec<(ChunkId, u64, Vec<u8>)>, String) {
        let mut r = Records::new(m, key, committed);
        let mut out = Vec::new();
        loop {
            match r.next().unwrap() {
                Step::Record(rec) => out.push((rec.id, rec.offset, rec.data.to_vec())),
                Step::End => return (out, "end".into()),
                Step::Damaged { offset } => return (out, format!("damaged at {offset}")),
            }
        }
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(segment_key(0xab), "packs/00000000000000ab.seg");
        assert_eq!(parse_segment_key(&segment_key(u64::MAX)), Some(u64::MAX));
        for bad in [
            "packs/ab.seg",
            "packs/000000000000000g.seg",
            "x/0000000000000001.seg",
        ] {
            assert_eq!(parse_segment_key(bad), None, "{bad}");
        }
        let id = ChunkId::of(b"x");
        assert_eq!(parse_header(&record_header(&id, 7)), Some((id, 7)));
        assert_eq!(parse_header(b"ASGC"), None);
    }

    /// Records larger than a block, a committed length that cuts off a tail, a length that runs
    /// past the committed end, a wrong magic and an object shorter than its committed length.
    #[test]
    fn the_decoder_walks_records_and_stops_safely() {
        let dir = tempfile::tempdir().unwrap();
        let m = LocalMedium::open(dir.path()).unwrap();
        let recs: Vec<(ChunkId, Vec<u8>)> = [10usize, 3 << 20, 0, 5000]
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let b = asgard_core::testdata::random_bytes(n, i as u64);
                (ChunkId::of(&b), b)
            })
            .collect();
        let seg = segment(&recs);
        m.put("s", &seg).unwrap();
        let (got, how) = walk(&m, "s", seg.len() as u64);
        assert_eq!(how, "end");
        assert_eq!(got.len(), 4);
        for ((id, off, data), (want_id, want)) in got.iter().zip(&recs) {
            assert_eq!((id, data), (want_id, want));
            assert_eq!(&seg[*off as usize..*off as usize + data.len()], &data[..]);
        }
        // A committed length in the middle of the last record: its length passes it.
        let (got, how) = walk(&m, "s", seg.len() as u64 - 1);
        assert_eq!((got.len(), how.as_str()), (3, "damaged at 3145866"));
        // Garbage where a header should be.
        let mut bad = seg.clone();
        bad[8] = b'X';
        m.put("bad", &bad).unwrap();
        assert_eq!(walk(&m, "bad", bad.len() as u64).1, "damaged at 8");
        // A huge length in a header is never allocated.
        let mut huge = segment(&recs[..1]);
        huge[8 + 36..8 + 40].copy_from_slice(&u32::MAX.to_le_bytes());
        m.put("huge", &huge).unwrap();
        assert_eq!(walk(&m, "huge", huge.len() as u64).1, "damaged at 8");
        let mut magic = seg.clone();
        magic[0] = 0;
        m.put("magic", &magic).unwrap();
        assert_eq!(walk(&m, "magic", magic.len() as u64).1, "damaged at 0");
        // The object is shorter than the committed length says (lost by the disk).
        m.put("short", &seg[..seg.len() - 100]).unwrap();
        let (got, how) = walk(&m, "short", seg.len() as u64);
        assert_eq!((got.len(), how.as_str()), (3, "end"));
        assert_eq!(walk(&m, "absent", 100).1, "end");
    }

    /// Damaged segments (bytes flipped, cut, records spliced, random committed lengths): the
    /// decoder never panics, never returns a record past the committed length, and every record
    /// it returns is one whose header it read. Deterministic; the seed is in the message.
    #[test]
    fn the_decoder_survives_damaged_segments() {
        let dir = tempfile::tempdir().unwrap();
        let m = LocalMedium::open(dir.path()).unwrap();
        for seed in 0..300u64 {
            let mut rng = asgard_core::testdata::Rng::new(seed);
            let recs: Vec<(ChunkId, Vec<u8>)> = (0..rng.range(0, 6))
                .map(|i| {
                    let b = asgard_core::testdata::random_bytes(rng.range(0, 3000) as usize, i);
                    (ChunkId::of(&b), b)
                })
                .collect();
            let mut seg = segment(&recs);
            for _ in 0..rng.range(0, 4) {
                let at = rng.range(0, seg.len() as u64) as usize;
                seg[at] = rng.next_u64() as u8;
            }
            if rng.range(0, 3) == 0 {
                seg.truncate(rng.range(0, seg.len() as u64 + 1) as usize);
            }
            let committed = match rng.range(0, 3) {
                0 => seg.len() as u64,
                1 => rng.range(0, seg.len() as u64 + 1),
                _ => seg.len() as u64 + rng.range(0, 5000),
            };
            m.put("g", &seg).unwrap();
            let mut r = Records::new(&m, "g", committed);
            for step in 0.. {
                assert!(step < 1000, "seed {seed}: the walk does not end");
                match r.next().unwrap() {
                    Step::Record(rec) => {
                        let end = rec.offset + rec.data.len() as u64;
                        assert!(end <= committed && end <= seg.len() as u64, "seed {seed}");
                        let h = (rec.offset - RECORD_HEADER) as usize;
                        assert_eq!(&seg[h..rec.offset as usize], &rec.header, "seed {seed}");
                        assert_eq!(
                            &seg[rec.offset as usize..end as usize],
                            rec.data,
                            "seed {seed}"
                        );
                    }
                    Step::End | Step::Damaged { .. } => break,
                }
            }
        }
    }
}
