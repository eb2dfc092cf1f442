//! Federated authentication, OIDC identity providers only (Atlas' "Federated
//! Authentication"): an organization's federation settings (`getFederationSettings`, made on
//! first need) and its identity providers (`/federationSettings/{id}/identityProviders`,
//! 2023-11-15; the list 2023-01-01). Connected org configs and role mappings are
//! `federation_orgs`. The rules are `tessera_domain::federation`'s.
//!
//! A `federationSettingsId` names one organization's settings: a request is decided on that
//! organization ([`federation_for`]: 404 `FEDERATION_SETTINGS_NOT_FOUND` when there are no
//! such settings or the caller has no role there, 403 when it lacks the route's role). SAML
//! (`metadata.xml`), `revokeJwksFromIdentityProvider` and `deleteFederationApp` are not
//! served (404 `RESOURCE_NOT_FOUND`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::authorization::On;
use tessera_domain::federation::{
    self as fed, AuthorizationType, FederationSettings, IdentityProvider, IdpType, OidcConfig,
};
use tessera_domain::time::format;
use tessera_domain::{
    Decision, EventType, FederationSettingsId, IdentityProviderId, Principal, Rule, ValidationError,
};
use tessera_store::DeleteProvider;

use super::federation_orgs::config_out;
use super::{org_for, paginate};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::{invalid_param, Pagination, Query};
use crate::render::Reply;
use crate::state::AppState;

pub fn settings_not_found(raw: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "FEDERATION_SETTINGS_NOT_FOUND",
        format!("No federation settings with ID {raw} exist."),
    )
    .with_params([json!(raw)])
}

fn provider_not_found(raw: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "IDENTITY_PROVIDER_NOT_FOUND",
        format!("No identity provider with ID {raw} exists in this federation."),
    )
    .with_params([json!(raw)])
}

/// 400 `MISSING_ATTRIBUTE` (Atlas): a required attribute is absent.
pub fn missing(field: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "MISSING_ATTRIBUTE",
        format!("The required attribute {field} was not specified."),
    )
    .with_params([json!(field)])
}

/// 400 `INVALID_ATTRIBUTE` (Atlas): an attribute's value breaks a rule of the domain.
pub fn invalid(e: ValidationError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_ATTRIBUTE",
        format!("Invalid attribute {} specified: {}.", e.field, e.reason),
    )
    .with_params([json!(e.field)])
}

/// The federation settings `raw` names, if the caller may act on them under `rule` (404
/// before 403, decided on the settings' organization).
pub async fn federation_for(
    state: &AppState,
    caller: &Principal,
    raw: &str,
    rule: Rule,
) -> ApiResult<FederationSettings> {
    let id = FederationSettingsId::parse(raw)?;
    let settings = state
        .store
        .federation_settings(id)
        .await?
        .ok_or_else(|| settings_not_found(raw))?;
    match caller.authorize(rule, On::Org(settings.org_id)) {
        Decision::NotFound => Err(settings_not_found(raw)),
        Decision::Forbidden => Err(ApiError::forbidden()),
        Decision::Allow => Ok(settings),
    }
}

/// An event of a change to `settings`' federation, in its organization.
pub fn event(
    state: &AppState,
    caller: &Principal,
    t: EventType,
    settings: &FederationSettings,
    mut target: Vec<(&'static str, String)>,
) -> tessera_store::events::NewEvent {
    target.insert(0, ("federationSettingsId", settings.id.to_string()));
    audit::event(state, caller, t, settings.org_id, None, target)
}

/// `getFederationSettings` (Organization Owner): made on first need (ours).
pub async fn get_settings(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let org = org_for(&state, &caller, path.get("orgId"), rule).await?;
    let now = state.clock.now();
    let new_id = FederationSettingsId::generate(now);
    let shell = FederationSettings {
        id: new_id,
        org_id: org.id,
        created_at: now,
    };
    let ev = event(
        &state,
        &caller,
        EventType::FederationSettingsCreated,
        &shell,
        vec![],
    );
    let settings = state
        .store
        .ensure_federation_settings(org.id, new_id, now, &[ev])
        .await?
        .ok_or_else(|| ApiError::org_not_found(path.get("orgId")))?;
    let config = state.store.connected_org_config(org.id).await?;
    let mappings = state.store.role_mappings(org.id).await?;
    let idp = config.as_ref().and_then(|c| c.identity_provider_id);
    let domains = match idp {
        Some(id) => state
            .store
            .identity_provider(id)
            .await?
            .map(|p| p.config.associated_domains)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let mut out = json!({
        "id": settings.id.to_string(),
        "federatedDomains": domains,
        "hasRoleMappings": !mappings.is_empty(),
        "identityProviderStatus": if idp.is_some() { "ACTIVE" } else { "INACTIVE" },
    });
    if let Some(id) = idp {
        out["identityProviderId"] = json!(fed::legacy_id(id));
    }
    Ok(Reply::ok(out))
}

/// `FederationOidcWorkforceIdentityProvider` (or its WORKLOAD twin) with its connected orgs.
async fn provider_out(state: &AppState, p: &IdentityProvider) -> ApiResult<Value> {
    let c = &p.config;
    let mut associated = Vec::new();
    for config in state.store.connected_org_configs(p.federation_id).await? {
        let uses = config.identity_provider_id == Some(p.id)
            || config.data_access_identity_provider_ids.contains(&p.id);
        if uses {
            let mappings = state.store.role_mappings(config.org_id).await?;
            associated.push(config_out(&config, &mappings));
        }
    }
    let mut out = json!({
        "id": p.id.to_string(),
        "oktaIdpId": p.legacy_id(),
        "protocol": "OIDC",
        "idpType": c.idp_type.as_str(),
        "displayName": c.display_name,
        "issuerUri": c.issuer_uri,
        "requestedScopes": c.requested_scopes,
        "associatedDomains": c.associated_domains,
        "associatedOrgs": associated,
        "createdAt": format(p.created_at),
        "updatedAt": format(p.updated_at),
    });
    for (k, v) in [
        ("description", &c.description),
        ("clientId", &c.client_id),
        ("audience", &c.audience),
        ("groupsClaim", &c.groups_claim),
        ("userClaim", &c.user_claim),
    ] {
        if let Some(v) = v {
            out[k] = json!(v);
        }
    }
    if let Some(a) = c.authorization_type {
        out["authorizationType"] = json!(a.as_str());
    }
    Ok(out)
}

/// `FederationOidcIdentityProviderUpdate` / `FederationIdentityProviderUpdate`: every field
/// optional here; a create needs what [`OidcConfig::check`] needs.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderIn {
    protocol: Option<String>,
    idp_type: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    issuer_uri: Option<String>,
    client_id: Option<String>,
    audience: Option<String>,
    authorization_type: Option<String>,
    groups_claim: Option<String>,
    user_claim: Option<String>,
    requested_scopes: Option<Vec<String>>,
    associated_domains: Option<Vec<String>>,
}

impl ProviderIn {
    /// Applies the fields given to `c` and checks the result.
    fn apply(self, mut c: OidcConfig) -> ApiResult<OidcConfig> {
        if let Some(p) = self.protocol.as_deref() {
            if p != "OIDC" {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ATTRIBUTE",
                    "Invalid attribute protocol specified: only OIDC identity providers are served.",
                )
                .with_params([json!("protocol")]));
            }
        }
        if let Some(t) = self.idp_type {
            c.idp_type = IdpType::parse(&t).ok_or_else(|| ApiError::invalid_enum("idpType", &t))?;
        }
        if let Some(a) = self.authorization_type {
            c.authorization_type = Some(
                AuthorizationType::parse(&a)
                    .ok_or_else(|| ApiError::invalid_enum("authorizationType", &a))?,
            );
        }
        let set = |slot: &mut Option<String>, v: Option<String>| {
            if v.is_some() {
                *slot = v;
            }
        };
        set(&mut c.description, self.description);
        set(&mut c.client_id, self.client_id);
        set(&mut c.audience, self.audience);
        set(&mut c.groups_claim, self.groups_claim);
        set(&mut c.user_claim, self.user_claim);
        if let Some(v) = self.display_name {
            c.display_name = v;
        }
        if let Some(v) = self.issuer_uri {
            c.issuer_uri = v;
        }
        if let Some(v) = self.requested_scopes {
            c.requested_scopes = v;
        }
        if let Some(v) = self.associated_domains {
            c.associated_domains = v;
        }
        if c.idp_type == IdpType::Workforce && c.client_id.is_none() {
            return Err(missing("clientId"));
        }
        c.check().map_err(invalid)?;
        Ok(c)
    }
}

/// The IdP `path` names in the federation it names.
async fn provider_in(
    state: &AppState,
    settings: &FederationSettings,
    path: &PathParams,
) -> ApiResult<IdentityProvider> {
    let raw = path.get("identityProviderId");
    let id = IdentityProviderId::parse(raw)?;
    state
        .store
        .identity_provider(id)
        .await?
        .filter(|p| p.federation_id == settings.id)
        .ok_or_else(|| provider_not_found(raw))
}

/// The values of a repeatable enum query parameter (`a=X&a=Y` or `a=X,Y`), or `default`.
fn enum_filter(q: &Query, name: &str, allowed: &[&str], default: &str) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for v in q.0.get_all(name) {
        for one in v.split(',') {
            if !allowed.contains(&one) {
                return Err(invalid_param(name, one, &allowed.join(" or ")));
            }
            out.push(one.to_owned());
        }
    }
    if out.is_empty() {
        out.push(default.to_owned());
    }
    Ok(out)
}

/// `listIdentityProviders` (Organization Owner): `protocol` defaults to SAML and `idpType`
/// to WORKFORCE (Atlas), so only `protocol=OIDC` lists anything here.
pub async fn list_providers(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    q: Query,
    page: Pagination,
) -> ApiResult<Reply> {
    let settings = federation_for(&state, &caller, path.get("federationSettingsId"), rule).await?;
    let protocols = enum_filter(&q, "protocol", &["SAML", "OIDC"], "SAML")?;
    let types = enum_filter(&q, "idpType", &["WORKFORCE", "WORKLOAD"], "WORKFORCE")?;
    let oidc = protocols.iter().any(|p| p == "OIDC");
    let shown: Vec<IdentityProvider> = state
        .store
        .identity_providers(settings.id)
        .await?
        .into_iter()
        .filter(|p| oidc && types.iter().any(|t| t == p.config.idp_type.as_str()))
        .collect();
    let listed = paginate(shown, page.page());
    let mut results = Vec::with_capacity(listed.items.len());
    for p in &listed.items {
        results.push(provider_out(&state, p).await?);
    }
    let listed = tessera_store::Listed {
        items: results,
        total: listed.total,
    };
    Ok(Reply::ok(page.list(listed, |v| v)))
}

/// `createIdentityProvider` (Organization Owner): OIDC only.
pub async fn create_provider(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<ProviderIn>,
) -> ApiResult<Reply> {
    let settings = federation_for(&state, &caller, path.get("federationSettingsId"), rule).await?;
    if body.protocol.is_none() {
        return Err(missing("protocol"));
    }
    let display_name = body
        .display_name
        .clone()
        .ok_or_else(|| missing("displayName"))?;
    let issuer_uri = body
        .issuer_uri
        .clone()
        .ok_or_else(|| missing("issuerUri"))?;
    let blank = OidcConfig {
        idp_type: IdpType::Workforce,
        display_name,
        description: None,
        issuer_uri,
        client_id: None,
        audience: None,
        authorization_type: None,
        groups_claim: None,
        user_claim: None,
        requested_scopes: Vec::new(),
        associated_domains: Vec::new(),
    };
    let config = body.apply(blank)?;
    let now = state.clock.now();
    let idp = IdentityProvider {
        id: IdentityProviderId::generate(now),
        federation_id: settings.id,
        config,
        created_at: now,
        updated_at: now,
    };
    let ev = event(
        &state,
        &caller,
        EventType::IdentityProviderCreated,
        &settings,
        vec![("identityProviderId", idp.id.to_string())],
    );
    if !state.store.create_identity_provider(&idp, &[ev]).await? {
        return Err(settings_not_found(path.get("federationSettingsId")));
    }
    Ok(Reply::ok(provider_out(&state, &idp).await?))
}

/// `getIdentityProvider` (Organization Owner).
pub async fn get_provider(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let settings = federation_for(&state, &caller, path.get("federationSettingsId"), rule).await?;
    let idp = provider_in(&state, &settings, &path).await?;
    Ok(Reply::ok(provider_out(&state, &idp).await?))
}

/// `updateIdentityProvider` (Organization Owner): the fields given replace the IdP's; no
/// event when nothing changed.
pub async fn update_provider(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<ProviderIn>,
) -> ApiResult<Reply> {
    let settings = federation_for(&state, &caller, path.get("federationSettingsId"), rule).await?;
    let mut idp = provider_in(&state, &settings, &path).await?;
    let config = body.apply(idp.config.clone())?;
    if config != idp.config {
        idp.config = config;
        idp.updated_at = state.clock.now();
        let ev = event(
            &state,
            &caller,
            EventType::IdentityProviderUpdated,
            &settings,
            vec![("identityProviderId", idp.id.to_string())],
        );
        state
            .store
            .update_identity_provider(&idp, &[ev])
            .await?
            .ok_or_else(|| provider_not_found(path.get("identityProviderId")))?;
    }
    Ok(Reply::ok(provider_out(&state, &idp).await?))
}

/// `deleteIdentityProvider` (Organization Owner): refused while a connected org uses it.
pub async fn delete_provider(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let settings = federation_for(&state, &caller, path.get("federationSettingsId"), rule).await?;
    let raw = path.get("identityProviderId");
    let id = IdentityProviderId::parse(raw)?;
    let ev = event(
        &state,
        &caller,
        EventType::IdentityProviderDeleted,
        &settings,
        vec![("identityProviderId", id.to_string())],
    );
    match state
        .store
        .delete_identity_provider(settings.id, id, &[ev])
        .await?
    {
        DeleteProvider::Deleted => Ok(Reply::no_content()),
        DeleteProvider::Missing => Err(provider_not_found(raw)),
        DeleteProvider::InUse => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "IDENTITY_PROVIDER_IN_USE",
            format!(
                "Identity provider {raw} is used by a connected organization; disconnect it first."
            ),
        )
        .with_params([json!(raw)])),
    }
}
