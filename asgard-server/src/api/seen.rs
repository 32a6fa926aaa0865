//! Where devices were last seen: every authenticated request may record its time and client
//! address for the admin console, but at most one database write per device per minute (or when
//! the address changes), so a backup of many small requests costs nothing extra.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// A device's record is written again after this long.
pub(crate) const SEEN_EVERY_US: i64 = 60 * 1_000_000;

/// The last recorded (time, address) per device, in memory (one entry per device that made a
/// request since the start: bounded by the devices in the database).
#[derive(Debug, Default)]
pub(crate) struct SeenThrottle {
    last: Mutex<HashMap<(u64, u64), (i64, IpAddr)>>,
}

impl SeenThrottle {
    /// Whether a request of `device` (user id, device id) from `addr` at `now` is to be
    /// written; if so, it counts as written.
    pub(crate) fn due(&self, device: (u64, u64), addr: IpAddr, now: i64) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(&device) {
            Some(&(at, a)) if a == addr && now.saturating_sub(at) < SEEN_EVERY_US => false,
            _ => {
                last.insert(device, (now, addr));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_write_per_device_and_minute_unless_the_address_changes() {
        let t = SeenThrottle::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        assert!(t.due((1, 1), a, 0));
        assert!(!t.due((1, 1), a, SEEN_EVERY_US - 1));
        assert!(t.due((1, 2), a, 5), "another device has its own minute");
        assert!(t.due((1, 1), b, 10), "a new address is written at once");
        assert!(!t.due((1, 1), b, 20));
        assert!(t.due((1, 1), b, 10 + SEEN_EVERY_US));
    }
}
