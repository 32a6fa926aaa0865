//! The browser harness tested on itself: a tiny HTTP server on 127.0.0.1 in the test serves fixed
//! pages, so each check of the harness (console errors, waits, forms, screenshots, viewports) is
//! shown to fail when it should, independent of the server's pages.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use asgard_e2e::browser::{PHONE, screenshot_dir};
use asgard_e2e::*;

/// Fixed pages on 127.0.0.1 (HTTP/1.0, one request per connection); stops when dropped.
struct Pages {
    url: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

const CLEAN: &str = "<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\">\
    <meta name=\"viewport\" content=\"width=device-width\"><link rel=\"icon\" href=\"/favicon.ico\">\
    <link rel=\"stylesheet\" href=\"/style.css\"><title>t</title></head><body>\
    <h1 data-testid=\"title\">Hallo Welt</h1><p hidden>Versteckt</p>\
    <form method=\"post\" action=\"/sent\"><input name=\"q\" data-testid=\"q\">\
    <select name=\"s\" data-testid=\"s\"><option value=\"a\">A</option><option value=\"b\">B</option></select>\
    <button data-testid=\"go\">Senden</button></form></body></html>";

const BROKEN: &str = "<!doctype html><html><head><link rel=\"icon\" href=\"/favicon.ico\">\
    <link rel=\"stylesheet\" href=\"/missing.css\"></head><body><p>kaputt</p></body></html>";

fn answer(path: &str, body: &str) -> (String, &'static str, String) {
    match path {
        "/" => ("200 OK".into(), "text/html; charset=utf-8", CLEAN.into()),
        "/broken" => ("200 OK".into(), "text/html; charset=utf-8", BROKEN.into()),
        "/style.css" => ("200 OK".into(), "text/css", "h1 { color: #234; }".into()),
        "/favicon.ico" => ("204 No Content".into(), "image/x-icon", String::new()),
        "/sent" => {
            let page = format!(
                "<!doctype html><html><head><link rel=\"icon\" href=\"/favicon.ico\"></head>\
                 <body><p data-testid=\"echo\">{body}</p></body></html>"
            );
            ("200 OK".into(), "text/html; charset=utf-8", page)
        }
        _ => ("404 Not Found".into(), "text/plain", "nicht da".into()),
    }
}

fn serve(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len.min(4096)];
    let _ = std::io::Read::read_exact(&mut reader, &mut body);
    let (status, ctype, text) = answer(&path, &String::from_utf8_lossy(&body));
    let _ = write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

impl Pages {
    fn start() -> Pages {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = stream {
                    std::thread::spawn(move || serve(s));
                }
            }
        });
        Pages {
            url: format!("http://{addr}"),
            stop,
            addr,
        }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// The console check can fail: a page whose stylesheet is missing (404) is caught, with the
/// resource named; a clean page logs nothing, and `goto` on the broken one panics.
#[test]
fn browser_console_errors_are_caught() {
    let Some(b) = Browser::start() else { return };
    let pages = Pages::start();
    b.goto(&format!("{}/", pages.url));
    assert!(b.console_errors().is_empty());

    b.goto(&format!("{}/", pages.url));
    b.goto_unchecked(&format!("{}/broken", pages.url));
    let errors = b.console_errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("missing.css") && e.contains("404")),
        "the 404 stylesheet is not among the console errors: {errors:?}"
    );

    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.goto(&format!("{}/broken", pages.url));
    }));
    let msg = caught.expect_err("goto on a page with a console error must panic");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("missing.css"), "{msg}");

    // A script error is a console error too.
    b.goto(&format!("{}/", pages.url));
    b.script("setTimeout(() => { throw new Error('boom-from-test'); }, 0); return 1;");
    b.wait_until("the script error is logged", Duration::from_secs(5), |b| {
        b.console_errors()
            .iter()
            .any(|e| e.contains("boom-from-test"))
    });
}

/// Waits, forms, visible text, viewports and screenshots.
#[test]
fn browser_fills_forms_reads_text_and_takes_screenshots() {
    let Some(b) = Browser::start() else { return };
    let pages = Pages::start();
    b.goto(&format!("{}/", pages.url));
    assert_eq!(b.text(&tid("title")), "Hallo Welt");
    let text = b.visible_text();
    assert!(text.contains("Hallo Welt"), "{text}");
    assert!(
        !text.contains("Versteckt"),
        "hidden text is not visible: {text}"
    );
    assert_eq!(b.page_lang(), "de");
    assert!(!b.exists(&tid("nothing-here")));

    // A missing element fails after the bounded wait, naming the selector.
    let missing = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.wait_for_at_most(&tid("nothing-here"), Duration::from_millis(300))
    }));
    let msg = missing.expect_err("a missing element must fail");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("nothing-here"), "{msg}");

    b.fill(&tid("q"), "abc äöü");
    b.select(&tid("s"), "b");
    b.click(&tid("go"));
    let echo = b.text(&tid("echo"));
    assert!(echo.contains("q=abc") && echo.contains("s=b"), "{echo}");
    assert!(b.url().ends_with("/sent"), "{}", b.url());

    b.goto(&format!("{}/", pages.url));
    let [desktop, phone] = b.screenshot("harness-selftest");
    assert_eq!(
        desktop,
        screenshot_dir().join("harness-selftest-desktop.png")
    );
    assert_eq!(png_size(&desktop), (1280, 900));
    assert_eq!(png_size(&phone), PHONE);
    // Back to the desktop viewport afterwards.
    assert_eq!(b.script("return window.innerWidth"), 1280);
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(b[20..24].try_into().unwrap());
    (w, h)
}
