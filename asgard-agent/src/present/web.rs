//! The texts of `asgard-agent web`.

use asgard_core::Lang;

/// The link, to open in a browser.
pub(crate) fn link(url: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Wiederherstellung im Browser – dieser Link meldet Sie an (nur einmal gültig, \
             10 Minuten lang):\n\n  {url}\n"
        ),
        Lang::En => format!(
            "Restore in the browser – this link signs you in (works once, for 10 minutes):\n\n  \
             {url}\n"
        ),
    }
}

/// The browser was started.
pub(crate) fn opened(lang: Lang) -> &'static str {
    lang.pick(
        "Der Link wurde im Browser geöffnet.",
        "The link was opened in the browser.",
    )
}

/// No browser could be started.
pub(crate) fn not_opened(lang: Lang) -> &'static str {
    lang.pick(
        "Kein Browser gefunden: bitte den Link oben in einen Browser kopieren.",
        "No browser found: please copy the link above into a browser.",
    )
}

/// The web password was set.
pub(crate) fn password_set(user: &str, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "Web-Passwort für {user} gesetzt. Anmeldung im Browser unter /login auf dem Server."
        ),
        Lang::En => {
            format!("Web password of {user} set. Sign in with a browser at /login on the server.")
        }
    }
}

pub(crate) fn password_prompt(lang: Lang) -> &'static str {
    lang.pick("Neues Web-Passwort: ", "New web password: ")
}

pub(crate) fn password_again(lang: Lang) -> &'static str {
    lang.pick("Passwort wiederholen: ", "Repeat the password: ")
}

pub(crate) fn passwords_differ(lang: Lang) -> &'static str {
    lang.pick(
        "Die beiden Passwörter stimmen nicht überein.",
        "The two passwords do not match.",
    )
}

pub(crate) fn no_password_on_stdin(lang: Lang) -> &'static str {
    lang.pick(
        "Auf der Standardeingabe kam kein Passwort an.",
        "No password arrived on standard input.",
    )
}
