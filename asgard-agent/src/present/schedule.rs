//! The texts of `schedule`: what was installed, and what to do when a timer cannot start now.

use asgard_core::Lang;

/// A systemd timer was installed (`every`: the interval as text; `user`: a user timer). The
/// "Files:" heading follows on the same line.
pub(crate) fn systemd_installed(every: &str, user: bool, lang: Lang) -> String {
    let installed = match lang {
        Lang::De => format!(
            "Zeitplan eingerichtet: Sicherung alle {every} ({}).",
            if user {
                "systemd-Benutzer-Timer"
            } else {
                "systemd-System-Timer"
            }
        ),
        Lang::En => format!(
            "Schedule installed: backup every {every} ({}).",
            if user {
                "systemd user timer"
            } else {
                "systemd system timer"
            }
        ),
    };
    format!("{installed} {}", lang.pick("Dateien:", "Files:"))
}

/// The timer is written and enabled but could not be started now (`error`); `cmd` starts it.
pub(crate) fn timer_not_started(error: &str, cmd: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Der Timer konnte jetzt nicht gestartet werden ({error}). Die Dateien sind \
             geschrieben und der Timer ist eingetragen; er startet mit der nächsten \
             Sitzung. Sofort starten mit:\n  {cmd}"
        ),
        Lang::En => format!(
            "The timer could not be started now ({error}). The files are written and the \
             timer is enabled; it starts with the next session. To start it now:\n  \
             {cmd}"
        ),
    }
}

/// A Windows task `task` was created.
pub(crate) fn task_created(task: &str, every: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Aufgabe „{task}“ eingerichtet: Sicherung alle {every}. Wiederherstellen im \
             Browser: asgard-agent web"
        ),
        Lang::En => format!(
            "Task \"{task}\" created: backup every {every}. Restore in the browser: \
             asgard-agent web"
        ),
    }
}
