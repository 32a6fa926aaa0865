use std::io::{Cursor, Read, Seek, SeekFrom};

use super::*;

/// 2021-03-04 05:06:08 UTC.
const MTIME_NS: i64 = 1_614_834_368_000_000_000;

fn read_back(bytes: Vec<u8>) -> zip::ZipArchive<Cursor<Vec<u8>>> {
    zip::ZipArchive::new(Cursor::new(bytes)).expect("an independent reader opens the archive")
}

#[test]
fn files_folders_umlauts_and_mtimes_read_back_with_an_independent_reader() {
    let mut w = ZipWriter::new(Vec::new());
    w.add_dir("Bücher", MTIME_NS, 0o755).unwrap();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    w.start_file("Bücher/Über.txt", content.len() as u64, MTIME_NS, 0o640)
        .unwrap();
    for piece in content.chunks(65_536) {
        w.write_data(piece).unwrap();
    }
    w.finish_file().unwrap();
    w.add_file("leer", b"", MTIME_NS).unwrap();
    let bytes = w.finish().unwrap();

    let mut z = read_back(bytes);
    assert_eq!(z.len(), 3);
    let dir = z.by_index(0).unwrap();
    assert!(dir.is_dir());
    assert_eq!(dir.name(), "Bücher/");
    drop(dir);
    let mut f = z.by_name("Bücher/Über.txt").unwrap();
    assert_eq!(f.size(), content.len() as u64);
    assert_eq!(f.unix_mode(), Some(0o100_640));
    let t = f.last_modified().unwrap();
    assert_eq!(
        (
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        (2021, 3, 4, 5, 6, 8)
    );
    let mut back = Vec::new();
    // Reading to the end checks the CRC.
    f.read_to_end(&mut back).unwrap();
    assert_eq!(back, content);
}

#[test]
fn a_short_or_long_file_is_an_error_not_a_damaged_entry() {
    let mut w = ZipWriter::new(Vec::new());
    w.start_file("a", 10, 0, 0o644).unwrap();
    w.write_data(b"12345").unwrap();
    assert!(matches!(
        w.finish_file(),
        Err(ZipError::SizeMismatch {
            written: 5,
            announced: 10,
            ..
        })
    ));
    let mut w = ZipWriter::new(Vec::new());
    w.start_file("a", 3, 0, 0o644).unwrap();
    assert!(matches!(
        w.write_data(b"1234"),
        Err(ZipError::SizeMismatch { .. })
    ));
}

#[test]
fn an_archive_cut_off_before_finish_is_refused_by_readers() {
    let mut w = ZipWriter::new(Vec::new());
    w.add_file("a.txt", b"hello", MTIME_NS).unwrap();
    w.start_file("b.txt", 5, MTIME_NS, 0o644).unwrap();
    w.write_data(b"he").unwrap();
    // The download ends here (a chunk failed): no central directory was written.
    let partial = std::mem::take(&mut w.out);
    assert!(zip::ZipArchive::new(Cursor::new(partial)).is_err());
}

#[test]
fn more_than_65535_entries_use_the_zip64_end_records() {
    let mut w = ZipWriter::new(Vec::new());
    for i in 0..70_000u32 {
        w.add_file(&format!("d/{i}"), &i.to_le_bytes(), MTIME_NS)
            .unwrap();
    }
    let mut z = read_back(w.finish().unwrap());
    assert_eq!(z.len(), 70_000);
    let mut f = z.by_name("d/69999").unwrap();
    let mut b = Vec::new();
    f.read_to_end(&mut b).unwrap();
    assert_eq!(b, 69_999u32.to_le_bytes());
}

/// An output that keeps runs of zeros as lengths, so a 4 GiB entry costs no memory, and reads
/// back as the bytes it stands for.
#[derive(Default)]
struct Sparse {
    /// (start offset, literal bytes or a run of zeros)
    parts: Vec<(u64, Part)>,
    len: u64,
    pos: u64,
}

enum Part {
    Bytes(Vec<u8>),
    Zeros(u64),
}

impl Write for Sparse {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let zeros = buf.iter().all(|&b| b == 0) && buf.len() > 64;
        match self.parts.last_mut() {
            Some((_, Part::Zeros(n))) if zeros => *n += buf.len() as u64,
            _ if zeros => self.parts.push((self.len, Part::Zeros(buf.len() as u64))),
            Some((_, Part::Bytes(b))) => b.extend_from_slice(buf),
            None | Some((_, Part::Zeros(_))) => {
                self.parts.push((self.len, Part::Bytes(buf.to_vec())))
            }
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Sparse {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let i = self.parts.partition_point(|(start, _)| *start <= self.pos) - 1;
        let (start, part) = &self.parts[i];
        let at = self.pos - start;
        let n = match part {
            Part::Bytes(b) => {
                let src = &b[at as usize..];
                let n = src.len().min(out.len());
                out[..n].copy_from_slice(&src[..n]);
                n
            }
            Part::Zeros(len) => {
                let n = ((len - at) as usize).min(out.len());
                out[..n].fill(0);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

#[test]
fn an_entry_over_4_gib_and_one_behind_it_read_back_through_zip64() {
    let big = (1u64 << 32) + 5;
    let mut w = ZipWriter::new(Sparse::default());
    w.start_file("gross.bin", big, MTIME_NS, 0o600).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut left = big;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        w.write_data(&zeros[..n]).unwrap();
        left -= n as u64;
    }
    w.finish_file().unwrap();
    // This entry starts beyond 4 GiB: its offset needs the ZIP64 field.
    w.add_file("danach.txt", b"nach 4 GiB", MTIME_NS).unwrap();
    let sparse = w.finish().unwrap();

    let mut z = zip::ZipArchive::new(sparse).unwrap();
    let mut after = Vec::new();
    z.by_name("danach.txt")
        .unwrap()
        .read_to_end(&mut after)
        .unwrap();
    assert_eq!(after, b"nach 4 GiB");
    let mut f = z.by_name("gross.bin").unwrap();
    assert_eq!(f.size(), big);
    // The whole entry, CRC checked at its end.
    assert_eq!(io::copy(&mut f, &mut io::sink()).unwrap(), big);
}

#[test]
fn dos_times_are_utc_and_clamped() {
    assert_eq!(dos_time(0), ((1 << 5) | 1, 0));
    let (date, time) = dos_time(MTIME_NS);
    assert_eq!(date, (41 << 9) | (3 << 5) | 4);
    assert_eq!(time, (5 << 11) | (6 << 5) | 4);
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(19_782), (2024, 2, 29));
}
