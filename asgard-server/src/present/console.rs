//! The admin console's reports as text for the command line: `overview` and `runs`. The web
//! pages render the same report structs with their own templates.

use std::fmt::Write;

use asgard_core::Lang;
use asgard_core::fmt::{bytes_short, decimal, format_utc};

use crate::ops::overview::StateCounts;
use crate::ops::{DeviceRunState, OverviewReport, RunListReport, RunState};

/// A device state in words.
pub(crate) fn device_state(s: DeviceRunState, lang: Lang) -> &'static str {
    match s {
        DeviceRunState::Ok => lang.pick("ok", "ok"),
        DeviceRunState::Warnings => lang.pick("Warnungen", "warnings"),
        DeviceRunState::Failed => lang.pick("fehlgeschlagen", "failed"),
        DeviceRunState::Overdue => lang.pick("überfällig", "overdue"),
        DeviceRunState::Never => lang.pick("nie gesichert", "never"),
    }
}

/// A run state in words.
pub(crate) fn run_state(s: RunState, lang: Lang) -> &'static str {
    match s {
        RunState::Ok => lang.pick("ok", "ok"),
        RunState::Warnings => lang.pick("Warnungen", "warnings"),
        RunState::Failed => lang.pick("fehlgeschlagen", "failed"),
    }
}

fn counts(c: &StateCounts, lang: Lang) -> String {
    [
        (DeviceRunState::Ok, c.ok),
        (DeviceRunState::Warnings, c.warnings),
        (DeviceRunState::Failed, c.failed),
        (DeviceRunState::Overdue, c.overdue),
        (DeviceRunState::Never, c.never),
    ]
    .iter()
    .map(|(s, n)| format!("{} {n}", device_state(*s, lang)))
    .collect::<Vec<_>>()
    .join(", ")
}

/// A short summary of a stored GC or verify report (JSON): its main counts, or "never".
fn last_job(v: Option<&serde_json::Value>, keys: &[&str], lang: Lang) -> String {
    let Some(v) = v else {
        return lang.pick("noch nie", "never").to_owned();
    };
    let mut parts = Vec::new();
    for k in keys {
        if let Some(x) = v.get(*k).filter(|x| !x.is_null()) {
            parts.push(format!("{k} {x}"));
        }
    }
    if parts.is_empty() {
        v.to_string()
    } else {
        parts.join(", ")
    }
}

/// `overview` as text.
pub(crate) fn overview(r: &OverviewReport, lang: Lang) -> String {
    let mut out = String::new();
    let ratio = |x: Option<f64>| x.map_or_else(|| "–".to_owned(), |x| decimal(x, lang));
    let _ = writeln!(
        out,
        "{}: {} ({} {})   {}: {}   {}: {}",
        lang.pick("Benutzer", "Users"),
        r.users,
        r.disabled_users,
        lang.pick("gesperrt", "disabled"),
        lang.pick("Geräte", "Devices"),
        r.devices,
        lang.pick("Wartende Anmeldungen", "Pending registrations"),
        r.pending.len()
    );
    let _ = writeln!(
        out,
        "{}: {}",
        lang.pick("Letzte Sicherung", "Last backup"),
        counts(&r.states, lang)
    );
    let s = &r.stats;
    let _ = writeln!(
        out,
        "{}: {}   {}: {}   {}: {}   {}: {}",
        lang.pick("Logisch", "Logical"),
        bytes_short(s.logical_bytes),
        lang.pick("Gespeichert", "Stored"),
        bytes_short(s.stored_bytes),
        lang.pick("Dedupe-Faktor", "Dedupe ratio"),
        ratio(s.dedupe_ratio),
        lang.pick("Kompressionsfaktor", "Compression ratio"),
        ratio(s.compression_ratio)
    );
    match &r.space {
        Some(sp) => {
            let _ = writeln!(
                out,
                "{}: {} {} {}",
                lang.pick("Datenverzeichnis", "Data directory"),
                bytes_short(sp.available_bytes),
                lang.pick("frei von", "free of"),
                bytes_short(sp.total_bytes)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "{}: –",
                lang.pick("Datenverzeichnis", "Data directory")
            );
        }
    }
    let _ = writeln!(
        out,
        "{}: {}",
        lang.pick("Letzte GC", "Last GC"),
        last_job(
            s.last_gc.as_ref(),
            &[
                "versions_dropped",
                "chunks_deleted",
                "bytes_freed",
                "dry_run"
            ],
            lang
        )
    );
    let _ = writeln!(
        out,
        "{}: {}",
        lang.pick("Letzte Prüfung", "Last verify"),
        last_job(
            s.last_verify.as_ref(),
            &["chunks_checked", "damaged_count", "missing_count"],
            lang
        )
    );
    let _ = writeln!(
        out,
        "{}: {}",
        lang.pick("Registrierung", "Registration"),
        super::accounts::mode(r.registration.mode, lang)
    );
    if !r.pending.is_empty() {
        let _ = writeln!(
            out,
            "\n{}:",
            lang.pick("Wartende Anmeldungen", "Pending registrations")
        );
        for p in &r.pending {
            let _ = writeln!(
                out,
                "  {}\t{}\t{} {}",
                p.user,
                p.device,
                lang.pick("seit", "since"),
                format_utc(p.since_us)
            );
        }
    }
    if !r.device_runs.is_empty() {
        let _ = writeln!(out, "\n{}:", lang.pick("Geräte", "Devices"));
    }
    for d in &r.device_runs {
        let last = d.last_run_us.map_or_else(|| "–".to_owned(), format_utc);
        let _ = writeln!(
            out,
            "  {}\t{}\t{}\t{}: {last}{}",
            d.user,
            d.device,
            device_state(d.state, lang),
            lang.pick("letzter Lauf", "last run"),
            d.last_errors
                .first()
                .map(|e| format!("\t{e}"))
                .unwrap_or_default()
        );
    }
    out
}

/// `runs` as text: one line per run, its errors indented below it.
pub(crate) fn runs(r: &RunListReport, lang: Lang) -> String {
    let mut out = String::new();
    let first = r.filter.offset + u64::from(!r.runs.is_empty());
    let _ = writeln!(
        out,
        "{} {}–{} {} {}",
        lang.pick("Läufe", "Runs"),
        first,
        r.filter.offset + r.runs.len() as u64,
        lang.pick("von", "of"),
        r.total
    );
    for run in &r.runs {
        let s = &run.summary;
        let _ = writeln!(
            out,
            "#{}\t{}\t{}\t{}\t{}\t{} {}, {} {}, {} {}\t{} {}\t{:.1} s",
            run.run_id,
            format_utc(run.received_us),
            run.user,
            run.device,
            run_state(run.state, lang),
            s.files_seen,
            lang.pick("Dateien", "files"),
            s.files_new + s.files_changed,
            lang.pick("neu/geändert", "new/changed"),
            s.files_skipped,
            lang.pick("übersprungen", "skipped"),
            bytes_short(s.bytes_sent),
            lang.pick("gesendet", "sent"),
            s.duration_s
        );
        for e in &run.errors {
            let _ = writeln!(out, "    {e}");
        }
    }
    out
}
