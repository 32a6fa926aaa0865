//! The body of a `POST /api/fetch` answer as the agent's restore reads it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = asgard_agent::fuzzing::restore_frames(data);
});
