//! What to restore: the version chosen for each path, where it goes, and what is at each
//! destination already.
//!
//! Safety lives here: a path from the server becomes a destination only through [`destination`],
//! which refuses every component that could lead outside the target (`..`, `.`, drive letters,
//! separators inside a name); it is reached only through [`super::handles`] (no link followed);
//! an existing file is only ever replaced with `--overwrite` ([`existing`]); a folder in the way
//! is an error, never replaced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::path::{bytes_to_path, check_component};
use asgard_core::protocol::{
    ListQuery, MAX_MANIFEST_IDS, VersionInfo, VersionKind, VersionManifest,
};
use asgard_core::{ChunkId, Lang, RawPath};

use super::handles::{Blocked, Meta, Place, Target, is_link};
use super::meta::Applier;
use super::write::hash_reader;
use crate::client::Client;
use crate::list::for_each_page;
use crate::present::restore::{self as text, Unfit};

/// Where a backed-up file goes. `root` is the path the user asked for (file or folder), `file` a
/// path at or below it. With `to`, a single file lands as `to/<name>` and a folder's files as
/// `to/<folder name>/<parts...>`; without, at their original place. Unsafe components are refused.
pub(crate) fn destination(
    root: &RawPath,
    file: &RawPath,
    to: Option<&Path>,
) -> Result<PathBuf, String> {
    let parts = match file.components_below(root) {
        None => return Err(format!("{file} is not within {root}")),
        Some(Err(e)) => return Err(e.to_string()),
        Some(Ok(parts)) => parts,
    };
    let checked = |name: &[u8]| -> Result<PathBuf, String> {
        check_component(name).map_err(|reason| format!("unsafe path {file}: {reason}"))?;
        Ok(bytes_to_path(name))
    };
    if parts.is_empty() {
        return match to {
            Some(dir) => {
                let name = file
                    .file_name()
                    .ok_or_else(|| format!("{file} has no file name"))?;
                Ok(dir.join(checked(name)?))
            }
            None => Ok(file.to_path_buf()),
        };
    }
    let mut dest = match to {
        Some(dir) => match root.file_name() {
            Some(name) => dir.join(checked(name)?),
            None => dir.to_owned(),
        },
        None => root.to_path_buf(),
    };
    for part in parts {
        dest.push(checked(part)?);
    }
    Ok(dest)
}

/// Which versions to restore under a root.
pub(crate) struct Selection<'a> {
    pub(crate) root: &'a RawPath,
    /// Exactly this version (`--version`).
    pub(crate) version: Option<u64>,
    /// Else the newest version at or before this time (µs), or the newest of all.
    pub(crate) at_us: Option<i64>,
    /// The target folder (`--to`), else the original place.
    pub(crate) to: Option<&'a Path>,
}

/// A path that is not restored, reported as the listing is read.
pub(crate) enum Skipped {
    /// Its chosen version is a deletion marker.
    Deleted(RawPath),
    /// Its destination was refused (the reason).
    Refused(String),
}

/// The chosen (destination, version) of every regular file, link and folder, each once.
#[derive(Default)]
pub(crate) struct Chosen {
    /// Whether any version was chosen at all (deletion markers included).
    pub(crate) any: bool,
    pub(crate) files: Vec<(PathBuf, VersionInfo)>,
    /// Files restored as hard links to another file of this restore (see [`split_hard_links`]).
    pub(crate) hard_links: Vec<HardLink>,
    pub(crate) links: Vec<(PathBuf, VersionInfo)>,
    /// Folders (versions committed before folders were recorded have none).
    pub(crate) dirs: Vec<(PathBuf, VersionInfo)>,
}

/// A file restored as a hard link to the file at `first`, restored in the same run.
pub(crate) struct HardLink {
    pub(crate) dest: PathBuf,
    pub(crate) first: PathBuf,
    pub(crate) version: VersionInfo,
}

/// Splits the chosen files into those restored as files and those restored as hard links to one
/// of them: files whose versions share the hard-link group, content hash, size and mtime were
/// one inode when they were backed up; the first of each group (in listing order) is restored as
/// a file, the others as links to it. A file whose group has no other member chosen is a file.
pub(crate) fn split_hard_links(
    files: Vec<(PathBuf, VersionInfo)>,
) -> (Vec<(PathBuf, VersionInfo)>, Vec<HardLink>) {
    let mut firsts: HashMap<(u64, ChunkId, u64, i64), PathBuf> = HashMap::new();
    let mut single = Vec::with_capacity(files.len());
    let mut linked = Vec::new();
    for (dest, version) in files {
        let key = match (version.meta.hardlink, version.hash) {
            (Some(group), Some(hash)) => (group, hash, version.size, version.mtime_ns),
            _ => {
                single.push((dest, version));
                continue;
            }
        };
        match firsts.get(&key) {
            Some(first) => linked.push(HardLink {
                dest,
                first: first.clone(),
                version,
            }),
            None => {
                firsts.insert(key, dest.clone());
                single.push((dest, version));
            }
        }
    }
    (single, linked)
}

/// Reads the listing page by page and keeps only the chosen versions, not the whole listing.
pub(crate) async fn choose(
    client: &Client,
    query: ListQuery,
    sel: &Selection<'_>,
    mut skipped: impl FnMut(Skipped),
) -> anyhow::Result<Chosen> {
    let mut chosen = Chosen::default();
    for_each_page(client, query, |page| {
        for f in page {
            if !f.path.is_within(sel.root) {
                continue;
            }
            let version = match sel.version {
                Some(id) => f.versions.into_iter().find(|v| v.id == id),
                None => f
                    .versions
                    .into_iter()
                    .filter(|v| sel.at_us.is_none_or(|at| v.time_us <= at))
                    .max_by_key(|v| (v.time_us, v.id)),
            };
            let Some(version) = version else { continue };
            chosen.any = true;
            if version.deleted {
                skipped(Skipped::Deleted(f.path));
                continue;
            }
            match destination(sel.root, &f.path, sel.to) {
                Ok(dest) => match version.kind {
                    VersionKind::Symlink => chosen.links.push((dest, version)),
                    VersionKind::Dir => chosen.dirs.push((dest, version)),
                    VersionKind::File => chosen.files.push((dest, version)),
                },
                Err(e) => skipped(Skipped::Refused(e)),
            }
        }
        Ok(())
    })
    .await?;
    let (files, hard_links) = split_hard_links(std::mem::take(&mut chosen.files));
    chosen.files = files;
    chosen.hard_links = hard_links;
    Ok(chosen)
}

/// One regular file to restore.
pub(crate) struct Job {
    pub(crate) dest: PathBuf,
    /// Where `dest` lies: its folder (which exists) and name; the temp file is beside it.
    pub(crate) place: Place,
    pub(crate) version: VersionInfo,
    pub(crate) manifest: VersionManifest,
}

/// What is at a destination, as far as the restore is concerned.
pub(crate) enum Done {
    Restored,
    UpToDate,
    Conflict,
    /// A link lies where the backup has a folder on the way (its path): not followed, skipped.
    Blocked(PathBuf),
}

/// What to do for one regular file before any chunk is fetched.
pub(crate) enum Prepared {
    /// Nothing to fetch (up to date, a conflict, a link on the way).
    Done(Done),
    /// Restore it at this place (its folder exists).
    Go(Place),
}

/// The place of `dest` below the target, its folders created without following a link; a link on
/// the way is [`Done::Blocked`], anything else in the way an error.
pub(crate) fn reach(
    target: &Target,
    dest: &Path,
    lang: Lang,
) -> anyhow::Result<Result<Place, Done>> {
    match target.place(dest) {
        Ok(place) => Ok(Ok(place)),
        Err(Blocked::Link(link)) => Ok(Err(Done::Blocked(link))),
        Err(e) => bail!("{}", e.describe(dest, lang)),
    }
}

/// What to do for a file: [`Prepared::Go`] to restore it at its place; a file found up to date
/// gets the version's metadata where it differs (failures are warnings).
pub(crate) fn prepare(
    target: &Target,
    dest: &Path,
    version: &VersionInfo,
    overwrite: bool,
    applier: &Applier,
    lang: Lang,
) -> anyhow::Result<Prepared> {
    let expected = version
        .hash
        .ok_or_else(|| anyhow!("version {} has no hash", version.id))?;
    let place = match reach(target, dest, lang)? {
        Ok(place) => place,
        Err(done) => return Ok(Prepared::Done(done)),
    };
    if let Some(done) = existing(&place, overwrite, lang, |meta| {
        Ok(meta.is_file()
            && meta.len() == version.size
            && hash_reader(place.open_read()?)? == expected)
    })? {
        if matches!(done, Done::UpToDate)
            && let Ok(file) = place.open_read()
            && applier.differs(&file, version)
        {
            let _ = applier.file(&file, &place.dir, &place.name, version, dest, false);
        }
        return Ok(Prepared::Done(done));
    }
    Ok(Prepared::Go(place))
}

/// A file to restore with its chunk list, or why its chunk list cannot be used.
pub(crate) enum WithManifest {
    Job(Job),
    Unfit {
        dest: PathBuf,
        version: VersionInfo,
        why: Unfit,
    },
}

/// The chunk lists of the files to restore (`todo`: destination, place, version), asked for in
/// groups of [`MAX_MANIFEST_IDS`]: one answer per file, in order.
pub(crate) async fn jobs(
    client: &Client,
    todo: Vec<(PathBuf, Place, VersionInfo)>,
) -> anyhow::Result<Vec<WithManifest>> {
    let mut manifests: HashMap<u64, VersionManifest> = HashMap::new();
    for group in todo.chunks(MAX_MANIFEST_IDS) {
        let ids = group.iter().map(|(_, _, v)| v.id).collect();
        let resp = client.manifest(ids).await?;
        manifests.extend(resp.versions.into_iter().map(|m| (m.id, m)));
    }
    Ok(todo
        .into_iter()
        .map(|(dest, place, version)| {
            let why = match manifests.remove(&version.id) {
                Some(m) if manifest_fits(&m, &version) => {
                    return WithManifest::Job(Job {
                        dest,
                        place,
                        version,
                        manifest: m,
                    });
                }
                Some(_) => Unfit::SizeMismatch,
                None => Unfit::NotFound,
            };
            WithManifest::Unfit { dest, version, why }
        })
        .collect())
}

/// Whether a manifest describes the listed version: same size, chunk lengths that add up to it,
/// none longer than any chunk can be.
fn manifest_fits(m: &VersionManifest, v: &VersionInfo) -> bool {
    m.size == v.size
        && m.chunks.iter().all(|c| c.len <= MAX_CHUNK_SIZE)
        && m.chunks.iter().map(|c| u64::from(c.len)).sum::<u64>() == v.size
}

/// What to do about whatever is at a place already: `Some(UpToDate)` when `same` says it is the
/// version, `Some(Conflict)` when it differs and `overwrite` is off, `None` to go ahead (nothing
/// there, or a file or link to replace). A folder in the way is an error. A link there is looked
/// at, never followed.
pub(crate) fn existing(
    place: &Place,
    overwrite: bool,
    lang: Lang,
    same: impl FnOnce(&Meta) -> anyhow::Result<bool>,
) -> anyhow::Result<Option<Done>> {
    let Ok(meta) = place.metadata() else {
        return Ok(None);
    };
    if same(&meta)? {
        return Ok(Some(Done::UpToDate));
    }
    if !overwrite {
        return Ok(Some(Done::Conflict));
    }
    if meta.is_dir() && !is_link(&meta) {
        bail!("{}", text::folder_in_the_way(lang));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(s: &str) -> RawPath {
        RawPath::from(s)
    }

    #[test]
    fn folder_to_target_keeps_folder_name() {
        let root = rp("/home/a/docs");
        let file = rp("/home/a/docs/sub/x.txt");
        assert_eq!(
            destination(&root, &file, Some(Path::new("/tmp/r"))).unwrap(),
            PathBuf::from("/tmp/r/docs/sub/x.txt")
        );
        assert_eq!(
            destination(&root, &file, None).unwrap(),
            PathBuf::from("/home/a/docs/sub/x.txt")
        );
    }

    #[test]
    fn single_file() {
        let f = rp("/home/a/docs/x.txt");
        assert_eq!(
            destination(&f, &f, Some(Path::new("/tmp/r"))).unwrap(),
            PathBuf::from("/tmp/r/x.txt")
        );
        assert_eq!(
            destination(&f, &f, None).unwrap(),
            PathBuf::from("/home/a/docs/x.txt")
        );
    }

    #[test]
    fn windows_paths() {
        let root = rp(r"C:\Users\Bob\Documents");
        let file = rp(r"C:\Users\Bob\Documents\Steuer\2025.pdf");
        let to = Path::new("/tmp/r");
        assert_eq!(
            destination(&root, &file, Some(to)).unwrap(),
            to.join("Documents").join("Steuer").join("2025.pdf")
        );
        // Windows paths compare case-insensitively.
        let lower = rp(r"c:\users\bob\documents");
        assert!(destination(&lower, &file, Some(to)).is_ok());
        let single = rp(r"C:\Users\Bob\Desktop\a.txt");
        assert_eq!(
            destination(&single, &single, Some(to)).unwrap(),
            to.join("a.txt")
        );
        let evil = rp(r"C:\Users\Bob\Documents\..\..\Windows\evil.dll");
        assert!(destination(&root, &evil, Some(to)).is_err());
    }

    #[test]
    fn rejects_traversal_and_outsiders() {
        let root = rp("/home/a");
        let to = Some(Path::new("/tmp/r"));
        assert!(destination(&root, &rp("/home/a/../../etc/passwd"), to).is_err());
        assert!(destination(&root, &rp("/home/a/./x"), to).is_err());
        assert!(destination(&root, &rp("/home/a/../x"), None).is_err());
        assert!(destination(&root, &rp("/home/ab/x"), to).is_err());
        assert!(destination(&root, &rp("/etc/passwd"), None).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_map_exactly() {
        use std::os::unix::ffi::OsStrExt;
        let root = RawPath(b"/d".to_vec());
        let file = RawPath(b"/d/caf\xe9.txt".to_vec());
        let dest = destination(&root, &file, Some(Path::new("/t"))).unwrap();
        assert_eq!(dest.as_os_str().as_bytes(), b"/t/d/caf\xe9.txt");
    }

    fn file(id: u64, group: Option<u64>, content: &[u8], mtime_ns: i64) -> VersionInfo {
        let mut v = crate::restore::meta::tests::version(0o644, 0);
        v.id = id;
        v.hash = Some(ChunkId::of(content));
        v.size = content.len() as u64;
        v.mtime_ns = mtime_ns;
        v.meta.hardlink = group;
        v
    }

    #[test]
    fn hard_link_groups_need_group_hash_size_and_mtime() {
        let p = |s: &str| PathBuf::from(s);
        let files = vec![
            (p("/t/a"), file(1, Some(7), b"eins", 5)),
            (p("/t/b"), file(2, Some(7), b"eins", 5)),
            (p("/t/c"), file(3, Some(7), b"eins", 5)),
            // Same group, other content or mtime (changed after the run): files of their own.
            (p("/t/d"), file(4, Some(7), b"zwei", 5)),
            (p("/t/e"), file(5, Some(7), b"eins", 6)),
            // Same content, no group or another group.
            (p("/t/f"), file(6, None, b"eins", 5)),
            (p("/t/g"), file(7, Some(8), b"eins", 5)),
        ];
        let (single, linked) = split_hard_links(files);
        let names: Vec<&Path> = single.iter().map(|(d, _)| d.as_path()).collect();
        assert_eq!(
            names,
            ["/t/a", "/t/d", "/t/e", "/t/f", "/t/g"].map(Path::new)
        );
        let links: Vec<(&Path, &Path, u64)> = linked
            .iter()
            .map(|h| (h.dest.as_path(), h.first.as_path(), h.version.id))
            .collect();
        assert_eq!(
            links,
            [
                (Path::new("/t/b"), Path::new("/t/a"), 2),
                (Path::new("/t/c"), Path::new("/t/a"), 3)
            ]
        );
        // A member restored alone is a file.
        let (single, linked) = split_hard_links(vec![(p("/t/b"), file(2, Some(7), b"eins", 5))]);
        assert_eq!(single.len(), 1);
        assert!(linked.is_empty());
    }
}
