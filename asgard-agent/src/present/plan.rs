//! The text of `plan`: what is backed up, what is not, and why.

use std::fmt::Write as _;

use asgard_core::plan::{ExcludeReason, RootOrigin, Scope};
use asgard_core::rules::RuleOrigin;
use asgard_core::{Lang, Plan, RawPath};

use crate::scan::IGNORE_FILE;

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
pub(crate) fn render(plan: &Plan, lang: Lang) -> String {
    let mut out = String::new();
    let os = if plan.windows { "Windows" } else { "Linux" };
    let scope = match plan.scope {
        Scope::User => lang.pick("Benutzer", "user"),
        Scope::System => lang.pick("ganzer Rechner", "whole machine"),
    };
    let width = plan
        .included
        .iter()
        .map(|r| r.path.escaped().to_string().chars().count())
        .chain(
            plan.excluded
                .iter()
                .map(|e| e.path.escaped().to_string().chars().count()),
        )
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
        let _ = writeln!(out, "  {:<width$}  ({why})", r.path.escaped().to_string());
    }
    let _ = writeln!(out, "{}", lang.pick("Nicht gesichert:", "Not backed up:"));
    for e in &plan.excluded {
        let _ = writeln!(
            out,
            "  {:<width$}  {}",
            e.path.escaped().to_string(),
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
    use asgard_core::plan::{self, PlanInput, RootState};

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
}
