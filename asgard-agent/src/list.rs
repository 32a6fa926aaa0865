//! `list`: the backed-up paths and their versions.

use std::path::PathBuf;
use std::process::ExitCode;

use asgard_core::RawPath;
use asgard_core::fmt::bytes_short;
use asgard_core::id::to_hex;
use asgard_core::protocol::{FileEntry, ListQuery, VersionKind};
use serde::Serialize;

use crate::client::Client;
use crate::session::{self, Ctx};
use crate::timefmt::{local_human, rfc3339_ns, rfc3339_us};

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
    for f in &files {
        if args.all_devices || args.device.is_some() {
            println!("{}  [{}]", f.path, f.device);
        } else {
            println!("{}", f.path);
        }
        let mut versions = f.versions.clone();
        versions.sort_by_key(|v| std::cmp::Reverse((v.time_us, v.id)));
        for v in &versions {
            let what = if v.deleted {
                lang.pick("gelöscht", "deleted").to_owned()
            } else if let Some(target) = &v.symlink_target {
                format!("-> {target}")
            } else {
                bytes_short(v.size)
            };
            println!(
                "  {:>8}  {}  {what}",
                v.id,
                local_human(v.time_us, ctx.offset)
            );
        }
    }
    let count = files.len();
    println!("{}", crate::present::paths_count(count, lang));
    Ok(ExitCode::SUCCESS)
}
