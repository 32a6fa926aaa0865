//! The admin console as a person uses it: an admin created on the CLI (with a TOTP second factor
//! when asked), and a login in a [`Browser`].

use std::ffi::OsString;
use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::{Browser, Server, server_admin_command, text, tid};

/// An admin account of a server, as `asgard-server admin create` made it.
pub struct AdminAccount {
    pub name: String,
    pub password: String,
    /// The `otpauth://` URI that `admin totp` printed, when the second factor is on.
    pub totp_uri: Option<String>,
}

/// `asgard-server ARGS... --data-dir DIR` on the (running) server's data dir, the password on
/// standard input when given; asserts exit code 0 and returns stdout.
fn admin_cli(server: &Server, args: &[&str], stdin: Option<&str>) -> String {
    let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
    all.push("--data-dir".into());
    all.push(server.data_dir().into());
    let mut child = server_admin_command(&all)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        writeln!(input, "{s}").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "asgard-server {args:?} failed ({}): {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

impl AdminAccount {
    /// `admin create NAME --password-stdin` on the server (through its admin channel).
    pub fn create(server: &Server, name: &str, password: &str) -> AdminAccount {
        admin_cli(
            server,
            &["admin", "create", name, "--password-stdin"],
            Some(password),
        );
        AdminAccount {
            name: name.into(),
            password: password.into(),
            totp_uri: None,
        }
    }

    /// `admin totp NAME --json`: turns the second factor on and keeps its URI.
    pub fn enable_totp(&mut self, server: &Server) {
        let out = admin_cli(server, &["admin", "totp", &self.name, "--json"], None);
        let v: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("admin totp --json printed no JSON ({e}): {out}"));
        let uri = v["totp"]["uri"]
            .as_str()
            .unwrap_or_else(|| panic!("no totp.uri in {v}"));
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        self.totp_uri = Some(uri.to_owned());
    }

    /// The code the admin's authenticator app shows now.
    pub fn totp_now(&self) -> String {
        let uri = self.totp_uri.as_deref().expect("TOTP is on");
        let totp = totp_rs::Totp::from_url(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        totp.generate_current().to_string()
    }

    /// Logs in at `/admin/login` (and the TOTP step when it is on) and waits for the overview.
    pub fn login(&self, b: &Browser, server: &Server) {
        b.goto(&format!("{}admin/login", base(server)));
        b.fill(&tid("login-name"), &self.name);
        b.fill(&tid("login-password"), &self.password);
        b.click(&tid("login-submit"));
        if self.totp_uri.is_some() {
            b.fill(&tid("totp-code"), &self.totp_now());
            b.click(&tid("totp-submit"));
        }
        b.wait_for(&tid("nav"));
        let name = b.text(&tid("admin-name"));
        assert_eq!(name, self.name, "logged in as someone else");
    }
}

/// The server's URL with one trailing slash (`https://127.0.0.1:PORT/`).
pub fn base(server: &Server) -> String {
    format!("{}/", server.url.trim_end_matches('/'))
}
