//! The pipeline against a fake server whose requests complete out of order.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use asgard_core::protocol::{
    ChunkRef, CommitOutcome, CommitResponse, CommitResult, FileMeta, UploadResponse,
};
use asgard_core::{ChunkParams, RawPath};

use super::*;

#[derive(Default)]
struct FakeState {
    have: HashSet<ChunkId>,
    committed: Vec<RawPath>,
    /// Every entry committed, in order.
    entries: Vec<CommitEntry>,
    /// The number of entries of each commit request.
    requests: Vec<usize>,
    uploads_now: usize,
    uploads_max: usize,
}

/// A server that answers after random delays, refuses a commit that references a chunk it does
/// not have (as the real one does), and can be told to fail the n-th upload.
struct Fake {
    state: Mutex<FakeState>,
    rng: Mutex<asgard_core::testdata::Rng>,
    fail_upload: Option<u64>,
    uploads: AtomicU64,
    /// Answer every entry as a metadata-only version of an existing path.
    meta_only: bool,
}

impl Fake {
    fn new(fail_upload: Option<u64>) -> Fake {
        Fake {
            state: Mutex::default(),
            rng: Mutex::new(asgard_core::testdata::Rng::new(0x9E37_79B9_7F4A_7C15)),
            fail_upload,
            uploads: AtomicU64::new(0),
            meta_only: false,
        }
    }

    fn delay(&self, max_ms: u64) -> Duration {
        let us = self.rng.lock().unwrap().range(0, max_ms * 1000);
        Duration::from_micros(us)
    }
}

impl Remote for Fake {
    async fn check(&self, ids: Vec<ChunkId>) -> anyhow::Result<Vec<ChunkId>> {
        tokio::time::sleep(self.delay(3)).await;
        let s = self.state.lock().unwrap();
        Ok(ids.into_iter().filter(|i| !s.have.contains(i)).collect())
    }

    async fn upload(&self, chunks: Vec<(ChunkId, Vec<u8>)>) -> anyhow::Result<UploadResponse> {
        let n = self.uploads.fetch_add(1, Ordering::Relaxed);
        {
            let mut s = self.state.lock().unwrap();
            s.uploads_now += 1;
            s.uploads_max = s.uploads_max.max(s.uploads_now);
        }
        tokio::time::sleep(self.delay(20)).await;
        let mut s = self.state.lock().unwrap();
        s.uploads_now -= 1;
        if self.fail_upload == Some(n) {
            anyhow::bail!("upload {n} failed");
        }
        let mut new_bytes = 0;
        for (id, stored) in &chunks {
            asgard_core::stored::decode_verified(stored, id, 1 << 20).unwrap();
            if s.have.insert(*id) {
                new_bytes += stored.len() as u64;
            }
        }
        Ok(UploadResponse {
            received: chunks.len() as u32,
            new_chunks: 0,
            new_bytes,
        })
    }

    async fn commit(&self, req: &CommitRequest) -> anyhow::Result<CommitResponse> {
        tokio::time::sleep(self.delay(5)).await;
        let mut s = self.state.lock().unwrap();
        for e in &req.entries {
            if let CommitEntry::File { meta, .. } = e
                && let Some(c) = meta.chunks.iter().find(|c| !s.have.contains(&c.id))
            {
                anyhow::bail!("commit references missing chunk {}", c.id.to_hex());
            }
        }
        let mut results = Vec::new();
        s.requests.push(req.entries.len());
        for e in &req.entries {
            s.committed.push(e.path().clone());
            s.entries.push(e.clone());
            results.push(CommitResult {
                meta_only: self.meta_only,
                outcome: if self.meta_only {
                    CommitOutcome::Changed
                } else {
                    CommitOutcome::New
                },
                version_id: Some(s.committed.len() as u64),
            });
        }
        Ok(CommitResponse {
            results,
            pruned_versions: 0,
        })
    }

    fn lang(&self) -> Lang {
        Lang::En
    }
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    // Every other file compresses well.
    if seed.is_multiple_of(2) {
        (0..len).map(|i| (i % 7) as u8).collect()
    } else {
        asgard_core::testdata::random_bytes(len, seed)
    }
}

/// Feeds `files` files (the i-th of `1 + i % 4` chunks, some shared between files) through the
/// budget into `tx`, as the reader does; returns how many entries it sent.
fn feed(files: u64, tx: mpsc::Sender<Item>, budget: MemoryBudget) -> u64 {
    let mut sent = HashSet::new();
    for f in 0..files {
        let mut chunks = Vec::new();
        for c in 0..(1 + f % 4) {
            // Chunk seeds repeat across files: dedupe within the run.
            let seed = (f * 3 + c) % 500;
            let data = bytes(1000 + (seed as usize * 7919) % 300_000, seed);
            let id = ChunkId::of(&data);
            chunks.push(ChunkRef {
                id,
                len: data.len() as u32,
            });
            if sent.insert(id) {
                let Some(permit) = budget.acquire(data.len()) else {
                    return f;
                };
                if tx.blocking_send(Item::Chunk { id, data, permit }).is_err() {
                    return f;
                }
            }
        }
        let entry = CommitEntry::File {
            path: RawPath::from(format!("/data/f{f}").as_str()),
            meta: FileMeta {
                size: chunks.iter().map(|c| u64::from(c.len)).sum(),
                mtime_ns: 1,
                mode: 0o644,
                attributes: 0,
                ext: Default::default(),
                hash: ChunkId::of(&f.to_le_bytes()),
                params: ChunkParams::default(),
                chunks,
            },
        };
        let Some(permit) = budget.acquire(entry_cost(&entry)) else {
            return f;
        };
        let item = Item::Entry {
            entry,
            note: None,
            permit,
            folder: false,
        };
        if tx.blocking_send(item).is_err() {
            return f;
        }
    }
    files
}

fn settings() -> Settings {
    Settings {
        level: 3,
        compress_jobs: 2,
        request_bytes: 400_000,
        uploads_in_flight: 3,
        checks_in_flight: 2,
    }
}

/// Requests finish out of order, yet every commit references only chunks the server has (the
/// fake refuses any other), every entry is committed once, and the budget (here smaller than
/// the data by far) is never exceeded and is all given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_uploads_commit_only_acknowledged_chunks_within_budget() {
    let fake = Fake::new(None);
    let budget = MemoryBudget::new(1 << 20);
    let (tx, rx) = mpsc::channel(ITEM_CHANNEL);
    let b = budget.clone();
    let reader = std::thread::spawn(move || feed(600, tx, b));
    let (stats, cache_error) = run(&fake, None, settings(), &budget, rx).await.unwrap();
    assert_eq!(reader.join().unwrap(), 600);
    assert_eq!(cache_error, None);
    assert_eq!(stats.files_new, 600);
    let s = fake.state.lock().unwrap();
    assert_eq!(s.committed.len(), 600);
    let distinct: HashSet<&RawPath> = s.committed.iter().collect();
    assert_eq!(distinct.len(), 600);
    assert!(s.uploads_max > 1, "uploads must overlap");
    assert_eq!(stats.chunks_uploaded as usize, s.have.len());
    assert!(budget.peak() <= budget.limit());
    assert_eq!(budget.used(), 0);
}

/// A budget smaller than one chunk still lets everything through (one item at a time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_budget_does_not_deadlock() {
    let fake = Fake::new(None);
    let budget = MemoryBudget::new(10_000);
    let (tx, rx) = mpsc::channel(ITEM_CHANNEL);
    let b = budget.clone();
    let reader = std::thread::spawn(move || feed(40, tx, b));
    let (stats, _) = run(&fake, None, settings(), &budget, rx).await.unwrap();
    assert_eq!(reader.join().unwrap(), 40);
    assert_eq!(stats.files_new, 40);
}

/// A failing upload ends the run with its error, and the reader (waiting for budget) stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upload_stops_the_run_and_the_reader() {
    let fake = Fake::new(Some(3));
    let budget = MemoryBudget::new(1 << 20);
    let (tx, rx) = mpsc::channel(ITEM_CHANNEL);
    let b = budget.clone();
    let reader = std::thread::spawn(move || feed(600, tx, b));
    let err = run(&fake, None, settings(), &budget, rx).await.unwrap_err();
    assert!(err.to_string().contains("upload 3 failed"), "{err}");
    let fed = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    assert!(fed < 600, "the reader must stop early");
    // Nothing committed references a chunk the server lacks (the fake would have refused it).
    assert!(fake.state.lock().unwrap().committed.len() < 600);
}

#[test]
fn watermark_waits_for_gaps() {
    let mut w = committer::Watermark::default();
    w.ack(1);
    w.ack(2);
    assert_eq!(w.done(), 0);
    w.ack(0);
    assert_eq!(w.done(), 3);
    w.ack(1);
    w.ack(4);
    assert_eq!(w.done(), 3);
    w.ack(3);
    assert_eq!(w.done(), 5);
}

/// A server whose commits are held until the test opens the gate.
struct GatedCommits {
    inner: Fake,
    gate: tokio::sync::Semaphore,
    commits_started: AtomicU64,
}

impl Remote for GatedCommits {
    async fn check(&self, ids: Vec<ChunkId>) -> anyhow::Result<Vec<ChunkId>> {
        self.inner.check(ids).await
    }

    async fn upload(&self, chunks: Vec<(ChunkId, Vec<u8>)>) -> anyhow::Result<UploadResponse> {
        self.inner.upload(chunks).await
    }

    async fn commit(&self, req: &CommitRequest) -> anyhow::Result<CommitResponse> {
        self.commits_started.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.unwrap().forget();
        self.inner.commit(req).await
    }

    fn lang(&self) -> Lang {
        Lang::En
    }
}

/// While commits wait for their answers, the committer keeps taking entries, so the stages before
/// it (and the reader) are not stalled; and it has at most `COMMITS_IN_FLIGHT` commits out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committer_keeps_taking_entries_while_commits_are_in_flight() {
    let remote = GatedCommits {
        inner: Fake::new(None),
        gate: tokio::sync::Semaphore::new(0),
        commits_started: AtomicU64::new(0),
    };
    // Entries of empty files: no chunks, so each is committable at once. Far more of them than
    // the channels between the reader and the committer hold.
    let files = 8 * committer::COMMIT_ENTRIES as u64;
    assert!(files > 4 * ITEM_CHANNEL as u64);
    let budget = MemoryBudget::new(64 << 20);
    let (tx, rx) = mpsc::channel(ITEM_CHANNEL);
    let b = budget.clone();
    let reader = std::thread::spawn(move || {
        for f in 0..files {
            let entry = CommitEntry::File {
                path: RawPath::from(format!("/data/empty{f}").as_str()),
                meta: FileMeta {
                    size: 0,
                    mtime_ns: 1,
                    mode: 0o644,
                    attributes: 0,
                    ext: Default::default(),
                    hash: ChunkId::of(b""),
                    params: ChunkParams::default(),
                    chunks: Vec::new(),
                },
            };
            let permit = b.acquire(entry_cost(&entry)).unwrap();
            let item = Item::Entry {
                entry,
                note: None,
                permit,
                folder: false,
            };
            tx.blocking_send(item).unwrap();
        }
    });
    let pipeline = run(&remote, None, settings(), &budget, rx);
    let check = async {
        // The reader gets rid of every entry although no commit has been answered yet.
        let joined = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || reader.join().unwrap()),
        )
        .await;
        assert!(
            joined.is_ok(),
            "the reader was stalled behind commits waiting for their answers"
        );
        let started = || remote.commits_started.load(Ordering::SeqCst);
        while started() < committer::COMMITS_IN_FLIGHT as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Every entry is waiting and committable, yet no further commit goes out.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(started(), committer::COMMITS_IN_FLIGHT as u64);
        remote.gate.add_permits(1 << 20);
    };
    let ((stats, _), ()) = tokio::join!(async { pipeline.await.unwrap() }, check);
    assert_eq!(stats.files_new, files);
    assert_eq!(
        remote.inner.state.lock().unwrap().committed.len() as u64,
        files
    );
    assert_eq!(budget.used(), 0);
}

/// One backup of `root` through the reader and the pipeline into `fake`, with the files cache;
/// returns the entries committed and what the scan saw. Everything is "settled" (the run starts
/// well after every change), so every committed entry is cached. (Its tests are Unix only.)
#[cfg(unix)]
async fn backup_with_cache(
    root: &std::path::Path,
    cache: &crate::cache::FilesCache,
    fake: &Fake,
) -> (Vec<CommitEntry>, ScanReport) {
    let before = fake.state.lock().unwrap().entries.len();
    let budget = MemoryBudget::new(8 << 20);
    let (tx, rx) = mpsc::channel(ITEM_CHANNEL);
    let start = crate::platform::system_time_to_ns(std::time::SystemTime::now()) + 10_000_000_000;
    let reader = Reader::new(
        tx,
        budget.clone(),
        Lang::En,
        start,
        Some(cache.reader().unwrap()),
        vec![root.to_owned()],
        crate::progress::Progress::hidden(),
    );
    let roots = vec![root.to_owned()];
    let scan = std::thread::spawn(move || {
        crate::scan::scan(&roots, &crate::scan::ScanRules::default(), &|e| {
            reader.on_event(e)
        });
        reader.into_report()
    });
    let (_, cache_error) = run(fake, Some(cache), settings(), &budget, rx)
        .await
        .unwrap();
    assert_eq!(cache_error, None);
    let report = tokio::task::spawn_blocking(move || scan.join().unwrap())
        .await
        .unwrap();
    let entries = fake.state.lock().unwrap().entries[before..].to_vec();
    (entries, report)
}

/// The paths of `entries` relative to `root` ("." for the root), sorted.
#[cfg(unix)]
fn rel(entries: &[CommitEntry], root: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = entries
        .iter()
        .map(|e| {
            let p = e.path().to_path_buf();
            let r = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if r.is_empty() { ".".to_owned() } else { r }
        })
        .collect();
    out.sort();
    out
}

/// Folders and links are sent with their metadata and then cached like files: an unchanged tree
/// sends nothing the second time; a chmod, a new extended attribute (each moves only the change
/// time) or a folder's new mode sends exactly that entry again; a second link of a file reuses
/// the first one's read.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_changes_are_sent_again_and_unchanged_entries_are_not() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("empty/nested")).unwrap();
    let f = root.join("sub/f.txt");
    std::fs::write(&f, b"the content of f").unwrap();
    std::os::unix::fs::symlink("sub/f.txt", root.join("link")).unwrap();
    let cache =
        crate::cache::FilesCache::open(&crate::cache::cache_path(dir.path(), "s", "u", "d"), false)
            .unwrap();
    let fake = Fake::new(None);

    let (first, report) = backup_with_cache(&root, &cache, &fake).await;
    assert_eq!(
        rel(&first, &root),
        [".", "empty", "empty/nested", "link", "sub", "sub/f.txt"]
    );
    assert_eq!((report.files_seen, report.dirs_seen), (2, 4));
    let owner = std::fs::metadata(&root).unwrap().uid();
    for e in &first {
        match e {
            CommitEntry::Dir {
                path,
                mode,
                meta,
                mtime_ns,
                ..
            } => {
                let m = std::fs::symlink_metadata(path.to_path_buf()).unwrap();
                assert_eq!(*mode, m.permissions().mode() & 0o7777);
                assert_eq!(*mtime_ns, crate::platform::mtime_ns(&m));
                assert_eq!(meta.uid, Some(owner));
            }
            CommitEntry::Symlink { meta, .. } => assert_eq!(meta.uid, Some(owner)),
            CommitEntry::File { meta, .. } => {
                assert_eq!(meta.ext.uid, Some(owner));
                assert_eq!(meta.ext.hardlink, None);
            }
            CommitEntry::Deleted { .. } => panic!("{e:?}"),
        }
    }

    // Nothing changed: nothing is sent, folders and links are cached too.
    let (second, report) = backup_with_cache(&root, &cache, &fake).await;
    assert_eq!(rel(&second, &root), Vec::<String>::new());
    assert_eq!((report.files_cached, report.dirs_cached), (2, 4));
    assert_eq!(report.bytes_read, 0);

    // chmod only: that file again, with its new mode (its folder did not change).
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (third, _) = backup_with_cache(&root, &cache, &fake).await;
    assert_eq!(rel(&third, &root), ["sub/f.txt"]);
    let CommitEntry::File { meta, .. } = &third[0] else {
        panic!("{third:?}");
    };
    assert_eq!(meta.mode, 0o600);

    // A new extended attribute only.
    #[cfg(target_os = "linux")]
    if rustix::fs::setxattr(&f, "user.note", b"hi", rustix::fs::XattrFlags::empty()).is_ok() {
        let (fourth, _) = backup_with_cache(&root, &cache, &fake).await;
        assert_eq!(rel(&fourth, &root), ["sub/f.txt"]);
        let CommitEntry::File { meta, .. } = &fourth[0] else {
            panic!("{fourth:?}");
        };
        assert_eq!(meta.ext.xattrs.len(), 1);
        assert_eq!(meta.ext.xattrs[0].name.0, b"user.note");
    }

    // A folder's mode only.
    let nested = root.join("empty/nested");
    std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o2750)).unwrap();
    let (fifth, _) = backup_with_cache(&root, &cache, &fake).await;
    assert_eq!(rel(&fifth, &root), ["empty/nested"]);
    assert!(
        matches!(fifth[0], CommitEntry::Dir { mode: 0o2750, .. }),
        "{fifth:?}"
    );

    // A second link to f: its folder (new entry), f (its link count moved its change time) and
    // the new link, one group; the content is read once.
    let g = root.join("sub/g.txt");
    std::fs::hard_link(&f, &g).unwrap();
    let (sixth, report) = backup_with_cache(&root, &cache, &fake).await;
    assert_eq!(rel(&sixth, &root), ["sub", "sub/f.txt", "sub/g.txt"]);
    let groups: Vec<Option<u64>> = sixth
        .iter()
        .filter_map(|e| match e {
            CommitEntry::File { meta, .. } => Some(meta.ext.hardlink),
            _ => None,
        })
        .collect();
    assert_eq!(groups.len(), 2);
    assert!(groups[0].is_some() && groups[0] == groups[1], "{groups:?}");
    assert_eq!(report.links_reused, 1);
    assert_eq!(report.bytes_read, b"the content of f".len() as u64);
}

/// A file with more extended attributes than the bound is backed up without them, with one
/// warning (the run does not fail on it).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_xattrs_are_left_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let f = root.join("many.txt");
    std::fs::write(&f, b"x").unwrap();
    for i in 0..=asgard_core::meta::MAX_XATTRS {
        let name = format!("user.n{i:03}");
        if rustix::fs::setxattr(&f, &name, b"v", rustix::fs::XattrFlags::empty()).is_err() {
            return; // no user attributes here
        }
    }
    let cache =
        crate::cache::FilesCache::open(&crate::cache::cache_path(dir.path(), "s", "u", "d"), false)
            .unwrap();
    let fake = Fake::new(None);
    let (entries, report) = backup_with_cache(&root, &cache, &fake).await;
    assert_eq!(rel(&entries, &root), [".", "many.txt"]);
    let file = entries.iter().find_map(|e| match e {
        CommitEntry::File { meta, .. } => Some(meta),
        _ => None,
    });
    let file = file.unwrap();
    assert!(file.ext.xattrs.is_empty());
    assert!(file.ext.uid.is_some(), "the rest of the metadata is kept");
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("Extended attributes not backed up (more than 64 attributes)"),
        "{:?}",
        report.warnings
    );
    assert!(report.unreadable.is_empty());
}

/// Entries with many extended attributes go in several commit requests of bounded size (each
/// entry here costs about 1.2 MiB: 13 fit in one request of at most 16 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_requests_are_bounded_in_bytes() {
    use asgard_core::meta::{Blob, EntryMeta, MAX_XATTR_VALUE, Xattr};
    let fake = Fake::new(None);
    let budget = MemoryBudget::new(256 << 20);
    let (tx, rx) = mpsc::channel(ITEM_CHANNEL);
    let meta = EntryMeta {
        xattrs: (0..9)
            .map(|i| Xattr {
                name: Blob(format!("user.{i}").into_bytes()),
                value: Blob(vec![7; MAX_XATTR_VALUE]),
            })
            .collect(),
        ..EntryMeta::default()
    };
    let b = budget.clone();
    let reader = std::thread::spawn(move || {
        for i in 0..40 {
            let entry = CommitEntry::Dir {
                path: RawPath::from(format!("/data/d{i}").as_str()),
                mtime_ns: 1,
                mode: 0o755,
                attributes: 0,
                meta: meta.clone(),
            };
            let cost = entry_cost(&entry);
            assert!(cost > 2 * 9 * MAX_XATTR_VALUE, "{cost}");
            let permit = b.acquire(cost).unwrap();
            let item = Item::Entry {
                entry,
                note: None,
                permit,
                folder: true,
            };
            tx.blocking_send(item).unwrap();
        }
    });
    let (stats, _) = run(&fake, None, settings(), &budget, rx).await.unwrap();
    reader.join().unwrap();
    assert_eq!(stats.dirs_stored, 40);
    assert_eq!(stats.files_new, 0, "folders are not files");
    let s = fake.state.lock().unwrap();
    assert_eq!(s.entries.len(), 40);
    let per_request = (committer::COMMIT_BYTES / entry_cost(&s.entries[0])).max(1);
    assert!(
        s.requests.iter().all(|&n| n <= per_request),
        "{:?} (at most {per_request})",
        s.requests
    );
    assert!(s.requests.len() >= 40 / per_request);
}

/// A version that changed only metadata (a chmod, a touch with the same content) counts as
/// unchanged content and as metadata-only, not as a changed file or a created content version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_versions_are_counted_apart() {
    let mut fake = Fake::new(None);
    fake.meta_only = true;
    let budget = MemoryBudget::new(8 << 20);
    let (tx, rx) = mpsc::channel(ITEM_CHANNEL);
    let b = budget.clone();
    let reader = std::thread::spawn(move || feed(5, tx, b));
    let (stats, _) = run(&fake, None, settings(), &budget, rx).await.unwrap();
    assert_eq!(reader.join().unwrap(), 5);
    assert_eq!(
        (stats.files_unchanged, stats.files_meta_only),
        (5, 5),
        "{stats:?}"
    );
    assert_eq!(
        (stats.files_changed, stats.files_new, stats.versions_created),
        (0, 0, 0)
    );
}

/// Regression: a reader that skipped a chunk because another reader had claimed it queued its own
/// entry at once, while the other reader still waited for budget to queue the chunk; the entry
/// overtook the chunk in the channel, was committed before the server had the chunk, and the
/// server's refusal (`missing_chunks`) failed the run. Forced here: the first reader claims the
/// shared chunk and blocks on a budget the test holds (room for an entry, not for the chunk);
/// the budget is only given back once the second reader waits for that chunk, or (the bug) once a
/// commit went out. The fake refuses any commit naming a chunk it lacks, as the real server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_never_overtakes_a_chunk_that_another_reader_is_still_queuing() {
    let dir = tempfile::tempdir().unwrap();
    // Two files of one chunk each (below the chunker's minimum), with the same content.
    let data = asgard_core::testdata::random_bytes(20_000, 11);
    let shared = ChunkId::of(&data);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    std::fs::write(&one, &data).unwrap();
    std::fs::write(&two, &data).unwrap();
    let file = |path: &std::path::Path| crate::scan::ScanEvent::File {
        path: path.to_owned(),
        meta: std::fs::symlink_metadata(path).unwrap(),
    };

    let remote = std::sync::Arc::new(GatedCommits {
        inner: Fake::new(None),
        gate: tokio::sync::Semaphore::new(tokio::sync::Semaphore::MAX_PERMITS),
        commits_started: AtomicU64::new(0),
    });
    let budget = MemoryBudget::new(1 << 20);
    let held = budget.acquire(budget.limit() - 16_000).unwrap();
    let (tx, rx) = mpsc::channel(ITEM_CHANNEL);
    let reader = Reader::new(
        tx,
        budget.clone(),
        Lang::En,
        0,
        None,
        Vec::new(),
        crate::progress::Progress::hidden(),
    );
    let r = remote.clone();
    let readers = tokio::task::spawn_blocking(move || {
        let wait_for = |what: &dyn Fn() -> bool| {
            // Polls a condition; no fixed sleep stands in for one.
            while !what() {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let sent = reader.sent_chunks();
        std::thread::scope(|s| {
            let first = s.spawn(|| reader.on_event(file(&one)));
            // The first reader met the chunk; it cannot queue it while the test holds the budget.
            wait_for(&|| sent.met(&shared));
            let second = s.spawn(|| reader.on_event(file(&two)));
            wait_for(&|| sent.waiting() > 0 || r.commits_started.load(Ordering::SeqCst) > 0);
            drop(held);
            assert!(first.join().unwrap() && second.join().unwrap());
        });
        // Dropping the reader closes the pipeline's input.
        reader.into_report()
    });
    let result = run(&*remote, None, settings(), &budget, rx).await;
    let report = readers.await.unwrap();
    let (stats, _) = result.unwrap();
    assert_eq!(report.files_seen, 2);
    assert_eq!(stats.files_new, 2);
    assert_eq!(
        stats.chunks_uploaded, 1,
        "the shared chunk is uploaded once"
    );
    assert_eq!(budget.used(), 0);
}
