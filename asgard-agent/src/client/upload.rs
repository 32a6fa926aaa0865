//! `POST /api/upload` as the agent sends it: request bodies within the server's limit, and
//! bounded retries while the server is busy.
//!
//! The server reserves every upload's length in a global budget before it reads the body; when
//! the budget stays spent it answers 503 `busy` with `Retry-After` (and a rate limit answers 429
//! the same way). The request is then sent again after that many seconds (or an exponential
//! back-off without the header, capped at [`MAX_BACKOFF`], with a little jitter so that many
//! agents do not come back at the same moment), at most [`MAX_ATTEMPTS`] times in all, with a
//! one-line notice on stderr. An upload is idempotent (chunks are named by their content), so a
//! repeat is always safe.
//!
//! A body larger than the server's `max_upload_bytes` gets 413 `upload_too_large` before the
//! server reads it: the agent then halves its requests (and remembers the limit for the rest of
//! the run), so its requests stay within whatever the server takes.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::anyhow;
use asgard_core::ChunkId;
use asgard_core::protocol::{ErrorBody, UploadResponse};
use bytes::Bytes;
use reqwest::StatusCode;

use super::{Client, error_chain};

/// Attempts of one request at most (the first and up to seven repeats).
pub(crate) const MAX_ATTEMPTS: u32 = 8;
/// The longest wait between two attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// An upper bound of a part's multipart framing (boundary line, headers with the id twice).
const PART_OVERHEAD: u64 = 256;

/// Uploads `chunks`, in as many requests as the server's limit needs; the answers summed.
pub(super) async fn upload(
    client: &Client,
    chunks: Vec<(ChunkId, Vec<u8>)>,
) -> anyhow::Result<UploadResponse> {
    let chunks: Vec<(ChunkId, Bytes)> = chunks
        .into_iter()
        .map(|(id, b)| (id, Bytes::from(b)))
        .collect();
    let mut total = UploadResponse::default();
    let limit = client.upload_limit.load(Ordering::Relaxed);
    let mut queue: VecDeque<Vec<(ChunkId, Bytes)>> = split(chunks, limit).into();
    while let Some(group) = queue.pop_front() {
        match send_with_retries(client, &group).await? {
            Sent::Done(r) => {
                total.received += r.received;
                total.new_chunks += r.new_chunks;
                total.new_bytes += r.new_bytes;
            }
            Sent::TooLarge(error) => {
                if group.len() < 2 {
                    return Err(error);
                }
                let len = body_estimate(&group);
                client.upload_limit.fetch_min(len / 2, Ordering::Relaxed);
                let limit = client.upload_limit.load(Ordering::Relaxed);
                // Halves at least, so that this ends even if the limit were not reached.
                let mut parts = split(group, limit);
                if parts.len() < 2 {
                    let mut g = parts.pop().unwrap_or_default();
                    let second = g.split_off(g.len() / 2);
                    parts = vec![g, second];
                }
                for p in parts.into_iter().rev() {
                    queue.push_front(p);
                }
            }
        }
    }
    Ok(total)
}

/// How one request ended.
enum Sent {
    Done(UploadResponse),
    /// 413 `upload_too_large`: the server's error, should the request not be divisible.
    TooLarge(anyhow::Error),
}

/// Sends one request, repeating it while the server answers 503 or 429 (see the module docs).
async fn send_with_retries(client: &Client, group: &[(ChunkId, Bytes)]) -> anyhow::Result<Sent> {
    let mut attempt = 1;
    loop {
        let (content_type, len, pieces) = multipart_body(group);
        let body = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
        let mut req = client
            .http
            .post(client.url("/api/upload"))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body));
        if let Some(t) = &client.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| client.transport_error(&e))?;
        let status = resp.status();
        if status.is_success() {
            let answer = resp.json::<UploadResponse>().await.map_err(|e| {
                anyhow!(
                    "{}: {}",
                    client.lang.pick(
                        "Unerwartete Antwort vom Server",
                        "Unexpected answer from the server"
                    ),
                    error_chain(&e)
                )
            })?;
            return Ok(Sent::Done(answer));
        }
        let retry = matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        );
        if retry && attempt < MAX_ATTEMPTS {
            let wait = delay(retry_after(&resp), attempt);
            eprintln!(
                "{}",
                busy_notice(client.lang, status.as_u16(), wait, attempt)
            );
            // The answer is read whole so that the connection can be used again.
            let _ = resp.bytes().await;
            tokio::time::sleep(wait).await;
            attempt += 1;
            continue;
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            let text = resp.text().await.unwrap_or_default();
            let too_large = serde_json::from_str::<ErrorBody>(&text)
                .is_ok_and(|b| b.code == "upload_too_large");
            let error = match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => anyhow!(super::present::server_error(&body, client.lang)),
                Err(_) => anyhow!(
                    "{} {status}: {}",
                    client.lang.pick("Server-Fehler", "Server error"),
                    text.chars().take(300).collect::<String>()
                ),
            };
            return if too_large {
                Ok(Sent::TooLarge(error))
            } else {
                Err(error)
            };
        }
        return Err(client.api_error(resp).await);
    }
}

/// The seconds of a `Retry-After` header (the seconds form; a date is not used by this server).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// The wait before attempt `attempt + 1`: the server's `Retry-After` if given, else 1, 2, 4 …
/// seconds; at least 1 s, at most [`MAX_BACKOFF`], plus up to a quarter of it as jitter.
pub(crate) fn delay(retry_after: Option<Duration>, attempt: u32) -> Duration {
    let base = retry_after
        .unwrap_or_else(|| Duration::from_secs(1 << attempt.saturating_sub(1).min(5)))
        .clamp(Duration::from_secs(1), MAX_BACKOFF);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// The notice on stderr while the agent waits for a busy server.
fn busy_notice(lang: asgard_core::Lang, status: u16, wait: Duration, attempt: u32) -> String {
    let secs = wait.as_secs_f64().ceil() as u64;
    let next = attempt + 1;
    let de = format!(
        "Server ausgelastet ({status}): Upload wird in {secs} s erneut gesendet (Versuch {next} von {MAX_ATTEMPTS})."
    );
    let en = format!(
        "Server busy ({status}): resending the upload in {secs} s (attempt {next} of {MAX_ATTEMPTS})."
    );
    lang.pick(&de, &en).to_owned()
}

/// Groups of `chunks`, in order, each with a body of at most `limit` bytes (a chunk too large
/// for any group goes alone).
fn split(chunks: Vec<(ChunkId, Bytes)>, limit: u64) -> Vec<Vec<(ChunkId, Bytes)>> {
    let mut out = Vec::new();
    let mut group = Vec::new();
    let mut size = PART_OVERHEAD;
    for (id, b) in chunks {
        let add = b.len() as u64 + PART_OVERHEAD;
        if !group.is_empty() && size.saturating_add(add) > limit {
            out.push(std::mem::take(&mut group));
            size = PART_OVERHEAD;
        }
        size += add;
        group.push((id, b));
    }
    if !group.is_empty() || out.is_empty() {
        out.push(group);
    }
    out
}

/// An upper bound of the body length of `group`.
fn body_estimate(group: &[(ChunkId, Bytes)]) -> u64 {
    PART_OVERHEAD
        + group
            .iter()
            .map(|(_, b)| b.len() as u64 + PART_OVERHEAD)
            .sum::<u64>()
}

/// The multipart/form-data body of an upload (one part per chunk, named by its id) as a flat list
/// of pieces, with its content type and length. reqwest's `multipart::Form` chains one stream per
/// part, and polling a chain of a thousand parts walks the whole chain each time (6 % of the
/// agent's CPU on a backup of small files). Chunks of at least [`OWN_PIECE`] bytes are pieces of
/// their own (shared, not copied, so a repeat costs no copy); the part headers and smaller chunks
/// are gathered into pieces of about that size, so that the connection writes few, full TLS
/// records.
///
/// The boundary is derived from the chunk ids and the time: it depends on the hashes of the very
/// data it separates, so no data can be made to hold it.
fn multipart_body(chunks: &[(ChunkId, Bytes)]) -> (String, u64, Vec<Bytes>) {
    let mut h = blake3::Hasher::new();
    for (id, _) in chunks {
        h.update(&id.0);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.update(&nanos.to_le_bytes());
    let boundary = format!("asgard-{}", &h.finalize().to_hex()[..40]);
    let mut pieces: Vec<Bytes> = Vec::new();
    let fresh = || Vec::with_capacity(OWN_PIECE + 4096);
    let mut gather: Vec<u8> = fresh();
    // Each part's data ends with CRLF before the next delimiter.
    let mut sep = "";
    for (id, stored) in chunks {
        let hex = id.to_hex();
        gather.extend_from_slice(
            format!(
                "{sep}--{boundary}\r\nContent-Disposition: form-data; name=\"{hex}\"; \
                 filename=\"{hex}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            )
            .as_bytes(),
        );
        if stored.len() >= OWN_PIECE {
            pieces.push(std::mem::replace(&mut gather, fresh()).into());
            pieces.push(stored.clone());
        } else {
            gather.extend_from_slice(stored);
            if gather.len() >= OWN_PIECE {
                pieces.push(std::mem::replace(&mut gather, fresh()).into());
            }
        }
        sep = "\r\n";
    }
    gather.extend_from_slice(format!("{sep}--{boundary}--\r\n").as_bytes());
    pieces.push(gather.into());
    let len = pieces.iter().map(|p| p.len() as u64).sum();
    (
        format!("multipart/form-data; boundary={boundary}"),
        len,
        pieces,
    )
}

/// See [`multipart_body`].
const OWN_PIECE: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_body_has_one_named_part_per_chunk_between_boundaries() {
        let a = b"erster Block".to_vec();
        let b = vec![0u8, 13, 10, 45, 45, 255];
        // Large enough to travel as a piece of its own.
        let big: Vec<u8> = (0..OWN_PIECE as u32 + 5).map(|i| (i % 251) as u8).collect();
        let (ida, idb, idbig) = (ChunkId::of(&a), ChunkId::of(&b), ChunkId::of(&big));
        let chunks = vec![
            (ida, Bytes::from(a.clone())),
            (idbig, Bytes::from(big.clone())),
            (idb, Bytes::from(b.clone())),
        ];
        let (content_type, len, pieces) = multipart_body(&chunks);
        assert!(pieces.iter().any(|p| p[..] == big[..]));
        let body = pieces.concat();
        assert_eq!(len, body.len() as u64);
        assert!(len <= body_estimate(&chunks));
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        assert!(boundary.len() >= 40);
        let mut expected = Vec::new();
        for (i, (id, data)) in [(ida, &a), (idbig, &big), (idb, &b)]
            .into_iter()
            .enumerate()
        {
            let hex = id.to_hex();
            if i > 0 {
                expected.extend_from_slice(b"\r\n");
            }
            expected.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{hex}\"; \
                     filename=\"{hex}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            expected.extend_from_slice(data);
        }
        expected.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        assert_eq!(body, expected);
        // Another request gets another boundary.
        let (other, _, _) = multipart_body(&chunks[..1]);
        assert_ne!(other, content_type);
    }

    #[test]
    fn groups_stay_within_the_limit_and_keep_the_order() {
        let chunks: Vec<(ChunkId, Bytes)> = (0..10u8)
            .map(|i| (ChunkId::of(&[i]), Bytes::from(vec![i; 1000])))
            .collect();
        let groups = split(chunks.clone(), 3000);
        assert!(groups.len() >= 4, "{}", groups.len());
        for g in &groups {
            assert!(body_estimate(g) <= 3000 || g.len() == 1);
            assert!(multipart_body(g).1 <= body_estimate(g));
        }
        let flat: Vec<ChunkId> = groups.concat().into_iter().map(|(id, _)| id).collect();
        let ids: Vec<ChunkId> = chunks.iter().map(|(id, _)| *id).collect();
        assert_eq!(flat, ids);
        // A chunk larger than the limit goes alone; no limit: one group.
        assert_eq!(split(chunks.clone(), 10).len(), 10);
        assert_eq!(split(chunks, u64::MAX).len(), 1);
    }

    #[test]
    fn the_wait_follows_retry_after_and_is_bounded() {
        for attempt in 1..MAX_ATTEMPTS {
            let d = delay(Some(Duration::from_secs(5)), attempt);
            assert!(d >= Duration::from_secs(5) && d <= Duration::from_millis(6250));
            let d = delay(None, attempt);
            assert!(d >= Duration::from_secs(1) && d <= MAX_BACKOFF.mul_f64(1.25));
        }
        assert!(delay(Some(Duration::from_secs(3600)), 1) <= MAX_BACKOFF.mul_f64(1.25));
        assert!(delay(Some(Duration::ZERO), 1) >= Duration::from_secs(1));
    }
}
