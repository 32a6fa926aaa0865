//! The packed store's segment records (the reader of compaction and verify) and segment keys.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = asgard_server::fuzzing::segment_records(data);
});
