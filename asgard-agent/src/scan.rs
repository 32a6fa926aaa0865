//! The scanner: walks the plan's roots in parallel (`ignore::WalkBuilder::build_parallel`) and
//! reports every file, link and odd entry to a sink, from several threads.
//!
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
    pub fn new(blacklist: RuleSet, cross_filesystems: bool) -> ScanRules {
        ScanRules {
            blacklist,
            cross_filesystems,
        }
    }

    /// The plan's rules and file system setting.
    pub fn from_plan(plan: &Plan) -> ScanRules {
        ScanRules::new(plan.rule_set().clone(), plan.cross_filesystems)
    }
}

/// The name of the per-folder rule files.
pub const IGNORE_FILE: &str = ".asgardignore";

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
        if let Some(ev) = classify(root.to_owned(), lmeta) {
            emit(ev);
        }
        return;
    }
    if let Err(e) = std::fs::read_dir(root) {
        emit(unreadable(root.to_owned(), &e));
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
                            Ok(meta) => events.extend(classify(path, meta)),
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

/// The event for one entry by its kind (`None` for a folder: the walk enters it).
fn classify(path: PathBuf, meta: Metadata) -> Option<ScanEvent> {
    let ft = meta.file_type();
    if ft.is_dir() {
        None
    } else if ft.is_symlink() {
        Some(ScanEvent::Symlink { path, meta })
    } else if ft.is_file() {
        Some(ScanEvent::File { path, meta })
    } else {
        Some(ScanEvent::Skipped {
            path,
            reason: platform::special_file_kind(&ft).to_owned(),
        })
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
mod tests {
    use super::*;
    use asgard_core::rules::{Rule, RuleOrigin};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// What a scan reported, by path: "file", "symlink", "skipped: ...", "unreadable", "missing".
    fn run(roots: &[PathBuf], rules: &ScanRules) -> BTreeMap<PathBuf, Vec<String>> {
        let seen: Mutex<BTreeMap<PathBuf, Vec<String>>> = Mutex::new(BTreeMap::new());
        let sink = |ev: ScanEvent| {
            let (path, what) = match ev {
                ScanEvent::File { path, meta } => {
                    assert!(meta.is_file());
                    (path, "file".to_owned())
                }
                ScanEvent::Symlink { path, meta } => {
                    assert!(meta.file_type().is_symlink());
                    (path, "symlink".to_owned())
                }
                ScanEvent::Skipped { path, reason } => (path, format!("skipped: {reason}")),
                ScanEvent::Unreadable { path, missing, .. } => (
                    path,
                    if missing { "missing" } else { "unreadable" }.to_owned(),
                ),
            };
            seen.lock().unwrap().entry(path).or_default().push(what);
            true
        };
        scan(roots, rules, &sink);
        seen.into_inner().unwrap()
    }

    fn rules_of(list: &[&str]) -> ScanRules {
        let env = |_: &str| None;
        let rules = list
            .iter()
            .map(|r| Rule::parse(r, RuleOrigin::Configured, platform::WINDOWS, &env).unwrap())
            .collect();
        ScanRules::new(RuleSet::new(platform::WINDOWS, rules).unwrap(), false)
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    fn files(found: &BTreeMap<PathBuf, Vec<String>>, base: &Path) -> Vec<String> {
        found
            .iter()
            .filter(|(_, w)| w.as_slice() == ["file"])
            .map(|(p, _)| {
                p.strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect()
    }

    #[test]
    fn blacklist_prefix_and_globs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for f in [
            "a.txt",
            "skip/x.txt",
            "b.tmp",
            "deep/er/c.TMP",
            "p/node_modules/y.js",
            "q/node_modules",
            ".hidden",
        ] {
            touch(&root.join(f));
        }
        let skip = root.join("skip").to_string_lossy().into_owned();
        let rules = rules_of(&[&skip, "*.tmp", "**/node_modules/"]);
        let found = run(std::slice::from_ref(&root), &rules);
        let mut expected = vec![".hidden", "a.txt", "q/node_modules"];
        if !platform::WINDOWS {
            // Linux rules are case-sensitive.
            expected.insert(2, "deep/er/c.TMP");
        }
        assert_eq!(files(&found, &root), expected);
        assert_eq!(found.len(), expected.len(), "{found:?}");
    }

    /// The product defaults keep working for a root below a never entry (temp dirs live in /tmp).
    #[test]
    fn default_rules_in_a_temp_root() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("f/a.txt"));
        let env = |_: &str| None;
        let defaults = asgard_core::plan::default_rules(platform::WINDOWS, &|k: &str| {
            env(k).or_else(|| Some("C:\\Users\\x".to_owned()).filter(|_| k == "USERPROFILE"))
        })
        .unwrap();
        let rules = ScanRules::new(RuleSet::new(platform::WINDOWS, defaults).unwrap(), false);
        let found = run(&[dir.path().to_owned()], &rules);
        assert_eq!(files(&found, dir.path()), ["f/a.txt"]);
    }

    #[test]
    fn asgardignore_applies_to_its_folder_and_below() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "top.log",
            "sub/a.log",
            "sub/deep/b.log",
            "sub/build/x.txt",
            "sub/keep.txt",
            "sub/deep/build/y.txt",
            "other/build/z.txt",
        ] {
            touch(&root.join(f));
        }
        std::fs::write(root.join("sub").join(IGNORE_FILE), "*.log\nbuild/\n").unwrap();
        let found = run(&[root.to_owned()], &ScanRules::default());
        assert_eq!(
            files(&found, root),
            [
                "other/build/z.txt",
                "sub/.asgardignore",
                "sub/keep.txt",
                "top.log"
            ]
        );
        // A root below the folder with the rule file follows it too.
        let found = run(&[root.join("sub/deep")], &ScanRules::default());
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn bad_asgardignore_line_is_reported_and_the_rest_applies() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("a.log"));
        touch(&root.join("b.txt"));
        std::fs::write(root.join(IGNORE_FILE), "{unclosed\n*.log\n").unwrap();
        let found = run(&[root.to_owned()], &ScanRules::default());
        assert_eq!(files(&found, root), ["b.txt"]);
        let mut events = found[&root.join(IGNORE_FILE)].clone();
        events.sort();
        assert_eq!(events, ["file", "unreadable"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_reported_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        touch(&root.join("real.txt"));
        touch(&dir.path().join("outside/secret.txt"));
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("dirlink")).unwrap();
        std::os::unix::fs::symlink("real.txt", root.join("filelink")).unwrap();
        std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("loop")).unwrap();
        let found = run(std::slice::from_ref(&root), &ScanRules::default());
        for l in ["dirlink", "filelink", "dangling", "loop"] {
            assert_eq!(found[&root.join(l)], ["symlink"], "{l}");
        }
        assert_eq!(files(&found, &root), ["real.txt"]);
        assert_eq!(found.len(), 5);
    }

    /// A root that is itself a link to a folder is walked, under the root's own name.
    #[cfg(unix)]
    #[test]
    fn root_link_to_a_folder_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("target/sub/a.txt"));
        let root = dir.path().join("docs");
        std::os::unix::fs::symlink(dir.path().join("target"), &root).unwrap();
        let skip = root.join("sub/skip.txt");
        touch(&skip);
        let rules = rules_of(&[skip.to_str().unwrap()]);
        let found = run(std::slice::from_ref(&root), &rules);
        assert_eq!(files(&found, &root), ["sub/a.txt"]);
        assert_eq!(found.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn fifo_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        touch(&dir.path().join("a"));
        let found = run(&[dir.path().to_owned()], &ScanRules::default());
        assert_eq!(found[&fifo], ["skipped: benannte Pipe (FIFO)"]);
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn missing_root_is_unreadable_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let found = run(std::slice::from_ref(&gone), &ScanRules::default());
        assert_eq!(found[&gone], ["missing"]);
        assert_eq!(found.len(), 1);
        // An excluded root produces nothing, missing or not.
        let rules = rules_of(&[gone.to_str().unwrap()]);
        assert!(run(&[gone], &rules).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_folder_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        touch(&locked.join("x"));
        touch(&dir.path().join("ok"));
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let can_read_anyway = std::fs::read_dir(&locked).is_ok(); // root ignores modes
        let found = run(&[dir.path().to_owned()], &ScanRules::default());
        let root_found = run(std::slice::from_ref(&locked), &ScanRules::default());
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        if can_read_anyway {
            return;
        }
        assert_eq!(found[&locked], ["unreadable"]);
        assert_eq!(files(&found, dir.path()), ["ok"]);
        assert_eq!(root_found[&locked], ["unreadable"]);
        assert_eq!(root_found.len(), 1);
    }

    /// Walk errors name their path (as root, the chmod test above cannot fail: this one can).
    #[test]
    fn walk_errors_become_unreadable_events() {
        let io = |kind| Box::new(ignore::Error::Io(std::io::Error::from(kind)));
        let denied = ignore::Error::WithDepth {
            depth: 2,
            err: Box::new(ignore::Error::WithPath {
                path: PathBuf::from("/r/locked"),
                err: io(std::io::ErrorKind::PermissionDenied),
            }),
        };
        let ScanEvent::Unreadable { path, missing, .. } =
            error_event(&denied, Path::new("/r"), &None)
        else {
            panic!("not unreadable");
        };
        assert_eq!((path, missing), (PathBuf::from("/r/locked"), false));
        let gone = ignore::Error::WithPath {
            path: PathBuf::from("/real/sub"),
            err: io(std::io::ErrorKind::NotFound),
        };
        let remap = Some(Remap {
            walked: PathBuf::from("/real"),
            root: PathBuf::from("/link"),
        });
        let ScanEvent::Unreadable { path, missing, .. } =
            error_event(&gone, Path::new("/link"), &remap)
        else {
            panic!("not unreadable");
        };
        assert_eq!((path, missing), (PathBuf::from("/link/sub"), true));
        let pathless = ignore::Error::Io(std::io::Error::other("x"));
        let ScanEvent::Unreadable { path, .. } = error_event(&pathless, Path::new("/r"), &None)
        else {
            panic!("not unreadable");
        };
        assert_eq!(path, PathBuf::from("/r"));
    }

    #[test]
    fn root_may_be_a_file_and_nested_roots_report_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("a/b/c.txt"));
        touch(&root.join("a/d.txt"));
        let roots = [
            root.join("a/b/c.txt"),
            root.to_owned(),
            root.join("a"),
            root.to_owned(),
        ];
        let found = run(&roots, &ScanRules::default());
        assert_eq!(files(&found, root), ["a/b/c.txt", "a/d.txt"]);
    }

    /// Acceptance for the parallel walk: 2,000 files, each reported exactly once.
    #[test]
    fn parallel_walk_reports_every_file_once() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..2000 {
            let p = dir.path().join(format!("d{}/e{}/f{i}.bin", i % 20, i % 7));
            touch(&p);
        }
        let count = std::sync::atomic::AtomicUsize::new(0);
        let paths = Mutex::new(Vec::new());
        let threads = Mutex::new(std::collections::HashSet::new());
        let sink = |ev: ScanEvent| {
            let ScanEvent::File { path, .. } = ev else {
                panic!("unexpected {ev:?}");
            };
            count.fetch_add(1, Ordering::Relaxed);
            paths.lock().unwrap().push(path);
            threads.lock().unwrap().insert(std::thread::current().id());
            true
        };
        scan(&[dir.path().to_owned()], &ScanRules::default(), &sink);
        let mut paths = paths.into_inner().unwrap();
        assert_eq!(count.into_inner(), 2000);
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), 2000);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus > 1 {
            assert!(
                threads.into_inner().unwrap().len() > 1,
                "walk ran on one thread"
            );
        }
    }

    #[test]
    fn sink_returning_false_stops_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..500 {
            touch(&dir.path().join(format!("d{}/f{i}", i % 10)));
        }
        let other = tempfile::tempdir().unwrap();
        touch(&other.path().join("never.txt"));
        let count = std::sync::atomic::AtomicUsize::new(0);
        let sink = |_: ScanEvent| {
            count.fetch_add(1, Ordering::Relaxed);
            false
        };
        scan(
            &[dir.path().to_owned(), other.path().to_owned()],
            &ScanRules::default(),
            &sink,
        );
        // Each worker thread may deliver at most the event it was handling.
        assert!(count.into_inner() <= 64);
    }

    #[cfg(windows)]
    #[test]
    fn long_paths_are_walked() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().to_owned();
        while deep.as_os_str().len() < 300 {
            deep.push("a_rather_long_folder_name_0123456789");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let file = deep.join("deep file.txt");
        std::fs::write(&file, b"deep").unwrap();
        assert!(file.as_os_str().len() > 260);
        std::fs::write(deep.join("keep.dat"), b"k").unwrap();
        let found = run(&[dir.path().to_owned()], &rules_of(&[]));
        assert_eq!(found[&file], ["file"], "{found:?}");
        assert_eq!(found.len(), 2);
        // A `\\?\` root works too, and Windows rules (any case) still match below it.
        let verbatim = PathBuf::from(format!(r"\\?\{}", dir.path().display()));
        let found = run(std::slice::from_ref(&verbatim), &rules_of(&["*.TXT"]));
        let names: Vec<_> = found
            .keys()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["keep.dat"], "{found:?}");
        assert!(found.keys().all(|p| p.as_os_str().len() > 260));
    }
}
