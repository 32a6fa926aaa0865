//! The server's records of issue 12 through the real binary: folders are versions that survive a
//! restart, a metadata-only change is reported as such and keeps the content versions, and the
//! admin's `stats` counts folders as versions of no bytes.

use asgard_e2e::{Api, Server, server_admin_ok, text};
use serde_json::{Value, json};

fn login(api: &Api, user: &str) -> String {
    let (st, v) = api.post_json(
        "/api/login",
        None,
        &json!({ "protocol_version": 2, "user": user, "device": "pc", "os": "linux",
                 "os_version": "6", "agent_version": "e2e" }),
    );
    assert_eq!(st, 200, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

fn list(api: &Api, token: &str) -> Vec<Value> {
    let (st, body) = api.get("/api/list", Some(token));
    assert_eq!(st, 200, "{}", text(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["files"].as_array().unwrap().clone()
}

fn folder(mode: u32, uid: u32) -> Value {
    json!({ "kind": "dir", "path": "/srv/leer", "mtime_ns": 1_700_000_000_123_456_789i64,
            "mode": mode, "meta": { "uid": uid, "gid": 0, "owner": "root", "group": "root" } })
}

#[test]
fn folders_and_metadata_only_versions_survive_a_restart() {
    let mut server = Server::start();
    let api = Api::new(&server);
    let token = login(&api, "anna");
    let commit = |api: &Api, entries: Value| {
        let (st, v) = api.post_json("/api/commit", Some(&token), &json!({ "entries": entries }));
        assert_eq!(st, 200, "{v}");
        v["results"][0].clone()
    };
    let r = commit(&api, json!([folder(0o40750, 0)]));
    assert_eq!(r["outcome"], "new");
    assert_eq!(
        commit(&api, json!([folder(0o40750, 0)]))["outcome"],
        "unchanged"
    );
    let r = commit(&api, json!([folder(0o40700, 0)]));
    assert_eq!(
        (&r["outcome"], &r["meta_only"]),
        (&json!("changed"), &json!(true))
    );
    let r = commit(&api, json!([folder(0o40700, 1000)]));
    assert_eq!(r["meta_only"], true);

    server.restart();
    let api = Api::new(&server);
    let files = list(&api, &token);
    assert_eq!(files.len(), 1);
    let v = files[0]["versions"].as_array().unwrap();
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|v| v["kind"] == "dir"));
    assert_eq!(v[0]["meta"]["uid"], 1000);
    assert_eq!(v[0]["meta"]["owner"], "root");
    assert_eq!(v[0]["meta_only"], true);
    assert_eq!(v[2]["mode"], 0o40750);
    assert_eq!(v[2]["mtime_ns"], 1_700_000_000_123_456_789i64);
    assert!(v[2].get("meta_only").is_none(), "{}", v[2]);

    // A folder has nothing to restore; its version is a 400, not a 500 or an empty file.
    let (st, body) = api.post_json_bytes(
        "/api/restore",
        Some(&token),
        &json!({ "path": "/srv/leer" }),
    );
    assert_eq!(st, 400, "{}", text(&body));

    // After the restart the same folder is still unchanged (the stored record reads back whole).
    let (st, v) = api.post_json(
        "/api/commit",
        Some(&token),
        &json!({ "entries": [folder(0o40700, 1000)] }),
    );
    assert_eq!(
        (st, &v["results"][0]["outcome"]),
        (200, &json!("unchanged"))
    );

    // Through the admin channel of the running server.
    let out = server_admin_ok([
        "stats".as_ref(),
        "--json".as_ref(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
    ]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (stats["versions"].as_u64(), stats["logical_bytes"].as_u64()),
        (Some(3), Some(0))
    );
}
