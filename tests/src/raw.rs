//! Raw HTTP/1.x over TLS: requests byte for byte as a hostile client would send them (truncated
//! bodies, wrong `Content-Length`, duplicate headers, HTTP/1.0, slow bodies), which a real HTTP
//! client refuses to make. Blocking `rustls` over a `TcpStream`; the server's certificate is
//! accepted as it is (loopback only).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use serde_json::Value;

use crate::Server;

/// How the bytes of a request go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// All at once.
    Whole,
    /// In ten pieces with a pause between them (a slow client within loopback bounds).
    Slow,
    /// All at once, then the client closes its sending side (a body shorter than announced).
    ThenClose,
}

/// An answer as it came over the wire.
#[derive(Debug, Clone)]
pub struct Reply {
    /// 0 when the server closed the connection without an answer.
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` when it is none).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A client that opens one TLS connection per request.
pub struct Raw {
    addr: String,
    config: Arc<ClientConfig>,
}

impl Raw {
    pub fn new(server: &Server) -> Raw {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert))
            .with_no_client_auth();
        Raw {
            addr: server.addr().to_owned(),
            config: Arc::new(config),
        }
    }

    /// Sends `bytes` as they are and reads the answer until the server closes the connection
    /// (the requests built here say `Connection: close`) or its announced length is there.
    pub fn send(&self, bytes: &[u8], pace: Pace) -> Reply {
        let sock = TcpStream::connect(&self.addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let conn = ClientConnection::new(
            self.config.clone(),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut tls = StreamOwned::new(conn, sock);
        let written = match pace {
            Pace::Whole | Pace::ThenClose => tls.write_all(bytes).and_then(|()| tls.flush()),
            Pace::Slow => {
                let piece = bytes.len().div_ceil(10).max(1);
                bytes.chunks(piece).try_for_each(|c| {
                    tls.write_all(c)?;
                    tls.flush()?;
                    std::thread::sleep(Duration::from_millis(100));
                    Ok(())
                })
            }
        };
        if pace == Pace::ThenClose {
            tls.conn.send_close_notify();
            let _ = tls.flush();
            let _ = tls.sock.shutdown(Shutdown::Write);
        }
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match tls.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    if complete(&raw) {
                        break;
                    }
                }
                // The server may close without close_notify, or reset after answering early.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof
                            | ErrorKind::ConnectionReset
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::BrokenPipe
                    ) =>
                {
                    break;
                }
                Err(e) => panic!("reading the answer: {e} (written: {written:?})"),
            }
        }
        parse(&raw)
    }
}

/// An HTTP/1.1 request with `Connection: close`, `Accept-Language: de`, the token if any, the
/// content type if any, and a correct `Content-Length`.
pub fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAccept-Language: de\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(c) = content_type {
        head.push_str(&format!("Content-Type: {c}\r\n"));
    }
    head.push_str("\r\n");
    [head.as_bytes(), body].concat()
}

/// A JSON `POST` (see [`request`]).
pub fn post_json(path: &str, token: Option<&str>, body: &[u8]) -> Vec<u8> {
    request("POST", path, token, Some("application/json"), body)
}

fn header_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The answer is all there by its `Content-Length`.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = header_end(raw) else {
        return false;
    };
    let r = parse(raw);
    match r
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        Some(n) => raw.len() >= end + n,
        None => false,
    }
}

fn parse(raw: &[u8]) -> Reply {
    let Some(end) = header_end(raw) else {
        return Reply {
            status: 0,
            headers: Vec::new(),
            body: raw.to_vec(),
        };
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    } else if let Some(n) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..p]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = p + 2;
        let stop = (start + size).min(b.len());
        out.extend_from_slice(&b[start..stop]);
        b = &b[(stop + 2).min(b.len())..];
    }
    out
}

/// Accepts any certificate: these tests talk to their own server on loopback.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Starts a server whose config file holds `yaml` and keeps everything it writes to stderr (its
/// log) in the returned buffer, read continuously so the server never blocks on a full pipe.
pub fn start_logged(yaml: &str) -> (Server, Arc<std::sync::Mutex<String>>) {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("server.yaml");
    std::fs::write(&config, yaml).unwrap();
    let (mut child, url) =
        crate::spawn_server(&data.path().join("data"), Some(&config), "127.0.0.1:0").unwrap();
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let server = Server {
        child: Some(child),
        data,
        url,
        config: Some(config),
    };
    (server, log)
}
