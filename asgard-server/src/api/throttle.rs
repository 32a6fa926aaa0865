//! Rate limits: token buckets per device token (by its hash) and, for requests without a token, per
//! client address, with a separate, smaller bucket for logins without a token; and hourly budgets
//! of registrations and new users per client address.
//!
//! Memory stays bounded whatever a client sends: each map holds at most [`MAX_BUCKETS`] buckets.
//! When a new key finds a map full, the buckets that have refilled completely go first (such a
//! bucket is indistinguishable from a new one, so forgetting it loses nothing); if the map is still
//! full, the half that was idle longest goes. Buckets live in this process only: a restart starts
//! every client with a full bucket.
//!
//! The client address is the TCP peer: the server does not trust forwarding headers.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web;

use super::ApiError;
use crate::config::Limits;
use crate::db::hash_token;

/// Most buckets per map (per token, per address, logins, registrations, new users).
pub(crate) const MAX_BUCKETS: usize = 65_536;

/// Refill rate and capacity of a bucket.
#[derive(Debug, Clone, Copy)]
struct Rate {
    burst: f64,
    per_sec: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets of one kind, keyed by `K`.
#[derive(Debug)]
struct Buckets<K> {
    rate: Rate,
    map: HashMap<K, Bucket>,
    cap: usize,
}

impl<K: Eq + Hash + Copy> Buckets<K> {
    fn new(burst: u32, per_sec: f64, cap: usize) -> Self {
        Buckets {
            rate: Rate {
                burst: f64::from(burst),
                per_sec,
            },
            map: HashMap::new(),
            cap,
        }
    }

    /// The bucket of `key`, refilled up to `now`.
    fn refilled(&mut self, key: K, now: Instant) -> &mut Bucket {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.evict(now);
        }
        let rate = self.rate;
        let b = self.map.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let secs = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + secs * rate.per_sec).min(rate.burst);
        b.at = now;
        b
    }

    /// Seconds until one token is there again (at least 1).
    fn wait(&self, tokens: f64) -> u64 {
        if self.rate.per_sec <= 0.0 || self.rate.burst < 1.0 {
            return 3600;
        }
        (((1.0 - tokens) / self.rate.per_sec).ceil() as u64).max(1)
    }

    /// Whether `key` has a token now; `Err(seconds to wait)` when not.
    fn has(&mut self, key: K, now: Instant) -> Result<(), u64> {
        let tokens = self.refilled(key, now).tokens;
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.wait(tokens))
        }
    }

    /// Takes a token of `key`; `Err(seconds to wait)` when there is none.
    fn take(&mut self, key: K, now: Instant) -> Result<(), u64> {
        let b = self.refilled(key, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let tokens = b.tokens;
            Err(self.wait(tokens))
        }
    }

    /// Returns a token taken for something that did not happen.
    fn give_back(&mut self, key: K, now: Instant) {
        let burst = self.rate.burst;
        let b = self.refilled(key, now);
        b.tokens = (b.tokens + 1.0).min(burst);
    }

    /// Makes room: drops the full buckets, then, if that is not enough, the idler half.
    fn evict(&mut self, now: Instant) {
        let rate = self.rate;
        self.map.retain(|_, b| {
            let secs = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens + secs * rate.per_sec < rate.burst
        });
        if self.map.len() >= self.cap {
            let mut ages: Vec<Instant> = self.map.values().map(|b| b.at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.map.retain(|_, b| b.at > cut);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The rate limits of one server process, shared by every worker (`web::Data<Throttle>`).
#[derive(Debug)]
pub(crate) struct Throttle {
    tokens: Mutex<Buckets<[u8; 32]>>,
    addresses: Mutex<Buckets<IpAddr>>,
    logins: Mutex<Buckets<IpAddr>>,
    registrations: Mutex<Buckets<IpAddr>>,
    new_users: Mutex<Buckets<IpAddr>>,
}

impl Throttle {
    pub(crate) fn new(l: &Limits) -> Throttle {
        let cap = MAX_BUCKETS;
        let per_hour = |n: u32| Buckets::new(n, f64::from(n) / 3600.0, cap);
        Throttle {
            tokens: Mutex::new(Buckets::new(
                l.request_burst,
                f64::from(l.requests_per_second),
                cap,
            )),
            addresses: Mutex::new(Buckets::new(
                l.request_burst,
                f64::from(l.requests_per_second),
                cap,
            )),
            logins: Mutex::new(Buckets::new(
                l.login_burst,
                f64::from(l.logins_per_minute) / 60.0,
                cap,
            )),
            registrations: Mutex::new(per_hour(l.registrations_per_hour)),
            new_users: Mutex::new(per_hour(l.new_users_per_hour)),
        }
    }

    /// Counts one request: of the token whose hash is `token`, else of the client address (a
    /// login without a token in the smaller login bucket). `Err(seconds)` when over the rate.
    fn request(&self, token: Option<[u8; 32]>, addr: IpAddr, login: bool) -> Result<(), u64> {
        let now = Instant::now();
        match token {
            Some(hash) => lock(&self.tokens).take(hash, now),
            None if login => lock(&self.logins).take(addr, now),
            None => lock(&self.addresses).take(addr, now),
        }
    }

    /// Reserves a registration (and a new user, which it may turn out to be) for `addr` before a
    /// login without a token: refused while either hourly budget is spent, so that the answer is
    /// the same whether the user exists or not. [`Throttle::settle`] returns what was not used.
    pub(crate) fn reserve_registration(&self, addr: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut regs = lock(&self.registrations);
        let mut users = lock(&self.new_users);
        match (regs.has(addr, now), users.has(addr, now)) {
            (Ok(()), Ok(())) => {}
            (Err(a), Err(b)) => return Err(a.max(b)),
            (Err(a), _) | (_, Err(a)) => return Err(a),
        }
        regs.take(addr, now)?;
        users.take(addr, now)?;
        Ok(())
    }

    /// After the login that [`Throttle::reserve_registration`] reserved for: gives back the
    /// registration when no device was registered, the new user when no user was created.
    pub(crate) fn settle(&self, addr: IpAddr, registered: bool, new_user: bool) {
        let now = Instant::now();
        if !registered {
            lock(&self.registrations).give_back(addr, now);
        }
        if !new_user {
            lock(&self.new_users).give_back(addr, now);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a bucket map leaves it consistent (every update is one assignment).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Middleware: answers 429 with `Retry-After` when the token (or, without one, the client
/// address) is over its rate. Without a [`Throttle`] in the app data nothing is limited.
pub(crate) async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(throttle) = req.app_data::<web::Data<Throttle>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // Any Authorization value counts as a token: a malformed one is limited like a valid one.
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .map(|v| {
            let text = String::from_utf8_lossy(v);
            let t = text
                .strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .map(str::trim)
                .unwrap_or(&text);
            hash_token(t)
        });
    let addr = client_ip(&req);
    let login = req.method() == Method::POST && req.path() == "/api/login";
    match throttle.request(token, addr, login) {
        Ok(()) => Ok(next.call(req).await?.map_into_boxed_body()),
        Err(secs) => Ok(req
            .error_response(ApiError::TooManyRequests(secs))
            .map_into_boxed_body()),
    }
}

/// The client's address (the TCP peer); unspecified when unknown (a test request).
pub(crate) fn client_ip(req: &ServiceRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let mut b: Buckets<u8> = Buckets::new(3, 2.0, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            b.take(1, t0).unwrap();
        }
        assert_eq!(b.take(1, t0), Err(1));
        // Another key has its own bucket.
        b.take(2, t0).unwrap();
        // Two per second: after half a second one more.
        b.take(1, t0 + Duration::from_millis(500)).unwrap();
        assert!(b.take(1, t0 + Duration::from_millis(600)).is_err());
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            b.take(1, later).unwrap();
        }
        assert!(b.take(1, later).is_err());
    }

    #[test]
    fn retry_after_counts_the_seconds_to_the_next_token() {
        let mut b: Buckets<u8> = Buckets::new(1, 1.0 / 60.0, 10);
        let t0 = Instant::now();
        b.take(1, t0).unwrap();
        assert_eq!(b.take(1, t0), Err(60));
        assert_eq!(b.take(1, t0 + Duration::from_secs(30)), Err(30));
        // A budget of 0 never allows anything.
        let mut none: Buckets<u8> = Buckets::new(0, 0.0, 10);
        assert_eq!(none.take(1, t0), Err(3600));
    }

    #[test]
    fn the_map_stays_bounded_and_forgets_full_buckets_first() {
        let mut b: Buckets<u32> = Buckets::new(2, 1.0, 100);
        let t0 = Instant::now();
        // Key 0 is busy (empty bucket), the others were used once and refill within a second.
        b.take(0, t0).unwrap();
        b.take(0, t0).unwrap();
        for k in 1..100 {
            b.take(k, t0).unwrap();
        }
        assert_eq!(b.len(), 100);
        let t1 = t0 + Duration::from_millis(1500);
        b.take(0, t0 + Duration::from_millis(100)).unwrap_err();
        b.take(1000, t1).unwrap();
        // The refilled ones went; the busy key stayed with its state.
        assert!(b.len() <= 3, "{}", b.len());
        assert!(b.map.contains_key(&0));
        // A flood of new keys never grows the map past its cap.
        for k in 2000..12_000 {
            let _ = b.take(k, t1);
            assert!(b.len() <= 100);
        }
    }

    #[test]
    fn a_registration_is_refused_while_either_budget_is_spent_and_unused_ones_come_back() {
        let l = Limits {
            registrations_per_hour: 3,
            new_users_per_hour: 1,
            ..Limits::default()
        };
        let t = Throttle::new(&l);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        t.reserve_registration(a).unwrap();
        t.settle(a, true, true);
        // The new-user budget is spent: no registration at all (not even of a second device).
        assert!(t.reserve_registration(a).unwrap_err() > 1000);
        // Another address has its own budget; unused reservations come back.
        for _ in 0..5 {
            t.reserve_registration(b).unwrap();
            t.settle(b, false, false);
        }
        t.reserve_registration(b).unwrap();
        t.settle(b, true, false);
        t.reserve_registration(b).unwrap();
        t.settle(b, true, false);
        t.reserve_registration(b).unwrap();
        t.settle(b, true, true);
        assert!(t.reserve_registration(b).is_err());
    }

    #[test]
    fn logins_without_a_token_have_their_own_smaller_bucket() {
        let l = Limits {
            login_burst: 2,
            request_burst: 5,
            ..Limits::default()
        };
        let t = Throttle::new(&l);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        t.request(None, a, true).unwrap();
        t.request(None, a, true).unwrap();
        assert!(t.request(None, a, true).is_err());
        // Other requests of the address and a token's requests are counted apart.
        t.request(None, a, false).unwrap();
        for _ in 0..5 {
            t.request(Some([7; 32]), a, true).unwrap();
        }
        assert!(t.request(Some([7; 32]), a, false).is_err());
    }
}
