//! `asgard-agent`: backs up a user's files to an AsgardBackup server and restores them.
//!
//! Exit codes: 0 done, 1 failed, 2 usage error, 3 done but some files could not be read.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use asgard_core::Lang;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use asgard_agent::commands::{self, Action, Every, ScheduleArgs};
use asgard_agent::{Config, Ctx, Describe, RunLog};

/// The help texts here are German, the default; the English ones are in
/// `asgard_agent::present::help::AGENT` under the command path and argument id (a test checks that
/// each has one).
#[derive(Parser)]
#[command(
    name = "asgard-agent",
    version,
    about = "AsgardBackup-Agent: Dateien sichern und wiederherstellen"
)]
struct Cli {
    /// Konfigurationsdatei (YAML)
    #[arg(long, global = true, env = "ASGARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Server-URL, z. B. https://backup.example:8443
    #[arg(long, global = true, env = "ASGARD_SERVER", value_name = "URL")]
    server: Option<String>,
    /// Ordner für den Zustand (Token, Fingerabdruck)
    #[arg(long, global = true, env = "ASGARD_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Beim Server anmelden (registriert das Gerät beim ersten Mal)
    Login {
        /// Einmal-Code des Administrators nach „device reset“: holt das Gerät mit allen Dateien
        /// zurück
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
        /// Neues Geräte-Token des Administrators (asgard-server device token) übernehmen
        #[arg(long, value_name = "TOKEN", conflicts_with = "code")]
        token: Option<String>,
    },
    /// Geräte desselben Benutzers verwalten
    Device {
        #[command(subcommand)]
        action: DeviceCommand,
    },
    /// Dateien sichern
    Backup {
        /// Dateien oder Ordner; ohne Angabe der Sicherungsplan (siehe `plan`)
        paths: Vec<PathBuf>,
        /// Zusammenfassung als JSON
        #[arg(long)]
        json: bool,
        /// Systemweit sichern (als root): /home, /etc, /opt, /srv, /root
        #[arg(long)]
        system: bool,
    },
    /// Zeigen, was gesichert wird und warum etwas nicht
    #[command(after_long_help = commands::PLAN_JSON_HELP)]
    Plan {
        /// Als JSON (Aufbau: siehe --help)
        #[arg(long)]
        json: bool,
        /// Den ganzen Rechner statt der Benutzerordner (Linux, als root)
        #[arg(long)]
        system: bool,
    },
    /// Gesicherte Dateien und Versionen zeigen
    ///
    /// Je Pfad seine Versionen, die neueste zuerst: Nummer (für `restore --version`), Zeit der
    /// Sicherung in der lokalen Zeitzone (für `restore --at`), Größe oder Art. Eine Zeit auf die
    /// Sekunde umfasst alles, was in dieser Sekunde gesichert wurde; fallen zwei Versionen in
    /// dieselbe Sekunde, zeigt `list` Mikrosekunden.
    #[command(verbatim_doc_comment)]
    List {
        /// Nur diesen Pfad und was darunter liegt
        path: Option<PathBuf>,
        /// Als JSON (Zeiten in UTC, RFC 3339)
        #[arg(long)]
        json: bool,
        /// Dateien eines anderen eigenen Geräts
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
        /// Dateien aller eigenen Geräte
        #[arg(long, conflicts_with = "device")]
        all_devices: bool,
    },
    /// Datei oder Ordner wiederherstellen
    ///
    /// Ohne --to kommt alles an seinen Ort zurück. Mit --to ZIEL liegt ein Ordner danach in
    /// ZIEL/<letzter Ordner des Pfads>/… und eine einzelne Datei in ZIEL/<Name>:
    ///
    ///   restore /home/anna/Fotos --to /tmp/r      ergibt /tmp/r/Fotos/…
    ///   restore /home/anna/brief.txt --to /tmp/r  ergibt /tmp/r/brief.txt
    ///
    /// Vorhandene Dateien mit anderem Inhalt bleiben unangetastet (Konflikt), außer mit
    /// --overwrite.
    #[command(verbatim_doc_comment)]
    Restore {
        /// Pfad wie gesichert
        path: PathBuf,
        /// Genau diese Version (Nummer aus `list`)
        #[arg(long, value_name = "ID", conflicts_with = "at")]
        version: Option<u64>,
        /// Stand zu diesem Zeitpunkt: RFC 3339 oder Ortszeit "JJJJ-MM-TT HH:MM[:SS[.ffffff]]";
        /// eine Zeit auf die Sekunde umfasst die ganze Sekunde (so wie `list` sie zeigt)
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// In diesen Ordner statt an den Originalort: ein Ordner kommt nach ZIEL/<letzter
        /// Ordner>/…, eine Datei nach ZIEL/<Name>
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Bestehende, abweichende Dateien ersetzen
        #[arg(long)]
        overwrite: bool,
        /// Von einem anderen eigenen Gerät
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
        /// Besitzer nach gesicherter Nummer statt nach Namen setzen (als root, wie tar)
        #[arg(long)]
        numeric_owner: bool,
        /// Zusammenfassung als JSON
        #[arg(long)]
        json: bool,
    },
    /// Wiederherstellen im Browser: öffnet die eigenen Sicherungen angemeldet im Browser
    ///
    /// Holt vom Server einen Anmelde-Link (nur einmal gültig, 10 Minuten lang), zeigt ihn und
    /// öffnet ihn im Standard-Browser. Dort lassen sich alle Versionen aller eigenen Geräte
    /// finden und herunterladen, einzeln oder als ZIP.
    Web {
        /// Den Link nur zeigen, keinen Browser öffnen
        #[arg(long)]
        no_open: bool,
        /// Stattdessen ein Web-Passwort für die Anmeldung unter /login setzen
        #[arg(long)]
        set_password: bool,
        /// Das Passwort aus der ersten Zeile der Standardeingabe lesen
        #[arg(long, requires = "set_password")]
        password_stdin: bool,
    },
    /// Regelmäßige Sicherung einrichten, zeigen, entfernen
    Schedule {
        #[command(subcommand)]
        action: ScheduleCommand,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Ein wartendes neues Gerät mit dem Code freigeben, den es anzeigt
    Approve {
        /// Code wie K7MQ-4XTD
        code: String,
    },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Zeitplan einrichten (systemd-Timer, Crontab-Zeile oder Windows-Aufgabe)
    Install {
        /// Intervall: 5m … 30m, 1h … 12h, 1d, 7d
        #[arg(long, default_value = "1h", value_parser = Every::parse)]
        every: Every,
        /// System-Timer als root, sichert mit `backup --system`
        #[arg(long)]
        system: bool,
    },
    /// Zeigt, ob ein Zeitplan eingerichtet ist, und den nächsten Lauf
    Status {
        /// Den System-Timer (als root)
        #[arg(long)]
        system: bool,
    },
    /// Zeitplan entfernen
    Remove {
        /// Den System-Timer (als root)
        #[arg(long)]
        system: bool,
    },
}

/// The command line, its help in the language of `LANG` (the configuration is read later).
fn parse_cli() -> Cli {
    let lang = Lang::resolve(None, asgard_agent::real_env("LANG").as_deref());
    let cmd = asgard_agent::localize_help(Cli::command(), lang, asgard_agent::HELP_EN);
    let matches = cmd.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    // `time` can only read the local offset while the process has a single thread: do it first.
    let (offset, offset_known) = asgard_agent::local_offset();
    let cli = parse_cli();
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
        Command::Login { code, token } => commands::login(ctx, code, token).await,
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
        Command::Web {
            no_open,
            set_password,
            password_stdin,
        } => {
            let args = commands::WebArgs {
                no_open,
                set_password,
                password_stdin,
            };
            commands::web(ctx, args).await
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn help_of(lang: Lang, path: &[&str]) -> String {
        let mut cmd = asgard_agent::localize_help(Cli::command(), lang, asgard_agent::HELP_EN);
        let mut sub = &mut cmd;
        for name in path {
            sub = sub.find_subcommand_mut(name).unwrap();
        }
        sub.render_long_help().to_string()
    }

    /// Every command path of the tree, top level first.
    fn command_paths() -> Vec<Vec<&'static str>> {
        fn walk(cmd: &clap::Command, path: Vec<&'static str>, out: &mut Vec<Vec<&'static str>>) {
            out.push(path.clone());
            for s in cmd.get_subcommands() {
                let name: &'static str = s.get_name().to_owned().leak();
                let mut p = path.clone();
                p.push(name);
                walk(s, p, out);
            }
        }
        let mut out = Vec::new();
        walk(&Cli::command(), Vec::new(), &mut out);
        out
    }

    #[test]
    fn every_command_and_argument_has_an_english_help() {
        let keys = asgard_agent::help_keys(&Cli::command());
        for key in &keys {
            assert!(
                asgard_agent::help_text(asgard_agent::HELP_EN, key).is_some(),
                "no English help for `{key}` in present::help::AGENT"
            );
        }
        for (key, _) in asgard_agent::HELP_EN {
            let key = key.strip_suffix(" after").unwrap_or(key);
            assert!(
                keys.iter().any(|k| k == key),
                "English help for unknown `{key}`"
            );
        }
    }

    #[test]
    fn help_is_german_by_default_and_english_on_request() {
        for lang in [Lang::De, Lang::En] {
            let cmd = asgard_agent::localize_help(Cli::command(), lang, asgard_agent::HELP_EN);
            cmd.debug_assert();
        }
        for path in command_paths() {
            let de = help_of(Lang::De, &path);
            for word in ["Aufruf:", "Optionen:", "Hilfe zeigen"] {
                assert!(de.contains(word), "{path:?}: no {word}\n{de}");
            }
            for word in [
                "Usage:",
                "Options:",
                "Print help",
                "Arguments:",
                "Commands:",
            ] {
                assert!(!de.contains(word), "{path:?}: {word}\n{de}");
            }
            let en = help_of(Lang::En, &path);
            for word in ["Usage:", "Options:", "Print help"] {
                assert!(en.contains(word), "{path:?}: no {word}\n{en}");
            }
            for word in [
                "Aufruf", "Optionen", "Hilfe", "Datei", "Ordner", "Gerät", " oder ",
            ] {
                assert!(!en.contains(word), "{path:?}: {word}\n{en}");
            }
        }
    }

    #[test]
    fn restore_help_explains_where_to_puts_things() {
        let de = help_of(Lang::De, &["restore"]);
        assert!(de.contains("ZIEL/<letzter Ordner des Pfads>/…"), "{de}");
        assert!(de.contains("/tmp/r/Fotos/…"), "{de}");
        assert!(de.contains("einzelne Datei in ZIEL/<Name>"), "{de}");
        let en = help_of(Lang::En, &["restore"]);
        assert!(en.contains("DEST/<last folder of the path>/…"), "{en}");
        assert!(en.contains("a single file in DEST/<name>"), "{en}");
    }

    #[test]
    fn localized_command_line_still_parses() {
        for lang in [Lang::De, Lang::En] {
            let cmd = asgard_agent::localize_help(Cli::command(), lang, asgard_agent::HELP_EN);
            let m = cmd
                .try_get_matches_from([
                    "asgard-agent",
                    "restore",
                    "/x",
                    "--version",
                    "7",
                    "--to",
                    "/t",
                    "--state-dir",
                    "/s",
                ])
                .unwrap();
            let cli = Cli::from_arg_matches(&m).unwrap();
            let Command::Restore {
                version, to, path, ..
            } = cli.command
            else {
                panic!("not restore");
            };
            assert_eq!(
                (version, path, to),
                (Some(7), "/x".into(), Some("/t".into()))
            );
            assert_eq!(cli.state_dir, Some("/s".into()));
            let cmd = asgard_agent::localize_help(Cli::command(), lang, asgard_agent::HELP_EN);
            let m = cmd
                .try_get_matches_from(["asgard-agent", "schedule", "install", "--every", "5m"])
                .unwrap();
            assert!(matches!(
                Cli::from_arg_matches(&m).unwrap().command,
                Command::Schedule {
                    action: ScheduleCommand::Install { .. }
                }
            ));
        }
    }
}
