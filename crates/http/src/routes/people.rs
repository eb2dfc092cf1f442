//! People, organization side ("MongoDB Cloud Users"): `/orgs/{orgId}/users` (2025-02-19:
//! pending and active members, their roles and teams; `…/{userId}:addRole|:removeRole`;
//! `…/{userId}/roles`, 2023-01-01) and `/users` (a person's account: create, get by id and by
//! name). Projects' side: `group_users`; teams: `teams`; invitations: `invitations`.
//!
//! Every change is an edit of the organization's people (`tessera_domain::people`), run by the
//! store in one unit of work; [`Edit`] carries the handler's change and turns what changed
//! into events, so an event is written only for what did change.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::authorization::On;
use tessera_domain::people::{
    self, CloudUser, Invitation, Member, OrgPeople, PeopleChange, PeopleError,
};
use tessera_domain::roles::{parse_role_list, GroupRole, OrgRole};
use tessera_domain::time::format;
use tessera_domain::{Decision, EventType, GroupId, OrgId, Principal, TeamId, UserId};
use tessera_store::events::NewEvent;
use tessera_store::{Edited, PeopleEdit, StoreError};

use super::{org_for, paginate, Base, Surface};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::{Pagination, Query};
use crate::render::Reply;
use crate::state::AppState;
use crate::version::Dialect;

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

/// `{groupId, groupRoles}` per project of a member (`GroupRoleAssignment`).
fn group_assignments(roles: &BTreeMap<GroupId, Vec<GroupRole>>) -> Value {
    json!(roles
        .iter()
        .map(|(g, r)| json!({"groupId": g.to_string(), "groupRoles": names(r)}))
        .collect::<Vec<_>>())
}

pub fn names<R: ToString>(roles: &[R]) -> Vec<String> {
    roles.iter().map(ToString::to_string).collect()
}

/// The fields of a person an active member shows.
pub fn person_fields(out: &mut Value, u: &CloudUser) {
    out["firstName"] = json!(u.first_name.clone().unwrap_or_default());
    out["lastName"] = json!(u.last_name.clone().unwrap_or_default());
    out["createdAt"] = json!(format(u.created_at));
    if let Some(c) = &u.country {
        out["country"] = json!(c);
    }
    if let Some(m) = &u.mobile_number {
        out["mobileNumber"] = json!(m);
    }
}

/// A pending member's invitation fields.
pub fn invitation_fields(out: &mut Value, i: &Invitation) {
    out["invitationCreatedAt"] = json!(format(i.created_at));
    out["invitationExpiresAt"] = json!(format(i.expires_at));
    out["inviterUsername"] = json!(i.inviter);
}

/// `OrgUserResponse` (2025-02-19).
pub fn org_user_out(people: &OrgPeople, m: &Member) -> Value {
    let mut out = json!({
        "id": m.user.id.to_string(),
        "username": m.user.username,
        "orgMembershipStatus": if m.is_active() { "ACTIVE" } else { "PENDING" },
        "roles": {
            "orgRoles": names(&m.org_roles),
            "groupRoleAssignments": group_assignments(&m.group_roles),
        },
        "teamIds": people.teams_of(m.user.id).iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    match &m.invitation {
        None => person_fields(&mut out, &m.user),
        Some(i) => invitation_fields(&mut out, i),
    }
    out
}

/// `CloudAppUser`: a person with every role it holds where the caller may see it (the v1.0
/// shape of a member, and `/users/{userId}`).
pub fn cloud_user_out(base: &str, u: &CloudUser, memberships: &[(&OrgPeople, &Member)]) -> Value {
    let mut roles = Vec::new();
    let mut teams = Vec::new();
    for (people, m) in memberships {
        for r in &m.org_roles {
            roles.push(json!({"orgId": people.org.to_string(), "roleName": r.to_string()}));
        }
        if let Some((_, groups)) = people.effective_roles(m.user.id) {
            for (g, rs) in groups {
                for r in rs {
                    roles.push(json!({"groupId": g.to_string(), "roleName": r.to_string()}));
                }
            }
        }
        teams.extend(people.teams_of(u.id).iter().map(ToString::to_string));
    }
    let mut out = json!({
        "id": u.id.to_string(),
        "username": u.username,
        "emailAddress": u.username,
        "roles": roles,
        "teamIds": teams,
        "links": [{"href": format!("{base}/users/{}", u.id), "rel": "self"}],
    });
    person_fields(&mut out, u);
    out
}

/// The member the path's `userId` names, or 404.
pub fn member_of<'p>(people: &'p OrgPeople, raw: &str) -> ApiResult<&'p Member> {
    let id = UserId::parse(raw)?;
    people
        .member(id)
        .ok_or_else(|| refused(PeopleError::UserNotFound(raw.to_owned())))
}

/// Parses organization roles (at least one unless `allow_empty`).
pub fn org_roles(field: &str, raw: &[String], allow_empty: bool) -> ApiResult<Vec<OrgRole>> {
    parse_role_list::<OrgRole>(field, raw, allow_empty)
        .map_err(|e| ApiError::validation(format!("{e}.")))
}

pub fn group_roles(field: &str, raw: &[String], allow_empty: bool) -> ApiResult<Vec<GroupRole>> {
    parse_role_list::<GroupRole>(field, raw, allow_empty)
        .map_err(|e| ApiError::validation(format!("{e}.")))
}

/// `GroupRoleAssignment` in a request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupRolesIn {
    group_id: String,
    #[serde(default)]
    group_roles: Vec<String>,
}

/// Parses project role assignments; each project must be the organization's.
pub async fn group_roles_in(
    state: &AppState,
    org: OrgId,
    raw: &[GroupRolesIn],
) -> ApiResult<BTreeMap<GroupId, Vec<GroupRole>>> {
    let mut out = BTreeMap::new();
    for a in raw {
        let id = GroupId::parse(&a.group_id)?;
        let group = state.store.get_group(id).await?;
        if group.is_none_or(|g| g.org_id != org) {
            return Err(ApiError::group_not_found(&a.group_id));
        }
        let roles = group_roles("groupRoles", &a.group_roles, true)?;
        if out.insert(id, roles).is_some() {
            return Err(ApiError::validation(format!(
                "Project {} is assigned more than once.",
                a.group_id
            )));
        }
    }
    Ok(out)
}

/// Parses team ids (each must be the organization's: checked by the edit).
pub fn team_ids(raw: &[String]) -> ApiResult<Vec<TeamId>> {
    raw.iter().map(|t| Ok(TeamId::parse(t)?)).collect()
}

/// `listOrganizationUsers` (Organization Member): `username` and `orgMembershipStatus`
/// filter. The v1.0 surface lists `CloudAppUser`s, as Cloud Manager does.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Surface { base, dialect }: Surface,
    path: PathParams,
    page: Pagination,
    Query(q): Query,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let people = people_of(&state, org.id).await?;
    let username = q.get("username")?.map(str::to_lowercase);
    let status = q.get("orgMembershipStatus")?;
    if let Some(s) = status {
        if s != "ACTIVE" && s != "PENDING" {
            return Err(ApiError::invalid_enum("orgMembershipStatus", s));
        }
    }
    let members: Vec<&Member> = people
        .members
        .iter()
        .filter(|m| username.as_ref().is_none_or(|u| m.user.username == *u))
        .filter(|m| match status {
            Some("ACTIVE") => m.is_active(),
            Some(_) => !m.is_active(),
            None => true,
        })
        .collect();
    let listed = paginate(members, page.page());
    Ok(Reply::ok(page.list(listed, |m| match dialect {
        Dialect::V1 => cloud_user_out(&base, &m.user, &[(&people, m)]),
        Dialect::V2 => org_user_out(&people, m),
    })))
}

/// `getOrganizationUser` (Organization Member).
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let people = people_of(&state, org.id).await?;
    let m = member_of(&people, path.get("userId"))?;
    Ok(Reply::ok(org_user_out(&people, m)))
}

/// `OrgUserRolesRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolesIn {
    org_roles: Vec<String>,
    #[serde(default)]
    group_role_assignments: Vec<GroupRolesIn>,
}

/// `OrgUserRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateIn {
    username: String,
    roles: RolesIn,
    #[serde(default)]
    team_ids: Vec<String>,
}

/// A pending member for `username` (an existing person, or a new one known by the name).
pub async fn pending_member(
    state: &AppState,
    caller: &Principal,
    username: &str,
    org_roles: Vec<OrgRole>,
    group_roles: BTreeMap<GroupId, Vec<GroupRole>>,
) -> ApiResult<Member> {
    let now = state.clock.now();
    let user = match state.store.find_cloud_user(username).await? {
        Some(u) => u,
        None => CloudUser {
            id: UserId::generate(now),
            username: username.to_owned(),
            first_name: None,
            last_name: None,
            country: None,
            mobile_number: None,
            password_hash: None,
            created_at: now,
        },
    };
    Ok(Member {
        user,
        invitation: Some(Invitation::new(inviter_name(caller), now)),
        org_roles,
        group_roles,
    })
}

/// Who invites: the API key's public key or the service account's client id.
pub fn inviter_name(caller: &Principal) -> String {
    match audit::actor_of(caller) {
        tessera_store::events::Actor::ApiKey { public_key, .. } => public_key,
        tessera_store::events::Actor::ServiceAccount(c) => c.to_string(),
        tessera_store::events::Actor::User { username, .. } => username,
        _ => String::new(),
    }
}

/// `createOrganizationUser` (Organization Owner): invites a person (new or existing) to the
/// organization with roles and teams; the member is pending until the invitation is accepted.
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<CreateIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let username = people::parse_username("username", &body.username)?;
    let roles = org_roles("roles.orgRoles", &body.roles.org_roles, false)?;
    let groups = group_roles_in(&state, org.id, &body.roles.group_role_assignments).await?;
    let teams = team_ids(&body.team_ids)?;
    let member = pending_member(&state, &caller, &username, roles, groups).await?;
    let id = member.user.id;
    let people = edit(&state, &caller, org.id, move |p| {
        p.add_member(member)?;
        p.set_teams_of(id, &teams)
    })
    .await?;
    let m = people
        .member(id)
        .ok_or_else(|| ApiError::internal("member missing after create"))?;
    Ok(Reply::created(org_user_out(&people, m)))
}

/// `OrgUserUpdateRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateIn {
    roles: Option<RolesIn>,
    team_ids: Option<Vec<String>>,
}

/// `updateOrganizationUser` (Organization Owner): replaces the roles and/or teams given.
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<UpdateIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let id = UserId::parse(path.get("userId"))?;
    let roles = match &body.roles {
        None => None,
        Some(r) => Some((
            org_roles("roles.orgRoles", &r.org_roles, false)?,
            group_roles_in(&state, org.id, &r.group_role_assignments).await?,
        )),
    };
    let teams = body.team_ids.as_deref().map(team_ids).transpose()?;
    let people = edit(&state, &caller, org.id, move |p| {
        let m = p.member_mut(id)?;
        if let Some((org_roles, groups)) = roles {
            m.org_roles = org_roles;
            m.group_roles = groups;
        }
        if let Some(t) = teams {
            p.set_teams_of(id, &t)?;
        }
        Ok(())
    })
    .await?;
    let m = member_of(&people, path.get("userId"))?;
    Ok(Reply::ok(org_user_out(&people, m)))
}

/// `removeOrganizationUser` (Organization Owner): an active member or a pending invitation.
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let id = UserId::parse(path.get("userId"))?;
    edit(&state, &caller, org.id, move |p| {
        p.remove_member(id).map(|_| ())
    })
    .await?;
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OrgRoleIn {
    org_role: String,
}

/// `{userId}:addRole` / `{userId}:removeRole` (Organization Owner). A member keeps at least
/// one organization role (remove the member instead).
pub async fn action(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> ApiResult<Reply> {
    let Some((raw_id, action)) = path.get("userId").split_once(':') else {
        return Err(ApiError::route_not_found(uri.path()));
    };
    let add = match action {
        "addRole" => true,
        "removeRole" => false,
        _ => return Err(ApiError::route_not_found(uri.path())),
    };
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let id = UserId::parse(raw_id)?;
    let ApiJson(body) = ApiJson::<OrgRoleIn>::from_request(request, &state).await?;
    let role: OrgRole = body
        .org_role
        .parse()
        .map_err(|_| ApiError::invalid_enum("orgRole", &body.org_role))?;
    let people = edit(&state, &caller, org.id, move |p| {
        let m = p.member_mut(id)?;
        if add {
            people::add_role(&mut m.org_roles, role);
        } else {
            people::remove_role("orgRole", &mut m.org_roles, role)?;
        }
        Ok(())
    })
    .await?;
    let m = member_of(&people, raw_id)?;
    Ok(Reply::ok(org_user_out(&people, m)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PutRolesIn {
    org_roles: Vec<String>,
    #[serde(default, rename = "links")]
    _links: crate::wire::Ignored,
}

/// `updateOrganizationRoles` (2023-01-01; "Organization User Admin", which Tessera reads as
/// the Organization Owner): replaces a member's organization roles.
pub async fn put_roles(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<PutRolesIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let id = UserId::parse(path.get("userId"))?;
    let roles = org_roles("orgRoles", &body.org_roles, false)?;
    let people = edit(&state, &caller, org.id, move |p| {
        p.member_mut(id)?.org_roles = roles;
        Ok(())
    })
    .await?;
    let m = member_of(&people, path.get("userId"))?;
    Ok(Reply::ok(json!({
        "orgRoles": names(&m.org_roles),
        "links": [{"href": format!("{base}/orgs/{}/users/{}/roles", org.id, id), "rel": "self"}],
    })))
}

/// The organizations (and their people) where `user` is a member and the caller may see
/// it under `rule` (`Rule::Membership`: Organization Member).
async fn visible_memberships(
    state: &AppState,
    caller: &Principal,
    rule: tessera_domain::Rule,
    user: UserId,
) -> ApiResult<Vec<OrgPeople>> {
    let mut out = Vec::new();
    for org in state.store.orgs_of_user(user).await? {
        if caller.authorize(rule, On::Org(org)) == Decision::Allow {
            let people = people_of(state, org).await?;
            if people.member(user).is_some() {
                out.push(people);
            }
        }
    }
    Ok(out)
}

async fn user_answer(
    state: &AppState,
    caller: &Principal,
    rule: tessera_domain::Rule,
    base: &str,
    user: Option<CloudUser>,
    raw: &str,
) -> ApiResult<Reply> {
    let not_found = || refused(PeopleError::UserNotFound(raw.to_owned()));
    let user = user.ok_or_else(not_found)?;
    let seen = visible_memberships(state, caller, rule, user.id).await?;
    if seen.is_empty() {
        return Err(not_found());
    }
    let pairs: Vec<(&OrgPeople, &Member)> = seen
        .iter()
        .filter_map(|p| p.member(user.id).map(|m| (p, m)))
        .collect();
    Ok(Reply::ok(cloud_user_out(base, &user, &pairs)))
}

/// `getUser`: a person the caller shares an organization with (else 404).
pub async fn get_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let raw = path.get("userId");
    let user = state.store.get_cloud_user(UserId::parse(raw)?).await?;
    user_answer(&state, &caller, rule, &base, user, raw).await
}

/// `getUserByUsername`.
pub async fn get_user_by_name(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let raw = path.get("userName");
    let user = state.store.find_cloud_user(raw).await?;
    user_answer(&state, &caller, rule, &base, user, raw).await
}

/// `CloudAccessRoleAssignment`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleAssignmentIn {
    org_id: Option<String>,
    group_id: Option<String>,
    role_name: String,
}

/// `CloudAppUser` in a request; read-only fields are accepted and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateUserIn {
    username: String,
    password: String,
    first_name: String,
    last_name: String,
    country: Option<String>,
    mobile_number: Option<String>,
    email_address: Option<String>,
    #[serde(default)]
    roles: Vec<RoleAssignmentIn>,
    #[serde(default, rename = "id")]
    _id: crate::wire::Ignored,
    #[serde(default, rename = "createdAt")]
    _created_at: crate::wire::Ignored,
    #[serde(default, rename = "lastAuth")]
    _last_auth: crate::wire::Ignored,
    #[serde(default, rename = "links")]
    _links: crate::wire::Ignored,
    #[serde(default, rename = "teamIds")]
    _team_ids: crate::wire::Ignored,
}

/// Roles of a new user, by organization: its org roles and its project roles there.
type Grants = BTreeMap<OrgId, (Vec<OrgRole>, BTreeMap<GroupId, Vec<GroupRole>>)>;

/// Parses `roles` and decides each under `rule` (`Rule::Membership`: the Organization Owner
/// of each organization named, the Project Owner of each project).
async fn grants(
    state: &AppState,
    caller: &Principal,
    rule: tessera_domain::Rule,
    roles: &[RoleAssignmentIn],
) -> ApiResult<Grants> {
    let mut out: Grants = BTreeMap::new();
    for r in roles {
        match (&r.org_id, &r.group_id) {
            (Some(o), None) => {
                let org = OrgId::parse(o)?;
                match caller.authorize(rule, On::Org(org)) {
                    Decision::Allow => {}
                    Decision::NotFound => return Err(ApiError::org_not_found(o)),
                    Decision::Forbidden => return Err(ApiError::forbidden()),
                }
                let role = org_roles("roles.roleName", std::slice::from_ref(&r.role_name), false)?;
                let entry = out.entry(org).or_default();
                people::add_role(&mut entry.0, role[0]);
            }
            (None, Some(g)) => {
                let group = super::group_for(state, caller, g, rule).await?;
                let role =
                    group_roles("roles.roleName", std::slice::from_ref(&r.role_name), false)?;
                let entry = out.entry(group.org_id).or_default();
                people::add_role(entry.1.entry(group.id).or_default(), role[0]);
            }
            _ => {
                return Err(ApiError::validation(
                    "Each role names exactly one of orgId and groupId.",
                ))
            }
        }
    }
    Ok(out)
}

/// `createUser`: a person's account, with a password (kept as an argon2id hash) and roles
/// that make it an active member of each organization they name (at least one: an account
/// in no organization would be seen by nobody). The caller must own each organization (or
/// project) a role names.
pub async fn create_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    ApiJson(body): ApiJson<CreateUserIn>,
) -> ApiResult<Reply> {
    let username = people::parse_username("username", &body.username)?;
    if let Some(e) = &body.email_address {
        if people::parse_username("emailAddress", e)? != username {
            return Err(ApiError::validation("emailAddress must equal username."));
        }
    }
    let first = people::parse_person_name("firstName", &body.first_name)?;
    let last = people::parse_person_name("lastName", &body.last_name)?;
    let country = body.country.as_deref().map(parse_country).transpose()?;
    let mobile = body
        .mobile_number
        .as_deref()
        .map(parse_mobile)
        .transpose()?;
    let assignments = &body.roles;
    if assignments.is_empty() {
        return Err(ApiError::validation(
            "roles must name at least one organization or project.",
        ));
    }
    let grants = grants(&state, &caller, rule, &body.roles).await?;
    let password = body.password;
    let hash = tokio::task::spawn_blocking(move || tessera_protocols::password::hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| tessera_domain::ValidationError::new("password", e.to_string()))?;
    let now = state.clock.now();
    let user = CloudUser {
        id: UserId::generate(now),
        username,
        first_name: Some(first),
        last_name: Some(last),
        country,
        mobile_number: mobile,
        password_hash: Some(hash),
        created_at: now,
    };
    let mut edits: Vec<(OrgId, Box<dyn PeopleEdit + '_>)> = Vec::new();
    for (org, (org_roles, groups)) in grants {
        let member = Member {
            user: user.clone(),
            invitation: None,
            org_roles: people::org_roles_or_member(org_roles),
            group_roles: groups,
        };
        edits.push((
            org,
            Box::new(Edit::new(&state, &caller, move |p: &mut OrgPeople| {
                p.add_member(member)
            })),
        ));
    }
    let mut refs: Vec<(OrgId, &mut (dyn PeopleEdit + '_))> =
        edits.iter_mut().map(|(o, e)| (*o, &mut **e as _)).collect();
    let first_org = refs.first().map(|(o, _)| *o).unwrap_or(caller.org_id);
    done(
        state
            .store
            .create_cloud_user(&user, now, &mut refs, &[])
            .await,
        first_org,
    )?;
    user_answer(&state, &caller, rule, &base, Some(user), "").await
}

fn parse_country(raw: &str) -> ApiResult<String> {
    if raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(raw.to_owned())
    } else {
        Err(tessera_domain::ValidationError::new("country", "must match ^([A-Z]{2})$").into())
    }
}

fn parse_mobile(raw: &str) -> ApiResult<String> {
    let digits = raw.chars().filter(char::is_ascii_digit).count();
    let ok = raw
        .chars()
        .all(|c| c.is_ascii_digit() || " +-.()".contains(c))
        && (7..=20).contains(&digits);
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(
            tessera_domain::ValidationError::new("mobileNumber", "must be a telephone number")
                .into(),
        )
    }
}

/// The owner a new organization names (`orgOwnerId`): a person Tessera knows, made its
/// first active `ORG_OWNER` (the caller's organization must hold it, or 400).
pub async fn owner_for_new_org(
    state: &AppState,
    caller: &Principal,
    raw: &str,
) -> ApiResult<CloudUser> {
    let invalid = || {
        ApiError::validation(format!("orgOwnerId {raw} names no MongoDB Cloud user."))
            .with_params([json!("orgOwnerId")])
    };
    let id = UserId::parse(raw).map_err(|_| invalid())?;
    let user = state.store.get_cloud_user(id).await?.ok_or_else(invalid)?;
    // Atlas: a member of the calling credential's organization (an active one here).
    let known = people_of(state, caller.org_id).await?;
    if !known.member(id).is_some_and(Member::is_active) {
        return Err(invalid());
    }
    Ok(user)
}
