//! Tests of the admin console's authentication: logins, the throttle, the second factor,
//! sessions and their expiry, API tokens and the audit trail they leave. Time is passed in, so
//! nothing sleeps.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::throttle::{FORGET_US, MAX_KEYS};
use super::*;
use crate::db::{AuditAction, Db};

const PW: &str = "Donnerkeil-2024!";
const T0: i64 = 1_700_000_000_000_000;
const SEC: i64 = 1_000_000;
const MIN: i64 = 60 * SEC;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn setup() -> (tempfile::TempDir, Arc<Db>, WebAuth) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("asgard.redb")).unwrap());
    db.admin_create("root", &password::hash(PW), T0).unwrap();
    let auth = WebAuth::new(db.clone(), SessionPolicy::default());
    (dir, db, auth)
}

fn actions(db: &Db) -> Vec<AuditAction> {
    db.audit_page(None, 1000)
        .unwrap()
        .into_iter()
        .rev()
        .map(|(_, r)| r.action)
        .collect()
}

/// Turns TOTP on for root; returns the secret record (to compute codes) and the recovery codes.
fn with_totp(db: &Db) -> (crate::db::TotpRec, Vec<String>) {
    let s = totp::setup("root");
    db.admin_set_totp("root", Some(s.rec.clone())).unwrap();
    (s.rec, s.recovery_codes)
}

#[test]
fn a_login_without_second_factor_gives_a_full_session_with_its_own_csrf_token() {
    let (_d, db, auth) = setup();
    let login = auth.login("Root", PW, ip("192.0.2.1"), T0).unwrap();
    assert!(!login.needs_totp);
    assert_eq!(login.session.len(), 64);
    let info = auth.session(&login.session, T0 + SEC).unwrap();
    assert_eq!(info.stage, Stage::Full);
    assert_eq!(info.name, "root");
    assert_eq!(info.admin().unwrap().name, "root");
    assert!(info.csrf_matches(&info.csrf));
    assert!(!info.csrf_matches(""));
    assert!(!info.csrf_matches(&info.csrf[..63]));
    assert!(!info.csrf_matches(&"0".repeat(64)));
    // A second login is a second session, with another id and another CSRF token.
    let other = auth.login("root", PW, ip("192.0.2.1"), T0).unwrap();
    assert_ne!(other.session, login.session);
    assert_ne!(auth.session(&other.session, T0).unwrap().csrf, info.csrf);
    // Only the hash is stored: the cookie value itself is nowhere in the database file.
    drop(auth);
    let file = std::fs::read(_d.path().join("asgard.redb")).unwrap();
    let needle = login.session.as_bytes();
    assert!(!file.windows(needle.len()).any(|w| w == needle));
    assert_eq!(actions(&db), vec![AuditAction::Login, AuditAction::Login]);
}

#[test]
fn unknown_name_and_wrong_password_are_refused_alike_and_audited() {
    let (_d, db, auth) = setup();
    let a = ip("192.0.2.7");
    assert_eq!(
        auth.login("root", "falsch-falsch-1", a, T0),
        Err(Refused::Invalid)
    );
    assert_eq!(auth.login("niemand", PW, a, T0), Err(Refused::Invalid));
    assert_eq!(auth.login("", "", a, T0), Err(Refused::Invalid));
    assert_eq!(auth.login("bad name:x", PW, a, T0), Err(Refused::Invalid));
    let log = db.audit_page(None, 10).unwrap();
    assert_eq!(log.len(), 4);
    for (_, rec) in &log {
        assert_eq!(rec.action, AuditAction::LoginFailed);
        assert_eq!(rec.client.as_deref(), Some("192.0.2.7"));
        assert!(!rec.detail.contains(PW) && !rec.object.contains("falsch"));
    }
    assert_eq!(log[3].1.object, "root");
    assert_eq!(log[2].1.object, "niemand");
}

/// The unknown name is checked against the dummy hash: it costs about what a wrong password
/// costs (without the dummy it would cost nothing, and the time would tell which names exist).
#[test]
fn an_unknown_name_costs_the_time_of_a_password_check() {
    let (_d, _db, auth) = setup();
    let time = |name: &str, n: i64| {
        let start = Instant::now();
        for i in 0..3 {
            // A fresh address each time: the throttle must not cut a path short.
            let _ = auth.login(
                name,
                "falsch-falsch-1",
                ip(&format!("198.51.100.{}", n + i)),
                T0,
            );
        }
        start.elapsed()
    };
    let _ = time("root", 1); // warm-up (the dummy hash is made on first use)
    let known = time("root", 10);
    let unknown = time("niemand", 20);
    assert!(
        unknown * 3 >= known && known * 3 >= unknown,
        "known {known:?}, unknown {unknown:?}"
    );
}

#[test]
fn repeated_failures_lock_name_and_address_and_the_lock_lifts_by_itself() {
    let (_d, db, auth) = setup();
    let a = ip("192.0.2.1");
    for i in 0..5 {
        assert_eq!(
            auth.login("root", "falsch-falsch-1", a, T0 + i),
            Err(Refused::Invalid)
        );
    }
    // Locked for the base time (1 s): even the right password is refused, before it is checked.
    let r = auth.login("root", PW, a, T0 + 10);
    assert!(
        matches!(r, Err(Refused::Throttled { retry_after }) if retry_after <= Duration::from_secs(1) && retry_after > Duration::from_millis(900)),
        "{r:?}"
    );
    // The account is locked from another address too, and the address for another name.
    assert!(matches!(
        auth.login("root", PW, ip("203.0.113.9"), T0 + 10),
        Err(Refused::Throttled { .. })
    ));
    assert!(matches!(
        auth.login("other", PW, a, T0 + 10),
        Err(Refused::Throttled { .. })
    ));
    // The lock ends by itself.
    let later = T0 + 5 + SEC + 1;
    auth.login("root", PW, a, later).unwrap();
    let log = actions(&db);
    assert_eq!(
        log.iter()
            .filter(|a| **a == AuditAction::LoginFailed)
            .count(),
        8
    );
    assert_eq!(log.last(), Some(&AuditAction::Login));
}

#[test]
fn the_lockout_doubles_with_each_further_failure_up_to_its_maximum() {
    let backoff = Backoff {
        base_us: SEC,
        max_us: 4 * SEC,
    };
    let t = LoginThrottle::new(backoff);
    let a = ip("2001:db8::1");
    let mut now = T0;
    for _ in 0..5 {
        t.failure("x", a, now);
    }
    let mut waits = vec![];
    for _ in 0..4 {
        let wait = t.check("x", a, now).unwrap_err();
        waits.push(wait.as_secs());
        now += i64::try_from(wait.as_micros()).unwrap();
        assert!(t.check("x", a, now).is_ok(), "the lock ended");
        t.failure("x", a, now);
    }
    assert_eq!(waits, vec![1, 2, 4, 4]);
    // Another machine of the same /64 is the same key; another /64 is not.
    assert!(t.check("y", ip("2001:db8::abcd"), now).is_err());
    assert!(t.check("y", ip("2001:db8:0:1::1"), now).is_ok());
    // Forgotten a while after the last lock ended: a new failure is the first again.
    let (names, addrs) = t.len();
    assert_eq!((names, addrs), (1, 1));
    now += 4 * SEC + FORGET_US + 1;
    assert!(t.check("x", a, now).is_ok());
    assert_eq!(t.len(), (0, 0));
    t.failure("x", a, now);
    assert!(t.check("x", a, now).is_ok(), "one failure is free again");
}

#[test]
fn the_throttle_keeps_a_bounded_number_of_keys() {
    let t = LoginThrottle::new(SessionPolicy::default().backoff);
    for i in 0..(MAX_KEYS as u32 + 50) {
        let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        t.failure(&format!("n{i}"), a, T0 + i64::from(i));
    }
    let (names, addrs) = t.len();
    assert!(names <= MAX_KEYS && addrs <= MAX_KEYS, "{names} {addrs}");
    // The newest keys stay (an attack in progress keeps its own keys).
    for _ in 0..5 {
        t.failure("newest", ip("192.0.2.200"), T0 + 20_000);
    }
    assert!(t.check("newest", ip("192.0.2.1"), T0 + 20_000).is_err());
}

#[test]
fn the_second_factor_renews_the_session_and_refuses_a_replayed_code() {
    let (_d, db, auth) = setup();
    let (rec, _) = with_totp(&db);
    let a = ip("192.0.2.1");
    let login = auth.login("root", PW, a, T0).unwrap();
    assert!(login.needs_totp);
    let pending = auth.session(&login.session, T0).unwrap();
    assert_eq!(pending.stage, Stage::NeedTotp);
    assert_eq!(pending.admin(), None, "a pending session opens nothing");
    assert!(actions(&db).is_empty(), "no login before the second factor");

    let code = totp::code_at(&rec, T0);
    let wrong = if code == "123456" { "654321" } else { "123456" };
    assert_eq!(
        auth.second_factor(&login.session, wrong, a, T0),
        Err(Refused::Invalid)
    );
    assert!(
        auth.session(&login.session, T0).is_some(),
        "a wrong code may be retried"
    );
    let full = auth
        .second_factor(&login.session, &code, a, T0 + SEC)
        .unwrap();
    assert_ne!(full, login.session);
    assert!(
        auth.session(&login.session, T0 + SEC).is_none(),
        "the old id is dead"
    );
    let info = auth.session(&full, T0 + SEC).unwrap();
    assert_eq!(info.stage, Stage::Full);
    assert_eq!(info.admin().unwrap().name, "root");
    // A full session is no way to the second factor again.
    assert_eq!(
        auth.second_factor(&full, &code, a, T0),
        Err(Refused::Invalid)
    );

    // The same code (same 30 s step) in a new login is refused: one use per step.
    let again = auth.login("root", PW, a, T0 + 2 * SEC).unwrap();
    assert_eq!(
        auth.second_factor(&again.session, &code, a, T0 + 2 * SEC),
        Err(Refused::Invalid)
    );
    // The next step's code works.
    let next = totp::code_at(&rec, T0 + 30 * SEC);
    auth.second_factor(&again.session, &next, a, T0 + 30 * SEC)
        .unwrap();
    let log = actions(&db);
    assert!(log.contains(&AuditAction::TotpFailed));
    assert_eq!(log.iter().filter(|a| **a == AuditAction::Login).count(), 2);
}

#[test]
fn five_wrong_codes_lock_the_second_factor_for_fifteen_minutes() {
    let (_d, db, auth) = setup();
    let (rec, recovery) = with_totp(&db);
    let a = ip("192.0.2.1");
    let login = auth.login("root", PW, a, T0).unwrap();
    let right = totp::code_at(&rec, T0);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..4 {
        assert_eq!(
            auth.second_factor(&login.session, wrong, a, T0),
            Err(Refused::Invalid)
        );
    }
    let locked = auth.second_factor(&login.session, wrong, a, T0);
    let until = T0 + totp::LOCK_US;
    assert_eq!(locked, Err(Refused::SecondFactorLocked { until_us: until }));
    // While locked neither the right code nor a recovery code gets in, in any session.
    assert_eq!(
        auth.second_factor(&login.session, &right, a, T0 + SEC),
        Err(Refused::SecondFactorLocked { until_us: until })
    );
    let fresh = auth.login("root", PW, a, T0 + 2 * SEC).unwrap();
    assert_eq!(
        auth.second_factor(&fresh.session, &recovery[0], a, T0 + 2 * SEC),
        Err(Refused::SecondFactorLocked { until_us: until })
    );
    // The lock is in the record: a new WebAuth (a restart) keeps it.
    let restarted = WebAuth::new(db.clone(), SessionPolicy::default());
    assert!(matches!(
        restarted.second_factor(&fresh.session, &right, a, T0 + 3 * SEC),
        Err(Refused::SecondFactorLocked { .. })
    ));
    assert!(actions(&db).contains(&AuditAction::TotpLocked));
    // After 15 minutes it lifts (a new login: the pending session has expired meanwhile).
    let after = until + SEC;
    let login = restarted.login("root", PW, a, after).unwrap();
    let code = totp::code_at(&rec, after);
    restarted
        .second_factor(&login.session, &code, a, after)
        .unwrap();
}

#[test]
fn a_recovery_code_works_once() {
    let (_d, db, auth) = setup();
    let (_, recovery) = with_totp(&db);
    assert_eq!(recovery.len(), totp::RECOVERY_CODES);
    let a = ip("192.0.2.1");
    let login = auth.login("root", PW, a, T0).unwrap();
    // Upper case and without dashes is the same code.
    let typed = recovery[3].replace('-', "").to_uppercase();
    auth.second_factor(&login.session, &typed, a, T0).unwrap();
    let again = auth.login("root", PW, a, T0 + SEC).unwrap();
    assert_eq!(
        auth.second_factor(&again.session, &recovery[3], a, T0 + SEC),
        Err(Refused::Invalid)
    );
    auth.second_factor(&again.session, &recovery[4], a, T0 + SEC)
        .unwrap();
    let left = db.admin_get("root").unwrap().unwrap().1.totp.unwrap();
    assert_eq!(left.recovery.len(), totp::RECOVERY_CODES - 2);
    assert!(actions(&db).contains(&AuditAction::RecoveryUsed));
}

#[test]
fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    let (_d, db, auth) = setup();
    let a = ip("192.0.2.1");
    // Idle: 30 minutes without a request.
    let s = auth.login("root", PW, a, T0).unwrap().session;
    assert!(auth.session(&s, T0 + 29 * MIN).is_some());
    assert!(
        auth.session(&s, T0 + 58 * MIN).is_some(),
        "the request before touched it"
    );
    assert!(auth.session(&s, T0 + 89 * MIN).is_none());
    assert!(
        auth.session(&s, T0 + 90 * MIN).is_none(),
        "and it stays dead"
    );
    // Absolute: 12 hours, however busy.
    let s = auth.login("root", PW, a, T0).unwrap().session;
    let mut now = T0;
    while now < T0 + 12 * 60 * MIN - 10 * MIN {
        now += 10 * MIN;
        assert!(
            auth.session(&s, now).is_some(),
            "alive at {}",
            (now - T0) / MIN
        );
    }
    assert!(auth.session(&s, T0 + 12 * 60 * MIN + 1).is_none());
    // The pending step of a login with TOTP: 5 minutes.
    with_totp(&db);
    let p = auth.login("root", PW, a, T0).unwrap().session;
    assert!(auth.session(&p, T0 + 4 * MIN).is_some());
    assert!(auth.session(&p, T0 + 6 * MIN).is_none());
    // Configured limits apply.
    let web = crate::config::WebConfig {
        session_idle: crate::config::HumanDuration::secs(60),
        ..Default::default()
    };
    let short = WebAuth::new(db.clone(), SessionPolicy::from_config(&web));
    db.admin_set_totp("root", None).unwrap();
    let s = short.login("root", PW, a, T0).unwrap().session;
    assert!(short.session(&s, T0 + 61 * SEC).is_none());
}

#[test]
fn expired_sessions_are_swept() {
    let (_d, db, auth) = setup();
    let a = ip("192.0.2.1");
    for _ in 0..5 {
        auth.login("root", PW, a, T0).unwrap();
    }
    let live = auth.login("root", PW, a, T0 + 60 * MIN).unwrap().session;
    // That login swept the five idle ones.
    assert_eq!(db.sessions_count().unwrap(), 1);
    assert!(auth.session(&live, T0 + 60 * MIN).is_some());
    assert_eq!(auth.sweep(T0 + 200 * MIN, 100), 1);
    assert_eq!(db.sessions_count().unwrap(), 0);
}

#[test]
fn logout_ends_the_session_and_is_audited() {
    let (_d, db, auth) = setup();
    let now = crate::db::now_us();
    let s = auth
        .login("root", PW, ip("192.0.2.1"), now)
        .unwrap()
        .session;
    assert!(auth.session(&s, now).is_some());
    auth.logout(&s);
    assert!(auth.session(&s, now).is_none());
    auth.logout(&s); // twice is harmless
    auth.logout("kein-cookie");
    assert_eq!(actions(&db), vec![AuditAction::Login, AuditAction::Logout]);
}

#[test]
fn junk_cookies_and_tokens_open_nothing() {
    let (_d, db, auth) = setup();
    let s = auth.login("root", PW, ip("192.0.2.1"), T0).unwrap().session;
    for junk in [
        "",
        "x",
        &s.to_uppercase(),
        &format!("{s}0"),
        &s[1..],
        &"g".repeat(64),
    ] {
        assert!(auth.session(junk, T0).is_none(), "{junk}");
        assert!(auth.api_token(junk).is_none(), "{junk}");
    }
    // A session id is no API token, and a device token is none either.
    assert!(auth.api_token(&s).is_none());
    assert!(auth.api_token(&crate::db::new_token()).is_none());
    let token = new_admin_token();
    assert!(auth.api_token(&token).is_none(), "not stored yet");
    db.admin_token_add("root", &admin_token_hash(&token), T0)
        .unwrap();
    assert_eq!(auth.api_token(&token).unwrap().name, "root");
    assert!(auth.api_token(&token.replace("asgadm_", "asg_")).is_none());
}

#[test]
fn deleting_an_admin_ends_its_sessions_and_tokens_and_a_new_password_its_sessions() {
    let (_d, db, auth) = setup();
    let a = ip("192.0.2.1");
    let s = auth.login("root", PW, a, T0).unwrap().session;
    let token = new_admin_token();
    db.admin_token_add("root", &admin_token_hash(&token), T0)
        .unwrap();
    db.admin_create("zweite", &password::hash(PW), T0).unwrap();
    let other = auth.login("zweite", PW, a, T0).unwrap().session;

    db.admin_set_password("root", &password::hash("Neues-Passwort-1"))
        .unwrap();
    assert!(
        auth.session(&s, T0).is_none(),
        "a new password ends the sessions"
    );
    assert!(auth.api_token(&token).is_some(), "tokens stay");
    assert_eq!(auth.login("root", PW, a, T0), Err(Refused::Invalid));
    let s = auth
        .login("root", "Neues-Passwort-1", a, T0)
        .unwrap()
        .session;

    db.admin_delete("root").unwrap();
    assert!(auth.session(&s, T0).is_none());
    assert!(auth.api_token(&token).is_none());
    assert_eq!(
        auth.login("root", "Neues-Passwort-1", a, T0),
        Err(Refused::Invalid)
    );
    assert!(
        auth.session(&other, T0).is_some(),
        "another admin's session stays"
    );
    // A new admin of the same name is a new account: the old token stays dead.
    db.admin_create("root", &password::hash(PW), T0).unwrap();
    assert!(auth.api_token(&token).is_none());
}

#[test]
fn an_ipv4_address_mapped_into_ipv6_is_the_same_throttle_key() {
    use super::throttle::address_key;
    assert_eq!(address_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    assert_eq!(
        address_key(ip("2001:db8:1:2:3:4:5:6")),
        ip("2001:db8:1:2::")
    );
    assert_eq!(address_key(ip("192.0.2.1")), ip("192.0.2.1"));
}
