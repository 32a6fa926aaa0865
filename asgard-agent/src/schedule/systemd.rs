//! The systemd back end: a timer and a oneshot service, written as files, then activated with
//! `systemctl` where it can be reached.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use asgard_core::Lang;

use super::{Every, Invocation, NAME};
use crate::platform;
use crate::present::schedule as present;

/// The `.service` unit.
pub(crate) fn service_unit(inv: &Invocation, lang: Lang) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", header(lang));
    let _ = writeln!(s, "[Unit]");
    let _ = writeln!(
        s,
        "Description={}",
        lang.pick("AsgardBackup: Sicherung", "AsgardBackup: backup")
    );
    if inv.system {
        let _ = writeln!(s, "Wants=network-online.target");
        let _ = writeln!(s, "After=network-online.target");
    }
    let _ = writeln!(s, "\n[Service]");
    let _ = writeln!(s, "Type=oneshot");
    let _ = writeln!(s, "ExecStart={}", inv.systemd_command());
    let _ = writeln!(
        s,
        "# {}",
        lang.pick(
            "Exit-Code 3: Sicherung fertig, einzelne Dateien nicht lesbar",
            "exit code 3: backup done, some files unreadable"
        )
    );
    let _ = writeln!(s, "SuccessExitStatus=3");
    if inv.system {
        let _ = writeln!(s, "User=root");
    }
    let _ = writeln!(s, "Nice=10");
    let _ = writeln!(s, "IOSchedulingClass=best-effort");
    let _ = writeln!(s, "IOSchedulingPriority=7");
    s
}

/// The `.timer` unit.
pub(crate) fn timer_unit(every: Every, lang: Lang) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", header(lang));
    let _ = writeln!(s, "[Unit]");
    let _ = writeln!(
        s,
        "Description={} {}",
        lang.pick(
            "AsgardBackup: Sicherung regelmäßig starten, Intervall",
            "AsgardBackup: start the backup regularly, interval"
        ),
        every.text()
    );
    let _ = writeln!(s, "\n[Timer]");
    let _ = writeln!(s, "OnCalendar={}", every.on_calendar());
    let _ = writeln!(s, "RandomizedDelaySec={}", every.spread_secs());
    let _ = writeln!(s, "FixedRandomDelay=true");
    let _ = writeln!(s, "Persistent=true");
    let _ = writeln!(s, "X-AsgardEvery={}", every.text());
    let _ = writeln!(s, "\n[Install]");
    let _ = writeln!(s, "WantedBy=timers.target");
    s
}

fn header(lang: Lang) -> &'static str {
    lang.pick(
        "# Geschrieben von `asgard-agent schedule install`; entfernen mit `asgard-agent schedule remove`.",
        "# Written by `asgard-agent schedule install`; remove with `asgard-agent schedule remove`.",
    )
}

/// The interval a timer unit written by us declares.
pub(crate) fn timer_interval(text: &str) -> Option<Every> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("X-AsgardEvery="))
        .and_then(|v| Every::parse(v).ok())
}

/// The unit files of a systemd back end: (service, timer, wants link).
pub(crate) fn unit_paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join(format!("{NAME}.service")),
        dir.join(format!("{NAME}.timer")),
        dir.join("timers.target.wants")
            .join(format!("{NAME}.timer")),
    )
}

fn systemctl(user: bool, args: &[&str]) -> Result<String, String> {
    let program = platform::real_env("ASGARD_SYSTEMCTL").unwrap_or_else(|| "systemctl".into());
    let mut cmd = Command::new(&program);
    if user {
        cmd.arg("--user");
    }
    match cmd.args(args).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

fn systemctl_hint(user: bool, rest: &str) -> String {
    format!("systemctl{} {rest}", if user { " --user" } else { "" })
}

fn permission_hint(e: &std::io::Error, user: bool, lang: Lang) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied && !user {
        lang.pick(
            " (--system braucht root-Rechte)",
            " (--system needs root privileges)",
        )
        .to_owned()
    } else {
        String::new()
    }
}

pub(crate) fn install(
    dir: &Path,
    user: bool,
    every: Every,
    inv: &Invocation,
    lang: Lang,
) -> anyhow::Result<ExitCode> {
    let (service, timer, wants) = unit_paths(dir);
    let write = |path: &Path, text: &str| -> anyhow::Result<()> {
        let r = std::fs::create_dir_all(path.parent().unwrap_or(dir))
            .and_then(|_| std::fs::write(path, text));
        r.map_err(|e| {
            anyhow::anyhow!(
                "{} {}: {e}{}",
                lang.pick("Kann nicht schreiben:", "Cannot write:"),
                path.display(),
                permission_hint(&e, user, lang)
            )
        })
    };
    write(&service, &service_unit(inv, lang))?;
    write(&timer, &timer_unit(every, lang))?;
    // What `systemctl enable` does, done by hand so the timer starts with the next session even
    // when systemctl cannot be reached now.
    if let Some(parent) = wants.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(&wants);
    platform::symlink(&timer, &wants)
        .with_context(|| format!("{} -> {}", wants.display(), timer.display()))?;
    println!("{}", present::systemd_installed(&every.text(), user, lang));
    println!("  {}\n  {}", service.display(), timer.display());
    let activated = systemctl(user, &["daemon-reload"])
        .and_then(|_| systemctl(user, &["enable", "--now", &format!("{NAME}.timer")]));
    match activated {
        Ok(_) => {
            println!(
                "{}",
                lang.pick("Der Timer ist aktiv.", "The timer is active.")
            );
            if user {
                println!(
                    "{}",
                    lang.pick(
                        "Hinweis: Damit er auch ohne Anmeldung läuft: loginctl enable-linger $USER",
                        "Note: to run it without a login session too: loginctl enable-linger $USER"
                    )
                );
            }
        }
        Err(e) => {
            let cmd = format!(
                "{} && {}",
                systemctl_hint(user, "daemon-reload"),
                systemctl_hint(user, &format!("enable --now {NAME}.timer"))
            );
            println!("{}", present::timer_not_started(&e, &cmd, lang));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn status(dir: &Path, user: bool, lang: Lang) -> anyhow::Result<ExitCode> {
    let (service, timer, wants) = unit_paths(dir);
    let Ok(text) = std::fs::read_to_string(&timer) else {
        println!(
            "{} ({})",
            lang.pick("Kein Zeitplan eingerichtet", "No schedule installed"),
            timer.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let every = timer_interval(&text).map_or_else(|| "?".to_owned(), Every::text);
    println!(
        "{}: {every}",
        lang.pick(
            "Zeitplan eingerichtet, Sicherung alle",
            "Schedule installed, backup every"
        )
    );
    println!("  {}\n  {}", service.display(), timer.display());
    let enabled = std::fs::symlink_metadata(&wants).is_ok();
    println!(
        "  {}: {}",
        lang.pick("eingetragen (enabled)", "enabled"),
        lang.pick(
            if enabled { "ja" } else { "nein" },
            if enabled { "yes" } else { "no" }
        )
    );
    match systemctl(
        user,
        &[
            "show",
            &format!("{NAME}.timer"),
            "--property=ActiveState,NextElapseUSecRealtime,LastTriggerUSec",
        ],
    ) {
        Ok(out) => {
            for line in out.lines().filter(|l| !l.ends_with('=')) {
                let (key, value) = line.split_once('=').unwrap_or((line, ""));
                let label = match key {
                    "ActiveState" => lang.pick("Zustand", "state"),
                    "NextElapseUSecRealtime" => lang.pick("nächster Lauf", "next run"),
                    "LastTriggerUSec" => lang.pick("letzter Lauf", "last run"),
                    _ => key,
                };
                println!("  {label}: {value}");
            }
        }
        Err(e) => println!(
            "  {}: {e}",
            lang.pick(
                "systemd nicht erreichbar, nächster Lauf unbekannt",
                "systemd not reachable, next run unknown"
            )
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn remove(dir: &Path, user: bool, lang: Lang) -> anyhow::Result<ExitCode> {
    let (service, timer, wants) = unit_paths(dir);
    let stopped = systemctl(user, &["disable", "--now", &format!("{NAME}.timer")]);
    let mut removed = 0;
    for p in [&wants, &timer, &service] {
        match std::fs::remove_file(p) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!(
                "{} {}: {e}{}",
                lang.pick("Kann nicht entfernen:", "Cannot remove:"),
                p.display(),
                permission_hint(&e, user, lang)
            ),
        }
    }
    let _ = systemctl(user, &["daemon-reload"]);
    if removed == 0 {
        println!(
            "{}",
            lang.pick(
                "Kein Zeitplan eingerichtet; nichts zu entfernen.",
                "No schedule installed; nothing to remove."
            )
        );
    } else {
        println!("{}", lang.pick("Zeitplan entfernt.", "Schedule removed."));
        if let Err(e) = stopped {
            println!(
                "{} ({e}): {}",
                lang.pick(
                    "Hinweis: systemd nicht erreichbar; ein laufender Timer endet mit der Sitzung",
                    "Note: systemd not reachable; a running timer ends with the session"
                ),
                systemctl_hint(user, &format!("stop {NAME}.timer"))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Invocation {
        Invocation {
            exe: PathBuf::from("/opt/asgard agent/asgard-agent"),
            config: None,
            state_dir: None,
            server: Some("https://backup.example:8443".into()),
            system: false,
        }
    }

    #[test]
    fn units_have_the_required_keys() {
        let mut i = inv();
        let s = service_unit(&i, Lang::De);
        assert!(s.contains("\n[Service]\nType=oneshot\nExecStart=\"/opt/asgard agent/"));
        assert!(s.contains("SuccessExitStatus=3"));
        assert!(!s.contains("User=root"));
        i.system = true;
        let s = service_unit(&i, Lang::De);
        assert!(s.contains("User=root") && s.contains("backup --system"));
        let t = timer_unit(Every::Hours(6), Lang::De);
        for key in [
            "[Timer]\nOnCalendar=*-*-* 00/6:00:00",
            "Persistent=true",
            "[Install]\nWantedBy=timers.target",
            "Description=",
        ] {
            assert!(t.contains(key), "{key} missing in\n{t}");
        }
        assert_eq!(timer_interval(&t), Some(Every::Hours(6)));
        assert_eq!(timer_interval("[Timer]\n"), None);
    }
}
