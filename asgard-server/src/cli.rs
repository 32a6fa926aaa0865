//! The command line of `asgard-server` (clap): parses the arguments, picks the language and calls
//! one function per command; `serve` wires lock, database, store, TLS, admin channel, scheduler
//! and the API together. The binary's `main.rs` only calls [`main`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use anyhow::{Context, anyhow};
use asgard_core::Lang;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, HumanDuration};
use crate::control::{self, channel};
use crate::ops::events::{self, EventBus};
use crate::ops::jobs::JobBoard;
use crate::ops::schedule::Scheduler;
use crate::ops::{Resources, Task, dbbackup};
use crate::present::help as cli_help;
use crate::present::{self, messages};
use crate::{api, lock, tls};

mod accounts;

use accounts::{DeviceCmd, RegistrationCmd, RunsArgs, UserCmd};

/// The help texts here are German, the default; the English ones are in `cli_help::SERVER` under
/// the command path and argument id (a test checks that each has one).
#[derive(Parser)]
#[command(name = "asgard-server", version, about = "AsgardBackup-Server")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// Konfigurationsdatei (YAML); ohne sie gelten die eingebauten Vorgaben
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Datenverzeichnis (statt dem der Konfiguration)
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Den Server starten
    Serve {
        #[command(flatten)]
        common: Common,
        /// Adresse, auf der der Server lauscht, z. B. 0.0.0.0:8443 (Port 0 = ein freier Port)
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Den SHA-256-Fingerabdruck des Serverzertifikats ausgeben
    Fingerprint {
        #[command(flatten)]
        common: Common,
    },
    /// Gespeicherte Chunks neu lesen und mit ihrer Kennung vergleichen
    ///
    /// Liest gespeicherte Chunks neu und vergleicht sie mit ihrer Kennung; nennt beschädigte und
    /// fehlende Chunks und die betroffenen Dateiversionen. Exit-Code 0: alles in Ordnung; 1:
    /// Schäden gefunden; 2: die Prüfung konnte nicht laufen.
    Verify {
        #[command(flatten)]
        common: Common,
        /// Nur eine Zufallsstichprobe von so vielen Prozent der Chunks lesen (als beschädigt
        /// markierte Chunks werden immer gelesen)
        #[arg(long, value_name = "PERCENT")]
        sample: Option<f64>,
        /// Nur die Chunks und Dateiversionen dieses Benutzers
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Den Bericht als JSON ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Geräte verwalten
    Device {
        #[command(subcommand)]
        cmd: DeviceCmd,
    },
    /// Benutzer verwalten (Aufbewahrung, Sperre, Löschen)
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Registrierung neuer Geräte zur Laufzeit zeigen und ändern
    Registration {
        #[command(subcommand)]
        cmd: RegistrationCmd,
    },
    /// Übersicht: Benutzer, Geräte und ihr letzter Lauf, Speicher, letzte GC und Prüfung
    Overview {
        #[command(flatten)]
        common: Common,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Die Laufberichte der Agenten, neueste zuerst
    Runs(RunsArgs),
    /// Admins der Weboberfläche verwalten (auch während der Server läuft)
    Admin {
        #[command(subcommand)]
        cmd: admin::AdminCmd,
    },
    /// Speicherbereinigung jetzt: Versionen nach den Aufbewahrungsregeln entfernen, Chunks ohne
    /// Verweis löschen
    ///
    /// Entfernt Versionen nach den Aufbewahrungsregeln und löscht Chunks, auf die nichts mehr
    /// verweist. Geht auch mit dem Datenverzeichnis eines laufenden Servers; der Server tut es
    /// außerdem alle gc_interval.
    Gc {
        #[command(flatten)]
        common: Common,
        /// Nur berichten, was entfernt würde
        #[arg(long)]
        dry_run: bool,
        /// Schonfrist für Chunks, die kürzlich hochgeladen oder als vorhanden gemeldet wurden
        /// (z. B. 1h, 30m, 0s); Vorgabe: gc_grace der Konfiguration
        #[arg(long, value_name = "DURATION")]
        grace: Option<HumanDuration>,
        /// Den Bericht als JSON ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Statistik zeigen (geht auch mit dem Datenverzeichnis eines laufenden Servers)
    Stats {
        #[command(flatten)]
        common: Common,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Eine konsistente Kopie der Metadaten-Datenbank schreiben (auch während der Server läuft)
    DbBackup {
        #[command(flatten)]
        common: Common,
        /// Zieldatei, oder ein Ordner für eine nach der Zeit benannte Datei; Vorgabe
        /// <data_dir>/db-backups/asgard-JJJJMMTT-HHMMSS.redb (die neuesten db_backup_keep
        /// bleiben)
        #[arg(long, value_name = "PATH")]
        to: Option<PathBuf>,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Zeigen, wo Chunks gespeichert sind
    ///
    /// Zeigt, wo Chunks gespeichert sind: Segmentdatei, Versatz und Länge der gespeicherten
    /// Bytes (alle Chunks, wenn keine Kennung angegeben ist; auch während der Server läuft).
    Locate {
        #[command(flatten)]
        common: Common,
        /// Chunk-Kennungen (64 Hex-Ziffern)
        #[arg(value_name = "ID")]
        ids: Vec<String>,
        /// JSON statt Text ausgeben
        #[arg(long)]
        json: bool,
    },
    /// Die Metadaten-Datenbank durch eine Kopie von db-backup ersetzen (der Server muss
    /// gestoppt sein)
    DbRestore {
        #[command(flatten)]
        common: Common,
        /// Die Kopie, die zurückgespielt wird
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
    },
}

/// The command line, its help in the language of `LANG` (the configuration is read later).
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let lang = Lang::resolve(None, std::env::var("LANG").ok().as_deref());
    let cmd = cli_help::localize(Cli::command(), lang, cli_help::SERVER);
    let matches = cmd.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn load_config(common: &Common) -> anyhow::Result<Config> {
    let mut config = Config::load(common.config.as_deref())?;
    if let Some(dir) = &common.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = parse_cli();
    // Everything the server writes (database, segments, copies, socket, TLS key) is private.
    lock::private_umask();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file or journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let env_lang = Lang::resolve(None, std::env::var("LANG").ok().as_deref());
    let result = match cli.cmd {
        Cmd::Serve { common, listen } => {
            // The server starts itself once more with glibc's mmap threshold fixed (see
            // `crate::alloc`); the admin commands run as they are.
            crate::alloc::tune();
            serve(&common, listen).map(|()| 0)
        }
        Cmd::Fingerprint { common } => fingerprint(&common).map(|()| 0),
        Cmd::Device { cmd } => asked_cmd(cmd.task()),
        Cmd::User { cmd } => asked_cmd(cmd.task()),
        Cmd::Registration { cmd } => asked_cmd(cmd.task()),
        Cmd::Runs(args) => asked_cmd(args.task()),
        Cmd::Overview { common, json } => task_cmd(&common, json, |_| Ok(Task::Overview)),
        Cmd::Admin { cmd } => admin::run(cmd),
        Cmd::Gc {
            common,
            dry_run,
            grace,
            json,
        } => task_cmd(&common, json, |_| Ok(Task::Gc { dry_run, grace })),
        Cmd::Stats { common, json } => task_cmd(&common, json, |_| Ok(Task::Stats)),
        Cmd::DbBackup { common, to, json } => task_cmd(&common, json, |lang| {
            Ok(Task::DbBackup {
                to: to.map(|p| absolute(&p, lang)).transpose()?,
            })
        }),
        Cmd::Locate { common, ids, json } => task_cmd(&common, json, |_| Ok(Task::Locate { ids })),
        Cmd::DbRestore { common, from } => db_restore(&common, &from).map(|()| 0),
        Cmd::Verify {
            common,
            sample,
            user,
            json,
        } => task_cmd(&common, json, |_| {
            Ok(Task::Verify {
                sample_percent: sample,
                user,
            })
        }),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err((lang, err)) => {
            let lang = lang.unwrap_or(env_lang);
            eprintln!("{}: {err:#}", present::error_prefix(lang));
            ExitCode::FAILURE
        }
    }
}

/// An error, with the configured language when the configuration could be read.
type CmdResult<T = ()> = Result<T, (Option<Lang>, anyhow::Error)>;

/// Runs a task (in-process or through the running server, see `control`) and prints its
/// outcome; returns the task's exit code.
fn task_cmd(
    common: &Common,
    json: bool,
    task: impl FnOnce(Lang) -> anyhow::Result<Task>,
) -> CmdResult<u8> {
    let config = load_config(common).map_err(|e| (None, e))?;
    let lang = config.lang();
    let task = with_lang(lang, task(lang))?;
    let mut progress = |line: &str| eprintln!("{line}");
    let outcome = with_lang(lang, control::execute(&config, &task, lang, &mut progress))?;
    if json {
        let text = with_lang(
            lang,
            serde_json::to_string_pretty(&outcome.result).map_err(Into::into),
        )?;
        println!("{text}");
    } else {
        print!("{}", outcome.text);
    }
    Ok(outcome.exit_code)
}

/// Runs the task of an account or console command ([`accounts`]); a confirmation that does not
/// match is an error that names both names.
fn asked_cmd((common, json, task): accounts::Asked) -> CmdResult<u8> {
    task_cmd(&common, json, |lang| {
        task.map_err(|(user, typed)| anyhow!("{}", messages::confirm_mismatch(&user, &typed, lang)))
    })
}

/// An absolute form of a path given on the command line (the server may run in another folder).
fn absolute(p: &std::path::Path, lang: Lang) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| messages::invalid_path(p, lang))
}

fn db_restore(common: &Common, from: &std::path::Path) -> CmdResult {
    let config = load_config(common).map_err(|e| (None, e))?;
    let lang = config.lang();
    with_lang(lang, db_restore_in(&config, from, lang))
}

fn db_restore_in(config: &Config, from: &std::path::Path, lang: Lang) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let Some(_lock) = lock::try_acquire(dir, lang)? else {
        return Err(anyhow!(
            "{}",
            messages::stop_server_before_db_restore(dir, lang)
        ));
    };
    let report = dbbackup::replace_database(dir, from, crate::db::now_us(), lang).map_err(|e| {
        match e.downcast_ref::<crate::db::DbError>() {
            Some(&crate::db::DbError::SchemaTooNew { found, known }) => {
                anyhow!("{}", messages::db_schema_too_new(from, found, known, lang))
            }
            _ => e,
        }
    })?;
    print!("{}", present::reports::db_restore(&report, lang));
    Ok(())
}

fn with_lang<T>(lang: Lang, r: anyhow::Result<T>) -> CmdResult<T> {
    r.map_err(|e| (Some(lang), e))
}

fn serve(common: &Common, listen: Option<String>) -> CmdResult {
    // ubrowse: the local time zone of the user pages, while the process has one thread.
    crate::web::usertime::init();
    let mut config = load_config(common).map_err(|e| (None, e))?;
    if let Some(l) = listen {
        config.listen = l;
    }
    let lang = config.lang();
    with_lang(lang, run_server(config, lang))
}

/// Runs the server: takes the data directory, opens database and store, starts the admin
/// channel, the periodic jobs and the HTTPS API; when the API stops (SIGINT/SIGTERM), stops the
/// jobs and lets go of everything in reverse order.
fn run_server(config: Config, lang: Lang) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| messages::cannot_create_data_dir(dir, lang))?;
    let tightened = lock::prepare_data_dir(dir, lang)?;
    if tightened > 0 {
        tracing::warn!(dir = %dir.display(), tightened, "data directory was readable by others: folders are now 0700, files 0600");
    }
    let lock = lock::acquire(dir, lang)?;
    tracing::info!(lock = %lock.path.display(), "data directory locked");
    let db = control::open_db(&config, lang)?;
    if !db.admin_exists()? {
        tracing::info!("no admin account yet: `asgard-server admin create NAME` creates the first");
        eprint!("{}", present::admins::no_admin_yet(lang));
    }
    let store = control::open_store(&config, lang)?;
    let material = tls::load_or_create(&config, lang)?;
    let fp = material.fingerprint();
    let tls_config = material.server_config()?;
    let listen = config.listen.clone();
    let open_unkeyed = open_without_key(&config, &db);
    dbbackup::clean_temp(&config.data_dir);
    let events = Arc::new(EventBus::new());
    events::spawn_log(&events).context("event log thread")?;
    let res = Resources {
        db: Arc::new(db),
        store,
        config: Arc::new(config),
        events,
    };
    // Only the lock holder creates the admin socket (replacing one a killed server left behind).
    let admin = match channel::serve(res.clone()) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "admin channel unavailable: maintenance commands cannot reach this server");
            None
        }
    };
    let scheduler = Scheduler::start(res.clone()).context("periodic jobs")?;
    let state = web::Data::new(api::AppState::new(
        res.db.clone(),
        res.store.clone(),
        res.config.clone(),
    ));
    let throttle = web::Data::new(api::throttle::Throttle::new(&res.config.limits));
    // The admin console's maintenance jobs (GC, verify, db-backup started from a page).
    let jobs = web::Data::from(JobBoard::new(res.clone()));
    let routes = api::routes_with(&res.config.limits);
    let console = web::Data::new(crate::web::Console {
        auth: Arc::new(crate::service::webauth::WebAuth::new(
            res.db.clone(),
            crate::service::webauth::SessionPolicy::from_config(&res.config.web),
        )),
        res: res.clone(),
    });

    let served = actix_web::rt::System::new().block_on(async move {
        let server =
            HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .app_data(throttle.clone())
                    .app_data(jobs.clone())
                    .app_data(console.clone())
                    // The console first: the API's scope answers every other path.
                    .configure(crate::web::routes)
                    .configure(routes.clone())
            })
                .bind_rustls_0_23(&listen, tls_config)
                .with_context(|| messages::cannot_bind(&listen, lang))?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| anyhow!("no address bound"))?;
        if open_unkeyed && exposed(&server.addrs()) {
            let warning = messages::open_registration_exposed(&addr, lang);
            tracing::warn!(%addr, "open registration without enrollment key on a non-loopback address");
            eprintln!("{warning}");
        }
        // The server's first poll installs its SIGINT/SIGTERM handlers; it is announced only
        // after that, so a stop asked for as soon as the address is out is a clean stop.
        let running = actix_web::rt::spawn(server.run());
        actix_web::rt::task::yield_now().await;
        let mut out = std::io::stdout().lock();
        write!(out, "{}", messages::server_running(&addr, &fp, lang))?;
        out.flush()?;
        drop(out);
        running.await.context("server task")??;
        anyhow::Ok(())
    });
    scheduler.stop();
    tracing::info!("server stopped");
    drop(admin);
    drop(lock);
    served
}

/// Anybody who reaches the server may register a new user: `registration: open` and no
/// enrollment key.
/// The mode and key set at run time (`registration set`) count, else the configuration's.
fn open_without_key(config: &Config, db: &crate::db::Db) -> bool {
    match crate::ops::registration::effective(db, config) {
        Ok((mode, key)) => mode == crate::config::Registration::Open && key.is_none(),
        Err(_) => {
            config.registration == crate::config::Registration::Open
                && config.enrollment_key.is_none()
        }
    }
}

/// Some of the bound addresses are reachable from other machines.
fn exposed(addrs: &[std::net::SocketAddr]) -> bool {
    addrs.iter().any(|a| !a.ip().is_loopback())
}

fn fingerprint(common: &Common) -> CmdResult {
    let config = load_config(common).map_err(|e| (None, e))?;
    let lang = config.lang();
    let fp = with_lang(lang, tls::load_or_create(&config, lang))?.fingerprint();
    println!("{fp}");
    Ok(())
}

mod admin;

#[cfg(test)]
mod tests;
