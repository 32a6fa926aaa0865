//! The local side of a test: trees written, timestamps set, and trees compared after a restore.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Every regular file below a folder: relative path → (content, mtime).
pub type Snapshot = BTreeMap<PathBuf, (Vec<u8>, SystemTime)>;

/// Sets a file's mtime to `secs` after the epoch.
pub fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// The files cache records no file changed less than 2 s before a run started; tests that rely on
/// the cache let a fresh tree settle first.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(2500));
}

/// Every regular file below `root` (links and other odd files left out).
pub fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file() {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    (std::fs::read(&p).unwrap(), md.modified().unwrap()),
                );
            }
        }
    }
    out
}

/// Asserts that `dir` holds exactly the files of `expected`, with the same contents and mtimes.
pub fn assert_same_tree(expected: &Snapshot, dir: &Path) {
    let got = snapshot(dir);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "restored file names differ"
    );
    for (p, (data, mtime)) in expected {
        let (gdata, gmtime) = &got[p];
        assert!(gdata == data, "content of {} differs", p.display());
        assert_eq!(gmtime, mtime, "mtime of {} differs", p.display());
    }
}

/// blake3 of a file, streamed (for files too big to hold).
pub fn file_hash(path: &Path) -> blake3::Hash {
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
