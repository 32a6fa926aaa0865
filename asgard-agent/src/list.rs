//! `list`: the backed-up paths and their versions.

use std::path::PathBuf;
use std::process::ExitCode;

use asgard_core::fmt::bytes_short;
use asgard_core::id::to_hex;
use asgard_core::protocol::{FileEntry, ListQuery, VersionKind};
use asgard_core::{Lang, RawPath};
use serde::Serialize;
use time::UtcOffset;

use crate::client::Client;
use crate::session::{self, Ctx};
use crate::timefmt::{local_human, local_human_us, offset_name, rfc3339_ns, rfc3339_us};

/// Every page of a listing.
pub(crate) async fn fetch_all(client: &Client, query: ListQuery) -> anyhow::Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    for_each_page(client, query, |page| {
        files.extend(page);
        Ok(())
    })
    .await?;
    Ok(files)
}

/// Walks every page of the listing, handing each page's files to `f` before the next page is
/// fetched, so a caller that keeps only what it needs holds one page at a time, not the listing.
pub(crate) async fn for_each_page(
    client: &Client,
    mut query: ListQuery,
    mut f: impl FnMut(Vec<FileEntry>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        let page = client.list(&query).await?;
        f(page.files)?;
        match page.next_cursor {
            Some(c) if query.cursor.as_ref() != Some(&c) => query.cursor = Some(c),
            _ => return Ok(()),
        }
    }
}

/// The prefix filter for a local path: hex of its raw bytes.
pub(crate) fn prefix_hex(path: &RawPath) -> String {
    to_hex(&path.0)
}

#[derive(Serialize)]
struct JsonVersion {
    id: u64,
    time: String,
    size: u64,
    hash: Option<String>,
    deleted: bool,
    mtime: String,
    kind: VersionKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    symlink_target: Option<RawPath>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    meta_only: bool,
    /// The recorded owner, where known (Windows: `DOMAIN\name`, no numbers).
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<u32>,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    path: &'a RawPath,
    device: &'a str,
    versions: Vec<JsonVersion>,
}

pub struct ListArgs {
    pub path: Option<PathBuf>,
    pub json: bool,
    pub device: Option<String>,
    pub all_devices: bool,
}

pub async fn run(ctx: &Ctx, args: ListArgs) -> anyhow::Result<ExitCode> {
    let lang = ctx.lang;
    let session = session::connect(ctx).await?;
    let prefix = match &args.path {
        Some(p) => Some(prefix_hex(&RawPath::from_path(&std::path::absolute(p)?))),
        None => None,
    };
    let query = ListQuery {
        device: args.device.clone(),
        all_devices: args.all_devices,
        prefix_hex: prefix,
        ..ListQuery::default()
    };
    let files = fetch_all(&session.client, query).await?;
    if args.json {
        let out: Vec<JsonEntry> = files
            .iter()
            .map(|f| JsonEntry {
                path: &f.path,
                device: &f.device,
                versions: f
                    .versions
                    .iter()
                    .map(|v| JsonVersion {
                        id: v.id,
                        time: rfc3339_us(v.time_us),
                        size: v.size,
                        hash: v.hash.map(|h| h.to_hex()),
                        deleted: v.deleted,
                        mtime: rfc3339_ns(v.mtime_ns),
                        kind: v.kind,
                        symlink_target: v.symlink_target.clone(),
                        meta_only: v.meta_only,
                        owner: v.meta.owner.clone(),
                        group: v.meta.group.clone(),
                        uid: v.meta.uid,
                        gid: v.meta.gid,
                    })
                    .collect(),
            })
            .collect();
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if files.is_empty() {
        println!(
            "{}",
            lang.pick(
                "Keine gesicherten Dateien gefunden.",
                "No backed-up files found."
            )
        );
        return Ok(ExitCode::SUCCESS);
    }
    let show_device = args.all_devices || args.device.is_some();
    print!("{}", render(&files, show_device, ctx.offset, lang));
    Ok(ExitCode::SUCCESS)
}

/// The text listing: a heading naming the columns and the time zone, then each path (escaped,
/// see [`asgard_core::Escaped`]) with its versions, newest first, and the count.
///
/// Times are local and to the second, as `restore --at` reads them (a second includes every
/// version committed within it). Where two versions of one path fall within the same second,
/// both show microseconds, so each one's time, copied into `--at`, still selects it.
fn render(files: &[FileEntry], show_device: bool, offset: UtcOffset, lang: Lang) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    // Version ids are server-wide numbers and may be long: the column fits the longest.
    let id_width = files
        .iter()
        .flat_map(|f| &f.versions)
        .map(|v| v.id.to_string().len())
        .max()
        .unwrap_or(0)
        .max("Version".len());
    let second = |us: i64| us.div_euclid(1_000_000);
    let shares_second = |f: &FileEntry, us: i64| {
        f.versions
            .iter()
            .filter(|w| second(w.time_us) == second(us))
            .count()
            > 1
    };
    let any_shared = files
        .iter()
        .any(|f| f.versions.iter().any(|v| shares_second(f, v.time_us)));
    let time_width = if any_shared { 26 } else { 19 };
    let _ = writeln!(out, "{}", lang.pick("Pfad", "Path"));
    let _ = writeln!(
        out,
        "  {:>id_width$}  {:<time_width$}  {}",
        "Version",
        format!("{} ({})", lang.pick("Zeit", "Time"), offset_name(offset)),
        lang.pick("Größe bzw. Art", "Size or kind"),
    );
    for f in files {
        if show_device {
            let _ = writeln!(out, "{}  [{}]", f.path.escaped(), f.device);
        } else {
            let _ = writeln!(out, "{}", f.path.escaped());
        }
        let mut versions = f.versions.clone();
        versions.sort_by_key(|v| std::cmp::Reverse((v.time_us, v.id)));
        for v in &versions {
            let time = if shares_second(f, v.time_us) {
                local_human_us(v.time_us, offset)
            } else {
                local_human(v.time_us, offset)
            };
            let mut what = if v.deleted {
                lang.pick("gelöscht", "deleted").to_owned()
            } else if let Some(target) = &v.symlink_target {
                format!("-> {}", target.escaped())
            } else if v.kind == VersionKind::Dir {
                lang.pick("Ordner", "folder").to_owned()
            } else {
                bytes_short(v.size)
            };
            if v.meta_only {
                what.push_str(lang.pick(" (nur Metadaten)", " (metadata only)"));
            }
            let _ = writeln!(out, "  {:>id_width$}  {time:<time_width$}  {what}", v.id);
        }
    }
    let _ = writeln!(out, "{}", crate::present::paths_count(files.len(), lang));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgard_core::meta::EntryMeta;
    use asgard_core::protocol::VersionInfo;

    fn version(id: u64, time_us: i64) -> VersionInfo {
        VersionInfo {
            id,
            time_us,
            size: 1536,
            mtime_ns: 0,
            mode: 0o644,
            attributes: 0,
            hash: None,
            deleted: false,
            kind: VersionKind::File,
            symlink_target: None,
            meta: EntryMeta::default(),
            meta_only: false,
        }
    }

    fn entry(path: &[u8], versions: Vec<VersionInfo>) -> FileEntry {
        FileEntry {
            path: RawPath(path.to_vec()),
            device: "laptop".into(),
            versions,
        }
    }

    const T: i64 = 1_795_699_201_000_000; // 2026-11-26 13:20:01 UTC

    #[test]
    fn heading_names_columns_and_zone() {
        let plus_one = UtcOffset::from_hms(1, 0, 0).unwrap();
        let files = [entry(
            b"/home/a/x.txt",
            vec![version(7, T), version(3_825_733_685_444_580, T - 9_000_000)],
        )];
        let de = render(&files, false, plus_one, Lang::De);
        let lines: Vec<&str> = de.lines().collect();
        assert_eq!(lines[0], "Pfad");
        assert!(lines[1].contains("Version"), "{de}");
        assert!(lines[1].contains("Zeit (UTC+01:00)"), "{de}");
        assert!(lines[1].contains("Größe"), "{de}");
        assert_eq!(lines[2], "/home/a/x.txt");
        assert!(lines[3].contains("2026-11-26 14:20:01  1.5 KiB"), "{de}");
        // The columns line up under their headings, whatever the length of the ids.
        let time_col = lines[1].find("Zeit").unwrap();
        assert_eq!(lines[3].find("2026"), Some(time_col), "{de}");
        assert_eq!(lines[4].find("2026"), Some(time_col), "{de}");
        assert_eq!(lines[5], "1 Pfad.");
        let en = render(&files, false, UtcOffset::UTC, Lang::En);
        assert!(en.lines().nth(1).unwrap().contains("Time (UTC)"), "{en}");
        assert!(en.starts_with("Path\n"), "{en}");
        assert!(en.contains("2026-11-26 13:20:01"), "{en}");
        assert!(en.ends_with("1 path.\n"), "{en}");
    }

    #[test]
    fn same_second_versions_show_microseconds() {
        let files = [entry(
            b"/x",
            vec![
                version(1, T + 10),
                version(2, T + 900_000),
                version(3, T + 5_000_000),
            ],
        )];
        let text = render(&files, false, UtcOffset::UTC, Lang::De);
        assert!(text.contains("2026-11-26 13:20:01.900000"), "{text}");
        assert!(text.contains("2026-11-26 13:20:01.000010"), "{text}");
        assert!(
            text.contains("2026-11-26 13:20:06         1.5 KiB"),
            "{text}"
        );
        let size_col = text.lines().nth(1).unwrap().find("Größe").unwrap();
        assert!(
            text.lines()
                .skip(3)
                .take(3)
                .all(|l| l.find("1.5 KiB") == Some(size_col)),
            "{text}"
        );
        assert!(!text.contains("13:20:06."), "{text}");
        // Each shown time selects its own version.
        for (id, us) in [(1, T + 10), (2, T + 900_000), (3, T + 5_000_000)] {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{id} ")))
                .unwrap();
            let shown = line.trim_start().split("  ").nth(1).unwrap().trim();
            let at = crate::timefmt::parse_at(shown, UtcOffset::UTC).unwrap();
            assert!(us <= at, "{shown}");
            assert!(
                [T + 10, T + 900_000, T + 5_000_000]
                    .iter()
                    .all(|&other| other <= us || other > at),
                "{shown} selects a later version"
            );
        }
    }

    #[test]
    fn names_that_are_not_utf8_are_escaped() {
        let mut link = version(2, T);
        link.kind = VersionKind::Symlink;
        link.symlink_target = Some(RawPath(b"ziel\xfe".to_vec()));
        let files = [
            entry(b"/home/a/caf\xe9.txt", vec![version(1, T)]),
            entry(b"/home/a/l", vec![link]),
        ];
        let text = render(&files, false, UtcOffset::UTC, Lang::De);
        assert!(text.contains("/home/a/caf\\xe9.txt\n"), "{text}");
        assert!(text.contains("-> ziel\\xfe"), "{text}");
        assert!(!text.contains('\u{fffd}'), "{text}");
    }

    #[test]
    fn folders_deletions_and_metadata_only_versions() {
        let mut dir = version(1, T);
        dir.kind = VersionKind::Dir;
        let mut chmod = version(3, T + 9_000_000);
        chmod.meta_only = true;
        let mut gone = version(4, T + 20_000_000);
        gone.deleted = true;
        let files = [
            entry(b"/d", vec![dir]),
            entry(b"/f", vec![version(2, T + 2_000_000), chmod, gone]),
        ];
        let text = render(&files, true, UtcOffset::UTC, Lang::De);
        assert!(text.contains("/d  [laptop]"), "{text}");
        assert!(text.contains("01  Ordner"), "{text}");
        assert!(text.contains("1.5 KiB (nur Metadaten)"), "{text}");
        assert!(text.contains("gelöscht"), "{text}");
        assert!(text.ends_with("2 Pfade.\n"), "{text}");
        let en = render(&files, true, UtcOffset::UTC, Lang::En);
        assert!(en.contains("01  folder"), "{en}");
        assert!(en.contains("(metadata only)"), "{en}");
    }
}
