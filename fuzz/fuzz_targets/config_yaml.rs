//! The configuration files: the server's (first byte even) and the agent's (odd).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if which % 2 == 0 {
        let _ = asgard_server::fuzzing::config_yaml(text);
    } else {
        let _ = asgard_agent::fuzzing::parse_config(text);
    }
});
