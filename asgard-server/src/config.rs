//! Server configuration: a YAML file (every key optional), then command-line overrides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use asgard_core::Lang;
use serde::{Deserialize, Serialize};

pub use crate::store::StoreConfig;
pub use limits::Limits;
pub use web::WebConfig;

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
    /// When set, `/metrics` answers a scraper that sends `Authorization: Bearer <metrics_token>`
    /// (at least 16 characters); unset, `/metrics` is off (404). Default none.
    pub metrics_token: Option<String>,
    /// Most active devices per user; approving one more is refused. Default 32, at least 1.
    pub devices_per_user: u32,
    /// How long the re-enrollment code of `device reset` is valid. Default `7d`.
    pub reenroll_code_valid: HumanDuration,
    /// Language of messages; default from `LANG`, else German.
    pub language: Option<Lang>,
    /// Own certificate; default a self-signed one kept in `<data_dir>/tls/`.
    pub tls: Option<TlsFiles>,
    /// Largest upload request body (its `Content-Length`). Default 64 MiB; at most
    /// `upload_budget_bytes`.
    pub max_upload_bytes: u64,
    /// The bytes of all upload request bodies in flight together (see `api/budget.rs`); a
    /// request waits for its share up to `upload_wait`, then gets 503 `busy`. Default 128 MiB.
    pub upload_budget_bytes: u64,
    /// How long an upload waits for its share of `upload_budget_bytes`. Default `10s`.
    pub upload_wait: HumanDuration,
    /// Days the versions of a deleted path are kept after its deletion. Default 90.
    pub deleted_keep_days: u32,
    /// How long a chunk stays after an upload or a `check` answer vouched for it, even when no
    /// version references it (the lease of a running backup). Default `1h`.
    pub gc_grace: HumanDuration,
    /// Time between two garbage collection passes inside `serve`; the first one runs one interval
    /// after the start. Default `24h`.
    pub gc_interval: HumanDuration,
    /// How often `serve` copies the metadata database into `<data_dir>/db-backups/`. Default `24h`;
    /// `0s` turns the automatic copy off.
    pub db_backup_interval: HumanDuration,
    /// How many automatic database copies are kept (the oldest go first). Default 7, at least 1.
    pub db_backup_keep: u32,
    /// How often `serve` verifies a sample of the chunks; `0s` turns the periodic verify off.
    /// Default `24h`.
    pub verify_interval: HumanDuration,
    /// Percentage of chunks the periodic verify reads (1–100; chunks marked bad are always
    /// read). Default 5.
    pub verify_sample_percent: u32,
    /// A device whose last successful backup is older than this is shown as overdue (admin
    /// console overview, `overview`). Default `2d`.
    pub overdue_after: HumanDuration,
    /// The chunk store (`store:`): backend, folder, segment size, compaction threshold; see
    /// [`StoreConfig`].
    pub store: StoreConfig,
    /// Sizes, counts and rates of requests (`limits:`); see [`Limits`].
    pub limits: Limits,
    /// The admin console's sessions and login back-off (`web:`); see [`WebConfig`].
    pub web: WebConfig,
    /// The deprecated flat spelling of `store.segment_size`: still read, with a warning, and moved
    /// into [`Config::store`] by [`Config::from_yaml`] (so `None` after loading).
    #[serde(rename = "segment_size", skip_serializing)]
    pub(crate) flat_segment_size: Option<u64>,
    /// The deprecated flat spelling of `store.compact_below_percent`; as `flat_segment_size`.
    #[serde(rename = "compact_below_percent", skip_serializing)]
    pub(crate) flat_compact_below_percent: Option<u32>,
}

/// A duration written as in `30m`, `1h`, `1h30m`, `0s`, `500ms` or `7d` (units `ms`, `s`, `m`,
/// `h`, `d`); shown in the largest unit that divides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub std::time::Duration);

impl HumanDuration {
    pub const fn secs(s: u64) -> Self {
        HumanDuration(std::time::Duration::from_secs(s))
    }

    /// Microseconds, saturating (for comparisons with redb timestamps).
    pub fn as_micros_i64(self) -> i64 {
        i64::try_from(self.0.as_micros()).unwrap_or(i64::MAX)
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || format!("invalid duration \"{text}\" (examples: 30s, 15m, 1h, 1h30m, 7d)");
        if t.is_empty() {
            return Err(bad());
        }
        let mut total_ms: u64 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let factor_ms: u64 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total_ms = n
                .checked_mul(factor_ms)
                .and_then(|v| total_ms.checked_add(v))
                .ok_or_else(bad)?;
        }
        Ok(HumanDuration(std::time::Duration::from_millis(total_ms)))
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms >= size && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        if ms == 0 {
            write!(f, "0s")
        } else {
            write!(f, "{ms}ms")
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
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./asgard-data"),
            listen: "0.0.0.0:8443".to_owned(),
            keep_versions: 4,
            registration: Registration::Open,
            enrollment_key: None,
            metrics_token: None,
            devices_per_user: 32,
            reenroll_code_valid: HumanDuration(std::time::Duration::from_secs(7 * 86_400)),
            language: None,
            tls: None,
            max_upload_bytes: 64 * 1024 * 1024,
            upload_budget_bytes: 128 * 1024 * 1024,
            upload_wait: HumanDuration::secs(10),
            deleted_keep_days: 90,
            gc_grace: HumanDuration::secs(3600),
            gc_interval: HumanDuration::secs(24 * 3600),
            db_backup_interval: HumanDuration(Duration::from_secs(24 * 3600)),
            db_backup_keep: 7,
            verify_interval: HumanDuration::secs(24 * 3600),
            verify_sample_percent: 5,
            overdue_after: HumanDuration::secs(2 * 86_400),
            store: StoreConfig::default(),
            limits: Limits::default(),
            web: WebConfig::default(),
            flat_segment_size: None,
            flat_compact_below_percent: None,
        }
    }
}

impl Config {
    /// Parses YAML text; `origin` names the file in error messages.
    pub fn from_yaml(text: &str, origin: &Path) -> anyhow::Result<Config> {
        let lang = Lang::resolve(None, std::env::var("LANG").ok().as_deref());
        // An empty file (or one holding only comments) means "all defaults".
        let mut config: Config = if text.trim().is_empty()
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
        config.move_flat_store_keys(text, origin)?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Moves the deprecated flat keys `segment_size` and `compact_below_percent` into the store
    /// section, with a warning naming the key and the file; the same setting in both places is
    /// an error naming both.
    fn move_flat_store_keys(&mut self, text: &str, origin: &Path) -> anyhow::Result<()> {
        if self.flat_segment_size.is_none() && self.flat_compact_below_percent.is_none() {
            return Ok(());
        }
        // Which keys the file's store section sets (the parsed one has the defaults filled in).
        #[derive(Deserialize, Default)]
        struct File {
            store: Option<StoreKeys>,
        }
        #[derive(Deserialize, Default)]
        struct StoreKeys {
            segment_size: Option<serde::de::IgnoredAny>,
            compact_below_percent: Option<serde::de::IgnoredAny>,
        }
        let keys = yaml_serde::from_str::<File>(text)
            .unwrap_or_default()
            .store
            .unwrap_or_default();
        let lang = self.lang();
        for (key, flat, in_section) in [
            (
                "segment_size",
                self.flat_segment_size.is_some(),
                keys.segment_size.is_some(),
            ),
            (
                "compact_below_percent",
                self.flat_compact_below_percent.is_some(),
                keys.compact_below_percent.is_some(),
            ),
        ] {
            if !flat {
                continue;
            }
            if in_section {
                bail!(
                    "{}: {}",
                    origin.display(),
                    present::key_set_twice(key, lang)
                );
            }
            tracing::warn!(
                file = %origin.display(),
                key,
                "{}: the configuration key {key} is deprecated; write it as {key} in the store: section",
                origin.display()
            );
        }
        if let Some(v) = self.flat_segment_size.take() {
            self.store.segment_size = v;
        }
        if let Some(v) = self.flat_compact_below_percent.take() {
            self.store.compact_below_percent = v;
        }
        Ok(())
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
        if self.devices_per_user < 1 {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "devices_per_user muss mindestens 1 sein",
                    "devices_per_user must be at least 1"
                )
            );
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.chars().count() < 16 || t.trim() != t)
        {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "metrics_token muss mindestens 16 Zeichen lang sein und darf nicht mit Leerzeichen beginnen oder enden",
                    "metrics_token must be at least 16 characters long and must not begin or end with spaces"
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
        if self.max_upload_bytes > self.upload_budget_bytes {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "max_upload_bytes darf nicht größer als upload_budget_bytes sein (eine Upload-Anfrage muss in das Budget passen)",
                    "max_upload_bytes must not exceed upload_budget_bytes (an upload request must fit into the budget)"
                )
            );
        }
        if self.gc_interval.0.is_zero() {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "gc_interval muss größer als 0 sein",
                    "gc_interval must be greater than 0"
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
        if self.store.segment_size < 4096 {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "segment_size muss mindestens 4096 (Bytes) sein",
                    "segment_size must be at least 4096 (bytes)"
                )
            );
        }
        if self.store.compact_below_percent > 100 {
            bail!(
                "{}: {}",
                origin.display(),
                lang.pick(
                    "compact_below_percent muss zwischen 0 und 100 liegen",
                    "compact_below_percent must be between 0 and 100"
                )
            );
        }
        self.limits.validate(origin, lang)?;
        self.web.validate(origin, lang)?;
        Ok(())
    }

    /// The tuning of the packed chunk store (kept for callers of the flat keys' time; the same as
    /// `self.store.packed_options()`).
    pub fn packed_options(&self) -> crate::store::PackedOptions {
        self.store.packed_options()
    }

    /// The interval of the periodic verify; `None` when it is off (`0s`).
    pub fn verify_every(&self) -> Option<std::time::Duration> {
        Some(self.verify_interval.0).filter(|d| !d.is_zero())
    }

    /// The language for user-facing text: the config's choice, else `LANG`, else German.
    pub fn lang(&self) -> Lang {
        Lang::resolve(self.language, std::env::var("LANG").ok().as_deref())
    }
}

pub mod limits;
mod present;
pub mod web;

#[cfg(test)]
mod tests;
