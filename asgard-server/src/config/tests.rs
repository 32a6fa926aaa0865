//! The configuration: defaults, every key, errors naming key and file, durations, and the
//! `store:` section with its deprecated flat keys.

use super::*;

#[test]
fn empty_file_gives_defaults() {
    let c = Config::from_yaml("# nothing\n", Path::new("x.yaml")).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.keep_versions, 4);
    assert_eq!(c.listen, "0.0.0.0:8443");
    assert_eq!(c.registration, Registration::Open);
    assert_eq!(c.max_upload_bytes, 64 << 20);
    assert_eq!(c.upload_budget_bytes, 128 << 20);
    assert_eq!(c.upload_wait, HumanDuration::secs(10));
}

#[test]
fn an_upload_larger_than_the_budget_is_refused() {
    let err = Config::from_yaml(
        "max_upload_bytes: 1000\nupload_budget_bytes: 999\nlanguage: en\n",
        Path::new("x.yaml"),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("upload_budget_bytes"),
        "{err:#}"
    );
    let c = Config::from_yaml(
        "max_upload_bytes: 1000\nupload_budget_bytes: 1000\nupload_wait: 2s\n",
        Path::new("x.yaml"),
    )
    .unwrap();
    assert_eq!(c.upload_wait, HumanDuration::secs(2));
}

#[test]
fn parses_every_key() {
    let yaml = "data_dir: /srv/asgard\nlisten: 127.0.0.1:9000\nkeep_versions: 2\n\
                registration: approve\nenrollment_key: geheim\nlanguage: en\n\
                tls:\n  cert: /c.pem\n  key: /k.pem\nmax_upload_bytes: 1000\n";
    let c = Config::from_yaml(yaml, Path::new("x.yaml")).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/srv/asgard"));
    assert_eq!(c.keep_versions, 2);
    assert_eq!(c.registration, Registration::Approve);
    assert_eq!(c.enrollment_key.as_deref(), Some("geheim"));
    assert_eq!(c.lang(), Lang::En);
    assert_eq!(c.tls.unwrap().key, PathBuf::from("/k.pem"));
    assert_eq!(c.max_upload_bytes, 1000);
}

#[test]
fn metrics_token_is_optional_and_must_be_long() {
    assert_eq!(Config::default().metrics_token, None);
    let c = Config::from_yaml("metrics_token: 0123456789abcdef\n", Path::new("x.yaml")).unwrap();
    assert_eq!(c.metrics_token.as_deref(), Some("0123456789abcdef"));
    for bad in [
        "metrics_token: kurz\n",
        "metrics_token: \" 0123456789abcdef\"\n",
    ] {
        let err = Config::from_yaml(bad, Path::new("/etc/asgard.yaml")).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("metrics_token"), "{text}");
        assert!(text.contains("/etc/asgard.yaml"), "{text}");
    }
}

#[test]
fn unknown_key_is_an_error_naming_key_and_file() {
    let err = Config::from_yaml("keep_version: 3\n", Path::new("/etc/asgard.yaml")).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("keep_version"), "{text}");
    assert!(text.contains("/etc/asgard.yaml"), "{text}");
}

/// `config.example.yaml` documents every default: parsed, it is the default config.
#[test]
fn example_config_shows_the_defaults() {
    let text = include_str!("../../../config.example.yaml");
    let c = Config::from_yaml(text, Path::new("config.example.yaml")).unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn durations_parse_and_print() {
    let p = |t: &str| t.parse::<HumanDuration>();
    assert_eq!(p("1h").unwrap(), HumanDuration::secs(3600));
    assert_eq!(p("30m").unwrap(), HumanDuration::secs(1800));
    assert_eq!(p("0s").unwrap(), HumanDuration::secs(0));
    assert_eq!(p("1h30m").unwrap(), HumanDuration::secs(5400));
    assert_eq!(p("2d").unwrap(), HumanDuration::secs(2 * 86400));
    assert_eq!(
        p("250ms").unwrap(),
        HumanDuration(std::time::Duration::from_millis(250))
    );
    for bad in ["", "h", "5", "5x", "1h 2", "-1s", "99999999999999999999d"] {
        assert!(p(bad).is_err(), "{bad:?} parsed");
    }
    for text in ["1h", "30m", "0s", "24h", "1d", "90s", "250ms"] {
        let d = p(text).unwrap();
        assert_eq!(p(&d.to_string()).unwrap(), d, "{text}");
    }
    assert_eq!(HumanDuration::secs(86400).to_string(), "1d");
}

#[test]
fn gc_keys_parse_and_zero_interval_is_refused() {
    let c = Config::from_yaml(
        "gc_grace: 0s\ngc_interval: 1s\ndeleted_keep_days: 7\n",
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(c.gc_grace, HumanDuration::secs(0));
    assert_eq!(c.gc_interval, HumanDuration::secs(1));
    assert_eq!(c.deleted_keep_days, 7);
    let err = Config::from_yaml("gc_interval: 0s\n", Path::new("x")).unwrap_err();
    assert!(format!("{err:#}").contains("gc_interval"), "{err:#}");
    let err = Config::from_yaml("gc_grace: bald\n", Path::new("/e.yaml")).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("bald") && text.contains("/e.yaml"), "{text}");
}

#[test]
fn db_backup_keys_parse() {
    for (text, secs) in [
        ("0s", 0),
        ("90s", 90),
        ("15m", 900),
        ("24h", 86_400),
        ("7d", 604_800),
    ] {
        let d = text.parse::<HumanDuration>().unwrap();
        assert_eq!(d.0.as_secs(), secs, "{text}");
    }
    assert_eq!("24h".parse::<HumanDuration>().unwrap().to_string(), "1d");
    assert_eq!("90m".parse::<HumanDuration>().unwrap().to_string(), "90m");
    for bad in ["", "h", "5", "5x", "-1h", "1.5h", "99999999999999999999d"] {
        assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
    }
    let c = Config::from_yaml(
        "db_backup_interval: 6h\ndb_backup_keep: 3\n",
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(c.db_backup_interval.0, Duration::from_secs(6 * 3600));
    assert_eq!(c.db_backup_keep, 3);
    let err = Config::from_yaml("db_backup_interval: bald\n", Path::new("x")).unwrap_err();
    assert!(format!("{err:#}").contains("bald"), "{err:#}");
    assert!(Config::from_yaml("db_backup_keep: 0\n", Path::new("x")).is_err());
}

#[test]
fn verify_settings_are_checked() {
    let c = Config::from_yaml("verify_interval: 0s\n", Path::new("x")).unwrap();
    assert_eq!(c.verify_every(), None);
    assert_eq!(
        Config::default().verify_every(),
        Some(std::time::Duration::from_secs(86_400))
    );
    let err = Config::from_yaml("verify_interval: morgen\n", Path::new("x")).unwrap_err();
    assert!(format!("{err:#}").contains("morgen"), "{err:#}");
    assert!(Config::from_yaml("verify_sample_percent: 0\n", Path::new("x")).is_err());
    assert!(Config::from_yaml("verify_sample_percent: 101\n", Path::new("x")).is_err());
    let c = Config::from_yaml("verify_sample_percent: 100\n", Path::new("x")).unwrap();
    assert_eq!(c.verify_sample_percent, 100);
}

#[test]
fn store_section_parses_with_defaults_for_what_it_omits() {
    let c = Config::from_yaml(
        "store:\n  kind: local\n  path: /srv/chunks\n  segment_size: 8192\n",
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(c.store.kind, crate::store::StoreKind::Local);
    assert_eq!(c.store.path, Some(PathBuf::from("/srv/chunks")));
    assert_eq!(c.store.segment_size, 8192);
    assert_eq!(c.store.compact_below_percent, 50);
    assert_eq!(c.packed_options().segment_size, 8192);
    assert_eq!(
        c.store.local_path(Path::new("/data")),
        PathBuf::from("/srv/chunks")
    );
    let c = Config::from_yaml("store:\n  compact_below_percent: 0\n", Path::new("x")).unwrap();
    assert_eq!(c.store.compact_below_percent, 0);
    assert_eq!(c.store.segment_size, 64 << 20);
    assert_eq!(
        c.store.local_path(Path::new("/data")),
        PathBuf::from("/data/chunks")
    );
    assert_eq!(Config::default().store, StoreConfig::default());
}

#[test]
fn store_section_refuses_unknown_keys_kinds_and_bad_values() {
    let err =
        Config::from_yaml("store:\n  segmentsize: 4096\n", Path::new("/etc/a.yaml")).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("segmentsize") && text.contains("/etc/a.yaml"),
        "{text}"
    );
    let err = Config::from_yaml("store:\n  kind: tape\n", Path::new("x")).unwrap_err();
    assert!(format!("{err:#}").contains("tape"), "{err:#}");
    let err = Config::from_yaml("store:\n  segment_size: 4095\n", Path::new("x")).unwrap_err();
    assert!(format!("{err:#}").contains("segment_size"), "{err:#}");
    let err =
        Config::from_yaml("store:\n  compact_below_percent: 101\n", Path::new("x")).unwrap_err();
    assert!(
        format!("{err:#}").contains("compact_below_percent"),
        "{err:#}"
    );
}

/// Runs `f` with a tracing subscriber that writes into the returned text.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (result, text)
}

/// A file of earlier versions with the flat keys keeps working, with a warning that names
/// the key and the file.
#[test]
fn flat_store_keys_are_still_read_with_a_warning() {
    let (c, log) = logged(|| {
        Config::from_yaml(
            "segment_size: 65536\ncompact_below_percent: 90\n",
            Path::new("/etc/old.yaml"),
        )
    });
    let c = c.unwrap();
    assert_eq!(c.store.segment_size, 65536);
    assert_eq!(c.store.compact_below_percent, 90);
    assert_eq!(
        (c.flat_segment_size, c.flat_compact_below_percent),
        (None, None)
    );
    for key in ["segment_size", "compact_below_percent"] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(key) && l.contains("/etc/old.yaml")),
            "{log}"
        );
    }
    // One flat key next to the other setting in the section is fine.
    let (c, log) = logged(|| {
        Config::from_yaml(
            "segment_size: 8192\nstore:\n  compact_below_percent: 10\n",
            Path::new("x"),
        )
    });
    let c = c.unwrap();
    assert_eq!(
        (c.store.segment_size, c.store.compact_below_percent),
        (8192, 10)
    );
    assert!(!log.contains("compact_below_percent"), "{log}");
    // The flat spelling is never written back.
    let yaml = yaml_serde::to_string(&c).unwrap();
    assert!(
        !yaml.lines().any(|l| l.starts_with("segment_size")),
        "{yaml}"
    );
    let (c, log) = logged(|| Config::from_yaml("store:\n  segment_size: 8192\n", Path::new("x")));
    assert_eq!(c.unwrap().store.segment_size, 8192);
    assert!(log.is_empty(), "{log}");
}

#[test]
fn a_setting_both_flat_and_in_the_store_section_is_an_error_naming_both() {
    for key in ["segment_size", "compact_below_percent"] {
        let yaml = format!("{key}: 8192\nstore:\n  {key}: 8192\n");
        let err = Config::from_yaml(&yaml, Path::new("/etc/both.yaml")).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("/etc/both.yaml"), "{text}");
        assert!(text.contains(&format!("store.{key}")), "{text}");
        assert!(
            text.replace(&format!("store.{key}"), "").contains(key),
            "{text}"
        );
    }
}

#[test]
fn keep_versions_zero_is_refused() {
    assert!(Config::from_yaml("keep_versions: 0\n", Path::new("x")).is_err());
}

#[test]
fn missing_file_is_an_error_but_no_file_is_defaults() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Config::load(Some(&dir.path().join("nope.yaml"))).is_err());
    assert_eq!(Config::load(None).unwrap(), Config::default());
}
