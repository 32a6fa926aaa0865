//! Acceptance 2 (upload part): no answer of `check` or `upload` tells a user whether another user
//! stores some content. Storage is deduplicated across users; what a user learns is not.

use std::time::{Duration, Instant};

use asgard_core::{ChunkId, stored};
use asgard_e2e::{Agent, Api, Server, multipart, random_bytes};
use serde_json::{Value, json};

/// One upload of `data` (one chunk in stored form) by `token`: status, headers without `date`,
/// body, and the time to the whole answer.
fn upload_one(
    api: &Api,
    token: &str,
    data: &[u8],
) -> (u16, Vec<(String, String)>, Value, Duration) {
    let id = ChunkId::of(data);
    let (content_type, body) = multipart(&[(id.to_hex(), stored::encode(data, 3))]);
    let req = api
        .client()
        .post(format!("{}/api/upload", api.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body);
    let started = Instant::now();
    let (status, mut headers, body) = api.send_full(req).expect("an answer");
    let took = started.elapsed();
    headers.retain(|(k, _)| k != "date");
    headers.sort();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap(),
        took,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Bob uploads content that alice stores and content that nobody stores, of the same size: the
/// answers are identical in status, headers and body, and so are the answers of `check` before.
/// The answer times are printed (their medians should differ by noise only: a deduplicated chunk
/// new to its user waits for what writing it would have cost); they are not asserted, a timing
/// assertion on a shared machine could fail without a fault.
#[test]
fn upload_and_check_answer_alike_whether_another_user_stores_the_content_or_nobody() {
    let server = Server::start();
    let api = Api::new(&server);
    let alice = Agent::new("alice", &server);
    let bob = Agent::new("bob", &server);
    alice.ok(["login"]);
    bob.ok(["login"]);
    let (ta, tb) = (alice.token(), bob.token());

    const ROUNDS: u64 = 15;
    const SIZE: usize = 300 * 1024;
    let (mut known_times, mut fresh_times) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Incompressible, so both travel raw with the same stored length.
        let x = random_bytes(SIZE, 1000 + round);
        let y = random_bytes(SIZE, 5000 + round);
        let (st, _, body, _) = upload_one(&api, &ta, &x);
        assert_eq!(st, 200, "{body}");

        // check: each is missing for bob; the answers differ only by the id asked for.
        let check = |id: ChunkId| {
            let (st, body) = api.post_json("/api/check", Some(&tb), &json!({ "chunks": [id] }));
            (st, body.to_string().replace(&id.to_hex(), "ID"))
        };
        assert_eq!(check(ChunkId::of(&x)), check(ChunkId::of(&y)));
        assert_eq!(check(ChunkId::of(&x)).1, r#"{"missing":["ID"]}"#);

        // Alternate the order, so that neither kind is always second.
        let (known, fresh) = if round % 2 == 0 {
            let k = upload_one(&api, &tb, &x);
            (k, upload_one(&api, &tb, &y))
        } else {
            let f = upload_one(&api, &tb, &y);
            (upload_one(&api, &tb, &x), f)
        };
        assert_eq!(known.0, 200, "{}", known.2);
        assert_eq!(
            (&known.0, &known.1, &known.2),
            (&fresh.0, &fresh.1, &fresh.2),
            "content alice stores and content nobody stores get the same answer"
        );
        assert_eq!(known.2["new_chunks"], 1, "{}", known.2);
        known_times.push(known.3);
        fresh_times.push(fresh.3);
    }
    let (k, f) = (median(known_times), median(fresh_times));
    println!(
        "upload answer time, median of {ROUNDS}: stored for another user {k:?}, new {f:?} (ratio {:.2})",
        k.as_secs_f64() / f.as_secs_f64()
    );

    // Bob's copies count for bob alone: alice's chunk is still hers, and bob can commit his.
    let (st, body) = api.post_json(
        "/api/check",
        Some(&tb),
        &json!({ "chunks": [ChunkId::of(&random_bytes(SIZE, 1000))] }),
    );
    assert_eq!((st, body["missing"].as_array().unwrap().len()), (200, 0));
}
