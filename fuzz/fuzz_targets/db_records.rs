//! Every value the server decodes from its redb database.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = asgard_server::fuzzing::db_records(data);
});
