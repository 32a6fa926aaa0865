//! How the backup reads: the files cache (an unchanged tree is not read again), deletion markers,
//! a missing root that is not a deletion, odd files (links, FIFOs, sockets, unreadable files, files
//! changing while read, non-UTF-8 names, empty and sparse files) and resuming a killed run.

use std::ffi::OsStr;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use asgard_e2e::*;

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
    assert_eq!(num(&first, "files_seen"), 10_000);
    assert_eq!(num(&first, "versions_created"), 10_000);
    assert!(num(&first, "bytes_read") > 0);

    let second = agent.backup(&root);
    assert_eq!(num(&second, "files_seen"), 10_000);
    assert_eq!(
        num(&second, "bytes_read"),
        0,
        "unchanged files were read: {second}"
    );
    assert_eq!(num(&second, "versions_created"), 0);
    assert_eq!(num(&second, "files_unchanged"), 10_000);
    assert_eq!(num(&second, "bytes_sent"), 0);
    assert_eq!(num(&second, "files_deleted"), 0);

    // One file changes, another gets a new mtime with the same content.
    let changed = root.join("d007/f042.txt");
    std::fs::write(&changed, b"new content\n").unwrap();
    let touched = root.join("d050/f050.txt");
    set_mtime(&touched, 1_600_000_000);
    let touched_len = std::fs::metadata(&touched).unwrap().len();
    settle();
    let third = agent.backup(&root);
    assert_eq!(num(&third, "bytes_read"), 12 + touched_len, "{third}");
    // The touched file is a metadata-only version (issue 12: a restore must give back its new
    // mtime); it is counted apart from the content versions and costs no bytes sent beyond the
    // changed file's.
    assert_eq!(num(&third, "versions_created"), 1, "{third}");
    assert_eq!(num(&third, "files_metadata_only"), 1, "{third}");
    assert!(num(&third, "files_changed") >= 1, "{third}");
    // Its content is unchanged, so it also counts as unchanged.
    assert_eq!(num(&third, "files_unchanged"), 9_999, "{third}");
    assert_eq!(num(&third, "bytes_sent"), 13, "{third}");

    let fourth = agent.backup(&root);
    assert_eq!(num(&fourth, "bytes_read"), 0, "{fourth}");
    assert_eq!(num(&fourth, "versions_created"), 0);
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
    assert_eq!(num(&first, "versions_created"), 2);
    let list = agent.list(Some(&root));
    let before = newest(entry(&list, &gone))["time"]
        .as_str()
        .unwrap()
        .to_owned();

    std::fs::remove_file(&gone).unwrap();
    let second = agent.backup(&root);
    assert_eq!(num(&second, "files_deleted"), 1, "{second}");
    assert_eq!(num(&second, "versions_created"), 0);
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
    assert_eq!(num(&third, "files_deleted"), 0);

    let now = tempfile::tempdir().unwrap();
    assert_success(&agent.restore_to(&root, now.path(), &[]));
    assert!(now.path().join("docs/kept.txt").exists());
    assert!(!now.path().join("docs/sub/gone.txt").exists());

    let then = tempfile::tempdir().unwrap();
    assert_success(&agent.restore_to(&root, then.path(), &["--at", &before]));
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
    assert_eq!(num(&fourth, "files_deleted"), 2, "{fourth}");
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
    let (code, first, _) = agent.backup_any(&[&usb, &home]);
    assert_eq!(code, 0);
    assert_eq!(num(&first, "versions_created"), 4);

    let unmounted = dir.path().join("usb-elsewhere");
    std::fs::rename(&usb, &unmounted).unwrap();
    std::fs::write(home.join("c.txt"), b"c").unwrap();
    let (code, second, stderr) = agent.backup_any(&[&usb, &home]);
    assert_eq!(code, 1, "a missing root fails the run: {second}");
    assert!(stderr.contains(usb.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("nicht gefunden"), "{stderr}");
    assert_eq!(num(&second, "files_deleted"), 0, "{second}");
    assert_eq!(
        num(&second, "files_new"),
        1,
        "the other root is still backed up"
    );
    for e in agent.list(Some(&usb)) {
        assert_eq!(newest(&e)["deleted"], false, "{e}");
    }

    // A root that is an empty folder now is a real deletion (the folder is there and was read).
    std::fs::create_dir_all(&usb).unwrap();
    let (code, third, _) = agent.backup_any(&[&usb]);
    assert_eq!(code, 0);
    assert_eq!(num(&third, "files_deleted"), 2);
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

    let (code, first, stderr) = agent.backup_any(&[&root]);
    assert_eq!(code, 0, "{first} {stderr}");
    // data, inner, empty, latin-1 and three links; the folder link is not followed.
    assert_eq!(num(&first, "files_seen"), 7, "{first}");
    assert_eq!(num(&first, "versions_created"), 7);
    assert_eq!(num(&first, "files_skipped"), 2, "FIFO and socket: {first}");
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
    let (_, second, _) = agent.backup_any(&[&root]);
    assert_eq!(num(&second, "versions_created"), 0, "{second}");
    // A link pointing elsewhere is a new version.
    std::fs::remove_file(root.join("link")).unwrap();
    std::os::unix::fs::symlink("empty", root.join("link")).unwrap();
    let (_, third, _) = agent.backup_any(&[&root]);
    assert_eq!(num(&third, "versions_created"), 1, "{third}");
    assert_eq!(num(&third, "files_changed"), 1);

    let out = tempfile::tempdir().unwrap();
    assert_success(&agent.restore_to(&root, out.path(), &[]));
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
    assert_success(&agent.restore_to(&root, out.path(), &[]));
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
        json_outcome(out, "backup")
    };
    let (code, first, stderr) = run();
    assert_eq!(code, 0, "{first} {stderr}");
    assert_eq!(num(&first, "versions_created"), 3);

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
    assert_eq!(num(&second, "files_skipped"), 1, "{second}");
    assert_eq!(num(&second, "files_deleted"), 0, "{second}");
    assert_eq!(num(&second, "files_changed"), 1);
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
    let (code, summary, stderr) = agent.backup_any(&[&root]);
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 1, "the writer did not run during the backup");
    assert_eq!(code, 0, "{summary} {stderr}");

    if num(&summary, "versions_created") == 1 {
        let out = tempfile::tempdir().unwrap();
        assert_success(&agent.restore_to(&path, out.path(), &[]));
        let data = std::fs::read(out.path().join("growing.db")).unwrap();
        assert_eq!(data.len(), BLOCKS * BLOCK);
        assert!(
            data.iter().all(|&b| b == data[0]),
            "a torn version was committed"
        );
    } else {
        assert_eq!(num(&summary, "versions_created"), 0);
        assert_eq!(num(&summary, "files_skipped"), 1, "{summary}");
        let errors = summary["errors"].to_string();
        assert!(errors.contains("ändert sich beim Lesen"), "{errors}");
        assert!(errors.contains("growing.db"), "{errors}");
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
    assert_eq!(num(&summary, "bytes_read"), SIZE);
    assert_eq!(num(&summary, "versions_created"), 1);
    assert!(
        num(&summary, "bytes_sent") < 16 << 20,
        "zero chunks are sent once: {summary}"
    );
    let list = agent.list(Some(&root));
    assert_eq!(newest(entry(&list, &path))["size"], SIZE);

    let out = tempfile::tempdir().unwrap();
    assert_success(&agent.restore_to(&path, out.path(), &[]));
    let restored = out.path().join("disk.img");
    let meta = std::fs::metadata(&restored).unwrap();
    assert_eq!(meta.len(), SIZE);
    assert_eq!(file_hash(&restored), file_hash(&path));
    assert!(
        meta.blocks() * 512 < 64 << 20,
        "the restored file is not sparse: {} bytes allocated",
        meta.blocks() * 512
    );
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
        if server.store_bytes() >= total / 3 && server.metric("asgard_versions") > 0 {
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
    let accepted_at_kill = server.metric("asgard_stored_bytes");
    assert!(accepted_at_kill > 0, "nothing was uploaded before the kill");
    assert!(accepted_at_kill < total, "nothing left to send");

    let (code, summary, stderr) = agent.backup_any(&[&root]);
    assert_eq!(code, 0, "{summary} {stderr}");
    let left_to_send = server.metric("asgard_stored_bytes") - accepted_at_kill;
    let sent = num(&summary, "bytes_sent");
    assert!(
        sent <= left_to_send,
        "the second run sent {sent} bytes, but only {left_to_send} were left to send"
    );
    assert!(sent < total, "{summary}");
    assert!(
        num(&summary, "bytes_read") < total,
        "files committed before the kill were read again: {summary}"
    );

    let out = tempfile::tempdir().unwrap();
    assert_success(&agent.restore_to(&root, out.path(), &[]));
    let want = snapshot(&root);
    let got = snapshot(&out.path().join("big"));
    assert_eq!(got.len(), FILES as usize);
    for (p, (data, _)) in &want {
        assert!(got[p].0 == *data, "{} differs", p.display());
    }
}
