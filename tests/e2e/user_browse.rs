//! Finding the file in the browser, over HTTP against the real binaries (issue 14, ubrowse):
//! a tree with an umlaut folder backed up twice by the real agent lists the right entries at
//! each "Stand vom"; the timeline, search and deleted files find what they should; another
//! user gets 404 for every URL made of the first user's real device name and paths; a folder of
//! 20,000 files pages through all of them.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use asgard_e2e::{Agent, Server, UserWeb};

fn agent(server: &Server, user: &str, device: &str) -> Agent {
    let mut a = Agent::new(user, server);
    a.device = device.into();
    a.ok(["login"]);
    a
}

/// The URL form of a path (`web::userpath`: lowercase hex of the bytes).
fn hex(p: &Path) -> String {
    p.as_os_str()
        .as_encoded_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Percent-encoding of a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A Unix time (s) as the `datetime-local` picker writes it, in the local time zone the server
/// also runs in (`date` reads the same zone rules).
fn picker(secs: u64) -> String {
    let out = std::process::Command::new("date")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg("+%Y-%m-%dT%H:%M:%S")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn browse(device: &str, path: &Path, at: Option<&str>) -> String {
    let mut u = format!("/my/browse?device={}&path={}", enc(device), hex(path));
    if let Some(at) = at {
        u.push_str(&format!("&at={}", enc(at)));
    }
    u
}

fn entry(name: &str) -> String {
    format!("data-testid=\"entry-{name}\"")
}

#[test]
fn folders_at_each_time_timeline_search_deleted_and_nothing_for_another_user() {
    let server = Server::start();
    let web = UserWeb::new(&server);
    let anna = agent(&server, "anna", "annas-laptop");
    let bert = agent(&server, "bert", "berts-pc");
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("daten");
    let books = root.join("Bücher");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(books.join("a.txt"), b"eins").unwrap();
    std::fs::write(root.join("notiz.txt"), b"zwei").unwrap();
    // A Latin-1 name, not UTF-8: shown with its byte escaped, reachable by its raw bytes.
    let latin1 = {
        use std::os::unix::ffi::OsStrExt;
        root.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"))
    };
    std::fs::write(&latin1, b"latin").unwrap();
    anna.backup(&root);
    std::thread::sleep(Duration::from_millis(1100));
    let between = picker(now_secs());
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::remove_file(root.join("notiz.txt")).unwrap();
    std::fs::write(books.join("a.txt"), b"eins, geaendert").unwrap();
    std::fs::write(books.join("b.txt"), b"drei").unwrap();
    anna.backup(&root);

    let s = web.user_session(&anna);
    let now = web.get(&browse("annas-laptop", &root, None), Some(&s));
    assert_eq!(now.status, 200, "{}", now.body);
    assert!(now.body.contains(&entry("Bücher")), "{}", now.body);
    assert!(!now.body.contains(&entry("notiz.txt")), "{}", now.body);
    assert!(now.body.contains("data-testid=\"breadcrumbs\""));
    assert!(now.body.contains(&entry("caf\\xe9.txt")), "{}", now.body);
    let latin1_versions = format!("/my/versions?device=annas-laptop&path={}", hex(&latin1));
    assert!(
        now.body.contains(&latin1_versions.replace('&', "&amp;")),
        "{}",
        now.body
    );
    let lt = web.get(&latin1_versions, Some(&s));
    assert_eq!(lt.status, 200, "{}", lt.body);
    assert_eq!(lt.body.matches("data-testid=\"download-").count(), 1);
    assert!(now.body.contains("data-testid=\"crumb-root\""));
    let then = web.get(&browse("annas-laptop", &root, Some(&between)), Some(&s));
    assert_eq!(then.status, 200, "{}", then.body);
    assert!(then.body.contains(&entry("Bücher")), "{}", then.body);
    assert!(then.body.contains(&entry("notiz.txt")), "{}", then.body);
    assert!(
        then.body.contains("data-testid=\"at-shown\""),
        "{}",
        then.body
    );
    assert!(
        then.body.contains(&format!("value=\"{between}\"")),
        "{}",
        then.body
    );

    let b_now = web.get(&browse("annas-laptop", &books, None), Some(&s));
    assert!(b_now.body.contains(&entry("a.txt")) && b_now.body.contains(&entry("b.txt")));
    let b_then = web.get(&browse("annas-laptop", &books, Some(&between)), Some(&s));
    assert!(b_then.body.contains(&entry("a.txt")), "{}", b_then.body);
    assert!(!b_then.body.contains(&entry("b.txt")), "{}", b_then.body);
    // A time that is no time is refused, not read as "now".
    let bad = web.get(&browse("annas-laptop", &books, Some("gestern")), Some(&s));
    assert_eq!(bad.status, 400);

    // The timeline of a.txt: two content versions, each with its download and preview link.
    let versions = format!(
        "/my/versions?device=annas-laptop&path={}",
        hex(&books.join("a.txt"))
    );
    let t = web.get(&versions, Some(&s));
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(
        t.body.matches("data-testid=\"download-").count(),
        2,
        "{}",
        t.body
    );
    assert_eq!(t.body.matches("data-testid=\"preview-").count(), 2);

    let found = web.get("/my/search?q=NOTIZ", Some(&s));
    assert!(
        found.body.contains("data-testid=\"hit-0\""),
        "{}",
        found.body
    );
    assert!(found.body.contains("notiz.txt"));
    let deleted = web.get("/my/deleted", Some(&s));
    assert!(deleted.body.contains("notiz.txt"), "{}", deleted.body);
    assert!(
        deleted.body.contains("data-testid=\"hit-download-0\""),
        "{}",
        deleted.body
    );

    // Bert, with Anna's real device name and paths: nothing exists.
    let bert_data = tempfile::tempdir().unwrap();
    std::fs::write(bert_data.path().join("x"), b"x").unwrap();
    bert.backup(bert_data.path());
    let sb = web.user_session(&bert);
    for url in [
        browse("annas-laptop", &root, None),
        browse("annas-laptop", &books, Some(&between)),
        browse("annas-laptop", Path::new(""), None),
        versions.clone(),
        // Anna's paths on Bert's own device.
        browse("berts-pc", &root, None),
        format!(
            "/my/versions?device=berts-pc&path={}",
            hex(&books.join("a.txt"))
        ),
    ] {
        let p = web.get(&url, Some(&sb));
        assert_eq!(p.status, 404, "{url}: {}", p.body);
        assert!(
            !p.body.contains("a.txt") && !p.body.contains("Bücher"),
            "{url}"
        );
    }
    for url in [
        "/my/search?q=notiz",
        "/my/search?q=a.txt",
        "/my/deleted?since=2000-01-01T00:00",
    ] {
        let p = web.get(url, Some(&sb));
        assert_eq!(p.status, 200);
        assert!(
            p.body.contains("data-testid=\"scan-none\""),
            "{url}: {}",
            p.body
        );
        assert!(
            !p.body.contains("notiz.txt") && !p.body.contains("annas-laptop"),
            "{url}"
        );
    }
    // No session: to the login; an admin-less, cookie-less request sees nothing.
    let anon = web.get(&browse("annas-laptop", &root, None), None);
    assert_eq!(anon.status, 303);
    assert_eq!(anon.header("location"), "/login");
}

/// The next page's URL of a folder page, if it has one.
fn next_link(body: &str) -> Option<String> {
    let at = body.find("data-testid=\"pager-next\"")?;
    let head = &body[..at];
    let start = head.rfind("href=\"")? + 6;
    let end = start + head[start..].find('"')?;
    Some(head[start..end].replace("&amp;", "&"))
}

#[test]
fn a_folder_of_20000_files_pages_through_all_of_them() {
    let server = Server::start();
    let web = UserWeb::new(&server);
    let anna = agent(&server, "anna", "pc");
    let data = tempfile::tempdir().unwrap();
    let big = data.path().join("gross");
    std::fs::create_dir(&big).unwrap();
    std::fs::create_dir(big.join("unterordner")).unwrap();
    std::fs::write(big.join("unterordner").join("tief.txt"), b"t").unwrap();
    for i in 0..20_000 {
        std::fs::write(big.join(format!("f{i:05}.txt")), i.to_string()).unwrap();
    }
    anna.backup(&big);
    let s = web.user_session(&anna);
    let mut url = browse("pc", &big, None);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let p = web.get(&url, Some(&s));
        assert_eq!(p.status, 200, "{url}: {}", p.body);
        let rows: Vec<String> = p
            .body
            .split("data-testid=\"entry-")
            .skip(1)
            .map(|r| r[..r.find('"').unwrap()].to_owned())
            .collect();
        assert!(rows.len() <= 100, "{}", rows.len());
        seen.extend(rows);
        pages += 1;
        match next_link(&p.body) {
            Some(next) => url = next,
            None => break,
        }
        assert!(pages <= 202, "the pager does not end");
    }
    // The folder first, then every file once, in order.
    assert_eq!(seen.len(), 20_001);
    assert_eq!(seen[0], "unterordner");
    let files: Vec<String> = (0..20_000).map(|i| format!("f{i:05}.txt")).collect();
    assert_eq!(&seen[1..], &files[..]);
}
