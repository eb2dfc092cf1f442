//! Handlers, one module per resource family. Each handler: authenticate (`Caller`), parse
//! ids, authorize with the domain's decision, call the store, map to wire types.

pub mod api_key_access;
pub mod api_keys;
pub mod clusters;
pub mod events;
pub mod group_service_accounts;
pub mod groups;
pub mod orgs;
pub mod service_accounts;
pub mod support;
pub mod system_status;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_domain::{Decision, GroupId, OrgId, Principal, Requirement};
use tessera_store::{Group, Org};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::version::Dialect;

/// Absolute base URL of the surface the request came in on (for `links`).
pub struct Base(pub String);

impl FromRequestParts<AppState> for Base {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let prefix = match parts.extensions.get::<Dialect>() {
            Some(Dialect::V1) => "/api/public/v1.0",
            _ => "/api/atlas/v2",
        };
        Ok(Base(format!("{}{prefix}", state.public_url())))
    }
}

/// Authorizes an org-level operation without touching the store: a caller's credential exists
/// only while its organization does, so a role there proves the organization exists.
pub fn authorize_org(caller: &Principal, raw_id: &str, req: Requirement) -> ApiResult<OrgId> {
    let id = OrgId::parse(raw_id)?;
    match caller.decide_org(id, req) {
        Decision::NotFound => Err(ApiError::org_not_found(raw_id)),
        Decision::Forbidden => Err(ApiError::forbidden()),
        Decision::Allow => Ok(id),
    }
}

/// One page of an in-memory list.
pub fn paginate<T>(items: Vec<T>, page: tessera_store::Page) -> tessera_store::Listed<T> {
    let total = items.len() as u64;
    let items = items
        .into_iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
        .collect();
    tessera_store::Listed { items, total }
}

/// Loads an organization the caller may act on with `req`: 404 when the caller has no role
/// in it (whether or not it exists), 403 when it lacks the role.
pub async fn org_for(
    state: &AppState,
    caller: &Principal,
    raw_id: &str,
    req: Requirement,
) -> ApiResult<Org> {
    let id = OrgId::parse(raw_id)?;
    match caller.decide_org(id, req) {
        Decision::NotFound => Err(ApiError::org_not_found(raw_id)),
        decision => {
            let org = state
                .store
                .get_org(id)
                .await?
                .ok_or_else(|| ApiError::org_not_found(raw_id))?;
            if decision == Decision::Forbidden {
                return Err(ApiError::forbidden());
            }
            Ok(org)
        }
    }
}

/// Loads a project the caller may act on with `req` (same 404-before-403 rule).
pub async fn group_for(
    state: &AppState,
    caller: &Principal,
    raw_id: &str,
    req: Requirement,
) -> ApiResult<Group> {
    let id = GroupId::parse(raw_id)?;
    let group = state
        .store
        .get_group(id)
        .await?
        .ok_or_else(|| ApiError::group_not_found(raw_id))?;
    match caller.decide_group(group.org_id, group.id, req) {
        Decision::NotFound => Err(ApiError::group_not_found(raw_id)),
        Decision::Forbidden => Err(ApiError::forbidden()),
        Decision::Allow => Ok(group),
    }
}
