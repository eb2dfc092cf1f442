//! Identifiers. Every id is a newtype that can only be made by parsing or generating (its field
//! is private to this module), so code past the HTTP edge never holds an unchecked id.

use chrono::{DateTime, Utc};
use rand::RngCore;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::ValidationError;

/// A 12-byte, time-ordered identifier rendered as 24 lowercase hex digits (ObjectId layout:
/// 4 bytes of seconds since the epoch, 5 random bytes chosen once per process, 3 bytes of a
/// counter), so ids made by one process sort in creation order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

static COUNTER: AtomicU32 = AtomicU32::new(0);
static PROCESS_RANDOM: std::sync::OnceLock<[u8; 5]> = std::sync::OnceLock::new();

impl ObjectId {
    pub fn generate(now: DateTime<Utc>) -> Self {
        let mut bytes = [0u8; 12];
        let secs = u32::try_from(now.timestamp().max(0)).unwrap_or(u32::MAX);
        bytes[..4].copy_from_slice(&secs.to_be_bytes());
        let process = PROCESS_RANDOM.get_or_init(|| {
            let mut r = [0u8; 5];
            rand::rngs::OsRng.fill_bytes(&mut r);
            r
        });
        bytes[4..9].copy_from_slice(process);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        Self(bytes)
    }

    /// Parses exactly 24 lowercase hex digits (`^([a-f0-9]{24})$`).
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 24 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut bytes = [0u8; 12];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// The 24 lowercase hex digits, without allocating (ids are formatted on hot paths).
    fn hex_digits(&self) -> [u8; 24] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 24];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(b >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        out
    }

    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.hex_digits();
        // Always ASCII hex digits.
        f.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

pub const OBJECT_ID_PATTERN: &str = "^([a-f0-9]{24})$";

macro_rules! object_id_newtype {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(ObjectId);

        impl $name {
            /// The parameter name used in validation errors.
            pub const FIELD: &'static str = $field;

            pub fn generate(now: DateTime<Utc>) -> Self {
                Self(ObjectId::generate(now))
            }

            /// The object id inside.
            pub fn object_id(&self) -> ObjectId {
                self.0
            }

            pub fn parse(s: &str) -> Result<Self, ValidationError> {
                ObjectId::parse(s).map(Self).ok_or_else(|| {
                    ValidationError::new($field, format!("must match {OBJECT_ID_PATTERN}"))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

object_id_newtype!(
    /// An organization.
    OrgId, "orgId");
object_id_newtype!(
    /// A project (called a group on the wire).
    GroupId, "groupId");
object_id_newtype!(
    /// A programmatic API key (`apiUserId` on the wire).
    ApiKeyId, "apiUserId");
object_id_newtype!(
    /// A service-account secret.
    SecretId, "secretId");
object_id_newtype!(
    /// An event in an organization's or project's log.
    EventId, "eventId");
object_id_newtype!(
    /// A cluster record (`id` of a cluster document; `clusterId` in cross-project lists).
    ClusterId, "clusterId");
object_id_newtype!(
    /// A MongoDB Cloud user (a person; `userId` on the wire).
    UserId, "userId");
object_id_newtype!(
    /// A team of an organization's users.
    TeamId, "teamId");
object_id_newtype!(
    /// An invitation to an organization (a pending membership).
    InvitationId, "invitationId");
object_id_newtype!(
    /// A support operator (ours): the platform's staff act through operator credentials.
    OperatorId, "operatorId");
object_id_newtype!(
    /// An organization's federation settings (`federationSettingsId`).
    FederationSettingsId, "federationSettingsId");
object_id_newtype!(
    /// An identity provider of a federation (`identityProviderId`, the 24-hex form).
    IdentityProviderId, "identityProviderId");
object_id_newtype!(
    /// A role mapping of a connected organization (`id`).
    RoleMappingId, "id");

/// A service account's client id: `mdb_sa_id_` + 24 lowercase hex digits (Atlas).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ClientId(ObjectId);

impl ClientId {
    pub const PREFIX: &'static str = "mdb_sa_id_";

    pub fn generate(now: DateTime<Utc>) -> Self {
        Self(ObjectId::generate(now))
    }

    /// The subset's pattern (`^mdb_sa_id_[a-fA-F\d]{24}$`) allows upper-case hex: it names
    /// the same id as its lower-case form, which is how ids are generated and shown.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        s.strip_prefix(Self::PREFIX)
            .filter(|hex| hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| ObjectId::parse(&hex.to_ascii_lowercase()))
            .map(Self)
            .ok_or_else(|| {
                ValidationError::new("clientId", "must match ^mdb_sa_id_[a-fA-F\\d]{24}$")
            })
    }
}

impl ClientId {
    /// Parses the 24 lowercase hex digits alone, without the prefix (how a store keeps it).
    pub fn parse_hex(s: &str) -> Result<Self, ValidationError> {
        ObjectId::parse(s)
            .map(Self)
            .ok_or_else(|| ValidationError::new("clientId", "must be 24 lowercase hex digits"))
    }

    /// The object id inside.
    pub fn object_id(&self) -> ObjectId {
        self.0
    }

    /// The 24 hex digits alone (the form [`ClientId::parse_hex`] reads).
    pub fn hex(&self) -> String {
        self.0.to_hex()
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_are_time_ordered() {
        let t1 = crate::time::from_millis(1_700_000_000_000);
        let t2 = crate::time::from_millis(1_700_000_100_000);
        let a = ObjectId::generate(t1);
        let b = ObjectId::generate(t2);
        assert!(a < b);
        assert_eq!(ObjectId::parse(&a.to_hex()), Some(a));
        assert_eq!(a.to_hex().len(), 24);
    }

    #[test]
    fn parse_rejects_bad_shapes() {
        for bad in [
            "",
            "abc",
            "5F0000000000000000000000",
            "5f000000000000000000000g",
            "5f00000000000000000000000",
            " 5f0000000000000000000000",
        ] {
            assert!(ObjectId::parse(bad).is_none(), "{bad:?}");
        }
        assert!(OrgId::parse("5f0000000000000000000000").is_ok());
        assert_eq!(OrgId::parse("x").unwrap_err().field, "orgId");
    }

    #[test]
    fn client_id_format() {
        let c = ClientId::generate(crate::time::from_millis(0));
        let s = c.to_string();
        assert!(s.starts_with("mdb_sa_id_"));
        assert_eq!(s.len(), 34);
        assert_eq!(ClientId::parse(&s), Ok(c));
        assert_eq!(
            ClientId::parse("mdb_sa_id_66AD205D181FC82B21B336E3"),
            ClientId::parse("mdb_sa_id_66ad205d181fc82b21b336e3")
        );
        assert!(ClientId::parse("mdb_sa_id_66AD205D181FC82B21B336E3").is_ok());
        assert!(ClientId::parse("MDB_SA_ID_66ad205d181fc82b21b336e3").is_err());
        assert!(ClientId::parse("mdb_sa_id_66ad205d181fc82b21b336eg").is_err());
        assert!(ClientId::parse("66ad205d181fc82b21b336e3").is_err());
    }
}
