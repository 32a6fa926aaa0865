//! Everything a command needs before it talks to the server: the resolved settings, the state
//! file, the pinned client, and the login (registration on first contact).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use asgard_core::Lang;
use asgard_core::protocol::{DeviceStatus, LoginRequest, LoginResponse, PROTOCOL_VERSION};
use time::UtcOffset;

use crate::client::{self, Client};
use crate::config::Config;
use crate::platform;
use crate::present::session as present;
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
pub(crate) struct Session {
    pub(crate) client: Client,
    pub(crate) login: LoginResponse,
    /// True when this run registered the device.
    pub(crate) registered: bool,
}

/// Connects, registers the device if it has no token for this server yet, and logs in.
pub(crate) async fn connect(ctx: &Ctx) -> anyhow::Result<Session> {
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
        bail!("{}", present::no_server(lang));
    };
    let url = url.trim_end_matches('/').to_owned();
    if !state.server_url.is_empty() && state.server_url != url {
        eprintln!("{}", present::server_changed(&state.server_url, lang));
        state = State::default();
    } else if state.token.is_some() && (state.user != user || state.device != device) {
        eprintln!(
            "{}",
            present::token_of_another((&state.user, &state.device), (&user, &device), lang)
        );
        state.token = None;
    }
    state.server_url = url.clone();
    state.user = user.clone();
    state.device = device.clone();

    let pin = match &ctx.config.server.fingerprint {
        Some(text) => Some(
            client::parse_fingerprint(text)
                .ok_or_else(|| anyhow!(present::bad_fingerprint(text, lang)))?,
        ),
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
        eprintln!("{}", present::trusted_on_first_use(&text, lang));
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

/// `login`: connects (registering the device on first contact) and says who is logged in where.
pub async fn login(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let s = connect(ctx).await?;
    let (user, device) = (&s.login.user, &s.login.device);
    let url = s.client.base_url();
    println!(
        "{}",
        present::logged_in(s.registered, user, device, url, ctx.lang)
    );
    if !is_active(&s.login) {
        println!("{}", pending_message(ctx.lang, &s.login));
    }
    Ok(ExitCode::SUCCESS)
}

/// The message for a device that waits for an admin's approval.
pub(crate) fn pending_message(lang: Lang, login: &LoginResponse) -> String {
    present::pending(&login.device, &login.user, lang)
}

/// Whether the device may back up now.
pub(crate) fn is_active(login: &LoginResponse) -> bool {
    login.status == DeviceStatus::Active
}
