use asgard_core::ChunkId;
use asgard_core::protocol::DeviceStatus;

use super::*;

use crate::db::Auth;
use crate::testutil::{OPEN, commit, file, login_request, open_db, register, upload};

fn chunk_refcount(db: &Db, data: &[u8]) -> Option<u64> {
    db.chunk_record(&ChunkId::of(data))
        .unwrap()
        .map(|r| r.refcount)
}

fn token_login(db: &Db, token: &str, user: &str, device: &str) -> Result<DeviceStatus> {
    db.login(
        &login_request(user, device),
        Some(hash_token(token)),
        OPEN,
        2,
    )
    .map(|o| o.status)
}

#[test]
fn a_disabled_user_is_refused_everywhere_until_enabled() {
    let (_d, db) = open_db();
    let (tok, anna) = register(&db, "anna", "pc");
    let (btok, bert) = register(&db, "bert", "pc");
    db.set_user_disabled("Anna", true, 5).unwrap();
    assert!(matches!(
        db.authenticate(&hash_token(&tok)),
        Err(DbError::UserDisabled)
    ));
    assert!(matches!(
        token_login(&db, &tok, "anna", "pc"),
        Err(DbError::UserDisabled)
    ));
    // Another user is untouched; a wrong token still says nothing about anna.
    assert_eq!(db.authenticate(&hash_token(&btok)).unwrap(), bert);
    assert!(matches!(
        db.authenticate(&hash_token("asg_wrong")),
        Err(DbError::Unauthorized)
    ));
    assert_eq!(db.disabled_users().unwrap()[&anna.user_id], 5);
    db.set_user_disabled("anna", false, 6).unwrap();
    assert_eq!(db.authenticate(&hash_token(&tok)).unwrap(), anna);
    assert!(matches!(
        db.set_user_disabled("niemand", true, 1),
        Err(DbError::NotFound)
    ));
}

#[test]
fn a_revoked_token_is_refused_as_revoked_and_a_new_token_replaces_it() {
    let (_d, db) = open_db();
    let (tok, _anna) = register(&db, "anna", "pc");
    let (other, _) = register(&db, "anna", "laptop");
    db.revoke_device("anna", "pc", 7).unwrap();
    assert!(matches!(
        db.authenticate(&hash_token(&tok)),
        Err(DbError::TokenRevoked)
    ));
    assert!(matches!(
        token_login(&db, &tok, "anna", "pc"),
        Err(DbError::TokenRevoked)
    ));
    // The user's other device goes on.
    assert!(db.authenticate(&hash_token(&other)).is_ok());
    let listed = db.list_devices_full().unwrap();
    let pc = listed.iter().find(|d| d.device == "pc").unwrap();
    assert_eq!((pc.revoked_us, pc.rec.token_hash), (Some(7), None));

    let fresh = db.new_device_token("anna", "pc", 8).unwrap();
    assert_ne!(fresh, tok);
    let auth = db.authenticate(&hash_token(&fresh)).unwrap();
    assert_eq!(auth.device, "pc");
    assert_eq!(
        token_login(&db, &fresh, "anna", "pc").unwrap(),
        DeviceStatus::Active
    );
    // A new token ends the revoked state; the replaced token stays refused.
    let listed = db.list_devices_full().unwrap();
    assert!(listed.iter().all(|d| d.revoked_us.is_none()));
    assert!(matches!(
        db.authenticate(&hash_token(&tok)),
        Err(DbError::TokenRevoked)
    ));
    // Replacing a live token kills it at once.
    let third = db.new_device_token("anna", "pc", 9).unwrap();
    assert!(matches!(
        db.authenticate(&hash_token(&fresh)),
        Err(DbError::TokenRevoked)
    ));
    assert!(db.authenticate(&hash_token(&third)).is_ok());
    // A reset after a revoke is a reset (a code prepared), not "revoked" any more.
    db.revoke_device("anna", "pc", 10).unwrap();
    db.reset_device("anna", "pc", 1_000_000, 11).unwrap();
    let pc = db
        .list_devices_full()
        .unwrap()
        .into_iter()
        .find(|d| d.device == "pc")
        .unwrap();
    assert_eq!(pc.revoked_us, None);
    assert!(matches!(
        db.revoke_device("anna", "toaster", 1),
        Err(DbError::NotFound)
    ));
    assert!(matches!(
        db.new_device_token("bert", "pc", 1),
        Err(DbError::NotFound)
    ));
}

#[test]
fn last_seen_is_recorded_per_device() {
    let (_d, db) = open_db();
    let (_, a) = register(&db, "anna", "pc");
    let (_, b) = register(&db, "anna", "laptop");
    db.record_seen(a.user_id, a.device_id, "192.0.2.7", 42)
        .unwrap();
    let list = db.list_devices_full().unwrap();
    let pc = list.iter().find(|d| d.rec.id == a.device_id).unwrap();
    assert_eq!(
        pc.seen,
        Some(SeenRec {
            last_seen_us: 42,
            addr: "192.0.2.7".into()
        })
    );
    let laptop = list.iter().find(|d| d.rec.id == b.device_id).unwrap();
    assert_eq!(laptop.seen, None);
}

fn all_rows<K: redb::Key + 'static, V: redb::Value + 'static>(
    db: &Db,
    t: redb::TableDefinition<K, V>,
) -> usize {
    let txn = db.read().unwrap();
    txn.open_table(t).unwrap().iter().unwrap().count()
}

#[test]
fn deleting_a_user_removes_everything_of_theirs_and_only_that() {
    let (_d, db) = open_db();
    let (tok, anna) = register(&db, "anna", "pc");
    let (_, anna2) = register(&db, "anna", "laptop");
    let (btok, bert) = register(&db, "bert", "pc");
    upload(&db, &anna, &[b"shared", b"anna-only"]);
    upload(&db, &bert, &[b"shared", b"bert-only"]);
    // Five paths, so that a batch of two needs three transactions.
    for i in 0..5 {
        let a: &Auth = if i % 2 == 0 { &anna } else { &anna2 };
        commit(
            &db,
            a,
            &[file(&format!("/f{i}"), &[b"shared", b"anna-only"])],
            4,
        );
    }
    commit(&db, &bert, &[file("/b", &[b"shared", b"bert-only"])], 4);
    db.set_keep_override("anna", Some(2)).unwrap();
    db.add_run(
        anna.user_id,
        anna.device_id,
        &crate::db::RunRec::new(Default::default(), 1),
    )
    .unwrap();
    db.record_seen(anna.user_id, anna.device_id, "::1", 1)
        .unwrap();
    // A pending registration of a further device, and a revoked device.
    let pending = db
        .login(&login_request("anna", "tablet"), None, OPEN, 3)
        .unwrap();
    assert_eq!(pending.status, DeviceStatus::Pending);
    db.revoke_device("anna", "laptop", 4).unwrap();
    assert_eq!(chunk_refcount(&db, b"shared"), Some(6));

    let out = db.delete_user_in("ANNA", 9, 2).unwrap();
    assert_eq!(
        out,
        DeletedUser {
            devices: 2,
            paths: 5,
            versions: 5
        }
    );

    // Their references are gone; bert's stay; the index keeps the chunks for the GC.
    assert_eq!(chunk_refcount(&db, b"shared"), Some(1));
    assert_eq!(chunk_refcount(&db, b"anna-only"), Some(0));
    assert_eq!(chunk_refcount(&db, b"bert-only"), Some(1));
    assert!(
        !db.owns_chunk(anna.user_id, &ChunkId::of(b"anna-only"))
            .unwrap()
    );
    assert!(
        db.owns_chunk(bert.user_id, &ChunkId::of(b"shared"))
            .unwrap()
    );
    // Nothing of anna's is left in any table; bert's rows are.
    assert!(db.list_users().unwrap().iter().all(|u| u.name != "anna"));
    assert!(matches!(
        db.authenticate(&hash_token(&tok)),
        Err(DbError::Unauthorized)
    ));
    let pending_token = hash_token(pending.token.as_deref().unwrap());
    assert!(matches!(
        db.authenticate(&pending_token),
        Err(DbError::Unauthorized)
    ));
    assert_eq!(db.authenticate(&hash_token(&btok)).unwrap(), bert);
    assert_eq!(all_rows(&db, DEVICES), 1);
    assert_eq!(all_rows(&db, TOKENS), 1);
    assert_eq!(all_rows(&db, PATHS), 1);
    assert_eq!(all_rows(&db, VERSIONS), 1);
    for n in [
        all_rows(&db, RUNS),
        all_rows(&db, PENDING),
        all_rows(&db, PENDING_TOKENS),
        all_rows(&db, KEEP_OVERRIDES),
        all_rows(&db, DEVICE_SEEN),
        all_rows(&db, REVOKED_DEVICES),
        all_rows(&db, REVOKED_TOKENS),
        all_rows(&db, DISABLED_USERS),
    ] {
        assert_eq!(n, 0);
    }
    assert_eq!(all_rows(&db, SKELETONS), 1);
    // The name is free again: a new anna is a new user (with a new id), not the old one.
    let again = db
        .login(&login_request("anna", "pc"), None, OPEN, 10)
        .unwrap();
    assert_eq!(again.status, DeviceStatus::Active);
    let new_anna = db
        .authenticate(&hash_token(again.token.as_deref().unwrap()))
        .unwrap();
    assert_ne!(new_anna.user_id, anna.user_id);
    assert!(matches!(
        db.delete_user("niemand", 1),
        Err(DbError::NotFound)
    ));
}

/// A deletion that stopped after its first step (a crash) leaves a disabled user whose
/// remaining versions still hold their references; running it again finishes the job.
#[test]
fn an_interrupted_deletion_is_consistent_and_resumes() {
    let (_d, db) = open_db();
    let (tok, anna) = register(&db, "anna", "pc");
    upload(&db, &anna, &[b"x"]);
    commit(&db, &anna, &[file("/a", &[b"x"]), file("/b", &[b"x"])], 4);
    // Step 2 ran for one batch of one path, then the process died.
    let txn = db.write().unwrap();
    txn.open_table(DISABLED_USERS)
        .unwrap()
        .insert(anna.user_id, 1)
        .unwrap();
    let (paths, versions) = delete_paths(&txn, anna.user_id, 1).unwrap();
    txn.commit().unwrap();
    assert_eq!((paths, versions), (1, 1));
    assert_eq!(
        chunk_refcount(&db, b"x"),
        Some(1),
        "the other path still holds it"
    );
    assert!(matches!(
        db.authenticate(&hash_token(&tok)),
        Err(DbError::UserDisabled)
    ));
    let out = db.delete_user("anna", 2).unwrap();
    assert_eq!((out.paths, out.versions, out.devices), (1, 1, 1));
    assert_eq!(chunk_refcount(&db, b"x"), Some(0));
}
