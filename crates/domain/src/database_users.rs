//! Database users (Atlas' "Database Users"): who may connect to a project's clusters, how
//! they authenticate, and which MongoDB roles they hold there. A SCRAM user's password is
//! turned into SCRAM credentials (`tessera_protocols::scram`) and never kept; the other kinds
//! authenticate outside Tessera (X.509, AWS IAM, LDAP, OIDC) and have no password at all.
//!
//! A user may be temporary: it ends at its `deleteAfterDate` by the clock
//! ([`is_active`]), as an employee access grant ends.

use chrono::{DateTime, Utc};

use crate::names::refuse_invisible;
use crate::ValidationError;

/// How a database user authenticates: exactly one of Atlas' `x509Type`, `awsIAMType`,
/// `ldapAuthType`, `oidcAuthType` is other than `NONE`, or none is (SCRAM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DbAuth {
    Scram,
    X509Customer,
    X509Managed,
    AwsIamUser,
    AwsIamRole,
    LdapUser,
    LdapGroup,
    OidcUser,
    OidcIdpGroup,
}

/// (stored name, wire field, wire value) of every kind but SCRAM.
const KINDS: &[(DbAuth, &str, &str, &str)] = &[
    (
        DbAuth::X509Customer,
        "x509_customer",
        "x509Type",
        "CUSTOMER",
    ),
    (DbAuth::X509Managed, "x509_managed", "x509Type", "MANAGED"),
    (DbAuth::AwsIamUser, "aws_iam_user", "awsIAMType", "USER"),
    (DbAuth::AwsIamRole, "aws_iam_role", "awsIAMType", "ROLE"),
    (DbAuth::LdapUser, "ldap_user", "ldapAuthType", "USER"),
    (DbAuth::LdapGroup, "ldap_group", "ldapAuthType", "GROUP"),
    (DbAuth::OidcUser, "oidc_user", "oidcAuthType", "USER"),
    (
        DbAuth::OidcIdpGroup,
        "oidc_idp_group",
        "oidcAuthType",
        "IDP_GROUP",
    ),
];

/// The four wire fields, in the order [`DbAuth::from_wire`] takes them.
pub const AUTH_FIELDS: [&str; 4] = ["x509Type", "awsIAMType", "ldapAuthType", "oidcAuthType"];

impl DbAuth {
    /// From the four wire fields (each absent or `NONE` when unused).
    pub fn from_wire(values: [Option<&str>; 4]) -> Result<Self, ValidationError> {
        let mut found = DbAuth::Scram;
        for (field, value) in AUTH_FIELDS.iter().zip(values) {
            let Some(v) = value.filter(|v| *v != "NONE") else {
                continue;
            };
            let kind = KINDS
                .iter()
                .find(|(_, _, f, w)| f == field && *w == v)
                .map(|k| k.0)
                .ok_or_else(|| {
                    ValidationError::new(*field, format!("{v:?} is not an authentication type"))
                })?;
            if found != DbAuth::Scram {
                return Err(ValidationError::new(
                    *field,
                    "only one of x509Type, awsIAMType, ldapAuthType and oidcAuthType may be set",
                ));
            }
            found = kind;
        }
        Ok(found)
    }

    /// The four wire fields' values for this kind.
    pub fn wire(self) -> [(&'static str, &'static str); 4] {
        AUTH_FIELDS.map(|field| {
            let value = KINDS
                .iter()
                .find(|(k, _, f, _)| *k == self && *f == field)
                .map_or("NONE", |k| k.3);
            (field, value)
        })
    }

    pub fn stored(self) -> &'static str {
        KINDS.iter().find(|k| k.0 == self).map_or("scram", |k| k.1)
    }

    pub fn from_stored(s: &str) -> Option<Self> {
        if s == "scram" {
            return Some(DbAuth::Scram);
        }
        KINDS.iter().find(|k| k.1 == s).map(|k| k.0)
    }

    /// The database a user of this kind authenticates against (Atlas: `admin` for SCRAM and
    /// group-mapped users, `$external` for the rest).
    pub fn auth_database(self) -> &'static str {
        match self {
            DbAuth::Scram | DbAuth::LdapGroup | DbAuth::OidcIdpGroup => "admin",
            _ => "$external",
        }
    }

    /// Checks a username for this kind.
    pub fn check_username(self, name: &str) -> Result<(), ValidationError> {
        let field = "username";
        if name.is_empty() || name.chars().count() > 1024 {
            return Err(ValidationError::new(field, "must be 1 to 1024 characters"));
        }
        refuse_invisible(field, name)?;
        match self {
            DbAuth::AwsIamUser | DbAuth::AwsIamRole => {
                let kind = if self == DbAuth::AwsIamUser {
                    "user"
                } else {
                    "role"
                };
                let ok = name
                    .strip_prefix("arn:aws:iam::")
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(account, res)| {
                        account.len() == 12
                            && account.bytes().all(|b| b.is_ascii_digit())
                            && res.starts_with(&format!("{kind}/"))
                    });
                if !ok {
                    return Err(ValidationError::new(
                        field,
                        format!(
                            "must be an AWS IAM {kind} ARN (arn:aws:iam::<account>:{kind}/<name>)"
                        ),
                    ));
                }
            }
            DbAuth::X509Customer | DbAuth::LdapUser | DbAuth::LdapGroup if !name.contains('=') => {
                return Err(ValidationError::new(
                    field,
                    "must be a distinguished name (RFC 2253), such as CN=app,OU=eng",
                ));
            }
            DbAuth::OidcUser | DbAuth::OidcIdpGroup if !name.contains('/') => {
                return Err(ValidationError::new(
                    field,
                    "must be the identity provider's id, '/', and the user or group name",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A password for a SCRAM user: 8 to 256 characters (Atlas' minimum).
pub fn check_password(p: &str) -> Result<(), ValidationError> {
    let n = p.chars().count();
    if !(8..=256).contains(&n) {
        return Err(ValidationError::new(
            "password",
            "must be 8 to 256 characters",
        ));
    }
    Ok(())
}

/// Built-in roles a database user may hold (Atlas' list), and whether each must be granted on
/// `admin` (the cluster-wide ones).
pub const BUILT_IN_ROLES: &[(&str, bool)] = &[
    ("atlasAdmin", true),
    ("readWriteAnyDatabase", true),
    ("readAnyDatabase", true),
    ("dbAdminAnyDatabase", true),
    ("clusterMonitor", true),
    ("backup", true),
    ("enableSharding", true),
    ("dbAdmin", false),
    ("readWrite", false),
    ("read", false),
];

/// One role of a user: a built-in role, or a custom role of the project, on a database and
/// optionally one collection.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DbRole {
    pub role_name: String,
    pub database_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_name: Option<String>,
}

fn check_db_name(field: &str, name: &str) -> Result<(), ValidationError> {
    // MongoDB's rules: no `/\. "$` (and no NUL), at most 64 bytes.
    if name.is_empty() || name.len() > 64 || name.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
        return Err(ValidationError::new(
            field,
            "is not a MongoDB database name",
        ));
    }
    Ok(())
}

impl DbRole {
    /// Checks the role against MongoDB's built-in roles and the project's `custom` roles.
    pub fn check(&self, custom: &[String]) -> Result<(), ValidationError> {
        check_db_name("roles.databaseName", &self.database_name)?;
        if let Some(c) = &self.collection_name {
            if c.is_empty() || c.contains(['$', '\0']) || c.starts_with("system.") {
                return Err(ValidationError::new(
                    "roles.collectionName",
                    "is not a collection a role may name",
                ));
            }
        }
        match BUILT_IN_ROLES.iter().find(|(n, _)| *n == self.role_name) {
            Some((_, true)) if self.database_name != "admin" || self.collection_name.is_some() => {
                Err(ValidationError::new(
                    "roles",
                    format!(
                        "{} applies to the whole cluster: grant it on admin, without a collection",
                        self.role_name
                    ),
                ))
            }
            Some((name, false)) if *name == "dbAdmin" && self.collection_name.is_some() => {
                Err(ValidationError::new(
                    "roles.collectionName",
                    "dbAdmin applies to a whole database",
                ))
            }
            Some(_) => Ok(()),
            None if custom.contains(&self.role_name) => Ok(()),
            None => Err(ValidationError::new(
                "roles.roleName",
                format!(
                    "{:?} is neither a built-in role nor a custom role of this project",
                    self.role_name
                ),
            )),
        }
    }
}

/// What a user is limited to: named clusters (or data lakes) of the project; none limits nothing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbScope {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl DbScope {
    pub fn check(&self, clusters: &[String]) -> Result<(), ValidationError> {
        match self.kind.as_str() {
            "CLUSTER" if clusters.contains(&self.name) => Ok(()),
            "CLUSTER" => Err(ValidationError::new(
                "scopes",
                format!("no cluster {:?} in this project", self.name),
            )),
            "DATA_LAKE" => Err(ValidationError::new(
                "scopes",
                "this project has no data lakes (Tessera keeps none)",
            )),
            _ => Err(ValidationError::new(
                "scopes.type",
                "must be CLUSTER or DATA_LAKE",
            )),
        }
    }
}

/// A temporary user is active strictly before its end.
pub fn is_active(delete_after: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    delete_after.is_none_or(|end| now < end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(DbAuth::from_wire([None; 4]).unwrap(), DbAuth::Scram);
        assert_eq!(
            DbAuth::from_wire([Some("NONE"), Some("ROLE"), None, Some("NONE")]).unwrap(),
            DbAuth::AwsIamRole
        );
        assert!(DbAuth::from_wire([Some("CUSTOMER"), Some("USER"), None, None]).is_err());
        assert!(DbAuth::from_wire([Some("KERBEROS"), None, None, None]).is_err());
        for k in KINDS {
            assert_eq!(DbAuth::from_stored(k.0.stored()), Some(k.0));
            let wire = k.0.wire().map(|(_, v)| Some(v));
            assert_eq!(DbAuth::from_wire(wire).unwrap(), k.0);
        }
        assert_eq!(DbAuth::X509Managed.auth_database(), "$external");
        assert_eq!(DbAuth::LdapGroup.auth_database(), "admin");
    }

    #[test]
    fn usernames() {
        assert!(DbAuth::Scram.check_username("app").is_ok());
        assert!(DbAuth::Scram.check_username("").is_err());
        assert!(DbAuth::Scram.check_username("a\u{200b}b").is_err());
        assert!(DbAuth::AwsIamRole
            .check_username("arn:aws:iam::123456789012:role/app")
            .is_ok());
        assert!(DbAuth::AwsIamRole
            .check_username("arn:aws:iam::123456789012:user/app")
            .is_err());
        assert!(DbAuth::X509Customer.check_username("CN=app,OU=eng").is_ok());
        assert!(DbAuth::X509Customer.check_username("app").is_err());
        assert!(DbAuth::OidcIdpGroup.check_username("idp/eng").is_ok());
    }

    #[test]
    fn roles() {
        let role = |n: &str, db: &str, c: Option<&str>| DbRole {
            role_name: n.into(),
            database_name: db.into(),
            collection_name: c.map(Into::into),
        };
        assert!(role("readWrite", "sales", Some("orders"))
            .check(&[])
            .is_ok());
        assert!(role("atlasAdmin", "admin", None).check(&[]).is_ok());
        assert!(role("atlasAdmin", "sales", None).check(&[]).is_err());
        assert!(role("root", "admin", None).check(&[]).is_err());
        assert!(role("auditor", "admin", None)
            .check(&["auditor".into()])
            .is_ok());
        assert!(role("read", "bad.db", None).check(&[]).is_err());
        assert!(role("dbAdmin", "sales", Some("orders")).check(&[]).is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
    }
}
