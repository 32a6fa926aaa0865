//! The `limits:` section: how large a request and its fields may be, how many entries and ids one
//! request may carry, and how fast a token or a client address may send requests and register.
//!
//! Every limit has a default that an ordinary agent never reaches (the agent sends at most 500
//! commit entries and 4,096 check ids per request); the JSON body limits of `check` and `commit`
//! are computed from the entry limits, so that a request within every entry limit always fits.

use std::path::Path;

use anyhow::bail;
use asgard_core::Lang;
use asgard_core::protocol::{MAX_CHECK_IDS, MAX_COMMIT_ENTRIES, MAX_RUN_ERRORS, MAX_RUN_TEXT};
use serde::{Deserialize, Serialize};

/// The `limits:` section of the configuration. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest path (and symlink target) in a commit, in bytes. Default 4096.
    pub max_path_bytes: u32,
    /// Most components (names between separators) of a path. Default 512.
    pub max_path_components: u32,
    /// Longest component of a path: bytes on Unix, UTF-16 units on Windows. Default 255.
    pub max_component_bytes: u32,
    /// Longest text field of a login (user and device names, `os`, `os_version`,
    /// `agent_version`, enrollment key, code) or an approval. Default 512 bytes.
    pub max_field_bytes: u32,
    /// Most entries in one commit (at most the protocol's 2,000). Default 2,000.
    pub max_commit_entries: u32,
    /// Most chunk references of all files of one commit together (a file of 1 TiB has about a
    /// million). Default 1,048,576.
    pub max_commit_chunks: u32,
    /// Most chunk ids in one `check` (at most the protocol's 10,000). Default 10,000.
    pub max_check_ids: u32,
    /// Largest JSON body of `login`, `devices/approve`, `restore` (the other endpoints' limits are
    /// computed from the entry limits). Default 64 KiB.
    pub small_body_bytes: u32,
    /// New users one client address may create per hour. Default 20.
    pub new_users_per_hour: u32,
    /// New devices (of new or existing users) one client address may register per hour.
    /// Default 60.
    pub registrations_per_hour: u32,
    /// Requests per second one device token may send on average. Default 1,000 (a backup of many
    /// small files sends a few hundred per second: a `check` every few milliseconds, uploads,
    /// commits; the agent does not wait and retry on 429).
    pub requests_per_second: u32,
    /// Requests one token may send at once before the rate applies. Default 5,000.
    pub request_burst: u32,
    /// Logins without a token (registrations, re-enrollments, wrong keys) one client address may
    /// send at once. Default 20; a load test that starts many agents at once needs more.
    pub login_burst: u32,
    /// Logins without a token one client address may send per minute after the burst. Default 60.
    pub logins_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_path_bytes: 4096,
            max_path_components: 512,
            max_component_bytes: 255,
            max_field_bytes: 512,
            max_commit_entries: MAX_COMMIT_ENTRIES as u32,
            max_commit_chunks: 1 << 20,
            max_check_ids: MAX_CHECK_IDS as u32,
            small_body_bytes: 64 * 1024,
            new_users_per_hour: 20,
            registrations_per_hour: 60,
            requests_per_second: 1000,
            request_burst: 5000,
            login_burst: 20,
            logins_per_minute: 60,
        }
    }
}

/// JSON overhead of one chunk reference (`{"id":"<64 hex>","len":4294967295},`).
const CHUNK_REF_JSON: u64 = 90;
/// JSON overhead of one commit entry besides its paths and chunk references (kind, size, mtime,
/// mode, attributes, hash, chunking parameters, field names).
const ENTRY_JSON: u64 = 512;
/// Slack for the braces, field names and white space around the lists.
const BODY_SLACK: u64 = 4096;

impl Limits {
    /// Largest JSON body of `check`: `max_check_ids` quoted hex ids.
    pub fn check_body(&self) -> usize {
        to_usize(u64::from(self.max_check_ids) * 67 + BODY_SLACK)
    }

    /// Largest JSON body of `commit`: `max_commit_entries` entries with a path and a symlink target
    /// of `max_path_bytes` each (a path that is not UTF-8 travels as hex: twice its bytes; a UTF-8
    /// one may need escapes, counted as twice as well), plus `max_commit_chunks` chunk references.
    pub fn commit_body(&self) -> usize {
        let entry = 2 * 2 * u64::from(self.max_path_bytes) + ENTRY_JSON;
        to_usize(
            u64::from(self.max_commit_entries) * entry
                + u64::from(self.max_commit_chunks) * CHUNK_REF_JSON
                + BODY_SLACK,
        )
    }

    /// Largest JSON body of `runs`: the protocol's bounds (error lines of at most
    /// `MAX_RUN_TEXT` bytes, each escaped to at most six times its length).
    pub fn runs_body(&self) -> usize {
        to_usize(
            (MAX_RUN_ERRORS as u64 + 1) * MAX_RUN_TEXT as u64 * 6
                + u64::from(self.small_body_bytes),
        )
    }

    /// Largest JSON body of `manifest` and `fetch` (id lists of the protocol's bounds).
    pub fn id_list_body(&self) -> usize {
        use asgard_core::protocol::{MAX_FETCH_IDS, MAX_MANIFEST_IDS};
        to_usize((MAX_FETCH_IDS.max(MAX_MANIFEST_IDS) as u64) * 67 + BODY_SLACK)
    }

    /// Largest JSON body of `login`, `devices/approve` and `restore`.
    pub fn small_body(&self) -> usize {
        to_usize(u64::from(self.small_body_bytes))
    }

    /// Refuses limits that would break every agent or make no sense; the message names the key.
    pub(crate) fn validate(&self, origin: &Path, lang: Lang) -> anyhow::Result<()> {
        let at_least: [(&str, u32, u32); 12] = [
            ("max_path_bytes", self.max_path_bytes, 256),
            ("max_path_components", self.max_path_components, 16),
            ("max_component_bytes", self.max_component_bytes, 16),
            ("max_field_bytes", self.max_field_bytes, 64),
            ("max_commit_entries", self.max_commit_entries, 1),
            ("max_commit_chunks", self.max_commit_chunks, 1),
            ("max_check_ids", self.max_check_ids, 1),
            ("small_body_bytes", self.small_body_bytes, 4096),
            ("requests_per_second", self.requests_per_second, 1),
            ("request_burst", self.request_burst, 1),
            ("login_burst", self.login_burst, 1),
            ("logins_per_minute", self.logins_per_minute, 1),
        ];
        for (key, value, min) in at_least {
            if value < min {
                bail!(
                    "{}: {}",
                    origin.display(),
                    super::present::limit_at_least(key, min, lang)
                );
            }
        }
        let at_most: [(&str, u32, usize); 2] = [
            (
                "max_commit_entries",
                self.max_commit_entries,
                MAX_COMMIT_ENTRIES,
            ),
            ("max_check_ids", self.max_check_ids, MAX_CHECK_IDS),
        ];
        for (key, value, max) in at_most {
            if value as usize > max {
                bail!(
                    "{}: {}",
                    origin.display(),
                    super::present::limit_at_most(key, max, lang)
                );
            }
        }
        Ok(())
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_limits_grow_with_the_entry_limits() {
        let l = Limits::default();
        // A commit of the agent's size (500 entries of long paths) fits easily.
        assert!(l.commit_body() > 500 * 4 * 4096);
        // 10,000 check ids of 64 hex digits fit.
        assert!(l.check_body() >= 10_000 * 66);
        let more = Limits {
            max_commit_chunks: 2 << 20,
            ..Limits::default()
        };
        assert!(more.commit_body() > l.commit_body());
        assert!(l.small_body() < l.check_body());
        assert!(l.runs_body() > MAX_RUN_ERRORS * MAX_RUN_TEXT);
    }

    #[test]
    fn validate_names_the_key() {
        let origin = Path::new("server.yaml");
        Limits::default().validate(origin, Lang::De).unwrap();
        let zero = Limits {
            login_burst: 0,
            ..Limits::default()
        };
        let err = zero.validate(origin, Lang::De).unwrap_err().to_string();
        assert!(
            err.contains("limits.login_burst muss mindestens 1"),
            "{err}"
        );
        let over = Limits {
            max_check_ids: 10_001,
            ..Limits::default()
        };
        let err = over.validate(origin, Lang::En).unwrap_err().to_string();
        assert!(
            err.contains("limits.max_check_ids must be at most 10000"),
            "{err}"
        );
    }
}
