//! The handles of a restore: folders are created below the target, links on the way are refused
//! (or replaced with `--overwrite`), never followed; nothing outside the target changes.

use super::*;

use std::collections::BTreeMap;

/// The restore's metadata step for a fresh file (`place`'s open temp file) with this mode and
/// these Windows attributes, run as a normal user would (no owner is set).
fn apply_metadata(
    place: &Place,
    file: &std::fs::File,
    mode: u32,
    attributes: u32,
) -> io::Result<()> {
    let v = super::super::meta::tests::version(mode, attributes);
    super::super::meta::Applier::with(false, false).file(
        file,
        &place.dir,
        &place.temp_name(),
        &v,
        Path::new("t"),
        true,
    )
}

/// Every entry below `root` (relative path → file content, `dir`, or `-> link target`): what a
/// test compares to show that nothing outside changed.
fn listing(root: &Path) -> BTreeMap<PathBuf, String> {
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
                "dir".to_owned()
            } else {
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
            };
            out.insert(rel, what);
        }
    }
    out
}

/// A target folder and an "outside" folder holding one file, side by side.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("ziel");
    let outside = dir.path().join("draussen");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("opfer.txt"), "unberührt").unwrap();
    (dir, target, outside)
}

/// Writes a file the way the restore does: temp file, content, rename into place.
fn write_through(place: &Place, content: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = place.create_temp(0)?;
    f.write_all(content)?;
    drop(f);
    place.rename_temp()
}

#[test]
fn folders_are_created_below_the_target_and_cached() {
    let (_dir, target, _) = setup();
    let t = Target::open(&target, false).unwrap();
    let dest = target.join("a").join("b").join("c.txt");
    let place = t.place(&dest).unwrap();
    write_through(&place, b"hallo").unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"hallo");
    // A sibling reuses the cached folder handle: the same open folder.
    let sibling = t.place(&target.join("a").join("b").join("d.txt")).unwrap();
    assert!(Arc::ptr_eq(&place.dir, &sibling.dir));
    // Nothing is left beside the file.
    assert_eq!(
        listing(&target).keys().cloned().collect::<Vec<_>>(),
        [
            PathBuf::from("a"),
            PathBuf::from("a/b"),
            PathBuf::from("a/b/c.txt")
        ]
    );
    // `existing` finds it; a missing folder is not created by it.
    assert!(t.existing(&dest).is_ok());
    assert!(matches!(
        t.existing(&target.join("neu").join("x")),
        Err(Blocked::Io(_, _))
    ));
    assert!(!target.join("neu").exists());
}

#[test]
fn destinations_outside_the_target_are_refused() {
    let (dir, target, _) = setup();
    let t = Target::open(&target, true).unwrap();
    for dest in [
        dir.path().join("draussen").join("x"),
        target.join("..").join("draussen").join("x"),
        target.clone(),
    ] {
        assert!(
            matches!(t.place(&dest), Err(Blocked::Outside(_))),
            "{}",
            dest.display()
        );
    }
}

#[cfg(unix)]
#[test]
fn a_link_where_a_folder_belongs_is_not_followed() {
    let (_dir, target, outside) = setup();
    let before = listing(&outside);
    std::fs::create_dir_all(target.join("d")).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("d").join("sl")).unwrap();
    let t = Target::open(&target, false).unwrap();
    let dest = target.join("d").join("sl").join("opfer.txt");
    match t.place(&dest) {
        Err(Blocked::Link(link)) => assert_eq!(link, target.join("d").join("sl")),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("reached through the link"),
    }
    // Deeper below the link, too; and `existing` (reading back) does not follow it either.
    assert!(matches!(
        t.place(&target.join("d/sl/neu/x.txt")),
        Err(Blocked::Link(_))
    ));
    assert!(matches!(t.existing(&dest), Err(Blocked::Link(_))));
    assert_eq!(listing(&outside), before);
    assert_eq!(
        std::fs::read_link(target.join("d").join("sl")).unwrap(),
        outside
    );
}

#[cfg(unix)]
#[test]
fn overwrite_replaces_the_link_itself_by_a_folder() {
    let (_dir, target, outside) = setup();
    let before = listing(&outside);
    std::os::unix::fs::symlink(&outside, target.join("sl")).unwrap();
    let t = Target::open(&target, true).unwrap();
    let dest = target.join("sl").join("opfer.txt");
    write_through(&t.place(&dest).unwrap(), b"neu").unwrap();
    let meta = std::fs::symlink_metadata(target.join("sl")).unwrap();
    assert!(meta.is_dir() && !meta.is_symlink());
    assert_eq!(std::fs::read(&dest).unwrap(), b"neu");
    assert_eq!(listing(&outside), before);
}

#[cfg(unix)]
#[test]
fn a_link_inside_the_target_is_not_followed_either() {
    // A link to a folder of the target itself is still a link: the backup has a folder there.
    let (_dir, target, _) = setup();
    std::fs::create_dir_all(target.join("echt")).unwrap();
    std::os::unix::fs::symlink("echt", target.join("kurz")).unwrap();
    let t = Target::open(&target, false).unwrap();
    assert!(matches!(
        t.place(&target.join("kurz").join("x")),
        Err(Blocked::Link(_))
    ));
    assert!(listing(&target.join("echt")).is_empty());
}

#[test]
fn a_file_where_a_folder_belongs_is_refused() {
    let (_dir, target, _) = setup();
    std::fs::write(target.join("f"), b"datei").unwrap();
    for overwrite in [false, true] {
        let t = Target::open(&target, overwrite).unwrap();
        assert!(matches!(
            t.place(&target.join("f").join("x")),
            Err(Blocked::NotAFolder(_))
        ));
    }
    assert_eq!(std::fs::read(target.join("f")).unwrap(), b"datei");
}

#[cfg(unix)]
#[test]
fn links_at_the_temp_name_and_the_destination_are_replaced_not_followed() {
    let (_dir, target, outside) = setup();
    let before = listing(&outside);
    let victim = outside.join("opfer.txt");
    std::os::unix::fs::symlink(&victim, target.join(".asgard-restore-a.txt")).unwrap();
    std::os::unix::fs::symlink(&victim, target.join("a.txt")).unwrap();
    let t = Target::open(&target, false).unwrap();
    let place = t.place(&target.join("a.txt")).unwrap();
    // The destination is a link: reading it is refused, not followed.
    assert!(place.open_read().is_err());
    assert!(is_link(&place.metadata().unwrap()));
    write_through(&place, b"wiederhergestellt").unwrap();
    let meta = std::fs::symlink_metadata(target.join("a.txt")).unwrap();
    assert!(meta.is_file());
    assert_eq!(
        std::fs::read(target.join("a.txt")).unwrap(),
        b"wiederhergestellt"
    );
    assert!(!target.join(".asgard-restore-a.txt").exists());
    assert_eq!(listing(&outside), before);
}

#[cfg(unix)]
#[test]
fn restored_links_keep_their_text_and_are_not_followed_later() {
    let (_dir, target, outside) = setup();
    let before = listing(&outside);
    let t = Target::open(&target, false).unwrap();
    // An absolute and a relative target, exactly as recorded.
    for (name, text) in [
        ("abs", outside.clone()),
        ("rel", PathBuf::from("../draussen")),
    ] {
        let dest = target.join(name);
        let place = t.place(&dest).unwrap();
        place.create_temp_link(&text, &dest).unwrap();
        place.rename_temp().unwrap();
        assert_eq!(std::fs::read_link(&dest).unwrap(), text);
        assert_eq!(place.read_link().unwrap(), text);
        // A later write of the same restore below it is refused.
        assert!(matches!(
            t.place(&dest.join("opfer.txt")),
            Err(Blocked::Link(_))
        ));
    }
    assert_eq!(listing(&outside), before);
}

#[cfg(unix)]
#[test]
fn metadata_is_set_through_the_handle() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, target, _) = setup();
    let t = Target::open(&target, false).unwrap();
    let place = t.place(&target.join("m.txt")).unwrap();
    let f = place.create_temp(0).unwrap();
    apply_metadata(&place, &f, 0o4751, 0).unwrap();
    drop(f);
    place.rename_temp().unwrap();
    let mode = std::fs::metadata(target.join("m.txt"))
        .unwrap()
        .permissions()
        .mode();
    // The full mode: the file is the restoring user's own.
    assert_eq!(mode & 0o7777, 0o4751);
}

#[test]
fn the_cache_starts_over_when_full() {
    let (_dir, target, _) = setup();
    let t = Target::open(&target, false).unwrap();
    for i in 0..CACHED_DIRS + 10 {
        t.place(&target.join(format!("o{i}")).join("x")).unwrap();
    }
    assert!(t.cache().len() <= CACHED_DIRS);
    assert!(target.join(format!("o{}", CACHED_DIRS + 9)).is_dir());
}

/// The restore's file steps through the handles: temp file with attributes, content, metadata,
/// rename (moved here from `platform.rs` with the path-based helpers they tested).
fn restore_like(dir: &Path, name: &str, content: &[u8], attributes: u32) -> PathBuf {
    use std::io::Write;
    let dest = dir.join(name);
    let t = Target::open(dir, true).unwrap();
    let place = t.place(&dest).unwrap();
    let mut f = place.create_temp(attributes).unwrap();
    f.write_all(content).unwrap();
    f.sync_all().unwrap();
    apply_metadata(&place, &f, 0o640, attributes).unwrap();
    drop(f);
    place.rename_temp().unwrap();
    dest
}

#[test]
fn restore_file_steps_write_content() {
    let dir = tempfile::tempdir().unwrap();
    let dest = restore_like(dir.path(), "a.txt", b"hello", 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
    // A leftover temp file from a crashed run does not stop the next restore.
    std::fs::write(dir.path().join(".asgard-restore-a.txt"), b"old").unwrap();
    let dest = restore_like(dir.path(), "a.txt", b"again", 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"again");
    assert!(!dir.path().join(".asgard-restore-a.txt").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}

#[cfg(windows)]
#[test]
fn windows_read_only_hidden_and_system_round_trip() {
    use crate::platform::{attr, attributes};
    let dir = tempfile::tempdir().unwrap();
    let wanted = attr::READONLY | attr::HIDDEN | attr::SYSTEM;
    let dest = restore_like(dir.path(), "geheim.txt", b"x", wanted | attr::ARCHIVE);
    let got = attributes(&std::fs::metadata(&dest).unwrap());
    assert_eq!(got & wanted, wanted, "attributes {got:#x}");
    assert!(std::fs::metadata(&dest).unwrap().permissions().readonly());
    // --overwrite replaces a read-only file; a plain file comes back without the bits.
    let again = restore_like(dir.path(), "geheim.txt", b"y", 0);
    assert_eq!(std::fs::read(&again).unwrap(), b"y");
    let got = attributes(&std::fs::metadata(&again).unwrap());
    assert_eq!(got & wanted, 0, "attributes {got:#x}");
}

/// Paths longer than 260 characters keep working through the handles (the restore's steps on
/// Windows: folders created below the target, temp file with attributes, content, metadata,
/// rename; a read back; a read-only file replaced).
#[cfg(windows)]
#[test]
fn windows_long_paths_can_be_restored() {
    use crate::platform::attr;
    use std::io::{Read, Write};
    let (_dir, target, _) = setup();
    let mut dest = target.clone();
    for i in 0..12 {
        dest.push(format!("ein-ziemlich-langer-ordnername-{i:02}"));
    }
    dest.push("datei.txt");
    assert!(dest.as_os_str().len() > 300, "{}", dest.display());
    let t = Target::open(&target, false).unwrap();
    let place = t.place(&dest).unwrap();
    let mut f = place.create_temp(attr::HIDDEN).unwrap();
    f.write_all(b"tief").unwrap();
    apply_metadata(&place, &f, 0, attr::READONLY).unwrap();
    drop(f);
    place.rename_temp().unwrap();
    let verbatim = PathBuf::from(format!(r"\\?\{}", dest.display()));
    assert_eq!(std::fs::read(&verbatim).unwrap(), b"tief");
    assert!(
        std::fs::metadata(&verbatim)
            .unwrap()
            .permissions()
            .readonly()
    );
    let mut back = Vec::new();
    t.existing(&dest)
        .unwrap()
        .open_read()
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, b"tief");
    // --overwrite of a read-only file: replaced.
    let place = t.place(&dest).unwrap();
    write_through(&place, b"neu").unwrap();
    assert_eq!(std::fs::read(&verbatim).unwrap(), b"neu");
}

/// Folder handles are real (readable) handles: the restore notes the folders it renamed into
/// and syncs them (Linux: their file system) through them.
#[cfg(unix)]
#[test]
fn folder_handles_can_be_synced() {
    let (_dir, target, _) = setup();
    let t = Target::open(&target, false).unwrap();
    for dest in [target.join("top.txt"), target.join("a/b/c.txt")] {
        let place = t.place(&dest).unwrap();
        t.renamed_in(&place.dir).unwrap();
    }
    t.sync_renames().unwrap();
    // Nothing noted: the target's own file system is synced.
    t.sync_renames().unwrap();
}

/// Windows: a folder link where the backup has a folder is refused, and with --overwrite the
/// link itself is replaced; nothing outside changes.
#[cfg(windows)]
#[test]
fn windows_a_link_where_a_folder_belongs_is_not_followed() {
    let (_dir, target, outside) = setup();
    let before = listing(&outside);
    if let Err(e) = std::os::windows::fs::symlink_dir(&outside, target.join("sl")) {
        eprintln!("skipped: no folder link can be created here: {e}");
        return;
    }
    let dest = target.join("sl").join("opfer.txt");
    // Wine makes such a link a Unix symlink that its own calls then cannot describe as a link
    // (not found): nothing to check there; on Windows it is a reparse point.
    if !std::fs::symlink_metadata(target.join("sl")).is_ok_and(|m| is_link(&m)) {
        eprintln!("skipped: the folder link is not seen as one here (Wine)");
        return;
    }
    let t = Target::open(&target, false).unwrap();
    assert!(matches!(t.place(&dest), Err(Blocked::Link(_))));
    assert!(matches!(t.existing(&dest), Err(Blocked::Link(_))));
    let t = Target::open(&target, true).unwrap();
    write_through(&t.place(&dest).unwrap(), b"neu").unwrap();
    let meta = std::fs::symlink_metadata(target.join("sl")).unwrap();
    assert!(meta.is_dir() && !is_link(&meta));
    assert_eq!(std::fs::read(&dest).unwrap(), b"neu");
    assert_eq!(listing(&outside), before);
}

#[test]
fn folder_handles_for_the_target_and_below() {
    let (_dir, target, outside) = setup();
    let t = Target::open(&target, false).unwrap();
    // The target itself is its root handle; a folder below is created on request only.
    assert!(Arc::ptr_eq(&t.dir(&target, false).unwrap(), &t.root));
    assert!(matches!(
        t.dir(&target.join("leer"), false),
        Err(Blocked::Io(_, _))
    ));
    t.dir(&target.join("leer").join("tief"), true).unwrap();
    assert!(target.join("leer").join("tief").is_dir());
    assert!(t.dir(&target.join("leer"), false).is_ok());
    assert!(matches!(t.dir(&outside, true), Err(Blocked::Outside(_))));
}

#[cfg(unix)]
#[test]
fn hard_links_are_made_through_the_handles() {
    use std::os::unix::fs::MetadataExt;
    let (_dir, target, outside) = setup();
    let t = Target::open(&target, false).unwrap();
    let first = t.place(&target.join("a").join("eins")).unwrap();
    write_through(&first, b"gemeinsam").unwrap();
    let second = t.place(&target.join("b").join("zwei")).unwrap();
    second.create_temp_hard_link(&first).unwrap();
    second.rename_temp().unwrap();
    let a = std::fs::metadata(target.join("a/eins")).unwrap();
    let b = std::fs::metadata(target.join("b/zwei")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    // A link at the first name is linked itself, never followed.
    std::os::unix::fs::symlink(outside.join("opfer.txt"), target.join("a/sl")).unwrap();
    let sl = t.existing(&target.join("a/sl")).unwrap();
    let third = t.place(&target.join("b/drei")).unwrap();
    third.create_temp_hard_link(&sl).unwrap();
    third.rename_temp().unwrap();
    assert!(
        std::fs::symlink_metadata(target.join("b/drei"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        std::fs::metadata(outside.join("opfer.txt"))
            .unwrap()
            .nlink(),
        1
    );
}
