//! Wall-clock time as Parlor stores and shows it: Unix milliseconds, and
//! RFC 3339 text for clients.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::macros::format_description;
use time::OffsetDateTime;

/// How far tests have moved the clock forward (0 outside tests).
static SHIFT_MS: AtomicI64 = AtomicI64::new(0);

pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    i64::try_from(since_epoch.as_millis()).expect("milliseconds fit in i64") + SHIFT_MS.load(Ordering::Relaxed)
}

/// Moves Parlor's wall clock forward by `by`, for the whole process: tests
/// of what expires (logins, mutes) move time instead of waiting for it, or
/// giving things no lifetime at all. Only for a test process of its own.
#[doc(hidden)]
pub fn advance_for_tests(by: Duration) {
    SHIFT_MS.fetch_add(i64::try_from(by.as_millis()).expect("a test's shift fits"), Ordering::Relaxed);
}

/// `2026-11-24T13:00:00.123Z`: RFC 3339 in UTC with milliseconds, the form
/// browsers' `Date` parses everywhere.
pub fn format_timestamp(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::format_timestamp;

    #[test]
    fn formats_rfc3339_millis_utc() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_timestamp(1_795_179_600_123), "2026-11-20T13:00:00.123Z");
    }
}
