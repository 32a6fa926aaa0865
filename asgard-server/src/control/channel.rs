//! The admin channel: a Unix socket in the data directory over which admin commands ask the
//! running server to run a [`Task`], with newline-delimited JSON in both directions.
//!
//! The socket is created in a private (0700) folder, set to 0600 and only then renamed to
//! `<data_dir>/admin.sock`, so nobody but the server's user (and root) can ever connect, not even
//! in the moment between `bind` and `chmod`. Only the holder of the data directory lock creates or
//! removes it; a socket left behind by a killed server is replaced at the next start.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use asgard_core::Lang;
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::ops::events::Origin;
use crate::ops::{PROTOCOL_VERSION, Resources, SOCKET_NAME, Task};
use crate::present;

/// The longest request line the server reads.
const MAX_REQUEST: u64 = 64 * 1024;

/// How long the server waits for a client's request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client keeps trying to connect (a server that just took the lock binds the socket
/// a moment later).
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

/// One request: the first and only line a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// Must be [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The language of the texts in the answer.
    pub lang: Lang,
    pub task: Task,
}

/// One line of the server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Reply {
    /// A progress message while the task runs.
    Progress { message: String },
    /// The final line of a task that ran.
    Done { outcome: Outcome },
    /// The final line of a request that failed (bad request, or the task failed).
    Error { message: String },
}

/// The listening admin socket of a running server. Dropping it removes the socket file (the
/// thread that accepts connections ends with the process).
#[derive(Debug)]
pub(crate) struct AdminSocket {
    pub path: PathBuf,
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates `<data_dir>/admin.sock` (replacing a stale one; the caller holds the data directory
/// lock) and serves requests on it, one thread per connection.
pub(crate) fn serve(res: Resources) -> anyhow::Result<AdminSocket> {
    let data_dir = res.config.data_dir.clone();
    let path = data_dir.join(SOCKET_NAME);
    let listener = bind_private(&data_dir, &path)
        .with_context(|| format!("admin socket {}", path.display()))?;
    std::thread::Builder::new()
        .name("admin-socket".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        let res = res.clone();
                        let spawned = std::thread::Builder::new()
                            .name("admin-task".into())
                            .spawn(move || handle(stream, &res));
                        if let Err(e) = spawned {
                            tracing::error!(error = %e, "cannot start admin task thread");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "admin socket accept failed");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok(AdminSocket { path })
}

fn bind_private(data_dir: &Path, path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(path = %path.display(), "removed stale admin socket"),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let private = data_dir.join(format!(".admin-sock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let result = (|| {
        let tmp = private.join("s");
        let listener = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    result
}

/// Writes one reply line; a client that went away does not stop the task.
fn send(stream: &mut UnixStream, reply: &Reply) -> bool {
    let mut line = serde_json::to_string(reply)
        .unwrap_or_else(|e| format!(r#"{{"type":"error","message":"reply not encodable: {e}"}}"#));
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .and_then(|()| stream.flush())
        .is_ok()
}

fn handle(mut stream: UnixStream, res: &Resources) {
    let server_lang = res.config.lang();
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let mut line = String::new();
    let read = match stream.try_clone() {
        Ok(s) => BufReader::new(s.take(MAX_REQUEST)).read_line(&mut line),
        Err(e) => Err(e),
    };
    let request = match read {
        Ok(_) if !line.ends_with('\n') => {
            Err(present::messages::channel_request_incomplete(server_lang).to_owned())
        }
        Ok(_) => serde_json::from_str::<Request>(&line).map_err(|e| {
            format!(
                "{}: {e}",
                server_lang.pick("Ungültige Anfrage", "Invalid request")
            )
        }),
        Err(e) => Err(format!(
            "{}: {e}",
            server_lang.pick("Anfrage nicht lesbar", "Cannot read request")
        )),
    };
    let request = match request {
        Ok(r) if r.version != PROTOCOL_VERSION => {
            let message = present::messages::channel_version(r.version, PROTOCOL_VERSION, r.lang);
            send(&mut stream, &Reply::Error { message });
            return;
        }
        Ok(r) => r,
        Err(message) => {
            tracing::warn!(%message, "bad admin request");
            send(&mut stream, &Reply::Error { message });
            return;
        }
    };
    tracing::info!(task = ?request.task, "admin task requested");
    let lang = request.lang;
    let mut progress_stream = stream.try_clone().ok();
    let mut progress = |step| {
        if let Some(s) = progress_stream.as_mut()
            && !send(
                s,
                &Reply::Progress {
                    message: present::step(step, lang).to_owned(),
                },
            )
        {
            progress_stream = None;
        }
    };
    let reply = match res
        .run(&request.task, Origin::AdminChannel, &mut progress)
        .inspect(|report| {
            // A command on the server's machine: audited as `cli`.
            crate::ops::audit::record(
                &res.db,
                &crate::ops::audit::Actor::cli(),
                &request.task,
                report,
            )
        })
        .map_err(|e| present::ops_error(&e, lang))
        .and_then(|report| Outcome::of(&report, lang).map_err(|e| format!("{e:#}")))
    {
        Ok(outcome) => Reply::Done { outcome },
        Err(message) => Reply::Error { message },
    };
    send(&mut stream, &reply);
}

/// Sends `request` to the server listening on `socket` and returns the task's outcome; progress
/// lines go to `progress`. Errors when nobody answers, on a protocol error, or when the server
/// reports one.
pub(crate) fn call(
    socket: &Path,
    request: &Request,
    lang: Lang,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut stream = loop {
        match UnixStream::connect(socket) {
            Ok(s) => break s,
            Err(e) if started.elapsed() < CONNECT_PATIENCE => {
                tracing::debug!(error = %e, "admin socket not ready yet");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                let dir = socket.parent().unwrap_or(socket);
                return Err(anyhow!(
                    "{}: {e}",
                    present::messages::channel_unanswered(dir, socket, lang)
                ));
            }
        }
    };
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes()).context(lang.pick(
        "Anfrage an den Server nicht gesendet",
        "Cannot send the request to the server",
    ))?;
    read_replies(BufReader::new(stream), lang, progress)
}

/// Reads reply lines up to the final one.
fn read_replies(
    reader: impl BufRead,
    lang: Lang,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Outcome> {
    for line in reader.lines() {
        let line = line.context(lang.pick(
            "Antwort des Servers nicht lesbar",
            "Cannot read the server's answer",
        ))?;
        if line.trim().is_empty() {
            continue;
        }
        let reply: Reply = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}: {line}",
                lang.pick(
                    "Protokollfehler im Verwaltungskanal",
                    "Admin channel protocol error"
                )
            )
        })?;
        match reply {
            Reply::Progress { message } => progress(&message),
            Reply::Done { outcome } => return Ok(outcome),
            Reply::Error { message } => bail!("{message}"),
        }
    }
    bail!(
        "{}",
        lang.pick(
            "Der Server hat die Verbindung ohne Ergebnis beendet.",
            "The server closed the connection without a result."
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::config::Config;
    use crate::db::Db;
    use crate::ops::events::EventBus;
    use crate::store::LocalStore;

    fn running(dir: &Path) -> (AdminSocket, Resources) {
        let config = Config {
            data_dir: dir.to_path_buf(),
            language: Some(Lang::De),
            ..Config::default()
        };
        let res = Resources {
            db: Arc::new(Db::open(&dir.join("asgard.redb")).unwrap()),
            store: Arc::new(LocalStore::open(&dir.join("chunks")).unwrap()),
            config: Arc::new(config),
            events: Arc::new(EventBus::new()),
        };
        (serve(res.clone()).unwrap(), res)
    }

    fn raw(socket: &Path, text: &str) -> Vec<Reply> {
        let mut s = UnixStream::connect(socket).unwrap();
        s.write_all(text.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        BufReader::new(s)
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn socket_is_private_and_answers_tasks() {
        let dir = tempfile::tempdir().unwrap();
        // A stale socket file (from a killed server) is replaced.
        std::fs::write(dir.path().join(SOCKET_NAME), b"stale").unwrap();
        let (sock, _res) = running(dir.path());
        let mode = std::fs::metadata(&sock.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".admin"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let req = Request {
            version: PROTOCOL_VERSION,
            lang: Lang::En,
            task: Task::Stats,
        };
        let out = call(&sock.path, &req, Lang::En, &mut |_| {}).unwrap();
        assert_eq!(out.result["versions"], 0);
        assert!(out.text.contains("Users:"), "{}", out.text);

        let mut seen = Vec::new();
        let target = dir.path().join("copy.redb");
        let req = Request {
            version: PROTOCOL_VERSION,
            lang: Lang::De,
            task: Task::DbBackup {
                to: Some(target.clone()),
            },
        };
        let out = call(&sock.path, &req, Lang::De, &mut |m| seen.push(m.to_owned())).unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(target.is_file());
        assert_eq!(out.result["path"], target.to_str().unwrap());

        let path = sock.path.clone();
        drop(sock);
        assert!(!path.exists(), "socket removed at shutdown");
    }

    #[test]
    fn bad_requests_get_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (sock, _res) = running(dir.path());
        let only_error = |replies: Vec<Reply>| -> String {
            match replies.as_slice() {
                [Reply::Error { message }] => message.clone(),
                other => panic!("expected one error line, got {other:?}"),
            }
        };
        let m = only_error(raw(&sock.path, "kein json\n"));
        assert!(m.contains("Ungültige Anfrage"), "{m}");
        let m = only_error(raw(
            &sock.path,
            "{\"version\":1,\"lang\":\"de\",\"task\":{\"name\":\"frobnicate\"}}\n",
        ));
        assert!(m.contains("frobnicate"), "{m}");
        let m = only_error(raw(
            &sock.path,
            "{\"version\":99,\"lang\":\"en\",\"task\":{\"name\":\"stats\"}}\n",
        ));
        assert!(m.contains("version 99"), "{m}");
        let m = only_error(raw(&sock.path, "{\"version\":1"));
        assert!(m.contains("unvollständig"), "{m}");
        let m = only_error(raw(
            &sock.path,
            "{\"version\":1,\"lang\":\"en\",\"task\":{\"name\":\"db-backup\",\"to\":\"rel.redb\"}}\n",
        ));
        assert!(m.contains("absolute"), "{m}");
        // The client reports a server error and a broken answer as errors.
        let req = Request {
            version: PROTOCOL_VERSION,
            lang: Lang::En,
            task: Task::DbBackup {
                to: Some(PathBuf::from("relative")),
            },
        };
        assert!(call(&sock.path, &req, Lang::En, &mut |_| {}).is_err());
        let err =
            read_replies(&b"{\"type\":\"surprise\"}\n"[..], Lang::De, &mut |_| {}).unwrap_err();
        assert!(format!("{err:#}").contains("Protokollfehler"), "{err:#}");
        let err = read_replies(&b""[..], Lang::De, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("ohne Ergebnis"), "{err}");
    }
}
