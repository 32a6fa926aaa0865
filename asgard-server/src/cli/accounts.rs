//! The account and console commands (`device`, `user`, `registration`, `overview`, `runs`):
//! each becomes one [`Task`], run like every other (in-process, or in the running server
//! through the admin channel).

use clap::{Args, Subcommand};

use super::Common;
use crate::config::Registration;
use crate::ops::{RunState, Task};

/// `--json` of the account commands.
#[derive(Args, Clone, Copy)]
pub(super) struct Json {
    /// JSON statt Text ausgeben
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub(super) enum UserCmd {
    /// Benutzer mit Geräten, Versionen, Größen, eigenem keep_versions und Sperre auflisten
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Festlegen, wie viele Inhaltsversionen je Datei dieser Benutzer behält (statt
    /// keep_versions)
    SetKeep {
        /// Benutzername
        user: String,
        /// Anzahl der Inhaltsversionen je Datei (1 oder mehr)
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        versions: u32,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Die eigene Einstellung des Benutzers entfernen: keep_versions der Konfiguration gilt
    /// wieder
    ClearKeep {
        /// Benutzername
        user: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Einen Benutzer sperren: Alle seine Geräte werden abgewiesen (seine Dateien bleiben)
    Disable {
        /// Benutzername
        user: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Einen gesperrten Benutzer wieder freischalten
    Enable {
        /// Benutzername
        user: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Einen Wiederherstellungs-Link für den Browser machen (für einen Benutzer ohne Rechner)
    ///
    /// Der Link meldet den Benutzer einmal im Browser an (10 Minuten lang), um seine Dateien
    /// herunterzuladen. Er steht im Protokoll; die Startseite des Benutzers nennt den Admin.
    Link {
        /// Benutzername
        user: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Einen Benutzer mit allen Geräten, Token, Versionen und Läufen löschen
    ///
    /// Löscht den Benutzer mit allen Geräten, Token, Pfaden, Versionen, Läufen und wartenden
    /// Anmeldungen. Chunks, die sonst niemand nutzt, entfernt die nächste Speicherbereinigung.
    /// Zur Bestätigung den Namen mit --confirm wiederholen.
    Delete {
        /// Benutzername
        user: String,
        /// Der Benutzername noch einmal, zur Bestätigung
        #[arg(long, value_name = "NAME")]
        confirm: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Subcommand)]
pub(super) enum DeviceCmd {
    /// Alle Geräte auflisten
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Ein wartendes Gerät freigeben (ein neues, oder eine neue Anmeldung unter einem
    /// bestehenden Namen)
    Approve {
        /// Benutzername
        user: String,
        /// Gerätename
        device: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Das Token eines Geräts widerrufen und einen Einmal-Code zur neuen Anmeldung ausgeben
    ///
    /// Widerruft das Token des Geräts und gibt einen Einmal-Code aus, mit dem es sich neu
    /// anmeldet (`asgard-agent login --code`); seine Dateien bleiben.
    Reset {
        /// Benutzername
        user: String,
        /// Gerätename
        device: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Den Zugang eines Geräts widerrufen (ohne Einmal-Code; seine Dateien bleiben)
    Revoke {
        /// Benutzername
        user: String,
        /// Gerätename
        device: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Einem Gerät ein neues Token geben (nur jetzt angezeigt); das alte gilt nicht mehr
    Token {
        /// Benutzername
        user: String,
        /// Gerätename
        device: String,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Subcommand)]
pub(super) enum RegistrationCmd {
    /// Den Registrierungsmodus zeigen und woher er kommt
    Show {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
    /// Registrierungsmodus und Anmeldeschlüssel zur Laufzeit ändern (gilt vor der
    /// Konfigurationsdatei)
    Set {
        /// open, approve oder closed
        #[arg(value_parser = parse_mode)]
        mode: Option<Registration>,
        /// Ein neuer Anmeldeschlüssel (mindestens 12 Zeichen)
        #[arg(long, value_name = "KEY", conflicts_with = "no_enrollment_key")]
        enrollment_key: Option<String>,
        /// Kein Anmeldeschlüssel mehr nötig
        #[arg(long)]
        no_enrollment_key: bool,
        /// Die Einstellung zur Laufzeit vergessen: die Konfigurationsdatei gilt wieder
        #[arg(long, conflicts_with_all = ["mode", "enrollment_key", "no_enrollment_key"])]
        reset: bool,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        out: Json,
    },
}

/// `runs`' options.
#[derive(Args)]
pub(super) struct RunsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Nur die Läufe dieses Benutzers
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Nur die Läufe dieses Geräts
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Nur Läufe in diesem Zustand: ok, warnings oder failed
    #[arg(long, value_parser = parse_state)]
    pub state: Option<RunState>,
    /// So viele der neuesten Läufe überspringen
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Höchstens so viele Läufe zeigen (1–500)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
    #[command(flatten)]
    pub out: Json,
}

fn parse_mode(s: &str) -> Result<Registration, String> {
    match s {
        "open" => Ok(Registration::Open),
        "approve" => Ok(Registration::Approve),
        "closed" => Ok(Registration::Closed),
        _ => Err("open | approve | closed".into()),
    }
}

fn parse_state(s: &str) -> Result<RunState, String> {
    match s {
        "ok" => Ok(RunState::Ok),
        "warnings" => Ok(RunState::Warnings),
        "failed" => Ok(RunState::Failed),
        _ => Err("ok | warnings | failed".into()),
    }
}

/// What a command line of these commands asks for: where, `--json`, and the task (or the error
/// of a confirmation that does not match, as the user name typed twice).
pub(super) type Asked = (Common, bool, Result<Task, (String, String)>);

impl UserCmd {
    pub(super) fn task(self) -> Asked {
        match self {
            UserCmd::List { common, out } => (common, out.json, Ok(Task::UserList)),
            UserCmd::SetKeep {
                user,
                versions,
                common,
                out,
            } => (
                common,
                out.json,
                Ok(Task::UserSetKeep {
                    user,
                    versions: Some(versions),
                }),
            ),
            UserCmd::ClearKeep { user, common, out } => (
                common,
                out.json,
                Ok(Task::UserSetKeep {
                    user,
                    versions: None,
                }),
            ),
            UserCmd::Disable { user, common, out } => {
                (common, out.json, Ok(Task::UserDisable { user }))
            }
            UserCmd::Enable { user, common, out } => {
                (common, out.json, Ok(Task::UserEnable { user }))
            }
            UserCmd::Link { user, common, out } => {
                (common, out.json, Ok(Task::UserLink { user, by: None }))
            }
            UserCmd::Delete {
                user,
                confirm,
                common,
                out,
            } => {
                let task = if confirm.trim() == user.trim() {
                    Ok(Task::UserDelete { user })
                } else {
                    Err((user, confirm))
                };
                (common, out.json, task)
            }
        }
    }
}

impl DeviceCmd {
    pub(super) fn task(self) -> Asked {
        match self {
            DeviceCmd::List { common, out } => (common, out.json, Ok(Task::DeviceList)),
            DeviceCmd::Approve {
                user,
                device,
                common,
                out,
            } => (common, out.json, Ok(Task::DeviceApprove { user, device })),
            DeviceCmd::Reset {
                user,
                device,
                common,
                out,
            } => (common, out.json, Ok(Task::DeviceReset { user, device })),
            DeviceCmd::Revoke {
                user,
                device,
                common,
                out,
            } => (common, out.json, Ok(Task::DeviceRevoke { user, device })),
            DeviceCmd::Token {
                user,
                device,
                common,
                out,
            } => (common, out.json, Ok(Task::DeviceToken { user, device })),
        }
    }
}

impl RegistrationCmd {
    pub(super) fn task(self) -> Asked {
        match self {
            RegistrationCmd::Show { common, out } => (common, out.json, Ok(Task::RegistrationShow)),
            RegistrationCmd::Set {
                mode,
                enrollment_key,
                no_enrollment_key,
                reset,
                common,
                out,
            } => (
                common,
                out.json,
                Ok(Task::RegistrationSet {
                    mode,
                    enrollment_key,
                    clear_enrollment_key: no_enrollment_key,
                    reset,
                }),
            ),
        }
    }
}

impl RunsArgs {
    pub(super) fn task(self) -> Asked {
        (
            self.common,
            self.out.json,
            Ok(Task::RunList {
                user: self.user,
                device: self.device,
                state: self.state,
                offset: self.offset,
                limit: self.limit,
            }),
        )
    }
}
