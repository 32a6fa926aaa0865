//! Maintenance reports as text: verify, garbage collection, statistics, database copies, chunk
//! locations, devices and users. Each function renders a report struct (data, as the ops layer
//! returns it) in the language passed with the call.

use std::fmt::Write;

use asgard_core::Lang;
use asgard_core::fmt::{bytes_exact, decimal};

use crate::db::FullStats;
use crate::ops::accounts::DeviceAction;
use crate::ops::dbbackup::{BackupReport, RestoreReport};
use crate::ops::gc::GcReport;
use crate::ops::verify::{BadKind, DamageList, DeviceDamage, LIST_CAP, VerifyReport};
use crate::ops::{DeviceChange, KeepChange, LocateReport};

/// The report as text for the admin (German by default).
pub(crate) fn verify_report(report: &VerifyReport, lang: Lang) -> String {
    let mut out = String::new();
    let scope = match (&report.user, report.sample_percent) {
        (Some(u), _) => match lang {
            Lang::De => format!("Benutzer {u}"),
            Lang::En => format!("user {u}"),
        },
        (None, _) => lang.pick("alle Benutzer", "all users").to_owned(),
    };
    let sample = match report.sample_percent {
        Some(p) => match lang {
            Lang::De => format!("Stichprobe {p} %"),
            Lang::En => format!("sample {p} %"),
        },
        None => lang.pick("alle Chunks", "every chunk").to_owned(),
    };
    let _ = writeln!(
        out,
        "{} ({scope}, {sample}):",
        lang.pick("Prüfung abgeschlossen", "Verify finished")
    );
    let rows: [(&str, &str, String); 7] = [
        (
            "Chunks im Umfang",
            "chunks in scope",
            report.chunks_in_scope.to_string(),
        ),
        (
            "Chunks gelesen",
            "chunks read",
            report.chunks_checked.to_string(),
        ),
        (
            "Versionen geprüft",
            "versions checked",
            report.versions_checked.to_string(),
        ),
        ("beschädigt", "damaged", report.damaged_count.to_string()),
        ("fehlend", "missing", report.missing_count.to_string()),
        (
            "nicht im Index",
            "not in the index",
            report.unindexed_count.to_string(),
        ),
        (
            "Dauer",
            "duration",
            format!("{:.1} s", report.duration_ms as f64 / 1000.0),
        ),
    ];
    for (de, en, v) in rows {
        let _ = writeln!(out, "  {:<20} {v}", format!("{}:", lang.pick(de, en)));
    }
    if report.unreferenced_bad > 0 {
        let _ = writeln!(
            out,
            "  {:<20} {}",
            lang.pick("davon unbenutzt:", "of these unused:"),
            report.unreferenced_bad
        );
    }
    if report.marks_cleared > 0 {
        let _ = writeln!(
            out,
            "  {:<20} {}",
            lang.pick("wieder in Ordnung:", "fine again:"),
            report.marks_cleared
        );
    }
    for d in &report.damaged {
        let _ = writeln!(
            out,
            "{} {} ({})",
            lang.pick("Beschädigter Chunk:", "Damaged chunk:"),
            d.id,
            d.reason
        );
    }
    for id in &report.missing {
        let _ = writeln!(
            out,
            "{} {id}",
            lang.pick("Fehlender Chunk:", "Missing chunk:")
        );
    }
    for id in &report.unindexed {
        let _ = writeln!(
            out,
            "{} {id}",
            lang.pick(
                "Chunk fehlte im Index (als beschädigt eingetragen):",
                "Chunk was missing from the index (recorded as bad):"
            )
        );
    }
    if report.affected_versions_count > 0 {
        let _ = writeln!(
            out,
            "{} ({}):",
            lang.pick(
                "Betroffene Dateiversionen (bis zur Reparatur durch die nächste Sicherung eines \
                 Agenten, der die Daten noch hat)",
                "Affected file versions (until the next backup of an agent that still has the \
                 data repairs them)"
            ),
            report.affected_versions_count
        );
        if report.paths_withheld {
            device_counts(&mut out, &report.affected_by_device, lang);
        } else {
            let _ = writeln!(
                out,
                "  {}",
                lang.pick(
                    "Benutzer\tGerät\tVersion\tPfad",
                    "user\tdevice\tversion\tpath"
                )
            );
        }
        for v in &report.affected_versions {
            let _ = writeln!(
                out,
                "  {}\t{}\t{}\t{}",
                v.user, v.device, v.version_id, v.path
            );
        }
    }
    let cut = report.damaged.len() as u64 != report.damaged_count
        || report.missing.len() as u64 != report.missing_count
        || report.unindexed.len() as u64 != report.unindexed_count
        || (!report.paths_withheld
            && report.affected_versions.len() as u64 != report.affected_versions_count);
    if cut {
        let _ = writeln!(
            out,
            "{}",
            match lang {
                Lang::De => format!("(Listen gekürzt auf je {LIST_CAP} Einträge)"),
                Lang::En => format!("(lists cut at {LIST_CAP} entries each)"),
            }
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if report.clean() {
            lang.pick("Ergebnis: alles in Ordnung.", "Result: all is well.")
        } else {
            lang.pick(
                "Ergebnis: Schäden gefunden. Betroffene Chunks sind markiert; Agenten laden sie \
                 bei der nächsten Sicherung erneut hoch.",
                "Result: damage found. Affected chunks are marked; agents upload them again at \
                 their next backup.",
            )
        }
    );
    out
}

/// A garbage collection report for people, in `lang`.
pub(crate) fn gc_report(r: &GcReport, lang: Lang) -> String {
    let mut out = String::new();
    if r.dry_run {
        out.push_str(lang.pick(
            "Probelauf: nichts wurde geändert. Ein echter Lauf würde:\n",
            "Dry run: nothing was changed. A real pass would have:\n",
        ));
    }
    let rows: [(&str, &str, u64); 8] = [
        (
            "Versionen entfernt (Aufbewahrung)",
            "versions pruned (retention)",
            r.versions_pruned,
        ),
        (
            "Chunks als Kandidaten markiert",
            "chunks marked as candidates",
            r.candidates_marked,
        ),
        ("Chunks freigegeben", "chunks freed", r.chunks_freed),
        ("Bytes freigegeben", "bytes freed", r.bytes_freed),
        (
            "verwaiste Dateien gelöscht",
            "orphan files deleted",
            r.orphans_removed,
        ),
        ("Chunks geprüft", "chunks scanned", r.chunks_scanned),
        (
            "Segmente verdichtet",
            "segments compacted",
            r.segments_compacted,
        ),
        (
            "Bytes durch Verdichtung frei",
            "bytes reclaimed by compaction",
            r.bytes_reclaimed,
        ),
    ];
    for (de, en, n) in rows {
        out.push_str(&format!("{}: {n}\n", lang.pick(de, en)));
    }
    out.push_str(&format!(
        "{}: {:.1} s\n",
        lang.pick("Dauer", "duration"),
        r.duration_ms as f64 / 1000.0
    ));
    out
}

/// The statistics as text: one aligned `key: value` line each.
pub(crate) fn stats(s: &FullStats, lang: Lang) -> String {
    let ratio = |r: Option<f64>| match r {
        Some(r) => decimal(r, lang),
        None => "–".to_owned(),
    };
    let blob = |b: &Option<serde_json::Value>| match b {
        Some(v) => v.to_string(),
        None => lang.pick("noch nie", "never").to_owned(),
    };
    let rows: [(&str, String); 12] = [
        (lang.pick("Benutzer", "Users"), s.users.to_string()),
        (lang.pick("Geräte", "Devices"), s.devices.to_string()),
        (lang.pick("Versionen", "Versions"), s.versions.to_string()),
        ("Chunks", s.chunks.to_string()),
        (
            lang.pick("Logische Größe", "Logical size"),
            bytes_exact(s.logical_bytes, lang),
        ),
        (
            lang.pick("Gespeichert", "Stored"),
            bytes_exact(s.stored_bytes, lang),
        ),
        (
            lang.pick("Eindeutige Daten", "Unique data"),
            bytes_exact(s.plain_bytes, lang),
        ),
        (
            lang.pick("Dedupe-Faktor", "Dedupe ratio"),
            ratio(s.dedupe_ratio),
        ),
        (
            lang.pick("Kompressionsfaktor", "Compression ratio"),
            ratio(s.compression_ratio),
        ),
        (
            lang.pick("Beschädigte Chunks", "Bad chunks"),
            s.bad_chunks.to_string(),
        ),
        (lang.pick("Letzte GC", "Last GC"), blob(&s.last_gc)),
        (
            lang.pick("Letzte Prüfung", "Last verify"),
            blob(&s.last_verify),
        ),
    ];
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let pad = width - k.chars().count();
        out.push_str(&format!("{k}:{} {v}\n", " ".repeat(pad)));
    }
    out
}

/// What `db-backup` did.
pub(crate) fn db_backup(r: &BackupReport, lang: Lang) -> String {
    let mut out = match lang {
        Lang::De => format!(
            "Metadaten-Datenbank gesichert: {} ({}, {} Einträge)\n",
            r.path.display(),
            bytes_exact(r.bytes, lang),
            r.rows
        ),
        Lang::En => format!(
            "Metadata database backed up: {} ({}, {} rows)\n",
            r.path.display(),
            bytes_exact(r.bytes, lang),
            r.rows
        ),
    };
    for removed in &r.removed {
        out.push_str(&format!(
            "{} {}\n",
            lang.pick("Alte Sicherung entfernt:", "Removed old backup:"),
            removed.display()
        ));
    }
    out
}

/// What `db-restore` did, and what the admin should do next.
pub(crate) fn db_restore(r: &RestoreReport, lang: Lang) -> String {
    let mut out = match lang {
        Lang::De => format!(
            "Metadaten-Datenbank wiederhergestellt: {} ({} Versionen).\n",
            r.database.display(),
            r.versions
        ),
        Lang::En => format!(
            "Metadata database restored: {} ({} versions).\n",
            r.database.display(),
            r.versions
        ),
    };
    if let Some(p) = &r.previous {
        out.push_str(&format!(
            "{} {}\n",
            lang.pick(
                "Die bisherige Datenbank liegt unter",
                "The previous database is kept as"
            ),
            p.display()
        ));
    }
    out.push_str(lang.pick(
        "Empfehlung: asgard-server verify prüft, ob jeder Chunk, den diese Datenbank kennt, im Speicher liegt.\n\
         Versionen nach dem Stand der Kopie fehlen: Damit die Agenten auch unveränderte Dateien erneut sichern, \
         auf jedem Gerät den Ordner files-cache im Zustandsverzeichnis des Agenten löschen.\n",
        "Recommended: asgard-server verify checks that every chunk this database knows is in the store.\n\
         Versions newer than the copy are missing: for the agents to back up unchanged files again, \
         delete the folder files-cache in each device's agent state directory.\n",
    ));
    out
}

/// Chunk locations, one tab-separated line each (`id  file  offset  length`), then the ids the
/// store lacks.
pub(crate) fn locate(r: &LocateReport, lang: Lang) -> String {
    let mut text = String::new();
    for c in &r.chunks {
        let _ = writeln!(
            text,
            "{}\t{}\t{}\t{}",
            c.id,
            c.location.path.display(),
            c.location.offset,
            c.location.len
        );
    }
    for m in &r.missing {
        let _ = writeln!(
            text,
            "{m}\t{}",
            lang.pick("nicht im Speicher", "not in the store")
        );
    }
    text
}

/// What `device approve` or `device reset` did.
pub(crate) fn device_change(c: &DeviceChange, lang: Lang) -> String {
    let (user, device) = (&c.user, &c.device);
    let line = match (c.action, lang) {
        (DeviceAction::Approved, Lang::De) => {
            format!("Gerät „{device}“ von Benutzer „{user}“ ist freigegeben.")
        }
        (DeviceAction::Approved, Lang::En) => {
            format!("Device \"{device}\" of user \"{user}\" is approved.")
        }
        (DeviceAction::Reset, Lang::De) => format!(
            "Gerät „{device}“ von Benutzer „{user}“ ist zurückgesetzt: Sein altes Token gilt nicht mehr, seine Dateien bleiben erhalten.\n\
             Einmal-Code für den Benutzer: {code}\n\
             Geben Sie ihn dem Benutzer (nicht per unverschlüsselter Mail). Auf dem Gerät: asgard-agent login --code {code}\n\
             Der Code gilt einmal, bis {until}. Ohne ihn wartet eine neue Anmeldung dieses Geräts auf Freigabe.",
            code = c.code.as_deref().unwrap_or("-"),
            until = c
                .code_expires_us
                .map(asgard_core::fmt::format_utc)
                .unwrap_or_default(),
        ),
        (DeviceAction::Revoked | DeviceAction::NewToken | DeviceAction::Refused, _) => {
            return super::accounts::device_change(c, lang);
        }
        (DeviceAction::Reset, Lang::En) => format!(
            "Device \"{device}\" of user \"{user}\" is reset: its old token is no longer valid, its files are kept.\n\
             One-time code for the user: {code}\n\
             Give it to the user (not by unencrypted mail). On the device: asgard-agent login --code {code}\n\
             The code is valid once, until {until}. Without it, a new login of this device waits for approval.",
            code = c.code.as_deref().unwrap_or("-"),
            until = c
                .code_expires_us
                .map(asgard_core::fmt::format_utc)
                .unwrap_or_default(),
        ),
    };
    line + "\n"
}

/// What `user set-keep` or `user clear-keep` did.
pub(crate) fn keep_change(c: &KeepChange, lang: Lang) -> String {
    let user = &c.user;
    let line = match (c.keep_versions, lang) {
        (Some(versions), Lang::De) => format!(
            "Benutzer „{user}“ behält {versions} Versionen pro Datei (ab dem nächsten Commit bzw. der nächsten Speicherbereinigung)."
        ),
        (Some(versions), Lang::En) => format!(
            "User \"{user}\" keeps {versions} versions per file (from the next commit or garbage collection)."
        ),
        (None, Lang::De) => format!(
            "Für Benutzer „{user}“ gilt wieder keep_versions der Konfiguration ({}).",
            c.default_keep_versions
        ),
        (None, Lang::En) => format!(
            "keep_versions of the configuration ({}) applies to user \"{user}\" again.",
            c.default_keep_versions
        ),
    };
    line + "\n"
}

/// The affected versions per user and device (the console's form of the list: no paths).
fn device_counts(out: &mut String, list: &[DeviceDamage], lang: Lang) {
    let _ = writeln!(
        out,
        "  {}",
        lang.pick("Benutzer\tGerät\tVersionen", "user\tdevice\tversions")
    );
    for d in list {
        let _ = writeln!(out, "  {}\t{}\t{}", d.user, d.device, d.versions);
    }
}

/// What the last verify found wrong (`DamageList`): chunk ids and counts, no paths.
pub(crate) fn verify_damage(d: &DamageList, lang: Lang) -> String {
    if d.is_empty() {
        return lang
            .pick(
                "Die letzte Prüfung fand keine Schäden.\n",
                "The last verify found no damage.\n",
            )
            .to_owned();
    }
    let mut out = match lang {
        Lang::De => format!(
            "Die letzte Prüfung ({}) fand {} schlechte Chunks und {} betroffene Dateiversionen.\n",
            asgard_core::fmt::format_utc(d.started_us),
            d.chunks_total,
            d.affected_versions
        ),
        Lang::En => format!(
            "The last verify ({}) found {} bad chunks and {} affected file versions.\n",
            asgard_core::fmt::format_utc(d.started_us),
            d.chunks_total,
            d.affected_versions
        ),
    };
    for c in &d.chunks {
        let kind = match c.kind {
            BadKind::Damaged => lang.pick("beschädigt", "damaged"),
            BadKind::Missing => lang.pick("fehlt", "missing"),
            BadKind::Unindexed => lang.pick("fehlte im Index", "missing from the index"),
        };
        let _ = writeln!(out, "{}\t{kind}", c.id);
    }
    if (d.chunks.len() as u64) < d.chunks_total {
        let _ = writeln!(
            out,
            "{}",
            match lang {
                Lang::De => format!("(die ersten {} von {})", d.chunks.len(), d.chunks_total),
                Lang::En => format!("(the first {} of {})", d.chunks.len(), d.chunks_total),
            }
        );
    }
    device_counts(&mut out, &d.devices, lang);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_text_is_german_by_default() {
        let s = FullStats {
            users: 2,
            logical_bytes: 3 << 30,
            plain_bytes: 1 << 30,
            dedupe_ratio: Some(3.0),
            ..FullStats::default()
        };
        let de = stats(&s, Lang::De);
        assert!(de.contains("Benutzer:"), "{de}");
        assert!(de.contains("3,00 GiB (3221225472 Bytes)"), "{de}");
        assert!(de.contains("Dedupe-Faktor:"), "{de}");
        assert!(de.contains("3,00\n"), "{de}");
        assert!(de.contains("noch nie"), "{de}");
        let en = stats(&s, Lang::En);
        assert!(en.contains("Users:") && en.contains("3.00 GiB"), "{en}");
        assert_eq!(bytes_exact(5, Lang::De), "5 Bytes");
    }
}
