//! Writing a restored file: temp files at their final length, positional writes that leave zero
//! blocks as holes, and the content hash kept up to date as pieces arrive in any order.
//!
//! Nothing here decides whether a file may replace anything: [`super::finish`] compares the hash
//! built here with the version before a temp file is renamed into place.

use std::collections::BTreeMap;
use std::io::Read;

use asgard_core::ChunkId;

use super::handles::Place;

/// Zero blocks of this size (aligned to the file offset) are skipped, not written.
const SPARSE_BLOCK: u64 = 4096;
/// Read-back buffer for hashing and copying.
const READ_BUF: usize = 1 << 20;

/// A chunk's content for a place.
#[derive(Clone, Copy)]
pub(crate) enum Piece<'a> {
    Data(&'a [u8]),
    /// That many zero bytes: nothing is written (the temp file is a hole there).
    Zero(u32),
}

impl Piece<'_> {
    fn len(&self) -> u64 {
        match self {
            Piece::Data(d) => d.len() as u64,
            Piece::Zero(n) => u64::from(*n),
        }
    }
}

/// The content hash of a file being restored, advanced in file order while its pieces arrive in
/// any order.
#[derive(Default)]
pub(crate) struct HashState {
    /// The content hash up to `hashed` (created with the first piece, dropped when done).
    pub(crate) hasher: Option<Box<blake3::Hasher>>,
    pub(crate) hashed: u64,
    /// Ranges written beyond `hashed`: start → end.
    pub(crate) pending: BTreeMap<u64, u64>,
    /// The whole file is one verified chunk: its id is the file's hash (both are the blake3 of
    /// the same bytes), so the content is not hashed a second time.
    pub(crate) whole: Option<ChunkId>,
}

impl HashState {
    /// The hash of the whole temp file of `size` bytes. Pieces missing from the hash (not
    /// expected) are read back from the file first.
    pub(crate) fn finish(&mut self, file: &std::fs::File, size: u64) -> std::io::Result<ChunkId> {
        if let Some(id) = self.whole.take() {
            if self.hashed == size {
                return Ok(id);
            }
            // Not the whole file after all: hash it from the start.
            self.hashed = 0;
        }
        let hasher = self.hasher.get_or_insert_with(Box::default);
        if self.hashed < size {
            hash_range(file, self.hashed, size, hasher)?;
        }
        Ok(hasher.finalize().into())
    }

    /// Whether ranges beyond the hashed prefix are still waiting for the gap before them.
    pub(crate) fn has_gaps(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Frees the hasher and the pending ranges once the file is done.
    pub(crate) fn clear(&mut self) {
        self.hasher = None;
        self.pending.clear();
        self.whole = None;
    }
}

/// Creates a place's temp file (attributes as recorded) at its final length, so what is never
/// written stays a hole.
pub(crate) fn create_temp(
    place: &Place,
    size: u64,
    attributes: u32,
) -> std::io::Result<std::fs::File> {
    let file = place.create_temp(attributes)?;
    file.set_len(size)?;
    Ok(file)
}

/// Writes a piece at `offset` of the temp file and advances the file's hash. `whole` is the
/// piece's chunk id when that chunk is the file's only one (verified against the id, as every
/// piece is): then it is the file's hash as well.
pub(crate) fn put(
    file: &std::fs::File,
    st: &mut HashState,
    offset: u64,
    piece: Piece<'_>,
    whole: Option<&ChunkId>,
) -> std::io::Result<()> {
    if let Piece::Data(data) = piece {
        write_sparse_at(file, offset, data)?;
    }
    let end = offset + piece.len();
    if let Some(id) = whole
        && offset == 0
        && st.hashed == 0
        && st.hasher.is_none()
    {
        st.whole = Some(*id);
        st.hashed = end;
        return Ok(());
    }
    if offset != st.hashed {
        st.pending.insert(offset, end);
        return Ok(());
    }
    let hasher = st.hasher.get_or_insert_with(Box::default);
    match piece {
        Piece::Data(data) => {
            hasher.update(data);
        }
        Piece::Zero(n) => hash_zeros(hasher, u64::from(n)),
    }
    st.hashed = end;
    // Ranges that arrived early and now follow on: read them back.
    while let Some(end) = st.pending.remove(&st.hashed) {
        hash_range(file, st.hashed, end, hasher)?;
        st.hashed = end;
    }
    Ok(())
}

fn hash_zeros(hasher: &mut blake3::Hasher, mut n: u64) {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        hasher.update(&ZEROS[..k]);
        n -= k as u64;
    }
}

/// Hashes bytes `from..to` of a file.
fn hash_range(
    file: &std::fs::File,
    from: u64,
    to: u64,
    hasher: &mut blake3::Hasher,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; (to - from).min(READ_BUF as u64) as usize];
    let mut at = from;
    while at < to {
        let k = (to - at).min(buf.len() as u64) as usize;
        read_exact_at(file, &mut buf[..k], at)?;
        hasher.update(&buf[..k]);
        at += k as u64;
    }
    Ok(())
}

/// The blake3 of an open file, streamed.
pub(crate) fn hash_reader(mut f: impl Read) -> std::io::Result<ChunkId> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

/// The blake3 of `len` zero bytes: the id of the all-zero chunk of that length.
pub(crate) fn zero_id(len: u32) -> ChunkId {
    let mut h = blake3::Hasher::new();
    hash_zeros(&mut h, u64::from(len));
    h.finalize().into()
}

/// Reads a chunk from a restored file and checks it against its id.
pub(crate) fn read_verified(
    file: &std::fs::File,
    offset: u64,
    len: u32,
    id: &ChunkId,
) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    read_exact_at(file, &mut buf, offset)?;
    if ChunkId::of(&buf) != *id {
        return Err(std::io::Error::other("changed since it was restored"));
    }
    Ok(buf)
}

/// Writes `data` at `offset`, skipping 4 KiB blocks (aligned to the file offset) that are all zero:
/// the file was created at its full length, so they read as zeros and stay holes where the file
/// system supports them. Runs of data blocks are written with one call.
fn write_sparse_at(file: &std::fs::File, offset: u64, data: &[u8]) -> std::io::Result<()> {
    let block_end = |i: usize| {
        let off = offset + i as u64;
        (i + (SPARSE_BLOCK - off % SPARSE_BLOCK) as usize).min(data.len())
    };
    let mut i = 0;
    while i < data.len() {
        let mut j = block_end(i);
        let zero = is_zero(&data[i..j]);
        while j < data.len() {
            let k = block_end(j);
            if is_zero(&data[j..k]) != zero {
                break;
            }
            j = k;
        }
        if !zero {
            write_all_at(file, &data[i..j], offset + i as u64)?;
        }
        i = j;
    }
    Ok(())
}

fn is_zero(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(16);
    words.all(|w| u128::from_ne_bytes(w.try_into().expect("16 bytes")) == 0)
        && words.remainder().iter().all(|&x| x == 0)
}

#[cfg(unix)]
fn write_all_at(file: &std::fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(data, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(windows)]
fn write_all_at(file: &std::fs::File, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !data.is_empty() {
        let n = file.seek_write(data, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &std::fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_writes_give_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut data = vec![0u8; 3 * 1024 * 1024 + 77];
        data[5000] = 1;
        data[1_000_000..1_000_100].fill(7);
        data[3 * 1024 * 1024 + 70] = 9;
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(data.len() as u64).unwrap();
        // Odd piece sizes, written out of order: blocks are aligned to the file offset.
        let pieces: Vec<(usize, &[u8])> = data
            .chunks(12_345)
            .enumerate()
            .map(|(k, c)| (k * 12_345, c))
            .collect();
        for (off, piece) in pieces.iter().rev() {
            write_sparse_at(&f, *off as u64, piece).unwrap();
        }
        drop(f);
        assert_eq!(std::fs::read(&p).unwrap(), data);
    }

    #[test]
    fn out_of_order_pieces_hash_like_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut data = asgard_core::testdata::random_bytes(200_000, 0x2545_F491_4F6C_DD1D);
        data[50_000..120_000].fill(0);
        std::fs::File::create(&p)
            .unwrap()
            .set_len(data.len() as u64)
            .unwrap();
        let cuts = [0usize, 30_000, 50_000, 120_000, 150_000, 200_000];
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        let mut st = HashState::default();
        // 3rd, 1st, 5th, 2nd (zero), 4th.
        for k in [2usize, 0, 4, 1, 3] {
            let (a, b) = (cuts[k], cuts[k + 1]);
            let piece = if is_zero(&data[a..b]) {
                Piece::Zero((b - a) as u32)
            } else {
                Piece::Data(&data[a..b])
            };
            put(&file, &mut st, a as u64, piece, None).unwrap();
        }
        assert_eq!(st.hashed, data.len() as u64);
        assert!(st.pending.is_empty());
        let got: ChunkId = st.hasher.unwrap().finalize().into();
        assert_eq!(got, ChunkId::of(&data));
        assert_eq!(std::fs::read(&p).unwrap(), data);
    }

    /// A file of one chunk takes the chunk's (verified) id as its hash without hashing again;
    /// the id is used only for a piece that is the whole file.
    #[test]
    fn a_file_of_one_chunk_has_the_chunk_id_as_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data = asgard_core::testdata::random_bytes(70_000, 7);
        let id = ChunkId::of(&data);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        file.set_len(data.len() as u64).unwrap();
        let mut st = HashState::default();
        put(&file, &mut st, 0, Piece::Data(&data), Some(&id)).unwrap();
        assert!(st.hasher.is_none(), "hashed a second time");
        assert_eq!(st.finish(&file, data.len() as u64).unwrap(), id);
        // A size that disagrees is not answered with the id: the file is hashed as it is.
        let mut st = HashState::default();
        put(&file, &mut st, 0, Piece::Data(&data), Some(&id)).unwrap();
        file.set_len(data.len() as u64 + 1).unwrap();
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(
            st.finish(&file, longer.len() as u64).unwrap(),
            ChunkId::of(&longer)
        );
    }

    #[test]
    fn zero_ids_are_blake3_of_zeros() {
        assert_eq!(zero_id(0), ChunkId::of(b""));
        assert_eq!(zero_id(100_000), ChunkId::of(&vec![0; 100_000]));
    }

    #[test]
    fn hashes_files_like_blake3() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let f = std::fs::File::open(&p).unwrap();
        assert_eq!(hash_reader(f).unwrap(), ChunkId::of(b"hello"));
    }
}
