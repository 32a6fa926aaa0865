//! The multipart body of `POST /api/upload`: parts, their names and bounds, each part's decode.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = asgard_server::fuzzing::upload_multipart(data);
});
