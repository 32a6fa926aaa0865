//! The query strings of `GET /api/list` and `GET /api/runs` as `web::Query` decodes them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = asgard_server::fuzzing::query(data);
});
