//! Without systemd: the crontab line to add by hand.

use std::process::{Command, ExitCode};

use asgard_core::Lang;

use super::{Action, Every, Invocation};
use crate::platform;

/// Marker at the end of the crontab line.
const CRON_MARKER: &str = "# asgard-backup";

/// The crontab line.
pub(crate) fn cron_line(every: Every, inv: &Invocation, spread_minute: u32) -> String {
    format!(
        "{} {} {CRON_MARKER}",
        every.cron_fields(spread_minute),
        inv.cron_command()
    )
}

/// A stable minute (0..60) for this machine and user, to spread cron runs.
pub(crate) fn spread_minute(seed: &str) -> u32 {
    let h = blake3::hash(seed.as_bytes());
    u32::from(h.as_bytes()[0]) % 60
}

pub(crate) fn run(action: Action, inv: &Invocation, lang: Lang) -> anyhow::Result<ExitCode> {
    let seed = format!(
        "{}@{}",
        platform::user_name(false, platform::real_env).unwrap_or_default(),
        platform::device_name(platform::real_env)
    );
    match action {
        Action::Install(every) => {
            let line = cron_line(every, inv, spread_minute(&seed));
            println!(
                "{}\n\n{line}\n",
                lang.pick(
                    "systemd läuft hier nicht. Bitte diese Zeile mit `crontab -e` eintragen \
                     (bzw. `crontab -u root -e` für --system):",
                    "systemd is not running here. Please add this line with `crontab -e` \
                     (or `crontab -u root -e` for --system):"
                )
            );
        }
        Action::Status => {
            let listed = Command::new("crontab").arg("-l").output();
            let line = listed.ok().and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find(|l| l.trim_end().ends_with(CRON_MARKER))
                    .map(str::to_owned)
            });
            match line {
                Some(l) => println!(
                    "{}\n  {l}",
                    lang.pick("Zeitplan in der Crontab:", "Schedule in the crontab:")
                ),
                None => println!(
                    "{}",
                    lang.pick(
                        "Kein Zeitplan in der Crontab (systemd läuft hier nicht).",
                        "No schedule in the crontab (systemd is not running here)."
                    )
                ),
            }
        }
        Action::Remove => println!(
            "{} „{CRON_MARKER}“.",
            lang.pick(
                "systemd läuft hier nicht. Bitte mit `crontab -e` die Zeile entfernen, die endet auf",
                "systemd is not running here. Please remove with `crontab -e` the line ending in"
            )
        ),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_minute_is_stable_and_in_range() {
        assert_eq!(spread_minute("a@pc"), spread_minute("a@pc"));
        assert!((0..60).contains(&spread_minute("b@laptop")));
    }
}
