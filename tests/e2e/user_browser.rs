//! Issue 14 (uauth) in a real browser: `asgard-agent web` prints a link, the browser opens it and
//! lands on "Meine Geräte" signed in (the user's navigation, never the admin's), switches to
//! English and back, logs out; the used link shows its refusal page. Screenshots of each page go
//! to `target/screenshots/` (desktop and phone).

use asgard_e2e::browser;
use asgard_e2e::*;

#[test]
fn asgard_agent_web_opens_the_users_start_page_in_the_browser() {
    let Some(b) = Browser::start() else { return };
    let server = Server::start();
    let web = UserWeb::new(&server);
    let mut anna = Agent::new("anna", &server);
    anna.device = "annas-laptop".into();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("brief.txt"), b"Hallo Welt").unwrap();
    anna.backup(files.path());

    let link = web.link(&anna);
    b.goto(&link);
    b.wait_for(&tid("my-devices"));
    assert!(b.url().ends_with("/my"), "{}", b.url());
    assert_eq!(b.text(&tid("page-title")), "Meine Geräte");
    assert_eq!(b.text(&tid("user-name")), "anna");
    assert!(b.exists(&tid("browse-annas-laptop")));
    assert_ne!(b.text(&tid("my-last-backup-annas-laptop")), "noch nie");
    for admin_nav in ["nav-users", "nav-devices", "nav-audit", "nav-overview"] {
        assert!(!b.exists(&tid(admin_nav)), "{admin_nav} shown to a user");
    }
    for nav in ["nav-my-devices", "nav-search", "nav-deleted", "nav-logout"] {
        assert!(b.exists(&tid(nav)), "{nav} missing");
    }
    let width = b.phone_page_width();
    assert!(
        width <= u64::from(browser::PHONE.0),
        "{width} px on a phone"
    );
    b.screenshot("user-start");

    b.click(&tid("lang-en"));
    b.wait_for(&tid("my-devices"));
    assert_eq!(b.text(&tid("page-title")), "My devices");
    b.screenshot("user-start-en");
    b.click(&tid("lang-de"));
    b.wait_for(&tid("my-devices"));
    assert_eq!(b.text(&tid("page-title")), "Meine Geräte");

    b.click(&tid("nav-logout"));
    b.wait_for(&tid("login-form"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
    b.screenshot("user-login");
    b.goto(&format!("{}/my", web.origin));
    b.wait_for(&tid("login-form"));

    // The used link: its refusal page, and still no session.
    b.goto_unchecked(&link);
    b.wait_for(&tid("link-refused"));
    assert!(b.text(&tid("link-refused")).contains("schon benutzt"));
    // The 410 itself is the only console error, and expected.
    let errors = b.console_errors();
    assert!(errors.iter().all(|e| e.contains("410")), "{errors:?}");
    b.screenshot("user-link-used");
}
