//! Teams: `/orgs/{orgId}/teams` (create, list, get, get by name, rename, delete), a team's
//! users (`…/{teamId}/users`, `…/{teamId}:addUser|:removeUser`), and a project's teams
//! (`/groups/{groupId}/teams`: assign with roles, list, get, change roles, unassign). A team
//! is part of its organization's people (`people`): each change is an edit of them, and a
//! team's project roles count among its members' roles.

use std::collections::BTreeSet;

use axum::extract::{FromRequest, OriginalUri, Request, State};
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::people::{self, OrgPeople, PeopleError, Team};
use tessera_domain::{TeamId, UserId};
use tessera_store::Group;

use super::people::{cloud_user_out, edit, group_roles, names, org_user_out, people_of, refused};
use super::{group_for, org_for, paginate, Base};
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiJsonList, PathParams};
use crate::query::Pagination;
use crate::render::Reply;
use crate::state::AppState;

fn team_out(base: &str, people: &OrgPeople, t: &Team) -> Value {
    json!({
        "id": t.id.to_string(),
        "name": t.name,
        "links": [{"href": format!("{base}/orgs/{}/teams/{}", people.org, t.id), "rel": "self"}],
    })
}

fn team_of<'p>(people: &'p OrgPeople, raw: &str) -> ApiResult<&'p Team> {
    let id = TeamId::parse(raw)?;
    people
        .team(id)
        .ok_or_else(|| refused(PeopleError::TeamNotFound(raw.to_owned())))
}

/// `listOrganizationTeams` (Organization Member).
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let people = people_of(&state, org.id).await?;
    let listed = paginate(people.teams.iter().collect(), page.page());
    Ok(Reply::ok(
        page.list(listed, |t| team_out(&base, &people, t)),
    ))
}

/// `getTeamById` (Organization Member).
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let people = people_of(&state, org.id).await?;
    let t = team_of(&people, path.get("teamId"))?;
    Ok(Reply::ok(team_out(&base, &people, t)))
}

/// `getTeamByName` (Organization Member; the name is case-insensitive).
pub async fn get_by_name(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let people = people_of(&state, org.id).await?;
    let name = path.get("teamName");
    let t = people
        .team_named(name)
        .ok_or_else(|| refused(PeopleError::TeamNotFound(name.to_owned())))?;
    Ok(Reply::ok(team_out(&base, &people, t)))
}

/// `Team` in a request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateIn {
    name: String,
    usernames: Vec<String>,
    #[serde(default, rename = "id")]
    _id: crate::wire::Ignored,
    #[serde(default, rename = "links")]
    _links: crate::wire::Ignored,
}

/// `createTeam` (Organization Owner): a team of members of the organization (by username).
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<CreateIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let name = people::parse_team_name(&body.name)?;
    let usernames = body
        .usernames
        .iter()
        .map(|u| people::parse_username("usernames", u))
        .collect::<Result<Vec<_>, _>>()?;
    let now = state.clock.now();
    let id = TeamId::generate(now);
    let people = edit(&state, &caller, org.id, move |p| {
        let mut members = BTreeSet::new();
        for u in &usernames {
            let m = p
                .member_named(u)
                .ok_or_else(|| PeopleError::UserNotFound(u.clone()))?;
            members.insert(m.user.id);
        }
        if let Some(t) = p.team_named(&name) {
            return Err(PeopleError::TeamNameTaken(t.name.clone()));
        }
        p.teams.push(Team {
            id,
            name,
            members,
            group_roles: Default::default(),
            created_at: now,
        });
        Ok(())
    })
    .await?;
    let t = team_of(&people, &id.to_string())?;
    let mut out = team_out(&base, &people, t);
    out["usernames"] = json!(t
        .members
        .iter()
        .filter_map(|u| people.member(*u).map(|m| m.user.username.clone()))
        .collect::<Vec<_>>());
    Ok(Reply::ok(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RenameIn {
    name: String,
    #[serde(default, rename = "links")]
    _links: crate::wire::Ignored,
}

/// `renameTeam` (Organization Owner).
pub async fn rename(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<RenameIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let id = TeamId::parse(path.get("teamId"))?;
    let name = people::parse_team_name(&body.name)?;
    let people = edit(&state, &caller, org.id, move |p| {
        p.team_mut(id)?.name = name;
        Ok(())
    })
    .await?;
    let t = team_of(&people, path.get("teamId"))?;
    Ok(Reply::ok(team_out(&base, &people, t)))
}

/// `deleteTeam` (Organization Owner): the team, its memberships and its project roles.
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let id = TeamId::parse(path.get("teamId"))?;
    edit(&state, &caller, org.id, move |p| {
        p.team_mut(id)?;
        p.teams.retain(|t| t.id != id);
        Ok(())
    })
    .await?;
    Ok(Reply::no_content())
}

/// `listTeamUsers` (Organization Member; 2025-02-19).
pub async fn list_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let people = people_of(&state, org.id).await?;
    let t = team_of(&people, path.get("teamId"))?;
    let members: Vec<_> = t.members.iter().filter_map(|u| people.member(*u)).collect();
    let listed = paginate(members, page.page());
    Ok(Reply::ok(page.list(listed, |m| org_user_out(&people, m))))
}

/// `AddUserToTeam` / `AddOrRemoveUserFromTeam`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserIdIn {
    id: String,
}

/// `addTeamUser` (Organization Owner; 2023-01-01): adds members by id; answers the team's
/// users (`CloudAppUser`).
pub async fn add_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
    ApiJsonList(body): ApiJsonList<UserIdIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let team = TeamId::parse(path.get("teamId"))?;
    let ids = body
        .iter()
        .map(|u| UserId::parse(&u.id))
        .collect::<Result<Vec<_>, _>>()?;
    let people = edit(&state, &caller, org.id, move |p| {
        for id in &ids {
            if p.member(*id).is_none() {
                return Err(PeopleError::UserNotFound(id.to_string()));
            }
        }
        p.team_mut(team)?.members.extend(ids);
        Ok(())
    })
    .await?;
    let t = team_of(&people, path.get("teamId"))?;
    let members: Vec<_> = t
        .members
        .iter()
        .filter_map(|u| people.member(*u).map(|m| (&people, m)))
        .collect();
    let listed = paginate(members, page.page());
    Ok(Reply::ok(page.list(listed, |(p, m)| {
        cloud_user_out(&base, &m.user, &[(p, m)])
    })))
}

/// Adds or removes one member of a team.
async fn member_change(
    state: &AppState,
    caller: &tessera_domain::Principal,
    org: tessera_domain::OrgId,
    team: TeamId,
    user: UserId,
    add: bool,
) -> ApiResult<OrgPeople> {
    edit(state, caller, org, move |p| {
        if p.member(user).is_none() {
            return Err(PeopleError::UserNotFound(user.to_string()));
        }
        let t = p.team_mut(team)?;
        if add {
            t.members.insert(user);
        } else if !t.members.remove(&user) {
            return Err(PeopleError::UserNotFound(user.to_string()));
        }
        Ok(())
    })
    .await
}

/// `removeTeamUser` (Organization Owner; 2023-01-01).
pub async fn remove_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let team = TeamId::parse(path.get("teamId"))?;
    let user = UserId::parse(path.get("userId"))?;
    member_change(&state, &caller, org.id, team, user, false).await?;
    Ok(Reply::no_content())
}

/// `{teamId}:addUser` / `{teamId}:removeUser` (Organization Owner; 2025-02-19): the user after.
pub async fn action(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> ApiResult<Reply> {
    let (raw_team, add) =
        super::add_or_remove(path.get("teamId"), ("addUser", "removeUser"), &uri)?;
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let team = TeamId::parse(raw_team)?;
    let ApiJson(body) = ApiJson::<UserIdIn>::from_request(request, &state).await?;
    let user = UserId::parse(&body.id)?;
    let people = member_change(&state, &caller, org.id, team, user, add).await?;
    let m = people
        .member(user)
        .ok_or_else(|| refused(PeopleError::UserNotFound(body.id.clone())))?;
    Ok(Reply::ok(org_user_out(&people, m)))
}

/// `TeamRole`.
fn team_role_out(base: &str, group: &Group, t: &Team) -> Value {
    let roles = t.roles_in(group.id).unwrap_or_default();
    json!({
        "teamId": t.id.to_string(),
        "roleNames": names(roles),
        "links": [{"href": format!("{base}/groups/{}/teams/{}", group.id, t.id), "rel": "self"}],
    })
}

/// The project's teams, as `PaginatedTeamRoleView`.
fn project_teams(base: &str, group: &Group, people: &OrgPeople, page: &Pagination) -> Value {
    let teams: Vec<&Team> = people
        .teams
        .iter()
        .filter(|t| t.group_roles.contains_key(&group.id))
        .collect();
    let listed = paginate(teams, page.page());
    page.list(listed, |t| team_role_out(base, group, t))
}

/// `listProjectTeams` (Project Read Only).
pub async fn list_project(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let people = people_of(&state, group.org_id).await?;
    Ok(Reply::ok(project_teams(&base, &group, &people, &page)))
}

/// `getProjectTeam` (Project Read Only).
pub async fn get_project(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let people = people_of(&state, group.org_id).await?;
    let raw = path.get("teamId");
    let t = team_of(&people, raw)?;
    if !t.group_roles.contains_key(&group.id) {
        return Err(refused(PeopleError::TeamNotInProject(raw.to_owned())));
    }
    Ok(Reply::ok(team_role_out(&base, &group, t)))
}

/// `TeamRole` in a request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TeamRoleIn {
    team_id: Option<String>,
    role_names: Vec<String>,
    #[serde(default, rename = "links")]
    _links: crate::wire::Ignored,
}

/// `addAllTeamsToProject` (Project Owner): assigns teams with roles (replacing the roles of a
/// team already assigned); answers the project's teams.
pub async fn assign(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
    ApiJsonList(body): ApiJsonList<TeamRoleIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    if body.is_empty() {
        return Err(ApiError::validation(
            "The request body must list at least one team.",
        ));
    }
    let mut assignments = Vec::with_capacity(body.len());
    for a in &body {
        let raw = a
            .team_id
            .as_deref()
            .ok_or_else(|| ApiError::validation("teamId is required."))?;
        assignments.push((
            TeamId::parse(raw)?,
            group_roles("roleNames", &a.role_names, false)?,
        ));
    }
    let g = group.id;
    let people = edit(&state, &caller, group.org_id, move |p| {
        for (team, roles) in assignments {
            p.team_mut(team)?.group_roles.insert(g, roles);
        }
        Ok(())
    })
    .await?;
    Ok(Reply::ok(project_teams(&base, &group, &people, &page)))
}

/// `updateTeamRoles` (Project Owner): replaces a team's roles in the project.
pub async fn update_roles(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
    ApiJson(body): ApiJson<TeamRoleIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let team = TeamId::parse(path.get("teamId"))?;
    let roles = group_roles("roleNames", &body.role_names, false)?;
    let g = group.id;
    let people = edit(&state, &caller, group.org_id, move |p| {
        let t = p.team_mut(team)?;
        let current = t
            .group_roles
            .get_mut(&g)
            .ok_or_else(|| PeopleError::TeamNotInProject(team.to_string()))?;
        *current = roles;
        Ok(())
    })
    .await?;
    Ok(Reply::ok(project_teams(&base, &group, &people, &page)))
}

/// `removeProjectTeam` (Project Owner).
pub async fn unassign(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let team = TeamId::parse(path.get("teamId"))?;
    let g = group.id;
    edit(&state, &caller, group.org_id, move |p| {
        p.team_mut(team)?
            .group_roles
            .remove(&g)
            .map(|_| ())
            .ok_or_else(|| PeopleError::TeamNotInProject(team.to_string()))
    })
    .await?;
    Ok(Reply::no_content())
}
