//! The installation's id secret: 32 random bytes that key the opaque ids the API hands out
//! (`crate::api::ids`). Version, run and device ids count across all users inside the database;
//! keyed by this secret (and by the user), the ids a user sees tell nothing about the others.
//!
//! The secret lives in [`META`] as four little-endian words ([`ID_SECRET_KEYS`]), so it is in
//! every `db-backup` copy and a restored copy hands out the same ids. The first [`Db::open`] of a
//! database without one (a new data dir, or one written before opaque ids) creates it in the
//! same write transaction that creates the tables. Losing it changes every opaque id once
//! (agents list again; nothing stored depends on them), so it is never rotated on purpose.

use redb::{ReadableTable, Table, WriteTransaction};

use super::{DbError, META, Result};

/// [`META`] keys of the id secret's four 8-byte words, in order.
pub(super) const ID_SECRET_KEYS: [&str; 4] =
    ["id_secret_0", "id_secret_1", "id_secret_2", "id_secret_3"];

/// The id secret of the database, created (from the operating system's random source) when the
/// database has none yet. A database holding only some of the words is damaged: refused.
pub(super) fn ensure(txn: &WriteTransaction) -> Result<[u8; 32]> {
    let mut meta = txn.open_table(META)?;
    if let Some(secret) = read(&meta)? {
        return Ok(secret);
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("operating system random source");
    for (key, word) in ID_SECRET_KEYS.iter().zip(secret.chunks_exact(8)) {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        meta.insert(*key, word)?;
    }
    Ok(secret)
}

/// The stored secret: `None` when none of its words is stored.
fn read(meta: &Table<&str, u64>) -> Result<Option<[u8; 32]>> {
    let mut words = Vec::with_capacity(ID_SECRET_KEYS.len());
    for key in ID_SECRET_KEYS {
        words.push(meta.get(key)?.map(|g| g.value()));
    }
    if words.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut secret = [0u8; 32];
    for (word, out) in words.into_iter().zip(secret.chunks_exact_mut(8)) {
        let word = word.ok_or_else(|| DbError::Schema("id secret incomplete".into()))?;
        out.copy_from_slice(&word.to_le_bytes());
    }
    Ok(Some(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn created_once_and_kept_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("asgard.redb");
        let first = Db::open(&path).unwrap().id_secret();
        assert_ne!(first, [0u8; 32]);
        let again = Db::open(&path).unwrap().id_secret();
        assert_eq!(first, again);
        let other = Db::open(&dir.path().join("other.redb"))
            .unwrap()
            .id_secret();
        assert_ne!(first, other, "each installation draws its own secret");
    }

    #[test]
    fn a_database_written_before_gets_one_and_a_partial_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("asgard.redb");
        // A database of an older server: the tables, no id secret.
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("next_user_id", 3)
                .unwrap();
            txn.commit().unwrap();
        }
        let secret = Db::open(&path).unwrap().id_secret();
        assert_ne!(secret, [0u8; 32]);
        // One word lost: refused rather than silently replaced (every id would change).
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .remove(ID_SECRET_KEYS[2])
                .unwrap();
            txn.commit().unwrap();
        }
        assert!(matches!(Db::open(&path), Err(DbError::Schema(_))));
    }
}
