//! Roles (CONTRACT §9): the org and project role names. Who meets what is decided in
//! [`crate::authorization`] (the lattice is `Requirement::is_met` there).

use std::fmt;
use std::str::FromStr;

macro_rules! role_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($wire => Ok($name::$variant),)+ _ => Err(()) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

role_enum!(
    /// Organization roles (Atlas enum).
    OrgRole {
        Owner => "ORG_OWNER",
        GroupCreator => "ORG_GROUP_CREATOR",
        BillingAdmin => "ORG_BILLING_ADMIN",
        BillingReadOnly => "ORG_BILLING_READ_ONLY",
        StreamProcessingAdmin => "ORG_STREAM_PROCESSING_ADMIN",
        ReadOnly => "ORG_READ_ONLY",
        Member => "ORG_MEMBER",
    }
);

role_enum!(
    /// Project roles (Atlas names).
    GroupRole {
        Owner => "GROUP_OWNER",
        ClusterManager => "GROUP_CLUSTER_MANAGER",
        AccessManager => "GROUP_ACCESS_MANAGER",
        SupportAccessManager => "GROUP_SUPPORT_ACCESS_MANAGER",
        NetworkAccessManager => "GROUP_NETWORK_ACCESS_MANAGER",
        DataAccessAdmin => "GROUP_DATA_ACCESS_ADMIN",
        DataAccessReadWrite => "GROUP_DATA_ACCESS_READ_WRITE",
        DataAccessReadOnly => "GROUP_DATA_ACCESS_READ_ONLY",
        DatabaseAccessAdmin => "GROUP_DATABASE_ACCESS_ADMIN",
        BackupManager => "GROUP_BACKUP_MANAGER",
        SearchIndexEditor => "GROUP_SEARCH_INDEX_EDITOR",
        StreamProcessingOwner => "GROUP_STREAM_PROCESSING_OWNER",
        ObservabilityViewer => "GROUP_OBSERVABILITY_VIEWER",
        ReadOnly => "GROUP_READ_ONLY",
    }
);

/// The org roles of an API key or service account created for a project: it is also an org
/// member, and no more (Atlas).
pub fn project_member_org_roles() -> Vec<OrgRole> {
    vec![OrgRole::Member]
}

/// Parses a list of role names for one scope: at least one, each known, no duplicates.
pub fn parse_role_list<R: FromStr + PartialEq + Copy>(
    field: &str,
    names: &[String],
    allow_empty: bool,
) -> Result<Vec<R>, RoleListError> {
    if names.is_empty() && !allow_empty {
        return Err(RoleListError::Empty(field.to_owned()));
    }
    let mut out: Vec<R> = Vec::with_capacity(names.len());
    for n in names {
        let role = n
            .parse::<R>()
            .map_err(|_| RoleListError::Invalid(field.to_owned(), n.clone()))?;
        if out.contains(&role) {
            return Err(RoleListError::Duplicate(field.to_owned(), n.clone()));
        }
        out.push(role);
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleListError {
    #[error("{0}: at least one role is required")]
    Empty(String),
    #[error("{0}: {1} is not a valid role for this scope")]
    Invalid(String, String),
    #[error("{0}: {1} is listed more than once")]
    Duplicate(String, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in OrgRole::ALL {
            assert_eq!(r.as_str().parse::<OrgRole>(), Ok(*r));
        }
        for r in GroupRole::ALL {
            assert_eq!(r.as_str().parse::<GroupRole>(), Ok(*r));
        }
        assert!("GROUP_OWNER".parse::<OrgRole>().is_err());
        assert!("org_owner".parse::<OrgRole>().is_err());
    }

    #[test]
    fn role_lists() {
        let ok: Vec<OrgRole> = parse_role_list(
            "roles",
            &["ORG_MEMBER".into(), "ORG_BILLING_ADMIN".into()],
            false,
        )
        .unwrap();
        assert_eq!(ok, vec![OrgRole::Member, OrgRole::BillingAdmin]);
        assert!(parse_role_list::<OrgRole>("roles", &[], false).is_err());
        assert!(parse_role_list::<OrgRole>("roles", &["GROUP_OWNER".into()], false).is_err());
        assert!(parse_role_list::<OrgRole>(
            "roles",
            &["ORG_MEMBER".into(), "ORG_MEMBER".into()],
            false
        )
        .is_err());
    }
}
