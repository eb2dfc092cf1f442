//! People: MongoDB Cloud users, their memberships in an organization and its projects, teams,
//! and invitations (a pending membership).
//!
//! An organization's people are one document ([`OrgPeople`]): its members, each with its own
//! organization roles and project roles, and its teams, each with its members and its project
//! roles. A change is described once, as an edit of that document, and the rules are checked
//! on the document after the edit ([`OrgPeople::check`]: the last owner stays, a team's members
//! are the organization's, team names are unique); what it changed, and so which events it
//! writes, is [`changes`] between the document before and after. The store runs the edit in
//! one unit of work (it holds the organization's row while it reads, edits and writes).
//!
//! A user's roles are its own plus its teams' ([`OrgPeople::effective_roles`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::ids::{GroupId, InvitationId, OrgId, TeamId, UserId};
use crate::names::refuse_invisible;
use crate::roles::{GroupRole, OrgRole};
use crate::ValidationError;

/// How long an invitation stays open (Atlas: 30 days).
pub const INVITATION_DAYS: i64 = 30;
/// Most members of one team (Atlas: 250).
pub const MAX_TEAM_MEMBERS: usize = 250;

/// Roles by project.
pub type ProjectRoles = BTreeMap<GroupId, Vec<GroupRole>>;

/// A MongoDB Cloud user: a person, who may belong to several organizations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudUser {
    pub id: UserId,
    /// The user's name, an email address, kept in lower case (names are case-insensitive).
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country: Option<String>,
    pub mobile_number: Option<String>,
    /// The password's argon2id hash (PHC string); `None` for a user known only by an
    /// invitation, who sets one when accepting it.
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Parses a username: an email address, at most 254 characters, compared in lower case.
pub fn parse_username(field: &str, raw: &str) -> Result<String, ValidationError> {
    refuse_invisible(field, raw)?;
    let s = raw.trim();
    let bad = || ValidationError::new(field, "must be an email address");
    if s.len() > 254 || s != raw || s.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty() || domain.is_empty() || local.contains('@') || !domain.contains('.') {
        return Err(bad());
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(bad());
    }
    Ok(s.to_lowercase())
}

/// Parses a person's name (first or last): 1 to 64 characters, nothing invisible.
pub fn parse_person_name(field: &str, raw: &str) -> Result<String, ValidationError> {
    refuse_invisible(field, raw)?;
    let n = raw.trim().chars().count();
    if n == 0 || n > 64 {
        return Err(ValidationError::new(field, "must be 1 to 64 characters"));
    }
    Ok(raw.trim().to_owned())
}

/// Parses a team name: 1 to 255 characters, nothing invisible (Atlas gives no pattern).
pub fn parse_team_name(raw: &str) -> Result<String, ValidationError> {
    refuse_invisible("name", raw)?;
    let n = raw.chars().count();
    if n == 0 || n > 255 || raw.trim() != raw {
        return Err(ValidationError::new(
            "name",
            "must be 1 to 255 characters, without leading or trailing spaces",
        ));
    }
    Ok(raw.to_owned())
}

/// An open invitation: a membership that waits for the person to accept it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    /// Who invited: an API key's public key or a service account's client id.
    pub inviter: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Invitation {
    pub fn new(inviter: String, now: DateTime<Utc>) -> Self {
        Self {
            id: InvitationId::generate(now),
            inviter,
            created_at: now,
            expires_at: now + Duration::days(INVITATION_DAYS),
        }
    }
}

/// A user's membership in an organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user: CloudUser,
    /// `Some` while the membership is pending (the person has not accepted the invitation).
    pub invitation: Option<Invitation>,
    pub org_roles: Vec<OrgRole>,
    /// The user's own roles in the organization's projects (not its teams').
    pub group_roles: BTreeMap<GroupId, Vec<GroupRole>>,
}

impl Member {
    pub fn is_active(&self) -> bool {
        self.invitation.is_none()
    }

    /// Whether a pending membership's invitation has expired: it is then gone.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.invitation
            .as_ref()
            .is_some_and(|i| i.expires_at <= now)
    }
}

/// A team: some of the organization's users, who share project roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    pub members: BTreeSet<UserId>,
    pub group_roles: BTreeMap<GroupId, Vec<GroupRole>>,
    pub created_at: DateTime<Utc>,
}

/// An organization's people: the document every change to them edits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgPeople {
    pub org: OrgId,
    pub members: Vec<Member>,
    pub teams: Vec<Team>,
}

/// Why an edit of an organization's people is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeopleError {
    #[error("The organization must keep at least one Organization Owner.")]
    LastOwner,
    #[error("User {0} is not a member of the organization.")]
    UserNotFound(String),
    #[error("User {0} is already a member of the organization.")]
    AlreadyMember(String),
    #[error("Team {0} not found in the organization.")]
    TeamNotFound(String),
    #[error("A team named {0} already exists in the organization.")]
    TeamNameTaken(String),
    #[error("A team has at most {MAX_TEAM_MEMBERS} members.")]
    TeamTooLarge,
    #[error("User {0} has no roles in the project.")]
    NotInProject(String),
    #[error("Team {0} is not assigned to the project.")]
    TeamNotInProject(String),
    #[error("Invitation {0} not found.")]
    InvitationNotFound(String),
    #[error("{0}")]
    Invalid(ValidationError),
}

impl From<ValidationError> for PeopleError {
    fn from(e: ValidationError) -> Self {
        PeopleError::Invalid(e)
    }
}

impl OrgPeople {
    pub fn empty(org: OrgId) -> Self {
        Self {
            org,
            members: Vec::new(),
            teams: Vec::new(),
        }
    }

    /// Drops pending memberships whose invitation has expired (they are gone at expiry).
    pub fn without_expired(mut self, now: DateTime<Utc>) -> Self {
        let gone: BTreeSet<UserId> = self
            .members
            .iter()
            .filter(|m| m.is_expired(now))
            .map(|m| m.user.id)
            .collect();
        self.members.retain(|m| !gone.contains(&m.user.id));
        for t in &mut self.teams {
            t.members.retain(|u| !gone.contains(u));
        }
        self
    }

    pub fn member(&self, id: UserId) -> Option<&Member> {
        self.members.iter().find(|m| m.user.id == id)
    }

    pub fn member_mut(&mut self, id: UserId) -> Result<&mut Member, PeopleError> {
        self.members
            .iter_mut()
            .find(|m| m.user.id == id)
            .ok_or_else(|| PeopleError::UserNotFound(id.to_string()))
    }

    pub fn member_named(&self, username: &str) -> Option<&Member> {
        let name = username.to_lowercase();
        self.members.iter().find(|m| m.user.username == name)
    }

    pub fn member_by_invitation(&self, id: InvitationId) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.invitation.as_ref().is_some_and(|i| i.id == id))
    }

    pub fn team(&self, id: TeamId) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    pub fn team_mut(&mut self, id: TeamId) -> Result<&mut Team, PeopleError> {
        self.teams
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| PeopleError::TeamNotFound(id.to_string()))
    }

    pub fn team_named(&self, name: &str) -> Option<&Team> {
        self.teams
            .iter()
            .find(|t| t.name.to_lowercase() == name.to_lowercase())
    }

    /// The teams a user belongs to.
    pub fn teams_of(&self, user: UserId) -> Vec<TeamId> {
        self.teams
            .iter()
            .filter(|t| t.members.contains(&user))
            .map(|t| t.id)
            .collect()
    }

    /// Adds a member; a user already in the organization is a conflict.
    pub fn add_member(&mut self, member: Member) -> Result<(), PeopleError> {
        if self.member(member.user.id).is_some()
            || self.member_named(&member.user.username).is_some()
        {
            return Err(PeopleError::AlreadyMember(member.user.username));
        }
        self.members.push(member);
        Ok(())
    }

    /// Removes a member from the organization, its projects and its teams.
    pub fn remove_member(&mut self, id: UserId) -> Result<Member, PeopleError> {
        let at = self
            .members
            .iter()
            .position(|m| m.user.id == id)
            .ok_or_else(|| PeopleError::UserNotFound(id.to_string()))?;
        for t in &mut self.teams {
            t.members.remove(&id);
        }
        Ok(self.members.remove(at))
    }

    /// Sets the teams a user belongs to (each must be the organization's).
    pub fn set_teams_of(&mut self, user: UserId, teams: &[TeamId]) -> Result<(), PeopleError> {
        for id in teams {
            self.team(*id)
                .ok_or_else(|| PeopleError::TeamNotFound(id.to_string()))?;
        }
        for t in &mut self.teams {
            if teams.contains(&t.id) {
                t.members.insert(user);
            } else {
                t.members.remove(&user);
            }
        }
        Ok(())
    }

    /// Active members holding `ORG_OWNER`.
    pub fn active_owners(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.is_active() && m.is_owner())
            .count()
    }

    /// A user's roles: its own, plus its teams' project roles. `None` if not a member.
    pub fn effective_roles(&self, user: UserId) -> Option<(Vec<OrgRole>, ProjectRoles)> {
        let m = self.member(user)?;
        let mut groups = m.group_roles.clone();
        for t in self.teams.iter().filter(|t| t.members.contains(&user)) {
            for (g, roles) in &t.group_roles {
                let mine = groups.entry(*g).or_default();
                for r in roles {
                    if !mine.contains(r) {
                        mine.push(*r);
                    }
                }
            }
        }
        Some((m.org_roles.clone(), groups))
    }

    /// A person acting in this organization: an active member, with its own roles and its
    /// teams' project roles, decided by the same authorization as every credential.
    pub fn principal(
        &self,
        user: UserId,
        remote_address: Option<std::net::IpAddr>,
    ) -> Option<crate::Principal> {
        let m = self.member(user).filter(|m| m.is_active())?;
        let (org_roles, groups) = self.effective_roles(user)?;
        Some(crate::Principal {
            kind: crate::PrincipalKind::User {
                id: user,
                username: m.user.username.clone(),
            },
            org_id: self.org,
            org_roles,
            group_roles: groups.into_iter().collect(),
            remote_address,
        })
    }

    /// The rules every edit must leave true, given the document before it: an organization
    /// that had an active owner keeps one; a team's members are the organization's and at
    /// most [`MAX_TEAM_MEMBERS`]; team names are unique (case-insensitive); nobody holds an
    /// empty role list in a project (an empty list is no membership).
    pub fn check(&self, before: &OrgPeople) -> Result<(), PeopleError> {
        if before.active_owners() > 0 && self.active_owners() == 0 {
            return Err(PeopleError::LastOwner);
        }
        let mut names = BTreeSet::new();
        for t in &self.teams {
            if !names.insert(t.name.to_lowercase()) {
                return Err(PeopleError::TeamNameTaken(t.name.clone()));
            }
            if t.members.len() > MAX_TEAM_MEMBERS {
                return Err(PeopleError::TeamTooLarge);
            }
            if let Some(u) = t.members.iter().find(|u| self.member(**u).is_none()) {
                return Err(PeopleError::UserNotFound(u.to_string()));
            }
        }
        Ok(())
    }

    /// Removes empty project role lists (no roles means not in the project).
    pub fn tidy(&mut self) {
        for m in &mut self.members {
            m.group_roles.retain(|_, r| !r.is_empty());
        }
        for t in &mut self.teams {
            t.group_roles.retain(|_, r| !r.is_empty());
        }
    }
}

/// One thing an edit changed: what an event records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeopleChange {
    /// A pending membership was created (an invitation).
    Invited(UserId),
    /// An active membership was created.
    Joined(UserId),
    /// A membership ended (an active member removed, or a pending invitation deleted).
    Removed {
        user: UserId,
        was_pending: bool,
    },
    /// A member's organization roles changed.
    OrgRolesChanged(UserId),
    /// A member's own roles in a project changed: added to it, removed from it, or changed.
    GroupRoles {
        user: UserId,
        group: GroupId,
        before: bool,
        after: bool,
    },
    TeamCreated(TeamId),
    TeamDeleted(TeamId),
    TeamRenamed(TeamId),
    TeamMemberAdded {
        team: TeamId,
        user: UserId,
    },
    TeamMemberRemoved {
        team: TeamId,
        user: UserId,
    },
    /// A team's roles in a project: assigned, unassigned, or changed.
    TeamGroupRoles {
        team: TeamId,
        group: GroupId,
        before: bool,
        after: bool,
    },
}

/// What changed from `before` to `after`, in a stable order (members, then teams).
pub fn changes(before: &OrgPeople, after: &OrgPeople) -> Vec<PeopleChange> {
    let mut out = Vec::new();
    for b in &before.members {
        if after.member(b.user.id).is_none() {
            out.push(PeopleChange::Removed {
                user: b.user.id,
                was_pending: !b.is_active(),
            });
        }
    }
    for a in &after.members {
        let id = a.user.id;
        let b = before.member(id);
        match b {
            None if a.is_active() => out.push(PeopleChange::Joined(id)),
            None => out.push(PeopleChange::Invited(id)),
            Some(b) if b.is_active() != a.is_active() && a.is_active() => {
                out.push(PeopleChange::Joined(id))
            }
            Some(b) if sorted(&b.org_roles) != sorted(&a.org_roles) => {
                out.push(PeopleChange::OrgRolesChanged(id))
            }
            Some(_) => {}
        }
        let empty = BTreeMap::new();
        let before_groups = b.map_or(&empty, |b| &b.group_roles);
        for (group, before, after) in role_diff(before_groups, &a.group_roles) {
            out.push(PeopleChange::GroupRoles {
                user: id,
                group,
                before,
                after,
            });
        }
    }
    for b in &before.teams {
        if after.team(b.id).is_none() {
            out.push(PeopleChange::TeamDeleted(b.id));
        }
    }
    for a in &after.teams {
        let b = before.team(a.id);
        match b {
            None => out.push(PeopleChange::TeamCreated(a.id)),
            Some(b) if b.name != a.name => out.push(PeopleChange::TeamRenamed(a.id)),
            Some(_) => {}
        }
        let none = BTreeSet::new();
        let before_members = b.map_or(&none, |b| &b.members);
        for u in a.members.difference(before_members) {
            out.push(PeopleChange::TeamMemberAdded {
                team: a.id,
                user: *u,
            });
        }
        // A member who left the organization left its teams with it: one event says so.
        for u in before_members.difference(&a.members) {
            if after.member(*u).is_some() {
                out.push(PeopleChange::TeamMemberRemoved {
                    team: a.id,
                    user: *u,
                });
            }
        }
        let empty = BTreeMap::new();
        let before_groups = b.map_or(&empty, |b| &b.group_roles);
        for (group, before, after) in role_diff(before_groups, &a.group_roles) {
            out.push(PeopleChange::TeamGroupRoles {
                team: a.id,
                group,
                before,
                after,
            });
        }
    }
    out
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Projects whose role list differs: (project, had roles before, has roles after).
fn role_diff(
    before: &BTreeMap<GroupId, Vec<GroupRole>>,
    after: &BTreeMap<GroupId, Vec<GroupRole>>,
) -> Vec<(GroupId, bool, bool)> {
    let groups: BTreeSet<GroupId> = before.keys().chain(after.keys()).copied().collect();
    groups
        .into_iter()
        .filter_map(|g| {
            let b = before.get(&g).map(|r| sorted(r)).unwrap_or_default();
            let a = after.get(&g).map(|r| sorted(r)).unwrap_or_default();
            (b != a).then_some((g, !b.is_empty(), !a.is_empty()))
        })
        .collect()
}

/// The organization roles of a new organization's first owner (`orgOwnerId`).
pub fn org_roles_of_owner() -> Vec<OrgRole> {
    vec![OrgRole::Owner]
}

/// The organization roles of a person invited to the organization through a project (Atlas:
/// the organization's least role).
pub fn org_roles_through_project() -> Vec<OrgRole> {
    org_roles_or_member(Vec::new())
}

pub use crate::authorization::membership::{add_role, org_roles_or_member, remove_role};

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn user(name: &str) -> CloudUser {
        CloudUser {
            id: UserId::generate(now()),
            username: name.into(),
            first_name: None,
            last_name: None,
            country: None,
            mobile_number: None,
            password_hash: None,
            created_at: now(),
        }
    }

    fn member(name: &str, roles: &[OrgRole], pending: bool) -> Member {
        Member {
            user: user(name),
            invitation: pending.then(|| Invitation::new("k".into(), now())),
            org_roles: roles.to_vec(),
            group_roles: BTreeMap::new(),
        }
    }

    fn org() -> OrgPeople {
        OrgPeople::empty(OrgId::generate(now()))
    }

    #[test]
    fn usernames_are_emails_in_lower_case() {
        assert_eq!(
            parse_username("u", "Ada@Example.COM").ok(),
            Some("ada@example.com".into())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@x.io",
            "a b@x.io",
            " a@x.io",
            "a@x",
            "a@.x.io",
            "a@x..io",
            "a\u{202e}@x.io",
        ] {
            assert!(parse_username("u", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_last_active_owner_stays() {
        let mut before = org();
        before
            .add_member(member("a@x.io", &[OrgRole::Owner], false))
            .ok();
        before
            .add_member(member("b@x.io", &[OrgRole::Owner], true))
            .ok();
        let a = before.members[0].user.id;
        let mut after = before.clone();
        after
            .member_mut(a)
            .map(|m| m.org_roles = vec![OrgRole::Member])
            .ok();
        // A pending owner is no owner yet.
        assert_eq!(after.check(&before), Err(PeopleError::LastOwner));
        let mut removed = before.clone();
        removed.remove_member(a).ok();
        assert_eq!(removed.check(&before), Err(PeopleError::LastOwner));
        // With a second active owner either change is allowed.
        let mut two = before.clone();
        two.add_member(member("c@x.io", &[OrgRole::Owner], false))
            .ok();
        let mut after = two.clone();
        after.remove_member(a).ok();
        assert_eq!(after.check(&two), Ok(()));
        // An organization that never had a user owner (made by an API key) may stay so.
        let none = org();
        let mut after = none.clone();
        after
            .add_member(member("d@x.io", &[OrgRole::Member], true))
            .ok();
        assert_eq!(after.check(&none), Ok(()));
    }

    #[test]
    fn roles_are_own_plus_teams() {
        let mut p = org();
        p.add_member(member("a@x.io", &[OrgRole::Member], false))
            .ok();
        let a = p.members[0].user.id;
        let g = GroupId::generate(now());
        p.member_mut(a)
            .map(|m| m.group_roles.insert(g, vec![GroupRole::ReadOnly]))
            .ok();
        p.teams.push(Team {
            id: TeamId::generate(now()),
            name: "ops".into(),
            members: [a].into(),
            group_roles: [(g, vec![GroupRole::ClusterManager, GroupRole::ReadOnly])].into(),
            created_at: now(),
        });
        let (org_roles, groups) = p.effective_roles(a).unwrap_or_default();
        assert_eq!(org_roles, vec![OrgRole::Member]);
        assert_eq!(
            groups.get(&g),
            Some(&vec![GroupRole::ReadOnly, GroupRole::ClusterManager])
        );
    }

    #[test]
    fn changes_name_what_happened_once() {
        let mut before = org();
        before
            .add_member(member("a@x.io", &[OrgRole::Owner], false))
            .ok();
        before
            .add_member(member("b@x.io", &[OrgRole::Member], false))
            .ok();
        let (a, b) = (before.members[0].user.id, before.members[1].user.id);
        let t = TeamId::generate(now());
        before.teams.push(Team {
            id: t,
            name: "ops".into(),
            members: [a, b].into(),
            group_roles: BTreeMap::new(),
            created_at: now(),
        });
        assert!(changes(&before, &before.clone()).is_empty());
        let mut after = before.clone();
        after.remove_member(b).ok();
        after
            .add_member(member("c@x.io", &[OrgRole::Member], true))
            .ok();
        let c = after.members[1].user.id;
        let ch = changes(&before, &after);
        assert_eq!(
            ch,
            vec![
                PeopleChange::Removed {
                    user: b,
                    was_pending: false
                },
                PeopleChange::Invited(c)
            ],
            "leaving the org says nothing more about its teams"
        );
        let mut renamed = before.clone();
        renamed.teams[0].name = "sre".into();
        assert_eq!(
            changes(&before, &renamed),
            vec![PeopleChange::TeamRenamed(t)]
        );
    }

    #[test]
    fn team_rules() {
        let mut before = org();
        before
            .add_member(member("a@x.io", &[OrgRole::Member], false))
            .ok();
        let mut after = before.clone();
        for name in ["ops", "OPS"] {
            after.teams.push(Team {
                id: TeamId::generate(now()),
                name: name.into(),
                members: BTreeSet::new(),
                group_roles: BTreeMap::new(),
                created_at: now(),
            });
        }
        assert_eq!(
            after.check(&before),
            Err(PeopleError::TeamNameTaken("OPS".into()))
        );
        after.teams.pop();
        after.teams[0].members.insert(UserId::generate(now()));
        assert!(matches!(
            after.check(&before),
            Err(PeopleError::UserNotFound(_))
        ));
        assert!(parse_team_name(" ops").is_err() && parse_team_name("").is_err());
    }

    #[test]
    fn invitations_end_by_the_clock() {
        let mut p = org();
        p.add_member(member("a@x.io", &[OrgRole::Member], true))
            .ok();
        let a = p.members[0].user.id;
        p.teams.push(Team {
            id: TeamId::generate(now()),
            name: "ops".into(),
            members: [a].into(),
            group_roles: BTreeMap::new(),
            created_at: now(),
        });
        let end = now() + Duration::days(INVITATION_DAYS);
        let kept = p.clone().without_expired(end - Duration::milliseconds(1));
        assert_eq!(kept.members.len(), 1);
        let gone = p.without_expired(end);
        assert!(gone.members.is_empty() && gone.teams[0].members.is_empty());
    }
}
