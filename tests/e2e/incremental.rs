//! How the backup reads: the files cache (an unchanged tree is not read again), deletion markers,
//! a missing root that is not a deletion, odd files (links, FIFOs, sockets, unreadable files, files
//! changing while read, non-UTF-8 names, empty and sparse files) and resuming a killed run.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use asgard_e2e::*;
use serde_json::Value;

/// The files cache records no file changed less than 2 s before a run started; tests that rely on
/// the cache let a fresh tree settle first.
fn settle() {
    std::thread::sleep(Duration::from_millis(2500));
}

/// Runs `backup --json` with these paths, whatever the exit code: (exit code, summary, stderr).
fn backup_any(agent: &Agent, paths: &[&Path]) -> (i32, Value, String) {
    let mut args: Vec<OsString> = vec!["backup".into(), "--json".into()];
    args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    summary_of(agent.run(args))
}

fn summary_of(out: Output) -> (i32, Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "backup --json printed no JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), summary, stderr)
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in summary {v}"))
}

/// The `list --json` entry of `path`.
fn entry<'a>(list: &'a [Value], path: &Path) -> &'a Value {
    let want = path.to_str().expect("utf-8 test path");
    list.iter()
        .find(|e| e["path"].as_str() == Some(want))
        .unwrap_or_else(|| panic!("{want} not in list: {list:#?}"))
}

/// The newest version of a list entry (versions are listed newest first).
fn newest(e: &Value) -> &Value {
    &e["versions"][0]
}

fn restore_to(agent: &Agent, path: &Path, to: &Path, at: Option<&str>) -> Output {
    let mut args: Vec<&OsStr> = vec!["restore".as_ref(), path.as_os_str(), "--to".as_ref()];
    args.push(to.as_os_str());
    if let Some(at) = at {
        args.push("--at".as_ref());
        args.push(at.as_ref());
    }
    agent.run(args)
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "agent failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Acceptance 2: a second backup of an unchanged tree of 10,000 files opens no file and creates
/// no version; a changed file is read again, and a touched file with the same content is read but
/// makes no version (and is not read the time after).
#[test]
fn unchanged_tree_of_10000_files_is_not_read_again() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    for d in 0..100 {
        let sub = root.join(format!("d{d:03}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            std::fs::write(sub.join(format!("f{f:03}.txt")), format!("file {d} {f}\n")).unwrap();
        }
    }
    settle();

    let first = agent.backup(&root);
    assert_eq!(n(&first, "files_seen"), 10_000);
    assert_eq!(n(&first, "versions_created"), 10_000);
    assert!(n(&first, "bytes_read") > 0);

    let second = agent.backup(&root);
    assert_eq!(n(&second, "files_seen"), 10_000);
    assert_eq!(
        n(&second, "bytes_read"),
        0,
        "unchanged files were read: {second}"
    );
    assert_eq!(n(&second, "versions_created"), 0);
    assert_eq!(n(&second, "files_unchanged"), 10_000);
    assert_eq!(n(&second, "bytes_sent"), 0);
    assert_eq!(n(&second, "files_deleted"), 0);

    // One file changes, another gets a new mtime with the same content.
    let changed = root.join("d007/f042.txt");
    std::fs::write(&changed, b"new content\n").unwrap();
    let touched = root.join("d050/f050.txt");
    set_mtime(&touched, 1_600_000_000);
    let touched_len = std::fs::metadata(&touched).unwrap().len();
    settle();
    let third = agent.backup(&root);
    assert_eq!(n(&third, "bytes_read"), 12 + touched_len, "{third}");
    assert_eq!(n(&third, "versions_created"), 1, "{third}");
    assert_eq!(n(&third, "files_changed"), 1);
    assert_eq!(n(&third, "files_unchanged"), 9_999);

    let fourth = agent.backup(&root);
    assert_eq!(n(&fourth, "bytes_read"), 0, "{fourth}");
    assert_eq!(n(&fourth, "versions_created"), 0);
}

/// Acceptance 3: a vanished file gets a deletion marker, `list` shows it, a restore before the
/// deletion brings the file back and one after it does not.
#[test]
fn deleted_file_gets_a_marker_and_restores_before_the_deletion() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("docs");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let gone = root.join("sub/gone.txt");
    let kept = root.join("kept.txt");
    std::fs::write(&gone, b"soon deleted\n").unwrap();
    std::fs::write(&kept, b"stays\n").unwrap();
    settle();
    let first = agent.backup(&root);
    assert_eq!(n(&first, "versions_created"), 2);
    let list = agent.list(Some(&root));
    let before = newest(entry(&list, &gone))["time"]
        .as_str()
        .unwrap()
        .to_owned();

    std::fs::remove_file(&gone).unwrap();
    let second = agent.backup(&root);
    assert_eq!(n(&second, "files_deleted"), 1, "{second}");
    assert_eq!(n(&second, "versions_created"), 0);
    let list = agent.list(Some(&root));
    let e = entry(&list, &gone);
    assert_eq!(newest(e)["deleted"], true, "{e}");
    assert_eq!(e["versions"][1]["deleted"], false);
    assert_eq!(newest(entry(&list, &kept))["deleted"], false);
    // The text listing says so too.
    let text = String::from_utf8(agent.ok(["list".as_ref(), root.as_os_str()]).stdout).unwrap();
    assert!(text.contains("gelöscht"), "{text}");

    // A marker is written once.
    let third = agent.backup(&root);
    assert_eq!(n(&third, "files_deleted"), 0);

    let now = tempfile::tempdir().unwrap();
    assert_ok(&restore_to(&agent, &root, now.path(), None));
    assert!(now.path().join("docs/kept.txt").exists());
    assert!(!now.path().join("docs/sub/gone.txt").exists());

    let then = tempfile::tempdir().unwrap();
    assert_ok(&restore_to(&agent, &root, then.path(), Some(&before)));
    assert_eq!(
        std::fs::read(then.path().join("docs/sub/gone.txt")).unwrap(),
        b"soon deleted\n"
    );
    assert_eq!(
        std::fs::read(then.path().join("docs/kept.txt")).unwrap(),
        b"stays\n"
    );

    // Deleting a whole folder marks each file in it.
    std::fs::remove_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("sub2")).unwrap();
    std::fs::write(root.join("sub2/a"), b"a").unwrap();
    std::fs::write(root.join("sub2/b"), b"b").unwrap();
    agent.backup(&root);
    std::fs::remove_dir_all(root.join("sub2")).unwrap();
    let fourth = agent.backup(&root);
    assert_eq!(n(&fourth, "files_deleted"), 2, "{fourth}");
}

/// Acceptance 3: a root that is missing (an unmounted drive) is reported, the run fails, and
/// nothing below it is marked deleted; the other roots are backed up as usual.
#[test]
fn missing_root_is_not_deletion() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let dir = tempfile::tempdir().unwrap();
    let usb = dir.path().join("usb");
    let home = dir.path().join("home");
    for r in [&usb, &home] {
        std::fs::create_dir_all(r).unwrap();
        std::fs::write(r.join("a.txt"), b"a").unwrap();
        std::fs::write(r.join("b.txt"), b"b").unwrap();
    }
    let (code, first, _) = backup_any(&agent, &[&usb, &home]);
    assert_eq!(code, 0);
    assert_eq!(n(&first, "versions_created"), 4);

    let unmounted = dir.path().join("usb-elsewhere");
    std::fs::rename(&usb, &unmounted).unwrap();
    std::fs::write(home.join("c.txt"), b"c").unwrap();
    let (code, second, stderr) = backup_any(&agent, &[&usb, &home]);
    assert_eq!(code, 1, "a missing root fails the run: {second}");
    assert!(stderr.contains(usb.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("nicht gefunden"), "{stderr}");
    assert_eq!(n(&second, "files_deleted"), 0, "{second}");
    assert_eq!(
        n(&second, "files_new"),
        1,
        "the other root is still backed up"
    );
    for e in agent.list(Some(&usb)) {
        assert_eq!(newest(&e)["deleted"], false, "{e}");
    }

    // A root that is an empty folder now is a real deletion (the folder is there and was read).
    std::fs::create_dir_all(&usb).unwrap();
    let (code, third, _) = backup_any(&agent, &[&usb]);
    assert_eq!(code, 0);
    assert_eq!(n(&third, "files_deleted"), 2);
}

/// Acceptance 4: symbolic links are stored and restored as links (never followed, dangling ones
/// too); FIFOs and sockets are skipped and counted; a 0-byte file and a non-UTF-8 name come back
/// exactly; modes are kept.
#[test]
fn links_fifos_sockets_empty_and_non_utf8_names() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("odd");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("data.txt"), b"the data\n").unwrap();
    std::fs::write(root.join("sub/inner.txt"), b"inner\n").unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    let latin1 = OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(root.join(latin1), b"latin-1 name\n").unwrap();
    std::fs::set_permissions(
        root.join("data.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("data.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("sub", root.join("dirlink")).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .unwrap();
    assert!(st.success());
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();

    let (code, first, stderr) = backup_any(&agent, &[&root]);
    assert_eq!(code, 0, "{first} {stderr}");
    // data, inner, empty, latin-1 and three links; the folder link is not followed.
    assert_eq!(n(&first, "files_seen"), 7, "{first}");
    assert_eq!(n(&first, "versions_created"), 7);
    assert_eq!(n(&first, "files_skipped"), 2, "FIFO and socket: {first}");
    assert!(
        stderr.contains("/fifo") && stderr.contains("/sock"),
        "{stderr}"
    );

    let list = agent.list(Some(&root));
    let link = newest(entry(&list, &root.join("link")));
    assert_eq!(link["kind"], "symlink", "{link}");
    assert_eq!(link["symlink_target"], "data.txt");
    assert_eq!(
        newest(entry(&list, &root.join("dangling")))["symlink_target"],
        "/nonexistent/target"
    );
    assert_eq!(newest(entry(&list, &root.join("data.txt")))["kind"], "file");
    assert!(
        !list
            .iter()
            .any(|e| e["path"].as_str().is_some_and(|p| p.contains("dirlink/"))),
        "a folder link was followed: {list:#?}"
    );
    let text = String::from_utf8(agent.ok(["list".as_ref(), root.as_os_str()]).stdout).unwrap();
    assert!(text.contains("-> data.txt"), "{text}");

    // Unchanged links make no new version.
    let (_, second, _) = backup_any(&agent, &[&root]);
    assert_eq!(n(&second, "versions_created"), 0, "{second}");
    // A link pointing elsewhere is a new version.
    std::fs::remove_file(root.join("link")).unwrap();
    std::os::unix::fs::symlink("empty", root.join("link")).unwrap();
    let (_, third, _) = backup_any(&agent, &[&root]);
    assert_eq!(n(&third, "versions_created"), 1, "{third}");
    assert_eq!(n(&third, "files_changed"), 1);

    let out = tempfile::tempdir().unwrap();
    assert_ok(&restore_to(&agent, &root, out.path(), None));
    let r = out.path().join("odd");
    assert_eq!(
        std::fs::read_link(r.join("link")).unwrap(),
        Path::new("empty")
    );
    assert_eq!(
        std::fs::read_link(r.join("dangling")).unwrap(),
        Path::new("/nonexistent/target")
    );
    assert_eq!(
        std::fs::read_link(r.join("dirlink")).unwrap(),
        Path::new("sub")
    );
    assert_eq!(std::fs::read(r.join("data.txt")).unwrap(), b"the data\n");
    assert_eq!(
        std::fs::metadata(r.join("data.txt")).unwrap().mode() & 0o777,
        0o640
    );
    assert_eq!(std::fs::read(r.join("sub/inner.txt")).unwrap(), b"inner\n");
    assert_eq!(std::fs::metadata(r.join("empty")).unwrap().len(), 0);
    assert_eq!(std::fs::read(r.join(latin1)).unwrap(), b"latin-1 name\n");
    assert!(!r.join("fifo").exists() && !r.join("sock").exists());
    // Restoring again finds the links up to date.
    assert_ok(&restore_to(&agent, &root, out.path(), None));
}

/// Acceptance 4: as an unprivileged user, a file and a folder that cannot be read are skipped
/// with a warning, counted and listed, the run ends with exit code 3, and nothing in them is marked
/// deleted.
#[test]
fn unreadable_file_and_folder_are_skipped_not_deleted() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    std::fs::set_permissions(agent.state.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("locked")).unwrap();
    std::fs::write(root.join("fine.txt"), b"fine").unwrap();
    std::fs::write(root.join("secret.txt"), b"secret").unwrap();
    std::fs::write(root.join("locked/inside.txt"), b"inside").unwrap();
    let run = || {
        let out = agent
            .unprivileged_command()
            .args(["backup".as_ref(), "--json".as_ref(), root.as_os_str()])
            .output()
            .unwrap();
        summary_of(out)
    };
    let (code, first, stderr) = run();
    assert_eq!(code, 0, "{first} {stderr}");
    assert_eq!(n(&first, "versions_created"), 3);

    std::fs::set_permissions(
        root.join("secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::write(root.join("fine.txt"), b"fine, changed").unwrap();
    let (code, second, stderr) = run();
    assert_eq!(
        code, 3,
        "unreadable files mean exit code 3: {second} {stderr}"
    );
    assert_eq!(n(&second, "files_skipped"), 1, "{second}");
    assert_eq!(n(&second, "files_deleted"), 0, "{second}");
    assert_eq!(n(&second, "files_changed"), 1);
    let errors = second["errors"].to_string();
    assert!(errors.contains("secret.txt"), "{errors}");
    assert!(errors.contains("locked"), "{errors}");
    assert!(stderr.contains("Warnung"), "{stderr}");

    let list = agent.list(Some(&root));
    assert_eq!(
        newest(entry(&list, &root.join("secret.txt")))["deleted"],
        false
    );
    assert_eq!(
        newest(entry(&list, &root.join("locked/inside.txt")))["deleted"],
        false
    );
    // So that the temp dir can be removed when the tests do not run as root.
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Acceptance 4: a file rewritten while the agent reads it is never committed torn. A writer
/// rewrites the whole file again and again, each generation with its own byte value; the agent
/// either skips it with a report or commits a version that holds one generation throughout.
#[test]
fn file_changing_during_read_is_never_committed_torn() {
    const BLOCKS: usize = 48;
    const BLOCK: usize = 1 << 20;
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("busy");
    std::fs::create_dir_all(&root).unwrap();
    let path = root.join("growing.db");
    std::fs::write(&path, vec![0u8; BLOCKS * BLOCK]).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let path = path.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let mut generation = 0u8;
            let mut rounds = 0u32;
            while !stop.load(Ordering::Relaxed) {
                generation = generation.wrapping_add(1).max(1);
                let block = vec![generation; BLOCK];
                f.seek(SeekFrom::Start(0)).unwrap();
                for _ in 0..BLOCKS {
                    f.write_all(&block).unwrap();
                }
                rounds += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            rounds
        })
    };
    // Let the writer get going before the agent starts.
    std::thread::sleep(Duration::from_millis(50));
    let (code, summary, stderr) = backup_any(&agent, &[&root]);
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 1, "the writer did not run during the backup");
    assert_eq!(code, 0, "{summary} {stderr}");

    if n(&summary, "versions_created") == 1 {
        let out = tempfile::tempdir().unwrap();
        assert_ok(&restore_to(&agent, &path, out.path(), None));
        let data = std::fs::read(out.path().join("growing.db")).unwrap();
        assert_eq!(data.len(), BLOCKS * BLOCK);
        assert!(
            data.iter().all(|&b| b == data[0]),
            "a torn version was committed"
        );
    } else {
        assert_eq!(n(&summary, "versions_created"), 0);
        assert_eq!(n(&summary, "files_skipped"), 1, "{summary}");
        let errors = summary["errors"].to_string();
        assert!(errors.contains("ändert sich beim Lesen"), "{errors}");
        assert!(errors.contains("growing.db"), "{errors}");
    }
}

/// blake3 of a file, streamed.
fn hash_file(path: &Path) -> blake3::Hash {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let k = f.read(&mut buf).unwrap();
        if k == 0 {
            return h.finalize();
        }
        h.update(&buf[..k]);
    }
}

/// Acceptance 4: a sparse 5 GiB file (larger than 4 GiB) is backed up with almost nothing sent
/// and restored identical and sparse.
#[test]
fn sparse_5_gib_file_restores_identical_and_sparse() {
    const SIZE: u64 = 5 * (1 << 30) + 123;
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("vm");
    std::fs::create_dir_all(&root).unwrap();
    let path = root.join("disk.img");
    {
        let mut f = std::fs::File::create(&path).unwrap();
        f.set_len(SIZE).unwrap();
        for (offset, text) in [
            (0, &b"boot sector"[..]),
            (SIZE / 2 + 7, b"middle"),
            ((4 << 30) + 1, b"past 4 GiB"),
            (SIZE - 3, b"end"),
        ] {
            f.seek(SeekFrom::Start(offset)).unwrap();
            f.write_all(text).unwrap();
        }
    }
    let summary = agent.backup(&root);
    assert_eq!(n(&summary, "bytes_read"), SIZE);
    assert_eq!(n(&summary, "versions_created"), 1);
    assert!(
        n(&summary, "bytes_sent") < 16 << 20,
        "zero chunks are sent once: {summary}"
    );
    let list = agent.list(Some(&root));
    assert_eq!(newest(entry(&list, &path))["size"], SIZE);

    let out = tempfile::tempdir().unwrap();
    assert_ok(&restore_to(&agent, &path, out.path(), None));
    let restored = out.path().join("disk.img");
    let meta = std::fs::metadata(&restored).unwrap();
    assert_eq!(meta.len(), SIZE);
    assert_eq!(hash_file(&restored), hash_file(&path));
    assert!(
        meta.blocks() * 512 < 64 << 20,
        "the restored file is not sparse: {} bytes allocated",
        meta.blocks() * 512
    );
}

/// `asgard_stored_bytes` from the server's metrics: stored bytes of every indexed chunk.
fn stored_bytes_metric(server: &Server) -> u64 {
    metric(server, "asgard_stored_bytes")
}

fn metric(server: &Server, name: &str) -> u64 {
    // A new client each time: a kept-alive connection may have been closed by the server.
    let (status, body) = Api::new(server).get("/metrics", None);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Acceptance 5: an agent killed (SIGKILL) in the middle of a 200 MiB backup and started again
/// sends nothing the server already has, finishes, and every file restores identical.
#[test]
fn killed_backup_resumes_without_resending() {
    const FILES: u64 = 40;
    const FILE_SIZE: usize = 5 << 20;
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    agent.ok(["login"]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("big");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..FILES {
        std::fs::write(
            root.join(format!("part{i:02}.bin")),
            random_bytes(FILE_SIZE, 1000 + i),
        )
        .unwrap();
    }
    let total = FILES * FILE_SIZE as u64;
    settle();

    let mut child = agent
        .command()
        .args(["backup".as_ref(), "--json".as_ref(), root.as_os_str()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once about a third is on the server and some files are committed.
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the agent finished ({status}) before it could be killed");
        }
        if server.store_bytes() >= total / 3 && metric(&server, "asgard_versions") > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Let the server finish (or drop) the request it was receiving.
    std::thread::sleep(Duration::from_millis(300));
    // What the server has accepted: the chunks of an upload request cut off by the kill are not
    // indexed (the request failed), so they are still to be sent.
    let accepted_at_kill = stored_bytes_metric(&server);
    assert!(accepted_at_kill > 0, "nothing was uploaded before the kill");
    assert!(accepted_at_kill < total, "nothing left to send");

    let (code, summary, stderr) = backup_any(&agent, &[&root]);
    assert_eq!(code, 0, "{summary} {stderr}");
    let left_to_send = stored_bytes_metric(&server) - accepted_at_kill;
    let sent = n(&summary, "bytes_sent");
    assert!(
        sent <= left_to_send,
        "the second run sent {sent} bytes, but only {left_to_send} were left to send"
    );
    assert!(sent < total, "{summary}");
    assert!(
        n(&summary, "bytes_read") < total,
        "files committed before the kill were read again: {summary}"
    );

    let out = tempfile::tempdir().unwrap();
    assert_ok(&restore_to(&agent, &root, out.path(), None));
    let want = snapshot(&root);
    let got = snapshot(&out.path().join("big"));
    assert_eq!(got.len(), FILES as usize);
    for (p, (data, _)) in &want {
        assert!(got[p].0 == *data, "{} differs", p.display());
    }
}
