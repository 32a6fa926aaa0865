//! Folders are entries of a backup (issue 12): every folder, empty ones and the root included, is
//! committed with its mode and owner, shows in the listing as `kind: dir`, is not sent again while
//! unchanged, is sent again when only its mode changed, and gets a deletion marker when it is gone.
//! Folders count apart from files in the run's summary.

use std::os::unix::fs::PermissionsExt;

use asgard_e2e::*;

#[test]
fn empty_folders_are_backed_up_listed_and_marked_deleted() {
    let server = Server::start();
    let agent = Agent::new("alice", &server);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("docs");
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::create_dir_all(root.join("nested/empty/deeper")).unwrap();
    std::fs::create_dir_all(root.join("private")).unwrap();
    std::fs::write(root.join("a.txt"), b"a\n").unwrap();
    std::fs::write(root.join("private/p.txt"), b"p\n").unwrap();
    std::fs::set_permissions(root.join("private"), std::fs::Permissions::from_mode(0o750)).unwrap();
    settle();

    let first = agent.backup(&root);
    // Folders are no files: the file counts stay as they were.
    assert_eq!(num(&first, "files_seen"), 2, "{first}");
    assert_eq!(num(&first, "versions_created"), 2, "{first}");
    assert_eq!(num(&first, "folders_seen"), 6, "{first}");
    assert_eq!(num(&first, "folders_stored"), 6, "{first}");

    let list = agent.list(Some(&root));
    for d in [
        "",
        "empty",
        "nested",
        "nested/empty",
        "nested/empty/deeper",
        "private",
    ] {
        let path = if d.is_empty() {
            root.clone()
        } else {
            root.join(d)
        };
        let v = newest(entry(&list, &path));
        assert_eq!(v["kind"], "dir", "{d}: {v}");
        assert_eq!(v["deleted"], false, "{d}: {v}");
    }

    // Unchanged: no folder is sent again.
    let second = agent.backup(&root);
    assert_eq!(num(&second, "folders_seen"), 6, "{second}");
    assert_eq!(num(&second, "folders_stored"), 0, "{second}");
    assert_eq!(num(&second, "versions_created"), 0, "{second}");

    // A folder's mode alone changed: that folder is sent again.
    std::fs::set_permissions(root.join("private"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let third = agent.backup(&root);
    assert_eq!(num(&third, "folders_stored"), 1, "{third}");
    assert_eq!(num(&third, "versions_created"), 0, "{third}");

    // A removed tree of empty folders: a marker for each folder, none counted as a file.
    std::fs::remove_dir_all(root.join("nested")).unwrap();
    let fourth = agent.backup(&root);
    assert_eq!(num(&fourth, "folders_deleted"), 3, "{fourth}");
    assert_eq!(num(&fourth, "files_deleted"), 0, "{fourth}");
    let list = agent.list(Some(&root));
    assert_eq!(newest(entry(&list, &root.join("nested")))["deleted"], true);
    assert_eq!(newest(entry(&list, &root.join("empty")))["deleted"], false);
    // A marker is written once.
    let fifth = agent.backup(&root);
    assert_eq!(num(&fifth, "folders_deleted"), 0, "{fifth}");
}
