//! Exclusion rules: placeholders, path prefixes and gitignore-style globs. Pure: no file system
//! access, so every rule can be tested on Linux with Windows paths.
//!
//! A rule is one line of text (config `blacklist`, or the built-in "never" lists in [`crate::plan`]):
//!
//! - Placeholders expand first: `~` (at the start), `$HOME`/`${HOME}`/`%USERPROFILE%` (the home or
//!   profile folder) and `$USER`/`${USER}`/`%USERNAME%` (the user name). Both spellings work on both
//!   systems, so one config can serve Linux and Windows machines; `%...%` names ignore case. Any
//!   other `$NAME` or `%NAME%` stays as written (`$` and `%` are legal in file names:
//!   `C:\$Recycle.Bin`).
//! - An absolute path without glob characters (`/var/cache`, `C:\Windows`) is a **prefix** rule: it
//!   excludes that path and everything below it.
//! - Anything else is a **glob** in gitignore style (the `globset` syntax that `.asgardignore` files
//!   use too): `*` and `?` stay within one name, `**` crosses folders, a trailing `/` matches folders
//!   only. A relative rule matches at any depth (`*.tmp`, `node_modules/`, `AppData/Local`): unlike a
//!   `.gitignore`, a config rule has no folder it could be anchored to. An absolute glob
//!   (`/home/*/.cache/`) matches the whole path. `!` (re-include) is not supported in rules; it is
//!   in `.asgardignore` files.
//!
//! On Windows rules match case-insensitively and with either slash; the `\\?\` prefix of long
//! paths is ignored when matching.
//!
//! **The more specific wins**: a root that lies strictly below a prefix rule is still walked (the
//! user named `/mnt/nas/photos` on purpose although `/mnt` is never walked from `/`); see
//! [`RuleSet::for_root`]. Globs apply everywhere, roots included.

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::path::RawPath;

/// Why a rule or a plan could not be built. The `Display` form is German; the agent's presentation
/// renders it in English too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Platzhalter {name} in „{text}“ ist nicht gesetzt")]
    Unset { text: String, name: String },
    #[error("ungültige Regel „{rule}“: {message}")]
    Invalid { rule: String, message: String },
    #[error("Pfad „{path}“ ist nicht absolut")]
    NotAbsolute { path: String },
    #[error("Home-Verzeichnis unbekannt (HOME bzw. USERPROFILE ist nicht gesetzt)")]
    NoHome,
    #[error("scope: system gibt es nur unter Linux")]
    SystemScopeOnWindows,
}

/// The home (Linux `HOME`) or profile folder (Windows `USERPROFILE`, else `C:\Users\%USERNAME%`).
pub fn home_dir(windows: bool, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if windows {
        env("USERPROFILE")
            .map(|p| trim_trailing_sep(&p, true).to_owned())
            .or_else(|| {
                let drive = env("SystemDrive").unwrap_or_else(|| "C:".to_owned());
                env("USERNAME").map(|u| format!("{drive}\\Users\\{u}"))
            })
    } else {
        env("HOME").map(|h| trim_trailing_sep(&h, false).to_owned())
    }
}

/// The user name: `USERNAME` on Windows, `USER` (else `LOGNAME`) on Linux.
pub fn user_name(windows: bool, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if windows {
        env("USERNAME")
    } else {
        env("USER").or_else(|| env("LOGNAME"))
    }
}

fn trim_trailing_sep(p: &str, windows: bool) -> &str {
    let is_sep = |c: char| c == '/' || (windows && c == '\\');
    let mut s = p;
    while s.len() > 1
        && s.ends_with(is_sep)
        && !(windows && s.len() == 3 && s.as_bytes()[1] == b':')
    {
        s = &s[..s.len() - 1];
    }
    s
}

#[derive(Clone, Copy)]
enum Placeholder {
    Home,
    User,
}

fn placeholder(name: &str, percent: bool) -> Option<Placeholder> {
    let n = if percent {
        name.to_ascii_uppercase()
    } else {
        name.to_owned()
    };
    match n.as_str() {
        "HOME" | "USERPROFILE" => Some(Placeholder::Home),
        "USER" | "USERNAME" => Some(Placeholder::User),
        _ => None,
    }
}

/// Expands `~`, `$HOME`, `${HOME}`, `%USERPROFILE%`, `$USER`, `${USER}` and `%USERNAME%` in
/// `text` (see the module docs). A known placeholder whose value is unknown is an error; other
/// `$`/`%` text stays as written.
pub fn expand(
    text: &str,
    windows: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, RuleError> {
    let value = |p: Placeholder, name: &str| {
        match p {
            Placeholder::Home => home_dir(windows, env),
            Placeholder::User => user_name(windows, env),
        }
        .ok_or_else(|| RuleError::Unset {
            text: text.to_owned(),
            name: name.to_owned(),
        })
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    if let Some(after) = rest.strip_prefix('~')
        && (after.is_empty() || after.starts_with('/') || after.starts_with('\\'))
    {
        out.push_str(&value(Placeholder::Home, "~")?);
        rest = after;
    }
    while let Some(i) = rest.find(['$', '%']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (name, len, percent) = if let Some(t) = tail.strip_prefix("%") {
            match t.find('%') {
                Some(end) => (&t[..end], end + 2, true),
                None => ("", 1, true),
            }
        } else if let Some(t) = tail.strip_prefix("${") {
            match t.find('}') {
                Some(end) => (&t[..end], end + 3, false),
                None => ("", 1, false),
            }
        } else {
            let t = &tail[1..];
            let end = t
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(t.len());
            (&t[..end], end + 1, false)
        };
        match placeholder(name, percent) {
            Some(p) => {
                out.push_str(&value(p, &tail[..len])?);
                rest = &tail[len..];
            }
            None => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `path` (after placeholders) is absolute: `/...` on Linux; `X:\`, `X:/` or `\\server`
/// on Windows.
pub fn is_absolute(path: &str, windows: bool) -> bool {
    if windows {
        let b = path.as_bytes();
        (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && (b[2] == b'\\' || b[2] == b'/'))
            || path.starts_with("\\\\")
            || path.starts_with("//")
    } else {
        path.starts_with('/')
    }
}

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOrigin {
    /// The built-in "never" list.
    Default,
    /// The config's `blacklist`.
    Configured,
    /// The agent's own state folder (its files change while it runs).
    Agent,
}

/// How a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// The path and everything below it.
    Prefix,
    /// A gitignore-style glob against the whole path.
    Glob,
}

/// One exclusion rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// As written in the config or the built-in list.
    pub rule: String,
    /// After placeholders: the absolute path (prefix) or the glob (with `/` on Windows too).
    pub pattern: String,
    pub kind: RuleKind,
    /// Trailing `/`: matches folders only.
    pub dir_only: bool,
    pub origin: RuleOrigin,
}

impl Rule {
    /// Parses one rule (see the module docs).
    pub fn parse(
        text: &str,
        origin: RuleOrigin,
        windows: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Rule, RuleError> {
        let invalid = |message: &str| RuleError::Invalid {
            rule: text.to_owned(),
            message: message.to_owned(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("leer"));
        }
        if trimmed.starts_with('!') {
            return Err(invalid(
                "„!“ (wieder einschließen) geht nur in .asgardignore-Dateien",
            ));
        }
        let expanded = expand(trimmed, windows, env)?;
        let dir_only = (expanded.ends_with('/') || (windows && expanded.ends_with('\\')))
            && expanded.len() > 1;
        let body = trim_trailing_sep(&expanded, windows);
        let is_glob = body.contains(['*', '?', '[']);
        let absolute = is_absolute(body, windows);
        if windows && !absolute && (body.starts_with('\\') || body.starts_with('/')) {
            return Err(invalid("Windows-Pfad ohne Laufwerk"));
        }
        if absolute && !is_glob {
            return Ok(Rule {
                rule: trimmed.to_owned(),
                pattern: body.to_owned(),
                kind: RuleKind::Prefix,
                dir_only,
                origin,
            });
        }
        let slashed = if windows {
            body.replace('\\', "/")
        } else {
            body.to_owned()
        };
        let pattern = if absolute || slashed.starts_with("**/") {
            slashed
        } else {
            format!("**/{slashed}")
        };
        let rule = Rule {
            rule: trimmed.to_owned(),
            pattern,
            kind: RuleKind::Glob,
            dir_only,
            origin,
        };
        rule.glob(windows)?;
        Ok(rule)
    }

    /// A prefix rule for a path that is already absolute and expanded (built-in lists).
    pub fn prefix(written: &str, path: &str, origin: RuleOrigin, windows: bool) -> Rule {
        Rule {
            rule: written.to_owned(),
            pattern: trim_trailing_sep(path, windows).to_owned(),
            kind: RuleKind::Prefix,
            dir_only: false,
            origin,
        }
    }

    fn glob(&self, windows: bool) -> Result<globset::Glob, RuleError> {
        GlobBuilder::new(&self.pattern)
            .literal_separator(true)
            .case_insensitive(windows)
            .backslash_escape(!windows)
            // As in `.asgardignore` (and git): an unclosed `[` is a literal.
            .allow_unclosed_class(true)
            .build()
            .map_err(|e| RuleError::Invalid {
                rule: self.rule.clone(),
                message: e.kind().to_string(),
            })
    }
}

/// A compiled list of rules.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    windows: bool,
    rules: Vec<Rule>,
    /// (index into `rules`, the path) for prefix rules.
    prefixes: Vec<(usize, RawPath)>,
    globs: GlobSet,
    /// Index into `rules` for each glob in `globs`.
    glob_rules: Vec<usize>,
}

impl RuleSet {
    /// Compiles `rules` for Windows (`windows`) or Linux matching.
    pub fn new(windows: bool, rules: Vec<Rule>) -> Result<RuleSet, RuleError> {
        let mut prefixes = Vec::new();
        let mut builder = GlobSetBuilder::new();
        let mut glob_rules = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match r.kind {
                RuleKind::Prefix => prefixes.push((i, RawPath::from(r.pattern.as_str()))),
                RuleKind::Glob => {
                    builder.add(r.glob(windows)?);
                    glob_rules.push(i);
                }
            }
        }
        let globs = builder.build().map_err(|e| RuleError::Invalid {
            rule: e.glob().unwrap_or_default().to_owned(),
            message: e.kind().to_string(),
        })?;
        Ok(RuleSet {
            windows,
            rules,
            prefixes,
            globs,
            glob_rules,
        })
    }

    /// Whether the rules use Windows matching.
    pub fn windows(&self) -> bool {
        self.windows
    }

    /// The rules, in their order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules that apply while walking `root`: every glob, and every prefix rule except those
    /// that hold `root` strictly below them (the more specific root wins). A prefix rule equal to
    /// the root still excludes it.
    pub fn for_root(&self, root: &RawPath) -> RuleSet {
        let root = self.normalize(root);
        let mut set = self.clone();
        set.prefixes
            .retain(|(_, p)| !root.is_within(p) || p.is_within(&root));
        set
    }

    /// The first rule that excludes `path` itself (its ancestors are not looked at: the walk
    /// never descends into an excluded folder). `is_dir` matters for rules with a trailing `/`.
    pub fn matching(&self, path: &RawPath, is_dir: bool) -> Option<&Rule> {
        let path = self.normalize(path);
        for (i, prefix) in &self.prefixes {
            let rule = &self.rules[*i];
            if path.is_within(prefix) && (is_dir || !rule.dir_only || !prefix.is_within(&path)) {
                return Some(rule);
            }
        }
        if self.globs.is_empty() {
            return None;
        }
        let slashed: Vec<u8> = if self.windows {
            path.0
                .iter()
                .map(|&c| if c == b'\\' { b'/' } else { c })
                .collect()
        } else {
            path.0
        };
        let candidate = Candidate::from_bytes(&slashed);
        // Most paths match nothing: answer those without collecting matches.
        if !self.globs.is_match_candidate(&candidate) {
            return None;
        }
        self.globs
            .matches_candidate(&candidate)
            .into_iter()
            .map(|g| &self.rules[self.glob_rules[g]])
            .find(|r| is_dir || !r.dir_only)
    }

    /// Whether any rule excludes `path` itself.
    pub fn excludes(&self, path: &RawPath, is_dir: bool) -> bool {
        self.matching(path, is_dir).is_some()
    }

    /// Windows: drops the `\\?\` (or `\\?\UNC\`) prefix of long paths before matching.
    fn normalize(&self, path: &RawPath) -> RawPath {
        if !self.windows {
            return path.clone();
        }
        let b = &path.0;
        for unc in [&b"\\\\?\\UNC\\"[..], b"//?/UNC/"] {
            if b.len() > unc.len() && b[..unc.len()].eq_ignore_ascii_case(unc) {
                let mut v = b"\\\\".to_vec();
                v.extend_from_slice(&b[unc.len()..]);
                return RawPath(v);
            }
        }
        for verbatim in [&b"\\\\?\\"[..], b"//?/"] {
            if let Some(rest) = b.strip_prefix(verbatim) {
                return RawPath(rest.to_vec());
            }
        }
        path.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux_env(k: &str) -> Option<String> {
        match k {
            "HOME" => Some("/home/anna".into()),
            "USER" => Some("anna".into()),
            _ => None,
        }
    }

    fn windows_env(k: &str) -> Option<String> {
        match k {
            "USERPROFILE" => Some(r"C:\Users\Bob".into()),
            "USERNAME" => Some("Bob".into()),
            _ => None,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn set(windows: bool, rules: &[&str]) -> RuleSet {
        let env: &dyn Fn(&str) -> Option<String> = if windows { &windows_env } else { &linux_env };
        let rules = rules
            .iter()
            .map(|r| Rule::parse(r, RuleOrigin::Configured, windows, env).unwrap())
            .collect();
        RuleSet::new(windows, rules).unwrap()
    }

    fn ex(s: &RuleSet, path: &str, is_dir: bool) -> bool {
        s.excludes(&RawPath::from(path), is_dir)
    }

    #[test]
    fn placeholders_expand_on_linux() {
        assert_eq!(expand("~", false, &linux_env).unwrap(), "/home/anna");
        assert_eq!(expand("~/x", false, &linux_env).unwrap(), "/home/anna/x");
        assert_eq!(expand("/a/~b", false, &linux_env).unwrap(), "/a/~b");
        assert_eq!(expand("~b", false, &linux_env).unwrap(), "~b");
        assert_eq!(
            expand("$HOME/d", false, &linux_env).unwrap(),
            "/home/anna/d"
        );
        assert_eq!(
            expand("${HOME}x", false, &linux_env).unwrap(),
            "/home/annax"
        );
        assert_eq!(
            expand("/srv/$USER/", false, &linux_env).unwrap(),
            "/srv/anna/"
        );
        assert_eq!(
            expand("/srv/$USERx", false, &linux_env).unwrap(),
            "/srv/$USERx"
        );
        // The Windows spellings work on Linux too (one config for both).
        assert_eq!(
            expand("%USERPROFILE%/%username%", false, &linux_env).unwrap(),
            "/home/anna/anna"
        );
        // Unknown names and lone signs stay as written.
        assert_eq!(
            expand("/a/$x/%y%/100%", false, &linux_env).unwrap(),
            "/a/$x/%y%/100%"
        );
        assert_eq!(expand("$", false, &linux_env).unwrap(), "$");
        assert_eq!(expand("a${HOME", false, &linux_env).unwrap(), "a${HOME");
    }

    #[test]
    fn placeholders_expand_on_windows() {
        assert_eq!(
            expand(r"%USERPROFILE%\Documents", true, &windows_env).unwrap(),
            r"C:\Users\Bob\Documents"
        );
        assert_eq!(
            expand(r"C:\Users\%USERNAME%\Music", true, &windows_env).unwrap(),
            r"C:\Users\Bob\Music"
        );
        assert_eq!(
            expand(r"~\Desktop", true, &windows_env).unwrap(),
            r"C:\Users\Bob\Desktop"
        );
        assert_eq!(
            expand("$HOME/x", true, &windows_env).unwrap(),
            r"C:\Users\Bob/x"
        );
        assert_eq!(
            expand(r"C:\$Recycle.Bin", true, &windows_env).unwrap(),
            r"C:\$Recycle.Bin"
        );
        // Without USERPROFILE the profile is C:\Users\<USERNAME>.
        let only_name = |k: &str| (k == "USERNAME").then(|| "Eve".to_owned());
        assert_eq!(expand("~", true, &only_name).unwrap(), r"C:\Users\Eve");
    }

    #[test]
    fn unset_placeholder_is_an_error() {
        assert_eq!(
            expand("$HOME/x", false, &no_env),
            Err(RuleError::Unset {
                text: "$HOME/x".into(),
                name: "$HOME".into()
            })
        );
        assert!(matches!(
            expand("%USERNAME%", true, &no_env),
            Err(RuleError::Unset { .. })
        ));
        assert!(expand("~", false, &no_env).is_err());
    }

    #[test]
    fn rule_kinds() {
        let p = |t: &str, w: bool| {
            let env: &dyn Fn(&str) -> Option<String> = if w { &windows_env } else { &linux_env };
            Rule::parse(t, RuleOrigin::Configured, w, env).unwrap()
        };
        let r = p("/var/cache/", false);
        assert_eq!(
            (r.kind, r.pattern.as_str(), r.dir_only),
            (RuleKind::Prefix, "/var/cache", true)
        );
        let r = p("~/.cache", false);
        assert_eq!(
            (r.kind, r.pattern.as_str()),
            (RuleKind::Prefix, "/home/anna/.cache")
        );
        let r = p("*.tmp", false);
        assert_eq!((r.kind, r.pattern.as_str()), (RuleKind::Glob, "**/*.tmp"));
        let r = p("**/node_modules/", false);
        assert_eq!(
            (r.kind, r.pattern.as_str(), r.dir_only),
            (RuleKind::Glob, "**/node_modules", true)
        );
        let r = p("pagefile.sys", true);
        assert_eq!(
            (r.kind, r.pattern.as_str()),
            (RuleKind::Glob, "**/pagefile.sys")
        );
        let r = p(r"AppData\Local\", true);
        assert_eq!(
            (r.kind, r.pattern.as_str(), r.dir_only),
            (RuleKind::Glob, "**/AppData/Local", true)
        );
        let r = p(r"%USERPROFILE%\AppData\Local\Temp", true);
        assert_eq!(
            (r.kind, r.pattern.as_str()),
            (RuleKind::Prefix, r"C:\Users\Bob\AppData\Local\Temp")
        );
        let r = p(r"C:\Users\*\Videos", true);
        assert_eq!(
            (r.kind, r.pattern.as_str()),
            (RuleKind::Glob, "C:/Users/*/Videos")
        );
        for bad in ["", "  ", "!keep", "{unclosed"] {
            assert!(
                Rule::parse(bad, RuleOrigin::Configured, false, &linux_env).is_err(),
                "{bad}"
            );
        }
        assert!(Rule::parse(r"\Windows", RuleOrigin::Configured, true, &windows_env).is_err());
    }

    #[test]
    fn linux_prefix_and_globs() {
        let s = set(
            false,
            &[
                "/var/cache",
                "~/.cache/",
                "*.tmp",
                "**/node_modules/",
                "/srv/*/logs",
            ],
        );
        assert!(ex(&s, "/var/cache", true));
        assert!(ex(&s, "/var/cache/apt/x.deb", false));
        assert!(!ex(&s, "/var/cachet", true));
        assert!(!ex(&s, "/var", true));
        assert!(ex(&s, "/home/anna/.cache", true));
        // A file named like a dir-only rule is not excluded; what is below the folder is.
        assert!(!ex(&s, "/home/anna/.cache", false));
        assert!(ex(&s, "/home/anna/.cache/x", false));
        assert!(ex(&s, "/home/anna/a.tmp", false));
        assert!(ex(&s, "/home/anna/deep/er/b.tmp", false));
        assert!(!ex(&s, "/home/anna/a.tmpx", false));
        // Case matters on Linux.
        assert!(!ex(&s, "/home/anna/a.TMP", false));
        assert!(ex(&s, "/home/anna/p/node_modules", true));
        assert!(!ex(&s, "/home/anna/p/node_modules", false));
        assert!(!ex(&s, "/home/anna/p/node_modules_x", true));
        assert!(ex(&s, "/srv/web/logs", true));
        assert!(!ex(&s, "/srv/web/x/logs", true));
        assert_eq!(
            s.matching(&RawPath::from("/home/anna/a.tmp"), false)
                .unwrap()
                .rule,
            "*.tmp"
        );
    }

    #[test]
    fn windows_rules_ignore_case_and_slash() {
        let s = set(
            true,
            &[
                r"C:\Program Files",
                r"%USERPROFILE%\AppData\Local",
                "pagefile.sys",
                "*.TMP",
                r"**\Cache\",
            ],
        );
        assert!(ex(&s, r"C:\Program Files\App\a.exe", false));
        assert!(ex(&s, r"c:/program files", true));
        assert!(ex(&s, r"C:\PROGRAM FILES\x", false));
        assert!(!ex(&s, r"C:\Program Files (x86)", true));
        assert!(ex(&s, r"C:\Users\Bob\AppData\Local", true));
        assert!(ex(&s, r"c:\users\bob\appdata\local\Temp\x", false));
        assert!(!ex(&s, r"C:\Users\Bob\AppData\Roaming", true));
        assert!(ex(&s, r"C:\pagefile.sys", false));
        assert!(ex(&s, r"D:\PageFile.SYS", false));
        assert!(ex(&s, r"C:\Users\Bob\Documents\a.tmp", false));
        assert!(ex(&s, r"C:\Users\Bob\Documents\cache", true));
        assert!(!ex(&s, r"C:\Users\Bob\Documents\cache", false));
        // Long-path prefixes are ignored when matching.
        assert!(ex(&s, r"\\?\C:\Program Files\x", false));
        assert!(ex(&s, r"\\?\C:\Users\Bob\x\y.tmp", false));
        assert!(!ex(&s, r"\\?\C:\Users\Bob\Documents\x", false));
        let unc = set(true, &[r"\\nas\share\tmp"]);
        assert!(ex(&unc, r"\\?\UNC\nas\share\tmp\x", false));
        assert!(ex(&unc, r"\\NAS\Share\Tmp", true));
    }

    #[test]
    fn the_more_specific_root_wins() {
        let s = set(false, &["/tmp", "/mnt", "*.tmp"]);
        let root = RawPath::from("/tmp/job/data");
        let r = s.for_root(&root);
        assert!(!r.excludes(&root, true));
        assert!(!r.excludes(&RawPath::from("/tmp/job/data/x"), false));
        assert!(r.excludes(&RawPath::from("/tmp/job/data/x.tmp"), false));
        // The rule itself as a root stays excluded.
        assert!(
            s.for_root(&RawPath::from("/tmp"))
                .excludes(&RawPath::from("/tmp"), true)
        );
        // Rules below a wide root still apply.
        let all = s.for_root(&RawPath::from("/"));
        assert!(all.excludes(&RawPath::from("/mnt/nas"), true));
        assert!(all.excludes(&RawPath::from("/tmp"), true));
        let w = set(true, &[r"C:\Windows"]);
        let r = w.for_root(&RawPath::from(r"c:\windows\Fonts"));
        assert!(!r.excludes(&RawPath::from(r"C:\Windows\Fonts\a.ttf"), false));
        let r = w.for_root(&RawPath::from(r"C:\"));
        assert!(r.excludes(&RawPath::from(r"C:\Windows\Fonts\a.ttf"), false));
    }
}
