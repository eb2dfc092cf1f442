//! Clusters and MongoDB employee access (CONTRACT §10, seed 002).
//!
//! Tessera hosts no databases: a cluster is a record that roles, grants and events attach to.
//! What is decided here: which names are clusters' names, the three ordered access levels, a
//! grant and whether it is active at an instant, the rules for a new grant's expiry, and the
//! support decision (ours): may the platform's staff act on a cluster at a level, now.
//!
//! Expiry is computed, never swept: a grant is active while `now < expires_at`, so it is gone
//! at the very instant of expiry whether or not anything has run since.

use chrono::{DateTime, Duration, Utc};
use std::fmt;
use std::str::FromStr;

use crate::ValidationError;

/// A cluster's name: `^[a-zA-Z0-9][a-zA-Z0-9-]*$` (Atlas), at most 64 characters (ours:
/// Atlas' own limit for cluster names is shorter, 64 keeps every name it accepts).
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct ClusterName(String);

pub const CLUSTER_NAME_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9-]*$";
pub const CLUSTER_NAME_MAX_LEN: usize = 64;

impl ClusterName {
    /// Parses a name given as `field` (`clusterName` in a path, `name` in a body).
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= CLUSTER_NAME_MAX_LEN
            && b[0].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                field,
                format!("must be 1 to {CLUSTER_NAME_MAX_LEN} characters matching {CLUSTER_NAME_PATTERN}"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How far MongoDB's staff may look into a cluster (`grantType`). Ordered: each level
/// includes the ones before it (CONTRACT §10).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum EmployeeAccessLevel {
    ClusterDatabaseLogs,
    ClusterInfrastructure,
    ClusterInfrastructureAndAppServicesSyncData,
}

impl EmployeeAccessLevel {
    pub const ALL: &'static [EmployeeAccessLevel] = &[
        EmployeeAccessLevel::ClusterDatabaseLogs,
        EmployeeAccessLevel::ClusterInfrastructure,
        EmployeeAccessLevel::ClusterInfrastructureAndAppServicesSyncData,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmployeeAccessLevel::ClusterDatabaseLogs => "CLUSTER_DATABASE_LOGS",
            EmployeeAccessLevel::ClusterInfrastructure => "CLUSTER_INFRASTRUCTURE",
            EmployeeAccessLevel::ClusterInfrastructureAndAppServicesSyncData => {
                "CLUSTER_INFRASTRUCTURE_AND_APP_SERVICES_SYNC_DATA"
            }
        }
    }

    /// Whether a grant at this level covers access at `other`.
    pub fn includes(self, other: EmployeeAccessLevel) -> bool {
        self >= other
    }
}

impl FromStr for EmployeeAccessLevel {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .iter()
            .copied()
            .find(|l| l.as_str() == s)
            .ok_or(())
    }
}

impl fmt::Display for EmployeeAccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A grant of employee access to one cluster.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EmployeeAccessGrant {
    pub level: EmployeeAccessLevel,
    pub expires_at: DateTime<Utc>,
}

impl EmployeeAccessGrant {
    /// Active strictly before its expiry: at `expires_at` it is already gone.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// The longest a grant may run unless configured otherwise (ours: 7 days).
pub const DEFAULT_MAX_GRANT_HOURS: i64 = 168;

/// Parses a grant request's `expirationTime` (RFC 3339, any offset, read as UTC) and checks
/// it is after `now` and no later than `now + max`.
pub fn parse_grant_expiry(
    raw: &str,
    now: DateTime<Utc>,
    max: Duration,
) -> Result<DateTime<Utc>, ValidationError> {
    const FIELD: &str = "expirationTime";
    let at = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ValidationError::new(
                FIELD,
                "must be an ISO 8601 date and time with a time zone, e.g. 2026-01-01T00:00:00Z",
            )
        })?;
    if at <= now {
        return Err(ValidationError::new(FIELD, "must be in the future"));
    }
    if at > now + max {
        return Err(ValidationError::new(
            FIELD,
            format!(
                "must be at most {} hours from now (the configured maximum)",
                max.num_hours()
            ),
        ));
    }
    Ok(at)
}

/// The answer to "may support staff access this cluster at this level, now?" (ours).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SupportDecision {
    /// An active grant covers the level.
    Allowed(EmployeeAccessGrant),
    /// The cluster has no grant (never granted, or revoked).
    NoGrant,
    /// The cluster's grant expired at or before now.
    Expired(EmployeeAccessGrant),
    /// The active grant is at a lower level than requested.
    LevelTooHigh(EmployeeAccessGrant),
}

impl SupportDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, SupportDecision::Allowed(_))
    }

    /// The stable reason code on the wire.
    pub fn reason(&self) -> &'static str {
        match self {
            SupportDecision::Allowed(_) => "GRANT_ACTIVE",
            SupportDecision::NoGrant => "NO_ACTIVE_GRANT",
            SupportDecision::Expired(_) => "GRANT_EXPIRED",
            SupportDecision::LevelTooHigh(_) => "LEVEL_NOT_GRANTED",
        }
    }
}

/// Decides a support access request against the cluster's stored grant at `now`.
pub fn decide_support_access(
    grant: Option<EmployeeAccessGrant>,
    requested: EmployeeAccessLevel,
    now: DateTime<Utc>,
) -> SupportDecision {
    match grant {
        None => SupportDecision::NoGrant,
        Some(g) if !g.is_active(now) => SupportDecision::Expired(g),
        Some(g) if !g.level.includes(requested) => SupportDecision::LevelTooHigh(g),
        Some(g) => SupportDecision::Allowed(g),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;
    use EmployeeAccessLevel::*;

    #[test]
    fn cluster_names() {
        for ok in ["a", "Cluster0", "my-cluster-1", "9", &"x".repeat(64)] {
            assert!(ClusterName::parse("clusterName", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a_b",
            "a b",
            "a.b",
            "é",
            "a:grant",
            &"x".repeat(65),
        ] {
            let e = ClusterName::parse("clusterName", bad).unwrap_err();
            assert_eq!(e.field, "clusterName", "{bad}");
        }
    }

    #[test]
    fn levels_are_ordered_and_round_trip() {
        assert!(ClusterInfrastructureAndAppServicesSyncData.includes(ClusterInfrastructure));
        assert!(ClusterInfrastructure.includes(ClusterDatabaseLogs));
        assert!(ClusterInfrastructure.includes(ClusterInfrastructure));
        assert!(!ClusterDatabaseLogs.includes(ClusterInfrastructure));
        assert!(!ClusterInfrastructure.includes(ClusterInfrastructureAndAppServicesSyncData));
        for l in EmployeeAccessLevel::ALL {
            assert_eq!(l.as_str().parse::<EmployeeAccessLevel>(), Ok(*l));
        }
        assert!("cluster_database_logs"
            .parse::<EmployeeAccessLevel>()
            .is_err());
    }

    #[test]
    fn a_grant_ends_at_the_instant_of_expiry() {
        let g = EmployeeAccessGrant {
            level: ClusterInfrastructure,
            expires_at: from_millis(10_000),
        };
        assert!(g.is_active(from_millis(9_999)));
        assert!(!g.is_active(from_millis(10_000)));
        assert!(!g.is_active(from_millis(10_001)));
    }

    #[test]
    fn expiry_rules() {
        let now = from_millis(1_767_225_600_000); // 2026-01-01T00:00:00Z
        let max = Duration::hours(DEFAULT_MAX_GRANT_HOURS);
        assert!(parse_grant_expiry("2026-01-01T00:00:01Z", now, max).is_ok());
        assert!(parse_grant_expiry("2026-01-08T00:00:00Z", now, max).is_ok());
        assert!(parse_grant_expiry("2026-01-08T01:00:00+01:00", now, max).is_ok());
        for bad in [
            "2026-01-01T00:00:00Z",
            "2025-12-31T23:59:59Z",
            "2026-01-08T00:00:01Z",
            "2026-01-02",
            "tomorrow",
            "",
            "2026-01-02T00:00:00",
        ] {
            let e = parse_grant_expiry(bad, now, max).unwrap_err();
            assert_eq!(e.field, "expirationTime", "{bad}");
        }
    }

    #[test]
    fn support_decisions() {
        let now = from_millis(5_000);
        let g = EmployeeAccessGrant {
            level: ClusterInfrastructure,
            expires_at: from_millis(10_000),
        };
        assert_eq!(
            decide_support_access(None, ClusterDatabaseLogs, now),
            SupportDecision::NoGrant
        );
        assert_eq!(
            decide_support_access(Some(g), ClusterDatabaseLogs, now),
            SupportDecision::Allowed(g)
        );
        assert_eq!(
            decide_support_access(Some(g), ClusterInfrastructure, now),
            SupportDecision::Allowed(g)
        );
        assert_eq!(
            decide_support_access(Some(g), ClusterInfrastructureAndAppServicesSyncData, now),
            SupportDecision::LevelTooHigh(g)
        );
        assert_eq!(
            decide_support_access(Some(g), ClusterDatabaseLogs, from_millis(10_000)),
            SupportDecision::Expired(g)
        );
    }
}
