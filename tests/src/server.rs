//! The real `asgard-server`: a `serve` process on 127.0.0.1 (ephemeral port, temp data dir) that
//! the tests stop, kill and restart, and its admin commands run as separate processes.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

use crate::{Api, chunk_locations, server_bin, text};

/// The `metrics_token` of every server that [`Server::start`] and [`Server::start_with_config`]
/// start (added to their config unless it sets its own): [`Server::metric`] scrapes with it.
pub const METRICS_TOKEN: &str = "asgard-e2e-metrics-token-8d1f6c2a";

/// A running server with its own temp data dir; killed when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub data: TempDir,
    pub url: String,
    pub config: Option<PathBuf>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with_config(None)
    }

    /// Starts a server whose config file holds `yaml` and, unless `yaml` sets its own,
    /// `metrics_token: METRICS_TOKEN`.
    pub fn start_with_config(yaml: Option<&str>) -> Server {
        Self::start_inner(yaml, true)
    }

    /// Like [`Server::start_with_config`], but the server's stderr (its log) stays in
    /// `child.stderr` for the test to read; the test must keep reading it.
    pub fn start_keeping_log(yaml: Option<&str>) -> Server {
        Self::start_inner(yaml, false)
    }

    /// Starts a server on a data dir that exists already: `data/data` (a fixture unpacked into
    /// `data`), with a config as [`Server::start`] writes it.
    pub fn start_in(data: TempDir) -> Server {
        Self::start_in_dir(data, None, true)
    }

    fn start_inner(yaml: Option<&str>, drain: bool) -> Server {
        Self::start_in_dir(tempfile::tempdir().unwrap(), yaml, drain)
    }

    fn start_in_dir(data: TempDir, yaml: Option<&str>, drain: bool) -> Server {
        let mut text = yaml.unwrap_or_default().to_owned();
        if !text.contains("metrics_token") {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("metrics_token: {METRICS_TOKEN}\n"));
        }
        let p = data.path().join("server.yaml");
        std::fs::write(&p, text).unwrap();
        let config = Some(p);
        let data_dir = data.path().join("data");
        let (mut child, url) =
            spawn_server(&data_dir, config.as_deref(), "127.0.0.1:0").expect("server starts");
        if drain {
            drain_stderr(&mut child);
        }
        Server {
            child: Some(child),
            data,
            url,
            config,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// SIGTERM, then wait: the server must shut down by itself.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let st = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            assert!(st.success());
            for _ in 0..200 {
                if let Some(status) = c.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "server exited with {status} after SIGTERM"
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            panic!("server did not stop within 10 s of SIGTERM");
        }
    }

    /// The `ip:port` the server listens on.
    pub fn addr(&self) -> &str {
        self.url
            .trim_start_matches("https://")
            .trim_end_matches('/')
    }

    /// Stops and starts the server again on the same data dir and port.
    pub fn restart(&mut self) {
        self.stop();
        self.restart_stopped();
    }

    /// Starts a stopped server again on the same data dir and port.
    pub fn restart_stopped(&mut self) {
        assert!(self.child.is_none(), "server is still running");
        let addr = self.addr().to_owned();
        let (mut child, url) =
            spawn_server(&self.data_dir(), self.config.as_deref(), &addr).unwrap();
        drain_stderr(&mut child);
        self.child = Some(child);
        self.url = url;
    }

    /// Total bytes of the chunk store's files (segments, index) and the number of chunks in it
    /// (asked through `asgard-server locate`, so also while the server runs).
    pub fn store_usage(&self) -> (u64, usize) {
        (self.store_bytes(), chunk_locations(&self.data_dir()).len())
    }

    /// Total bytes of the files below `<data_dir>/chunks`.
    pub fn store_bytes(&self) -> u64 {
        fn walk(p: &Path, acc: &mut u64) {
            for e in std::fs::read_dir(p).unwrap() {
                let e = e.unwrap();
                let ft = e.file_type().unwrap();
                if ft.is_dir() {
                    walk(&e.path(), acc);
                } else {
                    *acc += e.metadata().unwrap().len();
                }
            }
        }
        let mut acc = 0;
        let dir = self.data_dir().join("chunks");
        if dir.exists() {
            walk(&dir, &mut acc);
        }
        acc
    }

    /// One value of the running server's `/metrics` (e.g. `asgard_stored_bytes`), as a whole
    /// number.
    pub fn metric(&self, name: &str) -> u64 {
        // A new client each time: a kept-alive connection may have been closed by the server.
        let (status, body) = Api::new(self).get("/metrics", Some(METRICS_TOKEN));
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads and drops what a running server writes to stderr (its log): a pipe nobody reads fills
/// up after 64 KiB, and the server then blocks in the middle of a request (a test that makes
/// many refused requests, each logged, would hang).
fn drain_stderr(child: &mut Child) {
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    }
}

/// Spawns `asgard-server serve` and waits for the line with its https URL. On failure returns the
/// process's output.
pub fn spawn_server(
    data_dir: &Path,
    config: Option<&Path>,
    listen: &str,
) -> Result<(Child, String), String> {
    let mut cmd = Command::new(server_bin());
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", listen]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(pos) = line.find("https://") {
                let url: String = line[pos..].split_whitespace().next().unwrap().to_owned();
                let _ = tx.send(url);
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => Ok((child, url)),
        Err(_) => {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// An admin command of the server binary (`asgard-server ARGS...`), in German and logging only
/// warnings, to run or spawn.
pub fn server_admin_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(server_bin());
    c.args(args)
        .env("LANG", "de_DE.UTF-8")
        .env("RUST_LOG", "warn");
    c
}

/// Runs an admin command of the server binary (`asgard-server ARGS...`) on a data dir, in German;
/// its output, whatever the exit code.
pub fn server_admin<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    server_admin_command(args).output().unwrap()
}

/// Like [`server_admin`], and asserts exit code 0.
pub fn server_admin_ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = server_admin(&args);
    assert!(
        out.status.success(),
        "asgard-server {args:?} failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    out
}
