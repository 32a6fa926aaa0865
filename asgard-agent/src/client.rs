//! HTTPS client for the AsgardBackup API, with certificate pinning.
//!
//! The server uses a self-signed certificate, so trust is a pin: the SHA-256 of the end-entity
//! certificate. The expected pin comes from the config (`server.fingerprint`), else from the state
//! file; without one the first contact is trusted and its fingerprint remembered (trust on first
//! use). Any later difference aborts the connection before a byte of the request is sent.
//! One `reqwest::Client` serves the whole run: HTTP/1.1 with a pool of kept-alive connections, one
//! per request in flight. Measured against HTTP/2 (one multiplexed connection) with the backup
//! pipeline's 3 concurrent multipart uploads, HTTP/1.1 was as fast or a little faster (1 GiB, 5
//! runs each: 5.8 s against 6.2 s on average), and its connections spread one agent's requests
//! (TLS, multipart parsing) over the server's workers, where HTTP/2 puts them all on one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use asgard_core::ChunkId;
use asgard_core::Lang;
use asgard_core::protocol::{ApproveRequest, ApproveResponse};
use asgard_core::protocol::{
    CheckRequest, CheckResponse, CommitRequest, CommitResponse, ErrorBody, FetchRequest, ListQuery,
    ListResponse, LoginRequest, LoginResponse, ManifestRequest, ManifestResponse, RunAccepted,
    RunReport, UploadResponse, WebLinkResponse, WebPasswordRequest,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::present::session as present;

mod upload;

/// Idle connections are closed after this long, safely before the server's keep-alive timeout
/// (actix-web's default, 5 s) closes them under a request that is just being sent.
const POOL_IDLE: Duration = Duration::from_secs(3);

/// A certificate fingerprint: SHA-256 of the DER bytes.
pub(crate) type Fingerprint = [u8; 32];

/// Parses a fingerprint written in hex, any case, with or without `:` (or space) separators.
pub(crate) fn parse_fingerprint(text: &str) -> Option<Fingerprint> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect();
    let bytes = asgard_core::id::from_hex(&hex)?;
    bytes.try_into().ok()
}

/// The text form the server prints: uppercase hex pairs joined by `:`.
pub(crate) fn format_fingerprint(fp: &Fingerprint) -> String {
    fp.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What the verifier saw; shared between the TLS layer and the client.
#[derive(Debug, Default)]
pub(crate) struct PinState {
    inner: Mutex<PinInner>,
}

#[derive(Debug, Default)]
struct PinInner {
    expected: Option<Fingerprint>,
    /// Set when a certificate was accepted without a pin (trust on first use).
    first_use: Option<Fingerprint>,
    /// Set when a certificate did not match: (expected, seen).
    mismatch: Option<(Fingerprint, Fingerprint)>,
}

impl PinState {
    pub(crate) fn new(expected: Option<Fingerprint>) -> Self {
        PinState {
            inner: Mutex::new(PinInner {
                expected,
                ..PinInner::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PinInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fingerprint trusted on first use in this run, if any.
    pub(crate) fn first_use(&self) -> Option<Fingerprint> {
        self.lock().first_use
    }

    /// Checks a certificate against the pin; without one, accepts it and pins it for the rest of
    /// the run.
    fn check(&self, cert_der: &[u8]) -> bool {
        let seen: Fingerprint = Sha256::digest(cert_der).into();
        let mut inner = self.lock();
        match inner.expected {
            Some(e) if e == seen => true,
            Some(e) => {
                inner.mismatch = Some((e, seen));
                false
            }
            None => {
                inner.expected = Some(seen);
                inner.first_use = Some(seen);
                true
            }
        }
    }
}

#[derive(Debug)]
struct PinVerifier {
    pin: Arc<PinState>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pin.check(end_entity.as_ref()) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls config: ring provider only (cross-compiles with mingw), pinning verifier, ALPN
/// http/1.1 (see the module docs).
fn tls_config(pin: Arc<PinState>) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinVerifier { pin, algorithms }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The API client. Errors come back as `anyhow` errors whose text is already in the user's
/// language. Clones share the connection pool, the pin and the token.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    pin: Arc<PinState>,
    lang: Lang,
    /// The largest upload body the server is known to take (learned from its 413 answers).
    upload_limit: Arc<std::sync::atomic::AtomicU64>,
}

impl Client {
    pub(crate) fn new(
        base_url: &str,
        pin: Option<Fingerprint>,
        lang: Lang,
    ) -> anyhow::Result<Client> {
        let pin = Arc::new(PinState::new(pin));
        let http = reqwest::Client::builder()
            .http1_only()
            .tls_backend_preconfigured(tls_config(pin.clone())?)
            // The server closes a connection idle for 5 s; a request sent just then would fail.
            .pool_idle_timeout(POOL_IDLE)
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(600))
            .user_agent(concat!("asgard-agent/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            token: None,
            pin,
            lang,
            upload_limit: Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
        })
    }

    pub(crate) fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn pin(&self) -> &PinState {
        &self.pin
    }

    pub(crate) fn lang(&self) -> Lang {
        self.lang
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Ok(resp),
            Ok(resp) => Err(self.api_error(resp).await),
            Err(e) => Err(self.transport_error(&e)),
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let resp = self.send(req).await?;
        resp.json::<T>().await.map_err(|e| {
            anyhow!(
                "{}: {}",
                self.lang.pick(
                    "Unerwartete Antwort vom Server",
                    "Unexpected answer from the server"
                ),
                error_chain(&e)
            )
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /api/devices/approve`: this (active) device approves a pending device of its user
    /// by the code that device shows.
    pub(crate) async fn approve(&self, code: &str) -> anyhow::Result<ApproveResponse> {
        let body = ApproveRequest {
            code: code.to_owned(),
        };
        self.json(self.http.post(self.url("/api/devices/approve")).json(&body))
            .await
    }

    /// `POST /api/web-link` (issue 14): a one-time login link for the browser.
    pub(crate) async fn web_link(&self) -> anyhow::Result<WebLinkResponse> {
        self.json(self.http.post(self.url("/api/web-link"))).await
    }

    /// `POST /api/web-password` (issue 14): the user's web password for `/login`.
    pub(crate) async fn web_password(&self, password: &str) -> anyhow::Result<()> {
        let body = WebPasswordRequest {
            password: password.to_owned(),
        };
        self.send(self.http.post(self.url("/api/web-password")).json(&body))
            .await?;
        Ok(())
    }

    /// `POST /api/login`, with the device token when there is one.
    pub(crate) async fn login(&self, req: &LoginRequest) -> anyhow::Result<LoginResponse> {
        self.json(self.http.post(self.url("/api/login")).json(req))
            .await
    }

    /// `POST /api/check`: which of these chunks must be uploaded.
    pub(crate) async fn check(&self, chunks: Vec<ChunkId>) -> anyhow::Result<Vec<ChunkId>> {
        let req = CheckRequest { chunks };
        let resp: CheckResponse = self
            .json(self.http.post(self.url("/api/check")).json(&req))
            .await?;
        Ok(resp.missing)
    }

    /// `POST /api/upload`: one multipart part per chunk, named by its id, body in stored form;
    /// in requests within the server's limit, repeated while the server is busy (see
    /// [`upload`]).
    pub(crate) async fn upload(
        &self,
        chunks: Vec<(ChunkId, Vec<u8>)>,
    ) -> anyhow::Result<UploadResponse> {
        upload::upload(self, chunks).await
    }

    /// `POST /api/commit`.
    pub(crate) async fn commit(&self, req: &CommitRequest) -> anyhow::Result<CommitResponse> {
        self.json(self.http.post(self.url("/api/commit")).json(req))
            .await
    }

    /// `GET /api/list`, one page.
    pub(crate) async fn list(&self, query: &ListQuery) -> anyhow::Result<ListResponse> {
        self.json(self.http.get(self.url("/api/list")).query(query))
            .await
    }

    /// `POST /api/manifest`: the chunk lists of these versions.
    pub(crate) async fn manifest(&self, version_ids: Vec<u64>) -> anyhow::Result<ManifestResponse> {
        let req = ManifestRequest { version_ids };
        self.json(self.http.post(self.url("/api/manifest")).json(&req))
            .await
    }

    /// `POST /api/fetch`: these chunks in stored form, as a streaming body of frames
    /// (`asgard_core::frames`).
    pub(crate) async fn fetch(&self, chunks: Vec<ChunkId>) -> anyhow::Result<reqwest::Response> {
        let req = FetchRequest { chunks };
        self.send(self.http.post(self.url("/api/fetch")).json(&req))
            .await
    }

    /// `POST /api/runs`: how this run went.
    pub(crate) async fn report_run(&self, report: &RunReport) -> anyhow::Result<RunAccepted> {
        self.json(self.http.post(self.url("/api/runs")).json(report))
            .await
    }

    /// A connection error; a pin mismatch is reported as what it is.
    fn transport_error(&self, e: &reqwest::Error) -> anyhow::Error {
        if let Some((expected, seen)) = self.pin.lock().mismatch {
            let (exp, got) = (format_fingerprint(&expected), format_fingerprint(&seen));
            return anyhow!(present::fingerprint_changed(&exp, &got, self.lang));
        }
        anyhow!(
            "{} {}: {}",
            self.lang.pick(
                "Keine Verbindung zum Server",
                "Cannot connect to the server"
            ),
            self.base,
            error_chain(e)
        )
    }

    async fn api_error(&self, resp: reqwest::Response) -> anyhow::Error {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => anyhow!(present::server_error(&body, self.lang)),
            Err(_) => anyhow!(
                "{} {status}: {}",
                self.lang.pick("Server-Fehler", "Server error"),
                text.chars().take(300).collect::<String>()
            ),
        }
    }
}

/// An error with all its causes, `a: b: c` (reqwest's own text alone says little).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_forms_are_equal() {
        let fp: Fingerprint = Sha256::digest(b"cert").into();
        let text = format_fingerprint(&fp);
        assert_eq!(text.len(), 32 * 3 - 1);
        assert_eq!(text, text.to_uppercase());
        assert_eq!(parse_fingerprint(&text), Some(fp));
        assert_eq!(parse_fingerprint(&text.to_lowercase()), Some(fp));
        assert_eq!(parse_fingerprint(&text.replace(':', "")), Some(fp));
        assert_eq!(parse_fingerprint("AB:CD"), None);
        assert_eq!(parse_fingerprint(&"ZZ".repeat(32)), None);
    }

    #[test]
    fn pin_accepts_match_rejects_change_and_trusts_first_use() {
        let pinned = PinState::new(Some(Sha256::digest(b"good").into()));
        assert!(pinned.check(b"good"));
        assert!(!pinned.check(b"evil"));
        assert!(pinned.lock().mismatch.is_some());
        assert_eq!(pinned.first_use(), None);

        let tofu = PinState::new(None);
        assert!(tofu.check(b"first"));
        assert_eq!(tofu.first_use(), Some(Sha256::digest(b"first").into()));
        // Within the run the first certificate is now the pin.
        assert!(tofu.check(b"first"));
        assert!(!tofu.check(b"second"));
    }
}
