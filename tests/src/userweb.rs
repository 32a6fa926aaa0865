//! The end user's pages over HTTP (issue 14): a client that follows no redirects and keeps no
//! cookies (each request names its session), and the way in with `asgard-agent web`.
//!
//! ```ignore
//! let web = UserWeb::new(&server);
//! let session = web.user_session(&anna);          // `asgard-agent web --no-open`, then the link
//! let page = web.get("/my", Some(&session));
//! ```

use reqwest::header::HeaderMap;

use crate::{Agent, Api, Server, text};

/// A client of the web pages, with no cookie jar and no redirects.
pub struct UserWeb {
    pub api: Api,
    pub client: reqwest::Client,
    /// `https://127.0.0.1:PORT`, the server's own origin.
    pub origin: String,
}

/// One answer.
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The session cookie this answer sets, if any.
    pub fn session(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("asgard_session="))
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
            .filter(|c| !c.is_empty())
    }

    /// The value of the page's hidden CSRF field.
    pub fn csrf(&self) -> String {
        self.body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body))
            .to_owned()
    }
}

impl UserWeb {
    pub fn new(server: &Server) -> UserWeb {
        UserWeb {
            api: Api::new(server),
            client: reqwest::Client::builder()
                .tls_danger_accept_invalid_certs(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            origin: server.url.trim_end_matches('/').to_owned(),
        }
    }

    /// Sends a request.
    pub fn send(&self, req: reqwest::RequestBuilder) -> Page {
        self.api.block_on(async {
            let r = req.send().await.unwrap();
            Page {
                status: r.status().as_u16(),
                headers: r.headers().clone(),
                body: r.text().await.unwrap_or_default(),
            }
        })
    }

    /// `GET path` with the session's cookie, if any.
    pub fn get(&self, path: &str, session: Option<&str>) -> Page {
        let mut req = self.client.get(format!("{}{path}", self.origin));
        if let Some(s) = session {
            req = req.header("cookie", format!("asgard_session={s}"));
        }
        self.send(req)
    }

    /// A form post from the server's own origin (or from `origin`).
    pub fn post_form(
        &self,
        path: &str,
        session: Option<&str>,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> Page {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = self
            .client
            .post(format!("{}{path}", self.origin))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", origin.unwrap_or(&self.origin))
            .body(body);
        if let Some(s) = session {
            req = req.header("cookie", format!("asgard_session={s}"));
        }
        self.send(req)
    }

    /// `asgard-agent web --no-open` of `agent`: the link it printed.
    pub fn link(&self, agent: &Agent) -> String {
        let out = agent.ok(["web", "--no-open"]);
        let stdout = text(&out.stdout);
        stdout
            .split_whitespace()
            .find(|w| w.starts_with("https://") && w.contains("/link/"))
            .unwrap_or_else(|| panic!("no link in: {stdout}"))
            .to_owned()
    }

    /// Opens a link (its path on this server): the answer, whatever it is.
    pub fn open_link(&self, link: &str) -> Page {
        let path = &link[link.find("/link/").expect("a link")..];
        self.get(path, None)
    }

    /// A user session of `agent`'s user, by the link of `asgard-agent web`.
    pub fn user_session(&self, agent: &Agent) -> String {
        let page = self.open_link(&self.link(agent));
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.header("location"), "/my");
        page.session().expect("the link sets a session cookie")
    }
}

/// Percent-encoding of a form value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
