//! Numbers, sizes and times as text for people, the same on both sides (agent and server).
//!
//! Pure functions without a time zone database: UTC times come from the civil-from-days
//! algorithm; the agent adds local times with the `time` crate on top of these.

use crate::Lang;

/// (year, month, day, hour, minute, second) in UTC from µs since the epoch.
pub fn utc_parts(us: i64) -> (i64, i64, i64, i64, i64, i64) {
    let secs = us.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_utc(us: i64) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(us);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

/// `YYYYMMDD-HHMMSS` (UTC), for file names that sort by time.
pub fn compact_utc(us: i64) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(us);
    format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}")
}

/// A number with two decimals, with a decimal comma in German.
pub fn decimal(x: f64, lang: Lang) -> String {
    let t = format!("{x:.2}");
    match lang {
        Lang::De => t.replace('.', ","),
        Lang::En => t,
    }
}

/// Divides `n` into the largest binary unit it reaches: (value, unit), or `None` below 1 KiB.
fn scaled(n: u64) -> Option<(f64, &'static str)> {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return None;
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    Some((v, UNITS[unit]))
}

/// Bytes for reports, with the exact count: `1,50 GiB (1610612736 Bytes)`.
pub fn bytes_exact(n: u64, lang: Lang) -> String {
    let word = lang.pick("Bytes", "bytes");
    match scaled(n) {
        None => format!("{n} {word}"),
        Some((v, unit)) => format!("{} {unit} ({n} {word})", decimal(v, lang)),
    }
}

/// Bytes in short, for progress and summaries: `999 B`, `1.5 KiB`, `12.0 MiB`, ...
pub fn bytes_short(n: u64) -> String {
    match scaled(n) {
        None => format!("{n} B"),
        Some((v, unit)) => format!("{v:.1} {unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_format() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_utc(951_782_400_000_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(compact_utc(1_700_000_000_000_000), "20231114-221320");
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(bytes_exact(5, Lang::De), "5 Bytes");
        assert_eq!(bytes_exact(5, Lang::En), "5 bytes");
        assert_eq!(
            bytes_exact(3 << 30, Lang::De),
            "3,00 GiB (3221225472 Bytes)"
        );
        assert_eq!(bytes_exact(1536, Lang::En), "1.50 KiB (1536 bytes)");
        assert_eq!(bytes_short(999), "999 B");
        assert_eq!(bytes_short(1536), "1.5 KiB");
        assert_eq!(bytes_short(12 << 20), "12.0 MiB");
        assert_eq!(decimal(3.0, Lang::De), "3,00");
    }
}
