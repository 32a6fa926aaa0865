//! In-process tests of the whole API (no TLS): the handlers, extractors and error bodies.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use asgard_core::protocol::{ErrorBody, LoginResponse};
use asgard_core::{ChunkId, ChunkParams, stored};
use serde_json::{Value, json};

use super::{AppState, routes};
use crate::config::{Config, Registration};
use crate::testutil::TempServer;

struct Env {
    _dir: tempfile::TempDir,
    state: web::Data<AppState>,
}

fn env(registration: Registration) -> Env {
    let server = TempServer::new();
    let config = Config {
        data_dir: server.dir.path().to_path_buf(),
        registration,
        ..Config::default()
    };
    let state = web::Data::new(AppState::new(server.db, server.store, Arc::new(config)));
    Env {
        _dir: server.dir,
        state,
    }
}

macro_rules! app {
    ($env:expr) => {
        test::init_service(App::new().app_data($env.state.clone()).configure(routes)).await
    };
}

fn login_body(user: &str) -> Value {
    json!({ "protocol_version": 1, "user": user, "device": "pc", "os": "linux",
            "os_version": "6", "agent_version": "t" })
}

fn multipart(parts: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "XXasgardXX";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[actix_web::test]
async fn backup_and_restore_flow() {
    let env = env(Registration::Open);
    let app = app!(env);
    let call = |req: test::TestRequest| test::call_service(&app, req.to_request());

    let resp = call(
        test::TestRequest::post()
            .uri("/api/login")
            .set_json(login_body("anna")),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let login: LoginResponse = test::read_body_json(resp).await;
    let token = login.token.unwrap();
    let auth = ("Authorization", format!("Bearer {token}"));

    let (a, b) = (b"hello ".to_vec(), b"world, again".to_vec());
    let (ia, ib) = (ChunkId::of(&a), ChunkId::of(&b));
    let resp = call(
        test::TestRequest::post()
            .uri("/api/check")
            .insert_header(auth.clone())
            .set_json(json!({ "chunks": [ia, ib, ia] })),
    )
    .await;
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["missing"], json!([ia, ib]));

    // A forged part refuses the whole request and records nothing.
    let (ct, body) = multipart(&[
        (ia.to_hex(), stored::encode(&a, 3)),
        (ib.to_hex(), stored::encode(b"forged", 3)),
    ]);
    let resp = call(
        test::TestRequest::post()
            .uri("/api/upload")
            .insert_header(auth.clone())
            .insert_header(("content-type", ct))
            .set_payload(body),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(e.code, "chunk_hash_mismatch");
    assert_eq!(env.state.db.stats().unwrap().chunks, 0);

    let (ct, body) = multipart(&[
        (ia.to_hex(), stored::encode(&a, 3)),
        (ib.to_hex(), stored::encode(&b, 3)),
    ]);
    let resp = call(
        test::TestRequest::post()
            .uri("/api/upload")
            .insert_header(auth.clone())
            .insert_header(("content-type", ct))
            .set_payload(body),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["received"], 2);

    let all = [a.clone(), b.clone()].concat();
    let commit = json!({ "entries": [{ "kind": "file", "path": "/home/anna/x.txt",
        "meta": { "size": all.len(), "mtime_ns": 5, "hash": ChunkId::of(&all),
                  "params": ChunkParams::default(),
                  "chunks": [{ "id": ia, "len": a.len() }, { "id": ib, "len": b.len() }] } }] });
    let resp = call(
        test::TestRequest::post()
            .uri("/api/commit")
            .insert_header(auth.clone())
            .set_json(commit),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["results"][0]["outcome"], "new");

    let resp = call(
        test::TestRequest::get()
            .uri("/api/list?prefix_hex=2f686f6d65&all_devices=true")
            .insert_header(auth.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["files"][0]["path"], "/home/anna/x.txt");
    assert_eq!(v["files"][0]["device"], "pc");

    let restore = json!({ "path": "/home/anna/x.txt" });
    let resp = call(
        test::TestRequest::post()
            .uri("/api/restore")
            .insert_header(auth.clone())
            .set_json(&restore),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get("x-asgard-hash").unwrap(),
        ChunkId::of(&all).to_hex().as_str()
    );
    assert_eq!(test::read_body(resp).await, all);

    // A range across the chunk boundary.
    let resp = call(
        test::TestRequest::post()
            .uri("/api/restore")
            .insert_header(auth.clone())
            .insert_header(("range", "bytes=3-8"))
            .set_json(&restore),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.headers().get("content-range").unwrap(),
        format!("bytes 3-8/{}", all.len()).as_str()
    );
    assert_eq!(test::read_body(resp).await, all[3..=8]);
    let resp = call(
        test::TestRequest::post()
            .uri("/api/restore")
            .insert_header(auth.clone())
            .insert_header(("range", "bytes=999-"))
            .set_json(&restore),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let resp = call(
        test::TestRequest::get()
            .uri(&format!("/api/chunks/{ia}"))
            .insert_header(auth.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        stored::decode(&test::read_body(resp).await, 100).unwrap(),
        a
    );

    // Another user sees nothing of anna's.
    let resp = call(
        test::TestRequest::post()
            .uri("/api/login")
            .set_json(login_body("bob")),
    )
    .await;
    let bob: LoginResponse = test::read_body_json(resp).await;
    let bob_auth = ("Authorization", format!("Bearer {}", bob.token.unwrap()));
    let resp = call(
        test::TestRequest::get()
            .uri(&format!("/api/chunks/{ia}"))
            .insert_header(bob_auth.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = call(
        test::TestRequest::post()
            .uri("/api/restore")
            .insert_header(bob_auth.clone())
            .set_json(json!({ "version_id": 1 })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn errors_have_bodies() {
    let env = env(Registration::Approve);
    let app = app!(env);
    let call = |req: test::TestRequest| test::call_service(&app, req.to_request());

    let resp = call(
        test::TestRequest::post()
            .uri("/api/login")
            .insert_header(("content-type", "application/json"))
            .set_payload("{not json"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(e.code, "bad_request");

    let mut old = login_body("x");
    old["protocol_version"] = json!(99);
    let resp = call(test::TestRequest::post().uri("/api/login").set_json(old)).await;
    let e: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(e.code, "protocol_version");

    let resp = call(test::TestRequest::get().uri("/api/list")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let e: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(e.code, "unauthorized");

    let resp = call(
        test::TestRequest::post()
            .uri("/api/login")
            .set_json(login_body("p")),
    )
    .await;
    let l: LoginResponse = test::read_body_json(resp).await;
    let resp = call(
        test::TestRequest::get()
            .uri("/api/list")
            .insert_header(("Authorization", format!("Bearer {}", l.token.unwrap()))),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let e: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(e.code, "device_pending");

    // No metrics_token configured: /metrics is off and says how to turn it on (the figures with
    // a token: `metrics.rs` and the e2e tests).
    let resp = call(test::TestRequest::get().uri("/metrics")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let e: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(e.code, "metrics_disabled");
    assert!(e.message.contains("metrics_token"), "{}", e.message);
}

/// Version and run ids are opaque per user (`ids.rs`): the commit answer, the listing, the
/// restore header and the manifest agree on them; the database's own numbers and another user's
/// ids answer exactly like ids that never existed.
#[actix_web::test]
async fn ids_are_opaque_per_user() {
    use asgard_core::protocol::{CommitResponse, ListResponse, ManifestResponse, RunAccepted};
    let env = env(Registration::Open);
    let app = app!(env);
    let call = |req: test::TestRequest| test::call_service(&app, req.to_request());
    let mut auths = Vec::new();
    for user in ["anna", "bob"] {
        let resp = call(
            test::TestRequest::post()
                .uri("/api/login")
                .set_json(login_body(user)),
        )
        .await;
        let l: LoginResponse = test::read_body_json(resp).await;
        auths.push(("Authorization", format!("Bearer {}", l.token.unwrap())));
    }
    let (anna, bob) = (auths[0].clone(), auths[1].clone());

    let data = b"Inhalt von anna".to_vec();
    let id = ChunkId::of(&data);
    let (ct, body) = multipart(&[(id.to_hex(), stored::encode(&data, 3))]);
    let resp = call(
        test::TestRequest::post()
            .uri("/api/upload")
            .insert_header(anna.clone())
            .insert_header(("content-type", ct))
            .set_payload(body),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let entry = |path: &str| {
        json!({ "kind": "file", "path": path,
                "meta": { "size": data.len(), "mtime_ns": 5, "hash": id,
                          "params": ChunkParams::default(),
                          "chunks": [{ "id": id, "len": data.len() }] } })
    };
    let resp = call(
        test::TestRequest::post()
            .uri("/api/commit")
            .insert_header(anna.clone())
            .set_json(json!({ "entries": [entry("/a/1"), entry("/a/2")] })),
    )
    .await;
    let committed: CommitResponse = test::read_body_json(resp).await;
    let ids: Vec<u64> = committed
        .results
        .iter()
        .map(|r| r.version_id.unwrap())
        .collect();
    // Internally these are versions 1 and 2.
    assert!(ids.iter().all(|&i| i > 1 << 32), "{ids:?}");
    assert!(
        ids.iter().all(|&i| i < 1 << 53),
        "{ids:?} fit a JSON double"
    );

    let resp = call(
        test::TestRequest::get()
            .uri("/api/list")
            .insert_header(anna.clone()),
    )
    .await;
    let listed: ListResponse = test::read_body_json(resp).await;
    let listed: Vec<u64> = listed.files.iter().map(|f| f.versions[0].id).collect();
    assert_eq!(listed, ids);

    // The cursor hides the device id too; anna's cursor in bob's hands is "not found".
    let page = |auth: (&'static str, String), query: &str| {
        test::TestRequest::get()
            .uri(&format!("/api/list?limit=1{query}"))
            .insert_header(auth)
    };
    let first: ListResponse = test::read_body_json(call(page(anna.clone(), "")).await).await;
    let cursor = first.next_cursor.unwrap();
    assert!(!cursor.starts_with("0000000000000001"), "{cursor}");
    let second: ListResponse =
        test::read_body_json(call(page(anna.clone(), &format!("&cursor={cursor}"))).await).await;
    assert_eq!(second.files[0].versions[0].id, ids[1]);
    let resp = call(page(bob.clone(), &format!("&cursor={cursor}"))).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let e: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(e.code, "not_found");

    let restore = |auth: (&'static str, String), version: u64| {
        test::TestRequest::post()
            .uri("/api/restore")
            .insert_header(auth)
            .set_json(json!({ "version_id": version }))
    };
    let resp = call(restore(anna.clone(), ids[0])).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get("x-asgard-version").unwrap(),
        ids[0].to_string().as_str()
    );
    assert_eq!(test::read_body(resp).await, data);

    // Not found, all alike: the internal number, a never issued id, anna's id in bob's hands.
    let never = test::read_body(call(restore(anna.clone(), 987_654_321)).await).await;
    assert!(never.starts_with(br#"{"code":"not_found""#), "{never:?}");
    for (who, version) in [(anna.clone(), 1), (anna.clone(), 2), (bob.clone(), ids[0])] {
        let resp = call(restore(who, version)).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(test::read_body(resp).await, never);
    }

    let manifest = |auth: (&'static str, String), versions: Vec<u64>| {
        test::TestRequest::post()
            .uri("/api/manifest")
            .insert_header(auth)
            .set_json(json!({ "version_ids": versions }))
    };
    let resp = call(manifest(anna.clone(), vec![ids[1], 1, 77])).await;
    let m: ManifestResponse = test::read_body_json(resp).await;
    assert_eq!(m.versions.len(), 1);
    assert_eq!(m.versions[0].id, ids[1]);
    assert_eq!(m.missing, vec![1, 77]);
    let resp = call(manifest(bob.clone(), ids.clone())).await;
    let m: ManifestResponse = test::read_body_json(resp).await;
    assert!(m.versions.is_empty());
    assert_eq!(m.missing, ids);

    // Run ids: the accepted id is the listed one, and not the database's 1.
    let report = json!({ "started_us": 1, "finished_us": 2, "agent_version": "t", "exit_code": 0,
            "files_seen": 1, "files_new": 1, "files_changed": 0, "files_unchanged": 0,
            "files_deleted": 0, "files_skipped": 0, "bytes_read": 1, "bytes_sent": 1,
            "bytes_new": 1, "versions_created": 1, "duration_s": 0.5 });
    let resp = call(
        test::TestRequest::post()
            .uri("/api/runs")
            .insert_header(anna.clone())
            .set_json(report),
    )
    .await;
    let accepted: RunAccepted = test::read_body_json(resp).await;
    assert!(accepted.id > 1 << 32);
    let resp = call(
        test::TestRequest::get()
            .uri("/api/runs")
            .insert_header(anna.clone()),
    )
    .await;
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["runs"][0]["id"], accepted.id);
}

#[actix_web::test]
async fn run_reports_are_stored_per_device_newest_first() {
    use asgard_core::protocol::{RunAccepted, RunList};
    let env = env(Registration::Open);
    let app = app!(env);
    let call = |req: test::TestRequest| test::call_service(&app, req.to_request());
    let mut tokens = Vec::new();
    for device in ["pc", "laptop"] {
        let mut body = login_body("anna");
        body["device"] = json!(device);
        let resp = call(test::TestRequest::post().uri("/api/login").set_json(body)).await;
        let l: LoginResponse = test::read_body_json(resp).await;
        tokens.push(("Authorization", format!("Bearer {}", l.token.unwrap())));
    }
    // anna's second device waits for approval.
    env.state.db.approve_device("anna", "laptop").unwrap();
    let report = |seen: u64, code: u8| {
        json!({ "started_us": 1, "finished_us": 2, "agent_version": "t", "exit_code": code,
                "files_seen": seen, "files_new": seen, "files_changed": 0, "files_unchanged": 0,
                "files_deleted": 0, "files_skipped": 0, "bytes_read": 10, "bytes_sent": 5,
                "bytes_new": 5, "versions_created": seen, "duration_s": 0.5,
                "errors": ["kaputt"] })
    };
    let mut ids = Vec::new();
    for (seen, code) in [(3, 0), (4, 1)] {
        let resp = call(
            test::TestRequest::post()
                .uri("/api/runs")
                .insert_header(tokens[0].clone())
                .set_json(report(seen, code)),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let a: RunAccepted = test::read_body_json(resp).await;
        ids.push(a.id);
    }
    let resp = call(
        test::TestRequest::get()
            .uri("/api/runs")
            .insert_header(tokens[0].clone()),
    )
    .await;
    let list: RunList = test::read_body_json(resp).await;
    assert_eq!(list.runs.len(), 2);
    assert_eq!(list.runs[0].id, ids[1]);
    assert_eq!(list.runs[0].report.exit_code, 1);
    assert_eq!(list.runs[0].report.summary.files_seen, 4);
    assert_eq!(list.runs[1].report.errors, vec!["kaputt".to_owned()]);
    assert!(list.runs[0].received_us > 0);

    // The other device sees none of them; limit works; no token, no runs.
    let resp = call(
        test::TestRequest::get()
            .uri("/api/runs")
            .insert_header(tokens[1].clone()),
    )
    .await;
    let list: RunList = test::read_body_json(resp).await;
    assert!(list.runs.is_empty());
    let resp = call(
        test::TestRequest::get()
            .uri("/api/runs?limit=1")
            .insert_header(tokens[0].clone()),
    )
    .await;
    let list: RunList = test::read_body_json(resp).await;
    assert_eq!(list.runs.len(), 1);
    let resp = call(test::TestRequest::get().uri("/api/runs")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Too many errors: refused, nothing stored.
    let mut bad = report(9, 0);
    bad["errors"] = json!(vec!["x"; 101]);
    let resp = call(
        test::TestRequest::post()
            .uri("/api/runs")
            .insert_header(tokens[0].clone())
            .set_json(bad),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(e.code, "bad_request");
}

/// Healing end to end in-process: verify marks a damaged chunk bad; the next login names the
/// file to re-read, `check` asks for the chunk, the upload replaces the stored bytes and clears
/// the mark, and the next login names nothing.
#[actix_web::test]
async fn damaged_chunk_is_named_at_login_asked_for_by_check_and_healed_by_upload() {
    let env = env(Registration::Open);
    let app = app!(env);
    let call = |req: test::TestRequest| test::call_service(&app, req.to_request());

    let resp = call(
        test::TestRequest::post()
            .uri("/api/login")
            .set_json(login_body("anna")),
    )
    .await;
    let login: LoginResponse = test::read_body_json(resp).await;
    assert!(login.reread.is_empty());
    let token = login.token.unwrap();
    let auth = ("Authorization", format!("Bearer {token}"));

    let data = b"the only copy of this chunk".to_vec();
    let id = ChunkId::of(&data);
    let upload = || {
        let (ct, body) = multipart(&[(id.to_hex(), stored::encode_raw(&data))]);
        test::TestRequest::post()
            .uri("/api/upload")
            .insert_header(auth.clone())
            .insert_header(("content-type", ct))
            .set_payload(body)
    };
    assert_eq!(call(upload()).await.status(), StatusCode::OK);
    let commit = json!({ "entries": [{ "kind": "file", "path": "/home/anna/brief.txt",
        "meta": { "size": data.len(), "mtime_ns": 5, "hash": id,
                  "params": ChunkParams::default(), "chunks": [{ "id": id, "len": data.len() }] } }] });
    let resp = call(
        test::TestRequest::post()
            .uri("/api/commit")
            .insert_header(auth.clone())
            .set_json(commit),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Damage the stored bytes and verify.
    let file = env
        ._dir
        .path()
        .join("chunks")
        .join(&id.to_hex()[..2])
        .join(&id.to_hex()[2..4])
        .join(id.to_hex());
    std::fs::write(&file, stored::encode_raw(b"rotten bits")).unwrap();
    let report = crate::ops::verify::run(
        &env.state.db,
        &*env.state.store,
        &crate::ops::verify::VerifyOptions::default(),
        crate::db::now_us(),
    )
    .unwrap();
    assert_eq!(report.damaged.len(), 1);

    let relogin = || {
        test::TestRequest::post()
            .uri("/api/login")
            .insert_header(auth.clone())
            .set_json(login_body("anna"))
    };
    let login: LoginResponse = test::read_body_json(call(relogin()).await).await;
    assert_eq!(
        login.reread,
        vec![asgard_core::RawPath::from("/home/anna/brief.txt")]
    );
    assert!(!login.reread_truncated);

    let check = || {
        test::TestRequest::post()
            .uri("/api/check")
            .insert_header(auth.clone())
            .set_json(json!({ "chunks": [id] }))
    };
    let v: Value = test::read_body_json(call(check()).await).await;
    assert_eq!(v["missing"], json!([id]));

    let resp = call(upload()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["new_chunks"], 1, "the healed chunk was written: {v}");
    assert_eq!(std::fs::read(&file).unwrap(), stored::encode_raw(&data));
    assert!(
        env.state
            .db
            .chunk_record(&id)
            .unwrap()
            .unwrap()
            .bad_since_us
            .is_none()
    );
    let v: Value = test::read_body_json(call(check()).await).await;
    assert_eq!(v["missing"], json!([]));
    let login: LoginResponse = test::read_body_json(call(relogin()).await).await;
    assert!(login.reread.is_empty());
    let resp = call(
        test::TestRequest::post()
            .uri("/api/restore")
            .insert_header(auth.clone())
            .set_json(json!({ "path": "/home/anna/brief.txt" })),
    )
    .await;
    assert_eq!(test::read_body(resp).await, data);
}

/// Protocol 2 over HTTP: a folder is committed with its metadata, listed as kind `dir`, refused
/// by restore (400) and missing in a manifest; a chmod is a metadata-only version; metadata over
/// the bounds is a 400 that names the field.
#[actix_web::test]
async fn folders_and_metadata_only_versions_over_the_api() {
    use asgard_core::protocol::{CommitResponse, ListResponse, ManifestResponse, VersionKind};
    let env = env(Registration::Open);
    let app = app!(env);
    let call = |req: test::TestRequest| test::call_service(&app, req.to_request());
    let mut body = login_body("anna");
    body["protocol_version"] = json!(2);
    let resp = call(test::TestRequest::post().uri("/api/login").set_json(body)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let l: LoginResponse = test::read_body_json(resp).await;
    let auth = ("Authorization", format!("Bearer {}", l.token.unwrap()));
    let commit = |entries: Value| {
        test::TestRequest::post()
            .uri("/api/commit")
            .insert_header(auth.clone())
            .set_json(json!({ "entries": entries }))
    };
    // user.a = "1" in hex.
    let meta = json!({ "uid": 1000, "gid": 100, "owner": "anna", "group": "users",
                       "xattrs": [{ "name": "757365722e61", "value": "31" }] });
    let dir = |mode: u32| {
        json!({ "kind": "dir", "path": "/home/anna/leer", "mtime_ns": 7,
                                  "mode": mode, "meta": meta })
    };
    let resp = call(commit(json!([dir(0o40750)]))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let r: CommitResponse = test::read_body_json(resp).await;
    assert_eq!(
        r.results[0].outcome,
        asgard_core::protocol::CommitOutcome::New
    );
    assert!(!r.results[0].meta_only);
    let resp = call(commit(json!([dir(0o40700)]))).await;
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["results"][0]["outcome"], "changed");
    assert_eq!(v["results"][0]["meta_only"], true);

    let resp = call(
        test::TestRequest::get()
            .uri("/api/list")
            .insert_header(auth.clone()),
    )
    .await;
    let listed: ListResponse = test::read_body_json(resp).await;
    let versions = &listed.files[0].versions;
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].kind, VersionKind::Dir);
    assert_eq!((versions[0].mode, versions[0].meta_only), (0o40700, true));
    assert_eq!(versions[1].mode, 0o40750);
    assert_eq!(versions[0].meta.owner.as_deref(), Some("anna"));
    assert_eq!(versions[0].meta.xattrs[0].name.0, b"user.a");
    assert_eq!(versions[0].hash, None);

    let resp = call(
        test::TestRequest::post()
            .uri("/api/restore")
            .insert_header(auth.clone())
            .set_json(json!({ "path": "/home/anna/leer" })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: ErrorBody = test::read_body_json(resp).await;
    assert!(e.message.contains("folder"), "{}", e.message);
    let ids: Vec<u64> = versions.iter().map(|v| v.id).collect();
    let resp = call(
        test::TestRequest::post()
            .uri("/api/manifest")
            .insert_header(auth.clone())
            .set_json(json!({ "version_ids": ids })),
    )
    .await;
    let m: ManifestResponse = test::read_body_json(resp).await;
    assert!(m.versions.is_empty());
    assert_eq!(m.missing, ids);

    // Unsorted attributes: 400, naming the entry and the field; nothing is stored.
    let unsorted = json!([{ "kind": "dir", "path": "/home/anna/x", "mtime_ns": 7,
        "meta": { "xattrs": [{ "name": "757365722e62", "value": "" },
                             { "name": "757365722e61", "value": "" }] } }]);
    let resp = call(commit(json!([dir(0o40700), unsorted[0]]))).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(e.code, "bad_entry");
    assert!(
        e.message.contains("entries[1].meta.xattrs"),
        "{}",
        e.message
    );
    assert_eq!(env.state.db.stats().unwrap().versions, 2);
}

/// Every agent endpoint of a revoked device answers 401 `token_revoked`, and of a disabled user
/// 403 `user_disabled`, with a German message that says what happened; another user's device
/// goes on, and an unknown token still hears only `unauthorized`.
#[actix_web::test]
async fn revoked_tokens_and_disabled_users_are_refused_on_every_endpoint() {
    let env = env(Registration::Open);
    let app = app!(env);
    let mut tokens = Vec::new();
    for user in ["anna", "bert"] {
        let resp = test::call_service(
            &app,
            test::TestRequest::post()
                .uri("/api/login")
                .set_json(login_body(user))
                .to_request(),
        )
        .await;
        let login: LoginResponse = test::read_body_json(resp).await;
        tokens.push(login.token.unwrap());
    }
    let zero = ChunkId::of(b"x").to_hex();
    let endpoints: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/api/login".into(), Some(login_body("anna"))),
        ("POST", "/api/check".into(), Some(json!({ "chunks": [] }))),
        ("POST", "/api/commit".into(), Some(json!({ "entries": [] }))),
        ("GET", "/api/list".into(), None),
        ("POST", "/api/restore".into(), Some(json!({ "path": "/x" }))),
        ("GET", format!("/api/chunks/{zero}"), None),
        (
            "POST",
            "/api/manifest".into(),
            Some(json!({ "version_ids": [] })),
        ),
        ("POST", "/api/fetch".into(), Some(json!({ "chunks": [] }))),
        ("GET", "/api/runs".into(), None),
        (
            "POST",
            "/api/runs".into(),
            Some(
                json!({ "started_us": 1, "finished_us": 2, "agent_version": "t", "exit_code": 0,
                         "files_seen": 0, "files_new": 0, "files_changed": 0,
                         "files_unchanged": 0, "files_deleted": 0, "files_skipped": 0,
                         "bytes_read": 0, "bytes_sent": 0, "bytes_new": 0,
                         "versions_created": 0, "duration_s": 0.0 }),
            ),
        ),
        ("POST", "/api/upload".into(), None),
        (
            "POST",
            "/api/devices/approve".into(),
            Some(json!({ "code": "ABCD-EFGH" })),
        ),
    ];
    let ask = |token: String, method: &'static str, uri: String, body: Option<Value>| {
        let mut req = match method {
            "GET" => test::TestRequest::get(),
            _ => test::TestRequest::post(),
        }
        .uri(&uri)
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Accept-Language", "de"));
        if let Some(b) = body {
            req = req.set_json(b);
        } else if uri == "/api/upload" {
            let (ctype, bytes) = multipart(&[(zero.clone(), stored::encode_raw(b"x"))]);
            req = req
                .insert_header(("Content-Type", ctype))
                .set_payload(bytes);
        }
        test::call_service(&app, req.to_request())
    };
    let check_all = |wanted_status: StatusCode, wanted_code: &'static str, words: &'static str| {
        let anna = tokens[0].clone();
        let endpoints = endpoints.clone();
        let ask = &ask;
        async move {
            for (method, uri, body) in endpoints {
                let resp = ask(anna.clone(), method, uri.clone(), body).await;
                assert_eq!(resp.status(), wanted_status, "{method} {uri}");
                let err: ErrorBody = test::read_body_json(resp).await;
                assert_eq!(err.code, wanted_code, "{method} {uri}");
                assert!(
                    err.message.contains(words),
                    "{method} {uri}: {}",
                    err.message
                );
            }
        }
    };

    env.state.db.set_user_disabled("anna", true, 1).unwrap();
    check_all(StatusCode::FORBIDDEN, "user_disabled", "gesperrt").await;
    env.state.db.set_user_disabled("anna", false, 2).unwrap();
    env.state.db.revoke_device("anna", "pc", 3).unwrap();
    check_all(StatusCode::UNAUTHORIZED, "token_revoked", "widerrufen").await;

    // bert is not touched; a token nobody had stays a plain `unauthorized`.
    let resp = ask(tokens[1].clone(), "GET", "/api/list".into(), None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = ask("asg_nobody".into(), "GET", "/api/list".into(), None).await;
    let err: ErrorBody = test::read_body_json(resp).await;
    assert_eq!(err.code, "unauthorized");
}
