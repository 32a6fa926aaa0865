//! Opaque ids: what the API shows of version, run and device ids.
//!
//! Inside the database these ids count across all users, so a user who saw them plainly would
//! learn how busy the others are (two backups a day apart, ids 1,000 apart). At the API boundary
//! every such id goes through a keyed permutation ([`Perm`]) whose key is the installation's
//! secret (`db/idsecret.rs`), the kind of id and the user: the same row has different ids for
//! different users (not that any other user could read it), and a user's own ids look random, so
//! neither their size nor their gaps say anything. Decoding is the inverse permutation: an id
//! that was not handed out decodes to some internal id, which is either missing or another
//! user's, and both answer as "not found".
//!
//! The permutation is a balanced Feistel network on the low 52 bits with [`ROUNDS`] rounds, each
//! round function a keyed blake3 of the round, the id's top 12 bits and one half. The top 12 bits
//! pass through (they only tweak the rounds), so an id below 2^52 stays below 2^52: every opaque
//! id the API hands out is exactly representable as a JSON number in tools that read numbers as
//! doubles (JavaScript, older `jq`). A Feistel network is a bijection whatever its round
//! function, so no two rows ever share an opaque id; with a pseudo-random round function and
//! this many rounds it is a pseudo-random permutation for far more ids than a user ever sees.
//! The wire format stays a `u64`, so agents of every version work unchanged.

use crate::db::Db;

/// The kinds of ids, each with its own permutation (the same internal number of a version and
/// a run maps to unrelated opaque ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Version,
    Run,
    /// Only inside the `list` cursor.
    Device,
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Kind::Version => 1,
            Kind::Run => 2,
            Kind::Device => 3,
        }
    }
}

/// Rounds of the Feistel network (four already give a pseudo-random permutation; the rest is
/// margin for 26-bit halves, at a few microseconds per id).
const ROUNDS: u8 = 8;
const HALF_BITS: u32 = 26;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
const LOW_BITS: u32 = 2 * HALF_BITS;

/// The permutation of one kind of id for one user.
#[derive(Clone)]
pub(crate) struct Perm {
    /// blake3 key derived from the installation's secret, the kind and the user.
    key: [u8; 32],
}

impl Perm {
    pub(crate) fn new(secret: &[u8; 32], kind: Kind, user_id: u64) -> Perm {
        let mut h = blake3::Hasher::new_keyed(secret);
        h.update(b"asgard opaque id v1");
        h.update(&[kind.tag()]);
        h.update(&user_id.to_le_bytes());
        Perm {
            key: *h.finalize().as_bytes(),
        }
    }

    /// The permutation of `kind` ids of `user_id` under the secret of `db`.
    pub(crate) fn of(db: &Db, kind: Kind, user_id: u64) -> Perm {
        Perm::new(&db.id_secret(), kind, user_id)
    }

    fn round(&self, round: u8, high: u64, half: u64) -> u64 {
        let mut input = [0u8; 17];
        input[0] = round;
        input[1..9].copy_from_slice(&high.to_le_bytes());
        input[9..17].copy_from_slice(&half.to_le_bytes());
        let out = blake3::keyed_hash(&self.key, &input);
        let word = u64::from_le_bytes(out.as_bytes()[..8].try_into().expect("8 bytes"));
        word & HALF_MASK
    }

    /// The opaque id the API shows for the internal id `id`.
    pub(crate) fn encode(&self, id: u64) -> u64 {
        let high = id >> LOW_BITS;
        let (mut left, mut right) = ((id >> HALF_BITS) & HALF_MASK, id & HALF_MASK);
        for r in 0..ROUNDS {
            (left, right) = (right, left ^ self.round(r, high, right));
        }
        (high << LOW_BITS) | (left << HALF_BITS) | right
    }

    /// The internal id behind an opaque id (the inverse of [`Perm::encode`]); any `u64` decodes
    /// to some internal id, which the caller then looks up as the user's.
    pub(crate) fn decode(&self, opaque: u64) -> u64 {
        let high = opaque >> LOW_BITS;
        let (mut left, mut right) = ((opaque >> HALF_BITS) & HALF_MASK, opaque & HALF_MASK);
        for r in (0..ROUNDS).rev() {
            (left, right) = (right ^ self.round(r, high, left), left);
        }
        (high << LOW_BITS) | (left << HALF_BITS) | right
    }
}

/// The cursor text of `list` with its device id made opaque: the database's cursor is hex of the
/// device id (8 bytes, big endian) and the path; the API's is the same with [`Kind::Device`].
pub(crate) fn cursor_out(perm: &Perm, db_cursor: &str) -> Option<String> {
    let (device, path) = crate::db::decode_cursor(db_cursor)?;
    Some(crate::db::encode_cursor(perm.encode(device), &path))
}

/// The database's cursor behind an API cursor (`None` when it is not a cursor at all).
pub(crate) fn cursor_in(perm: &Perm, api_cursor: &str) -> Option<(u64, Vec<u8>)> {
    let (device, path) = crate::db::decode_cursor(api_cursor)?;
    Some((perm.decode(device), path))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    proptest! {
        #[test]
        fn decode_inverts_encode(
            secret in any::<[u8; 32]>(),
            user in any::<u64>(),
            id in any::<u64>(),
        ) {
            let p = Perm::new(&secret, Kind::Version, user);
            prop_assert_eq!(p.decode(p.encode(id)), id);
            prop_assert_eq!(p.encode(p.decode(id)), id);
        }

        #[test]
        fn ids_below_2_pow_52_stay_there(user in any::<u64>(), id in 0u64..(1 << 52)) {
            let p = Perm::new(&SECRET, Kind::Run, user);
            prop_assert!(p.encode(id) < 1 << 52);
        }

        #[test]
        fn users_and_kinds_get_different_ids(user in 0u64..u64::MAX, id in 1u64..(1 << 40)) {
            let mine = Perm::new(&SECRET, Kind::Version, user);
            let theirs = Perm::new(&SECRET, Kind::Version, user + 1);
            let runs = Perm::new(&SECRET, Kind::Run, user);
            // Equal by chance with probability 2^-52 each.
            prop_assert_ne!(mine.encode(id), theirs.encode(id));
            prop_assert_ne!(mine.encode(id), runs.encode(id));
        }
    }

    /// A bijection on a whole block of outputs: the first 100,000 ids map to distinct values and
    /// each comes back.
    #[test]
    fn sequential_ids_are_distinct_and_invertible() {
        let p = Perm::new(&SECRET, Kind::Version, 1);
        let mut seen = HashSet::new();
        for id in 1..=100_000u64 {
            let o = p.encode(id);
            assert!(seen.insert(o), "id {id} collides");
            assert_eq!(p.decode(o), id);
        }
    }

    /// Sequential ids look random: neither ordered nor close together.
    #[test]
    fn sequential_ids_look_random() {
        let p = Perm::new(&SECRET, Kind::Version, 1);
        let ids: Vec<u64> = (1..=1000u64).map(|id| p.encode(id)).collect();
        let rising = ids.windows(2).filter(|w| w[1] > w[0]).count();
        assert!(
            (350..=650).contains(&rising),
            "{rising} of 999 steps rise: the order shows through"
        );
        let small = ids.iter().filter(|&&o| o < 1 << 40).count();
        assert!(small < 10, "{small} of 1000 opaque ids are below 2^40");
        let near = ids
            .windows(2)
            .filter(|w| w[0].abs_diff(w[1]) < 1 << 30)
            .count();
        assert!(near < 10, "{near} neighbours stay close");
    }

    #[test]
    fn another_secret_gives_other_ids() {
        let a = Perm::new(&SECRET, Kind::Version, 1);
        let b = Perm::new(&[8; 32], Kind::Version, 1);
        let same = (1..=1000u64)
            .filter(|&id| a.encode(id) == b.encode(id))
            .count();
        assert_eq!(same, 0);
    }

    #[test]
    fn cursor_round_trip_hides_the_device_id() {
        let p = Perm::new(&SECRET, Kind::Device, 9);
        let db = crate::db::encode_cursor(3, b"/home/a");
        let api = cursor_out(&p, &db).unwrap();
        assert_ne!(api, db);
        assert_eq!(cursor_in(&p, &api), Some((3, b"/home/a".to_vec())));
        assert!(cursor_in(&p, "zz").is_none());
        assert!(cursor_in(&p, "0102").is_none());
    }
}
