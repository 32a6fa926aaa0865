//! What is backed up by default, and the [`Plan`]: the roots that will be walked, the roots that
//! will not (and why), and the rules that prune the walk. Pure: the file system is asked through an
//! injected probe, the environment through an injected lookup.
//!
//! Defaults (all overridable in the config):
//!
//! | | included | optional (`include_optional`) | never |
//! | --- | --- | --- | --- |
//! | Windows | `Documents`, `Desktop`, `Pictures` in the profile | `downloads`, `appdata_roaming` | [`WINDOWS_NEVER`] |
//! | Linux user | the home folder | – | [`LINUX_NEVER`] |
//! | Linux system | `/home`, `/etc`, `/opt`, `/srv`, `/root` | `docker`, `libvirt` | [`LINUX_NEVER`] |
//!
//! `user_folders` in the config replaces the default roots; `blacklist` adds rules to the never list.
//! Missing or unreadable roots are listed as excluded but still handed to the scanner
//! ([`Plan::scan_roots`]), which reports them, so the backup never reads an absent drive as "all
//! files deleted".

use serde::{Deserialize, Serialize};

use crate::path::RawPath;
use crate::rules::{self, Rule, RuleError, RuleKind, RuleOrigin, RuleSet};

/// Which defaults apply on Linux: the user's home, or the machine (`--system`, run as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    User,
    System,
}

/// A root that is backed up only when named in `include_optional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionalRoot {
    /// Windows: `%USERPROFILE%\Downloads`.
    Downloads,
    /// Windows: `%USERPROFILE%\AppData\Roaming`.
    AppdataRoaming,
    /// Linux, system scope: `/var/lib/docker`.
    Docker,
    /// Linux, system scope: `/var/lib/libvirt`.
    Libvirt,
}

impl OptionalRoot {
    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            OptionalRoot::Downloads => "downloads",
            OptionalRoot::AppdataRoaming => "appdata_roaming",
            OptionalRoot::Docker => "docker",
            OptionalRoot::Libvirt => "libvirt",
        }
    }
}

/// Never backed up on Windows (`C:` is `%SystemDrive%`). Placeholders as in [`rules::expand`].
pub const WINDOWS_NEVER: &[&str] = &[
    r"C:\Windows",
    r"C:\Program Files",
    r"C:\Program Files (x86)",
    r"C:\ProgramData",
    r"%USERPROFILE%\AppData\Local",
    r"C:\$Recycle.Bin",
    r"C:\System Volume Information",
    "pagefile.sys",
    "hiberfil.sys",
    "swapfile.sys",
];

/// Never backed up on Linux.
pub const LINUX_NEVER: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/tmp",
    "/run",
    "/var/run",
    "/mnt",
    "/media",
    "/swapfile",
    "/boot",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/bin",
    "/sbin",
    "/usr/bin",
    "/var/cache",
    "/var/tmp",
];

/// Linux system scope roots.
pub const LINUX_SYSTEM_ROOTS: &[&str] = &["/home", "/etc", "/opt", "/srv", "/root"];

/// What the plan is built from (the config, the command line).
#[derive(Debug, Clone, Default)]
pub struct PlanInput<'a> {
    pub windows: bool,
    pub scope: Scope,
    /// `user_folders`: replaces the default roots when set.
    pub user_folders: Option<&'a [String]>,
    /// `blacklist`: added to the never list.
    pub blacklist: &'a [String],
    pub include_optional: &'a [OptionalRoot],
    pub cross_filesystems: bool,
    /// Folders the agent itself writes while it runs (its state folder): excluded.
    pub agent_folders: &'a [String],
}

/// What the probe found at a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootState {
    Dir,
    File,
    Missing,
    Unreadable(String),
}

/// Why a root is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootOrigin {
    Default,
    Configured,
    Optional,
}

/// A root that will be walked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncludedRoot {
    pub path: RawPath,
    pub origin: RootOrigin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option: Option<OptionalRoot>,
}

/// Why something is not backed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ExcludeReason {
    /// A rule (the never list, the config's blacklist, the agent's own folders).
    Blacklist { rule: String, origin: RuleOrigin },
    /// An optional root that `include_optional` does not name.
    NotEnabled { option: OptionalRoot },
    /// The root does not exist (not read as "deleted").
    Missing,
    /// The root cannot be read (not read as "deleted").
    Unreadable { error: String },
    /// A mount point inside a root: another file system (`cross_filesystems: true` includes it).
    OtherFilesystem,
}

/// A path that is not backed up, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExcludedRoot {
    pub path: RawPath,
    #[serde(flatten)]
    pub reason: ExcludeReason,
}

/// What a backup will walk, what it will not and why, and the active rules.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub windows: bool,
    pub scope: Scope,
    pub cross_filesystems: bool,
    pub included: Vec<IncludedRoot>,
    pub excluded: Vec<ExcludedRoot>,
    pub rules: Vec<Rule>,
    #[serde(skip)]
    rule_set: RuleSet,
}

fn join(base: &str, rel: &str, windows: bool) -> String {
    if windows {
        format!("{base}\\{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// A root as the walker should see it: Windows roots with backslashes, no trailing separator.
fn normalize_root(path: &str, windows: bool) -> String {
    let p = if windows {
        path.replace('/', "\\")
    } else {
        path.to_owned()
    };
    let is_sep = |c: char| c == '/' || (windows && c == '\\');
    let mut s = p.as_str();
    while s.len() > 1
        && s.ends_with(is_sep)
        && !(windows && s.len() == 3 && s.as_bytes()[1] == b':')
    {
        s = &s[..s.len() - 1];
    }
    s.to_owned()
}

/// The built-in never list as rules (placeholders expanded, `C:` replaced by `%SystemDrive%`).
pub fn default_rules(
    windows: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Rule>, RuleError> {
    let list = if windows { WINDOWS_NEVER } else { LINUX_NEVER };
    let drive = env("SystemDrive").unwrap_or_else(|| "C:".to_owned());
    list.iter()
        .map(|&written| {
            let mut rule = Rule::parse(written, RuleOrigin::Default, windows, env)?;
            if windows
                && let Some(rest) = rule.pattern.strip_prefix("C:")
                && written.starts_with("C:")
            {
                rule.pattern = format!("{drive}{rest}");
            }
            Ok(rule)
        })
        .collect()
}

struct Candidate {
    path: String,
    origin: RootOrigin,
    option: Option<OptionalRoot>,
}

/// The roots to consider, and the optional roots that are not enabled.
struct Candidates {
    roots: Vec<Candidate>,
    not_enabled: Vec<(String, OptionalRoot)>,
}

fn candidates(
    input: &PlanInput<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Candidates, RuleError> {
    let w = input.windows;
    if w && input.scope == Scope::System {
        return Err(RuleError::SystemScopeOnWindows);
    }
    let mut roots = Vec::new();
    match input.user_folders {
        Some(folders) => {
            for f in folders {
                let path = rules::expand(f.trim(), w, env)?;
                if !rules::is_absolute(&path, w) {
                    return Err(RuleError::NotAbsolute { path });
                }
                roots.push(Candidate {
                    path,
                    origin: RootOrigin::Configured,
                    option: None,
                });
            }
        }
        None => {
            let defaults: Vec<String> = match (w, input.scope) {
                (true, _) => {
                    let home = rules::home_dir(true, env).ok_or(RuleError::NoHome)?;
                    ["Documents", "Desktop", "Pictures"]
                        .iter()
                        .map(|d| join(&home, d, true))
                        .collect()
                }
                (false, Scope::User) => vec![rules::home_dir(false, env).ok_or(RuleError::NoHome)?],
                (false, Scope::System) => {
                    LINUX_SYSTEM_ROOTS.iter().map(|r| r.to_string()).collect()
                }
            };
            roots.extend(defaults.into_iter().map(|path| Candidate {
                path,
                origin: RootOrigin::Default,
                option: None,
            }));
        }
    }
    let optional: Vec<(String, OptionalRoot)> = match (w, input.scope) {
        (true, _) => {
            let home = rules::home_dir(true, env).ok_or(RuleError::NoHome)?;
            vec![
                (join(&home, "Downloads", true), OptionalRoot::Downloads),
                (
                    join(&home, r"AppData\Roaming", true),
                    OptionalRoot::AppdataRoaming,
                ),
            ]
        }
        (false, Scope::System) => vec![
            ("/var/lib/docker".to_owned(), OptionalRoot::Docker),
            ("/var/lib/libvirt".to_owned(), OptionalRoot::Libvirt),
        ],
        (false, Scope::User) => Vec::new(),
    };
    let mut not_enabled = Vec::new();
    for (path, option) in optional {
        if input.include_optional.contains(&option) {
            roots.push(Candidate {
                path,
                origin: RootOrigin::Optional,
                option: Some(option),
            });
        } else {
            not_enabled.push((path, option));
        }
    }
    Ok(Candidates { roots, not_enabled })
}

/// Builds the plan. `probe` tells what exists at a root (the agent asks the file system; tests
/// simulate a tree). Missing and unreadable roots are listed as excluded, never silently dropped.
pub fn build(
    input: &PlanInput<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    probe: &dyn Fn(&RawPath) -> RootState,
) -> Result<Plan, RuleError> {
    let w = input.windows;
    let mut rules = default_rules(w, env)?;
    for b in input.blacklist {
        rules.push(Rule::parse(b, RuleOrigin::Configured, w, env)?);
    }
    for a in input.agent_folders {
        rules.push(Rule::prefix(a, &normalize_root(a, w), RuleOrigin::Agent, w));
    }
    let rule_set = RuleSet::new(w, rules.clone())?;
    let Candidates { roots, not_enabled } = candidates(input, env)?;

    let mut included: Vec<IncludedRoot> = Vec::new();
    let mut excluded = Vec::new();
    let mut seen: Vec<RawPath> = Vec::new();
    for c in roots {
        let path = RawPath::from(normalize_root(&c.path, w).as_str());
        if seen.iter().any(|s| s.is_within(&path) && path.is_within(s)) {
            continue;
        }
        seen.push(path.clone());
        let state = probe(&path);
        let is_dir = state == RootState::Dir;
        if let Some(rule) = rule_set.for_root(&path).matching(&path, is_dir) {
            let reason = ExcludeReason::Blacklist {
                rule: rule.rule.clone(),
                origin: rule.origin,
            };
            excluded.push(ExcludedRoot { path, reason });
            continue;
        }
        match state {
            RootState::Dir | RootState::File => included.push(IncludedRoot {
                path,
                origin: c.origin,
                option: c.option,
            }),
            RootState::Missing => excluded.push(ExcludedRoot {
                path,
                reason: ExcludeReason::Missing,
            }),
            RootState::Unreadable(error) => excluded.push(ExcludedRoot {
                path,
                reason: ExcludeReason::Unreadable { error },
            }),
        }
    }
    for (path, option) in not_enabled {
        excluded.push(ExcludedRoot {
            path: RawPath::from(path.as_str()),
            reason: ExcludeReason::NotEnabled { option },
        });
    }
    for r in &rules {
        let shown = match r.kind {
            RuleKind::Prefix => &r.pattern,
            RuleKind::Glob => &r.rule,
        };
        excluded.push(ExcludedRoot {
            path: RawPath::from(shown.as_str()),
            reason: ExcludeReason::Blacklist {
                rule: r.rule.clone(),
                origin: r.origin,
            },
        });
    }
    Ok(Plan {
        windows: w,
        scope: input.scope,
        cross_filesystems: input.cross_filesystems,
        included,
        excluded,
        rules,
        rule_set,
    })
}

impl Plan {
    /// The compiled rules (for the scanner).
    pub fn rule_set(&self) -> &RuleSet {
        &self.rule_set
    }

    /// The roots to hand to the scanner: the included ones, then the missing and unreadable ones
    /// (the scanner reports those, so their files are not marked deleted).
    pub fn scan_roots(&self) -> Vec<RawPath> {
        let problems = self.excluded.iter().filter(|e| {
            matches!(
                e.reason,
                ExcludeReason::Missing | ExcludeReason::Unreadable { .. }
            )
        });
        self.included
            .iter()
            .map(|i| i.path.clone())
            .chain(problems.map(|e| e.path.clone()))
            .collect()
    }

    /// Records a mount point the walk will not enter (another file system inside a root). Does
    /// nothing when `cross_filesystems` is on, when the path is not strictly inside an included
    /// root, or when a rule excludes it already.
    pub fn add_other_filesystem(&mut self, mount_point: RawPath) {
        if self.cross_filesystems {
            return;
        }
        let inside = self
            .included
            .iter()
            .find(|r| mount_point.is_within(&r.path) && !r.path.is_within(&mount_point));
        let Some(root) = inside else {
            return;
        };
        let rules = self.rule_set.for_root(&root.path);
        let mut p = mount_point.clone();
        // Excluded by a rule on the way down from the root (the walk never gets there)?
        loop {
            if rules.excludes(&p, true) {
                return;
            }
            match parent(&p) {
                Some(up) if up.is_within(&root.path) && !root.path.is_within(&up) => p = up,
                _ => break,
            }
        }
        if self.excluded.iter().any(|e| e.path == mount_point) {
            return;
        }
        self.excluded.push(ExcludedRoot {
            path: mount_point,
            reason: ExcludeReason::OtherFilesystem,
        });
    }
}

fn parent(p: &RawPath) -> Option<RawPath> {
    let w = p.is_windows();
    let b = &p.0;
    let cut = b.iter().rposition(|&c| c == b'/' || (w && c == b'\\'))?;
    if cut == 0 {
        return Some(RawPath(b"/".to_vec()));
    }
    Some(RawPath(b[..cut].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const BOB: &[(&str, &str)] = &[("USERPROFILE", r"C:\Users\Bob"), ("USERNAME", "Bob")];
    const ANNA: &[(&str, &str)] = &[("HOME", "/home/anna"), ("USER", "anna")];

    fn all_dirs(_: &RawPath) -> RootState {
        RootState::Dir
    }

    fn paths_of(plan: &Plan) -> Vec<String> {
        plan.included.iter().map(|r| r.path.lossy()).collect()
    }

    /// The excluded paths whose reason satisfies `f`, in order.
    fn excluded_where(plan: &Plan, f: impl Fn(&ExcludeReason) -> bool) -> Vec<String> {
        plan.excluded
            .iter()
            .filter(|e| f(&e.reason))
            .map(|e| e.path.lossy())
            .collect()
    }

    fn never(plan: &Plan) -> Vec<String> {
        excluded_where(plan, |r| {
            matches!(
                r,
                ExcludeReason::Blacklist {
                    origin: RuleOrigin::Default,
                    ..
                }
            )
        })
    }

    fn not_enabled(plan: &Plan) -> Vec<String> {
        excluded_where(plan, |r| matches!(r, ExcludeReason::NotEnabled { .. }))
    }

    /// Acceptance 1: the default plan for a Windows profile, exactly as the product rules list it.
    #[test]
    fn default_windows_plan() {
        let input = PlanInput {
            windows: true,
            ..Default::default()
        };
        let plan = build(&input, &env_of(BOB), &all_dirs).unwrap();
        assert_eq!(
            paths_of(&plan),
            [
                r"C:\Users\Bob\Documents",
                r"C:\Users\Bob\Desktop",
                r"C:\Users\Bob\Pictures"
            ]
        );
        assert!(
            plan.included
                .iter()
                .all(|r| r.origin == RootOrigin::Default)
        );
        assert_eq!(
            not_enabled(&plan),
            [r"C:\Users\Bob\Downloads", r"C:\Users\Bob\AppData\Roaming"]
        );
        assert_eq!(
            never(&plan),
            [
                r"C:\Windows",
                r"C:\Program Files",
                r"C:\Program Files (x86)",
                r"C:\ProgramData",
                r"C:\Users\Bob\AppData\Local",
                r"C:\$Recycle.Bin",
                r"C:\System Volume Information",
                "pagefile.sys",
                "hiberfil.sys",
                "swapfile.sys",
            ]
        );
        assert_eq!(plan.excluded.len(), 12, "nothing else is excluded");
        let rs = plan.rule_set();
        for p in [
            r"C:\Users\Bob\AppData\Local\Temp\x",
            r"c:\windows\system32",
            r"C:\pagefile.sys",
            r"C:\$RECYCLE.BIN\S-1-5",
        ] {
            assert!(rs.excludes(&RawPath::from(p), false), "{p}");
        }
        assert!(!rs.excludes(&RawPath::from(r"C:\Users\Bob\Documents\a.docx"), false));
    }

    /// Acceptance 1: a Linux user's default plan is the home folder minus the never list.
    #[test]
    fn default_linux_user_plan() {
        let plan = build(&PlanInput::default(), &env_of(ANNA), &all_dirs).unwrap();
        assert_eq!(paths_of(&plan), ["/home/anna"]);
        assert_eq!(plan.included[0].origin, RootOrigin::Default);
        assert!(not_enabled(&plan).is_empty());
        assert_eq!(never(&plan), LINUX_NEVER);
        assert_eq!(
            never(&plan),
            [
                "/proc",
                "/sys",
                "/dev",
                "/tmp",
                "/run",
                "/var/run",
                "/mnt",
                "/media",
                "/swapfile",
                "/boot",
                "/lib",
                "/lib64",
                "/usr/lib",
                "/bin",
                "/sbin",
                "/usr/bin",
                "/var/cache",
                "/var/tmp",
            ]
        );
        assert_eq!(plan.excluded.len(), 18);
        assert_eq!(plan.scan_roots(), [RawPath::from("/home/anna")]);
    }

    /// Acceptance 1: `--system` on a simulated root tree (where `/srv` does not exist).
    #[test]
    fn default_linux_system_plan() {
        let input = PlanInput {
            scope: Scope::System,
            ..Default::default()
        };
        let probe = |p: &RawPath| {
            if p.lossy() == "/srv" {
                RootState::Missing
            } else {
                RootState::Dir
            }
        };
        let plan = build(&input, &env_of(&[]), &probe).unwrap();
        assert_eq!(paths_of(&plan), ["/home", "/etc", "/opt", "/root"]);
        assert_eq!(
            excluded_where(&plan, |r| *r == ExcludeReason::Missing),
            ["/srv"]
        );
        assert_eq!(not_enabled(&plan), ["/var/lib/docker", "/var/lib/libvirt"]);
        assert_eq!(never(&plan), LINUX_NEVER);
        assert_eq!(plan.excluded.len(), 1 + 2 + 18);
        // The missing root still goes to the scanner, which reports it.
        assert_eq!(plan.scan_roots().last().unwrap().lossy(), "/srv");
        let all = build(&input, &env_of(&[]), &all_dirs).unwrap();
        assert_eq!(paths_of(&all), LINUX_SYSTEM_ROOTS);
    }

    #[test]
    fn optional_roots_when_enabled() {
        let input = PlanInput {
            scope: Scope::System,
            include_optional: &[OptionalRoot::Docker],
            ..Default::default()
        };
        let plan = build(&input, &env_of(&[]), &all_dirs).unwrap();
        let last = plan.included.last().unwrap();
        assert_eq!(last.path.lossy(), "/var/lib/docker");
        assert_eq!(
            (last.origin, last.option),
            (RootOrigin::Optional, Some(OptionalRoot::Docker))
        );
        assert_eq!(not_enabled(&plan), ["/var/lib/libvirt"]);
        let input = PlanInput {
            windows: true,
            include_optional: &[OptionalRoot::AppdataRoaming, OptionalRoot::Docker],
            ..Default::default()
        };
        let plan = build(&input, &env_of(BOB), &all_dirs).unwrap();
        assert_eq!(
            plan.included.last().unwrap().path.lossy(),
            r"C:\Users\Bob\AppData\Roaming"
        );
        assert_eq!(plan.included.len(), 4);
        assert_eq!(not_enabled(&plan), [r"C:\Users\Bob\Downloads"]);
    }

    #[test]
    fn configured_folders_and_rules() {
        let folders: Vec<String> = [
            "~/Docs/",
            "$HOME/Docs",
            "/tmp/work",
            "/proc",
            "/home/anna/x.iso",
            "/home/anna/gone",
            "/home/anna/locked",
        ]
        .map(String::from)
        .to_vec();
        let blacklist = ["*.iso".to_owned(), "~/.cache/".to_owned()];
        let input = PlanInput {
            user_folders: Some(&folders),
            blacklist: &blacklist,
            agent_folders: &["/home/anna/.local/share/asgard".to_owned()],
            ..Default::default()
        };
        let probe = |p: &RawPath| match p.lossy().as_str() {
            "/home/anna/gone" => RootState::Missing,
            "/home/anna/locked" => RootState::Unreadable("permission denied".into()),
            "/home/anna/x.iso" => RootState::File,
            _ => RootState::Dir,
        };
        let plan = build(&input, &env_of(ANNA), &probe).unwrap();
        // Duplicates collapse; a root below a never entry is honoured (the more specific wins).
        assert_eq!(paths_of(&plan), ["/home/anna/Docs", "/tmp/work"]);
        assert!(
            plan.included
                .iter()
                .all(|r| r.origin == RootOrigin::Configured)
        );
        let root_problems: Vec<(String, ExcludeReason)> = plan
            .excluded
            .iter()
            .take(4)
            .map(|e| (e.path.lossy(), e.reason.clone()))
            .collect();
        assert_eq!(
            root_problems,
            [
                (
                    "/proc".into(),
                    ExcludeReason::Blacklist {
                        rule: "/proc".into(),
                        origin: RuleOrigin::Default
                    }
                ),
                (
                    "/home/anna/x.iso".into(),
                    ExcludeReason::Blacklist {
                        rule: "*.iso".into(),
                        origin: RuleOrigin::Configured
                    }
                ),
                ("/home/anna/gone".into(), ExcludeReason::Missing),
                (
                    "/home/anna/locked".into(),
                    ExcludeReason::Unreadable {
                        error: "permission denied".into()
                    }
                ),
            ]
        );
        let configured = excluded_where(&plan, |r| {
            matches!(
                r,
                ExcludeReason::Blacklist {
                    origin: RuleOrigin::Configured | RuleOrigin::Agent,
                    ..
                }
            )
        });
        assert_eq!(
            &configured[1..],
            [
                "*.iso",
                "/home/anna/.cache",
                "/home/anna/.local/share/asgard"
            ]
        );
        assert_eq!(
            plan.scan_roots()
                .iter()
                .map(RawPath::lossy)
                .collect::<Vec<_>>(),
            [
                "/home/anna/Docs",
                "/tmp/work",
                "/home/anna/gone",
                "/home/anna/locked"
            ]
        );
        let rs = plan.rule_set();
        assert!(rs.excludes(
            &RawPath::from("/home/anna/.local/share/asgard/cache.redb"),
            false
        ));
        assert!(rs.excludes(&RawPath::from("/home/anna/.cache"), true));
    }

    #[test]
    fn bad_input_is_an_error() {
        let rel = ["Documents".to_owned()];
        let input = PlanInput {
            user_folders: Some(&rel),
            ..Default::default()
        };
        assert!(matches!(
            build(&input, &env_of(ANNA), &all_dirs),
            Err(RuleError::NotAbsolute { .. })
        ));
        assert_eq!(
            build(&PlanInput::default(), &env_of(&[]), &all_dirs).unwrap_err(),
            RuleError::NoHome
        );
        let input = PlanInput {
            windows: true,
            scope: Scope::System,
            ..Default::default()
        };
        assert_eq!(
            build(&input, &env_of(BOB), &all_dirs).unwrap_err(),
            RuleError::SystemScopeOnWindows
        );
        let bad = ["{x".to_owned()];
        let input = PlanInput {
            blacklist: &bad,
            ..Default::default()
        };
        assert!(matches!(
            build(&input, &env_of(ANNA), &all_dirs),
            Err(RuleError::Invalid { .. })
        ));
    }

    #[test]
    fn windows_system_drive_and_profile_fallback() {
        let env = env_of(&[("USERNAME", "Eve"), ("SystemDrive", "D:")]);
        let input = PlanInput {
            windows: true,
            ..Default::default()
        };
        let plan = build(&input, &env, &all_dirs).unwrap();
        assert_eq!(paths_of(&plan)[0], r"D:\Users\Eve\Documents");
        assert_eq!(never(&plan)[0], r"D:\Windows");
        assert_eq!(never(&plan)[4], r"D:\Users\Eve\AppData\Local");
    }

    #[test]
    fn other_filesystems_inside_roots() {
        let mut plan = build(&PlanInput::default(), &env_of(ANNA), &all_dirs).unwrap();
        let before = plan.excluded.len();
        plan.add_other_filesystem(RawPath::from("/home/anna/nas"));
        plan.add_other_filesystem(RawPath::from("/home/anna"));
        plan.add_other_filesystem(RawPath::from("/proc"));
        plan.add_other_filesystem(RawPath::from("/home/anna/nas"));
        assert_eq!(plan.excluded.len(), before + 1);
        assert_eq!(
            plan.excluded.last().unwrap(),
            &ExcludedRoot {
                path: RawPath::from("/home/anna/nas"),
                reason: ExcludeReason::OtherFilesystem
            }
        );
        let input = PlanInput {
            cross_filesystems: true,
            ..Default::default()
        };
        let mut plan = build(&input, &env_of(ANNA), &all_dirs).unwrap();
        plan.add_other_filesystem(RawPath::from("/home/anna/nas"));
        assert_eq!(plan.excluded.len(), before);
    }

    #[test]
    fn json_shape() {
        let plan = build(&PlanInput::default(), &env_of(ANNA), &all_dirs).unwrap();
        let v = serde_json::to_value(&plan).unwrap();
        assert_eq!(v["windows"], false);
        assert_eq!(v["scope"], "user");
        assert_eq!(v["cross_filesystems"], false);
        assert_eq!(
            v["included"][0],
            serde_json::json!({"path": "/home/anna", "origin": "default"})
        );
        assert_eq!(
            v["excluded"][0],
            serde_json::json!({"path": "/proc", "reason": "blacklist", "rule": "/proc", "origin": "default"})
        );
        assert_eq!(
            v["rules"][0],
            serde_json::json!({"rule": "/proc", "pattern": "/proc", "kind": "prefix", "dir_only": false, "origin": "default"})
        );
    }
}
