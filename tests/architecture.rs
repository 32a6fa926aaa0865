//! The structure rules of the code base, checked on the sources (issue 10): they hold the layers
//! apart so that the web pages, the S3 store and the notifications fit in without a rewrite.
//!
//! - no file in `asgard-server/src` or `asgard-agent/src` over 600 lines, test files aside;
//! - no import cycle between the top-level modules of a crate (product code; tests may reach
//!   across layers);
//! - the metadata layer never calls the chunk store: no `ChunkStore` in `db/`;
//! - no `match` on a language outside the presentation modules (`present/`, `present.rs`, and
//!   core's `lang.rs` and `fmt.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A test file: `tests.rs`, or any file in a `tests` folder.
fn is_test_file(rel: &Path) -> bool {
    rel.file_name().is_some_and(|n| n == "tests.rs")
        || rel.components().any(|c| c.as_os_str() == "tests")
}

/// The product code of a file: without `//` comments and without inline `#[cfg(test)]` modules.
fn product_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            // The item after the attribute: skip it with its braces (or up to its `;`).
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                let code = l.split("//").next().unwrap_or("");
                depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
                opened |= code.contains('{');
                if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line.split(" //").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// For each top-level module of the crate in `src`, the other top-level modules it names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap();
        if is_test_file(rel) || rel == Path::new("lib.rs") || rel == Path::new("main.rs") {
            continue;
        }
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        let code = product_code(&std::fs::read_to_string(&file).unwrap());
        let uses = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                uses.insert(name);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one (as the list of modules along it).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_file_is_over_600_lines_except_tests() {
    let mut long = Vec::new();
    for krate in ["asgard-server", "asgard-agent"] {
        let src = root().join(krate).join("src");
        for file in rust_files(&src) {
            let rel = file.strip_prefix(&src).unwrap();
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_LINES && !is_test_file(rel) {
                long.push(format!("{krate}/src/{}: {lines} lines", rel.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split by responsibility:\n{}",
        long.join("\n")
    );
}

#[test]
fn no_import_cycles_between_modules() {
    for krate in ["asgard-server", "asgard-agent", "asgard-core"] {
        let graph = module_graph(&root().join(krate).join("src"));
        assert!(graph.len() > 3, "{krate}: modules not found: {graph:?}");
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}: import cycle {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let code = product_code(
        "use crate::x;\n// crate::y\n#[cfg(test)]\nmod tests {\n    use crate::z;\n}\n",
    );
    assert_eq!(code, "use crate::x;\n");
}

#[test]
fn the_metadata_layer_never_calls_the_chunk_store() {
    let db = root().join("asgard-server/src/db");
    for file in rust_files(&db) {
        let rel = file.strip_prefix(&db).unwrap();
        if is_test_file(rel) {
            continue;
        }
        let code = product_code(&std::fs::read_to_string(&file).unwrap());
        assert!(
            !code.contains("ChunkStore"),
            "db/{} uses the chunk store: store lookups belong in the service layer, before the \
             write transaction",
            rel.display()
        );
    }
}

/// Whether `rel` (below a crate's `src`) is a presentation module.
fn is_presentation(rel: &Path) -> bool {
    rel.components().any(|c| c.as_os_str() == "present")
        || rel.file_name().is_some_and(|n| n == "present.rs")
}

#[test]
fn languages_are_matched_only_in_presentation_modules() {
    let mut found = Vec::new();
    for krate in ["asgard-server", "asgard-agent", "asgard-core"] {
        let src = root().join(krate).join("src");
        for file in rust_files(&src) {
            let rel = file.strip_prefix(&src).unwrap();
            if is_test_file(rel)
                || is_presentation(rel)
                || (krate == "asgard-core"
                    && (rel == Path::new("lang.rs") || rel == Path::new("fmt.rs")))
            {
                continue;
            }
            let code = product_code(&std::fs::read_to_string(&file).unwrap());
            for line in code.lines() {
                let arm = ["Lang::De", "Lang::En"].iter().any(|l| {
                    line.contains(&format!("{l} =>"))
                        || line.contains(&format!("{l}) =>"))
                        || line.contains(&format!("{l} |"))
                        || line.contains(&format!("== {l}"))
                        || line.contains(&format!("!= {l}"))
                });
                if arm {
                    found.push(format!("{krate}/src/{}: {}", rel.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "text belongs in a presentation module:\n{}",
        found.join("\n")
    );
}
