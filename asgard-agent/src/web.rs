//! `asgard-agent web`: the way to the graphical restore. Asks the server (with the device token)
//! for a one-time login link of this device's user, prints it and opens it in the default
//! browser where there is one. `--set-password` sets the user's web password for `/login`
//! instead.

use std::io::BufRead;
use std::process::{ExitCode, Stdio};

use anyhow::bail;

use crate::present::web as present;
use crate::session::{Ctx, connect};

/// What `web` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct WebArgs {
    /// Print the link only.
    pub no_open: bool,
    /// Set the web password instead of making a link.
    pub set_password: bool,
    /// Read the password from the first line of standard input.
    pub password_stdin: bool,
}

/// `asgard-agent web`
pub async fn run(ctx: &Ctx, args: WebArgs) -> anyhow::Result<ExitCode> {
    let lang = ctx.lang;
    if args.set_password {
        let password = read_password(args.password_stdin, lang)?;
        let s = connect(ctx).await?;
        s.client.web_password(&password).await?;
        println!("{}", present::password_set(&s.login.user, lang));
        return Ok(ExitCode::SUCCESS);
    }
    let s = connect(ctx).await?;
    let answer = s.client.web_link().await?;
    // The server's public URL when it has one; else the address this agent reaches it by
    // (right behind NAT, where the server cannot know it).
    let url = answer
        .url
        .unwrap_or_else(|| format!("{}{}", s.client.base_url(), answer.path));
    println!("{}", present::link(&url, lang));
    if !args.no_open {
        if open_browser(&url) {
            println!("{}", present::opened(lang));
        } else {
            println!("{}", present::not_opened(lang));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The new password: the first line of standard input, or typed twice without echo.
fn read_password(stdin: bool, lang: asgard_core::Lang) -> anyhow::Result<String> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            bail!("{}", present::no_password_on_stdin(lang));
        }
        return Ok(password);
    }
    let first = rpassword::prompt_password(present::password_prompt(lang))?;
    let second = rpassword::prompt_password(present::password_again(lang))?;
    if first != second {
        bail!("{}", present::passwords_differ(lang));
    }
    Ok(first)
}

/// Whether `url` is safe to hand to a shell's `start` (no quoting or command characters).
fn plain_url(url: &str) -> bool {
    url.starts_with("https://")
        && url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/[]%".contains(&b))
}

/// Opens `url` in the default browser without waiting for it; false when there is none (or the
/// URL has characters no shell should see).
fn open_browser(url: &str) -> bool {
    if !plain_url(url) {
        return false;
    }
    let mut cmd = if crate::platform::WINDOWS {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", "", url]);
        c
    } else {
        let mut c = std::process::Command::new("xdg-open");
        c.arg(url);
        c
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_links_go_to_a_shell() {
        assert!(plain_url(
            "https://backup.example:8443/link/0123456789abcdef0123456789abcdef"
        ));
        assert!(plain_url("https://[::1]:8443/link/ab"));
        for bad in [
            "http://backup.example/link/ab",
            "https://x/link/a&calc",
            "https://x/link/a\"b",
            "https://x/link/a b",
            "https://x/link/a|b",
            "https://x/link/a^b",
        ] {
            assert!(!plain_url(bad), "{bad}");
        }
    }
}
