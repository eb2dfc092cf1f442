//! Programmatic API keys: `/orgs/{orgId}/apiKeys[/{apiUserId}]` and their project
//! assignments at `/groups/{groupId}/apiKeys[/{apiUserId}]`.
//!
//! The private key is returned once, by the call that creates the key. What is kept is only
//! the Digest HA1 material, sealed under a server key, and a masked form for display.

use axum::extract::State;
use tessera_domain::authorization::{project_roles, Holder};
use tessera_domain::names::ApiKeyDescription;
use tessera_domain::roles::{parse_role_list, project_member_org_roles, GroupRole, OrgRole};
use tessera_domain::secrets::{
    generate_private_key, generate_public_key, mask_private_key, SecretValue,
};
use tessera_domain::EventType;
use tessera_domain::{ApiKeyId, GroupId, OrgId, Rule};
use tessera_protocols::digest::{ha1, DigestAlgorithm, REALM};
use tessera_store::{ApiKeyRecord, Group};

use super::{group_for, org_for, Base};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiJsonList, PathParams};
use crate::query::Pagination;
use crate::render::Reply;
use crate::state::AppState;
use crate::wire::{api_key_out, CreateApiKeyIn, UpdateApiKeyIn, UserAccessRoleAssignmentIn};

fn role_error(e: tessera_domain::roles::RoleListError) -> ApiError {
    ApiError::validation(format!("{e}."))
}

/// Makes a new key record (not yet stored) and its clear private key, to be shown once.
pub fn new_api_key(
    state: &AppState,
    org_id: OrgId,
    desc: &str,
    org_roles: Vec<OrgRole>,
    group_roles: Vec<(GroupId, Vec<GroupRole>)>,
) -> ApiResult<(ApiKeyRecord, SecretValue)> {
    let desc = ApiKeyDescription::parse(desc)?;
    let now = state.clock.now();
    let public_key = generate_public_key();
    let private_key = generate_private_key();
    let seal = |alg| {
        let h = ha1(alg, &public_key, REALM, private_key.expose());
        state
            .crypto
            .sealer
            .seal(h.as_bytes(), public_key.as_bytes())
    };
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(now),
        org_id,
        ha1_md5_sealed: seal(DigestAlgorithm::Md5),
        ha1_sha256_sealed: seal(DigestAlgorithm::Sha256),
        private_key_masked: mask_private_key(&private_key),
        public_key,
        description: desc.into_inner(),
        org_roles,
        group_roles,
        created_at: now,
        access_list: Vec::new(),
    };
    Ok((record, private_key))
}

/// Loads a key of `org`, 404 when it is not there (or belongs to another org).
pub(crate) async fn key_in_org(
    state: &AppState,
    org: OrgId,
    raw_id: &str,
) -> ApiResult<ApiKeyRecord> {
    let id = ApiKeyId::parse(raw_id)?;
    match state.store.get_api_key(id).await? {
        Some(k) if k.org_id == org => Ok(k),
        _ => Err(ApiError::api_key_not_found(raw_id)),
    }
}

pub async fn list_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let listed = state.store.list_org_api_keys(org.id, page.page()).await?;
    Ok(Reply::ok(
        page.list(listed, |k| api_key_out(&base, k, None)),
    ))
}

pub async fn create_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<CreateApiKeyIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let roles = parse_role_list::<OrgRole>("roles", &body.roles, false).map_err(role_error)?;
    let (record, private_key) = new_api_key(&state, org.id, &body.desc, roles, Vec::new())?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::ApiKeyCreated,
        org.id,
        None,
        audit::key_target(&record),
    );
    state.store.create_api_key(&record, &[ev]).await?;
    Ok(Reply::ok(api_key_out(
        &base,
        record,
        Some(private_key.expose().to_owned()),
    )))
}

pub async fn get_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let key = key_in_org(&state, org.id, path.get("apiUserId")).await?;
    Ok(Reply::ok(api_key_out(&base, key, None)))
}

pub async fn update_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<UpdateApiKeyIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let key = key_in_org(&state, org.id, path.get("apiUserId")).await?;
    let desc = body
        .desc
        .as_deref()
        .map(ApiKeyDescription::parse)
        .transpose()?;
    let roles = body
        .roles
        .as_deref()
        .map(|r| parse_role_list::<OrgRole>("roles", r, false))
        .transpose()
        .map_err(role_error)?;
    let events = audit::update_events(
        &state,
        &caller,
        org.id,
        None,
        desc.is_some()
            .then_some(EventType::ApiKeyDescriptionChanged),
        roles.is_some().then_some(EventType::ApiKeyRolesChanged),
        &audit::key_target(&key),
    );
    if !state
        .store
        .update_api_key(
            key.id,
            desc.as_ref().map(|d| d.as_str()),
            roles.as_deref(),
            None,
            &events,
        )
        .await?
    {
        return Err(ApiError::api_key_not_found(path.get("apiUserId")));
    }
    let updated = key_in_org(&state, org.id, path.get("apiUserId")).await?;
    Ok(Reply::ok(api_key_out(&base, updated, None)))
}

pub async fn delete_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let key = key_in_org(&state, org.id, path.get("apiUserId")).await?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::ApiKeyDeleted,
        org.id,
        None,
        audit::key_target(&key),
    );
    if !state.store.delete_api_key(key.id, &[ev]).await? {
        return Err(ApiError::api_key_not_found(path.get("apiUserId")));
    }
    Ok(Reply::no_content())
}

pub async fn list_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let listed = state
        .store
        .list_group_api_keys(group.id, page.page())
        .await?;
    Ok(Reply::ok(
        page.list(listed, |k| api_key_out(&base, k, None)),
    ))
}

pub async fn create_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<CreateApiKeyIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let roles = parse_role_list::<GroupRole>("roles", &body.roles, false).map_err(role_error)?;
    check_member(&caller, rule, &group, None, Some(&roles))?;
    // A key made for a project is an org key with ORG_MEMBER and the project roles (Atlas).
    let (record, private_key) = new_api_key(
        &state,
        group.org_id,
        &body.desc,
        project_member_org_roles(),
        vec![(group.id, roles)],
    )?;
    let target = audit::key_target(&record);
    let events = [
        audit::event(
            &state,
            &caller,
            EventType::ApiKeyCreated,
            group.org_id,
            None,
            target.clone(),
        ),
        audit::event(
            &state,
            &caller,
            EventType::ApiKeyAddedToGroup,
            group.org_id,
            Some(group.id),
            target,
        ),
    ];
    state.store.create_api_key(&record, &events).await?;
    Ok(Reply::ok(api_key_out(
        &base,
        record,
        Some(private_key.expose().to_owned()),
    )))
}

/// The key must be an org key of the project's org; with `assigned`, also in the project.
async fn key_for_group(
    state: &AppState,
    group: &Group,
    raw_id: &str,
    assigned: bool,
) -> ApiResult<ApiKeyRecord> {
    let key = key_in_org(state, group.org_id, raw_id).await?;
    if assigned && project_roles(&key.group_roles, group.id).is_none() {
        return Err(ApiError::api_key_not_found(raw_id));
    }
    Ok(key)
}

/// The key as a member of the project, for [`tessera_domain::Principal::decide_member`].
fn holder(key: &ApiKeyRecord) -> Holder<'_> {
    Holder {
        org_roles: &key.org_roles,
        group_roles: &key.group_roles,
    }
}

/// `GroupMember`: a caller below Project Owner may act only on keys that reach no further
/// than itself, and hand out only roles it could assign (`Principal::decide_member`).
fn check_member(
    caller: &tessera_domain::Principal,
    rule: Rule,
    group: &Group,
    key: Option<&ApiKeyRecord>,
    roles: Option<&[GroupRole]>,
) -> ApiResult<()> {
    if caller.decide_member(rule, group.org_id, group.id, key.map(holder), roles) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

pub async fn assign(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJsonList(body): ApiJsonList<UserAccessRoleAssignmentIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let names: Vec<String> = body
        .into_iter()
        .flat_map(|a| {
            let _ = a.user_id;
            a.roles.unwrap_or_default()
        })
        .collect();
    let roles = parse_role_list::<GroupRole>("roles", &names, false).map_err(role_error)?;
    let key = key_for_group(&state, &group, path.get("apiUserId"), false).await?;
    let already = project_roles(&key.group_roles, group.id).is_some();
    let ev = audit::event(
        &state,
        &caller,
        if already {
            EventType::ApiKeyRolesChanged
        } else {
            EventType::ApiKeyAddedToGroup
        },
        group.org_id,
        Some(group.id),
        audit::key_target(&key),
    );
    if !state
        .store
        .set_api_key_group_roles(key.id, group.id, &roles, &[ev])
        .await?
    {
        return Err(ApiError::api_key_not_found(path.get("apiUserId")));
    }
    Ok(Reply::no_content())
}

pub async fn update_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<UpdateApiKeyIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let key = key_for_group(&state, &group, path.get("apiUserId"), true).await?;
    let desc = body
        .desc
        .as_deref()
        .map(ApiKeyDescription::parse)
        .transpose()?;
    let roles = body
        .roles
        .as_deref()
        .map(|r| parse_role_list::<GroupRole>("roles", r, false))
        .transpose()
        .map_err(role_error)?;
    check_member(&caller, rule, &group, Some(&key), roles.as_deref())?;
    let events = audit::update_events(
        &state,
        &caller,
        group.org_id,
        Some(group.id),
        desc.is_some()
            .then_some(EventType::ApiKeyDescriptionChanged),
        roles.is_some().then_some(EventType::ApiKeyRolesChanged),
        &audit::key_target(&key),
    );
    let changed = state
        .store
        .update_api_key(
            key.id,
            desc.as_ref().map(|d| d.as_str()),
            None,
            roles.as_deref().map(|r| (group.id, r)),
            &events,
        )
        .await?;
    if !changed {
        return Err(ApiError::api_key_not_found(path.get("apiUserId")));
    }
    let updated = key_for_group(&state, &group, path.get("apiUserId"), true).await?;
    Ok(Reply::ok(api_key_out(&base, updated, None)))
}

pub async fn unassign(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let key = key_for_group(&state, &group, path.get("apiUserId"), true).await?;
    check_member(&caller, rule, &group, Some(&key), None)?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::ApiKeyRemovedFromGroup,
        group.org_id,
        Some(group.id),
        audit::key_target(&key),
    );
    if !state
        .store
        .remove_api_key_from_group(key.id, group.id, &[ev])
        .await?
    {
        return Err(ApiError::api_key_not_found(path.get("apiUserId")));
    }
    Ok(Reply::no_content())
}
