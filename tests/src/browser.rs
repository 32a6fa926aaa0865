//! A real headless Chromium (Debian's `chromium`), driven over WebDriver by Debian's
//! `chromedriver`, which this harness starts itself on an ephemeral port of 127.0.0.1 for each
//! [`Browser`] and stops when it is dropped: no service to start beforehand, no traffic beyond
//! loopback (the background-networking switches keep Chromium from calling home).
//!
//! Every browser has a fresh profile in a temp folder, accepts the server's self-signed
//! certificate and records the console: every action that loads or changes a page ([`goto`],
//! [`click`], [`screenshot`], ...) reads the browser log and panics on any console error (a
//! failed request, a script error, a blocked resource under the Content-Security-Policy), naming
//! the page. Waits are bounded ([`WAIT`]); a missing element panics with the selector and the page.
//!
//! When Chromium or chromedriver is not installed, [`Browser::start`] prints a loud skip message
//! and returns `None` (the test then passes without a browser), unless `ASGARD_REQUIRE_BROWSER` is
//! set (`.ci/run` sets it): then it panics, so CI can never skip silently.
//!
//! [`goto`]: Browser::goto
//! [`click`]: Browser::click
//! [`screenshot`]: Browser::screenshot

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::build_dir;

/// The longest any wait of the harness lasts (an element to appear, a condition to hold).
pub const WAIT: Duration = Duration::from_secs(20);

/// The desktop viewport of [`Browser::screenshot`] (and of every page until then), CSS pixels.
pub const DESKTOP: (u32, u32) = (1280, 900);
/// The phone viewport of [`Browser::screenshot`], CSS pixels, emulated as a mobile device (so a
/// page without `<meta name="viewport">` renders 980 px wide and shrunk, as on a real phone).
pub const PHONE: (u32, u32) = (390, 844);

/// The CSS selector of the element with `data-testid="id"`.
pub fn tid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// One headless Chromium with its own chromedriver and a fresh profile; both stop when dropped.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    profile: TempDir,
    /// The viewport set last ([`Browser::set_viewport`]), to which [`Browser::screenshot`] and
    /// [`Browser::phone_page_width`] return.
    viewport: std::cell::Cell<((u32, u32), bool)>,
}

/// Where Chromium and chromedriver are: `ASGARD_CHROMIUM` / `ASGARD_CHROMEDRIVER`, else on the
/// PATH (`chromium`, `chromedriver`; Debian puts both in /usr/bin).
fn programs() -> Option<(PathBuf, PathBuf)> {
    let find = |var: &str, names: &[&str]| -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(var) {
            return Some(PathBuf::from(p)).filter(|p| p.is_file());
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
    };
    let chromium = find("ASGARD_CHROMIUM", &["chromium", "chromium-browser"])?;
    let driver = find("ASGARD_CHROMEDRIVER", &["chromedriver"])?;
    Some((chromium, driver))
}

/// The browser log of the session (chromedriver's `goog:loggingPrefs` log endpoint, which
/// returns the entries since the last call and forgets them).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp(&'static str, Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.0, "params": self.1});
        (http::Method::POST, Some(body.to_string()))
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or returns `None` after a loud message when
    /// they are not installed and `ASGARD_REQUIRE_BROWSER` is not set. Panics when they are
    /// installed but do not start: a broken browser is a failure, not a skip.
    pub fn start() -> Option<Browser> {
        let Some((chromium, driver)) = programs() else {
            let required =
                std::env::var_os("ASGARD_REQUIRE_BROWSER").is_some_and(|v| !v.is_empty());
            assert!(
                !required,
                "ASGARD_REQUIRE_BROWSER is set, but chromium or chromedriver is not installed \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! SKIPPED BROWSER TEST: chromium / chromedriver not installed.       !!!\n\
                 !!! apt-get install chromium chromium-driver, or set                  !!!\n\
                 !!! ASGARD_REQUIRE_BROWSER=1 to make this a failure (CI does).        !!!\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            return None;
        };
        Some(Self::start_with(&chromium, &driver))
    }

    fn start_with(chromium: &Path, driver: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (driver, port) = spawn_driver(driver, profile.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut browser = Browser {
            rt,
            client: None,
            driver,
            profile,
            viewport: std::cell::Cell::new((DESKTOP, false)),
        };
        let user_data = browser.profile.path().join("chromium");
        let downloads = browser.downloads_dir();
        std::fs::create_dir_all(&downloads).unwrap();
        let caps = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    format!("--user-data-dir={}", user_data.display()),
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-quic",
                    "--disable-extensions",
                    "--lang=de-DE",
                ],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                },
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let caps: Capabilities = caps;
        let url = format!("http://127.0.0.1:{port}");
        let client = browser.rt.block_on(async {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
        });
        browser.client =
            Some(client.unwrap_or_else(|e| {
                panic!("chromedriver on {url} started no Chromium session: {e}")
            }));
        browser.set_viewport(DESKTOP, false);
        // Downloads land in the profile's download folder without asking (headless Chromium
        // refuses them otherwise).
        browser.cdp(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": downloads}),
        );
        browser
    }

    /// The folder the browser saves downloads in (inside its temp profile).
    pub fn downloads_dir(&self) -> PathBuf {
        self.profile.path().join("downloads")
    }

    /// Waits (at most [`WAIT`]) for the one download that [`Browser::click`] on a download
    /// link started to complete, moves it out of the download folder (which is empty again
    /// afterwards) and returns its file name, as the browser chose it from the answer's
    /// `Content-Disposition`, and its bytes. Panics when none completes or more than one file is
    /// there.
    pub fn take_download(&self) -> (String, Vec<u8>) {
        let dir = self.downloads_dir();
        let start = Instant::now();
        let mut last_size = None;
        loop {
            let names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            let done = names.len() == 1 && !names[0].ends_with(".crdownload");
            if done {
                let path = dir.join(&names[0]);
                let size = std::fs::metadata(&path).unwrap().len();
                // Complete and no longer growing (Chromium renames the .crdownload at the end).
                if last_size == Some(size) {
                    let bytes = std::fs::read(&path).unwrap();
                    std::fs::remove_file(&path).unwrap();
                    return (names[0].clone(), bytes);
                }
                last_size = Some(size);
            }
            assert!(
                names.len() <= 1,
                "browser: several downloads at once: {names:?}"
            );
            if start.elapsed() > WAIT {
                panic!(
                    "browser: no completed download within {WAIT:?} (folder holds {names:?}) on {}",
                    self.url()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("browser session")
    }

    fn run<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> T {
        self.rt
            .block_on(fut)
            .unwrap_or_else(|e| panic!("browser: {what} failed: {e}"))
    }

    /// Opens `url` and waits until it has loaded; panics on a console error.
    pub fn goto(&self, url: &str) {
        self.goto_unchecked(url);
        self.check_console();
    }

    /// Opens `url` and waits until it has loaded, leaving the console to the caller
    /// ([`Browser::console_errors`]).
    pub fn goto_unchecked(&self, url: &str) {
        self.run(&format!("open {url}"), self.client().goto(url));
    }

    /// The address of the page shown now.
    pub fn url(&self) -> String {
        self.run("current url", self.client().current_url())
            .to_string()
    }

    /// Waits (at most [`WAIT`]) for an element matching the CSS `selector` and returns it.
    pub fn wait_for(&self, selector: &str) -> fantoccini::elements::Element {
        self.wait_for_at_most(selector, WAIT)
    }

    /// Waits at most `timeout` for an element matching the CSS `selector` and returns it.
    pub fn wait_for_at_most(
        &self,
        selector: &str,
        timeout: Duration,
    ) -> fantoccini::elements::Element {
        let found = self.rt.block_on(
            self.client()
                .wait()
                .at_most(timeout)
                .for_element(Locator::Css(selector)),
        );
        found.unwrap_or_else(|e| {
            panic!(
                "browser: no {selector} within {timeout:?} on {} ({e}); the page reads:\n{}",
                self.url(),
                self.visible_text()
            )
        })
    }

    /// Whether an element matches `selector` now (no wait).
    pub fn exists(&self, selector: &str) -> bool {
        self.count(selector) > 0
    }

    /// How many elements match `selector` now (no wait).
    pub fn count(&self, selector: &str) -> usize {
        self.run(
            &format!("find {selector}"),
            self.client().find_all(Locator::Css(selector)),
        )
        .len()
    }

    /// Clicks the element matching `selector` (waiting for it), waits for a page load it starts,
    /// and checks the console.
    pub fn click(&self, selector: &str) {
        self.click_unchecked(selector);
        self.check_console();
    }

    /// Like [`Browser::click`], but leaves the console to the caller (a refused form answers
    /// with an error status, which the browser logs): [`Browser::console_errors`].
    pub fn click_unchecked(&self, selector: &str) {
        let el = self.wait_for(selector);
        self.run(&format!("click {selector}"), el.click());
        self.settle();
    }

    /// Replaces the value of the input matching `selector` with `text`.
    pub fn fill(&self, selector: &str, text: &str) {
        let el = self.wait_for(selector);
        self.run(&format!("clear {selector}"), el.clear());
        self.run(&format!("type into {selector}"), el.send_keys(text));
    }

    /// Chooses the option with value `value` in the `<select>` matching `selector`.
    pub fn select(&self, selector: &str, value: &str) {
        let el = self.wait_for(selector);
        self.run(
            &format!("select {value} in {selector}"),
            el.select_by_value(value),
        );
    }

    /// The visible text of the element matching `selector` (waiting for it).
    pub fn text(&self, selector: &str) -> String {
        let el = self.wait_for(selector);
        self.run(&format!("text of {selector}"), el.text())
    }

    /// An attribute of the element matching `selector` (waiting for it).
    pub fn attr(&self, selector: &str, name: &str) -> Option<String> {
        let el = self.wait_for(selector);
        self.run(&format!("{name} of {selector}"), el.attr(name))
    }

    /// The text of the page as a reader sees it (`document.body.innerText`: hidden elements and
    /// markup left out).
    pub fn visible_text(&self) -> String {
        let v = self.run(
            "read the page",
            self.client().execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            ),
        );
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The `lang` attribute of the page's `<html>` element.
    pub fn page_lang(&self) -> String {
        let v = self.run(
            "read <html lang>",
            self.client()
                .execute("return document.documentElement.lang", vec![]),
        );
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Runs a script in the page (WebDriver's execute, not subject to the page's CSP) and returns
    /// its result.
    pub fn script(&self, js: &str) -> Value {
        self.run("run a script", self.client().execute(js, vec![]))
    }

    /// Polls `done` until it returns true, for at most `timeout`, every 200 ms; panics naming
    /// `what` and the page otherwise. For states that only show after a reload (a background job
    /// finishing): `done` may reload the page itself.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Browser) -> bool,
    ) {
        let start = Instant::now();
        loop {
            if done(self) {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "browser: {what}: not within {timeout:?} on {}; the page reads:\n{}",
                    self.url(),
                    self.visible_text()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Reloads the page shown now.
    pub fn reload(&self) {
        self.run("reload", self.client().refresh());
        self.check_console();
    }

    /// Saves the page shown now as `target/screenshots/<name>-desktop.png` (1280×900) and
    /// `<name>-phone.png` (390×844, mobile emulation), and returns both paths. The viewport is
    /// the one set last again afterwards.
    pub fn screenshot(&self, name: &str) -> [PathBuf; 2] {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let before = self.viewport.get();
        let mut paths = Vec::new();
        for (suffix, size, mobile) in [("desktop", DESKTOP, false), ("phone", PHONE, true)] {
            self.set_viewport(size, mobile);
            let png = self.run("screenshot", self.client().screenshot());
            assert!(png.starts_with(b"\x89PNG"), "screenshot is no PNG");
            let path = dir.join(format!("{name}-{suffix}.png"));
            std::fs::write(&path, png).unwrap();
            paths.push(path);
        }
        self.restore_viewport(before);
        self.check_console();
        paths.try_into().unwrap()
    }

    /// How wide the page is in the phone viewport ([`PHONE`]), in CSS pixels: more than
    /// `PHONE.0` means the whole page scrolls sideways (a wide table in its own scroll box does
    /// not count). The viewport is the one set last again afterwards.
    pub fn phone_page_width(&self) -> u64 {
        let before = self.viewport.get();
        self.set_viewport(PHONE, true);
        let w = self.script("return document.documentElement.scrollWidth");
        self.restore_viewport(before);
        w.as_u64().unwrap_or(u64::MAX)
    }

    fn restore_viewport(&self, (size, mobile): ((u32, u32), bool)) {
        self.set_viewport(size, mobile);
    }

    /// The viewport: window size and the CDP device metrics (exactly `size` CSS pixels, scale
    /// 1; `mobile` as a phone does it), then one animation frame for the layout to follow.
    pub fn set_viewport(&self, size: (u32, u32), mobile: bool) {
        self.viewport.set((size, mobile));
        self.run(
            "resize the window",
            self.client().set_window_size(size.0, size.1),
        );
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": size.0, "height": size.1, "deviceScaleFactor": 1, "mobile": mobile}),
        );
        self.settle();
    }

    /// Sends a Chrome DevTools Protocol command and returns its result.
    pub fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.run(cmd, self.client().issue_cmd(Cdp(cmd, params)))
    }

    /// Waits for the document to have loaded and for two animation frames (layout and paint
    /// after a click or a resize).
    fn settle(&self) {
        let js = "const done = arguments[arguments.length - 1];\
                  const frames = () => requestAnimationFrame(() => requestAnimationFrame(() => done(true)));\
                  if (document.readyState === 'complete') { frames(); }\
                  else { window.addEventListener('load', frames, {once: true}); }";
        // A click that starts a navigation may unload the document under the script: then the
        // next document is loading, and the script runs again there.
        let start = Instant::now();
        loop {
            match self.rt.block_on(self.client().execute_async(js, vec![])) {
                Ok(_) => return,
                Err(e) if start.elapsed() > WAIT => {
                    panic!("browser: the page did not settle within {WAIT:?}: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The console errors (level SEVERE) since the last look, each as `source: message`.
    pub fn console_errors(&self) -> Vec<String> {
        let log = self.run("read the console", self.client().issue_cmd(BrowserLog));
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| {
                format!(
                    "{}: {}",
                    e["source"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// Panics when the browser logged a console error since the last look.
    pub fn check_console(&self) {
        let errors = self.console_errors();
        assert!(
            errors.is_empty(),
            "browser console errors on {}:\n{}",
            self.url(),
            errors.join("\n")
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Ends the session, so chromedriver quits Chromium; bounded, the driver is killed next.
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.close()).await
            });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `target/screenshots` beside the build folder (`target/debug`).
pub fn screenshot_dir() -> PathBuf {
    let build = build_dir();
    build.parent().unwrap_or(&build).join("screenshots")
}

/// Starts `chromedriver --port=0` (it picks a free port and prints it) with its log and HOME in
/// `home`, and returns it with its port.
fn spawn_driver(driver: &Path, home: &Path) -> (Child, u16) {
    let mut child = Command::new(driver)
        .arg("--port=0")
        .arg(format!(
            "--log-path={}",
            home.join("chromedriver.log").display()
        ))
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // "ChromeDriver was started successfully on port 37633."
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("on port ").nth(1)
                && line.contains("started successfully")
                && let Ok(port) = rest.trim_end_matches('.').trim().parse::<u16>()
            {
                let _ = tx.send(port);
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(port) => (child, port),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(home.join("chromedriver.log")).unwrap_or_default();
            panic!("chromedriver did not start within 30 s:\n{log}");
        }
    }
}
