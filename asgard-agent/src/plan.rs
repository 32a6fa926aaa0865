//! `plan`: what a backup would save, and why each excluded path is excluded. Builds the
//! [`asgard_core::Plan`] from the config, asks the file system which roots exist, and lists the
//! other file systems mounted inside the roots (the walk does not enter them).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use asgard_core::plan::{self, ExcludeReason, PlanInput, RootOrigin, RootState, Scope};
use asgard_core::rules::{RuleError, RuleOrigin};
use asgard_core::{Lang, Plan, RawPath};

use crate::config::Config;
use crate::platform;
use crate::scan::{IGNORE_FILE, ScanRules};
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
pub fn build(
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
pub fn for_backup(
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
        print!("{}", render(&plan, ctx.lang));
    }
    Ok(ExitCode::SUCCESS)
}

fn origin_text(o: RuleOrigin, lang: Lang) -> &'static str {
    match o {
        RuleOrigin::Default => lang.pick("Standard", "default"),
        RuleOrigin::Configured => lang.pick("Konfiguration", "config"),
        RuleOrigin::Agent => lang.pick("Zustandsordner des Agenten", "the agent's state folder"),
    }
}

fn reason_text(path: &RawPath, reason: &ExcludeReason, lang: Lang) -> String {
    match (reason, lang) {
        (
            ExcludeReason::Blacklist {
                origin: RuleOrigin::Agent,
                ..
            },
            _,
        ) => origin_text(RuleOrigin::Agent, lang).to_owned(),
        (ExcludeReason::Blacklist { rule, origin }, _) if *rule == path.lossy() => {
            format!(
                "{} ({})",
                lang.pick("Ausschlussliste", "exclusion list"),
                origin_text(*origin, lang)
            )
        }
        (ExcludeReason::Blacklist { rule, origin }, Lang::De) => {
            format!("Regel „{rule}“ ({})", origin_text(*origin, lang))
        }
        (ExcludeReason::Blacklist { rule, origin }, Lang::En) => {
            format!("rule \"{rule}\" ({})", origin_text(*origin, lang))
        }
        (ExcludeReason::NotEnabled { option }, Lang::De) => format!(
            "optional, nicht eingeschaltet (include_optional: {})",
            option.name()
        ),
        (ExcludeReason::NotEnabled { option }, Lang::En) => format!(
            "optional, not enabled (include_optional: {})",
            option.name()
        ),
        (ExcludeReason::Missing, Lang::De) => {
            "fehlt (wird gemeldet; nichts darin gilt als gelöscht)".to_owned()
        }
        (ExcludeReason::Missing, Lang::En) => {
            "missing (reported; nothing in it counts as deleted)".to_owned()
        }
        (ExcludeReason::Unreadable { error }, Lang::De) => {
            format!("nicht lesbar: {error} (nichts darin gilt als gelöscht)")
        }
        (ExcludeReason::Unreadable { error }, Lang::En) => {
            format!("cannot be read: {error} (nothing in it counts as deleted)")
        }
        (ExcludeReason::OtherFilesystem, Lang::De) => {
            "anderes Dateisystem (cross_filesystems: true sichert es mit)".to_owned()
        }
        (ExcludeReason::OtherFilesystem, Lang::En) => {
            "another file system (cross_filesystems: true includes it)".to_owned()
        }
    }
}

/// The plan as text for people.
pub fn render(plan: &Plan, lang: Lang) -> String {
    let mut out = String::new();
    let os = if plan.windows { "Windows" } else { "Linux" };
    let scope = match plan.scope {
        Scope::User => lang.pick("Benutzer", "user"),
        Scope::System => lang.pick("ganzer Rechner", "whole machine"),
    };
    let width = plan
        .included
        .iter()
        .map(|r| r.path.lossy().chars().count())
        .chain(plan.excluded.iter().map(|e| e.path.lossy().chars().count()))
        .max()
        .unwrap_or(0)
        .min(40);
    let _ = writeln!(
        out,
        "{} ({os}, {scope})",
        lang.pick("Sicherungsplan", "Backup plan")
    );
    let _ = writeln!(out, "{}", lang.pick("Gesichert wird:", "Backed up:"));
    if plan.included.is_empty() {
        let _ = writeln!(out, "  {}", lang.pick("(nichts)", "(nothing)"));
    }
    for r in &plan.included {
        let why = match (r.origin, r.option) {
            (RootOrigin::Default, _) => lang.pick("Standard", "default").to_owned(),
            (RootOrigin::Configured, _) => lang.pick("user_folders", "user_folders").to_owned(),
            (RootOrigin::Optional, Some(o)) => format!("include_optional: {}", o.name()),
            (RootOrigin::Optional, None) => "include_optional".to_owned(),
        };
        let _ = writeln!(out, "  {:<width$}  ({why})", r.path.lossy());
    }
    let _ = writeln!(out, "{}", lang.pick("Nicht gesichert:", "Not backed up:"));
    for e in &plan.excluded {
        let _ = writeln!(
            out,
            "  {:<width$}  {}",
            e.path.lossy(),
            reason_text(&e.path, &e.reason, lang)
        );
    }
    let _ = writeln!(
        out,
        "{}",
        match lang {
            Lang::De => format!(
                "Außerdem gelten {IGNORE_FILE}-Dateien (gitignore-Regeln für ihren Ordner und alles darunter)."
            ),
            Lang::En => format!(
                "{IGNORE_FILE} files apply too (gitignore rules for their folder and everything below)."
            ),
        }
    );
    if !plan.cross_filesystems {
        let _ = writeln!(
            out,
            "{}",
            lang.pick(
                "Andere Dateisysteme innerhalb der Ordner werden nicht betreten.",
                "Other file systems inside the folders are not entered."
            )
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anna(k: &str) -> Option<String> {
        match k {
            "HOME" => Some("/home/anna".into()),
            "USER" => Some("anna".into()),
            _ => None,
        }
    }

    #[test]
    fn text_names_every_root_and_reason() {
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
        let plan = plan::build(&input, &anna, &probe).unwrap();
        let de = render(&plan, Lang::De);
        assert!(
            de.starts_with("Sicherungsplan (Linux, ganzer Rechner)"),
            "{de}"
        );
        for line in [
            "/home ",
            "/etc ",
            "/opt ",
            "/root ",
            "/srv ",
            "fehlt",
            "include_optional: docker",
            "/var/tmp",
            "Ausschlussliste (Standard)",
            ".asgardignore",
        ] {
            assert!(de.contains(line), "{line} missing in:\n{de}");
        }
        let en = render(&plan, Lang::En);
        assert!(
            en.contains("Backed up:") && en.contains("missing (reported"),
            "{en}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn config_scope_and_state_folder() {
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
        let text = render(&plan, Lang::De);
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
