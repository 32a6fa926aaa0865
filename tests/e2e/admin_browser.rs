//! Issue 13 in a real browser (headless Chromium over WebDriver, `asgard_e2e::browser`):
//! acceptance 2, an admin made on the CLI runs the console from login to logout against real
//! agents, and the browser half of acceptance 3, every page reads as German or as English
//! without a message key and, in German, without an English word. Every page visited is saved as
//! a screenshot under `target/screenshots/` (desktop and phone); any console error fails.

use std::collections::BTreeSet;
use std::time::Duration;

use asgard_e2e::browser;
use asgard_e2e::console::base;
use asgard_e2e::*;

const PASSWORD: &str = "Korrekt-Pferd-Batterie-42";

/// An admin command on the running server's data dir (through its admin channel); stdout.
fn cli(server: &Server, args: &[&str]) -> String {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.push("--data-dir".into());
    all.push(server.data_dir().display().to_string());
    text(&server_admin_ok(&all).stdout)
}

/// A folder with a few files to back up.
fn some_files(seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3u64 {
        std::fs::write(
            dir.path().join(format!("datei-{i}.bin")),
            random_bytes(20_000, seed * 10 + i),
        )
        .unwrap();
    }
    dir
}

/// Opens a page through its link in the navigation bar and checks that it is the page asked for.
fn open_nav(b: &Browser, nav: &str, path: &str) {
    b.click(&tid(nav));
    b.wait_for(&tid("page-title"));
    let url = b.url();
    assert!(
        url.trim_end_matches('/').ends_with(path),
        "{nav} led to {url}"
    );
}

/// A page the admin sees: its screenshot; it fits a phone's width; and its text reads as German
/// (no key, no placeholder, no English word), whatever state it shows.
fn seen(b: &Browser, name: &str, keys: &BTreeSet<String>) {
    b.screenshot(name);
    let width = b.phone_page_width();
    assert!(
        width <= u64::from(browser::PHONE.0),
        "{name}: the page is {width} px wide on a {} px phone",
        browser::PHONE.0
    );
    let text = b.visible_text();
    let faults = language_faults(&text, "de", keys);
    assert!(faults.is_empty(), "{name}: {faults:?}\n{text}");
}

/// Acceptance 2: login with TOTP, approve a pending device (its next backup succeeds), revoke
/// another device's token (its next backup fails with the German message), change a user's
/// `keep_versions`, start a verify and see its result, find a device's last run with its error,
/// log out; with a screenshot of every page.
#[test]
fn admin_runs_the_console_in_a_real_browser() {
    let keys = catalogue_keys();
    let Some(b) = Browser::start() else { return };
    let server = Server::start_with_config(Some("registration: approve\n"));
    let files = some_files(1);

    // carol's laptop: approved on the CLI, one good backup, then a failed run (a missing root)
    // that the agent reports with its error.
    let mut carol = Agent::new("carol", &server);
    carol.device = "laptop".into();
    let _ = carol.run(["login"]);
    cli(&server, &["device", "approve", "carol", "laptop"]);
    carol.backup(files.path());
    let missing = files.path().join("gibt-es-nicht");
    let (code, _, _) = carol.backup_any(&[&missing]);
    assert_ne!(code, 0, "a backup of a missing folder must fail");

    // bob's first device waits for approval: its backup is refused.
    let bob = Agent::new("bob", &server);
    let out = bob.run(["login"]);
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(shown.contains("wartet auf die Freigabe"), "{shown}");
    let out = bob.run([std::ffi::OsStr::new("backup"), files.path().as_os_str()]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a pending device must not back up"
    );

    // The admin, made on the CLI, with a second factor.
    let mut admin = AdminAccount::create(&server, "root", PASSWORD);
    admin.enable_totp(&server);

    // Login: name and password, then the TOTP code of the authenticator app.
    b.goto(&format!("{}admin", base(&server)));
    b.wait_for(&tid("login-form"));
    seen(&b, "login", &keys);
    b.fill(&tid("login-name"), &admin.name);
    b.fill(&tid("login-password"), PASSWORD);
    b.click(&tid("login-submit"));
    b.wait_for(&tid("totp-form"));
    seen(&b, "login-totp", &keys);
    // A wrong code (the right one, off by one) is refused, in German, and the step stays.
    let right: u32 = admin.totp_now().parse().unwrap();
    b.fill(
        &tid("totp-code"),
        &format!("{:06}", (right + 1) % 1_000_000),
    );
    b.click_unchecked(&tid("totp-submit"));
    b.wait_for(&tid("totp-error"));
    // The refusal's status (401) is the one console entry.
    let errors = b.console_errors();
    assert!(
        errors.len() == 1 && errors[0].contains("/admin/login/totp") && errors[0].contains("401"),
        "{errors:?}"
    );
    assert!(!b.exists(&tid("nav")), "a wrong code logged in");
    seen(&b, "login-totp-wrong", &keys);
    b.fill(&tid("totp-code"), &admin.totp_now());
    b.click(&tid("totp-submit"));
    b.wait_for(&tid("overview"));
    assert_eq!(b.text(&tid("admin-name")), "root");
    assert_eq!(b.page_lang(), "de");
    // The session cookie as the browser keeps it: out of reach of scripts, HTTPS only, never
    // sent along from another site.
    let cookies = b.cdp("Network.getCookies", serde_json::json!({}));
    let session = cookies["cookies"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "asgard_session"))
        .unwrap_or_else(|| panic!("no session cookie: {cookies}"))
        .clone();
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["secure"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    let value = session["value"].as_str().unwrap();
    assert!(value.len() >= 32, "a session id of 256 bits: {session}");
    let script_sees = b.script("return document.cookie");
    assert!(
        !script_sees.as_str().unwrap_or_default().contains(value),
        "a script reads the session cookie: {script_sees}"
    );
    assert!(
        b.text(&tid("overview-pending")).contains('1'),
        "one registration is pending: {}",
        b.text(&tid("overview-pending"))
    );
    seen(&b, "overview", &keys);

    // Geräte und Token: approve bob's device; his next backup succeeds.
    open_nav(&b, "nav-devices", "/admin/devices");
    let bob_state = tid("device-state-bob-testhost");
    assert_eq!(b.attr(&bob_state, "data-state").as_deref(), Some("pending"));
    seen(&b, "devices", &keys);
    b.click(&tid("approve-bob-testhost"));
    b.wait_for(&tid("flash-ok"));
    assert_eq!(b.attr(&bob_state, "data-state").as_deref(), Some("ok"));
    let summary = bob.backup(files.path());
    assert_eq!(num(&summary, "files_new"), 3, "{summary}");

    // Revoke carol's token: the laptop is refused from its next request on, in German.
    let carol_state = tid("device-state-carol-laptop");
    assert_eq!(b.attr(&carol_state, "data-state").as_deref(), Some("ok"));
    b.click(&tid("reset-carol-laptop"));
    b.wait_for(&tid("flash-ok"));
    seen(&b, "devices-revoked", &keys);
    b.goto(&format!("{}admin/devices", base(&server)));
    assert_eq!(
        b.attr(&carol_state, "data-state").as_deref(),
        Some("revoked")
    );
    let out = carol.run([std::ffi::OsStr::new("backup"), files.path().as_os_str()]);
    let stderr = text(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a revoked device must not back up"
    );
    // "…hat den Zugang dieses Geräts zum Server widerrufen…" (the refusal's own code), or the
    // general German refusal of a token the server does not know any more.
    assert!(
        stderr.contains("widerrufen") || stderr.contains("Der Server hat die Anmeldung abgelehnt"),
        "no German refusal: {stderr}"
    );

    // Benutzer: carol keeps 2 versions; the server holds it (the CLI reads it back).
    open_nav(&b, "nav-users", "/admin/users");
    seen(&b, "users", &keys);
    b.fill(&tid("keep-input-carol"), "2");
    b.click(&tid("keep-set-carol"));
    b.wait_for(&tid("flash-ok"));
    assert_eq!(b.text(&tid("keep-carol")).trim(), "2");
    let users = cli(&server, &["user", "list"]);
    assert!(
        users
            .lines()
            .any(|l| l.starts_with("carol\t") && l.ends_with("keep_versions 2")),
        "{users}"
    );
    // bob's own setting, set and cleared again: the configuration's default holds for him.
    b.fill(&tid("keep-input-bob"), "7");
    b.click(&tid("keep-set-bob"));
    assert_eq!(b.text(&tid("keep-bob")).trim(), "7");
    b.click(&tid("keep-clear-bob"));
    b.wait_for(&tid("flash-ok"));
    assert_ne!(b.text(&tid("keep-bob")).trim(), "7");
    let users = cli(&server, &["user", "list"]);
    let bob_line = users
        .lines()
        .find(|l| l.starts_with("bob\t"))
        .unwrap_or_default();
    assert!(bob_line.ends_with("(Standard)"), "{users}");
    seen(&b, "users-kept", &keys);

    // Wartung: a full verify, and its result on the page.
    open_nav(&b, "nav-maintenance", "/admin/maintenance");
    seen(&b, "maintenance", &keys);
    b.wait_for(&tid("verify-full"));
    if b.script("return document.querySelector('[data-testid=\"verify-full\"]').checked") != true {
        b.click(&tid("verify-full"));
    }
    b.click(&tid("verify-start"));
    b.wait_until("the verify's result shows", Duration::from_secs(60), |b| {
        if b.exists(&tid("maintenance-result")) {
            return true;
        }
        b.reload();
        b.exists(&format!("pre{}", tid("last-verify")))
    });
    let shown = if b.exists(&tid("maintenance-result")) {
        b.text(&tid("maintenance-result"))
    } else {
        b.text(&tid("last-verify"))
    };
    assert!(
        shown.chars().any(|c| c.is_ascii_digit()),
        "no verify report: {shown}"
    );
    assert!(
        !b.exists(&tid("verify-damaged")),
        "no chunk is damaged: {shown}"
    );
    seen(&b, "maintenance-verified", &keys);

    // Läufe: carol's laptop's last run, failed, with its error.
    open_nav(&b, "nav-runs", "/admin/runs");
    seen(&b, "runs", &keys);
    b.fill(&tid("runs-filter-user"), "carol");
    b.fill(&tid("runs-filter-device"), "laptop");
    b.select(&tid("runs-filter-state"), "failed");
    b.click(&tid("runs-filter-submit"));
    let link = "[data-testid^=\"run-link-\"]";
    assert_eq!(b.count(link), 1, "one failed run of carol's laptop");
    b.click(link);
    b.wait_for(&tid("run-detail"));
    assert_eq!(
        b.attr(&tid("run-state"), "class").as_deref(),
        Some("state-failed")
    );
    let errors = b.text(&tid("run-errors"));
    assert!(
        b.count(&tid("run-error")) >= 1 && !errors.trim().is_empty(),
        "no error shown"
    );
    // The console shows no file names (privacy), not even of the missing root.
    assert!(!b.visible_text().contains("gibt-es-nicht"), "{errors}");
    seen(&b, "run-detail", &keys);

    // Protokoll: the approve and the revoke are there.
    open_nav(&b, "nav-audit", "/admin/audit");
    let audit = b.text(&tid("audit-table"));
    assert!(audit.contains("bob") && audit.contains("carol"), "{audit}");
    seen(&b, "audit", &keys);

    // Logout: back at the login, and the console is closed to this browser.
    b.click(&tid("nav-logout"));
    b.wait_for(&tid("login-form"));
    b.goto(&format!("{}admin/devices", base(&server)));
    b.wait_for(&tid("login-form"));
    assert!(!b.exists(&tid("nav")));
    // The old session is dead on the server, not only forgotten by the browser: set its cookie
    // again, and the console still asks for a login.
    b.cdp(
        "Network.setCookie",
        serde_json::json!({"name": "asgard_session", "value": value,
            "url": base(&server), "secure": true, "httpOnly": true, "sameSite": "Strict"}),
    );
    let set = b.cdp("Network.getCookies", serde_json::json!({}));
    assert!(
        set["cookies"]
            .as_array()
            .is_some_and(|all| all.iter().any(|c| c["value"] == value)),
        "the old cookie is not set again: {set}"
    );
    b.goto(&format!("{}admin/devices", base(&server)));
    b.wait_for(&tid("login-form"));
    assert!(!b.exists(&tid("devices-table")));
    seen(&b, "logged-out", &keys);
}

/// The brightness (0–255) of a CSS `rgb(r, g, b)` colour.
fn brightness(css: &str) -> u32 {
    let n: Vec<u32> = css
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(n.len() >= 3, "no rgb colour: {css}");
    (n[0] * 299 + n[1] * 587 + n[2] * 114) / 1000
}

/// The theme follows the browser: the same page is light by default and dark when the browser
/// prefers dark (emulated through CDP), text readable on both.
#[test]
fn the_console_follows_the_browsers_colour_scheme() {
    let Some(b) = Browser::start() else { return };
    let server = Server::start();
    let admin = AdminAccount::create(&server, "farben", PASSWORD);
    admin.login(&b, &server);
    let colours = |b: &Browser| {
        let v = b.script(
            "const s = getComputedStyle(document.body); return [s.backgroundColor, s.color];",
        );
        let get = |i: usize| v[i].as_str().unwrap_or_default().to_owned();
        (brightness(&get(0)), brightness(&get(1)))
    };
    let (light_bg, light_fg) = colours(&b);
    assert!(
        light_bg > 180 && light_fg < 100,
        "light theme: {light_bg}/{light_fg}"
    );
    b.cdp(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    b.reload();
    let (dark_bg, dark_fg) = colours(&b);
    assert!(
        dark_bg < 80 && dark_fg > 180,
        "dark theme: {dark_bg}/{dark_fg}"
    );
    b.screenshot("overview-dark");
}

/// The admin pages every language check reads, by their navigation testid.
const PAGES: [(&str, &str); 6] = [
    ("nav-overview", "/admin"),
    ("nav-users", "/admin/users"),
    ("nav-devices", "/admin/devices"),
    ("nav-runs", "/admin/runs"),
    ("nav-maintenance", "/admin/maintenance"),
    ("nav-audit", "/admin/audit"),
];

/// English words that betray an untranslated string on a German page (whole words).
const ENGLISH: &[&str] = &[
    "Overview",
    "Users",
    "User",
    "Devices",
    "Device",
    "Runs",
    "Maintenance",
    "Audit",
    "Logout",
    "Log out",
    "Settings",
    "Error",
    "Errors",
    "Never",
    "Pending",
    "Approve",
    "Revoke",
    "Revoked",
    "Active",
    "Failed",
    "Warnings",
    "Last",
    "Save",
    "Delete",
    "Enable",
    "Disable",
    "Password",
    "Size",
    "Files",
    "Skipped",
    "Duration",
    "Received",
    "State",
    "Actions",
    "Time",
    "Object",
    "Previous",
    "Next",
    "Page",
    "of",
    "the",
    "and",
    "with",
    "none",
];

/// The message keys of the console's catalogue (`asgard-server/locales/*/admin.ftl`).
fn catalogue_keys() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../asgard-server/locales");
    let mut keys = BTreeSet::new();
    for lang in ["de", "en"] {
        let text = std::fs::read_to_string(dir.join(lang).join("admin.ftl")).unwrap();
        for line in text.lines() {
            if let Some((k, _)) = line.split_once(" =")
                && !k.starts_with('#')
                && !k.is_empty()
                && !k.starts_with(' ')
            {
                keys.insert(k.trim().to_owned());
            }
        }
    }
    assert!(keys.len() > 20, "catalogue not found: {keys:?}");
    keys
}

/// The words of `text` (letters, digits, `-`, `_`, `$`), for whole-word checks.
fn words(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// What is wrong with the visible text of a page in `lang`: placeholders, message keys and, in
/// German, English words.
fn language_faults(text: &str, lang: &str, keys: &BTreeSet<String>) -> Vec<String> {
    let mut faults = Vec::new();
    for pat in ["{ $", "{$", "}}"] {
        if text.contains(pat) {
            faults.push(format!("placeholder {pat:?}"));
        }
    }
    let ws = words(text);
    // A missing message shows as its key. Keys with a `-` are never words of either language;
    // one-word keys (`approve`, `never`) would be English words on a German page.
    for k in keys {
        if (k.contains('-') || lang == "de") && ws.contains(k.as_str()) {
            faults.push(format!("message key {k:?}"));
        }
    }
    if lang == "de" {
        for w in ENGLISH {
            let hit = if w.contains(' ') {
                text.contains(w)
            } else {
                ws.contains(w)
            };
            if hit {
                faults.push(format!("English word {w:?}"));
            }
        }
    }
    faults
}

/// Acceptance 3, browser half: every admin page (and the login) in German, then switched to
/// English with the page's language control, shows no message key and no placeholder; the
/// German pages show none of a list of English words. The checker itself is shown to catch a
/// key and an English word.
#[test]
fn every_admin_page_reads_in_german_and_in_english() {
    let keys = catalogue_keys();
    // The check can fail.
    assert!(!language_faults("Übersicht nav-users Geräte", "de", &keys).is_empty());
    assert!(!language_faults("Übersicht Devices", "de", &keys).is_empty());
    assert!(!language_faults("Hallo { $user }", "en", &keys).is_empty());
    assert!(language_faults("Übersicht Geräte", "de", &keys).is_empty());

    let Some(b) = Browser::start() else { return };
    let server = Server::start();
    // Something on every page: a user with a device and a run.
    let alice = Agent::new("alice", &server);
    let files = some_files(2);
    alice.backup(files.path());
    let admin = AdminAccount::create(&server, "sprachen", PASSWORD);

    // The login page, in German, then in English through its own language control.
    b.goto(&format!("{}admin/login", base(&server)));
    for lang in ["de", "en"] {
        if lang == "en" {
            b.click(&tid("lang-en"));
            b.wait_for(&tid("login-form"));
        }
        assert_eq!(b.page_lang(), lang, "login page");
        let login = b.visible_text();
        let faults = language_faults(&login, lang, &keys);
        assert!(
            faults.is_empty(),
            "login page ({lang}): {faults:?}\n{login}"
        );
    }
    b.click(&tid("lang-de"));
    b.wait_for(&tid("login-form"));
    assert_eq!(b.page_lang(), "de");
    admin.login(&b, &server);

    for lang in ["de", "en"] {
        for (nav, path) in PAGES {
            open_nav(&b, nav, path);
            if nav == "nav-overview" && lang == "en" {
                b.screenshot("overview-en");
            }
            assert_eq!(b.page_lang(), lang, "{path}");
            let text = b.visible_text();
            let faults = language_faults(&text, lang, &keys);
            assert!(faults.is_empty(), "{path} ({lang}): {faults:?}\n{text}");
            let width = b.phone_page_width();
            assert!(
                width <= u64::from(browser::PHONE.0),
                "{path} ({lang}) is {width} px wide on a phone"
            );
        }
        // A run's own page.
        open_nav(&b, "nav-runs", "/admin/runs");
        b.click("[data-testid^=\"run-link-\"]");
        b.wait_for(&tid("run-detail"));
        assert_eq!(b.page_lang(), lang, "run detail");
        let text = b.visible_text();
        let faults = language_faults(&text, lang, &keys);
        assert!(faults.is_empty(), "run detail ({lang}): {faults:?}\n{text}");
        open_nav(&b, "nav-audit", "/admin/audit");
        if lang == "de" {
            // The page's own language control, on the last page read.
            b.click(&tid("lang-en"));
            b.wait_for(&tid("nav"));
            assert_eq!(b.page_lang(), "en");
            assert!(b.url().ends_with("/admin/audit"), "{}", b.url());
        }
    }
}
