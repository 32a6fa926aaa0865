//! Server configuration: a YAML file (every key optional), then command-line overrides.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use asgard_core::Lang;
use serde::{Deserialize, Serialize};

/// Who may register a new device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Any new user/device is registered and active at once (default).
    #[default]
    Open,
    /// New devices are registered as pending until an admin approves them.
    Approve,
    /// No new devices.
    Closed,
}

/// An own certificate instead of the self-signed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The server configuration. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Metadata, chunks, TLS material and the lock file. Default `./asgard-data`.
    pub data_dir: PathBuf,
    /// Listen address. Default `0.0.0.0:8443`.
    pub listen: String,
    /// Content versions kept per path. Default 4, at least 1.
    pub keep_versions: u32,
    /// Who may register a new device. Default `open`.
    pub registration: Registration,
    /// When set, a new device must present this key at login. Default none.
    pub enrollment_key: Option<String>,
    /// Language of messages; default from `LANG`, else German.
    pub language: Option<Lang>,
    /// Own certificate; default a self-signed one kept in `<data_dir>/tls/`.
    pub tls: Option<TlsFiles>,
    /// Largest upload request body (sum of its chunk parts). Default 256 MiB.
    pub max_upload_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./asgard-data"),
            listen: "0.0.0.0:8443".to_owned(),
            keep_versions: 4,
            registration: Registration::Open,
            enrollment_key: None,
            language: None,
            tls: None,
            max_upload_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Parses YAML text; `origin` names the file in error messages.
    pub fn from_yaml(text: &str, origin: &Path) -> anyhow::Result<Config> {
        let lang = Lang::resolve(None, std::env::var("LANG").ok().as_deref());
        // An empty file (or one holding only comments) means "all defaults".
        let config: Config = if text.trim().is_empty()
            || text.lines().all(|l| {
                let l = l.trim();
                l.is_empty() || l.starts_with('#') || l == "---"
            }) {
            Config::default()
        } else {
            yaml_serde::from_str(text).with_context(|| {
                format!(
                    "{} {}",
                    lang.pick(
                        "Ungültige Konfigurationsdatei",
                        "Invalid configuration file"
                    ),
                    origin.display()
                )
            })?
        };
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads the file, or returns the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let lang = Lang::resolve(None, std::env::var("LANG").ok().as_deref());
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "{} {}",
                lang.pick(
                    "Konfigurationsdatei kann nicht gelesen werden:",
                    "Cannot read configuration file"
                ),
                path.display()
            )
        })?;
        Config::from_yaml(&text, path)
    }

    fn validate(&self, origin: &Path) -> anyhow::Result<()> {
        let lang = self.lang();
        if self.keep_versions < 1 {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "keep_versions muss mindestens 1 sein",
                    "keep_versions must be at least 1"
                )
            );
        }
        if self.max_upload_bytes == 0 {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "max_upload_bytes muss größer als 0 sein",
                    "max_upload_bytes must be greater than 0"
                )
            );
        }
        Ok(())
    }

    /// The language for user-facing text: the config's choice, else `LANG`, else German.
    pub fn lang(&self) -> Lang {
        Lang::resolve(self.language, std::env::var("LANG").ok().as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_yaml("# nothing\n", Path::new("x.yaml")).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.keep_versions, 4);
        assert_eq!(c.listen, "0.0.0.0:8443");
        assert_eq!(c.registration, Registration::Open);
        assert_eq!(c.max_upload_bytes, 256 << 20);
    }

    #[test]
    fn parses_every_key() {
        let yaml = "data_dir: /srv/asgard\nlisten: 127.0.0.1:9000\nkeep_versions: 2\n\
                    registration: approve\nenrollment_key: geheim\nlanguage: en\n\
                    tls:\n  cert: /c.pem\n  key: /k.pem\nmax_upload_bytes: 1000\n";
        let c = Config::from_yaml(yaml, Path::new("x.yaml")).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/asgard"));
        assert_eq!(c.keep_versions, 2);
        assert_eq!(c.registration, Registration::Approve);
        assert_eq!(c.enrollment_key.as_deref(), Some("geheim"));
        assert_eq!(c.lang(), Lang::En);
        assert_eq!(c.tls.unwrap().key, PathBuf::from("/k.pem"));
        assert_eq!(c.max_upload_bytes, 1000);
    }

    #[test]
    fn unknown_key_is_an_error_naming_key_and_file() {
        let err =
            Config::from_yaml("keep_version: 3\n", Path::new("/etc/asgard.yaml")).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("keep_version"), "{text}");
        assert!(text.contains("/etc/asgard.yaml"), "{text}");
    }

    /// `config.example.yaml` documents every default: parsed, it is the default config.
    #[test]
    fn example_config_shows_the_defaults() {
        let text = include_str!("../../config.example.yaml");
        let c = Config::from_yaml(text, Path::new("config.example.yaml")).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn keep_versions_zero_is_refused() {
        assert!(Config::from_yaml("keep_versions: 0\n", Path::new("x")).is_err());
    }

    #[test]
    fn missing_file_is_an_error_but_no_file_is_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Config::load(Some(&dir.path().join("nope.yaml"))).is_err());
        assert_eq!(Config::load(None).unwrap(), Config::default());
    }
}
