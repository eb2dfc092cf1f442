//! Custom database roles (`/groups/{groupId}/customDBRoles/roles`, 2023-01-01): create, list,
//! get, update, delete. The rules are `tessera_domain::custom_roles`' (MongoDB's privilege
//! actions; inherited roles built in or the project's, without a cycle); the store checks the
//! project's roles together in the change's unit of work. A role another role inherits or a
//! database user holds is not deleted (409 `ROLE_IN_USE`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::custom_roles::{check_name, CustomRole, Inherited, Privilege};
use tessera_domain::EventType;
use tessera_store::{DeleteRole, Group, PutRole};

use super::group_for;
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::render::Reply;
use crate::state::AppState;

fn role_out(r: &CustomRole) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

fn not_found(name: &str, group: &Group) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ATLAS_CUSTOM_ROLE_NOT_FOUND",
        format!("Custom role {name} not found in group {}.", group.id),
    )
    .with_params([json!(name), json!(group.id.to_string())])
}

fn event(
    state: &AppState,
    caller: &tessera_domain::Principal,
    t: EventType,
    group: &Group,
    name: &str,
) -> tessera_store::events::NewEvent {
    audit::event(
        state,
        caller,
        t,
        group.org_id,
        Some(group.id),
        vec![("roleName", name.to_owned())],
    )
}

/// `listCustomDatabaseRoles` (Project Read Only): a bare array, as Atlas'.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let roles = state.store.list_custom_roles(group.id).await?;
    Ok(Reply::ok(json!(roles
        .iter()
        .map(role_out)
        .collect::<Vec<_>>())))
}

/// `getCustomDatabaseRole` (Project Read Only).
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let name = path.get("roleName");
    let roles = state.store.list_custom_roles(group.id).await?;
    let r = roles
        .iter()
        .find(|r| r.role_name == name)
        .ok_or_else(|| not_found(name, &group))?;
    Ok(Reply::ok(role_out(r)))
}

fn put_outcome(outcome: PutRole, name: &str, group: &Group) -> ApiResult<()> {
    match outcome {
        PutRole::Done => Ok(()),
        PutRole::Exists => Err(ApiError::new(
            StatusCode::CONFLICT,
            "DUPLICATE_CUSTOM_ROLE_NAME",
            format!(
                "A custom role named {name} already exists in group {}.",
                group.id
            ),
        )
        .with_params([json!(name)])),
        PutRole::Missing => Err(not_found(name, group)),
        PutRole::Invalid(e) => Err(e.into()),
        PutRole::NoGroup => Err(ApiError::group_not_found(&group.id.to_string())),
    }
}

/// `createCustomDatabaseRole` (Project Owner): 202 with the role, as the description says.
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(role): ApiJson<CustomRole>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    role.check()?;
    let ev = event(
        &state,
        &caller,
        EventType::CustomRoleAdded,
        &group,
        &role.role_name,
    );
    let now = state.clock.now();
    let outcome = state
        .store
        .put_custom_role(group.id, &role, true, now, &[ev])
        .await?;
    put_outcome(outcome, &role.role_name, &group)?;
    Ok(Reply::accepted(role_out(&role)))
}

/// `UpdateCustomDBRole`: the fields given replace the role's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateIn {
    actions: Option<Vec<Privilege>>,
    #[serde(rename = "inheritedRoles")]
    inherits: Option<Vec<Inherited>>,
}

/// `updateCustomDatabaseRole` (Project Owner); no event when nothing changed.
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<UpdateIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let name = path.get("roleName");
    check_name(name)?;
    let current = state
        .store
        .list_custom_roles(group.id)
        .await?
        .into_iter()
        .find(|r| r.role_name == name)
        .ok_or_else(|| not_found(name, &group))?;
    let role = CustomRole {
        role_name: current.role_name,
        actions: body.actions.unwrap_or(current.actions),
        inherits: body.inherits.unwrap_or(current.inherits),
    };
    role.check()?;
    let ev = event(&state, &caller, EventType::CustomRoleUpdated, &group, name);
    let now = state.clock.now();
    let outcome = state
        .store
        .put_custom_role(group.id, &role, false, now, &[ev])
        .await?;
    put_outcome(outcome, name, &group)?;
    Ok(Reply::ok(role_out(&role)))
}

/// `deleteCustomDatabaseRole` (Project Owner).
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let name = path.get("roleName");
    let ev = event(&state, &caller, EventType::CustomRoleDeleted, &group, name);
    match state
        .store
        .delete_custom_role(group.id, name, &[ev])
        .await?
    {
        DeleteRole::Deleted => Ok(Reply::no_content()),
        DeleteRole::Missing => Err(not_found(name, &group)),
        DeleteRole::InUse(by) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ROLE_IN_USE",
            format!(
                "Custom role {name} is held or inherited by: {}.",
                by.join(", ")
            ),
        )
        .with_params([json!(name)])),
    }
}
