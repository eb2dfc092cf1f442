//! The project IP access list (Atlas' "Project IP Access List"): `/groups/{groupId}/accessList`
//! (and Cloud Manager's older `/whitelist`, same handlers), with `…/{entryValue}` and
//! `…/{entryValue}/status`; `GET /api/private/ipinfo`, the caller's address, which MongoDB's MCP
//! server adds to the list; `GET /groups/{groupId}/ipAddresses`; and the unauthenticated
//! `GET /unauth/controlPlaneIPAddresses`.
//!
//! Entries are `tessera_domain::network`'s: validated there, ended there by the clock. The
//! store writes each put's entries and their events in one unit of work, an event only for
//! what changed.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::network::{self, NetworkEntry, NetworkTarget};
use tessera_domain::time::format;
use tessera_domain::EventType;
use tessera_store::{Group, NetworkPut};

use super::{authorize_own, group_for, paginate, Base};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJsonList, PathParams};
use crate::oauth::Peer;
use crate::query::Pagination;
use crate::render::Reply;
use crate::state::AppState;
use crate::wire::Ignored;

/// Most entries one request may add (as for the other access lists).
const MAX_PER_REQUEST: usize = super::access_entries::MAX_ACCESS_ENTRIES_PER_REQUEST;

/// `NetworkPermissionEntry`: an address entry shows its block too (`/32`), as Atlas does.
fn entry_out(base: &str, group: &Group, e: &NetworkEntry) -> Value {
    let mut out = json!({"groupId": group.id.to_string()});
    match &e.target {
        NetworkTarget::Addr(a) => {
            out["cidrBlock"] = json!(a.key());
            if !a.is_cidr {
                out["ipAddress"] = json!(a.display());
            }
        }
        NetworkTarget::AwsSecurityGroup(sg) => out["awsSecurityGroup"] = json!(sg),
    }
    if let Some(c) = &e.comment {
        out["comment"] = json!(c);
    }
    if let Some(end) = e.delete_after {
        out["deleteAfterDate"] = json!(format(end));
    }
    let path = e.target.key().replace('/', "%2F");
    out["links"] = json!([{
        "href": format!("{base}/groups/{}/accessList/{path}", group.id),
        "rel": "self"
    }]);
    out
}

fn not_found(raw: &str, group: &Group) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ATLAS_NETWORK_PERMISSION_ENTRY_NOT_FOUND",
        format!(
            "IP address {raw} not on Atlas access list for group {}.",
            group.id
        ),
    )
    .with_params([json!(raw), json!(group.id.to_string())])
}

/// The project's active entries.
async fn active(state: &AppState, group: &Group) -> ApiResult<Vec<NetworkEntry>> {
    let now = state.clock.now();
    Ok(state
        .store
        .list_network_access(group.id)
        .await?
        .into_iter()
        .filter(|e| e.is_active(now))
        .collect())
}

async fn page_of(
    state: &AppState,
    base: &str,
    group: &Group,
    page: &Pagination,
) -> ApiResult<Reply> {
    let listed = paginate(active(state, group).await?, page.page());
    Ok(Reply::ok(page.list(listed, |e| entry_out(base, group, &e))))
}

/// `listProjectIpAccessLists` (Project Read Only).
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    page_of(&state, &base, &group, &page).await
}

/// `NetworkPermissionEntry` in a request; the read-only fields are accepted and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryIn {
    ip_address: Option<String>,
    cidr_block: Option<String>,
    aws_security_group: Option<String>,
    comment: Option<String>,
    delete_after_date: Option<String>,
    #[serde(default, rename = "groupId")]
    _group_id: Ignored,
    #[serde(default, rename = "links")]
    _links: Ignored,
}

/// `createProjectIpAccessList` (Project Owner): adds entries, or updates the comment and end
/// of entries the project has; all are validated before anything is written, and one key
/// given twice in a body is a 400. Answers the list's first page, as Atlas does.
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
    ApiJsonList(body): ApiJsonList<EntryIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    if body.is_empty() || body.len() > MAX_PER_REQUEST {
        return Err(ApiError::validation(format!(
            "The request body must list 1 to {MAX_PER_REQUEST} entries."
        )));
    }
    let now = state.clock.now();
    let mut puts: Vec<NetworkPut> = Vec::with_capacity(body.len());
    for i in body {
        let target = NetworkTarget::from_fields(
            i.ip_address.as_deref(),
            i.cidr_block.as_deref(),
            i.aws_security_group.as_deref(),
        )?;
        if puts.iter().any(|p| p.entry.target.key() == target.key()) {
            return Err(ApiError::validation(format!(
                "The entry {} is given more than once.",
                target.key()
            ))
            .with_params([json!(target.key())]));
        }
        let delete_after = i
            .delete_after_date
            .as_deref()
            .map(|d| network::parse_delete_after(d, &target, now))
            .transpose()?;
        let comment = i
            .comment
            .as_deref()
            .map(network::parse_comment)
            .transpose()?;
        let entry = NetworkEntry {
            target,
            comment,
            delete_after,
            created_at: now,
        };
        let event = |t| {
            let mut target = vec![("whitelistEntry", entry.target.key())];
            if let Some(c) = &entry.comment {
                target.push(("comment", c.clone()));
            }
            audit::event(&state, &caller, t, group.org_id, Some(group.id), target)
        };
        puts.push(NetworkPut {
            added: event(EventType::NetworkPermissionEntryAdded),
            updated: event(EventType::NetworkPermissionEntryUpdated),
            entry,
        });
    }
    if !state.store.put_network_access(group.id, &puts, now).await? {
        return Err(ApiError::group_not_found(path.get("groupId")));
    }
    page_of(&state, &base, &group, &page).await
}

/// The active entry the path names, or 404.
async fn named(state: &AppState, group: &Group, raw: &str) -> ApiResult<NetworkEntry> {
    let key = NetworkTarget::parse_path(raw)?.key();
    active(state, group)
        .await?
        .into_iter()
        .find(|e| e.target.key() == key)
        .ok_or_else(|| not_found(raw, group))
}

/// `getProjectIpList` (Project Read Only).
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let e = named(&state, &group, path.get("entryValue")).await?;
    Ok(Reply::ok(entry_out(&base, &group, &e)))
}

/// `getProjectIpAccessListStatus` (Project Read Only): an entry Tessera holds applies at once.
pub async fn status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    named(&state, &group, path.get("entryValue")).await?;
    Ok(Reply::ok(json!({"STATUS": "ACTIVE"})))
}

/// `deleteProjectIpAccessList` (Project Owner).
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let raw = path.get("entryValue");
    let key = NetworkTarget::parse_path(raw)?.key();
    let ev = audit::event(
        &state,
        &caller,
        EventType::NetworkPermissionEntryRemoved,
        group.org_id,
        Some(group.id),
        vec![("whitelistEntry", key.clone())],
    );
    if state
        .store
        .delete_network_access(group.id, &key, state.clock.now(), &[ev])
        .await?
    {
        Ok(Reply::no_content())
    } else {
        Err(not_found(raw, &group))
    }
}

/// `GET /api/private/ipinfo` (any credential): the address this request comes from, as
/// MongoDB's MCP server reads it (`currentIpv4Address`) to add the caller to an access list.
pub async fn ipinfo(
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Peer(peer): Peer,
) -> ApiResult<axum::Json<Value>> {
    authorize_own(&caller, rule)?;
    let addr = tessera_domain::access::canonical_addr(peer);
    Ok(axum::Json(json!({"currentIpv4Address": addr.to_string()})))
}

/// `GET /groups/{groupId}/ipAddresses` (Project Read Only): the addresses a project's clusters
/// connect from. Tessera runs no cluster, so each has none to list.
pub async fn ip_addresses(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let clusters = state
        .store
        .list_clusters(group.id, tessera_store::Page::ALL)
        .await?
        .items
        .into_iter()
        .map(|c| json!({"clusterName": c.name, "inbound": [], "outbound": []}))
        .collect::<Vec<_>>();
    Ok(Reply::ok(json!({
        "groupId": group.id.to_string(),
        "services": {"clusters": clusters}
    })))
}

/// `returnAllControlPlaneIpAddresses` (no credential): Tessera's control plane is the server
/// itself, at whatever address its operator gives it, so no cloud provider lists any.
pub async fn control_plane() -> Reply {
    let none = json!({"aws": {}, "azure": {}, "gcp": {}});
    Reply::ok(json!({"inbound": none, "outbound": none}))
}
