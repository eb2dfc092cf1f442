//! Organization service accounts (CONTRACT §6): `/orgs/{orgId}/serviceAccounts[/{clientId}]`,
//! their secrets, access lists and project list.
//!
//! Reads come from the in-memory registry; every change writes the store and then reloads
//! the account into the registry under the registry's write lock.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use tessera_domain::access::AccessEntry;
use tessera_domain::authorization::Credential;
use tessera_domain::names::{ServiceAccountDescription, ServiceAccountName};
use tessera_domain::roles::{parse_role_list, OrgRole};
use tessera_domain::secrets::{
    generate_service_account_secret, mask_service_account_secret, SecretValue,
};
use tessera_domain::service_accounts::{secret_expiry, MAX_ACTIVE_SECRETS};
use tessera_domain::time::format;
use tessera_domain::{ClientId, OrgId, Principal, Rule, SecretId};
use tessera_domain::{EventType, GroupId};
use tessera_store::{AccessListEntry, AddSecretOutcome, SaSecret, ServiceAccount};

use super::{authorize_org, paginate};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiJsonList, PathParams};
use crate::oauth::Peer;
use crate::query::{parse_bool_param, Pagination, Query};
use crate::registry::Registry;
use crate::render::Reply;
use crate::state::AppState;
use crate::wire::Ignored;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretOut {
    pub created_at: String,
    pub expires_at: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_secret_value: Option<String>,
    /// Only in the response that creates the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountOut {
    pub client_id: String,
    pub created_at: String,
    pub description: String,
    pub name: String,
    pub roles: Vec<String>,
    pub secrets: Vec<SecretOut>,
}

fn secret_out(registry: &Registry, s: &SaSecret, clear: Option<&SecretValue>) -> SecretOut {
    SecretOut {
        created_at: format(s.created_at),
        expires_at: format(s.expires_at),
        id: s.id.to_string(),
        last_used_at: registry.secret_last_used(s.id, s.last_used_at).map(format),
        masked_secret_value: clear.is_none().then(|| s.masked.clone()),
        secret: clear.map(|c| c.expose().to_owned()),
    }
}

pub fn account_out(
    registry: &Registry,
    a: &ServiceAccount,
    clear: Option<(SecretId, &SecretValue)>,
) -> AccountOut {
    AccountOut {
        client_id: a.client_id.to_string(),
        created_at: format(a.created_at),
        description: a.description.clone(),
        name: a.name.clone(),
        roles: a.org_roles.iter().map(ToString::to_string).collect(),
        secrets: a
            .secrets
            .iter()
            .map(|s| {
                secret_out(
                    registry,
                    s,
                    clear.filter(|(id, _)| *id == s.id).map(|(_, v)| v),
                )
            })
            .collect(),
    }
}

pub fn account_not_found(raw: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "SERVICE_ACCOUNT_NOT_FOUND",
        format!("No service account with client ID {raw} exists."),
    )
    .with_params([json!(raw)])
}

/// The account `raw` of `org`, from the registry; 404 when absent or in another org.
pub fn account_in_org(state: &AppState, org: OrgId, raw: &str) -> ApiResult<Arc<ServiceAccount>> {
    let id = ClientId::parse(raw)?;
    match state.registry.get(id) {
        Some(a) if a.org_id == org => Ok(a),
        _ => Err(account_not_found(raw)),
    }
}

pub fn role_error(e: tessera_domain::roles::RoleListError) -> ApiError {
    ApiError::validation(format!("{e}."))
}

/// Makes a new secret: (record with keyed hash, clear value to show once).
pub fn new_secret(state: &AppState, hours: i64) -> ApiResult<(SaSecret, SecretValue)> {
    let now = state.clock.now();
    let expires_at = secret_expiry(hours, state.settings.max_secret_hours, now)?;
    let value = generate_service_account_secret();
    let record = SaSecret {
        id: SecretId::generate(now),
        hash: state.crypto.hasher.hash(value.expose()),
        masked: mask_service_account_secret(&value),
        created_at: now,
        expires_at,
        last_used_at: None,
    };
    Ok((record, value))
}

/// A decision about an account that must be made on the account as read under the registry's
/// write lock (see [`change_account`]). Org routes pass [`no_check`]; project routes check the
/// account's reach there.
pub type AccountCheck<'a> = &'a (dyn Fn(&ServiceAccount) -> ApiResult<()> + Send + Sync);

/// For callers whose authorization does not depend on the account's state (org routes,
/// already authorized on the org).
pub fn no_check(_: &ServiceAccount) -> ApiResult<()> {
    Ok(())
}

/// Who changes an account, and through which route: the caller, its route's rule (from the
/// table in `crate::authz`), the project the route names (`None`: an org route; the change's
/// events are that project's) and the decision to make on the account as read under the
/// registry's write lock.
pub struct Acting<'a> {
    pub caller: &'a Principal,
    pub rule: Rule,
    pub group: Option<GroupId>,
    pub check: AccountCheck<'a>,
}

impl<'a> Acting<'a> {
    /// Through an org route: authorized on the org, nothing to decide on the account.
    pub fn org(caller: &'a Principal, rule: Rule) -> Self {
        Acting {
            caller,
            rule,
            group: None,
            check: &no_check,
        }
    }
}

/// Takes the registry's write lock, re-reads the account under it and runs `check` on that
/// copy. A decision made on a copy read before the lock could miss a change that landed in
/// between (an account promoted to `ORG_OWNER`, unassigned from the project, deleted): the
/// lock is what orders this change after those.
async fn lock_account<'s>(
    state: &'s AppState,
    id: ClientId,
    check: AccountCheck<'_>,
) -> ApiResult<(tokio::sync::MutexGuard<'s, ()>, Arc<ServiceAccount>)> {
    let guard = state.registry.write().await;
    let account = state
        .registry
        .get(id)
        .ok_or_else(|| account_not_found(&id.to_string()))?;
    check(&account)?;
    Ok((guard, account))
}

/// The one way an existing service account changes (the registry's unit of work): under the
/// registry's write lock, `check` decides on the account as the registry holds it, `write`
/// changes the store (with the change's events, in one transaction), and the account is
/// re-read into the registry before the lock is released, so the mirror never shows what the
/// store does not hold and no decision is made on a copy that a concurrent change outdated.
/// Returns `write`'s value and the account as stored (`None` once deleted).
pub async fn change_account<T, Fut>(
    state: &AppState,
    id: ClientId,
    check: AccountCheck<'_>,
    write: impl FnOnce(Arc<ServiceAccount>) -> Fut,
) -> ApiResult<(T, Option<Arc<ServiceAccount>>)>
where
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    let (_guard, account) = lock_account(state, id, check).await?;
    let out = write(account).await?;
    let stored = state.registry.reload(state.store.as_ref(), id).await?;
    Ok((out, stored))
}

/// [`change_account`] for a change after which the account still exists.
pub async fn change_existing<T, Fut>(
    state: &AppState,
    id: ClientId,
    check: AccountCheck<'_>,
    write: impl FnOnce(Arc<ServiceAccount>) -> Fut,
) -> ApiResult<(T, Arc<ServiceAccount>)>
where
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    let (out, stored) = change_account(state, id, check, write).await?;
    Ok((
        out,
        stored.ok_or_else(|| account_not_found(&id.to_string()))?,
    ))
}

pub async fn reload(state: &AppState, id: ClientId) -> ApiResult<Arc<ServiceAccount>> {
    state
        .registry
        .reload(state.store.as_ref(), id)
        .await?
        .ok_or_else(|| account_not_found(&id.to_string()))
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

/// `OrgServiceAccountRequest` / `GroupServiceAccountRequest` (same fields; the roles are
/// org roles for the one, project roles for the other).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateIn {
    pub name: String,
    pub description: String,
    pub roles: Vec<String>,
    pub secret_expires_after_hours: i64,
}

/// A newly created account and its first secret's clear value (to be shown once).
pub struct Created {
    pub account: Arc<ServiceAccount>,
    pub secret_id: SecretId,
    pub secret: SecretValue,
}

/// Validates `body`'s name, description and lifetime, then creates the account in `org` with
/// `org_roles` and `group_roles` (the caller has parsed the roles for its scope).
pub async fn create_account(
    state: &AppState,
    caller: &Principal,
    org: OrgId,
    body: &CreateIn,
    org_roles: Vec<OrgRole>,
    group_roles: Vec<(tessera_domain::GroupId, Vec<tessera_domain::GroupRole>)>,
) -> ApiResult<Created> {
    let name = ServiceAccountName::parse(&body.name)?;
    let description = ServiceAccountDescription::parse(&body.description)?;
    let (secret, value) = new_secret(state, body.secret_expires_after_hours)?;
    let secret_id = secret.id;
    let now = state.clock.now();
    let account = ServiceAccount {
        client_id: ClientId::generate(now),
        org_id: org,
        name: name.into_inner(),
        description: description.into_inner(),
        org_roles,
        group_roles,
        created_at: now,
        secrets: vec![secret],
        access_list: Vec::new(),
    };
    let target = audit::account_target(account.client_id);
    let mut events = vec![audit::event(
        state,
        caller,
        EventType::ServiceAccountCreated,
        org,
        None,
        target.clone(),
    )];
    events.extend(account.group_roles.iter().map(|(g, _)| {
        audit::event(
            state,
            caller,
            EventType::ServiceAccountAddedToGroup,
            org,
            Some(*g),
            target.clone(),
        )
    }));
    let _guard = state.registry.write().await;
    state
        .store
        .create_service_account(&account, &events)
        .await?;
    let stored = reload(state, account.client_id).await?;
    tracing::info!(client_id = %stored.client_id, org_id = %org, "service account created");
    Ok(Created {
        account: stored,
        secret_id,
        secret: value,
    })
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

/// `OrgServiceAccountUpdateRequest` / `GroupServiceAccountUpdateRequest` (roles are org or
/// project roles by route).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateIn {
    pub name: Option<String>,
    pub description: Option<String>,
    pub roles: Option<Vec<String>>,
}

impl UpdateIn {
    /// The validated new name and description, where given.
    pub fn texts(
        &self,
    ) -> ApiResult<(
        Option<ServiceAccountName>,
        Option<ServiceAccountDescription>,
    )> {
        let name = self
            .name
            .as_deref()
            .map(ServiceAccountName::parse)
            .transpose()?;
        let description = self
            .description
            .as_deref()
            .map(ServiceAccountDescription::parse)
            .transpose()?;
        Ok((name, description))
    }
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
            .ok_or_else(|| account_not_found(&a.client_id.to_string()))
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
            .ok_or_else(|| account_not_found(&a.client_id.to_string()))
    })
    .await?;
    tracing::info!(client_id = %account.client_id, "service account deleted; its tokens end now");
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretIn {
    secret_expires_after_hours: i64,
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

/// Adds a secret to `account`, for a caller authorized on it (org or project route).
pub async fn add_secret(
    state: &AppState,
    by: &Acting<'_>,
    account: &ServiceAccount,
    body: SecretIn,
) -> ApiResult<Reply> {
    let (caller, group) = (by.caller, by.group);
    let (secret, value) = new_secret(state, body.secret_expires_after_hours)?;
    let secret = &secret;
    let ((), _stored) = change_existing(state, account.client_id, by.check, |account| async move {
        let mut target = audit::account_target(account.client_id);
        target.push(("secretId", secret.id.to_string()));
        let ev = audit::event(
            state,
            caller,
            EventType::ServiceAccountSecretAdded,
            account.org_id,
            group,
            target,
        );
        let outcome = state
            .store
            .add_service_account_secret(
                account.client_id,
                secret,
                MAX_ACTIVE_SECRETS,
                state.clock.now(),
                &[ev],
            )
            .await?;
        match outcome {
            AddSecretOutcome::Added => {}
            AddSecretOutcome::NotFound => {
                return Err(account_not_found(&account.client_id.to_string()))
            }
            AddSecretOutcome::TooMany => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "SERVICE_ACCOUNT_SECRET_LIMIT_EXCEEDED",
                    format!(
                        "Service account {} already has {MAX_ACTIVE_SECRETS} unexpired secrets; delete one first.",
                        account.client_id
                    ),
                )
                .with_params([json!(account.client_id.to_string()), json!(MAX_ACTIVE_SECRETS)]))
            }
        }
        Ok(())
    })
    .await?;
    Ok(Reply::created(secret_out(
        &state.registry,
        secret,
        Some(&value),
    )))
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

/// Deletes secret `raw` of `account`, for a caller authorized on it.
pub async fn remove_secret(
    state: &AppState,
    by: &Acting<'_>,
    account: &ServiceAccount,
    raw: &str,
) -> ApiResult<Reply> {
    let (caller, group) = (by.caller, by.group);
    let secret = SecretId::parse(raw)?;
    let ((), _stored) = change_existing(state, account.client_id, by.check, |account| async move {
        let mut target = audit::account_target(account.client_id);
        target.push(("secretId", secret.to_string()));
        let ev = audit::event(
            state,
            caller,
            EventType::ServiceAccountSecretDeleted,
            account.org_id,
            group,
            target,
        );
        if !state
            .store
            .delete_service_account_secret(account.client_id, secret, &[ev])
            .await?
        {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "SERVICE_ACCOUNT_SECRET_NOT_FOUND",
                format!("No secret with ID {raw} exists for this service account."),
            )
            .with_params([json!(raw)]));
        }
        Ok(())
    })
    .await?;
    tracing::info!(client_id = %account.client_id, secret_id = %secret, "secret deleted; tokens minted with it end now");
    Ok(Reply::no_content())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntryOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    pub request_count: u64,
}

fn access_out(registry: &Registry, account: ClientId, e: &AccessListEntry) -> AccessEntryOut {
    let pending = registry.access_pending(account, &e.entry.key());
    let (last_at, last_addr, extra) = match pending {
        Some((at, addr, n)) => (Some(at), Some(addr), n),
        None => (e.last_used_at, e.last_used_address.clone(), 0),
    };
    AccessEntryOut {
        cidr_block: e.entry.is_cidr.then(|| e.entry.display()),
        created_at: format(e.created_at),
        ip_address: (!e.entry.is_cidr).then(|| e.entry.display()),
        last_used_address: last_addr,
        last_used_at: last_at.map(format),
        request_count: e.request_count + extra,
    }
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

/// One page of `account`'s access list, for a caller already authorized on it.
pub fn access_page(state: &AppState, account: &ServiceAccount, page: &Pagination) -> Reply {
    let listed = paginate(account.access_list.clone(), page.page());
    Reply::ok(page.list(listed, |e| {
        access_out(&state.registry, account.client_id, &e)
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessEntryIn {
    cidr_block: Option<String>,
    ip_address: Option<String>,
    #[serde(default, rename = "createdAt")]
    _created_at: Ignored,
    #[serde(default, rename = "lastUsedAddress")]
    _last_used_address: Ignored,
    #[serde(default, rename = "lastUsedAt")]
    _last_used_at: Ignored,
    #[serde(default, rename = "requestCount")]
    _request_count: Ignored,
}

/// Most entries accepted in one request body (Atlas).
pub const MAX_ACCESS_ENTRIES_PER_REQUEST: usize = 200;

/// Validates the entries of an access-list request body, given as (`ipAddress`,
/// `cidrBlock`) pairs, for service accounts and API keys alike: 1 to
/// [`MAX_ACCESS_ENTRIES_PER_REQUEST`] entries, each exactly one of the two fields, each a valid
/// IPv4 or IPv6 address or CIDR block. Any invalid entry rejects the whole body.
pub fn new_access_entries(
    items: impl ExactSizeIterator<Item = (Option<String>, Option<String>)>,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<Vec<AccessListEntry>> {
    if items.len() == 0 || items.len() > MAX_ACCESS_ENTRIES_PER_REQUEST {
        return Err(ApiError::validation(format!(
            "The request body must list 1 to {MAX_ACCESS_ENTRIES_PER_REQUEST} entries."
        )));
    }
    let mut entries = Vec::with_capacity(items.len());
    for (ip, cidr) in items {
        let entry = match (ip, cidr) {
            (Some(ip), None) => AccessEntry::from_ip_address(&ip)?,
            (None, Some(cidr)) => AccessEntry::from_cidr_block(&cidr)?,
            _ => {
                return Err(ApiError::validation(
                    "Each entry must have exactly one of ipAddress and cidrBlock.",
                ))
            }
        };
        entries.push(AccessListEntry {
            entry,
            created_at: now,
            last_used_at: None,
            last_used_address: None,
            request_count: 0,
        });
    }
    Ok(entries)
}

/// The refusal to remove an entry the request itself comes through (Atlas).
pub fn cannot_remove_caller_entry(raw: &str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "CANNOT_REMOVE_CALLER_ACCESS_LIST_ENTRY",
        format!("The entry {raw} cannot be removed by this request: {why}"),
    )
    .with_params([json!(raw)])
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

/// Adds entries to `account`'s access list, for a caller authorized on it; answers with the
/// first page of the list.
pub async fn add_access_entries(
    state: &AppState,
    by: &Acting<'_>,
    account: &ServiceAccount,
    page: &Pagination,
    body: Vec<AccessEntryIn>,
) -> ApiResult<Reply> {
    let (caller, group) = (by.caller, by.group);
    let entries = new_access_entries(
        body.into_iter().map(|i| (i.ip_address, i.cidr_block)),
        state.clock.now(),
    )?;
    let ((), stored) = change_existing(state, account.client_id, by.check, |account| async move {
        // One event per entry that is new (entries already present are ignored).
        let events: Vec<_> = entries
            .iter()
            .filter(|e| {
                !account
                    .access_list
                    .iter()
                    .any(|a| a.entry.key() == e.entry.key())
            })
            .map(|e| {
                let mut target = audit::account_target(account.client_id);
                target.push(("whitelistEntry", e.entry.key()));
                audit::event(
                    state,
                    caller,
                    EventType::ServiceAccountAccessListEntryAdded,
                    account.org_id,
                    group,
                    target,
                )
            })
            .collect();
        if !state
            .store
            .add_access_entries(account.client_id, &entries, &events)
            .await?
        {
            return Err(account_not_found(&account.client_id.to_string()));
        }
        Ok(())
    })
    .await?;
    let listed = paginate(stored.access_list.clone(), page.page());
    Ok(Reply::ok(page.list(listed, |e| {
        access_out(&state.registry, stored.client_id, &e)
    })))
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

/// Removes entry `raw` from `account`'s access list, for a caller authorized on it; `peer` is
/// the address the request comes from (see the rule's `KeepsOwnAccess`).
pub async fn remove_access_entry(
    state: &AppState,
    by: &Acting<'_>,
    account: &ServiceAccount,
    raw: &str,
    peer: IpAddr,
) -> ApiResult<Reply> {
    let (caller, group) = (by.caller, by.group);
    let entry = AccessEntry::parse_any(raw)?;
    let ((), _stored) = change_existing(state, account.client_id, by.check, |account| async move {
        let not_found = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "ACCESS_LIST_ENTRY_NOT_FOUND",
                format!("No access list entry {raw} exists for this service account."),
            )
            .with_params([json!(raw)])
        };
        if !account
            .access_list
            .iter()
            .any(|e| e.entry.key() == entry.key())
        {
            return Err(not_found());
        }
        // `KeepsOwnAccess`: the account may not remove the entry its own request comes
        // through (Atlas).
        let own = Credential::ServiceAccount(account.client_id);
        if let Some(addr) = caller.own_address_to_keep(by.rule, own, peer) {
            if entry.contains(addr) {
                return Err(cannot_remove_caller_entry(
                    raw,
                    "it allows the address this request comes from.",
                ));
            }
        }
        let mut target = audit::account_target(account.client_id);
        target.push(("whitelistEntry", entry.key()));
        let ev = audit::event(
            state,
            caller,
            EventType::ServiceAccountAccessListEntryDeleted,
            account.org_id,
            group,
            target,
        );
        if !state
            .store
            .delete_access_entry(account.client_id, &entry.key(), &[ev])
            .await?
        {
            return Err(not_found());
        }
        Ok(())
    })
    .await?;
    Ok(Reply::no_content())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountGroupOut {
    group_id: String,
    roles: Vec<String>,
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
