//! Project service accounts (CONTRACT §6): `/groups/{groupId}/serviceAccounts[/{clientId}]`,
//! `:invite`, and an assigned account's secrets and access list seen from a project.
//!
//! A project service account is an org service account with roles in the project; the
//! project view (`GroupServiceAccount`) shows its roles there. Reads come from the in-memory
//! registry; every change writes the store and then reloads the account under the registry's
//! write lock, as the org routes do, whose account-level operations these routes share.
//!
//! Changes to the account as a whole (name, description, secrets, access list) made through a
//! project route also need the caller to hold that route's role wherever else the account
//! reaches: in every other project it is assigned to, and `ORG_OWNER` when it holds an org role
//! beyond `ORG_MEMBER`. Otherwise, once an `ORG_OWNER` account is invited into a project with
//! any role, that project's owner could mint a secret for it and act as an org owner. The
//! yaml's `x-rolesRequirements` name the least role needed (CONTRACT §9); this only adds to
//! them (the table's `GroupAccount` rule, decided by `Principal::may_change_account`). Changes
//! confined to the project (its roles there, unassigning) need no more.

use axum::extract::{FromRequest, OriginalUri, Request, State};
use serde::Deserialize;
use std::sync::Arc;
use tessera_domain::authorization::{project_roles, Holder};
use tessera_domain::roles::{parse_role_list, project_member_org_roles};
use tessera_domain::EventType;
use tessera_domain::{GroupId, GroupRole, Principal, Rule, SecretId};
use tessera_store::{Group, ServiceAccount};

use super::group_for;
use super::service_accounts::{
    self as sa, account_in_org, account_out, create_account, role_error, AccessEntryIn, AccountOut,
    Acting, CreateIn, SecretIn, UpdateIn,
};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiJsonList, PathParams};
use crate::oauth::Peer;
use crate::query::{parse_bool_param, Pagination, Query};
use crate::registry::unit_of_work::{change_existing, no_check, AccountCheck};
use crate::registry::Registry;
use crate::render::Reply;
use crate::state::AppState;

/// The account's roles in `group`, or `None` when it is not assigned there.
fn roles_in(account: &ServiceAccount, group: GroupId) -> Option<&[GroupRole]> {
    project_roles(&account.group_roles, group)
}

/// `GroupServiceAccount`: the org view with the roles in `group` instead of the org roles.
pub fn group_account_out(
    registry: &Registry,
    account: &ServiceAccount,
    group: GroupId,
    clear: Option<(SecretId, &tessera_domain::secrets::SecretValue)>,
) -> AccountOut {
    let mut out = account_out(registry, account, clear);
    out.roles = roles_in(account, group)
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    out
}

/// The account `raw` of the project's org that is assigned to the project, from the registry;
/// 404 `SERVICE_ACCOUNT_NOT_FOUND` otherwise.
pub fn account_in_group(
    state: &AppState,
    group: &Group,
    raw: &str,
) -> ApiResult<Arc<ServiceAccount>> {
    let account = account_in_org(state, group.org_id, raw)?;
    if roles_in(&account, group.id).is_none() {
        return Err(ApiError::service_account_not_found(raw));
    }
    Ok(account)
}

/// See the module comment: may `caller`, acting through project `group` under `rule` (the
/// table's `GroupAccount`), change `account` as a whole? The decision is `Principal`'s; the
/// account must still be assigned to `group` (else 404, as if read afresh).
///
/// Handlers run it on the account as read under the registry's write lock (through
/// [`crate::registry::unit_of_work::change_account`]), so a promotion or an assignment that landed while the request
/// waited for the lock is seen. The registry lists no deleted project then: deleting a
/// project reloads the registry under the same lock (and if that reload fails, a stale
/// project only makes this refuse).
fn check_reach(
    caller: &Principal,
    group: &Group,
    rule: Rule,
    account: &ServiceAccount,
) -> ApiResult<()> {
    if roles_in(account, group.id).is_none() {
        return Err(ApiError::service_account_not_found(
            &account.client_id.to_string(),
        ));
    }
    let holder = Holder {
        org_roles: &account.org_roles,
        group_roles: &account.group_roles,
    };
    if caller.may_change_account(rule, group.org_id, group.id, holder) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// A change made through project `group` under `rule`, with `check` on the account.
fn acting<'a>(
    caller: &'a Principal,
    rule: Rule,
    group: &Group,
    check: AccountCheck<'a>,
) -> Acting<'a> {
    Acting {
        caller,
        rule,
        group: Some(group.id),
        check,
    }
}

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
    Query(q): Query,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    // Accepted for compatibility: Tessera has no system-managed accounts.
    parse_bool_param(&q, "includeSystemManaged")?;
    let listed = state
        .store
        .list_group_service_accounts(group.id, page.page())
        .await?;
    Ok(Reply::ok(page.list(listed, |a| {
        group_account_out(&state.registry, &a, group.id, None)
    })))
}

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<CreateIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let roles = parse_role_list::<GroupRole>("roles", &body.roles, false).map_err(role_error)?;
    // A project service account is also an org member (Atlas).
    let c = create_account(
        &state,
        &caller,
        group.org_id,
        &body,
        project_member_org_roles(),
        vec![(group.id, roles)],
    )
    .await?;
    Ok(Reply::created(group_account_out(
        &state.registry,
        &c.account,
        group.id,
        Some((c.secret_id, &c.secret)),
    )))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let account = account_in_group(&state, &group, path.get("clientId"))?;
    Ok(Reply::ok(group_account_out(
        &state.registry,
        &account,
        group.id,
        None,
    )))
}

/// `GroupServiceAccountUpdateRequest`.
/// Changes name and description of the account and/or its roles in this project only.
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<UpdateIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let raw = path.get("clientId");
    let account = account_in_group(&state, &group, raw)?;
    // Everything is validated before the first write.
    let (name, description) = body.texts()?;
    let roles = body
        .roles
        .as_deref()
        .map(|r| parse_role_list::<GroupRole>("roles", r, false))
        .transpose()
        .map_err(role_error)?;
    let renames = name.is_some() || description.is_some();
    let check = |a: &ServiceAccount| {
        if renames {
            check_reach(&caller, &group, rule, a)
        } else if roles_in(a, group.id).is_none() {
            // Unassigned since: setting roles must not undo that.
            Err(ApiError::service_account_not_found(raw))
        } else {
            Ok(())
        }
    };
    // An early answer from the snapshot, then the decision that counts, under the lock.
    check(&account)?;
    let caller = &caller;
    let st = &state;
    let ((), stored) = change_existing(st, account.client_id, &check, |account| async move {
        let events = audit::update_events(
            st,
            caller,
            group.org_id,
            Some(group.id),
            (name.is_some() || description.is_some())
                .then_some(EventType::ServiceAccountDetailsChanged),
            roles
                .is_some()
                .then_some(EventType::ServiceAccountRolesChanged),
            &audit::account_target(account.client_id),
        );
        // One transaction: nothing is half-written if the store fails midway.
        let changed = st
            .store
            .update_service_account(
                account.client_id,
                name.as_ref().map(|n| n.as_str()),
                description.as_ref().map(|d| d.as_str()),
                None,
                roles.as_deref().map(|r| (group.id, r)),
                &events,
            )
            .await?;
        if !changed {
            return Err(ApiError::service_account_not_found(raw));
        }
        Ok(())
    })
    .await?;
    Ok(Reply::ok(group_account_out(
        &state.registry,
        &stored,
        group.id,
        None,
    )))
}

/// Unassigns the account from the project (seed 001): it stays in the org with its secrets
/// and tokens, which no longer reach this project (roles are read at request time).
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let raw = path.get("clientId");
    let account = account_in_group(&state, &group, raw)?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::ServiceAccountRemovedFromGroup,
        group.org_id,
        Some(group.id),
        audit::account_target(account.client_id),
    );
    // Still assigned when the lock is held (a concurrent unassign wins cleanly).
    let still_assigned = |a: &ServiceAccount| {
        roles_in(a, group.id)
            .map(|_| ())
            .ok_or_else(|| ApiError::service_account_not_found(raw))
    };
    let st = &state;
    change_existing(st, account.client_id, &still_assigned, |a| async move {
        let removed = st
            .store
            .remove_service_account_from_group(a.client_id, group.id, &[ev])
            .await?;
        removed
            .then_some(())
            .ok_or_else(|| ApiError::service_account_not_found(raw))
    })
    .await?;
    tracing::info!(client_id = %account.client_id, group_id = %group.id, "service account unassigned from project");
    Ok(Reply::no_content())
}

/// `GroupServiceAccountRoleAssignment`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InviteIn {
    roles: Vec<String>,
}

/// `POST /groups/{groupId}/serviceAccounts/{clientId}:invite`. The router cannot split a
/// segment at `:`, so the path parameter holds `{clientId}:{action}`; any action other than
/// `invite` is an unknown route. The body is read only once the action is known.
pub async fn action(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> ApiResult<Reply> {
    let Some(raw) = path.get("clientId").strip_suffix(":invite") else {
        return Err(ApiError::route_not_found(uri.path()));
    };
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let ApiJson(body) = ApiJson::<InviteIn>::from_request(request, &state).await?;
    let account = account_in_org(&state, group.org_id, raw)?;
    let roles = parse_role_list::<GroupRole>("roles", &body.roles, false).map_err(role_error)?;
    let st = &state;
    let ((), stored) = change_existing(st, account.client_id, &no_check, |a| async move {
        let assigned = roles_in(&a, group.id).is_some();
        let ev = audit::event(
            st,
            &caller,
            if assigned {
                EventType::ServiceAccountRolesChanged
            } else {
                EventType::ServiceAccountAddedToGroup
            },
            group.org_id,
            Some(group.id),
            audit::account_target(account.client_id),
        );
        if !st
            .store
            .set_service_account_group_roles(a.client_id, group.id, &roles, &[ev])
            .await?
        {
            return Err(ApiError::service_account_not_found(raw));
        }
        Ok(())
    })
    .await?;
    tracing::info!(client_id = %stored.client_id, group_id = %group.id, "service account assigned to project");
    Ok(Reply::ok(group_account_out(
        &state.registry,
        &stored,
        group.id,
        None,
    )))
}

pub async fn create_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<SecretIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let account = account_in_group(&state, &group, path.get("clientId"))?;
    let check = |a: &ServiceAccount| check_reach(&caller, &group, rule, a);
    check(&account)?;
    sa::add_secret(
        &state,
        &acting(&caller, rule, &group, &check),
        &account,
        body,
    )
    .await
}

pub async fn delete_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let account = account_in_group(&state, &group, path.get("clientId"))?;
    let check = |a: &ServiceAccount| check_reach(&caller, &group, rule, a);
    check(&account)?;
    let by = acting(&caller, rule, &group, &check);
    sa::remove_secret(&state, &by, &account, path.get("secretId")).await
}

pub async fn list_access(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let account = account_in_group(&state, &group, path.get("clientId"))?;
    Ok(sa::access_page(&state, &account, &page))
}

pub async fn add_access(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
    ApiJsonList(body): ApiJsonList<AccessEntryIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let account = account_in_group(&state, &group, path.get("clientId"))?;
    let check = |a: &ServiceAccount| check_reach(&caller, &group, rule, a);
    check(&account)?;
    let by = acting(&caller, rule, &group, &check);
    sa::add_access_entries(&state, &by, &account, &page, body).await
}

pub async fn delete_access(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    Peer(peer): Peer,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let account = account_in_group(&state, &group, path.get("clientId"))?;
    let check = |a: &ServiceAccount| check_reach(&caller, &group, rule, a);
    check(&account)?;
    let by = acting(&caller, rule, &group, &check);
    sa::remove_access_entry(&state, &by, &account, path.get("ipAddress"), peer).await
}
