//! `asgard-server`: the AsgardBackup server (HTTPS API, redb metadata, chunk store) and its admin
//! commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use anyhow::{Context, anyhow};
use asgard_core::Lang;
use asgard_core::protocol::DeviceStatus;
use clap::{Args, Parser, Subcommand};

use asgard_server::config::{Config, HumanDuration};
use asgard_server::db::{Db, DbError};
use asgard_server::store::LocalStore;
use asgard_server::{api, gc, lock, tls};

#[derive(Parser)]
#[command(name = "asgard-server", version, about = "AsgardBackup-Server")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// Configuration file (YAML); without it the built-in defaults apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Listen address, e.g. 0.0.0.0:8443 (port 0 = any free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Print the SHA-256 fingerprint of the server certificate.
    Fingerprint {
        #[command(flatten)]
        common: Common,
    },
    /// Manage devices.
    Device {
        #[command(subcommand)]
        cmd: DeviceCmd,
    },
    /// Manage users (retention per user).
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Garbage collection now: prune versions by the retention rules, remove unreferenced chunks.
    /// Needs the data directory for itself; a running server does it every gc_interval.
    Gc {
        #[command(flatten)]
        common: Common,
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Grace period for chunks uploaded or reported present recently (e.g. 1h, 30m, 0s);
        /// default gc_grace of the configuration.
        #[arg(long, value_name = "DURATION")]
        grace: Option<HumanDuration>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// List users with their device count and own keep_versions.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Set how many content versions per file this user keeps (instead of keep_versions).
    SetKeep {
        user: String,
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        versions: u32,
        #[command(flatten)]
        common: Common,
    },
    /// Remove the user's own setting: keep_versions of the configuration applies again.
    ClearKeep {
        user: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// List all devices.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Approve a pending device.
    Approve {
        user: String,
        device: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a device's token so that it can register again (its files stay).
    Reset {
        user: String,
        device: String,
        #[command(flatten)]
        common: Common,
    },
}

fn load_config(common: &Common) -> anyhow::Result<Config> {
    let mut config = Config::load(common.config.as_deref())?;
    if let Some(dir) = &common.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let env_lang = Lang::resolve(None, std::env::var("LANG").ok().as_deref());
    let result = match cli.cmd {
        Cmd::Serve { common, listen } => serve(&common, listen),
        Cmd::Fingerprint { common } => fingerprint(&common),
        Cmd::Device { cmd } => device(cmd),
        Cmd::User { cmd } => user(cmd),
        Cmd::Gc {
            common,
            dry_run,
            grace,
            json,
        } => gc_cmd(&common, dry_run, grace, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((lang, err)) => {
            let lang = lang.unwrap_or(env_lang);
            eprintln!("{}: {err:#}", lang.pick("Fehler", "Error"));
            ExitCode::FAILURE
        }
    }
}

/// An error, with the configured language when the configuration could be read.
type CmdResult = Result<(), (Option<Lang>, anyhow::Error)>;

fn with_lang<T>(lang: Lang, r: anyhow::Result<T>) -> Result<T, (Option<Lang>, anyhow::Error)> {
    r.map_err(|e| (Some(lang), e))
}

fn serve(common: &Common, listen: Option<String>) -> CmdResult {
    let mut config = load_config(common).map_err(|e| (None, e))?;
    if let Some(l) = listen {
        config.listen = l;
    }
    let lang = config.lang();
    with_lang(lang, run_server(config, lang))
}

/// Opens the data directory under its lock: the lock, the database.
fn open_data_dir(config: &Config, lang: Lang) -> anyhow::Result<(lock::DataDirLock, Db)> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "{} {}",
            lang.pick(
                "Datenverzeichnis kann nicht angelegt werden:",
                "Cannot create data directory"
            ),
            dir.display()
        )
    })?;
    let lock = lock::acquire(dir, lang)?;
    let path = dir.join("asgard.redb");
    let db = Db::open(&path).with_context(|| {
        format!(
            "{} {}",
            lang.pick(
                "Metadaten-Datenbank kann nicht geöffnet werden:",
                "Cannot open metadata database"
            ),
            path.display()
        )
    })?;
    Ok((lock, db))
}

fn run_server(config: Config, lang: Lang) -> anyhow::Result<()> {
    api::set_lang(lang);
    let (lock, db) = open_data_dir(&config, lang)?;
    tracing::info!(lock = %lock.path.display(), "data directory locked");
    let chunks = config.data_dir.join("chunks");
    let store = LocalStore::open(&chunks).with_context(|| {
        format!(
            "{} {}",
            lang.pick(
                "Chunk-Speicher kann nicht geöffnet werden:",
                "Cannot open chunk store"
            ),
            chunks.display()
        )
    })?;
    let material = tls::load_or_create(&config, lang)?;
    let fp = material.fingerprint();
    let tls_config = material.server_config()?;
    let listen = config.listen.clone();
    let db = Arc::new(db);
    let store: Arc<dyn asgard_server::store::ChunkStore> = Arc::new(store);
    gc::spawn_periodic(
        db.clone(),
        store.clone(),
        gc::GcOptions::from_config(&config),
        config.gc_interval.0,
    )?;
    let state = web::Data::new(api::AppState {
        db,
        store,
        config: Arc::new(config),
    });

    actix_web::rt::System::new().block_on(async move {
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).configure(api::routes))
                .bind_rustls_0_23(&listen, tls_config)
                .with_context(|| {
                    format!(
                        "{} {listen}",
                        lang.pick("Adresse kann nicht gebunden werden:", "Cannot bind address")
                    )
                })?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| anyhow!("no address bound"))?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{}: https://{addr}",
            lang.pick("AsgardBackup-Server läuft", "AsgardBackup server running")
        )?;
        writeln!(
            out,
            "{}: {fp}",
            lang.pick(
                "Zertifikat-Fingerabdruck (SHA-256)",
                "Certificate fingerprint (SHA-256)"
            )
        )?;
        out.flush()?;
        drop(out);
        server.run().await?;
        tracing::info!("server stopped");
        drop(lock);
        Ok(())
    })
}

fn fingerprint(common: &Common) -> CmdResult {
    let config = load_config(common).map_err(|e| (None, e))?;
    let lang = config.lang();
    let fp = with_lang(lang, tls::load_or_create(&config, lang))?.fingerprint();
    println!("{fp}");
    Ok(())
}

fn device(cmd: DeviceCmd) -> CmdResult {
    let common = match &cmd {
        DeviceCmd::List { common }
        | DeviceCmd::Approve { common, .. }
        | DeviceCmd::Reset { common, .. } => common.clone(),
    };
    let config = load_config(&common).map_err(|e| (None, e))?;
    let lang = config.lang();
    with_lang(lang, device_cmd(cmd, &config, lang))
}

fn device_cmd(cmd: DeviceCmd, config: &Config, lang: Lang) -> anyhow::Result<()> {
    if !config.data_dir.is_dir() {
        return Err(anyhow!(
            "{} {}",
            lang.pick(
                "Datenverzeichnis existiert nicht:",
                "Data directory does not exist:"
            ),
            config.data_dir.display()
        ));
    }
    let (_lock, db) = open_data_dir(config, lang)?;
    let not_found = |user: &str, device: &str| match lang {
        Lang::De => anyhow!("Gerät „{device}“ von Benutzer „{user}“ nicht gefunden."),
        Lang::En => anyhow!("Device \"{device}\" of user \"{user}\" not found."),
    };
    match cmd {
        DeviceCmd::List { .. } => {
            let rows = db.list_devices()?;
            if rows.is_empty() {
                println!(
                    "{}",
                    lang.pick("Keine Geräte registriert.", "No devices registered.")
                );
            }
            for r in rows {
                let status = match r.rec.status {
                    DeviceStatus::Active => lang.pick("aktiv", "active"),
                    DeviceStatus::Pending => lang.pick("wartet auf Freigabe", "pending"),
                };
                let token = if r.rec.token_hash.is_some() {
                    ""
                } else {
                    lang.pick(" (zurückgesetzt)", " (reset)")
                };
                println!(
                    "{}\t{}\t{status}{token}\t{} {}\t{}: {}",
                    r.user,
                    r.device,
                    r.rec.os,
                    r.rec.os_version,
                    lang.pick("zuletzt gesehen", "last seen"),
                    format_utc(r.rec.last_seen_us)
                );
            }
        }
        DeviceCmd::Approve { user, device, .. } => match db.approve_device(&user, &device) {
            Ok(_) => match lang {
                Lang::De => println!("Gerät „{device}“ von Benutzer „{user}“ ist freigegeben."),
                Lang::En => println!("Device \"{device}\" of user \"{user}\" is approved."),
            },
            Err(DbError::NotFound) => return Err(not_found(&user, &device)),
            Err(e) => return Err(e.into()),
        },
        DeviceCmd::Reset { user, device, .. } => match db.reset_device(&user, &device) {
            Ok(_) => match lang {
                Lang::De => println!(
                    "Gerät „{device}“ von Benutzer „{user}“ ist zurückgesetzt; es kann sich neu anmelden und erhält ein neues Token. Seine Dateien bleiben erhalten."
                ),
                Lang::En => println!(
                    "Device \"{device}\" of user \"{user}\" is reset; it can log in again and gets a new token. Its files are kept."
                ),
            },
            Err(DbError::NotFound) => return Err(not_found(&user, &device)),
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

fn user(cmd: UserCmd) -> CmdResult {
    let common = match &cmd {
        UserCmd::List { common }
        | UserCmd::SetKeep { common, .. }
        | UserCmd::ClearKeep { common, .. } => common.clone(),
    };
    let config = load_config(&common).map_err(|e| (None, e))?;
    let lang = config.lang();
    with_lang(lang, user_cmd(cmd, &config, lang))
}

fn user_cmd(cmd: UserCmd, config: &Config, lang: Lang) -> anyhow::Result<()> {
    require_data_dir(config, lang)?;
    let (_lock, db) = open_data_dir(config, lang)?;
    let not_found = |user: &str| match lang {
        Lang::De => anyhow!("Benutzer „{user}“ nicht gefunden."),
        Lang::En => anyhow!("User \"{user}\" not found."),
    };
    match cmd {
        UserCmd::List { .. } => {
            let rows = db.list_users()?;
            if rows.is_empty() {
                println!("{}", lang.pick("Keine Benutzer.", "No users."));
            }
            for r in rows {
                let keep = match r.keep_versions {
                    Some(k) => format!("keep_versions {k}"),
                    None => format!(
                        "keep_versions {} ({})",
                        config.keep_versions,
                        lang.pick("Standard", "default")
                    ),
                };
                println!(
                    "{}\t{} {}\t{keep}",
                    r.name,
                    r.devices,
                    lang.pick("Gerät(e)", "device(s)")
                );
            }
        }
        UserCmd::SetKeep { user, versions, .. } => {
            match db.set_keep_override(&user, Some(versions)) {
                Ok(()) => match lang {
                    Lang::De => println!(
                        "Benutzer „{user}“ behält {versions} Versionen pro Datei (ab dem nächsten Commit bzw. der nächsten Speicherbereinigung)."
                    ),
                    Lang::En => println!(
                        "User \"{user}\" keeps {versions} versions per file (from the next commit or garbage collection)."
                    ),
                },
                Err(DbError::NotFound) => return Err(not_found(&user)),
                Err(e) => return Err(e.into()),
            }
        }
        UserCmd::ClearKeep { user, .. } => match db.set_keep_override(&user, None) {
            Ok(()) => match lang {
                Lang::De => println!(
                    "Für Benutzer „{user}“ gilt wieder keep_versions der Konfiguration ({}).",
                    config.keep_versions
                ),
                Lang::En => println!(
                    "keep_versions of the configuration ({}) applies to user \"{user}\" again.",
                    config.keep_versions
                ),
            },
            Err(DbError::NotFound) => return Err(not_found(&user)),
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

fn require_data_dir(config: &Config, lang: Lang) -> anyhow::Result<()> {
    if !config.data_dir.is_dir() {
        return Err(anyhow!(
            "{} {}",
            lang.pick(
                "Datenverzeichnis existiert nicht:",
                "Data directory does not exist:"
            ),
            config.data_dir.display()
        ));
    }
    Ok(())
}

fn gc_cmd(common: &Common, dry_run: bool, grace: Option<HumanDuration>, json: bool) -> CmdResult {
    let config = load_config(common).map_err(|e| (None, e))?;
    let lang = config.lang();
    with_lang(lang, run_gc(&config, dry_run, grace, json, lang))
}

fn run_gc(
    config: &Config,
    dry_run: bool,
    grace: Option<HumanDuration>,
    json: bool,
    lang: Lang,
) -> anyhow::Result<()> {
    require_data_dir(config, lang)?;
    let (_lock, db) = open_data_dir(config, lang).with_context(|| {
        lang.pick(
            "asgard-server gc braucht das Datenverzeichnis für sich allein. Läuft der Server, bereinigt er selbst alle gc_interval",
            "asgard-server gc needs the data directory to itself. A running server collects garbage by itself every gc_interval",
        )
    })?;
    let chunks = config.data_dir.join("chunks");
    let store = LocalStore::open(&chunks).with_context(|| format!("{}", chunks.display()))?;
    let mut opts = gc::GcOptions::from_config(config);
    opts.dry_run = dry_run;
    if let Some(g) = grace {
        opts.grace = g.0;
    }
    let report = gc::run(&db, &store, &opts, asgard_server::db::now_us())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render(lang));
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS UTC` from µs since the epoch (civil-from-days, no time zone database).
fn format_utc(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_format() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_utc(951_782_400_000_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "asgard-server",
            "device",
            "reset",
            "anna",
            "laptop",
            "--data-dir",
            "/x",
        ])
        .unwrap();
        assert!(matches!(
            cli.cmd,
            Cmd::Device {
                cmd: DeviceCmd::Reset { .. }
            }
        ));
    }
}
