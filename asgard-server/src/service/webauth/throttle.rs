//! The back-off of failed logins, per account name and per client address (IPv6 by its /64, the
//! block one machine usually gets). In memory: a restart forgets it, which costs an attacker a
//! restart of the server, not a way in.
//!
//! The rule: the first [`FREE_FAILURES`] failures of a key cost nothing; each one after that locks
//! the key for `base`, doubled with every further failure up to `max`. A lock ends by itself; a
//! key is forgotten [`FORGET_US`] after its last failure and its lock (so occasional typos never
//! add up). A locked key is refused *before* its password is looked at, so a lock also stops
//! guessing. Time is passed in by the caller (µs), so tests need no clock and no sleep.
//!
//! Memory is bounded: at most [`MAX_KEYS`] keys of each kind; when full, forgotten keys go first,
//! then the one whose last failure is oldest (an attack in progress keeps its own keys fresh).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Failures of a key before the first lock.
pub(crate) const FREE_FAILURES: u32 = 5;
/// A key is forgotten this long after its last failure and the end of its lock (15 minutes).
pub(crate) const FORGET_US: i64 = 15 * 60 * 1_000_000;
/// Most keys of each kind kept.
pub(crate) const MAX_KEYS: usize = 10_000;

/// Lock lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub base_us: i64,
    pub max_us: i64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    failures: u32,
    last_us: i64,
    locked_until_us: i64,
}

impl Entry {
    fn forgotten(&self, now_us: i64) -> bool {
        now_us.saturating_sub(self.last_us.max(self.locked_until_us)) > FORGET_US
    }
}

#[derive(Debug)]
struct Keys<K> {
    map: HashMap<K, Entry>,
}

impl<K> Default for Keys<K> {
    fn default() -> Self {
        Keys {
            map: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Keys<K> {
    fn locked_for(&mut self, key: &K, now_us: i64) -> i64 {
        match self.map.get(key) {
            Some(e) if e.forgotten(now_us) => {
                self.map.remove(key);
                0
            }
            Some(e) => e.locked_until_us.saturating_sub(now_us).max(0),
            None => 0,
        }
    }

    fn failure(&mut self, key: K, now_us: i64, backoff: Backoff) {
        if !self.map.contains_key(&key) && self.map.len() >= MAX_KEYS {
            self.map.retain(|_, e| !e.forgotten(now_us));
            if self.map.len() >= MAX_KEYS
                && let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.last_us)
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        let e = self.map.entry(key).or_default();
        if e.forgotten(now_us) {
            *e = Entry::default();
        }
        e.failures = e.failures.saturating_add(1);
        e.last_us = now_us;
        if e.failures >= FREE_FAILURES {
            let doublings = (e.failures - FREE_FAILURES).min(40);
            let lock = backoff
                .base_us
                .saturating_mul(1i64 << doublings)
                .min(backoff.max_us);
            e.locked_until_us = now_us.saturating_add(lock);
        }
    }

    fn forget(&mut self, key: &K) {
        self.map.remove(key);
    }
}

/// The login throttle of the admin console.
#[derive(Debug)]
pub(crate) struct LoginThrottle {
    backoff: Backoff,
    inner: Mutex<(Keys<String>, Keys<IpAddr>)>,
}

/// The key of a client address: IPv4 as it is, IPv6 by its /64 (one machine or line usually
/// has a whole /64; an IPv4 address mapped into IPv6 counts as the IPv4 address).
pub(crate) fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

impl LoginThrottle {
    pub(crate) fn new(backoff: Backoff) -> LoginThrottle {
        LoginThrottle {
            backoff,
            inner: Mutex::new((Keys::default(), Keys::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Keys<String>, Keys<IpAddr>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)` while the account name or the client address is locked (the longer of the
    /// two locks).
    pub(crate) fn check(&self, name: &str, client: IpAddr, now_us: i64) -> Result<(), Duration> {
        let mut keys = self.lock();
        let wait = keys
            .0
            .locked_for(&name.to_owned(), now_us)
            .max(keys.1.locked_for(&address_key(client), now_us));
        if wait > 0 {
            Err(Duration::from_micros(u64::try_from(wait).unwrap_or(0)))
        } else {
            Ok(())
        }
    }

    /// Counts a failed login of `name` from `client`.
    pub(crate) fn failure(&self, name: &str, client: IpAddr, now_us: i64) {
        let backoff = self.backoff;
        let mut keys = self.lock();
        keys.0.failure(name.to_owned(), now_us, backoff);
        keys.1.failure(address_key(client), now_us, backoff);
    }

    /// A successful login of `name`: its account key starts afresh (the address key does not: a
    /// stranger with one account of their own must not reset the count of their address).
    pub(crate) fn success(&self, name: &str) {
        self.lock().0.forget(&name.to_owned());
    }

    /// Keys held (names, addresses).
    #[cfg(test)]
    pub(crate) fn len(&self) -> (usize, usize) {
        let keys = self.lock();
        (keys.0.map.len(), keys.1.map.len())
    }
}
