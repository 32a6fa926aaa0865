//! The command-line help in the reader's language.
//!
//! clap's derive takes each help text from a doc comment, one text for every language; ours are
//! German, the default. [`localize`] walks the command tree: for English it replaces each
//! command's about, each argument's help and the texts after the help from [`AGENT`], keyed by
//! the command path and the argument id; for German it renames clap's own English words (the
//! headings, the help and version flags, the `help` command). The language comes from `LANG`
//! only: the help is shown before any configuration is read. The binary's tests check that every
//! command and argument has its English text, so a new flag cannot stay German-only.
//!
//! Keys: `""` is the top level, `"restore"` and `"device approve"` are commands (their about; a
//! text with a blank line is the long about, its first paragraph the short one),
//! `"restore --to"` an argument by id (`"list path"` for a positional, ids are the field names:
//! `"state_dir"`), `"plan after"` the text after the long help.

use asgard_core::Lang;
use clap::builder::Resettable;
use clap::{Arg, ArgAction, Command};

/// The help of `cmd` (a whole tree) in `lang`, using `english` for the English texts.
pub fn localize(cmd: Command, lang: Lang, english: &[(&str, &'static str)]) -> Command {
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
pub fn english_text<'a>(english: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
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
pub fn keys(cmd: &Command) -> Vec<String> {
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

/// The agent's help in English (the German texts are the doc comments in `main.rs`).
pub const AGENT: &[(&str, &str)] = &[
    ("", "AsgardBackup agent: back up and restore files"),
    ("config", "Configuration file (YAML)"),
    ("server", "Server URL, e.g. https://backup.example:8443"),
    (
        "state_dir",
        "Folder for the agent's state (token, fingerprint)",
    ),
    (
        "login",
        "Log in to the server (registers the device the first time)",
    ),
    (
        "login token",
        "Take over a new device token from the administrator (asgard-server device token)",
    ),
    (
        "login code",
        "The administrator's one-time code after \"device reset\": brings the device back with \
         all its files",
    ),
    ("device", "Manage the devices of the same user"),
    (
        "device approve",
        "Approve a waiting new device with the code it shows",
    ),
    ("device approve code", "Code such as K7MQ-4XTD"),
    ("backup", "Back up files"),
    (
        "backup paths",
        "Files or folders; without them the backup plan (see `plan`)",
    ),
    ("backup json", "Summary as JSON"),
    (
        "backup system",
        "Back up system-wide (as root): /home, /etc, /opt, /srv, /root",
    ),
    ("plan", "Show what is backed up, and why something is not"),
    ("plan after", PLAN_JSON_HELP_EN),
    ("plan json", "As JSON (shape: see --help)"),
    (
        "plan system",
        "The whole machine instead of the user folders (Linux, as root)",
    ),
    (
        "list",
        "Show backed-up files and their versions\n\n\
         Each path with its versions, newest first: number (for `restore --version`), time of the \
         backup in the local time zone (for `restore --at`), size or kind. A time to the second \
         covers everything backed up within that second; where two versions fall within the same \
         second, `list` shows microseconds.",
    ),
    ("list path", "Only this path and what lies below it"),
    ("list json", "As JSON (times in UTC, RFC 3339)"),
    ("list device", "Files of another device of yours"),
    ("list all_devices", "Files of all your devices"),
    (
        "restore",
        "Restore a file or folder\n\n\
         Without --to everything goes back to its place. With --to DEST a folder ends up in\n\
         DEST/<last folder of the path>/… and a single file in DEST/<name>:\n\
         \n\
         \x20 restore /home/anna/Photos --to /tmp/r      gives /tmp/r/Photos/…\n\
         \x20 restore /home/anna/letter.txt --to /tmp/r  gives /tmp/r/letter.txt\n\
         \n\
         Existing files with other content are left alone (conflict), unless --overwrite.",
    ),
    ("restore path", "Path as backed up"),
    (
        "restore version",
        "Exactly this version (number from `list`)",
    ),
    (
        "restore at",
        "State at this time: RFC 3339 or local time \"YYYY-MM-DD HH:MM[:SS[.ffffff]]\"; a time \
         to the second covers the whole second (as `list` shows it)",
    ),
    (
        "restore to",
        "Into this folder instead of the original place: a folder goes to DEST/<last folder>/…, \
         a file to DEST/<name>",
    ),
    ("restore overwrite", "Replace existing files that differ"),
    ("restore device", "From another device of yours"),
    (
        "restore numeric_owner",
        "Set owners by the recorded number, not by name (as root, like tar)",
    ),
    ("restore json", "Summary as JSON"),
    // Issue 14 (uauth).
    (
        "web",
        "Restore in the browser: opens your backups signed in, in the browser\n\n\
         Gets a sign-in link from the server (works once, for 10 minutes), shows it and opens it \
         in the default browser. There every version of every device of yours can be found and \
         downloaded, one by one or as a ZIP.",
    ),
    ("web no_open", "Only show the link, open no browser"),
    (
        "web set_password",
        "Instead set a web password for signing in at /login",
    ),
    (
        "web password_stdin",
        "Read the password from the first line of standard input",
    ),
    ("schedule", "Set up, show or remove regular backups"),
    (
        "schedule install",
        "Set up the schedule (systemd timer, crontab line or Windows task)",
    ),
    (
        "schedule install every",
        "Interval: 5m … 30m, 1h … 12h, 1d, 7d",
    ),
    (
        "schedule install system",
        "System timer as root, backs up with `backup --system`",
    ),
    (
        "schedule status",
        "Show whether a schedule is set up, and the next run",
    ),
    ("schedule status system", "The system timer (as root)"),
    ("schedule remove", "Remove the schedule"),
    ("schedule remove system", "The system timer (as root)"),
];

/// `plan --help`'s description of `--json`, in English (the German one is `plan::JSON_HELP`).
const PLAN_JSON_HELP_EN: &str = "\
Shape of --json (stable; paths are strings, paths that are not UTF-8 {\"hex\": \"...\"}):
  {
    \"windows\": false,                 Windows rules (case does not matter)
    \"scope\": \"user\" | \"system\",
    \"cross_filesystems\": false,
    \"included\": [                     what is backed up
      {\"path\": \"/home/anna\", \"origin\": \"default\" | \"configured\" | \"optional\",
       \"option\": \"docker\"}          (only with origin optional)
    ],
    \"excluded\": [                     what is not backed up, and why (reason)
      {\"path\": \"/proc\", \"reason\": \"blacklist\", \"rule\": \"/proc\",
       \"origin\": \"default\" | \"configured\" | \"agent\"},
      {\"path\": \"/var/lib/docker\", \"reason\": \"not_enabled\", \"option\": \"docker\"},
      {\"path\": \"/srv\", \"reason\": \"missing\"},
      {\"path\": \"/root\", \"reason\": \"unreadable\", \"error\": \"...\"},
      {\"path\": \"/home/anna/nas\", \"reason\": \"other_filesystem\"}
    ],
    \"rules\": [                        the active exclusion rules
      {\"rule\": \"*.tmp\", \"pattern\": \"**/*.tmp\", \"kind\": \"prefix\" | \"glob\",
       \"dir_only\": false, \"origin\": \"configured\"}
    ]
  }";
