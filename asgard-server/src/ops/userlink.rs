//! Issue 14: `asgard-server user link NAME` and the restore-link button of the users page: a
//! one-time login link for a user whose computer is gone (the same links as `asgard-agent web`,
//! see `service::webauth::user`), made by an admin and recorded in the audit log; the user's
//! start page then says who made it and when.

use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::config::Config;
use crate::db::{Db, LinkCreator};
use crate::service::webauth::user::create_link;

/// What `user link` made. The link is shown once (its secret is stored only hashed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinkReport {
    pub user: String,
    /// `/link/` and the secret.
    pub path: String,
    /// The whole link: `web.public_url`, else the server's host name and port from `listen`.
    pub url: String,
    pub expires_us: i64,
}

/// The address users reach the server by, as far as the server knows it.
pub(crate) fn base_url(config: &Config) -> String {
    if let Some(public) = &config.web.public_url {
        return public.trim_end_matches('/').to_owned();
    }
    let port = config
        .listen
        .rsplit_once(':')
        .map_or("8443", |(_, p)| p)
        .to_owned();
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .unwrap_or_else(|| "localhost".to_owned());
    format!("https://{host}:{port}")
}

/// Makes a restore link for `user`; `by` is the admin (`None`: a command on the server's
/// machine, recorded as `cli`).
pub(crate) fn make(
    db: &Db,
    config: &Config,
    user: &str,
    by: Option<&str>,
    now_us: i64,
) -> Result<LinkReport, OpsError> {
    let not_found = || OpsError::UserNotFound {
        user: user.to_owned(),
    };
    let name = asgard_core::names::normalize(user).map_err(|_| not_found())?;
    let id = db.user_id(&name)?.ok_or_else(not_found)?;
    let creator = LinkCreator::Admin(by.unwrap_or("cli").to_owned());
    let link = create_link(db, id, creator, now_us)?;
    Ok(LinkReport {
        user: name,
        url: format!("{}{}", base_url(config), link.path),
        path: link.path,
        expires_us: link.expires_us,
    })
}
