//! Who is calling, and the authorization decision (CONTRACT §9).

use std::collections::HashMap;

use crate::ids::{ApiKeyId, ClientId, GroupId, OrgId, SecretId};
use crate::roles::{GroupRole, OrgRole, Requirement};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    ApiKey {
        id: ApiKeyId,
        public_key: String,
    },
    ServiceAccount {
        client_id: ClientId,
        secret_id: SecretId,
    },
}

/// An authenticated caller with the roles it holds right now. Every credential belongs to
/// exactly one organization (as in Atlas).
#[derive(Clone, Debug)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub org_id: OrgId,
    pub org_roles: Vec<OrgRole>,
    pub group_roles: HashMap<GroupId, Vec<GroupRole>>,
    /// Where the request came from (its client address), for the events it causes.
    pub remote_address: Option<std::net::IpAddr>,
}

/// The outcome of an authorization check. `NotFound` hides the existence of resources in
/// organizations the caller has no role in (ours: ids can't be probed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Forbidden,
    NotFound,
}

impl Principal {
    fn org_roles_in(&self, org: OrgId) -> &[OrgRole] {
        if org == self.org_id {
            &self.org_roles
        } else {
            &[]
        }
    }

    pub fn roles_in_group(&self, group: GroupId) -> &[GroupRole] {
        self.group_roles
            .get(&group)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Decision for an org-level resource of `org`.
    pub fn decide_org(&self, org: OrgId, req: Requirement) -> Decision {
        let org_roles = self.org_roles_in(org);
        if org_roles.is_empty() {
            Decision::NotFound
        } else if req.is_met(org_roles, &[]) {
            Decision::Allow
        } else {
            Decision::Forbidden
        }
    }

    /// Whether this principal may create an organization: `ORG_OWNER` of its own.
    pub fn may_create_org(&self) -> bool {
        self.decide_org(self.org_id, Requirement::OrgOwner) == Decision::Allow
    }

    /// Decision for a resource of project `group` that belongs to `org`.
    pub fn decide_group(&self, org: OrgId, group: GroupId, req: Requirement) -> Decision {
        let org_roles = self.org_roles_in(org);
        if org_roles.is_empty() {
            return Decision::NotFound;
        }
        let group_roles = self.roles_in_group(group);
        if req.is_met(org_roles, group_roles) {
            Decision::Allow
        } else {
            Decision::Forbidden
        }
    }

    /// Whether this principal may hand out `roles` in project `group` of `org`: a Project
    /// Owner may give any project role; anyone else (a Project Access Manager) only roles it
    /// holds there itself, and never `GROUP_OWNER`. This stops a lower role from granting
    /// itself or others a higher one.
    pub fn may_assign_group_roles(&self, org: OrgId, group: GroupId, roles: &[GroupRole]) -> bool {
        if self.decide_group(org, group, Requirement::ProjectOwner) == Decision::Allow {
            return true;
        }
        let mine = self.roles_in_group(group);
        roles
            .iter()
            .all(|r| *r != GroupRole::Owner && mine.contains(r))
    }

    /// Whether this principal may change or remove a member (API key or service account) of
    /// project `group` that holds `target_org_roles` in the org and `target_group_roles` in
    /// the project: a Project Owner may; anyone else only members that reach no further than
    /// itself (org role at most `ORG_MEMBER`, project roles it could assign).
    pub fn may_manage_member(
        &self,
        org: OrgId,
        group: GroupId,
        target_org_roles: &[OrgRole],
        target_group_roles: &[GroupRole],
    ) -> bool {
        if self.decide_group(org, group, Requirement::ProjectOwner) == Decision::Allow {
            return true;
        }
        target_org_roles.iter().all(|r| *r == OrgRole::Member)
            && self.may_assign_group_roles(org, group, target_group_roles)
    }

    /// Whether a project shows up in this principal's project lists: org owners and org
    /// read-only see every project of their org, others the projects they hold a role in.
    pub fn can_list_group(&self, org: OrgId, group: GroupId) -> bool {
        self.decide_group(org, group, Requirement::ProjectReadOnly) == Decision::Allow
    }

    /// Which projects of `org` this principal's project lists show (the same rule as
    /// [`Principal::can_list_group`], as a filter for a store query).
    pub fn visible_groups(&self, org: OrgId) -> GroupVisibility {
        if self.decide_org(org, Requirement::OrgReadOnly) == Decision::Allow {
            return GroupVisibility::All;
        }
        let mut ids: Vec<GroupId> = if self.org_roles_in(org).is_empty() {
            Vec::new()
        } else {
            self.group_roles
                .iter()
                .filter(|(_, roles)| !roles.is_empty())
                .map(|(g, _)| *g)
                .collect()
        };
        ids.sort();
        GroupVisibility::Only(ids)
    }

    /// Which events of `org`'s event log this principal may read: an event shows only to a
    /// caller that may read the log of where it happened. The org's own events (of no
    /// project) need the org log's requirement (Organization Member); a project's events need
    /// its log's (Project Read Only), so a `GROUP_READ_ONLY` of one project does not read
    /// another project's events through the org log.
    pub fn org_log_visibility(&self, org: OrgId) -> OrgLogVisibility {
        OrgLogVisibility {
            org_events: self.decide_org(org, Requirement::OrgMember) == Decision::Allow,
            groups: self.visible_groups(org),
        }
    }

    /// Whether this principal may read an event of `org`'s log that happened in `group`
    /// (`None`: in the org itself); the rule of [`Principal::org_log_visibility`], for one
    /// event.
    pub fn may_read_org_event(&self, org: OrgId, group: Option<GroupId>) -> bool {
        match group {
            None => self.decide_org(org, Requirement::OrgMember) == Decision::Allow,
            Some(g) => self.decide_group(org, g, Requirement::ProjectReadOnly) == Decision::Allow,
        }
    }

    /// Whether this principal, acting through project `group` of `org` with `req`, may change
    /// a service account as a whole (name, description, secrets, access list). The account
    /// holds `account_org_roles` in the org and is assigned to `account_groups`.
    ///
    /// An org owner may. Anyone else needs `req` in `group` (the route checks that) and
    /// wherever else the account reaches: the account may hold no org role beyond
    /// `ORG_MEMBER`, and the principal must meet `req` in every other project the account is
    /// assigned to. Otherwise the owner of one project could mint a secret for an `ORG_OWNER`
    /// account invited there and act as an org owner.
    ///
    /// Decide on the account as read under the registry's write lock, so a promotion that
    /// lands first is seen.
    pub fn may_manage_account_via_group(
        &self,
        org: OrgId,
        group: GroupId,
        req: Requirement,
        account_org_roles: &[OrgRole],
        account_groups: impl IntoIterator<Item = GroupId>,
    ) -> bool {
        if self.decide_org(org, Requirement::OrgOwner) == Decision::Allow {
            return true;
        }
        if account_org_roles.iter().any(|r| *r != OrgRole::Member) {
            return false;
        }
        account_groups
            .into_iter()
            .all(|g| g == group || self.decide_group(org, g, req) == Decision::Allow)
    }
}

/// What of an org's event log a principal may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgLogVisibility {
    /// The org's own events (those of no project).
    pub org_events: bool,
    /// The projects whose events show.
    pub groups: GroupVisibility,
}

/// The projects a principal's project lists show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupVisibility {
    /// Every project of the org.
    All,
    /// Only these (sorted).
    Only(Vec<GroupId>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;

    fn principal(org_roles: Vec<OrgRole>, groups: Vec<(GroupId, Vec<GroupRole>)>) -> Principal {
        let now = from_millis(0);
        Principal {
            kind: PrincipalKind::ApiKey {
                id: ApiKeyId::generate(now),
                public_key: "abcdefgh".into(),
            },
            org_id: OrgId(crate::ObjectId::parse("000000000000000000000001").unwrap()),
            org_roles,
            group_roles: groups.into_iter().collect(),
            remote_address: None,
        }
    }

    #[test]
    fn other_org_is_not_found_not_forbidden() {
        let p = principal(vec![OrgRole::Owner], vec![]);
        let other = OrgId(crate::ObjectId::parse("000000000000000000000002").unwrap());
        assert_eq!(
            p.decide_org(other, Requirement::OrgMember),
            Decision::NotFound
        );
        let g = GroupId::generate(from_millis(0));
        assert_eq!(
            p.decide_group(other, g, Requirement::ProjectReadOnly),
            Decision::NotFound
        );
        assert_eq!(
            p.decide_org(p.org_id, Requirement::OrgOwner),
            Decision::Allow
        );
    }

    #[test]
    fn access_managers_cannot_escalate() {
        let g = GroupId::generate(from_millis(0));
        let am = principal(
            vec![OrgRole::Member],
            vec![(g, vec![GroupRole::AccessManager, GroupRole::ReadOnly])],
        );
        let org = am.org_id;
        assert!(am.may_assign_group_roles(org, g, &[GroupRole::ReadOnly]));
        assert!(am.may_assign_group_roles(org, g, &[GroupRole::AccessManager]));
        assert!(!am.may_assign_group_roles(org, g, &[GroupRole::Owner]));
        assert!(!am.may_assign_group_roles(org, g, &[GroupRole::ClusterManager]));
        assert!(am.may_manage_member(org, g, &[OrgRole::Member], &[GroupRole::ReadOnly]));
        assert!(!am.may_manage_member(org, g, &[OrgRole::Member], &[GroupRole::Owner]));
        assert!(!am.may_manage_member(org, g, &[OrgRole::Owner], &[GroupRole::ReadOnly]));
        let owner = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::Owner])]);
        assert!(owner.may_assign_group_roles(owner.org_id, g, &[GroupRole::Owner]));
        assert!(owner.may_manage_member(owner.org_id, g, &[OrgRole::Owner], &[GroupRole::Owner]));
        let org_owner = principal(vec![OrgRole::Owner], vec![]);
        assert!(org_owner.may_assign_group_roles(org_owner.org_id, g, &[GroupRole::Owner]));
    }

    #[test]
    fn member_without_project_role_is_forbidden() {
        let g = GroupId::generate(from_millis(0));
        let h = GroupId::generate(from_millis(0));
        let p = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::ReadOnly])]);
        assert_eq!(
            p.decide_org(p.org_id, Requirement::OrgOwner),
            Decision::Forbidden
        );
        assert_eq!(
            p.decide_group(p.org_id, g, Requirement::ProjectReadOnly),
            Decision::Allow
        );
        assert_eq!(
            p.decide_group(p.org_id, g, Requirement::ProjectOwner),
            Decision::Forbidden
        );
        assert_eq!(
            p.decide_group(p.org_id, h, Requirement::ProjectReadOnly),
            Decision::Forbidden
        );
        assert!(p.can_list_group(p.org_id, g));
        assert!(!p.can_list_group(p.org_id, h));
    }

    #[test]
    fn visible_groups_follow_the_org_role() {
        let g = GroupId::generate(from_millis(0));
        let h = GroupId::generate(from_millis(1000));
        for role in [OrgRole::Owner, OrgRole::ReadOnly] {
            let p = principal(vec![OrgRole::Member, role], vec![]);
            assert_eq!(p.visible_groups(p.org_id), GroupVisibility::All, "{role}");
        }
        for role in [
            OrgRole::Member,
            OrgRole::GroupCreator,
            OrgRole::BillingAdmin,
            OrgRole::BillingReadOnly,
        ] {
            let p = principal(
                vec![role],
                vec![(h, vec![GroupRole::ReadOnly]), (g, vec![GroupRole::Owner])],
            );
            let mut both = vec![g, h];
            both.sort();
            assert_eq!(
                p.visible_groups(p.org_id),
                GroupVisibility::Only(both),
                "{role}"
            );
            // Nothing of another organization.
            let other = OrgId(crate::ObjectId::parse("000000000000000000000002").unwrap());
            assert_eq!(p.visible_groups(other), GroupVisibility::Only(vec![]));
        }
        let owner = principal(vec![OrgRole::Owner], vec![]);
        let other = OrgId(crate::ObjectId::parse("000000000000000000000002").unwrap());
        assert_eq!(owner.visible_groups(other), GroupVisibility::Only(vec![]));
    }

    #[test]
    fn an_org_log_shows_only_what_its_reader_may_read_where_it_happened() {
        let g = GroupId::generate(from_millis(0));
        let h = GroupId::generate(from_millis(1000));
        let other = OrgId(crate::ObjectId::parse("000000000000000000000002").unwrap());
        // A GROUP_READ_ONLY of g (an ORG_MEMBER): the org's own events and g's, not h's.
        let p = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::ReadOnly])]);
        assert_eq!(
            p.org_log_visibility(p.org_id),
            OrgLogVisibility {
                org_events: true,
                groups: GroupVisibility::Only(vec![g]),
            }
        );
        assert!(p.may_read_org_event(p.org_id, None));
        assert!(p.may_read_org_event(p.org_id, Some(g)));
        assert!(!p.may_read_org_event(p.org_id, Some(h)));
        assert_eq!(
            p.decide_group(p.org_id, h, Requirement::ProjectReadOnly),
            Decision::Forbidden,
            "the project log it would be refused"
        );
        // Org owners and org read-only read every project's events.
        for role in [OrgRole::Owner, OrgRole::ReadOnly] {
            let p = principal(vec![role], vec![]);
            let v = p.org_log_visibility(p.org_id);
            assert!(v.org_events, "{role}");
            assert_eq!(v.groups, GroupVisibility::All, "{role}");
            assert!(p.may_read_org_event(p.org_id, Some(h)), "{role}");
        }
        // Billing roles read the org's own events only, unless they hold a project role.
        let p = principal(vec![OrgRole::BillingAdmin], vec![]);
        assert_eq!(
            p.org_log_visibility(p.org_id).groups,
            GroupVisibility::Only(vec![])
        );
        assert!(!p.may_read_org_event(p.org_id, Some(g)));
        // Nothing of another org.
        let v = p.org_log_visibility(other);
        assert!(!v.org_events);
        assert_eq!(v.groups, GroupVisibility::Only(vec![]));
        assert!(!p.may_read_org_event(other, None));
    }

    #[test]
    fn managing_an_account_through_a_project_needs_its_whole_reach() {
        let g = GroupId::generate(from_millis(0));
        let h = GroupId::generate(from_millis(1000));
        let req = Requirement::ProjectOwner;
        let po = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::Owner])]);
        let org = po.org_id;
        // An org member assigned only here: yes.
        assert!(po.may_manage_account_via_group(org, g, req, &[OrgRole::Member], [g]));
        // Any org role beyond ORG_MEMBER: no (the promotion race of issue 6).
        for role in [OrgRole::Owner, OrgRole::ReadOnly, OrgRole::GroupCreator] {
            assert!(
                !po.may_manage_account_via_group(org, g, req, &[OrgRole::Member, role], [g]),
                "{role}"
            );
        }
        // Assigned to a project where the caller lacks the role: no.
        assert!(!po.may_manage_account_via_group(org, g, req, &[OrgRole::Member], [g, h]));
        let both = principal(
            vec![OrgRole::Member],
            vec![(g, vec![GroupRole::Owner]), (h, vec![GroupRole::Owner])],
        );
        assert!(both.may_manage_account_via_group(org, g, req, &[OrgRole::Member], [g, h]));
        // An access manager in the other project meets an access-manager requirement only.
        let am = principal(
            vec![OrgRole::Member],
            vec![
                (g, vec![GroupRole::Owner]),
                (h, vec![GroupRole::AccessManager]),
            ],
        );
        assert!(am.may_manage_account_via_group(
            org,
            g,
            Requirement::ProjectAccessManager,
            &[OrgRole::Member],
            [g, h]
        ));
        assert!(!am.may_manage_account_via_group(org, g, req, &[OrgRole::Member], [g, h]));
        // The org owner may manage anything in the org, but nothing elsewhere.
        let oo = principal(vec![OrgRole::Owner], vec![]);
        assert!(oo.may_manage_account_via_group(org, g, req, &[OrgRole::Owner], [g, h]));
        let other = OrgId(crate::ObjectId::parse("000000000000000000000002").unwrap());
        assert!(!oo.may_manage_account_via_group(other, g, req, &[OrgRole::Owner], [g]));
    }
}
