//! Reading the agent's `list --json` output: an entry per path, its versions newest first.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// The `list --json` entry of `path`.
pub fn entry<'a>(list: &'a [Value], path: &Path) -> &'a Value {
    let want = path.to_str().expect("utf-8 test path");
    list.iter()
        .find(|e| e["path"].as_str() == Some(want))
        .unwrap_or_else(|| panic!("{want} not in list: {list:#?}"))
}

/// The versions of a list entry, newest first.
pub fn versions(e: &Value) -> &Vec<Value> {
    e["versions"].as_array().unwrap()
}

/// The newest version of a list entry.
pub fn newest(e: &Value) -> &Value {
    &e["versions"][0]
}

/// Every retained version of a file's content (no deletion marker, link or folder): id → (path,
/// content hash). A path that is not UTF-8 is given as `list --json` shows it (`{"hex":"…"}`).
pub fn retained_versions(list: &[Value]) -> BTreeMap<u64, (String, String)> {
    let mut out = BTreeMap::new();
    for e in list {
        let path = match e["path"].as_str() {
            Some(p) => p.to_owned(),
            None => e["path"].to_string(),
        };
        for v in versions(e) {
            if v["deleted"].as_bool() == Some(true) {
                continue;
            }
            if v["kind"] != "file" {
                continue;
            }
            out.insert(
                v["id"].as_u64().unwrap(),
                (path.clone(), v["hash"].as_str().unwrap().to_owned()),
            );
        }
    }
    out
}
