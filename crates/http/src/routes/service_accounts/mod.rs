//! Organization service accounts (CONTRACT §6): `/orgs/{orgId}/serviceAccounts[/{clientId}]`,
//! their secrets, access lists and project list.
//!
//! Reads come from the in-memory registry; every change goes through the registry's unit of
//! work (`crate::registry::unit_of_work`): under its write lock, the store is written and the
//! account reloaded. The handlers here are the org routes; [`account`] holds the account-level
//! operations they share with the project routes (`super::group_service_accounts`), [`wire`]
//! the response shapes, and `super::access_entries` the access-list parsing API keys reuse.

pub mod account;
pub mod wire;

use axum::extract::State;
use std::sync::Arc;
use tessera_domain::roles::{parse_role_list, OrgRole};
use tessera_domain::{ClientId, EventType, OrgId};
use tessera_store::ServiceAccount;

pub use account::{
    add_access_entries, add_secret, create_account, new_secret, remove_access_entry, remove_secret,
    AccessEntryIn, Acting, CreateIn, Created, SecretIn, UpdateIn,
};
pub use wire::{access_page, account_out, AccessEntryOut, AccountOut, SecretOut};

use super::{authorize_org, paginate};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiJsonList, PathParams};
use crate::oauth::Peer;
use crate::query::{parse_bool_param, Pagination, Query};
use crate::registry::unit_of_work::{change_account, change_existing, no_check};
use crate::render::Reply;
use crate::state::AppState;
use wire::AccountGroupOut;

/// The account `raw` of `org`, from the registry; 404 when absent or in another org.
pub fn account_in_org(state: &AppState, org: OrgId, raw: &str) -> ApiResult<Arc<ServiceAccount>> {
    let id = ClientId::parse(raw)?;
    match state.registry.get(id) {
        Some(a) if a.org_id == org => Ok(a),
        _ => Err(ApiError::service_account_not_found(raw)),
    }
}

pub fn role_error(e: tessera_domain::roles::RoleListError) -> ApiError {
    ApiError::validation(format!("{e}."))
}

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
    Query(q): Query,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    // Accepted for compatibility: Tessera has no system-managed accounts.
    parse_bool_param(&q, "includeSystemManaged")?;
    let listed = state
        .store
        .list_org_service_accounts(org, page.page())
        .await?;
    Ok(Reply::ok(
        page.list(listed, |a| account_out(&state.registry, &a, None)),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<CreateIn>,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let roles = parse_role_list::<OrgRole>("roles", &body.roles, false).map_err(role_error)?;
    let c = create_account(&state, &caller, org, &body, roles, Vec::new()).await?;
    Ok(Reply::created(account_out(
        &state.registry,
        &c.account,
        Some((c.secret_id, &c.secret)),
    )))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let account = account_in_org(&state, org, path.get("clientId"))?;
    Ok(Reply::ok(account_out(&state.registry, &account, None)))
}

pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<UpdateIn>,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let account = account_in_org(&state, org, path.get("clientId"))?;
    let (name, description) = body.texts()?;
    let roles = body
        .roles
        .as_deref()
        .map(|r| parse_role_list::<OrgRole>("roles", r, false))
        .transpose()
        .map_err(role_error)?;
    let events = audit::update_events(
        &state,
        &caller,
        org,
        None,
        (name.is_some() || description.is_some())
            .then_some(EventType::ServiceAccountDetailsChanged),
        roles
            .is_some()
            .then_some(EventType::ServiceAccountRolesChanged),
        &audit::account_target(account.client_id),
    );
    let st = &state;
    let ((), stored) = change_existing(st, account.client_id, &no_check, |a| async move {
        let changed = st
            .store
            .update_service_account(
                a.client_id,
                name.as_ref().map(|n| n.as_str()),
                description.as_ref().map(|d| d.as_str()),
                roles.as_deref(),
                None,
                &events,
            )
            .await?;
        changed
            .then_some(())
            .ok_or_else(|| ApiError::service_account_not_found(&a.client_id.to_string()))
    })
    .await?;
    Ok(Reply::ok(account_out(&state.registry, &stored, None)))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let account = account_in_org(&state, org, path.get("clientId"))?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::ServiceAccountDeleted,
        org,
        None,
        audit::account_target(account.client_id),
    );
    let st = &state;
    change_account(st, account.client_id, &no_check, |a| async move {
        let deleted = st.store.delete_service_account(a.client_id, &[ev]).await?;
        deleted
            .then_some(())
            .ok_or_else(|| ApiError::service_account_not_found(&a.client_id.to_string()))
    })
    .await?;
    tracing::info!(client_id = %account.client_id, "service account deleted; its tokens end now");
    Ok(Reply::no_content())
}

pub async fn create_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<SecretIn>,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let account = account_in_org(&state, org, path.get("clientId"))?;
    add_secret(&state, &Acting::org(&caller, rule), &account, body).await
}

pub async fn delete_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let account = account_in_org(&state, org, path.get("clientId"))?;
    let by = Acting::org(&caller, rule);
    remove_secret(&state, &by, &account, path.get("secretId")).await
}

pub async fn list_access(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let account = account_in_org(&state, org, path.get("clientId"))?;
    Ok(access_page(&state, &account, &page))
}

pub async fn add_access(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
    ApiJsonList(body): ApiJsonList<AccessEntryIn>,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let account = account_in_org(&state, org, path.get("clientId"))?;
    let by = Acting::org(&caller, rule);
    add_access_entries(&state, &by, &account, &page, body).await
}

pub async fn delete_access(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    Peer(peer): Peer,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let account = account_in_org(&state, org, path.get("clientId"))?;
    let by = Acting::org(&caller, rule);
    remove_access_entry(&state, &by, &account, path.get("ipAddress"), peer).await
}

pub async fn list_groups(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let org = authorize_org(&caller, path.get("orgId"), rule)?;
    let account = account_in_org(&state, org, path.get("clientId"))?;
    let listed = paginate(account.group_roles.clone(), page.page());
    Ok(Reply::ok(page.list(listed, |(g, roles)| AccountGroupOut {
        group_id: g.to_string(),
        roles: roles.iter().map(ToString::to_string).collect(),
    })))
}
