//! The reads behind the user's file browser (issue 14): a folder's direct children at a point
//! in time, paged; a search by name across the user's devices; the files deleted since a date;
//! the timeline of one path. Every read takes the user id of the session and reaches only that
//! user's keys of [`PATHS`]: another user's device name is simply an unknown device here.
//!
//! **Children without walking the subtree.** [`PATHS`] is ordered by (user, device, path bytes),
//! so a folder's descendants are one key range. The direct children of the folder with prefix
//! `P` (the folder's path and its separator) are found by walking that range and, at the first
//! key of a child's own subtree `P + name + sep`, seeking to `P + name + (sep + 1)`: no key lies
//! between the separator and the next byte value, so this skips exactly the subtree. A folder of
//! 100,000 files costs one key per file; a folder whose subfolders hold millions costs one seek
//! per subfolder.
//!
//! **Folders first.** A page lists folders before files, in two phases over the same range: the
//! folder phase visits the first key of each subtree (a folder with contents), the file phase
//! the folder's own entries (files, links, and empty folders, which have no subtree and are
//! listed with the files). The cursor is the phase and the key to resume from, so a page costs
//! its entries plus the keys skipped to reach them, never the pages before it.
//!
//! **Point in time.** The same rule as `list` and `restore --at`: a path's state at `at_us` is
//! its newest version committed at or before it; a deletion marker there means "not there". A
//! folder with its own versions (protocol 2) is there when its own state is a live folder; a
//! folder known only from the paths below it (an ancestor of a backup root, or a protocol-1
//! backup) is there when one of its first [`IMPLICIT_PROBE`] descendants is, and when that
//! probe runs out without an answer it is shown rather than hidden (an empty folder is a lesser
//! evil than a missing one).

use std::ops::Bound;

use asgard_core::RawPath;
use redb::ReadOnlyTable;

use super::{DEVICES, Db, DbError, PATHS, PathRec, RecKind, Result, VERSIONS, VersionRec, dec};

mod find;
#[cfg(test)]
mod tests;

pub use find::{Findings, Found, ScanBounds};

/// Descendants looked at to decide whether a folder without versions of its own was there.
pub const IMPLICIT_PROBE: usize = 1000;

/// One version of a path as the browser shows it (no chunk list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    pub id: u64,
    /// Server time of the commit (µs).
    pub time_us: i64,
    pub size: u64,
    pub mtime_ns: i64,
    /// File, link or folder (for a deletion marker: what was deleted).
    pub kind: RecKind,
    pub deleted: bool,
    /// The version changed only metadata, not the content.
    pub meta_only: bool,
}

impl VersionSummary {
    fn of(id: u64, rec: &VersionRec) -> VersionSummary {
        VersionSummary {
            id,
            time_us: rec.time_us,
            size: rec.size,
            mtime_ns: rec.mtime_ns,
            kind: if rec.symlink_target.is_some() {
                RecKind::Symlink
            } else {
                rec.kind()
            },
            deleted: rec.deleted,
            meta_only: rec.meta_only(),
        }
    }

    /// A live file with content (downloadable).
    pub fn is_file(&self) -> bool {
        !self.deleted && self.kind == RecKind::File
    }
}

/// A direct child of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// The last component, raw bytes.
    pub name: Vec<u8>,
    pub path: RawPath,
    /// A folder (with contents, or an empty one with a folder version).
    pub folder: bool,
    /// Its state at the time asked for; `None` for a folder known only from its contents.
    pub version: Option<VersionSummary>,
}

/// One page of [`Db::children`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildPage {
    /// The folder listed (for the device's top level: `/` or the empty path of drive letters).
    pub folder: RawPath,
    pub entries: Vec<Child>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

/// Where a page of children starts: the phase and the key to go on from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    /// The folder phase (else the file phase).
    folders: bool,
    key: Vec<u8>,
    /// Start at `key` itself (else after it).
    inclusive: bool,
}

impl Cursor {
    fn encode(&self) -> String {
        format!(
            "{}{}{}",
            if self.folders { 'd' } else { 'f' },
            if self.inclusive { 'i' } else { 'x' },
            asgard_core::id::to_hex(&self.key)
        )
    }

    fn decode(text: &str) -> Option<Cursor> {
        let (phase, rest) = text.split_at_checked(1)?;
        let (incl, hex) = rest.split_at_checked(1)?;
        Some(Cursor {
            folders: match phase {
                "d" => true,
                "f" => false,
                _ => return None,
            },
            inclusive: match incl {
                "i" => true,
                "x" => false,
                _ => return None,
            },
            key: asgard_core::id::from_hex(hex)?,
        })
    }
}

type Paths = ReadOnlyTable<(u64, u64, &'static [u8]), &'static [u8]>;
type Versions = ReadOnlyTable<u64, &'static [u8]>;

/// The folder's key prefix and separator: a Windows path (`C:\…`) uses `\`, any other `/`.
fn prefix_of(folder: &[u8]) -> (Vec<u8>, u8) {
    let sep = if RawPath(folder.to_vec()).is_windows() {
        b'\\'
    } else {
        b'/'
    };
    let mut p = folder.to_vec();
    if p.last() != Some(&sep) {
        p.push(sep);
    }
    (p, sep)
}

/// `base` followed by `tail`.
fn cat(base: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(base.len() + tail.len());
    v.extend_from_slice(base);
    v.extend_from_slice(tail);
    v
}

/// The newest version at or before `at_us` (the newest of all without it).
fn version_at(
    versions: &Versions,
    prec: &PathRec,
    at_us: Option<i64>,
) -> Result<Option<(u64, VersionRec)>> {
    for &id in prec.versions.iter().rev() {
        let Some(g) = versions.get(id)? else { continue };
        let rec = VersionRec::decode(g.value())?;
        if at_us.is_none_or(|at| rec.time_us <= at) {
            return Ok(Some((id, rec)));
        }
    }
    Ok(None)
}

fn path_rec(paths: &Paths, user: u64, device: u64, path: &[u8]) -> Result<Option<PathRec>> {
    paths
        .get((user, device, path))?
        .map(|g| dec(g.value()))
        .transpose()
}

/// Whether any key lies in `[lo, hi)` of this device.
fn any_key(paths: &Paths, user: u64, device: u64, lo: &[u8], hi: &[u8]) -> Result<bool> {
    Ok(paths
        .range::<(u64, u64, &[u8])>((user, device, lo)..(user, device, hi))?
        .next()
        .transpose()?
        .is_some())
}

/// The browser's view of one folder; `user`, `device` and the sep fixed per listing.
struct Listing<'a> {
    paths: &'a Paths,
    versions: &'a Versions,
    user: u64,
    device: u64,
    at_us: Option<i64>,
}

impl Listing<'_> {
    /// The folder `path` (a key prefix of its subtree is `path + sep`) as a child, if it was
    /// there at the time (see the module docs).
    fn folder_child(&self, path: &[u8], sep: u8, name: &[u8]) -> Result<Option<Child>> {
        let child = |version| Child {
            name: name.to_vec(),
            path: RawPath(path.to_vec()),
            folder: true,
            version,
        };
        if let Some(prec) = path_rec(self.paths, self.user, self.device, path)? {
            let at = version_at(self.versions, &prec, self.at_us)?;
            let newest_is_dir = match prec.versions.last() {
                Some(&id) => self
                    .versions
                    .get(id)?
                    .map(|g| VersionRec::decode(g.value()))
                    .transpose()?
                    .is_some_and(|r| r.kind() == RecKind::Dir),
                None => false,
            };
            match at {
                Some((id, rec)) if rec.kind() == RecKind::Dir => {
                    return Ok((!rec.deleted).then(|| child(Some(VersionSummary::of(id, &rec)))));
                }
                // Created after the time asked for.
                None if newest_is_dir => return Ok(None),
                // A file or link that became a folder, or a protocol-1 path: ask the contents.
                _ => {}
            }
        }
        let lo = cat(path, &[sep]);
        let hi = cat(path, &[sep + 1]);
        let range = self.paths.range::<(u64, u64, &[u8])>(
            (self.user, self.device, lo.as_slice())..(self.user, self.device, hi.as_slice()),
        )?;
        for row in range.take(IMPLICIT_PROBE) {
            let (_, v) = row?;
            let prec: PathRec = dec(v.value())?;
            if version_at(self.versions, &prec, self.at_us)?.is_some_and(|(_, r)| !r.deleted) {
                return Ok(Some(child(None)));
            }
        }
        // Every probed descendant was absent at the time: if the probe ran out, show it.
        let probed_all = self
            .paths
            .range::<(u64, u64, &[u8])>(
                (self.user, self.device, lo.as_slice())..(self.user, self.device, hi.as_slice()),
            )?
            .nth(IMPLICIT_PROBE)
            .is_none();
        Ok((!probed_all).then(|| child(None)))
    }

    /// The children of prefix `p` from `cursor` on, at most `limit`, and the next cursor.
    fn page(
        &self,
        p: &[u8],
        sep: u8,
        mut cursor: Cursor,
        limit: usize,
    ) -> Result<(Vec<Child>, Option<Cursor>)> {
        let mut out = Vec::new();
        // The end of the folder's range: the prefix's separator replaced by the next byte (the
        // device's end for the top level of a Windows device, whose prefix is empty).
        let (hi_dev, hi) = match p.split_last() {
            Some((_, head)) => (self.device, cat(head, &[sep + 1])),
            None => (self.device + 1, Vec::new()),
        };
        'seek: loop {
            let folders = cursor.folders;
            let at = (self.user, self.device, cursor.key.as_slice());
            let lo = if cursor.inclusive {
                Bound::Included(at)
            } else {
                Bound::Excluded(at)
            };
            let upper = Bound::Excluded((self.user, hi_dev, hi.as_slice()));
            let mut range = self.paths.range::<(u64, u64, &[u8])>((lo, upper))?;
            loop {
                let Some(row) = range.next() else {
                    if folders {
                        // The folder phase is done: the files, from the folder's start.
                        cursor = Cursor {
                            folders: false,
                            key: p.to_vec(),
                            inclusive: false,
                        };
                        // `Excluded(p)` skips the folder's own key (`/`, `C:\`), which is no child.
                        continue 'seek;
                    }
                    return Ok((out, None));
                };
                let (k, v) = row?;
                let key = k.value().2;
                let Some(rest) = key.strip_prefix(p) else {
                    // Only the empty prefix's device range can hold keys without it: none here.
                    return Ok((out, None));
                };
                if rest.is_empty() {
                    continue;
                }
                match rest.iter().position(|&c| c == sep) {
                    Some(i) => {
                        // The first key of a child's subtree: in the folder phase that child is
                        // a folder to list; either way, seek past the subtree.
                        let name = &rest[..i];
                        let path = cat(p, name);
                        let resume = cat(&path, &[sep + 1]);
                        if folders
                            && !name.is_empty()
                            && let Some(c) = self.folder_child(&path, sep, name)?
                        {
                            if out.len() == limit {
                                let here = Cursor {
                                    folders,
                                    key: key.to_vec(),
                                    inclusive: true,
                                };
                                return Ok((out, Some(here)));
                            }
                            out.push(c);
                        }
                        cursor = Cursor {
                            folders,
                            key: resume,
                            inclusive: true,
                        };
                        continue 'seek;
                    }
                    None if !folders => {
                        let name = rest;
                        // A child with a subtree was listed as a folder.
                        let sub_lo = cat(key, &[sep]);
                        let sub_hi = cat(key, &[sep + 1]);
                        if any_key(self.paths, self.user, self.device, &sub_lo, &sub_hi)? {
                            continue;
                        }
                        let prec: PathRec = dec(v.value())?;
                        let Some((id, rec)) = version_at(self.versions, &prec, self.at_us)? else {
                            continue;
                        };
                        if rec.deleted {
                            continue;
                        }
                        if out.len() == limit {
                            // Resume at this entry (the last one listed may be a folder of
                            // the phase before).
                            let here = Cursor {
                                folders,
                                key: key.to_vec(),
                                inclusive: true,
                            };
                            return Ok((out, Some(here)));
                        }
                        out.push(Child {
                            name: name.to_vec(),
                            path: RawPath(key.to_vec()),
                            folder: rec.kind() == RecKind::Dir && rec.symlink_target.is_none(),
                            version: Some(VersionSummary::of(id, &rec)),
                        });
                    }
                    None => {}
                }
            }
        }
    }
}

impl Db {
    /// The device id of `device` for `user`, or [`DbError::UnknownDevice`] (also for another
    /// user's device: they look the same).
    fn browse_device(txn: &redb::ReadTransaction, user: u64, device: &str) -> Result<u64> {
        let devices = txn.open_table(DEVICES)?;
        let rec = devices
            .get((user, device))?
            .map(|g| dec::<super::DeviceRec>(g.value()))
            .transpose()?;
        rec.map(|r| r.id).ok_or_else(|| DbError::UnknownDevice {
            device: device.to_owned(),
        })
    }

    /// One page of the direct children of `folder` on the user's `device` as they were at
    /// `at_us` (now without it): folders first, then files, links and empty folders, each in
    /// key (byte) order. The empty folder is the device's top level. `after` is the cursor of
    /// the previous page.
    ///
    /// # Errors
    /// [`DbError::UnknownDevice`] for a device the user does not have; [`DbError::NotFound`] for
    /// a folder of which the device never had anything, or a cursor not of this folder.
    pub fn children(
        &self,
        user: u64,
        device: &str,
        folder: &RawPath,
        at_us: Option<i64>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ChildPage> {
        let txn = self.read()?;
        let device = Self::browse_device(&txn, user, device)?;
        let paths = txn.open_table(PATHS)?;
        let versions = txn.open_table(VERSIONS)?;
        let (prefix, sep) = if folder.0.is_empty() {
            // The top level: `/` for a Unix device, the drive letters (`C:`) for Windows.
            let first = paths
                .range::<(u64, u64, &[u8])>((user, device, &[][..])..(user, device + 1, &[][..]))?
                .next()
                .transpose()?
                .map(|(k, _)| k.value().2.to_vec());
            match first {
                Some(k) if k.first() == Some(&b'/') => (b"/".to_vec(), b'/'),
                Some(_) => (Vec::new(), b'\\'),
                None => return Err(DbError::NotFound),
            }
        } else {
            let (p, sep) = prefix_of(&folder.0);
            let own = path_rec(&paths, user, device, &folder.0)?.is_some();
            if !own
                && !any_key(
                    &paths,
                    user,
                    device,
                    &p,
                    &cat(&p[..p.len() - 1], &[sep + 1]),
                )?
            {
                return Err(DbError::NotFound);
            }
            (p, sep)
        };
        let cursor = match after {
            None => Cursor {
                folders: true,
                key: prefix.clone(),
                inclusive: true,
            },
            Some(text) => Cursor::decode(text)
                .filter(|c| c.key.starts_with(&prefix))
                .ok_or(DbError::NotFound)?,
        };
        let listing = Listing {
            paths: &paths,
            versions: &versions,
            user,
            device,
            at_us,
        };
        let (entries, next) = listing.page(&prefix, sep, cursor, limit.max(1))?;
        let folder = if folder.0.is_empty() && sep == b'/' {
            RawPath::from("/")
        } else {
            folder.clone()
        };
        Ok(ChildPage {
            folder,
            entries,
            next: next.map(|c| c.encode()),
        })
    }

    /// Every retained version of one path of the user's `device`, newest first.
    ///
    /// # Errors
    /// [`DbError::UnknownDevice`], or [`DbError::NotFound`] for a path without versions.
    pub fn timeline(&self, user: u64, device: &str, path: &RawPath) -> Result<Vec<VersionSummary>> {
        let txn = self.read()?;
        let device = Self::browse_device(&txn, user, device)?;
        let paths = txn.open_table(PATHS)?;
        let versions = txn.open_table(VERSIONS)?;
        let prec = path_rec(&paths, user, device, &path.0)?.ok_or(DbError::NotFound)?;
        let mut out = Vec::new();
        for &id in prec.versions.iter().rev() {
            if let Some(g) = versions.get(id)? {
                out.push(VersionSummary::of(id, &VersionRec::decode(g.value())?));
            }
        }
        if out.is_empty() {
            return Err(DbError::NotFound);
        }
        Ok(out)
    }
}
