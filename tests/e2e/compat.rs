//! Old data stays readable (issue 12): a server data directory and an agent's state written by the
//! code before protocol 2 (commit 7cb74ae; `fixtures/make-datadir-v1.sh` made
//! `fixtures/datadir-v1.tar.zst`), opened by today's server and agent. Every old version is
//! listed, the latest and the first state restore exactly as the manifests recorded the tree, and
//! a backup by today's agent on top of the old data works, after which the old versions still
//! restore. The old code recorded no folders: they come back where files need them, an empty
//! folder not at all.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use asgard_e2e::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The folder the fixture's tree lived in: the agent records absolute paths, so the backup on top
/// recreates the tree there.
const BASE: &str = "/tmp/asgard-compat-v1";

/// An entry of a manifest.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    File {
        mode: u32,
        size: u64,
        mtime_ns: i128,
        sha256: String,
    },
    Dir {
        mode: u32,
        mtime_ns: i128,
    },
    Link {
        target: Vec<u8>,
    },
}

/// A tree as `make-datadir-v1.sh` recorded it: relative path → entry.
struct Manifest {
    /// A time between the first and the second backup (only in the first manifest).
    at: Option<String>,
    root: PathBuf,
    entries: BTreeMap<PathBuf, Entry>,
}

/// How folders of a restored tree are compared.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Folders {
    /// Never recorded (versions of the old code): a folder exists where files need it, with
    /// whatever mode and time; an empty folder does not come back.
    Unrecorded,
    /// Recorded: every folder exists with its mode and mtime.
    Recorded,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// `%XX` escapes back to bytes.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn load_manifest(name: &str) -> Manifest {
    let text = std::fs::read_to_string(fixtures_dir().join(name)).unwrap();
    let mut m = Manifest {
        at: None,
        root: PathBuf::new(),
        entries: BTreeMap::new(),
    };
    for line in text.lines() {
        if let Some(at) = line.strip_prefix("# at ") {
            m.at = Some(at.to_owned());
            continue;
        }
        if let Some(root) = line.strip_prefix("# root ") {
            m.root = PathBuf::from(root);
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "manifest line {line:?}");
        let path = PathBuf::from(OsStr::from_bytes(&unescape(f[5])));
        let mode = || u32::from_str_radix(f[1], 8).unwrap();
        let mtime_ns = || f[3].parse::<i128>().unwrap();
        let entry = match f[0] {
            "f" => Entry::File {
                mode: mode(),
                size: f[2].parse().unwrap(),
                mtime_ns: mtime_ns(),
                sha256: f[4].to_owned(),
            },
            "d" => Entry::Dir {
                mode: mode(),
                mtime_ns: mtime_ns(),
            },
            "l" => Entry::Link {
                target: unescape(f[4]),
            },
            k => panic!("unknown kind {k} in {line:?}"),
        };
        m.entries.insert(path, entry);
    }
    assert!(m.root.starts_with(BASE), "manifest root {:?}", m.root);
    m
}

impl Manifest {
    /// Whether a file or link lies below the folder `dir`.
    fn has_content(&self, dir: &Path) -> bool {
        self.entries
            .iter()
            .any(|(p, e)| p.starts_with(dir) && p != dir && !matches!(e, Entry::Dir { .. }))
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mtime_ns(md: &std::fs::Metadata) -> i128 {
    i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec())
}

/// Every entry below `root`, relative (links not followed).
fn walk(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.insert(p.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    out
}

/// The differences between the tree at `dir` and the manifest `m`; empty when they match.
fn tree_differences(dir: &Path, m: &Manifest, folders: Folders) -> Vec<String> {
    let mut diffs = Vec::new();
    let found = walk(dir);
    for extra in found.iter().filter(|p| !m.entries.contains_key(*p)) {
        diffs.push(format!("{}: not in the manifest", extra.display()));
    }
    for (rel, want) in &m.entries {
        let p = dir.join(rel);
        let name = rel.display();
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            let expected_absent = matches!(want, Entry::Dir { .. })
                && folders == Folders::Unrecorded
                && !m.has_content(rel);
            if !expected_absent {
                diffs.push(format!("{name}: missing"));
            }
            continue;
        };
        match want {
            Entry::File {
                mode,
                size,
                mtime_ns: t,
                sha256,
            } => {
                if !md.is_file() {
                    diffs.push(format!("{name}: not a file"));
                    continue;
                }
                if md.len() != *size {
                    diffs.push(format!("{name}: size {} instead of {size}", md.len()));
                }
                let got = sha256_hex(&std::fs::read(&p).unwrap());
                if &got != sha256 {
                    diffs.push(format!("{name}: content differs"));
                }
                if mtime_ns(&md) != *t {
                    diffs.push(format!("{name}: mtime {} instead of {t}", mtime_ns(&md)));
                }
                if md.mode() & 0o7777 != *mode {
                    diffs.push(format!(
                        "{name}: mode {:o} instead of {mode:o}",
                        md.mode() & 0o7777
                    ));
                }
            }
            Entry::Link { target } => match std::fs::read_link(&p) {
                Ok(t) if t.as_os_str().as_bytes() == target.as_slice() => {}
                Ok(t) => diffs.push(format!("{name}: link to {}", t.display())),
                Err(_) => diffs.push(format!("{name}: not a link")),
            },
            Entry::Dir { mode, mtime_ns: t } => {
                if !md.is_dir() {
                    diffs.push(format!("{name}: not a folder"));
                    continue;
                }
                match folders {
                    Folders::Unrecorded if !m.has_content(rel) => diffs.push(format!(
                        "{name}: an empty folder that was never recorded came back"
                    )),
                    Folders::Unrecorded => {}
                    Folders::Recorded => {
                        if md.mode() & 0o7777 != *mode {
                            diffs.push(format!(
                                "{name}: folder mode {:o} instead of {mode:o}",
                                md.mode() & 0o7777
                            ));
                        }
                        if mtime_ns(&md) != *t {
                            diffs.push(format!(
                                "{name}: folder mtime {} instead of {t}",
                                mtime_ns(&md)
                            ));
                        }
                    }
                }
            }
        }
    }
    diffs
}

fn assert_tree(dir: &Path, m: &Manifest, folders: Folders, what: &str) {
    let diffs = tree_differences(dir, m, folders);
    assert!(
        diffs.is_empty(),
        "{what} ({folders:?} folders) differs from the manifest:\n{}",
        diffs.join("\n")
    );
}

/// Unpacks `fixtures/datadir-v1.tar.zst` into `into` (`data/`, `state/state.json`).
fn unpack_fixture(into: &Path) {
    let packed = File::open(fixtures_dir().join("datadir-v1.tar.zst")).unwrap();
    let tar = zstd::stream::decode_all(packed).unwrap();
    let mut child = Command::new("tar")
        .arg("-xf")
        .arg("-")
        .arg("-C")
        .arg(into)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    assert!(child.wait().unwrap().success(), "tar -x of the fixture");
}

/// A path of `list --json` (text, or `{"hex": ...}` when not UTF-8) as bytes.
fn json_path(v: &Value) -> Vec<u8> {
    if let Some(s) = v.as_str() {
        return s.as_bytes().to_vec();
    }
    let hex = v["hex"].as_str().unwrap_or_else(|| panic!("path {v}"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// `list --json` by absolute path.
fn list_by_path(agent: &Agent) -> BTreeMap<PathBuf, Value> {
    agent
        .list(None)
        .into_iter()
        .map(|e| {
            let p = PathBuf::from(OsStr::from_bytes(&json_path(&e["path"])));
            (p, e)
        })
        .collect()
}

/// Holds the fixed tree folder for one test at a time (also across test processes) and removes
/// it at the end.
struct TreeLock(#[allow(dead_code)] File);

impl TreeLock {
    fn take() -> TreeLock {
        let f = File::create(format!("{BASE}.lock")).unwrap();
        f.lock().unwrap();
        let _ = std::fs::remove_dir_all(BASE);
        TreeLock(f)
    }
}

impl Drop for TreeLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(BASE);
    }
}

/// Sets the mode and mtime of every folder of the manifest below `dir`, deepest first (a folder's
/// mtime changes when something inside it is created), creating the empty ones.
fn recreate_folders(dir: &Path, m: &Manifest) {
    for (rel, e) in m.entries.iter().rev() {
        if let Entry::Dir { mode, mtime_ns } = e {
            let p = dir.join(rel);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
            let t = UNIX_EPOCH + Duration::from_nanos(u64::try_from(*mtime_ns).unwrap());
            File::open(&p).unwrap().set_modified(t).unwrap();
        }
    }
}

/// `restore --json PATH --to TO EXTRA...`, asserting a clean run.
fn restore(agent: &Agent, path: &Path, to: &Path, extra: &[&str]) -> Value {
    let (code, summary, stderr) = agent.restore_json(path, to, extra);
    assert_eq!(code, 0, "restore {extra:?}: {summary} {stderr}");
    assert_eq!(num(&summary, "errors"), 0, "{summary} {stderr}");
    summary
}

/// Acceptance ("old data stays readable"): today's server opens a data directory of the code
/// before protocol 2, today's agent logs in with that code's state, lists every old version
/// (with the deletion marker), restores the latest and the first state and one old version by id
/// exactly; then backs up the same tree on top, after which the old versions still restore and
/// the store is sound, also after a restart of the server.
#[test]
fn data_dir_written_before_protocol_2_restores_and_takes_new_backups() {
    let first = load_manifest("datadir-v1.first.manifest");
    let latest = load_manifest("datadir-v1.latest.manifest");
    assert_eq!(first.root, latest.root);
    let root = latest.root.clone();
    let at = first.at.clone().expect("the first manifest names a time");
    let _tree = TreeLock::take();

    let data = tempfile::tempdir().unwrap();
    unpack_fixture(data.path());
    let mut server = Server::start_in(data);
    let agent = Agent {
        user: "alice".into(),
        device: "fixturehost".into(),
        state: tempfile::tempdir().unwrap(),
        server: server.url.clone(),
    };
    // The old agent's state (token, pinned certificate), for the server at its new test address.
    let mut state: Value = serde_json::from_slice(
        &std::fs::read(server.data.path().join("state/state.json")).unwrap(),
    )
    .unwrap();
    state["server_url"] = Value::from(server.url.trim_end_matches('/'));
    std::fs::write(
        agent.state.path().join("state.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();

    // Every old version is listed: one per file or link, two of the changed file, a version and
    // a deletion marker of the deleted one, and nothing else (the old code recorded no folders).
    let before = list_by_path(&agent);
    let recorded: BTreeSet<PathBuf> = first
        .entries
        .iter()
        .chain(&latest.entries)
        .filter(|(_, e)| !matches!(e, Entry::Dir { .. }))
        .map(|(p, _)| root.join(p))
        .collect();
    assert_eq!(
        before.keys().cloned().collect::<BTreeSet<_>>(),
        recorded,
        "listed paths"
    );
    for (rel, e) in &latest.entries {
        let Some(listed) = before.get(&root.join(rel)) else {
            continue;
        };
        let v = newest(listed);
        assert_eq!(v["deleted"], false, "{}: {listed}", rel.display());
        match e {
            Entry::File { size, .. } => {
                assert_eq!(v["kind"], "file", "{listed}");
                assert_eq!(v["size"].as_u64(), Some(*size), "{listed}");
            }
            Entry::Link { target } => {
                assert_eq!(v["kind"], "symlink", "{listed}");
                assert_eq!(&json_path(&v["symlink_target"]), target, "{listed}");
            }
            Entry::Dir { .. } => unreachable!(),
        }
    }
    let changed = versions(&before[&root.join("sub/changed.txt")]).clone();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert_eq!(changed[1]["size"], 10, "{changed:?}");
    let gone = versions(&before[&root.join("sub/gone.txt")]);
    assert_eq!(gone.len(), 2, "{gone:?}");
    assert_eq!(gone[0]["deleted"], true, "deletion marker: {gone:?}");
    assert_eq!(gone[1]["deleted"], false, "{gone:?}");
    let old_ids: BTreeSet<u64> = before
        .values()
        .flat_map(|e| versions(e).iter().map(|v| v["id"].as_u64().unwrap()))
        .collect();

    // The latest state, and the state at a time between the two backups.
    let out = tempfile::tempdir().unwrap();
    let summary = restore(&agent, &root, &out.path().join("latest"), &[]);
    assert!(
        num(&summary, "chunks_fetched") >= 3,
        "big.txt is more than one chunk: {summary}"
    );
    let latest_dir = out.path().join("latest/docs");
    assert_tree(&latest_dir, &latest, Folders::Unrecorded, "latest state");
    restore(&agent, &root, &out.path().join("first"), &["--at", &at]);
    let first_dir = out.path().join("first/docs");
    assert_tree(&first_dir, &first, Folders::Unrecorded, "first state");
    // One old version by its id.
    let old_id = changed[1]["id"].as_u64().unwrap().to_string();
    let one = out.path().join("one");
    restore(
        &agent,
        &root.join("sub/changed.txt"),
        &one,
        &["--version", &old_id],
    );
    let Entry::File { sha256, .. } = &first.entries[Path::new("sub/changed.txt")] else {
        unreachable!()
    };
    assert_eq!(
        &sha256_hex(&std::fs::read(one.join("changed.txt")).unwrap()),
        sha256
    );

    // The same tree again at its old place (restored there, the empty folders made anew), backed
    // up by today's agent on top of the old versions.
    let out_place = agent.run([OsStr::new("restore"), root.as_os_str()]);
    assert_success(&out_place);
    recreate_folders(&root, &latest);
    assert_tree(&root, &latest, Folders::Recorded, "recreated tree");
    settle();
    let (code, summary, stderr) = agent.backup_any(&[&root]);
    assert_eq!(code, 0, "backup on top of old data: {summary} {stderr}");
    assert_eq!(summary["errors"], serde_json::json!([]), "{summary}");

    let after = list_by_path(&agent);
    let ids_after: BTreeSet<u64> = after
        .values()
        .flat_map(|e| versions(e).iter().map(|v| v["id"].as_u64().unwrap()))
        .collect();
    let lost: Vec<_> = old_ids.difference(&ids_after).collect();
    assert!(
        lost.is_empty(),
        "old versions gone after a new backup: {lost:?}"
    );
    // Folder entries, once today's agent records them and the server keeps them.
    let folder_versions = |p: &Path| {
        after.get(p).is_some_and(|e| {
            versions(e)
                .iter()
                .any(|v| v["kind"] == "dir" && v["deleted"] == false)
        })
    };
    let folders = if after
        .values()
        .any(|e| versions(e).iter().any(|v| v["kind"] == "dir"))
    {
        for (rel, e) in &latest.entries {
            if matches!(e, Entry::Dir { .. }) {
                assert!(
                    folder_versions(&root.join(rel)),
                    "no folder entry for {}",
                    rel.display()
                );
            }
        }
        Folders::Recorded
    } else {
        eprintln!("compat: no folder entries recorded (server or agent before folder support)");
        Folders::Unrecorded
    };

    // The old versions still restore, now beside the new ones.
    let again = tempfile::tempdir().unwrap();
    restore(&agent, &root, &again.path().join("first"), &["--at", &at]);
    assert_tree(
        &again.path().join("first/docs"),
        &first,
        Folders::Unrecorded,
        "first state after the new backup",
    );
    restore(&agent, &root, &again.path().join("latest"), &[]);
    assert_tree(
        &again.path().join("latest/docs"),
        &latest,
        folders,
        "latest state after the new backup",
    );
    assert_store_sound(&server, &agent, "after a backup on top of old data");

    // The upgraded data directory opens again.
    server.restart();
    let reopened: BTreeSet<u64> = list_by_path(&agent)
        .values()
        .flat_map(|e| versions(e).iter().map(|v| v["id"].as_u64().unwrap()))
        .collect();
    assert_eq!(reopened, ids_after, "versions after a restart");
}
