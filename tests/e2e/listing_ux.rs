//! What the user reads (issue 12): the time `list` prints for a version selects that version with
//! `restore --at`; `list` names its columns and the time zone; names that are not UTF-8 are shown
//! escaped; "1 Datei", not "1 Dateien"; and the help of both binaries is German by default and
//! English with `LANG=en*`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use asgard_e2e::*;

/// The version lines of `path` in a text `list`: (id, the time exactly as printed).
fn listed_times(list: &str, path: &str) -> Vec<(u64, String)> {
    let mut lines = list.lines().skip_while(|l| *l != path).skip(1);
    let mut out = Vec::new();
    for line in lines.by_ref() {
        if !line.starts_with("  ") {
            break;
        }
        let mut cols = line.trim_start().split("  ");
        let id = cols.next().unwrap().trim().parse().unwrap();
        let time = cols.next().unwrap().trim().to_owned();
        out.push((id, time));
    }
    assert!(!out.is_empty(), "no versions of {path} in:\n{list}");
    out
}

/// Acceptance 4: the exact time string `list` printed for a version, given to `restore --at`,
/// restores that version, also when versions follow each other within one second (`list` then
/// shows microseconds), and in a time zone that is not UTC.
#[test]
fn restore_at_the_time_list_printed_restores_that_version() {
    let server = Server::start();
    let agent = Agent::new("ute", &server);
    agent.ok(["login"]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("docs");
    std::fs::create_dir_all(&root).unwrap();
    let file = root.join("note.txt");
    // Back up four contents in quick succession: some may share a wall-clock second.
    let contents: Vec<String> = (1..=4).map(|i| format!("content {i}\n")).collect();
    for c in &contents {
        std::fs::write(&file, c).unwrap();
        agent.backup(&root);
    }
    // The agent in UTC+02:00 (a POSIX TZ, no tzdata needed).
    let in_zone = |args: &[&OsStr]| {
        let out = agent
            .command()
            .env("TZ", "XYZ-2")
            .args(args)
            .output()
            .unwrap();
        assert_success(&out);
        text(&out.stdout)
    };
    let list = in_zone(&["list".as_ref(), root.as_os_str()]);
    let heading = list.lines().nth(1).unwrap();
    assert!(heading.contains("Version"), "{list}");
    assert!(heading.contains("Zeit (UTC+02:00)"), "{list}");
    let listed = listed_times(&list, file.to_str().unwrap());
    assert_eq!(listed.len(), 4, "{list}");
    // Newest first in the listing; the contents were backed up oldest first.
    let seconds: Vec<&str> = listed.iter().map(|(_, t)| &t[..19]).collect();
    let shared = (1..seconds.len()).any(|i| seconds[i] == seconds[i - 1]);
    eprintln!("versions within one second: {shared}\n{list}");
    for ((id, time), want) in listed.iter().zip(contents.iter().rev()) {
        let to = tempfile::tempdir().unwrap();
        let out = agent
            .command()
            .env("TZ", "XYZ-2")
            .args(["restore".as_ref(), file.as_os_str()])
            .args(["--to".as_ref(), to.path().as_os_str()])
            .args(["--at", time])
            .output()
            .unwrap();
        assert_success(&out);
        assert_eq!(
            std::fs::read_to_string(to.path().join("note.txt")).unwrap(),
            *want,
            "restore --at {time:?} (version {id}) restored another version\n{list}"
        );
    }
    // The time to the second covers the whole second: it selects the newest version committed
    // within it (the first one listed with that second).
    for (i, (_, time)) in listed.iter().enumerate() {
        let second = &time[..19];
        let newest = listed
            .iter()
            .position(|(_, t)| t.starts_with(second))
            .unwrap();
        if newest != i {
            continue;
        }
        let to = tempfile::tempdir().unwrap();
        let out = agent
            .command()
            .env("TZ", "XYZ-2")
            .args(["restore".as_ref(), file.as_os_str()])
            .args(["--to".as_ref(), to.path().as_os_str()])
            .args(["--at", second])
            .output()
            .unwrap();
        assert_success(&out);
        assert_eq!(
            std::fs::read_to_string(to.path().join("note.txt")).unwrap(),
            contents[contents.len() - 1 - i],
            "restore --at {second:?} did not restore the newest version of that second\n{list}"
        );
    }
}

/// A name that is not UTF-8 is shown `\xHH`-escaped in `list` and in the restore's messages, and
/// one restored file is "1 Datei" / "1 file".
#[test]
fn odd_names_are_escaped_and_one_file_is_singular() {
    let server = Server::start();
    let agent = Agent::new("ole", &server);
    agent.ok(["login"]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("odd");
    std::fs::create_dir_all(&root).unwrap();
    let name = OsStr::from_bytes(b"caf\xe9.txt");
    let file = root.join(name);
    std::fs::write(&file, b"latin-1\n").unwrap();
    agent.backup(&root);

    let list = text(&agent.ok(["list".as_ref(), root.as_os_str()]).stdout);
    let shown = format!("{}/caf\\xe9.txt", root.display());
    assert!(list.lines().any(|l| l == shown), "{list}");
    assert!(!list.contains('\u{fffd}'), "{list}");
    // The folder is an entry of its own (issue 12), so two paths; the file alone is one.
    assert!(list.trim_end().ends_with("2 Pfade."), "{list}");
    let one = text(&agent.ok(["list".as_ref(), file.as_os_str()]).stdout);
    assert!(one.lines().any(|l| l == shown), "{one}");
    assert!(one.trim_end().ends_with("1 Pfad."), "{one}");

    // A conflict at the target names the file, escaped.
    let to = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(to.path().join("odd")).unwrap();
    std::fs::write(to.path().join("odd").join(name), b"other\n").unwrap();
    let out = agent.restore_to(&root, to.path(), &[]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("caf\\xe9.txt"), "{said}");
    assert!(!said.contains('\u{fffd}'), "{said}");

    // One file restored: singular, in German and in English.
    let fresh = tempfile::tempdir().unwrap();
    let out = agent.restore_to(&file, fresh.path(), &[]);
    assert_success(&out);
    let de = text(&out.stdout);
    assert!(de.contains("Wiederhergestellt: 1 Datei ("), "{de}");
    let again = tempfile::tempdir().unwrap();
    let out = agent
        .command()
        .env("LANG", "en_US.UTF-8")
        .args(["restore".as_ref(), file.as_os_str()])
        .args(["--to".as_ref(), again.path().as_os_str()])
        .output()
        .unwrap();
    assert_success(&out);
    let en = text(&out.stdout);
    assert!(en.contains("Restored: 1 file ("), "{en}");
}

/// `help` output of a binary with `LANG` set to `lang`.
fn help(bin: &std::path::Path, args: &[&str], lang: &str) -> String {
    let out = Command::new(bin)
        .args(args)
        .arg("--help")
        .env("LANG", lang)
        .env_remove("LC_ALL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{bin:?} {args:?} --help: {out:?}");
    text(&out.stdout)
}

/// `asgard-server --help` and every subcommand's: German by default (no `LANG`, or another
/// language), English with `LANG=en*`.
#[test]
fn server_help_is_german_by_default_and_english_with_lang_en() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["fingerprint"],
        &["verify"],
        &["device"],
        &["device", "list"],
        &["device", "approve"],
        &["device", "reset"],
        &["user"],
        &["user", "list"],
        &["user", "set-keep"],
        &["user", "clear-keep"],
        &["gc"],
        &["stats"],
        &["db-backup"],
        &["locate"],
        &["db-restore"],
    ];
    let bin = server_bin();
    for args in commands {
        for lang in ["", "de_DE.UTF-8", "C.UTF-8"] {
            let de = help(&bin, args, lang);
            assert!(de.contains("Aufruf:"), "{args:?} LANG={lang}:\n{de}");
            assert!(de.contains("Optionen:"), "{args:?} LANG={lang}:\n{de}");
            assert!(!de.contains("Usage:"), "{args:?} LANG={lang}:\n{de}");
            assert!(!de.contains("Print help"), "{args:?} LANG={lang}:\n{de}");
        }
        for lang in ["en_US.UTF-8", "en"] {
            let en = help(&bin, args, lang);
            assert!(en.contains("Usage:"), "{args:?} LANG={lang}:\n{en}");
            assert!(en.contains("Options:"), "{args:?} LANG={lang}:\n{en}");
            assert!(!en.contains("Aufruf"), "{args:?} LANG={lang}:\n{en}");
        }
    }
    // Words of the texts themselves, not only clap's headings.
    assert!(help(&bin, &["gc"], "").contains("Speicherbereinigung"));
    assert!(help(&bin, &["gc"], "en_US.UTF-8").contains("Garbage collection"));
    assert!(help(&bin, &["device", "reset"], "").contains("Einmal-Code"));
    assert!(help(&bin, &["device", "reset"], "en_GB.UTF-8").contains("one-time code"));
}

/// `restore --help` says where `--to` puts a folder and a single file, in both languages.
#[test]
fn restore_help_documents_where_to_puts_things() {
    let bin = agent_bin();
    let de = help(&bin, &["restore"], "de_DE.UTF-8");
    assert!(de.contains("ZIEL/<letzter Ordner des Pfads>/…"), "{de}");
    assert!(de.contains("eine einzelne Datei in ZIEL/<Name>"), "{de}");
    assert!(!de.contains("Usage:"), "{de}");
    let en = help(&bin, &["restore"], "en_US.UTF-8");
    assert!(en.contains("DEST/<last folder of the path>/…"), "{en}");
    assert!(en.contains("a single file in DEST/<name>"), "{en}");
    assert!(!en.contains("Ordner"), "{en}");
}
