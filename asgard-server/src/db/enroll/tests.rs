//! Every login case beyond a user's first device, as an attacker tries them: a stranger's
//! registration as an existing user, the codes (approval and re-enrollment: wrong, used, expired,
//! another user's), the bounds, names that look alike and the migration of old names.

use asgard_core::protocol::DeviceStatus;

use super::*;
use crate::db::{LoginOutcome, LoginPolicy, hash_token};
use crate::testutil::{OPEN, login_request as req, open_db as open, register};

const NOW: i64 = 1_000_000_000_000_000;
const WEEK_US: i64 = 7 * 86_400 * 1_000_000;

fn login(db: &Db, user: &str, device: &str, token: Option<&str>) -> Result<LoginOutcome> {
    db.login(&req(user, device), token.map(hash_token), OPEN, NOW)
}

fn with_code(db: &Db, user: &str, device: &str, code: &str, now: i64) -> Result<LoginOutcome> {
    let mut r = req(user, device);
    r.code = Some(code.to_owned());
    db.login(&r, None, OPEN, now)
}

fn pending_count(db: &Db) -> usize {
    db.list_pending().unwrap().len()
}

/// Regression for finding 1: a token-less login as an existing user with a new device name got
/// an active token for that user's files.
#[test]
fn stranger_as_existing_user_gets_a_pending_registration_that_authenticates_nowhere() {
    let (_d, db) = open();
    let (alice, auth) = register(&db, "alice", "pc");
    let out = login(&db, "alice", "evil", None).unwrap();
    assert_eq!(out.status, DeviceStatus::Pending);
    let (code, expires) = out.approval.clone().unwrap();
    assert_eq!(expires, NOW + APPROVAL_CODE_VALID_US);
    assert_eq!(
        asgard_core::names::normalize_code(&code),
        Some(code.clone())
    );
    let token = out.token.unwrap();
    // The pending token opens no endpoint: the extractor's `authenticate` refuses it.
    assert!(matches!(
        db.authenticate(&hash_token(&token)),
        Err(DbError::Pending)
    ));
    // Logging in with it again still says pending and shows no new code while the old is valid.
    let again = login(&db, "alice", "evil", Some(&token)).unwrap();
    assert_eq!(
        (again.status, again.token, again.approval),
        (DeviceStatus::Pending, None, None)
    );
    // ... and only for that user and device name.
    assert!(matches!(
        login(&db, "alice", "pc", Some(&token)),
        Err(DbError::Unauthorized)
    ));
    assert!(matches!(
        login(&db, "bob", "evil", Some(&token)),
        Err(DbError::Unauthorized)
    ));
    // After the code expired the next login gets a new one.
    let later = db
        .login(
            &req("alice", "evil"),
            Some(hash_token(&token)),
            OPEN,
            expires,
        )
        .unwrap();
    let (new_code, _) = later.approval.unwrap();
    assert_ne!(new_code, code);
    assert!(matches!(
        db.approve_by_code(auth.user_id, &code, 32, expires),
        Err(DbError::NotFound)
    ));
    // Alice's own device is untouched.
    assert_eq!(db.authenticate(&hash_token(&alice)).unwrap(), auth);
    assert_eq!(db.list_devices().unwrap().len(), 1);
}

/// A registration under the name of an existing device neither replaces nor disturbs its token
/// until it is approved; then it takes the device over (same id, so the same files).
#[test]
fn registration_for_an_existing_device_name_waits_and_then_takes_it_over() {
    let (_d, db) = open();
    let (old, auth) = register(&db, "alice", "pc");
    let (_, laptop) = register(&db, "alice", "laptop");
    let out = login(&db, "alice", "pc", None).unwrap();
    assert_eq!(out.status, DeviceStatus::Pending);
    assert_eq!(db.authenticate(&hash_token(&old)).unwrap(), auth);
    let ok = login(&db, "alice", "pc", Some(&old)).unwrap();
    assert_eq!((ok.status, ok.token), (DeviceStatus::Active, None));

    let (code, _) = out.approval.unwrap();
    // A wrong code and bob's device approve nothing.
    let (_, bob) = register(&db, "bob", "pc");
    assert!(matches!(
        db.approve_by_code(bob.user_id, &code, 32, NOW),
        Err(DbError::NotFound)
    ));
    assert!(matches!(
        db.approve_by_code(auth.user_id, "AAAA-AAAA", 32, NOW),
        Err(DbError::NotFound)
    ));
    assert!(matches!(
        db.approve_by_code(auth.user_id, "kaputt", 32, NOW),
        Err(DbError::NotFound)
    ));
    // Alice's laptop approves it with the code (typed in lower case without the dash).
    let typed = code.replace('-', "").to_lowercase();
    assert_eq!(
        db.approve_by_code(laptop.user_id, &typed, 32, NOW).unwrap(),
        "pc"
    );
    let new = db.authenticate(&hash_token(&out.token.unwrap())).unwrap();
    assert_eq!(
        (new.device_id, new.status),
        (auth.device_id, DeviceStatus::Active)
    );
    assert!(matches!(
        db.authenticate(&hash_token(&old)),
        Err(DbError::Unauthorized)
    ));
    // A used code is gone.
    assert!(matches!(
        db.approve_by_code(auth.user_id, &code, 32, NOW),
        Err(DbError::NotFound)
    ));
    assert_eq!(pending_count(&db), 0);
}

/// A stranger flooding alice with registrations keeps at most `PENDING_PER_USER` of them, and
/// alice's own newest registration can still be approved.
#[test]
fn pending_registrations_are_bounded_and_the_newest_survives_a_flood() {
    let (_d, db) = open();
    let (_, auth) = register(&db, "alice", "pc");
    for i in 0..20 {
        login(&db, "alice", &format!("flood{i}"), None).unwrap();
    }
    let mine = login(&db, "alice", "laptop", None).unwrap();
    assert_eq!(pending_count(&db), PENDING_PER_USER);
    let (code, _) = mine.approval.unwrap();
    assert_eq!(
        db.approve_by_code(auth.user_id, &code, 32, NOW).unwrap(),
        "laptop"
    );
    let first = db.list_pending().unwrap();
    assert!(
        first.iter().all(|p| p.device.starts_with("flood1")),
        "{first:?}"
    );
}

#[test]
fn devices_per_user_bounds_approvals() {
    let (_d, db) = open();
    let (_, auth) = register(&db, "alice", "pc");
    let out = login(&db, "alice", "laptop", None).unwrap();
    let (code, _) = out.approval.unwrap();
    assert!(matches!(
        db.approve_by_code(auth.user_id, &code, 1, NOW),
        Err(DbError::TooManyDevices { limit: 1 })
    ));
    // Refused approvals change nothing: the registration and its code stay.
    assert_eq!(
        db.approve_by_code(auth.user_id, &code, 2, NOW).unwrap(),
        "laptop"
    );
}

/// Regression for finding 4: after `device reset` the next token-less login for that device got
/// the device and its files.
#[test]
fn reset_gives_a_one_time_code_and_no_first_come_slot() {
    let (_d, db) = open();
    let (old, auth) = register(&db, "alice", "pc");
    let reset = db.reset_device("Alice", "PC", WEEK_US, NOW).unwrap();
    assert!(matches!(
        db.authenticate(&hash_token(&old)),
        Err(DbError::Unauthorized)
    ));
    assert!(matches!(
        login(&db, "alice", "pc", Some(&old)),
        Err(DbError::Unauthorized)
    ));

    // Without the code: a pending registration, nothing of the device.
    let stranger = login(&db, "alice", "pc", None).unwrap();
    assert_eq!(stranger.status, DeviceStatus::Pending);
    let st = hash_token(&stranger.token.unwrap());
    assert!(matches!(db.authenticate(&st), Err(DbError::Pending)));
    // A wrong code, the code for another device or user, or a code after its time: refused alike.
    let (_, _) = register(&db, "alice", "laptop");
    for (user, device, code, now) in [
        ("alice", "pc", "AAAA-AAAA", NOW),
        ("alice", "laptop", reset.code.as_str(), NOW),
        ("bob", "pc", reset.code.as_str(), NOW),
        ("alice", "pc", reset.code.as_str(), NOW + WEEK_US),
        ("alice", "pc", "not a code", NOW),
    ] {
        assert!(
            matches!(
                with_code(&db, user, device, code, now),
                Err(DbError::Unauthorized)
            ),
            "{user} {device} {code} {now}"
        );
    }
    // The right code: the same device (its files), active, with a new token; once only.
    let back = with_code(&db, "alice", "pc", &reset.code.to_lowercase(), NOW).unwrap();
    let token = back.token.unwrap();
    let a = db.authenticate(&hash_token(&token)).unwrap();
    assert_eq!(
        (a.device_id, a.status),
        (auth.device_id, DeviceStatus::Active)
    );
    assert!(matches!(
        with_code(&db, "alice", "pc", &reset.code, NOW),
        Err(DbError::Unauthorized)
    ));
    // Even a code used on a device that has a token again is refused.
    assert_eq!(db.authenticate(&hash_token(&token)).unwrap(), a);
}

#[test]
fn admin_approves_the_newest_registration_of_a_name() {
    let (_d, db) = open();
    let (old, auth) = register(&db, "alice", "pc");
    let first = login(&db, "alice", "pc", None).unwrap();
    let second = login(&db, "alice", "pc", None).unwrap();
    db.approve_device(" ALICE", "Pc").unwrap();
    let a = db
        .authenticate(&hash_token(&second.token.unwrap()))
        .unwrap();
    assert_eq!(a.device_id, auth.device_id);
    assert!(matches!(
        db.authenticate(&hash_token(&old)),
        Err(DbError::Unauthorized)
    ));
    // The older registration of that name stays pending (it opens nothing).
    assert!(matches!(
        db.authenticate(&hash_token(&first.token.unwrap())),
        Err(DbError::Pending)
    ));
    assert!(matches!(
        db.approve_device("alice", "toaster"),
        Err(DbError::NotFound)
    ));
}

/// Closed registration and an enrollment key refuse a stranger before anything tells whether
/// the user exists: the same answer for an existing and an unknown user.
#[test]
fn key_and_closed_mode_answer_alike_for_existing_and_unknown_users() {
    let (_d, db) = open();
    register(&db, "alice", "pc");
    let key = hash_token("geheim");
    let keyed = LoginPolicy {
        registration: crate::config::Registration::Open,
        enrollment_key: Some(&key),
    };
    let closed = LoginPolicy {
        registration: crate::config::Registration::Closed,
        enrollment_key: None,
    };
    for user in ["alice", "nobody"] {
        assert!(matches!(
            db.login(&req(user, "new"), None, keyed, NOW),
            Err(DbError::EnrollmentKey)
        ));
        assert!(matches!(
            db.login(&req(user, "new"), None, closed, NOW),
            Err(DbError::RegistrationClosed)
        ));
    }
    assert_eq!(pending_count(&db), 0);
}

#[test]
fn names_are_normalised_and_confusable_users_refused() {
    let (_d, db) = open();
    let (token, auth) = register(&db, "alice", "pc");
    // Case and space variants are the same user and device.
    let ok = login(&db, " ALICE ", "PC", Some(&token)).unwrap();
    assert_eq!((ok.user.as_str(), ok.device.as_str()), ("alice", "pc"));
    let out = login(&db, "Alice", "Laptop", None).unwrap();
    assert_eq!(
        (out.status, out.device.as_str()),
        (DeviceStatus::Pending, "laptop")
    );
    // A look-alike with a Cyrillic а is refused, as are invisible characters.
    assert!(matches!(
        login(&db, "\u{430}lice", "pc", None),
        Err(DbError::ConfusableName { .. })
    ));
    assert!(matches!(
        login(&db, "al\u{200B}ice", "pc", None),
        Err(DbError::BadName(_))
    ));
    assert!(matches!(
        login(&db, "alice\u{202E}", "pc", None),
        Err(DbError::BadName(_))
    ));
    assert_eq!(db.list_users().unwrap().len(), 1);
    assert_eq!(db.authenticate(&hash_token(&token)).unwrap(), auth);
}

/// A data dir from before names were normalised: `Alice` becomes `alice`; `Bob` stays `Bob`
/// when `bob` exists as well, and both keep working.
#[test]
fn old_names_are_migrated_where_free_and_keep_working_where_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asgard.redb");
    let (alice, bob_upper, bob) = {
        let db = Db::open(&path).unwrap();
        let a = register(&db, "x-alice", "PC");
        let b1 = register(&db, "x-bob1", "pc");
        let b2 = register(&db, "x-bob2", "pc");
        // Rename to the old, non-normal names and forget the migration.
        let txn = db.write().unwrap();
        {
            let mut users = txn.open_table(USERS).unwrap();
            let mut devices = txn.open_table(DEVICES).unwrap();
            for (from, to) in [("x-alice", "Alice"), ("x-bob1", "Bob"), ("x-bob2", "bob")] {
                let v = users.remove(from).unwrap().unwrap().value().to_vec();
                users.insert(to, v.as_slice()).unwrap();
            }
            let v = devices
                .remove((a.1.user_id, "pc"))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            devices.insert((a.1.user_id, "PC"), v.as_slice()).unwrap();
            txn.open_table(SKELETONS)
                .unwrap()
                .retain(|_, _| false)
                .unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(NAMES_VERSION, 0)
                .unwrap();
        }
        txn.commit().unwrap();
        (a, b1, b2)
    };
    let db = Db::open(&path).unwrap();
    let users: Vec<String> = db
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(users, ["Bob", "alice", "bob"]);
    let ok = login(&db, "ALICE", "Pc", Some(&alice.0)).unwrap();
    assert_eq!((ok.user.as_str(), ok.device.as_str()), ("alice", "pc"));
    // `bob` is found by its normal form, `Bob` by the name as given.
    assert_eq!(
        login(&db, "bob", "pc", Some(&bob.0)).unwrap().status,
        DeviceStatus::Active
    );
    let b = login(&db, "Bob", "pc", Some(&bob_upper.0)).unwrap();
    assert_eq!((b.status, b.user.as_str()), (DeviceStatus::Active, "Bob"));
    // The skeletons were recorded: a look-alike of alice is refused.
    assert!(matches!(
        login(&db, "\u{430}lice", "pc", None),
        Err(DbError::ConfusableName { .. })
    ));
}
