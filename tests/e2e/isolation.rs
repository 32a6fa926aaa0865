//! The isolation matrix of issue 11 (acceptance 1): alice backs up with the real agent; then bob
//! with his own valid token, registrations that look like alice (pending: `alice` with other
//! device names, `Alice`, `alice `, and alice's own device name), no token and wrong tokens try
//! every API endpoint with every id alice's data is known by (version ids, chunk ids, device
//! name, paths, her `list` cursor, an approval code of her user).
//!
//! Each request is sent twice: with alice's ids and with control ids that exist nowhere. The two
//! answers must be the same (status and body, after putting each id in place of its control):
//! then the answer says nothing about alice's data, neither bytes nor names nor counts. Requests
//! without any id are asked before and after alice's backup and must not change. And no answer
//! may hold one of alice's content markers, file names, her device name, chunk, version or run
//! ids unless the request itself carried it.
//!
//! Regressions by finding: 1 (open registration) — the pending look-alikes here, and
//! `enroll::stranger_registering_as_alice_gets_a_pending_device_that_reads_nothing`;
//! 2 (the metrics part; the upload oracle is the oracle test's) —
//! [`finding_2_metrics_need_the_token_and_show_global_counts_only`]; 3 — the restore-escape
//! tests; 4 (`device reset`) — [`finding_4_after_device_reset_a_look_alike_gets_nothing`] and
//! `enroll::reset_device_comes_back_only_with_the_admins_code`.

use std::path::{Path, PathBuf};

use asgard_e2e::*;
use serde_json::{Value, json};

/// In every file of alice: the bytes that must never reach anybody else.
const MARKER: &str = "ALICE-INHALT-4f9a2c71";
const ALICE_DEVICE: &str = "alice-notebook-x7";
const CONTROL_DEVICE: &str = "kein-geraet-q3z";

/// Everything one user's data is known by from the outside: what an attacker passes.
#[derive(Debug, Clone)]
struct Ids {
    device: String,
    versions: Vec<u64>,
    /// (chunk id hex, plaintext length)
    chunks: Vec<(String, u64)>,
    paths: Vec<String>,
    cursor: String,
    /// An approval code of a pending registration of the user.
    code: String,
}

impl Ids {
    /// Ids of the same shape that exist nowhere.
    fn control(&self, seed: u64) -> Ids {
        let mut rng = Rng::new(seed);
        let hex = |rng: &mut Rng, n: usize| {
            let mut b = vec![0u8; n];
            rng.fill(&mut b);
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        };
        let paths: Vec<String> = (0..self.paths.len())
            .map(|i| format!("/nirgends/kein-pfad-{i}.txt"))
            .collect();
        let cursor = format!("{}{}", hex(&mut rng, 8), to_hex(paths[0].as_bytes()));
        const CHARS: &str = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
        let code = self
            .code
            .chars()
            .map(|c| match CHARS.find(c) {
                Some(i) => CHARS.as_bytes()[(i + 1) % CHARS.len()] as char,
                None => c,
            })
            .collect();
        Ids {
            device: CONTROL_DEVICE.into(),
            versions: self
                .versions
                .iter()
                .map(|_| rng.range(1 << 40, 1 << 52))
                .collect(),
            chunks: self
                .chunks
                .iter()
                .map(|(_, len)| (hex(&mut rng, 32), *len))
                .collect(),
            paths,
            cursor,
            code,
        }
    }

    /// (text, placeholder) pairs: every id as it may appear in a request or an answer.
    fn texts(&self) -> Vec<String> {
        let mut out = vec![self.device.clone(), self.cursor.clone(), self.code.clone()];
        out.extend(self.versions.iter().map(u64::to_string));
        out.extend(self.chunks.iter().map(|(c, _)| c.clone()));
        for p in &self.paths {
            out.push(p.clone());
            out.push(to_hex(p.as_bytes()));
        }
        out
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// One request of the matrix.
enum Body {
    None,
    Json(Value),
    /// A multipart upload with one part of this name and content that is not its chunk.
    Upload(String),
}

struct Req {
    name: &'static str,
    path: String,
    body: Body,
}

impl Req {
    fn get(name: &'static str, path: String) -> Req {
        Req {
            name,
            path,
            body: Body::None,
        }
    }
    fn post(name: &'static str, path: &str, body: Value) -> Req {
        Req {
            name,
            path: path.into(),
            body: Body::Json(body),
        }
    }
    /// The request as text, to tell which ids it carries.
    fn text(&self) -> String {
        match &self.body {
            Body::None => self.path.clone(),
            Body::Json(v) => format!("{} {v}", self.path),
            Body::Upload(part) => format!("{} {part}", self.path),
        }
    }
}

/// Every endpoint with every id-taking parameter, filled with `ids`.
fn matrix(ids: &Ids, at_us: i64) -> Vec<Req> {
    let chunks: Vec<&str> = ids.chunks.iter().map(|(c, _)| c.as_str()).collect();
    let size: u64 = ids.chunks.iter().map(|(_, l)| l).sum();
    let refs: Vec<Value> = ids
        .chunks
        .iter()
        .map(|(c, l)| json!({ "id": c, "len": l }))
        .collect();
    let path = &ids.paths[0];
    let hex = to_hex(path.as_bytes());
    let (dev, cur) = (&ids.device, &ids.cursor);
    let mut m = vec![
        Req::post("check", "/api/check", json!({ "chunks": chunks })),
        Req {
            name: "upload",
            path: "/api/upload".into(),
            body: Body::Upload(chunks[0].to_owned()),
        },
        Req::post(
            "commit file with her chunks",
            "/api/commit",
            json!({ "entries": [{ "kind": "file", "path": path,
                "meta": { "size": size, "mtime_ns": 1, "hash": chunks[0],
                          "params": { "min": 262144, "avg": 1048576, "max": 4194304 },
                          "chunks": refs } }] }),
        ),
        Req::post(
            "commit deletion of her path",
            "/api/commit",
            json!({ "entries": [{ "kind": "deleted", "path": path }] }),
        ),
        Req::get("list device", format!("/api/list?device={dev}")),
        Req::get(
            "list device all",
            format!("/api/list?device={dev}&all_devices=true"),
        ),
        Req::get(
            "list prefix",
            format!("/api/list?all_devices=true&prefix_hex={hex}"),
        ),
        Req::get(
            "list prefix device",
            format!("/api/list?device={dev}&prefix_hex={hex}"),
        ),
        Req::get("list cursor", format!("/api/list?cursor={cur}")),
        Req::get(
            "list cursor all",
            format!("/api/list?all_devices=true&cursor={cur}&limit=1"),
        ),
        Req::get(
            "list at",
            format!("/api/list?all_devices=true&at_us={at_us}&limit=1&prefix_hex={hex}"),
        ),
        Req::post("restore path", "/api/restore", json!({ "path": path })),
        Req::post(
            "restore path at",
            "/api/restore",
            json!({ "path": path, "at_us": at_us }),
        ),
        Req::post(
            "restore device path",
            "/api/restore",
            json!({ "device": dev, "path": path }),
        ),
        Req::post(
            "manifest",
            "/api/manifest",
            json!({ "version_ids": ids.versions }),
        ),
        Req::post("fetch", "/api/fetch", json!({ "chunks": chunks })),
        Req::post("fetch one", "/api/fetch", json!({ "chunks": [chunks[0]] })),
        Req::post(
            "approve her pending device",
            "/api/devices/approve",
            json!({ "code": ids.code }),
        ),
    ];
    for &v in &ids.versions {
        m.push(Req::post(
            "restore version",
            "/api/restore",
            json!({ "version_id": v }),
        ));
        m.push(Req::post(
            "restore version device",
            "/api/restore",
            json!({ "version_id": v, "device": dev }),
        ));
        m.push(Req::post(
            "manifest one",
            "/api/manifest",
            json!({ "version_ids": [v] }),
        ));
    }
    for c in &chunks {
        m.push(Req::get("chunk", format!("/api/chunks/{c}")));
    }
    m
}

/// Requests that take no id: their answers must not change when alice backs up.
fn idless() -> Vec<Req> {
    vec![
        Req::get("list", "/api/list".into()),
        Req::get("list all", "/api/list?all_devices=true".into()),
        Req::get("runs", "/api/runs".into()),
        Req::get("runs limit", "/api/runs?limit=1".into()),
        Req::get("metrics", "/metrics".into()),
        Req::post("check nothing", "/api/check", json!({ "chunks": [] })),
        Req::post(
            "manifest nothing",
            "/api/manifest",
            json!({ "version_ids": [] }),
        ),
    ]
}

/// An answer as the matrix compares it: status, headers (sorted, without `date`,
/// `content-length` and `connection`, which differ for reasons of their own: the time, the
/// length of an echoed id, whether the refused request's body had arrived yet) and body as text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

struct Client {
    api: Api,
    raw: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Client {
    fn new(server: &Server) -> Client {
        let api = Api::new(server);
        let raw = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Client { api, raw, rt }
    }

    fn send(&self, req: &Req, token: Option<&str>) -> Answer {
        let url = format!("{}{}", self.api.base, req.path);
        let mut r = match &req.body {
            Body::None => self.raw.get(url),
            Body::Json(v) => self.raw.post(url).json(v),
            Body::Upload(part) => {
                let bytes = asgard_core::stored::encode(b"nicht der Inhalt dieses Chunks", 3);
                let form = reqwest::multipart::Form::new().part(
                    part.clone(),
                    reqwest::multipart::Part::bytes(bytes).file_name(part.clone()),
                );
                self.raw.post(url).multipart(form)
            }
        };
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        self.rt.block_on(async {
            let resp = r
                .send()
                .await
                .unwrap_or_else(|e| panic!("{} {}: {e}", req.name, req.path));
            let status = resp.status().as_u16();
            let mut headers: Vec<String> = resp
                .headers()
                .iter()
                .filter(|(k, _)| !["date", "content-length", "connection"].contains(&k.as_str()))
                .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            headers.sort();
            let body = text(&resp.bytes().await.unwrap());
            Answer {
                status,
                headers: headers.join("\n"),
                body,
            }
        })
    }
}

/// Who tries: a label, the token, and whether a 2xx answer is allowed at all (only a valid,
/// active token of another user may get answers about its own data).
struct Attacker {
    who: String,
    token: Option<String>,
    active: bool,
}

/// The strings that must not appear in an answer (unless the request carried them).
fn needles(alice: &Ids, runs: &[u64], root: &Path) -> Vec<String> {
    let mut n = vec![
        MARKER.to_owned(),
        "alice-bilanz".into(),
        "strand-foto".into(),
        "urlaub-alice".into(),
        "link-zu-bilanz".into(),
        ALICE_DEVICE.into(),
        root.to_str().unwrap().to_owned(),
        to_hex(root.to_str().unwrap().as_bytes()),
    ];
    n.extend(alice.texts());
    n.extend(runs.iter().map(u64::to_string));
    n.retain(|s| !s.is_empty());
    n
}

/// Runs the matrix for one attacker: the same answer for alice's ids and for control ids, no
/// needle in any answer, no success for a token that is not active.
/// Returns the number of requests sent.
fn attack(client: &Client, a: &Attacker, alice: &Ids, control: &Ids, needles: &[String]) -> usize {
    let at = now_us();
    let token = a.token.as_deref();
    let (real, fake) = (matrix(alice, at), matrix(control, at));
    let (alice_texts, control_texts) = (alice.texts(), control.texts());
    for (r, f) in real.iter().zip(&fake) {
        let got = client.send(r, token);
        let control_got = client.send(f, token);
        let what = format!("{} / {}: {}", a.who, r.name, r.text());
        if !a.active {
            assert!(
                got.status == 401 || got.status == 403,
                "{what}: {got:?} (only 401 or 403 for an inactive token)"
            );
        }
        // Put each id in place of its control: the answers must then be equal.
        let norm = |answer: &Answer, texts: &[String]| {
            let mut n = answer.clone();
            for (i, x) in texts.iter().enumerate() {
                let slot = format!("<id{i}>");
                n.headers = n.headers.replace(x.as_str(), &slot);
                n.body = n.body.replace(x.as_str(), &slot);
            }
            n
        };
        assert_eq!(
            norm(&got, &alice_texts),
            norm(&control_got, &control_texts),
            "{what}: alice's ids are answered differently from ids that exist nowhere"
        );
        let sent = r.text();
        for n in needles.iter().filter(|n| !sent.contains(n.as_str())) {
            assert!(
                !got.body.contains(n.as_str()) && !got.headers.contains(n.as_str()),
                "{what}: answer leaks {n}: {got:?}"
            );
        }
    }
    real.len() * 2
}

/// alice's tree: content markers and telling names; returns its root.
fn alice_tree(work: &Path) -> PathBuf {
    let root = work.join("alice-daten");
    std::fs::create_dir_all(root.join("urlaub-alice")).unwrap();
    std::fs::write(
        root.join("alice-bilanz-geheim.txt"),
        format!("{MARKER} Kontostand 48.213,07 EUR\n"),
    )
    .unwrap();
    let mut photo = MARKER.as_bytes().to_vec();
    photo.extend(random_bytes(3 << 20, 11));
    std::fs::write(root.join("urlaub-alice").join("strand-foto.bin"), photo).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("alice-bilanz-geheim.txt", root.join("link-zu-bilanz")).unwrap();
    root
}

/// alice backs up twice (two versions of one file); returns her agent, her tree and her ids
/// (the approval code is filled in later).
fn alice_backs_up(server: &Server, work: &Path) -> (Agent, PathBuf, Ids, Vec<u64>) {
    let mut alice = Agent::new("alice", server);
    alice.device = ALICE_DEVICE.into();
    let root = alice_tree(work);
    alice.backup(&root);
    std::fs::write(
        root.join("alice-bilanz-geheim.txt"),
        format!("{MARKER} Kontostand 51.870,44 EUR\n"),
    )
    .unwrap();
    alice.backup(&root);

    let list = alice.list(None);
    let token = alice.token();
    let api = Api::new(server);
    let mut versions = Vec::new();
    let mut paths = Vec::new();
    for e in &list {
        paths.push(e["path"].as_str().unwrap().to_owned());
        versions.extend(versions_of(e));
    }
    // Her file versions' chunks, from her own manifest.
    let (st, m) = api.post_json(
        "/api/manifest",
        Some(&token),
        &json!({ "version_ids": versions }),
    );
    assert_eq!(st, 200, "{m}");
    let mut chunks: Vec<(String, u64)> = Vec::new();
    for v in m["versions"].as_array().unwrap() {
        for c in v["chunks"].as_array().unwrap() {
            let c = (
                c["id"].as_str().unwrap().to_owned(),
                c["len"].as_u64().unwrap(),
            );
            if !chunks.contains(&c) {
                chunks.push(c);
            }
        }
    }
    assert!(chunks.len() >= 3, "the photo is cut into several chunks");
    let (st, body) = api.get("/api/list?all_devices=true&limit=1", Some(&token));
    assert_eq!(st, 200);
    let page: Value = serde_json::from_slice(&body).unwrap();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (st, body) = api.get("/api/runs", Some(&token));
    assert_eq!(st, 200);
    let runs: Value = serde_json::from_slice(&body).unwrap();
    let runs: Vec<u64> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(runs.len(), 2);
    let ids = Ids {
        device: ALICE_DEVICE.into(),
        versions,
        chunks,
        paths,
        cursor,
        code: String::new(),
    };
    (alice, root, ids, runs)
}

fn versions_of(e: &Value) -> Vec<u64> {
    versions(e)
        .iter()
        .map(|v| v["id"].as_u64().unwrap())
        .collect()
}

/// A token-less registration as `user` on `device`: must be pending; its token and code.
fn register_pending(api: &Api, user: &str, device: &str) -> (String, String) {
    let body = json!({ "protocol_version": asgard_core::protocol::PROTOCOL_VERSION,
        "user": user, "device": device, "os": "linux", "os_version": "t", "agent_version": "t" });
    let (st, answer) = api.post_json("/api/login", None, &body);
    assert_eq!(st, 200, "{answer}");
    assert_eq!(answer["status"], "pending", "{user:?}/{device}: {answer}");
    (
        answer["token"].as_str().unwrap().to_owned(),
        answer["approval_code"].as_str().unwrap().to_owned(),
    )
}

/// Answers to the requests without ids, for one token.
fn idless_answers(client: &Client, token: Option<&str>) -> Vec<Answer> {
    idless().iter().map(|r| client.send(r, token)).collect()
}

/// The matrix: bob (active, with data of his own), four look-alike registrations of alice, no
/// token and two wrong tokens, against every endpoint with every id of alice's.
#[test]
fn isolation_matrix_every_endpoint_every_id() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let client = Client::new(&server);

    // bob first, with a file of his own; what he sees before alice exists.
    let bob = Agent::new("bob", &server);
    let bob_root = work.path().join("bob-daten");
    std::fs::create_dir_all(&bob_root).unwrap();
    std::fs::write(bob_root.join("bob-notizen.txt"), b"nur bob").unwrap();
    bob.backup(&bob_root);
    let bob_token = bob.token();
    let wrong = [
        format!("asg_{}", "0".repeat(64)),
        format!("{}x", &bob_token[..bob_token.len() - 1]),
    ];
    let before: Vec<_> = [Some(bob_token.as_str()), None, Some(wrong[0].as_str())]
        .iter()
        .map(|t| idless_answers(&client, *t))
        .collect();

    let (alice, root, mut alice_ids, runs) = alice_backs_up(&server, work.path());
    // Her ids are opaque: large, not a run of small numbers that would count everybody's.
    for &v in alice_ids.versions.iter().chain(&runs) {
        assert!((1 << 32..1 << 53).contains(&v), "id {v} is not opaque");
    }
    let bob_versions = versions_of(&bob.list(None)[0]);
    assert!(bob_versions.iter().all(|v| (1 << 32..1 << 53).contains(v)));

    // Look-alikes of alice register: all pending. The first one's code is the code to try.
    let mut attackers = vec![Attacker {
        who: "bob".into(),
        token: Some(bob_token.clone()),
        active: true,
    }];
    for (user, device) in [
        ("alice", "fremder-pc"),
        ("Alice", "fremder-pc-2"),
        ("alice ", "fremder-pc-3"),
        ("alice", ALICE_DEVICE),
    ] {
        let (token, code) = register_pending(&client.api, user, device);
        if alice_ids.code.is_empty() {
            alice_ids.code = code;
        }
        attackers.push(Attacker {
            who: format!("pending {user:?}/{device}"),
            token: Some(token),
            active: false,
        });
    }
    // A confusable name (Cyrillic а) gets no token at all.
    let (st, answer) = client.api.post_json(
        "/api/login",
        None,
        &json!({ "protocol_version": asgard_core::protocol::PROTOCOL_VERSION,
            "user": "\u{430}lice", "device": "x", "os": "linux", "os_version": "t",
            "agent_version": "t" }),
    );
    assert_eq!(st, 409, "{answer}");
    assert!(answer.get("token").is_none(), "{answer}");
    attackers.push(Attacker {
        who: "no token".into(),
        token: None,
        active: false,
    });
    for (i, w) in wrong.iter().enumerate() {
        attackers.push(Attacker {
            who: format!("wrong token {i}"),
            token: Some(w.clone()),
            active: false,
        });
    }

    let control = alice_ids.control(7);
    let needles = needles(&alice_ids, &runs, &root);
    let mut sent = 0;
    for a in &attackers {
        sent += attack(&client, a, &alice_ids, &control, &needles);
        for r in idless() {
            let got = client.send(&r, a.token.as_deref());
            sent += 1;
            if !a.active {
                assert!(
                    got.status == 401 || got.status == 403,
                    "{} / {}: {got:?}",
                    a.who,
                    r.name
                );
            }
            for n in &needles {
                assert!(
                    !got.body.contains(n.as_str()) && !got.headers.contains(n.as_str()),
                    "{} / {} leaks {n}: {got:?}",
                    a.who,
                    r.name
                );
            }
        }
    }
    println!(
        "isolation matrix: {} attackers, {sent} requests, {} needles",
        attackers.len(),
        needles.len()
    );
    // Nothing that takes no id changed with alice's data: no count of hers shows.
    let after: Vec<_> = [Some(bob_token.as_str()), None, Some(wrong[0].as_str())]
        .iter()
        .map(|t| idless_answers(&client, *t))
        .collect();
    assert_eq!(before, after);

    // Reporting a run answers with an id of bob's own, nothing of alice's.
    let report = json!({ "started_us": 1, "finished_us": 2, "agent_version": "t",
        "exit_code": 0, "files_seen": 0, "files_new": 0, "files_changed": 0,
        "files_unchanged": 0, "files_deleted": 0, "files_skipped": 0, "bytes_read": 0,
        "bytes_sent": 0, "bytes_new": 0, "versions_created": 0, "duration_s": 0.1 });
    for a in &attackers {
        let (st, body) = client
            .api
            .post_json("/api/runs", a.token.as_deref(), &report);
        if a.active {
            assert_eq!(st, 200, "{body}");
            let id = body["id"].as_u64().unwrap();
            assert!(!runs.contains(&id));
            assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        } else {
            assert!(st == 401 || st == 403, "{} / runs: {st} {body}", a.who);
        }
    }

    // alice herself still reads everything, with the ids she was given.
    let bilanz = alice_ids
        .paths
        .iter()
        .find(|p| p.ends_with("alice-bilanz-geheim.txt"))
        .unwrap();
    let (st, body) = client.api.post_json_bytes(
        "/api/restore",
        Some(&alice.token()),
        &json!({ "path": bilanz }),
    );
    assert_eq!(st, 200);
    assert!(body.starts_with(MARKER.as_bytes()), "{}", text(&body));
    let (st, _) = client.api.get(
        &format!("/api/chunks/{}", alice_ids.chunks[0].0),
        Some(&alice.token()),
    );
    assert_eq!(st, 200);
}

/// Finding 2, the metrics part: the anonymous `/metrics` showed `asgard_chunks` (whether content
/// exists anywhere) and `asgard_chunks_served_total` (when anybody restores). Now it needs the
/// configured token (401 without it, also for a valid device token) and is off without one (404
/// `metrics_disabled`, a German message that says how to turn it on); with the token it shows
/// global counts only, no user, device or path.
#[test]
fn finding_2_metrics_need_the_token_and_show_global_counts_only() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let (alice, root, ids, runs) = alice_backs_up(&server, work.path());
    let api = Api::new(&server);
    for token in [
        None,
        Some(alice.token()),
        Some(format!("{METRICS_TOKEN}x")),
        Some(METRICS_TOKEN[..METRICS_TOKEN.len() - 1].to_owned()),
        Some(METRICS_TOKEN.to_uppercase()),
    ] {
        let (st, body) = api.get("/metrics", token.as_deref());
        let body = text(&body);
        assert_eq!(st, 401, "{token:?}: {body}");
        assert!(!body.contains("asgard_"), "{body}");
        let e: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(e["code"], "unauthorized");
    }
    let (st, body) = api.get("/metrics", Some(METRICS_TOKEN));
    assert_eq!(st, 200);
    let body = text(&body);
    assert!(body.contains("asgard_chunks "), "{body}");
    for line in body.lines() {
        assert!(
            line.starts_with("# HELP asgard_")
                || line.starts_with("# TYPE asgard_")
                || line.starts_with("asgard_") && !line.contains('{'),
            "not a global figure: {line}"
        );
    }
    for n in needles(&ids, &runs, &root)
        .iter()
        .chain([&"alice".to_owned()])
    {
        assert!(!body.contains(n.as_str()), "metrics leak {n}");
    }

    // A server without metrics_token: /metrics is off, for everybody.
    let data = tempfile::tempdir().unwrap();
    let (child, url) = spawn_server(&data.path().join("data"), None, "127.0.0.1:0").unwrap();
    let bare = Server {
        child: Some(child),
        data,
        url,
        config: None,
    };
    let api = Api::new(&bare);
    for token in [None, Some(METRICS_TOKEN)] {
        let (st, body) = api.get("/metrics", token);
        assert_eq!(st, 404);
        let e: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(e["code"], "metrics_disabled");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("abgeschaltet") && message.contains("metrics_token"),
            "{message}"
        );
    }
}

/// Finding 4 as a matrix variant: after `device reset` of alice's device, registrations under her
/// name and that very device name (as whoever asks first would try) are pending and get nothing,
/// with her ids or without.
#[test]
fn finding_4_after_device_reset_a_look_alike_gets_nothing() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let client = Client::new(&server);
    let (alice, root, mut ids, runs) = alice_backs_up(&server, work.path());
    let out = server_admin([
        "device".as_ref(),
        "reset".as_ref(),
        "alice".as_ref(),
        ALICE_DEVICE.as_ref(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
    ] as [&std::ffi::OsStr; 6]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Her old token is dead; the one-time code went to the admin, not to the first who asks.
    assert_eq!(alice.run(["list"]).status.code(), Some(1));
    let needles = needles(&ids, &runs, &root);
    let mut attackers = Vec::new();
    for user in ["alice", "ALICE", " alice"] {
        let (token, code) = register_pending(&client.api, user, ALICE_DEVICE);
        ids.code = code;
        attackers.push(Attacker {
            who: format!("pending {user:?}/{ALICE_DEVICE} after reset"),
            token: Some(token),
            active: false,
        });
    }
    let control = ids.control(8);
    for a in &attackers {
        attack(&client, a, &ids, &control, &needles);
    }
}
