//! Organizations: `/orgs`, `/orgs/{orgId}`, `/orgs/{orgId}/groups`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tessera_domain::names::EntityName;
use tessera_domain::roles::{parse_role_list, OrgRole};
use tessera_domain::EventType;
use tessera_domain::OrgId;
use tessera_store::{DeleteOrgOutcome, NewOrg, Org, OrgChanges};

use super::api_keys::new_api_key;
use super::{authorize_own, org_for, Base};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::{Pagination, Query};
use crate::render::Reply;
use crate::wire::{api_key_out, org_out, CreateApiKeyIn, Ignored};

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    page: Pagination,
    Query(q): Query,
) -> ApiResult<Reply> {
    authorize_own(&caller, rule)?;
    let name = q.get("name")?;
    let listed = state
        .store
        .list_orgs(&[caller.org_id], name, page.page())
        .await?;
    Ok(Reply::ok(page.list(listed, |o| org_out(&base, o))))
}

use crate::state::AppState;

pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    Ok(Reply::ok(org_out(&base, org)))
}

/// `AtlasOrganization` as a PATCH body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateOrgIn {
    name: String,
    skip_default_alerts_settings: Option<bool>,
    #[serde(default)]
    id: Ignored,
    #[serde(default)]
    is_deleted: Ignored,
    #[serde(default)]
    links: Ignored,
}

pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<UpdateOrgIn>,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let _ = (body.id, body.is_deleted, body.links);
    let changes = OrgChanges {
        name: Some(EntityName::parse("name", &body.name)?.into_inner()),
        skip_default_alerts: body.skip_default_alerts_settings,
    };
    let events = audit::update_events(
        &state,
        &caller,
        org.id,
        None,
        Some(EventType::OrgRenamed),
        changes
            .skip_default_alerts
            .map(|_| EventType::OrgSettingsChanged),
        &[],
    );
    let updated = state
        .store
        .update_org(org.id, &changes, &events)
        .await?
        .ok_or_else(|| ApiError::org_not_found(path.get("orgId")))?;
    Ok(Reply::ok(org_out(&base, updated)))
}

pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    // Under the registry's write lock: the org's service accounts go with it, at once.
    let _guard = state.registry.write().await;
    let ev = audit::event(&state, &caller, EventType::OrgDeleted, org.id, None, vec![]);
    match state.store.delete_org(org.id, &[ev]).await? {
        DeleteOrgOutcome::Deleted => {
            state.registry.reload_all(state.store.as_ref()).await?;
            Ok(Reply::no_content())
        }
        DeleteOrgOutcome::NotFound => Err(ApiError::org_not_found(path.get("orgId"))),
        DeleteOrgOutcome::HasProjects => Err(ApiError::new(
            StatusCode::CONFLICT,
            "CANNOT_DELETE_ORG_WITH_PROJECTS",
            format!(
                "Organization {} still has projects; delete them first.",
                org.id
            ),
        )
        .with_params([json!(org.id.to_string())])),
    }
}

/// `CreateOrganizationRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateOrgIn {
    name: String,
    api_key: Option<CreateApiKeyIn>,
    federation_settings_id: Option<String>,
    org_owner_id: Option<String>,
    service_account: Option<serde_json::Value>,
    skip_default_alerts_settings: Option<bool>,
}

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    ApiJson(body): ApiJson<CreateOrgIn>,
) -> ApiResult<Reply> {
    authorize_own(&caller, rule)?;
    let name = EntityName::parse("name", &body.name)?;
    // `orgOwnerId` must name a person: an active member of the caller's organization, who
    // becomes the new organization's first owner in the same unit of work.
    let owner = match &body.org_owner_id {
        None => None,
        Some(raw) => Some(super::people::owner_for_new_org(&state, &caller, raw).await?),
    };
    if body.federation_settings_id.is_some() {
        return Err(ApiError::validation(
            "federationSettingsId is not supported: Tessera has no federation settings.",
        )
        .with_params([json!("federationSettingsId")]));
    }
    if body.service_account.is_some() {
        return Err(ApiError::validation(
            "serviceAccount is not supported when creating an organization yet; create the organization, then its service accounts.",
        )
        .with_params([json!("serviceAccount")]));
    }
    let now = state.clock.now();
    let org = Org {
        id: OrgId::generate(now),
        name: name.into_inner(),
        skip_default_alerts: body.skip_default_alerts_settings.unwrap_or(false),
        created_at: now,
    };
    let key = match &body.api_key {
        None => None,
        Some(k) => {
            let roles = parse_role_list::<OrgRole>("apiKey.roles", &k.roles, false)
                .map_err(|e| ApiError::validation(format!("{e}.")))?;
            Some(new_api_key(&state, org.id, &k.desc, roles, Vec::new())?)
        }
    };
    let mut events = vec![audit::event(
        &state,
        &caller,
        EventType::OrgCreated,
        org.id,
        None,
        vec![],
    )];
    if let Some((record, _)) = &key {
        events.push(audit::event(
            &state,
            &caller,
            EventType::ApiKeyCreated,
            org.id,
            None,
            audit::key_target(record),
        ));
    }
    let new = NewOrg {
        org: &org,
        group: None,
        api_key: key.as_ref().map(|(record, _)| record),
    };
    match &owner {
        None => state.store.create_org(new, &events).await?,
        Some(user) => {
            events.push(audit::event(
                &state,
                &caller,
                EventType::JoinedOrg,
                org.id,
                None,
                vec![
                    ("targetUsername", user.username.clone()),
                    ("targetUserId", user.id.to_string()),
                ],
            ));
            state.store.create_org_owned(new, user.id, &events).await?
        }
    }
    let mut out = json!({
        "organization": org_out(&base, org.clone()),
        "skipDefaultAlertsSettings": org.skip_default_alerts,
    });
    if let Some(owner) = body.org_owner_id {
        out["orgOwnerId"] = json!(owner);
    }
    if let Some((record, private_key)) = key {
        let base_new = base.clone();
        out["apiKey"] = serde_json::to_value(api_key_out(
            &base_new,
            record,
            Some(private_key.expose().to_owned()),
        ))
        .map_err(ApiError::internal)?;
    }
    Ok(Reply::created(out))
}

pub async fn list_groups(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
    Query(q): Query,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let name = q.get("name")?;
    let filter = super::groups::visible_groups(&caller);
    let listed = state
        .store
        .list_groups(org.id, name, &filter, page.page())
        .await?;
    Ok(Reply::ok(
        super::groups::groups_out(&state, &base, &page, listed).await?,
    ))
}
