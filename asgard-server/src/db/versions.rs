//! File versions: commit (with retention), list, the point-in-time lookup of one version and the
//! batched reads of restore (many versions in one read transaction).
//!
//! **Kinds.** A path's versions are files, symbolic links or folders (protocol 2), and deletion
//! markers, which remember the kind of what was deleted. A folder version has no content (size
//! 0, no chunks, no hash): restore and manifest answer for it as for a link, and `list` and the
//! point-in-time view show it like any version.
//!
//! **Content and metadata.** A commit entry is compared with the path's newest live version: the
//! same content (file: hash and size; link: target; folder: always) and the same metadata (mtime,
//! mode, attributes and the whole `EntryMeta`) is `unchanged`; the same content with other
//! metadata becomes a *metadata-only* version (`changed` with `meta_only`); anything else is a
//! content version. A metadata-only version lists the chunks of its content like any version and
//! holds references on them. An entry of a protocol-1 agent has no `EntryMeta`, and neither has a
//! version from before it existed: the two compare equal, so an old agent sees no churn.
//!
//! **Retention** is [`super::retention`]'s: commit applies it to the paths it touches.

use std::collections::HashSet;

use asgard_core::meta::EntryMeta;
use asgard_core::protocol::{
    CommitEntry, CommitOutcome, CommitResponse, CommitResult, FileEntry, symlink_hash,
};
use asgard_core::{ChunkParams, RawPath};
use redb::{ReadTransaction, ReadableTable};

use super::{
    CHUNKS, DEVICES, Db, DbError, KEEP_OVERRIDES, LAST_TIME_US, META, NEXT_VERSION_ID, PATHS,
    PathRec, RecExt, RecKind, Result, StoredMeta, USER_CHUNKS, VERSIONS, VersionRec,
    adjust_refcount, chunk_usable, dec, enc, next_id, user_devices,
};

/// Which devices `list` covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSel {
    Id(u64),
    Named(String),
    All,
}

/// A `list` request after validation.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub devices: DeviceSel,
    pub prefix: Option<RawPath>,
    pub at_us: Option<i64>,
    /// Continue after this (device id, path).
    pub after: Option<(u64, Vec<u8>)>,
    pub limit: usize,
}

/// The cursor text of `list`: hex of the device id (8 bytes, big endian) and the path bytes.
pub fn encode_cursor(device_id: u64, path: &[u8]) -> String {
    let mut b = device_id.to_be_bytes().to_vec();
    b.extend_from_slice(path);
    asgard_core::id::to_hex(&b)
}

pub fn decode_cursor(text: &str) -> Option<(u64, Vec<u8>)> {
    let b = asgard_core::id::from_hex(text)?;
    if b.len() < 8 {
        return None;
    }
    let (id, path) = b.split_at(8);
    Some((u64::from_be_bytes(id.try_into().ok()?), path.to_vec()))
}

impl Db {
    /// Commits versions for one device, all or nothing. See [`CommitOutcome`] for the outcomes and
    /// the module docs for metadata-only versions; retention keeps at most `keep` content groups
    /// per path (the user's own setting wins).
    pub fn commit(
        &self,
        user_id: u64,
        device_id: u64,
        entries: &[CommitEntry],
        keep: u32,
        now: i64,
    ) -> Result<CommitResponse> {
        let txn = self.write()?;
        let response = {
            let mut chunks = txn.open_table(CHUNKS)?;
            let owned = txn.open_table(USER_CHUNKS)?;
            let mut paths = txn.open_table(PATHS)?;
            let mut versions = txn.open_table(VERSIONS)?;
            let mut meta = txn.open_table(META)?;
            let keep = txn
                .open_table(KEEP_OVERRIDES)?
                .get(user_id)?
                .map_or(keep, |g| g.value());

            // Presence and ownership are checked inside the transaction that adds the references.
            // A chunk marked bad counts as absent: `check` asked for it again, and a version must
            // not be added on top of bytes known to be damaged.
            let mut seen = HashSet::new();
            let mut missing = Vec::new();
            for e in entries {
                if let CommitEntry::File { meta: m, .. } = e {
                    for c in &m.chunks {
                        if seen.insert(c.id)
                            && (owned.get((user_id, &c.id.0))?.is_none()
                                || !chunk_usable(&chunks, &c.id)?)
                        {
                            missing.push(c.id);
                        }
                    }
                }
            }
            if !missing.is_empty() {
                return Err(DbError::MissingChunks(missing));
            }

            let last = meta.get(LAST_TIME_US)?.map(|g| g.value() as i64);
            let time_us = last.map_or(now, |l| now.max(l + 1));
            meta.insert(LAST_TIME_US, time_us as u64)?;

            let mut results = Vec::with_capacity(entries.len());
            let mut pruned = 0u32;
            for e in entries {
                let key_path = e.path().0.as_slice();
                let mut prec: PathRec = paths
                    .get((user_id, device_id, key_path))?
                    .map(|g| dec(g.value()))
                    .transpose()?
                    .unwrap_or_default();
                let newest: Option<(u64, VersionRec)> = match prec.versions.last() {
                    Some(&id) => versions
                        .get(id)?
                        .map(|g| VersionRec::decode(g.value()).map(|v| (id, v)))
                        .transpose()?,
                    None => None,
                };
                let live = newest.as_ref().filter(|(_, v)| !v.deleted);
                let result = match new_version(user_id, device_id, time_us, e) {
                    Some(mut rec) => {
                        let same_content = live.is_some_and(|(_, v)| same_content(v, &rec));
                        if same_content && live.is_some_and(|(_, v)| same_meta(v, &rec)) {
                            results.push(CommitResult {
                                meta_only: false,
                                outcome: CommitOutcome::Unchanged,
                                version_id: live.map(|(id, _)| *id),
                            });
                            continue;
                        }
                        let outcome = if live.is_some() {
                            CommitOutcome::Changed
                        } else {
                            CommitOutcome::New
                        };
                        if same_content {
                            rec.ext = RecExt::new(rec.kind(), true, rec.meta().clone());
                        }
                        // A metadata-only version lists the same chunks: they gain a reference
                        // like those of any version, and lose it when retention drops it.
                        for (id, _) in &rec.chunks {
                            adjust_refcount(&mut chunks, id, 1)?;
                        }
                        let id = next_id(&mut meta, NEXT_VERSION_ID)?;
                        versions.insert(id, enc(&rec)?.as_slice())?;
                        prec.versions.push(id);
                        pruned += super::retention::apply_retention(
                            &mut prec,
                            &mut versions,
                            &mut chunks,
                            keep,
                        )?;
                        CommitResult {
                            meta_only: same_content,
                            outcome,
                            version_id: Some(id),
                        }
                    }
                    None => match live {
                        Some((_, v)) => {
                            let rec = VersionRec {
                                user_id,
                                device_id,
                                path: key_path.to_vec(),
                                time_us,
                                deleted: true,
                                size: 0,
                                mtime_ns: v.mtime_ns,
                                mode: v.mode,
                                attributes: v.attributes,
                                hash: None,
                                params: v.params,
                                chunks: Vec::new(),
                                symlink_target: None,
                                // The marker remembers what was deleted (a folder, say).
                                ext: RecExt::new(v.kind(), false, StoredMeta::default()),
                            };
                            let id = next_id(&mut meta, NEXT_VERSION_ID)?;
                            versions.insert(id, enc(&rec)?.as_slice())?;
                            prec.versions.push(id);
                            CommitResult {
                                meta_only: false,
                                outcome: CommitOutcome::Deleted,
                                version_id: Some(id),
                            }
                        }
                        None => {
                            results.push(CommitResult {
                                meta_only: false,
                                outcome: CommitOutcome::AlreadyDeleted,
                                version_id: newest.as_ref().map(|(id, _)| *id),
                            });
                            continue;
                        }
                    },
                };
                paths.insert((user_id, device_id, key_path), enc(&prec)?.as_slice())?;
                results.push(result);
            }
            CommitResponse {
                results,
                pruned_versions: pruned,
            }
        };
        txn.commit()?;
        Ok(response)
    }

    /// Resolves the device names of a user: (id, name) sorted by id.
    fn select_devices(
        txn: &ReadTransaction,
        user_id: u64,
        sel: &DeviceSel,
    ) -> Result<Vec<(u64, String)>> {
        let devices = txn.open_table(DEVICES)?;
        let all = user_devices(&devices, user_id)?;
        let mut out: Vec<(u64, String)> = match sel {
            DeviceSel::All => all.into_iter().map(|(n, d)| (d.id, n)).collect(),
            DeviceSel::Id(id) => all
                .into_iter()
                .filter(|(_, d)| d.id == *id)
                .map(|(n, d)| (d.id, n))
                .collect(),
            DeviceSel::Named(name) => {
                let found: Vec<_> = all
                    .into_iter()
                    .filter(|(n, _)| n == name)
                    .map(|(n, d)| (d.id, n))
                    .collect();
                if found.is_empty() {
                    return Err(DbError::UnknownDevice {
                        device: name.clone(),
                    });
                }
                found
            }
        };
        out.sort();
        Ok(out)
    }

    /// One page of paths and their versions (newest first).
    pub fn list(&self, user_id: u64, p: &ListParams) -> Result<(Vec<FileEntry>, Option<String>)> {
        let txn = self.read()?;
        let devices = Self::select_devices(&txn, user_id, &p.devices)?;
        // A cursor names a device of this selection; any other (another user's, a forged one) is
        // answered like a missing row.
        if let Some((d, _)) = &p.after
            && !devices.iter().any(|(id, _)| id == d)
        {
            return Err(DbError::NotFound);
        }
        let paths = txn.open_table(PATHS)?;
        let versions = txn.open_table(VERSIONS)?;
        let mut files = Vec::new();
        let mut last_key = None;
        for (device_id, device_name) in devices {
            let start: (u64, u64, &[u8]) = match &p.after {
                Some((d, _)) if *d > device_id => continue,
                Some((d, path)) if *d == device_id => (user_id, device_id, path.as_slice()),
                _ => (user_id, device_id, &[]),
            };
            let lower = match &p.after {
                Some((d, _)) if *d == device_id => std::ops::Bound::Excluded(start),
                _ => std::ops::Bound::Included(start),
            };
            let upper = std::ops::Bound::Excluded((user_id, device_id + 1, &[][..]));
            for row in paths.range::<(u64, u64, &[u8])>((lower, upper))? {
                let (k, v) = row?;
                let path = RawPath(k.value().2.to_vec());
                if let Some(prefix) = &p.prefix
                    && !path.is_within(prefix)
                {
                    continue;
                }
                let prec: PathRec = dec(v.value())?;
                let mut infos = Vec::new();
                for &id in prec.versions.iter().rev() {
                    let Some(g) = versions.get(id)? else { continue };
                    let rec = VersionRec::decode(g.value())?;
                    if p.at_us.is_none_or(|at| rec.time_us <= at) {
                        infos.push(rec.info(id));
                    }
                }
                if infos.is_empty() {
                    continue;
                }
                if files.len() == p.limit {
                    // One more match exists: the page ends after the last entry taken.
                    let cursor = last_key.map(|(d, path): (u64, Vec<u8>)| encode_cursor(d, &path));
                    return Ok((files, cursor));
                }
                last_key = Some((device_id, path.0.clone()));
                files.push(FileEntry {
                    path,
                    device: device_name.clone(),
                    versions: infos,
                });
            }
        }
        Ok((files, None))
    }

    /// The version to restore: by id (must belong to the user), or the newest of a path (at or
    /// before `at_us` when given) on `device` (the calling device when `None`).
    pub fn find_version(
        &self,
        user_id: u64,
        calling_device: u64,
        version_id: Option<u64>,
        device: Option<&str>,
        path: Option<&RawPath>,
        at_us: Option<i64>,
    ) -> Result<(u64, VersionRec)> {
        let txn = self.read()?;
        let versions = txn.open_table(VERSIONS)?;
        let (id, rec) = if let Some(id) = version_id {
            let rec: VersionRec = versions
                .get(id)?
                .map(|g| VersionRec::decode(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?;
            // Another user's version is reported exactly like a missing one.
            if rec.user_id != user_id {
                return Err(DbError::NotFound);
            }
            (id, rec)
        } else {
            let path = path.ok_or(DbError::NotFound)?;
            let sel = match device {
                Some(name) => DeviceSel::Named(name.to_owned()),
                None => DeviceSel::Id(calling_device),
            };
            let (device_id, _) = Self::select_devices(&txn, user_id, &sel)?
                .into_iter()
                .next()
                .ok_or(DbError::NotFound)?;
            let prec: PathRec = txn
                .open_table(PATHS)?
                .get((user_id, device_id, path.0.as_slice()))?
                .map(|g| dec(g.value()))
                .transpose()?
                .ok_or(DbError::NotFound)?;
            let mut found = None;
            for &id in prec.versions.iter().rev() {
                let Some(g) = versions.get(id)? else { continue };
                let rec = VersionRec::decode(g.value())?;
                if at_us.is_none_or(|at| rec.time_us <= at) {
                    found = Some((id, rec));
                    break;
                }
            }
            found.ok_or(DbError::NotFound)?
        };
        if rec.deleted {
            return Err(DbError::Deleted);
        }
        Ok((id, rec))
    }

    /// The records of `ids` that belong to `user_id`, in request order; `None` for an id that does
    /// not exist (any more) or belongs to another user, which look the same.
    pub fn user_versions(&self, user_id: u64, ids: &[u64]) -> Result<Vec<Option<VersionRec>>> {
        let txn = self.read()?;
        let versions = txn.open_table(VERSIONS)?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let rec = versions
                .get(id)?
                .map(|g| VersionRec::decode(g.value()))
                .transpose()?
                .filter(|r| r.user_id == user_id);
            out.push(rec);
        }
        Ok(out)
    }
}

/// The record a file, link or folder entry would add (`None` for a deletion marker).
fn new_version(user_id: u64, device_id: u64, time_us: i64, e: &CommitEntry) -> Option<VersionRec> {
    let base = |path: &RawPath, mtime_ns, kind, meta: &EntryMeta| VersionRec {
        user_id,
        device_id,
        path: path.0.clone(),
        time_us,
        deleted: false,
        size: 0,
        mtime_ns,
        mode: 0,
        attributes: 0,
        hash: None,
        params: ChunkParams::default(),
        chunks: Vec::new(),
        symlink_target: None,
        ext: RecExt::new(kind, false, StoredMeta::from(meta)),
    };
    Some(match e {
        CommitEntry::File { path, meta: m } => VersionRec {
            size: m.size,
            mode: m.mode,
            attributes: m.attributes,
            hash: Some(m.hash.0),
            params: m.params,
            chunks: m.chunks.iter().map(|c| (c.id.0, c.len)).collect(),
            ..base(path, m.mtime_ns, RecKind::File, &m.ext)
        },
        CommitEntry::Symlink {
            path,
            target,
            mtime_ns,
            meta,
        } => VersionRec {
            hash: Some(symlink_hash(target).0),
            symlink_target: Some(target.0.clone()),
            ..base(path, *mtime_ns, RecKind::Symlink, meta)
        },
        CommitEntry::Dir {
            path,
            mtime_ns,
            mode,
            attributes,
            meta,
        } => VersionRec {
            mode: *mode,
            attributes: *attributes,
            ..base(path, *mtime_ns, RecKind::Dir, meta)
        },
        CommitEntry::Deleted { .. } => return None,
    })
}

/// Whether the live version `old` has the content of `new`: a file the same hash and size, a
/// link the same target, a folder is always "the same" (its entries are versions of their own).
/// A change of kind is a change of content.
fn same_content(old: &VersionRec, new: &VersionRec) -> bool {
    let kind = |v: &VersionRec| match v.symlink_target {
        Some(_) => RecKind::Symlink,
        None => v.kind(),
    };
    if old.deleted || kind(old) != kind(new) {
        return false;
    }
    match kind(new) {
        RecKind::File => old.hash == new.hash && old.size == new.size,
        RecKind::Symlink => old.symlink_target == new.symlink_target,
        RecKind::Dir => true,
    }
}

/// Whether `old` and `new` have the same metadata: mtime, mode, attributes and the whole
/// [`EntryMeta`]. A version from before [`EntryMeta`] existed has an empty one, as has every entry
/// of a protocol-1 agent, so such an agent sees no churn.
fn same_meta(old: &VersionRec, new: &VersionRec) -> bool {
    old.mtime_ns == new.mtime_ns
        && old.mode == new.mode
        && old.attributes == new.attributes
        && old.meta() == new.meta()
}
