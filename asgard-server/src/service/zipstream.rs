//! A zip archive written front to back into any [`Write`], never seeking: what a download
//! streams while it is being made (issue 14).
//!
//! **Shape.** Every file is *stored* (method 0, no compression: backed-up data is mostly
//! compressed already, and a stored entry costs no CPU and no memory). Its local header carries
//! the size, which is known before the first byte (the version's recorded size), and bit 3: the
//! CRC-32, known only after the last byte, follows the data in a data descriptor and is repeated
//! in the central directory, which every unzipper reads. Names are UTF-8 (bit 11). The mtime is
//! kept twice: as a DOS time (UTC, two-second steps, 1980–2107) and exactly to the second in the
//! extended-timestamp extra field (`UT`, 0x5455), which Info-ZIP, libarchive and 7-Zip prefer.
//!
//! **ZIP64.** An entry of 4 GiB or more gets the ZIP64 extra field in its local header and a
//! data descriptor with 8-byte sizes; in the central directory any size or offset that does not
//! fit 32 bits moves into a ZIP64 extra field; an archive of more than 65,535 entries or whose
//! central directory starts at or beyond 4 GiB ends with the ZIP64 end records. Small archives
//! stay plain zip, readable by anything.
//!
//! **Memory.** The writer holds no file data: [`ZipWriter::write_data`] passes each piece on.
//! What grows is the central directory (about 60 bytes plus the name per entry), which the format
//! puts at the end; the caller bounds the number of entries ([`MAX_ENTRIES`]).
//!
//! **Failure.** A file whose bytes do not add up to the size announced in its header is an
//! error ([`ZipError::SizeMismatch`]): the writer never produces an archive that looks whole but
//! is not. When the caller stops early (a chunk failed verification), it drops the writer
//! without [`ZipWriter::finish`]: no central directory is written, so no reader takes the
//! truncated archive for a complete one.

use std::io::{self, Write};

/// The most entries one archive takes (files, folders and the notes file).
pub const MAX_ENTRIES: u64 = 2_000_000;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const END_SIG: u32 = 0x0605_4b50;
const END64_SIG: u32 = 0x0606_4b50;
const LOCATOR64_SIG: u32 = 0x0706_4b50;
/// Bit 3 (sizes and CRC in the data descriptor) and bit 11 (UTF-8 names).
const FLAGS_FILE: u16 = (1 << 3) | (1 << 11);
const FLAGS_DIR: u16 = 1 << 11;
/// "Made by": Unix (3) and spec version 4.5, so the external attributes carry a Unix mode.
const MADE_BY: u16 = (3 << 8) | 45;
const VERSION_ZIP64: u16 = 45;
const VERSION_PLAIN: u16 = 20;
const U32_MAX: u64 = 0xFFFF_FFFF;

/// Why an archive cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// The output (the response) failed or went away.
    #[error("zip output: {0}")]
    Io(#[from] io::Error),
    /// A file's bytes do not add up to the size announced in its header.
    #[error("zip entry {name}: {written} bytes written, {announced} announced")]
    SizeMismatch {
        name: String,
        written: u64,
        announced: u64,
    },
    /// More than [`MAX_ENTRIES`] entries.
    #[error("more than {MAX_ENTRIES} entries in one archive")]
    TooManyEntries,
    /// A call out of order (data outside a file, a file inside a file).
    #[error("zip writer misused: {0}")]
    Order(&'static str),
}

/// What the central directory remembers of one entry.
struct Central {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
    dos: (u16, u16),
    mtime_s: Option<i32>,
    dir: bool,
    mode: u32,
}

/// The file being written.
struct Open {
    central: Central,
    announced: u64,
    written: u64,
    crc: crc32fast::Hasher,
    zip64: bool,
}

/// A zip archive written front to back into `W`.
pub struct ZipWriter<W: Write> {
    out: W,
    offset: u64,
    entries: Vec<Central>,
    open: Option<Open>,
}

impl<W: Write> ZipWriter<W> {
    pub fn new(out: W) -> ZipWriter<W> {
        ZipWriter {
            out,
            offset: 0,
            entries: Vec::new(),
            open: None,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.offset
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), ZipError> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn count(&self) -> Result<(), ZipError> {
        if self.entries.len() as u64 + 1 > MAX_ENTRIES {
            return Err(ZipError::TooManyEntries);
        }
        if self.open.is_some() {
            return Err(ZipError::Order("an entry started inside a file"));
        }
        Ok(())
    }

    /// Starts a file of exactly `size` bytes named `name` (a relative path with `/`), last
    /// changed at `mtime_ns` (ns since the epoch), with Unix permission bits `mode`.
    pub fn start_file(
        &mut self,
        name: &str,
        size: u64,
        mtime_ns: i64,
        mode: u32,
    ) -> Result<(), ZipError> {
        self.count()?;
        let zip64 = size >= U32_MAX;
        let central = Central {
            name: name.to_owned(),
            crc: 0,
            size,
            offset: self.offset,
            dos: dos_time(mtime_ns),
            mtime_s: unix_seconds(mtime_ns),
            dir: false,
            mode: 0o100_000 | (mode & 0o777),
        };
        let mut extra = timestamp_extra(central.mtime_s);
        if zip64 {
            extra.extend_from_slice(&0x0001u16.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&size.to_le_bytes());
            extra.extend_from_slice(&size.to_le_bytes());
        }
        let small = if zip64 { U32_MAX as u32 } else { size as u32 };
        let header = local_header(&central, FLAGS_FILE, zip64, small, &extra);
        self.put(&header)?;
        self.open = Some(Open {
            central,
            announced: size,
            written: 0,
            crc: crc32fast::Hasher::new(),
            zip64,
        });
        Ok(())
    }

    /// The next piece of the open file.
    pub fn write_data(&mut self, data: &[u8]) -> Result<(), ZipError> {
        let Some(open) = self.open.as_mut() else {
            return Err(ZipError::Order("data outside a file"));
        };
        open.written += data.len() as u64;
        if open.written > open.announced {
            return Err(ZipError::SizeMismatch {
                name: open.central.name.clone(),
                written: open.written,
                announced: open.announced,
            });
        }
        open.crc.update(data);
        self.put(data)
    }

    /// Ends the open file: its data descriptor. Fails when fewer bytes came than announced.
    pub fn finish_file(&mut self) -> Result<(), ZipError> {
        let Some(open) = self.open.take() else {
            return Err(ZipError::Order("no file to finish"));
        };
        if open.written != open.announced {
            return Err(ZipError::SizeMismatch {
                name: open.central.name,
                written: open.written,
                announced: open.announced,
            });
        }
        let mut central = open.central;
        central.crc = open.crc.finalize();
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&DESCRIPTOR_SIG.to_le_bytes());
        d.extend_from_slice(&central.crc.to_le_bytes());
        if open.zip64 {
            d.extend_from_slice(&central.size.to_le_bytes());
            d.extend_from_slice(&central.size.to_le_bytes());
        } else {
            d.extend_from_slice(&(central.size as u32).to_le_bytes());
            d.extend_from_slice(&(central.size as u32).to_le_bytes());
        }
        self.put(&d)?;
        self.entries.push(central);
        Ok(())
    }

    /// A whole small file at once (the notes file).
    pub fn add_file(&mut self, name: &str, data: &[u8], mtime_ns: i64) -> Result<(), ZipError> {
        self.start_file(name, data.len() as u64, mtime_ns, 0o644)?;
        self.write_data(data)?;
        self.finish_file()
    }

    /// A folder entry (`name` without the trailing `/`), so empty folders come back too.
    pub fn add_dir(&mut self, name: &str, mtime_ns: i64, mode: u32) -> Result<(), ZipError> {
        self.count()?;
        let central = Central {
            name: format!("{}/", name.trim_end_matches('/')),
            crc: 0,
            size: 0,
            offset: self.offset,
            dos: dos_time(mtime_ns),
            mtime_s: unix_seconds(mtime_ns),
            dir: true,
            mode: 0o040_000 | (mode & 0o777),
        };
        let extra = timestamp_extra(central.mtime_s);
        let header = local_header(&central, FLAGS_DIR, false, 0, &extra);
        self.put(&header)?;
        self.entries.push(central);
        Ok(())
    }

    /// Writes the central directory and the end records; returns the output.
    pub fn finish(mut self) -> Result<W, ZipError> {
        if self.open.is_some() {
            return Err(ZipError::Order("finish inside a file"));
        }
        let start = self.offset;
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            let record = central_record(e);
            self.put(&record)?;
        }
        let size = self.offset - start;
        let count = entries.len() as u64;
        let zip64 = count > 0xFFFF || start >= U32_MAX || size >= U32_MAX;
        let mut end = Vec::new();
        if zip64 {
            let end64_at = self.offset;
            end.extend_from_slice(&END64_SIG.to_le_bytes());
            end.extend_from_slice(&44u64.to_le_bytes());
            end.extend_from_slice(&MADE_BY.to_le_bytes());
            end.extend_from_slice(&VERSION_ZIP64.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&count.to_le_bytes());
            end.extend_from_slice(&count.to_le_bytes());
            end.extend_from_slice(&size.to_le_bytes());
            end.extend_from_slice(&start.to_le_bytes());
            end.extend_from_slice(&LOCATOR64_SIG.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&end64_at.to_le_bytes());
            end.extend_from_slice(&1u32.to_le_bytes());
        }
        end.extend_from_slice(&END_SIG.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        let count16 = if zip64 { 0xFFFF } else { count as u16 };
        end.extend_from_slice(&count16.to_le_bytes());
        end.extend_from_slice(&count16.to_le_bytes());
        let (size32, start32) = if zip64 {
            (U32_MAX as u32, U32_MAX as u32)
        } else {
            (size as u32, start as u32)
        };
        end.extend_from_slice(&size32.to_le_bytes());
        end.extend_from_slice(&start32.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        self.put(&end)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn local_header(c: &Central, flags: u16, zip64: bool, size32: u32, extra: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(30 + c.name.len() + extra.len());
    h.extend_from_slice(&LOCAL_SIG.to_le_bytes());
    let version = if zip64 { VERSION_ZIP64 } else { VERSION_PLAIN };
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&c.dos.1.to_le_bytes());
    h.extend_from_slice(&c.dos.0.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // CRC: in the data descriptor
    h.extend_from_slice(&size32.to_le_bytes());
    h.extend_from_slice(&size32.to_le_bytes());
    h.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    h.extend_from_slice(c.name.as_bytes());
    h.extend_from_slice(extra);
    h
}

fn central_record(e: &Central) -> Vec<u8> {
    let big_size = e.size >= U32_MAX;
    let big_offset = e.offset >= U32_MAX;
    let mut z64 = Vec::new();
    if big_size {
        z64.extend_from_slice(&e.size.to_le_bytes());
        z64.extend_from_slice(&e.size.to_le_bytes());
    }
    if big_offset {
        z64.extend_from_slice(&e.offset.to_le_bytes());
    }
    let mut extra = timestamp_extra(e.mtime_s);
    if !z64.is_empty() {
        extra.extend_from_slice(&0x0001u16.to_le_bytes());
        extra.extend_from_slice(&(z64.len() as u16).to_le_bytes());
        extra.extend_from_slice(&z64);
    }
    let version = if z64.is_empty() {
        VERSION_PLAIN
    } else {
        VERSION_ZIP64
    };
    let size32 = if big_size {
        U32_MAX as u32
    } else {
        e.size as u32
    };
    let offset32 = if big_offset {
        U32_MAX as u32
    } else {
        e.offset as u32
    };
    let mut r = Vec::with_capacity(46 + e.name.len() + extra.len());
    r.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
    r.extend_from_slice(&MADE_BY.to_le_bytes());
    r.extend_from_slice(&version.to_le_bytes());
    let flags = if e.dir { FLAGS_DIR } else { FLAGS_FILE };
    r.extend_from_slice(&flags.to_le_bytes());
    r.extend_from_slice(&0u16.to_le_bytes());
    r.extend_from_slice(&e.dos.1.to_le_bytes());
    r.extend_from_slice(&e.dos.0.to_le_bytes());
    r.extend_from_slice(&e.crc.to_le_bytes());
    r.extend_from_slice(&size32.to_le_bytes());
    r.extend_from_slice(&size32.to_le_bytes());
    r.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    r.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    r.extend_from_slice(&0u16.to_le_bytes()); // comment
    r.extend_from_slice(&0u16.to_le_bytes()); // disk
    r.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    let external = (e.mode << 16) | if e.dir { 0x10 } else { 0 };
    r.extend_from_slice(&external.to_le_bytes());
    r.extend_from_slice(&offset32.to_le_bytes());
    r.extend_from_slice(e.name.as_bytes());
    r.extend_from_slice(&extra);
    r
}

/// The `UT` extra field with the modification time, when it fits a signed 32-bit second.
fn timestamp_extra(mtime_s: Option<i32>) -> Vec<u8> {
    let Some(s) = mtime_s else {
        return Vec::new();
    };
    let mut x = Vec::with_capacity(9);
    x.extend_from_slice(&0x5455u16.to_le_bytes());
    x.extend_from_slice(&5u16.to_le_bytes());
    x.push(1); // mtime present
    x.extend_from_slice(&s.to_le_bytes());
    x
}

fn unix_seconds(mtime_ns: i64) -> Option<i32> {
    i32::try_from(mtime_ns.div_euclid(1_000_000_000)).ok()
}

/// (date, time) in MS-DOS form, UTC, clamped to 1980-01-01 .. 2107-12-31.
fn dos_time(mtime_ns: i64) -> (u16, u16) {
    let secs = mtime_ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if y < 1980 {
        return ((1 << 5) | 1, 0);
    }
    if y > 2107 {
        return ((127 << 9) | (12 << 5) | 31, (23 << 11) | (59 << 5) | 29);
    }
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time =
        (((rem / 3600) as u16) << 11) | ((((rem / 60) % 60) as u16) << 5) | ((rem % 60) / 2) as u16;
    (date, time)
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests;
