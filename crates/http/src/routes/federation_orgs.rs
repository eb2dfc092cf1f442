//! Connected org configs (`/federationSettings/{id}/connectedOrgConfigs[/{orgId}]`) and their
//! role mappings (`…/{orgId}/roleMappings[/{id}]`), 2023-01-01, Organization Owner. A
//! federation here has one connected org, its own organization (ours), made with the
//! settings; it cannot be removed (Atlas refuses to remove the last connected org: 400
//! `LAST_CONNECTED_ORG`). The rules are `tessera_domain::federation`'s; the store checks
//! them again in the change's unit of work.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::federation::{self as fed, ConnectedOrgConfig, RoleAssignment, RoleMapping};
use tessera_domain::{
    EventType, FederationSettingsId, GroupId, GroupRole, IdentityProviderId, OrgId, OrgRole,
    Principal, RoleMappingId, Rule, ValidationError,
};
use tessera_store::{PutConfig, PutMapping};

use super::federation::{event, federation_for, invalid, missing};
use super::paginate;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::Pagination;
use crate::render::Reply;
use crate::state::AppState;

fn config_not_found(raw: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "CONNECTED_ORG_CONFIG_NOT_FOUND",
        format!("Organization {raw} is not connected to this federation."),
    )
    .with_params([json!(raw)])
}

fn mapping_not_found(raw: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ROLE_MAPPING_NOT_FOUND",
        format!("No role mapping with ID {raw} exists."),
    )
    .with_params([json!(raw)])
}

/// `AuthFederationRoleMapping`.
pub fn mapping_out(m: &RoleMapping) -> Value {
    let assignments: Vec<Value> = m
        .role_assignments
        .iter()
        .map(|a| match a {
            RoleAssignment::Org { org_id, role } => {
                json!({"orgId": org_id.to_string(), "role": role.to_string()})
            }
            RoleAssignment::Group { group_id, role } => {
                json!({"groupId": group_id.to_string(), "role": role.to_string()})
            }
        })
        .collect();
    json!({
        "id": m.id.to_string(),
        "externalGroupName": m.external_group_name,
        "roleAssignments": assignments,
    })
}

/// `ConnectedOrgConfig`: `identityProviderId` is the IdP's legacy 20-hex id (Atlas).
pub fn config_out(c: &ConnectedOrgConfig, mappings: &[RoleMapping]) -> Value {
    let mut out = json!({
        "orgId": c.org_id.to_string(),
        "dataAccessIdentityProviderIds": c.data_access_identity_provider_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "domainAllowList": c.domain_allow_list,
        "domainRestrictionEnabled": c.domain_restriction_enabled,
        "postAuthRoleGrants": c.post_auth_role_grants.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "roleMappings": mappings.iter().map(mapping_out).collect::<Vec<_>>(),
        "userConflicts": [],
    });
    if let Some(id) = c.identity_provider_id {
        out["identityProviderId"] = json!(fed::legacy_id(id));
    }
    out
}

/// The federation and the connected org `path` names (ids parsed first: 400 before 404).
async fn connected(
    state: &AppState,
    caller: &Principal,
    path: &PathParams,
    rule: Rule,
) -> ApiResult<(
    tessera_domain::federation::FederationSettings,
    ConnectedOrgConfig,
)> {
    FederationSettingsId::parse(path.get("federationSettingsId"))?;
    let raw_org = path.get("orgId");
    let org = OrgId::parse(raw_org)?;
    let settings = federation_for(state, caller, path.get("federationSettingsId"), rule).await?;
    if org != settings.org_id {
        return Err(config_not_found(raw_org));
    }
    let config = state
        .store
        .connected_org_config(org)
        .await?
        .filter(|c| c.federation_id == settings.id)
        .ok_or_else(|| config_not_found(raw_org))?;
    Ok((settings, config))
}

/// `listConnectedOrgConfigs` (Organization Owner).
pub async fn list_configs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let settings = federation_for(&state, &caller, path.get("federationSettingsId"), rule).await?;
    let configs = state.store.connected_org_configs(settings.id).await?;
    let listed = paginate(configs, page.page());
    let mut items = Vec::with_capacity(listed.items.len());
    for c in &listed.items {
        let mappings = state.store.role_mappings(c.org_id).await?;
        items.push(config_out(c, &mappings));
    }
    let listed = tessera_store::Listed {
        items,
        total: listed.total,
    };
    Ok(Reply::ok(page.list(listed, |v| v)))
}

/// `getConnectedOrgConfig` (Organization Owner).
pub async fn get_config(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let (_, config) = connected(&state, &caller, &path, rule).await?;
    let mappings = state.store.role_mappings(config.org_id).await?;
    Ok(Reply::ok(config_out(&config, &mappings)))
}

/// `ConnectedOrgConfig` as a request body. `orgId` must be the path's when given;
/// `roleMappings` and `userConflicts` are read-only here and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigIn {
    org_id: Option<String>,
    identity_provider_id: Option<String>,
    data_access_identity_provider_ids: Option<Vec<String>>,
    domain_allow_list: Option<Vec<String>>,
    domain_restriction_enabled: Option<bool>,
    post_auth_role_grants: Option<Vec<String>>,
    #[serde(rename = "roleMappings")]
    _role_mappings: Option<Value>,
    #[serde(rename = "userConflicts")]
    _user_conflicts: Option<Value>,
}

/// An IdP named by its legacy 20-hex id (Atlas) or its 24-hex id (also accepted, ours).
async fn provider_named(
    state: &AppState,
    federation: FederationSettingsId,
    field: &str,
    raw: &str,
) -> ApiResult<IdentityProviderId> {
    let bad = || {
        invalid(ValidationError::new(
            field,
            format!("no identity provider {raw} in this federation"),
        ))
    };
    if fed::is_legacy_id(raw) {
        let all = state.store.identity_providers(federation).await?;
        return all
            .iter()
            .find(|p| p.legacy_id() == raw)
            .map(|p| p.id)
            .ok_or_else(bad);
    }
    IdentityProviderId::parse(raw).map_err(|_| bad())
}

/// `updateConnectedOrgConfig` (Organization Owner): the body replaces the config (Atlas: an
/// absent `identityProviderId` disconnects the IdP, absent data-access IdPs are
/// disconnected, `domainRestrictionEnabled` defaults to false).
pub async fn update_config(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<ConfigIn>,
) -> ApiResult<Reply> {
    let (settings, current) = connected(&state, &caller, &path, rule).await?;
    if body
        .org_id
        .as_deref()
        .is_some_and(|o| o != path.get("orgId"))
    {
        return Err(invalid(ValidationError::new(
            "orgId",
            "must be the path's orgId",
        )));
    }
    let identity_provider_id = match body.identity_provider_id.as_deref() {
        Some(raw) => Some(provider_named(&state, settings.id, "identityProviderId", raw).await?),
        None => None,
    };
    let mut data_access = Vec::new();
    for raw in body.data_access_identity_provider_ids.unwrap_or_default() {
        data_access.push(
            provider_named(&state, settings.id, "dataAccessIdentityProviderIds", &raw).await?,
        );
    }
    let mut grants = Vec::new();
    for g in body.post_auth_role_grants.unwrap_or_default() {
        let role: OrgRole = g
            .parse()
            .map_err(|_| ApiError::invalid_enum("postAuthRoleGrants", &g))?;
        grants.push(role);
    }
    let config = ConnectedOrgConfig {
        org_id: current.org_id,
        federation_id: current.federation_id,
        identity_provider_id,
        data_access_identity_provider_ids: data_access,
        domain_allow_list: body.domain_allow_list.unwrap_or_default(),
        domain_restriction_enabled: body.domain_restriction_enabled.unwrap_or(false),
        post_auth_role_grants: grants,
    };
    config.check().map_err(invalid)?;
    let ev = event(
        &state,
        &caller,
        EventType::ConnectedOrgConfigUpdated,
        &settings,
        vec![("targetOrgId", config.org_id.to_string())],
    );
    match state.store.put_connected_org_config(&config, &[ev]).await? {
        PutConfig::Done(_) => {}
        PutConfig::Missing => return Err(config_not_found(path.get("orgId"))),
        PutConfig::UnknownProvider(id) => {
            return Err(invalid(ValidationError::new(
                "identityProviderId",
                format!("no identity provider {id} in this federation"),
            )))
        }
    }
    let mappings = state.store.role_mappings(config.org_id).await?;
    Ok(Reply::ok(config_out(&config, &mappings)))
}

/// `removeConnectedOrgConfig`: the federation's only connected org stays (Atlas refuses to
/// remove the last one).
pub async fn remove_config(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let (_, config) = connected(&state, &caller, &path, rule).await?;
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "LAST_CONNECTED_ORG",
        format!(
            "Organization {} is the only connected organization of its federation and cannot be removed.",
            config.org_id
        ),
    )
    .with_params([json!(config.org_id.to_string())]))
}

/// `listRoleMappings` (Organization Owner).
pub async fn list_mappings(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let (_, config) = connected(&state, &caller, &path, rule).await?;
    let mappings = state.store.role_mappings(config.org_id).await?;
    let listed = paginate(mappings, page.page());
    Ok(Reply::ok(page.list(listed, |m| mapping_out(&m))))
}

/// `roleAssignments[]` item as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignmentIn {
    org_id: Option<String>,
    group_id: Option<String>,
    role: Option<String>,
}

/// `AuthFederationRoleMapping` as a request body (`id` is read-only and ignored).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MappingIn {
    #[serde(rename = "id")]
    _id: Option<String>,
    external_group_name: Option<String>,
    role_assignments: Option<Vec<AssignmentIn>>,
}

fn assignment(a: AssignmentIn) -> ApiResult<RoleAssignment> {
    let role = a.role.ok_or_else(|| missing("roleAssignments.role"))?;
    match (a.org_id, a.group_id) {
        (Some(o), None) => Ok(RoleAssignment::Org {
            org_id: OrgId::parse(&o)?,
            role: role
                .parse::<OrgRole>()
                .map_err(|_| ApiError::invalid_enum("roleAssignments.role", &role))?,
        }),
        (None, Some(g)) => Ok(RoleAssignment::Group {
            group_id: GroupId::parse(&g)?,
            role: role
                .parse::<GroupRole>()
                .map_err(|_| ApiError::invalid_enum("roleAssignments.role", &role))?,
        }),
        _ => Err(invalid(ValidationError::new(
            "roleAssignments",
            "each assignment needs exactly one of orgId and groupId",
        ))),
    }
}

fn mapping_from(body: MappingIn, id: RoleMappingId, org: OrgId) -> ApiResult<RoleMapping> {
    let name = body
        .external_group_name
        .ok_or_else(|| missing("externalGroupName"))?;
    let role_assignments = body
        .role_assignments
        .unwrap_or_default()
        .into_iter()
        .map(assignment)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(RoleMapping {
        id,
        org_id: org,
        external_group_name: name,
        role_assignments,
    })
}

fn put_outcome(outcome: PutMapping, raw_id: &str) -> ApiResult<()> {
    match outcome {
        PutMapping::Done(_) => Ok(()),
        PutMapping::Missing => Err(mapping_not_found(raw_id)),
        PutMapping::Duplicate => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DUPLICATE_EXTERNAL_GROUP_NAME",
            "Another role mapping of this organization has that externalGroupName.",
        )
        .with_params([json!("externalGroupName")])),
        PutMapping::NoProvider => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "IDENTITY_PROVIDER_NOT_CONNECTED",
            "Role mappings need the connected organization to have an identityProviderId.",
        )),
        PutMapping::Invalid(e) => Err(invalid(e)),
    }
}

/// `createRoleMapping` (Organization Owner).
pub async fn create_mapping(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<MappingIn>,
) -> ApiResult<Reply> {
    let (settings, config) = connected(&state, &caller, &path, rule).await?;
    let id = RoleMappingId::generate(state.clock.now());
    let mapping = mapping_from(body, id, config.org_id)?;
    let ev = event(
        &state,
        &caller,
        EventType::RoleMappingCreated,
        &settings,
        vec![
            ("roleMappingId", id.to_string()),
            ("externalGroupName", mapping.external_group_name.clone()),
        ],
    );
    let outcome = state.store.put_role_mapping(&mapping, true, &[ev]).await?;
    put_outcome(outcome, &id.to_string())?;
    Ok(Reply::ok(mapping_out(&mapping)))
}

async fn mapping_in(state: &AppState, org: OrgId, raw: &str) -> ApiResult<RoleMapping> {
    let id = RoleMappingId::parse(raw)?;
    state
        .store
        .role_mappings(org)
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| mapping_not_found(raw))
}

/// `getRoleMapping` (Organization Owner).
pub async fn get_mapping(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    RoleMappingId::parse(path.get("id"))?;
    let (_, config) = connected(&state, &caller, &path, rule).await?;
    let m = mapping_in(&state, config.org_id, path.get("id")).await?;
    Ok(Reply::ok(mapping_out(&m)))
}

/// `updateRoleMapping` (Organization Owner, `PUT`): the body replaces the mapping; no event
/// when nothing changed.
pub async fn update_mapping(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<MappingIn>,
) -> ApiResult<Reply> {
    RoleMappingId::parse(path.get("id"))?;
    let (settings, config) = connected(&state, &caller, &path, rule).await?;
    let current = mapping_in(&state, config.org_id, path.get("id")).await?;
    let mapping = mapping_from(body, current.id, config.org_id)?;
    let ev = event(
        &state,
        &caller,
        EventType::RoleMappingUpdated,
        &settings,
        vec![
            ("roleMappingId", current.id.to_string()),
            ("externalGroupName", mapping.external_group_name.clone()),
        ],
    );
    let outcome = state.store.put_role_mapping(&mapping, false, &[ev]).await?;
    put_outcome(outcome, path.get("id"))?;
    Ok(Reply::ok(mapping_out(&mapping)))
}

/// `deleteRoleMapping` (Organization Owner).
pub async fn delete_mapping(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let raw = path.get("id");
    let id = RoleMappingId::parse(raw)?;
    let (settings, config) = connected(&state, &caller, &path, rule).await?;
    let ev = event(
        &state,
        &caller,
        EventType::RoleMappingDeleted,
        &settings,
        vec![("roleMappingId", id.to_string())],
    );
    if state
        .store
        .delete_role_mapping(config.org_id, id, &[ev])
        .await?
    {
        Ok(Reply::no_content())
    } else {
        Err(mapping_not_found(raw))
    }
}
