//! `plan`: what a backup would save, and why each excluded path is excluded. Builds the
//! [`asgard_core::Plan`] from the config, asks the file system which roots exist, and lists the
//! other file systems mounted inside the roots (the walk does not enter them).

use std::path::Path;
use std::process::ExitCode;

use asgard_core::plan::{self, PlanInput, RootState, Scope};
use asgard_core::rules::RuleError;
use asgard_core::{Plan, RawPath};

use crate::config::Config;
use crate::platform;
use crate::present::errors::Describe;
use crate::present::plan as present;
use crate::scan::ScanRules;
use crate::session::Ctx;

/// The JSON shape of `plan --json`, shown in the command's help.
pub const JSON_HELP: &str = "\
Aufbau von --json (stabil; Pfade sind Zeichenketten, nicht-UTF-8-Pfade {\"hex\": \"...\"}):
  {
    \"windows\": false,                 Windows-Regeln (Groß-/Kleinschreibung egal)
    \"scope\": \"user\" | \"system\",
    \"cross_filesystems\": false,
    \"included\": [                     was gesichert wird
      {\"path\": \"/home/anna\", \"origin\": \"default\" | \"configured\" | \"optional\",
       \"option\": \"docker\"}          (nur bei origin optional)
    ],
    \"excluded\": [                     was nicht gesichert wird, und warum (reason)
      {\"path\": \"/proc\", \"reason\": \"blacklist\", \"rule\": \"/proc\",
       \"origin\": \"default\" | \"configured\" | \"agent\"},
      {\"path\": \"/var/lib/docker\", \"reason\": \"not_enabled\", \"option\": \"docker\"},
      {\"path\": \"/srv\", \"reason\": \"missing\"},
      {\"path\": \"/root\", \"reason\": \"unreadable\", \"error\": \"...\"},
      {\"path\": \"/home/anna/nas\", \"reason\": \"other_filesystem\"}
    ],
    \"rules\": [                        die aktiven Ausschlussregeln
      {\"rule\": \"*.tmp\", \"pattern\": \"**/*.tmp\", \"kind\": \"prefix\" | \"glob\",
       \"dir_only\": false, \"origin\": \"configured\"}
    ]
  }";

/// Builds the plan for this machine: `system` (`--system`) overrides the config's scope;
/// `state_dir`, the agent's own folder, is excluded.
pub(crate) fn build(
    config: &Config,
    system: bool,
    state_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, RuleError> {
    let agent_folders: Vec<String> = state_dir
        .and_then(|d| std::path::absolute(d).ok())
        .map(|d| d.to_string_lossy().into_owned())
        .into_iter()
        .collect();
    let input = PlanInput {
        windows: platform::WINDOWS,
        scope: if system { Scope::System } else { config.scope },
        user_folders: config.user_folders.as_deref(),
        blacklist: &config.blacklist,
        include_optional: &config.include_optional,
        cross_filesystems: config.cross_filesystems,
        agent_folders: &agent_folders,
    };
    let mut plan = plan::build(&input, env, &probe)?;
    if !plan.cross_filesystems {
        for mount in platform::mount_points() {
            let m = RawPath::from_path(&mount);
            let root = plan
                .included
                .iter()
                .find(|r| m.is_within(&r.path) && !r.path.is_within(&m))
                .map(|r| r.path.to_path_buf());
            // The walk checks folders only (a file bind-mounted into a root is still read).
            if let Some(root) = root
                && mount.is_dir()
                && !platform::same_device(&mount, &root)
            {
                plan.add_other_filesystem(m);
            }
        }
    }
    Ok(plan)
}

/// The plan and the scanner's rules, as a backup needs them.
pub(crate) fn for_backup(
    config: &Config,
    system: bool,
    state_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Plan, ScanRules), RuleError> {
    let plan = build(config, system, state_dir, env)?;
    let rules = ScanRules::from_plan(&plan);
    Ok((plan, rules))
}

/// What is at a root (links to folders count as folders: a named root is followed).
fn probe(path: &RawPath) -> RootState {
    let p = path.to_path_buf();
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => match std::fs::read_dir(&p) {
            Ok(_) => RootState::Dir,
            Err(e) => RootState::Unreadable(e.to_string()),
        },
        Ok(_) => RootState::File,
        // A dangling link is still an entry (backed up as a link).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(&p).is_ok() {
                RootState::File
            } else {
                RootState::Missing
            }
        }
        Err(e) => RootState::Unreadable(e.to_string()),
    }
}

pub fn run(ctx: &Ctx, json: bool, system: bool) -> anyhow::Result<ExitCode> {
    let plan = build(
        &ctx.config,
        system,
        Some(&ctx.state_dir),
        &platform::real_env,
    )
    .map_err(|e| anyhow::anyhow!("{}", e.describe(ctx.lang)))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", present::render(&plan, ctx.lang));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn config_scope_and_state_folder() {
        use asgard_core::Lang;
        let config = Config {
            blacklist: vec!["*.iso".into()],
            ..Config::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_string_lossy().into_owned();
        let env = move |k: &str| (k == "HOME").then(|| home.clone());
        let state = dir.path().join(".local/share/asgard");
        let plan = build(&config, false, Some(&state), &env).unwrap();
        assert_eq!(plan.scope, Scope::User);
        // A temp home lies below /tmp: the named root wins over the never list.
        assert_eq!(plan.included.len(), 1);
        assert_eq!(plan.included[0].path, RawPath::from_path(dir.path()));
        let text = present::render(&plan, Lang::De);
        assert!(
            text.lines()
                .any(|l| l.contains("*.iso") && l.ends_with("Ausschlussliste (Konfiguration)")),
            "{text}"
        );
        assert!(text.contains("Zustandsordner des Agenten"), "{text}");
        assert!(
            plan.rule_set()
                .excludes(&RawPath::from_path(&state.join("x")), false)
        );
        let (system, _) = for_backup(&config, true, None, &env).unwrap();
        assert_eq!(system.scope, Scope::System);
    }

    /// Windows (under Wine in CI): the default plan for the real profile.
    #[cfg(windows)]
    #[test]
    fn default_plan_for_the_real_profile() {
        use asgard_core::plan::ExcludeReason;
        use asgard_core::rules::RuleOrigin;
        let profile = platform::real_env("USERPROFILE").expect("USERPROFILE is set");
        let user = platform::real_env("USERNAME").expect("USERNAME is set");
        assert!(
            profile.to_lowercase().ends_with(&user.to_lowercase()),
            "{profile} / {user}"
        );
        let plan = build(&Config::default(), false, None, &platform::real_env).unwrap();
        assert!(plan.windows);
        let included: Vec<String> = plan.included.iter().map(|r| r.path.lossy()).collect();
        for d in ["Documents", "Desktop", "Pictures"] {
            let want = format!("{profile}\\{d}");
            let missing = plan
                .excluded
                .iter()
                .any(|e| e.path.lossy() == want && e.reason == ExcludeReason::Missing);
            assert!(
                included.contains(&want) || missing,
                "{want} not in {plan:#?}"
            );
        }
        assert!(
            included.iter().any(|p| p.ends_with("\\Documents")),
            "Documents exists in every profile: {included:?}"
        );
        let local = format!("{profile}\\AppData\\Local");
        assert!(plan.excluded.iter().any(|e| e.path.lossy() == local
            && matches!(
                e.reason,
                ExcludeReason::Blacklist {
                    origin: RuleOrigin::Default,
                    ..
                }
            )));
        let rules = plan.rule_set();
        assert!(rules.excludes(
            &RawPath::from(format!("{local}\\Temp\\x.tmp").as_str()),
            false
        ));
        assert!(rules.excludes(&RawPath::from(local.to_uppercase().as_str()), true));
        assert!(!rules.excludes(
            &RawPath::from(format!("{profile}\\Documents\\a.txt").as_str()),
            false
        ));
        assert!(plan.excluded.iter().any(|e| e.reason
            == ExcludeReason::NotEnabled {
                option: asgard_core::plan::OptionalRoot::Downloads
            }));
    }
}
