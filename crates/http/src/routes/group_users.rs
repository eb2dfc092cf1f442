//! People, project side: `/groups/{groupId}/users` (2025-02-19: add, list, get, remove;
//! `…/{userId}:addRole|:removeRole`), `…/{userId}/roles` (2023-01-01) and
//! `POST /groups/{groupId}/access` (`addUserToProject`, 2023-02-01). A member's project roles
//! are part of its organization's people (`people`): each change is an edit of them.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, OriginalUri, Request, State};
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::people::{self, Member, OrgPeople, PeopleError};
use tessera_domain::roles::GroupRole;
use tessera_domain::UserId;
use tessera_store::Group;

use super::people::{
    cloud_user_out, edit, group_roles, invitation_fields, names, pending_member, people_of,
    person_fields, refused,
};
use super::{group_for, paginate, Base, Surface};
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::{parse_bool_param, Pagination, Query};
use crate::render::Reply;
use crate::state::AppState;
use crate::version::Dialect;

/// `GroupUserResponse` (2025-02-19) with the member's roles in the project.
fn group_user_out(m: &Member, roles: &[GroupRole]) -> Value {
    let mut out = json!({
        "id": m.user.id.to_string(),
        "username": m.user.username,
        "orgMembershipStatus": if m.is_active() { "ACTIVE" } else { "PENDING" },
        "roles": names(roles),
    });
    match &m.invitation {
        None => person_fields(&mut out, &m.user),
        Some(i) => invitation_fields(&mut out, i),
    }
    out
}

/// The member's own roles in the project, or 404 when it has none there.
fn own_roles<'p>(
    people: &'p OrgPeople,
    group: &Group,
    raw: &str,
) -> ApiResult<(&'p Member, Vec<GroupRole>)> {
    let id = UserId::parse(raw)?;
    people
        .member(id)
        .and_then(|m| m.roles_in(group.id).map(|r| (m, r.to_vec())))
        .ok_or_else(|| refused(PeopleError::NotInProject(raw.to_owned())))
}

fn not_in_project(id: UserId) -> PeopleError {
    PeopleError::NotInProject(id.to_string())
}

/// `listProjectUsers` (Project Read Only): members with their own roles in the project;
/// `flattenTeams=true` adds those who have roles there through a team (with their roles
/// through teams merged in). v1.0 lists `CloudAppUser`s.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Surface { base, dialect }: Surface,
    path: PathParams,
    page: Pagination,
    Query(q): Query,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let people = people_of(&state, group.org_id).await?;
    let flatten = parse_bool_param(&q, "flattenTeams")?.unwrap_or(false);
    let username = q.get("username")?.map(str::to_lowercase);
    let rows: Vec<(&Member, Vec<GroupRole>)> = people
        .members
        .iter()
        .filter(|m| username.as_ref().is_none_or(|u| m.user.username == *u))
        .filter_map(|m| {
            let roles = if flatten {
                people
                    .effective_roles(m.user.id)
                    .and_then(|(_, g)| g.get(&group.id).cloned())
            } else {
                m.roles_in(group.id).map(<[GroupRole]>::to_vec)
            };
            roles.filter(|r| !r.is_empty()).map(|r| (m, r))
        })
        .collect();
    let listed = paginate(rows, page.page());
    Ok(Reply::ok(page.list(listed, |(m, roles)| match dialect {
        Dialect::V1 => cloud_user_out(&base, &m.user, &[(&people, m)]),
        Dialect::V2 => group_user_out(m, &roles),
    })))
}

/// `getProjectUser` (Project Read Only).
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let people = people_of(&state, group.org_id).await?;
    let (m, roles) = own_roles(&people, &group, path.get("userId"))?;
    Ok(Reply::ok(group_user_out(m, &roles)))
}

/// `GroupUserRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddIn {
    username: String,
    roles: Vec<String>,
}

/// Gives `username` `roles` in the project: a member of the organization gets them at once
/// (409 when it already has roles there); anyone else is invited to the organization (its
/// least role) with them. The member after.
async fn add_to_project(
    state: &AppState,
    caller: &tessera_domain::Principal,
    group: &Group,
    username: &str,
    roles: Vec<GroupRole>,
) -> ApiResult<(OrgPeople, UserId)> {
    let username = people::parse_username("username", username)?;
    let current = people_of(state, group.org_id).await?;
    let g = group.id;
    let (people, id) = match current.member_named(&username) {
        Some(m) => {
            let id = m.user.id;
            let people = edit(state, caller, group.org_id, move |p| {
                let m = p.member_mut(id)?;
                if m.roles_in(g).is_some() {
                    return Err(PeopleError::AlreadyMember(m.user.username.clone()));
                }
                m.group_roles.insert(g, roles);
                Ok(())
            })
            .await?;
            (people, id)
        }
        None => {
            let member = pending_member(
                state,
                caller,
                &username,
                people::org_roles_through_project(),
                BTreeMap::from([(g, roles)]),
            )
            .await?;
            let id = member.user.id;
            (
                edit(state, caller, group.org_id, move |p| p.add_member(member)).await?,
                id,
            )
        }
    };
    Ok((people, id))
}

/// `addProjectUser` (Project Owner).
pub async fn add(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<AddIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let roles = group_roles("roles", &body.roles, false)?;
    let (people, id) = add_to_project(&state, &caller, &group, &body.username, roles).await?;
    let (m, roles) = own_roles(&people, &group, &id.to_string())?;
    Ok(Reply::created(group_user_out(m, &roles)))
}

/// `addUserToProject` (2023-02-01; "Group User Admin", read as the Project Owner): a member of
/// the organization is added at once (204); anyone else is invited, and the invitation is the
/// answer (`OrganizationInvitation`).
pub async fn add_access(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<AddIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let roles = group_roles("roles", &body.roles, false)?;
    let (people, id) = add_to_project(&state, &caller, &group, &body.username, roles).await?;
    match people.member(id) {
        Some(m) if !m.is_active() => {
            let org = state
                .store
                .get_org(group.org_id)
                .await?
                .ok_or_else(|| ApiError::org_not_found(&group.org_id.to_string()))?;
            Ok(Reply::ok(super::invitations::org_invitation_out(
                &base, &org, &people, m,
            )))
        }
        _ => Ok(Reply::no_content()),
    }
}

/// `removeProjectUser` (Project Owner): the member's own roles in the project.
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let id = UserId::parse(path.get("userId"))?;
    let g = group.id;
    edit(&state, &caller, group.org_id, move |p| {
        let m = p.member_mut(id).map_err(|_| not_in_project(id))?;
        m.group_roles
            .remove(&g)
            .map(|_| ())
            .ok_or_else(|| not_in_project(id))
    })
    .await?;
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GroupRoleIn {
    group_role: String,
}

/// Changes a member's own roles in a project; 404 when it has none there.
async fn change_roles(
    state: &AppState,
    caller: &tessera_domain::Principal,
    group: &Group,
    id: UserId,
    change: impl FnOnce(&mut Vec<GroupRole>) -> Result<(), PeopleError> + Send + 'static,
) -> ApiResult<OrgPeople> {
    let g = group.id;
    edit(state, caller, group.org_id, move |p| {
        let m = p.member_mut(id).map_err(|_| not_in_project(id))?;
        let roles = m
            .group_roles
            .get_mut(&g)
            .ok_or_else(|| not_in_project(id))?;
        change(roles)
    })
    .await
}

/// `{userId}:addRole` / `{userId}:removeRole` (Project Owner). The last role is not removed
/// this way (remove the user from the project instead).
pub async fn action(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> ApiResult<Reply> {
    let (raw_id, add) = super::add_or_remove(path.get("userId"), ("addRole", "removeRole"), &uri)?;
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let id = UserId::parse(raw_id)?;
    let ApiJson(body) = ApiJson::<GroupRoleIn>::from_request(request, &state).await?;
    let role: GroupRole = body
        .group_role
        .parse()
        .map_err(|_| ApiError::invalid_enum("groupRole", &body.group_role))?;
    let people = change_roles(&state, &caller, &group, id, move |roles| {
        if add {
            people::add_role(roles, role);
        } else {
            people::remove_role("groupRole", roles, role)?;
        }
        Ok(())
    })
    .await?;
    let (m, roles) = own_roles(&people, &group, raw_id)?;
    Ok(Reply::ok(group_user_out(m, &roles)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PutRolesIn {
    group_roles: Vec<String>,
    #[serde(default, rename = "links")]
    _links: crate::wire::Ignored,
}

/// `updateProjectRoles` (2023-01-01; "Group User Admin", read as the Project Owner): replaces
/// a member's own roles in the project (at least one).
pub async fn put_roles(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<PutRolesIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let id = UserId::parse(path.get("userId"))?;
    let new = group_roles("groupRoles", &body.group_roles, false)?;
    let people = change_roles(&state, &caller, &group, id, move |roles| {
        *roles = new;
        Ok(())
    })
    .await?;
    let (_, roles) = own_roles(&people, &group, path.get("userId"))?;
    Ok(Reply::ok(json!({
        "groupRoles": names(&roles),
        "links": [{"href": format!("{base}/groups/{}/users/{id}/roles", group.id), "rel": "self"}],
    })))
}
