//! The agent's config file (YAML) and where it is found.
//!
//! Lookup order: `--config FILE` (or `ASGARD_CONFIG`; a named file must exist), else the default
//! path if that file exists, else the built-in defaults. Every key has a documented default; an
//! unknown key is an error that names the key and the file.

use std::path::{Path, PathBuf};

use asgard_core::Lang;
use asgard_core::plan::{OptionalRoot, Scope};
use serde::Deserialize;

use crate::platform;

/// `server:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServerSection {
    /// Base URL, e.g. `https://backup.example:8443`. Default: none (then `--server` or
    /// `ASGARD_SERVER` must name it).
    pub(crate) url: Option<String>,
    /// SHA-256 of the server certificate (hex, any case, `:` optional). Default: none = trust on
    /// first use and remember it in the state file.
    pub(crate) fingerprint: Option<String>,
}

/// `restore:` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RestoreSection {
    /// Chunk requests a restore keeps in flight at once (1–32). Memory grows with it by at most
    /// one chunk (≤ 16 MiB, usually ≤ 1 MiB) per request. Default: 4.
    pub(crate) parallel_requests: usize,
    /// Files planned and restored together (at least 1). The metadata of a window's files and
    /// chunks is held in memory; a chunk repeated in a later window is copied from the restored
    /// file. Default: 4096.
    pub(crate) window_files: usize,
}

impl Default for RestoreSection {
    fn default() -> Self {
        RestoreSection {
            parallel_requests: 4,
            window_files: 4096,
        }
    }
}

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub(crate) server: ServerSection,
    /// Folders that `backup` without a path saves (placeholders `~`, `$HOME`, `$USER`,
    /// `%USERPROFILE%`, `%USERNAME%` allowed). Default: none = the built-in roots: `$HOME` on Linux
    /// (`/home`, `/etc`, `/opt`, `/srv`, `/root` with `scope: system`); Documents, Desktop and
    /// Pictures under `%USERPROFILE%` on Windows.
    pub(crate) user_folders: Option<Vec<String>>,
    /// Extra exclusion rules (path prefixes or gitignore-style globs), added to the built-in never
    /// list. Default: none.
    pub(crate) blacklist: Vec<String>,
    /// Optional roots to back up: `downloads`, `appdata_roaming` (Windows), `docker`, `libvirt`
    /// (Linux, system scope). Default: none.
    pub(crate) include_optional: Vec<OptionalRoot>,
    /// `user` (the user's folders) or `system` (Linux: the machine; same as `--system`).
    /// Default: `user`.
    pub(crate) scope: Scope,
    /// Whether a walk may enter other file systems mounted inside a root. Default: false.
    pub(crate) cross_filesystems: bool,
    /// Key required by a server that only admits enrolled devices. Default: none.
    pub(crate) enrollment_key: Option<String>,
    /// `de` or `en`. Default: German unless `LANG` starts with `en`.
    pub(crate) language: Option<Lang>,
    /// zstd level for uploaded chunks (0 = no compression). Default: 3.
    pub(crate) compression_level: i32,
    /// Name of this device on the server. Default: `ASGARD_DEVICE`, else the hostname.
    pub(crate) device_name: Option<String>,
    /// MiB of file data the backup pipeline may hold between its stages (read, compressed, in
    /// flight to the server); the agent needs about 20 MiB more, plus about 250 bytes per file
    /// of the run (paths seen, chunk ids sent). Values below [`MIN_MEMORY_MIB`] count as that.
    /// Default: 8 (measured: larger budgets did not back up faster here, but cost RSS).
    pub(crate) memory_mib: u32,
    /// How `restore` fetches.
    pub(crate) restore: RestoreSection,
}

/// The smallest `memory_mib` that is used (a smaller value counts as this).
pub(crate) const MIN_MEMORY_MIB: u32 = 4;

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerSection::default(),
            user_folders: None,
            blacklist: Vec::new(),
            include_optional: Vec::new(),
            scope: Scope::User,
            cross_filesystems: false,
            enrollment_key: None,
            language: None,
            compression_level: 3,
            device_name: None,
            memory_mib: 8,
            restore: RestoreSection::default(),
        }
    }
}

/// Why the config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Konfigurationsdatei {} nicht gefunden", path.display())]
    Missing { path: PathBuf },
    #[error("Konfigurationsdatei {} kann nicht gelesen werden: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Fehler in der Konfigurationsdatei {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// The configured language (`language`), if any.
    pub fn language(&self) -> Option<Lang> {
        self.language
    }

    /// The configured server URL (`server.url`), if any.
    pub fn server_url(&self) -> Option<&str> {
        self.server.url.as_deref()
    }

    /// The pipeline's memory budget in bytes (see `memory_mib`).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.memory_mib.max(MIN_MEMORY_MIB) as usize * 1024 * 1024
    }

    /// Parses YAML text; `path` names the file in errors. An empty file means all defaults.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        yaml_serde::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Loads the config: `explicit` (from `--config` / `ASGARD_CONFIG`) must exist; otherwise the
    /// default path is used when present, else the defaults. Returns the file used, if any.
    pub fn load(
        explicit: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let (path, required) = match explicit {
            Some(p) => (p.to_owned(), true),
            None => match platform::default_config_path(platform::WINDOWS, env) {
                Some(p) => (p, false),
                None => return Ok((Config::default(), None)),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Config::parse(&text, &path)?, Some(path))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if required {
                    Err(ConfigError::Missing { path })
                } else {
                    Ok((Config::default(), None))
                }
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.compression_level, 3);
        assert_eq!(c.memory_mib, 8);
        assert_eq!(c.memory_bytes(), 8 << 20);
        assert_eq!(
            Config::parse("memory_mib: 1\n", Path::new("x.yaml"))
                .unwrap()
                .memory_bytes(),
            4 << 20
        );
        assert_eq!(c.server.url, None);
        assert_eq!(Config::parse("", Path::new("x.yaml")).unwrap(), c);
        let c = Config::parse("language: en\n", Path::new("x.yaml")).unwrap();
        assert_eq!(c.language, Some(Lang::En));
        assert_eq!(c.compression_level, 3);
    }

    /// The example in `fixtures/` parses and shows the defaults it claims.
    #[test]
    fn example_config_parses() {
        let text = include_str!("../../fixtures/agent.example.yaml");
        let c = Config::parse(text, Path::new("agent.example.yaml")).unwrap();
        assert_eq!(c.compression_level, Config::default().compression_level);
        assert_eq!(c.user_folders, None);
        assert!(c.server.url.is_some());
        let d = Config::default();
        assert_eq!(c.blacklist, d.blacklist);
        assert_eq!(c.include_optional, d.include_optional);
        assert_eq!(c.scope, d.scope);
        assert_eq!(c.cross_filesystems, d.cross_filesystems);
        assert_eq!(c.memory_mib, d.memory_mib);
        assert_eq!(c.restore, d.restore);
    }

    #[test]
    fn full_file() {
        let text = "server:\n  url: https://h:1\n  fingerprint: ab:cd\nuser_folders: [/a, /b]\n\
                    enrollment_key: k\nlanguage: de\ncompression_level: 0\ndevice_name: pc1\n\
                    blacklist: ['*.tmp', '~/.cache/']\ninclude_optional: [docker, libvirt]\n\
                    scope: system\ncross_filesystems: true\n";
        let c = Config::parse(text, Path::new("x.yaml")).unwrap();
        assert_eq!(c.server.url.as_deref(), Some("https://h:1"));
        assert_eq!(c.server.fingerprint.as_deref(), Some("ab:cd"));
        assert_eq!(c.user_folders.as_ref().unwrap().len(), 2);
        assert_eq!(c.compression_level, 0);
        assert_eq!(c.device_name.as_deref(), Some("pc1"));
        assert_eq!(c.blacklist, ["*.tmp", "~/.cache/"]);
        assert_eq!(
            c.include_optional,
            [OptionalRoot::Docker, OptionalRoot::Libvirt]
        );
        assert_eq!(c.scope, Scope::System);
        assert!(c.cross_filesystems);
        let c = Config::parse("restore:\n  parallel_requests: 8\n", Path::new("x.yaml")).unwrap();
        assert_eq!(c.restore.parallel_requests, 8);
        assert_eq!(c.restore.window_files, 4096);
        let err = Config::parse("include_optional: [dokker]\n", Path::new("x.yaml")).unwrap_err();
        assert!(err.to_string().contains("dokker"), "{err}");
        let err = Config::parse("scope: machine\n", Path::new("x.yaml")).unwrap_err();
        assert!(err.to_string().contains("machine"), "{err}");
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.yaml");
        std::fs::write(&path, "server:\n  url: https://h\nuser_foldrs: [/a]\n").unwrap();
        let err = Config::load(Some(&path), |_| None).unwrap_err().to_string();
        assert!(err.contains("user_foldrs"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        std::fs::write(&path, "server:\n  adress: x\n").unwrap();
        let err = Config::load(Some(&path), |_| None).unwrap_err().to_string();
        assert!(err.contains("adress"), "{err}");
    }

    #[test]
    fn explicit_file_must_exist_default_need_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        assert!(matches!(
            Config::load(Some(&missing), |_| None),
            Err(ConfigError::Missing { .. })
        ));
        let home = dir.path().to_string_lossy().into_owned();
        let env = move |k: &str| match k {
            "HOME" | "APPDATA" => Some(home.clone()),
            _ => None,
        };
        let (c, used) = Config::load(None, &env).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(used, None);
    }
}
