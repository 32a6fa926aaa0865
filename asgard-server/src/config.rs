//! Server configuration: a YAML file (every key optional), then command-line overrides.

use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// A span of time written as a number and a unit: `90s`, `15m`, `24h`, `7d` (also `0s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `<digits><unit>` with the unit `s`, `m`, `h` or `d`.
    pub fn parse(text: &str) -> Result<HumanDuration, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("„{text}“: erwartet z. B. 90s, 15m, 24h, 7d"))?;
        let secs = match unit {
            "s" => Some(n),
            "m" => n.checked_mul(60),
            "h" => n.checked_mul(3600),
            "d" => n.checked_mul(86_400),
            _ => None,
        }
        .ok_or_else(|| format!("„{text}“: erwartet z. B. 90s, 15m, 24h, 7d"))?;
        Ok(HumanDuration(Duration::from_secs(secs)))
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs();
        match s {
            0 => write!(f, "0s"),
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
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
    /// How often `serve` copies the metadata database into `<data_dir>/db-backups/`. Default `24h`;
    /// `0s` turns the automatic copy off.
    pub db_backup_interval: HumanDuration,
    /// How many automatic database copies are kept (the oldest go first). Default 7, at least 1.
    pub db_backup_keep: u32,
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
            db_backup_interval: HumanDuration(Duration::from_secs(24 * 3600)),
            db_backup_keep: 7,
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
        if self.db_backup_keep < 1 {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "db_backup_keep muss mindestens 1 sein",
                    "db_backup_keep must be at least 1"
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
    fn durations_parse_and_print() {
        for (text, secs) in [
            ("0s", 0),
            ("90s", 90),
            ("15m", 900),
            ("24h", 86_400),
            ("7d", 604_800),
        ] {
            let d = HumanDuration::parse(text).unwrap();
            assert_eq!(d.0.as_secs(), secs, "{text}");
        }
        assert_eq!(HumanDuration::parse("24h").unwrap().to_string(), "1d");
        assert_eq!(HumanDuration::parse("90m").unwrap().to_string(), "90m");
        for bad in ["", "h", "5", "5x", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad}");
        }
        let c = Config::from_yaml(
            "db_backup_interval: 6h\ndb_backup_keep: 3\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.db_backup_interval.0, Duration::from_secs(6 * 3600));
        assert_eq!(c.db_backup_keep, 3);
        let err = Config::from_yaml("db_backup_interval: bald\n", Path::new("x")).unwrap_err();
        assert!(format!("{err:#}").contains("bald"), "{err:#}");
        assert!(Config::from_yaml("db_backup_keep: 0\n", Path::new("x")).is_err());
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
