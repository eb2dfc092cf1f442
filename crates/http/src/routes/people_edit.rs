//! How a request changes an organization's people: [`Edit`] carries the handler's change (a
//! closure over `tessera_domain::people::OrgPeople`) and turns what changed into events, and
//! the store runs it in one unit of work ([`edit`]); [`refused`] is how a refusal answers.

use axum::http::StatusCode;
use serde_json::json;
use tessera_domain::people::{OrgPeople, PeopleChange, PeopleError};
use tessera_domain::{EventType, GroupId, OrgId, Principal, TeamId, UserId};
use tessera_store::events::NewEvent;
use tessera_store::{Edited, PeopleEdit, StoreError};

use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The handler's change, and how what changed becomes events.
pub struct Edit<'a, F> {
    state: &'a AppState,
    caller: &'a Principal,
    change: Option<F>,
}

impl<'a, F> Edit<'a, F>
where
    F: FnOnce(&mut OrgPeople) -> Result<(), PeopleError> + Send,
{
    pub fn new(state: &'a AppState, caller: &'a Principal, change: F) -> Self {
        Self {
            state,
            caller,
            change: Some(change),
        }
    }
}

impl<F> PeopleEdit for Edit<'_, F>
where
    F: FnOnce(&mut OrgPeople) -> Result<(), PeopleError> + Send,
{
    fn apply(&mut self, people: &mut OrgPeople) -> Result<(), PeopleError> {
        match self.change.take() {
            Some(f) => f(people),
            None => Ok(()),
        }
    }

    fn events(
        &self,
        before: &OrgPeople,
        after: &OrgPeople,
        changes: &[PeopleChange],
    ) -> Vec<NewEvent> {
        people_events(self.state, self.caller, before, after, changes)
    }
}

/// The events of what an edit changed (docs/events.md, "People").
pub fn people_events(
    state: &AppState,
    caller: &Principal,
    before: &OrgPeople,
    after: &OrgPeople,
    changes: &[PeopleChange],
) -> Vec<NewEvent> {
    let org = after.org;
    let name = |u: &UserId| {
        after
            .member(*u)
            .or_else(|| before.member(*u))
            .map(|m| m.user.username.clone())
            .unwrap_or_default()
    };
    let user = |u: &UserId| vec![("targetUsername", name(u)), ("targetUserId", u.to_string())];
    let team = |t: &TeamId| vec![("teamId", t.to_string())];
    let ev = |t, group: Option<GroupId>, target| audit::event(state, caller, t, org, group, target);
    changes
        .iter()
        .map(|c| match c {
            PeopleChange::Invited(u) => ev(EventType::InvitedToOrg, None, user(u)),
            PeopleChange::Joined(u) => ev(EventType::JoinedOrg, None, user(u)),
            PeopleChange::Removed {
                user: u,
                was_pending,
            } => ev(
                if *was_pending {
                    EventType::OrgInvitationDeleted
                } else {
                    EventType::RemovedFromOrg
                },
                None,
                user(u),
            ),
            PeopleChange::OrgRolesChanged(u) => ev(EventType::UserRolesChanged, None, user(u)),
            PeopleChange::GroupRoles {
                user: u,
                group,
                before,
                after,
            } => ev(
                match (before, after) {
                    (false, _) => EventType::JoinedGroup,
                    (true, false) => EventType::RemovedFromGroup,
                    (true, true) => EventType::UserRolesChanged,
                },
                Some(*group),
                user(u),
            ),
            PeopleChange::TeamCreated(t) => ev(EventType::TeamCreated, None, team(t)),
            PeopleChange::TeamDeleted(t) => ev(EventType::TeamDeleted, None, team(t)),
            PeopleChange::TeamRenamed(t) => ev(EventType::TeamNameChanged, None, team(t)),
            PeopleChange::TeamMemberAdded { team: t, user: u } => {
                let mut target = team(t);
                target.extend(user(u));
                ev(EventType::JoinedTeam, None, target)
            }
            PeopleChange::TeamMemberRemoved { team: t, user: u } => {
                let mut target = team(t);
                target.extend(user(u));
                ev(EventType::RemovedFromTeam, None, target)
            }
            PeopleChange::TeamGroupRoles {
                team: t,
                group,
                before,
                after,
            } => ev(
                match (before, after) {
                    (false, _) => EventType::TeamAddedToGroup,
                    (true, false) => EventType::TeamRemovedFromGroup,
                    (true, true) => EventType::TeamRolesModified,
                },
                Some(*group),
                team(t),
            ),
        })
        .collect()
}

/// A refused edit as the API answers it.
pub fn refused(e: PeopleError) -> ApiError {
    let detail = e.to_string();
    match e {
        PeopleError::LastOwner => ApiError::new(StatusCode::CONFLICT, "LAST_ORG_OWNER", detail),
        PeopleError::UserNotFound(id) => {
            ApiError::new(StatusCode::NOT_FOUND, "USER_NOT_FOUND", detail).with_params([json!(id)])
        }
        PeopleError::AlreadyMember(name) => {
            ApiError::new(StatusCode::CONFLICT, "USER_ALREADY_IN_ORG", detail)
                .with_params([json!(name)])
        }
        PeopleError::TeamNotFound(id) => {
            ApiError::new(StatusCode::NOT_FOUND, "TEAM_NOT_FOUND", detail).with_params([json!(id)])
        }
        PeopleError::TeamNameTaken(name) => {
            ApiError::new(StatusCode::CONFLICT, "DUPLICATE_TEAM_NAME", detail)
                .with_params([json!(name)])
        }
        PeopleError::TeamTooLarge => ApiError::validation(detail),
        PeopleError::NotInProject(id) => {
            ApiError::new(StatusCode::NOT_FOUND, "USER_NOT_IN_GROUP", detail)
                .with_params([json!(id)])
        }
        PeopleError::TeamNotInProject(id) => {
            ApiError::new(StatusCode::NOT_FOUND, "TEAM_NOT_IN_GROUP", detail)
                .with_params([json!(id)])
        }
        PeopleError::InvitationNotFound(id) => {
            ApiError::new(StatusCode::NOT_FOUND, "INVITATION_NOT_FOUND", detail)
                .with_params([json!(id)])
        }
        PeopleError::Invalid(v) => v.into(),
    }
}

/// Runs an edit of `org`'s people; the document after it.
pub async fn edit<F>(
    state: &AppState,
    caller: &Principal,
    org: OrgId,
    change: F,
) -> ApiResult<OrgPeople>
where
    F: FnOnce(&mut OrgPeople) -> Result<(), PeopleError> + Send,
{
    let mut e = Edit::new(state, caller, change);
    let now = state.clock.now();
    done(state.store.edit_people(org, now, &mut e).await, org)
}

/// An edit's outcome as an answer.
pub fn done(outcome: Result<Edited, StoreError>, org: OrgId) -> ApiResult<OrgPeople> {
    match outcome {
        Ok(Edited::Done { people, .. }) => Ok(people),
        Ok(Edited::Refused(e)) => Err(refused(e)),
        Ok(Edited::NoOrg) => Err(ApiError::org_not_found(&org.to_string())),
        Err(StoreError::Conflict("username")) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "USER_ALREADY_EXISTS",
            "A user with this username already exists.",
        )),
        Err(StoreError::Conflict("group")) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "GROUP_DELETED",
            "A project named in the request was deleted meanwhile.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The organization's people now (expired invitations gone).
pub async fn people_of(state: &AppState, org: OrgId) -> ApiResult<OrgPeople> {
    Ok(state
        .store
        .org_people(org)
        .await?
        .without_expired(state.clock.now()))
}
