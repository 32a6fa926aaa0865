//! Everything a command needs before it talks to the server: the resolved settings, the state
//! file, the pinned client, and the login (registration on first contact).

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use asgard_core::Lang;
use asgard_core::protocol::{DeviceStatus, LoginRequest, LoginResponse, PROTOCOL_VERSION};
use time::UtcOffset;

use crate::client::{self, Client};
use crate::config::Config;
use crate::platform;
use crate::state::State;

/// Settings resolved from the command line, the environment and the config file.
pub struct Ctx {
    pub lang: Lang,
    pub config: Config,
    pub state_dir: PathBuf,
    pub server_url: Option<String>,
    /// The local UTC offset, looked up before the runtime started threads.
    pub offset: UtcOffset,
}

/// A logged-in client.
pub struct Session {
    pub client: Client,
    pub login: LoginResponse,
    /// True when this run registered the device.
    pub registered: bool,
}

/// Connects, registers the device if it has no token for this server yet, and logs in.
pub async fn connect(ctx: &Ctx) -> anyhow::Result<Session> {
    let lang = ctx.lang;
    let user = platform::user_name(platform::WINDOWS, platform::real_env).ok_or_else(|| {
        anyhow!(
            "{}",
            lang.pick(
                "Der angemeldete Benutzer ist unbekannt (USER bzw. USERNAME ist nicht gesetzt).",
                "The logged-in user is unknown (USER or USERNAME is not set)."
            )
        )
    })?;
    let device = ctx
        .config
        .device_name
        .clone()
        .unwrap_or_else(|| platform::device_name(platform::real_env));

    let mut state = State::load(&ctx.state_dir)?.unwrap_or_default();
    // The server: command line / environment / config, else the one this device registered with.
    let configured = ctx
        .server_url
        .clone()
        .or_else(|| Some(state.server_url.clone()).filter(|u| !u.is_empty()));
    let Some(url) = configured else {
        bail!(
            "{}",
            lang.pick(
                "Kein Server angegeben. Bitte --server URL angeben, ASGARD_SERVER setzen oder \
                 server.url in der Konfiguration eintragen.",
                "No server given. Use --server URL, set ASGARD_SERVER or put server.url into \
                 the config."
            )
        );
    };
    let url = url.trim_end_matches('/').to_owned();
    if !state.server_url.is_empty() && state.server_url != url {
        eprintln!(
            "{}",
            match lang {
                Lang::De => format!(
                    "Hinweis: Der Server hat sich geändert (bisher {}); das Gerät wird beim neuen \
                     Server angemeldet.",
                    state.server_url
                ),
                Lang::En => format!(
                    "Note: the server changed (was {}); the device registers with the new server.",
                    state.server_url
                ),
            }
        );
        state = State::default();
    } else if state.token.is_some() && (state.user != user || state.device != device) {
        eprintln!(
            "{}",
            match lang {
                Lang::De => format!(
                    "Hinweis: Das gespeicherte Token gehört zu {} auf {}; {user} auf {device} wird \
                     neu registriert.",
                    state.user, state.device
                ),
                Lang::En => format!(
                    "Note: the stored token belongs to {} on {}; registering {user} on {device}.",
                    state.user, state.device
                ),
            }
        );
        state.token = None;
    }
    state.server_url = url.clone();
    state.user = user.clone();
    state.device = device.clone();

    let pin = match &ctx.config.server.fingerprint {
        Some(text) => Some(client::parse_fingerprint(text).ok_or_else(|| {
            anyhow!(
                "{}: {text}",
                lang.pick(
                    "server.fingerprint in der Konfiguration ist kein SHA-256-Fingerabdruck \
                     (64 Hex-Ziffern)",
                    "server.fingerprint in the config is not a SHA-256 fingerprint (64 hex digits)"
                )
            )
        })?),
        None => state
            .fingerprint
            .as_deref()
            .and_then(client::parse_fingerprint),
    };

    let mut client = Client::new(&url, pin, lang)?;
    client.set_token(state.token.clone());
    let req = LoginRequest {
        protocol_version: PROTOCOL_VERSION,
        user,
        device,
        os: std::env::consts::OS.to_owned(),
        os_version: platform::os_version(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        enrollment_key: ctx.config.enrollment_key.clone(),
    };
    let result = client.login(&req).await;

    // A certificate trusted on first use is remembered even if the login itself failed.
    let first_use = client.pin().first_use();
    if let Some(fp) = first_use {
        let text = client::format_fingerprint(&fp);
        eprintln!(
            "{}",
            match lang {
                Lang::De => format!(
                    "Warnung: Dem Server-Zertifikat wird beim ersten Kontakt vertraut \
                     (Fingerabdruck {text}). Zum Festlegen: server.fingerprint in der \
                     Konfiguration."
                ),
                Lang::En => format!(
                    "Warning: the server certificate is trusted on first contact (fingerprint \
                     {text}). To pin it: server.fingerprint in the config."
                ),
            }
        );
        state.fingerprint = Some(text);
    }
    let login = match result {
        Ok(login) => login,
        Err(e) => {
            if first_use.is_some() {
                state.save(&ctx.state_dir)?;
            }
            return Err(e);
        }
    };
    let registered = login.token.is_some() && state.token.is_none();
    if let Some(token) = &login.token {
        state.token = Some(token.clone());
        client.set_token(Some(token.clone()));
    }
    if ctx.config.server.fingerprint.is_some() {
        // An explicit pin in the config wins; keep the state in step with it.
        state.fingerprint = pin.map(|p| client::format_fingerprint(&p));
    }
    state
        .save(&ctx.state_dir)
        .context(lang.pick("Zustand speichern", "saving state").to_owned())?;
    Ok(Session {
        client,
        login,
        registered,
    })
}

/// The message for a device that waits for an admin's approval.
pub fn pending_message(lang: Lang, login: &LoginResponse) -> String {
    match lang {
        Lang::De => format!(
            "Gerät {} von {} wartet auf die Freigabe durch den Administrator.",
            login.device, login.user
        ),
        Lang::En => format!(
            "Device {} of {} is waiting for an administrator's approval.",
            login.device, login.user
        ),
    }
}

/// Whether the device may back up now.
pub fn is_active(login: &LoginResponse) -> bool {
    login.status == DeviceStatus::Active
}
