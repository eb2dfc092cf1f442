//! Service-account rules (CONTRACT §6) that do not depend on storage.

use chrono::{DateTime, Duration, Utc};

use crate::ValidationError;

/// Shortest secret lifetime, in hours (Atlas).
pub const MIN_SECRET_HOURS: i64 = 8;
/// Longest secret lifetime, in hours: one year (Atlas, seed 003).
pub const MAX_SECRET_HOURS: i64 = 8766;
/// At most this many unexpired secrets per account (ours: rotate by create-new, switch,
/// delete-old).
pub const MAX_ACTIVE_SECRETS: usize = 2;
/// Access tokens live one hour (Atlas).
pub const TOKEN_LIFETIME_SECS: i64 = 3600;

/// Validates `secretExpiresAfterHours` against 8..=`max_hours` and returns the expiry time.
pub fn secret_expiry(
    hours: i64,
    max_hours: i64,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ValidationError> {
    let max = max_hours.clamp(MIN_SECRET_HOURS, MAX_SECRET_HOURS);
    if !(MIN_SECRET_HOURS..=max).contains(&hours) {
        return Err(ValidationError::new(
            "secretExpiresAfterHours",
            format!("must be between {MIN_SECRET_HOURS} and {max}"),
        ));
    }
    Ok(now + Duration::hours(hours))
}

/// A secret mints tokens only before it expires.
pub fn secret_is_active(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < expires_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;

    #[test]
    fn expiry_bounds() {
        let now = from_millis(0);
        assert!(secret_expiry(7, MAX_SECRET_HOURS, now).is_err());
        assert_eq!(
            secret_expiry(8, MAX_SECRET_HOURS, now).unwrap(),
            now + Duration::hours(8)
        );
        assert!(secret_expiry(8766, MAX_SECRET_HOURS, now).is_ok());
        assert!(secret_expiry(8767, MAX_SECRET_HOURS, now).is_err());
        // An org setting may lower the maximum.
        assert!(secret_expiry(100, 48, now).is_err());
        assert!(secret_expiry(48, 48, now).is_ok());
    }

    #[test]
    fn activity_is_exclusive_of_the_expiry_instant() {
        let t = from_millis(1_000_000);
        assert!(secret_is_active(t, t - Duration::seconds(1)));
        assert!(!secret_is_active(t, t));
    }
}
