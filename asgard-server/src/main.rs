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

use asgard_server::config::Config;
use asgard_server::db::{Db, DbError};
use asgard_server::store::LocalStore;
use asgard_server::{api, lock, tls, verify};

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
    /// Re-read stored chunks and check them against their ids; list damaged and missing chunks
    /// and the file versions affected. Exit code 0: all is well; 1: damage found; 2: verify
    /// could not run.
    Verify {
        #[command(flatten)]
        common: Common,
        /// Read only a random sample of this many percent of the chunks (chunks already marked
        /// bad are always read).
        #[arg(long, value_name = "PERCENT")]
        sample: Option<f64>,
        /// Only the chunks and file versions of this user.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage devices.
    Device {
        #[command(subcommand)]
        cmd: DeviceCmd,
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
        Cmd::Verify {
            common,
            sample,
            user,
            json,
        } => return verify(&common, sample, user, json, env_lang),
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
    let state = web::Data::new(api::AppState {
        db: Arc::new(db),
        store: Arc::new(store),
        config: Arc::new(config),
    });
    if let Some(every) = state.config.verify_every() {
        verify::spawn_periodic(
            state.db.clone(),
            state.store.clone(),
            every,
            state.config.verify_sample_percent,
        )
        .context("periodic verify")?;
    }

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

/// `verify`: in this process when the data directory is free; a running server holds it and
/// verifies by itself (periodically, see `verify_interval`).
fn verify(
    common: &Common,
    sample: Option<f64>,
    user: Option<String>,
    json: bool,
    env_lang: Lang,
) -> ExitCode {
    let (lang, result) = match load_config(common) {
        Ok(config) => {
            let lang = config.lang();
            (lang, verify_cmd(&config, sample, user, json, lang))
        }
        Err(e) => (env_lang, Err(e)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{}: {e:#}", lang.pick("Fehler", "Error"));
            ExitCode::from(2)
        }
    }
}

/// Runs verify and prints the report; true when all is well.
fn verify_cmd(
    config: &Config,
    sample: Option<f64>,
    user: Option<String>,
    json: bool,
    lang: Lang,
) -> anyhow::Result<bool> {
    let dir = &config.data_dir;
    if !dir.join("asgard.redb").is_file() {
        return Err(anyhow!(
            "{} {}",
            lang.pick(
                "Im Datenverzeichnis liegt keine Metadaten-Datenbank:",
                "The data directory holds no metadata database:"
            ),
            dir.display()
        ));
    }
    let (_lock, db) = open_data_dir(config, lang).map_err(|e| {
        e.context(lang.pick(
            "verify braucht das Datenverzeichnis für sich allein. Läuft dort der Server, muss \
             der laufende Server die Prüfung ausführen (er prüft regelmäßig eine Stichprobe, \
             siehe verify_interval); sonst den Server anhalten und verify erneut starten",
            "verify needs the data directory to itself. While the server runs there, the \
             running server must do the verifying (it verifies a sample periodically, see \
             verify_interval); otherwise stop the server and run verify again",
        ))
    })?;
    let chunks = dir.join("chunks");
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
    let opts = verify::VerifyOptions {
        sample_percent: sample,
        user,
        progress_every: Some(std::time::Duration::from_secs(5)),
        lang,
        ..verify::VerifyOptions::default()
    };
    let report =
        verify::run(&db, &store, &opts, asgard_server::db::now_us()).map_err(|e| {
            match (&e, lang) {
                (verify::VerifyError::UnknownUser(u), Lang::De) => {
                    anyhow!("Unbekannter Benutzer „{u}“.")
                }
                (verify::VerifyError::BadSample(p), Lang::De) => {
                    anyhow!("--sample {p}: erwartet wird ein Prozentsatz über 0 und höchstens 100.")
                }
                _ => anyhow!(e),
            }
        })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", verify::render(&report, lang));
    }
    Ok(report.clean())
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
    fn verify_cli_parses() {
        let cli = Cli::try_parse_from([
            "asgard-server",
            "verify",
            "--data-dir",
            "/x",
            "--sample",
            "2.5",
            "--user",
            "anna",
            "--json",
        ])
        .unwrap();
        let Cmd::Verify {
            sample, user, json, ..
        } = cli.cmd
        else {
            panic!("not verify");
        };
        assert_eq!(sample, Some(2.5));
        assert_eq!(user.as_deref(), Some("anna"));
        assert!(json);
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
