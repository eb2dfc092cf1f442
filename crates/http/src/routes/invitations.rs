//! Organization invitations (`/orgs/{orgId}/invites`, 2023-01-01): an invitation is a pending
//! membership (`tessera_domain::people::Member` with its `Invitation`), the same one
//! `createOrganizationUser` makes, listed here by its invitation id. It stays pending until
//! the person accepts it (the console's sign-in) or it expires (30 days); updating it
//! changes its roles and teams; deleting it ends it.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::people::{self, Member, OrgPeople, PeopleError};
use tessera_domain::{GroupId, InvitationId, OrgId};
use tessera_store::{Group, Org};

use super::people::{
    edit, group_roles, names, org_roles, pending_member, people_of, refused, team_ids,
};
use super::{org_for, Base};
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::Query;
use crate::render::Reply;
use crate::state::AppState;
use tessera_domain::time::format;

/// `OrganizationInvitation`.
pub fn org_invitation_out(base: &str, org: &Org, people: &OrgPeople, m: &Member) -> Value {
    let Some(i) = &m.invitation else {
        return json!({});
    };
    let groups: Vec<Value> = m
        .group_roles
        .iter()
        .flat_map(|(g, roles)| {
            roles
                .iter()
                .map(move |r| json!({"groupId": g.to_string(), "groupRole": r.to_string()}))
        })
        .collect();
    json!({
        "id": i.id.to_string(),
        "orgId": org.id.to_string(),
        "orgName": org.name,
        "username": m.user.username,
        "roles": names(&m.org_roles),
        "groupRoleAssignments": groups,
        "teamIds": people.teams_of(m.user.id).iter().map(ToString::to_string).collect::<Vec<_>>(),
        "createdAt": format(i.created_at),
        "expiresAt": format(i.expires_at),
        "inviterUsername": i.inviter,
        "links": [{"href": format!("{base}/orgs/{}/invites/{}", org.id, i.id), "rel": "self"}],
    })
}

/// `OrganizationInvitationGroupRoleAssignmentsRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupAssignmentIn {
    group_id: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// `OrganizationInvitationRequest` (and, without `username`, its update).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InvitationIn {
    username: Option<String>,
    roles: Option<Vec<String>>,
    team_ids: Option<Vec<String>>,
    group_role_assignments: Option<Vec<GroupAssignmentIn>>,
}

type Parsed = (
    Option<Vec<tessera_domain::OrgRole>>,
    Option<BTreeMap<GroupId, Vec<tessera_domain::GroupRole>>>,
    Option<Vec<tessera_domain::TeamId>>,
);

async fn parse(state: &AppState, org: OrgId, body: &InvitationIn) -> ApiResult<Parsed> {
    let roles = body
        .roles
        .as_deref()
        .map(|r| org_roles("roles", r, false))
        .transpose()?;
    let groups = match &body.group_role_assignments {
        None => None,
        Some(list) => {
            let mut out = BTreeMap::new();
            for a in list {
                let id = GroupId::parse(&a.group_id)?;
                if state
                    .store
                    .get_group(id)
                    .await?
                    .is_none_or(|g| g.org_id != org)
                {
                    return Err(ApiError::group_not_found(&a.group_id));
                }
                out.insert(
                    id,
                    group_roles("groupRoleAssignments.roles", &a.roles, false)?,
                );
            }
            Some(out)
        }
    };
    let teams = body.team_ids.as_deref().map(team_ids).transpose()?;
    Ok((roles, groups, teams))
}

fn pending<'p>(people: &'p OrgPeople, raw: &str) -> ApiResult<&'p Member> {
    let id = InvitationId::parse(raw)?;
    people
        .member_by_invitation(id)
        .ok_or_else(|| refused(PeopleError::InvitationNotFound(raw.to_owned())))
}

/// `listOrganizationInvitations` (Organization Owner): open invitations; `username` filters.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    Query(q): Query,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let people = people_of(&state, org.id).await?;
    let username = q.get("username")?.map(str::to_lowercase);
    let open: Vec<&Member> = people
        .members
        .iter()
        .filter(|m| !m.is_active())
        .filter(|m| username.as_ref().is_none_or(|u| m.user.username == *u))
        .collect();
    // Atlas answers this list as a bare array, unpaginated.
    Ok(Reply::ok(json!(open
        .iter()
        .map(|m| org_invitation_out(&base, &org, &people, m))
        .collect::<Vec<_>>())))
}

/// `getOrganizationInvitation` (Organization Owner).
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let people = people_of(&state, org.id).await?;
    let m = pending(&people, path.get("invitationId"))?;
    Ok(Reply::ok(org_invitation_out(&base, &org, &people, m)))
}

/// `createOrganizationInvitation` (Organization Owner): a person not yet in the organization.
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<InvitationIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let raw = body
        .username
        .as_deref()
        .ok_or_else(|| ApiError::validation("username is required."))?;
    let username = people::parse_username("username", raw)?;
    let (roles, groups, teams) = parse(&state, org.id, &body).await?;
    let roles = roles.ok_or_else(|| ApiError::validation("roles is required."))?;
    let member = pending_member(
        &state,
        &caller,
        &username,
        roles,
        groups.unwrap_or_default(),
    )
    .await?;
    let id = member.user.id;
    let teams = teams.unwrap_or_default();
    let people = edit(&state, &caller, org.id, move |p| {
        p.add_member(member)?;
        p.set_teams_of(id, &teams)
    })
    .await?;
    let m = people
        .member(id)
        .ok_or_else(|| ApiError::internal("invitation missing after create"))?;
    Ok(Reply::ok(org_invitation_out(&base, &org, &people, m)))
}

/// Applies an update to the open invitation of `find`.
async fn update_with(
    state: &AppState,
    caller: &tessera_domain::Principal,
    org: &Org,
    base: &str,
    body: InvitationIn,
    find: impl Fn(&OrgPeople) -> ApiResult<tessera_domain::UserId>,
) -> ApiResult<Reply> {
    let (roles, groups, teams) = parse(state, org.id, &body).await?;
    let current = people_of(state, org.id).await?;
    let id = find(&current)?;
    let people = edit(state, caller, org.id, move |p| {
        let m = p.member_mut(id)?;
        if m.is_active() {
            return Err(PeopleError::InvitationNotFound(id.to_string()));
        }
        if let Some(r) = roles {
            m.org_roles = r;
        }
        if let Some(g) = groups {
            m.group_roles = g;
        }
        if let Some(t) = teams {
            p.set_teams_of(id, &t)?;
        }
        Ok(())
    })
    .await?;
    let m = people
        .member(id)
        .ok_or_else(|| refused(PeopleError::InvitationNotFound(id.to_string())))?;
    Ok(Reply::ok(org_invitation_out(base, org, &people, m)))
}

/// `updateOrganizationInvitationById` (Organization Owner).
pub async fn update_by_id(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<InvitationIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    if body.username.is_some() {
        return Err(ApiError::validation("username cannot be changed."));
    }
    let raw = path.get("invitationId").to_owned();
    update_with(&state, &caller, &org, &base, body, move |p| {
        pending(p, &raw).map(|m| m.user.id)
    })
    .await
}

/// `updateOrganizationInvitation` (Organization Owner): the open invitation of `username`.
pub async fn update_by_name(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<InvitationIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let raw = body
        .username
        .clone()
        .ok_or_else(|| ApiError::validation("username is required."))?;
    update_with(&state, &caller, &org, &base, body, move |p| {
        p.member_named(&raw)
            .filter(|m| !m.is_active())
            .map(|m| m.user.id)
            .ok_or_else(|| refused(PeopleError::InvitationNotFound(raw.clone())))
    })
    .await
}

/// `deleteOrganizationInvitation` (Organization Owner).
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let id = InvitationId::parse(path.get("invitationId"))?;
    let raw = path.get("invitationId").to_owned();
    edit(&state, &caller, org.id, move |p| {
        let user = p
            .member_by_invitation(id)
            .map(|m| m.user.id)
            .ok_or(PeopleError::InvitationNotFound(raw))?;
        p.remove_member(user).map(|_| ())
    })
    .await?;
    Ok(Reply::no_content())
}

/// `GroupInvitation`: a pending member's invitation, as its roles in one project.
fn group_invitation_out(base: &str, group: &Group, m: &Member) -> Value {
    let Some(i) = &m.invitation else {
        return json!({});
    };
    let roles = m.roles_in(group.id).unwrap_or_default();
    json!({
        "id": i.id.to_string(),
        "groupId": group.id.to_string(),
        "groupName": group.name,
        "username": m.user.username,
        "roles": names(roles),
        "createdAt": format(i.created_at),
        "expiresAt": format(i.expires_at),
        "inviterUsername": i.inviter,
        "links": [{"href": format!("{base}/groups/{}/invites/{}", group.id, i.id), "rel": "self"}],
    })
}

/// The open invitation of this id with roles in the project, or 404.
fn project_pending<'p>(people: &'p OrgPeople, group: &Group, raw: &str) -> ApiResult<&'p Member> {
    pending(people, raw).and_then(|m| {
        m.roles_in(group.id)
            .map(|_| m)
            .ok_or_else(|| refused(PeopleError::InvitationNotFound(raw.to_owned())))
    })
}

/// `listProjectInvitations` (Project Owner): the open invitations with roles in the project,
/// a bare array; `username` filters.
pub async fn list_project(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    Query(q): Query,
) -> ApiResult<Reply> {
    let group = super::group_for(&state, &caller, path.get("groupId"), rule).await?;
    let people = people_of(&state, group.org_id).await?;
    let username = q.get("username")?.map(str::to_lowercase);
    let out: Vec<Value> = people
        .members
        .iter()
        .filter(|m| !m.is_active() && m.roles_in(group.id).is_some())
        .filter(|m| username.as_ref().is_none_or(|u| m.user.username == *u))
        .map(|m| group_invitation_out(&base, &group, m))
        .collect();
    Ok(Reply::ok(json!(out)))
}

/// `getProjectInvitation` (Project Owner).
pub async fn get_project(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = super::group_for(&state, &caller, path.get("groupId"), rule).await?;
    let people = people_of(&state, group.org_id).await?;
    let m = project_pending(&people, &group, path.get("invitationId"))?;
    Ok(Reply::ok(group_invitation_out(&base, &group, m)))
}

/// `GroupInvitationRequest` (and its update).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupInvitationIn {
    username: Option<String>,
    roles: Option<Vec<String>>,
}

/// `createProjectInvitation` (Project Owner): invites a person to the organization (its least
/// role) with roles in the project; an open invitation without roles here gets them; a
/// member is a 409.
pub async fn create_project(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<GroupInvitationIn>,
) -> ApiResult<Reply> {
    let group = super::group_for(&state, &caller, path.get("groupId"), rule).await?;
    let raw = body
        .username
        .as_deref()
        .ok_or_else(|| ApiError::validation("username is required."))?;
    let username = people::parse_username("username", raw)?;
    let roles = group_roles("roles", body.roles.as_deref().unwrap_or_default(), false)?;
    let g = group.id;
    let current = people_of(&state, group.org_id).await?;
    let people = match current.member_named(&username) {
        Some(m) if m.is_active() || m.roles_in(g).is_some() => {
            return Err(refused(PeopleError::AlreadyMember(username)));
        }
        Some(m) => {
            let id = m.user.id;
            edit(&state, &caller, group.org_id, move |p| {
                p.member_mut(id)?.group_roles.insert(g, roles);
                Ok(())
            })
            .await?
        }
        None => {
            let member = pending_member(
                &state,
                &caller,
                &username,
                people::org_roles_through_project(),
                BTreeMap::from([(g, roles)]),
            )
            .await?;
            edit(&state, &caller, group.org_id, move |p| p.add_member(member)).await?
        }
    };
    let m = people
        .member_named(&username)
        .ok_or_else(|| ApiError::internal("invitation missing after create"))?;
    Ok(Reply::ok(group_invitation_out(&base, &group, m)))
}

/// Replaces the project roles of the open invitation `find` names.
async fn update_project_with(
    state: &AppState,
    caller: &tessera_domain::Principal,
    group: &Group,
    base: &str,
    roles: Option<Vec<String>>,
    find: impl Fn(&OrgPeople) -> ApiResult<tessera_domain::UserId>,
) -> ApiResult<Reply> {
    let roles = group_roles("roles", roles.as_deref().unwrap_or_default(), false)?;
    let current = people_of(state, group.org_id).await?;
    let id = find(&current)?;
    let g = group.id;
    let people = edit(state, caller, group.org_id, move |p| {
        let m = p.member_mut(id)?;
        if m.is_active() || m.roles_in(g).is_none() {
            return Err(PeopleError::InvitationNotFound(id.to_string()));
        }
        m.group_roles.insert(g, roles);
        Ok(())
    })
    .await?;
    let m = people
        .member(id)
        .ok_or_else(|| refused(PeopleError::InvitationNotFound(id.to_string())))?;
    Ok(Reply::ok(group_invitation_out(base, group, m)))
}

/// `updateProjectInvitationById` (Project Owner).
pub async fn update_project_by_id(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<GroupInvitationIn>,
) -> ApiResult<Reply> {
    let group = super::group_for(&state, &caller, path.get("groupId"), rule).await?;
    if body.username.is_some() {
        return Err(ApiError::validation("username cannot be changed."));
    }
    let raw = path.get("invitationId").to_owned();
    let g = group.clone();
    update_project_with(&state, &caller, &group, &base, body.roles, move |p| {
        project_pending(p, &g, &raw).map(|m| m.user.id)
    })
    .await
}

/// `updateProjectInvitation` (Project Owner): the open invitation of `username`.
pub async fn update_project_by_name(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<GroupInvitationIn>,
) -> ApiResult<Reply> {
    let group = super::group_for(&state, &caller, path.get("groupId"), rule).await?;
    let raw = body
        .username
        .clone()
        .ok_or_else(|| ApiError::validation("username is required."))?;
    update_project_with(&state, &caller, &group, &base, body.roles, move |p| {
        p.member_named(&raw)
            .filter(|m| !m.is_active())
            .map(|m| m.user.id)
            .ok_or_else(|| refused(PeopleError::InvitationNotFound(raw.clone())))
    })
    .await
}

/// `deleteProjectInvitation` (Project Owner): the invitation's roles in the project go; an
/// invitation left with nothing but the organization's least role (made through projects)
/// goes whole.
pub async fn delete_project(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = super::group_for(&state, &caller, path.get("groupId"), rule).await?;
    let id = InvitationId::parse(path.get("invitationId"))?;
    let raw = path.get("invitationId").to_owned();
    let g = group.id;
    edit(&state, &caller, group.org_id, move |p| {
        let user = p
            .member_by_invitation(id)
            .filter(|m| m.roles_in(g).is_some())
            .map(|m| m.user.id)
            .ok_or(PeopleError::InvitationNotFound(raw))?;
        let m = p.member_mut(user)?;
        m.group_roles.remove(&g);
        if m.holds_nothing_of_its_own() {
            p.remove_member(user)?;
        }
        Ok(())
    })
    .await?;
    Ok(Reply::no_content())
}
