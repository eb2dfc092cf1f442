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
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::people::{self, CloudUser, Invitation, Member, OrgPeople, PeopleError};
use tessera_domain::roles::{parse_role_list, GroupRole, OrgRole};
use tessera_domain::time::format;
use tessera_domain::{GroupId, OrgId, Principal, TeamId, UserId};

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

pub use super::cloud_users::owner_for_new_org;
pub use super::people_edit::{done, edit, people_events, people_of, refused, Edit};

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
    let (raw_id, add) = super::add_or_remove(path.get("userId"), ("addRole", "removeRole"), &uri)?;
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
