//! Organization settings (`/orgs/{orgId}/settings`), project settings
//! (`/groups/{groupId}/settings`), project limits (`/groups/{groupId}/limits`) and the
//! managed slow-operation threshold (`/groups/{groupId}/managedSlowMs`), as the Terraform
//! provider's project and organization resources read and write them.
//!
//! Settings are a document per organization or project: a `PATCH` merges the fields it
//! names (each validated against the description's type and bounds), and writes the event
//! (`ORG_SETTINGS_CHANGED`, `GROUP_SETTINGS_CHANGED`) only when the document changed. Tessera
//! stores and returns them; none of them changes how Tessera itself behaves yet
//! (docs/api.md, "Settings and limits").

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use tessera_domain::EventType;
use tessera_store::{Group, SettingsScope, StoreError};

use super::{group_for, org_for};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::render::Reply;
use crate::state::AppState;

/// A setting's type and default.
#[derive(Clone, Copy)]
pub enum Kind {
    Bool(Option<bool>),
    /// An integer within bounds, absent by default.
    Int(i64, i64),
    /// A number within bounds, absent by default.
    Num(f64, f64),
    /// A string of at most this many characters, with its default if it has one.
    Text(usize, Option<&'static str>),
    /// A list of strings, absent by default.
    TextList,
}

/// A document's fields.
pub type Spec = &'static [(&'static str, Kind)];

/// `OrganizationSettings`.
const ORG: Spec = &[
    ("apiAccessListRequired", Kind::Bool(Some(false))),
    ("genAIFeaturesEnabled", Kind::Bool(Some(true))),
    ("maxServiceAccountSecretValidityInHours", Kind::Int(8, 8760)),
    ("multiFactorAuthRequired", Kind::Bool(Some(false))),
    ("restrictEmployeeAccess", Kind::Bool(Some(false))),
    ("securityContact", Kind::Text(254, None)),
    ("streamsCrossGroupEnabled", Kind::Bool(Some(false))),
];

/// `GroupSettings`.
const GROUP: Spec = &[
    (
        "isCollectDatabaseSpecificsStatisticsEnabled",
        Kind::Bool(Some(true)),
    ),
    ("isDataExplorerEnabled", Kind::Bool(Some(true))),
    ("isDataExplorerGenAIFeaturesEnabled", Kind::Bool(Some(true))),
    (
        "isDataExplorerGenAISampleDocumentPassingEnabled",
        Kind::Bool(Some(false)),
    ),
    ("isExtendedStorageSizesEnabled", Kind::Bool(Some(false))),
    ("isPerformanceAdvisorEnabled", Kind::Bool(Some(true))),
    ("isRealtimePerformancePanelEnabled", Kind::Bool(Some(true))),
    ("isSchemaAdvisorEnabled", Kind::Bool(Some(true))),
];

/// The document with its defaults filled in.
pub fn with_defaults(spec: Spec, stored: Option<String>) -> ApiResult<Map<String, Value>> {
    let mut doc: Map<String, Value> = match stored {
        None => Map::new(),
        Some(s) => serde_json::from_str(&s).map_err(ApiError::internal)?,
    };
    for (name, kind) in spec {
        if doc.contains_key(*name) {
            continue;
        }
        match kind {
            Kind::Bool(Some(d)) => doc.insert((*name).to_owned(), json!(d)),
            Kind::Text(_, Some(d)) => doc.insert((*name).to_owned(), json!(d)),
            _ => None,
        };
    }
    Ok(doc)
}

/// Merges a `PATCH` body into `doc`, refusing unknown fields and wrong types or bounds.
pub fn merge(spec: Spec, doc: &mut Map<String, Value>, patch: Value) -> ApiResult<()> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::validation(
            "The request body must be a JSON object.",
        ));
    };
    for (name, value) in patch {
        let Some((_, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(
                ApiError::validation(format!("Unknown setting {name}.")).with_params([json!(name)])
            );
        };
        let ok = match (kind, &value) {
            (Kind::Bool(_), Value::Bool(_)) => true,
            (Kind::Int(lo, hi), Value::Number(n)) => {
                n.as_i64().is_some_and(|v| (*lo..=*hi).contains(&v))
            }
            (Kind::Num(lo, hi), Value::Number(n)) => {
                n.as_f64().is_some_and(|v| (*lo..=*hi).contains(&v))
            }
            (Kind::Text(max, _), Value::String(s)) => {
                s.chars().count() <= *max
                    && tessera_domain::names::refuse_invisible(&name, s).is_ok()
            }
            (Kind::TextList, Value::Array(items)) => items.iter().all(|i| {
                i.as_str().is_some_and(|s| {
                    s.len() <= 256 && tessera_domain::names::refuse_invisible(&name, s).is_ok()
                })
            }),
            _ => false,
        };
        if !ok {
            let expected = match kind {
                Kind::Bool(_) => "a boolean".to_owned(),
                Kind::Int(lo, hi) => format!("an integer from {lo} to {hi}"),
                Kind::Num(lo, hi) => format!("a number from {lo} to {hi}"),
                Kind::Text(max, _) => format!("a string of at most {max} characters"),
                Kind::TextList => "a list of strings".to_owned(),
            };
            return Err(ApiError::validation(format!("{name} must be {expected}."))
                .with_params([json!(name)]));
        }
        doc.insert(name, value);
    }
    Ok(())
}

pub async fn put(
    state: &AppState,
    scope: SettingsScope,
    doc: &Map<String, Value>,
    events: &[tessera_store::events::NewEvent],
) -> ApiResult<()> {
    let body = serde_json::to_string(doc).map_err(ApiError::internal)?;
    match state.store.put_settings(scope, &body, events).await {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "The organization or project was deleted.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The organization's `maxServiceAccountSecretValidityInHours`, if it set one: new
/// service-account secrets live at most that long.
pub async fn max_secret_hours(
    state: &AppState,
    org: tessera_domain::OrgId,
) -> ApiResult<Option<i64>> {
    let stored = state.store.get_settings(SettingsScope::Org(org)).await?;
    Ok(stored
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| {
            v.get("maxServiceAccountSecretValidityInHours")
                .and_then(Value::as_i64)
        }))
}

/// `getOrganizationSettings` (Organization Member).
pub async fn get_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let stored = state.store.get_settings(SettingsScope::Org(org.id)).await?;
    Ok(Reply::ok(Value::Object(with_defaults(ORG, stored)?)))
}

/// `updateOrganizationSettings` (Organization Owner).
pub async fn update_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let scope = SettingsScope::Org(org.id);
    let mut doc = with_defaults(ORG, state.store.get_settings(scope).await?)?;
    merge(ORG, &mut doc, patch)?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::OrgSettingsChanged,
        org.id,
        None,
        vec![],
    );
    put(&state, scope, &doc, &[ev]).await?;
    Ok(Reply::ok(Value::Object(doc)))
}

/// `getProjectSettings` (Project Read Only).
pub async fn get_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let stored = state
        .store
        .get_settings(SettingsScope::Group(group.id))
        .await?;
    Ok(Reply::ok(Value::Object(with_defaults(GROUP, stored)?)))
}

/// `updateProjectSettings` (Project Owner).
pub async fn update_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let scope = SettingsScope::Group(group.id);
    let mut doc = with_defaults(GROUP, state.store.get_settings(scope).await?)?;
    merge(GROUP, &mut doc, patch)?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::GroupSettingsChanged,
        group.org_id,
        Some(group.id),
        vec![],
    );
    put(&state, scope, &doc, &[ev]).await?;
    Ok(Reply::ok(Value::Object(doc)))
}

fn limit_spec(name: &str) -> ApiResult<(&'static str, i64, i64)> {
    tessera_domain::limits::spec(name)
        .map(|l| (l.name, l.default, l.max))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "INVALID_LIMIT_NAME",
                format!("No project limit is named {name}."),
            )
            .with_params([json!(name)])
        })
}

/// What a project uses of a limit, where Tessera holds it.
async fn usage(state: &AppState, group: &Group, name: &str) -> ApiResult<Option<i64>> {
    let now = state.clock.now();
    let n = match name {
        "atlas.project.deployment.clusters" => {
            state
                .store
                .list_clusters(group.id, tessera_store::Page::ALL)
                .await?
                .total
        }
        "atlas.project.security.databaseAccess.users" => state
            .store
            .list_database_users(group.id)
            .await?
            .iter()
            .filter(|u| tessera_domain::database_users::is_active(u.delete_after, now))
            .count() as u64,
        "atlas.project.security.networkAccess.entries" => state
            .store
            .list_network_access(group.id)
            .await?
            .iter()
            .filter(|e| e.is_active(now))
            .count() as u64,
        _ => return Ok(None),
    };
    Ok(Some(i64::try_from(n).unwrap_or(i64::MAX)))
}

async fn limit_out(
    state: &AppState,
    group: &Group,
    set: &[(String, i64)],
    (name, default, max): (&str, i64, i64),
) -> ApiResult<Value> {
    let value = set
        .iter()
        .find(|(n, _)| n == name)
        .map_or(default, |(_, v)| *v);
    let mut out =
        json!({"name": name, "value": value, "defaultLimit": default, "maximumLimit": max});
    if let Some(u) = usage(state, group, name).await? {
        out["currentUsage"] = json!(u);
    }
    Ok(out)
}

/// `listProjectLimits` (Project Read Only): every limit Tessera knows, as a bare array.
pub async fn list_limits(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let set = state.store.group_limits(group.id).await?;
    let mut out = Vec::with_capacity(tessera_domain::limits::PROJECT_LIMITS.len());
    for l in tessera_domain::limits::PROJECT_LIMITS {
        out.push(limit_out(&state, &group, &set, (l.name, l.default, l.max)).await?);
    }
    Ok(Reply::ok(json!(out)))
}

/// `getProjectLimit` (Project Read Only).
pub async fn get_limit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let spec = limit_spec(path.get("limitName"))?;
    let set = state.store.group_limits(group.id).await?;
    Ok(Reply::ok(limit_out(&state, &group, &set, spec).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitIn {
    value: i64,
    #[serde(default, rename = "name")]
    _name: crate::wire::Ignored,
    #[serde(default, rename = "currentUsage")]
    _usage: crate::wire::Ignored,
    #[serde(default, rename = "defaultLimit")]
    _default: crate::wire::Ignored,
    #[serde(default, rename = "maximumLimit")]
    _max: crate::wire::Ignored,
}

/// `setProjectLimit` (Project Owner): 1 to the limit's maximum.
pub async fn set_limit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<LimitIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let spec = limit_spec(path.get("limitName"))?;
    if !(1..=spec.2).contains(&body.value) {
        return Err(ApiError::validation(format!(
            "value must be from 1 to {} for {}.",
            spec.2, spec.0
        ))
        .with_params([json!("value")]));
    }
    // Not below what the project uses now (it could never be met again without deletions).
    if let Some(used) = usage(&state, &group, spec.0).await? {
        if body.value < used {
            return Err(ApiError::validation(format!(
                "value {} is below the project's current usage of {} ({used}).",
                body.value, spec.0
            ))
            .with_params([json!("value")]));
        }
    }
    change_limit(&state, &caller, &group, spec.0, Some(body.value)).await?;
    let set = state.store.group_limits(group.id).await?;
    Ok(Reply::ok(limit_out(&state, &group, &set, spec).await?))
}

/// `deleteProjectLimit` (Project Owner): back to its default.
pub async fn delete_limit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let spec = limit_spec(path.get("limitName"))?;
    change_limit(&state, &caller, &group, spec.0, None).await?;
    Ok(Reply::no_content())
}

async fn change_limit(
    state: &AppState,
    caller: &tessera_domain::Principal,
    group: &Group,
    name: &str,
    value: Option<i64>,
) -> ApiResult<()> {
    let target = vec![
        ("limitName", name.to_owned()),
        (
            "value",
            value.map_or_else(|| "default".to_owned(), |v| v.to_string()),
        ),
    ];
    let ev = audit::event(
        state,
        caller,
        EventType::GroupLimitChanged,
        group.org_id,
        Some(group.id),
        target,
    );
    match state
        .store
        .set_group_limit(group.id, name, value, &[ev])
        .await
    {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(ApiError::group_not_found(&group.id.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// `GET /groups/{groupId}/managedSlowMs` (Project Read Only): whether Atlas manages the
/// slow-operation threshold; Tessera runs no profiler, and answers Atlas' default (`true`).
pub async fn managed_slow_ms(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    group_for(&state, &caller, path.get("groupId"), rule).await?;
    Ok(Reply::ok(json!(true)))
}
