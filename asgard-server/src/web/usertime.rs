//! Times on the user's pages (issue 14, ubrowse): the "Stand vom" picker and the times of
//! versions, in the server's local time zone, read the way the agent's `restore --at` reads
//! them. The offset must be looked up while the process has one thread (`time` refuses it
//! later), so `serve` calls [`init`] first; without it (tests, a failed lookup) times are UTC.

use std::sync::OnceLock;

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

static OFFSET: OnceLock<UtcOffset> = OnceLock::new();

const SECONDS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const MINUTES: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]");
const FRACTION: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");
/// The value format of `<input type="datetime-local" step="1">`.
const INPUT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// Looks up the local offset once; call it before the process starts threads.
pub(crate) fn init() {
    if let Ok(o) = UtcOffset::current_local_offset() {
        let _ = OFFSET.set(o);
    }
}

fn offset() -> UtcOffset {
    OFFSET.get().copied().unwrap_or(UtcOffset::UTC)
}

fn local(us: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .map(|t| t.to_offset(offset()))
}

/// A time (µs) for people: `2026-12-06 14:20:01`.
pub(crate) fn show(us: i64) -> String {
    local(us)
        .and_then(|t| t.format(SECONDS).ok())
        .unwrap_or_else(|| asgard_core::fmt::format_utc(us))
}

/// A time (µs) as the value of a `datetime-local` input.
pub(crate) fn input_value(us: i64) -> String {
    local(us)
        .and_then(|t| t.format(INPUT).ok())
        .unwrap_or_default()
}

/// Parses a "Stand vom" value (`YYYY-MM-DDTHH:MM[:SS[.f]]`, `T` or a space) in local time into
/// µs. As for `restore --at`, a time means the end of its unit: `14:27` includes the whole
/// minute, `14:27:55` the whole second; a fraction is exact.
pub(crate) fn parse(text: &str) -> Option<i64> {
    let (start, unit_us) = parse_unit(text)?;
    start.checked_add(unit_us - 1)
}

/// The first µs of the time a picker's text names (for "since").
pub(crate) fn parse_start(text: &str) -> Option<i64> {
    parse_unit(text).map(|(start, _)| start)
}

/// The start (µs) of the time `text` names, and the length of its unit.
fn parse_unit(text: &str) -> Option<(i64, i64)> {
    let spaced = text.trim().replacen('T', " ", 1);
    let (t, unit_us) = if let Ok(t) = PrimitiveDateTime::parse(&spaced, SECONDS) {
        (t, 1_000_000)
    } else if let Ok(t) = PrimitiveDateTime::parse(&spaced, MINUTES) {
        (t, 60_000_000)
    } else {
        (PrimitiveDateTime::parse(&spaced, FRACTION).ok()?, 1)
    };
    let start = t
        .assume_offset(offset())
        .unix_timestamp_nanos()
        .div_euclid(1000);
    Some((i64::try_from(start).ok()?, unit_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picked_time_includes_its_whole_unit_and_round_trips() {
        // Tests run without `init`: UTC.
        let t = 1_795_699_201_000_000; // 2026-11-26 13:20:01 UTC
        assert_eq!(parse("2026-11-26T13:20:01"), Some(t + 999_999));
        assert_eq!(
            parse("2026-11-26T13:20"),
            Some(t - 1_000_000 + 60_000_000 - 1)
        );
        assert_eq!(parse("2026-11-26 13:20:01.5"), Some(t + 500_000));
        assert_eq!(input_value(t + 999_999), "2026-11-26T13:20:01");
        assert_eq!(parse(&input_value(t + 999_999)), Some(t + 999_999));
        assert_eq!(show(t), "2026-11-26 13:20:01");
        assert_eq!(parse_start("2026-11-26T13:20:01"), Some(t));
        for bad in [
            "",
            "gestern",
            "2026-13-01T00:00",
            "2026-11-26T13:20:01Z<script>",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
