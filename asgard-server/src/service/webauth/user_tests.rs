//! Tests of the end user's way in (issue 14): one-time links and the web password. Time is
//! passed in, so nothing sleeps.

use std::net::IpAddr;
use std::sync::Arc;

use super::user::{LINK_VALID_US, LinkRefused, create_link};
use super::*;
use crate::config::Registration;
use crate::db::{AuditAction, Db, LinkCreator};
use crate::db::{LoginPolicy, hash_token};
use asgard_core::protocol::LoginRequest;

/// Registers a first device of a new user (open registration); its user id. (Not
/// `crate::testutil`: the service layer must not import it, see `tests/architecture.rs`.)
fn register(db: &Db, user: &str, device: &str) -> u64 {
    let req = LoginRequest {
        protocol_version: 1,
        user: user.into(),
        device: device.into(),
        os: "linux".into(),
        os_version: "6".into(),
        agent_version: "0.1".into(),
        enrollment_key: None,
        code: None,
    };
    let policy = LoginPolicy {
        registration: Registration::Open,
        enrollment_key: None,
    };
    let token = db.login(&req, None, policy, T0).unwrap().token.unwrap();
    db.authenticate(&hash_token(&token)).unwrap().user_id
}

const T0: i64 = 1_700_000_000_000_000;
const SEC: i64 = 1_000_000;

fn ip() -> IpAddr {
    "198.51.100.7".parse().unwrap()
}

fn setup() -> (tempfile::TempDir, Arc<Db>, WebAuth, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("asgard.redb")).unwrap());
    let anna = register(&db, "anna", "laptop");
    let bert = register(&db, "bert", "pc");
    let auth = WebAuth::new(db.clone(), SessionPolicy::default());
    (dir, db, auth, anna, bert)
}

fn secret(path: &str) -> &str {
    path.strip_prefix("/link/").unwrap()
}

#[test]
fn a_link_opens_one_user_session_once_and_never_an_admin_one() {
    let (_d, db, auth, anna, _) = setup();
    let link = create_link(&db, anna, LinkCreator::Device(1), T0).unwrap();
    assert_eq!(link.expires_us, T0 + LINK_VALID_US);
    assert_eq!(secret(&link.path).len(), 64);
    let session = auth.link_login(secret(&link.path), ip(), T0 + SEC).unwrap();
    let info = auth.session(&session, T0 + 2 * SEC).unwrap();
    let user = info.user().unwrap();
    assert_eq!((user.id, user.name.as_str()), (anna, "anna"));
    assert_eq!(info.admin(), None, "a user session is no admin session");
    assert_eq!(info.origin, None);
    // The second use is refused, and gives no session.
    assert_eq!(
        auth.link_login(secret(&link.path), ip(), T0 + 2 * SEC),
        Err(LinkRefused::Gone)
    );
    let actions: Vec<_> = db
        .audit_page(None, 100)
        .unwrap()
        .into_iter()
        .map(|(_, r)| r.action)
        .collect();
    assert!(actions.contains(&AuditAction::LinkUsed));
    assert!(actions.contains(&AuditAction::LinkRefused));
}

#[test]
fn expired_unknown_and_malformed_links_are_refused() {
    let (_d, db, auth, anna, _) = setup();
    let link = create_link(&db, anna, LinkCreator::Device(1), T0).unwrap();
    assert_eq!(
        auth.link_login(secret(&link.path), ip(), T0 + LINK_VALID_US),
        Err(LinkRefused::Gone)
    );
    let fresh = create_link(&db, anna, LinkCreator::Device(1), T0).unwrap();
    let mut forged = secret(&fresh.path).to_owned();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(63.., last);
    assert_eq!(
        auth.link_login(&forged, ip(), T0 + SEC),
        Err(LinkRefused::Unknown)
    );
    for junk in [
        "",
        "abc",
        &"g".repeat(64),
        &secret(&fresh.path).to_uppercase(),
    ] {
        assert_eq!(
            auth.link_login(junk, ip(), T0 + SEC),
            Err(LinkRefused::Unknown),
            "{junk}"
        );
    }
    // The real one still works after all that.
    assert!(auth.link_login(secret(&fresh.path), ip(), T0 + SEC).is_ok());
}

#[test]
fn a_disabled_user_gets_no_session_from_a_link_and_loses_the_ones_it_had() {
    let (_d, db, auth, anna, _) = setup();
    let a = create_link(&db, anna, LinkCreator::Device(1), T0).unwrap();
    let b = create_link(&db, anna, LinkCreator::Device(1), T0).unwrap();
    let session = auth.link_login(secret(&a.path), ip(), T0 + SEC).unwrap();
    db.set_user_disabled("anna", true, T0 + SEC).unwrap();
    assert_eq!(auth.session(&session, T0 + 2 * SEC), None);
    assert_eq!(
        auth.link_login(secret(&b.path), ip(), T0 + 2 * SEC),
        Err(LinkRefused::Gone)
    );
}

#[test]
fn an_admin_link_says_who_made_it() {
    let (_d, db, auth, anna, _) = setup();
    let link = create_link(&db, anna, LinkCreator::Admin("root".into()), T0).unwrap();
    let session = auth.link_login(secret(&link.path), ip(), T0 + SEC).unwrap();
    let origin = auth.session(&session, T0 + SEC).unwrap().origin.unwrap();
    assert_eq!((origin.admin.as_str(), origin.created_us), ("root", T0));
}

#[test]
fn the_web_password_logs_in_only_its_user_and_refuses_alike() {
    let (_d, db, auth, anna, bert) = setup();
    // Nobody has a web password yet: refused like a wrong one.
    assert_eq!(
        auth.user_login("anna", "Donnerkeil-2024!", ip(), T0),
        Err(Refused::Invalid)
    );
    db.set_web_password(anna, &password::hash("Donnerkeil-2024!"))
        .unwrap();
    let s = auth
        .user_login("Anna", "Donnerkeil-2024!", ip(), T0 + SEC)
        .unwrap();
    assert_eq!(auth.session(&s, T0 + SEC).unwrap().user().unwrap().id, anna);
    // Bert has no password; Anna's does not open Bert; an unknown name answers the same.
    for (name, pw) in [
        ("bert", "Donnerkeil-2024!"),
        ("anna", "wrong-password-1"),
        ("nobody", "Donnerkeil-2024!"),
    ] {
        assert_eq!(
            auth.user_login(name, pw, "203.0.113.9".parse().unwrap(), T0 + 100 * SEC),
            Err(Refused::Invalid),
            "{name}"
        );
    }
    let _ = bert;
    // An admin's name and password open no user session, and the reverse.
    db.admin_create("anna", &password::hash("Admin-Passwort-1"), T0)
        .unwrap();
    assert_eq!(
        auth.user_login("anna", "Admin-Passwort-1", ip(), T0 + 200 * SEC),
        Err(Refused::Invalid)
    );
    assert_eq!(
        auth.login("anna", "Donnerkeil-2024!", ip(), T0 + 300 * SEC),
        Err(Refused::Invalid)
    );
}

#[test]
fn failed_web_logins_are_throttled_like_the_admins() {
    let (_d, db, auth, anna, _) = setup();
    db.set_web_password(anna, &password::hash("Donnerkeil-2024!"))
        .unwrap();
    let mut throttled = false;
    for i in 0..10 {
        if let Err(Refused::Throttled { .. }) =
            auth.user_login("anna", "falsch-falsch", ip(), T0 + i)
        {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "repeated failures must be throttled");
    // Even the right password waits now.
    assert!(matches!(
        auth.user_login("anna", "Donnerkeil-2024!", ip(), T0 + 20),
        Err(Refused::Throttled { .. })
    ));
}

#[test]
fn setting_the_web_password_ends_the_users_sessions() {
    let (_d, db, auth, anna, _) = setup();
    let link = create_link(&db, anna, LinkCreator::Device(1), T0).unwrap();
    let s = auth.link_login(secret(&link.path), ip(), T0 + SEC).unwrap();
    db.set_web_password(anna, &password::hash("Donnerkeil-2024!"))
        .unwrap();
    assert_eq!(auth.session(&s, T0 + 2 * SEC), None);
}
