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

/// Parses a `--at` value into µs since the epoch: RFC 3339 (`2026-11-26T13:20:01Z`,
/// `...+01:00`), or local time `YYYY-MM-DD HH:MM[:SS]` (also with `T` in place of the space).
pub(crate) fn parse_at(text: &str, offset: UtcOffset) -> Option<i64> {
    let text = text.trim();
    let t = if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        t
    } else {
        let spaced = text.replacen('T', " ", 1);
        let local = PrimitiveDateTime::parse(&spaced, LOCAL_SECONDS)
            .or_else(|_| PrimitiveDateTime::parse(&spaced, LOCAL_MINUTES))
            .ok()?;
        local.assume_offset(offset)
    };
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
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
        assert_eq!(
            parse_at("2026-11-26T14:20:01+01:00", utc),
            Some(1_795_699_201_000_000)
        );
    }

    #[test]
    fn parses_local_formats_with_offset() {
        let plus_one = UtcOffset::from_hms(1, 0, 0).unwrap();
        assert_eq!(
            parse_at("2026-11-26 14:20:01", plus_one),
            Some(1_795_699_201_000_000)
        );
        assert_eq!(
            parse_at("2026-11-26 14:20", plus_one),
            Some(1_795_699_200_000_000)
        );
        assert_eq!(
            parse_at("2026-11-26T13:20", UtcOffset::UTC),
            Some(1_795_699_200_000_000)
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
    }
}
