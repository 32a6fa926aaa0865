//! The admin console over HTTP against the real server binary (issue 13, acceptance point 1):
//! nothing opens without a session, refused logins and the lockout, CSRF and origin checks, an
//! expired session, a device token that opens nothing, a revoked token refused everywhere, and
//! the security headers on every answer.

use std::time::Duration;

use asgard_e2e::{Agent, Api, Server};
use serde_json::{Value, json};

/// Every console page (GET).
const PAGES: [&str; 8] = [
    "/admin",
    "/admin/users",
    "/admin/devices",
    "/admin/runs",
    "/admin/runs/anna/laptop/1",
    "/admin/maintenance",
    "/admin/audit",
    "/admin/no-such-page",
];

/// Every state-changing console form (POST).
const FORMS: [&str; 13] = [
    "/admin/logout",
    "/admin/users/keep",
    "/admin/users/state",
    "/admin/users/delete",
    "/admin/devices/revoke",
    "/admin/devices/token",
    "/admin/devices/registration",
    "/admin/devices/approve",
    "/admin/devices/refuse",
    "/admin/devices/reset",
    "/admin/maintenance/gc",
    "/admin/maintenance/verify",
    "/admin/maintenance/db-backup",
];

const API_GET: [&str; 8] = [
    "/api/admin/stats",
    "/api/admin/users",
    "/api/admin/devices",
    "/api/admin/overview",
    "/api/admin/runs",
    "/api/admin/registration",
    "/api/admin/jobs",
    "/api/admin/jobs/1",
];
const API_POST: [&str; 14] = [
    "/api/admin/users/keep",
    "/api/admin/devices/approve",
    "/api/admin/devices/reset",
    "/api/admin/maintenance/gc",
    "/api/admin/maintenance/verify",
    "/api/admin/maintenance/db-backup",
    "/api/admin/users/disable",
    "/api/admin/users/enable",
    "/api/admin/users/delete",
    "/api/admin/devices/revoke",
    "/api/admin/devices/token",
    "/api/admin/devices/refuse",
    "/api/admin/registration",
    "/api/admin/jobs",
];

/// A client that does not follow redirects and keeps no cookies: each test sends its own.
struct Web {
    api: Api,
    client: reqwest::Client,
    origin: String,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the session cookie this answer sets, if any.
    fn session(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("asgard_session="))
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
            .filter(|c| !c.is_empty())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl Web {
    fn new(server: &Server) -> Web {
        let api = Api::new(server);
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let origin = server.url.trim_end_matches('/').to_owned();
        Web {
            api,
            client,
            origin,
        }
    }

    fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        self.api.block_on(async {
            let r = req.send().await.unwrap();
            Answer {
                status: r.status().as_u16(),
                headers: r.headers().clone(),
                body: r.text().await.unwrap_or_default(),
            }
        })
    }

    fn get(&self, path: &str, session: Option<&str>) -> Answer {
        let mut req = self.client.get(format!("{}{path}", self.origin));
        if let Some(s) = session {
            req = req.header("cookie", format!("asgard_session={s}"));
        }
        self.send(req)
    }

    /// A form post with the server's own origin unless `origin` says otherwise.
    fn post_form(
        &self,
        path: &str,
        session: Option<&str>,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.origin))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencoded(form));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(s) = session {
            req = req.header("cookie", format!("asgard_session={s}"));
        }
        self.send(req)
    }

    fn login(&self, name: &str, password: &str) -> Answer {
        self.post_form(
            "/admin/login",
            None,
            Some(&self.origin),
            &[("name", name), ("password", password)],
        )
    }
}

/// A form body (`application/x-www-form-urlencoded`).
fn urlencoded(form: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The security headers every console answer carries.
fn assert_security_headers(a: &Answer, what: &str) {
    let csp = a.header("content-security-policy");
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(a.header("x-frame-options"), "DENY", "{what}");
    assert_eq!(a.header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(a.header("x-content-type-options"), "nosniff", "{what}");
    assert!(
        a.header("strict-transport-security")
            .starts_with("max-age="),
        "{what}"
    );
}

#[test]
fn nothing_in_the_console_opens_without_a_session() {
    let server = Server::start();
    let web = Web::new(&server);
    for page in PAGES {
        let a = web.get(page, None);
        assert_eq!(a.status, 303, "{page}: {}", a.body);
        assert_eq!(a.header("location"), "/admin/login", "{page}");
        assert_security_headers(&a, page);
        assert_eq!(a.header("cache-control"), "no-store", "{page}");
        // A made-up session id is no session.
        let a = web.get(page, Some(&"ab".repeat(32)));
        assert_eq!(a.status, 303, "{page} with a made-up cookie");
    }
    for form in FORMS {
        let a = web.post_form(form, None, Some(&web.origin), &[("csrf", "x")]);
        assert_eq!(a.status, 303, "{form}: {}", a.body);
        assert_eq!(a.header("location"), "/admin/login", "{form}");
    }
    for path in API_GET {
        let a = web.get(path, None);
        assert_eq!(a.status, 401, "{path}: {}", a.body);
        assert_eq!(a.json()["code"], "unauthorized", "{path}");
        assert_security_headers(&a, path);
    }
    for path in API_POST {
        let req = web
            .client
            .post(format!("{}{path}", web.origin))
            .json(&json!({"user": "anna", "device": "laptop"}));
        let a = web.send(req);
        assert_eq!(a.status, 401, "{path}: {}", a.body);
    }
    // The login page and the style sheet carry the headers too; the page names its sheet.
    let login = web.get("/admin/login", None);
    assert_eq!(login.status, 200);
    assert_security_headers(&login, "/admin/login");
    assert!(
        login.body.contains("data-testid=\"login-form\""),
        "{}",
        login.body
    );
    assert!(login.body.contains("Anmelden"), "German by default");
    let css = login
        .body
        .split("href=\"/assets/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("style sheet link");
    let a = web.get(&format!("/assets/{css}"), None);
    assert_eq!(a.status, 200);
    assert!(a.header("content-type").starts_with("text/css"));
    assert!(a.header("cache-control").contains("max-age=31536000"));
    assert!(a.body.contains("prefers-color-scheme: dark"));
    assert_security_headers(&a, "css");
    assert_eq!(web.get("/assets/app-0000.css", None).status, 404);
    // English on request, through the language cookie.
    let req = web
        .client
        .get(format!("{}/admin/login", web.origin))
        .header("cookie", "lang=en");
    let en = web.send(req);
    assert!(
        en.body.contains("Log in") && !en.body.contains("Anmelden"),
        "{}",
        en.body
    );
}

#[test]
fn a_device_token_opens_nothing_in_the_console() {
    let server = Server::start();
    let agent = Agent::new("anna", &server);
    agent.ok(["login"]);
    let token = agent.token();
    let web = Web::new(&server);
    for path in API_GET {
        let a = web.send(
            web.client
                .get(format!("{}{path}", web.origin))
                .bearer_auth(&token),
        );
        assert_eq!(a.status, 401, "{path} with a device token: {}", a.body);
    }
    for path in API_POST {
        let a = web.send(
            web.client
                .post(format!("{}{path}", web.origin))
                .bearer_auth(&token)
                .json(&json!({"user": "anna", "device": "testhost"})),
        );
        assert_eq!(a.status, 401, "{path} with a device token: {}", a.body);
    }
    for page in PAGES {
        let a = web.send(
            web.client
                .get(format!("{}{page}", web.origin))
                .bearer_auth(&token),
        );
        assert_eq!(a.status, 303, "{page} with a device token");
    }
    // The device token as a session cookie is no session either.
    assert_eq!(web.get("/admin", Some(&token)).status, 303);
}

#[test]
fn refused_logins_say_the_same_and_the_lockout_engages_and_lifts() {
    let server = Server::start_with_config(Some("web:\n  lockout_base: 2s\n  lockout_max: 2s\n"));
    let web = Web::new(&server);
    // A login from another origin is refused before anything is checked.
    let a = web.post_form(
        "/admin/login",
        None,
        Some("https://evil.example"),
        &[("name", "root"), ("password", "whatever-it-is")],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.session().is_none());
    let a = web.post_form(
        "/admin/login",
        None,
        None,
        &[("name", "root"), ("password", "whatever-it-is")],
    );
    assert_eq!(a.status, 403, "no Origin, no Referer: {}", a.body);

    let a = web.login("nobody", "wrong-password-1");
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(
        a.body
            .contains("Anmeldung fehlgeschlagen: Name oder Passwort falsch."),
        "{}",
        a.body
    );
    assert!(a.session().is_none());
    // Failures until the lockout engages (the address is locked after a few).
    let mut locked = None;
    for i in 0..12 {
        let a = web.login("nobody", &format!("wrong-password-{i}"));
        if a.status == 429 {
            locked = Some(a);
            break;
        }
        assert_eq!(a.status, 401, "{}", a.body);
    }
    let locked = locked.expect("the lockout engages after repeated failures");
    assert!(locked.body.contains("Bitte warten Sie"), "{}", locked.body);
    assert!(!locked.header("retry-after").is_empty());
    assert_security_headers(&locked, "locked login");
    // It lifts by itself after its time.
    std::thread::sleep(Duration::from_millis(2500));
    let a = web.login("nobody", "wrong-password-x");
    assert_eq!(a.status, 401, "the lockout lifted: {}", a.body);
}

const PW: &str = "Donnerkeil-2024!";

/// Creates the admin `name` on the running server with `asgard-server admin create
/// --password-stdin`, and, when `token`, an admin API token (returned).
fn create_admin(server: &Server, name: &str, token: bool) -> Option<String> {
    use std::io::Write;
    let dir = server.data_dir();
    let mut child = asgard_e2e::server_admin_command(["admin", "create", name, "--password-stdin"])
        .arg("--data-dir")
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PW}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", asgard_e2e::text(&out.stderr));
    token.then(|| {
        let out = asgard_e2e::server_admin_ok(
            ["admin", "token", name, "--json", "--data-dir"]
                .iter()
                .map(std::ffi::OsString::from)
                .chain([dir.clone().into_os_string()]),
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["token"].as_str().unwrap().to_owned()
    })
}

/// The CSRF token of a page's forms.
fn csrf_of(page: &Answer) -> String {
    page.body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a form with its CSRF field")
        .to_owned()
}

#[test]
fn a_session_opens_the_console_and_every_change_needs_its_csrf_token_and_origin() {
    let server = Server::start();
    let admin_token = create_admin(&server, "root", true).unwrap();
    let web = Web::new(&server);
    // Two devices: anna's first one, then the one to revoke.
    let anna = Agent::new("anna", &server);
    anna.ok(["login"]);
    let device_token = anna.token();

    let a = web.login("root", "falsches-passwort-1");
    assert_eq!(a.status, 401, "wrong password");
    let login = web.login("root", PW);
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(login.header("location"), "/admin");
    let cookie = login
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
    let session = login.session().unwrap();
    for page in &PAGES[..PAGES.len() - 2] {
        if page.starts_with("/admin/runs/") {
            continue;
        }
        let a = web.get(page, Some(&session));
        assert_eq!(a.status, 200, "{page}: {}", a.body);
        assert_security_headers(&a, page);
        assert_eq!(a.header("cache-control"), "no-store", "{page}");
        assert!(a.body.contains("data-testid=\"nav-logout\""), "{page}");
    }
    let devices = web.get("/admin/devices", Some(&session));
    assert!(
        devices
            .body
            .contains("data-testid=\"device-row-anna-testhost\"")
    );
    let csrf = csrf_of(&devices);
    let keep = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("user", "anna".to_owned()),
            ("action", "set".to_owned()),
            ("versions", "7".to_owned()),
        ]
    };
    let post = |path: &str, origin: Option<&str>, form: &[(&str, String)]| {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        web.post_form(path, Some(&session), origin, &form)
    };
    // Missing token, wrong token, right token from another origin: 403, in German.
    let no_token: Vec<_> = keep(&csrf).into_iter().skip(1).collect();
    let a = post("/admin/users/keep", Some(&web.origin), &no_token);
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("Anfrage abgewiesen"), "{}", a.body);
    assert_security_headers(&a, "csrf refusal");
    let a = post(
        "/admin/users/keep",
        Some(&web.origin),
        &keep(&"0".repeat(64)),
    );
    assert_eq!(a.status, 403);
    let a = post(
        "/admin/users/keep",
        Some("https://evil.example"),
        &keep(&csrf),
    );
    assert_eq!(a.status, 403);
    let a = post("/admin/users/keep", None, &keep(&csrf));
    assert_eq!(a.status, 403, "no Origin and no Referer");
    let users = web.get("/admin/users", Some(&session));
    assert!(!users.body.contains(">7<"), "nothing changed yet");
    // The JSON twin with the cookie: the header token is needed too.
    let json_keep = |token: Option<&str>| {
        let mut req = web
            .client
            .post(format!("{}/api/admin/users/keep", web.origin))
            .header("cookie", format!("asgard_session={session}"))
            .header("origin", &web.origin)
            .json(&json!({"user": "anna", "versions": 5}));
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        web.send(req)
    };
    assert_eq!(json_keep(None).status, 403);
    assert_eq!(json_keep(Some("nope")).status, 403);
    // The right token from the right origin works, on the page and in the twin.
    let a = post("/admin/users/keep", Some(&web.origin), &keep(&csrf));
    assert_eq!(a.status, 303, "{}", a.body);
    let users = web.get("/admin/users", Some(&session));
    assert!(
        users.body.contains("data-testid=\"keep-anna\">7<"),
        "{}",
        users.body
    );
    assert_eq!(json_keep(Some(&csrf)).status, 200);
    // The admin API token opens the twin without cookie and CSRF; it opens no page.
    let a = web.send(
        web.client
            .get(format!("{}/api/admin/users", web.origin))
            .bearer_auth(&admin_token),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["users"][0]["keep_versions"], 5);
    assert!(a.session().is_none(), "a token request makes no session");
    // Revoke anna's device in the console: its token is refused on every agent endpoint.
    let a = post(
        "/admin/devices/reset",
        Some(&web.origin),
        &[
            ("csrf", csrf.clone()),
            ("user", "anna".into()),
            ("device", "testhost".into()),
        ],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("data-testid=\"one-time-code\""),
        "{}",
        a.body
    );
    let agent_api = Api::new(&server);
    for (method, path) in [
        ("POST", "/api/check"),
        ("POST", "/api/commit"),
        ("POST", "/api/upload"),
        ("GET", "/api/list"),
        ("POST", "/api/restore"),
        ("GET", &format!("/api/chunks/{}", "0".repeat(64))),
        ("POST", "/api/manifest"),
        ("POST", "/api/fetch"),
        ("GET", "/api/runs"),
        ("POST", "/api/runs"),
    ] {
        let url = format!("{}{path}", web.origin);
        let req = if method == "GET" {
            agent_api.client().get(url)
        } else {
            // A well-formed body where the endpoint reads it before the token.
            // (The token is checked while the body is read: a malformed body may be answered
            // first, so every body here is well-formed.)
            let body = match path {
                "/api/check" => json!({"chunks": []}),
                "/api/commit" => json!({"entries": []}),
                "/api/runs" => {
                    serde_json::to_value(asgard_core::protocol::RunReport::default()).unwrap()
                }
                "/api/manifest" => json!({"version_ids": []}),
                "/api/fetch" => json!({"chunks": []}),
                _ => json!({}),
            };
            agent_api.client().post(url).json(&body)
        };
        let (status, body) = agent_api.send(req.bearer_auth(&device_token));
        assert!(
            status == 401 || status == 403,
            "{method} {path} with a revoked token: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    // The audit log shows the login and the changes.
    let audit = web.get("/admin/audit", Some(&session));
    for action in ["login", "login_failed", "keep_changed", "device_reset"] {
        assert!(
            audit.body.contains(&format!("data-action=\"{action}\"")),
            "{action} in {}",
            audit.body
        );
    }
    // Logout is a POST with the token; afterwards the session opens nothing.
    let a = post(
        "/admin/logout",
        Some(&web.origin),
        &[("csrf", "wrong".into())],
    );
    assert_eq!(a.status, 403);
    let a = post(
        "/admin/logout",
        Some(&web.origin),
        &[("csrf", csrf.clone())],
    );
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location"), "/admin/login");
    assert_eq!(web.get("/admin", Some(&session)).status, 303);
    assert_eq!(json_keep(Some(&csrf)).status, 401);
}

#[test]
fn an_idle_session_expires() {
    let server = Server::start_with_config(Some("web:\n  session_idle: 2s\n"));
    create_admin(&server, "root", false);
    let web = Web::new(&server);
    let session = web.login("root", PW).session().expect("logged in");
    assert_eq!(web.get("/admin", Some(&session)).status, 200);
    std::thread::sleep(Duration::from_millis(3000));
    let a = web.get("/admin", Some(&session));
    assert_eq!(a.status, 303, "expired: {}", a.body);
    assert_eq!(a.header("location"), "/admin/login");
}

/// The JSON twin of the ops tasks with an admin API token: revoke and a new token change what
/// the agent gets next, the reports answer, bad input is refused, and a verify started as a
/// background job is watched until its report.
#[test]
fn the_json_twin_runs_the_account_actions_reports_and_jobs() {
    let server = Server::start();
    let admin_token = create_admin(&server, "root", true).unwrap();
    let web = Web::new(&server);
    let anna = Agent::new("anna", &server);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("a.txt"), b"Hallo Welt").unwrap();
    anna.backup(work.path());
    let call = |method: &str, path: &str, body: Option<Value>| -> Answer {
        let url = format!("{}{path}", web.origin);
        let req = match method {
            "GET" => web.client.get(url),
            _ => web.client.post(url).json(&body.unwrap_or(json!({}))),
        };
        web.send(req.bearer_auth(&admin_token))
    };

    let a = call("GET", "/api/admin/overview", None);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["users"], 1);
    assert_eq!(a.json()["device_runs"][0]["state"], "ok", "{}", a.body);
    let a = call("GET", "/api/admin/runs?user=anna&state=ok", None);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["total"], 1, "{}", a.body);
    let a = call("GET", "/api/admin/runs?state=kaputt", None);
    assert_eq!(a.status, 400, "{}", a.body);
    let a = call("GET", "/api/admin/runs?user=niemand", None);
    assert_eq!(a.status, 404, "{}", a.body);

    // Revoke: the agent is refused at once and told so; a new token brings it back.
    let who = json!({"user": "anna", "device": "testhost"});
    let a = call("POST", "/api/admin/devices/revoke", Some(who.clone()));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["action"], "revoked");
    let out = anna.run(["list"]);
    assert!(
        asgard_e2e::text(&out.stderr).contains("widerrufen"),
        "{}",
        asgard_e2e::text(&out.stderr)
    );
    let a = call("POST", "/api/admin/devices/token", Some(who));
    assert_eq!(a.status, 200, "{}", a.body);
    let token = a.json()["token"].as_str().unwrap().to_owned();
    anna.ok(["login", "--token", &token]);
    anna.ok(["list"]);

    // Disable and enable; delete needs the name typed again.
    let a = call(
        "POST",
        "/api/admin/users/disable",
        Some(json!({"user": "anna"})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(!anna.run(["list"]).status.success());
    let a = call(
        "POST",
        "/api/admin/users/enable",
        Some(json!({"user": "anna"})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    anna.ok(["list"]);
    let a = call(
        "POST",
        "/api/admin/users/delete",
        Some(json!({"user": "anna", "confirm": "anne"})),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    anna.ok(["list"]);

    // Registration: a short key is refused, a mode is kept and shown.
    let a = call(
        "POST",
        "/api/admin/registration",
        Some(json!({"mode": "open", "enrollment_key": "kurz"})),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    let a = call(
        "POST",
        "/api/admin/registration",
        Some(json!({"mode": "closed"})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        call("GET", "/api/admin/registration", None).json()["mode"],
        "closed"
    );
    let bert = Agent::new("bert", &server);
    assert!(
        !bert.run(["login"]).status.success(),
        "registration is closed"
    );

    // A verify as a background job, watched until its report.
    let a = call("POST", "/api/admin/jobs", Some(json!({"task": "verify"})));
    assert_eq!(a.status, 202, "{}", a.body);
    let id = a.json()["id"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let job = loop {
        let a = call("GET", &format!("/api/admin/jobs/{id}"), None);
        assert_eq!(a.status, 200, "{}", a.body);
        let j = a.json();
        if !j["finished"].is_null() {
            break j;
        }
        assert!(std::time::Instant::now() < deadline, "the job never ended");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(job["name"], "verify");
    assert_eq!(job["finished"]["exit_code"], 0, "{job}");
    assert!(
        job["finished"]["report"]["chunks_checked"]
            .as_u64()
            .unwrap()
            >= 1,
        "{job}"
    );
    assert_eq!(job["steps"][0]["step"], "verifying", "{job}");
    let a = call("GET", "/api/admin/jobs", None);
    assert!(a.json()["current"].is_null(), "{}", a.body);
    assert_eq!(a.json()["last"][0]["id"], id, "{}", a.body);
    let a = call(
        "POST",
        "/api/admin/jobs",
        Some(json!({"task": "frobnicate"})),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(call("GET", "/api/admin/jobs/999", None).status, 404);
}

/// The pages' own account actions (issue 13, ops): the users page disables, enables and deletes
/// (only with the name typed again), the devices page revokes, issues a new token and changes the
/// registration mode, the overview shows the free space and a waiting device; every change is in
/// the audit log under the admin's name.
#[test]
fn the_pages_disable_delete_revoke_and_change_registration() {
    let server = Server::start();
    create_admin(&server, "root", false);
    let web = Web::new(&server);
    let anna = Agent::new("anna", &server);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("a.txt"), b"Hallo Welt").unwrap();
    anna.backup(work.path());
    let bert = Agent::new("bert", &server);
    bert.ok(["login"]);
    let session = web.login("root", PW).session().unwrap();
    let post = |path: &str, form: &[(&str, &str)]| {
        let csrf = csrf_of(&web.get("/admin/devices", Some(&session)));
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        web.post_form(path, Some(&session), Some(&web.origin), &all)
    };
    let refused = |agent: &Agent, words: &str| {
        let out = agent.run(["list"]);
        let err = asgard_e2e::text(&out.stderr);
        assert!(!out.status.success() && err.contains(words), "{err}");
    };

    let users = web.get("/admin/users", Some(&session));
    assert!(
        users.body.contains("data-testid=\"versions-anna\">2<"),
        "{}",
        users.body
    );
    assert!(
        users.body.contains("data-testid=\"disable-anna\""),
        "{}",
        users.body
    );
    let a = post(
        "/admin/users/state",
        &[("user", "anna"), ("action", "disable")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    refused(&anna, "gesperrt");
    let users = web.get(a.header("location"), Some(&session));
    assert!(
        users.body.contains("data-state=\"disabled\""),
        "{}",
        users.body
    );
    assert!(
        users.body.contains("data-testid=\"flash-ok\""),
        "{}",
        users.body
    );
    let a = post(
        "/admin/users/state",
        &[("user", "anna"), ("action", "enable")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    anna.ok(["list"]);

    // Revoke, then a new token shown once; the agent takes it over.
    let a = post(
        "/admin/devices/revoke",
        &[("user", "anna"), ("device", "testhost")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    refused(&anna, "widerrufen");
    let devices = web.get("/admin/devices", Some(&session));
    assert!(
        devices.body.contains("data-token-state=\"revoked\""),
        "{}",
        devices.body
    );
    assert!(
        devices
            .body
            .contains("data-testid=\"device-addr-anna-testhost\">127.0.0.1<"),
        "{}",
        devices.body
    );
    let a = post(
        "/admin/devices/token",
        &[("user", "anna"), ("device", "testhost")],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let token = a
        .body
        .split("data-testid=\"new-token\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the new token on the page")
        .to_owned();
    anna.ok(["login", "--token", &token]);
    anna.ok(["list"]);

    // Registration: approve from now on; a new user's device waits and shows in the overview.
    let a = post(
        "/admin/devices/registration",
        &[
            ("action", "save"),
            ("mode", "approve"),
            ("enrollment_key", ""),
        ],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let devices = web.get("/admin/devices", Some(&session));
    assert!(
        devices.body.contains("data-mode=\"approve\""),
        "{}",
        devices.body
    );
    let a = post(
        "/admin/devices/registration",
        &[
            ("action", "save"),
            ("mode", "open"),
            ("enrollment_key", "kurz"),
        ],
    );
    assert_eq!(a.status, 400, "a short key: {}", a.body);
    let carl = Agent::new("carl", &server);
    carl.ok(["login"]);
    let overview = web.get("/admin", Some(&session));
    assert!(
        overview
            .body
            .contains("data-testid=\"pending-row-carl-testhost\""),
        "{}",
        overview.body
    );
    assert!(
        overview.body.contains("data-testid=\"overview-space\""),
        "{}",
        overview.body
    );
    assert!(overview.body.contains(" frei von "), "{}", overview.body);

    // Delete: a wrong name changes nothing; the right one removes bert.
    let a = post(
        "/admin/users/delete",
        &[("user", "bert"), ("confirm", "bernd")],
    );
    assert_eq!(a.status, 400, "{}", a.body);
    bert.ok(["list"]);
    let a = post(
        "/admin/users/delete",
        &[("user", "bert"), ("confirm", "bert")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(!bert.run(["list"]).status.success());
    let users = web.get("/admin/users", Some(&session));
    assert!(!users.body.contains("user-row-bert"), "{}", users.body);

    // A verify started on the maintenance page runs as a job; a short one answers with its report,
    // and the page keeps it under the jobs started here.
    let a = post("/admin/maintenance/verify", &[("full", "on")]);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("data-testid=\"maintenance-result\""),
        "{}",
        a.body
    );
    assert!(a.body.contains("Prüfung abgeschlossen"), "{}", a.body);
    let page = web.get("/admin/maintenance", Some(&session));
    assert!(
        page.body.contains("data-testid=\"job-verify\""),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("data-testid=\"job-running\""),
        "{}",
        page.body
    );

    let audit = web.get("/admin/audit", Some(&session));
    for action in [
        "maintenance_started",
        "user_disabled",
        "user_enabled",
        "device_revoked",
        "device_token",
        "setting_changed",
        "user_deleted",
    ] {
        assert!(
            audit.body.contains(action),
            "{action} not in the audit log: {}",
            audit.body
        );
    }
}

/// Refusing a pending registration on the devices page (beside "approve") and through the JSON
/// twin: the registration is gone, its agent is told so in German, the refusal is audited with
/// the admin; another admin's session cannot refuse without the CSRF token, and an active device
/// is not refused.
#[test]
fn the_devices_page_and_the_twin_refuse_a_pending_registration() {
    let server = Server::start();
    let admin_token = create_admin(&server, "root", true).unwrap();
    let web = Web::new(&server);
    let anna = Agent::new("anna", &server);
    anna.ok(["login"]);
    let mut laptop = Agent::new("anna", &server);
    laptop.device = "laptop".into();
    laptop.ok(["login"]);
    let mut tablet = Agent::new("anna", &server);
    tablet.device = "tablet".into();
    tablet.ok(["login"]);
    let session = web.login("root", PW).session().unwrap();

    let devices = web.get("/admin/devices", Some(&session));
    for id in [
        "approve-anna-laptop",
        "refuse-anna-laptop",
        "refuse-anna-tablet",
    ] {
        assert!(
            devices.body.contains(&format!("data-testid=\"{id}\"")),
            "{id}: {}",
            devices.body
        );
    }
    // An active device has no refuse button.
    assert!(
        !devices.body.contains("refuse-anna-testhost"),
        "{}",
        devices.body
    );
    let csrf = csrf_of(&devices);

    // Without the CSRF token nothing happens.
    let a = web.post_form(
        "/admin/devices/refuse",
        Some(&session),
        Some(&web.origin),
        &[("user", "anna"), ("device", "laptop")],
    );
    assert_eq!(a.status, 403, "{}", a.body);
    // An active device is not refused (and stays active).
    let a = web.post_form(
        "/admin/devices/refuse",
        Some(&session),
        Some(&web.origin),
        &[("csrf", &csrf), ("user", "anna"), ("device", "testhost")],
    );
    assert_eq!(a.status, 404, "{}", a.body);
    anna.ok(["list"]);

    let a = web.post_form(
        "/admin/devices/refuse",
        Some(&session),
        Some(&web.origin),
        &[("csrf", &csrf), ("user", "anna"), ("device", "laptop")],
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let devices = web.get(a.header("location"), Some(&session));
    assert!(
        !devices.body.contains("device-row-anna-laptop")
            && devices.body.contains("data-testid=\"flash-ok\"")
            && devices.body.contains("abgelehnt"),
        "{}",
        devices.body
    );
    let out = laptop.run(["list"]);
    let err = asgard_e2e::text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Registrierung dieses Geräts abgelehnt"),
        "{err}"
    );

    // The JSON twin refuses the other one; a second refusal finds nothing.
    let refuse = || {
        web.send(
            web.client
                .post(format!("{}/api/admin/devices/refuse", web.origin))
                .bearer_auth(&admin_token)
                .json(&json!({"user": "anna", "device": "tablet"})),
        )
    };
    let a = refuse();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["action"], "refused", "{}", a.body);
    let a = refuse();
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("wartet keine"),
        "{}",
        a.body
    );
    let out = tablet.run(["list"]);
    assert!(
        asgard_e2e::text(&out.stderr).contains("abgelehnt"),
        "{}",
        asgard_e2e::text(&out.stderr)
    );
    anna.ok(["list"]);

    let audit = web.get("/admin/audit", Some(&session));
    let rows = audit.body.matches("data-action=\"device_refused\"").count();
    assert_eq!(rows, 2, "{}", audit.body);
    assert!(audit.body.contains("device:anna/laptop"), "{}", audit.body);
    assert!(audit.body.contains("device:anna/tablet"), "{}", audit.body);
}

/// The runs page reads the runs through the ops task (as `/api/admin/runs`): filters by user,
/// device and state, pages of 25, the detail of one run with its errors without their paths, and
/// no run shown under another user's or device's name.
#[test]
fn the_runs_page_filters_pages_and_hides_paths() {
    let server = Server::start();
    create_admin(&server, "root", false);
    let web = Web::new(&server);
    let anna = Agent::new("anna", &server);
    anna.ok(["login"]);
    let bert = Agent::new("bert", &server);
    bert.ok(["login"]);
    let report = |agent: &Agent, i: u64, failed: bool| {
        let errors: Vec<String> = if failed {
            vec![format!("unlesbar: /home/anna/geheim-{i}.txt")]
        } else {
            vec![]
        };
        let body = json!({
            "started_us": 1_700_000_000_000_000i64,
            "finished_us": 1_700_000_000_000_100i64,
            "agent_version": "test",
            "exit_code": if failed { 1 } else { 0 },
            "files_seen": i, "files_new": 0, "files_changed": 0, "files_unchanged": i,
            "files_deleted": 0, "files_skipped": 0, "bytes_read": 0, "bytes_sent": 0,
            "bytes_new": 0, "versions_created": 0, "duration_s": 1.0,
            "errors": errors,
        });
        let (status, v) = web.api.post_json("/api/runs", Some(&agent.token()), &body);
        assert_eq!(status, 200, "{v}");
    };
    for i in 0..30 {
        report(&anna, i, i % 6 == 0);
    }
    report(&bert, 99, false);
    let session = web.login("root", PW).session().unwrap();
    let rows = |a: &Answer| a.body.matches("data-testid=\"run-row-").count();
    // The run links of a page (`/admin/runs/USER/DEVICE/ID`), in order.
    let links = |a: &Answer| -> Vec<String> {
        a.body
            .split("<a href=\"/admin/runs/")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(|s| format!("/admin/runs/{s}"))
            .collect()
    };

    let a = web.get("/admin/runs", Some(&session));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(rows(&a), 25, "{}", a.body);
    assert!(a.body.contains(">1 / 2<"), "{}", a.body);
    // Newest first: bert's run leads the first page.
    let first = links(&a);
    assert!(
        first[0].starts_with("/admin/runs/bert/testhost/"),
        "{first:?}"
    );
    let bert_run = first[0].clone();
    let a = web.get("/admin/runs?user=&device=&state=&page=2", Some(&session));
    assert_eq!(rows(&a), 6, "{}", a.body);
    assert!(a.body.contains(">2 / 2<"), "{}", a.body);
    assert!(
        links(&a).iter().all(|l| !first.contains(l)),
        "pages overlap"
    );

    let a = web.get(
        "/admin/runs?user=anna&device=testhost&state=failed",
        Some(&session),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(rows(&a), 5, "{}", a.body);
    assert_eq!(
        a.body.matches("data-state=\"failed\"").count(),
        5,
        "{}",
        a.body
    );
    assert!(!a.body.contains("data-state=\"ok\""), "{}", a.body);
    assert!(
        a.body.contains("<option value=\"failed\" selected"),
        "{}",
        a.body
    );
    let failed = links(&a);
    assert!(
        failed
            .iter()
            .all(|l| l.starts_with("/admin/runs/anna/testhost/")),
        "{failed:?}"
    );
    let a = web.get("/admin/runs?user=bert", Some(&session));
    assert_eq!(links(&a), std::slice::from_ref(&bert_run), "{}", a.body);

    // An unknown name shows no runs and says so; an unknown state is a bad request.
    let a = web.get("/admin/runs?user=niemand", Some(&session));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(rows(&a), 0, "{}", a.body);
    assert!(
        a.body.contains("data-testid=\"flash-error\"") && a.body.contains("niemand"),
        "{}",
        a.body
    );
    let a = web.get("/admin/runs?state=kaputt", Some(&session));
    assert_eq!(a.status, 400, "{}", a.body);

    // The detail: the error without its path; under another user's or device's name: nothing.
    let a = web.get(&failed[0], Some(&session));
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body
            .contains("class=\"state-failed\" data-testid=\"run-state\""),
        "{}",
        a.body
    );
    assert!(a.body.contains("unlesbar: …"), "{}", a.body);
    assert!(
        !a.body.contains("geheim") && !a.body.contains("/home/"),
        "{}",
        a.body
    );
    let id = failed[0].rsplit('/').next().unwrap();
    let bert_id = bert_run.rsplit('/').next().unwrap();
    for path in [
        format!("/admin/runs/bert/testhost/{id}"),
        format!("/admin/runs/anna/laptop/{id}"),
        format!("/admin/runs/anna/testhost/{bert_id}"),
    ] {
        let a = web.get(&path, Some(&session));
        assert_eq!(a.status, 404, "{path}: {}", a.body);
    }
}

/// The *Protokoll* page says what an action did in the reader's language, for actions from the
/// pages, the JSON twin and the command line alike: no Rust `Debug` text, no secret.
#[test]
fn the_audit_log_reads_in_words_of_the_readers_language() {
    let server = Server::start();
    let admin_token = create_admin(&server, "root", true).unwrap();
    let web = Web::new(&server);
    let anna = Agent::new("anna", &server);
    anna.ok(["login"]);
    let session = web.login("root", PW).session().unwrap();
    let post = |path: &str, form: &[(&str, &str)]| {
        let csrf = csrf_of(&web.get("/admin/maintenance", Some(&session)));
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        let a = web.post_form(path, Some(&session), Some(&web.origin), &all);
        assert!(a.status < 400, "{path}: {} {}", a.status, a.body);
    };
    post("/admin/maintenance/gc", &[("dry_run", "on")]);
    post("/admin/maintenance/verify", &[("sample", "5")]);
    post(
        "/admin/users/keep",
        &[("user", "anna"), ("action", "set"), ("versions", "3")],
    );
    post(
        "/admin/devices/registration",
        &[
            ("action", "save"),
            ("mode", "approve"),
            ("enrollment_key", "Streng-Geheimer-Schluessel-1"),
        ],
    );
    // The JSON twin's maintenance endpoint (it used to log the task's Debug text).
    let a = web.send(
        web.client
            .post(format!("{}/api/admin/maintenance/gc", web.origin))
            .bearer_auth(&admin_token)
            .json(&json!({"dry_run": false})),
    );
    assert_eq!(a.status, 200, "{}", a.body);

    let de = web.get("/admin/audit", Some(&session));
    assert_eq!(de.status, 200, "{}", de.body);
    for words in [
        "Wartung gestartet",
        "Speicherbereinigung (Probelauf)",
        "<td class=\"wrap\">Speicherbereinigung</td>",
        "Prüfung (Stichprobe 5 %)",
        "3 Versionen behalten",
        "Registrierung mit Freigabe, neuer Registrierungsschlüssel",
        "Anmeldung",
        "mit Passwort",
    ] {
        assert!(de.body.contains(words), "{words:?} not in: {}", de.body);
    }
    for never in [
        "dry_run",
        "Some(",
        "sample_percent",
        "{&quot;",
        "Streng-Geheimer",
    ] {
        assert!(!de.body.contains(never), "{never:?} in: {}", de.body);
    }
    let en = web.send(
        web.client
            .get(format!("{}/admin/audit", web.origin))
            .header("cookie", format!("asgard_session={session}; lang=en")),
    );
    assert_eq!(en.status, 200, "{}", en.body);
    for words in [
        "Maintenance started",
        "Garbage collection (dry run)",
        "Verify (sample 5 %)",
        "keep 3 versions",
        "registration with approval, new enrollment key",
        "with password",
    ] {
        assert!(en.body.contains(words), "{words:?} not in: {}", en.body);
    }
}

/// *Wartung* after a verify that found damage: the bad chunks by id (with their kind and the
/// total) and the affected versions as counts per user and device, on the page, in the job's
/// report and in the JSON twin, and never a file name or folder. Before the verify: nothing.
#[test]
fn the_maintenance_page_lists_damaged_chunks_and_counts_without_paths() {
    let mut server = Server::start();
    create_admin(&server, "root", false);
    let agent = Agent::new("vera", &server);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("geheimordner");
    std::fs::create_dir_all(&root).unwrap();
    // Small files are one chunk each, whose id is the blake3 of the whole content.
    let flipped = asgard_e2e::random_bytes(6000, 21);
    let lost = asgard_e2e::random_bytes(7000, 22);
    std::fs::write(root.join("tagebuch.bin"), &flipped).unwrap();
    std::fs::write(root.join("steuer.bin"), &lost).unwrap();
    std::fs::write(root.join("heil.txt"), "Grüße\n".repeat(300)).unwrap();
    agent.backup(&root);
    server.stop();
    let flip_hex = asgard_core::ChunkId::of(&flipped).to_hex();
    let lost_hex = asgard_core::ChunkId::of(&lost).to_hex();
    asgard_e2e::damage_chunk(&server.data_dir(), &flip_hex);
    asgard_e2e::lose_chunk(&server.data_dir(), &lost_hex);
    server.restart_stopped();

    let web = Web::new(&server);
    let session = web.login("root", PW).session().unwrap();
    let page = web.get("/admin/maintenance", Some(&session));
    assert!(
        !page.body.contains("data-testid=\"verify-damaged\""),
        "{}",
        page.body
    );
    let csrf = csrf_of(&page);
    let a = web.post_form(
        "/admin/maintenance/verify",
        Some(&session),
        Some(&web.origin),
        &[("csrf", &csrf), ("full", "on")],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let page = web.get("/admin/maintenance", Some(&session));
    for (what, body) in [("answer", &a.body), ("page", &page.body)] {
        for words in [
            "data-testid=\"verify-damaged\"",
            &format!("data-testid=\"damaged-chunk-{flip_hex}\""),
            &format!("data-testid=\"damaged-chunk-{lost_hex}\""),
            "data-testid=\"damaged-total\" data-total=\"2\"",
            "data-testid=\"affected-total\" data-total=\"2\"",
            "data-testid=\"damaged-versions-vera-testhost\">2<",
            "beschädigt",
            "fehlt",
        ] {
            assert!(body.contains(words), "{what}: {words:?} not in {body}");
        }
        for never in ["geheimordner", "tagebuch", "steuer", "heil.txt", "/tmp/"] {
            assert!(!body.contains(never), "{what}: {never:?} in {body}");
        }
    }
    // The job's report (on the page and in the twin) has no paths either.
    let jobs = web.send(
        web.client
            .get(format!("{}/api/admin/jobs", web.origin))
            .header("cookie", format!("asgard_session={session}")),
    );
    assert_eq!(jobs.status, 200, "{}", jobs.body);
    assert!(jobs.body.contains(&flip_hex), "{}", jobs.body);
    assert!(
        !jobs.body.contains("geheimordner") && !jobs.body.contains("tagebuch"),
        "{}",
        jobs.body
    );
    let twin = web.send(
        web.client
            .get(format!("{}/api/admin/verify/damage", web.origin))
            .header("cookie", format!("asgard_session={session}")),
    );
    assert_eq!(twin.status, 200, "{}", twin.body);
    let v = twin.json();
    assert_eq!(v["chunks_total"], 2, "{v}");
    assert_eq!(v["affected_versions"], 2, "{v}");
    assert_eq!(
        v["devices"],
        json!([{"user": "vera", "device": "testhost", "versions": 2}]),
        "{v}"
    );
    let mut kinds: Vec<(String, String)> = v["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    let mut want = vec![
        (flip_hex.clone(), "damaged".to_owned()),
        (lost_hex.clone(), "missing".to_owned()),
    ];
    want.sort();
    assert_eq!(kinds, want);
    assert!(!twin.body.contains("geheimordner"), "{}", twin.body);
}

/// Acceptance 1, the second factor: the password step of an admin with TOTP gives a session that
/// opens only the TOTP page; a wrong code is refused in German; the right code gives a new
/// session id and the first one is dead; a used code does not work twice (replay); a recovery
/// code works once; after 5 wrong codes in a row the second factor is locked (even a right code
/// and an unused recovery code are refused) and the lock is in the audit log.
#[test]
fn the_second_factor_is_required_single_use_and_locks() {
    let server = Server::start();
    create_admin(&server, "root", false);
    create_admin(&server, "zweit", false);
    let out = asgard_e2e::server_admin_ok(
        ["admin", "totp", "root", "--json", "--data-dir"]
            .iter()
            .map(std::ffi::OsString::from)
            .chain([server.data_dir().into_os_string()]),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let totp = totp_rs::Totp::from_url(v["totp"]["uri"].as_str().unwrap()).unwrap();
    let recovery: Vec<String> = v["totp"]["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert!(recovery.len() >= 2, "{v}");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let code_at = |t: u64| totp.generate(t).to_string();
    // A six-digit code valid at no step near now.
    let wrong = || {
        let t = now();
        let valid = [
            code_at(t - 30),
            code_at(t),
            code_at(t + 30),
            code_at(t + 60),
        ];
        ["000000", "111111", "222222"]
            .into_iter()
            .find(|c| !valid.iter().any(|v| v == c))
            .unwrap()
            .to_owned()
    };
    let web = Web::new(&server);
    let password_step = || {
        let a = web.login("root", PW);
        assert_eq!(a.status, 303, "{}", a.body);
        assert_eq!(a.header("location"), "/admin/login/totp");
        a.session().expect("a session for the second step")
    };
    let send_code = |session: &str, code: &str| -> Answer {
        let page = web.get("/admin/login/totp", Some(session));
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = csrf_of(&page);
        web.post_form(
            "/admin/login/totp",
            Some(session),
            Some(&web.origin),
            &[("csrf", &csrf), ("code", code)],
        )
    };
    let refused = |a: &Answer, status: u16, words: &str| {
        assert_eq!(a.status, status, "{}", a.body);
        assert!(a.session().is_none(), "a refused code gave a session");
        assert!(
            a.body.contains("data-testid=\"totp-error\"") && a.body.contains(words),
            "{words:?} not in {}",
            a.body
        );
    };

    // The password step opens the TOTP page only.
    let first = password_step();
    for page in PAGES {
        let a = web.get(page, Some(&first));
        assert_eq!(a.status, 303, "{page}: {}", a.body);
        assert_eq!(a.header("location"), "/admin/login/totp", "{page}");
    }
    for path in API_GET {
        let a = web.get(path, Some(&first));
        assert_eq!(a.status, 401, "{path}: {}", a.body);
    }
    let a = web.post_form(
        "/api/admin/users/keep",
        Some(&first),
        Some(&web.origin),
        &[("user", "x")],
    );
    assert_eq!(a.status, 401, "{}", a.body);

    // A wrong code: refused in German, the session still waits.
    refused(&send_code(&first, &wrong()), 401, "Code falsch.");
    // The right code: a new session id; the first one is dead.
    let used = code_at(now());
    let a = send_code(&first, &used);
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), "/admin");
    let full = a.session().expect("a new session");
    assert_ne!(full, first);
    assert_eq!(web.get("/admin", Some(&full)).status, 200);
    let a = web.get("/admin", Some(&first));
    assert_eq!((a.status, a.header("location")), (303, "/admin/login"));
    assert_eq!(web.get("/api/admin/stats", Some(&first)).status, 401);

    // Replay: the same code in a new login is refused.
    let second = password_step();
    refused(&send_code(&second, &used), 401, "Code falsch.");
    // A recovery code works once.
    let a = send_code(&second, &recovery[0]);
    assert_eq!(a.status, 303, "{}", a.body);
    let by_recovery = a.session().unwrap();
    assert_eq!(web.get("/admin/users", Some(&by_recovery)).status, 200);
    let third = password_step();
    // Wrong code 1 of 5 (the success before reset the count).
    refused(&send_code(&third, &recovery[0]), 401, "Code falsch.");
    for _ in 2..5 {
        refused(&send_code(&third, &wrong()), 401, "Code falsch.");
    }
    // The fifth locks; from then on even a right code (of the next step, never used) and an
    // unused recovery code are refused.
    refused(&send_code(&third, &wrong()), 429, "gesperrt");
    refused(&send_code(&third, &code_at(now() + 30)), 429, "gesperrt");
    refused(&send_code(&third, &recovery[1]), 429, "gesperrt");
    let fourth = password_step();
    refused(&send_code(&fourth, &code_at(now() + 30)), 429, "gesperrt");
    assert_eq!(
        web.get("/admin", Some(&fourth)).header("location"),
        "/admin/login/totp"
    );

    // The audit log has the failures, the recovery code and the lock.
    let other = web.login("zweit", PW).session().unwrap();
    let audit = web.get("/admin/audit", Some(&other));
    for action in ["totp_failed", "recovery_used", "totp_locked", "login"] {
        assert!(
            audit.body.contains(&format!("data-action=\"{action}\"")),
            "{action} not in {}",
            audit.body
        );
    }
    assert!(
        audit
            .body
            .contains("mit Passwort und Wiederherstellungscode"),
        "{}",
        audit.body
    );
}
