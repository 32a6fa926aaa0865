//! `restore`: files (or a folder) back from the server, exactly.
//!
//! Each file streams into a temp file next to its destination while it is hashed; only when size
//! and blake3 match the version are mtime and mode set, the data fsynced and the temp file renamed
//! into place. An existing file is never changed unless `--overwrite` says so, and no path from the
//! server can lead outside the target (`..`, drive letters and the like are refused).
//!
//! Runs of all-zero blocks are not written but skipped over (the length is set at the end), so a
//! sparse file comes back sparse on file systems that support holes. Symbolic links come back as
//! links with their exact target, after every regular file, so that no file of the same restore is
//! written through a link it just created.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use asgard_core::path::{bytes_to_path, check_component};
use asgard_core::protocol::{ListQuery, VersionInfo, VersionKind};
use asgard_core::{ChunkId, Lang, RawPath};

use crate::client::Client;
use crate::list::{fetch_all, prefix_hex};
use crate::platform;
use crate::session::{self, Ctx};
use crate::timefmt::{human_bytes, parse_at};

pub struct RestoreArgs {
    pub path: PathBuf,
    pub version: Option<u64>,
    pub at: Option<String>,
    pub to: Option<PathBuf>,
    pub overwrite: bool,
    pub device: Option<String>,
}

/// Where a backed-up file goes. `root` is the path the user asked for (file or folder), `file` a
/// path at or below it. With `to`, a single file lands as `to/<name>` and a folder's files as
/// `to/<folder name>/<parts...>`; without, at their original place. Unsafe components are refused.
pub fn destination(root: &RawPath, file: &RawPath, to: Option<&Path>) -> Result<PathBuf, String> {
    let parts = match file.components_below(root) {
        None => return Err(format!("{file} is not within {root}")),
        Some(Err(e)) => return Err(e.to_string()),
        Some(Ok(parts)) => parts,
    };
    let checked = |name: &[u8]| -> Result<PathBuf, String> {
        check_component(name).map_err(|reason| format!("unsafe path {file}: {reason}"))?;
        Ok(bytes_to_path(name))
    };
    if parts.is_empty() {
        return match to {
            Some(dir) => {
                let name = file
                    .file_name()
                    .ok_or_else(|| format!("{file} has no file name"))?;
                Ok(dir.join(checked(name)?))
            }
            None => Ok(file.to_path_buf()),
        };
    }
    let mut dest = match to {
        Some(dir) => match root.file_name() {
            Some(name) => dir.join(checked(name)?),
            None => dir.to_owned(),
        },
        None => root.to_path_buf(),
    };
    for part in parts {
        dest.push(checked(part)?);
    }
    Ok(dest)
}

#[derive(Default)]
struct Tally {
    restored: u64,
    bytes: u64,
    up_to_date: u64,
    deleted: u64,
    conflicts: u64,
    errors: u64,
}

pub async fn run(ctx: &Ctx, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let lang = ctx.lang;
    let at_us = match &args.at {
        Some(text) => Some(parse_at(text, ctx.offset).ok_or_else(|| {
            anyhow!(
                "{}: {text}",
                lang.pick(
                    "Ungültige Zeitangabe für --at (RFC 3339 oder JJJJ-MM-TT HH:MM[:SS])",
                    "Invalid time for --at (RFC 3339 or YYYY-MM-DD HH:MM[:SS])"
                )
            )
        })?),
        None => None,
    };
    let root_path = std::path::absolute(&args.path)?;
    let root = RawPath::from_path(&root_path);
    let session = session::connect(ctx).await?;
    let query = ListQuery {
        device: args.device.clone(),
        prefix_hex: Some(prefix_hex(&root)),
        at_us,
        ..ListQuery::default()
    };
    let files = fetch_all(&session.client, query).await?;

    // (path, version) for every file to restore.
    let mut plan: Vec<(RawPath, VersionInfo)> = Vec::new();
    if let Some(id) = args.version {
        let found = files
            .iter()
            .filter(|f| f.path.is_within(&root))
            .find_map(|f| {
                f.versions
                    .iter()
                    .find(|v| v.id == id)
                    .map(|v| (f.path.clone(), v.clone()))
            });
        match found {
            Some(p) => plan.push(p),
            None => bail!(
                "{}",
                match lang {
                    Lang::De => format!("Version {id} nicht gefunden unter {root}"),
                    Lang::En => format!("Version {id} not found under {root}"),
                }
            ),
        }
    } else {
        for f in files {
            if !f.path.is_within(&root) {
                continue;
            }
            let newest = f
                .versions
                .into_iter()
                .filter(|v| at_us.is_none_or(|at| v.time_us <= at))
                .max_by_key(|v| (v.time_us, v.id));
            if let Some(v) = newest {
                plan.push((f.path, v));
            }
        }
    }
    if plan.is_empty() {
        bail!(
            "{}",
            match lang {
                Lang::De => format!("Unter {root} wurde (zu diesem Zeitpunkt) nichts gesichert."),
                Lang::En => format!("Nothing was backed up under {root} (at that time)."),
            }
        );
    }

    // Links last (stable sort keeps the path order otherwise).
    plan.sort_by_key(|(_, v)| v.kind == VersionKind::Symlink);
    let mut t = Tally::default();
    for (path, version) in &plan {
        if version.deleted {
            t.deleted += 1;
            println!(
                "{}: {path}",
                lang.pick(
                    "Zu diesem Zeitpunkt gelöscht, nicht wiederhergestellt",
                    "Deleted at that time, not restored"
                )
            );
            continue;
        }
        let dest = match destination(&root, path, args.to.as_deref()) {
            Ok(d) => d,
            Err(e) => {
                t.errors += 1;
                eprintln!(
                    "{}: {e}",
                    lang.pick("Fehler: Pfad abgelehnt", "Error: path refused")
                );
                continue;
            }
        };
        let result = if version.kind == VersionKind::Symlink {
            restore_link(version, &dest, args.overwrite, lang)
        } else {
            restore_one(&session.client, version, &dest, args.overwrite, lang).await
        };
        match result {
            Ok(Done::Restored) => {
                t.restored += 1;
                t.bytes += version.size;
            }
            Ok(Done::UpToDate) => {
                t.up_to_date += 1;
                println!(
                    "{}: {}",
                    lang.pick("Bereits aktuell", "Already up to date"),
                    dest.display()
                );
            }
            Ok(Done::Conflict) => {
                t.conflicts += 1;
                eprintln!(
                    "{}",
                    match lang {
                        Lang::De => format!(
                            "Bestehende Datei wird nicht überschrieben: {} (mit --overwrite \
                             ersetzen)",
                            dest.display()
                        ),
                        Lang::En => format!(
                            "Existing file is not overwritten: {} (replace with --overwrite)",
                            dest.display()
                        ),
                    }
                );
            }
            Err(e) => {
                t.errors += 1;
                eprintln!(
                    "{}: {}: {e:#}",
                    lang.pick("Fehler", "Error"),
                    dest.display()
                );
            }
        }
    }

    match lang {
        Lang::De => println!(
            "Wiederhergestellt: {} Dateien ({}); bereits aktuell: {}; zu diesem Zeitpunkt \
             gelöscht: {}; Konflikte: {}; Fehler: {}",
            t.restored,
            human_bytes(t.bytes),
            t.up_to_date,
            t.deleted,
            t.conflicts,
            t.errors
        ),
        Lang::En => println!(
            "Restored: {} files ({}); already up to date: {}; deleted at that time: {}; \
             conflicts: {}; errors: {}",
            t.restored,
            human_bytes(t.bytes),
            t.up_to_date,
            t.deleted,
            t.conflicts,
            t.errors
        ),
    }
    Ok(if t.conflicts > 0 || t.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

enum Done {
    Restored,
    UpToDate,
    Conflict,
}

/// The blake3 of a local file, streamed.
fn hash_file(path: &Path) -> std::io::Result<ChunkId> {
    let mut f = std::fs::File::open(path)?;
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

/// Removes the temp file unless the restore completed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn restore_one(
    client: &Client,
    version: &VersionInfo,
    dest: &Path,
    overwrite: bool,
    lang: Lang,
) -> anyhow::Result<Done> {
    let expected = version
        .hash
        .ok_or_else(|| anyhow!("version {} has no hash", version.id))?;
    if let Some(done) = existing(dest, overwrite, lang, |meta| {
        Ok(meta.is_file() && meta.len() == version.size && hash_file(dest)? == expected)
    })? {
        return Ok(done);
    }
    let (dir, tmp) = temp_beside(dest)?;
    let file = platform::create_restore_file(&tmp, version.attributes)
        .with_context(|| tmp.display().to_string())?;
    let mut guard = TempGuard(Some(tmp.clone()));

    let mut resp = client.restore(version.id).await?;
    let mut hasher = blake3::Hasher::new();
    let mut out = SparseWriter::new(file);
    while let Some(bytes) = resp.chunk().await? {
        hasher.update(&bytes);
        out.write(&bytes)?;
        if out.len() > version.size {
            break;
        }
    }
    let size = out.len();
    let file = out.finish()?;
    let got: ChunkId = hasher.finalize().into();
    if size != version.size || got != expected {
        bail!(
            "{} ({} {size}/{}, blake3 {got})",
            lang.pick(
                "Die empfangenen Daten stimmen nicht mit der Version überein; nichts geschrieben",
                "The received data does not match the version; nothing written"
            ),
            lang.pick("Größe", "size"),
            version.size
        );
    }
    file.set_modified(platform::ns_to_system_time(version.mtime_ns))?;
    file.sync_all()?;
    drop(file);
    platform::apply_metadata(&tmp, version.mode, version.attributes)?;
    platform::replace_file(&tmp, dest)?;
    guard.0 = None;
    // fsync the folder so the rename survives a crash (not possible on Windows).
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(Done::Restored)
}

/// Restores a symbolic link with its exact target (the target itself is not touched). The link's
/// own mtime is not set: std has no call for that.
fn restore_link(
    version: &VersionInfo,
    dest: &Path,
    overwrite: bool,
    lang: Lang,
) -> anyhow::Result<Done> {
    let target = version
        .symlink_target
        .as_ref()
        .ok_or_else(|| anyhow!("version {} is a link without a target", version.id))?
        .to_path_buf();
    if let Some(done) = existing(dest, overwrite, lang, |meta| {
        Ok(meta.is_symlink() && std::fs::read_link(dest).ok().as_ref() == Some(&target))
    })? {
        return Ok(done);
    }
    let (dir, tmp) = temp_beside(dest)?;
    let _ = std::fs::remove_file(&tmp);
    // Only Windows distinguishes file and folder links; a dangling target counts as a file.
    let target_is_dir = dir.join(&target).is_dir();
    platform::create_symlink(&target, &tmp, target_is_dir).with_context(|| {
        format!(
            "{} {}",
            lang.pick(
                "Symbolische Verknüpfung kann nicht angelegt werden (unter Windows sind dafür das \
                 Recht „Symbolische Verknüpfungen erstellen“ oder der Entwicklermodus nötig):",
                "Cannot create the symbolic link (on Windows this needs the \"Create symbolic \
                 links\" right or developer mode):"
            ),
            dest.display()
        )
    })?;
    let mut guard = TempGuard(Some(tmp.clone()));
    std::fs::rename(&tmp, dest)?;
    guard.0 = None;
    Ok(Done::Restored)
}

/// Writes a stream to a file, seeking over 4 KiB blocks (aligned to the file offset) that are all
/// zero instead of writing them; [`SparseWriter::finish`] sets the final length, so a trailing
/// hole is kept too. Runs of data blocks are written with one call.
struct SparseWriter {
    file: std::fs::File,
    /// Bytes taken so far (the logical length).
    len: u64,
    /// Where the file cursor stands.
    cursor: u64,
}

const SPARSE_BLOCK: u64 = 4096;

impl SparseWriter {
    fn new(file: std::fs::File) -> Self {
        SparseWriter {
            file,
            len: 0,
            cursor: 0,
        }
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let base = self.len;
        // The end of the block that starts at `i`.
        let block_end = |i: usize| {
            let off = base + i as u64;
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
                let off = base + i as u64;
                if self.cursor != off {
                    self.file.seek(SeekFrom::Start(off))?;
                }
                self.file.write_all(&data[i..j])?;
                self.cursor = off + (j - i) as u64;
            }
            i = j;
        }
        self.len += data.len() as u64;
        Ok(())
    }

    fn finish(self) -> std::io::Result<std::fs::File> {
        self.file.set_len(self.len)?;
        Ok(self.file)
    }
}

fn is_zero(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(16);
    words.all(|w| u128::from_ne_bytes(w.try_into().expect("16 bytes")) == 0)
        && words.remainder().iter().all(|&x| x == 0)
}

/// What to do about whatever is at `dest` already: `Some(UpToDate)` when `same` says it is the
/// version, `Some(Conflict)` when it differs and `overwrite` is off, `None` to go ahead (nothing
/// there, or a file or link to replace). A folder in the way is an error.
fn existing(
    dest: &Path,
    overwrite: bool,
    lang: Lang,
    same: impl FnOnce(&std::fs::Metadata) -> anyhow::Result<bool>,
) -> anyhow::Result<Option<Done>> {
    let Ok(meta) = std::fs::symlink_metadata(dest) else {
        return Ok(None);
    };
    if same(&meta)? {
        return Ok(Some(Done::UpToDate));
    }
    if !overwrite {
        return Ok(Some(Done::Conflict));
    }
    if meta.is_dir() {
        bail!(
            "{}",
            lang.pick("An der Stelle liegt ein Ordner", "A folder is in the way")
        );
    }
    Ok(None)
}

/// The destination's folder (created if needed) and a temp path beside `dest` in it, so the final
/// rename stays within one file system.
fn temp_beside(dest: &Path) -> anyhow::Result<(&Path, PathBuf)> {
    let dir = dest.parent().ok_or_else(|| anyhow!("no parent folder"))?;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let mut tmp_name = OsString::from(".asgard-restore-");
    tmp_name.push(dest.file_name().unwrap_or_default());
    Ok((dir, dir.join(tmp_name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(s: &str) -> RawPath {
        RawPath::from(s)
    }

    #[test]
    fn folder_to_target_keeps_folder_name() {
        let root = rp("/home/a/docs");
        let file = rp("/home/a/docs/sub/x.txt");
        assert_eq!(
            destination(&root, &file, Some(Path::new("/tmp/r"))).unwrap(),
            PathBuf::from("/tmp/r/docs/sub/x.txt")
        );
        assert_eq!(
            destination(&root, &file, None).unwrap(),
            PathBuf::from("/home/a/docs/sub/x.txt")
        );
    }

    #[test]
    fn single_file() {
        let f = rp("/home/a/docs/x.txt");
        assert_eq!(
            destination(&f, &f, Some(Path::new("/tmp/r"))).unwrap(),
            PathBuf::from("/tmp/r/x.txt")
        );
        assert_eq!(
            destination(&f, &f, None).unwrap(),
            PathBuf::from("/home/a/docs/x.txt")
        );
    }

    #[test]
    fn windows_paths() {
        let root = rp(r"C:\Users\Bob\Documents");
        let file = rp(r"C:\Users\Bob\Documents\Steuer\2025.pdf");
        let to = Path::new("/tmp/r");
        assert_eq!(
            destination(&root, &file, Some(to)).unwrap(),
            to.join("Documents").join("Steuer").join("2025.pdf")
        );
        // Windows paths compare case-insensitively.
        let lower = rp(r"c:\users\bob\documents");
        assert!(destination(&lower, &file, Some(to)).is_ok());
        let single = rp(r"C:\Users\Bob\Desktop\a.txt");
        assert_eq!(
            destination(&single, &single, Some(to)).unwrap(),
            to.join("a.txt")
        );
        let evil = rp(r"C:\Users\Bob\Documents\..\..\Windows\evil.dll");
        assert!(destination(&root, &evil, Some(to)).is_err());
    }

    #[test]
    fn rejects_traversal_and_outsiders() {
        let root = rp("/home/a");
        let to = Some(Path::new("/tmp/r"));
        assert!(destination(&root, &rp("/home/a/../../etc/passwd"), to).is_err());
        assert!(destination(&root, &rp("/home/a/./x"), to).is_err());
        assert!(destination(&root, &rp("/home/a/../x"), None).is_err());
        assert!(destination(&root, &rp("/home/ab/x"), to).is_err());
        assert!(destination(&root, &rp("/etc/passwd"), None).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_map_exactly() {
        use std::os::unix::ffi::OsStrExt;
        let root = RawPath(b"/d".to_vec());
        let file = RawPath(b"/d/caf\xe9.txt".to_vec());
        let dest = destination(&root, &file, Some(Path::new("/t"))).unwrap();
        assert_eq!(dest.as_os_str().as_bytes(), b"/t/d/caf\xe9.txt");
    }

    #[test]
    fn sparse_writer_writes_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut data = vec![0u8; 3 * 1024 * 1024 + 77];
        data[5000] = 1;
        data[1_000_000..1_000_100].fill(7);
        data[3 * 1024 * 1024 + 70] = 9;
        let mut w = SparseWriter::new(std::fs::File::create(&p).unwrap());
        // Odd piece sizes: blocks are aligned to the file offset, not to the pieces.
        for piece in data.chunks(12_345) {
            w.write(piece).unwrap();
        }
        drop(w.finish().unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), data);
        let trailing = dir.path().join("t");
        let mut w = SparseWriter::new(std::fs::File::create(&trailing).unwrap());
        w.write(b"abc").unwrap();
        w.write(&vec![0; 100_000]).unwrap();
        drop(w.finish().unwrap());
        let got = std::fs::read(&trailing).unwrap();
        assert_eq!(got.len(), 100_003);
        assert_eq!(&got[..3], b"abc");
        assert!(is_zero(&got[3..]));
    }

    #[test]
    fn hashes_files_like_blake3() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(hash_file(&p).unwrap(), ChunkId::of(b"hello"));
    }
}
