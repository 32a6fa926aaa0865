use std::time::Instant;

use asgard_core::meta::EntryMeta;
use asgard_core::protocol::CommitEntry;

use super::*;
use crate::testutil::{file, open_db as open, register, upload};

const UNBOUNDED: ScanBounds = ScanBounds {
    hits: usize::MAX,
    entries: usize::MAX,
    deadline: None,
};

fn dir(path: &str) -> CommitEntry {
    CommitEntry::Dir {
        path: RawPath::from(path),
        mtime_ns: 7,
        mode: 0o40755,
        attributes: 0,
        meta: EntryMeta::default(),
    }
}

fn raw_file(path: &[u8], data: &[u8]) -> CommitEntry {
    let mut e = file("/x", &[data]);
    if let CommitEntry::File { path: p, .. } = &mut e {
        *p = RawPath(path.to_vec());
    }
    e
}

fn gone(path: &str) -> CommitEntry {
    CommitEntry::Deleted {
        path: RawPath::from(path),
    }
}

/// Every entry of a folder, page by page, as (name, folder) texts; checks each page's size.
fn all_pages(
    db: &Db,
    user: u64,
    device: &str,
    folder: &str,
    at: Option<i64>,
    limit: usize,
) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = db
            .children(
                user,
                device,
                &RawPath::from(folder),
                at,
                after.as_deref(),
                limit,
            )
            .unwrap();
        assert!(page.entries.len() <= limit);
        out.extend(
            page.entries
                .iter()
                .map(|c| (String::from_utf8_lossy(&c.name).into_owned(), c.folder)),
        );
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

#[test]
fn children_at_a_time_follow_the_restore_rule() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "laptop");
    upload(&db, &a, &[b"one", b"two", b"three"]);
    let t1 = 1_000_000;
    db.commit(
        a.user_id,
        a.device_id,
        &[
            dir("/home/anna"),
            dir("/home/anna/Bücher"),
            file("/home/anna/Bücher/a.txt", &[b"one"]),
            file("/home/anna/notiz.txt", &[b"two"]),
        ],
        4,
        t1,
    )
    .unwrap();
    let t2 = 2_000_000;
    db.commit(
        a.user_id,
        a.device_id,
        &[
            gone("/home/anna/notiz.txt"),
            file("/home/anna/Bücher/b.txt", &[b"three"]),
            file("/home/anna/Bücher/a.txt", &[b"three"]),
        ],
        4,
        t2,
    )
    .unwrap();

    // The top level of a Unix device is `/`, then the ancestors known only from their contents.
    let top = db
        .children(a.user_id, "laptop", &RawPath::from(""), None, None, 50)
        .unwrap();
    assert_eq!(top.folder, RawPath::from("/"));
    assert_eq!(top.entries.len(), 1);
    assert_eq!(
        (top.entries[0].name.as_slice(), top.entries[0].folder),
        (&b"home"[..], true)
    );
    assert_eq!(top.entries[0].path, RawPath::from("/home"));
    assert_eq!(top.entries[0].version, None);

    let now = all_pages(&db, a.user_id, "laptop", "/home/anna", None, 50);
    assert_eq!(now, vec![("Bücher".into(), true)]);
    let then = all_pages(&db, a.user_id, "laptop", "/home/anna", Some(t1), 50);
    assert_eq!(
        then,
        vec![("Bücher".into(), true), ("notiz.txt".into(), false)]
    );
    // Before the first backup there was nothing.
    assert!(all_pages(&db, a.user_id, "laptop", "/home/anna", Some(t1 - 1), 50).is_empty());

    let b_now = db
        .children(
            a.user_id,
            "laptop",
            &RawPath::from("/home/anna/Bücher"),
            None,
            None,
            50,
        )
        .unwrap();
    let sizes: Vec<(&[u8], u64)> = b_now
        .entries
        .iter()
        .map(|c| (c.name.as_slice(), c.version.as_ref().unwrap().size))
        .collect();
    assert_eq!(sizes, vec![(&b"a.txt"[..], 5), (&b"b.txt"[..], 5)]);
    let b_then = db
        .children(
            a.user_id,
            "laptop",
            &RawPath::from("/home/anna/Bücher/"),
            Some(t1),
            None,
            50,
        )
        .unwrap();
    let v = b_then.entries[0].version.as_ref().unwrap();
    assert_eq!((b_then.entries.len(), v.size, v.time_us), (1, 3, t1));
    assert!(v.is_file());
}

#[test]
fn paging_crosses_boundaries_and_skips_deep_subtrees() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    upload(&db, &a, &[b"x"]);
    let mut entries = vec![dir("/r")];
    // Folders with deep subtrees, and names that sort between a folder and its subtree
    // (`d!` < `d/…` in byte order).
    for d in ["d", "d!", "e"] {
        entries.push(dir(&format!("/r/{d}")));
        for i in 0..30 {
            entries.push(file(&format!("/r/{d}/deep/{i:03}"), &[b"x"]));
        }
    }
    entries.push(dir("/r/empty"));
    for i in 0..25 {
        entries.push(file(&format!("/r/f{i:03}"), &[b"x"]));
    }
    entries.push(file("/r/d!x", &[b"x"]));
    db.commit(a.user_id, a.device_id, &entries, 4, 10).unwrap();

    let mut want: Vec<(String, bool)> = ["d!", "d", "e"]
        .iter()
        .map(|n| (n.to_string(), true))
        .collect();
    want.push(("d!x".into(), false));
    want.push(("empty".into(), true));
    want.extend((0..25).map(|i| (format!("f{i:03}"), false)));
    for limit in [100, 1, 2, 3, 4, 7] {
        let got = all_pages(&db, a.user_id, "pc", "/r", None, limit);
        assert_eq!(got, want, "page size {limit}");
    }

    let first = db
        .children(a.user_id, "pc", &RawPath::from("/r"), None, None, 2)
        .unwrap();
    let cursor = first.next.unwrap();
    // A cursor is bound to its folder.
    assert!(matches!(
        db.children(
            a.user_id,
            "pc",
            &RawPath::from("/r/empty"),
            None,
            Some(&cursor),
            2
        ),
        Err(DbError::NotFound)
    ));
    assert!(matches!(
        db.children(a.user_id, "pc", &RawPath::from("/r"), None, Some("zz"), 2),
        Err(DbError::NotFound)
    ));
}

#[test]
fn a_large_folder_pages_without_reading_the_rest() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    upload(&db, &a, &[b"x"]);
    let mut entries = vec![dir("/big")];
    for i in 0..5000 {
        entries.push(file(&format!("/big/{i:05}"), &[b"x"]));
    }
    for batch in entries.chunks(1000) {
        db.commit(a.user_id, a.device_id, batch, 4, 10).unwrap();
    }
    let got = all_pages(&db, a.user_id, "pc", "/big", None, 100);
    assert_eq!(got.len(), 5000);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    // A page deep inside costs about a page.
    let mut after = None;
    for _ in 0..30 {
        after = db
            .children(
                a.user_id,
                "pc",
                &RawPath::from("/big"),
                None,
                after.as_deref(),
                100,
            )
            .unwrap()
            .next;
    }
    let start = Instant::now();
    let page = db
        .children(
            a.user_id,
            "pc",
            &RawPath::from("/big"),
            None,
            after.as_deref(),
            100,
        )
        .unwrap();
    assert_eq!(page.entries[0].name, b"03000");
    assert!(start.elapsed().as_millis() < 500, "{:?}", start.elapsed());
}

#[test]
fn non_utf8_names_and_windows_paths() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "linux");
    upload(&db, &a, &[b"x"]);
    db.commit(
        a.user_id,
        a.device_id,
        &[
            raw_file(b"/data/caf\xe9.txt", b"x"),
            raw_file(b"/data/CAF\xc9-2", b"x"),
        ],
        4,
        10,
    )
    .unwrap();
    let page = db
        .children(a.user_id, "linux", &RawPath::from("/data"), None, None, 10)
        .unwrap();
    let got: Vec<&[u8]> = page.entries.iter().map(|c| c.name.as_slice()).collect();
    assert_eq!(got, vec![&b"CAF\xc9-2"[..], &b"caf\xe9.txt"[..]]);
    assert_eq!(page.entries[1].path.0, b"/data/caf\xe9.txt");
    let found = db.search(a.user_id, "caf", UNBOUNDED).unwrap();
    assert_eq!(found.hits.len(), 2);

    let (_, w) = register(&db, "anna", "win");
    db.commit(
        w.user_id,
        w.device_id,
        &[
            raw_file(br"C:\Users\anna\x.txt", b"x"),
            raw_file(br"D:\Fotos\y.jpg", b"x"),
        ],
        4,
        10,
    )
    .unwrap();
    let top = all_pages(&db, w.user_id, "win", "", None, 10);
    assert_eq!(top, vec![("C:".into(), true), ("D:".into(), true)]);
    let c = all_pages(&db, w.user_id, "win", "C:", None, 10);
    assert_eq!(c, vec![("Users".into(), true)]);
    let anna = all_pages(&db, w.user_id, "win", r"C:\Users\anna", None, 10);
    assert_eq!(anna, vec![("x.txt".into(), false)]);
}

#[test]
fn another_users_device_and_paths_do_not_exist() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "laptop");
    let (_, b) = register(&db, "bert", "pc");
    upload(&db, &a, &[b"geheim"]);
    db.commit(
        a.user_id,
        a.device_id,
        &[file("/home/anna/geheim.txt", &[b"geheim"])],
        4,
        10,
    )
    .unwrap();
    let folder = RawPath::from("/home/anna");
    let path = RawPath::from("/home/anna/geheim.txt");
    assert!(matches!(
        db.children(b.user_id, "laptop", &folder, None, None, 10),
        Err(DbError::UnknownDevice { .. })
    ));
    assert!(matches!(
        db.timeline(b.user_id, "laptop", &path),
        Err(DbError::UnknownDevice { .. })
    ));
    // Anna's paths on Bert's own device: nothing there.
    assert!(matches!(
        db.children(b.user_id, "pc", &folder, None, None, 10),
        Err(DbError::NotFound)
    ));
    assert!(matches!(
        db.children(b.user_id, "pc", &RawPath::from(""), None, None, 10),
        Err(DbError::NotFound)
    ));
    assert!(matches!(
        db.timeline(b.user_id, "pc", &path),
        Err(DbError::NotFound)
    ));
    assert!(
        db.search(b.user_id, "geheim", UNBOUNDED)
            .unwrap()
            .hits
            .is_empty()
    );
    assert!(
        db.deleted_since(b.user_id, 0, UNBOUNDED)
            .unwrap()
            .hits
            .is_empty()
    );
    assert_eq!(
        db.search(a.user_id, "GEHEIM", UNBOUNDED)
            .unwrap()
            .hits
            .len(),
        1
    );
    // A folder that never existed on the user's own device.
    assert!(matches!(
        db.children(
            a.user_id,
            "laptop",
            &RawPath::from("/home/bert"),
            None,
            None,
            10
        ),
        Err(DbError::NotFound)
    ));
}

#[test]
fn timeline_tells_content_from_metadata_and_deletion() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    upload(&db, &a, &[b"v1", b"v22"]);
    let e1 = file("/f", &[b"v1"]);
    db.commit(a.user_id, a.device_id, std::slice::from_ref(&e1), 4, 10)
        .unwrap();
    let mut chmod = e1;
    if let CommitEntry::File { meta, .. } = &mut chmod {
        meta.mode = 0o600;
    }
    db.commit(a.user_id, a.device_id, &[chmod], 4, 20).unwrap();
    db.commit(a.user_id, a.device_id, &[file("/f", &[b"v22"])], 4, 30)
        .unwrap();
    db.commit(a.user_id, a.device_id, &[gone("/f")], 4, 40)
        .unwrap();
    let t = db.timeline(a.user_id, "pc", &RawPath::from("/f")).unwrap();
    let got: Vec<(i64, u64, bool, bool)> = t
        .iter()
        .map(|v| (v.time_us, v.size, v.meta_only, v.deleted))
        .collect();
    assert_eq!(
        got,
        vec![
            (40, 0, false, true),
            (30, 3, false, false),
            (20, 2, true, false),
            (10, 2, false, false)
        ]
    );
}

#[test]
fn deleted_since_lists_the_last_version_and_when_it_went() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    upload(&db, &a, &[b"a", b"bb"]);
    db.commit(
        a.user_id,
        a.device_id,
        &[
            dir("/d"),
            file("/d/old", &[b"a"]),
            file("/d/new", &[b"bb"]),
            file("/d/kept", &[b"a"]),
        ],
        4,
        10,
    )
    .unwrap();
    db.commit(a.user_id, a.device_id, &[gone("/d/old")], 4, 100)
        .unwrap();
    db.commit(a.user_id, a.device_id, &[gone("/d/new")], 4, 200)
        .unwrap();
    let all = db.deleted_since(a.user_id, 0, UNBOUNDED).unwrap();
    let paths: Vec<&RawPath> = all.hits.iter().map(|f| &f.path).collect();
    assert_eq!(
        paths,
        vec![&RawPath::from("/d/new"), &RawPath::from("/d/old")]
    );
    let recent = db.deleted_since(a.user_id, 150, UNBOUNDED).unwrap();
    assert_eq!(recent.hits.len(), 1);
    let hit = &recent.hits[0];
    assert_eq!(
        (hit.device.as_str(), hit.newest.time_us, hit.newest.deleted),
        ("pc", 200, true)
    );
    let last = hit.last_live.as_ref().unwrap();
    assert_eq!((last.size, last.time_us), (2, 10));
    // A file that came back is not deleted.
    db.commit(a.user_id, a.device_id, &[file("/d/new", &[b"a"])], 4, 300)
        .unwrap();
    assert!(
        db.deleted_since(a.user_id, 150, UNBOUNDED)
            .unwrap()
            .hits
            .is_empty()
    );
}

#[test]
fn search_is_bounded_and_says_so() {
    let (_d, db) = open();
    let (_, a) = register(&db, "anna", "pc");
    let (_, a2) = register(&db, "anna", "laptop");
    upload(&db, &a, &[b"x"]);
    let entries: Vec<CommitEntry> = (0..50)
        .map(|i| file(&format!("/s/Bericht-{i:02}.odt"), &[b"x"]))
        .collect();
    db.commit(a.user_id, a.device_id, &entries, 4, 10).unwrap();
    db.commit(
        a2.user_id,
        a2.device_id,
        &[file("/x/BERICHT.pdf", &[b"x"]), file("/x/other", &[b"x"])],
        4,
        10,
    )
    .unwrap();
    let all = db.search(a.user_id, "bericht", UNBOUNDED).unwrap();
    assert_eq!((all.hits.len(), all.stopped_early), (51, false));
    // Both devices of the user.
    assert!(all.hits.iter().any(|h| h.device == "laptop"));
    // A folder name in the path is no hit: only the last component counts.
    assert!(
        db.search(a.user_id, "s", UNBOUNDED)
            .unwrap()
            .hits
            .is_empty()
    );
    let few = db
        .search(
            a.user_id,
            "bericht",
            ScanBounds {
                hits: 10,
                ..UNBOUNDED
            },
        )
        .unwrap();
    assert_eq!((few.hits.len(), few.stopped_early), (10, true));
    let budget = db
        .search(
            a.user_id,
            "bericht",
            ScanBounds {
                entries: 5,
                ..UNBOUNDED
            },
        )
        .unwrap();
    assert_eq!((budget.hits.len(), budget.stopped_early), (5, true));
    let late = ScanBounds {
        deadline: Some(Instant::now()),
        ..UNBOUNDED
    };
    assert!(db.search(a.user_id, "bericht", late).unwrap().stopped_early);
}
