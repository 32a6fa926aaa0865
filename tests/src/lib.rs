//! Shared helpers for the end-to-end tests: start the real `asgard-server` binary on 127.0.0.1 with
//! an ephemeral port and a temp data dir, and run the real `asgard-agent` binary against it over HTTPS.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// The folder cargo put this build's binaries in: `target/<profile>` (or
/// `<CARGO_TARGET_DIR>/<triple>/<profile>` with a custom target dir or `--target`). A test
/// executable lives in its `deps/` subfolder; `CARGO_BIN_EXE_*` is set only for tests of the
/// package that owns the binary, so the binaries are found from here.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    profile_dir_of(&exe)
}

/// `target/<profile>/deps/e2e-<hash>` → `target/<profile>`; an executable outside a `deps`
/// folder (copied elsewhere by a test runner) looks next to itself.
fn profile_dir_of(exe: &Path) -> PathBuf {
    let dir = exe.parent().expect("the test executable is in a folder");
    if dir.file_name() == Some(std::ffi::OsStr::new("deps")) {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A binary of the workspace in [`build_dir`]; panics with what to build when it is missing.
fn workspace_bin(name: &str) -> PathBuf {
    let p = build_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.exists(),
        "{} is missing: build the binaries first with `cargo build -p asgard-server -p asgard-agent` \
         (the README's `cargo test --workspace` builds them itself)",
        p.display()
    );
    p
}

/// The agent binary under test.
pub fn agent_bin() -> PathBuf {
    workspace_bin("asgard-agent")
}

/// The server binary under test.
pub fn server_bin() -> PathBuf {
    workspace_bin("asgard-server")
}

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

    /// Starts a server whose config file holds `yaml`.
    pub fn start_with_config(yaml: Option<&str>) -> Server {
        let data = tempfile::tempdir().unwrap();
        let config = yaml.map(|y| {
            let p = data.path().join("server.yaml");
            std::fs::write(&p, y).unwrap();
            p
        });
        let data_dir = data.path().join("data");
        let (child, url) =
            spawn_server(&data_dir, config.as_deref(), "127.0.0.1:0").expect("server starts");
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
        let (child, url) = spawn_server(&self.data_dir(), self.config.as_deref(), &addr).unwrap();
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
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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

/// One user on one device: an agent with its own state dir.
pub struct Agent {
    pub user: String,
    pub device: String,
    pub state: TempDir,
    pub server: String,
}

impl Agent {
    pub fn new(user: &str, server: &Server) -> Agent {
        Agent {
            user: user.into(),
            device: "testhost".into(),
            state: tempfile::tempdir().unwrap(),
            server: server.url.clone(),
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(agent_bin());
        c.arg("--server")
            .arg(&self.server)
            .arg("--state-dir")
            .arg(self.state.path())
            .env("USER", &self.user)
            .env("USERNAME", &self.user)
            .env("ASGARD_DEVICE", &self.device)
            .env_remove("ASGARD_CONFIG")
            .env_remove("ASGARD_STATE_DIR")
            .env_remove("ASGARD_SERVER")
            .env("LANG", "de_DE.UTF-8")
            .env("TZ", "UTC");
        c
    }

    /// Runs the agent and returns its output, whatever the exit code.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command().args(args).output().unwrap()
    }

    /// Runs the agent and asserts exit code 0.
    pub fn ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "agent failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `backup --json PATH` and its summary.
    pub fn backup(&self, path: &Path) -> Value {
        let out = self.ok([
            std::ffi::OsStr::new("backup"),
            std::ffi::OsStr::new("--json"),
            path.as_os_str(),
        ]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "backup --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `list --json [PATH]`.
    pub fn list(&self, path: Option<&Path>) -> Vec<Value> {
        let mut args = vec![
            std::ffi::OsString::from("list"),
            std::ffi::OsString::from("--json"),
        ];
        if let Some(p) = path {
            args.push(p.as_os_str().to_owned());
        }
        let out = self.ok(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "list --json printed no JSON array ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The device token the agent keeps in its state dir.
    pub fn token(&self) -> String {
        let s: Value =
            serde_json::from_slice(&std::fs::read(self.state.path().join("state.json")).unwrap())
                .unwrap();
        s["token"].as_str().expect("token in state.json").to_owned()
    }
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Sets a file's mtime to `secs` after the epoch.
pub fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// Every regular file below `root`: relative path → (content, mtime).
pub fn snapshot(
    root: &Path,
) -> std::collections::BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file() {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    (std::fs::read(&p).unwrap(), md.modified().unwrap()),
                );
            }
        }
    }
    out
}

/// A small blocking HTTPS client for hand-made requests (accepts the self-signed certificate).
pub struct Api {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        Api {
            rt,
            client,
            base: server.url.clone(),
        }
    }

    /// Sends a request and returns (status, body bytes).
    pub fn send(&self, req: reqwest::RequestBuilder) -> (u16, Vec<u8>) {
        self.rt.block_on(async {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.bytes().await.unwrap().to_vec())
        })
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (status, bytes) = self.send(req);
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req)
    }

    /// Uploads chunks in their stored form, one multipart part per chunk.
    pub fn upload(&self, token: &str, parts: Vec<(String, Vec<u8>)>) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in parts {
            form = form.part(
                name.clone(),
                reqwest::multipart::Part::bytes(bytes).file_name(name),
            );
        }
        let req = self
            .client
            .post(format!("{}/api/upload", self.base))
            .bearer_auth(token)
            .multipart(form);
        let (status, bytes) = self.send(req);
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

#[cfg(unix)]
impl Agent {
    /// Like [`Agent::command`], but the agent runs as user and group 65534 (nobody) when the tests
    /// run as root (`setpriv` from util-linux), so that file permissions apply to it. The state dir
    /// must be writable for that user. Not as root, the agent runs as the current user. The binary
    /// is copied into the state dir first: the build folder may lie where nobody cannot go.
    pub fn unprivileged_command(&self) -> Command {
        let inner = self.command();
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let mut c = if as_root {
            use std::os::unix::fs::PermissionsExt;
            let bin = self.state.path().join("asgard-agent-copy");
            if !bin.exists() {
                std::fs::copy(inner.get_program(), &bin).unwrap();
                std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin);
            c
        } else {
            Command::new(inner.get_program())
        };
        c.args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        // No config file of the real user's home is looked at.
        c.env("HOME", self.state.path())
            .env_remove("XDG_CONFIG_HOME");
        c
    }
}

impl Api {
    /// `POST` of a JSON body; returns the status and the raw answer (e.g. a restored file).
    pub fn post_json_bytes(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Vec<u8>) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req)
    }
}

/// Runs an admin command of the server binary (`asgard-server ARGS...`) on a data dir, in German.
pub fn server_admin<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(server_bin())
        .args(args)
        .env("LANG", "de_DE.UTF-8")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Where a chunk's stored bytes are: (file, offset, length), from `asgard-server locate`.
pub fn chunk_location(data_dir: &Path, hex: &str) -> (PathBuf, u64, u64) {
    let out = server_admin([
        "locate".as_ref(),
        "--json".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
        hex.as_ref(),
    ] as [&std::ffi::OsStr; 5]);
    assert!(
        out.status.success(),
        "locate {hex}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["chunks"][0];
    (
        PathBuf::from(c["path"].as_str().unwrap()),
        c["offset"].as_u64().unwrap(),
        c["len"].as_u64().unwrap(),
    )
}

/// The ids (hex) of every chunk in the store, from `asgard-server locate` (also while the server
/// runs, through its admin socket).
pub fn chunk_locations(data_dir: &Path) -> Vec<String> {
    let out = server_admin([
        "locate".as_ref(),
        "--json".as_ref(),
        "--data-dir".as_ref(),
        data_dir.as_os_str(),
    ] as [&std::ffi::OsStr; 4]);
    assert!(
        out.status.success(),
        "locate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Flips one bit in the middle of a chunk's stored bytes (the server must be stopped).
pub fn damage_chunk(data_dir: &Path, hex: &str) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let (path, offset, len) = chunk_location(data_dir, hex);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(offset + len / 2)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x01;
    f.seek(SeekFrom::Start(offset + len / 2)).unwrap();
    f.write_all(&b).unwrap();
}

/// Makes a chunk's bytes unfindable, as if lost: its record header in the segment no longer names
/// it, so the store reports it missing (the server must be stopped).
pub fn lose_chunk(data_dir: &Path, hex: &str) {
    use std::io::{Seek, SeekFrom, Write};
    let (path, offset, _) = chunk_location(data_dir, hex);
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // The 40-byte record header (magic, id, length) precedes the bytes; wipe its magic.
    f.seek(SeekFrom::Start(offset - 40)).unwrap();
    f.write_all(b"LOST").unwrap();
}

/// A small deterministic generator (xorshift64*), so that a failing run can be repeated from its
/// seed (the crash and compaction tests).
#[cfg(unix)]
pub struct Rng(pub u64);

#[cfg(unix)]
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}
