//! Getting files back in the browser (issue 14): one version as a download or a preview, and a
//! folder, a whole device or a selection as of a time as one zip written while it is sent.
//!
//! Everything is looked up with the asking user's id: a version, device or path of another user
//! answers [`ServiceError::NotFound`], exactly like a missing one. The bytes come from the read
//! path of the CLI restore ([`read::restore`]): one chunk at a time, each decoded with a size
//! bound and checked against its id before a byte of it is handed on; a chunk that fails ends
//! the download with an error. A zip that stops that way has no central directory
//! ([`zipstream`]), so no unzipper takes it for a complete archive.
//!
//! The zip's file list is the point-in-time listing of `restore --at` ([`Db::list`] with a path
//! prefix and a time: of each path the newest version at or before the time, deletion markers
//! left out), read in pages, so neither the listing nor the data is ever held whole. Names are
//! relative to the folder that holds the selection, so a zip of `/home/anna/Bücher` unpacks to
//! `Bücher/…`. A name that is not UTF-8 is written with U+FFFD in place of its bad bytes and
//! listed, with the name as it was, in the notes file [`NOTES_NAME`]; so are symbolic links
//! (a zip has no portable form for them, and unpacking one can lead outside the target) and
//! names that could lead outside the archive's folder (`..`).

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

use asgard_core::RawPath;
use asgard_core::protocol::{RestoreRequest, VersionKind};

use super::ServiceError;
use super::read::{self, PlainStream};
use super::zipstream::{ZipError, ZipWriter};
use crate::db::{Db, DbError, DeviceSel, ListParams};
use crate::store::ChunkStore;

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The notes file inside a zip, written when something could not be written as it was.
pub(crate) const NOTES_NAME: &str = "WIEDERHERSTELLUNG.txt";
/// At most this many paths in one selection.
pub(crate) const MAX_SELECTION: usize = 1_000;
/// At most this many notes are listed one by one (the rest are counted).
pub(crate) const MAX_NOTES: usize = 10_000;
/// Paths read from the listing per page.
const LIST_PAGE: usize = 500;

/// One version ready to be sent: the verified plaintext (or the range asked for) and where it
/// lives.
pub(crate) struct Download {
    pub plain: PlainStream,
    pub device: String,
}

impl Download {
    /// The file's name (the last component of its path), as it was.
    pub(crate) fn name(&self) -> Vec<u8> {
        RawPath(self.plain.path.clone())
            .file_name()
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }
}

/// The version `version_id` (internal id) of `user_id`, the bytes `range` asks for. A folder, a
/// link or a deletion marker has no content to send: not found.
pub(crate) fn download(
    db: &Db,
    store: Arc<dyn ChunkStore>,
    user_id: u64,
    version_id: u64,
    range: Option<&str>,
) -> Result<Download> {
    let req = RestoreRequest {
        version_id: Some(version_id),
        ..RestoreRequest::default()
    };
    let plain = match read::restore(db, store, user_id, 0, &req, range) {
        Ok(p) => p,
        // Missing, another user's, a deletion marker, a folder or a link: all "not found".
        Err(
            ServiceError::Db(DbError::NotFound | DbError::Deleted) | ServiceError::BadRequest(_),
        ) => {
            return Err(ServiceError::NotFound);
        }
        Err(e) => return Err(e),
    };
    let device = db
        .user_device_name(user_id, plain.device_id)?
        .ok_or(ServiceError::NotFound)?;
    Ok(Download { plain, device })
}

/// `Content-Disposition` for a file named `name` (RFC 6266): an ASCII `filename` for old
/// clients (umlauts spelled out, anything else `_`) and the exact UTF-8 name in `filename*`
/// (RFC 5987 percent-encoding). A name that is not UTF-8 is sent with U+FFFD in place of the bad
/// bytes.
pub(crate) fn content_disposition(inline: bool, name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    let text = if text.is_empty() {
        "download".into()
    } else {
        text
    };
    let mut fallback = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'ä' => fallback.push_str("ae"),
            'ö' => fallback.push_str("oe"),
            'ü' => fallback.push_str("ue"),
            'Ä' => fallback.push_str("Ae"),
            'Ö' => fallback.push_str("Oe"),
            'Ü' => fallback.push_str("Ue"),
            'ß' => fallback.push_str("ss"),
            ' ' => fallback.push(' '),
            c if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%') => fallback.push(c),
            _ => fallback.push('_'),
        }
    }
    let mut encoded = String::with_capacity(text.len() * 3);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The content type a preview is served with, for the allow-list of types a browser shows
/// without running anything of the file's: pictures, PDF and plain text. `None`: no preview.
pub(crate) fn preview_type(name: &[u8]) -> Option<&'static str> {
    let dot = name.iter().rposition(|&c| c == b'.')?;
    let ext = name[dot + 1..].to_ascii_lowercase();
    Some(match ext.as_slice() {
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"pdf" => "application/pdf",
        b"txt" | b"text" | b"log" | b"md" | b"csv" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// What a zip holds: paths of one device (folders with everything below them, or files) as of
/// a time.
#[derive(Debug, Clone)]
pub(crate) struct ZipRequest {
    /// Internal device id (checked to be the user's).
    pub device_id: u64,
    /// The selected paths; the empty path is the whole device.
    pub paths: Vec<RawPath>,
    /// Of each path the newest version at or before this time (µs); the newest when `None`.
    pub at_us: Option<i64>,
}

/// Something the zip could not hold as it was, for the notes file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ZipNote {
    /// A name that is not UTF-8: `original` (every byte visible, see `RawPath::escaped`) was
    /// written as `written`.
    Renamed { original: String, written: String },
    /// A symbolic link (not in the zip) and its target.
    LinkSkipped { name: String, target: String },
    /// A path whose name could lead outside the archive's folder (not in the zip).
    Unsafe { path: String },
}

/// The notes file's text, rendered by the caller in the reader's language: the notes and how
/// many more there were beyond [`MAX_NOTES`].
pub(crate) type NotesText = Box<dyn FnOnce(&[ZipNote], u64) -> String + Send>;

/// What a finished zip held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ZipSummary {
    pub files: u64,
    pub folders: u64,
    pub bytes: u64,
    pub notes: u64,
}

/// Checks a zip request before anything is sent: the device is the user's and every selected
/// path has a live version at the time (else [`ServiceError::NotFound`], the same for another
/// user's device as for a missing one). Returns the device's name and the zip's file name.
pub(crate) fn prepare_zip(db: &Db, user_id: u64, req: &ZipRequest) -> Result<(String, String)> {
    if req.paths.is_empty() || req.paths.len() > MAX_SELECTION {
        return Err(ServiceError::BadRequest(format!(
            "{} paths selected, 1 to {MAX_SELECTION}",
            req.paths.len()
        )));
    }
    let device = db
        .user_device_name(user_id, req.device_id)?
        .ok_or(ServiceError::NotFound)?;
    for p in &req.paths {
        if p.0.is_empty() {
            continue;
        }
        let params = ListParams {
            devices: DeviceSel::Id(req.device_id),
            prefix: Some(p.clone()),
            at_us: req.at_us,
            after: None,
            limit: 1,
        };
        let (files, _) = db.list(user_id, &params)?;
        let live = files
            .first()
            .and_then(|f| f.versions.first())
            .is_some_and(|v| !v.deleted);
        if !live {
            return Err(ServiceError::NotFound);
        }
    }
    let stem = match req.paths.as_slice() {
        [one] => one
            .file_name()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_else(|| device.clone()),
        _ => device.clone(),
    };
    Ok((device, format!("{stem}.zip")))
}

/// The folder that holds `path` (what the zip's names are relative to): the path without its
/// last component; the empty path for a root.
fn holder_of(path: &RawPath) -> RawPath {
    let Some(name) = path.file_name() else {
        return RawPath::default();
    };
    let windows = path.is_windows();
    let mut end = path.0.len();
    while end > 0 && (path.0[end - 1] == b'/' || (windows && path.0[end - 1] == b'\\')) {
        end -= 1;
    }
    RawPath(path.0[..end - name.len()].to_vec())
}

/// The zip entry name of `path` below `holder`: its components joined with `/`, each not
/// UTF-8 one with U+FFFD for its bad bytes (`renamed`). `None` for a name that could lead
/// outside (`..`, a separator inside a name) and for the holder itself.
fn entry_name(path: &RawPath, holder: &RawPath) -> Option<(String, bool)> {
    let (holder, drive) =
        if holder.0.is_empty() && path.is_windows() && path.0.get(1) == Some(&b':') {
            // A whole Windows device: `C:\Users\…` becomes `C/Users/…`.
            (
                RawPath(path.0[..2.min(path.0.len())].to_vec()),
                Some(path.0[0] as char),
            )
        } else {
            (holder.clone(), None)
        };
    let parts = path.components_below(&holder)?.ok()?;
    if parts.is_empty() && drive.is_none() {
        return None;
    }
    let mut name = String::new();
    let mut renamed = false;
    if let Some(d) = drive {
        name.push(d.to_ascii_uppercase());
    }
    for part in parts {
        if !name.is_empty() {
            name.push('/');
        }
        match std::str::from_utf8(part) {
            Ok(s) => name.push_str(s),
            Err(_) => {
                renamed = true;
                name.push_str(&String::from_utf8_lossy(part));
            }
        }
    }
    Some((name, renamed))
}

fn zip_err(e: ZipError) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// Writes the zip of `req` into `out` (a blocking call for the whole archive: run it off the
/// async workers). `notes` renders the notes file when there is something to note. Any error
/// ends the archive without its central directory.
pub(crate) fn write_zip<W: Write>(
    db: &Db,
    store: Arc<dyn ChunkStore>,
    user_id: u64,
    req: &ZipRequest,
    out: W,
    notes: NotesText,
    now_ns: i64,
) -> Result<ZipSummary> {
    // The device is checked here too, not only in `prepare_zip`: a listing of another user's
    // device is empty, and an empty zip is still an answer.
    db.user_device_name(user_id, req.device_id)?
        .ok_or(ServiceError::NotFound)?;
    let mut zip = ZipWriter::new(out);
    let mut summary = ZipSummary::default();
    let mut listed = Vec::new();
    let mut more_notes = 0u64;
    let mut note = |n: ZipNote, summary: &mut ZipSummary| {
        summary.notes += 1;
        if listed.len() < MAX_NOTES {
            listed.push(n);
        } else {
            more_notes += 1;
        }
    };
    // Replaced names that are taken: a second name that turns into the same text gets a suffix.
    let mut replaced: HashSet<String> = HashSet::new();
    for selected in &req.paths {
        let holder = holder_of(selected);
        let mut after = None;
        loop {
            let params = ListParams {
                devices: DeviceSel::Id(req.device_id),
                prefix: (!selected.0.is_empty()).then(|| selected.clone()),
                at_us: req.at_us,
                after: after.take(),
                limit: LIST_PAGE,
            };
            let (files, cursor) = db.list(user_id, &params)?;
            for f in files {
                let Some(v) = f.versions.first() else {
                    continue;
                };
                if v.deleted {
                    continue;
                }
                let Some((mut name, renamed)) = entry_name(&f.path, &holder) else {
                    if f.path != holder && !(holder.0.is_empty() && f.path.file_name().is_none()) {
                        note(
                            ZipNote::Unsafe {
                                path: f.path.escaped().to_string(),
                            },
                            &mut summary,
                        );
                    }
                    continue;
                };
                match v.kind {
                    VersionKind::Dir => {
                        zip.add_dir(&name, v.mtime_ns, v.mode).map_err(zip_err)?;
                        summary.folders += 1;
                    }
                    VersionKind::Symlink => {
                        let target = v
                            .symlink_target
                            .as_ref()
                            .map(|t| t.escaped().to_string())
                            .unwrap_or_default();
                        note(ZipNote::LinkSkipped { name, target }, &mut summary);
                        continue;
                    }
                    _ => {
                        if renamed {
                            let stem = name.clone();
                            let mut n = 2;
                            while !replaced.insert(name.clone()) {
                                name = format!("{stem}~{n}");
                                n += 1;
                            }
                        }
                        let one = RestoreRequest {
                            version_id: Some(v.id),
                            ..RestoreRequest::default()
                        };
                        let plain = read::restore(db, store.clone(), user_id, 0, &one, None)?;
                        zip.start_file(&name, plain.size, plain.mtime_ns, plain.mode)
                            .map_err(zip_err)?;
                        for piece in plain {
                            zip.write_data(&piece?).map_err(zip_err)?;
                        }
                        zip.finish_file().map_err(zip_err)?;
                        summary.files += 1;
                        summary.bytes += v.size;
                    }
                }
                if renamed {
                    note(
                        ZipNote::Renamed {
                            original: f.path.escaped().to_string(),
                            written: name,
                        },
                        &mut summary,
                    );
                }
            }
            match cursor.as_deref().and_then(crate::db::decode_cursor) {
                Some(c) => after = Some(c),
                None => break,
            }
        }
    }
    if summary.notes > 0 {
        let text = notes(&listed, more_notes);
        zip.add_file(NOTES_NAME, text.as_bytes(), now_ns)
            .map_err(zip_err)?;
    }
    zip.finish().map_err(zip_err)?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
