//! `asgard-agent`: backs up a user's files to an AsgardBackup server and restores them.
//!
//! Exit codes: 0 done, 1 failed, 2 usage error, 3 done but some files could not be read.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use asgard_core::Lang;
use clap::{Parser, Subcommand};

use asgard_agent::commands::{self, Action, Every, ScheduleArgs};
use asgard_agent::{Config, Ctx, Describe, RunLog};

#[derive(Parser)]
#[command(
    name = "asgard-agent",
    version,
    about = "AsgardBackup-Agent: Dateien sichern und wiederherstellen"
)]
struct Cli {
    /// Konfigurationsdatei (YAML) / config file
    #[arg(long, global = true, env = "ASGARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Server-URL, z. B. https://backup.example:8443 / server URL
    #[arg(long, global = true, env = "ASGARD_SERVER", value_name = "URL")]
    server: Option<String>,
    /// Ordner für den Zustand (Token, Fingerabdruck) / state folder
    #[arg(long, global = true, env = "ASGARD_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Beim Server anmelden (registriert das Gerät beim ersten Mal) / log in
    Login {
        /// Einmal-Code des Administrators nach „device reset“: holt das Gerät mit allen Dateien
        /// zurück / the administrator's one-time code after a device reset
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
    },
    /// Geräte desselben Benutzers verwalten / manage devices of the same user
    Device {
        #[command(subcommand)]
        action: DeviceCommand,
    },
    /// Dateien sichern / back up files
    Backup {
        /// Dateien oder Ordner; ohne Angabe der Sicherungsplan (siehe `plan`)
        paths: Vec<PathBuf>,
        /// Zusammenfassung als JSON / summary as JSON
        #[arg(long)]
        json: bool,
        /// Systemweit sichern (als root): /home, /etc, /opt, /srv, /root / system scope
        #[arg(long)]
        system: bool,
    },
    /// Zeigen, was gesichert wird und warum etwas nicht / show what is backed up and why not
    #[command(after_long_help = commands::PLAN_JSON_HELP)]
    Plan {
        /// Als JSON (Aufbau: siehe --help) / as JSON (shape: see --help)
        #[arg(long)]
        json: bool,
        /// Den ganzen Rechner statt der Benutzerordner (Linux, als root) / the whole machine
        #[arg(long)]
        system: bool,
    },
    /// Gesicherte Dateien und Versionen zeigen / list backed-up files
    List {
        /// Nur diesen Pfad und was darunter liegt / only this path and below
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Dateien eines anderen eigenen Geräts / another device of yours
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
        /// Dateien aller eigenen Geräte / all your devices
        #[arg(long, conflicts_with = "device")]
        all_devices: bool,
    },
    /// Datei oder Ordner wiederherstellen / restore a file or folder
    Restore {
        /// Pfad wie gesichert / path as backed up
        path: PathBuf,
        /// Genau diese Version / exactly this version
        #[arg(long, value_name = "ID", conflicts_with = "at")]
        version: Option<u64>,
        /// Stand zu diesem Zeitpunkt (RFC 3339 oder "JJJJ-MM-TT HH:MM[:SS]") / state at this time
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// In diesen Ordner statt an den Originalort / into this folder
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Bestehende, abweichende Dateien ersetzen / replace differing files
        #[arg(long)]
        overwrite: bool,
        /// Von einem anderen eigenen Gerät / from another device of yours
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
        /// Besitzer nach gesicherter Nummer statt nach Namen setzen (als root, wie tar) / owners
        /// by recorded number, not by name (as root, like tar)
        #[arg(long)]
        numeric_owner: bool,
        /// Zusammenfassung als JSON / summary as JSON
        #[arg(long)]
        json: bool,
    },
    /// Regelmäßige Sicherung einrichten, zeigen, entfernen / schedule backups
    Schedule {
        #[command(subcommand)]
        action: ScheduleCommand,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Ein wartendes neues Gerät mit dem Code freigeben, den es anzeigt / approve a pending
    /// device by the code it shows
    Approve {
        /// Code wie K7MQ-4XTD / code such as K7MQ-4XTD
        code: String,
    },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Zeitplan einrichten (systemd-Timer, Crontab-Zeile oder Windows-Aufgabe) / install
    Install {
        /// Intervall: 5m … 30m, 1h … 12h, 1d, 7d / interval
        #[arg(long, default_value = "1h", value_parser = Every::parse)]
        every: Every,
        /// System-Timer als root, sichert mit `backup --system` / system timer as root
        #[arg(long)]
        system: bool,
    },
    /// Zeigt, ob ein Zeitplan eingerichtet ist, und den nächsten Lauf / show the schedule
    Status {
        #[arg(long)]
        system: bool,
    },
    /// Zeitplan entfernen / remove the schedule
    Remove {
        #[arg(long)]
        system: bool,
    },
}

fn main() -> ExitCode {
    // `time` can only read the local offset while the process has a single thread: do it first.
    let (offset, offset_known) = asgard_agent::local_offset();
    let cli = Cli::parse();
    let lang_env = asgard_agent::real_env("LANG");
    let early_lang = Lang::resolve(None, lang_env.as_deref());
    let (config, _) = match Config::load(cli.config.as_deref(), asgard_agent::real_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "{}: {}",
                early_lang.pick("Fehler", "Error"),
                e.describe(early_lang)
            );
            return ExitCode::from(1);
        }
    };
    let lang = Lang::resolve(config.language(), lang_env.as_deref());
    let state_dir =
        match cli.state_dir.clone().or_else(|| {
            asgard_agent::default_state_dir(asgard_agent::WINDOWS, asgard_agent::real_env)
        }) {
            Some(d) => d,
            None => {
                eprintln!(
                    "{}",
                    lang.pick(
                        "Fehler: Kein Ordner für den Zustand bekannt; bitte --state-dir angeben.",
                        "Error: no state folder known; use --state-dir."
                    )
                );
                return ExitCode::from(1);
            }
        };
    if !offset_known && wants_local_time(&cli.command) {
        eprintln!(
            "{}",
            lang.pick(
                "Hinweis: Die lokale Zeitzone ist unbekannt; Zeiten gelten als UTC.",
                "Note: the local time zone is unknown; times are taken as UTC."
            )
        );
    }
    // One agent at a time writes the state folder: a second backup (e.g. a scheduled one while
    // the last is still running) ends at once.
    let _lock = if matches!(cli.command, Command::Backup { .. } | Command::Login { .. }) {
        match asgard_agent::lock_state_dir(&state_dir) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("{}: {}", lang.pick("Fehler", "Error"), e.describe(lang));
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let schedule_globals = (
        cli.config.clone(),
        cli.state_dir.clone(),
        cli.server.clone(),
    );
    let ctx = Ctx {
        lang,
        server_url: cli
            .server
            .clone()
            .or_else(|| config.server_url().map(str::to_owned)),
        config,
        state_dir,
        offset,
    };
    // Few blocking threads: each one that runs at the same time as others gets its own malloc
    // arena, and a restore's many short blocking tasks (one per fetched chunk) would otherwise grow
    // the peak RSS by megabytes per thread (restore of the mixed benchmark: 8 threads 61-64 MiB,
    // 4 threads 57 MiB, same time). Two are held for a whole backup (the scan's join, the
    // compressor); the rest are short and simply queue.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: {e}", lang.pick("Fehler", "Error"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(&ctx, cli.command, schedule_globals)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}: {e:#}", lang.pick("Fehler", "Error"));
            ExitCode::from(1)
        }
    }
}

fn wants_local_time(cmd: &Command) -> bool {
    match cmd {
        Command::List { json, .. } => !json,
        Command::Restore { at, .. } => at.is_some(),
        _ => false,
    }
}

type Globals = (Option<PathBuf>, Option<PathBuf>, Option<String>);

async fn run(ctx: &Ctx, command: Command, globals: Globals) -> anyhow::Result<ExitCode> {
    match command {
        Command::Login { code } => commands::login(ctx, code).await,
        Command::Device {
            action: DeviceCommand::Approve { code },
        } => commands::approve_device(ctx, code).await,
        Command::Backup {
            paths,
            json,
            system,
        } => {
            let log = RunLog::start(&ctx.state_dir, "backup", ctx.offset).with_context(|| {
                format!(
                    "{} {}",
                    ctx.lang
                        .pick("Protokolldatei anlegen in", "creating the log file in"),
                    ctx.state_dir.display()
                )
            })?;
            let result = commands::backup(ctx, paths, json, system, &log).await;
            log.finish(&result, ctx.lang).await;
            result
        }
        Command::Schedule { action } => {
            let (action, system) = match action {
                ScheduleCommand::Install { every, system } => (Action::Install(every), system),
                ScheduleCommand::Status { system } => (Action::Status, system),
                ScheduleCommand::Remove { system } => (Action::Remove, system),
            };
            let (config, state_dir, server) = globals;
            let args = ScheduleArgs {
                action,
                system,
                config,
                state_dir,
                server,
            };
            commands::schedule(args, ctx.lang)
        }
        Command::Plan { json, system } => commands::plan(ctx, json, system),
        Command::List {
            path,
            json,
            device,
            all_devices,
        } => {
            let args = commands::ListArgs {
                path,
                json,
                device,
                all_devices,
            };
            commands::list(ctx, args).await
        }
        Command::Restore {
            path,
            version,
            at,
            to,
            overwrite,
            device,
            numeric_owner,
            json,
        } => {
            let args = commands::RestoreArgs {
                path,
                version,
                at,
                to,
                overwrite,
                device,
                numeric_owner,
                json,
            };
            commands::restore(ctx, args).await
        }
    }
}
