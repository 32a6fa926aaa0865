//! The command-line help in the reader's language.
//!
//! clap's derive takes each help text from a doc comment, one text for every language; ours are
//! German, the default. [`localize`] walks the command tree: for English it replaces each
//! command's about, each argument's help and the texts after the help from [`SERVER`], keyed by
//! the command path and the argument id; for German it renames clap's own English words (the
//! headings, the help and version flags, the `help` command). The language comes from `LANG`
//! only: the help is shown before any configuration is read. `cli`'s tests check that every command
//! and argument has its English text, so a new flag cannot stay German-only. (The same walker
//! serves the agent, `asgard-agent/src/present/help.rs`: the two binaries share no crate but core,
//! and core knows nothing of clap.)
//!
//! Keys: `""` is the top level, `"gc"` and `"device reset"` are commands (their about; a text
//! with a blank line is the long about, its first paragraph the short one), `"gc dry_run"` an
//! argument by id (the field name; `"device reset user"` for a positional).

use asgard_core::Lang;
use clap::builder::Resettable;
use clap::{Arg, ArgAction, Command};

/// The help of `cmd` (a whole tree) in `lang`, using `english` for the English texts.
pub(crate) fn localize(cmd: Command, lang: Lang, english: &[(&str, &'static str)]) -> Command {
    let mut cmd = walk(cmd, "", lang, english);
    // Build first, so the help and version flags and the `help` command exist, then name them.
    cmd.build();
    if lang == Lang::De {
        builtins_de(cmd)
    } else {
        cmd
    }
}

/// The English text of `key`, if any.
pub(crate) fn english_text<'a>(english: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    english.iter().find(|(k, _)| *k == key).map(|(_, t)| *t)
}

/// The key of a subcommand below `path`.
fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path} {name}")
    }
}

/// Every key a command tree (not yet built) needs an English text for: each command's about and
/// each argument's help. For the tests.
#[cfg(test)]
pub(crate) fn keys(cmd: &Command) -> Vec<String> {
    fn collect(cmd: &Command, path: &str, out: &mut Vec<String>) {
        out.push(path.to_owned());
        for a in cmd.get_arguments() {
            out.push(format!("{path} {}", a.get_id()).trim_start().to_owned());
        }
        for s in cmd.get_subcommands() {
            if s.get_name() != "help" {
                collect(s, &child(path, s.get_name()), out);
            }
        }
    }
    let mut out = Vec::new();
    collect(cmd, "", &mut out);
    out
}

fn walk(mut cmd: Command, path: &str, lang: Lang, english: &[(&str, &'static str)]) -> Command {
    match lang {
        Lang::En => {
            if let Some(text) = english_text(english, path) {
                let (short, long) = split(text);
                cmd = match long {
                    Some(long) => cmd.about(short).long_about(long),
                    None => cmd.about(short).long_about(Resettable::Reset),
                };
            }
            if let Some(after) = english_text(english, format!("{path} after").trim_start()) {
                cmd = cmd.after_long_help(after);
            }
        }
        Lang::De => {
            cmd = cmd
                .help_template(
                    "{before-help}{about-with-newline}\nAufruf: {usage}\n\n{all-args}{after-help}",
                )
                .subcommand_help_heading("Befehle")
                .subcommand_value_name("BEFEHL")
                .disable_help_flag(true)
                .arg(
                    Arg::new("help")
                        .short('h')
                        .long("help")
                        .action(ArgAction::Help)
                        .help("Hilfe zeigen (-h kurz, --help ausführlich)")
                        .help_heading("Optionen")
                        .display_order(usize::MAX),
                );
            if cmd.get_version().is_some() {
                cmd = cmd.disable_version_flag(true).arg(
                    Arg::new("version")
                        .short('V')
                        .long("version")
                        .action(ArgAction::Version)
                        .help("Version zeigen")
                        .help_heading("Optionen")
                        .display_order(usize::MAX),
                );
            }
        }
    }
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .collect();
    for id in ids {
        let key = format!("{path} {id}");
        let key = key.trim_start();
        let text = english_text(english, key);
        cmd = cmd.mut_arg(&id, |a| arg(a, lang, text));
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        let sub_path = child(path, &name);
        cmd = cmd.mut_subcommand(&name, |s| walk(s, &sub_path, lang, english));
    }
    cmd
}

fn arg(a: Arg, lang: Lang, english: Option<&str>) -> Arg {
    match (lang, english) {
        (Lang::En, Some(text)) => {
            let (short, long) = split(text);
            match long {
                Some(long) => a.help(short).long_help(long),
                None => a.help(short).long_help(Resettable::Reset),
            }
        }
        (Lang::En, None) => a,
        (Lang::De, _) if a.get_help_heading().is_some() => a,
        (Lang::De, _) if a.is_positional() => a.help_heading("Argumente"),
        (Lang::De, _) => a.help_heading("Optionen"),
    }
}

/// A text's first paragraph, and the whole text as the long form when it has more than one.
fn split(text: &str) -> (String, Option<String>) {
    match text.split_once("\n\n") {
        Some((first, _)) => (first.to_owned(), Some(text.to_owned())),
        None => (text.to_owned(), None),
    }
}

/// The `help` command in German (after `build`, where it exists). clap's help and version
/// flags are replaced before the build instead ([`walk`]): changing an argument after the build
/// would confuse clap's index of flags.
fn builtins_de(mut cmd: Command) -> Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    // `mut_subcommand` moves the command to the end: going through all in order keeps the order.
    for name in names {
        cmd = cmd.mut_subcommand(&name, |s| {
            if name == "help" {
                s.about("Diese Hilfe oder die eines Befehls zeigen")
            } else {
                builtins_de(s)
            }
        });
    }
    cmd
}

/// The server's help in English (the German texts are the doc comments in `cli.rs`).
pub(crate) const SERVER: &[(&str, &str)] = &[
    ("", "AsgardBackup server"),
    ("serve", "Run the server"),
    ("serve config", CONFIG),
    ("serve data_dir", DATA_DIR),
    (
        "serve listen",
        "Listen address, e.g. 0.0.0.0:8443 (port 0 = any free port)",
    ),
    (
        "fingerprint",
        "Print the SHA-256 fingerprint of the server certificate",
    ),
    ("fingerprint config", CONFIG),
    ("fingerprint data_dir", DATA_DIR),
    (
        "verify",
        "Re-read stored chunks and check them against their ids\n\n\
         Re-reads stored chunks and checks them against their ids; lists damaged and missing \
         chunks and the file versions affected. Exit code 0: all is well; 1: damage found; 2: \
         verify could not run.",
    ),
    ("verify config", CONFIG),
    ("verify data_dir", DATA_DIR),
    (
        "verify sample",
        "Read only a random sample of this many percent of the chunks (chunks already marked bad \
         are always read)",
    ),
    (
        "verify user",
        "Only the chunks and file versions of this user",
    ),
    ("verify json", "Print the report as JSON"),
    ("device", "Manage devices"),
    ("device list", "List all devices"),
    ("device list config", CONFIG),
    ("device list data_dir", DATA_DIR),
    ("device list json", JSON),
    (
        "device approve",
        "Approve a pending device (a new one, or a new registration under an existing name)",
    ),
    ("device approve user", "User name"),
    ("device approve device", "Device name"),
    ("device approve config", CONFIG),
    ("device approve data_dir", DATA_DIR),
    ("device approve json", JSON),
    (
        "device reset",
        "Revoke a device's token and print a one-time code for logging in again\n\n\
         Revokes the device's token and prints a one-time code with which it logs in again \
         (`asgard-agent login --code`); its files stay.",
    ),
    ("device reset user", "User name"),
    ("device reset device", "Device name"),
    ("device reset config", CONFIG),
    ("device reset data_dir", DATA_DIR),
    ("device reset json", JSON),
    (
        "device revoke",
        "Revoke a device's access (without a one-time code; its files stay)",
    ),
    ("device revoke user", "User name"),
    ("device revoke device", "Device name"),
    ("device revoke config", CONFIG),
    ("device revoke data_dir", DATA_DIR),
    ("device revoke json", JSON),
    (
        "device token",
        "Give a device a new token (shown only now); the old one is no longer valid",
    ),
    ("device token user", "User name"),
    ("device token device", "Device name"),
    ("device token config", CONFIG),
    ("device token data_dir", DATA_DIR),
    ("device token json", JSON),
    ("user", "Manage users (retention, disabling, deletion)"),
    (
        "user list",
        "List users with devices, versions, sizes, own keep_versions and whether disabled",
    ),
    ("user list config", CONFIG),
    ("user list data_dir", DATA_DIR),
    ("user list json", JSON),
    (
        "user set-keep",
        "Set how many content versions per file this user keeps (instead of keep_versions)",
    ),
    ("user set-keep user", "User name"),
    (
        "user set-keep versions",
        "Number of content versions per file (1 or more)",
    ),
    ("user set-keep config", CONFIG),
    ("user set-keep data_dir", DATA_DIR),
    ("user set-keep json", JSON),
    (
        "user clear-keep",
        "Remove the user's own setting: keep_versions of the configuration applies again",
    ),
    ("user clear-keep user", "User name"),
    ("user clear-keep config", CONFIG),
    ("user clear-keep data_dir", DATA_DIR),
    ("user clear-keep json", JSON),
    (
        "user disable",
        "Disable a user: all their devices are refused (their files stay)",
    ),
    ("user disable user", "User name"),
    ("user disable config", CONFIG),
    ("user disable data_dir", DATA_DIR),
    ("user disable json", JSON),
    ("user enable", "Enable a disabled user again"),
    ("user enable user", "User name"),
    ("user enable config", CONFIG),
    ("user enable data_dir", DATA_DIR),
    ("user enable json", JSON),
    // Issue 14 (uauth).
    (
        "user link",
        "Make a restore link for the browser (for a user without a computer)\n\n\
         The link signs the user in once in the browser (for 10 minutes), to download their \
         files. It is recorded in the audit log; the user's start page names the admin.",
    ),
    ("user link user", "User name"),
    ("user link config", CONFIG),
    ("user link data_dir", DATA_DIR),
    ("user link json", JSON),
    (
        "user delete",
        "Delete a user with all devices, tokens, versions and runs\n\n\
         Deletes the user with all devices, tokens, paths, versions, runs and pending \
         registrations. The next garbage collection removes the chunks nobody else uses. Repeat \
         the name with --confirm to confirm.",
    ),
    ("user delete user", "User name"),
    ("user delete confirm", "The user name once more, to confirm"),
    ("user delete config", CONFIG),
    ("user delete data_dir", DATA_DIR),
    ("user delete json", JSON),
    (
        "registration",
        "Show and change the registration of new devices at run time",
    ),
    (
        "registration show",
        "Show the registration mode and where it comes from",
    ),
    ("registration show config", CONFIG),
    ("registration show data_dir", DATA_DIR),
    ("registration show json", JSON),
    (
        "registration set",
        "Change the registration mode and enrollment key at run time (wins over the \
         configuration file)",
    ),
    ("registration set mode", "open, approve or closed"),
    (
        "registration set enrollment_key",
        "A new enrollment key (at least 12 characters)",
    ),
    (
        "registration set no_enrollment_key",
        "No enrollment key needed any more",
    ),
    (
        "registration set reset",
        "Forget the run-time setting: the configuration file applies again",
    ),
    ("registration set config", CONFIG),
    ("registration set data_dir", DATA_DIR),
    ("registration set json", JSON),
    (
        "overview",
        "Overview: users, devices and their last run, storage, last GC and verify",
    ),
    ("overview config", CONFIG),
    ("overview data_dir", DATA_DIR),
    ("overview json", "Print JSON instead of text"),
    ("runs", "The agents' run reports, newest first"),
    ("runs config", CONFIG),
    ("runs data_dir", DATA_DIR),
    ("runs user", "Only the runs of this user"),
    ("runs device", "Only the runs of this device"),
    (
        "runs state",
        "Only runs in this state: ok, warnings or failed",
    ),
    ("runs offset", "Skip this many of the newest runs"),
    ("runs limit", "Show at most this many runs (1–500)"),
    ("runs json", JSON),
    (
        "admin",
        "Manage the admins of the web interface (also while the server runs)",
    ),
    ("admin create", "Create an admin of the web interface"),
    ("admin create name", "The admin's name (a-z, 0-9, . _ - @)"),
    ("admin create password_stdin", PASSWORD_STDIN),
    ("admin create config", CONFIG),
    ("admin create data_dir", DATA_DIR),
    ("admin create json", JSON),
    (
        "admin passwd",
        "Change an admin's password (its sessions end)",
    ),
    ("admin passwd name", ADMIN_NAME),
    ("admin passwd password_stdin", PASSWORD_STDIN),
    ("admin passwd config", CONFIG),
    ("admin passwd data_dir", DATA_DIR),
    ("admin passwd json", JSON),
    ("admin list", "List all admins"),
    ("admin list config", CONFIG),
    ("admin list data_dir", DATA_DIR),
    ("admin list json", JSON),
    (
        "admin delete",
        "Delete an admin, with its API tokens and sessions",
    ),
    ("admin delete name", ADMIN_NAME),
    ("admin delete config", CONFIG),
    ("admin delete data_dir", DATA_DIR),
    ("admin delete json", JSON),
    (
        "admin totp",
        "Turn on an admin's second factor (TOTP): shows a QR code and recovery codes",
    ),
    ("admin totp name", ADMIN_NAME),
    ("admin totp off", "Turn the second factor off"),
    ("admin totp config", CONFIG),
    ("admin totp data_dir", DATA_DIR),
    ("admin totp json", JSON),
    (
        "admin token",
        "Print a new API token of an admin for scripts (shown only once)",
    ),
    ("admin token name", ADMIN_NAME),
    ("admin token config", CONFIG),
    ("admin token data_dir", DATA_DIR),
    ("admin token json", JSON),
    (
        "gc",
        "Garbage collection now: prune versions by the retention rules, remove unreferenced \
         chunks\n\n\
         Prunes versions by the retention rules and removes unreferenced chunks. Works on a \
         running server's data directory too; the server also does it every gc_interval.",
    ),
    ("gc config", CONFIG),
    ("gc data_dir", DATA_DIR),
    ("gc dry_run", "Only report what would be removed"),
    (
        "gc grace",
        "Grace period for chunks uploaded or reported present recently (e.g. 1h, 30m, 0s); \
         default gc_grace of the configuration",
    ),
    ("gc json", "Print the report as JSON"),
    (
        "stats",
        "Show statistics (works on a running server's data directory too)",
    ),
    ("stats config", CONFIG),
    ("stats data_dir", DATA_DIR),
    ("stats json", "Print JSON instead of text"),
    (
        "db-backup",
        "Write a consistent copy of the metadata database (also while the server runs)",
    ),
    ("db-backup config", CONFIG),
    ("db-backup data_dir", DATA_DIR),
    (
        "db-backup to",
        "Target file, or a folder for a file named by time; default \
         <data_dir>/db-backups/asgard-YYYYMMDD-HHMMSS.redb (keeping the newest db_backup_keep)",
    ),
    ("db-backup json", "Print JSON instead of text"),
    (
        "locate",
        "Show where chunks are stored\n\n\
         Shows where chunks are stored: segment file, offset and length of the stored bytes (all \
         chunks when no id is given; also while the server runs).",
    ),
    ("locate config", CONFIG),
    ("locate data_dir", DATA_DIR),
    ("locate ids", "Chunk ids (64 hex digits)"),
    ("locate json", "Print JSON instead of text"),
    (
        "db-restore",
        "Replace the metadata database with a copy made by db-backup (the server must be stopped)",
    ),
    ("db-restore config", CONFIG),
    ("db-restore data_dir", DATA_DIR),
    ("db-restore from", "The copy to restore"),
];

const CONFIG: &str = "Configuration file (YAML); without it the built-in defaults apply";
const DATA_DIR: &str = "Data directory (overrides the configuration)";
const JSON: &str = "Print JSON instead of text";
const ADMIN_NAME: &str = "The admin's name";
const PASSWORD_STDIN: &str =
    "Read the password from the first line of standard input (for scripts)";
