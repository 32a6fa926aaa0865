//! Every JSON request body of the API (login, approve, check, commit, restore, manifest, fetch,
//! runs, the list query) and the name and code normalisation of the names in them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = asgard_server::fuzzing::protocol(data);
});
