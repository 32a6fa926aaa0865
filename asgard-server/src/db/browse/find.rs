//! The bounded walks over every path of a user: search by name and the files deleted since a
//! date. Both read keys in order, device by device, and stop at a hit limit, an entry budget or
//! a deadline, saying so: a user with millions of paths gets a partial answer in bounded time,
//! never a hanging page.

use std::time::Instant;

use asgard_core::RawPath;

use super::VersionSummary;
use crate::db::{DEVICES, Db, PATHS, PathRec, RecKind, Result, VERSIONS, VersionRec, dec};

/// A path found by [`Db::search`] or [`Db::deleted_since`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub device: String,
    pub path: RawPath,
    /// Search: the newest version (a deletion marker if the path is gone now). Deleted files:
    /// the deletion marker.
    pub newest: VersionSummary,
    /// Deleted files: the last version before the deletion (`None` if retention dropped it).
    pub last_live: Option<VersionSummary>,
}

/// What a bounded scan found, and whether it stopped before looking at everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    pub hits: Vec<Found>,
    /// The hit limit, the entry budget or the deadline ended the scan early: there may be more.
    pub stopped_early: bool,
}

/// The bounds of [`Db::search`] and [`Db::deleted_since`].
#[derive(Debug, Clone, Copy)]
pub struct ScanBounds {
    /// Most hits returned.
    pub hits: usize,
    /// Most paths looked at.
    pub entries: usize,
    /// The scan stops at this moment.
    pub deadline: Option<Instant>,
}

impl Db {
    /// Paths of all the user's devices whose last component contains `query` (case-insensitive,
    /// on the name as text with invalid bytes replaced), with their newest version; bounded.
    pub fn search(&self, user: u64, query: &str, bounds: ScanBounds) -> Result<Findings> {
        let needle = query.to_lowercase();
        let by_name = |key: &[u8]| {
            let name = key
                .rsplit(|&c| c == b'/' || c == b'\\')
                .next()
                .unwrap_or(key);
            !name.is_empty()
                && String::from_utf8_lossy(name)
                    .to_lowercase()
                    .contains(&needle)
        };
        self.scan_user(user, bounds, by_name, |_| true)
    }

    /// Files and links of all the user's devices whose newest version is a deletion marker
    /// committed at or after `since_us`, with the last version before it; bounded.
    pub fn deleted_since(&self, user: u64, since_us: i64, bounds: ScanBounds) -> Result<Findings> {
        self.scan_user(
            user,
            bounds,
            |_| true,
            |newest| newest.deleted && newest.time_us >= since_us && newest.kind != RecKind::Dir,
        )
    }

    /// The bounded walk of search and deleted files over every path of the user's devices:
    /// `by_key` filters on the path bytes alone, `by_version` on the newest version.
    fn scan_user(
        &self,
        user: u64,
        bounds: ScanBounds,
        by_key: impl Fn(&[u8]) -> bool,
        by_version: impl Fn(&VersionSummary) -> bool,
    ) -> Result<Findings> {
        let txn = self.read()?;
        let devices = crate::db::user_devices(&txn.open_table(DEVICES)?, user)?;
        let paths = txn.open_table(PATHS)?;
        let versions = txn.open_table(VERSIONS)?;
        let mut hits = Vec::new();
        let mut seen = 0usize;
        let mut devices: Vec<(u64, String)> = devices.into_iter().map(|(n, d)| (d.id, n)).collect();
        devices.sort();
        for (device, name) in devices {
            let range = paths
                .range::<(u64, u64, &[u8])>((user, device, &[][..])..(user, device + 1, &[][..]))?;
            for row in range {
                if seen == bounds.entries
                    || hits.len() == bounds.hits
                    || bounds.deadline.is_some_and(|d| Instant::now() >= d)
                {
                    return Ok(Findings {
                        hits,
                        stopped_early: true,
                    });
                }
                seen += 1;
                let (k, v) = row?;
                let key = k.value().2;
                if !by_key(key) {
                    continue;
                }
                let prec: PathRec = dec(v.value())?;
                let all = prec
                    .versions
                    .iter()
                    .rev()
                    .filter_map(|&id| match versions.get(id) {
                        Ok(Some(g)) => {
                            Some(VersionRec::decode(g.value()).map(|r| VersionSummary::of(id, &r)))
                        }
                        Ok(None) => None,
                        Err(e) => Some(Err(e.into())),
                    });
                let mut newest = None;
                let mut last_live = None;
                for s in all {
                    let s = s?;
                    if newest.is_none() {
                        if !by_version(&s) {
                            break;
                        }
                        let live = !s.deleted;
                        newest = Some(s);
                        if live {
                            break;
                        }
                    } else if !s.deleted {
                        last_live = Some(s);
                        break;
                    }
                }
                if let Some(newest) = newest {
                    hits.push(Found {
                        device: name.clone(),
                        path: RawPath(key.to_vec()),
                        newest,
                        last_live,
                    });
                }
            }
        }
        Ok(Findings {
            hits,
            stopped_early: false,
        })
    }
}
