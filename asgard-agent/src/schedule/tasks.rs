//! Windows: a Task Scheduler task through `schtasks`.

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use asgard_core::Lang;

use super::{Action, Every, Invocation, TASK_NAME};
use crate::present::schedule as present;

/// The full `schtasks /Create` argument list.
pub(crate) fn schtasks_create(every: Every, inv: &Invocation) -> Vec<String> {
    let mut a: Vec<String> = vec!["/Create".into()];
    a.extend(every.schtasks_schedule());
    a.extend(["/TN".into(), TASK_NAME.into()]);
    a.extend(["/TR".into(), inv.windows_command()]);
    if inv.system {
        a.extend(["/RU".into(), "SYSTEM".into()]);
    }
    a.push("/F".into());
    a
}

pub(crate) fn run(action: Action, inv: &Invocation, lang: Lang) -> anyhow::Result<ExitCode> {
    let args: Vec<String> = match &action {
        Action::Install(every) => {
            let tr = inv.windows_command();
            // schtasks refuses a /TR longer than 261 characters.
            if tr.chars().count() > 261 {
                bail!(
                    "{} ({} > 261): {tr}",
                    lang.pick(
                        "Der Befehl für die Aufgabenplanung ist zu lang",
                        "The command for the Task Scheduler is too long"
                    ),
                    tr.chars().count()
                );
            }
            schtasks_create(*every, inv)
        }
        Action::Status => ["/Query", "/TN", TASK_NAME, "/FO", "LIST", "/V"]
            .map(String::from)
            .to_vec(),
        Action::Remove => ["/Delete", "/TN", TASK_NAME, "/F"]
            .map(String::from)
            .to_vec(),
    };
    let out = Command::new("schtasks")
        .args(&args)
        .output()
        .context("schtasks")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match (&action, out.status.success()) {
        (Action::Install(every), true) => {
            println!("{}", present::task_created(TASK_NAME, &every.text(), lang))
        }
        (Action::Status, true) => print!("{stdout}"),
        (Action::Status, false) => println!(
            "{}",
            lang.pick(
                "Kein Zeitplan eingerichtet (keine Aufgabe AsgardBackup).",
                "No schedule installed (no task AsgardBackup)."
            )
        ),
        (Action::Remove, true) => {
            println!("{}", lang.pick("Zeitplan entfernt.", "Schedule removed."))
        }
        (_, false) => bail!("schtasks: {}", stderr.trim()),
    }
    Ok(ExitCode::SUCCESS)
}
