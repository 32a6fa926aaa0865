//! A restore that cannot leave its target (issue 11, finding 3): a symbolic link that a restore
//! created, or that someone planted in the target, is never followed by a later write. A link
//! where the backup has a folder is replaced only with `--overwrite`; otherwise the entries below
//! it are skipped with a German warning and the run ends with exit code 1.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

use asgard_e2e::*;

/// Every entry below `root`: relative path → file content, `<dir>` or `-> link target`.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let what = if meta.is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                stack.push(p);
                "<dir>".to_owned()
            } else {
                text(&std::fs::read(&p).unwrap())
            };
            out.insert(rel, what);
        }
    }
    out
}

/// The time of the newest version under `root`: a `--at` for "as after the last backup".
fn last_backup_time(agent: &Agent, root: &Path) -> String {
    agent
        .list(Some(root))
        .iter()
        .map(newest)
        // By time: ids are opaque and say nothing about the order.
        .max_by_key(|v| v["time"].as_str().unwrap().to_owned())
        .unwrap()["time"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A server, an agent, and in a work folder: `daten` (what is backed up), `draussen` (outside
/// every target, with one file) and `ziel` (the target of `--to`).
struct Scene {
    _server: Server,
    agent: Agent,
    work: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let server = Server::start();
        let agent = Agent::new("mallory", &server);
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("daten")).unwrap();
        std::fs::create_dir_all(work.path().join("draussen")).unwrap();
        std::fs::write(work.path().join("draussen/opfer.txt"), b"unberuehrt\n").unwrap();
        std::fs::write(work.path().join("daten/normal.txt"), b"ganz normal\n").unwrap();
        Scene {
            _server: server,
            agent,
            work,
        }
    }

    fn root(&self) -> PathBuf {
        self.work.path().join("daten")
    }

    fn outside(&self) -> PathBuf {
        self.work.path().join("draussen")
    }

    fn to(&self) -> PathBuf {
        self.work.path().join("ziel")
    }

    /// Backs up `daten` with a link at `link` (relative to it) pointing to `draussen`; then
    /// replaces the link by a real folder holding `inside` (relative to the link) and backs up
    /// again. Returns the time of the first backup.
    fn link_then_folder(&self, link: &str, inside: &str) -> String {
        let root = self.root();
        let link = root.join(link);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(self.outside(), &link).unwrap();
        self.agent.backup(&root);
        let t1 = last_backup_time(&self.agent, &root);
        settle();
        std::fs::remove_file(&link).unwrap();
        let file = link.join(inside);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"eingeschleust\n").unwrap();
        self.agent.backup(&root);
        t1
    }

    /// `restore daten [--to ziel] EXTRA...`, whatever the exit code.
    fn restore(&self, to: bool, extra: &[&str]) -> Output {
        let root = self.root();
        let mut args: Vec<&OsStr> = vec!["restore".as_ref(), root.as_os_str()];
        let target = self.to();
        if to {
            args.extend(["--to".as_ref(), target.as_os_str()]);
        }
        args.extend(extra.iter().map(OsStr::new));
        self.agent.run(args)
    }
}

/// Asserts a restore that met a link where the backup has a folder: exit code 1 and the German
/// warning naming the link.
fn assert_warned(out: &Output, link: &Path) {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {stderr}",
        text(&out.stdout)
    );
    let want = format!(
        "Warnung: {} ist eine symbolische Verknüpfung, wo die Sicherung einen Ordner hat",
        link.display()
    );
    assert!(stderr.contains(&want), "{want}\nnot in: {stderr}");
}

fn assert_is_link(p: &Path) {
    assert!(
        std::fs::symlink_metadata(p).unwrap().is_symlink(),
        "{} is no link",
        p.display()
    );
}

fn assert_real_dir(p: &Path) {
    let meta = std::fs::symlink_metadata(p).unwrap();
    assert!(
        meta.is_dir() && !meta.is_symlink(),
        "{} is no folder",
        p.display()
    );
}

/// Runs finding 3 with the link at `link` (below `daten`) and `inside` below it in the second
/// backup, restoring into `ziel`.
fn finding_three(link: &str, inside: &str) {
    let s = Scene::new();
    let t1 = s.link_then_folder(link, inside);
    let outside = tree(&s.outside());

    // As at the first backup: the link comes back as a link.
    assert_success(&s.restore(true, &["--at", &t1]));
    let restored_link = s.to().join("daten").join(link);
    assert_is_link(&restored_link);
    assert_eq!(std::fs::read_link(&restored_link).unwrap(), s.outside());

    // The latest state into the same target: nothing goes through the link.
    let out = s.restore(true, &[]);
    assert_eq!(tree(&s.outside()), outside, "something was written outside");
    assert_warned(&out, &restored_link);
    assert_is_link(&restored_link);
    // The other entries are restored all the same.
    assert_eq!(
        std::fs::read(s.to().join("daten/normal.txt")).unwrap(),
        b"ganz normal\n"
    );

    // With --overwrite the link itself is replaced by the folder, inside the target.
    let out = s.restore(true, &["--overwrite"]);
    assert_success(&out);
    assert_real_dir(&restored_link);
    assert_eq!(
        std::fs::read(restored_link.join(inside)).unwrap(),
        b"eingeschleust\n"
    );
    assert_eq!(tree(&s.outside()), outside, "something was written outside");
}

/// Finding 3 as reported: `sl` → outside, then a real folder `sl` with a file.
#[test]
fn a_restored_link_is_not_followed_by_a_later_restore() {
    finding_three("sl", "boese.txt");
}

/// The same with the link one folder deeper (and the file two folders below it).
#[test]
fn a_restored_link_one_folder_deeper_is_not_followed() {
    finding_three("unter/sl", "tiefer/boese.txt");
}

/// Links planted in the target before the restore ("the attacker"): one where the backup has a
/// folder, one where it has a file. Neither is followed; with --overwrite both are replaced.
#[test]
fn links_planted_in_the_target_are_not_followed() {
    let s = Scene::new();
    let root = s.root();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/f.txt"), b"aus der Sicherung\n").unwrap();
    std::fs::write(root.join("g.txt"), b"auch aus der Sicherung\n").unwrap();
    s.agent.backup(&root);

    let planted = s.to().join("daten");
    std::fs::create_dir_all(&planted).unwrap();
    symlink(s.outside(), planted.join("sub")).unwrap();
    symlink(s.outside().join("opfer.txt"), planted.join("g.txt")).unwrap();
    let outside = tree(&s.outside());

    let out = s.restore(true, &[]);
    assert_eq!(tree(&s.outside()), outside, "something was written outside");
    assert_warned(&out, &planted.join("sub"));
    assert_is_link(&planted.join("sub"));
    assert_is_link(&planted.join("g.txt"));
    assert_eq!(
        std::fs::read(planted.join("normal.txt")).unwrap(),
        b"ganz normal\n"
    );

    assert_success(&s.restore(true, &["--overwrite"]));
    assert_eq!(tree(&s.outside()), outside, "something was written outside");
    assert_real_dir(&planted.join("sub"));
    assert_eq!(
        std::fs::read(planted.join("sub/f.txt")).unwrap(),
        b"aus der Sicherung\n"
    );
    let meta = std::fs::symlink_metadata(planted.join("g.txt")).unwrap();
    assert!(meta.is_file(), "g.txt is still a link");
    assert_eq!(
        std::fs::read(planted.join("g.txt")).unwrap(),
        b"auch aus der Sicherung\n"
    );
}

/// Finding 3 in place, without --to: the link restored at its original place is not followed by
/// the restore of the latest state.
#[test]
fn in_place_a_restored_link_is_not_followed() {
    let s = Scene::new();
    let t1 = s.link_then_folder("sl", "boese.txt");
    let link = s.root().join("sl");
    std::fs::remove_dir_all(&link).unwrap();
    let outside = tree(&s.outside());

    assert_success(&s.restore(false, &["--at", &t1]));
    assert_is_link(&link);

    let out = s.restore(false, &[]);
    assert_eq!(tree(&s.outside()), outside, "something was written outside");
    assert_warned(&out, &link);
    assert_is_link(&link);

    assert_success(&s.restore(false, &["--overwrite"]));
    assert_real_dir(&link);
    assert_eq!(
        std::fs::read(link.join("boese.txt")).unwrap(),
        b"eingeschleust\n"
    );
    assert_eq!(tree(&s.outside()), outside, "something was written outside");
}

/// In place, the folder the user names is followed as the backup followed it: a backed-up root
/// that is a link to a folder is restored through that link (only links below it are refused).
#[test]
fn in_place_the_named_root_is_followed_like_the_backup() {
    let s = Scene::new();
    let via = s.work.path().join("verweis");
    symlink(s.root(), &via).unwrap();
    s.agent.backup(&via);
    std::fs::write(s.root().join("normal.txt"), b"lokal geaendert\n").unwrap();
    let out = s
        .agent
        .run(["restore".as_ref(), via.as_os_str(), "--overwrite".as_ref()]);
    assert_success(&out);
    assert_is_link(&via);
    assert_eq!(
        std::fs::read(s.root().join("normal.txt")).unwrap(),
        b"ganz normal\n"
    );
}
