//! Entry points of the fuzz targets in `fuzz/` that read bytes the agent does not trust (see
//! `docs/FUZZING.md`): the body of a `POST /api/fetch` answer as a restore reads it, and the YAML
//! config file. Not part of the API (hidden from the docs); the modules stay `pub(crate)`.
//!
//! Every function returns normally for any input; a panic is a finding.

use std::collections::HashMap;
use std::path::Path;

use asgard_core::ChunkId;
use asgard_core::frames::{FRAME_HEADER_LEN, Frame, FrameDecoder, MAX_DATA_PAYLOAD};
use asgard_core::stored;

use crate::config::Config;

/// What a restore made of a fetch answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    /// Chunks that decoded to their id and length (what reaches a file).
    pub delivered: usize,
    /// Chunks whose places failed (missing on the server, damaged, wrong length).
    pub failed: usize,
    /// Why the answer was given up, if it was; the chunks after `delivered + failed` fail then.
    pub error: Option<String>,
}

/// `fuzz/fuzz_targets/restore_frames.rs`:
/// `[piece size - 1][k][k × (chunk id: 32 bytes, plaintext length: u32 LE)][fetch answer]`: a
/// restore that asked for those k chunks reads the answer arriving in pieces, see
/// [`read_fetch_answer`].
pub fn restore_frames(data: &[u8]) -> Result<FetchOutcome, String> {
    let (&piece, rest) = data.split_first().ok_or("empty")?;
    let (&k, mut rest) = rest.split_first().ok_or("short")?;
    let mut batch = Vec::with_capacity(k as usize);
    for _ in 0..k {
        let entry = rest.get(..36).ok_or("short")?;
        let id = ChunkId(entry[..32].try_into().expect("32 bytes"));
        let len = u32::from_le_bytes(entry[32..].try_into().expect("4 bytes"));
        batch.push((id, len));
        rest = &rest[36..];
    }
    Ok(read_fetch_answer(&batch, rest, piece as usize + 1))
}

/// Reads a fetch answer for `batch` (chunk ids in request order with their plaintext lengths) as
/// `restore::fetch::fetch_batch` does, the body arriving in pieces of `piece` bytes: frames in
/// request order, each DATA payload decoded with the chunk's length as bound and checked against
/// its id and length before it is delivered. Checks that the decoder holds at most one frame and
/// a piece, and that every delivered chunk is exactly the one asked for.
///
/// `fetch_batch` runs this loop over the HTTP body with the window's places; this repeats it
/// over a byte slice until the loop is a function of its own.
pub fn read_fetch_answer(batch: &[(ChunkId, u32)], body: &[u8], piece: usize) -> FetchOutcome {
    let lens: HashMap<ChunkId, u32> = batch.iter().copied().collect();
    let mut out = FetchOutcome::default();
    let mut done = 0usize;
    let mut decoder = FrameDecoder::default();
    let result: Result<(), String> = (|| {
        for p in body.chunks(piece.max(1)) {
            decoder.push(p);
            assert!(decoder.buffered() < FRAME_HEADER_LEN + MAX_DATA_PAYLOAD + p.len());
            while let Some(frame) = decoder.next_frame().map_err(|e| e.to_string())? {
                let Some((want, _)) = batch.get(done) else {
                    return Err("the server sent more chunks than requested".into());
                };
                if frame.id() != want {
                    return Err(format!("chunk {} instead of {want}", frame.id()));
                }
                done += 1;
                match frame {
                    Frame::Data { id, stored } => {
                        assert!(stored.len() <= MAX_DATA_PAYLOAD);
                        let Some(&len) = lens.get(&id) else {
                            unreachable!("the id was asked for")
                        };
                        match stored::decode_verified(&stored, &id, len as usize) {
                            Ok(plain) if plain.len() == len as usize => {
                                assert_eq!(ChunkId::of(&plain), id);
                                out.delivered += 1;
                            }
                            Ok(_) | Err(_) => out.failed += 1,
                        }
                    }
                    Frame::Missing { reason, .. } => {
                        assert!(reason.len() <= 3 * asgard_core::frames::MAX_REASON_LEN);
                        out.failed += 1;
                    }
                }
            }
        }
        decoder.finish().map_err(|e| e.to_string())?;
        if done < batch.len() {
            return Err(format!("the answer ended after {done} of {}", batch.len()));
        }
        Ok(())
    })();
    out.error = result.err();
    assert_eq!(out.delivered + out.failed, done);
    out
}

/// `fuzz/fuzz_targets/config_yaml.rs` (odd selector): the agent's config file as it reads it.
pub fn parse_config(text: &str) -> Result<(), String> {
    let c = Config::parse(text, Path::new("agent.yaml")).map_err(|e| e.to_string())?;
    let _ = (c.language(), c.server_url());
    assert!(c.memory_bytes() >= crate::config::MIN_MEMORY_MIB as usize * 1024 * 1024);
    Ok(())
}

/// The seed corpus of `restore_frames` (made by the server's frame encoders) and the agent's part
/// of `config_yaml`, as (target, name, bytes).
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use asgard_core::frames::{data_frame, missing_frame};
    let text = b"Tresor-PIN: 7391\n".repeat(300);
    let random = asgard_core::testdata::random_bytes(700, 11);
    let chunks = [
        (ChunkId::of(&text), text.len(), stored::encode(&text, 3)),
        (
            ChunkId::of(&random),
            random.len(),
            stored::encode(&random, 3),
        ),
    ];
    let gone = ChunkId::of(b"gone");
    let input = |piece: u8, asked: &[(ChunkId, usize)], body: &[u8]| {
        let mut v = vec![piece, asked.len() as u8];
        for (id, len) in asked {
            v.extend_from_slice(&id.0);
            v.extend_from_slice(&(*len as u32).to_le_bytes());
        }
        v.extend_from_slice(body);
        v
    };
    let mut body = Vec::new();
    for (id, _, s) in &chunks {
        body.extend_from_slice(&data_frame(id, s).expect("small"));
    }
    body.extend_from_slice(&missing_frame(&gone, "Chunk fehlt im Speicher"));
    let asked: Vec<(ChunkId, usize)> = chunks
        .iter()
        .map(|(id, len, _)| (*id, *len))
        .chain([(gone, 4)])
        .collect();
    let mut out = vec![
        (
            "restore_frames",
            "three-frames".to_owned(),
            input(255, &asked, &body),
        ),
        (
            "restore_frames",
            "small-pieces".to_owned(),
            input(6, &asked, &body),
        ),
        (
            "restore_frames",
            "truncated".to_owned(),
            input(255, &asked, &body[..body.len() - 3]),
        ),
    ];
    let example = include_str!("../../fixtures/agent.example.yaml");
    let mut v = vec![1u8];
    v.extend_from_slice(example.as_bytes());
    out.push(("config_yaml", "agent-example".to_owned(), v));
    let mut v = vec![1u8];
    v.extend_from_slice(
        b"server:\n  url: https://backup:8443\nblacklist: ['*.tmp']\nmemory_mib: 1\n\
          restore:\n  parallel_requests: 8\n",
    );
    out.push(("config_yaml", "agent-small".to_owned(), v));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_go_the_whole_way_and_are_in_the_corpus() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (target, name, bytes) in seeds() {
            if let Some(dir) = std::env::var_os("ASGARD_FUZZ_SEEDS") {
                let d = Path::new(&dir).join(target);
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join(format!("seed-{name}")), &bytes).unwrap();
            }
            let path = corpus.join(target).join(format!("seed-{name}"));
            let on_disk =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                on_disk == bytes,
                "{} differs from its encoder",
                path.display()
            );
            if target == "config_yaml" {
                parse_config(std::str::from_utf8(&bytes[1..]).unwrap()).unwrap();
            }
        }
        let s = seeds();
        let got = |name: &str| restore_frames(&s.iter().find(|x| x.1 == name).unwrap().2).unwrap();
        let whole = FetchOutcome {
            delivered: 2,
            failed: 1,
            error: None,
        };
        assert_eq!(got("three-frames"), whole);
        assert_eq!(got("small-pieces"), whole);
        let cut = got("truncated");
        assert_eq!((cut.delivered, cut.failed), (2, 0));
        assert!(cut.error.unwrap().contains("ends inside a frame"));
    }

    #[test]
    fn a_wrong_chunk_or_length_is_never_delivered() {
        let plain = b"abc".repeat(10);
        let id = ChunkId::of(&plain);
        let frame = asgard_core::frames::data_frame(&id, &stored::encode_raw(&plain)).unwrap();
        let ok = read_fetch_answer(&[(id, 30)], &frame, 7);
        assert_eq!((ok.delivered, ok.error), (1, None));
        let short = read_fetch_answer(&[(id, 29)], &frame, 7);
        assert_eq!((short.delivered, short.failed), (0, 1));
        let other = read_fetch_answer(&[(ChunkId::of(b"x"), 30)], &frame, 7);
        assert_eq!(other.delivered, 0);
        assert!(other.error.unwrap().contains("instead of"));
        let extra = read_fetch_answer(&[], &frame, 100);
        assert!(extra.error.unwrap().contains("more chunks"));
    }
}
