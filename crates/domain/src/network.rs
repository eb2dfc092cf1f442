//! The project IP access list (Atlas' "Project IP Access List"): the addresses, blocks and AWS
//! security groups a project's clusters accept connections from. Distinct from the access
//! lists of API keys and service accounts ([`crate::access`]), which guard this API.
//!
//! An entry may be temporary: it ends at its `deleteAfterDate` by the clock, as an employee
//! access grant ends ([`NetworkEntry::is_active`]): from that instant it is neither listed
//! nor handed to a cluster, whether or not its row is gone yet.

use chrono::{DateTime, Duration, Utc};

use crate::access::AccessEntry;
use crate::ValidationError;

/// What an entry admits: an address or block, or an AWS security group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NetworkTarget {
    Addr(AccessEntry),
    /// `sg-` and 8 or 17 hex digits, optionally after an AWS account number and `/`.
    AwsSecurityGroup(String),
}

/// The longest `comment` (Atlas).
pub const MAX_COMMENT: usize = 80;
/// How far ahead a temporary entry may end (Atlas: "no later than one week after").
pub const MAX_TEMPORARY: Duration = Duration::days(7);

fn is_security_group(s: &str) -> bool {
    let (account, sg) = match s.split_once('/') {
        Some((a, sg)) => (Some(a), sg),
        None => (None, s),
    };
    let account_ok = account.is_none_or(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
    let hex = sg.strip_prefix("sg-").unwrap_or("");
    account_ok
        && (hex.len() == 8 || hex.len() == 17)
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl NetworkTarget {
    /// From a request body's three fields, exactly one of which is given.
    pub fn from_fields(
        ip_address: Option<&str>,
        cidr_block: Option<&str>,
        aws_security_group: Option<&str>,
    ) -> Result<Self, ValidationError> {
        match (ip_address, cidr_block, aws_security_group) {
            (Some(ip), None, None) => Ok(Self::Addr(AccessEntry::from_ip_address(ip)?)),
            (None, Some(cidr), None) => Ok(Self::Addr(AccessEntry::from_cidr_block(cidr)?)),
            (None, None, Some(sg)) if is_security_group(sg) => {
                Ok(Self::AwsSecurityGroup(sg.to_owned()))
            }
            (None, None, Some(_)) => Err(ValidationError::new(
                "awsSecurityGroup",
                "must be an AWS security group id such as sg-903004f8",
            )),
            _ => Err(ValidationError::new(
                "entry",
                "must have exactly one of ipAddress, cidrBlock and awsSecurityGroup",
            )),
        }
    }

    /// From a path's `entryValue` (decoded: `192.0.2.0/24`, an address, or `sg-…`).
    pub fn parse_path(raw: &str) -> Result<Self, ValidationError> {
        if raw.contains("sg-") {
            if is_security_group(raw) {
                return Ok(Self::AwsSecurityGroup(raw.to_owned()));
            }
            return Err(ValidationError::new(
                "entryValue",
                "must be an address, a CIDR block or an AWS security group id",
            ));
        }
        AccessEntry::parse_any(raw).map(Self::Addr)
    }

    /// The identity of the entry within its project: the CIDR (an address as /32 or /128),
    /// or the security group id.
    pub fn key(&self) -> String {
        match self {
            Self::Addr(a) => a.key(),
            Self::AwsSecurityGroup(sg) => sg.clone(),
        }
    }
}

/// One entry of a project's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkEntry {
    pub target: NetworkTarget,
    pub comment: Option<String>,
    /// When a temporary entry ends; `None` for a permanent one.
    pub delete_after: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl NetworkEntry {
    /// Active strictly before its end, as a grant.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.delete_after.is_none_or(|end| now < end)
    }
}

/// A `comment`: at most [`MAX_COMMENT`] characters, nothing invisible.
pub fn parse_comment(raw: &str) -> Result<String, ValidationError> {
    if raw.chars().count() > MAX_COMMENT {
        return Err(ValidationError::new(
            "comment",
            format!("must be at most {MAX_COMMENT} characters"),
        ));
    }
    crate::names::refuse_invisible("comment", raw)?;
    Ok(raw.to_owned())
}

/// A `deleteAfterDate`: later than `now`, at most [`MAX_TEMPORARY`] after it. A security
/// group cannot be temporary (Atlas).
pub fn parse_delete_after(
    raw: &str,
    target: &NetworkTarget,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ValidationError> {
    let field = "deleteAfterDate";
    if matches!(target, NetworkTarget::AwsSecurityGroup(_)) {
        return Err(ValidationError::new(
            field,
            "cannot be set on an AWS security group entry",
        ));
    }
    let at = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| ValidationError::new(field, "must be an ISO 8601 date and time"))?
        .with_timezone(&Utc);
    if at <= now {
        return Err(ValidationError::new(field, "must be in the future"));
    }
    if at > now + MAX_TEMPORARY {
        return Err(ValidationError::new(
            field,
            "must be at most one week from now",
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn targets() {
        let ip = NetworkTarget::from_fields(Some("192.0.2.7"), None, None).unwrap();
        assert_eq!(ip.key(), "192.0.2.7/32");
        assert_eq!(NetworkTarget::parse_path("192.0.2.7").unwrap(), ip);
        let block = NetworkTarget::from_fields(None, Some("10.0.0.0/8"), None).unwrap();
        assert_eq!(NetworkTarget::parse_path("10.0.0.0/8").unwrap(), block);
        let sg = NetworkTarget::from_fields(None, None, Some("sg-903004f8")).unwrap();
        assert_eq!(sg.key(), "sg-903004f8");
        assert!(
            NetworkTarget::from_fields(None, None, Some("123456789012/sg-0123456789abcdef0"))
                .is_ok()
        );
        for bad in [
            (Some("192.0.2.300"), None, None),
            (None, Some("10.0.0.1/8"), None),
            (None, Some("10.0.0.0/33"), None),
            (None, None, Some("sg-xyz")),
            (Some("192.0.2.7"), Some("10.0.0.0/8"), None),
            (None, None, None),
        ] {
            assert!(
                NetworkTarget::from_fields(bad.0, bad.1, bad.2).is_err(),
                "{bad:?}"
            );
        }
        assert!(NetworkTarget::parse_path("sg-nothex!").is_err());
    }

    #[test]
    fn temporary_entries_end_by_the_clock() {
        let t = NetworkTarget::from_fields(Some("192.0.2.7"), None, None).unwrap();
        let end = parse_delete_after("2026-01-02T00:00:00Z", &t, now()).unwrap();
        let e = NetworkEntry {
            target: t.clone(),
            comment: None,
            delete_after: Some(end),
            created_at: now(),
        };
        assert!(e.is_active(end - Duration::milliseconds(1)));
        assert!(!e.is_active(end));
        assert!(parse_delete_after("2026-01-01T00:00:00Z", &t, now()).is_err());
        assert!(parse_delete_after("2026-01-08T00:00:01Z", &t, now()).is_err());
        assert!(parse_delete_after("2026-01-08T00:00:00Z", &t, now()).is_ok());
        assert!(parse_delete_after("tomorrow", &t, now()).is_err());
        let sg = NetworkTarget::from_fields(None, None, Some("sg-903004f8")).unwrap();
        assert!(parse_delete_after("2026-01-02T00:00:00Z", &sg, now()).is_err());
    }

    #[test]
    fn comments() {
        assert!(parse_comment(&"x".repeat(80)).is_ok());
        assert!(parse_comment(&"x".repeat(81)).is_err());
        assert!(parse_comment("office\u{202e}").is_err());
    }
}
