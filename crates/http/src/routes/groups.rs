//! Projects (groups): `/groups`, `/groups/{groupId}`, `/groups/byName/{groupName}`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tessera_domain::authorization::On;
use tessera_domain::names::EntityName;
use tessera_domain::EventType;
use tessera_domain::{
    ApiKeyId, Decision, GroupId, GroupVisibility, OrgId, Principal, PrincipalKind,
};
use tessera_store::{DeleteGroupOutcome, Group, GroupChanges, GroupFilter, StoreError};

use super::{authorize_own, group_for, Base};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::{Pagination, Query};
use crate::render::Reply;
use crate::state::AppState;
use crate::wire::{group_out, tags_in, Ignored, TagWire};

/// The projects of its org a principal sees in lists (decided by `Principal`).
pub fn visible_groups(caller: &Principal) -> GroupFilter {
    match caller.visible_groups(caller.org_id) {
        GroupVisibility::All => GroupFilter::All,
        GroupVisibility::Only(ids) => GroupFilter::Only(ids),
    }
}

/// Projects in their wire shape, with their cluster counts (one store call for the page).
pub async fn groups_out(
    state: &AppState,
    base: &str,
    page: &Pagination,
    listed: tessera_store::Listed<Group>,
) -> ApiResult<serde_json::Value> {
    let ids: Vec<GroupId> = listed.items.iter().map(|g| g.id).collect();
    let counts: std::collections::HashMap<GroupId, u64> = ids
        .iter()
        .copied()
        .zip(state.store.cluster_counts(&ids).await?)
        .collect();
    Ok(page.list(listed, |g| {
        let n = counts.get(&g.id).copied().unwrap_or(0);
        group_out(base, g, n)
    }))
}

/// One project in its wire shape, with its cluster count.
pub async fn one_group_out(state: &AppState, base: &str, g: Group) -> ApiResult<Reply> {
    let n = state
        .store
        .cluster_counts(&[g.id])
        .await?
        .first()
        .copied()
        .unwrap_or(0);
    Ok(Reply::ok(group_out(base, g, n)))
}

fn name_conflict(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "GROUP_ALREADY_EXISTS",
        format!("A group with name \"{name}\" already exists."),
    )
    .with_params([json!(name)])
}

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    page: Pagination,
) -> ApiResult<Reply> {
    authorize_own(&caller, rule)?;
    let filter = visible_groups(&caller);
    let listed = state
        .store
        .list_groups(caller.org_id, None, &filter, page.page())
        .await?;
    Ok(Reply::ok(groups_out(&state, &base, &page, listed).await?))
}

/// `Group` as a create body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateGroupIn {
    name: String,
    org_id: String,
    region_usage_restrictions: Option<String>,
    tags: Option<Vec<TagWire>>,
    with_default_alerts_settings: Option<bool>,
    #[serde(default)]
    cluster_count: Ignored,
    #[serde(default)]
    created: Ignored,
    #[serde(default)]
    id: Ignored,
    #[serde(default)]
    links: Ignored,
}

const REGION_USAGE_RESTRICTIONS: &[&str] = &["COMMERCIAL_FEDRAMP_REGIONS_ONLY", "GOV_REGIONS_ONLY"];

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    Query(q): Query,
    ApiJson(body): ApiJson<CreateGroupIn>,
) -> ApiResult<Reply> {
    let _ = (body.cluster_count, body.created, body.id, body.links);
    if let Some(owner) = q.get("projectOwnerId")? {
        OrgId::parse(owner).map_err(|_| {
            ApiError::from(tessera_domain::ValidationError::new(
                "projectOwnerId",
                "must match ^([a-f0-9]{24})$",
            ))
        })?;
    }
    let org_id = OrgId::parse(&body.org_id)?;
    match caller.authorize(rule, On::Org(org_id)) {
        Decision::NotFound => return Err(ApiError::org_not_found(&body.org_id)),
        Decision::Forbidden => return Err(ApiError::forbidden()),
        Decision::Allow => {}
    }
    let name = EntityName::parse("name", &body.name)?;
    if let Some(r) = &body.region_usage_restrictions {
        if !REGION_USAGE_RESTRICTIONS.contains(&r.as_str()) {
            return Err(ApiError::invalid_enum("regionUsageRestrictions", r));
        }
    }
    let now = state.clock.now();
    let group = Group {
        id: GroupId::generate(now),
        org_id,
        name: name.into_inner(),
        with_default_alerts: body.with_default_alerts_settings.unwrap_or(true),
        region_usage_restrictions: body.region_usage_restrictions,
        tags: tags_in(body.tags.unwrap_or_default())?,
        created_at: now,
    };
    // The API key that creates a project becomes its owner (as in Atlas).
    let creator: Option<ApiKeyId> = match &caller.kind {
        PrincipalKind::ApiKey { id, .. } => Some(*id),
        PrincipalKind::ServiceAccount { .. } | PrincipalKind::User { .. } => None,
    };
    let ev = audit::event(
        &state,
        &caller,
        EventType::GroupCreated,
        group.org_id,
        Some(group.id),
        vec![("groupName", group.name.clone())],
    );
    match state.store.create_group(&group, creator, &[ev]).await {
        Err(StoreError::Conflict(_)) => return Err(name_conflict(&group.name)),
        other => other?,
    }
    // A new project has no clusters.
    Ok(Reply::ok(group_out(&base, group, 0)))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    one_group_out(&state, &base, group).await
}

pub async fn get_by_name(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let name = path.get("groupName");
    if !(1..=64).contains(&name.chars().count()) {
        return Err(ApiError::from(tessera_domain::ValidationError::new(
            "groupName",
            "must be 1 to 64 characters",
        )));
    }
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "GROUP_NAME_NOT_FOUND",
            format!("No group with name \"{name}\" exists."),
        )
        .with_params([json!(name)])
    };
    let group = state
        .store
        .get_group_by_name(caller.org_id, name)
        .await?
        .ok_or_else(not_found)?;
    let on = On::Group {
        org: group.org_id,
        group: group.id,
    };
    match caller.authorize(rule, on) {
        Decision::Allow => one_group_out(&state, &base, group).await,
        Decision::Forbidden => Err(ApiError::forbidden()),
        Decision::NotFound => Err(not_found()),
    }
}

/// `GroupUpdate`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateGroupIn {
    name: Option<String>,
    tags: Option<Vec<TagWire>>,
    with_default_alerts_settings: Option<bool>,
}

pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<UpdateGroupIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let changes = GroupChanges {
        name: body
            .name
            .as_deref()
            .map(|n| EntityName::parse("name", n).map(EntityName::into_inner))
            .transpose()?,
        with_default_alerts: body.with_default_alerts_settings,
        tags: body.tags.map(tags_in).transpose()?,
    };
    let events: Vec<_> = [
        changes.name.as_ref().map(|_| EventType::GroupRenamed),
        changes.tags.as_ref().map(|_| EventType::GroupTagsChanged),
        changes
            .with_default_alerts
            .map(|_| EventType::GroupSettingsChanged),
    ]
    .into_iter()
    .flatten()
    .map(|t| {
        // Atlas' tag events name the resource tagged.
        let target = if t == EventType::GroupTagsChanged {
            vec![
                ("resourceType", "project".to_owned()),
                ("resourceId", group.id.to_string()),
            ]
        } else {
            vec![]
        };
        audit::event(&state, &caller, t, group.org_id, Some(group.id), target)
    })
    .collect();
    match state.store.update_group(group.id, &changes, &events).await {
        Err(StoreError::Conflict(_)) => Err(name_conflict(changes.name.as_deref().unwrap_or(""))),
        Ok(None) => Err(ApiError::group_not_found(path.get("groupId"))),
        Ok(Some(updated)) => one_group_out(&state, &base, updated).await,
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    // Service accounts lose the project at once: refresh the registry under its lock.
    let _guard = state.registry.write().await;
    let ev = audit::event(
        &state,
        &caller,
        EventType::GroupDeleted,
        group.org_id,
        Some(group.id),
        vec![],
    );
    match state.store.delete_group(group.id, &[ev]).await? {
        DeleteGroupOutcome::Deleted => {}
        DeleteGroupOutcome::NotFound => return Err(ApiError::group_not_found(path.get("groupId"))),
        DeleteGroupOutcome::HasClusters => return Err(ApiError::new(
            StatusCode::CONFLICT,
            "CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS",
            "There are active clusters in this project; delete them before deleting the project.",
        )
        .with_params([json!(path.get("groupId"))])),
    }
    state.registry.reload_all(state.store.as_ref()).await?;
    Ok(Reply::no_content())
}
