//! Times shown to people and parsed from them.
//!
//! The wire carries microseconds (commit times) and nanoseconds (file mtimes) since the epoch. JSON
//! output uses RFC 3339 in UTC; human output uses local time. The local UTC offset must be looked up
//! before the async runtime starts threads (`time` refuses it in a multithreaded process), so `main`
//! resolves it once and passes it down.

use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const UTC_MICROS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
const UTC_NANOS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
const LOCAL_SECONDS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const LOCAL_MINUTES: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]");
const LOCAL_MICROS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");
const LOCAL_FRACTION: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");

/// The local offset at startup, or UTC with a flag when it could not be determined.
pub fn local_offset() -> (UtcOffset, bool) {
    match UtcOffset::current_local_offset() {
        Ok(o) => (o, true),
        Err(_) => (UtcOffset::UTC, false),
    }
}

fn from_ns(ns: i128) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(ns).ok()
}

/// A commit time (µs since epoch) as RFC 3339 UTC with microseconds, e.g.
/// `2026-11-26T13:20:01.123456Z`.
pub(crate) fn rfc3339_us(us: i64) -> String {
    from_ns(i128::from(us) * 1000)
        .and_then(|t| t.format(UTC_MICROS).ok())
        .unwrap_or_else(|| format!("@{us}us"))
}

/// A file mtime (ns since epoch) as RFC 3339 UTC with nanoseconds.
pub(crate) fn rfc3339_ns(ns: i64) -> String {
    from_ns(i128::from(ns))
        .and_then(|t| t.format(UTC_NANOS).ok())
        .unwrap_or_else(|| format!("@{ns}ns"))
}

/// A commit time (µs) in local time for people: `2026-11-26 14:20:01`.
pub(crate) fn local_human(us: i64, offset: UtcOffset) -> String {
    from_ns(i128::from(us) * 1000)
        .and_then(|t| t.to_offset(offset).format(LOCAL_SECONDS).ok())
        .unwrap_or_else(|| rfc3339_us(us))
}

/// A commit time (µs) in local time with microseconds, `2026-11-26 14:20:01.123456`: for
/// versions that whole seconds cannot tell apart. [`parse_at`] reads it back exactly.
pub(crate) fn local_human_us(us: i64, offset: UtcOffset) -> String {
    from_ns(i128::from(us) * 1000)
        .and_then(|t| t.to_offset(offset).format(LOCAL_MICROS).ok())
        .unwrap_or_else(|| rfc3339_us(us))
}

/// The name of a UTC offset for headings: `UTC`, `UTC+01:00`, `UTC-05:30`.
pub(crate) fn offset_name(offset: UtcOffset) -> String {
    if offset.is_utc() {
        return "UTC".to_owned();
    }
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!("UTC{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
}

/// Parses a `--at` value into µs since the epoch: RFC 3339 (`2026-11-26T13:20:01Z`,
/// `...+01:00`), or local time `YYYY-MM-DD HH:MM[:SS[.ffffff]]` (also with `T` in place of the
/// space).
///
/// A time means everything up to the end of the unit it is given in, because that is how people
/// read the whole seconds `list` shows: `14:27:55` includes every version committed within that
/// second (up to 14:27:55.999999), `14:27` the whole minute. A time with a fraction of a second is
/// exact (`14:27:55.5` is 14:27:55.500000).
pub(crate) fn parse_at(text: &str, offset: UtcOffset) -> Option<i64> {
    let text = text.trim();
    let (t, unit_us) = if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        (t, if has_fraction(text) { 1 } else { 1_000_000 })
    } else {
        let spaced = text.replacen('T', " ", 1);
        let (local, unit_us) = if let Ok(t) = PrimitiveDateTime::parse(&spaced, LOCAL_SECONDS) {
            (t, 1_000_000)
        } else if let Ok(t) = PrimitiveDateTime::parse(&spaced, LOCAL_MINUTES) {
            (t, 60_000_000)
        } else {
            (PrimitiveDateTime::parse(&spaced, LOCAL_FRACTION).ok()?, 1)
        };
        (local.assume_offset(offset), unit_us)
    };
    let start = i64::try_from(t.unix_timestamp_nanos().div_euclid(1000)).ok()?;
    // The last microsecond of the unit: the start is a whole unit when no fraction was given.
    start.checked_add(unit_us - 1)
}

/// Whether an RFC 3339 time has a fraction of a second (`...:01.5Z`).
fn has_fraction(text: &str) -> bool {
    // The seconds end at index 19 (`YYYY-MM-DDTHH:MM:SS`); a fraction starts right there.
    text.as_bytes().get(19) == Some(&b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_micros() {
        assert_eq!(rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_us(1_795_699_201_123_456),
            "2026-11-26T13:20:01.123456Z"
        );
        assert_eq!(rfc3339_ns(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn parses_rfc3339() {
        let utc = UtcOffset::UTC;
        assert_eq!(
            parse_at("2026-11-26T13:20:01.123456Z", utc),
            Some(1_795_699_201_123_456)
        );
        // Whole seconds cover their second.
        assert_eq!(
            parse_at("2026-11-26T14:20:01+01:00", utc),
            Some(1_795_699_201_999_999)
        );
        assert_eq!(
            parse_at("2026-11-26T13:20:01.5Z", utc),
            Some(1_795_699_201_500_000)
        );
    }

    #[test]
    fn parses_local_formats_with_offset() {
        let plus_one = UtcOffset::from_hms(1, 0, 0).unwrap();
        assert_eq!(
            parse_at("2026-11-26 14:20:01", plus_one),
            Some(1_795_699_201_999_999)
        );
        assert_eq!(
            parse_at("2026-11-26 14:20", plus_one),
            Some(1_795_699_259_999_999)
        );
        assert_eq!(
            parse_at("2026-11-26T13:20", UtcOffset::UTC),
            Some(1_795_699_259_999_999)
        );
        assert_eq!(
            parse_at("2026-11-26 14:20:01.000007", plus_one),
            Some(1_795_699_201_000_007)
        );
        assert_eq!(
            parse_at("2026-11-26 14:20:01.25", plus_one),
            Some(1_795_699_201_250_000)
        );
    }

    /// Regression (issue 12): the time `list` shows for a version, copied into `--at`, selected
    /// the version before it, because the version was committed after the second's start.
    #[test]
    fn the_second_list_shows_includes_the_version() {
        let plus_one = UtcOffset::from_hms(1, 0, 0).unwrap();
        for committed in [
            1_795_699_201_000_000,
            1_795_699_201_123_456,
            1_795_699_201_999_999,
        ] {
            let shown = local_human(committed, plus_one);
            let at = parse_at(&shown, plus_one).unwrap();
            assert!(committed <= at, "{shown}: {committed} > {at}");
            assert!(
                at < 1_795_699_202_000_000,
                "{shown} reaches the next second"
            );
            // The exact form selects exactly up to the version.
            let exact = local_human_us(committed, plus_one);
            assert_eq!(parse_at(&exact, plus_one), Some(committed), "{exact}");
        }
        // Before 1970 too (negative times floor, not truncate).
        assert_eq!(parse_at("1969-12-31T23:59:59Z", UtcOffset::UTC), Some(-1));
    }

    #[test]
    fn offset_names() {
        assert_eq!(offset_name(UtcOffset::UTC), "UTC");
        assert_eq!(
            offset_name(UtcOffset::from_hms(1, 0, 0).unwrap()),
            "UTC+01:00"
        );
        assert_eq!(
            offset_name(UtcOffset::from_hms(-5, -30, 0).unwrap()),
            "UTC-05:30"
        );
    }

    #[test]
    fn rejects_garbage() {
        let utc = UtcOffset::UTC;
        for bad in [
            "",
            "gestern",
            "2026-13-01 00:00",
            "2026-11-26",
            "12:00",
            "2026-11-26 25:00",
            "2026-11-26 14:20:01.",
            "2026-11-26 14:20:01.x",
        ] {
            assert_eq!(parse_at(bad, utc), None, "{bad}");
        }
    }

    #[test]
    fn local_human_applies_offset() {
        let plus_one = UtcOffset::from_hms(1, 0, 0).unwrap();
        assert_eq!(
            local_human(1_795_699_201_123_456, plus_one),
            "2026-11-26 14:20:01"
        );
        assert_eq!(
            local_human_us(1_795_699_201_000_042, plus_one),
            "2026-11-26 14:20:01.000042"
        );
    }
}
