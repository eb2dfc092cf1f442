//! The decisions of a [`Principal`]: a route's [`Rule`] for an org or a project, the finer
//! decisions some rules add, and what a caller's lists show.

use std::net::IpAddr;

use super::{Credential, On, Requirement, Rule};
use crate::ids::{GroupId, OrgId};
use crate::principal::{Principal, PrincipalKind};
use crate::roles::{GroupRole, OrgRole};

/// The outcome of an authorization check. `NotFound` hides the existence of resources in
/// organizations the caller has no role in (ours: ids can't be probed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Forbidden,
    NotFound,
}

/// The roles of a credential being acted on (an API key or a service account): in its
/// organization, and per project it is assigned to.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    pub org_roles: &'a [OrgRole],
    pub group_roles: &'a [(GroupId, Vec<GroupRole>)],
}

/// A holder's roles in project `group`, or `None` when it is not assigned there (for API keys
/// and service accounts, whose project roles are kept as (project, roles) pairs).
pub fn project_roles(
    group_roles: &[(GroupId, Vec<GroupRole>)],
    group: GroupId,
) -> Option<&[GroupRole]> {
    group_roles
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, roles)| roles.as_slice())
}

impl Principal {
    fn org_roles_in(&self, org: OrgId) -> &[OrgRole] {
        if org == self.org_id {
            &self.org_roles
        } else {
            &[]
        }
    }

    fn roles_in_group(&self, group: GroupId) -> &[GroupRole] {
        self.group_roles
            .get(&group)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether this principal is `credential`.
    fn is(&self, credential: Credential) -> bool {
        match (&self.kind, credential) {
            (PrincipalKind::ApiKey { id, .. }, Credential::ApiKey(key)) => *id == key,
            (PrincipalKind::ServiceAccount { client_id, .. }, Credential::ServiceAccount(c)) => {
                *client_id == c
            }
            _ => false,
        }
    }

    /// The decision of a route's `rule` on `on` (404 before 403). A rule that does not apply
    /// to `on` (a table mistake), or that is about credentials rather than roles, is
    /// `Forbidden`.
    pub fn authorize(&self, rule: Rule, on: On) -> Decision {
        match (rule.base(), on) {
            (Rule::Public | Rule::Authenticated, _) => Decision::Allow,
            (Rule::CreateOrg, On::Own) => {
                if self.may_create_org() {
                    Decision::Allow
                } else {
                    Decision::Forbidden
                }
            }
            (Rule::Org(req) | Rule::Membership { org: req, .. }, On::Org(org)) => {
                self.decide_org(org, req)
            }
            (Rule::Membership { group: req, .. }, On::Group { org, group }) => {
                self.decide_group(org, group, req)
            }
            (
                Rule::Group(req) | Rule::GroupMember(req) | Rule::GroupAccount(req),
                On::Group { org, group },
            ) => self.decide_group(org, group, req),
            _ => Decision::Forbidden,
        }
    }

    /// Decision for an org-level resource of `org`.
    pub(crate) fn decide_org(&self, org: OrgId, req: Requirement) -> Decision {
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
    fn may_create_org(&self) -> bool {
        self.decide_org(self.org_id, Requirement::OrgOwner) == Decision::Allow
    }

    /// Decision for a resource of project `group` that belongs to `org`.
    pub(crate) fn decide_group(&self, org: OrgId, group: GroupId, req: Requirement) -> Decision {
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
    pub(crate) fn may_assign_group_roles(
        &self,
        org: OrgId,
        group: GroupId,
        roles: &[GroupRole],
    ) -> bool {
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
    pub(crate) fn may_manage_member(
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

    /// [`Rule::GroupMember`]'s further decision, after [`Principal::authorize`] allowed the
    /// route in project `group` of `org`: the API key acted on (`member`, when there is one)
    /// must reach no further than the caller, and the project roles handed out (`handing_out`,
    /// when the request sets roles) must be ones the caller could assign. Any other rule adds
    /// nothing (true).
    pub fn decide_member(
        &self,
        rule: Rule,
        org: OrgId,
        group: GroupId,
        member: Option<Holder<'_>>,
        handing_out: Option<&[GroupRole]>,
    ) -> bool {
        let Rule::GroupMember(_) = rule.base() else {
            return true;
        };
        let reach_ok = member.is_none_or(|m| {
            let in_group = project_roles(m.group_roles, group).unwrap_or(&[]);
            self.may_manage_member(org, group, m.org_roles, in_group)
        });
        reach_ok && handing_out.is_none_or(|roles| self.may_assign_group_roles(org, group, roles))
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
    pub(crate) fn may_manage_account_via_group(
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

    /// [`Rule::GroupAccount`]'s further decision, for a change to a service account as a whole
    /// made through project `group` of `org` (see [`Principal::may_manage_account_via_group`]
    /// for why). Any other rule adds nothing (true).
    ///
    /// Decide on the account as read under the registry's write lock, so a promotion that
    /// lands first is seen.
    pub fn may_change_account(
        &self,
        rule: Rule,
        org: OrgId,
        group: GroupId,
        account: Holder<'_>,
    ) -> bool {
        let Rule::GroupAccount(req) = rule.base() else {
            return true;
        };
        self.may_manage_account_via_group(
            org,
            group,
            req,
            account.org_roles,
            account.group_roles.iter().map(|(g, _)| *g),
        )
    }

    /// [`Rule::KeepsOwnAccess`]: when this principal is `list_owner`, removing an entry of its
    /// own access list with the request from `peer`, the address whose access must survive the
    /// removal (`peer`). `None`: nothing to keep (another credential's list, or a rule that
    /// does not guard it).
    pub fn own_address_to_keep(
        &self,
        rule: Rule,
        list_owner: Credential,
        peer: IpAddr,
    ) -> Option<IpAddr> {
        let Rule::KeepsOwnAccess(_) = rule else {
            return None;
        };
        self.is(list_owner).then_some(peer)
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
