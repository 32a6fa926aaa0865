//! What is backed up: the `plan` command of the real agent binary (CLI wiring, config keys,
//! placeholders, `--system`). The exact default lists are pinned by the unit tests in
//! `asgard-core/src/plan.rs`; these tests check that the binary shows them.

use std::path::Path;
use std::process::{Command, Output};

use asgard_core::plan::LINUX_NEVER;
use serde_json::{Value, json};

use asgard_e2e::agent_bin;

/// The agent with a clean environment: `HOME` is `home`, German unless `lang` says otherwise.
fn agent(home: &Path, lang: &str) -> Command {
    let mut c = Command::new(agent_bin());
    c.env_clear()
        .env("HOME", home)
        .env("USER", "anna")
        .env("LANG", lang)
        .env("TZ", "UTC");
    c
}

fn plan_json(out: Output) -> Value {
    assert!(
        out.status.success(),
        "plan failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "plan --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn excluded<'a>(plan: &'a Value, reason: &str) -> Vec<&'a Value> {
    plan["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

fn paths(entries: &[&Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn plan_json_for_a_user_home() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("Documents")).unwrap();
    let plan = plan_json(
        agent(home.path(), "de_DE.UTF-8")
            .args(["plan", "--json"])
            .output()
            .unwrap(),
    );
    let home_str = home.path().to_str().unwrap();
    assert_eq!(plan["windows"], false);
    assert_eq!(plan["scope"], "user");
    assert_eq!(plan["cross_filesystems"], false);
    assert_eq!(
        plan["included"],
        json!([{"path": home_str, "origin": "default"}])
    );
    let blacklist = excluded(&plan, "blacklist");
    let defaults: Vec<&Value> = blacklist
        .iter()
        .copied()
        .filter(|e| e["origin"] == "default")
        .collect();
    assert_eq!(paths(&defaults), LINUX_NEVER);
    assert_eq!(
        defaults[0],
        &json!({"path": "/proc", "reason": "blacklist", "rule": "/proc", "origin": "default"})
    );
    // The agent's own state folder (default: ~/.local/share/asgard) is never backed up.
    let state = format!("{home_str}/.local/share/asgard");
    assert!(
        blacklist
            .iter()
            .any(|e| e["path"] == state.as_str() && e["origin"] == "agent"),
        "{plan:#}"
    );
    assert_eq!(plan["rules"].as_array().unwrap().len(), blacklist.len());
}

#[test]
fn plan_uses_the_config() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("Docs")).unwrap();
    let config = home.path().join("agent.yaml");
    std::fs::write(
        &config,
        "user_folders: [\"~/Docs/\", \"$HOME/gone\"]\nblacklist: [\"*.iso\", \"~/Docs/tmp/\"]\n\
         include_optional: [downloads]\ncross_filesystems: true\n",
    )
    .unwrap();
    let out = agent(home.path(), "de_DE.UTF-8")
        .arg("--config")
        .arg(&config)
        .args(["plan", "--json"])
        .output()
        .unwrap();
    let plan = plan_json(out);
    let home_str = home.path().to_str().unwrap();
    assert_eq!(plan["cross_filesystems"], true);
    assert_eq!(
        plan["included"],
        json!([{"path": format!("{home_str}/Docs"), "origin": "configured"}])
    );
    assert_eq!(
        paths(&excluded(&plan, "missing")),
        [format!("{home_str}/gone")]
    );
    let configured: Vec<&Value> = excluded(&plan, "blacklist")
        .into_iter()
        .filter(|e| e["origin"] == "configured")
        .collect();
    assert_eq!(
        paths(&configured),
        ["*.iso".to_owned(), format!("{home_str}/Docs/tmp")]
    );
    // `downloads` is a Windows option: nothing to enable on Linux.
    assert!(excluded(&plan, "not_enabled").is_empty());
    let rule = &plan["rules"].as_array().unwrap()[LINUX_NEVER.len()];
    assert_eq!(
        rule,
        &json!({"rule": "*.iso", "pattern": "**/*.iso", "kind": "glob", "dir_only": false, "origin": "configured"})
    );
}

#[test]
fn plan_system_lists_every_system_root() {
    let home = tempfile::tempdir().unwrap();
    let plan = plan_json(
        agent(home.path(), "de_DE.UTF-8")
            .args(["plan", "--json", "--system"])
            .output()
            .unwrap(),
    );
    assert_eq!(plan["scope"], "system");
    let included = plan["included"].as_array().unwrap();
    for root in ["/home", "/etc", "/opt", "/srv", "/root"] {
        let listed = included
            .iter()
            .any(|r| r["path"] == root && r["origin"] == "default")
            || plan["excluded"].as_array().unwrap().iter().any(|e| {
                e["path"] == root && (e["reason"] == "missing" || e["reason"] == "unreadable")
            });
        assert!(listed, "{root} not listed: {plan:#}");
    }
    assert_eq!(
        paths(&excluded(&plan, "not_enabled")),
        ["/var/lib/docker", "/var/lib/libvirt"]
    );
    // Mount points inside the roots may be listed as other file systems; nothing else is.
    for e in plan["excluded"].as_array().unwrap() {
        let reason = e["reason"].as_str().unwrap();
        assert!(
            [
                "blacklist",
                "not_enabled",
                "missing",
                "unreadable",
                "other_filesystem"
            ]
            .contains(&reason),
            "{e}"
        );
    }
}

#[test]
fn plan_text_in_german_and_english() {
    let home = tempfile::tempdir().unwrap();
    let home_str = home.path().to_str().unwrap();
    let out = agent(home.path(), "de_DE.UTF-8")
        .arg("plan")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Sicherungsplan (Linux, Benutzer)"),
        "{text}"
    );
    assert!(text.contains("Gesichert wird:\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(home_str) && l.ends_with("(Standard)")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("/proc ")
                && l.ends_with("Ausschlussliste (Standard)")),
        "{text}"
    );
    let out = agent(home.path(), "en_US.UTF-8")
        .arg("plan")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Backed up:\n") && text.contains("Not backed up:\n"),
        "{text}"
    );
    let help = agent(home.path(), "de_DE.UTF-8")
        .args(["plan", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for key in [
        "\"included\"",
        "\"excluded\"",
        "\"reason\"",
        "\"rules\"",
        "--system",
    ] {
        assert!(help.contains(key), "{key} missing in help:\n{help}");
    }
}

#[test]
fn plan_with_a_bad_rule_fails_and_names_it() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("agent.yaml");
    std::fs::write(&config, "blacklist: [\"{unclosed\"]\n").unwrap();
    let out = agent(home.path(), "de_DE.UTF-8")
        .arg("--config")
        .arg(&config)
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ungültige Regel „{unclosed“"), "{err}");
    std::fs::write(&config, "include_optional: [dokker]\n").unwrap();
    let out = agent(home.path(), "de_DE.UTF-8")
        .arg("--config")
        .arg(&config)
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dokker"));
}
