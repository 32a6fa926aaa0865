use super::*;

#[test]
fn open_registration_is_a_warning_only_off_loopback_and_without_key() {
    let addr = |a: &str| vec![a.parse::<std::net::SocketAddr>().unwrap()];
    assert!(exposed(&addr("0.0.0.0:8443")));
    assert!(exposed(&addr("[::]:8443")));
    assert!(exposed(&addr("192.168.1.5:8443")));
    assert!(!exposed(&addr("127.0.0.1:8443")));
    assert!(!exposed(&addr("[::1]:8443")));
    let (_d, db) = crate::testutil::open_db();
    let mut config = Config::default();
    assert!(open_without_key(&config, &db));
    config.enrollment_key = Some("k".into());
    assert!(!open_without_key(&config, &db));
    config.enrollment_key = None;
    config.registration = crate::config::Registration::Approve;
    assert!(!open_without_key(&config, &db));
    // A mode set at run time counts over the file's.
    let open = crate::ops::registration::Change {
        mode: Some(crate::config::Registration::Open),
        ..Default::default()
    };
    crate::ops::registration::set(&db, &config, &open, 1).unwrap();
    assert!(open_without_key(&config, &db));
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

fn help_of(lang: Lang, path: &[&str]) -> String {
    use clap::CommandFactory;
    let mut cmd = cli_help::localize(Cli::command(), lang, cli_help::SERVER);
    let mut sub = &mut cmd;
    for name in path {
        sub = sub.find_subcommand_mut(name).unwrap();
    }
    sub.render_long_help().to_string()
}

#[test]
fn every_command_and_argument_has_an_english_help() {
    use clap::CommandFactory;
    let keys = cli_help::keys(&Cli::command());
    for key in &keys {
        assert!(
            cli_help::english_text(cli_help::SERVER, key).is_some(),
            "no English help for `{key}` in cli_help::SERVER"
        );
    }
    for (key, _) in cli_help::SERVER {
        assert!(
            keys.iter().any(|k| k == key),
            "English help for unknown `{key}`"
        );
    }
}

#[test]
fn help_is_german_by_default_and_english_on_request() {
    use clap::CommandFactory;
    fn paths(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for s in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(s.get_name().to_owned());
            paths(s, p, out);
        }
    }
    let mut all = Vec::new();
    paths(&Cli::command(), Vec::new(), &mut all);
    assert!(all.len() > 15, "{all:?}");
    for lang in [Lang::De, Lang::En] {
        cli_help::localize(Cli::command(), lang, cli_help::SERVER).debug_assert();
    }
    for path in &all {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let de = help_of(Lang::De, &path);
        for word in ["Aufruf:", "Optionen:", "Hilfe zeigen"] {
            assert!(de.contains(word), "{path:?}: no {word}\n{de}");
        }
        for word in [
            "Usage:",
            "Options:",
            "Print help",
            "Arguments:",
            "Commands:",
        ] {
            assert!(!de.contains(word), "{path:?}: {word}\n{de}");
        }
        let en = help_of(Lang::En, &path);
        for word in ["Usage:", "Options:", "Print help"] {
            assert!(en.contains(word), "{path:?}: no {word}\n{en}");
        }
        for word in [
            "Aufruf", "Optionen", "Hilfe", "Datei", "Geräte", " oder ", " der ",
        ] {
            assert!(!en.contains(word), "{path:?}: {word}\n{en}");
        }
    }
}

#[test]
fn localized_command_line_still_parses() {
    use clap::{CommandFactory, FromArgMatches};
    for lang in [Lang::De, Lang::En] {
        let cmd = cli_help::localize(Cli::command(), lang, cli_help::SERVER);
        let m = cmd
            .try_get_matches_from([
                "asgard-server",
                "gc",
                "--dry-run",
                "--grace",
                "30m",
                "--data-dir",
                "/x",
            ])
            .unwrap();
        let Cmd::Gc {
            dry_run, common, ..
        } = Cli::from_arg_matches(&m).unwrap().cmd
        else {
            panic!("not gc");
        };
        assert!(dry_run);
        assert_eq!(common.data_dir, Some("/x".into()));
    }
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

/// `db-restore` of a copy written by a newer server refuses in plain words naming the copy, and
/// leaves the live database as it was.
#[test]
fn db_restore_of_a_newer_database_is_refused_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let live = crate::db::Db::open(&data.join("asgard.redb")).unwrap();
    live.set_meta_json("marker", &7).unwrap();
    drop(live);
    let copy = dir.path().join("newer.redb");
    drop(crate::db::Db::open(&copy).unwrap());
    let newer = crate::db::mark_schema_newer(&copy);
    let config = Config {
        data_dir: data.clone(),
        ..Config::default()
    };
    for (lang, words) in [
        (Lang::De, "neueren AsgardBackup-Version"),
        (Lang::En, "written by a newer AsgardBackup version"),
    ] {
        let e = format!("{:#}", db_restore_in(&config, &copy, lang).unwrap_err());
        assert!(e.contains(words), "{e}");
        assert!(e.contains(copy.to_str().unwrap()), "{e}");
        assert!(
            e.to_lowercase().contains(&format!("version {newer}")),
            "{e}"
        );
    }
    let live = crate::db::Db::open(&data.join("asgard.redb")).unwrap();
    assert_eq!(live.get_meta_json::<i32>("marker").unwrap(), Some(7));
}
