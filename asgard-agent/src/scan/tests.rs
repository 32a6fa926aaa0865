//! The scanner against real temp trees: rules, links, odd files, errors, the parallel walk.

use super::*;
use asgard_core::rules::{Rule, RuleOrigin};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What a scan reported, by path: "file", "symlink", "skipped: ...", "unreadable", "missing"
/// (folders: see [`run_dirs`]).
fn run(roots: &[PathBuf], rules: &ScanRules) -> BTreeMap<PathBuf, Vec<String>> {
    let mut found = run_all(roots, rules);
    found.retain(|_, w| {
        w.retain(|w| !w.starts_with("dir"));
        !w.is_empty()
    });
    found
}

/// The folders a scan reported: "dir", or "dir (followed)" for a root that is a link.
fn run_dirs(roots: &[PathBuf], rules: &ScanRules) -> BTreeMap<PathBuf, Vec<String>> {
    let mut found = run_all(roots, rules);
    found.retain(|_, w| {
        w.retain(|w| w.starts_with("dir"));
        !w.is_empty()
    });
    found
}

fn run_all(roots: &[PathBuf], rules: &ScanRules) -> BTreeMap<PathBuf, Vec<String>> {
    let seen: Mutex<BTreeMap<PathBuf, Vec<String>>> = Mutex::new(BTreeMap::new());
    let sink = |ev: ScanEvent| {
        let (path, what) = match ev {
            ScanEvent::Dir {
                path,
                meta,
                followed,
            } => {
                assert!(meta.is_dir(), "{path:?}");
                let what = if followed { "dir (followed)" } else { "dir" };
                (path, what.to_owned())
            }
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
    let ScanEvent::Unreadable { path, missing, .. } = error_event(&denied, Path::new("/r"), &None)
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
    let ScanEvent::Unreadable { path, .. } = error_event(&pathless, Path::new("/r"), &None) else {
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
        let path = match ev {
            ScanEvent::File { path, .. } => path,
            ScanEvent::Dir { .. } => return true,
            _ => panic!("unexpected {ev:?}"),
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

/// Relative names of the folders a scan reported below `base` ("." for `base` itself).
fn dir_names(found: &BTreeMap<PathBuf, Vec<String>>, base: &Path) -> Vec<String> {
    found
        .keys()
        .map(|p| {
            let rel = p
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if rel.is_empty() { ".".to_owned() } else { rel }
        })
        .collect()
}

/// Every folder is reported once, the root and empty (also nested empty) folders included, so
/// that they are backed up; folders count apart from files.
#[test]
fn folders_are_reported_root_and_empty_ones_included() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    touch(&root.join("a/file.txt"));
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::create_dir_all(root.join("nested/empty/deeper")).unwrap();
    let found = run_all(std::slice::from_ref(&root), &ScanRules::default());
    let dirs = run_dirs(std::slice::from_ref(&root), &ScanRules::default());
    assert_eq!(
        dir_names(&dirs, &root),
        [
            ".",
            "a",
            "empty",
            "nested",
            "nested/empty",
            "nested/empty/deeper"
        ]
    );
    assert!(dirs.values().all(|w| w == &["dir"]), "{dirs:?}");
    assert_eq!(found[&root.join("a/file.txt")], ["file"]);
    assert_eq!(found.len(), 7, "{found:?}");
}

/// An excluded folder is not reported (nor anything in it), by the blacklist or by
/// `.asgardignore`; an excluded root reports nothing at all.
#[test]
fn excluded_folders_are_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    touch(&root.join("keep/k.txt"));
    touch(&root.join("skip/inner/s.txt"));
    std::fs::create_dir_all(root.join("cache/empty")).unwrap();
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::write(root.join(IGNORE_FILE), "build/\n").unwrap();
    let skip = root.join("skip").to_string_lossy().into_owned();
    let rules = rules_of(&[&skip, "**/cache/"]);
    let dirs = run_dirs(std::slice::from_ref(&root), &rules);
    assert_eq!(dir_names(&dirs, &root), [".", "keep"]);
    let rules = rules_of(&[root.to_str().unwrap()]);
    assert!(run_all(std::slice::from_ref(&root), &rules).is_empty());
}

/// A root that is a link to a folder is reported under the root's name with the folder's
/// metadata; its sub-folders under the root's name too.
#[cfg(unix)]
#[test]
fn root_link_to_a_folder_is_reported_as_that_folder() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::create_dir_all(target.join("sub")).unwrap();
    let root = dir.path().join("docs");
    std::os::unix::fs::symlink(&target, &root).unwrap();
    let metas = Mutex::new(BTreeMap::new());
    scan(std::slice::from_ref(&root), &ScanRules::default(), &|ev| {
        if let ScanEvent::Dir {
            path,
            meta,
            followed,
        } = ev
        {
            metas.lock().unwrap().insert(path, (meta.ino(), followed));
        }
        true
    });
    let metas = metas.into_inner().unwrap();
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(metas[&root], (ino(&target), true));
    assert_eq!(metas[&root.join("sub")], (ino(&target.join("sub")), false));
    assert_eq!(metas.len(), 2);
}

/// A nested root's folder is reported once (by its own walk), not by the outer one too.
#[test]
fn nested_root_folder_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    let all = Mutex::new(Vec::new());
    let roots = [dir.path().to_owned(), dir.path().join("a")];
    scan(&roots, &ScanRules::default(), &|ev| {
        if let ScanEvent::Dir { path, .. } = ev {
            all.lock().unwrap().push(path);
        }
        true
    });
    let mut all = all.into_inner().unwrap();
    all.sort();
    assert_eq!(
        all,
        [
            dir.path().to_owned(),
            dir.path().join("a"),
            dir.path().join("a/b")
        ]
    );
}
