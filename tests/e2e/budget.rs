//! The upload budget (finding 5, upload memory): the bytes of upload bodies in flight are bounded
//! by `upload_budget_bytes`; a request waits for its share or gets 503 `busy` with
//! `Retry-After`, never a 500 or a dropped connection; the server's memory stays bounded under
//! many concurrent uploads; and the real agent completes a backup against a tiny budget by
//! waiting and repeating its uploads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use asgard_core::{ChunkId, stored};
use asgard_e2e::{
    Agent, Api, FullAnswer, Server, assert_same_tree, multipart, random_bytes, snapshot,
};
use serde_json::Value;

const MIB: usize = 1 << 20;

/// The resident memory of a process in bytes (`VmRSS` of /proc/PID/status).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// The parts of an upload of `n` random chunks of `len` bytes (stored form), seeded by `seed`.
fn parts(n: usize, len: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let data = random_bytes(len, seed * 1000 + i as u64);
            (ChunkId::of(&data).to_hex(), stored::encode(&data, 3))
        })
        .collect()
}

/// An upload request of `body` whose body stalls for `stall` after its first KiB: it holds its
/// reservation of the budget that long.
fn stalled_upload(
    api: &Api,
    token: &str,
    content_type: String,
    body: Vec<u8>,
    stall: Duration,
) -> reqwest::RequestBuilder {
    let len = body.len();
    let (head, tail) = body.split_at(1024);
    let (head, tail) = (head.to_vec(), tail.to_vec());
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let (head, tail) = (head.clone(), tail.clone());
        async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(head), 1)),
                1 => {
                    tokio::time::sleep(stall).await;
                    Some((Ok(tail), 2))
                }
                _ => None,
            }
        }
    });
    api.client()
        .post(format!("{}/api/upload", api.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .header("content-length", len)
        .body(reqwest::Body::wrap_stream(stream))
}

/// Checks one answer of a crowded upload: 200, or 503 `busy` with `Retry-After` and a German
/// message. Returns whether it was accepted.
fn accepted_or_busy(answer: &Result<FullAnswer, String>) -> bool {
    let (status, headers, body) = answer
        .as_ref()
        .unwrap_or_else(|e| panic!("the connection was dropped: {e}"));
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match status {
        200 => true,
        503 => {
            assert_eq!(body["code"], "busy", "{body}");
            assert!(
                body["message"].as_str().unwrap().contains("ausgelastet"),
                "{body}"
            );
            assert!(
                headers.iter().any(|(k, v)| k == "retry-after" && v == "5"),
                "{headers:?}"
            );
            false
        }
        other => panic!("upload answered {other}: {body}"),
    }
}

/// While two stalled uploads hold the whole budget, another upload waits `upload_wait` and gets
/// 503 `busy`; uploads without a length or above `max_upload_bytes` are refused before they take
/// any of it; after the stalled ones finish, uploads go through again.
#[test]
fn a_spent_budget_answers_busy_with_retry_after() {
    let server = Server::start_with_config(Some(
        "max_upload_bytes: 2097152\nupload_budget_bytes: 4194304\nupload_wait: 1s\n",
    ));
    let agent = Agent::new("erika", &server);
    agent.ok(["login"]);
    let token = agent.token();
    let holders: Vec<_> = (0..2u64)
        .map(|k| {
            let token = token.clone();
            let server_api = Api::new(&server);
            std::thread::spawn(move || {
                let (ct, body) = multipart(&parts(1, 1900 * 1024, 10 + k));
                let req = stalled_upload(&server_api, &token, ct, body, Duration::from_secs(4));
                server_api.send_full(req)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let api = Api::new(&server);
    let (ct, body) = multipart(&parts(1, 1024 * 1024, 20));
    let busy = api.send_full(
        api.client()
            .post(format!("{}/api/upload", api.base))
            .bearer_auth(&token)
            .header("content-type", ct.clone())
            .body(body.clone()),
    );
    assert!(
        !accepted_or_busy(&busy),
        "the budget is held by the stalled uploads"
    );

    // Above max_upload_bytes: 413 at once, budget or not.
    let (big_ct, big) = multipart(&parts(3, 1024 * 1024, 30));
    let (st, _, b) = api
        .send_full(
            api.client()
                .post(format!("{}/api/upload", api.base))
                .bearer_auth(&token)
                .header("content-type", big_ct)
                .body(big),
        )
        .unwrap();
    let b: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (st, b["code"].as_str()),
        (413, Some("upload_too_large")),
        "{b}"
    );

    for h in holders {
        let answer = h.join().unwrap();
        assert!(accepted_or_busy(&answer), "the stalled uploads complete");
    }
    let again = api.send_full(
        api.client()
            .post(format!("{}/api/upload", api.base))
            .bearer_auth(&token)
            .header("content-type", ct)
            .body(body),
    );
    assert!(
        accepted_or_busy(&again),
        "the budget is free again: {again:?}"
    );

    // Without Content-Length (a chunked body): 411.
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(b"--x--\r\n".to_vec())]);
    let (st, _, b) = api
        .send_full(
            api.client()
                .post(format!("{}/api/upload", api.base))
                .bearer_auth(&token)
                .header("content-type", "multipart/form-data; boundary=x")
                .body(reqwest::Body::wrap_stream(stream)),
        )
        .unwrap();
    let b: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (st, b["code"].as_str()),
        (411, Some("length_required")),
        "{b}"
    );
}

/// Many concurrent large uploads against a small budget: each is accepted or answered `busy`
/// (never 500, never a dropped connection), and the server's resident memory stays below a
/// bound derived from the budget, far below what the bodies together would take.
#[test]
fn many_concurrent_large_uploads_keep_the_server_memory_bounded() {
    const BUDGET: usize = 16 * MIB;
    const CLIENTS: u64 = 16;
    const BODY: usize = 8 * MIB;
    let server = Server::start_with_config(Some(&format!(
        "max_upload_bytes: {BODY}\nupload_budget_bytes: {BUDGET}\nupload_wait: 2s\n"
    )));
    let pid = server.child.as_ref().unwrap().id();
    let agent = Agent::new("max", &server);
    agent.ok(["login"]);
    let token = agent.token();
    let base = rss(pid);

    let peak = Arc::new(Mutex::new(base));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let r = rss(pid);
                let mut p = peak.lock().unwrap();
                *p = (*p).max(r);
                drop(p);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let token = token.clone();
            let api = Api::new(&server);
            std::thread::spawn(move || {
                // Eight chunks of just under 1 MiB each.
                let (ct, body) = multipart(&parts(8, BODY / 8 - 4096, 100 + k));
                assert!(body.len() <= BODY);
                let mut accepted = 0;
                for _ in 0..2 {
                    let answer = api.send_full(
                        api.client()
                            .post(format!("{}/api/upload", api.base))
                            .bearer_auth(&token)
                            .header("content-type", ct.clone())
                            .body(body.clone()),
                    );
                    accepted += usize::from(accepted_or_busy(&answer));
                }
                accepted
            })
        })
        .collect();
    let accepted: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = *peak.lock().unwrap();
    // Two bodies in flight (the budget), their copies while the store writes them, a window of
    // unread bytes per waiting connection, and allocator slack; glibc's dynamic mmap threshold
    // (see `asgard_server::alloc`) took this run to 112-149 MiB above the start.
    let bound = base + 2 * BUDGET as u64 + 48 * MIB as u64;
    println!(
        "server RSS: {} MiB at the start, {} MiB at the peak (bound {} MiB; the bodies together: {} MiB); {accepted} of {} uploads accepted",
        base >> 20,
        peak >> 20,
        bound >> 20,
        (CLIENTS as usize * BODY) >> 20,
        CLIENTS * 2
    );
    assert!(accepted > 0);
    assert!(peak < bound, "peak RSS {peak} above {bound}");
}

/// The real agent backs up and restores a tree against a tiny budget while other uploads hold
/// it: its uploads are answered `busy`, it waits as told and repeats them, and the backup
/// completes; its requests larger than the server's limit are split.
#[test]
fn the_agent_completes_a_backup_against_a_tiny_budget_by_retrying() {
    let server = Server::start_with_config(Some(
        "max_upload_bytes: 1572864\nupload_budget_bytes: 3145728\nupload_wait: 1s\n",
    ));
    let agent = Agent::new("lotte", &server);
    agent.ok(["login"]);
    let token = agent.token();
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    for i in 0..6u64 {
        std::fs::write(
            tree.join(format!("datei-{i}.bin")),
            random_bytes(700 * 1024 + i as usize, 77 + i),
        )
        .unwrap();
    }
    // Two uploads hold the whole budget for 8 s.
    let holders: Vec<_> = (0..2u64)
        .map(|k| {
            let token = token.clone();
            let api = Api::new(&server);
            std::thread::spawn(move || {
                let (ct, body) = multipart(&parts(1, 1500 * 1024, 40 + k));
                let req = stalled_upload(&api, &token, ct, body, Duration::from_secs(8));
                api.send_full(req)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let out = agent.run(["backup".as_ref(), "--json".as_ref(), tree.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "backup failed: {stderr}");
    assert!(
        stderr.contains("Server ausgelastet (503)"),
        "no retry was needed: {stderr}"
    );
    for h in holders {
        assert!(accepted_or_busy(&h.join().unwrap()));
    }
    let to = work.path().join("zurück");
    let out = agent.restore_to(&tree, &to, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&snapshot(&tree), &to.join("tree"));
}
