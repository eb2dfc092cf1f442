//! Who holds which role among an organization's people (`crate::people`): the role queries
//! the people rules and routes need, kept here with every other role comparison.

use crate::ids::GroupId;
use crate::people::{Member, PeopleError, Team};
use crate::roles::{GroupRole, OrgRole};
use crate::ValidationError;

impl Member {
    /// The member's own roles in a project, if it has any there.
    pub fn roles_in(&self, group: GroupId) -> Option<&[GroupRole]> {
        self.group_roles
            .get(&group)
            .map(Vec::as_slice)
            .filter(|r| !r.is_empty())
    }

    /// Whether the member holds nothing but what joining through a project gives: no project
    /// roles, and only the organization's least role.
    pub fn holds_nothing_of_its_own(&self) -> bool {
        self.group_roles.values().all(Vec::is_empty) && self.org_roles == [OrgRole::Member]
    }

    /// Whether the member holds `ORG_OWNER`.
    pub fn is_owner(&self) -> bool {
        self.org_roles.contains(&OrgRole::Owner)
    }
}

impl Team {
    /// The team's roles in a project, if it is assigned there.
    pub fn roles_in(&self, group: GroupId) -> Option<&[GroupRole]> {
        self.group_roles
            .get(&group)
            .map(Vec::as_slice)
            .filter(|r| !r.is_empty())
    }
}

/// Adds a role to a list once; `false` when it was there.
pub fn add_role<R: PartialEq + Copy>(roles: &mut Vec<R>, role: R) -> bool {
    if roles.contains(&role) {
        return false;
    }
    roles.push(role);
    true
}

/// Removes a role from a list that must keep one (`field` names it in the refusal): the last
/// role is not removed this way (the membership is).
pub fn remove_role<R: PartialEq + Copy>(
    field: &str,
    roles: &mut Vec<R>,
    role: R,
) -> Result<(), PeopleError> {
    if roles.len() == 1 && roles.contains(&role) {
        return Err(PeopleError::Invalid(ValidationError::new(
            field,
            "the last role is not removed this way; remove the membership instead",
        )));
    }
    roles.retain(|r| *r != role);
    Ok(())
}

/// The organization roles of a person who joins through a project only (`ORG_MEMBER`), or
/// those given.
pub fn org_roles_or_member(given: Vec<OrgRole>) -> Vec<OrgRole> {
    if given.is_empty() {
        vec![OrgRole::Member]
    } else {
        given
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_role_stays() {
        let mut r = vec![OrgRole::Member, OrgRole::ReadOnly];
        assert!(!add_role(&mut r, OrgRole::Member));
        assert!(remove_role("orgRole", &mut r, OrgRole::Member).is_ok());
        assert_eq!(r, vec![OrgRole::ReadOnly]);
        assert!(remove_role("orgRole", &mut r, OrgRole::ReadOnly).is_err());
        // Removing a role not held changes nothing, and is not refused.
        assert!(remove_role("orgRole", &mut r, OrgRole::Owner).is_ok());
        assert_eq!(r, vec![OrgRole::ReadOnly]);
        assert_eq!(org_roles_or_member(vec![]), vec![OrgRole::Member]);
    }
}
