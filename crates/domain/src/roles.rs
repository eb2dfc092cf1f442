//! Roles and the role lattice (CONTRACT §9).

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

/// The least role an operation needs, as named in the subset's `x-rolesRequirements`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Requirement {
    /// Any org role.
    OrgMember,
    /// `ORG_READ_ONLY` or `ORG_OWNER`.
    OrgReadOnly,
    /// `ORG_OWNER`.
    OrgOwner,
    /// `ORG_GROUP_CREATOR` or `ORG_OWNER` (creating projects).
    OrgGroupCreator,
    /// Any project role there, or `ORG_OWNER`/`ORG_READ_ONLY` of its org.
    ProjectReadOnly,
    /// `GROUP_OWNER` there, or `ORG_OWNER` of its org.
    ProjectOwner,
    /// `GROUP_ACCESS_MANAGER` or Project Owner.
    ProjectAccessManager,
    /// `GROUP_SUPPORT_ACCESS_MANAGER` or Project Owner.
    ProjectSupportAccessManager,
    /// `GROUP_CLUSTER_MANAGER` or Project Owner.
    ProjectClusterManager,
    /// `GROUP_SUPPORT_ACCESS_MANAGER`, `GROUP_CLUSTER_MANAGER` or Project Owner: managing
    /// MongoDB employee access to a cluster (issue 8 widens the subset's "Project Support
    /// Access Manager" to the project's cluster managers).
    ProjectEmployeeAccessManager,
}

impl Requirement {
    /// Whether a principal holding `org_roles` in the resource's org and `group_roles` in the
    /// resource's project (empty for org-level resources) meets this requirement.
    pub fn is_met(self, org_roles: &[OrgRole], group_roles: &[GroupRole]) -> bool {
        let org = |r: OrgRole| org_roles.contains(&r);
        let group = |r: GroupRole| group_roles.contains(&r);
        let project_owner = org(OrgRole::Owner) || group(GroupRole::Owner);
        match self {
            Requirement::OrgMember => !org_roles.is_empty(),
            Requirement::OrgReadOnly => org(OrgRole::Owner) || org(OrgRole::ReadOnly),
            Requirement::OrgOwner => org(OrgRole::Owner),
            Requirement::OrgGroupCreator => org(OrgRole::Owner) || org(OrgRole::GroupCreator),
            Requirement::ProjectReadOnly => {
                !group_roles.is_empty() || org(OrgRole::Owner) || org(OrgRole::ReadOnly)
            }
            Requirement::ProjectOwner => project_owner,
            Requirement::ProjectAccessManager => project_owner || group(GroupRole::AccessManager),
            Requirement::ProjectSupportAccessManager => {
                project_owner || group(GroupRole::SupportAccessManager)
            }
            Requirement::ProjectClusterManager => project_owner || group(GroupRole::ClusterManager),
            Requirement::ProjectEmployeeAccessManager => {
                project_owner
                    || group(GroupRole::SupportAccessManager)
                    || group(GroupRole::ClusterManager)
            }
        }
    }
}

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

    /// Exhaustive check of the lattice over every single role: the owner meets everything,
    /// ORG_MEMBER meets only OrgMember, project roles never confer org-level rights.
    #[test]
    fn lattice_single_roles() {
        use Requirement::*;
        let all_reqs = [
            OrgMember,
            OrgReadOnly,
            OrgOwner,
            OrgGroupCreator,
            ProjectReadOnly,
            ProjectOwner,
            ProjectAccessManager,
            ProjectSupportAccessManager,
            ProjectClusterManager,
            ProjectEmployeeAccessManager,
        ];
        for req in all_reqs {
            assert!(req.is_met(&[OrgRole::Owner], &[]), "{req:?}");
        }
        for req in all_reqs {
            assert_eq!(
                req.is_met(&[OrgRole::Member], &[]),
                req == OrgMember,
                "{req:?}"
            );
        }
        let ro = |req: Requirement| req.is_met(&[OrgRole::ReadOnly], &[]);
        assert!(ro(OrgReadOnly) && ro(ProjectReadOnly) && ro(OrgMember));
        assert!(!ro(OrgOwner) && !ro(ProjectOwner) && !ro(OrgGroupCreator));
        for g in GroupRole::ALL {
            let roles = [*g];
            assert!(ProjectReadOnly.is_met(&[OrgRole::Member], &roles));
            assert!(!OrgReadOnly.is_met(&[OrgRole::Member], &roles));
            assert_eq!(
                ProjectOwner.is_met(&[OrgRole::Member], &roles),
                *g == GroupRole::Owner
            );
            assert_eq!(
                ProjectAccessManager.is_met(&[OrgRole::Member], &roles),
                matches!(g, GroupRole::Owner | GroupRole::AccessManager)
            );
            assert_eq!(
                ProjectSupportAccessManager.is_met(&[OrgRole::Member], &roles),
                matches!(g, GroupRole::Owner | GroupRole::SupportAccessManager)
            );
            assert_eq!(
                ProjectClusterManager.is_met(&[OrgRole::Member], &roles),
                matches!(g, GroupRole::Owner | GroupRole::ClusterManager)
            );
        }
        assert!(!OrgMember.is_met(&[], &[]));
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
