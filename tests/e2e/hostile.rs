//! Hostile requests (issue 11, acceptance 4, "Bounded everything", "At rest and in logs"): raw
//! HTTP over TLS as a stranger or a malicious user would send it — oversized paths, fields and
//! bodies, truncated JSON, wrong hashes, traversal, NUL bytes, odd Unicode and raw invalid UTF-8,
//! huge and negative numbers, wrong methods and content types, header tricks, HTTP/1.0, slow and
//! short bodies. Every one gets its expected status, error code and German message; afterwards
//! the database and the store are unchanged and a normal backup and restore still work. Then the
//! rate limit (429 with `Retry-After`), the new-user budget per address, the refused-request log
//! line and the data dir's modes.

use asgard_e2e::raw::{Pace, Raw, post_json, request, start_logged};
use asgard_e2e::*;
use serde_json::{Value, json};

/// One hostile request and what it must get.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    pace: Pace,
    status: u16,
    /// The error code; `None` only for answers of the HTTP layer itself (no body).
    code: Option<&'static str>,
    /// A piece of the German message.
    german: &'static str,
}

fn case(
    name: &'static str,
    bytes: Vec<u8>,
    status: u16,
    code: &'static str,
    german: &'static str,
) -> Case {
    Case {
        name,
        bytes,
        pace: Pace::Whole,
        status,
        code: Some(code),
        german,
    }
}

fn login(overrides: Value) -> Vec<u8> {
    let mut body = json!({ "protocol_version": 1, "user": "mallory", "device": "box",
        "os": "linux", "os_version": "6.1", "agent_version": "0.1" });
    for (k, v) in overrides.as_object().unwrap() {
        body[k] = v.clone();
    }
    serde_json::to_vec(&body).unwrap()
}

fn commit_of(entries: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "entries": entries })).unwrap()
}

fn deleted(path: Value) -> Value {
    json!({ "kind": "deleted", "path": path })
}

fn file(path: &str, size: Value, chunks: Value, hash: &str) -> Value {
    json!({ "kind": "file", "path": path, "meta": { "size": size, "mtime_ns": 0, "hash": hash,
        "params": { "min": 65536, "avg": 262144, "max": 1048576 }, "chunks": chunks } })
}

fn replace(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = body.windows(from.len()).position(|w| w == from).unwrap();
    [&body[..at], to, &body[at + from.len()..]].concat()
}

/// A multipart upload body with one part.
fn upload(token: Option<&str>, name: &str, part: &[u8]) -> Vec<u8> {
    let b = "XyZzYboundary";
    let body = [
        format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        part,
        format!("\r\n--{b}--\r\n").as_bytes(),
    ]
    .concat();
    request(
        "POST",
        "/api/upload",
        token,
        Some(&format!("multipart/form-data; boundary={b}")),
        &body,
    )
}

fn cases(token: &str) -> Vec<Case> {
    let t = Some(token);
    let empty_hash = hash_hex(b"");
    let some_id = hash_hex(b"nobody stores this");
    let long = |n: usize| "x".repeat(n);
    let mut c = vec![
        // Login: fields and names.
        case("login: 10 MB os_version", post_json("/api/login", None, &login(json!({"os_version": long(10 << 20)}))), 413, "body_too_large", "Die Anfrage ist zu groß"),
        case("login: os_version over the field limit", post_json("/api/login", None, &login(json!({"os_version": long(600)}))), 400, "too_long", "„os_version“ ist 600 Bytes lang"),
        case("login: agent_version over the field limit", post_json("/api/login", None, &login(json!({"agent_version": long(513)}))), 400, "too_long", "„agent_version“ ist 513 Bytes"),
        case("login: os over the field limit", post_json("/api/login", None, &login(json!({"os": long(4000)}))), 400, "too_long", "„os“ ist 4000 Bytes"),
        case("login: user over the field limit", post_json("/api/login", None, &login(json!({"user": long(600)}))), 400, "too_long", "„user“ ist 600 Bytes"),
        case("login: device over the field limit", post_json("/api/login", None, &login(json!({"device": long(9000)}))), 400, "too_long", "„device“ ist 9000 Bytes"),
        case("login: enrollment key over the field limit", post_json("/api/login", None, &login(json!({"enrollment_key": long(1000)}))), 400, "too_long", "„enrollment_key“"),
        case("login: code over the field limit", post_json("/api/login", None, &login(json!({"code": long(1000)}))), 400, "too_long", "„code“"),
        case("login: empty user", post_json("/api/login", None, &login(json!({"user": ""}))), 400, "bad_request", "Ungültige Anfrage: user"),
        case("login: blank user", post_json("/api/login", None, &login(json!({"user": "   "}))), 400, "bad_request", "Ungültige Anfrage: user"),
        case("login: zero-width space in user", post_json("/api/login", None, &login(json!({"user": "ali\u{200b}ce"}))), 400, "bad_request", "Ungültige Anfrage: user"),
        case("login: right-to-left override in user", post_json("/api/login", None, &login(json!({"user": "\u{202e}ecila"}))), 400, "bad_request", "Ungültige Anfrage: user"),
        case("login: NUL in user", post_json("/api/login", None, &login(json!({"user": "al\u{0}ice"}))), 400, "bad_request", "Ungültige Anfrage: user"),
        case("login: byte order mark in device", post_json("/api/login", None, &login(json!({"device": "\u{feff}box"}))), 400, "bad_request", "Ungültige Anfrage: device"),
        case("login: left-to-right mark in device", post_json("/api/login", None, &login(json!({"device": "bo\u{200e}x"}))), 400, "bad_request", "Ungültige Anfrage: device"),
        case("login: user of 200 characters", post_json("/api/login", None, &login(json!({"user": "ü".repeat(200)}))), 400, "bad_request", "Ungültige Anfrage: user"),
        case("login: unknown protocol version", post_json("/api/login", None, &login(json!({"protocol_version": 999}))), 400, "protocol_version", "Protokollversion 999"),
        case("login: negative protocol version", post_json("/api/login", None, &login(json!({"protocol_version": -1}))), 400, "bad_request", "Ungültige Anfrage"),
        case("login: protocol version beyond u64", post_json("/api/login", None, br#"{"protocol_version":99999999999999999999999,"user":"m","device":"b","os":"l","os_version":"1","agent_version":"1"}"#), 400, "bad_request", "Ungültige Anfrage"),
        case("login: truncated JSON", post_json("/api/login", None, br#"{"protocol_version":1,"user":"mallo"#), 400, "bad_request", "Ungültige Anfrage"),
        case("login: empty body", post_json("/api/login", None, b""), 400, "bad_request", "Ungültige Anfrage"),
        case("login: null", post_json("/api/login", None, b"null"), 400, "bad_request", "Ungültige Anfrage"),
        case("login: an array", post_json("/api/login", None, b"[1,2,3]"), 400, "bad_request", "Ungültige Anfrage"),
        case("login: missing user", post_json("/api/login", None, br#"{"protocol_version":1,"device":"b","os":"l","os_version":"1","agent_version":"1"}"#), 400, "bad_request", "Ungültige Anfrage"),
        case("login: user is a number", post_json("/api/login", None, &login(json!({"user": 42}))), 400, "bad_request", "Ungültige Anfrage"),
        case("login: invalid UTF-8 byte in a string", post_json("/api/login", None, &replace(&login(json!({"user": "mallory"})), b"mallory", b"mal\xffory")), 400, "bad_request", "Ungültige Anfrage"),
        case("login: overlong UTF-8 for '/'", post_json("/api/login", None, &replace(&login(json!({"device": "box"})), b"box", b"b\xc0\xafx")), 400, "bad_request", "Ungültige Anfrage"),
        case("login: lone surrogate escape", post_json("/api/login", None, &replace(&login(json!({"user": "mallory"})), b"mallory", b"m\\ud800y")), 400, "bad_request", "Ungültige Anfrage"),
        case("login: deeply nested JSON", post_json("/api/login", None, &[b"[".repeat(5000), b"]".repeat(5000)].concat()), 400, "bad_request", "Ungültige Anfrage"),
        case("login: text/plain", request("POST", "/api/login", None, Some("text/plain"), &login(json!({}))), 415, "unsupported_media_type", "Falscher Inhaltstyp „text/plain“"),
        case("login: no content type", request("POST", "/api/login", None, None, &login(json!({}))), 415, "unsupported_media_type", "Falscher Inhaltstyp"),
        case("login: form encoding", request("POST", "/api/login", None, Some("application/x-www-form-urlencoded"), b"user=mallory"), 415, "unsupported_media_type", "Falscher Inhaltstyp"),
        case("login: GET", request("GET", "/api/login", None, None, b""), 405, "method_not_allowed", "erlaubt: POST"),
        case("login: PUT", request("PUT", "/api/login", None, Some("application/json"), &login(json!({}))), 405, "method_not_allowed", "erlaubt: POST"),
        case("login: a made-up token", post_json("/api/login", Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), &login(json!({}))), 401, "unauthorized", "Anmeldung abgelehnt"),
        case("login: a code for nobody", post_json("/api/login", None, &login(json!({"code": "ABCD-EFGH"}))), 401, "unauthorized", "Anmeldung abgelehnt"),
        case("login: basic auth instead of a bearer", [b"POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Language: de\r\nAuthorization: Basic bWFsbG9yeTpwdw==\r\nContent-Type: application/json\r\nContent-Length: ".as_slice(), login(json!({})).len().to_string().as_bytes(), b"\r\n\r\n", &login(json!({}))].concat(), 401, "unauthorized", "Anmeldung abgelehnt"),
        case("login: bearer with non-ASCII bytes", [b"POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Language: de\r\nAuthorization: Bearer \xe2\x80\xae\xff\r\nContent-Type: application/json\r\nContent-Length: ".as_slice(), login(json!({})).len().to_string().as_bytes(), b"\r\n\r\n", &login(json!({}))].concat(), 401, "unauthorized", "Anmeldung abgelehnt"),
        // Check.
        case("check: no token", post_json("/api/check", None, br#"{"chunks":[]}"#), 401, "unauthorized", "Anmeldung abgelehnt"),
        case("check: empty bearer", request("POST", "/api/check", Some(""), Some("application/json"), br#"{"chunks":[]}"#), 401, "unauthorized", "Anmeldung abgelehnt"),
        case("check: a token in the query", post_json(&format!("/api/check?token={token}"), None, br#"{"chunks":[]}"#), 401, "unauthorized", "Anmeldung abgelehnt"),
        case("check: 10,001 ids", post_json("/api/check", t, &serde_json::to_vec(&json!({"chunks": vec![some_id.clone(); 10_001]})).unwrap()), 413, "too_many", "„chunks“ hat 10001 Einträge"),
        case("check: an id of 63 hex digits", post_json("/api/check", t, &serde_json::to_vec(&json!({"chunks": [&some_id[1..]]})).unwrap()), 400, "bad_request", "Ungültige Anfrage"),
        case("check: an id that is not hex", post_json("/api/check", t, &serde_json::to_vec(&json!({"chunks": ["z".repeat(64)]})).unwrap()), 400, "bad_request", "Ungültige Anfrage"),
        case("check: ids as numbers", post_json("/api/check", t, br#"{"chunks":[1,2,3]}"#), 400, "bad_request", "Ungültige Anfrage"),
        case("check: chunks null", post_json("/api/check", t, br#"{"chunks":null}"#), 400, "bad_request", "Ungültige Anfrage"),
        case("check: 2 MB body", post_json("/api/check", t, &[br#"{"chunks":[],"pad":""#.as_slice(), &vec![b'a'; 2 << 20], b"\"}"].concat()), 413, "body_too_large", "Die Anfrage ist zu groß"),
        case("check: text/plain", request("POST", "/api/check", t, Some("text/plain"), br#"{"chunks":[]}"#), 415, "unsupported_media_type", "Falscher Inhaltstyp"),
        case("check: DELETE", request("DELETE", "/api/check", t, None, b""), 405, "method_not_allowed", "erlaubt: POST"),
        // Commit: paths.
        case("commit: path of 5,000 bytes", post_json("/api/commit", t, &commit_of(json!([deleted(json!(format!("/{}", long(4999))))]))), 400, "too_long", "„entries[0].path“ ist 5000 Bytes lang"),
        case("commit: path of 8 MB", post_json("/api/commit", t, &commit_of(json!([deleted(json!(format!("/{}", long(8 << 20))))]))), 400, "too_long", "ist 8388609 Bytes lang"),
        case("commit: name of 300 bytes", post_json("/api/commit", t, &commit_of(json!([deleted(json!(format!("/home/{}", long(300))))]))), 400, "too_long", "Ein Name in „entries[0].path“ ist 300 Bytes lang"),
        case("commit: Windows name of 300 characters", post_json("/api/commit", t, &commit_of(json!([deleted(json!(format!("C:\\Users\\{}", "ä".repeat(300))))]))), 400, "too_long", "ist 300 Zeichen lang"),
        case("commit: 600 components", post_json("/api/commit", t, &commit_of(json!([deleted(json!("/a".repeat(600)))]))), 400, "too_long", "600 Bestandteile"),
        case("commit: relative path", post_json("/api/commit", t, &commit_of(json!([deleted(json!("etc/passwd"))]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: traversal with ..", post_json("/api/commit", t, &commit_of(json!([deleted(json!("/home/m/../../etc/passwd"))]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: a . component", post_json("/api/commit", t, &commit_of(json!([deleted(json!("/home/./m"))]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: Windows traversal", post_json("/api/commit", t, &commit_of(json!([deleted(json!("C:\\a\\..\\..\\Windows"))]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: NUL in a path", post_json("/api/commit", t, &commit_of(json!([deleted(json!("/a\u{0}b"))]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: NUL in a hex path", post_json("/api/commit", t, &commit_of(json!([deleted(json!({"hex": "2f6100"}))]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: hex path that is not hex", post_json("/api/commit", t, &commit_of(json!([deleted(json!({"hex": "zz"}))]))), 400, "bad_request", "Ungültige Anfrage"),
        case("commit: empty path", post_json("/api/commit", t, &commit_of(json!([deleted(json!(""))]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: bidi override in a path is kept, NUL is not", post_json("/api/commit", t, &commit_of(json!([deleted(json!("/\u{202e}txt.exe")), deleted(json!("/x\u{0}"))]))), 400, "bad_entry", "Ungültiger Eintrag: /x"),
        case("commit: 2,001 entries", post_json("/api/commit", t, &commit_of(json!((0..2001).map(|i| deleted(json!(format!("/f{i}")))).collect::<Vec<_>>()))), 413, "too_many", "„entries“ hat 2001 Einträge"),
        case("commit: unknown entry kind", post_json("/api/commit", t, &commit_of(json!([{"kind": "device", "path": "/dev/sda"}]))), 400, "bad_request", "Ungültige Anfrage"),
        case("commit: symlink without a target", post_json("/api/commit", t, &commit_of(json!([{"kind": "symlink", "path": "/l", "target": "", "mtime_ns": 0}]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: symlink target of 5,000 bytes", post_json("/api/commit", t, &commit_of(json!([{"kind": "symlink", "path": "/l", "target": long(5000), "mtime_ns": 0}]))), 400, "too_long", "„entries[0].target“ ist 5000 Bytes"),
        // Commit: numbers and hashes.
        case("commit: negative size", post_json("/api/commit", t, &commit_of(json!([file("/f", json!(-1), json!([]), &empty_hash)]))), 400, "bad_request", "Ungültige Anfrage"),
        case("commit: size beyond u64", post_json("/api/commit", t, &replace(&commit_of(json!([file("/f", json!(7), json!([]), &empty_hash)])), b"\"size\":7", b"\"size\":1e30")), 400, "bad_request", "Ungültige Anfrage"),
        case("commit: mtime beyond i64", post_json("/api/commit", t, &replace(&commit_of(json!([file("/f", json!(0), json!([]), &empty_hash)])), b"\"mtime_ns\":0", b"\"mtime_ns\":99999999999999999999")), 400, "bad_request", "Ungültige Anfrage"),
        case("commit: chunk lengths do not add up", post_json("/api/commit", t, &commit_of(json!([file("/f", json!(10), json!([{"id": some_id, "len": 5}]), &some_id)]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: chunk larger than any chunk", post_json("/api/commit", t, &commit_of(json!([file("/f", json!(1u64 << 30), json!([{"id": some_id, "len": 1u64 << 30}]), &some_id)]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: chunk length negative", post_json("/api/commit", t, &commit_of(json!([file("/f", json!(0), json!([{"id": some_id, "len": -4}]), &some_id)]))), 400, "bad_request", "Ungültige Anfrage"),
        case("commit: hash of 10 hex digits", post_json("/api/commit", t, &commit_of(json!([file("/f", json!(0), json!([]), "0123456789")]))), 400, "bad_request", "Ungültige Anfrage"),
        case("commit: empty file with a wrong hash", post_json("/api/commit", t, &commit_of(json!([file("/f", json!(0), json!([]), &some_id)]))), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: chunk nobody uploaded", post_json("/api/commit", t, &commit_of(json!([file("/f", json!(5), json!([{"id": some_id, "len": 5}]), &some_id)]))), 409, "missing_chunks", "Chunks fehlen"),
        case("commit: bad chunking parameters", post_json("/api/commit", t, &replace(&commit_of(json!([file("/f", json!(0), json!([]), &empty_hash)])), b"\"min\":65536", b"\"min\":0")), 400, "bad_entry", "Ungültiger Eintrag"),
        case("commit: 200 MB announced", [b"POST /api/commit HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Language: de\r\nAuthorization: Bearer ".as_slice(), token.as_bytes(), b"\r\nContent-Type: application/json\r\nContent-Length: 209715200\r\n\r\n{\"entries\":["].concat(), 413, "body_too_large", "209715200 Bytes"),
        case("commit: text/plain", request("POST", "/api/commit", t, Some("text/plain"), b"{}"), 415, "unsupported_media_type", "Falscher Inhaltstyp"),
        case("commit: GET", request("GET", "/api/commit", t, None, b""), 405, "method_not_allowed", "erlaubt: POST"),
        // Other endpoints.
        case("unknown path", request("GET", "/api/secrets", t, None, b""), 404, "unknown_endpoint", "Unbekannter Pfad „/api/secrets“"),
        case("traversal in the URL", request("GET", "/../../etc/passwd", None, None, b""), 404, "unknown_endpoint", "Unbekannter Pfad"),
        case("admin-looking path", request("POST", "/administrator", None, Some("application/json"), b"{}"), 404, "unknown_endpoint", "Unbekannter Pfad"),
        case("chunk id not hex", request("GET", "/api/chunks/..%2F..%2Fetc%2Fpasswd", t, None, b""), 400, "bad_chunk_id", "Ungültige Chunk-ID"),
        case("chunk nobody has", request("GET", &format!("/api/chunks/{some_id}"), t, None, b""), 404, "not_found", "Nicht gefunden"),
        case("restore: version nobody has", post_json("/api/restore", t, br#"{"version_id":987654321}"#), 404, "not_found", "Nicht gefunden"),
        case("restore: negative version", post_json("/api/restore", t, br#"{"version_id":-5}"#), 400, "bad_request", "Ungültige Anfrage"),
        case("restore: 1 MB body", post_json("/api/restore", t, &[br#"{"path":""#.as_slice(), &vec![b'a'; 1 << 20], b"\"}"].concat()), 413, "body_too_large", "Die Anfrage ist zu groß"),
        case("list: limit not a number", request("GET", "/api/list?limit=abc", t, None, b""), 400, "bad_request", "Ungültige Anfrage"),
        case("list: cursor garbage", request("GET", "/api/list?cursor=%00%ff", t, None, b""), 400, "bad_request", "Ungültige Anfrage"),
        case("list: prefix not hex", request("GET", "/api/list?prefix_hex=xyz", t, None, b""), 400, "bad_request", "Ungültige Anfrage"),
        case("runs: 101 errors", post_json("/api/runs", t, &serde_json::to_vec(&json!({"errors": vec!["e"; 101]})).unwrap()), 400, "bad_request", "Ungültige Anfrage"),
        case("runs: negative duration", post_json("/api/runs", t, br#"{"summary":{"duration_s":-1.0}}"#), 400, "bad_request", "Ungültige Anfrage"),
        case("runs: limit negative", request("GET", "/api/runs?limit=-1", t, None, b""), 400, "bad_request", "Ungültige Anfrage"),
        case("runs: PUT", request("PUT", "/api/runs", t, None, b""), 405, "method_not_allowed", "erlaubt: GET, POST"),
        case("approve: code of 100 characters", post_json("/api/devices/approve", t, &serde_json::to_vec(&json!({"code": long(100)})).unwrap()), 404, "approval_code", "Freigabe-Code ist unbekannt"),
        case("approve: unknown code", post_json("/api/devices/approve", t, br#"{"code":"ABCD-EFGH"}"#), 404, "approval_code", "Freigabe-Code ist unbekannt"),
        case("metrics: POST", request("POST", "/metrics", None, None, b""), 405, "method_not_allowed", "erlaubt: GET"),
        // Upload (kept small: the streaming upload rewrites this path).
        case("upload: no token", upload(None, &some_id, b"x"), 401, "unauthorized", "Anmeldung abgelehnt"),
        case("upload: part name not a chunk id", upload(t, "../../etc/passwd", b"x"), 400, "bad_chunk_id", "Ungültige Chunk-ID"),
        case("upload: content does not match the id", upload(t, &some_id, &asgard_core::stored::encode_raw(b"other content")), 400, "chunk_hash_mismatch", "passt nicht zu seiner ID"),
        case("upload: stored form corrupt", upload(t, &some_id, b"\xffgarbage"), 400, "chunk_corrupt", "ist beschädigt"),
        case("upload: GET", request("GET", "/api/upload", t, None, b""), 405, "method_not_allowed", "erlaubt: POST"),
        case("upload: JSON instead of multipart", post_json("/api/upload", t, b"{}"), 400, "bad_request", "Ungültige Anfrage"),
    ];
    // Transport tricks: HTTP/1.0, a slow body, a body shorter than announced.
    let mut http10 = post_json("/api/login", None, &login(json!({"os_version": long(700)})));
    http10 = replace(&http10, b"HTTP/1.1", b"HTTP/1.0");
    c.push(case(
        "HTTP/1.0 login with a long field",
        http10,
        400,
        "too_long",
        "„os_version“ ist 700 Bytes",
    ));
    let mut slow = case(
        "slow body",
        post_json(
            "/api/login",
            None,
            &login(json!({"agent_version": long(900)})),
        ),
        400,
        "too_long",
        "„agent_version“ ist 900 Bytes",
    );
    slow.pace = Pace::Slow;
    c.push(slow);
    let body = login(json!({}));
    let short = [
        format!("POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Language: de\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len() + 50).as_bytes(),
        &body,
    ]
    .concat();
    // A large header is tolerated; the body is still checked.
    let padded = replace(
        &post_json("/api/login", None, &login(json!({"device": long(800)}))),
        b"Host: localhost\r\n",
        format!("Host: localhost\r\nX-Pad: {}\r\n", "p".repeat(60_000)).as_bytes(),
    );
    c.push(case(
        "a header of 60 KB",
        padded,
        400,
        "too_long",
        "„device“ ist 800 Bytes",
    ));
    let mut short = case(
        "body shorter than its Content-Length",
        short,
        400,
        "bad_request",
        "Ungültige Anfrage",
    );
    short.pace = Pace::ThenClose;
    c.push(short);
    c
}

/// Requests the HTTP layer refuses before any handler runs: status only, no error body.
fn transport_cases() -> Vec<Case> {
    let b = login(json!({}));
    let raw = |head: String| -> Vec<u8> { [head.as_bytes(), &b].concat() };
    vec![
        Case { name: "two different Content-Length headers", bytes: raw(format!("POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nContent-Length: 3\r\n\r\n", b.len())), pace: Pace::Whole, status: 400, code: None, german: "" },
        Case { name: "negative Content-Length", bytes: raw("POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: -5\r\n\r\n".into()), pace: Pace::Whole, status: 400, code: None, german: "" },
        Case { name: "garbage request line", bytes: b"\x16\x03\x01GET / HTTP/1.1\r\n\r\n".to_vec(), pace: Pace::Whole, status: 400, code: None, german: "" },
    ]
}

fn stats(server: &Server) -> Value {
    let out = server_admin_ok([
        "stats".as_ref(),
        "--json".as_ref(),
        "--data-dir".as_ref(),
        server.data_dir().as_os_str(),
    ] as [&std::ffi::OsStr; 4]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every hostile request gets its status, code and German message; nothing changes in the
/// database or the store; the server then backs up and restores as before.
#[test]
fn hostile_requests_get_clear_answers_and_change_nothing() {
    // Many token-less logins from one address in a row: a larger login burst for this test.
    let (server, _log) = start_logged("language: de\nlimits:\n  login_burst: 1000\n");
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.txt"), random_bytes(300_000, 1)).unwrap();
    let agent = Agent::new("alice", &server);
    agent.backup(&tree);
    let token = agent.token();
    let before = (stats(&server), server.store_usage());

    let raw = Raw::new(&server);
    let cases = cases(&token);
    assert!(cases.len() >= 70, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in cases.iter().chain(transport_cases().iter()) {
        let r = raw.send(&c.bytes, c.pace);
        let body = r.json();
        let ok = r.status == c.status
            && match c.code {
                Some(code) => {
                    body["code"] == code
                        && body["message"]
                            .as_str()
                            .is_some_and(|m| m.contains(c.german))
                }
                None => true,
            };
        if !ok {
            failures.push(format!(
                "{}: expected {} {:?} „{}“, got {} {}",
                c.name,
                c.status,
                c.code,
                c.german,
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
            ));
        }
        if c.status == 405 {
            assert!(r.header("allow").is_some(), "{}: no Allow header", c.name);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    let after = (stats(&server), server.store_usage());
    assert_eq!(
        before, after,
        "the hostile requests changed the database or the store"
    );
    // The server still serves a normal backup and restore.
    std::fs::write(tree.join("b.txt"), random_bytes(100_000, 2)).unwrap();
    agent.backup(&tree);
    let to = work.path().join("back");
    assert_success(&agent.restore_to(&tree, &to, &[]));
    assert_same_tree(&snapshot(&tree), &to.join("tree"));
}

/// A token over its rate gets 429 with `Retry-After` and a German message; another token is not
/// slowed down by it.
#[test]
fn a_token_over_its_rate_gets_429_with_retry_after() {
    let (server, _log) =
        start_logged("language: de\nlimits:\n  request_burst: 5\n  requests_per_second: 1\n");
    let raw = Raw::new(&server);
    let token_of = |user: &str| {
        let r = raw.send(
            &post_json("/api/login", None, &login(json!({"user": user}))),
            Pace::Whole,
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["token"].as_str().unwrap().to_owned()
    };
    let (a, b) = (token_of("anna"), token_of("bert"));
    let runs = |t: &str| {
        raw.send(
            &request("GET", "/api/runs", Some(t), None, b""),
            Pace::Whole,
        )
    };
    let statuses: Vec<u16> = (0..8).map(|_| runs(&a).status).collect();
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    let r = runs(&a);
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["code"], "too_many_requests");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Zu viele Anfragen"),
        "{}",
        r.json()
    );
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=5).contains(&wait), "{wait}");
    // Another device has its own bucket.
    assert_eq!(runs(&b).status, 200);
}

/// The new-user budget of an address: once spent, every registration from it gets the same 429
/// (a further device of an existing user too: the answer does not tell who exists); logins with
/// a token go on. The refused requests are logged with status, code, client and user, never the
/// token, and without colour codes (the log is not a terminal).
#[test]
fn new_users_per_address_are_limited_and_refusals_are_logged_without_secrets() {
    let (server, log) = start_logged("language: de\nlimits:\n  new_users_per_hour: 2\n");
    let raw = Raw::new(&server);
    let login_as = |user: &str, device: &str, token: Option<&str>| {
        raw.send(
            &post_json(
                "/api/login",
                token,
                &login(json!({"user": user, "device": device})),
            ),
            Pace::Whole,
        )
    };
    let first = login_as("u1", "box", None);
    assert_eq!(first.status, 200);
    let token = first.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(login_as("u2", "box", None).status, 200);
    for (user, device) in [("u3", "box"), ("u1", "second")] {
        let r = login_as(user, device, None);
        assert_eq!(
            r.status,
            429,
            "{user}/{device}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["code"], "registration_limit");
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .contains("Zu viele Registrierungen")
        );
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!(wait > 60, "{wait}");
    }
    assert_eq!(login_as("u1", "box", Some(&token)).status, 200);
    let r = raw.send(
        &post_json(
            "/api/restore?token=hunter2",
            Some(&token),
            br#"{"version_id":987654321}"#,
        ),
        Pace::Whole,
    );
    assert_eq!(r.status, 404);

    let wanted = |needles: &[&str]| {
        for _ in 0..100 {
            let text = log.lock().unwrap().clone();
            if text.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("no log line with {needles:?} in:\n{}", log.lock().unwrap());
    };
    wanted(&[
        "request refused",
        "429",
        "registration_limit",
        "127.0.0.1",
        "u3",
        "POST",
        "/api/login",
    ]);
    let text = wanted(&[
        "request refused",
        "404",
        "not_found",
        "/api/restore",
        "#1",
        "box",
    ]);
    assert!(!text.contains(&token), "the token reached the log");
    assert!(!text.contains("hunter2"), "the query reached the log");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log that is no terminal"
    );
}

/// The data dir is 0700 and every file in it 0600 on a fresh server; a data dir left readable by
/// others is tightened at the next start.
#[cfg(unix)]
#[test]
fn the_data_dir_is_private() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    fn modes(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u32, bool)>) {
        let meta = std::fs::symlink_metadata(dir).unwrap();
        out.push((
            dir.to_owned(),
            meta.permissions().mode() & 0o777,
            meta.is_dir(),
        ));
        if meta.is_dir() {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let ft = e.file_type().unwrap();
                if ft.is_symlink() {
                    continue;
                }
                if ft.is_socket() || ft.is_file() || ft.is_dir() {
                    modes(&e.path(), out);
                }
            }
        }
    }
    let assert_private = |server: &Server| {
        let mut all = Vec::new();
        modes(&server.data_dir(), &mut all);
        assert!(all.len() > 5, "{all:?}");
        for (p, mode, dir) in &all {
            let want = if *dir { 0o700 } else { 0o600 };
            assert_eq!(*mode, want, "{} has {mode:o}", p.display());
        }
        all.len()
    };
    let mut server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("f.txt");
    std::fs::write(&f, b"privat").unwrap();
    Agent::new("alice", &server).backup(&f);
    assert_private(&server);
    server.stop();
    // As an older version left it: everything readable by everyone.
    let mut all = Vec::new();
    modes(&server.data_dir(), &mut all);
    for (p, _, dir) in &all {
        let m = if *dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    server.restart_stopped();
    assert_private(&server);
}
