//! Clusters and MongoDB employee access (CONTRACT §10, seed 002):
//! `/groups/{groupId}/clusters[/{clusterName}]`, the colon actions
//! `{clusterName}:grantMongoDBEmployeeAccess` and `{clusterName}:revokeMongoDBEmployeeAccess`,
//! and the cross-project `/clusters`, on both surfaces.
//!
//! A cluster is a record: `id`, `name`, `groupId`, `createDate`, `stateName` are the server's;
//! every other top-level field the client sends is kept and returned as sent (PATCH merges
//! top-level fields). The grant shows as `mongoDBEmployeeAccessGrant` only while it is active
//! at the domain clock's `now`; an expiry is recorded as an event the first time a request
//! (or the periodic pass, [`record_expired_grants`]) observes it.

use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::StatusCode;
use chrono::Duration;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tessera_domain::clusters::{
    parse_grant_expiry, ClusterName, EmployeeAccessGrant, EmployeeAccessLevel,
};
use tessera_domain::{ClusterId, EventType, Principal, Rule};
use tessera_store::{Cluster, Group, RevokeGrantOutcome, StoreError, StoreResult};

use super::groups::visible_groups;
use super::{authorize_own, group_for, Base};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::Pagination;
use crate::render::Reply;
use crate::state::AppState;
use crate::wire::{cluster_out, cluster_summary_out};

/// Fields of the cluster document that belong to the server: a client's values for them are
/// ignored (they are read-only in the subset), never stored.
const SERVER_FIELDS: &[&str] = &[
    "id",
    "groupId",
    "createDate",
    "stateName",
    "links",
    "mongoDBEmployeeAccessGrant",
];

/// The state of every new cluster record (Tessera provisions nothing).
const IDLE: &str = "IDLE";

pub fn cluster_not_found(name: &str, group: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "CLUSTER_NOT_FOUND",
        format!("No cluster named {name} exists in group {group}."),
    )
    .with_params([json!(name), json!(group)])
}

fn duplicate_name(name: &str, group: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "DUPLICATE_CLUSTER_NAME",
        format!("A cluster named {name} already exists in group {group}."),
    )
    .with_params([json!(name), json!(group)])
}

fn cluster_target(c: &Cluster) -> Vec<(&'static str, String)> {
    vec![
        ("clusterName", c.name.clone()),
        ("clusterId", c.id.to_string()),
    ]
}

/// Records the expiry of `c`'s grant if it has expired at `now` and is not recorded yet (one
/// event, once: the store marks it in the event's transaction). A failure is logged and left
/// to the periodic pass: what the request answers does not depend on it.
pub async fn observe_expiry(state: &AppState, c: &Cluster) {
    let Some(grant) = c.grant else {
        return;
    };
    if c.grant_expiry_recorded || grant.is_active(state.clock.now()) {
        return;
    }
    if let Err(e) = record_expiry(state, c, grant).await {
        tracing::warn!(error = %e, cluster_id = %c.id, "recording a grant expiry failed; the periodic pass retries");
    }
}

async fn record_expiry(
    state: &AppState,
    c: &Cluster,
    grant: EmployeeAccessGrant,
) -> StoreResult<bool> {
    let mut target = cluster_target(c);
    target.push(("grantType", grant.level.as_str().to_owned()));
    target.push((
        "expirationTime",
        tessera_domain::time::format(grant.expires_at),
    ));
    let ev = audit::system_event(
        state,
        EventType::EmployeeAccessExpired,
        c.org_id,
        Some(c.group_id),
        target,
    );
    state
        .store
        .record_grant_expiry(c.id, grant.expires_at, &[ev])
        .await
}

/// The periodic pass: records every grant expiry not yet recorded. Returns how many.
pub async fn record_expired_grants(state: &AppState) -> StoreResult<u64> {
    const BATCH: u64 = 100;
    let mut recorded = 0;
    loop {
        let expired = state
            .store
            .unrecorded_expired_grants(state.clock.now(), BATCH)
            .await?;
        let n = expired.len() as u64;
        for c in expired {
            if let Some(grant) = c.grant {
                if record_expiry(state, &c, grant).await? {
                    recorded += 1;
                }
            }
        }
        if n < BATCH {
            return Ok(recorded);
        }
    }
}

/// The project (authorized under `rule`) and the cluster named in the path.
async fn cluster_for(
    state: &AppState,
    caller: &Principal,
    path: &PathParams,
    raw_name: &str,
    rule: Rule,
) -> ApiResult<(Group, Cluster)> {
    let group = group_for(state, caller, path.get("groupId"), rule).await?;
    let name = ClusterName::parse("clusterName", raw_name)?;
    let cluster = state
        .store
        .get_cluster(group.id, name.as_str())
        .await?
        .ok_or_else(|| cluster_not_found(name.as_str(), path.get("groupId")))?;
    Ok((group, cluster))
}

/// `listClusters` (Project Read Only), at 2023-02-01 in the older shape.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
    served: Option<axum::Extension<crate::version::ServedVersion>>,
) -> ApiResult<Reply> {
    let old = super::cluster_extras::is_2023(served);
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let listed = state.store.list_clusters(group.id, page.page()).await?;
    for c in &listed.items {
        observe_expiry(&state, c).await;
    }
    let now = state.clock.now();
    Ok(Reply::ok(page.list(listed, |c| {
        let doc = cluster_out(&base, &c, now);
        if old {
            super::cluster_extras::as_2023(doc)
        } else {
            doc
        }
    })))
}

/// `listFlexClusters` (Project Read Only): Tessera keeps no flex clusters, so a project's list
/// is truly empty (Terraform's plural cluster data source reads it).
pub async fn list_flex(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    group_for(&state, &caller, path.get("groupId"), rule).await?;
    let none: tessera_store::Listed<Value> = tessera_store::Listed {
        items: Vec::new(),
        total: 0,
    };
    Ok(Reply::ok(page.list(none, |v| v)))
}

/// The body of a create: a cluster document with at least `name`.
fn new_fields(mut body: Map<String, Value>) -> ApiResult<(ClusterName, Map<String, Value>)> {
    let name = match body.remove("name") {
        None => {
            return Err(
                ApiError::validation("Invalid request body: missing field `name`.")
                    .with_params([json!("name")]),
            )
        }
        Some(Value::String(s)) => ClusterName::parse("name", &s)?,
        Some(_) => {
            return Err(
                ApiError::validation("Invalid request body: name must be a string.")
                    .with_params([json!("name")]),
            )
        }
    };
    for f in SERVER_FIELDS {
        body.remove(*f);
    }
    crate::cluster_schema::check(&body)?;
    Ok((name, body))
}

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let (name, body) = new_fields(body)?;
    let now = state.clock.now();
    let cluster = Cluster {
        id: ClusterId::generate(now),
        group_id: group.id,
        org_id: group.org_id,
        name: name.as_str().to_owned(),
        created_at: now,
        state_name: IDLE.to_owned(),
        body,
        grant: None,
        grant_expiry_recorded: false,
    };
    let ev = audit::event(
        &state,
        &caller,
        EventType::ClusterCreated,
        group.org_id,
        Some(group.id),
        cluster_target(&cluster),
    );
    match state.store.create_cluster(&cluster, &[ev]).await {
        Err(StoreError::Conflict(_)) => {
            return Err(duplicate_name(&cluster.name, path.get("groupId")))
        }
        Ok(false) => return Err(ApiError::group_not_found(path.get("groupId"))),
        other => {
            other?;
        }
    }
    tracing::info!(cluster_id = %cluster.id, group_id = %group.id, "cluster created");
    Ok(Reply::created(cluster_out(&base, &cluster, now)))
}

/// `getCluster` (Project Read Only), at 2023-02-01 in the older shape.
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    served: Option<axum::Extension<crate::version::ServedVersion>>,
) -> ApiResult<Reply> {
    let (_, cluster) = cluster_for(&state, &caller, &path, path.get("clusterName"), rule).await?;
    observe_expiry(&state, &cluster).await;
    let doc = cluster_out(&base, &cluster, state.clock.now());
    if super::cluster_extras::is_2023(served) {
        return Ok(Reply::ok(super::cluster_extras::as_2023(doc)));
    }
    Ok(Reply::ok(doc))
}

/// PATCH: top-level fields replace the stored ones. `name` may be sent only unchanged
/// (renaming is refused: grants, events and clients name a cluster by its name).
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(mut body): ApiJson<Map<String, Value>>,
) -> ApiResult<Reply> {
    let (group, cluster) =
        cluster_for(&state, &caller, &path, path.get("clusterName"), rule).await?;
    match body.remove("name") {
        None => {}
        Some(Value::String(n)) if n == cluster.name => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "CLUSTER_RENAME_NOT_SUPPORTED",
                "A cluster cannot be renamed: name must be absent or the cluster's own name.",
            )
            .with_params([json!("name")]))
        }
    }
    for f in SERVER_FIELDS {
        body.remove(*f);
    }
    crate::cluster_schema::check(&body)?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::ClusterUpdated,
        group.org_id,
        Some(group.id),
        cluster_target(&cluster),
    );
    let updated = state
        .store
        .update_cluster(group.id, &cluster.name, &body, &[ev])
        .await?
        .ok_or_else(|| cluster_not_found(&cluster.name, path.get("groupId")))?;
    observe_expiry(&state, &updated).await;
    Ok(Reply::ok(cluster_out(&base, &updated, state.clock.now())))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let (group, cluster) =
        cluster_for(&state, &caller, &path, path.get("clusterName"), rule).await?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::ClusterDeleted,
        group.org_id,
        Some(group.id),
        cluster_target(&cluster),
    );
    if !state
        .store
        .delete_cluster(group.id, &cluster.name, &[ev])
        .await?
    {
        return Err(cluster_not_found(&cluster.name, path.get("groupId")));
    }
    tracing::info!(cluster_id = %cluster.id, group_id = %group.id, "cluster deleted");
    // Atlas answers 202 with an empty document (deletion is asynchronous there).
    Ok(Reply::accepted(json!({})))
}

/// `EmployeeAccessGrant` as a request body (`links` is read-only and ignored). Both fields
/// are read as any JSON value so a missing or mistyped one gets a detail naming it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrantIn {
    grant_type: Option<Value>,
    expiration_time: Option<Value>,
    #[serde(default)]
    links: crate::wire::Ignored,
}

/// A required string field of a request body.
fn required_str<'a>(field: &str, v: &'a Option<Value>) -> ApiResult<&'a str> {
    match v {
        Some(Value::String(s)) => Ok(s),
        None => Err(ApiError::validation(format!(
            "Invalid request body: missing field `{field}`."
        ))
        .with_params([json!(field)])),
        Some(_) => Err(tessera_domain::ValidationError::new(field, "must be a string").into()),
    }
}

const GRANT: &str = "grantMongoDBEmployeeAccess";
const REVOKE: &str = "revokeMongoDBEmployeeAccess";

/// `POST {clusterName}:grantMongoDBEmployeeAccess` and `:revokeMongoDBEmployeeAccess` (the
/// router cannot split a segment at `:`; see `colon_action_methods`).
pub async fn action(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    OriginalUri(uri): OriginalUri,
    request: Request,
) -> ApiResult<Reply> {
    let Some((raw_name, action)) = path.get("clusterName").split_once(':') else {
        return Err(ApiError::route_not_found(uri.path()));
    };
    if action != GRANT && action != REVOKE {
        return Err(ApiError::route_not_found(uri.path()));
    }
    let (group, cluster) = cluster_for(&state, &caller, &path, raw_name, rule).await?;
    if action == GRANT {
        let ApiJson(body) = ApiJson::<GrantIn>::from_request(request, &state).await?;
        grant(&state, &caller, &group, &cluster, body).await
    } else {
        // The operation takes no body: whatever was sent (the seed's `-d '{ <Payload> }'`
        // included) is not read.
        revoke(&state, &caller, &group, &cluster).await
    }
}

async fn grant(
    state: &AppState,
    caller: &Principal,
    group: &Group,
    cluster: &Cluster,
    body: GrantIn,
) -> ApiResult<Reply> {
    let _ = body.links;
    let grant_type = required_str("grantType", &body.grant_type)?;
    let level: EmployeeAccessLevel = grant_type
        .parse()
        .map_err(|_| ApiError::invalid_enum("grantType", grant_type))?;
    let expiration = required_str("expirationTime", &body.expiration_time)?;
    let now = state.clock.now();
    let max = Duration::hours(state.settings.max_employee_access_hours);
    let expires_at = parse_grant_expiry(expiration, now, max)?;
    // The grant being replaced may have expired unrecorded: record that first.
    observe_expiry(state, cluster).await;
    let grant = EmployeeAccessGrant { level, expires_at };
    let mut target = cluster_target(cluster);
    target.push(("grantType", level.as_str().to_owned()));
    target.push(("expirationTime", tessera_domain::time::format(expires_at)));
    let ev = audit::event(
        state,
        caller,
        EventType::EmployeeAccessGranted,
        group.org_id,
        Some(group.id),
        target,
    );
    if !state
        .store
        .set_employee_access_grant(group.id, &cluster.name, grant, &[ev])
        .await?
    {
        return Err(cluster_not_found(&cluster.name, &group.id.to_string()));
    }
    tracing::info!(cluster_id = %cluster.id, grant_type = %level, "employee access granted");
    Ok(Reply::no_content())
}

async fn revoke(
    state: &AppState,
    caller: &Principal,
    group: &Group,
    cluster: &Cluster,
) -> ApiResult<Reply> {
    observe_expiry(state, cluster).await;
    let mut target = cluster_target(cluster);
    if let Some(g) = cluster.grant {
        target.push(("grantType", g.level.as_str().to_owned()));
    }
    let ev = audit::event(
        state,
        caller,
        EventType::EmployeeAccessRevoked,
        group.org_id,
        Some(group.id),
        target,
    );
    match state
        .store
        .revoke_employee_access(group.id, &cluster.name, state.clock.now(), &[ev])
        .await?
    {
        RevokeGrantOutcome::NotFound => {
            Err(cluster_not_found(&cluster.name, &group.id.to_string()))
        }
        RevokeGrantOutcome::Revoked => {
            tracing::info!(cluster_id = %cluster.id, "employee access revoked");
            Ok(Reply::no_content())
        }
        // Nothing to revoke is not an error (ours), and records nothing.
        RevokeGrantOutcome::NoActiveGrant => Ok(Reply::no_content()),
    }
}

/// `GET /clusters`: the clusters of every project the caller can see, per project
/// (Atlas' listClustersForAllProjects). Paged by project; projects without clusters are
/// left out.
pub async fn list_all(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    page: Pagination,
) -> ApiResult<Reply> {
    authorize_own(&caller, rule)?;
    let filter = visible_groups(&caller);
    let org = state
        .store
        .get_org(caller.org_id)
        .await?
        .ok_or_else(|| ApiError::org_not_found(&caller.org_id.to_string()))?;
    let listed = state
        .store
        .list_clusters_by_group(caller.org_id, &filter, page.page())
        .await?;
    Ok(Reply::ok(page.list(listed, |gc| {
        json!({
            "groupId": gc.group.id.to_string(),
            "groupName": gc.group.name,
            "orgId": org.id.to_string(),
            "orgName": org.name,
            "clusters": gc.clusters.iter().map(cluster_summary_out).collect::<Vec<_>>(),
        })
    })))
}
