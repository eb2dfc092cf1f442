//! `GET /api/atlas/v2` (and `/api/public/v1.0`): the SDK's `GetSystemStatus`, Atlas'
//! `SystemStatus` document for the authenticated caller, so a client can check its
//! credentials (and the address its access list sees) with one cheap call.
//!
//! Fields: `appName` (`"Tessera"`), `build` (the server's version: Tessera has no build hash
//! to show), `ipAddress` (the client address access lists are checked against), `links`,
//! `throttling` (always false), and for an API-key caller `apiKey` (`id`, `publicKey`,
//! `roles`, `accessList`). A service account is not an API key and has no slot in the
//! document: its status omits `apiKey` (which the SDK's model allows).

use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use tessera_domain::PrincipalKind;
use tessera_store::ApiKeyRecord;

use super::{authorize_own, Base};
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::oauth::Peer;
use crate::render::Reply;
use crate::state::AppState;
use crate::wire::self_link;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccessListItem {
    cidr_block: String,
    ip_address: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<String>,
    role_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiKeyStatus {
    access_list: Vec<AccessListItem>,
    id: String,
    public_key: String,
    roles: Vec<RoleOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SystemStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<ApiKeyStatus>,
    app_name: &'static str,
    build: &'static str,
    ip_address: String,
    links: Vec<Value>,
    throttling: bool,
}

fn key_status(k: ApiKeyRecord) -> ApiKeyStatus {
    let org_roles = k.org_roles.iter().map(|r| RoleOut {
        group_id: None,
        org_id: Some(k.org_id.to_string()),
        role_name: r.to_string(),
    });
    let group_roles = k.group_roles.iter().flat_map(|(g, roles)| {
        roles.iter().map(move |r| RoleOut {
            group_id: Some(g.to_string()),
            org_id: None,
            role_name: r.to_string(),
        })
    });
    ApiKeyStatus {
        access_list: k
            .access_list
            .iter()
            .map(|e| AccessListItem {
                cidr_block: e.entry.key(),
                ip_address: e.entry.net.addr().to_string(),
            })
            .collect(),
        id: k.id.to_string(),
        public_key: k.public_key.clone(),
        roles: org_roles.chain(group_roles).collect(),
    }
}

pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    Peer(peer): Peer,
) -> ApiResult<Reply> {
    authorize_own(&caller, rule)?;
    let api_key = match &caller.kind {
        PrincipalKind::ApiKey { id, .. } => {
            // The key authenticated this very request; gone now means deleted meanwhile.
            let key = state
                .store
                .get_api_key(*id)
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            Some(key_status(key))
        }
        PrincipalKind::ServiceAccount { .. } | PrincipalKind::User { .. } => None,
    };
    Ok(Reply::ok(SystemStatus {
        api_key,
        app_name: "Tessera",
        build: env!("CARGO_PKG_VERSION"),
        ip_address: peer.to_string(),
        links: self_link(base),
        throttling: false,
    }))
}
