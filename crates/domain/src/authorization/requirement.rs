//! `Requirement`: the least role an operation needs (the subset's `x-rolesRequirements`, read as
//! CONTRACT §9), and the role lattice that says who meets it.

use crate::roles::{GroupRole, OrgRole};

/// The least role an operation needs, as named in the subset's `x-rolesRequirements`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
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
    /// `GROUP_CLUSTER_MANAGER` or Project Owner ("Project Cluster Creator" and "Cluster
    /// Manager" of the subset).
    ProjectClusterManager,
    /// `GROUP_SUPPORT_ACCESS_MANAGER`, `GROUP_CLUSTER_MANAGER` or Project Owner: managing
    /// MongoDB employee access to a cluster (issue 8 widens the subset's "Project Support
    /// Access Manager" to the project's cluster managers).
    ProjectEmployeeAccessManager,
    /// `GROUP_DATABASE_ACCESS_ADMIN`, `GROUP_STREAM_PROCESSING_OWNER` or Project Owner
    /// (changing database users, as the description's roles say; its "Project Charts Admin"
    /// is not a role Tessera has).
    ProjectDatabaseAccessAdmin,
}

impl Requirement {
    /// Whether a principal holding `org_roles` in the resource's org and `group_roles` in the
    /// resource's project (empty for org-level resources) meets this requirement. Only the
    /// decisions of this module apply it (see [`crate::Principal::authorize`]).
    pub(crate) fn is_met(self, org_roles: &[OrgRole], group_roles: &[GroupRole]) -> bool {
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
            Requirement::ProjectDatabaseAccessAdmin => {
                project_owner
                    || group(GroupRole::DatabaseAccessAdmin)
                    || group(GroupRole::StreamProcessingOwner)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Clusters (CONTRACT §10): reading needs any project role; creating and changing, a
    /// cluster manager; deleting, the owner; employee access, a support access manager or
    /// (issue 8) a cluster manager.
    #[test]
    fn who_manages_clusters_and_employee_access() {
        use Requirement::*;
        let req = ProjectEmployeeAccessManager;
        let member = [OrgRole::Member];
        for ok in [
            GroupRole::Owner,
            GroupRole::SupportAccessManager,
            GroupRole::ClusterManager,
        ] {
            assert!(req.is_met(&member, &[ok]), "{ok}");
        }
        for no in [
            GroupRole::ReadOnly,
            GroupRole::AccessManager,
            GroupRole::DataAccessAdmin,
            GroupRole::NetworkAccessManager,
        ] {
            assert!(!req.is_met(&member, &[no]), "{no}");
        }
        assert!(req.is_met(&[OrgRole::Owner], &[]));
        assert!(!req.is_met(&[OrgRole::ReadOnly], &[]));
        assert!(ProjectReadOnly.is_met(&member, &[GroupRole::ReadOnly]));
        assert!(!ProjectClusterManager.is_met(&member, &[GroupRole::ReadOnly]));
        assert!(ProjectClusterManager.is_met(&member, &[GroupRole::ClusterManager]));
        assert!(!ProjectOwner.is_met(&member, &[GroupRole::ClusterManager]));
        assert!(ProjectOwner.is_met(&member, &[GroupRole::Owner]));
    }
}
