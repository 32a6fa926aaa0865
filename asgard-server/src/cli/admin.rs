//! `asgard-server admin …`: the admin accounts of the web console. Each subcommand becomes a
//! [`Task`] that runs in the server (when it runs) or on the stopped data directory; the password
//! is read here, from the terminal without echo (twice) or with `--password-stdin` from the first
//! line of standard input.

use std::io::BufRead;

use anyhow::bail;
use asgard_core::Lang;
use clap::Subcommand;

use super::{CmdResult, Common, task_cmd};
use crate::ops::{Password, Task};
use crate::present::admins as text;

#[derive(Subcommand)]
pub(super) enum AdminCmd {
    /// Einen Admin für die Weboberfläche anlegen
    Create {
        /// Name des Admins (a-z, 0-9, . _ - @)
        name: String,
        /// Das Passwort aus der ersten Zeile der Standardeingabe lesen (für Skripte)
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        common: Common,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Das Passwort eines Admins ändern (seine Sitzungen enden)
    Passwd {
        /// Name des Admins
        name: String,
        /// Das Passwort aus der ersten Zeile der Standardeingabe lesen (für Skripte)
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        common: Common,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Alle Admins auflisten
    List {
        #[command(flatten)]
        common: Common,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Einen Admin löschen, mit seinen API-Token und Sitzungen
    Delete {
        /// Name des Admins
        name: String,
        #[command(flatten)]
        common: Common,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Den zweiten Faktor (TOTP) eines Admins einschalten: zeigt QR-Code und
    /// Wiederherstellungscodes
    Totp {
        /// Name des Admins
        name: String,
        /// Den zweiten Faktor ausschalten
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        common: Common,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Ein neues API-Token eines Admins für Skripte ausgeben (wird nur einmal angezeigt)
    Token {
        /// Name des Admins
        name: String,
        #[command(flatten)]
        common: Common,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `admin` subcommand; returns its exit code.
pub(super) fn run(cmd: AdminCmd) -> CmdResult<u8> {
    match cmd {
        AdminCmd::Create {
            name,
            password_stdin,
            common,
            json,
        } => task_cmd(&common, json, |lang| {
            let password = read_password(&name, password_stdin, lang)?;
            Ok(Task::AdminCreate {
                admin: name,
                password,
            })
        }),
        AdminCmd::Passwd {
            name,
            password_stdin,
            common,
            json,
        } => task_cmd(&common, json, |lang| {
            let password = read_password(&name, password_stdin, lang)?;
            Ok(Task::AdminPasswd {
                admin: name,
                password,
            })
        }),
        AdminCmd::List { common, json } => task_cmd(&common, json, |_| Ok(Task::AdminList)),
        AdminCmd::Delete { name, common, json } => {
            task_cmd(&common, json, |_| Ok(Task::AdminDelete { admin: name }))
        }
        AdminCmd::Totp {
            name,
            off,
            common,
            json,
        } => task_cmd(&common, json, |_| Ok(Task::AdminTotp { admin: name, off })),
        AdminCmd::Token { name, common, json } => {
            task_cmd(&common, json, |_| Ok(Task::AdminToken { admin: name }))
        }
    }
}

/// The new password: the first line of standard input, or typed twice at the terminal without
/// echo. The policy is checked by the task (the same rule wherever it runs).
fn read_password(name: &str, stdin: bool, lang: Lang) -> anyhow::Result<Password> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            bail!("{}", text::no_password_on_stdin(lang));
        }
        return Ok(Password(password));
    }
    let first = rpassword::prompt_password(text::password_prompt(name, lang))?;
    let second = rpassword::prompt_password(text::password_again(lang))?;
    if first != second {
        bail!("{}", text::passwords_differ(lang));
    }
    Ok(Password(first))
}
