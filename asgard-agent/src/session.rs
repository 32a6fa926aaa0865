//! Everything a command needs before it talks to the server: the resolved settings, the state
//! file, the pinned client, and the login (registration on first contact).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use asgard_core::protocol::{DeviceStatus, LoginRequest, LoginResponse, PROTOCOL_VERSION};
use asgard_core::{Lang, names};
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
    connect_with(ctx, None).await
}

/// The user and device names in normal form (`asgard_core::names`), as the server stores them.
fn identity(ctx: &Ctx) -> anyhow::Result<(String, String)> {
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
    let user = names::normalize(&user).map_err(|e| anyhow!(present::bad_name(&user, &e, lang)))?;
    let device =
        names::normalize(&device).map_err(|e| anyhow!(present::bad_name(&device, &e, lang)))?;
    Ok((user, device))
}

/// A name from an older state file in normal form (as it was when it has none).
fn normal(name: &str) -> String {
    names::normalize(name).unwrap_or_else(|_| name.to_owned())
}

/// [`connect`]; with `code` (the admin's re-enrollment code after `device reset`) it logs in
/// without the stored token and gets the device back.
pub(crate) async fn connect_with(ctx: &Ctx, code: Option<&str>) -> anyhow::Result<Session> {
    let lang = ctx.lang;
    let (user, device) = identity(ctx)?;

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
    // The server's identity is its certificate, not its URL: under a new URL the token is kept
    // and sent only to a server that shows the pinned certificate (else the login below fails
    // with a hard error and the state stays as it was). Without any pin the token would go to
    // whoever answers there: refused, the token stays.
    if !state.server_url.is_empty() && state.server_url != url {
        if state.token.is_some() && pin.is_none() {
            bail!(
                "{}",
                present::server_changed_unpinned(&state.server_url, &url, lang)
            );
        }
        eprintln!("{}", present::server_changed(&state.server_url, &url, lang));
    }
    if state.token.is_some() && (normal(&state.user) != user || normal(&state.device) != device) {
        eprintln!(
            "{}",
            present::token_of_another((&state.user, &state.device), (&user, &device), lang)
        );
        state.token = None;
        state.approval_code = None;
    }
    state.server_url = url.clone();
    state.user = user.clone();
    state.device = device.clone();

    let mut client = Client::new(&url, pin, lang)?;
    // A code login is a registration: no token goes with it.
    client.set_token(if code.is_some() {
        None
    } else {
        state.token.clone()
    });
    let req = LoginRequest {
        protocol_version: PROTOCOL_VERSION,
        user,
        device,
        os: std::env::consts::OS.to_owned(),
        os_version: platform::os_version(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        enrollment_key: ctx.config.enrollment_key.clone(),
        code: code.map(str::to_owned),
    };
    let result = client.login(&req).await;

    // A certificate trusted on first use is remembered even if the login itself failed.
    let first_use = client.pin().first_use();
    if let Some(fp) = first_use {
        let text = client::format_fingerprint(&fp);
        eprintln!("{}", present::trusted_on_first_use(&text, lang));
        state.fingerprint = Some(text);
    }
    let mut login = match result {
        Ok(login) => login,
        Err(e) => {
            // A refused registration's token is dead: forget it, so that the next login is a
            // new registration (as the message tells the user).
            let refused = e
                .downcast_ref::<client::ServerRefusal>()
                .is_some_and(|r| r.code == "registration_refused");
            if refused {
                state.token = None;
                state.approval_code = None;
            }
            if first_use.is_some() || refused {
                state.save(&ctx.state_dir)?;
            }
            return Err(e);
        }
    };
    let registered = login.token.is_some() && login.status == DeviceStatus::Active;
    if let Some(token) = &login.token {
        state.token = Some(token.clone());
        client.set_token(Some(token.clone()));
    }
    state.user = login.user.clone();
    state.device = login.device.clone();
    match (&login.approval_code, login.approval_expires_us) {
        _ if login.status == DeviceStatus::Active => state.approval_code = None,
        (Some(c), Some(until)) => state.approval_code = Some((c.clone(), until)),
        // Still pending with the code from before: show that one.
        _ => {
            if let Some((c, until)) = &state.approval_code {
                login.approval_code = Some(c.clone());
                login.approval_expires_us = Some(*until);
            }
        }
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

/// `login`: connects (registering the device on first contact, or getting it back with the
/// admin's `code` after a reset) and says who is logged in where.
pub async fn login(
    ctx: &Ctx,
    code: Option<String>,
    token: Option<String>,
) -> anyhow::Result<ExitCode> {
    if let Some(token) = token {
        adopt_token(ctx, token.trim())?;
    }
    let code = match code {
        Some(typed) => Some(
            names::normalize_code(&typed)
                .ok_or_else(|| anyhow!(present::bad_code(&typed, ctx.lang)))?,
        ),
        None => None,
    };
    let s = connect_with(ctx, code.as_deref()).await?;
    let (user, device) = (&s.login.user, &s.login.device);
    let url = s.client.base_url();
    if is_active(&s.login) {
        println!(
            "{}",
            present::logged_in(s.registered, user, device, url, ctx.lang)
        );
    } else {
        println!("{}", pending_message(ctx.lang, &s.login));
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes a token the admin issued for this device (`asgard-server device token`) into the state
/// file, in place of the one it had; the login that follows checks it with the server.
fn adopt_token(ctx: &Ctx, token: &str) -> anyhow::Result<()> {
    if token.is_empty() || token.len() > 200 || token.chars().any(char::is_whitespace) {
        bail!("{}", present::bad_token(ctx.lang));
    }
    let (user, device) = identity(ctx)?;
    let mut state = State::load(&ctx.state_dir)?.unwrap_or_default();
    state.user = user;
    state.device = device;
    state.token = Some(token.to_owned());
    state.approval_code = None;
    state.save(&ctx.state_dir).context(
        ctx.lang
            .pick("Zustand speichern", "saving state")
            .to_owned(),
    )?;
    Ok(())
}

/// `device approve CODE`: this (active) device approves a pending device of the same user.
pub async fn approve_device(ctx: &Ctx, code: String) -> anyhow::Result<ExitCode> {
    let lang = ctx.lang;
    let Some(code) = names::normalize_code(&code) else {
        bail!("{}", present::bad_code(&code, lang));
    };
    let s = connect(ctx).await?;
    if !is_active(&s.login) {
        bail!("{}", present::approver_not_active(lang));
    }
    let answer = s.client.approve(&code).await?;
    println!("{}", present::approved(&answer.device, &s.login.user, lang));
    Ok(ExitCode::SUCCESS)
}

/// The message for a device that waits for approval (with its code when the server gave one).
pub(crate) fn pending_message(lang: Lang, login: &LoginResponse) -> String {
    present::pending(
        &login.device,
        &login.user,
        login
            .approval_code
            .as_deref()
            .zip(login.approval_expires_us),
        lang,
    )
}

/// Whether the device may back up now.
pub(crate) fn is_active(login: &LoginResponse) -> bool {
    login.status == DeviceStatus::Active
}
