//! The download service against a real database and store, without HTTP; the zips are read
//! back with the `zip` crate.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use asgard_core::protocol::CommitEntry;

use super::*;
use crate::db::Auth;
use crate::service::ingest;
use crate::testutil::{TempServer, file, register, upload_to};

const OLD: &[u8] = b"erste Fassung";
const NEW: &[u8] = b"zweite Fassung, laenger";
const SUB: &[u8] = b"im Unterordner";
const LATIN1: &[u8] = b"latin-1 name";
const OTHER: &[u8] = b"ausserhalb";
const T1: i64 = 1_000_000;
const T2: i64 = 2_000_000;

fn dir(path: &[u8]) -> CommitEntry {
    CommitEntry::Dir {
        path: RawPath(path.to_vec()),
        mtime_ns: 1_614_834_368_000_000_000,
        mode: 0o755,
        attributes: 0,
        meta: Default::default(),
    }
}

fn file_at(path: &[u8], data: &[u8]) -> CommitEntry {
    let mut e = file("/x", &[data]);
    if let CommitEntry::File { path: p, meta } = &mut e {
        *p = RawPath(path.to_vec());
        meta.mtime_ns = 1_614_834_368_000_000_000;
    }
    e
}

/// anna's `/h/Bücher` at T1 (a.txt OLD, sub/b, a Latin-1 name, a link) and at T2 (a.txt NEW,
/// sub/b deleted, c.txt new); `/h/anderes` outside it. Returns the server and anna.
fn world() -> (TempServer, Auth) {
    let s = TempServer::new();
    let (_, a) = register(&s.db, "anna", "pc");
    upload_to(&s.db, &*s.store, &a, &[OLD, NEW, SUB, LATIN1, OTHER], T1);
    let first = vec![
        dir("/h/Bücher".as_bytes()),
        file_at("/h/Bücher/a.txt".as_bytes(), OLD),
        dir("/h/Bücher/sub".as_bytes()),
        file_at("/h/Bücher/sub/b".as_bytes(), SUB),
        file_at(b"/h/B\xc3\xbccher/caf\xe9", LATIN1),
        CommitEntry::Symlink {
            path: RawPath::from("/h/Bücher/link"),
            target: RawPath::from("/etc/passwd"),
            mtime_ns: 0,
            meta: Default::default(),
        },
        file_at(b"/h/anderes", OTHER),
    ];
    ingest::commit(&s.db, a.user_id, a.device_id, &first, 4, T1).unwrap();
    let second = vec![
        file_at("/h/Bücher/a.txt".as_bytes(), NEW),
        CommitEntry::Deleted {
            path: RawPath::from("/h/Bücher/sub/b"),
        },
        file_at("/h/Bücher/c.txt".as_bytes(), OLD),
    ];
    ingest::commit(&s.db, a.user_id, a.device_id, &second, 4, T2).unwrap();
    (s, a)
}

fn zip_of(s: &TempServer, user_id: u64, req: &ZipRequest) -> Result<(Vec<u8>, ZipSummary)> {
    let mut out = Vec::new();
    let notes: NotesText = Box::new(|notes, more| format!("{notes:?} +{more}"));
    let summary = write_zip(&s.db, s.store.clone(), user_id, req, &mut out, notes, 0)?;
    Ok((out, summary))
}

/// name -> content (folders with an empty content and a trailing `/`).
fn unpack(bytes: Vec<u8>) -> BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        assert!(
            out.insert(f.name().to_owned(), b).is_none(),
            "one name once"
        );
    }
    out
}

fn folder(a: &Auth, at: Option<i64>) -> ZipRequest {
    ZipRequest {
        device_id: a.device_id,
        paths: vec![RawPath::from("/h/Bücher")],
        at_us: at,
    }
}

#[test]
fn a_zip_of_a_folder_at_a_past_time_holds_exactly_the_files_of_that_time() {
    let (s, a) = world();
    let (bytes, summary) = zip_of(&s, a.user_id, &folder(&a, Some(T1 + 10))).unwrap();
    let files = unpack(bytes);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "Bücher/",
            "Bücher/a.txt",
            "Bücher/caf\u{fffd}",
            "Bücher/sub/",
            "Bücher/sub/b",
            NOTES_NAME
        ]
    );
    assert_eq!(files["Bücher/a.txt"], OLD);
    assert_eq!(files["Bücher/sub/b"], SUB);
    assert_eq!(files["Bücher/caf\u{fffd}"], LATIN1);
    let notes = String::from_utf8(files[NOTES_NAME].clone()).unwrap();
    assert!(notes.contains("caf\\\\xe9"), "{notes}");
    assert!(notes.contains("LinkSkipped"), "{notes}");
    assert_eq!((summary.files, summary.folders, summary.notes), (3, 2, 2));

    // Now: a.txt is new, sub/b is gone, c.txt came.
    let (bytes, _) = zip_of(&s, a.user_id, &folder(&a, None)).unwrap();
    let files = unpack(bytes);
    assert_eq!(files["Bücher/a.txt"], NEW);
    assert_eq!(files["Bücher/c.txt"], OLD);
    assert!(!files.contains_key("Bücher/sub/b"));
    assert!(!files.keys().any(|k| k.contains("anderes")));

    // Before the first backup there is nothing: refused before a byte is sent.
    assert!(matches!(
        prepare_zip(&s.db, a.user_id, &folder(&a, Some(T1 - 1))),
        Err(ServiceError::NotFound)
    ));
    let (_, name) = prepare_zip(&s.db, a.user_id, &folder(&a, None)).unwrap();
    assert_eq!(name, "Bücher.zip");
}

#[test]
fn a_selection_and_a_whole_device() {
    let (s, a) = world();
    let req = ZipRequest {
        device_id: a.device_id,
        paths: vec![
            RawPath::from("/h/Bücher/a.txt"),
            RawPath::from("/h/Bücher/sub"),
        ],
        at_us: Some(T1 + 10),
    };
    let files = unpack(zip_of(&s, a.user_id, &req).unwrap().0);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["a.txt", "sub/", "sub/b"]);
    let whole = ZipRequest {
        paths: vec![RawPath::default()],
        ..req
    };
    let files = unpack(zip_of(&s, a.user_id, &whole).unwrap().0);
    assert_eq!(files["h/anderes"], OTHER);
    assert_eq!(files["h/Bücher/a.txt"], OLD);
}

#[test]
fn another_users_device_version_and_paths_are_not_found() {
    let (s, a) = world();
    let (_, b) = register(&s.db, "bert", "laptop");
    // Bert names anna's device: refused like a missing one.
    let req = folder(&a, None);
    assert!(matches!(
        prepare_zip(&s.db, b.user_id, &req),
        Err(ServiceError::NotFound)
    ));
    // Even if a caller skipped the check, the listing is bert's own: nothing of anna's.
    let theirs = ZipRequest {
        device_id: b.device_id,
        ..req.clone()
    };
    assert!(matches!(
        prepare_zip(&s.db, b.user_id, &theirs),
        Err(ServiceError::NotFound)
    ));
    assert!(
        write_zip(
            &s.db,
            s.store.clone(),
            b.user_id,
            &req,
            Vec::new(),
            Box::new(|_, _| String::new()),
            0
        )
        .is_err_and(|e| matches!(e, ServiceError::NotFound))
    );
    let files = unpack(zip_of(&s, b.user_id, &theirs).unwrap().0);
    assert!(files.is_empty());

    let (files, _) =
        s.db.list(
            a.user_id,
            &ListParams {
                devices: DeviceSel::Id(a.device_id),
                prefix: Some(RawPath::from("/h/Bücher/a.txt")),
                at_us: None,
                after: None,
                limit: 10,
            },
        )
        .unwrap();
    for v in &files[0].versions {
        let mine = download(&s.db, s.store.clone(), a.user_id, v.id, None).unwrap();
        assert_eq!(mine.device, "pc");
        assert_eq!(mine.name(), b"a.txt");
        assert!(matches!(
            download(&s.db, s.store.clone(), b.user_id, v.id, None),
            Err(ServiceError::NotFound)
        ));
    }
}

#[test]
fn a_download_streams_the_exact_bytes_and_ranges() {
    let (s, a) = world();
    let (files, _) =
        s.db.list(
            a.user_id,
            &ListParams {
                devices: DeviceSel::Id(a.device_id),
                prefix: Some(RawPath::from("/h/Bücher/a.txt")),
                at_us: None,
                after: None,
                limit: 10,
            },
        )
        .unwrap();
    let versions = &files[0].versions;
    assert_eq!(versions.len(), 2);
    for (v, want) in versions.iter().zip([NEW, OLD]) {
        let d = download(&s.db, s.store.clone(), a.user_id, v.id, None).unwrap();
        let got: Vec<u8> = d.plain.map(|p| p.unwrap()).collect::<Vec<_>>().concat();
        assert_eq!(got, want);
        let d = download(&s.db, s.store.clone(), a.user_id, v.id, Some("bytes=2-5")).unwrap();
        assert!(d.plain.partial);
        let got: Vec<u8> = d.plain.map(|p| p.unwrap()).collect::<Vec<_>>().concat();
        assert_eq!(got, &want[2..=5]);
    }
    assert!(matches!(
        download(
            &s.db,
            s.store.clone(),
            a.user_id,
            versions[0].id,
            Some("bytes=999-")
        ),
        Err(ServiceError::RangeNotSatisfiable(_))
    ));
}

#[test]
fn a_damaged_chunk_ends_the_zip_without_a_central_directory() {
    let (s, a) = world();
    let path = s.store.path_of(&asgard_core::ChunkId::of(SUB));
    std::fs::write(&path, asgard_core::stored::encode_raw(b"im Unterordnex")).unwrap();
    let mut out = Vec::new();
    let res = write_zip(
        &s.db,
        s.store.clone(),
        a.user_id,
        &folder(&a, Some(T1 + 10)),
        &mut out,
        Box::new(|_, _| String::new()),
        0,
    );
    assert!(matches!(res, Err(ServiceError::Damaged { .. })), "{res:?}");
    assert!(zip::ZipArchive::new(Cursor::new(out)).is_err());
}

#[test]
fn content_disposition_keeps_umlauts_and_quotes_safe() {
    assert_eq!(
        content_disposition(false, "Über \"x\".txt".as_bytes()),
        "attachment; filename=\"Ueber _x_.txt\"; filename*=UTF-8''%C3%9Cber%20%22x%22.txt"
    );
    assert_eq!(
        content_disposition(true, b"caf\xe9\r\n.txt"),
        "inline; filename=\"caf___.txt\"; filename*=UTF-8''caf%EF%BF%BD%0D%0A.txt"
    );
    assert!(content_disposition(false, b"").contains("filename=\"download\""));
}

#[test]
fn previews_only_for_the_allow_list() {
    assert_eq!(preview_type(b"Foto.JPG"), Some("image/jpeg"));
    assert_eq!(preview_type(b"a.pdf"), Some("application/pdf"));
    assert_eq!(
        preview_type(b"notiz.txt"),
        Some("text/plain; charset=utf-8")
    );
    for bad in [
        &b"seite.html"[..],
        b"bild.svg",
        b"txt",
        b"x.js",
        b"a.txt.exe",
        b"",
    ] {
        assert_eq!(preview_type(bad), None, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn entry_names_stay_inside_and_windows_drives_become_folders() {
    let holder = RawPath::from("/h");
    assert_eq!(
        entry_name(&RawPath::from("/h/a/b"), &holder),
        Some(("a/b".into(), false))
    );
    assert_eq!(entry_name(&RawPath::from("/h/a/../b"), &holder), None);
    assert_eq!(entry_name(&holder, &holder), None);
    assert_eq!(
        entry_name(&RawPath::from(r"C:\Users\anna"), &RawPath::default()),
        Some(("C/Users/anna".into(), false))
    );
    assert_eq!(
        holder_of(&RawPath::from("/h/Bücher/")),
        RawPath::from("/h/")
    );
    assert_eq!(holder_of(&RawPath::from("/")), RawPath::default());
}

#[test]
fn a_deletion_marker_a_folder_and_a_link_have_nothing_to_download() {
    let (s, a) = world();
    let (files, _) =
        s.db.list(
            a.user_id,
            &ListParams {
                devices: DeviceSel::Id(a.device_id),
                prefix: Some(RawPath::from("/h/Bücher")),
                at_us: None,
                after: None,
                limit: 100,
            },
        )
        .unwrap();
    let mut tried = 0;
    for f in &files {
        for v in &f.versions {
            if v.deleted || v.kind != VersionKind::File {
                tried += 1;
                assert!(
                    matches!(
                        download(&s.db, s.store.clone(), a.user_id, v.id, None),
                        Err(ServiceError::NotFound)
                    ),
                    "{}",
                    f.path
                );
            }
        }
    }
    // The marker of sub/b, the folders Bücher and sub, the link.
    assert_eq!(tried, 4);
}
