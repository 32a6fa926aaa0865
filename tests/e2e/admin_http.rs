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
const FORMS: [&str; 7] = [
    "/admin/logout",
    "/admin/users/keep",
    "/admin/devices/approve",
    "/admin/devices/reset",
    "/admin/maintenance/gc",
    "/admin/maintenance/verify",
    "/admin/maintenance/db-backup",
];

const API_GET: [&str; 3] = ["/api/admin/stats", "/api/admin/users", "/api/admin/devices"];
const API_POST: [&str; 6] = [
    "/api/admin/users/keep",
    "/api/admin/devices/approve",
    "/api/admin/devices/reset",
    "/api/admin/maintenance/gc",
    "/api/admin/maintenance/verify",
    "/api/admin/maintenance/db-backup",
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
