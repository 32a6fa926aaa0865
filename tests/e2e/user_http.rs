//! The end user's way in over HTTP against the real binaries (issue 14, uauth): the one-time
//! link of `asgard-agent web` works once, a used or forged one gives no session; a user session
//! opens nothing of the admin's and an admin session nothing of the user's; a user sees only
//! their own devices; the link endpoint needs a live device token; the web password and logout.

use asgard_e2e::{AdminAccount, Agent, Server, UserWeb, server_admin_ok, text};
use serde_json::json;

const ADMIN_PW: &str = "Donnerkeil-2024!";

/// Every admin page and form, and the JSON twin.
const ADMIN_PAGES: [&str; 6] = [
    "/admin",
    "/admin/users",
    "/admin/devices",
    "/admin/runs",
    "/admin/maintenance",
    "/admin/audit",
];
const ADMIN_FORMS: [&str; 4] = [
    "/admin/users/state",
    "/admin/users/delete",
    "/admin/devices/revoke",
    "/admin/maintenance/gc",
];
const ADMIN_API: [&str; 4] = [
    "/api/admin/stats",
    "/api/admin/users",
    "/api/admin/devices",
    "/api/admin/overview",
];

fn agent(server: &Server, user: &str, device: &str) -> Agent {
    let mut a = Agent::new(user, server);
    a.device = device.into();
    a.ok(["login"]);
    a
}

fn admin_cli(server: &Server, args: &[&str]) -> String {
    let dir = server.data_dir();
    let out = server_admin_ok(
        args.iter()
            .map(std::ffi::OsString::from)
            .chain(["--data-dir".into(), dir.into_os_string()]),
    );
    text(&out.stdout)
}

#[test]
fn a_link_of_asgard_agent_web_opens_the_users_pages_once() {
    let server = Server::start();
    let web = UserWeb::new(&server);
    let anna = agent(&server, "anna", "annas-laptop");

    let out = anna.ok(["web", "--no-open"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Wiederherstellung im Browser"), "{stdout}");
    let link = web.link(&anna);
    assert!(link.starts_with(&web.origin), "{link}");
    let secret = link.rsplit('/').next().unwrap().to_owned();
    assert_eq!(secret.len(), 64, "{link}");

    let opened = web.open_link(&link);
    assert_eq!(opened.status, 303, "{}", opened.body);
    assert_eq!(
        opened.header("location"),
        "/my",
        "no secret in the next URL"
    );
    let cookie = opened
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("asgard_session="))
        .unwrap()
        .to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let session = opened.session().unwrap();
    assert_ne!(session, secret, "the session id is not the link's secret");
    let my = web.get("/my", Some(&session));
    assert_eq!(my.status, 200, "{}", my.body);
    assert!(my.body.contains("Meine Geräte"), "German by default");
    assert!(
        my.body.contains("href=\"/my/browse?device=annas-laptop\""),
        "{}",
        my.body
    );
    assert!(my.body.contains("data-testid=\"nav-logout\""));
    assert!(!my.body.contains("/admin/users"), "no admin navigation");
    assert_eq!(my.header("x-frame-options"), "DENY");
    assert_eq!(my.header("referrer-policy"), "no-referrer");

    // Used: 410 with a German page, and no session.
    let again = web.open_link(&link);
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(again.body.contains("schon benutzt"), "{}", again.body);
    assert_eq!(again.session(), None);

    // Forged (another secret of the right form) and malformed: 404, no session.
    let fresh = web.link(&anna);
    let mut forged = fresh.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    for bad in [
        forged.as_str(),
        "/link/zz",
        "/link/",
        &format!("/link/{}", "0".repeat(64)),
        &format!("/link/{}", secret.to_uppercase()),
    ] {
        let a = web.open_link(bad);
        assert!(a.status == 404 || a.status == 410, "{bad}: {}", a.status);
        assert_eq!(a.session(), None, "{bad}");
    }
    // None of the tries spent the real fresh link.
    assert_eq!(web.open_link(&fresh).status, 303);

    // Logout needs the token and the origin; then the session is dead.
    let token = my.csrf();
    let a = web.post_form("/logout", Some(&session), None, &[("csrf", "x")]);
    assert_eq!(a.status, 403);
    let a = web.post_form(
        "/logout",
        Some(&session),
        Some("https://evil.example"),
        &[("csrf", &token)],
    );
    assert_eq!(a.status, 403);
    assert_eq!(web.get("/my", Some(&session)).status, 200);
    let a = web.post_form("/logout", Some(&session), None, &[("csrf", &token)]);
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), "/login");
    let a = web.get("/my", Some(&session));
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), "/login");
}

#[test]
fn user_and_admin_sessions_open_nothing_of_each_other() {
    let server = Server::start();
    let web = UserWeb::new(&server);
    AdminAccount::create(&server, "root", ADMIN_PW);
    // A user called like the admin: still only a user.
    let root_user = agent(&server, "root", "pc");
    let user = web.user_session(&root_user);
    let csrf = web.get("/my", Some(&user)).csrf();
    for page in ADMIN_PAGES {
        let a = web.get(page, Some(&user));
        assert_eq!(a.status, 303, "{page}: {}", a.body);
        assert_eq!(a.header("location"), "/admin/login", "{page}");
    }
    for form in ADMIN_FORMS {
        let a = web.post_form(
            form,
            Some(&user),
            None,
            &[("csrf", &csrf), ("user", "root"), ("action", "disable")],
        );
        assert_eq!(a.status, 303, "{form}: {}", a.body);
        assert_eq!(a.header("location"), "/admin/login", "{form}");
    }
    for path in ADMIN_API {
        let req = web
            .client
            .get(format!("{}{path}", web.origin))
            .header("cookie", format!("asgard_session={user}"));
        assert_eq!(web.send(req).status, 401, "{path}");
    }
    // The admin login page shows its form to a user session (no redirect loop).
    let a = web.get("/admin/login", Some(&user));
    assert_eq!(a.status, 200, "{}", a.body);
    // The user is still enabled: none of the forms did anything.
    root_user.ok(["list"]);

    // An admin's session opens no user page, and is no user's for the logout either.
    let login = web.post_form(
        "/admin/login",
        None,
        None,
        &[("name", "root"), ("password", ADMIN_PW)],
    );
    assert_eq!(login.status, 303, "{}", login.body);
    let admin = login.session().unwrap();
    for page in ["/my", "/my/", "/my/browse?device=pc", "/my/anything"] {
        let a = web.get(page, Some(&admin));
        assert_eq!(a.status, 303, "{page}: {}", a.body);
        assert_eq!(a.header("location"), "/login", "{page}");
    }
    let admin_csrf = web.get("/admin", Some(&admin)).csrf();
    let a = web.post_form("/logout", Some(&admin), None, &[("csrf", &admin_csrf)]);
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), "/login");
    assert_eq!(
        web.get("/admin", Some(&admin)).status,
        200,
        "admin session intact"
    );
    // The user login page sends a user on, and shows an admin the form.
    assert_eq!(web.get("/login", Some(&user)).status, 303);
    assert_eq!(web.get("/login", Some(&admin)).status, 200);
}

#[test]
fn a_user_sees_only_their_own_devices() {
    let server = Server::start();
    let web = UserWeb::new(&server);
    let anna = agent(&server, "anna", "annas-laptop");
    let bert = agent(&server, "bert", "berts-pc");
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("brief.txt"), b"Hallo").unwrap();
    bert.backup(data.path());
    let a = web.get("/my", Some(&web.user_session(&anna)));
    assert!(a.body.contains("annas-laptop"), "{}", a.body);
    assert!(!a.body.contains("berts-pc"), "{}", a.body);
    assert!(!a.body.contains("bert"), "{}", a.body);
    let b = web.get("/my", Some(&web.user_session(&bert)));
    assert!(b.body.contains("berts-pc"), "{}", b.body);
    assert!(!b.body.contains("annas-laptop"), "{}", b.body);
    assert!(
        b.body.contains("data-testid=\"my-last-backup-berts-pc\""),
        "{}",
        b.body
    );
}

#[test]
fn the_link_endpoint_needs_a_live_device_token() {
    let server = Server::start();
    let web = UserWeb::new(&server);
    let anna = agent(&server, "anna", "pc");
    let api = &web.api;
    let (status, _) = api.post_json("/api/web-link", None, &json!({}));
    assert_eq!(status, 401, "no token");
    let (status, _) = api.post_json(
        "/api/web-link",
        Some(&format!("asg_{}", "0".repeat(64))),
        &json!({}),
    );
    assert_eq!(status, 401, "a made-up token");
    let token = anna.token();
    let (status, body) = api.post_json("/api/web-link", Some(&token), &json!({}));
    assert_eq!(status, 200, "{body}");
    let path = body["path"].as_str().unwrap().to_owned();
    assert!(path.starts_with("/link/"), "{body}");
    assert!(
        body.get("url").is_none(),
        "no public_url configured: {body}"
    );
    let session = web.user_session(&anna);

    // Disabled: no link, the old session and the unused link are dead.
    admin_cli(&server, &["user", "disable", "anna"]);
    let (status, body) = api.post_json("/api/web-link", Some(&token), &json!({}));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "user_disabled");
    assert_eq!(web.get("/my", Some(&session)).status, 303);
    let a = web.get(&path, None);
    assert_eq!(a.status, 410, "{}", a.body);
    assert_eq!(a.session(), None);
    admin_cli(&server, &["user", "enable", "anna"]);

    // Revoked: refused.
    admin_cli(&server, &["device", "revoke", "anna", "pc"]);
    let (status, body) = api.post_json("/api/web-link", Some(&token), &json!({}));
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "token_revoked");
    let (status, _) = api.post_json(
        "/api/web-password",
        Some(&token),
        &json!({"password": "ein-langes-passwort"}),
    );
    assert_eq!(status, 401);
}

#[test]
fn a_configured_public_url_makes_the_link() {
    let server =
        Server::start_with_config(Some("web:\n  public_url: https://backup.example:8443/\n"));
    let anna = agent(&server, "anna", "pc");
    let out = anna.ok(["web", "--no-open"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("https://backup.example:8443/link/"),
        "{stdout}"
    );
}

#[test]
fn the_web_password_opens_the_login_and_refuses_alike() {
    let server = Server::start();
    let web = UserWeb::new(&server);
    let anna = agent(&server, "anna", "pc");
    let bert = agent(&server, "bert", "pc");
    let set = |a: &Agent, pw: &str| {
        use std::io::Write;
        let mut child = a
            .command()
            .args(["web", "--set-password", "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{pw}").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = set(&anna, "kurz");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("zu kurz"),
        "{}",
        text(&out.stderr)
    );
    let out = set(&anna, "Annas-Web-Passwort-1");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let login = |name: &str, pw: &str| {
        web.post_form("/login", None, None, &[("name", name), ("password", pw)])
    };
    let ok = login("anna", "Annas-Web-Passwort-1");
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), "/my");
    let session = ok.session().unwrap();
    let my = web.get("/my", Some(&session));
    assert_eq!(my.status, 200);
    assert!(
        my.body.contains("data-testid=\"user-name\">anna<"),
        "{}",
        my.body
    );

    // Wrong password, unknown name, a user without a web password: the same answer.
    let refused: Vec<_> = [
        ("anna", "Falsches-Passwort-1"),
        ("niemand", "Annas-Web-Passwort-1"),
        ("bert", "Annas-Web-Passwort-1"),
    ]
    .iter()
    .map(|(n, p)| login(n, p))
    .collect();
    for a in &refused {
        assert_eq!(a.status, 401, "{}", a.body);
        assert_eq!(a.session(), None);
        assert!(a.body.contains("Name oder Passwort falsch"), "{}", a.body);
    }
    let _ = bert;
    // A login post from another origin is refused before the password is looked at.
    let a = web.post_form(
        "/login",
        None,
        Some("https://evil.example"),
        &[("name", "anna"), ("password", "Annas-Web-Passwort-1")],
    );
    assert_eq!(a.status, 403);
    assert_eq!(a.session(), None);
    // The user's web password is no admin's.
    let a = web.post_form(
        "/admin/login",
        None,
        None,
        &[("name", "anna"), ("password", "Annas-Web-Passwort-1")],
    );
    assert_eq!(a.status, 401);
    // The login form is there, German, with its hint.
    let page = web.get("/login", None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("asgard-agent web"), "{}", page.body);
}

#[test]
fn an_admin_makes_a_restore_link_on_the_cli_and_on_the_users_page() {
    let mut server = Server::start();
    let web = UserWeb::new(&server);
    let anna = agent(&server, "anna", "annas-laptop");
    let bert = agent(&server, "bert", "berts-pc");
    AdminAccount::create(&server, "root", ADMIN_PW);

    // The command line, with the server running: the link opens Anna's pages, which say so.
    let out = admin_cli(&server, &["user", "link", "anna"]);
    assert!(out.contains("Wiederherstellungs-Link für anna"), "{out}");
    let link = out
        .split_whitespace()
        .find(|w| w.contains("/link/"))
        .unwrap()
        .to_owned();
    let opened = web.open_link(&link);
    assert_eq!(opened.status, 303, "{}", opened.body);
    let session = opened.session().unwrap();
    let my = web.get("/my", Some(&session));
    assert!(
        my.body.contains("Zugang erstellt von Administrator cli am"),
        "{}",
        my.body
    );
    assert!(my.body.contains("annas-laptop") && !my.body.contains("berts-pc"));
    assert_eq!(web.open_link(&link).status, 410, "once only");
    // An unknown user: refused, nothing made.
    let dir = server.data_dir();
    let out = asgard_e2e::server_admin(
        ["user", "link", "niemand", "--data-dir"]
            .iter()
            .map(std::ffi::OsString::from)
            .chain([dir.into_os_string()]),
    );
    assert!(!out.status.success());

    // With the server stopped too.
    server.stop();
    let out = admin_cli(&server, &["user", "link", "bert"]);
    server.restart();
    let link = out
        .split_whitespace()
        .find(|w| w.contains("/link/"))
        .unwrap()
        .to_owned();
    let web = UserWeb::new(&server);
    let opened = web.open_link(&link);
    assert_eq!(opened.status, 303, "{}", opened.body);
    let my = web.get("/my", Some(&opened.session().unwrap()));
    assert!(my.body.contains("berts-pc") && !my.body.contains("annas-laptop"));

    // The users page: a button per user; the answer shows the link once, with this host.
    let login = web.post_form(
        "/admin/login",
        None,
        None,
        &[("name", "root"), ("password", ADMIN_PW)],
    );
    let admin = login.session().unwrap();
    let users = web.get("/admin/users", Some(&admin));
    assert!(
        users.body.contains("data-testid=\"link-anna\""),
        "{}",
        users.body
    );
    let csrf = users.csrf();
    let a = web.post_form("/admin/users/link", Some(&admin), None, &[("user", "anna")]);
    assert_eq!(a.status, 403, "no CSRF token");
    let a = web.post_form(
        "/admin/users/link",
        Some(&admin),
        None,
        &[("csrf", &csrf), ("user", "anna")],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let shown = a
        .body
        .split("data-testid=\"restore-link\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    assert!(shown.starts_with(&web.origin), "{shown}");
    let opened = web.open_link(&shown);
    assert_eq!(opened.status, 303);
    let my = web.get("/my", Some(&opened.session().unwrap()));
    assert!(
        my.body
            .contains("Zugang erstellt von Administrator root am"),
        "{}",
        my.body
    );
    // A user's own link says nothing of an admin.
    let own = web.get("/my", Some(&web.user_session(&anna)));
    assert!(!own.body.contains("Zugang erstellt"), "{}", own.body);
    // The audit log has both, without the secret.
    let audit = web.get("/admin/audit", Some(&admin));
    assert!(
        audit.body.matches("restore_link_created").count() >= 3,
        "{}",
        audit.body
    );
    let secret = shown.rsplit('/').next().unwrap();
    assert!(!audit.body.contains(secret), "the secret is not logged");
    let _ = bert;
}
