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
    /// How often `serve` verifies a sample of the chunks (see [`parse_duration`]); `0s` turns the
    /// periodic verify off. Default `24h`.
    pub verify_interval: String,
    /// Percentage of chunks the periodic verify reads (1–100; chunks marked bad are always
    /// read). Default 5.
    pub verify_sample_percent: u32,
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
            verify_interval: "24h".to_owned(),
            verify_sample_percent: 5,
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
        if parse_duration(&self.verify_interval).is_none() {
            bail!(
                "{}: {}: {}",
                origin.display(),
                lang.pick(
                    "verify_interval ist keine Dauer (z. B. 30m, 24h, 7d)",
                    "verify_interval is not a duration (e.g. 30m, 24h, 7d)"
                ),
                self.verify_interval
            );
        }
        if !(1..=100).contains(&self.verify_sample_percent) {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "verify_sample_percent muss zwischen 1 und 100 liegen",
                    "verify_sample_percent must be between 1 and 100"
                )
            );
        }
        Ok(())
    }

    /// The interval of the periodic verify; `None` when it is off (`0s`).
    pub fn verify_every(&self) -> Option<std::time::Duration> {
        parse_duration(&self.verify_interval).filter(|d| !d.is_zero())
    }

    /// The language for user-facing text: the config's choice, else `LANG`, else German.
    pub fn lang(&self) -> Lang {
        Lang::resolve(self.language, std::env::var("LANG").ok().as_deref())
    }
}

/// A duration written as numbers with units `s`, `m`, `h` or `d`, e.g. `90s`, `15m`, `24h`,
/// `1h30m`, `7d`; `0` alone means zero.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        number.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    (any && number.is_empty()).then(|| std::time::Duration::from_secs(total))
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
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        for bad in ["", "h", "5", "1.5h", "-1h", "5x", "10m5"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn verify_settings_are_checked() {
        let c = Config::from_yaml("verify_interval: 0s\n", Path::new("x")).unwrap();
        assert_eq!(c.verify_every(), None);
        assert_eq!(
            Config::default().verify_every(),
            Some(std::time::Duration::from_secs(86_400))
        );
        let err = Config::from_yaml("verify_interval: morgen\n", Path::new("x")).unwrap_err();
        assert!(format!("{err:#}").contains("verify_interval"));
        assert!(Config::from_yaml("verify_sample_percent: 0\n", Path::new("x")).is_err());
        assert!(Config::from_yaml("verify_sample_percent: 101\n", Path::new("x")).is_err());
        let c = Config::from_yaml("verify_sample_percent: 100\n", Path::new("x")).unwrap();
        assert_eq!(c.verify_sample_percent, 100);
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
