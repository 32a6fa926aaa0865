//! The seed corpora of the server's fuzz targets (`fuzz/corpus/<target>/`), made by the real
//! encoders: the protocol types through serde_json, records through postcard, chunks through
//! `asgard_core::stored`, segments through the packed store's record header, the multipart body
//! in the agent's layout. The unit tests check that every seed goes the whole way through its
//! target and that the committed corpus holds them (`ASGARD_FUZZ_SEEDS=<dir>` writes them).

use asgard_core::protocol::DeviceStatus;
use asgard_core::protocol::{
    ApproveRequest, CheckRequest, ChunkRef, CommitEntry, CommitRequest, FetchRequest, FileMeta,
    ListQuery, LoginRequest, ManifestRequest, RestoreRequest, RunReport, RunSummary,
};
use asgard_core::testdata::random_bytes;
use asgard_core::{ChunkId, ChunkParams, RawPath, names, stored};
use serde::Serialize;

use super::{BODIES, RECORDS};
use crate::db::{
    ChunkRec, DeviceRec, PathRec, PendingRec, RecExt, RecKind, ReenrollRec, RunRec, StoredMeta,
    UserRec, VersionRec, encode_cursor,
};
use crate::store::packed::format::{SEGMENT_MAGIC, record_header};

/// One seed input of a fuzz target.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The fuzz target (`fuzz/fuzz_targets/<target>.rs`).
    pub target: &'static str,
    /// The file name in `fuzz/corpus/<target>/`.
    pub name: String,
    pub bytes: Vec<u8>,
}

fn seed(target: &'static str, name: impl Into<String>, bytes: Vec<u8>) -> Seed {
    Seed {
        target,
        name: name.into(),
        bytes,
    }
}

fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(body);
    v
}

fn json(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(v).expect("protocol types encode")
}

fn pc(v: &impl Serialize) -> Vec<u8> {
    postcard::to_stdvec(v).expect("records encode")
}

/// Chunks of a few shapes in stored form: compressible (zstd), random (raw), empty.
fn chunks() -> Vec<(ChunkId, Vec<u8>)> {
    let text = b"Tresor-PIN: 7391\n".repeat(300);
    let random = random_bytes(700, 11);
    vec![
        (ChunkId::of(&text), stored::encode(&text, 3)),
        (ChunkId::of(&random), stored::encode(&random, 3)),
        (ChunkId::of(b""), stored::encode_raw(b"")),
    ]
}

fn file_meta() -> FileMeta {
    let a = random_bytes(40, 1);
    let b = random_bytes(2, 2);
    FileMeta {
        size: 42,
        mtime_ns: 1_700_000_000_123_456_789,
        mode: 0o100644,
        attributes: 0,
        hash: ChunkId::of(&[a.clone(), b.clone()].concat()),
        params: ChunkParams::default(),
        chunks: vec![
            ChunkRef {
                id: ChunkId::of(&a),
                len: 40,
            },
            ChunkRef {
                id: ChunkId::of(&b),
                len: 2,
            },
        ],
        ext: Default::default(),
    }
}

fn version_rec(symlink: bool) -> VersionRec {
    let meta = file_meta();
    VersionRec {
        user_id: 3,
        device_id: 7,
        path: b"/home/alice/Dokumente/\xffbrief.txt".to_vec(),
        time_us: 1_700_000_000_000_000,
        deleted: false,
        size: if symlink { 0 } else { meta.size },
        mtime_ns: meta.mtime_ns,
        mode: meta.mode,
        attributes: 0,
        hash: Some(meta.hash.0),
        params: meta.params,
        chunks: if symlink {
            Vec::new()
        } else {
            meta.chunks.iter().map(|c| (c.id.0, c.len)).collect()
        },
        symlink_target: symlink.then(|| b"../ziel".to_vec()),
        ext: RecExt::new(
            if symlink {
                RecKind::Symlink
            } else {
                RecKind::File
            },
            false,
            StoredMeta {
                uid: Some(1000),
                gid: Some(100),
                owner: Some("alice".into()),
                group: Some("users".into()),
                xattrs: vec![(b"user.comment".to_vec(), b"\x00geheim".to_vec())],
                hardlink: (!symlink).then_some(42),
                btime_ns: Some(-1),
            },
        ),
    }
}

fn run_report() -> RunReport {
    RunReport {
        started_us: 1_700_000_000_000_000,
        finished_us: 1_700_000_060_000_000,
        agent_version: "0.1.0".into(),
        exit_code: 3,
        summary: RunSummary {
            files_seen: 10,
            files_new: 2,
            bytes_read: 4096,
            duration_s: 1.5,
            ..RunSummary::default()
        },
        errors: vec!["Datei nicht lesbar: /home/alice/x".into()],
    }
}

/// A multipart upload body in the agent's layout (`asgard-agent/src/client.rs`).
fn multipart(parts: &[(ChunkId, Vec<u8>)], boundary: &str) -> Vec<u8> {
    let mut body = Vec::new();
    let mut sep = "";
    for (id, bytes) in parts {
        let hex = id.to_hex();
        body.extend_from_slice(
            format!(
                "{sep}--{boundary}\r\nContent-Disposition: form-data; name=\"{hex}\"; \
                 filename=\"{hex}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        sep = "\r\n";
    }
    body.extend_from_slice(format!("{sep}--{boundary}--\r\n").as_bytes());
    body
}

fn upload_input(parts: &[(ChunkId, Vec<u8>)], piece: u8) -> Vec<u8> {
    let boundary = "asgard-0123456789abcdef0123456789abcdef01234567";
    let ct = format!("multipart/form-data; boundary={boundary}");
    let mut v = vec![ct.len() as u8];
    v.extend_from_slice(ct.as_bytes());
    v.push(piece);
    v.extend_from_slice(&multipart(parts, boundary));
    v
}

/// Every seed of the server's targets.
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    let body = |kind: &str| BODIES.iter().position(|b| *b == kind).expect("a body") as u8;
    let login = LoginRequest {
        protocol_version: 1,
        user: "alice".into(),
        device: "laptop".into(),
        os: "linux".into(),
        os_version: "6.1".into(),
        agent_version: "0.1.0".into(),
        enrollment_key: Some("geheim".into()),
        code: Some(names::code_from_random(&[1, 2, 3, 4, 5, 6, 7, 8])),
    };
    let ids: Vec<ChunkId> = chunks().iter().map(|(id, _)| *id).collect();
    let commit = CommitRequest {
        entries: vec![
            CommitEntry::File {
                path: RawPath(b"/home/alice/\xffnot-utf8".to_vec()),
                meta: file_meta(),
            },
            CommitEntry::Symlink {
                path: RawPath::from("/home/alice/sl"),
                target: RawPath::from("../etc"),
                mtime_ns: 5,
                meta: Default::default(),
            },
            CommitEntry::Deleted {
                path: RawPath::from("/home/alice/alt.txt"),
            },
        ],
    };
    let list = ListQuery {
        device: Some("Laptop".into()),
        all_devices: false,
        prefix_hex: Some(asgard_core::id::to_hex(b"/home")),
        at_us: Some(1_700_000_000_000_000),
        cursor: Some(encode_cursor(7, b"/home/alice/a")),
        limit: Some(100),
    };
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("login", json(&login)),
        (
            "approve",
            json(&ApproveRequest {
                code: "k7mq 4xtd".into(),
            }),
        ),
        (
            "check",
            json(&CheckRequest {
                chunks: ids.clone(),
            }),
        ),
        ("commit", json(&commit)),
        (
            "restore",
            json(&RestoreRequest {
                version_id: None,
                device: Some("laptop".into()),
                path: Some(RawPath::from("/home/alice/a")),
                at_us: Some(5),
            }),
        ),
        (
            "manifest",
            json(&ManifestRequest {
                version_ids: vec![1, 2, 99],
            }),
        ),
        ("fetch", json(&FetchRequest { chunks: ids })),
        ("runs", json(&run_report())),
        ("list-json", json(&list)),
    ];
    for (kind, b) in bodies {
        out.push(seed("protocol", kind, tagged(body(kind), &b)));
    }

    let cursor = encode_cursor(7, b"/home/alice/a");
    for (i, q) in [
        format!("device=laptop&prefix_hex=2f686f6d65&at_us=17&cursor={cursor}&limit=100"),
        "all_devices=true&device=%C3%84rger%20PC&limit=99999".to_owned(),
        String::new(),
    ]
    .iter()
    .enumerate()
    {
        out.push(seed("query", format!("list-{i}"), tagged(0, q.as_bytes())));
    }
    out.push(seed("query", "runs", tagged(1, b"limit=5")));

    let parts = chunks();
    out.push(seed(
        "upload_multipart",
        "three-parts",
        upload_input(&parts, 255),
    ));
    out.push(seed(
        "upload_multipart",
        "small-pieces",
        upload_input(&parts[..2], 6),
    ));
    out.push(seed(
        "upload_multipart",
        "empty-chunk",
        upload_input(&parts[2..], 0),
    ));

    for (i, (id, bytes)) in parts.iter().enumerate() {
        let mut v = vec![8u8];
        v.extend_from_slice(&id.0);
        v.extend_from_slice(bytes);
        out.push(seed("stored_chunk", format!("chunk-{i}"), v));
    }

    let record = |kind: &str| RECORDS.iter().position(|r| *r == kind).expect("a record") as u8;
    let token = *blake3::hash(b"token").as_bytes();
    let device = DeviceRec {
        id: 7,
        token_hash: Some(token),
        status: DeviceStatus::Active,
        os: "linux".into(),
        os_version: "6.1".into(),
        agent_version: "0.1.0".into(),
        created_us: 1,
        last_seen_us: 2,
    };
    let file_version = version_rec(false);
    let version = pc(&file_version);
    // The shapes of schema version 1: the same record without its extension (V2), and also
    // without the trailing `None` of `symlink_target` (V1, before symlink versions).
    let v2_version = version[..version.len() - pc(&file_version.ext).len()].to_vec();
    let old_version = v2_version[..v2_version.len() - 1].to_vec();
    let mut dir_version = version_rec(false);
    dir_version.size = 0;
    dir_version.hash = None;
    dir_version.chunks.clear();
    dir_version.mode = 0o42775;
    dir_version.ext = RecExt::new(RecKind::Dir, true, StoredMeta::default());
    let records: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "user",
            "user",
            pc(&UserRec {
                id: 3,
                created_us: 1_700_000_000_000_000,
            }),
        ),
        ("device", "device", pc(&device)),
        (
            "pending",
            "pending",
            pc(&PendingRec {
                device: "tablet".into(),
                token_hash: token,
                code_hash: *blake3::hash(b"K7MQ-4XTD").as_bytes(),
                code_expires_us: 9,
                created_us: 1,
                os: "windows".into(),
                os_version: "11".into(),
                agent_version: "0.1.0".into(),
            }),
        ),
        (
            "reenroll",
            "reenroll",
            pc(&ReenrollRec {
                code_hash: token,
                expires_us: 5,
            }),
        ),
        (
            "chunk",
            "chunk",
            pc(&ChunkRec {
                stored_len: 100,
                plain_len: 4000,
                refcount: 2,
                last_touched_us: 1,
                gc_candidate_since_us: Some(2),
                bad_since_us: None,
            }),
        ),
        (
            "path",
            "path",
            pc(&PathRec {
                versions: vec![1, 5, 300_000],
            }),
        ),
        ("version", "version", version),
        ("version", "version-v2", v2_version),
        ("version", "version-v1", old_version),
        ("version", "version-dir", pc(&dir_version)),
        ("version", "version-symlink", pc(&version_rec(true))),
        ("run", "run", pc(&RunRec::new(run_report(), 17))),
        (
            "meta_json",
            "meta_json",
            serde_json::to_vec(&serde_json::json!({"freed_chunks": 3, "errors": ["x"]}))
                .expect("json"),
        ),
        (
            "cursor",
            "cursor",
            encode_cursor(7, b"/a/\xff").into_bytes(),
        ),
    ];
    for (kind, name, bytes) in records {
        out.push(seed("db_records", name, tagged(record(kind), &bytes)));
    }

    let mut segment = SEGMENT_MAGIC.to_vec();
    for (id, bytes) in &parts {
        segment.extend_from_slice(&record_header(id, bytes.len() as u32));
        segment.extend_from_slice(bytes);
    }
    out.push(seed("segment_records", "segment", tagged(0, &segment)));
    // One byte of the last record past the committed length: damaged there.
    out.push(seed("segment_records", "leftovers", tagged(1, &segment)));
    // The last record's header past it: the walk ends before it.
    out.push(seed(
        "segment_records",
        "leftover-header",
        tagged(30, &segment),
    ));
    out.push(seed("segment_records", "lost-tail", tagged(0xf0, &segment)));
    out.push(seed(
        "segment_records",
        "key",
        tagged(0, b"packs/00000000000000ab.seg"),
    ));

    let example = include_str!("../../../config.example.yaml");
    out.push(seed(
        "config_yaml",
        "server-example",
        tagged(0, example.as_bytes()),
    ));
    let small = "listen: 0.0.0.0:8443\nkeep_versions: 5\ngc_interval: 1h30m\nsegment_size: 65536\n\
                 store:\n  compact_below_percent: 40\n";
    out.push(seed(
        "config_yaml",
        "server-flat-keys",
        tagged(0, small.as_bytes()),
    ));
    out
}
