//! API-key access lists (CONTRACT §7, "the same holds for API keys"):
//! `/orgs/{orgId}/apiKeys/{apiUserId}/accessList[/{ipAddress}]`.
//!
//! The entries, their validation and the per-request limit are the service accounts' (see
//! [`super::access_entries::new_access_entries`]); the wire names are the subset's for API
//! keys (`created`, `lastUsed`, `count`, `links`). Enforcement is in `auth` (Digest): a key
//! with a non-empty list is refused from any other address. Every change moves the store's
//! API-key version, so the Digest cache re-reads the key on its next request.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tessera_domain::access::AccessEntry;
use tessera_domain::authorization::Credential;
use tessera_domain::EventType;
use tessera_store::{AccessListEntry, ApiKeyRecord, DeleteKeyAccessOutcome};

use super::access_entries::{cannot_remove_caller_entry, new_access_entries};
use super::api_keys::key_in_org;
use super::{org_for, paginate, Base};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJsonList, PathParams};
use crate::oauth::Peer;
use crate::query::Pagination;
use crate::registry::Registry;
use crate::render::Reply;
use crate::state::AppState;
use crate::wire::{self_link, Ignored};

/// `UserAccessListResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAccessEntryOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<String>,
    /// Requests admitted by the entry; omitted until the first (the description's minimum is 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_address: Option<String>,
    pub links: Vec<Value>,
}

/// The entry as the path names it: `192.0.2.0%2F24` for a block, the bare address otherwise.
fn path_form(e: &AccessEntry) -> String {
    e.display().replace('/', "%2F")
}

/// One entry with its counters, including uses not yet flushed.
fn entry_out(
    base: &str,
    registry: &Registry,
    key: &ApiKeyRecord,
    e: &AccessListEntry,
) -> KeyAccessEntryOut {
    let (last_at, last_addr, extra) = match registry.key_access_pending(key.id, &e.entry.key()) {
        Some((at, addr, n)) => (Some(at), Some(addr), n),
        None => (e.last_used_at, e.last_used_address.clone(), 0),
    };
    KeyAccessEntryOut {
        cidr_block: e.entry.is_cidr.then(|| e.entry.display()),
        count: Some(e.request_count + extra).filter(|n| *n > 0),
        created: tessera_domain::time::format(e.created_at),
        ip_address: (!e.entry.is_cidr).then(|| e.entry.display()),
        last_used: last_at.map(tessera_domain::time::format),
        last_used_address: last_addr,
        links: self_link(format!(
            "{base}/orgs/{}/apiKeys/{}/accessList/{}",
            key.org_id,
            key.id,
            path_form(&e.entry)
        )),
    }
}

fn page_of(state: &AppState, base: &str, key: &ApiKeyRecord, page: &Pagination) -> Reply {
    let listed = paginate(key.access_list.clone(), page.page());
    Reply::ok(page.list(listed, |e| entry_out(base, &state.registry, key, &e)))
}

fn entry_not_found(raw: &str, key: &ApiKeyRecord) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ACCESS_LIST_ENTRY_NOT_FOUND",
        format!("No access list entry {raw} exists for API key {}.", key.id),
    )
    .with_params([json!(raw), json!(key.id.to_string())])
}

/// `listApiKeyAccessListsEntries` (Organization Member).
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let key = key_in_org(&state, org.id, path.get("apiUserId")).await?;
    Ok(page_of(&state, &base, &key, &page))
}

/// `UserAccessListRequest`. The read-only fields of the response are accepted and ignored,
/// so a client may send back what it read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyAccessEntryIn {
    cidr_block: Option<String>,
    ip_address: Option<String>,
    #[serde(default, rename = "count")]
    _count: Ignored,
    #[serde(default, rename = "created")]
    _created: Ignored,
    #[serde(default, rename = "lastUsed")]
    _last_used: Ignored,
    #[serde(default, rename = "lastUsedAddress")]
    _last_used_address: Ignored,
    #[serde(default, rename = "links")]
    _links: Ignored,
}

/// `createApiKeyAccessList`: adds one or many entries (Organization Owner; the subset names
/// no role for it, and every other change to a key needs the owner). Entries the key already
/// has are ignored (200, no event); one `API_KEY_ACCESS_LIST_ENTRY_ADDED` event per new entry.
/// Answers with the first page of the list, as Atlas does.
pub async fn add(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
    ApiJsonList(body): ApiJsonList<KeyAccessEntryIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let key = key_in_org(&state, org.id, path.get("apiUserId")).await?;
    let entries = new_access_entries(
        body.into_iter().map(|i| (i.ip_address, i.cidr_block)),
        state.clock.now(),
    )?;
    let with_events: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let mut target = audit::key_target(&key);
            target.push(("whitelistEntry", e.entry.key()));
            let ev = audit::event(
                &state,
                &caller,
                EventType::ApiKeyAccessListEntryAdded,
                org.id,
                None,
                target,
            );
            (e, ev)
        })
        .collect();
    if !state
        .store
        .add_api_key_access_entries(key.id, &with_events)
        .await?
    {
        return Err(ApiError::api_key_not_found(path.get("apiUserId")));
    }
    let stored = key_in_org(&state, org.id, path.get("apiUserId")).await?;
    Ok(page_of(&state, &base, &stored, &page))
}

/// `getApiKeyAccessList` (Organization Member).
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let key = key_in_org(&state, org.id, path.get("apiUserId")).await?;
    let raw = path.get("ipAddress");
    let entry = AccessEntry::parse_any(raw)?;
    let found = key
        .access_list
        .iter()
        .find(|e| e.entry.key() == entry.key())
        .ok_or_else(|| entry_not_found(raw, &key))?;
    Ok(Reply::ok(entry_out(&base, &state.registry, &key, found)))
}

/// `deleteApiKeyAccessListEntry` (Organization Owner, as for adding; the table's
/// `KeepsOwnAccess`). A key may not remove the entry its own request depends on: when the
/// caller is this key and the list left
/// behind would be non-empty and no longer admit the request's address, the delete is
/// refused (400 `CANNOT_REMOVE_CALLER_ACCESS_LIST_ENTRY`). The store checks that in the
/// delete's transaction.
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    Peer(peer): Peer,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let key = key_in_org(&state, org.id, path.get("apiUserId")).await?;
    let raw = path.get("ipAddress");
    let entry = AccessEntry::parse_any(raw)?;
    // `KeepsOwnAccess`: a key removing an entry of its own list keeps the request's address.
    let keep = caller.own_address_to_keep(rule, Credential::ApiKey(key.id), peer);
    let mut target = audit::key_target(&key);
    target.push(("whitelistEntry", entry.key()));
    let ev = audit::event(
        &state,
        &caller,
        EventType::ApiKeyAccessListEntryDeleted,
        org.id,
        None,
        target,
    );
    match state
        .store
        .delete_api_key_access_entry(key.id, &entry.key(), keep, &[ev])
        .await?
    {
        DeleteKeyAccessOutcome::Deleted => Ok(Reply::no_content()),
        DeleteKeyAccessOutcome::NotFound => Err(entry_not_found(raw, &key)),
        DeleteKeyAccessOutcome::WouldLockOut => Err(cannot_remove_caller_entry(
            raw,
            &format!("the key's access list would no longer allow {peer}, the address this request comes from."),
        )),
    }
}
