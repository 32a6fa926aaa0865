//! The scanner: walks the plan's roots in parallel (`ignore::WalkBuilder::build_parallel`) and
//! reports every file, link and odd entry to a sink, from several threads.
//!
//! - Every folder the walk enters is reported ([`ScanEvent::Dir`]), each root folder too, so that
//!   empty folders and each folder's metadata are backed up.
//! - Hidden files are backed up; `.gitignore` and the other standard filters are off.
//! - Links are never followed (a root that is itself a link to a folder is walked: the user named
//!   it; its entries are reported under the root's own path).
//! - Unless `cross_filesystems`, a walk stays on its root's file system.
//! - `.asgardignore` files add gitignore rules for their folder and everything below it, also when
//!   they lie above a root; as in `.gitignore`, a backslash escapes there, so write `/` (also on
//!   Windows, where they match case-insensitively). A rule file with a bad line is reported as
//!   [`ScanEvent::Unreadable`] (its other lines still apply), so the user learns of it.
//! - The blacklist ([`ScanRules`]) applies to every path; an excluded folder is not entered.
//! - A root strictly inside another root is left to its own walk (it is reported once, and the
//!   more specific root's rules apply there).

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use asgard_core::{Plan, RawPath, RuleSet};
use ignore::{WalkBuilder, WalkState};

use crate::platform;

/// What the scanner found.
#[derive(Debug)]
pub enum ScanEvent {
    /// A regular file to back up (metadata from symlink_metadata, taken during the walk).
    File { path: PathBuf, meta: Metadata },
    /// A folder that the walk enters (a root included; an excluded folder never). `followed`: the
    /// root is a link to this folder, and `meta` is the folder's (the link is followed for it).
    Dir {
        path: PathBuf,
        meta: Metadata,
        followed: bool,
    },
    /// A symbolic link (never followed).
    Symlink { path: PathBuf, meta: Metadata },
    /// Not backed up (socket, FIFO, device, excluded by nothing but its kind): counted and reported.
    Skipped { path: PathBuf, reason: String },
    /// A folder or root that could not be read (or a root that is missing): nothing below it may be
    /// marked deleted.
    Unreadable {
        path: PathBuf,
        error: String,
        missing: bool,
    },
}

/// What the scanner leaves out: the blacklist and whether to cross file systems.
#[derive(Debug, Clone, Default)]
pub struct ScanRules {
    blacklist: RuleSet,
    cross_filesystems: bool,
}

impl ScanRules {
    pub(crate) fn new(blacklist: RuleSet, cross_filesystems: bool) -> ScanRules {
        ScanRules {
            blacklist,
            cross_filesystems,
        }
    }

    /// The plan's rules and file system setting.
    pub(crate) fn from_plan(plan: &Plan) -> ScanRules {
        ScanRules::new(plan.rule_set().clone(), plan.cross_filesystems)
    }
}

/// The name of the per-folder rule files.
pub(crate) const IGNORE_FILE: &str = ".asgardignore";

/// Walks `roots` (absolute paths; a root may be a file) and calls `sink` for every event, from
/// several threads; stops early when `sink` returns false. Excluded paths produce no event.
pub fn scan(roots: &[PathBuf], rules: &ScanRules, sink: &(dyn Fn(ScanEvent) -> bool + Sync)) {
    let stop = AtomicBool::new(false);
    let raw: Vec<RawPath> = roots.iter().map(|r| RawPath::from_path(r)).collect();
    let same = |a: &RawPath, b: &RawPath| a.is_within(b) && b.is_within(a);
    for (i, root) in roots.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if raw[..i].iter().any(|r| same(r, &raw[i])) {
            continue;
        }
        let nested: Vec<RawPath> = raw
            .iter()
            .filter(|r| r.is_within(&raw[i]) && !same(r, &raw[i]))
            .cloned()
            .collect();
        scan_root(root, nested, rules, sink, &stop);
    }
}

/// Maps paths below the walked folder back under the root's name (for a root that is a link).
#[derive(Clone)]
struct Remap {
    walked: PathBuf,
    root: PathBuf,
}

impl Remap {
    fn apply(remap: &Option<Remap>, path: &Path) -> PathBuf {
        match remap {
            Some(m) => match path.strip_prefix(&m.walked) {
                Ok(rest) if rest.as_os_str().is_empty() => m.root.clone(),
                Ok(rest) => m.root.join(rest),
                Err(_) => path.to_owned(),
            },
            None => path.to_owned(),
        }
    }
}

fn unreadable(path: PathBuf, e: &std::io::Error) -> ScanEvent {
    ScanEvent::Unreadable {
        path,
        error: e.to_string(),
        missing: e.kind() == std::io::ErrorKind::NotFound,
    }
}

fn scan_root(
    root: &Path,
    nested: Vec<RawPath>,
    rules: &ScanRules,
    sink: &(dyn Fn(ScanEvent) -> bool + Sync),
    stop: &AtomicBool,
) {
    let emit = |ev: ScanEvent| {
        if !sink(ev) {
            stop.store(true, Ordering::Relaxed);
        }
    };
    let raw_root = RawPath::from_path(root);
    let root_rules = rules.blacklist.for_root(&raw_root);
    let lmeta = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) => {
            if !root_rules.excludes(&raw_root, false) {
                emit(unreadable(root.to_owned(), &e));
            }
            return;
        }
    };
    let link_to_dir =
        lmeta.file_type().is_symlink() && std::fs::metadata(root).is_ok_and(|m| m.is_dir());
    let is_dir = lmeta.is_dir() || link_to_dir;
    if root_rules.excludes(&raw_root, is_dir) {
        return;
    }
    if !is_dir {
        emit(classify(root.to_owned(), lmeta));
        return;
    }
    if let Err(e) = std::fs::read_dir(root) {
        emit(unreadable(root.to_owned(), &e));
        return;
    }
    // The root folder itself (the walk below reports only what lies under it).
    let root_meta = if link_to_dir {
        std::fs::metadata(root)
    } else {
        Ok(lmeta)
    };
    match root_meta {
        Ok(meta) => emit(ScanEvent::Dir {
            path: root.to_owned(),
            meta,
            followed: link_to_dir,
        }),
        Err(e) => {
            emit(unreadable(root.to_owned(), &e));
            return;
        }
    }
    if stop.load(Ordering::Relaxed) {
        return;
    }
    let remap = if link_to_dir {
        match std::fs::canonicalize(root) {
            Ok(walked) => Some(Remap {
                walked,
                root: root.to_owned(),
            }),
            Err(e) => {
                emit(unreadable(root.to_owned(), &e));
                return;
            }
        }
    } else {
        None
    };
    let walk_from = remap.as_ref().map_or(root, |m| m.walked.as_path());

    let mut builder = WalkBuilder::new(walk_from);
    builder
        .standard_filters(false)
        .hidden(false)
        .parents(true)
        .follow_links(false)
        .same_file_system(!rules.cross_filesystems)
        .ignore_case_insensitive(platform::WINDOWS)
        .add_custom_ignore_filename(IGNORE_FILE);
    let filter = Arc::new((root_rules, nested, remap.clone()));
    builder.filter_entry(move |entry| {
        let (rules, nested, remap) = &*filter;
        let path = RawPath::from_path(&Remap::apply(remap, entry.path()));
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        if rules.excludes(&path, is_dir) {
            return false;
        }
        !nested
            .iter()
            .any(|n| n.is_within(&path) && path.is_within(n))
    });
    builder.build_parallel().run(|| {
        let remap = remap.clone();
        Box::new(move |entry| {
            if stop.load(Ordering::Relaxed) {
                return WalkState::Quit;
            }
            let events = match entry {
                Err(e) => vec![error_event(&e, root, &remap)],
                Ok(ent) => {
                    let mut events = Vec::new();
                    if let Some(e) = ent.error() {
                        events.push(error_event(e, root, &remap));
                    }
                    if ent.depth() > 0 {
                        let path = Remap::apply(&remap, ent.path());
                        match std::fs::symlink_metadata(&path) {
                            Ok(meta) => events.push(classify(path, meta)),
                            // Gone since the folder was listed: nothing to back up.
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => events.push(unreadable(path, &e)),
                        }
                    }
                    events
                }
            };
            for ev in events {
                if !sink(ev) {
                    stop.store(true, Ordering::Relaxed);
                    return WalkState::Quit;
                }
            }
            WalkState::Continue
        })
    });
}

/// The event for one entry by its kind.
fn classify(path: PathBuf, meta: Metadata) -> ScanEvent {
    let ft = meta.file_type();
    if ft.is_dir() {
        ScanEvent::Dir {
            path,
            meta,
            followed: false,
        }
    } else if ft.is_symlink() {
        ScanEvent::Symlink { path, meta }
    } else if ft.is_file() {
        ScanEvent::File { path, meta }
    } else {
        ScanEvent::Skipped {
            path,
            reason: platform::special_file_kind(&ft).to_owned(),
        }
    }
}

/// A walk error as an event: the path it names (the root if none), missing when not found.
fn error_event(e: &ignore::Error, root: &Path, remap: &Option<Remap>) -> ScanEvent {
    let path = error_path(e).map_or_else(|| root.to_owned(), |p| Remap::apply(remap, p));
    ScanEvent::Unreadable {
        path,
        error: e.to_string(),
        missing: e
            .io_error()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound),
    }
}

fn error_path(e: &ignore::Error) -> Option<&Path> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Partial(errs) => errs.iter().find_map(error_path),
        ignore::Error::Loop { child, .. } => Some(child),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
