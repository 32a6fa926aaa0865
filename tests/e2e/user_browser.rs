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

/// The four contents of the file whose timeline the story opens, oldest first.
const NOTES: [&[u8]; 4] = [
    b"Erste Fassung der Notizen.\n",
    b"Zweite Fassung: etwas l\xc3\xa4nger als die erste.\n",
    b"Dritte Fassung, die am Tag nach der Besprechung kam.\n",
    b"Vierte und letzte Fassung, nach der alles schiefging.\n",
];
const NOTES_NAME: &str = "Notizen über Ärger.txt";
const PLAN: [&[u8]; 2] = [b"Plan A\n", b"Plan B, ganz anders\n"];
const GONE: &[u8] = b"Diese Datei wurde vor der dritten Sicherung gel\xc3\xb6scht.\n";

/// Issue 14, acceptance 2: the whole restore story in a real browser, first on the desktop,
/// then again on a 390 px phone. Four backups one second apart: `Notizen über Ärger.txt` in
/// every one (four versions), `plan.txt` changed in the third, `alt.txt` deleted before the
/// third. The browser opens the link `asgard-agent web` printed, picks the device, walks into
/// `Bücher`, opens the notes' timeline and downloads the oldest version; sets "Stand vom" to the
/// second backup and downloads the folder as a zip, which holds exactly that state; finds
/// `alt.txt` in "Gelöschte Dateien" and downloads it. Every download is compared byte for byte.
#[test]
fn the_restore_story_in_the_browser_on_desktop_and_phone() {
    let Some(b) = Browser::start() else { return };
    let server = Server::start();
    let web = UserWeb::new(&server);
    let mut anna = Agent::new("anna", &server);
    anna.device = "annas-laptop".into();
    let files = tempfile::tempdir().unwrap();
    let top = files.path().canonicalize().unwrap();
    let folder = top.join("Bücher");
    std::fs::create_dir(&folder).unwrap();
    for (i, notes) in NOTES.iter().enumerate() {
        std::fs::write(folder.join(NOTES_NAME), notes).unwrap();
        std::fs::write(folder.join("plan.txt"), PLAN[usize::from(i >= 2)]).unwrap();
        if i < 2 {
            std::fs::write(folder.join("alt.txt"), GONE).unwrap();
        } else if folder.join("alt.txt").exists() {
            std::fs::remove_file(folder.join("alt.txt")).unwrap();
        }
        anna.backup(&top);
        // "Stand vom" has a resolution of one second: keep the backups apart.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }

    story(&b, &web, &anna, &top, "story");
    b.set_viewport(browser::PHONE, true);
    story(&b, &web, &anna, &top, "story-phone");
}

/// One walk through the story in the browser's current viewport; `name` prefixes the
/// screenshots. Each page is also checked not to scroll sideways on a phone.
fn story(b: &Browser, web: &UserWeb, anna: &Agent, top: &std::path::Path, name: &str) {
    let shot = |page: &str| {
        let width = b.phone_page_width();
        assert!(
            width <= u64::from(browser::PHONE.0),
            "{page}: {width} px on a phone"
        );
        b.screenshot(&format!("{name}-{page}"));
    };

    // The link, opened in the browser: the start page with the device.
    let link = web.link(anna);
    b.goto(&link);
    b.wait_for(&tid("my-devices"));
    shot("start");
    b.click(&tid("browse-annas-laptop"));
    b.wait_for(&tid("breadcrumbs"));
    shot("device");

    // Down the tree to the folder with the umlaut, one click per folder.
    for part in top.join("Bücher").components().skip(1) {
        let part = part.as_os_str().to_str().unwrap();
        b.click(&tid(&format!("open-{part}")));
        b.wait_for(&tid("breadcrumbs"));
    }
    assert!(
        b.text(&tid("breadcrumbs")).ends_with("Bücher"),
        "{}",
        b.text(&tid("breadcrumbs"))
    );
    for entry in [NOTES_NAME, "plan.txt"] {
        assert!(
            b.exists(&tid(&format!("entry-{entry}"))),
            "{entry} not listed"
        );
    }
    assert!(
        !b.exists(&tid("entry-alt.txt")),
        "a deleted file is listed as of now"
    );
    shot("folder");

    // The notes' timeline: four versions; the oldest one downloads with its name.
    b.click(&tid(&format!("versions-{NOTES_NAME}")));
    b.wait_for(&tid("version-path"));
    let rows = b.script(
        "return Array.from(document.querySelectorAll('[data-testid^=\"version-time-\"]'))\
         .map(e => [e.dataset.testid.slice('version-time-'.length), e.innerText])",
    );
    let mut rows: Vec<(String, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[1].as_str().unwrap().to_owned(),
                r[0].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(rows.len(), 4, "four versions on the timeline: {rows:?}");
    shot("timeline");
    b.click(&tid(&format!("download-{}", rows[0].1)));
    let (file, bytes) = b.take_download();
    assert_eq!(file, NOTES_NAME);
    assert_eq!(bytes, NOTES[0], "the oldest version's bytes");

    // "Stand vom" the second backup (the second version's second, which the picker includes
    // whole): the folder as it was then, downloaded as a zip.
    b.click(&tid("back-to-folder"));
    b.wait_for(&tid("at-form"));
    let at = rows[1].0.replace(' ', "T");
    b.script(&format!(
        "document.querySelector('[data-testid=\"at-input\"]').value = '{at}'"
    ));
    b.click(&tid("at-submit"));
    b.wait_for(&tid("at-shown"));
    assert!(
        b.exists(&tid("entry-alt.txt")),
        "alt.txt is missing at {at}"
    );
    shot("folder-at");
    b.click(&tid("zip-folder"));
    let (file, bytes) = b.take_download();
    assert!(file.ends_with(".zip"), "{file}");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a complete zip");
    let mut got = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().rsplit('/').next().unwrap().to_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        assert!(got.insert(name.clone(), data).is_none(), "{name} twice");
    }
    let want: std::collections::BTreeMap<String, Vec<u8>> = [
        (NOTES_NAME, NOTES[1]),
        ("plan.txt", PLAN[0]),
        ("alt.txt", GONE),
    ]
    .into_iter()
    .map(|(n, d)| (n.to_owned(), d.to_vec()))
    .collect();
    assert_eq!(got, want, "the zip of the folder as of {at}");

    // The deleted file: listed with its last version, which downloads.
    b.click(&tid("nav-deleted"));
    b.wait_for(&tid("deleted-form"));
    let hits = b.count("[data-testid^=\"hit-path-\"]");
    let i = (0..hits)
        .find(|i| b.text(&tid(&format!("hit-path-{i}"))).ends_with("alt.txt"))
        .unwrap_or_else(|| panic!("alt.txt not among the deleted files:\n{}", b.visible_text()));
    shot("deleted");
    b.click(&tid(&format!("hit-download-{i}")));
    let (file, bytes) = b.take_download();
    assert_eq!(file, "alt.txt");
    assert_eq!(bytes, GONE);
}
