//! Entry points of the fuzz targets in `fuzz/` (see `docs/FUZZING.md`): one function per decoder
//! of untrusted bytes, each driving the same code the server runs on those bytes, and checking
//! what must hold for any input (bounds, round trips). Not part of the crate's API: the internal
//! modules stay `pub(crate)`, and only these thin wrappers are public (hidden from the docs).
//!
//! Every function returns normally for any input; a panic (or an abort, a hang, an allocation
//! beyond libFuzzer's limit) is a finding. Results are `Ok`/`Err` only so that the tests can tell
//! that a seed went the whole way.

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use actix_multipart::Multipart;
use actix_web::http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use actix_web::web::{Bytes, Query};
use asgard_core::chunker::MAX_CHUNK_SIZE;
use asgard_core::protocol::{
    ApproveRequest, CheckRequest, CommitRequest, FetchRequest, ListQuery, LoginRequest,
    ManifestRequest, RestoreRequest, RunReport, RunsQuery,
};
use asgard_core::{ChunkId, names, stored};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{Config, HumanDuration};
use crate::db::{
    ChunkRec, DeviceRec, PathRec, PendingRec, ReenrollRec, RunRec, UserRec, VersionRec,
    decode_cursor, encode_cursor,
};
use crate::service::ingest::{MAX_PART_BYTES, validate_entry};
use crate::store::medium::{Medium, ObjectIter, ObjectMeta, Read};
use crate::store::packed::format::{
    RECORD_HEADER, Records, SEGMENT_MAGIC, Step, parse_header, parse_segment_key, record_header,
    segment_key,
};
use crate::store::{ObjectName, StoreError};

mod seeds;
pub use seeds::{Seed, seeds};

/// `fuzz/fuzz_targets/protocol.rs`: `[body kind][JSON body]`, see [`decode_body`].
pub fn protocol(data: &[u8]) -> Result<(), String> {
    let (&kind, body) = data.split_first().ok_or("empty")?;
    decode_body(kind, body)
}

/// `fuzz/fuzz_targets/query.rs`: `[query kind][query string]`, see [`decode_query`].
pub fn query(data: &[u8]) -> Result<(), String> {
    let (&kind, text) = data.split_first().ok_or("empty")?;
    decode_query(kind, std::str::from_utf8(text).map_err(|e| e.to_string())?)
}

/// `fuzz/fuzz_targets/upload_multipart.rs`: `[n][Content-Type: n bytes][piece size - 1][body]`,
/// see [`parse_upload`].
pub fn upload_multipart(data: &[u8]) -> Result<(), String> {
    let (&n, rest) = data.split_first().ok_or("empty")?;
    let ct = rest.get(..n as usize).ok_or("short")?;
    let (&piece, body) = rest[n as usize..].split_first().ok_or("short")?;
    parse_upload(ct, body, piece as usize + 1).map(drop)
}

/// `fuzz/fuzz_targets/stored_chunk.rs`: `[bound selector][claimed id: 32 bytes][stored chunk]`:
/// the stored chunk decoder of uploads, verify and restores, with the chunk bound and with a
/// small bound (`selector * 1024`); whatever decodes stays within its bound, and a verified chunk
/// hashes to its id.
pub fn stored_chunk(data: &[u8]) -> Result<(), String> {
    let (&sel, rest) = data.split_first().ok_or("empty")?;
    let id = ChunkId(rest.get(..32).ok_or("short")?.try_into().expect("32 bytes"));
    let body = &rest[32..];
    let small = sel as usize * 1024;
    if let Ok(plain) = stored::decode(body, small) {
        assert!(plain.len() <= small);
        assert_eq!(
            stored::decode(&stored::encode_raw(&plain), small).ok(),
            Some(plain)
        );
    }
    let plain =
        stored::decode_verified(body, &id, MAX_CHUNK_SIZE as usize).map_err(|e| e.to_string())?;
    assert!(plain.len() <= MAX_CHUNK_SIZE as usize);
    assert_eq!(ChunkId::of(&plain), id);
    Ok(())
}

/// `fuzz/fuzz_targets/db_records.rs`: `[record kind][stored value]`, see [`decode_db_record`].
pub fn db_records(data: &[u8]) -> Result<(), String> {
    let (&kind, bytes) = data.split_first().ok_or("empty")?;
    decode_db_record(kind, bytes)
}

/// `fuzz/fuzz_targets/segment_records.rs`: `[slack: i8][segment bytes]`: the committed length is
/// the segment's length minus `slack` (a crash's leftovers past it) or plus `-slack` (bytes the
/// disk lost), see [`scan_segment`]; the same bytes as an object key, see [`parse_key`].
pub fn segment_records(data: &[u8]) -> Result<(), String> {
    let (&slack, segment) = data.split_first().ok_or("empty")?;
    let len = segment.len() as u64;
    let slack = i64::from(slack as i8);
    let committed = if slack >= 0 {
        len.saturating_sub(slack as u64)
    } else {
        len + slack.unsigned_abs()
    };
    if let Ok(key) = std::str::from_utf8(segment) {
        parse_key(key);
    }
    scan_segment(segment, committed).map(drop)
}

/// `fuzz/fuzz_targets/config_yaml.rs` (even selector): the server's YAML configuration, see
/// [`parse_config`]; the text also as a duration, see [`parse_duration`].
pub fn config_yaml(text: &str) -> Result<(), String> {
    parse_duration(text);
    parse_config(text)
}

/// The JSON request bodies of the API, in the order of the selector byte of [`decode_body`].
pub const BODIES: [&str; 9] = [
    "login",
    "approve",
    "check",
    "commit",
    "restore",
    "manifest",
    "fetch",
    "runs",
    "list-json",
];

/// Decodes `body` as the JSON request body `BODIES[kind % 9]` (as `web::Json` does: serde_json
/// from the bytes), then runs what the handler runs on it before any database work: name
/// normalisation of login and restore names, code normalisation, commit entry validation, run
/// report validation, list query validation. A decoded body must encode and decode to itself.
pub fn decode_body(kind: u8, body: &[u8]) -> Result<(), String> {
    match kind as usize % BODIES.len() {
        0 => {
            let r: LoginRequest = json_round_trip(body)?;
            for name in [&r.user, &r.device] {
                name_invariants(name);
            }
            if let Some(code) = &r.code {
                code_invariants(code);
            }
        }
        1 => code_invariants(&json_round_trip::<ApproveRequest>(body)?.code),
        2 => {
            json_round_trip::<CheckRequest>(body)?;
        }
        3 => {
            let r: CommitRequest = json_round_trip(body)?;
            for e in &r.entries {
                let _ = validate_entry(e);
                if let asgard_core::protocol::CommitEntry::File { meta, .. } = e {
                    let _ = meta.lengths_add_up();
                }
            }
        }
        4 => {
            let r: RestoreRequest = json_round_trip(body)?;
            if let Some(d) = &r.device {
                name_invariants(d);
            }
        }
        5 => {
            json_round_trip::<ManifestRequest>(body)?;
        }
        6 => {
            json_round_trip::<FetchRequest>(body)?;
        }
        7 => {
            // Floats do not survive a JSON round trip bit for bit: decode only.
            let r: RunReport = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            let _ = crate::api::runs::validate(&r);
        }
        _ => {
            let q: ListQuery = json_round_trip(body)?;
            list_invariants(q);
        }
    }
    Ok(())
}

/// Decodes a query string as `web::Query` does for `GET /api/list` (`kind` even) or
/// `GET /api/runs` (odd), then validates it as the handler does.
pub fn decode_query(kind: u8, query: &str) -> Result<(), String> {
    if kind.is_multiple_of(2) {
        let q = Query::<ListQuery>::from_query(query).map_err(|e| e.to_string())?;
        list_invariants(q.into_inner());
    } else {
        let q = Query::<RunsQuery>::from_query(query).map_err(|e| e.to_string())?;
        let limit = q.limit.map_or(crate::db::KEEP_RUNS, |l| {
            (l as usize).clamp(1, crate::db::KEEP_RUNS)
        });
        assert!((1..=crate::db::KEEP_RUNS).contains(&limit));
    }
    Ok(())
}

/// Parses a `multipart/form-data` upload body (with the request's `Content-Type`) as
/// `POST /api/upload` does, the body arriving in pieces of `piece` bytes: every part named by a
/// chunk id, bounded per part and per request, then each part decoded with the size bound and
/// checked against its id. Returns the (id, stored length, plaintext length) of every part.
///
/// Today's handler collects the parts itself (`api/backup.rs`); this repeats its loop over the
/// same `Multipart` parser until the upload parsing is a function of its own.
pub fn parse_upload(
    content_type: &[u8],
    body: &[u8],
    piece: usize,
) -> Result<Vec<(ChunkId, usize, usize)>, String> {
    let mut headers = HeaderMap::new();
    let ct = HeaderValue::from_bytes(content_type).map_err(|e| e.to_string())?;
    headers.insert(CONTENT_TYPE, ct);
    let pieces: Vec<Result<Bytes, actix_web::error::PayloadError>> = body
        .chunks(piece.max(1))
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    let max_total = Config::default().max_upload_bytes;
    let parts = block_on(async move {
        let mut parts = Multipart::new(&headers, futures_util::stream::iter(pieces));
        let mut total: u64 = 0;
        let mut received: Vec<(ChunkId, Vec<u8>)> = Vec::new();
        while let Some(field) = parts.next().await {
            let mut field = field.map_err(|e| e.to_string())?;
            let name = field.name().unwrap_or_default().to_owned();
            let id: ChunkId = name.parse().map_err(|_| format!("bad chunk id {name:?}"))?;
            let mut bytes = Vec::new();
            while let Some(p) = field.next().await {
                let p = p.map_err(|e| e.to_string())?;
                total += p.len() as u64;
                if total > max_total {
                    return Err("upload too large".to_owned());
                }
                if bytes.len() + p.len() > MAX_PART_BYTES {
                    return Err("part too large".to_owned());
                }
                bytes.extend_from_slice(&p);
            }
            received.push((id, bytes));
        }
        Ok(received)
    })?;
    let mut out = Vec::with_capacity(parts.len());
    for (id, bytes) in &parts {
        assert!(bytes.len() <= MAX_PART_BYTES);
        let plain = stored::decode_verified(bytes, id, MAX_CHUNK_SIZE as usize)
            .map_err(|e| e.to_string())?;
        assert_eq!(ChunkId::of(&plain), *id);
        out.push((*id, bytes.len(), plain.len()));
    }
    Ok(out)
}

/// The record types of the metadata database, in the order of the selector of
/// [`decode_db_record`].
pub const RECORDS: [&str; 10] = [
    "user",
    "device",
    "pending",
    "reenroll",
    "chunk",
    "path",
    "version",
    "run",
    "meta_json",
    "cursor",
];

/// Decodes `bytes` as the stored value `RECORDS[kind % 10]` of the metadata database, as the
/// transactions do (postcard; versions also in their old shape; JSON for `meta_json`; the list
/// cursor text). What decodes must encode and decode to the same record.
pub fn decode_db_record(kind: u8, bytes: &[u8]) -> Result<(), String> {
    match kind as usize % RECORDS.len() {
        0 => postcard_round_trip::<UserRec>(bytes),
        1 => postcard_round_trip::<DeviceRec>(bytes),
        2 => postcard_round_trip::<PendingRec>(bytes),
        3 => postcard_round_trip::<ReenrollRec>(bytes),
        4 => postcard_round_trip::<ChunkRec>(bytes),
        5 => postcard_round_trip::<PathRec>(bytes),
        6 => {
            let v = VersionRec::decode(bytes).map_err(|e| e.to_string())?;
            let _ = v.info(1);
            let again = postcard::to_stdvec(&v).map_err(|e| e.to_string())?;
            assert_eq!(VersionRec::decode(&again).map_err(|e| e.to_string())?, v);
            Ok(())
        }
        7 => {
            let r: RunRec = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
            let info = r.info(1);
            // NaN durations are stored as they came; compare the bytes, not the floats.
            let again = postcard::to_stdvec(&r).map_err(|e| e.to_string())?;
            let back: RunRec = postcard::from_bytes(&again).map_err(|e| e.to_string())?;
            assert_eq!(postcard::to_stdvec(&back).ok(), Some(again));
            let _ = info;
            Ok(())
        }
        8 => serde_json::from_slice::<serde_json::Value>(bytes)
            .map(drop)
            .map_err(|e| e.to_string()),
        _ => {
            let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
            let (device, path) = decode_cursor(text).ok_or("bad cursor")?;
            assert_eq!(
                decode_cursor(&encode_cursor(device, &path)),
                Some((device, path))
            );
            Ok(())
        }
    }
}

/// Walks a segment of the packed store whose committed length is `committed` (bytes past it are
/// a crash's leftovers) with the record reader of compaction and verify. Every record must lie
/// inside the segment and the committed length, in order, with its header; the walk ends.
/// Returns the number of records before the end or the damage, and whether damage was found.
pub fn scan_segment(segment: &[u8], committed: u64) -> Result<(usize, bool), String> {
    let medium = OneObject(segment.to_vec());
    let mut records = Records::new(&medium, "s", committed);
    let mut count = 0usize;
    let mut next_offset = SEGMENT_MAGIC.len() as u64;
    loop {
        match records.next().map_err(|e| e.to_string())? {
            Step::Record(r) => {
                assert_eq!(r.offset, next_offset + RECORD_HEADER);
                let end = r.offset + r.data.len() as u64;
                assert!(end <= committed && end <= segment.len() as u64);
                assert_eq!(&segment[r.offset as usize..end as usize], r.data);
                assert_eq!(parse_header(&r.header), Some((r.id, r.data.len() as u32)));
                assert_eq!(record_header(&r.id, r.data.len() as u32), r.header);
                next_offset = end;
                count += 1;
                // Every record takes at least a header: the walk cannot outlast the bytes.
                assert!(count as u64 <= segment.len() as u64 / RECORD_HEADER);
            }
            Step::End => return Ok((count, false)),
            Step::Damaged { offset } => {
                assert!(offset <= committed.max(SEGMENT_MAGIC.len() as u64));
                return Ok((count, true));
            }
        }
    }
}

/// A segment object's key as the packed store parses it at open; a parsed key must name itself.
pub fn parse_key(key: &str) {
    if let Some(id) = parse_segment_key(key) {
        assert_eq!(segment_key(id), key.to_ascii_lowercase());
    }
}

/// Reads the server configuration from YAML text as `serve` does (defaults, deprecated keys,
/// validation). A valid configuration must write as YAML and read back equal, and its durations
/// must read back from their text.
pub fn parse_config(text: &str) -> Result<(), String> {
    let c = Config::from_yaml(text, Path::new("fuzz.yaml")).map_err(|e| format!("{e:#}"))?;
    for d in [
        c.reenroll_code_valid,
        c.gc_grace,
        c.gc_interval,
        c.db_backup_interval,
        c.verify_interval,
    ] {
        let _ = d.as_micros_i64();
        let back: HumanDuration = d.to_string().parse().expect("a duration's text reads back");
        assert_eq!(back, d);
    }
    let _ = (c.packed_options(), c.verify_every(), c.lang());
    let yaml = yaml_serde::to_string(&c).expect("a config writes as YAML");
    let back = Config::from_yaml(&yaml, Path::new("back.yaml")).expect("a written config reads");
    assert_eq!(back, c);
    Ok(())
}

/// A duration as the configuration reads it; what reads must print and read back equal.
pub fn parse_duration(text: &str) {
    if let Ok(d) = text.parse::<HumanDuration>() {
        assert_eq!(d.to_string().parse::<HumanDuration>(), Ok(d));
    }
}

fn json_round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    body: &[u8],
) -> Result<T, String> {
    let v: T = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let again = serde_json::to_vec(&v).expect("a decoded body encodes");
    let back: T = serde_json::from_slice(&again).expect("an encoded body decodes");
    assert_eq!(back, v);
    Ok(v)
}

fn postcard_round_trip<T: DeserializeOwned + Serialize + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<(), String> {
    let v: T = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
    let again = postcard::to_stdvec(&v).expect("a decoded record encodes");
    let back: T = postcard::from_bytes(&again).expect("an encoded record decodes");
    assert_eq!(format!("{back:?}"), format!("{v:?}"));
    Ok(())
}

/// A name in normal form is its own normal form, and its skeleton can be taken.
fn name_invariants(name: &str) {
    if let Ok(n) = names::normalize(name) {
        assert!(!n.is_empty() && n.chars().count() <= names::MAX_NAME_CHARS);
        assert!(
            names::is_normal(&n),
            "normal form {n:?} of {name:?} is not normal"
        );
        let _ = names::skeleton(&n);
    }
}

/// A code in canonical form consists of code letters only and is its own canonical form.
fn code_invariants(code: &str) {
    if let Some(c) = names::normalize_code(code) {
        assert_eq!(c.len(), names::CODE_LEN + 1, "{code:?} → {c:?}");
        assert_eq!(names::normalize_code(&c).as_deref(), Some(c.as_str()));
    }
}

fn list_invariants(q: ListQuery) {
    if let Some(d) = &q.device {
        name_invariants(d);
    }
    // The cursor's device id passes the same keyed permutation as in the server (fixed key here).
    let devices = crate::api::ids::Perm::new(&[7; 32], crate::api::ids::Kind::Device, 1);
    if let Ok(p) = crate::api::list::params(q, 1, &devices) {
        assert!((1..=asgard_core::protocol::MAX_LIST_LIMIT as usize).contains(&p.limit));
    }
}

/// Runs a future that never waits on anything but its own (always ready) input.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    // The input is all there: a parser that still waits after this many polls hangs.
    for _ in 0..100_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the parser waits for input that is all there");
}

/// A medium holding one object, `s`.
#[derive(Debug)]
struct OneObject(Vec<u8>);

impl Medium for OneObject {
    fn put(&self, key: &str, _bytes: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::io(key, std::io::Error::other("read only")))
    }

    fn read_at(&self, key: &str, offset: u64, len: u64) -> Result<Read, StoreError> {
        if key != "s" {
            return Ok(Read::Missing);
        }
        Ok(match offset.checked_add(len) {
            Some(end) if end <= self.0.len() as u64 => {
                Read::Bytes(self.0[offset as usize..end as usize].to_vec())
            }
            _ => Read::Short,
        })
    }

    fn delete(&self, _key: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn list(&self, _prefix: &str) -> Result<ObjectIter<'_>, StoreError> {
        let meta = ObjectMeta {
            key: "s".into(),
            size: self.0.len() as u64,
            modified_us: 0,
        };
        Ok(Box::new(std::iter::once(Ok(meta))))
    }

    fn describe(&self, key: &str) -> ObjectName {
        ObjectName::new(key)
    }
}

#[cfg(test)]
mod tests;
