//! `schedule install | status | remove`: run `backup` regularly without anybody being there.
//!
//! - Linux with systemd: a user timer and service in `$XDG_CONFIG_HOME/systemd/user` (default
//!   `~/.config/systemd/user`), or with `--system` a system timer in `/etc/systemd/system` (root
//!   only) whose service runs `backup --system` as root. The unit files and the
//!   `timers.target.wants` link are written first, then `systemctl daemon-reload` and
//!   `enable --now` are tried; where that fails (no user session, a container) the files stay and
//!   the user is told the command to run.
//! - Linux without systemd (no `/run/systemd/system`): the crontab line is printed.
//! - Windows: a Task Scheduler task `AsgardBackup` through `schtasks`.
//!
//! Intervals are regular on the clock (every 15 minutes, every hour, at 12:00 every day, ...), so
//! all three back ends express them exactly and a systemd timer can catch up a run missed while
//! the machine was off (`Persistent=true` works with `OnCalendar=` only). Agents spread their
//! start times (a fixed random delay per machine; a per-machine minute for cron) so a fleet does
//! not hit the server in the same second.
//!
//! Environment overrides, for tests and unusual setups:
//! - `ASGARD_SYSTEMD_DIR`: write the units into this folder and take systemd as present.
//! - `ASGARD_SYSTEMCTL`: the `systemctl` program to call.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use asgard_core::Lang;

use crate::platform;

mod cron;
mod systemd;
mod tasks;

/// Unit and task base name.
pub(crate) const NAME: &str = "asgard-backup";
/// The Windows task name.
pub(crate) const TASK_NAME: &str = "AsgardBackup";
/// The system unit folder.
pub(crate) const SYSTEM_UNIT_DIR: &str = "/etc/systemd/system";
/// How often `backup` runs: a divisor of an hour or a day, a day, or a week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Every n minutes, n divides 60 and 5 <= n < 60.
    Minutes(u32),
    /// Every n hours, n divides 24 and 1 <= n < 24.
    Hours(u32),
    /// Once a day, at 12:00 (plus the spread).
    Day,
    /// Once a week, Monday 12:00 (plus the spread).
    Week,
}

impl Every {
    /// Parses `15m`, `1h`, `6h`, `1d`, `7d` (also `60m`, `24h`, `1w`, `90min`-style words are not
    /// accepted: only intervals that are regular on the clock).
    pub fn parse(text: &str) -> Result<Every, String> {
        let t = text.trim().to_ascii_lowercase();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u32 = num
            .parse()
            .map_err(|_| format!("„{text}“: erwartet z. B. 15m, 1h, 6h, 1d"))?;
        let minutes = match unit {
            "m" | "min" => n,
            "h" => n.saturating_mul(60),
            "d" => n.saturating_mul(24 * 60),
            "w" => n.saturating_mul(7 * 24 * 60),
            _ => return Err(format!("„{text}“: Einheit m, h, d oder w erwartet")),
        };
        Every::from_minutes(minutes).ok_or_else(|| {
            format!(
                "„{text}“: erlaubt sind 5m, 10m, 15m, 20m, 30m, 1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d \
                 und 7d (regelmäßig zur vollen Stunde bzw. zum Tag)"
            )
        })
    }

    fn from_minutes(m: u32) -> Option<Every> {
        match m {
            0 => None,
            1440 => Some(Every::Day),
            10080 => Some(Every::Week),
            m if m % 60 == 0 && m < 1440 && 1440 % m == 0 => Some(Every::Hours(m / 60)),
            m if (5..60).contains(&m) && 60 % m == 0 => Some(Every::Minutes(m)),
            60 => Some(Every::Hours(1)),
            _ => None,
        }
    }

    pub(crate) fn minutes(self) -> u32 {
        match self {
            Every::Minutes(m) => m,
            Every::Hours(h) => h * 60,
            Every::Day => 1440,
            Every::Week => 10080,
        }
    }

    /// The short form `parse` accepts.
    pub(crate) fn text(self) -> String {
        match self {
            Every::Minutes(m) => format!("{m}m"),
            Every::Hours(h) => format!("{h}h"),
            Every::Day => "1d".into(),
            Every::Week => "7d".into(),
        }
    }

    /// systemd `OnCalendar=`.
    pub(crate) fn on_calendar(self) -> String {
        match self {
            Every::Minutes(m) => format!("*-*-* *:00/{m}:00"),
            Every::Hours(h) => format!("*-*-* 00/{h}:00:00"),
            Every::Day => "*-*-* 12:00:00".into(),
            Every::Week => "Mon *-*-* 12:00:00".into(),
        }
    }

    /// The five time fields of a crontab line; `spread` (0..60) is this machine's minute.
    pub(crate) fn cron_fields(self, spread: u32) -> String {
        let s = spread % 60;
        match self {
            Every::Minutes(m) => format!("{}-59/{m} * * * *", s % m),
            Every::Hours(1) => format!("{s} * * * *"),
            Every::Hours(h) => format!("{s} */{h} * * *"),
            Every::Day => format!("{s} 12 * * *"),
            Every::Week => format!("{s} 12 * * 1"),
        }
    }

    /// The `schtasks /Create` schedule arguments.
    pub(crate) fn schtasks_schedule(self) -> Vec<String> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Every::Minutes(m) => v(&["/SC", "MINUTE", "/MO", &m.to_string()]),
            Every::Hours(h) => v(&["/SC", "HOURLY", "/MO", &h.to_string()]),
            Every::Day => v(&["/SC", "DAILY", "/MO", "1", "/ST", "12:00"]),
            Every::Week => v(&["/SC", "WEEKLY", "/MO", "1", "/D", "MON", "/ST", "12:00"]),
        }
    }

    /// The random spread of start times: half the interval, at most 30 minutes.
    pub(crate) fn spread_secs(self) -> u32 {
        (self.minutes() * 60 / 2).min(1800)
    }
}

/// The command the schedule runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// Absolute path of the agent.
    pub(crate) exe: PathBuf,
    pub(crate) config: Option<PathBuf>,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) server: Option<String>,
    /// `backup --system` (system scope, run as root / SYSTEM).
    pub(crate) system: bool,
}

impl Invocation {
    /// The arguments after the program.
    pub(crate) fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        if let Some(c) = &self.config {
            a.extend(["--config".into(), c.clone().into_os_string()]);
        }
        if let Some(s) = &self.state_dir {
            a.extend(["--state-dir".into(), s.clone().into_os_string()]);
        }
        if let Some(s) = &self.server {
            a.extend(["--server".into(), s.into()]);
        }
        a.push("backup".into());
        if self.system {
            a.push("--system".into());
        }
        a
    }

    fn all(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.exe.clone().into_os_string())
            .chain(self.args())
            .map(|a| a.to_string_lossy().into_owned())
    }

    /// The `ExecStart=` value.
    pub(crate) fn systemd_command(&self) -> String {
        self.all()
            .map(|a| systemd_quote(&a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command part of a crontab line (`%` is special to cron).
    pub(crate) fn cron_command(&self) -> String {
        self.all()
            .map(|a| shell_quote(&a).replace('%', "\\%"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `schtasks /TR` value (Windows command-line quoting).
    pub(crate) fn windows_command(&self) -> String {
        self.all()
            .map(|a| windows_quote(&a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One word of a systemd command line: quoted when needed; `%` and `$` escaped so systemd takes
/// them literally.
pub(crate) fn systemd_quote(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%$".contains(c));
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One word for a POSIX shell.
pub(crate) fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@".contains(c))
    {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// One word of a Windows command line (the rules of `CommandLineToArgvW`).
pub(crate) fn windows_quote(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '\t', '"']) {
        return arg.to_owned();
    }
    let mut out = String::from("\"");
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.push_str(&"\\".repeat(backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.push_str(&"\\".repeat(backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.push_str(&"\\".repeat(backslashes * 2));
    out.push('"');
    out
}

/// Where the schedule goes.
#[derive(Debug, Clone, PartialEq, Eq)]

pub(crate) enum Backend {
    /// systemd units in `dir`; `user`: the user manager (`systemctl --user`).
    Systemd {
        dir: PathBuf,
        user: bool,
    },
    Cron,
    TaskScheduler,
}

/// Picks the back end. `systemd_running`: whether `/run/systemd/system` exists.
pub(crate) fn backend(
    windows: bool,
    system: bool,
    env: impl Fn(&str) -> Option<String>,
    systemd_running: bool,
) -> Option<Backend> {
    if windows {
        return Some(Backend::TaskScheduler);
    }
    if let Some(dir) = env("ASGARD_SYSTEMD_DIR") {
        return Some(Backend::Systemd {
            dir: PathBuf::from(dir),
            user: !system,
        });
    }
    if !systemd_running {
        return Some(Backend::Cron);
    }
    if system {
        return Some(Backend::Systemd {
            dir: PathBuf::from(SYSTEM_UNIT_DIR),
            user: false,
        });
    }
    let base = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(Backend::Systemd {
        dir: base.join("systemd").join("user"),
        user: true,
    })
}

/// What `schedule` was asked to do.
pub enum Action {
    Install(Every),
    Status,
    Remove,
}

pub struct ScheduleArgs {
    pub action: Action,
    pub system: bool,
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub server: Option<String>,
}

pub fn run(args: ScheduleArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let systemd_running = Path::new("/run/systemd/system").exists();
    let Some(backend) = backend(
        platform::WINDOWS,
        args.system,
        platform::real_env,
        systemd_running,
    ) else {
        bail!(
            "{}",
            lang.pick(
                "Weder HOME noch XDG_CONFIG_HOME ist gesetzt: Ort für die systemd-Units unbekannt.",
                "Neither HOME nor XDG_CONFIG_HOME is set: no place for the systemd units."
            )
        );
    };
    let absolute = |p: Option<PathBuf>| p.map(std::path::absolute).transpose();
    let inv = Invocation {
        exe: std::env::current_exe()
            .and_then(std::path::absolute)
            .context(lang.pick("Pfad des Agenten", "path of the agent"))?,
        config: absolute(args.config)?,
        state_dir: absolute(args.state_dir)?,
        server: args.server,
        system: args.system,
    };
    match (backend, args.action) {
        (Backend::Systemd { dir, user }, Action::Install(every)) => {
            systemd::install(&dir, user, every, &inv, lang)
        }
        (Backend::Systemd { dir, user }, Action::Status) => systemd::status(&dir, user, lang),
        (Backend::Systemd { dir, user }, Action::Remove) => systemd::remove(&dir, user, lang),
        (Backend::Cron, action) => cron::run(action, &inv, lang),
        (Backend::TaskScheduler, action) => tasks::run(action, &inv, lang),
    }
}

#[cfg(test)]
mod tests {
    use super::cron::cron_line;
    use super::tasks::schtasks_create;
    use super::*;

    #[test]
    fn parses_regular_intervals() {
        assert_eq!(Every::parse("15m"), Ok(Every::Minutes(15)));
        assert_eq!(Every::parse("1h"), Ok(Every::Hours(1)));
        assert_eq!(Every::parse("60m"), Ok(Every::Hours(1)));
        assert_eq!(Every::parse(" 6H "), Ok(Every::Hours(6)));
        assert_eq!(Every::parse("24h"), Ok(Every::Day));
        assert_eq!(Every::parse("1d"), Ok(Every::Day));
        assert_eq!(Every::parse("7d"), Ok(Every::Week));
        assert_eq!(Every::parse("1w"), Ok(Every::Week));
        assert_eq!(Every::parse("30min"), Ok(Every::Minutes(30)));
        for bad in [
            "", "h", "0m", "1m", "7m", "45m", "90m", "5h", "2d", "1y", "-1h", "1.5h",
        ] {
            assert!(Every::parse(bad).is_err(), "{bad} was accepted");
        }
        for e in [
            Every::Minutes(5),
            Every::Minutes(30),
            Every::Hours(12),
            Every::Day,
            Every::Week,
        ] {
            assert_eq!(Every::parse(&e.text()), Ok(e));
        }
    }

    #[test]
    fn back_end_forms() {
        assert_eq!(Every::Minutes(15).on_calendar(), "*-*-* *:00/15:00");
        assert_eq!(Every::Hours(6).on_calendar(), "*-*-* 00/6:00:00");
        assert_eq!(Every::Day.on_calendar(), "*-*-* 12:00:00");
        assert_eq!(Every::Minutes(15).cron_fields(37), "7-59/15 * * * *");
        assert_eq!(Every::Hours(1).cron_fields(37), "37 * * * *");
        assert_eq!(Every::Hours(6).cron_fields(37), "37 */6 * * *");
        assert_eq!(Every::Week.cron_fields(5), "5 12 * * 1");
        assert_eq!(
            Every::Minutes(15).schtasks_schedule(),
            ["/SC", "MINUTE", "/MO", "15"]
        );
        assert_eq!(
            Every::Hours(6).schtasks_schedule(),
            ["/SC", "HOURLY", "/MO", "6"]
        );
        assert_eq!(Every::Day.schtasks_schedule()[1], "DAILY");
        assert_eq!(Every::Minutes(10).spread_secs(), 300);
        assert_eq!(Every::Day.spread_secs(), 1800);
    }

    fn inv() -> Invocation {
        Invocation {
            exe: PathBuf::from("/opt/asgard agent/asgard-agent"),
            config: Some(PathBuf::from("/etc/asgard/agent.yaml")),
            state_dir: None,
            server: Some("https://backup.example:8443".into()),
            system: false,
        }
    }

    #[test]
    fn commands_are_quoted_for_each_back_end() {
        let i = inv();
        assert_eq!(
            i.systemd_command(),
            "\"/opt/asgard agent/asgard-agent\" --config /etc/asgard/agent.yaml --server \
             https://backup.example:8443 backup"
        );
        assert_eq!(systemd_quote("50%$x"), "50%%$$x");
        assert_eq!(systemd_quote("a \"b\"\\"), "\"a \\\"b\\\"\\\\\"");
        assert_eq!(
            cron_line(Every::Hours(1), &i, 3),
            "3 * * * * '/opt/asgard agent/asgard-agent' --config /etc/asgard/agent.yaml \
             --server https://backup.example:8443 backup # asgard-backup"
        );
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("50%").replace('%', "\\%"), "'50\\%'");
        assert_eq!(
            windows_quote(r"C:\Program Files\A\a.exe"),
            r#""C:\Program Files\A\a.exe""#
        );
        assert_eq!(windows_quote(r"C:\a b\"), r#""C:\a b\\""#);
        assert_eq!(windows_quote(r#"x"y"#), r#""x\"y""#);
        assert_eq!(windows_quote("plain"), "plain");
        let mut sys = i.clone();
        sys.system = true;
        sys.exe = PathBuf::from(r"C:\Program Files\Asgard\asgard-agent.exe");
        let args = schtasks_create(Every::Minutes(15), &sys);
        assert_eq!(args[..5], ["/Create", "/SC", "MINUTE", "/MO", "15"]);
        let tr = &args[args.iter().position(|a| a == "/TR").unwrap() + 1];
        assert!(tr.starts_with(r#""C:\Program Files\Asgard\asgard-agent.exe" --config"#));
        assert!(tr.ends_with("backup --system"));
        assert!(args.ends_with(&["/RU".into(), "SYSTEM".into(), "/F".into()]));
    }

    #[test]
    fn back_end_choice() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let home = env(&[("HOME", "/home/a")]);
        assert_eq!(
            backend(true, false, home, true),
            Some(Backend::TaskScheduler)
        );
        assert_eq!(backend(false, false, home, false), Some(Backend::Cron));
        assert_eq!(
            backend(false, false, home, true),
            Some(Backend::Systemd {
                dir: PathBuf::from("/home/a/.config/systemd/user"),
                user: true
            })
        );
        let xdg = env(&[("HOME", "/home/a"), ("XDG_CONFIG_HOME", "/x")]);
        assert_eq!(
            backend(false, false, xdg, true),
            Some(Backend::Systemd {
                dir: PathBuf::from("/x/systemd/user"),
                user: true
            })
        );
        assert_eq!(
            backend(false, true, xdg, true),
            Some(Backend::Systemd {
                dir: PathBuf::from(SYSTEM_UNIT_DIR),
                user: false
            })
        );
        // The override forces systemd even where it does not run.
        let forced = env(&[("ASGARD_SYSTEMD_DIR", "/t/units")]);
        assert_eq!(
            backend(false, false, forced, false),
            Some(Backend::Systemd {
                dir: PathBuf::from("/t/units"),
                user: true
            })
        );
        assert_eq!(backend(false, false, env(&[]), true), None);
    }
}
