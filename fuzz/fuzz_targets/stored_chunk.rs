//! A chunk in stored form (raw or one zstd frame): the bounded, hash-checked decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = asgard_server::fuzzing::stored_chunk(data);
});
