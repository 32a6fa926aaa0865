//! Issue 14 (udown): getting files back in the browser, over HTTP against the real binaries.
//! A user session comes from a one-time link (`POST /api/web-link` with the device token), as
//! `asgard-agent web` gets it; then `/my/download/{version}`, `/my/preview/{version}` and
//! `/my/zip` are asked as a browser would, and by another user with the first user's real ids.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use asgard_e2e::*;

/// A browser-like client with one user session (the cookie from a one-time link).
struct UserWeb {
    api: Api,
    client: reqwest::Client,
    cookie: String,
}

/// An answer: status, headers, body (or the error that cut the body short).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Result<Vec<u8>, String>,
}

impl Answer {
    fn bytes(&self) -> &[u8] {
        self.body.as_deref().expect("a whole body")
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl UserWeb {
    /// Signs `agent`'s user in through a one-time link.
    fn login(server: &Server, agent: &Agent) -> UserWeb {
        let mut web = UserWeb::anonymous(server);
        let (status, link) = web
            .api
            .post_json("/api/web-link", Some(&agent.token()), &json!({}));
        assert_eq!(status, 200, "{link}");
        let a = web.get(link["path"].as_str().unwrap(), &[]);
        assert_eq!(a.status, 303);
        web.cookie = session_of(&a);
        web
    }

    /// Signs an admin in at `/admin/login` (for a look at the audit log).
    fn admin(server: &Server, name: &str, password: &str) -> UserWeb {
        let mut web = UserWeb {
            cookie: String::new(),
            ..UserWeb::anonymous(server)
        };
        let host = web.api.base.trim_start_matches("https://").to_owned();
        let req = web
            .client
            .post(format!("{}/admin/login", web.api.base))
            .header("origin", format!("https://{host}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("name", name.into()),
                ("password", password.into()),
            ]));
        let a = web.send(req);
        assert_eq!(a.status, 303);
        web.cookie = session_of(&a);
        web
    }

    fn anonymous(server: &Server) -> UserWeb {
        UserWeb {
            api: Api::new(server),
            client: reqwest::Client::builder()
                .tls_danger_accept_invalid_certs(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: String::new(),
        }
    }

    fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let req = if self.cookie.is_empty() {
            req
        } else {
            req.header("cookie", format!("asgard_session={}", self.cookie))
        };
        self.api.block_on(async {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| format!("{e:?}"));
            Answer {
                status,
                headers,
                body,
            }
        })
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = self.client.get(format!("{}{path}", self.api.base));
        for (k, v) in headers {
            req = req.header(*k, HeaderValue::from_str(v).unwrap());
        }
        self.send(req)
    }

    /// The session's CSRF token, from the hidden field of the start page's logout form.
    fn csrf(&self) -> String {
        let page = self.get("/my", &[]);
        let html = text(page.bytes());
        let at = html.find("name=\"csrf\"").expect("a csrf field");
        let rest = &html[at..];
        let v = rest.find("value=\"").unwrap() + 7;
        rest[v..v + rest[v..].find('"').unwrap()].to_owned()
    }

    /// `POST /my/zip` with these fields, from the server's own origin.
    fn post_zip(&self, fields: &[(&str, String)]) -> Answer {
        let host = self.api.base.trim_start_matches("https://").to_owned();
        let req = self
            .client
            .post(format!("{}/my/zip", self.api.base))
            .header("origin", format!("https://{host}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields));
        self.send(req)
    }
}

/// The session cookie an answer sets.
fn session_of(a: &Answer) -> String {
    let cookie = a
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("asgard_session="))
        .expect("a session cookie");
    cookie.split(';').next().unwrap().to_owned()
}

fn form(fields: &[(&str, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn hex(path: &Path) -> String {
    path.as_os_str()
        .as_encoded_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The opaque ids of the versions of the file `path`, newest first, from `list --json`.
fn version_ids(agent: &Agent, path: &Path) -> Vec<u64> {
    let listed = agent.list(Some(path));
    let entry = listed
        .iter()
        .find(|e| e["path"].as_str() == path.to_str())
        .unwrap_or_else(|| panic!("{} in {listed:?}", path.display()));
    entry["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["deleted"] == false)
        .map(|v| v["id"].as_u64().unwrap())
        .collect()
}

/// Unpacks a zip with the `zip` crate: name -> content (folders end in `/`, empty content).
fn unpack(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("a complete zip");
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        out.insert(f.name().to_owned(), b);
    }
    out
}

#[test]
fn every_version_downloads_as_the_cli_restores_it_with_ranges_names_previews_and_isolation() {
    let server = Server::start();
    let anna = Agent::new("anna", &server);
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("Bücher");
    std::fs::create_dir(&root).unwrap();
    let file = root.join("Über.txt");
    let mut contents = Vec::new();
    for i in 0..4u8 {
        let data: Vec<u8> = (0..200_000u32 + u32::from(i) * 1000)
            .map(|n| (n.wrapping_mul(31) ^ u32::from(i)) as u8)
            .collect();
        std::fs::write(&file, &data).unwrap();
        set_mtime(&file, 1_600_000_000 + u64::from(i) * 100);
        anna.backup(&root);
        contents.push(data);
    }
    std::fs::write(root.join("bild.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::write(root.join("seite.html"), b"<script>alert(1)</script>").unwrap();
    anna.backup(&root);

    let web = UserWeb::login(&server, &anna);
    let ids = version_ids(&anna, &file);
    assert_eq!(ids.len(), 4);
    let restored = tempfile::tempdir().unwrap();
    for (n, (id, want)) in ids.iter().zip(contents.iter().rev()).enumerate() {
        let a = web.get(&format!("/my/download/{id}"), &[]);
        assert_eq!(a.status, 200);
        assert_eq!(a.bytes(), &want[..], "version {n}");
        assert_eq!(a.header("content-length"), want.len().to_string());
        assert_eq!(a.header("accept-ranges"), "bytes");
        assert_eq!(
            a.header("content-disposition"),
            "attachment; filename=\"Ueber.txt\"; filename*=UTF-8''%C3%9Cber.txt"
        );
        // The CLI restore of the same version gives the same bytes.
        let to = restored.path().join(n.to_string());
        let out = anna.restore_to(&file, &to, &["--version", &id.to_string()]);
        assert_success(&out);
        assert_eq!(std::fs::read(to.join("Über.txt")).unwrap(), a.bytes());
    }

    // A range: exactly those bytes; one past the end: 416 with the size.
    let a = web.get(
        &format!("/my/download/{}", ids[3]),
        &[("range", "bytes=1000-70999")],
    );
    assert_eq!(a.status, 206);
    assert_eq!(a.bytes(), &contents[0][1000..71000]);
    assert_eq!(
        a.header("content-range"),
        format!("bytes 1000-70999/{}", contents[0].len())
    );
    let a = web.get(
        &format!("/my/download/{}", ids[0]),
        &[("range", "bytes=9999999-")],
    );
    assert_eq!(a.status, 416);
    assert_eq!(
        a.header("content-range"),
        format!("bytes */{}", contents[3].len())
    );

    // Previews: a picture inline and sandboxed; HTML is no preview (415, a page with the
    // download).
    let png = version_ids(&anna, &root.join("bild.png"))[0];
    let a = web.get(&format!("/my/preview/{png}"), &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), "image/png");
    assert!(a.header("content-security-policy").starts_with("sandbox"));
    assert_eq!(a.header("x-content-type-options"), "nosniff");
    assert!(a.header("content-disposition").starts_with("inline;"));
    let html = version_ids(&anna, &root.join("seite.html"))[0];
    let a = web.get(&format!("/my/preview/{html}"), &[]);
    assert_eq!(a.status, 415);
    let page = text(a.bytes());
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains(&format!("/my/download/{html}")), "{page}");
    assert!(page.contains("Keine Vorschau"), "{page}");

    // Bert, another user, tries anna's real ids: the same 404 as a made-up one.
    let bert = Agent::new("bert", &server);
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("x"), b"bert").unwrap();
    bert.backup(other.path());
    let bweb = UserWeb::login(&server, &bert);
    for id in ids.iter().chain([&png, &html]) {
        for what in ["download", "preview"] {
            let a = bweb.get(&format!("/my/{what}/{id}"), &[]);
            assert_eq!(a.status, 404, "{what} {id}");
            assert!(!a.bytes().windows(4).any(|w| w == b"\x89PNG"));
        }
    }
    assert_eq!(bweb.get("/my/download/12345", &[]).status, 404);
    assert_eq!(bweb.get("/my/download/nichts", &[]).status, 404);
    // Anna's folder by its real path, on bert's device of the same name and under anna's
    // device name: 404.
    let zip = format!("/my/zip?device=testhost&path={}", hex(&root));
    assert_eq!(bweb.get(&zip, &[]).status, 404);
    let csrf = bweb.csrf();
    let a = bweb.post_zip(&[
        ("csrf", csrf),
        ("device", "testhost".into()),
        ("path", hex(&file)),
    ]);
    assert_eq!(a.status, 404);
    // Without a session: to the login, not a byte.
    let anon = UserWeb::anonymous(&server);
    let a = anon.get(&format!("/my/download/{}", ids[0]), &[]);
    assert_eq!((a.status, a.header("location")), (303, "/login"));

    // Every download and preview is in the audit log: who, which device, path and version.
    AdminAccount::create(&server, "root", "ein langes Passwort 1");
    let admin = UserWeb::admin(&server, "root", "ein langes Passwort 1");
    let audit = text(admin.get("/admin/audit", &[]).bytes());
    for action in ["download", "preview"] {
        assert!(
            audit.contains(&format!("data-action=\"{action}\"")),
            "{action}: {audit}"
        );
    }
    assert!(audit.contains("user:anna"), "{audit}");
    assert!(audit.contains("device:anna/testhost"), "{audit}");
    assert!(audit.contains(&format!("version={}", ids[3])), "{audit}");
    assert!(audit.contains("range=1000-70999"), "{audit}");
}

#[test]
fn a_zip_of_a_folder_at_a_past_time_holds_exactly_the_files_of_that_time() {
    let server = Server::start();
    let anna = Agent::new("anna", &server);
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("Projekt Ä");
    std::fs::create_dir_all(root.join("alt")).unwrap();
    std::fs::write(root.join("a.txt"), b"erste Fassung").unwrap();
    std::fs::write(root.join("alt/b.bin"), vec![7u8; 300_000]).unwrap();
    set_mtime(&root.join("a.txt"), 1_500_000_000);
    anna.backup(&root);
    settle();
    let between_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    settle();
    std::fs::write(root.join("a.txt"), b"zweite Fassung").unwrap();
    std::fs::remove_file(root.join("alt/b.bin")).unwrap();
    std::fs::write(root.join("neu.txt"), b"neu").unwrap();
    anna.backup(&root);

    let web = UserWeb::login(&server, &anna);
    let url = format!(
        "/my/zip?device=testhost&path={}&at={between_us}",
        hex(&root)
    );
    let a = web.get(&url, &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), "application/zip");
    assert!(
        a.header("content-disposition")
            .contains("filename*=UTF-8''Projekt%20%C3%84.zip"),
        "{}",
        a.header("content-disposition")
    );
    let files = unpack(a.bytes());
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "Projekt Ä/",
            "Projekt Ä/a.txt",
            "Projekt Ä/alt/",
            "Projekt Ä/alt/b.bin"
        ]
    );
    assert_eq!(files["Projekt Ä/a.txt"], b"erste Fassung");
    assert_eq!(files["Projekt Ä/alt/b.bin"], vec![7u8; 300_000]);
    let mut z = zip::ZipArchive::new(Cursor::new(a.bytes().to_vec())).unwrap();
    let t = z
        .by_name("Projekt Ä/a.txt")
        .unwrap()
        .last_modified()
        .unwrap();
    // 2017-07-14 02:40:00 UTC
    assert_eq!(
        (t.year(), t.month(), t.day(), t.hour(), t.minute()),
        (2017, 7, 14, 2, 40)
    );

    // Now, as a selection from the folder's listing (CSRF and origin checked).
    let csrf = web.csrf();
    let fields = [
        ("device", "testhost".to_owned()),
        ("path", hex(&root.join("a.txt"))),
        ("path", hex(&root.join("neu.txt"))),
    ];
    let mut with = vec![("csrf", csrf)];
    with.extend(fields.iter().cloned());
    let a = web.post_zip(&with);
    assert_eq!(a.status, 200);
    let files = unpack(a.bytes());
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["a.txt", "neu.txt"]);
    assert_eq!(files["a.txt"], b"zweite Fassung");
    let mut forged = vec![("csrf", "falsch".to_owned())];
    forged.extend(fields.iter().cloned());
    assert_eq!(web.post_zip(&forged).status, 403);
    // A path that did not exist at the time: 404 before any byte.
    let url = format!(
        "/my/zip?device=testhost&path={}&at={between_us}",
        hex(&root.join("neu.txt"))
    );
    assert_eq!(web.get(&url, &[]).status, 404);

    AdminAccount::create(&server, "root", "ein langes Passwort 1");
    let admin = UserWeb::admin(&server, "root", "ein langes Passwort 1");
    let audit = text(admin.get("/admin/audit", &[]).bytes());
    assert!(audit.contains("data-action=\"zip_download\""), "{audit}");
    assert!(audit.contains(&format!("at={between_us}")), "{audit}");
}

/// The server's resident set in KiB, from `/proc/<pid>/status`.
#[cfg(target_os = "linux")]
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Acceptance 3, the big one: a folder of 1 GiB in more than 10,000 files, zipped while the
/// server's RSS stays under 100 MiB above its idle figure; the zip unpacks to identical files.
#[cfg(target_os = "linux")]
#[test]
fn big_zip_of_1_gib_in_over_10000_files_keeps_the_server_rss_bounded() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    const FILES: usize = 10_240;
    const SIZE: usize = 100 * 1024 + 17;
    let server = Server::start();
    let anna = Agent::new("anna", &server);
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("gross");
    // Seeded, incompressible: xorshift64* over the whole tree.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut hashes = BTreeMap::new();
    for i in 0..FILES {
        let dir = root.join(format!("d{:03}", i / 100));
        std::fs::create_dir_all(&dir).unwrap();
        let mut data = vec![0u8; SIZE];
        for c in data.chunks_mut(8) {
            let v = next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
        let mut f = std::fs::File::create(dir.join(format!("f{i:05}"))).unwrap();
        f.write_all(&data).unwrap();
        hashes.insert(
            format!("gross/d{:03}/f{i:05}", i / 100),
            blake3::hash(&data),
        );
    }
    anna.backup(&root);

    let pid = server.child.as_ref().unwrap().id();
    let web = UserWeb::login(&server, &anna);
    // Idle: after a small request, so the session and the page code are warm.
    let _ = web.get("/my", &[]);
    let idle = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(idle));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    // The zip goes to a file as it comes (the test holds no gigabyte either).
    let out_dir = tempfile::tempdir().unwrap();
    let zip_path = out_dir.path().join("gross.zip");
    let url = format!(
        "{}/my/zip?device=testhost&path={}",
        web.api.base,
        hex(&root)
    );
    let req = web
        .client
        .get(url)
        .header("cookie", format!("asgard_session={}", web.cookie));
    let written = web.api.block_on(async {
        let mut resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let mut file = std::fs::File::create(&zip_path).unwrap();
        let mut n = 0u64;
        while let Some(piece) = resp.chunk().await.unwrap() {
            file.write_all(&piece).unwrap();
            n += piece.len() as u64;
        }
        n
    });
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    assert!(written > (FILES * SIZE) as u64);
    assert!(
        peak < idle + 100 * 1024,
        "server RSS rose from {idle} KiB to {peak} KiB during a {written}-byte zip"
    );

    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut seen = 0;
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        if f.is_dir() {
            continue;
        }
        let mut h = blake3::Hasher::new();
        std::io::copy(&mut f, &mut h).unwrap();
        assert_eq!(Some(&h.finalize()), hashes.get(f.name()), "{}", f.name());
        seen += 1;
    }
    assert_eq!(seen, FILES);
    eprintln!("big zip: {written} bytes, server RSS idle {idle} KiB, peak {peak} KiB");
}
