//! The one timestamp format of the wire: ISO 8601, UTC, whole seconds, `Z` suffix (Atlas).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

pub fn format(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Milliseconds since the epoch, the storage representation on every backend.
pub fn to_millis(ts: DateTime<Utc>) -> i64 {
    ts.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_z_and_whole_seconds() {
        let ts = from_millis(1_722_622_045_123);
        assert_eq!(format(ts), "2024-08-02T18:07:25Z");
        assert_eq!(to_millis(ts), 1_722_622_045_123);
    }
}
