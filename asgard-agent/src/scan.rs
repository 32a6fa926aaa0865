//! `scan`: walks the roots and reports what it finds, without reading file contents.
//!
//! This is the minimal walker: sequential, no include/exclude rules. It has the interface the
//! backup pipeline is written against; the rule-aware parallel scanner replaces the body of
//! [`scan`] and [`ScanRules`] without changing [`ScanEvent`].
//!
//! What the events promise the pipeline (deletions depend on it):
//! - every regular file and every symbolic link below a readable folder is reported, with its
//!   `symlink_metadata` taken during the walk; links are never followed;
//! - a folder (or root) that cannot be listed is reported as [`ScanEvent::Unreadable`], and then
//!   nothing below it is reported: the pipeline must not read its absence as deletion;
//! - a missing root is [`ScanEvent::Unreadable`] with `missing: true`.

use std::fs::Metadata;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// One thing the walk found.
#[derive(Debug)]
pub enum ScanEvent {
    /// A regular file to back up (metadata from symlink_metadata, taken during the walk).
    File { path: PathBuf, meta: Metadata },
    /// A symbolic link (never followed).
    Symlink { path: PathBuf, meta: Metadata },
    /// Not backed up (socket, FIFO, device): counted and reported.
    Skipped { path: PathBuf, reason: String },
    /// A folder or root that could not be read (or a root that is missing): nothing below it may be
    /// marked deleted.
    Unreadable {
        path: PathBuf,
        error: String,
        missing: bool,
    },
}

/// Include/exclude rules for the walk. The minimal walker has none.
#[derive(Debug, Clone, Default)]
pub struct ScanRules {}

/// Walks `roots` and calls `sink` for every event, possibly from several threads; stops early when
/// `sink` returns false.
pub fn scan(roots: &[PathBuf], rules: &ScanRules, sink: &(dyn Fn(ScanEvent) -> bool + Sync)) {
    let _ = rules;
    for root in roots {
        if !scan_root(root, sink) {
            return;
        }
    }
}

/// Walks one root; false when the sink asked to stop.
fn scan_root(root: &Path, sink: &(dyn Fn(ScanEvent) -> bool + Sync)) -> bool {
    // A root that is a link to a folder is followed (the user named it); links below it are not.
    let meta = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) => {
            return sink(ScanEvent::Unreadable {
                path: root.to_owned(),
                missing: e.kind() == ErrorKind::NotFound,
                error: e.to_string(),
            });
        }
    };
    if meta.is_dir()
        && let Err(e) = std::fs::read_dir(root)
    {
        return sink(ScanEvent::Unreadable {
            path: root.to_owned(),
            missing: false,
            error: e.to_string(),
        });
    }
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .parents(false)
        .build();
    for entry in walker {
        let event = match entry {
            Ok(entry) => {
                let Some(ft) = entry.file_type() else {
                    continue;
                };
                if ft.is_dir() {
                    continue;
                }
                let depth = entry.depth();
                let path = entry.into_path();
                let meta = if depth == 0 {
                    std::fs::metadata(&path)
                } else {
                    std::fs::symlink_metadata(&path)
                };
                match meta {
                    Ok(meta) => classify(path, meta),
                    // Vanished since the folder was listed: it is simply not there any more.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => ScanEvent::Unreadable {
                        path,
                        error: e.to_string(),
                        missing: false,
                    },
                }
            }
            Err(err) => {
                let path = error_path(&err).unwrap_or(root).to_owned();
                if err.io_error().map(|e| e.kind()) == Some(ErrorKind::NotFound) && path != root {
                    continue;
                }
                ScanEvent::Unreadable {
                    path,
                    error: err.to_string(),
                    missing: false,
                }
            }
        };
        if !sink(event) {
            return false;
        }
    }
    true
}

/// What kind of event a non-folder entry is.
fn classify(path: PathBuf, meta: Metadata) -> ScanEvent {
    let ft = meta.file_type();
    if ft.is_symlink() {
        ScanEvent::Symlink { path, meta }
    } else if ft.is_file() {
        ScanEvent::File { path, meta }
    } else {
        ScanEvent::Skipped {
            path,
            reason: special_kind(&meta).to_owned(),
        }
    }
}

/// A short English name for a file that is neither regular, folder nor link.
fn special_kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let ft = meta.file_type();
        if ft.is_fifo() {
            return "fifo";
        }
        if ft.is_socket() {
            return "socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "device";
        }
    }
    let _ = meta;
    "special file"
}

/// The path an `ignore` error is about, if it names one.
fn error_path(err: &ignore::Error) -> Option<&Path> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn collect(roots: &[PathBuf]) -> Vec<ScanEvent> {
        let out = Mutex::new(Vec::new());
        scan(roots, &ScanRules::default(), &|e| {
            out.lock().unwrap().push(e);
            true
        });
        out.into_inner().unwrap()
    }

    #[test]
    fn files_links_and_missing_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a"), b"a").unwrap();
        std::fs::write(root.join("sub/b"), b"b").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("a", root.join("link")).unwrap();
        let missing = dir.path().join("gone");
        let events = collect(&[root.clone(), missing.clone()]);
        let mut files: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ScanEvent::File { path, meta } => {
                    assert!(meta.is_file());
                    Some(path.strip_prefix(&root).unwrap().to_owned())
                }
                _ => None,
            })
            .collect();
        files.sort();
        assert_eq!(files, vec![PathBuf::from("a"), PathBuf::from("sub/b")]);
        #[cfg(unix)]
        assert!(
            events.iter().any(
                |e| matches!(e, ScanEvent::Symlink { path, .. } if *path == root.join("link"))
            )
        );
        assert!(events.iter().any(|e| matches!(
            e,
            ScanEvent::Unreadable { path, missing: true, .. } if *path == missing
        )));
    }

    #[test]
    fn stops_when_the_sink_says_so() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            std::fs::write(dir.path().join(i.to_string()), b"x").unwrap();
        }
        let count = Mutex::new(0);
        scan(&[dir.path().to_owned()], &ScanRules::default(), &|_| {
            *count.lock().unwrap() += 1;
            false
        });
        assert_eq!(*count.lock().unwrap(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn socket_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let events = collect(&[dir.path().to_owned()]);
        assert!(events.iter().any(|e| matches!(
            e,
            ScanEvent::Skipped { path, reason } if *path == sock && reason == "socket"
        )));
    }
}
