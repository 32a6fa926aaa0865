//! A small blocking HTTPS client for the requests the agent would not make: hand-made uploads and
//! commits, other users' ids, oversized bodies, the metrics.

use serde_json::Value;

use crate::Server;

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

    /// `GET`; returns the status and the raw answer.
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(with_token(req, token))
    }

    /// `POST` of a JSON body; returns the status and the raw answer (e.g. a restored file).
    pub fn post_json_bytes(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Vec<u8>) {
        let req = self.client.post(format!("{}{path}", self.base)).json(body);
        self.send(with_token(req, token))
    }

    /// `POST` of a JSON body; returns the status and the JSON answer (`null` if it is none).
    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let (status, bytes) = self.post_json_bytes(path, token, body);
        (status, json_or_null(&bytes))
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
        (status, json_or_null(&bytes))
    }
}

/// A whole answer: status, headers as `(name, value)` pairs, body.
pub type FullAnswer = (u16, Vec<(String, String)>, Vec<u8>);

impl Api {
    /// The client, for requests the helpers above do not make (streamed bodies, own headers).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request; returns (status, headers as `(name, value)` pairs, body), or the
    /// transport error as text (a dropped connection).
    pub fn send_full(&self, req: reqwest::RequestBuilder) -> Result<FullAnswer, String> {
        self.rt.block_on(async {
            let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
                .collect();
            let body = resp.bytes().await.map_err(|e| format!("{e:?}"))?.to_vec();
            Ok((status, headers, body))
        })
    }

    /// Runs a future on this client's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// A multipart/form-data upload body with one part per `(name, bytes)`, as the agent sends it:
/// (content type, body).
pub fn multipart(parts: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "asgard-e2e-boundary-7f3a9c";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn with_token(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

fn json_or_null(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}
