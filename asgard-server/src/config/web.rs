//! The `web:` section: the admin console's sessions and the back-off of failed logins.

use std::path::Path;

use anyhow::bail;
use asgard_core::Lang;
use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// The `web:` section of the configuration. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// A browser session ends after this long without a request. Default `30m`.
    pub session_idle: HumanDuration,
    /// A browser session ends this long after its login, however busy. Default `12h`.
    pub session_max: HumanDuration,
    /// The first lockout after repeated failed logins (of one account name or one client
    /// address); each further failure doubles it up to `lockout_max`. Default `1s`.
    pub lockout_base: HumanDuration,
    /// The longest lockout. Default `15m`.
    pub lockout_max: HumanDuration,
    /// Issue 14: the server's address as users' browsers reach it (`https://host:port`), for
    /// the one-time login links. Default none: a link is the agent's own server URL.
    pub public_url: Option<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session_idle: HumanDuration::secs(30 * 60),
            session_max: HumanDuration::secs(12 * 3600),
            lockout_base: HumanDuration::secs(1),
            lockout_max: HumanDuration::secs(15 * 60),
            public_url: None,
        }
    }
}

impl WebConfig {
    pub(super) fn validate(&self, origin: &Path, lang: Lang) -> anyhow::Result<()> {
        for (key, value) in [
            ("session_idle", self.session_idle),
            ("session_max", self.session_max),
            ("lockout_base", self.lockout_base),
            ("lockout_max", self.lockout_max),
        ] {
            if value.0.is_zero() {
                bail!(
                    "{}: web.{key} {}",
                    origin.display(),
                    lang.pick("muss größer als 0 sein", "must be greater than 0")
                );
            }
        }
        if let Some(url) = &self.public_url
            && (!url.starts_with("https://")
                || url.len() <= "https://".len()
                || url.len() > 512
                || url.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            bail!(
                "{}: web.public_url {}",
                origin.display(),
                lang.pick(
                    "muss eine https://-Adresse sein",
                    "must be an https:// address"
                )
            );
        }
        if self.lockout_base > self.lockout_max {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "web.lockout_base darf nicht größer als web.lockout_max sein",
                    "web.lockout_base must not exceed web.lockout_max"
                )
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn the_web_section_parses_and_refuses_nonsense() {
        let c = Config::from_yaml(
            "web:\n  session_idle: 10m\n  lockout_base: 2s\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        assert_eq!(c.web.session_idle, HumanDuration::secs(600));
        assert_eq!(c.web.lockout_base, HumanDuration::secs(2));
        assert_eq!(c.web.session_max, HumanDuration::secs(12 * 3600));
        let bad = |yaml: &str| {
            format!(
                "{:#}",
                Config::from_yaml(yaml, Path::new("c.yaml")).unwrap_err()
            )
        };
        assert!(bad("web:\n  session_idel: 10m\n").contains("session_idel"));
        assert!(bad("web:\n  session_max: 0s\n").contains("web.session_max"));
        assert!(bad("web:\n  lockout_base: 1h\n").contains("lockout_max"));
        assert!(bad("web:\n  public_url: http://x\n").contains("web.public_url"));
        let c = Config::from_yaml(
            "web:\n  public_url: https://backup.example:8443\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        assert_eq!(
            c.web.public_url.as_deref(),
            Some("https://backup.example:8443")
        );
    }
}
