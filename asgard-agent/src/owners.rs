//! Owner and group names and ids (Unix): the backup records both, a restore run as root sets the
//! owner by name where this machine knows the name, else by number (like tar).
//!
//! Lookups go through the system's user database (NSS), once per id or name and run: the caches
//! keep every answer, also "unknown".
//!
//! Windows: an owner is a SID, not a number. The backup records the account as `DOMAIN\name`
//! (`LookupAccountSid`, once per SID and run), for the record only: no restore sets it (a
//! Windows restore sets no owners; on Unix no user name contains a backslash, so it never
//! matches a local user there).

use std::collections::HashMap;
use std::sync::Mutex;

/// Cached lookups in both directions.
#[derive(Debug, Default)]
pub struct Owners {
    // Names by id are what a Unix backup records; a Windows owner is a SID, not a uid.
    #[cfg(unix)]
    user_names: Mutex<HashMap<u32, Option<String>>>,
    #[cfg(unix)]
    group_names: Mutex<HashMap<u32, Option<String>>>,
    uids: Mutex<HashMap<String, Option<u32>>>,
    gids: Mutex<HashMap<String, Option<u32>>>,
    /// Account names by owner SID (Windows).
    #[cfg(windows)]
    accounts:
        Mutex<HashMap<windows_permissions::LocalBox<windows_permissions::Sid>, Option<String>>>,
}

fn cached<K: std::hash::Hash + Eq + Clone, V: Clone>(
    map: &Mutex<HashMap<K, V>>,
    key: &K,
    look: impl FnOnce() -> V,
) -> V {
    if let Some(v) = map.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
        return v.clone();
    }
    let v = look();
    map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.clone(), v.clone());
    v
}

impl Owners {
    /// The name of user `uid`, if the machine knows one.
    #[cfg(unix)]
    pub fn user_name(&self, uid: u32) -> Option<String> {
        cached(&self.user_names, &uid, || {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name)
        })
    }

    /// The name of group `gid`, if the machine knows one.
    #[cfg(unix)]
    pub fn group_name(&self, gid: u32) -> Option<String> {
        cached(&self.group_names, &gid, || {
            nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                .ok()
                .flatten()
                .map(|g| g.name)
        })
    }

    /// The account of owner `sid` as `DOMAIN\name` (just `name` for the few accounts without a
    /// domain, such as `Everyone`); the SID itself (`S-1-5-21-...`) where this machine cannot
    /// name it (a deleted account, an unreachable domain), so the record still says who it was.
    /// `None` only where even that fails, or the name is over the bound.
    #[cfg(windows)]
    pub fn account_name(&self, sid: &windows_permissions::Sid) -> Option<String> {
        use windows_permissions::wrappers;
        let lock = || self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(name) = lock().get(sid) {
            return name.clone();
        }
        let name = match wrappers::LookupAccountSid(sid) {
            Ok((name, domain)) if domain.is_empty() => Some(name.to_string_lossy().into_owned()),
            Ok((name, domain)) => Some(format!(
                "{}\\{}",
                domain.to_string_lossy(),
                name.to_string_lossy()
            )),
            Err(_) => wrappers::ConvertSidToStringSid(sid)
                .ok()
                .map(|s| s.to_string_lossy().into_owned()),
        }
        .filter(|n| !n.is_empty() && n.len() <= asgard_core::meta::MAX_OWNER_NAME);
        // Not cached only where the SID cannot be copied (out of memory): asked again next time.
        if let Ok(key) = wrappers::CopySid(sid) {
            lock().insert(key, name.clone());
        }
        name
    }

    /// How many owner SIDs were looked up in this run (each once).
    #[cfg(all(windows, test))]
    pub fn accounts_looked_up(&self) -> usize {
        self.accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The id of the user called `name` on this machine.
    pub fn uid_of(&self, name: &str) -> Option<u32> {
        cached(&self.uids, &name.to_owned(), || {
            #[cfg(unix)]
            {
                nix::unistd::User::from_name(name)
                    .ok()
                    .flatten()
                    .map(|u| u.uid.as_raw())
            }
            #[cfg(not(unix))]
            {
                None
            }
        })
    }

    /// The id of the group called `name` on this machine.
    pub fn gid_of(&self, name: &str) -> Option<u32> {
        cached(&self.gids, &name.to_owned(), || {
            #[cfg(unix)]
            {
                nix::unistd::Group::from_name(name)
                    .ok()
                    .flatten()
                    .map(|g| g.gid.as_raw())
            }
            #[cfg(not(unix))]
            {
                None
            }
        })
    }

    /// The uid to give a restored entry recorded with `uid` and `name`: by name where this
    /// machine knows it (unless `numeric`), else the recorded number.
    pub fn restore_uid(&self, uid: Option<u32>, name: Option<&str>, numeric: bool) -> Option<u32> {
        if !numeric && let Some(id) = name.and_then(|n| self.uid_of(n)) {
            return Some(id);
        }
        uid
    }

    /// The gid to give a restored entry (see [`Owners::restore_uid`]).
    pub fn restore_gid(&self, gid: Option<u32>, name: Option<&str>, numeric: bool) -> Option<u32> {
        if !numeric && let Some(id) = name.and_then(|n| self.gid_of(n)) {
            return Some(id);
        }
        gid
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_both_ways() {
        let o = Owners::default();
        assert_eq!(o.user_name(0).as_deref(), Some("root"));
        assert_eq!(o.group_name(0).as_deref(), Some("root"));
        assert_eq!(o.uid_of("root"), Some(0));
        assert_eq!(o.gid_of("root"), Some(0));
        // Cached answers are the same.
        assert_eq!(o.user_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn unknown_names_and_ids_fall_back_to_numbers() {
        let o = Owners::default();
        assert_eq!(o.user_name(3_999_999_999), None);
        assert_eq!(o.uid_of("kein-solcher-benutzer-xyz"), None);
        // A name this machine knows wins over the recorded number; an unknown one does not.
        assert_eq!(o.restore_uid(Some(1234), Some("root"), false), Some(0));
        assert_eq!(o.restore_uid(Some(1234), Some("root"), true), Some(1234));
        assert_eq!(
            o.restore_uid(Some(1234), Some("kein-solcher-benutzer-xyz"), false),
            Some(1234)
        );
        assert_eq!(o.restore_gid(Some(77), None, false), Some(77));
        assert_eq!(o.restore_gid(None, Some("root"), false), Some(0));
    }
}
