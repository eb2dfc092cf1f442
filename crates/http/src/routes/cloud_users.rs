//! A person's account (`/users`, 2023-01-01): create (with a password kept as an argon2id
//! hash, and roles that make it an active member of the organizations they name), get by id
//! and by name (a person the caller shares an organization with); and `orgOwnerId`, the person
//! a new organization is given as its first owner.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tessera_domain::authorization::On;
use tessera_domain::people::{self, CloudUser, Member, OrgPeople, PeopleError};
use tessera_domain::roles::{GroupRole, OrgRole};
use tessera_domain::{Decision, EventType, GroupId, OrgId, Principal, UserId};
use tessera_store::events::NewEvent;
use tessera_store::PeopleEdit;

use super::Base;
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::render::Reply;
use crate::state::AppState;

use super::people::{cloud_user_out, group_roles, org_roles};
use super::people_edit::{done, people_of, refused, Edit};
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

/// Cloud Manager's `PATCH /users/{userId}` in a request: the profile; a password or roles are
/// refused (a person sets its own password; roles change through the member routes).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateUserIn {
    first_name: Option<String>,
    last_name: Option<String>,
    country: Option<String>,
    mobile_number: Option<String>,
    email_address: Option<String>,
    username: Option<String>,
    password: Option<serde_json::Value>,
    roles: Option<serde_json::Value>,
    #[serde(default, rename = "id")]
    _id: crate::wire::Ignored,
    #[serde(default, rename = "links")]
    _links: crate::wire::Ignored,
    #[serde(default, rename = "teamIds")]
    _team_ids: crate::wire::Ignored,
    #[serde(default, rename = "createdAt")]
    _created_at: crate::wire::Ignored,
    #[serde(default, rename = "lastAuth")]
    _last_auth: crate::wire::Ignored,
}

/// `PATCH /users/{userId}` (Cloud Manager's "Update a user"; `mongodb-atlas-api-client`'s
/// `atlasUser.update`): a person's names, country and mobile number. Only an Organization
/// Owner of every organization the person belongs to may change them (`Rule::Membership`,
/// decided per organization; a person seen in none is 404), since a person's profile is the
/// same in each. Its username and email address do not change here (400 when different),
/// nor its password or roles (400). `USER_PROFILE_CHANGED` in each organization's log, only
/// when something changed.
pub async fn update_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<UpdateUserIn>,
) -> ApiResult<Reply> {
    let raw = path.get("userId");
    let id = UserId::parse(raw)?;
    let not_found = || refused(PeopleError::UserNotFound(raw.to_owned()));
    let mut user = state
        .store
        .get_cloud_user(id)
        .await?
        .ok_or_else(not_found)?;
    let orgs = state.store.orgs_of_user(id).await?;
    let decisions: Vec<Decision> = orgs
        .iter()
        .map(|o| caller.authorize(rule, On::Org(*o)))
        .collect();
    if orgs.is_empty() || decisions.iter().all(|d| *d == Decision::NotFound) {
        return Err(not_found());
    }
    if decisions.iter().any(|d| *d != Decision::Allow) {
        return Err(ApiError::forbidden());
    }
    if body.password.is_some() || body.roles.is_some() {
        return Err(ApiError::validation(
            "password and roles are not changed here: a person sets its own password, and roles change through /orgs/{orgId}/users and /groups/{groupId}/users.",
        ));
    }
    for (field, v) in [
        ("username", &body.username),
        ("emailAddress", &body.email_address),
    ] {
        if let Some(v) = v {
            if people::parse_username(field, v)? != user.username {
                return Err(ApiError::validation(format!("{field} cannot be changed."))
                    .with_params([json!(field)]));
            }
        }
    }
    if let Some(n) = &body.first_name {
        user.first_name = Some(people::parse_person_name("firstName", n)?);
    }
    if let Some(n) = &body.last_name {
        user.last_name = Some(people::parse_person_name("lastName", n)?);
    }
    if let Some(c) = &body.country {
        user.country = Some(parse_country(c)?);
    }
    if let Some(m) = &body.mobile_number {
        user.mobile_number = Some(parse_mobile(m)?);
    }
    let target = vec![
        ("targetUsername", user.username.clone()),
        ("targetUserId", user.id.to_string()),
    ];
    let events: Vec<NewEvent> = orgs
        .iter()
        .map(|o| {
            audit::event(
                &state,
                &caller,
                EventType::UserProfileChanged,
                *o,
                None,
                target.clone(),
            )
        })
        .collect();
    if state
        .store
        .update_cloud_user_profile(&user, &orgs, &events)
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "USER_CHANGED_MEANWHILE",
            "The person's memberships changed while this request ran; send it again.",
        ));
    }
    user_answer(&state, &caller, rule, &base, Some(user), raw).await
}
