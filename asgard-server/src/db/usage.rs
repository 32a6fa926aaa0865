//! The figures per user of the admin console's users page: retained versions, logical bytes and
//! the stored bytes that only this user holds, from one read transaction.
//!
//! ## Unique stored bytes, with bounded memory
//! A chunk is *unique* to a user when it is referenced (refcount > 0) and no other user owns it
//! in [`USER_CHUNKS`]. Ownership is a superset of reference: `commit` accepts a reference only to
//! a chunk the user owns, and ownership rows go only when GC removes the chunk. So a unique chunk
//! is referenced by this user's versions alone, and deleting the user frees it. (A chunk that
//! another user once uploaded but no longer references counts as shared: the figure is a lower
//! bound of what a deletion frees, never more.)
//!
//! [`USER_CHUNKS`] is keyed by (user, chunk), so each user's rows come sorted by chunk id. A
//! k-way merge over one range per user visits every chunk id once with the set of its owners:
//! memory is one cursor per user (users are few, as the GC assumes too), never one entry per
//! chunk. Versions are summed per user in one pass over [`VERSIONS`] (their leading fields only).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use redb::ReadableTable;
use serde::Deserialize;

use super::{CHUNKS, ChunkRec, Db, Result, USER_CHUNKS, USERS, UserRec, VERSIONS, dec};

/// One user's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserUsage {
    pub versions: u64,
    pub logical_bytes: u64,
    pub unique_stored_bytes: u64,
}

/// The leading fields of a version record (as `stats.rs` reads them).
#[derive(Deserialize)]
struct VersionHead<'a> {
    user_id: u64,
    _device_id: u64,
    #[serde(borrow)]
    _path: &'a [u8],
    _time_us: i64,
    _deleted: bool,
    size: u64,
}

impl Db {
    /// Every user's figures by user id (users without any are absent).
    pub fn user_usage(&self) -> Result<HashMap<u64, UserUsage>> {
        let txn = self.read()?;
        let mut out: HashMap<u64, UserUsage> = HashMap::new();
        for row in txn.open_table(VERSIONS)?.iter()? {
            let (_, v) = row?;
            let (head, _) = postcard::take_from_bytes::<VersionHead>(v.value())?;
            let u = out.entry(head.user_id).or_default();
            u.versions += 1;
            u.logical_bytes += head.size;
        }
        let mut user_ids = Vec::new();
        for row in txn.open_table(USERS)?.iter()? {
            user_ids.push(dec::<UserRec>(row?.1.value())?.id);
        }
        let owned = txn.open_table(USER_CHUNKS)?;
        let chunks = txn.open_table(CHUNKS)?;
        let mut cursors = Vec::with_capacity(user_ids.len());
        // The heap holds each cursor's next chunk id; the smallest comes first.
        let mut heap = BinaryHeap::new();
        for &uid in &user_ids {
            let mut range = owned.range((uid, &[0u8; 32])..=(uid, &[0xffu8; 32]))?;
            if let Some(row) = range.next() {
                heap.push(Reverse((row?.0.value().1.to_owned(), cursors.len())));
            }
            cursors.push((uid, range));
        }
        while let Some(Reverse((chunk, first))) = heap.pop() {
            let mut owners = 1usize;
            let mut advance = vec![first];
            while heap.peek().is_some_and(|Reverse((c, _))| *c == chunk) {
                let Some(Reverse((_, i))) = heap.pop() else {
                    break;
                };
                owners += 1;
                advance.push(i);
            }
            if owners == 1
                && let Some(rec) = chunks.get(&chunk)?
            {
                let rec: ChunkRec = dec(rec.value())?;
                if rec.refcount > 0 {
                    let uid = cursors[first].0;
                    out.entry(uid).or_default().unique_stored_bytes += rec.stored_len;
                }
            }
            for i in advance {
                if let Some(row) = cursors[i].1.next() {
                    heap.push(Reverse((row?.0.value().1.to_owned(), i)));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{commit, file, open_db, register, upload};

    #[test]
    fn unique_bytes_count_only_chunks_nobody_else_holds() {
        let (_d, db) = open_db();
        let (_, anna) = register(&db, "anna", "pc");
        let (_, anna2) = register(&db, "anna", "laptop");
        let (_, bert) = register(&db, "bert", "pc");
        let (_, carl) = register(&db, "carl", "pc");
        // The upload helper stores each chunk as its length + 1.
        upload(&db, &anna, &[b"shared", b"anna-only", b"anna-two"]);
        upload(&db, &bert, &[b"shared", b"bert!"]);
        commit(&db, &anna, &[file("/a", &[b"shared", b"anna-only"])], 4);
        // The same chunk twice and from two devices counts once.
        commit(
            &db,
            &anna2,
            &[file("/b", &[b"anna-only", b"anna-only", b"anna-two"])],
            4,
        );
        commit(&db, &bert, &[file("/c", &[b"shared", b"bert!"])], 4);
        // Uploaded but never referenced: stored, not unique to anybody.
        upload(&db, &carl, &[b"carl-unused"]);

        let u = db.user_usage().unwrap();
        let a = u[&anna.user_id];
        assert_eq!(a.versions, 2);
        assert_eq!(a.logical_bytes, (6 + 9) + (9 + 9 + 8));
        assert_eq!(a.unique_stored_bytes, 10 + 9, "anna-only + anna-two");
        let b = u[&bert.user_id];
        assert_eq!(
            (b.versions, b.logical_bytes, b.unique_stored_bytes),
            (1, 11, 6)
        );
        assert_eq!(
            u.get(&carl.user_id)
                .copied()
                .unwrap_or_default()
                .unique_stored_bytes,
            0
        );
    }
}
