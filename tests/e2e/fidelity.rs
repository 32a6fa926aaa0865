//! A restore gives back exactly what was there (issue 12): folders (empty ones too), owners,
//! modes with setuid/setgid/sticky, hard links, symbolic links, extended attributes and ACLs,
//! sparse files, nanosecond times and names that are not UTF-8, judged by an independent tool
//! (`rsync -aHAX --numeric-ids -n -i --delete` prints nothing); the same restore by a normal user;
//! folders at a point in time; a metadata-only change that costs no content version.

use std::ffi::OsStr;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use asgard_e2e::*;

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether a program is on the PATH.
fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Whether the fidelity test can run here; prints why not.
fn fidelity_possible() -> bool {
    if !is_root() {
        eprintln!("note: the fidelity test needs root (owners); skipped");
        return false;
    }
    for tool in ["rsync", "setfacl", "setfattr", "setpriv", "chown"] {
        if !have(tool) {
            eprintln!("note: the fidelity test needs {tool}; skipped");
            return false;
        }
    }
    true
}

/// Runs a program and asserts that it succeeded.
fn run(program: &str, args: &[&OsStr]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn chown(owner: &str, path: &Path) {
    run("chown", &["-h".as_ref(), owner.as_ref(), path.as_os_str()]);
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `rsync FLAGS -n -i --delete SRC/ DST/`: what rsync would change, one line per difference.
fn rsync_differences(flags: &[&str], src: &Path, dst: &Path) -> String {
    let mut s = src.as_os_str().to_owned();
    s.push("/");
    let mut d = dst.as_os_str().to_owned();
    d.push("/");
    let out = Command::new("rsync")
        .args(flags)
        .args(["-n", "-i", "--delete"])
        .arg(s)
        .arg(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "rsync failed: {}", text(&out.stderr));
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// The tree of acceptance 1 below `root`.
fn build_tree(root: &Path) {
    let p = |rel: &str| root.join(rel);
    for d in [
        "leer",
        "leer2/tief/tiefer",
        "d700",
        "d750",
        "d2775",
        "d1777",
        "fremd",
        "nurlesen",
        "sub",
    ] {
        std::fs::create_dir_all(p(d)).unwrap();
    }
    std::fs::write(p("d700/privat.txt"), b"privat\n").unwrap();
    std::fs::write(p("d750/gruppe.txt"), b"gruppe\n").unwrap();
    std::fs::write(p("d2775/geteilt.txt"), b"geteilt\n").unwrap();
    std::fs::write(p("d1777/jeder.txt"), b"jeder\n").unwrap();
    std::fs::write(
        p("nurlesen/drin.txt"),
        b"in einem Ordner ohne Schreibrecht\n",
    )
    .unwrap();
    std::fs::write(p("a.txt"), b"Besitzer 1234:2345\n").unwrap();
    std::fs::write(p("fremd/b.txt"), b"Besitzer 3456:4567\n").unwrap();
    std::fs::write(p("daemon.txt"), b"Besitzer daemon nach Namen\n").unwrap();
    std::fs::write(p("setuid"), b"#!/bin/sh\necho setuid\n").unwrap();
    std::fs::write(p("modus750"), b"750\n").unwrap();
    std::fs::write(p("d2775/modus2775"), b"2775\n").unwrap();
    // A hard-link pair across folders.
    std::fs::write(p("eins.txt"), b"ein Inode, zwei Namen\n").unwrap();
    std::fs::hard_link(p("eins.txt"), p("sub/zwei.txt")).unwrap();
    // Links to a file, a folder and nowhere; one of them owned by someone else.
    std::os::unix::fs::symlink("a.txt", p("zur_datei")).unwrap();
    std::os::unix::fs::symlink("d750", p("zum_ordner")).unwrap();
    std::os::unix::fs::symlink("gibt/es/nicht", p("nirgendwo")).unwrap();
    // A sparse file: 16 MiB, five bytes of data in the middle.
    {
        let mut f = std::fs::File::create(p("duenn.bin")).unwrap();
        f.set_len(16 << 20).unwrap();
        f.seek(SeekFrom::Start(8 << 20)).unwrap();
        f.write_all(b"mitte").unwrap();
    }
    // A name that is not UTF-8.
    let latin1 = root.join(OsStr::from_bytes(b"caf\xe9.txt"));
    std::fs::write(&latin1, b"Latin-1\n").unwrap();

    // Owners: by number (no such names here) and by a name this machine knows.
    chown("1234:2345", &p("a.txt"));
    chown("1234:2345", &p("setuid"));
    chown("3456:4567", &p("fremd"));
    chown("3456:4567", &p("fremd/b.txt"));
    chown("daemon:daemon", &p("daemon.txt"));
    chown("1234:2345", &p("d2775"));
    chown("3456:4567", &p("nirgendwo"));
    // Modes, special bits included (after the owners: chown clears setuid/setgid).
    chmod(&p("d700"), 0o700);
    chmod(&p("d750"), 0o750);
    chmod(&p("d2775"), 0o2775);
    chmod(&p("d1777"), 0o1777);
    chmod(&p("setuid"), 0o4755);
    chmod(&p("modus750"), 0o750);
    chmod(&p("d2775/modus2775"), 0o2775);
    chmod(&p("d700/privat.txt"), 0o600);
    // Extended attributes, one with a binary value; ACLs, a default ACL on a folder.
    let a = p("a.txt");
    run(
        "setfattr",
        &[
            "-n".as_ref(),
            "user.kommentar".as_ref(),
            "-v".as_ref(),
            "hallo welt".as_ref(),
            a.as_os_str(),
        ],
    );
    run(
        "setfattr",
        &[
            "-n".as_ref(),
            "user.binaer".as_ref(),
            "-v".as_ref(),
            "0x00ff0102".as_ref(),
            latin1.as_os_str(),
        ],
    );
    let d750 = p("d750");
    run(
        "setfattr",
        &[
            "-n".as_ref(),
            "user.ordner".as_ref(),
            "-v".as_ref(),
            "ja".as_ref(),
            d750.as_os_str(),
        ],
    );
    run(
        "setfacl",
        &["-m".as_ref(), "u:1234:r".as_ref(), a.as_os_str()],
    );
    run(
        "setfacl",
        &[
            "-d".as_ref(),
            "-m".as_ref(),
            "u:1234:rx".as_ref(),
            d750.as_os_str(),
        ],
    );
    // A nanosecond mtime; a read-only folder (its contents are in it already).
    std::fs::File::options()
        .write(true)
        .open(p("modus750"))
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789))
        .unwrap();
    chmod(&p("nurlesen"), 0o555);
}

/// A copy of `agent`'s state (token, pin) that user 65534 owns, so that it can run as nobody.
fn state_for_nobody(agent: &Agent) -> Agent {
    let copy = Agent {
        user: agent.user.clone(),
        device: agent.device.clone(),
        state: tempfile::tempdir().unwrap(),
        server: agent.server.clone(),
    };
    for e in std::fs::read_dir(agent.state.path()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() == "state.json" {
            std::fs::copy(e.path(), copy.state.path().join(e.file_name())).unwrap();
        }
    }
    run(
        "chown",
        &[
            "-R".as_ref(),
            "65534:65534".as_ref(),
            copy.state.path().as_os_str(),
        ],
    );
    copy
}

/// Acceptance 1: the tree backed up as root and restored as root to a new place is identical for
/// rsync (content, owners by number, modes, times, hard links, links, xattrs, ACLs); restored by
/// a normal user, contents, modes, times and links come back and the run exits 0.
#[test]
fn restore_gives_back_owners_modes_links_xattrs_and_acls_exactly() {
    if !fidelity_possible() {
        return;
    }
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let work = tempfile::tempdir().unwrap();
    chmod(work.path(), 0o755);
    let src = work.path().join("baum");
    std::fs::create_dir(&src).unwrap();
    build_tree(&src);
    settle();
    agent.backup(&src);

    // As root, to a new place.
    let to = work.path().join("als_root");
    let out = agent.restore_to(&src, &to, &[]);
    assert_success(&out);
    let restored = to.join("baum");
    let diff = rsync_differences(&["-aHAX", "--numeric-ids"], &src, &restored);
    assert!(diff.is_empty(), "restored tree differs:\n{diff}");
    // rsync compares contents by size and mtime; compare them byte for byte too.
    let diff = rsync_differences(&["-rlc"], &src, &restored);
    assert!(diff.is_empty(), "restored contents differ:\n{diff}");
    // The sparse file came back sparse.
    let sparse = std::fs::metadata(restored.join("duenn.bin")).unwrap();
    assert_eq!(sparse.len(), 16 << 20);
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "{} blocks",
        sparse.blocks()
    );
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("Warnung"), "{stderr}");

    // --numeric-owner: daemon's recorded number, which is daemon here too.
    let numeric = work.path().join("numerisch");
    assert_success(&agent.restore_to(&src, &numeric, &["--numeric-owner"]));
    let m = std::fs::metadata(numeric.join("baum/daemon.txt")).unwrap();
    let d = std::fs::metadata(src.join("daemon.txt")).unwrap();
    assert_eq!((m.uid(), m.gid()), (d.uid(), d.gid()));

    // As user 65534 (nobody), into a folder it owns.
    let nobody = state_for_nobody(&agent);
    let to = work.path().join("als_nobody");
    std::fs::create_dir(&to).unwrap();
    chown("65534:65534", &to);
    let out = nobody
        .unprivileged_command()
        .args([
            "restore".as_ref(),
            src.as_os_str(),
            "--to".as_ref(),
            to.as_os_str(),
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let restored = to.join("baum");
    // Everything but owners, xattrs and ACLs (which a normal user may not give away).
    let diff = rsync_differences(&["-rlptHc"], &src, &restored);
    assert!(
        diff.is_empty(),
        "restored by nobody, the tree differs:\n{diff}"
    );
    let m = std::fs::symlink_metadata(restored.join("a.txt")).unwrap();
    assert_eq!(m.uid(), 65534, "a normal user keeps its own ownership");
    // So that the temp dirs can be removed.
    run(
        "chmod",
        &["-R".as_ref(), "u+rwx".as_ref(), work.path().as_os_str()],
    );
}

/// Every entry of `list --json` below `root` whose newest version is the latest of all: the
/// time of the last backup, as `list` prints it.
fn last_backup_time(agent: &Agent, root: &Path) -> String {
    agent
        .list(Some(root))
        .iter()
        .map(|e| newest(e)["time"].as_str().unwrap().to_owned())
        .max()
        .unwrap()
}

/// Acceptance 2: a folder that existed at time T and was deleted later comes back with
/// `restore --at T` (empty or not), and not with a restore of the latest state.
#[test]
fn deleted_folders_come_back_at_their_time_only() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("projekt");
    std::fs::create_dir_all(root.join("alt/leer")).unwrap();
    std::fs::create_dir_all(root.join("weg_und_leer")).unwrap();
    std::fs::write(root.join("alt/inhalt.txt"), b"alter Inhalt\n").unwrap();
    std::fs::write(root.join("bleibt.txt"), b"bleibt\n").unwrap();
    chmod(&root.join("alt"), 0o750);
    settle();
    agent.backup(&root);
    let t = last_backup_time(&agent, &root);

    settle();
    std::fs::remove_dir_all(root.join("alt")).unwrap();
    std::fs::remove_dir(root.join("weg_und_leer")).unwrap();
    agent.backup(&root);

    let then = tempfile::tempdir().unwrap();
    assert_success(&agent.restore_to(&root, then.path(), &["--at", &t]));
    let r = then.path().join("projekt");
    assert!(r.join("alt/leer").is_dir(), "the empty folder is missing");
    assert!(
        r.join("weg_und_leer").is_dir(),
        "the deleted empty folder is missing"
    );
    assert_eq!(
        std::fs::read(r.join("alt/inhalt.txt")).unwrap(),
        b"alter Inhalt\n"
    );
    let mode = std::fs::metadata(r.join("alt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o750);

    let now = tempfile::tempdir().unwrap();
    assert_success(&agent.restore_to(&root, now.path(), &[]));
    let r = now.path().join("projekt");
    assert!(r.join("bleibt.txt").is_file());
    assert!(!r.join("alt").exists(), "a deleted folder came back");
    assert!(
        !r.join("weg_und_leer").exists(),
        "a deleted empty folder came back"
    );
}

/// Acceptance 3: a chmod-only change, backed up, restores with the new mode, and the four content
/// versions before it are all still listed (a metadata-only version costs none of them).
#[test]
fn a_chmod_only_change_restores_and_keeps_four_content_versions() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("ordner");
    std::fs::create_dir(&root).unwrap();
    let file = root.join("datei.txt");
    let mut hashes = Vec::new();
    for i in 1..=4 {
        let content = format!("Inhalt Nummer {i}{}\n", "!".repeat(i));
        std::fs::write(&file, &content).unwrap();
        chmod(&file, 0o644);
        hashes.push(hash_hex(content.as_bytes()));
        agent.backup(&root);
    }
    settle();
    chmod(&file, 0o600);
    agent.backup(&root);

    let list = agent.list(Some(&root));
    let versions = versions(entry(&list, &file));
    let listed: Vec<&str> = versions.iter().filter_map(|v| v["hash"].as_str()).collect();
    for h in &hashes {
        assert!(
            listed.contains(&h.as_str()),
            "content version {h} was dropped: {versions:#?}"
        );
    }

    let out = tempfile::tempdir().unwrap();
    assert_success(&agent.restore_to(&root, out.path(), &[]));
    let restored: PathBuf = out.path().join("ordner/datei.txt");
    let mode = std::fs::metadata(&restored).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o600);
    assert_eq!(
        hash_hex(&std::fs::read(&restored).unwrap()),
        hashes[3],
        "the newest content"
    );
}
